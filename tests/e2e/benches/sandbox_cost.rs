//! What the sandbox's deadlines cost: throughput of the `stdout` guest (rendering JSON lines;
//! `wasm_stdout off`, so no terminal is measured) and of the `counter` guest (decoding only),
//! with `wasm_deadlines on` (the default: epoch checks in the compiled code, async calls) and
//! `off`. The memory cap is always on; it costs nothing until memory grows.
//!
//! `cargo bench -p out-wasm-e2e --bench sandbox_cost`

use std::time::Instant;

use out_wasm_e2e::{chunk, guest_path, init_ok, open_plugin};
use out_wasm_loader::FLB_OK;

const RECORDS_PER_CHUNK: usize = 256;
const CHUNKS: usize = 400;
const ROUNDS: usize = 3;

fn main() {
    let body = r#"{"level":"info","msg":"request handled 12345","http":{"method":"GET","path":"/api/v1/items/12345","status":200,"latency_ms":42.125},"user":{"id":977,"name":"user977"},"tags":["a","b"]}"#;
    let bodies = vec![body; RECORDS_PER_CHUNK];
    let data = chunk(&bodies, 1_700_000_000, 123_456_789);
    let tag = c"bench";
    for guest in ["stdout", "counter"] {
        let path = guest_path(guest);
        for deadlines in ["on", "off"] {
            let mut plugin = open_plugin();
            let instance = init_ok(
                &mut plugin,
                &[
                    ("wasm_path", path.to_str().unwrap()),
                    ("wasm_deadlines", deadlines),
                    ("wasm_stdout", "off"),
                    ("wasm_watch", "off"),
                    ("label", "bench"),
                    ("every", "0"),
                ],
            );
            let mut best = f64::INFINITY;
            for _ in 0..ROUNDS {
                let started = Instant::now();
                for _ in 0..CHUNKS {
                    assert_eq!(instance.flush_here(&data, tag).value, FLB_OK);
                }
                best = best.min(started.elapsed().as_secs_f64());
            }
            let records = (RECORDS_PER_CHUNK * CHUNKS) as f64;
            println!(
                "{guest:>8} guest, wasm_deadlines {deadlines:>3}: {:>9.0} records/s, {:>6.1} MB/s of chunks ({} B/record, best of {ROUNDS} x {CHUNKS} chunks of {RECORDS_PER_CHUNK})",
                records / best,
                (data.len() * CHUNKS) as f64 / best / 1e6,
                data.len() / RECORDS_PER_CHUNK,
            );
            instance.exit();
            plugin.close();
        }
    }
}
