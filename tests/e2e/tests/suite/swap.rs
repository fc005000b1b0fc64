//! Hot swap through the real boundary: the guest file is replaced while flushes run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use out_wasm_e2e::sync::{EVENT_TIMEOUT, SyncDir};
use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, open_plugin};
use out_wasm_loader::{FLB_OK, FLB_RETRY, LoadedOutput, LogLine, Logged};
use sha2::Digest;

/// A private directory holding `guest.wasm` (a copy of `first`) and a compile cache.
fn workdir(test: &str, first: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("out-wasm-swap-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("guest.wasm");
    std::fs::copy(guest_path(first), &file).unwrap();
    (dir, file)
}

/// Replaces the guest file the way deployment tools do: copy over it in place (`cp`), or write
/// a temporary file and rename it over (`install`, most tools, and Kubernetes volumes).
fn replace(file: &Path, with: &Path, in_place: bool) {
    if in_place {
        std::fs::copy(with, file).unwrap();
    } else {
        let tmp = file.with_extension("tmp");
        std::fs::copy(with, &tmp).unwrap();
        std::fs::rename(&tmp, file).unwrap();
    }
}

fn digest(path: &Path) -> String {
    let hash = sha2::Sha256::digest(std::fs::read(path).unwrap());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Everything the flushers saw, for checks after the run.
#[derive(Default)]
struct Seen {
    logs: Mutex<Vec<LogLine>>,
}

impl Seen {
    fn keep(&self, call: &Logged<i32>) {
        self.logs.lock().unwrap().extend(call.logs.iter().cloned());
    }

    fn count(&self, needle: &str) -> usize {
        self.logs.lock().unwrap().iter().filter(|l| l.message.contains(needle)).count()
    }

    /// The `n`-th (from 0) line containing `needle`.
    fn nth(&self, needle: &str, n: usize) -> String {
        let logs = self.logs.lock().unwrap();
        logs.iter().filter(|l| l.message.contains(needle)).nth(n).map(|l| l.message.clone()).unwrap_or_default()
    }

    fn text(&self) -> String {
        self.logs.lock().unwrap().iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }
}

/// Flushes a chunk like the agent: again as long as the answer is FLB_RETRY.
fn deliver(instance: &LoadedOutput, data: &[u8], seen: &Seen) {
    loop {
        let call = instance.flush(data, "swap");
        seen.keep(&call);
        match call.value {
            FLB_OK => return,
            FLB_RETRY => continue,
            other => panic!("a chunk failed with {other}:\n{}", call.log_text()),
        }
    }
}

/// Flushes a small chunk until `needle` shows up in the logs (the watcher's lines are written
/// by the next flush), or panics after [`EVENT_TIMEOUT`].
fn wait_for(instance: &LoadedOutput, seen: &Seen, seq: &AtomicU64, needle: &str) {
    wait_until(instance, seen, seq, needle, |seen| seen.count(needle) > 0);
}

/// Flushes small chunks until `done` holds, or panics after [`EVENT_TIMEOUT`] naming `what`.
fn wait_until(instance: &LoadedOutput, seen: &Seen, seq: &AtomicU64, what: &str, done: impl Fn(&Seen) -> bool) {
    let started = Instant::now();
    while !done(seen) {
        assert!(started.elapsed() < EVENT_TIMEOUT, "timed out waiting for {what:?}; log:\n{}", seen.text());
        let n = seq.fetch_add(1, Ordering::Relaxed);
        deliver(instance, &chunk(&[&format!(r#"{{"seq":{n}}}"#)], 1, 0), seen);
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn twenty_swaps_under_concurrent_flushes_deliver_every_record_exactly_once() {
    let (dir, file) = workdir("twenty", "tally");
    let (v1, v2) = (guest_path("tally"), guest_path("tally-v2"));
    let cache = dir.join("cache");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", file.to_str().unwrap()),
            ("wasm_watch_interval", "20ms"),
            ("wasm_cache_dir", cache.to_str().unwrap()),
            ("note", "v2 needs this"),
        ],
    );
    let seen = Arc::new(Seen::default());
    let seq = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let swaps = 20;

    std::thread::scope(|scope| {
        // Stops the flushers however this scope ends, a failed assertion included.
        let _stop = StopOnDrop(&stop);
        // Three agent workers flush numbered records, ten a chunk, for as long as swaps go on.
        for _ in 0..3 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let first = seq.fetch_add(10, Ordering::Relaxed);
                    let bodies: Vec<String> = (first..first + 10).map(|n| format!(r#"{{"seq":{n}}}"#)).collect();
                    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
                    deliver(&instance, &chunk(&bodies, 1, 0), &seen);
                }
            });
        }
        for i in 0..swaps {
            let (to, name) = if i % 2 == 0 { (&v2, "tally-v2") } else { (&v1, "tally") };
            let from = if i % 2 == 0 { digest(&v1) } else { digest(&v2) };
            replace(&file, to, i % 3 == 0);
            // This replacement's own swap, the (i+1)-th: the swap line of an earlier swap
            // between the same two versions reads the same, and a replacement made before the
            // previous one was swapped in would be merged with it.
            wait_until(&instance, &seen, &seq, &format!("swap {i}"), |seen| seen.count("swapped guest") > i);
            let line = seen.nth("swapped guest", i);
            let expected = format!("sha256 {from} -> {}", digest(to));
            assert!(line.contains(&expected), "swap {i}: expected {expected:?} in:\n{line}");
            // Every swap is followed by records served by the new version.
            let served = format!("tally {name} seq=");
            let before = seen.count(&served);
            wait_until(&instance, &seen, &seq, &served, |seen| seen.count(&served) > before);
        }
    });
    let exit = instance.exit();
    seen.keep(&exit);
    plugin.close();

    let sent = seq.load(Ordering::Relaxed);
    let mut delivered: HashMap<u64, usize> = HashMap::new();
    for line in seen.logs.lock().unwrap().iter() {
        if let Some(n) = line.message.split(" seq=").nth(1) {
            *delivered.entry(n.parse().unwrap()).or_default() += 1;
        }
    }
    let lost: Vec<_> = (0..sent).filter(|n| !delivered.contains_key(n)).collect();
    let twice: Vec<_> = delivered.iter().filter(|(_, c)| **c > 1).map(|(n, _)| *n).collect();
    assert!(lost.is_empty(), "{} of {sent} records lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(10)]);
    assert!(twice.is_empty(), "{} records delivered twice, e.g. {:?}", twice.len(), &twice[..twice.len().min(10)]);
    assert_eq!(seen.count("swapped guest"), swaps, "every replacement was one swap; log:\n{}", seen.text());
    eprintln!("{sent} records delivered exactly once across {swaps} swaps");
    // Retired instances got their exit call: one per instance of every version but the last.
    assert!(seen.count("exit flushes=") > swaps, "old instances exited; log:\n{}", seen.text());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_broken_file_keeps_the_current_version_serving() {
    let (dir, file) = workdir("broken", "tally");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[("wasm_path", file.to_str().unwrap()), ("wasm_watch_interval", "20ms"), ("wasm_cache_dir", "off")],
    );
    let seen = Seen::default();
    let seq = AtomicU64::new(0);
    let v2 = std::fs::read(guest_path("tally-v2")).unwrap();
    let current = digest(&file);

    // A half-written file, a component of another world, and version 2 without its required
    // key: each is refused once, and tally (version 1) keeps serving.
    let half = dir.join("half.wasm");
    std::fs::write(&half, &v2[..v2.len() / 2]).unwrap();
    let cases = [
        (half.clone(), "failed to compile the component"),
        (guest_path("not-a-plugin"), "does not implement an out_wasm world this host supports"),
        (guest_path("tally-v2"), "required key 'note' (a key only version 2 needs) is not set"),
    ];
    let mut refused = Vec::new();
    for (bad, reason) in &cases {
        replace(&file, bad, false);
        let needle = format!("(sha256 {}), still serving sha256 {current}", digest(bad));
        wait_for(&instance, &seen, &seq, &needle);
        let errors = lines_with(&Logged { value: (), logs: seen.logs.lock().unwrap().clone() }, &needle);
        assert!(errors[0].contains(reason), "expected {reason:?} in:\n{}", errors[0]);
        let call = instance.flush(&chunk(&[r#"{"seq":999999}"#], 1, 0), "t");
        assert!(lines_with(&call, "tally tally seq=999999").len() == 1, "version 1 still serves:\n{}", call.log_text());
        refused.push(needle);
    }
    // One more bad file: its refusal proves the watcher kept checking after the last case.
    let sentinel = dir.join("sentinel.wasm");
    std::fs::write(&sentinel, b"not a component either").unwrap();
    replace(&file, &sentinel, false);
    wait_for(&instance, &seen, &seq, &format!("(sha256 {}), still serving", digest(&sentinel)));
    // Every bad file was looked at again by the checks that followed it, and refused once.
    for needle in &refused {
        assert_eq!(seen.count(needle), 1, "one error per bad file; log:\n{}", seen.text());
    }
    assert_eq!(seen.count("swapped guest"), 0, "no swap happened; log:\n{}", seen.text());
    instance.exit();
    plugin.close();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_swap_proceeds_while_a_flush_is_stuck_in_the_old_version() {
    let (dir, file) = workdir("stuck", "tally");
    let sync = SyncDir::new("swap-stuck");
    let grant = sync.grant();
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", file.to_str().unwrap()),
            ("wasm_watch_interval", "20ms"),
            ("wasm_cache_dir", "off"),
            ("gate_dir", SyncDir::GUEST),
            ("wasm_allow_dirs", &grant),
            ("wasm_flush_timeout", "10m"),
            ("note", "n"),
        ],
    );
    let seen = Seen::default();
    let seq = AtomicU64::new(100);
    std::thread::scope(|scope| {
        let _open = sync.open_gate_on_drop();
        // Held in the old version's guest at the gate until the swap is done.
        let stuck = scope.spawn(|| instance.flush(&chunk(&[r#"{"seq":1,"gate":true}"#], 1, 0), "t"));
        sync.wait_for_marks("entered", 1, "the old version's flush inside its guest");
        replace(&file, &guest_path("tally-v2"), false);
        wait_for(&instance, &seen, &seq, "swapped guest");
        let call = instance.flush(&chunk(&[r#"{"seq":2}"#], 1, 0), "t");
        assert_eq!(lines_with(&call, "tally tally-v2 seq=2").len(), 1, "the new version serves:\n{}", call.log_text());
        // Only the gate (or a fault) lets the old flush return.
        assert!(!stuck.is_finished(), "the old version's flush returned before its gate opened");
        sync.open_gate();
        let stuck = stuck.join().unwrap();
        assert_eq!(stuck.value, FLB_OK, "log:\n{}", stuck.log_text());
        assert_eq!(
            lines_with(&stuck, "tally tally seq=1").len(),
            1,
            "the old version finished its chunk:\n{}",
            stuck.log_text()
        );
    });
    // The old instance, busy during the swap, is exited once its flush returned.
    wait_until(&instance, &seen, &seq, "tally tally exit", |seen| seen.count("tally tally exit") > 0);
    instance.exit();
    plugin.close();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn compiled_components_come_from_the_cache_and_a_corrupt_entry_is_recompiled() {
    let (dir, file) = workdir("cache", "tally");
    // A component of its own: the other tests of this binary run `tally` meanwhile, and a start
    // would take their compiled component ("shared with another output") instead of the cache.
    // A custom section (skipped by every reader) makes the digest this test's.
    let mut bytes = std::fs::read(&file).unwrap();
    let (name, payload) = (b"swap-cache-test", b"1");
    bytes.extend_from_slice(&[0, (1 + name.len() + payload.len()) as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    std::fs::write(&file, bytes).unwrap();
    let cache = dir.join("cache");
    let pairs =
        [("wasm_path", file.to_str().unwrap()), ("wasm_cache_dir", cache.to_str().unwrap()), ("wasm_watch", "off")];
    let start = |expected: &str| {
        let mut plugin = open_plugin();
        let call = plugin.init(out_wasm_e2e::props(&pairs));
        assert!(
            lines_with(&call, "initialized, ").iter().any(|l| l.contains(expected)),
            "expected the guest to be {expected}; log:\n{}",
            call.log_text()
        );
        call.value.expect("init succeeds").exit();
        plugin.close();
    };
    start("compiled in");
    start("loaded from the compile cache in");
    // Damage every entry: the next start compiles again instead of failing (or crashing).
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    start("compiled in");
    start("loaded from the compile cache in");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn with_watching_off_a_new_file_is_not_swapped_in() {
    let (dir, file) = workdir("off", "tally");
    let (witness_dir, witness_file) = workdir("off-witness", "tally");
    let (v1, v2) = (guest_path("tally"), guest_path("tally-v2"));
    let mut plugin = open_plugin();
    fn pairs<'a>(path: &'a Path, watch: &'a str) -> [(&'a str, &'a str); 5] {
        [
            ("wasm_path", path.to_str().unwrap()),
            ("wasm_watch", watch),
            ("wasm_watch_interval", "20ms"),
            ("wasm_cache_dir", "off"),
            ("note", "n"),
        ]
    }
    let instance = init_ok(&mut plugin, &pairs(&file, "off"));
    // A watching instance with the same interval is the witness: the unwatched file changes
    // when the witness's does, and stays unswapped while the witness swaps twice.
    let witness = init_ok(&mut plugin, &pairs(&witness_file, "on"));
    let seen = Seen::default();
    let seq = AtomicU64::new(0);
    replace(&file, &v2, false);
    replace(&witness_file, &v2, false);
    wait_until(&witness, &seen, &seq, "the witness's first swap", |seen| seen.count("swapped guest") == 1);
    replace(&witness_file, &v1, false);
    wait_until(&witness, &seen, &seq, "the witness's second swap", |seen| seen.count("swapped guest") == 2);
    let call = instance.flush(&chunk(&[r#"{"seq":1}"#], 1, 0), "t");
    assert_eq!(lines_with(&call, "tally tally seq=1").len(), 1, "version 1 still serves:\n{}", call.log_text());
    assert!(lines_with(&call, "swapped").is_empty(), "{}", call.log_text());
    instance.exit();
    witness.exit();
    plugin.close();
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(witness_dir);
}
