//! The `stdout` example of every guest language, side by side: component size, how long the
//! language's own toolchain takes to build it, how long wasmtime takes to compile it, how long an
//! instance takes to start with and without the compile cache, and records per second through
//! the real `out_wasm.so` with the guest decoding msgpack and with the host rendering the lines
//! (`wasm_event_format json_lines`).
//!
//! `cargo bench -p out-wasm-e2e --bench languages` (all five languages; their toolchains come
//! from `scripts/setup`). `OUT_WASM_LANGS=rust,c` picks languages.
//!
//! Start times are the agent-side wall time of Init. Init loads the component (compiles it, or
//! reads it from the cache), instantiates it, and runs the guest's `config-schema` and `init`.
//! The host's own log line says how much of that was loading, so the rest is instantiation plus
//! the guest's init.
//!
//! A second table has the `http` example of each language POSTing to a loopback endpoint.
//!
//! Throughput runs with `wasm_stdout off`. The guest still renders every line and makes its one
//! write per chunk, but the host drops the bytes, so no terminal or pipe is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use out_wasm_e2e::{LANGUAGES, chunk, language_guest, open_plugin, scratch_dir};
use out_wasm_loader::{FLB_OK, Plugin};

const RECORDS_PER_CHUNK: usize = 256;
/// Each throughput round flushes for at least this long; the best of `ROUNDS` is kept.
const ROUND: Duration = Duration::from_millis(1500);
const ROUNDS: usize = 3;
/// Starts measured per mode; the median is reported.
const STARTS: usize = 5;

fn main() {
    let chosen = std::env::var("OUT_WASM_LANGS").ok();
    let languages: Vec<&str> = LANGUAGES
        .iter()
        .copied()
        .filter(|lang| chosen.as_deref().is_none_or(|list| list.split(',').any(|l| l.trim() == *lang)))
        .collect();

    let body = r#"{"level":"info","msg":"request handled 12345","http":{"method":"GET","path":"/api/v1/items/12345","status":200,"latency_ms":42.125},"user":{"id":977,"name":"user977"},"tags":["a","b"]}"#;
    let data = chunk(&vec![body; RECORDS_PER_CHUNK], 1_700_000_000, 123_456_789);
    println!(
        "chunks of {RECORDS_PER_CHUNK} records, {} B of msgpack each ({} B/record); throughput is the best of {ROUNDS} rounds of {} s; starts are the median of {STARTS}",
        data.len(),
        data.len() / RECORDS_PER_CHUNK,
        ROUND.as_secs_f64()
    );
    println!(
        "{:<7} {:>9} {:>8} {:>9} {:>10} {:>10} {:>14} {:>14} {:>9}",
        "lang", "size", "build", "compile", "start", "start", "records/s", "records/s", "json_lines"
    );
    println!(
        "{:<7} {:>9} {:>8} {:>9} {:>10} {:>10} {:>14} {:>14} {:>9}",
        "", "(KiB)", "(s)", "(ms)", "uncached", "cached", "(msgpack)", "(json_lines)", "saves"
    );
    for &lang in &languages {
        let started = Instant::now();
        let guest = language_guest(lang, "stdout");
        // The Rust guests are built by cargo together with every other guest, so their time
        // says nothing about one guest.
        let build = if lang == "rust" { "-".to_owned() } else { format!("{:.1}", started.elapsed().as_secs_f64()) };
        let size = std::fs::metadata(&guest).expect("the guest was built").len();

        let uncached = starts(&guest, "off");
        // The host creates the directory itself, private to this uid as it requires.
        let cache = scratch_dir("bench").join(format!("cache-{lang}"));
        std::fs::remove_dir_all(&cache).ok();
        let cache_dir = cache.to_str().unwrap();
        starts(&guest, cache_dir); // fills the cache
        let cached = starts(&guest, cache_dir);

        // Only the Rust example renders JSON lines itself (with the format crate the host uses);
        // the others print what the host renders, and refuse msgpack.
        let msgpack = throughput(&guest, "msgpack", &data, &[]);
        let json_lines = throughput(&guest, "json_lines", &data, &[]).expect("every stdout example takes json_lines");
        let rate = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        let saves = msgpack.map_or_else(|| "-".to_owned(), |m| format!("{:.0}%", (1.0 - m / json_lines) * 100.0));
        println!(
            "{lang:<7} {:>9.0} {build:>8} {:>9.0} {:>7.0} ms {:>7.0} ms {:>14} {json_lines:>14.0} {saves:>9}",
            size as f64 / 1024.0,
            uncached.load_ms,
            uncached.wall_ms,
            cached.wall_ms,
            rate(msgpack),
        );
    }
    http_rows(&languages, &data);
}

/// The `http` example of each language POSTing every chunk to a loopback HTTP/1.1 endpoint
/// that keeps connections alive and answers 200 at once: what a guest's request path costs.
fn http_rows(languages: &[&str], data: &[u8]) {
    let server = out_wasm_e2e::http_server::Server::keep_alive(None);
    let url = format!("http://127.0.0.1:{}/bench", server.port);
    let grant = format!("127.0.0.1:{}", server.port);
    let keys = [("url", url.as_str()), ("wasm_allow_net", grant.as_str())];
    println!();
    println!("the http example to a loopback endpoint (keep-alive, 200 at once), one request per chunk");
    println!("{:<7} {:>14} {:>14} {:>13}", "lang", "records/s", "records/s", "json_lines");
    println!("{:<7} {:>14} {:>14} {:>13}", "", "(msgpack)", "(json_lines)", "vs Rust");
    let mut rust = None;
    for &lang in languages {
        let guest = if lang == "rust" { out_wasm_e2e::guest_path("http") } else { language_guest(lang, "http") };
        let rate = |format| {
            let rate = throughput(&guest, format, data, &keys);
            // The endpoint keeps every body it was sent; a round's worth is enough.
            server.seen.lock().unwrap().clear();
            rate
        };
        let msgpack = rate("msgpack");
        let json_lines = rate("json_lines").expect("every http example takes json_lines");
        if lang == "rust" {
            rust = Some(json_lines);
        }
        let versus = rust.map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", json_lines / r * 100.0));
        let msgpack = msgpack.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        println!("{lang:<7} {msgpack:>14} {json_lines:>14.0} {versus:>13}");
    }
}

struct Start {
    /// Init as the agent sees it, median.
    wall_ms: f64,
    /// The part of it the host spent compiling or loading the component, median.
    load_ms: f64,
}

/// Median Init time of a fresh instance of `guest` with `wasm_cache_dir` set to `cache`.
fn starts(guest: &Path, cache: &str) -> Start {
    let mut walls = Vec::new();
    let mut loads = Vec::new();
    for _ in 0..STARTS {
        let mut plugin = open_plugin();
        let started = Instant::now();
        let call = plugin.init(out_wasm_e2e::props(&[
            ("wasm_path", guest.to_str().unwrap()),
            ("wasm_cache_dir", cache),
            ("wasm_watch", "off"),
        ]));
        walls.push(started.elapsed().as_secs_f64() * 1e3);
        let text = call.log_text();
        loads.push(load_ms(&text).unwrap_or_else(|| panic!("expected the host's 'initialized' line; log:\n{text}")));
        let instance = call.value.unwrap_or_else(|code| panic!("expected init to succeed, got {code}; log:\n{text}"));
        instance.exit();
        plugin.close();
    }
    Start { wall_ms: median(walls), load_ms: median(loads) }
}

/// The milliseconds in the host's "... initialized, compiled in N ms" line.
fn load_ms(log: &str) -> Option<f64> {
    let line = log.lines().find(|line| line.contains("initialized, "))?;
    let tail = line.rsplit(" in ").next()?;
    tail.trim_end_matches(" ms").trim().parse().ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Best records/s of `guest` over `ROUNDS` rounds with the given `wasm_event_format` (and the
/// guest's own `keys`); `None` when the guest refuses that format.
fn throughput(guest: &Path, format: &str, data: &[u8], keys: &[(&str, &str)]) -> Option<f64> {
    let mut plugin: Plugin = open_plugin();
    let mut pairs = vec![
        ("wasm_path", guest.to_str().unwrap()),
        ("wasm_event_format", format),
        ("wasm_stdout", "off"),
        ("wasm_watch", "off"),
    ];
    pairs.extend_from_slice(keys);
    let call = plugin.init(out_wasm_e2e::props(&pairs));
    let Ok(instance) = call.value else {
        plugin.close();
        return None;
    };
    let tag = c"bench";
    let mut best: f64 = 0.0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut chunks = 0usize;
        while started.elapsed() < ROUND {
            let call = instance.flush_here(data, tag);
            assert_eq!(call.value, FLB_OK, "expected every flush to succeed; log:\n{}", call.log_text());
            chunks += 1;
        }
        best = best.max((chunks * RECORDS_PER_CHUNK) as f64 / started.elapsed().as_secs_f64());
    }
    instance.exit();
    plugin.close();
    Some(best)
}
