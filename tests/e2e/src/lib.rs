//! Test support: builds the real artifacts (the plugin `.so`, the example and test guests) from
//! source with cargo, once per test process, and helps drive them through the loader.
//!
//! Nothing here is checked in as a binary: every `.wasm` and the `.so` come from this workspace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use out_wasm_loader::{LoadedOutput, Logged, Plugin, Properties};

pub mod corpus;
pub mod http_server;
pub mod platforms;
pub mod redis;
pub mod registry;
pub mod sync;
pub mod tinyproxy;

/// The packages of every guest the tests use, as cargo `-p` patterns: the examples
/// (`guests/rust/*`) and the test guests (`tests/guests/*`). The workspace's member list in
/// the root Cargo.toml is the one list of them; a guest is named by its folder.
const GUEST_PACKAGES: &[&str] = &["out-wasm-example-*", "out-wasm-test-*"];

pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// A command that may run cargo (a script of the repository, cargo itself), without the
/// variables cargo gives this test process.
pub fn build_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    // Cargo gives this test process the variables of the crate under test. Build scripts (ring's,
    // through wasmtime-wasi-http) rerun when one of them changes, so passing them on would rebuild
    // ring and all that depends on it here, and again in the next top-level cargo command.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key == "OUT_DIR" || key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_MANIFEST_") {
            command.env_remove(&*key);
        }
    }
    command
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = build_command(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|err| panic!("failed to run {cargo}: {err}"));
    assert!(status.success(), "cargo {} failed with {status}", args.join(" "));
}

/// `out_wasm.so`, built in release mode and named as users name it.
pub fn plugin_path() -> &'static Path {
    static PLUGIN: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        // The command-line tools too, in the same build: one set of features for all three.
        cargo(&["build", "--release", "-p", "out-wasm", "-p", "out-wasm-cli", "-p", "out-wasm-loader"]);
        let release = target_dir().join("release");
        let named = release.join("out_wasm.so");
        // Beside and renamed over, never copied over: an agent still running the old file (a
        // soak, another test run) keeps its mapping; writing into a mapped library crashes it.
        let partial = release.join(format!("out_wasm.so.{}", std::process::id()));
        std::fs::copy(release.join("libout_wasm.so"), &partial).expect("failed to copy libout_wasm.so");
        std::fs::rename(&partial, &named).expect("failed to rename the copy to out_wasm.so");
        named
    })
}

/// The `out-wasm-loader` command-line tool.
pub fn loader_bin() -> PathBuf {
    plugin_path();
    target_dir().join("release/out-wasm-loader")
}

/// `out-wasm`, the author's command, built in release mode.
pub fn cli_bin() -> PathBuf {
    plugin_path();
    target_dir().join("release/out-wasm")
}

/// The component of guest `name` (the folder of an example under `guests/rust` or of a test
/// guest under `tests/guests`), built for wasm32-wasip2.
pub fn guest_path(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let root = workspace_root();
    assert!(
        root.join("guests/rust").join(name).join("Cargo.toml").is_file()
            || root.join("tests/guests").join(name).join("Cargo.toml").is_file(),
        "unknown guest {name}: no guests/rust/{name} or tests/guests/{name} crate"
    );
    BUILT.get_or_init(|| {
        let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
        for packages in GUEST_PACKAGES {
            args.extend(["-p", packages]);
        }
        cargo(&args);
    });
    // Libraries are named with underscores, binaries keep their dashes.
    let file = if name == "not-a-plugin" { name.to_owned() } else { name.replace('-', "_") };
    target_dir().join("wasm32-wasip2/release").join(format!("{file}.wasm"))
}

// `LANGUAGES` and `each_language!`, from guests/languages (build.rs): each has
// `guests/<lang>/{setup,build}` but Rust, which cargo builds.
include!(concat!(env!("OUT_DIR"), "/languages.rs"));

/// Example guest `name` of `lang`, built from source by that language's own toolchain
/// (`guests/<lang>/build`, installed by `guests/<lang>/setup`), once per test process. A
/// missing toolchain fails the test: CI must have every language.
pub fn language_guest(lang: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    assert!(LANGUAGES.contains(&lang), "unknown language {lang}");
    if lang == "rust" {
        return guest_path(name);
    }
    let out = target_dir().join("guests").join(lang).join(format!("{name}.wasm"));
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (lang.to_owned(), name.to_owned());
    if !built.contains(&key) {
        std::fs::create_dir_all(out.parent().unwrap()).expect("failed to create the guest output dir");
        let script = workspace_root().join("guests").join(lang).join("build");
        let status = Command::new(&script)
            .args([name.as_ref(), out.as_os_str()])
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|err| panic!("failed to run {}: {err}", script.display()));
        assert!(
            status.success(),
            "building the {lang} guest '{name}' failed ({status}); is its toolchain installed (guests/{lang}/setup)?"
        );
        built.push(key);
    }
    out
}

/// Go test guest `name` (`tests/guests/<name>`, a Go module that requires the Go SDK), built by
/// `guests/go/build` once per test process. A missing Go toolchain fails the test.
pub fn go_test_guest(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let out = target_dir().join("guests/go-tests").join(format!("{name}.wasm"));
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        std::fs::create_dir_all(out.parent().unwrap()).expect("failed to create the guest output dir");
        let script = workspace_root().join("guests/go/build");
        let source = workspace_root().join("tests/guests").join(name);
        let status = Command::new(&script)
            .arg(&source)
            .arg(&out)
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|err| panic!("failed to run {}: {err}", script.display()));
        assert!(
            status.success(),
            "building the Go test guest '{name}' failed ({status}); is Go installed (guests/go/setup)?"
        );
        built.push(name.to_owned());
    }
    out
}

/// A name of this machine other than `localhost` that resolves (from /etc/hosts, without DNS)
/// to the loopback only, and that address: the machine's own host name on most systems. `None`
/// (the test says it skips) where the host name resolves otherwise.
pub fn loopback_name() -> Option<(String, std::net::IpAddr)> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?.trim().to_ascii_lowercase();
    if name.is_empty() || name == "localhost" || name.ends_with(".localhost") {
        return None;
    }
    let answers: Vec<std::net::IpAddr> = (name.as_str(), 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    let first = *answers.iter().find(|ip| ip.is_ipv4())?;
    answers.iter().all(|ip| ip.is_loopback()).then_some((name, first))
}

/// Where test runs keep generated files (configs, corpus chunks).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("e2e-scratch").join(name);
    std::fs::create_dir_all(&dir).expect("failed to create a scratch dir");
    dir
}

/// Loads the plugin (dlopen + Register) the way the agent does.
pub fn open_plugin() -> Plugin {
    Plugin::open(plugin_path()).expect("the plugin loads and registers")
}

/// `[OUTPUT]` properties from pairs.
pub fn props(pairs: &[(&str, &str)]) -> Properties {
    Properties::new(pairs.iter().copied())
}

/// Initialises an instance that must succeed, with its logs in the panic message otherwise.
pub fn init_ok(plugin: &mut Plugin, pairs: &[(&str, &str)]) -> LoadedOutput {
    let call = plugin.init(props(pairs));
    let text = call.log_text();
    call.value.unwrap_or_else(|code| panic!("expected init to succeed, got {code}; log:\n{text}"))
}

/// Initialises an instance that must fail; returns its log text.
pub fn init_err(plugin: &mut Plugin, pairs: &[(&str, &str)]) -> Logged<i32> {
    let call = plugin.init(props(pairs));
    let logs = call.logs.clone();
    match call.value {
        Ok(instance) => {
            instance.exit();
            panic!("expected init to fail for {pairs:?}; log:\n{}", Logged { value: (), logs }.log_text());
        }
        Err(code) => Logged { value: code, logs },
    }
}

/// The first message at `level` with `needle` in its first line, with the lines that follow it
/// at that level (the host writes each line of a message as a log line of its own, so a trap's
/// wasm backtrace follows its fault line).
pub fn message_at<T>(call: &Logged<T>, level: i32, needle: &str) -> Option<String> {
    let start = call.logs.iter().position(|l| l.level == level && l.message.contains(needle))?;
    let lines: Vec<&str> =
        call.logs[start..].iter().take_while(|l| l.level == level).map(|l| l.message.as_str()).collect();
    Some(lines.join("\n"))
}

/// Records `[[EventTime, {}], body]` with the given bodies (JSON), stamped `seconds.nanos`.
pub fn chunk(bodies: &[&str], seconds: u32, nanoseconds: u32) -> Vec<u8> {
    chunk_with(
        bodies,
        seconds,
        nanoseconds,
        out_wasm_loader::Layout::WithMetadata,
        out_wasm_loader::TimeEncoding::EventTime,
    )
}

pub fn chunk_with(
    bodies: &[&str],
    seconds: u32,
    nanoseconds: u32,
    layout: out_wasm_loader::Layout,
    encoding: out_wasm_loader::TimeEncoding,
) -> Vec<u8> {
    let bodies: Vec<serde_json::Value> =
        bodies.iter().map(|b| serde_json::from_str(b).expect("test body is JSON")).collect();
    let time = out_wasm_loader::Time { seconds, nanoseconds };
    out_wasm_loader::chunks::chunks(&bodies, usize::MAX, time, layout, encoding).expect("encodes").remove(0)
}

/// The messages of `call`'s log lines that contain `needle`.
pub fn lines_with<T>(call: &Logged<T>, needle: &str) -> Vec<String> {
    call.logs.iter().filter(|l| l.message.contains(needle)).map(|l| l.message.clone()).collect()
}

/// The release of the real agent at `agent`, from `fluent-bit --version` (`Fluent Bit v3.2.10`).
pub fn agent_version(agent: &std::ffi::OsStr) -> (u32, u32, u32) {
    let output = Command::new(agent).arg("--version").output().expect("the agent runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .split_whitespace()
        .find_map(|word| word.strip_prefix('v'))
        .unwrap_or_else(|| panic!("{} --version names no version:\n{text}", agent.to_string_lossy()));
    let mut parts = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether the real agent routes metrics and traces to external plugins: Fluent Bit 4.2.4 and
/// 5.0 on, where out_wasm can tell the agent has `event_type` (`host/src/agent/profile.rs`).
/// Older agents route logs only; tests of the other types say SKIP there, naming the version.
pub fn agent_routes_metrics_and_traces(agent: &std::ffi::OsStr) -> bool {
    agent_version(agent) >= (4, 2, 4)
}

/// Whether the real agent's own JSON (its `stdout` output) writes non-ASCII characters as
/// `\uXXXX`, as out_wasm's rendering does by default: from Fluent Bit 3.2.3 on (its new UTF-8
/// decoder); older agents write them as UTF-8, as out_wasm does with `escape_unicode off`.
pub fn agent_escapes_unicode(agent: &std::ffi::OsStr) -> bool {
    agent_version(agent) >= (3, 2, 3)
}

/// A child process a test started, killed and reaped when dropped: a test that fails while it
/// runs leaves nothing behind. For tests that read the child's output as it comes (a
/// [`RealAgent`] drains it all at the end).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real agent (`FLUENT_BIT`) run by a test: `agent -e out_wasm.so -c config` in the workspace
/// root, its stderr (the agent's log) drained on a thread of its own so a chatty agent never
/// blocks on a full pipe. Killed and reaped when dropped, so a failing test leaves no agent.
pub struct RealAgent {
    pub child: std::process::Child,
    log: Option<std::thread::JoinHandle<String>>,
}

impl RealAgent {
    /// Starts the agent at `agent` on `config`, with `stdin` as its standard input.
    pub fn start(agent: &std::ffi::OsStr, config: &Path, stdin: std::process::Stdio) -> Self {
        use std::io::Read;
        let mut child = Command::new(agent)
            .args(["-e".as_ref(), plugin_path().as_os_str(), "-c".as_ref(), config.as_os_str()])
            .current_dir(workspace_root())
            .stdin(stdin)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the agent starts");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let log = std::thread::spawn(move || {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        Self { child, log: Some(log) }
    }

    /// Stops the agent and returns its log.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.take_log()
    }

    /// Waits for the agent to exit by itself; its exit status and log.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("the agent exits");
        (status, self.take_log())
    }

    fn take_log(&mut self) -> String {
        self.log.take().map(|log| log.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for RealAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP socket on loopback that keeps every datagram it receives, as text: its address and
/// what it received so far.
pub fn udp_sink() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = std::sync::Arc::clone(&received);
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok(n) = socket.recv(&mut buf) {
            sink.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (address, received)
}
