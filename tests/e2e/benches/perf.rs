//! The performance suite: `out_wasm.so` driven through the loader's proxy core with agent-sized
//! chunks, side by side in one run:
//!
//! - `noop`: a guest that answers ok without reading the chunk. This is the host's own cost:
//!   the hand-off to the worker thread, the copy of the chunk into guest memory, the call.
//! - `json`: the `stdout` example rendering JSON lines (`wasm_stdout off`, so the host drops
//!   its one write per chunk and no terminal is measured).
//! - `native`: the same rendering code (the format crate's `JsonLines` into a reused buffer), compiled
//!   natively and called in this process. This is the limit.
//!
//! Each guest runs at 1 and 2 concurrent workers (`workers 2`: two agent threads flushing at
//! once). The suite also reports the fixed cost per flush (a chunk of one small record through
//! `noop`), RSS per guest instance, and the start time of an instance with and without the
//! compile cache. The targets are from issue 6 and are ratios within this run.
//!
//! `cargo bench -p out-wasm-e2e --bench perf` (`OUT_WASM_PERF_SECS` sets each round's length,
//! default 2; `OUT_WASM_PERF_FIXED_ONLY=1` runs only the fixed-cost case, for profiling).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use out_wasm_e2e::{chunk, guest_path, init_ok, open_plugin, scratch_dir};
use out_wasm_format::{Events, JsonLines};
use out_wasm_loader::{FLB_OK, LoadedOutput, Plugin};

/// A realistic agent record: ~180 bytes of JSON, nested, as in the issue's 1M-record workload.
const BODY: &str = r#"{"level":"info","msg":"GET /api/v1/items/12345 served","http":{"method":"GET","path":"/api/v1/items/12345","status":200,"latency_ms":42.125},"user":{"id":977,"name":"user977"},"tags":["a","b"]}"#;
/// Records per chunk: the agent's chunks grow to about 2 MB before they are flushed under load.
const RECORDS: usize = 12_000;
const ROUNDS: usize = 3;

fn main() {
    let round =
        Duration::from_secs_f64(std::env::var("OUT_WASM_PERF_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0));
    let data = chunk(&vec![BODY; RECORDS], 1_700_000_000, 123_456_789);
    let tiny = chunk(&[r#"{"a":1}"#], 1_700_000_000, 0);
    if std::env::var_os("OUT_WASM_PERF_FIXED_ONLY").is_some() {
        // For profiling the per-flush path alone (`perf record`).
        let fixed = guest_rate(&guest_path("noop"), 1, &tiny, round);
        println!("noop, 1-record chunk: {:.2} µs/flush", fixed.micros_per_flush());
        let fixed = guest_rate_with(&guest_path("noop"), 1, &tiny, round, &[("wasm_deadlines", "off")]);
        println!("noop, 1-record chunk, wasm_deadlines off: {:.2} µs/flush", fixed.micros_per_flush());
        return;
    }
    println!(
        "chunk: {RECORDS} records, {:.2} MB of msgpack ({} B/record); best of {ROUNDS} rounds of {:.1} s",
        data.len() as f64 / 1e6,
        data.len() / RECORDS,
        round.as_secs_f64()
    );
    println!();
    println!("{:<28} {:>8} {:>13} {:>10} {:>13}", "", "workers", "records/s", "MB/s", "µs/flush");

    let noop = guest_path("noop");
    let stdout = guest_path("stdout");
    let mut results = Vec::new();
    for (label, guest) in [("noop guest", &noop), ("json guest (stdout)", &stdout)] {
        for workers in [1, 2] {
            let rate = guest_rate(guest, workers, &data, round);
            print_row(label, workers, &rate, data.len());
            results.push((label, workers, rate));
        }
    }
    for workers in [1, 2] {
        let rate = native_rate(workers, &data, round);
        print_row("json native (the limit)", workers, &rate, data.len());
        results.push(("native", workers, rate));
    }
    let fixed = guest_rate(&noop, 1, &tiny, round);
    println!("{:<28} {:>8} {:>13} {:>10} {:>13.2}", "noop, 1-record chunk", 1, "", "", fixed.micros_per_flush());

    let rss = rss_per_instance(&stdout);
    let (uncached, cached) = start_times(&stdout);
    println!();
    println!("RSS per stdout guest instance: {:.2} MiB", rss / (1024.0 * 1024.0));
    println!("start of a stdout guest instance: {uncached:.1} ms uncached, {cached:.1} ms from the compile cache");

    let find = |label: &str, workers: usize| {
        results.iter().find(|(l, w, _)| l.starts_with(label) && *w == workers).map(|(_, _, r)| r).unwrap()
    };
    println!();
    println!("{:<38} {:>14} {:>12}  verdict", "target", "measured", "target");
    let checks = [
        ("fixed cost per flush (µs)", fixed.micros_per_flush(), 5.0, false),
        ("noop guest, GB/s of chunk bytes", find("noop", 1).bytes_per_sec(data.len()) / 1e9, 2.0, true),
        ("json guest / native, 1 worker", find("json", 1).records / find("native", 1).records, 0.6, true),
        ("json guest, 2 workers / 1 worker", find("json", 2).records / find("json", 1).records, 1.7, true),
        ("RSS per guest instance (MiB)", rss / (1024.0 * 1024.0), 8.0, false),
        ("cached start (ms)", cached, 50.0, false),
    ];
    for (what, measured, target, higher_is_better) in checks {
        let met = if higher_is_better { measured >= target } else { measured <= target };
        let relation = if higher_is_better { "≥" } else { "≤" };
        println!("{what:<38} {measured:>14.2} {relation:>3} {target:>8.2}  {}", if met { "met" } else { "MISSED" });
    }
}

struct Rate {
    records: f64,
    flushes: f64,
}

impl Rate {
    fn bytes_per_sec(&self, chunk_len: usize) -> f64 {
        self.flushes * chunk_len as f64
    }

    fn micros_per_flush(&self) -> f64 {
        1e6 / self.flushes
    }
}

fn print_row(label: &str, workers: usize, rate: &Rate, chunk_len: usize) {
    println!(
        "{label:<28} {workers:>8} {:>13.0} {:>10.0} {:>13.1}",
        rate.records,
        rate.bytes_per_sec(chunk_len) / 1e6,
        rate.micros_per_flush()
    );
}

/// Best rate over `ROUNDS` rounds of `workers` threads each flushing `data` in a loop.
fn best_of(workers: usize, round: Duration, records: usize, flush: impl Fn() + Sync) -> Rate {
    let mut best = Rate { records: 0.0, flushes: 0.0 };
    for _ in 0..ROUNDS {
        let barrier = Barrier::new(workers);
        let (flushes, elapsed) = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let started = Instant::now();
                        let mut n = 0usize;
                        while started.elapsed() < round {
                            flush();
                            n += 1;
                        }
                        (n, started.elapsed())
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .fold((0, Duration::ZERO), |(n, e), (tn, te)| (n + tn, e.max(te)))
        });
        let flushes = flushes as f64 / elapsed.as_secs_f64();
        if flushes > best.flushes {
            best = Rate { records: flushes * records as f64, flushes };
        }
    }
    best
}

fn guest_rate(guest: &std::path::Path, workers: usize, data: &[u8], round: Duration) -> Rate {
    guest_rate_with(guest, workers, data, round, &[])
}

fn guest_rate_with(
    guest: &std::path::Path,
    workers: usize,
    data: &[u8],
    round: Duration,
    keys: &[(&str, &str)],
) -> Rate {
    let mut plugin: Plugin = open_plugin();
    let workers_text = workers.to_string();
    let mut pairs = vec![
        ("wasm_path", guest.to_str().unwrap()),
        ("wasm_stdout", "off"),
        ("wasm_watch", "off"),
        ("workers", &workers_text),
    ];
    pairs.extend_from_slice(keys);
    let instance: LoadedOutput = init_ok(&mut plugin, &pairs);
    let records = Events::new(data).count();
    let rate = best_of(workers, round, records, || {
        let call = instance.flush_here(data, c"bench");
        assert_eq!(call.value, FLB_OK, "expected every flush to succeed; log:\n{}", call.log_text());
    });
    instance.exit();
    plugin.close();
    rate
}

fn native_rate(workers: usize, data: &[u8], round: Duration) -> Rate {
    let format = JsonLines::agent_default();
    let records = Events::new(data).count();
    best_of(workers, round, records, || {
        // Each flush renders into a buffer kept by its worker, as the guest keeps one.
        thread_local!(static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
        BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            for event in Events::new(data) {
                format.write(buffer, &event.expect("the bench chunk decodes"));
            }
            std::hint::black_box(&buffer);
        });
    })
}

/// Resident set size of this process, in bytes.
fn rss() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64
}

/// RSS growth per guest instance: 16 `[OUTPUT]` instances of the guest, each of which has
/// rendered one realistic chunk (256 records), so each holds one warm guest instance. Each
/// output also has its own runtime and threads, so this is an upper bound for one more guest
/// instance of an output (`workers N` adds only the guest instance and its worker thread).
fn rss_per_instance(guest: &std::path::Path) -> f64 {
    const N: usize = 16;
    let data = chunk(&vec![BODY; 256], 1_700_000_000, 0);
    let mut plugin = open_plugin();
    let pairs = [("wasm_path", guest.to_str().unwrap()), ("wasm_stdout", "off"), ("wasm_watch", "off")];
    // One instance first, so code pages and the engine are counted before.
    let first = init_ok(&mut plugin, &pairs);
    assert_eq!(first.flush_here(&data, c"bench").value, FLB_OK);
    let before = rss();
    let instances: Vec<LoadedOutput> = (0..N)
        .map(|_| {
            let instance = init_ok(&mut plugin, &pairs);
            assert_eq!(instance.flush_here(&data, c"bench").value, FLB_OK);
            instance
        })
        .collect();
    let after = rss();
    for instance in instances {
        instance.exit();
    }
    first.exit();
    plugin.close();
    (after - before) / N as f64
}

/// Median start (Init wall time) of the guest, uncached and from a warm compile cache, in ms.
fn start_times(guest: &std::path::Path) -> (f64, f64) {
    let cache = scratch_dir("bench").join("perf-cache");
    std::fs::remove_dir_all(&cache).ok();
    let cache = cache.to_str().unwrap().to_owned();
    let measure = |cache_dir: &str| {
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let mut plugin = open_plugin();
                let started = Instant::now();
                let instance = init_ok(
                    &mut plugin,
                    &[("wasm_path", guest.to_str().unwrap()), ("wasm_cache_dir", cache_dir), ("wasm_watch", "off")],
                );
                let ms = started.elapsed().as_secs_f64() * 1e3;
                instance.exit();
                plugin.close();
                ms
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let uncached = measure("off");
    measure(&cache);
    (uncached, measure(&cache))
}
