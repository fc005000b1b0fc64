//! The release platforms (`scripts/platforms.sh`): every release binary of every arch needs no
//! glibc symbol version above the floor and no library beyond glibc's and libgcc_s (the check
//! auditwheel makes of manylinux wheels, here on `scripts/release-build`'s output); the check
//! catches a binary linked against this machine's glibc; and the aarch64 loader drives the
//! aarch64 `out_wasm.so` through real guests under qemu-user with the output the x86_64 release
//! gives.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use out_wasm_e2e::http_server::Server;
use out_wasm_e2e::platforms::{RELEASE_BINARIES, elf_machine_of, needs, platforms, qemu_aarch64, release_dir};
use out_wasm_e2e::{guest_path, language_guest, plugin_path, scratch_dir, workspace_root};

fn floor_text() -> String {
    platforms().glibc_floor.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

#[test]
fn every_release_binary_needs_nothing_newer_than_the_glibc_floor() {
    let platforms = platforms();
    assert!(platforms.arches.iter().any(|arch| arch == "x86_64"), "x86_64 is a release arch: {:?}", platforms.arches);
    assert!(platforms.arches.iter().any(|arch| arch == "aarch64"), "aarch64 is a release arch: {:?}", platforms.arches);
    for arch in &platforms.arches {
        let dir = release_dir(arch);
        for binary in RELEASE_BINARIES {
            let path = dir.join(binary);
            let needs = needs(&path, &platforms.glibc_floor);
            assert_eq!(needs.machine, elf_machine_of(arch), "{} is built for {arch}", path.display());
            assert!(
                needs.above_floor.is_empty(),
                "{} needs {} glibc symbol versions above the floor {}:\n{}",
                path.display(),
                needs.above_floor.len(),
                floor_text(),
                needs.above_floor.join("\n")
            );
            assert!(
                needs.unusual_libraries.is_empty(),
                "{} needs libraries beyond glibc's and libgcc_s: {:?}",
                path.display(),
                needs.unusual_libraries
            );
            eprintln!("{}: {arch}, glibc symbol versions <= {}", path.display(), floor_text());
        }
    }
}

/// The glibc this test runs on, as numbers (`gnu_get_libc_version`).
fn this_machines_glibc() -> Vec<u32> {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string of glibc.
    let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    version.to_str().unwrap().split('.').map(|part| part.parse().unwrap()).collect()
}

/// The check can fail: a plain cargo build (cargo's `libout_wasm.so`) links against this
/// machine's glibc and, from glibc 2.34 on (where libpthread moved into libc), takes
/// `pthread_create@GLIBC_2.34`: what the release builds avoid.
#[test]
fn the_floor_check_catches_a_binary_linked_against_this_machines_glibc() {
    let glibc = this_machines_glibc();
    if glibc.as_slice() < [2, 34].as_slice() {
        eprintln!(
            "SKIP: this machine's glibc {glibc:?} is older than 2.34; a plain build needs nothing above it to catch"
        );
        return;
    }
    // Cargo's own file, not `out_wasm.so`: `scripts/build` (the dist test, running beside this
    // one) renames its floor build over `out_wasm.so`, and only cargo writes `libout_wasm.so`.
    let native = &plugin_path().with_file_name("libout_wasm.so");
    let needs = needs(native, &platforms().glibc_floor);
    eprintln!(
        "{} (a plain cargo build, glibc {glibc:?}) needs {} symbol versions above the floor {}:\n{}",
        native.display(),
        needs.above_floor.len(),
        floor_text(),
        needs.above_floor.join("\n")
    );
    assert!(
        needs.above_floor.iter().any(|need| need.starts_with("pthread_create@GLIBC_2.34 ")),
        "the check finds pthread_create@GLIBC_2.34 in a plain build: {:?}",
        needs.above_floor
    );
}

/// How long one loader run may take before the test calls it a hang: under qemu, wasmtime
/// compiles each guest emulated (the Python guest, 19 MB, took 3 CPU minutes and 10 minutes on
/// a loaded machine; natively 25 CPU seconds).
const QEMU_RUN_LIMIT: Duration = Duration::from_secs(1800);

/// Runs `command` to its end (killed past `limit`); its stdout and stderr, failing on an
/// unsuccessful exit.
fn run_bounded(mut command: Command, limit: Duration) -> (String, String, Duration) {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the loader starts");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    // Drained on threads of their own: a full pipe would block the loader.
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        err.read_to_string(&mut text).map(|_| text)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap().expect("stdout"), err.join().unwrap().expect("stderr"));
    assert!(status.success(), "{command:?} exited with {status} after {:?}:\n{stderr}", started.elapsed());
    (stdout, stderr, started.elapsed())
}

/// A config with one `wasm` output of `guest` and `keys`, without the compile cache (each arch
/// compiles the guest itself).
fn config(name: &str, guest: &Path, keys: &[(&str, &str)]) -> PathBuf {
    let mut text = format!(
        "[SERVICE]\n    Flush 1\n    Log_Level info\n\n[INPUT]\n    Name stdin\n    Tag  app.demo\n\n\
         [OUTPUT]\n    Name wasm\n    Match app.*\n    wasm_path {}\n    wasm_cache_dir off\n    wasm_watch off\n",
        guest.display()
    );
    for (key, value) in keys {
        text.push_str(&format!("    {key} {value}\n"));
    }
    let path = scratch_dir("platforms").join(format!("{name}.conf"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the release loader of `arch` (under qemu for aarch64) with that arch's `out_wasm.so` on
/// `config`, fed `examples/events.jsonl`.
fn run_loader(arch: &str, config: &Path) -> (String, String) {
    let dir = release_dir(arch);
    let loader = dir.join("out-wasm-loader");
    let mut command = if arch == "aarch64" { qemu_aarch64(&loader) } else { Command::new(&loader) };
    command
        .arg("-e")
        .arg(dir.join("out_wasm.so"))
        .arg("-c")
        .arg(config)
        .args(["-i", "examples/events.jsonl", "--time", "1700000000.5"])
        .current_dir(workspace_root());
    let (stdout, stderr, took) = run_bounded(command, QEMU_RUN_LIMIT);
    eprintln!("{arch} loader on {}: {:.1} s", config.display(), took.as_secs_f64());
    (stdout, stderr)
}

#[test]
fn the_aarch64_release_runs_the_real_guests_under_qemu_as_the_x86_64_release_does() {
    // The Rust stdout example and the Python one (an interpreter compiled to a component).
    for (name, guest) in [("rust-stdout", guest_path("stdout")), ("python-stdout", language_guest("python", "stdout"))]
    {
        let config = config(name, &guest, &[]);
        let (x86_64, _) = run_loader("x86_64", &config);
        let (aarch64, log) = run_loader("aarch64", &config);
        assert_eq!(x86_64.lines().count(), 4, "{name}: one JSON line per event on x86_64:\n{x86_64}");
        assert_eq!(aarch64, x86_64, "{name}: aarch64 prints what x86_64 prints; aarch64 log:\n{log}");
        eprintln!("{name}: aarch64 and x86_64 print the same {} lines:\n{aarch64}", aarch64.lines().count());
    }

    // The Rust http example posts to a loopback endpoint: the same requests from both arches.
    let server = Server::start();
    let (url, grant) = (format!("http://127.0.0.1:{}/ingest", server.port), format!("127.0.0.1:{}", server.port));
    let config = config("rust-http", &guest_path("http"), &[("url", &url), ("wasm_allow_net", &grant)]);
    let mut bodies = Vec::new();
    for arch in ["x86_64", "aarch64"] {
        let (_, log) = run_loader(arch, &config);
        let seen: Vec<_> = server.seen.lock().unwrap().drain(..).collect();
        assert_eq!(seen.len(), 1, "{arch}: one request for the one chunk: {seen:?}\nlog:\n{log}");
        assert_eq!(seen[0].request_line, "POST /ingest HTTP/1.1", "{arch}");
        bodies.push(seen.into_iter().next().unwrap().body);
    }
    assert!(bodies[0].starts_with('['), "a JSON array of the records: {}", bodies[0]);
    assert_eq!(bodies[1], bodies[0], "aarch64 posts what x86_64 posts");
    eprintln!("rust-http: aarch64 and x86_64 post the same body:\n{}", bodies[1]);
}
