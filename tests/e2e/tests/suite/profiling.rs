//! The opt-in profiling switch: `OUT_WASM_PROFILE=perfmap` makes the engine write
//! `/tmp/perf-<pid>.map`, which `perf report` reads to name samples in compiled guest code.
//! The switch is read when a process builds its engine, so each case runs the loader CLI (a
//! fresh process) over one chunk with the Rust `stdout` guest (`wasm_stdout off`).

use std::path::PathBuf;
use std::process::{Command, Output};

use out_wasm_e2e::{guest_path, loader_bin, plugin_path, scratch_dir};

/// Runs the loader with `OUT_WASM_PROFILE` set to `profile` (unset for `None`); returns its
/// output and the perf map path its pid would have.
fn run_loader(profile: Option<&str>) -> (Output, PathBuf) {
    let dir = scratch_dir("profiling");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"msg\":\"profiled\",\"n\":1}\n{\"msg\":\"again\",\"n\":2.5}\n")
        .expect("failed to write the events");
    let conf = dir.join(format!("{}.conf", profile.unwrap_or("unset")));
    let guest = guest_path("stdout");
    std::fs::write(
        &conf,
        format!(
            "[OUTPUT]\n    Name wasm\n    Match *\n    wasm_watch off\n    wasm_stdout off\n    wasm_path {}\n",
            guest.display()
        ),
    )
    .expect("failed to write the loader config");
    let mut command = Command::new(loader_bin());
    command.arg("-c").arg(&conf).arg("-e").arg(plugin_path()).arg("-i").arg(&events);
    command.env_remove("OUT_WASM_PROFILE");
    if let Some(profile) = profile {
        command.env("OUT_WASM_PROFILE", profile);
    }
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the loader runs");
    let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let output = child.wait_with_output().expect("the loader runs to the end");
    (output, map)
}

#[test]
fn perfmap_names_the_guest_functions() {
    let (output, map) = run_loader(Some("perfmap"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "expected the loader to succeed; log:\n{stderr}");
    assert!(stderr.contains("1 chunks: 1 ok"), "expected the chunk to be delivered; log:\n{stderr}");
    let text = std::fs::read_to_string(&map)
        .unwrap_or_else(|err| panic!("expected {} to be written: {err}; log:\n{stderr}", map.display()));
    std::fs::remove_file(&map).ok();
    assert!(
        text.lines().any(|line| line.contains("out_wasm_format") && line.contains("write_chunk")),
        "expected the map to name the format crate's write_chunk; it has {} lines",
        text.lines().count()
    );
}

#[test]
fn no_map_without_the_switch() {
    let (output, map) = run_loader(None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "expected the loader to succeed; log:\n{stderr}");
    assert!(!map.exists(), "expected no perf map without OUT_WASM_PROFILE, found {}", map.display());
}

#[test]
fn an_unknown_profiler_fails_init_naming_the_variable() {
    let (output, map) = run_loader(Some("vtune-please"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OUT_WASM_PROFILE=\"vtune-please\" is not perfmap, jitdump or none"),
        "expected init to fail naming the variable; log:\n{stderr}"
    );
    assert!(!map.exists(), "expected no perf map for an unknown profiler");
}
