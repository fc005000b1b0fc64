//! `out-wasm`, the author's command, run as authors run it: `check` on the example guests, on a
//! guest of WIT 0.1.0 and on files the plugin refuses; `check --config` running init; `run` on
//! the shipped example config, against the loader it replaces.

use std::path::Path;
use std::process::{Command, Output};

use out_wasm_e2e::{cli_bin, guest_path, loader_bin, scratch_dir, workspace_root};

fn out_wasm(args: &[&str]) -> (Output, String, String) {
    let output = Command::new(cli_bin()).args(args).current_dir(workspace_root()).output().expect("out-wasm runs");
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn check(guest: &Path, extra: &[&str]) -> (Output, String, String) {
    let mut args = vec!["check", guest.to_str().expect("UTF-8 path")];
    args.extend(extra);
    out_wasm(&args)
}

fn assert_has(text: &str, needle: &str, what: &str) {
    assert!(text.contains(needle), "{what}: expected {needle:?} in:\n{text}");
}

#[test]
fn check_describes_each_example_guest() {
    let json = "json_lines (json_date_key date, json_date_format double, escape_unicode on)";
    for (guest, key, format, world) in [
        ("stdout", "json_date_key (optional, default \"date\")", json, "output-plugin"),
        ("counter", "label (required, no default)", "msgpack", "output-plugin"),
        ("file", "path (required, no default)", "msgpack", "output-plugin"),
        ("http", "url (required, no default)", json, "http-output-plugin"),
    ] {
        let (output, stdout, stderr) = check(&guest_path(guest), &[]);
        assert!(output.status.success(), "{guest}: check failed with {}:\n{stdout}{stderr}", output.status);
        assert_has(&stdout, &format!("world:      out-wasm:output/{world}@0.3.0 (WIT 0.3.0)"), guest);
        assert_has(&stdout, "(all provided by the host)", guest);
        assert_has(&stdout, "  provided  out-wasm:output/types@0.3.0", guest);
        assert_has(&stdout, "  provided  wasi:io/streams@0.2.", guest);
        assert_has(&stdout, key, guest);
        assert_has(&stdout, &format!("format:     {format} (preferred"), guest);
        assert_has(&stdout, "events:     logs\n", guest);
        assert!(stdout.ends_with("result:     ok\n"), "{guest}: check ends with ok:\n{stdout}");
    }
}

#[test]
fn check_reads_a_guest_of_wit_0_1_0() {
    let (output, stdout, stderr) = check(&guest_path("wit-0-1-0"), &[]);
    assert!(output.status.success(), "check failed with {}:\n{stdout}{stderr}", output.status);
    assert_has(&stdout, "world:      out-wasm:output/output-plugin@0.1.0 (WIT 0.1.0)", "0.1.0 guest");
    assert_has(&stdout, "  provided  out-wasm:output/logging@0.1.0", "0.1.0 guest");
    assert_has(&stdout, "  label (required, no default): a name for this guest", "0.1.0 guest");
    // 0.1.0 has no accepted-event-types: the host adapts it as a logs-only guest.
    assert_has(&stdout, "events:     logs\n", "0.1.0 guest");
}

#[test]
fn check_reads_a_guest_of_wit_0_2_0() {
    let (output, stdout, stderr) = check(&guest_path("wit-0-2-0"), &[]);
    assert!(output.status.success(), "check failed with {}:\n{stdout}{stderr}", output.status);
    assert_has(&stdout, "world:      out-wasm:output/output-plugin@0.2.0 (WIT 0.2.0)", "0.2.0 guest");
    assert_has(&stdout, "  provided  out-wasm:output/metrics@0.2.0", "0.2.0 guest");
    assert_has(&stdout, "format:     msgpack (preferred", "0.2.0 guest");
    assert_has(&stdout, "events:     logs, metrics\n", "0.2.0 guest");
}

#[test]
fn check_refuses_what_the_plugin_refuses_with_the_reason() {
    let dir = scratch_dir("cli-refusals");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a component").unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    // A component that imports an interface no host provides and exports no output world.
    let alien = dir.join("alien.wasm");
    let bytes = wat::parse_str(r#"(component (import "acme:alien/probe@1.0.0" (instance (export "ping" (func)))))"#)
        .expect("the test component assembles");
    std::fs::write(&alien, bytes).unwrap();
    for (guest, stdout_has, reason) in [
        (text, "", "the file is not WebAssembly"),
        (core, "", "a core WebAssembly module, not a component"),
        (guest_path("not-a-plugin"), "world:      none supported", "does not implement an out_wasm world"),
        (alien.clone(), "  MISSING   acme:alien/probe@1.0.0: ", "does not implement an out_wasm world"),
        (guest_path("bad-schema"), "result:     refused", "declares key 'Match', which the agent reserves"),
    ] {
        let (output, stdout, stderr) = check(&guest, &[]);
        assert!(!output.status.success(), "{}: check accepted it:\n{stdout}", guest.display());
        assert_has(&stdout, stdout_has, &guest.display().to_string());
        assert_has(&stderr, reason, &guest.display().to_string());
    }
    let (_, stdout, _) = check(&alien, &[]);
    assert_has(&stdout, "imports:    1 (1 NOT provided by the host)", "alien");
}

#[test]
fn check_with_config_runs_init_once() {
    let probe = guest_path("probe");
    let (output, stdout, stderr) = check(&probe, &["--config", "label=cli", "--config", "greeting=hi"]);
    assert!(output.status.success(), "check --config failed with {}:\n{stdout}{stderr}", output.status);
    assert_has(&stdout, "  guest log [info] probe init instance=wasm.0 label=cli", "init ran");
    assert_has(&stdout, "  greeting = \"hi\"", "resolved config");
    assert_has(&stdout, "  mode = \"ok\"", "defaults applied");
    assert_has(&stdout, "init:       ok (and exit)", "init answer");
    assert_has(&stdout, "probe exit flushes=0", "exit ran");

    let (output, stdout, stderr) = check(&probe, &["--config", "label=cli", "--config", "fail_init=no disk"]);
    assert!(!output.status.success(), "a failing init was accepted:\n{stdout}");
    assert_has(&stderr, "refused: init returned an error: no disk", "failing init");

    let (output, _, stderr) = check(&guest_path("counter"), &["--init"]);
    assert!(!output.status.success(), "a missing required key was accepted");
    assert_has(&stderr, "required key 'label'", "missing required key");
}

#[test]
fn run_behaves_like_the_loader_on_the_example_config() {
    guest_path("stdout");
    guest_path("counter");
    let args = ["-c", "examples/fluent-bit.conf", "-i", "examples/events.jsonl", "--time", "1700000000.5"];
    let mut run_args = vec!["run"];
    run_args.extend(args);
    let (output, stdout, stderr) = out_wasm(&run_args);
    assert!(output.status.success(), "out-wasm run failed with {}:\n{stderr}", output.status);
    let loader = Command::new(loader_bin()).args(args).current_dir(workspace_root()).output().expect("loader runs");
    assert!(loader.status.success(), "the loader failed:\n{}", String::from_utf8_lossy(&loader.stderr));
    assert_eq!(stdout, String::from_utf8(loader.stdout).unwrap(), "run prints what the loader prints");
    assert_eq!(stdout.lines().count(), 4, "one JSON line per event:\n{stdout}");
    assert_has(&stderr, "[loader] wasm.0: 1 chunks: 1 ok, 0 retried, 0 failed", "run's summary");
    assert_has(&stderr, "final total: 4 records", "the counter's exit line");
}
