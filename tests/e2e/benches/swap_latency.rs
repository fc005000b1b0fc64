//! Hot-swap latency of a Rust guest: from the moment the guest file is replaced (by rename) to
//! the first flush served by the new version, with and without the compile cache.
//!
//! `cargo bench -p out-wasm-e2e --bench swap_latency`. The watcher checks every
//! `INTERVAL` and waits for the file to stay unchanged for one interval before reading it, so
//! one to two intervals of the latency are that wait; the rest is load (compile or cache),
//! instantiation, config and `init` of the new version.

use std::path::Path;
use std::time::{Duration, Instant};

use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, open_plugin};

const INTERVAL: &str = "50ms";
const SWAPS: usize = 10;

fn replace(file: &Path, with: &Path) {
    let tmp = file.with_extension("tmp");
    std::fs::copy(with, &tmp).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Milliseconds the watcher reports for loading + init, from "... in N ms (...)".
fn reported_ms(line: &str) -> Option<f64> {
    line.split(" in ").nth(1)?.split(" ms").next()?.trim().parse().ok()
}

fn run(label: &str, cache: Option<&Path>) {
    let dir = std::env::temp_dir().join(format!("out-wasm-bench-swap-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("guest.wasm");
    let versions = [(guest_path("tally"), "tally"), (guest_path("tally-v2"), "tally-v2")];
    std::fs::copy(&versions[0].0, &file).unwrap();
    let cache_value = cache.map_or_else(|| "off".to_owned(), |c| c.display().to_string());
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", file.to_str().unwrap()),
            ("wasm_watch_interval", INTERVAL),
            ("wasm_cache_dir", &cache_value),
            ("note", "bench"),
            ("log_level", "info"),
        ],
    );
    let data = chunk(&[r#"{"seq":1}"#], 1, 0);
    let mut total = Vec::new();
    let mut load = Vec::new();
    for i in 0..SWAPS {
        let (path, name) = &versions[(i + 1) % 2];
        let served = format!("tally {name} seq=1");
        replace(&file, path);
        let changed = Instant::now();
        loop {
            let call = instance.flush(&data, "bench");
            if let Some(ms) = lines_with(&call, "swapped guest").first().and_then(|l| reported_ms(l)) {
                load.push(ms);
            }
            if !lines_with(&call, &served).is_empty() {
                total.push(changed.elapsed().as_secs_f64() * 1e3);
                break;
            }
            assert!(changed.elapsed() < Duration::from_secs(30), "swap {i} never happened");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    instance.exit();
    plugin.close();
    let _ = std::fs::remove_dir_all(&dir);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{label:>9}: file change -> first flush on the new version: median {:.1} ms (min {:.1}, max {:.1}); \
         of which load+init (as logged): median {:.1} ms; {SWAPS} swaps, watch interval {INTERVAL}",
        median(&mut total),
        total[0],
        total[total.len() - 1],
        median(&mut load),
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let cache = std::env::temp_dir().join(format!("out-wasm-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    run("uncached", None);
    // The first round fills the cache with both versions; the second only reads it.
    run("warm-up", Some(&cache));
    run("cached", Some(&cache));
    let _ = std::fs::remove_dir_all(&cache);
}
