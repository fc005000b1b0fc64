//! `out-wasm bench`: a guest's throughput through the real plugin (`out_wasm.so`, driven by the
//! loader's re-implementation of the agent's proxy side), on a generated corpus of log
//! records, once per event format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use out_wasm_loader::chunks::{self, Layout, Time, TimeEncoding};
use out_wasm_loader::{FLB_OK, Plugin, Properties, status_name};
use serde_json::{Value as Json, json};

use crate::progress;

const TAG: &str = "bench";

/// Flushes `records` generated records in chunks of `per_chunk` through `guest`, in msgpack and
/// in json_lines, and prints records/s for each.
pub fn bench(
    guest: &Path,
    records: usize,
    per_chunk: usize,
    plugin: Option<PathBuf>,
    config: &[(String, String)],
) -> Result<ExitCode> {
    let plugin_path = match plugin {
        Some(path) => path,
        None => {
            std::env::current_exe().context("failed to find this command's directory")?.with_file_name("out_wasm.so")
        }
    };
    let bodies = corpus(records);
    let chunks = chunks::chunks(&bodies, per_chunk, Time::now(), Layout::WithMetadata, TimeEncoding::EventTime)?;
    let bytes: usize = chunks.iter().map(Vec::len).sum();
    println!(
        "corpus: {records} records ({} chunks of up to {per_chunk}, {:.1} MB of msgpack); guest {}",
        chunks.len(),
        bytes as f64 / 1e6,
        guest.display()
    );
    let mut plugin = Plugin::open(&plugin_path).with_context(|| format!("failed to load {}", plugin_path.display()))?;
    for format in ["msgpack", "json_lines"] {
        let mut properties: Vec<(String, String)> = vec![
            ("wasm_path".into(), guest.display().to_string()),
            ("wasm_event_format".into(), format.into()),
            ("wasm_watch".into(), "off".into()),
            // What a guest prints would swamp the terminal and time the terminal, not the guest.
            ("wasm_stdout".into(), "off".into()),
        ];
        properties.extend(config.iter().cloned());
        let init = progress::step(&format!("starting the guest ({format})"), || {
            plugin.init(Properties::new(properties.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        });
        // A guest may serve one format only (a msgpack decoder, say): that format is skipped.
        let instance = match init.value {
            Ok(instance) => instance,
            Err(code) => {
                let why = init.log_text();
                println!("{format:<10}  skipped: init failed (FLBPluginInit returned {code}): {}", why.trim());
                continue;
            }
        };
        // One chunk first: the instance and its warm spare are started before the clock runs.
        let warm = instance.flush(&chunks[0], TAG);
        if warm.value != FLB_OK {
            let why = warm.log_text();
            println!("{format:<10}  skipped: the first flush ended with {}: {}", status_name(warm.value), why.trim());
            instance.exit();
            continue;
        }
        let started = Instant::now();
        let mut failed = 0;
        progress::step(&format!("flushing {records} records ({format})"), || {
            for chunk in &chunks {
                let flush = instance.flush(chunk, TAG);
                if flush.value != FLB_OK {
                    failed += 1;
                    eprintln!("{format}: a flush ended with {}: {}", status_name(flush.value), flush.log_text());
                }
            }
        });
        let elapsed = started.elapsed().as_secs_f64();
        instance.exit();
        println!(
            "{format:<10}  {:>10.0} records/s  {:>7.1} MB/s  ({records} records in {elapsed:.3} s{})",
            records as f64 / elapsed,
            bytes as f64 / elapsed / 1e6,
            if failed > 0 { format!(", {failed} chunks failed") } else { String::new() }
        );
    }
    plugin.close();
    Ok(ExitCode::SUCCESS)
}

/// Log records shaped like an application's: a message, a level, a few numbers, a nested map.
/// Deterministic, so runs compare.
fn corpus(records: usize) -> Vec<Json> {
    const LEVELS: [&str; 4] = ["info", "debug", "warn", "error"];
    const PATHS: [&str; 4] = ["/api/v1/orders", "/healthz", "/api/v1/users/42", "/static/app.js"];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..records)
        .map(|i| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let r = (state >> 33) as usize;
            let status = [200, 200, 404, 500][(r >> 3) % 4];
            json!({
                "log": format!("request {i} served {} in {} ms", PATHS[r % 4], r % 500),
                "level": LEVELS[r % 4],
                "status": status,
                "latency_ms": (r % 100_000) as f64 / 100.0,
                "kubernetes": {"pod": format!("web-{}", r % 7), "namespace": "shop", "labels": {"app": "web"}},
            })
        })
        .collect()
}
