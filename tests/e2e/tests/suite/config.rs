//! Instance setup through the real boundary: what init accepts, and how it refuses.

use out_wasm_e2e::{guest_path, init_err, init_ok, lines_with, open_plugin, plugin_path};

#[test]
fn register_describes_an_output_named_wasm() {
    let plugin = open_plugin();
    assert_eq!(plugin.name(), "wasm", "users write `Name wasm`");
    // The event types it asks for depend on the agent: tests/e2e/tests/suite/agents.rs plays each.
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

/// The agent lists no keys to a plugin: a misspelt host key used to start the guest without
/// what it named (here its network grant), and every chunk was then dropped.
#[test]
fn refuses_a_misspelt_host_key_naming_the_nearest() {
    let guest = guest_path("stdout");
    let guest = guest.to_str().unwrap();
    assert_refused(
        &[("wasm_path", guest), ("wasm_alow_net", "127.0.0.1:28111")],
        &["unknown key 'wasm_alow_net'", "did you mean wasm_allow_net?"],
    );
    assert_refused(&[("wasm_path", guest), ("wasm_memory_limt", "64M")], &["did you mean wasm_memory_limit?"]);
}

/// The agent named by `FLUENT_BIT`, or a loud SKIP line and `None`.
fn real_agent(test: &str) -> Option<std::ffi::OsString> {
    let agent = std::env::var_os("FLUENT_BIT");
    if agent.is_none() {
        eprintln!(
            "SKIP {test}: FLUENT_BIT is not set (the path of a fluent-bit binary); this test needs the real agent"
        );
    }
    agent
}

/// Runs the agent with `args` until it stops by itself (each case here fails its start).
fn agent_start_fails(agent: &std::ffi::OsStr, args: &[&str]) -> String {
    let mut child = std::process::Command::new(agent)
        .arg("-e")
        .arg(plugin_path())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the agent starts");
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let mut text = String::new();
    // EOF on stderr: the agent has exited (or closed it); a hang is killed by the guard.
    let guard = out_wasm_e2e::KillOnDrop(child);
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    let mut child = guard;
    let status = child.0.wait().unwrap();
    let stdout = out.join().unwrap().unwrap();
    assert!(!status.success(), "the agent's start fails:\n{stdout}\n{text}");
    format!("{stdout}{text}")
}

#[test]
fn real_agent_refuses_a_misspelt_host_key() {
    let Some(agent) = real_agent("real_agent_refuses_a_misspelt_host_key") else { return };
    let guest = guest_path("http");
    let log = agent_start_fails(
        &agent,
        &[
            "-i",
            "dummy",
            "-o",
            "wasm",
            "-p",
            &format!("wasm_path={}", guest.display()),
            "-p",
            "wasm_alow_net=127.0.0.1:28111",
        ],
    );
    let line = log.lines().find(|l| l.contains("unknown key 'wasm_alow_net'")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("[error]") && line.ends_with("did you mean wasm_allow_net?"), "{line}");
}

/// When the agent's own start fails (an input that cannot listen), it stops every output, the
/// ones it never initialised too: out_wasm has nothing to stop there and nothing to say.
#[test]
fn real_agent_failing_its_own_start_hears_nothing_from_the_plugin() {
    let Some(agent) = real_agent("real_agent_failing_its_own_start_hears_nothing_from_the_plugin") else { return };
    let guest = guest_path("stdout");
    let log = agent_start_fails(
        &agent,
        &["-i", "tcp", "-p", "listen=999.1.1.1", "-o", "wasm", "-p", &format!("wasm_path={}", guest.display())],
    );
    let ours: Vec<&str> = log.lines().filter(|l| l.contains("out_wasm") || l.contains("output:wasm")).collect();
    let faults: Vec<&&str> =
        ours.iter().filter(|l| l.contains("[error]") || l.contains("[warn]") || l.contains("refused")).collect();
    assert!(faults.is_empty(), "a line of out_wasm's reads like a fault of the plugin:\n{log}");
}
