//! An agent that exports neither `flb_output_name` nor cmetrics (older builds; the loader
//! without its agent-symbols library, as in this test process): the plugin names instances
//! itself, runs without metrics, and says so once.

use out_wasm_e2e::{chunk, guest_path, lines_with, open_plugin, props};
use out_wasm_loader::FLB_OK;

#[test]
fn without_the_agents_symbols_instances_run_unmetered_and_keep_the_plugins_names() {
    assert!(!out_wasm_loader::metrics::agent_symbols_loaded(), "this process plays an agent without them");
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let path = probe.to_str().unwrap();
    let first =
        plugin.init(props(&[("wasm_path", path), ("label", "a"), ("alias", "ignored"), ("wasm_warm_spare", "off")]));
    let said = lines_with(&first, "running without metrics: the agent does not export cmt_counter_create");
    assert_eq!(said.len(), 1, "said once, at info:\n{}", first.log_text());
    assert!(
        first
            .logs
            .iter()
            .any(|l| l.level == 3 && l.message.starts_with("[output:wasm:wasm.0] running without metrics")),
        "at info, under the plugin's own name (no flb_output_name to ask):\n{}",
        first.log_text()
    );
    let first = first.value.expect("init succeeds");
    let second = plugin.init(props(&[("wasm_path", path), ("label", "b"), ("wasm_warm_spare", "off")]));
    assert!(lines_with(&second, "running without metrics").is_empty(), "said only once:\n{}", second.log_text());
    assert_eq!(lines_with(&second, "probe init instance=wasm.1 ").len(), 1, "{}", second.log_text());
    let second = second.value.expect("init succeeds");
    assert_eq!(first.flush(&chunk(&[r#"{"k":1}"#], 1, 0), "t").value, FLB_OK, "flushes work without metrics");
    first.exit();
    second.exit();
    plugin.close();
}
