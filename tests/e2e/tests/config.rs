//! Instance setup through the real boundary: what init accepts, and how it refuses.

use out_wasm_e2e::{guest_path, init_err, init_ok, lines_with, open_plugin, plugin_path};

#[test]
fn register_describes_an_output_named_wasm() {
    let plugin = open_plugin();
    assert_eq!(plugin.name(), "wasm", "users write `Name wasm`");
    // The event types it asks for depend on the agent: tests/e2e/tests/agents.rs plays each.
    assert!(plugin_path().ends_with("out_wasm.so"), "the build leaves a file named out_wasm.so");
    plugin.close();
}

/// Every refusal is one error line that names the instance, the guest file and the reason.
fn assert_refused(pairs: &[(&str, &str)], expected: &[&str]) {
    let mut plugin = open_plugin();
    let call = init_err(&mut plugin, pairs);
    assert!(call.value <= 0, "a refused init returns <= 0, got {}", call.value);
    let errors: Vec<_> = call.logs.iter().filter(|l| l.level == 1).collect();
    assert_eq!(errors.len(), 1, "expected exactly one error line, got:\n{}", call.log_text());
    let line = &errors[0].message;
    for needle in expected.iter().chain(&["[output:wasm:wasm."]) {
        assert!(line.contains(needle), "expected {needle:?} in the error line:\n{line}");
    }
    plugin.close();
}

#[test]
fn refuses_a_missing_wasm_path() {
    assert_refused(&[], &["required key 'wasm_path'"]);
}

#[test]
fn refuses_a_guest_file_that_does_not_exist() {
    assert_refused(&[("wasm_path", "/nonexistent/guest.wasm")], &["/nonexistent/guest.wasm", "failed to read"]);
}

#[test]
fn refuses_a_file_that_is_not_webassembly() {
    let dir = std::env::temp_dir().join(format!("out-wasm-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.wasm");
    std::fs::write(&text, "just some text\n").unwrap();
    assert_refused(&[("wasm_path", text.to_str().unwrap())], &[text.to_str().unwrap(), "not WebAssembly"]);

    // The smallest valid core module: a module, but not a component.
    let module = dir.join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    assert_refused(
        &[("wasm_path", module.to_str().unwrap())],
        &[module.to_str().unwrap(), "core WebAssembly module, not a component"],
    );
}

#[test]
fn refuses_a_component_of_another_world() {
    let path = guest_path("not-a-plugin");
    assert_refused(
        &[("wasm_path", path.to_str().unwrap())],
        &[
            path.to_str().unwrap(),
            "does not implement an out_wasm world this host supports",
            "out-wasm:output/output-plugin@0.2.0, out-wasm:output/output-plugin@0.1.0",
        ],
    );
}

#[test]
fn refuses_a_guest_that_declares_a_key_the_agent_reserves() {
    let path = guest_path("bad-schema");
    assert_refused(&[("wasm_path", path.to_str().unwrap())], &[path.to_str().unwrap(), "'Match'", "reserves"]);
}

#[test]
fn refuses_a_missing_required_guest_key_naming_it() {
    let path = guest_path("probe");
    assert_refused(
        &[("wasm_path", path.to_str().unwrap())],
        &[path.to_str().unwrap(), "required key 'label' (a name for this probe) is not set"],
    );
}

#[test]
fn refuses_when_guest_init_fails_with_its_reason() {
    let path = guest_path("probe");
    assert_refused(
        &[("wasm_path", path.to_str().unwrap()), ("label", "x"), ("fail_init", "no credentials")],
        &[path.to_str().unwrap(), "no credentials"],
    );
}

#[test]
fn guest_receives_its_keys_with_defaults_and_never_the_agents() {
    let path = guest_path("probe");
    let mut plugin = open_plugin();
    let call = plugin.init(out_wasm_e2e::props(&[
        ("wasm_path", path.to_str().unwrap()),
        ("LABEL", "first"),
        ("Match", "app.*"),
        ("mode", "ok"),
        ("unknown_key", "ignored"),
    ]));
    let init = lines_with(&call, "probe init");
    assert_eq!(init.len(), 2, "the first guest instance and its warm spare, log:\n{}", call.log_text());
    // The number depends on the instances other tests start meanwhile in this process.
    assert!(init[0].contains("instance=wasm."), "instance name reaches the guest: {}", init[0]);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the kernel's hostname");
    assert!(
        init[0].contains(&format!(" hostname={} ", hostname.trim())),
        "the machine's name reaches the guest (a guest's own runtime cannot ask for it): {}",
        init[0]
    );
    assert!(
        init[0].ends_with(" config=label=first;greeting=hello;mode=ok;metrics=off"),
        "declared keys in order, looked up case-insensitively, defaults applied, unset optional key absent: {}",
        init[0]
    );
    call.value.expect("init succeeds").exit();
    plugin.close();
}

#[test]
fn log_level_of_the_instance_filters_guest_logs() {
    let path = guest_path("probe");
    let mut plugin = open_plugin();
    let quiet = init_ok(&mut plugin, &[("wasm_path", path.to_str().unwrap()), ("label", "q"), ("log_level", "warn")]);
    let flushed = quiet.flush(&out_wasm_e2e::chunk(&[r#"{"a":1}"#], 1, 0), "t");
    assert_eq!(flushed.value, 1, "FLB_OK");
    assert!(flushed.logs.is_empty(), "info lines are dropped at log_level warn, got:\n{}", flushed.log_text());
    quiet.exit();
    plugin.close();
}
