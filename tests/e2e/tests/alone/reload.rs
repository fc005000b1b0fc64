//! The agent's hot reload, alone in its own process: instance numbering is process-wide (as in
//! the agent) and other tests' Register calls would renumber it.

use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, open_plugin, plugin_path};
use out_wasm_loader::{FLB_OK, Plugin};

#[test]
fn register_again_during_a_hot_reload_leaves_old_instances_working() {
    let probe = guest_path("probe");
    let pairs = [("wasm_path", probe.to_str().unwrap()), ("label", "r")];
    let data = chunk(&[r#"{"n":1}"#], 1, 0);

    let mut old_plugin = open_plugin();
    let old = init_ok(&mut old_plugin, &pairs);
    // The agent's reload: dlopen the same .so again and Register while old instances are live.
    let mut new_plugin = Plugin::open_with(plugin_path(), true).expect("registers again");
    assert_eq!(new_plugin.name(), "wasm");
    assert_eq!(old.flush(&data, "t").value, FLB_OK, "old instance still flushes after Register");
    // Then old instances exit and the old handle is unregistered and closed...
    old.exit();
    old_plugin.close();
    // ...and the new configuration starts, numbering its instances from 0 again.
    let call = new_plugin.init(out_wasm_e2e::props(&pairs));
    // The first instance and its warm spare.
    assert!(lines_with(&call, "probe init instance=wasm.0").len() == 2, "{}", call.log_text());
    let new = call.value.expect("new instance starts");
    assert_eq!(new.flush(&data, "t").value, FLB_OK);
    new.exit();
    new_plugin.close();
}
