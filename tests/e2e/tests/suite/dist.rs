//! The release archives as an operator and an author meet them: `scripts/dist` makes one per
//! release arch, each is unpacked in an empty directory away from the build tree, and what it
//! carries runs from there with a minimal environment: both binaries say their version,
//! `out-wasm run` plays the archive's demo through its own `out_wasm.so`, `check` takes every
//! example guest, and a project `out-wasm new` makes from the archive's SDK builds and passes
//! `check --init`. The aarch64 archive runs its version and demo under qemu-user. Every
//! archive's binaries are of its arch, need nothing above the glibc floor, and its PLATFORM
//! file says that floor.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use out_wasm_e2e::platforms::{elf_machine_of, needs, platforms, qemu_aarch64};
use out_wasm_e2e::{build_command, scratch_dir, workspace_root};

/// Runs `program` in `dir` with only PATH and HOME, and where the toolchains live (rustup's and
/// cargo's homes, the guest toolchains' cache); under qemu-user when the archive is aarch64's.
fn run_in(dir: &Path, program: &Path, args: &[&str]) -> (Output, String, String) {
    run_as(None, dir, program, args)
}

fn run_as(arch: Option<&str>, dir: &Path, program: &Path, args: &[&str]) -> (Output, String, String) {
    let mut command = if arch == Some("aarch64") { qemu_aarch64(program) } else { Command::new(program) };
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

/// Makes the archives and unpacks each in a fresh directory of its own; returns each arch with
/// its unpacked directory, in the order scripts/dist made them.
fn unpacked() -> Vec<(String, PathBuf)> {
    let scratch = scratch_dir("dist");
    let _ = std::fs::remove_dir_all(&scratch);
    let archives = scratch.join("archives");
    let output = build_command(workspace_root().join("scripts/dist"))
        .arg(&archives)
        .current_dir(workspace_root())
        .output()
        .expect("scripts/dist runs");
    assert!(output.status.success(), "scripts/dist failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let mut unpacked = Vec::new();
    for (archive, arch) in printed.lines().map(PathBuf::from).zip(&platforms().arches) {
        let expected = format!("out_wasm-{version}-{arch}-linux.tar.gz");
        assert!(
            archive.starts_with(&archives) && archive.is_file() && archive.ends_with(&expected),
            "scripts/dist printed its {arch} archive {expected}: {}",
            archive.display()
        );
        eprintln!("{}: {} bytes", archive.display(), std::fs::metadata(&archive).unwrap().len());
        let unpack = scratch.join("elsewhere").join(arch);
        std::fs::create_dir_all(&unpack).unwrap();
        let status = Command::new("tar").arg("-xzf").arg(&archive).current_dir(&unpack).status().unwrap();
        assert!(status.success(), "the archive unpacks");
        let [dir]: [PathBuf; 1] = std::fs::read_dir(&unpack)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect::<Vec<_>>()
            .try_into()
            .expect("the archive holds one directory");
        unpacked.push((arch.clone(), dir));
    }
    assert_eq!(printed.lines().count(), platforms().arches.len(), "one archive per release arch:\n{printed}");
    unpacked
}

/// The archive of `arch` holds binaries of that arch that need nothing above the floor, and
/// says the floor in its PLATFORM file.
fn holds_binaries_for_the_floor(arch: &str, dir: &Path) {
    let floor = platforms().glibc_floor.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
    let platform = std::fs::read_to_string(dir.join("PLATFORM")).expect("the archive has PLATFORM");
    assert!(
        platform.starts_with(&format!(
            "out_wasm {} for {arch} Linux with glibc {floor} or newer",
            env!("CARGO_PKG_VERSION")
        )),
        "PLATFORM names the arch and the floor:\n{platform}"
    );
    for binary in ["out_wasm.so", "out-wasm"] {
        let needs = needs(&dir.join(binary), &platforms().glibc_floor);
        assert_eq!(needs.machine, elf_machine_of(arch), "the {arch} archive's {binary} is for {arch}");
        assert!(
            needs.above_floor.is_empty(),
            "the {arch} archive's {binary} needs above {floor}: {:?}",
            needs.above_floor
        );
        assert!(
            needs.unusual_libraries.is_empty(),
            "the {arch} archive's {binary} needs {:?}",
            needs.unusual_libraries
        );
    }
}

#[test]
fn the_release_archives_run_unpacked_elsewhere() {
    let archives = unpacked();
    for (arch, dir) in &archives {
        holds_binaries_for_the_floor(arch, dir);
    }
    // Every archive's commands run on their arch (aarch64's under qemu-user): the version and
    // the demo, through the archive's own plugin (the config's plugins file names it).
    let version = env!("CARGO_PKG_VERSION");
    for (arch, dir) in &archives {
        let out_wasm = dir.join("out-wasm");
        let (stdout, _) = succeeded("out-wasm --version", run_as(Some(arch), dir, &out_wasm, &["--version"]));
        assert_eq!(stdout.trim(), format!("out-wasm {version}"), "{arch}");
        let (stdout, stderr) = succeeded(
            &format!("out-wasm run on the demo ({arch})"),
            run_as(Some(arch), dir, &out_wasm, &["run", "-c", "demo/fluent-bit.conf", "-i", "demo/events.jsonl"]),
        );
        assert_eq!(stdout.lines().count(), 4, "{arch}: one JSON line per event:\n{stdout}");
        assert!(
            stderr.contains(&format!("out_wasm {version} on ")),
            "{arch}: the plugin's init line says its version:\n{stderr}"
        );
        assert!(stderr.contains("final total: 4 records"), "{arch}: the counter's exit line:\n{stderr}");
        eprintln!("{arch}: the archive's demo printed:\n{stdout}");
    }

    // The rest, with this machine's archive.
    let machine = std::env::consts::ARCH;
    let (_, dir) = archives.iter().find(|(arch, _)| arch == machine).expect("an archive for this machine's arch");
    let dir = dir.clone();
    assert!(
        dir.file_name().unwrap().to_str().unwrap().starts_with(&format!("out_wasm-{version}-")),
        "the archive's directory names the version: {}",
        dir.display()
    );
    let out_wasm = dir.join("out-wasm");
    for file in ["out_wasm.so", "README.md", "wit/world.wit", "guests/toolchains.sh", "demo/fluent-bit.conf"] {
        assert!(dir.join(file).is_file(), "the archive has {file}");
    }

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
