//! The plugin's memory, measured on this process's RSS through the loader (the tests of this
//! binary take turns, so nothing else allocates meanwhile):
//! - memory shared between the outputs of one guest: the second `[OUTPUT]` of the same
//!   component takes the compiled component the first loaded (one per digest in the process)
//!   and costs a fraction of the first. Measured on the Python `stdout` example, the largest
//!   guest. The bound is well above what it costs (about 8 MiB in the real agent, see
//!   docs/guests.md) and well below what an output that shares nothing costs (65 MiB before the
//!   sharing), so it holds the sharing in place without depending on the allocator's mood;
//! - large chunks leave nothing behind: instance after instance meeting a 12 MB record (one
//!   the guest traps on, as scripts/soak's poison) keeps the process at the size the first
//!   instance made it. Before the plugin mapped its large blocks itself (host/src/allocator.rs),
//!   each further round grew the process by 12 MiB, retained by glibc's arenas.

use out_wasm_e2e::{chunk, language_guest, lines_with, open_plugin, scratch_dir};
use out_wasm_loader::FLB_OK;

use std::sync::{Mutex, PoisonError};

use out_wasm_e2e::guest_path;

const SECOND_OUTPUT_BOUND_MIB: f64 = 32.0;
/// What later rounds of large chunks may add to the first round's peak.
const LARGE_CHUNK_ROUNDS_BOUND_MIB: f64 = 6.0;

/// The tests measure the whole process: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb / 1024.0
}

#[test]
fn a_second_output_of_one_guest_shares_its_compiled_component() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let guest = language_guest("python", "stdout");
    let cache = scratch_dir("memory-cache");
    let mut plugin = open_plugin();
    let pairs = [
        ("wasm_path", guest.to_str().unwrap()),
        ("wasm_cache_dir", cache.to_str().unwrap()),
        ("wasm_event_format", "json_lines"),
        ("wasm_stdout", "off"),
    ];
    let data = chunk(&[r#"{"n":1}"#, r#"{"n":2}"#], 1, 0);

    let first = plugin.init(out_wasm_e2e::props(&pairs));
    let text = first.log_text();
    let first = first.value.unwrap_or_else(|code| panic!("init failed with {code}:\n{text}"));
    assert!(text.contains("compiled in") || text.contains("loaded from the compile cache"), "{text}");
    let call = first.flush(&data, "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    let before = rss_mib();

    let call = plugin.init(out_wasm_e2e::props(&pairs));
    let text = call.log_text();
    let second = call.value.unwrap_or_else(|code| panic!("init failed with {code}:\n{text}"));
    assert!(text.contains("shared with another output"), "the second output takes the first's component:\n{text}");
    let call = second.flush(&data, "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    assert!(lines_with(&call, "faulted").is_empty(), "{}", call.log_text());
    let grown = rss_mib() - before;
    eprintln!("the second output of the Python stdout example: {grown:+.1} MiB");
    assert!(
        grown < SECOND_OUTPUT_BOUND_MIB,
        "the second output cost {grown:.1} MiB, more than {SECOND_OUTPUT_BOUND_MIB} MiB: is the compiled component shared?"
    );

    second.exit();
    first.exit();
    plugin.close();
}

#[test]
fn large_chunks_leave_no_memory_behind() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let guest = guest_path("http");
    let mut plugin = open_plugin();
    // The endpoint refuses connections: small chunks are retried, which is all they need to do.
    let pairs = [
        ("wasm_path", guest.to_str().unwrap()),
        ("wasm_memory_limit", "24M"),
        ("wasm_on_trap", "error"),
        ("wasm_watch", "off"),
        ("url", "http://127.0.0.1:1/x"),
        ("wasm_allow_net", "127.0.0.1:1"),
    ];
    let big = format!(r#"{{"log":"poison {}"}}"#, "p".repeat(12 << 20));
    let poison = chunk(&[&big], 1, 0);
    let small = chunk(&[r#"{"log":"seq=1"}"#], 1, 0);
    let mut peaks = Vec::new();
    for _round in 0..4 {
        let instance = out_wasm_e2e::init_ok(&mut plugin, &pairs);
        let mut peak: f64 = 0.0;
        for _ in 0..3 {
            let call = instance.flush(&poison, "poison");
            assert_eq!(lines_with(&call, "guest exceeded its memory limit").len(), lines_with(&call, "faulted").len());
            instance.flush(&small, "records");
            peak = peak.max(rss_mib());
        }
        instance.exit();
        peaks.push(peak);
    }
    eprintln!("peak RSS per round of large chunks: {peaks:.1?} MiB");
    let grown = peaks[1..].iter().copied().fold(f64::MIN, f64::max) - peaks[0];
    assert!(
        grown < LARGE_CHUNK_ROUNDS_BOUND_MIB,
        "later rounds of large chunks grew the process by {grown:.1} MiB over the first ({peaks:.1?}): \
         is the memory of large blocks retained?"
    );
    plugin.close();
}
