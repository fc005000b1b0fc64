//! An agent that predates FlushCtx/ExitCtx calls the context-less symbols. Alone in its own
//! process: the legacy symbols act on the process's live instances.

use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, plugin_path};
use out_wasm_loader::{FLB_ERROR, FLB_OK, Plugin};

#[test]
fn legacy_symbols_serve_a_single_instance_and_refuse_to_guess_between_two() {
    let probe = guest_path("probe");
    let pairs = |label| [("wasm_path", probe.to_str().unwrap()), ("label", label)];
    let mut plugin = Plugin::open_legacy(plugin_path()).expect("registers");
    let data = chunk(&[r#"{"n":1}"#], 1, 0);

    let first = init_ok(&mut plugin, &pairs("first"));
    let call = first.flush(&data, "t");
    assert_eq!(call.value, FLB_OK, "one live instance: the chunk is its, log:\n{}", call.log_text());
    assert_eq!(lines_with(&call, "probe event #1").len(), 1, "{}", call.log_text());

    let second = init_ok(&mut plugin, &pairs("second"));
    let call = second.flush(&data, "t");
    assert_eq!(call.value, FLB_ERROR, "two live instances: no guessing which one the chunk is for");
    assert!(lines_with(&call, "probe event").is_empty(), "no guest saw the chunk:\n{}", call.log_text());

    // Legacy exit stops the oldest instance first, the order the agent exits them in.
    let exit = first.exit();
    assert_eq!(exit.value, FLB_OK);
    assert!(lines_with(&exit, "[output:wasm:wasm.0] probe exit flushes=1").len() == 1, "{}", exit.log_text());
    let call = second.flush(&data, "t");
    assert_eq!(call.value, FLB_OK, "one instance left: it takes the chunk, log:\n{}", call.log_text());
    let exit = second.exit();
    assert!(lines_with(&exit, "[output:wasm:wasm.1] probe exit flushes=1").len() == 1, "{}", exit.log_text());
    plugin.close();
}
