//! Whole load/unload cycles, alone in their own process so that no other test's instances
//! are alive when it counts the plugin's threads.

use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, open_plugin, plugin_path};
use out_wasm_loader::FLB_OK;

#[test]
fn whole_load_unload_cycles_repeat_in_one_process() {
    let probe = guest_path("probe");
    for cycle in 0..4 {
        let mut plugin = open_plugin();
        let instance = init_ok(&mut plugin, &[("wasm_path", probe.to_str().unwrap()), ("label", "cycle")]);
        let call = instance.flush(&chunk(&[r#"{"c":1}"#], 1, 0), "t");
        assert_eq!(call.value, FLB_OK, "cycle {cycle}: log:\n{}", call.log_text());
        let exit = instance.exit();
        assert_eq!(exit.value, 1, "cycle {cycle}: exit returns FLB_OK");
        assert_eq!(lines_with(&exit, "probe exit flushes=1").len(), 1, "cycle {cycle}:\n{}", exit.log_text());
        plugin.close();
    }
    // Every instance joined its threads at exit: none of ours is left running.
    let ours = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("out-wasm"))
        .count();
    assert_eq!(ours, 0, "plugin threads still running after the last exit");
    // `-z nodelete`: the last dlclose() left the library mapped, and it is the flag that keeps
    // it (not only a thread-local destructor of a live thread, which would pin it too).
    let plugin = plugin_path();
    assert_eq!(
        out_wasm_loader::still_loaded(plugin),
        Some(true),
        "after dlclose, {} must still be mapped (dlopen RTLD_NOLOAD finds it) and marked DF_1_NODELETE \
         (None: unmapped; Some(false): mapped without the flag)",
        plugin.display()
    );
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        maps.lines().any(|line| line.ends_with(plugin.to_str().unwrap())),
        "{} is not in /proc/self/maps after dlclose",
        plugin.display()
    );
}
