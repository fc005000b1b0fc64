//! The release archive as an operator and an author meet it: `scripts/dist` makes it, it is
//! unpacked in an empty directory away from the build tree, and what it carries runs from
//! there with a minimal environment: both binaries say their version, `out-wasm run` plays the
//! archive's demo through its own `out_wasm.so`, `check` takes every example guest, and a
//! project `out-wasm new` makes from the archive's SDK builds and passes `check --init`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use out_wasm_e2e::{build_command, scratch_dir, workspace_root};

/// Runs `program` in `dir` with only PATH and HOME, and where the toolchains live (rustup's and
/// cargo's homes, the guest toolchains' cache).
fn run_in(dir: &Path, program: &Path, args: &[&str]) -> (Output, String, String) {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir).env_clear();
    for key in ["PATH", "HOME", "RUSTUP_HOME", "CARGO_HOME", "OUT_WASM_TOOLCHAINS", "XDG_CACHE_HOME"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let output = command.output().unwrap_or_else(|err| panic!("failed to run {}: {err}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn succeeded(what: &str, (output, stdout, stderr): (Output, String, String)) -> (String, String) {
    assert!(output.status.success(), "{what} failed with {}:\n{stdout}\n{stderr}", output.status);
    (stdout, stderr)
}

/// Makes the archive and unpacks it in a fresh directory; returns the unpacked directory.
fn unpacked() -> PathBuf {
    let scratch = scratch_dir("dist");
    let _ = std::fs::remove_dir_all(&scratch);
    let (archives, unpack) = (scratch.join("archives"), scratch.join("elsewhere"));
    std::fs::create_dir_all(&unpack).unwrap();
    let output = build_command(workspace_root().join("scripts/dist"))
        .arg(&archives)
        .current_dir(workspace_root())
        .output()
        .expect("scripts/dist runs");
    assert!(output.status.success(), "scripts/dist failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let archive = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert!(
        archive.starts_with(&archives) && archive.is_file(),
        "scripts/dist printed its archive: {}",
        archive.display()
    );
    let status = Command::new("tar").arg("-xzf").arg(&archive).current_dir(&unpack).status().unwrap();
    assert!(status.success(), "the archive unpacks");
    let [dir]: [PathBuf; 1] = std::fs::read_dir(&unpack)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect::<Vec<_>>()
        .try_into()
        .expect("the archive holds one directory");
    dir
}

#[test]
fn the_release_archive_runs_unpacked_elsewhere() {
    let dir = unpacked();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        dir.file_name().unwrap().to_str().unwrap().starts_with(&format!("out_wasm-{version}-")),
        "the archive's directory names the version: {}",
        dir.display()
    );
    let out_wasm = dir.join("out-wasm");
    for file in ["out_wasm.so", "README.md", "wit/world.wit", "guests/toolchains.sh", "demo/fluent-bit.conf"] {
        assert!(dir.join(file).is_file(), "the archive has {file}");
    }

    let (stdout, _) = succeeded("out-wasm --version", run_in(&dir, &out_wasm, &["--version"]));
    assert_eq!(stdout.trim(), format!("out-wasm {version}"));

    // The demo, through the archive's own plugin (the config's plugins file names it).
    let (stdout, stderr) = succeeded(
        "out-wasm run on the demo",
        run_in(&dir, &out_wasm, &["run", "-c", "demo/fluent-bit.conf", "-i", "demo/events.jsonl"]),
    );
    assert_eq!(stdout.lines().count(), 4, "one JSON line per event:\n{stdout}");
    assert!(stderr.contains(&format!("out_wasm {version} on ")), "the plugin's init line says its version:\n{stderr}");
    assert!(stderr.contains("final total: 4 records"), "the counter's exit line:\n{stderr}");

    // Every example guest of every language loads.
    let mut examples = Vec::new();
    for lang in std::fs::read_dir(dir.join("examples")).unwrap() {
        for guest in std::fs::read_dir(lang.unwrap().path()).unwrap() {
            examples.push(guest.unwrap().path());
        }
    }
    examples.sort();
    assert_eq!(examples.len(), 9, "five Rust examples and four other languages' stdout: {examples:?}");
    for guest in &examples {
        let guest = guest.to_str().unwrap();
        succeeded(&format!("out-wasm check {guest}"), run_in(&dir, &out_wasm, &["check", guest]));
    }

    // A new project takes the archive's SDK, with no --root, and what it builds passes check.
    let projects = dir.parent().unwrap().join("projects");
    std::fs::create_dir_all(&projects).unwrap();
    let (stdout, _) = succeeded(
        "out-wasm new rust",
        run_in(&projects, &out_wasm, &["new", "rust", "hello", "--dir", projects.to_str().unwrap()]),
    );
    let canonical = dir.canonicalize().unwrap();
    assert!(stdout.contains(&format!("from {}", canonical.display())), "the project uses the archive's SDK:\n{stdout}");
    let build = stdout.lines().find_map(|line| line.strip_prefix("build:")).expect("new prints a build command");
    succeeded("the new project's build", run_in(&projects, Path::new(build.trim()), &[]));
    let component = projects.join("hello/hello.wasm");
    succeeded(
        "check --init on the new project",
        run_in(&dir, &out_wasm, &["check", component.to_str().unwrap(), "--init"]),
    );
}
