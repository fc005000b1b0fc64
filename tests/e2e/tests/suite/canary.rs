//! Canary rollouts (`wasm_canary`) through the real boundary: a new version that answers error
//! on some records is rolled back within its window and refused until the file changes again,
//! a good one is promoted, and every record is accounted for (delivered by the serving version,
//! delivered or refused by the canary), never twice. With `FLUENT_BIT` set, the same in the
//! real agent, with its metrics endpoint.
//!
//! The versions are `tally` and `tally-v2`: records carrying `"fail": "tally-v2"` make
//! `tally-v2` answer error for their chunk (logging `tally tally-v2 refused seq=N`), and
//! `tally` deliver them (see `tests/guests/tally`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use out_wasm_e2e::sync::EVENT_TIMEOUT;
use out_wasm_e2e::{KillOnDrop, chunk, guest_path, init_ok, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, LoadedOutput};
use sha2::Digest;

fn workdir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("out-wasm-canary-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `guest`'s component with a custom section named `mark` appended: a component of another
/// digest that behaves the same (every reader skips custom sections).
fn marked(guest: &str, mark: &str, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(guest_path(guest)).unwrap();
    let payload = b"1";
    bytes.extend_from_slice(&[0, (1 + mark.len() + payload.len()) as u8, mark.len() as u8]);
    bytes.extend_from_slice(mark.as_bytes());
    bytes.extend_from_slice(payload);
    let path = dir.join(format!("{guest}-{mark}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Write-then-rename, as deployment tools replace a file.
fn replace(file: &Path, with: &Path) {
    let tmp = file.with_extension("tmp");
    std::fs::copy(with, &tmp).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn short(path: &Path) -> String {
    let hash = sha2::Sha256::digest(std::fs::read(path).unwrap());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Record bodies `first..first + n`; every fifth carries `"fail": "tally-v2"`.
fn bodies(first: u64, n: u64) -> Vec<String> {
    (first..first + n)
        .map(
            |seq| {
                if seq % 5 == 0 {
                    format!(r#"{{"seq":{seq},"fail":"tally-v2"}}"#)
                } else {
                    format!(r#"{{"seq":{seq}}}"#)
                }
            },
        )
        .collect()
}

/// How each sequence number ended, from the guests' lines: delivered (`tally <v> seq=N`) or
/// refused (`tally <v> refused seq=N`), and how many times.
fn accounting<'a>(lines: impl Iterator<Item = &'a str>) -> HashMap<u64, (usize, usize)> {
    let mut seen: HashMap<u64, (usize, usize)> = HashMap::new();
    for line in lines {
        let Some(rest) = line.split(" seq=").nth(1) else { continue };
        let Some(seq) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) else { continue };
        let entry = seen.entry(seq).or_default();
        if line.contains(" refused seq=") {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
    seen
}

/// Checks every record `0..sent` ended exactly once; `(delivered, refused)`.
fn every_record_once(seen: &HashMap<u64, (usize, usize)>, sent: u64, log: &str) -> (usize, usize) {
    let lost: Vec<u64> = (0..sent).filter(|n| !seen.contains_key(n)).collect();
    let twice: Vec<u64> = seen.iter().filter(|(_, (d, r))| d + r > 1).map(|(n, _)| *n).collect();
    assert!(
        lost.is_empty(),
        "{} of {sent} records unaccounted for, e.g. {:?}; log:\n{log}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        twice.is_empty(),
        "{} records ended twice, e.g. {:?}; log:\n{log}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    let delivered = seen.values().filter(|(d, _)| *d == 1).count();
    (delivered, sent as usize - delivered)
}

/// The loader's agent: flushes chunks of five numbered records and keeps every line.
struct Flusher<'a> {
    instance: &'a LoadedOutput,
    lines: Vec<String>,
    sent: u64,
}

impl Flusher<'_> {
    /// One chunk, retried as the agent does on FLB_RETRY; FLB_ERROR drops it, as the agent does.
    fn flush(&mut self) {
        let bodies = bodies(self.sent, 5);
        self.sent += 5;
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let data = chunk(&bodies, 1, 0);
        loop {
            let call = self.instance.flush(&data, "app");
            self.lines.extend(call.logs.iter().map(|l| l.message.clone()));
            match call.value {
                FLB_OK | FLB_ERROR => return,
                FLB_RETRY => continue,
                other => panic!("unexpected answer {other}"),
            }
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.lines.iter().filter(|l| l.contains(needle)).count()
    }

    /// Flushes until `needle` has been logged `n` times (the watcher's lines are written by the
    /// next flush), or panics after [`EVENT_TIMEOUT`].
    fn until(&mut self, needle: &str, n: usize) {
        let started = Instant::now();
        while self.count(needle) < n {
            assert!(
                started.elapsed() < EVENT_TIMEOUT,
                "timed out waiting for {needle:?}; log:\n{}",
                self.lines.join("\n")
            );
            self.flush();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn line(&self, needle: &str, n: usize) -> String {
        self.lines.iter().filter(|l| l.contains(needle)).nth(n).cloned().unwrap_or_default()
    }
}

#[test]
fn a_failing_canary_is_rolled_back_and_refused_and_a_good_one_promoted_with_every_record_once() {
    let dir = workdir("loader");
    let file = dir.join("guest.wasm");
    std::fs::copy(guest_path("tally"), &file).unwrap();
    let fixed = marked("tally", "fixed", &dir);
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", file.to_str().unwrap()),
            ("wasm_watch_interval", "20ms"),
            ("wasm_cache_dir", dir.join("cache").to_str().unwrap()),
            ("wasm_canary", "25%"),
            ("wasm_canary_window", "8 flushes"),
            ("note", "v2 needs this"),
        ],
    );
    let mut flusher = Flusher { instance: &instance, lines: Vec::new(), sent: 0 };
    let (v1, v2) = (short(&guest_path("tally")), short(&guest_path("tally-v2")));

    // The bad version: every chunk has a record it refuses.
    replace(&file, &guest_path("tally-v2"));
    flusher.until("canary started for guest", 1);
    let started = flusher.line("canary started for guest", 0);
    assert!(started.contains(&format!("sha256 {v2} beside sha256 {v1} on 25% of the flushes")), "{started}");
    flusher.until("rolled back canary guest", 1);
    let rollback = flusher.line("rolled back canary guest", 0);
    assert!(rollback.contains(&format!("(sha256 {v2}), still serving sha256 {v1}: failed ")), "{rollback}");
    assert!(rollback.contains("canary: ") && rollback.contains("serving: "), "{rollback}");
    // Rolled back early: within the window's 8 flushes of the canary.
    let refused = flusher.count("tally tally-v2 refused seq=");
    assert!((2 * 5..=8 * 5).contains(&refused), "{refused} records refused by the canary; {rollback}");

    // The same content again (a touch, a re-deploy of the same build) is not tried again.
    let touched = std::fs::read(&file).unwrap();
    std::fs::write(&file, touched).unwrap();
    flusher.until("changed but its content did not", 1);
    assert!(flusher.line("changed but its content did not", 0).contains(&format!("sha256 {v2}, refused before")));

    // A fix (another content) is tried, no worse, and promoted at its window's end.
    replace(&file, &fixed);
    flusher.until("canary started for guest", 2);
    flusher.until("promoted canary guest", 1);
    let promoted = flusher.line("promoted canary guest", 0);
    assert!(promoted.contains(&format!("sha256 {v1} -> {}", short(&fixed))), "{promoted}");
    assert_eq!(
        flusher.count("canary started for guest"),
        2,
        "one canary per new content; log:\n{}",
        flusher.lines.join("\n")
    );
    for _ in 0..5 {
        flusher.flush();
    }
    let refused_lines = flusher.count("tally tally-v2 refused seq=");
    let Flusher { mut lines, sent, .. } = flusher;
    let exit = instance.exit();
    lines.extend(exit.logs.iter().map(|l| l.message.clone()));
    plugin.close();

    let seen = accounting(lines.iter().map(String::as_str));
    let (delivered, refused) = every_record_once(&seen, sent, &lines.join("\n"));
    assert_eq!(refused, refused_lines);
    eprintln!(
        "{sent} records: {delivered} delivered, {refused} refused by the rolled-back canary; {rollback}\n{promoted}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

use super::metrics_agent::{free_port, get, sample};

#[test]
fn real_agent_rolls_back_a_failing_canary_and_promotes_a_good_one_with_every_record_once() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP real_agent_rolls_back_a_failing_canary_and_promotes_a_good_one_with_every_record_once: FLUENT_BIT \
             is not set (the path of a fluent-bit binary); this test needs the real agent"
        );
        return;
    };
    let dir = workdir("agent");
    let file = dir.join("guest.wasm");
    std::fs::copy(guest_path("tally"), &file).unwrap();
    let fixed = marked("tally", "fixed", &dir);
    let port = free_port();
    let config = dir.join("fluent-bit.conf");
    std::fs::write(
        &config,
        format!(
            "[SERVICE]\n    Flush 0.2\n    Log_Level info\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    \
             HTTP_Port {port}\n\n[INPUT]\n    Name stdin\n    Tag app\n\n[OUTPUT]\n    Name wasm\n    Alias canary\n    \
             Match *\n    wasm_path {}\n    wasm_watch_interval 100ms\n    wasm_cache_dir {}\n    wasm_canary 50%\n    \
             wasm_canary_window 6 flushes 1s\n    note v2 needs this\n",
            file.display(),
            dir.join("cache").display()
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(&agent)
            .args(["-e".as_ref(), out_wasm_e2e::plugin_path().as_os_str(), "-c".as_ref(), config.as_os_str()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent starts"),
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stderr = child.0.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let count = |needle: &str| lines.lock().unwrap().iter().filter(|l| l.contains(needle)).count();
    let text = || lines.lock().unwrap().join("\n");
    let mut stdin = child.0.stdin.take().unwrap();
    let mut sent = 0u64;
    // Records keep coming, 10 every 50 ms (a chunk of one or more every flush), until `done`.
    let mut send_until = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < EVENT_TIMEOUT, "timed out waiting for {what}; agent log:\n{}", text());
            for body in bodies(sent, 10) {
                writeln!(stdin, "{body}").unwrap();
            }
            sent += 10;
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    send_until("records from version 1", &|| count("tally tally seq=") > 0);
    let (v1, v2) = (short(&guest_path("tally")), short(&guest_path("tally-v2")));
    replace(&file, &guest_path("tally-v2"));
    send_until("the canary", &|| count("canary started for guest") > 0);
    let rollout = Instant::now();
    send_until("the rollback", &|| count("rolled back canary guest") > 0);
    let rolled_back_in = rollout.elapsed();
    replace(&file, &fixed);
    send_until("the promotion", &|| count("promoted canary guest") > 0);
    let total = sent;
    let all_seen = || accounting(lines.lock().unwrap().iter().map(String::as_str)).len() as u64 >= total;
    let started = Instant::now();
    while !all_seen() {
        assert!(started.elapsed() < EVENT_TIMEOUT, "not every record came out; agent log:\n{}", text());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The agent's endpoint serves what its collector last gathered: scraped again until the
    // promotion (the last event) shows.
    let promoted_series = r#"fluentbit_wasm_canary_rollouts_total{name="canary",outcome="promoted"}"#;
    let started = Instant::now();
    let scrape = loop {
        let scrape = get(port, "/api/v2/metrics/prometheus").unwrap_or_default();
        if sample(&scrape, promoted_series) == Some(1.0) || started.elapsed() > EVENT_TIMEOUT {
            break scrape;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Only now: the stdin input's end of file stops the agent.
    drop(stdin);
    drop(child);
    reader.join().unwrap();
    let log = text();
    let seen = accounting(log.lines());
    let (delivered, refused) = every_record_once(&seen, total, &log);
    let rollback = log.lines().find(|l| l.contains("rolled back canary guest")).unwrap().to_owned();
    let promoted = log.lines().find(|l| l.contains("promoted canary guest")).unwrap().to_owned();
    assert!(rollback.contains(&format!("(sha256 {v2}), still serving sha256 {v1}")), "{rollback}");
    assert!(promoted.contains(&format!("sha256 {v1} -> {}", short(&fixed))), "{promoted}");
    assert!(refused > 0, "the canary refused some records; log:\n{log}");
    let metric = |series: &str| sample(&scrape, series);
    assert_eq!(
        metric(r#"fluentbit_wasm_canary_rollouts_total{name="canary",outcome="started"}"#),
        Some(2.0),
        "{scrape}"
    );
    assert_eq!(metric(r#"fluentbit_wasm_canary_rollouts_total{name="canary",outcome="rolled_back"}"#), Some(1.0));
    assert_eq!(metric(r#"fluentbit_wasm_canary_rollouts_total{name="canary",outcome="promoted"}"#), Some(1.0));
    assert_eq!(metric(r#"fluentbit_wasm_canary_active{name="canary"}"#), Some(0.0));
    let canary_errors = metric(r#"fluentbit_wasm_canary_flushes_total{name="canary",result="error"}"#).unwrap_or(0.0);
    assert!(canary_errors >= 2.0, "{scrape}");
    eprintln!("{total} records in: {delivered} delivered, {refused} refused by the canary, each once");
    eprintln!("canary start -> rollback: {} ms", rolled_back_in.as_millis());
    eprintln!("{rollback}\n{promoted}");
    for line in scrape.lines().filter(|l| l.contains("canary")) {
        eprintln!("{line}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
