//! OTLP/JSON rendering speed on the real chunks of `tests/data`: input MB/s and chunks/s per
//! chunk. `cargo bench -p out-wasm-format --bench otlp` (`OUT_WASM_BENCH_SECS`, default 1, per
//! chunk).

use std::time::{Duration, Instant};

fn main() {
    let secs: f64 = std::env::var("OUT_WASM_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "msgpack"))
        .collect();
    files.sort();
    println!("{:<32} {:>8} {:>9} {:>12} {:>10}", "chunk", "bytes", "json", "chunks/s", "MB/s in");
    for path in files {
        let chunk = std::fs::read(&path).unwrap();
        let kind = out_wasm_format::event_type(&chunk);
        let mut out = Vec::new();
        let (mut rounds, start) = (0u64, Instant::now());
        while start.elapsed() < Duration::from_secs_f64(secs) {
            out.clear();
            out_wasm_format::otlp::render(kind, std::hint::black_box(&chunk), &mut out).unwrap();
            rounds += 1;
        }
        let per_sec = rounds as f64 / start.elapsed().as_secs_f64();
        println!(
            "{:<32} {:>8} {:>9} {:>12.0} {:>10.1}",
            path.file_name().unwrap().to_string_lossy(),
            chunk.len(),
            out.len(),
            per_sec,
            per_sec * chunk.len() as f64 / 1e6
        );
    }
}
