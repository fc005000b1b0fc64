//! The flight recorder (`wasm_record DIR`) and `out-wasm replay` through the real boundary: a
//! trap and an error answer are recorded (the chunk, the guest's lines, the wasm backtrace, the
//! version and its component, the keys without secrets) in files only the agent's user can
//! read, bounded in count; replaying the trap against the recorded version traps the same way,
//! and against a fixed guest answers ok.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use out_wasm_e2e::{chunk, cli_bin, guest_path, init_ok, lines_with, open_plugin, plugin_path};
use out_wasm_loader::{FLB_ERROR, FLB_RETRY};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn recordings(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

fn replay(args: &[&str]) -> String {
    let output = Command::new(cli_bin())
        .arg("replay")
        .args(args)
        .args(["-e", plugin_path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "out-wasm replay {args:?} failed:\n{text}");
    text
}

#[test]
fn a_trap_is_recorded_and_replays_to_the_same_trap_and_a_fixed_guest_answers_ok() {
    let dir = std::env::temp_dir().join(format!("out-wasm-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let record = dir.join("record");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", guest_path("tally-v2").to_str().unwrap()),
            ("wasm_watch", "off"),
            ("wasm_record", record.to_str().unwrap()),
            ("wasm_record_max_files", "3"),
            // The guest's panic message (on its stderr) goes into the log, where the recorder
            // keeps the lines of the flush (with `agent`, stderr is the agent's own stream).
            ("wasm_stderr", "log"),
            ("note", "recorded"),
            // A guest key that looks like a credential: its value must not reach the disk.
            ("api_token", "hunter2"),
        ],
    );
    let out = record.join(instance.name());
    // Two refusals first: with three files at most, the trap and the last refusal are kept.
    for seq in [1, 2] {
        let call = instance.flush(&chunk(&[&format!(r#"{{"seq":{seq},"fail":"tally-v2"}}"#)], 1, 0), "app");
        assert_eq!(call.value, FLB_ERROR, "{}", call.log_text());
    }
    let trap = instance.flush(&chunk(&[r#"{"seq":3,"trap":"tally-v2"}"#, r#"{"seq":4}"#], 1, 0), "app");
    assert_eq!(trap.value, FLB_RETRY, "a trap is retried by default:\n{}", trap.log_text());
    assert_eq!(lines_with(&trap, "faulted in flush").len(), 1, "{}", trap.log_text());
    let last = instance.flush(&chunk(&[r#"{"seq":5,"fail":"tally-v2"}"#], 1, 0), "app");
    assert_eq!(last.value, FLB_ERROR);
    // A delivered chunk is not recorded.
    let ok = instance.flush(&chunk(&[r#"{"seq":6}"#], 1, 0), "app");
    assert_eq!(ok.value, out_wasm_loader::FLB_OK);
    instance.exit();
    plugin.close();

    assert_eq!(mode(&record), 0o700, "the recorder's directory is the agent user's only");
    assert_eq!(mode(&out), 0o700);
    let names = recordings(&out);
    assert_eq!(names.len(), 3, "at most wasm_record_max_files: {names:?}");
    assert!(names[0].contains("-error-") && names[1].contains("-fault-") && names[2].contains("-error-"), "{names:?}");
    let digest =
        format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(guest_path("tally-v2")).unwrap()));
    let component = out.join(format!("{digest}.wasm"));
    assert!(component.is_file(), "the recorded version's component is kept");
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{} is the agent user's only", path.display());
    }
    let fault: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(&names[1])).unwrap()).unwrap();
    assert_eq!(fault["result"], "fault");
    assert_eq!(fault["fault"], "trap");
    assert!(fault["answer"].as_str().unwrap().contains("guest trapped"), "{fault}");
    assert!(fault["backtrace"].as_str().is_some_and(|bt| !bt.is_empty()), "the wasm backtrace: {fault}");
    assert!(
        fault["logs"].to_string().contains("tally tally-v2 was told to trap"),
        "the guest's panic message: {fault}"
    );
    assert_eq!(fault["guest"]["sha256"], digest.as_str());
    let text = std::fs::read_to_string(out.join(&names[1])).unwrap();
    assert!(text.contains(r#""note","#) && text.contains("recorded"), "the guest's keys: {text}");
    assert!(!text.contains("hunter2"), "a secret was recorded:\n{text}");
    assert!(text.contains(r#""api_token","#) && text.contains("<redacted>"), "{text}");
    let refused: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(&names[2])).unwrap()).unwrap();
    assert_eq!(refused["answer"], "tally tally-v2 refuses this chunk");
    assert!(refused["logs"].to_string().contains("tally tally-v2 refused seq=5"), "{refused}");

    // Replayed against the recorded version: the same trap, and the same refusal.
    let same = replay(&[record.to_str().unwrap()]);
    eprintln!("{same}");
    assert!(same.contains("3 recordings: 3 answered as recorded, 0 differently"), "{same}");
    assert!(same.contains("replayed | fault: guest trapped"), "{same}");
    // Against the fixed guest (`tally`, which takes these records): ok, and it delivered them.
    let fixed = replay(&[out.to_str().unwrap(), "--guest", guest_path("tally").to_str().unwrap()]);
    eprintln!("{fixed}");
    assert!(fixed.contains("3 recordings: 0 answered as recorded, 3 differently"), "{fixed}");
    assert_eq!(fixed.matches("replayed | ok").count(), 3, "{fixed}");
    assert!(fixed.contains("tally tally seq=3") && fixed.contains("tally tally seq=4"), "{fixed}");
    let _ = std::fs::remove_dir_all(dir);
}
