//! How long an instance of each language's `stdout` example takes to start when its code is not
//! compiled: from the compile cache in a fresh process (an agent starting or restarting on a node
//! whose cache is warm), and as a further output of a component the process has loaded already
//! (another `[OUTPUT]` of the same guest; a new instance after a fault or a recycle costs the
//! same instantiation and guest `init`, without the output's own setup).
//!
//! `cargo bench -p out-wasm-e2e --bench starts` (`OUT_WASM_LANGS=python,js` picks languages).
//! Each figure is the median of `STARTS` Inits, the agent-side wall time. The first-start
//! figure is measured in a fresh process each time (this bench runs itself again), since a
//! process keeps the components it has loaded.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use out_wasm_e2e::{LANGUAGES, language_guest, open_plugin, props, scratch_dir};
use out_wasm_loader::{LoadedOutput, Plugin};

const STARTS: usize = 5;
/// Set in the child run: the guest to start once from the cache; the child prints the ms.
const CHILD: &str = "OUT_WASM_STARTS_CHILD";

fn main() {
    let cache = scratch_dir("starts-cache");
    if let Ok(guest) = std::env::var(CHILD) {
        let mut plugin = open_plugin();
        let (ms, instance) = init_ms(&mut plugin, Path::new(&guest), &cache);
        println!("{ms:.2}");
        instance.exit();
        plugin.close();
        return;
    }
    let chosen = std::env::var("OUT_WASM_LANGS").ok();
    println!("median of {STARTS} Inits of the `stdout` example, milliseconds");
    println!("{:<7} {:>26} {:>22}", "lang", "first, from the cache", "further output");
    for &lang in LANGUAGES {
        if chosen.as_deref().is_some_and(|list| !list.split(',').any(|l| l.trim() == lang)) {
            continue;
        }
        let guest = language_guest(lang, "stdout");
        // Fills the cache (a compile) and measures further outputs in this process.
        let mut plugin = open_plugin();
        let mut running = vec![init_ms(&mut plugin, &guest, &cache).1];
        let mut further = Vec::new();
        for _ in 0..STARTS {
            let (ms, instance) = init_ms(&mut plugin, &guest, &cache);
            further.push(ms);
            running.push(instance);
        }
        let further = median(further);
        for instance in running {
            instance.exit();
        }
        plugin.close();
        let first = median((0..STARTS).map(|_| first_start_ms(&guest)).collect());
        println!("{lang:<7} {first:>26.1} {further:>22.1}");
    }
}

/// Init of one more output of `guest`, and the instance (kept running, the component stays loaded).
fn init_ms(plugin: &mut Plugin, guest: &Path, cache: &Path) -> (f64, LoadedOutput) {
    let started = Instant::now();
    let call = plugin.init(props(&[
        ("wasm_path", guest.to_str().unwrap()),
        ("wasm_cache_dir", cache.to_str().unwrap()),
        ("wasm_watch", "off"),
        ("wasm_stdout", "off"),
    ]));
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let text = call.log_text();
    (ms, call.value.unwrap_or_else(|code| panic!("expected init to succeed, got {code}; log:\n{text}")))
}

/// Init in a fresh process, from the cache `main` filled.
fn first_start_ms(guest: &Path) -> f64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, guest)
        .output()
        .expect("failed to run the bench again");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.trim().lines().last().and_then(|l| l.parse().ok()).unwrap_or_else(|| panic!("child printed {text}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
