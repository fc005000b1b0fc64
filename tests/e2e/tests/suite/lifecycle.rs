//! The agent's lifecycle through the real boundary: several instances, concurrent flushes,
//! Register again during a hot reload, and whole load/unload cycles in one process.

use out_wasm_e2e::sync::SyncDir;
use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, open_plugin, plugin_path};
use out_wasm_loader::{FLB_OK, Plugin};

#[test]
fn two_instances_of_different_guests_live_side_by_side() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let counter = guest_path("counter");
    let a = init_ok(&mut plugin, &[("wasm_path", probe.to_str().unwrap()), ("label", "a")]);
    let b = init_ok(&mut plugin, &[("wasm_path", counter.to_str().unwrap()), ("label", "b"), ("every", "2")]);
    let data = chunk(&[r#"{"x":1}"#, r#"{"x":2}"#], 5, 0);
    let from_a = a.flush(&data, "t");
    let from_b = b.flush(&data, "t");
    assert_eq!((from_a.value, from_b.value), (FLB_OK, FLB_OK));
    assert_eq!(lines_with(&from_a, "probe event").len(), 2, "probe saw its records:\n{}", from_a.log_text());
    assert!(lines_with(&from_a, "[b]").is_empty(), "no cross-talk:\n{}", from_a.log_text());
    assert_eq!(lines_with(&from_b, "[b] running total: 2 records (t=2)").len(), 1, "counter:\n{}", from_b.log_text());
    let exit_b = b.exit();
    assert_eq!(
        lines_with(&exit_b, "[b] final total: 2 records").len(),
        1,
        "counter's exit ran:\n{}",
        exit_b.log_text()
    );
    let exit_a = a.exit();
    assert!(
        exit_a
            .logs
            .iter()
            .any(|l| l.message.starts_with("[output:wasm:wasm.") && l.message.ends_with("] probe exit flushes=1")),
        "{}",
        exit_a.log_text()
    );
    plugin.close();
}

#[test]
fn concurrent_flushes_run_on_separate_guest_instances() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let sync = SyncDir::new("concurrent");
    let grant = sync.grant();
    // Every flush waits in the guest until the gate opens: both flushes are inside a guest at
    // the same time, which only separate guest instances allow.
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", probe.to_str().unwrap()),
            ("label", "c"),
            ("gate_dir", SyncDir::GUEST),
            ("wasm_allow_dirs", &grant),
            ("wasm_flush_timeout", "10m"),
        ],
    );
    let data = chunk(&[r#"{"n":1}"#], 1, 0);
    let calls: Vec<_> = std::thread::scope(|scope| {
        let _open = sync.open_gate_on_drop();
        let workers: Vec<_> = (0..2).map(|_| scope.spawn(|| instance.flush(&data, "t"))).collect();
        sync.wait_for_marks("entered", 2, "both flushes inside a guest at once");
        sync.open_gate();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for call in &calls {
        assert_eq!(call.value, FLB_OK, "log:\n{}", call.log_text());
        assert_eq!(
            lines_with(call, "probe flushed #1").len(),
            1,
            "each flush was an instance's first:\n{}",
            call.log_text()
        );
    }
    let inits: usize = calls.iter().map(|c| lines_with(c, "probe init").len()).sum();
    assert_eq!(inits, 1, "one extra guest instance was started for the second worker");
    let exit = instance.exit();
    assert_eq!(lines_with(&exit, "probe exit flushes=1").len(), 2, "both instances exit:\n{}", exit.log_text());
    plugin.close();
}

#[test]
fn hot_reload_order_with_flushes_still_running_on_the_old_instances() {
    let probe = guest_path("probe");
    let sync = SyncDir::new("reload-order");
    let grant = sync.grant();
    let mut old_plugin = open_plugin();
    let old = init_ok(
        &mut old_plugin,
        &[
            ("wasm_path", probe.to_str().unwrap()),
            ("label", "old"),
            ("gate_dir", SyncDir::GUEST),
            ("wasm_allow_dirs", &grant),
            ("wasm_flush_timeout", "10m"),
        ],
    );
    std::thread::scope(|scope| {
        let _open = sync.open_gate_on_drop();
        // An old flush is still running (held in the guest at the gate) while the agent
        // registers the plugin again and starts the new configuration's instances.
        let running = scope.spawn(|| old.flush(&chunk(&[r#"{"n":1}"#], 1, 0), "t"));
        sync.wait_for_marks("entered", 1, "the old flush inside its guest");
        let mut new_plugin = Plugin::open_with(plugin_path(), true).expect("registers again");
        let new = init_ok(&mut new_plugin, &[("wasm_path", probe.to_str().unwrap()), ("label", "new")]);
        let call = new.flush(&chunk(&[r#"{"n":2}"#], 1, 0), "t");
        assert_eq!(call.value, FLB_OK, "the new instance flushes meanwhile:\n{}", call.log_text());
        // Only the gate (or a fault) lets the old flush return.
        assert!(!running.is_finished(), "the old flush returned before its gate opened");
        sync.open_gate();
        let old_call = running.join().unwrap();
        assert_eq!(old_call.value, FLB_OK, "the old flush completes:\n{}", old_call.log_text());
        assert_eq!(lines_with(&old_call, "probe flushed #1").len(), 1, "{}", old_call.log_text());
        new.exit();
        new_plugin.close();
    });
    let exit = old.exit();
    assert_eq!(lines_with(&exit, "probe exit flushes=1").len(), 1, "{}", exit.log_text());
    old_plugin.close();
}
