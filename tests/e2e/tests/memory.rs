//! Memory shared between the outputs of one guest: the second `[OUTPUT]` of the same component
//! takes the compiled component the first loaded (one per digest in the process) and costs a
//! fraction of the first. Measured on the Python `stdout` example, the largest guest, through
//! the loader in this process (the only test of this binary, so nothing else allocates
//! meanwhile). The bound is well above what it costs (about 8 MiB in the real agent, see
//! docs/guests.md) and well below what an output that shares nothing costs (65 MiB before the
//! sharing), so it holds the sharing in place without depending on the allocator's mood.

use out_wasm_e2e::{chunk, language_guest, lines_with, open_plugin, scratch_dir};
use out_wasm_loader::FLB_OK;

const SECOND_OUTPUT_BOUND_MIB: f64 = 32.0;

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
