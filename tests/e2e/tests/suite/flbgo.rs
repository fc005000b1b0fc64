//! fluent-bit-go output plugins built unmodified (issue 21): each plugin of
//! `tests/peers/fluent-bit-go` is built natively (cgo, `go build -buildmode=c-shared` against
//! fluent-bit-go, loaded with `-e` as the agent loads any Go plugin) and, from the same
//! unmodified directory, by `guests/go/build` into a component out_wasm runs; both run in the
//! real agent (`FLUENT_BIT`; a SKIP line without it) on the same records, and must print or send
//! the same. Also: what `out-wasm check` shows of such a component, the transform's refusals
//! through `guests/go/build`, and how plugins' own faults (os.Exit, log.Fatal, panics) read in
//! the agent's log.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use out_wasm_e2e::http_server::Server;
use out_wasm_e2e::redis::Redis;
use out_wasm_e2e::sync::{EVENT_TIMEOUT, wait_until};
use out_wasm_e2e::{cli_bin, plugin_path, scratch_dir, workspace_root};

/// The agent named by `FLUENT_BIT`, or a loud SKIP line and `None`.
fn real_agent(test: &str) -> Option<OsString> {
    let agent = std::env::var_os("FLUENT_BIT");
    if agent.is_none() {
        eprintln!(
            "SKIP {test}: FLUENT_BIT is not set (the path of a fluent-bit binary); this test needs the real agent"
        );
    }
    agent
}

/// Runs `script DIR OUT` once per test process (`dir` relative to the workspace root). Builds
/// run one at a time: `guests/go/build` works in a directory named after the plugin's.
fn build_once(script: &str, dir: &str, out: &Path) {
    static BUILT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (script.to_owned(), dir.to_owned());
    if !built.contains(&key) {
        let status = Command::new(workspace_root().join(script))
            .arg(workspace_root().join(dir))
            .arg(out)
            .current_dir(workspace_root())
            .status()
            .unwrap_or_else(|err| panic!("failed to run {script}: {err}"));
        assert!(status.success(), "{script} {dir} failed ({status}); is Go installed (guests/go/setup)?");
        built.push(key);
    }
}

/// The plugin in `dir` (relative to the workspace root), built natively and for out_wasm:
/// (the `.so`, the component).
fn built(dir: &str) -> (PathBuf, PathBuf) {
    let so = scratch_dir("flbgo-plugins").join(format!("{}.so", dir.rsplit('/').next().unwrap()));
    build_once("tests/peers/fluent-bit-go/build", dir, &so);
    (so, built_wasm(dir))
}

/// Only the component of the plugin in `dir` (for plugins the agent cannot load natively).
fn built_wasm(dir: &str) -> PathBuf {
    let wasm = scratch_dir("flbgo-plugins").join(format!("{}.wasm", dir.rsplit('/').next().unwrap()));
    build_once("guests/go/build", dir, &wasm);
    wasm
}

/// Which build of a plugin the agent runs.
#[derive(Clone, Copy)]
enum Side<'a> {
    /// The native `.so` and the name it registers.
    Native(&'a Path, &'a str),
    /// The component, in out_wasm.
    Wasm(&'a Path),
}

/// The record every run gets, `samples` times.
const RECORD: &str = r#"{"message":"hello","n":1}"#;

/// Records every run gets: `samples` copies of one record from the agent's dummy input, all with
/// the same timestamp (so native and out_wasm runs print the same times).
fn config(side: Side, outputs: &[Vec<(&str, String)>], samples: usize, extra: &str) -> String {
    config_with(side, outputs, samples, extra, RECORD)
}

/// [`config`] with `record` as the record.
fn config_with(side: Side, outputs: &[Vec<(&str, String)>], samples: usize, extra: &str, record: &str) -> String {
    let mut text = format!(
        "[SERVICE]\n    Flush 0.2\n    Grace 5\n    Log_Level info\n\n[INPUT]\n    Name dummy\n    Tag t\n    \
         Dummy {record}\n    Samples {samples}\n    Rate 20\n    Start_time_sec 1700000000\n    \
         Start_time_nsec 500000000\n    Fixed_timestamp on\n"
    );
    for keys in outputs {
        text.push_str("\n[OUTPUT]\n    Match t\n");
        match side {
            Side::Native(_, name) => text.push_str(&format!("    Name {name}\n")),
            // One guest instance per output, as the agent runs one plugin instance: a spare
            // would run FLBPluginInit once more.
            Side::Wasm(wasm) => {
                text.push_str(&format!("    Name wasm\n    wasm_path {}\n    wasm_warm_spare off\n", wasm.display()))
            }
        }
        for (key, value) in keys {
            if key.starts_with("wasm_") && matches!(side, Side::Native(..)) {
                continue;
            }
            text.push_str(&format!("    {key} {value}\n"));
        }
    }
    text.push_str(extra);
    text
}

/// What a run printed on stdout and logged on stderr.
struct Run {
    stdout: String,
    log: String,
    status: std::process::ExitStatus,
}

/// Runs the agent on `config` for `side` until `ready(stdout, log)` holds (or the agent exits by
/// itself), then stops it as an operator does (SIGTERM: the agent flushes what is pending and
/// calls every plugin's exit), and waits for it to exit.
fn run(agent: &OsString, test: &str, side: Side, config: &str, ready: impl Fn(&str, &str) -> bool) -> Run {
    run_env(agent, test, side, config, &[], ready)
}

/// [`run`] with more of the agent's environment.
fn run_env(
    agent: &OsString,
    test: &str,
    side: Side,
    config: &str,
    env: &[(&str, &str)],
    ready: impl Fn(&str, &str) -> bool,
) -> Run {
    let path = scratch_dir("flbgo").join(format!(
        "{test}-{}.conf",
        match side {
            Side::Native(..) => "native",
            Side::Wasm(_) => "wasm",
        }
    ));
    std::fs::write(&path, config).expect("failed to write the agent's config");
    let plugin = match side {
        Side::Native(so, _) => so.to_owned(),
        Side::Wasm(_) => plugin_path().to_owned(),
    };
    let mut child = Command::new(agent)
        .arg("-e")
        .arg(&plugin)
        .arg("-c")
        .arg(&path)
        .current_dir(workspace_root())
        // The native plugin's time.Local is the machine's; the guest's is UTC.
        .env("TZ", "UTC")
        // What tests/peers/fluent-bit-go/contexts reads (granted to the guest with
        // wasm_allow_env).
        .env("FLBCTX_REGION", "eu-west-1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the agent starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        (text, thread)
    };
    // A test that fails while the agent runs (a wait that times out) must not leave it running.
    struct KillOnPanic(libc::pid_t);
    impl Drop for KillOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                // SAFETY: kill(2) on the agent this test started; it is reaped by no one else.
                unsafe { libc::kill(self.0, libc::SIGKILL) };
            }
        }
    }
    let _kill = KillOnPanic(child.id() as libc::pid_t);
    let (stdout, out_thread) = drain(Box::new(child.stdout.take().unwrap()));
    let (log, err_thread) = drain(Box::new(child.stderr.take().unwrap()));
    let mut exited = None;
    wait_until(&format!("{test}: the agent's output"), || {
        if let Some(status) = child.try_wait().expect("wait") {
            exited = Some(status);
            return true;
        }
        ready(&stdout.lock().unwrap(), &log.lock().unwrap())
    });
    let status = match exited {
        Some(status) => status,
        None => {
            // SAFETY: kill(2) on the agent this test started and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let started = std::time::Instant::now();
            loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    break status;
                }
                if started.elapsed() > EVENT_TIMEOUT {
                    let _ = child.kill();
                    panic!("{test}: the agent did not stop after SIGTERM:\n{}", log.lock().unwrap());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    };
    out_thread.join().unwrap();
    err_thread.join().unwrap();
    let take = |text: Arc<Mutex<String>>| std::mem::take(&mut *text.lock().unwrap());
    Run { stdout: take(stdout), log: take(log), status }
}

/// The lines of `text` that `keep` keeps, sorted (several instances print concurrently).
fn sorted_lines(text: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().filter(|l| keep(l)).map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The agent's host name, as a native plugin's os.Hostname answers it.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    assert_eq!(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) }, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Runs `dir`'s plugin natively and in out_wasm with the same outputs and records; both runs.
fn both(
    agent: &OsString,
    test: &str,
    dir: &str,
    name: &str,
    outputs: &[Vec<(&str, String)>],
    samples: usize,
    ready: impl Fn(&str, &str) -> bool + Copy,
) -> (Run, Run) {
    let (so, wasm) = built(dir);
    let native =
        run(agent, test, Side::Native(&so, name), &config(Side::Native(&so, name), outputs, samples, ""), ready);
    let guest = run(agent, test, Side::Wasm(&wasm), &config(Side::Wasm(&wasm), outputs, samples, ""), ready);
    assert!(native.status.success(), "{test}: the native agent failed ({}):\n{}", native.status, native.log);
    assert!(guest.status.success(), "{test}: the out_wasm agent failed ({}):\n{}", guest.status, guest.log);
    (native, guest)
}

#[test]
fn the_typical_plugin_prints_the_same_json_lines() {
    let Some(agent) = real_agent("the_typical_plugin_prints_the_same_json_lines") else { return };
    let ready = |out: &str, _: &str| out.lines().filter(|l| l.starts_with('{')).count() == 3;
    let (native, guest) = both(&agent, "typical", "tests/peers/fluent-bit-go", "flbjson", &[vec![]], 3, ready);
    assert_eq!(native.stdout.lines().count(), 3, "three records:\n{}", native.stdout);
    assert!(native.stdout.starts_with(r#"{"date":1700000000.5,"message":"hello","n":1}"#), "{}", native.stdout);
    assert_eq!(guest.stdout, native.stdout, "out_wasm log:\n{}", guest.log);
}

#[test]
fn logfmt_reads_undeclared_keys_and_prints_the_same() {
    let Some(agent) = real_agent("logfmt_reads_undeclared_keys_and_prints_the_same") else { return };
    let keys = vec![("prefix", "app: ".to_owned()), ("fields", "n,message".to_owned())];
    let ready = |out: &str, _: &str| out.lines().count() == 3;
    let (native, guest) = both(&agent, "logfmt", "tests/peers/fluent-bit-go/logfmt", "logfmt", &[keys], 3, ready);
    assert!(
        native.stdout.starts_with("app:tag=t time=2023-11-14T22:13:20.5Z n=1 message=\"hello\"\n"),
        "{}",
        native.stdout
    );
    assert_eq!(guest.stdout, native.stdout, "out_wasm log:\n{}", guest.log);
}

/// Two instances, each with its own context, keys it never declares, the host's name, an
/// environment variable (granted to the guest), a time zone each, and its exit call.
#[test]
fn two_instances_keep_their_contexts_and_print_the_same() {
    let Some(agent) = real_agent("two_instances_keep_their_contexts_and_print_the_same") else { return };
    let outputs = [
        vec![
            ("id", "one".to_owned()),
            ("time_zone", "Europe/Paris".to_owned()),
            ("wasm_allow_env", "FLBCTX_REGION".to_owned()),
        ],
        vec![
            ("id", "two".to_owned()),
            ("time_zone", "America/New_York".to_owned()),
            ("wasm_allow_env", "FLBCTX_REGION".to_owned()),
        ],
    ];
    let ready = |out: &str, _: &str| out.lines().filter(|l| l.contains(" t #")).count() == 6;
    let (native, guest) = both(&agent, "contexts", "tests/peers/fluent-bit-go/contexts", "flbctx", &outputs, 3, ready);
    let (native_lines, guest_lines) = (sorted_lines(&native.stdout, |_| true), sorted_lines(&guest.stdout, |_| true));
    let host = hostname();
    for expected in [
        format!("[one] init on {host} in Europe/Paris, region \"eu-west-1\""),
        format!("[two] init on {host} in America/New_York, region \"eu-west-1\""),
        "[one] t #3 2023-11-14T23:13:20.5+01:00 hello".to_owned(),
        "[two] t #3 2023-11-14T17:13:20.5-05:00 hello".to_owned(),
        "[one] exit after 3 records".to_owned(),
        "[two] exit after 3 records".to_owned(),
    ] {
        assert!(native_lines.contains(&expected), "native: expected {expected:?} in {native_lines:#?}");
    }
    assert_eq!(native_lines.len(), 10, "{native_lines:#?}");
    assert_eq!(guest_lines, native_lines, "out_wasm log:\n{}", guest.log);
}

/// A plugin that hands records to a goroutine, which prints them from a ticker: in out_wasm the
/// goroutine runs in the idle calls between flushes, so the records arrive while no flush does
/// (the run is stopped only once they are printed); with a ticker that never fires, the exit
/// call drains them.
#[test]
fn a_goroutine_batching_on_a_ticker_delivers_between_flushes_and_at_exit() {
    let Some(agent) = real_agent("a_goroutine_batching_on_a_ticker_delivers_between_flushes_and_at_exit") else {
        return;
    };
    let records = |out: &str| out.lines().filter(|l| *l == "t hello").count();
    let ready = move |out: &str, _: &str| records(out) == 3 && out.contains("[tick]");
    let (native, guest) = both(
        &agent,
        "batch-ticker",
        "tests/peers/fluent-bit-go/batch",
        "flbbatch",
        &[vec![("interval", "50ms".to_owned())]],
        3,
        ready,
    );
    for run in [&native, &guest] {
        assert_eq!(records(&run.stdout), 3, "every record, from the ticker:\n{}\n{}", run.stdout, run.log);
        assert!(!run.stdout.contains("[exit]"), "nothing was left for exit:\n{}", run.stdout);
    }

    // The builtin stdout output prints the same chunks: once it has printed them all, the
    // agent has them all and the plugin's ticker has not fired.
    let (so, wasm) = built("tests/peers/fluent-bit-go/batch");
    let marker = "\n[OUTPUT]\n    Name stdout\n    Match t\n    Format json_lines\n";
    let ready = |out: &str, _: &str| out.lines().filter(|l| l.starts_with('{')).count() == 3;
    let keys = [vec![("interval", "1h".to_owned())]];
    for side in [Side::Native(&so, "flbbatch"), Side::Wasm(&wasm)] {
        let run = run(&agent, "batch-exit", side, &config(side, &keys, 3, marker), ready);
        assert!(run.status.success(), "the agent failed:\n{}", run.log);
        let printed: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with('{')).collect();
        assert_eq!(
            printed,
            ["t hello", "t hello", "t hello", "[exit]"],
            "drained at exit:\n{}\n{}",
            run.stdout,
            run.log
        );
    }
}

/// A plugin that POSTs each chunk with net/http: the endpoint gets the same records.
#[test]
fn a_plugin_posting_with_net_http_sends_the_same() {
    let Some(agent) = real_agent("a_plugin_posting_with_net_http_sends_the_same") else { return };
    let (so, wasm) = built("tests/peers/fluent-bit-go/http");
    let mut received = Vec::new();
    for side in [Side::Native(&so, "flbhttp"), Side::Wasm(&wasm)] {
        let server = Server::start();
        let address = format!("127.0.0.1:{}", server.port);
        let keys = [vec![("url", format!("http://{address}/logs")), ("wasm_allow_net", address.clone())]];
        let seen = Arc::clone(&server.seen);
        let count = move || -> usize {
            seen.lock()
                .unwrap()
                .iter()
                .map(|s| serde_json::from_str::<Vec<serde_json::Value>>(&s.body).map_or(0, |b| b.len()))
                .sum()
        };
        let run = run(&agent, "http", side, &config(side, &keys, 3, ""), |_, _| count() == 3);
        assert!(run.status.success(), "the agent failed:\n{}", run.log);
        let seen = server.seen.lock().unwrap();
        let mut records: Vec<String> = Vec::new();
        for request in seen.iter() {
            assert_eq!(request.request_line.trim_end(), "POST /logs HTTP/1.1");
            assert_eq!(request.content_type.as_deref(), Some("application/json"));
            let batch: Vec<serde_json::Value> = serde_json::from_str(&request.body).expect("a JSON array");
            records.extend(batch.iter().map(|r| r.to_string()));
        }
        records.sort();
        received.push(records);
    }
    assert_eq!(received[0].len(), 3, "{:#?}", received[0]);
    assert_eq!(
        received[0][0], r#"{"message":"hello","n":1,"tag":"t","time":"2023-11-14T22:13:20.5Z"}"#,
        "{:#?}",
        received[0]
    );
    assert_eq!(received[1], received[0], "out_wasm sent what the native plugin sent");
}

/// `out-wasm check` names the fluent-bit-go plugin the component is (from FLBPluginRegister).
#[test]
fn check_shows_the_plugins_registered_name() {
    let wasm = built_wasm("tests/peers/fluent-bit-go/contexts");
    let output = Command::new(cli_bin()).arg("check").arg(&wasm).output().expect("out-wasm check runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("fluent-bit-go plugin flbctx: one line per record, per instance"), "{text}");
}

/// What the transform cannot take fails the build, naming the file, the line and the fix, and
/// leaves the plugin's files as they were.
#[test]
fn the_build_refuses_other_cgo_naming_the_file_line_and_fix() {
    let dir = scratch_dir("flbgo-refused");
    let source = "package main\n\n/*\n#include <stdlib.h>\nstatic int twice(int x) { return 2 * x; }\n*/\nimport \"C\"\n\n\
                  import (\n\t\"unsafe\"\n\n\t\"github.com/fluent/fluent-bit-go/output\"\n)\n\n\
                  //export FLBPluginRegister\nfunc FLBPluginRegister(def unsafe.Pointer) int {\n\
                  \treturn output.FLBPluginRegister(def, \"twice\", \"x\")\n}\n\n\
                  //export FLBPluginInit\nfunc FLBPluginInit(plugin unsafe.Pointer) int { return int(C.twice(1)) }\n\n\
                  //export FLBPluginFlush\nfunc FLBPluginFlush(data unsafe.Pointer, length C.int, tag *C.char) int { return 1 }\n\n\
                  func main() {}\n";
    let files = [
        ("go.mod", "module twice\n\ngo 1.25\n".to_owned()),
        ("main.go", source.to_owned()),
        // Code for a CPU (the native build's, not wasm's) and code on Linux's system interface:
        // neither is taken. A Linux-only file without syscalls is, and the build says so.
        ("cpu.go", "//go:build !wasm\n\npackage main\n".to_owned()),
        ("plain_linux.go", "package main\n\nconst fromLinux = 1\n".to_owned()),
        ("sys_linux.go", "package main\n\nimport \"syscall\"\n\nvar _ = syscall.Getpid\n".to_owned()),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let output = Command::new(workspace_root().join("guests/go/build"))
        .arg(&dir)
        .arg(dir.join("twice.wasm"))
        .output()
        .expect("guests/go/build runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let main = dir.join("main.go").display().to_string();
    let cpu = dir.join("cpu.go").display().to_string();
    let sys = dir.join("sys_linux.go").display().to_string();
    for expected in [
        format!(
            "{cpu}:1:1: its build constraint excludes GOOS=wasip1 GOARCH=wasm, but the native build takes it (fix: "
        ),
        format!(
            "{sys}:3:8: the native build takes this Linux-only file, and it imports syscall, the Linux system interface"
        ),
        "flbgo-port: plain_linux.go taken as the native Linux build takes it".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
    }
    std::fs::remove_file(dir.join("cpu.go")).unwrap();
    std::fs::remove_file(dir.join("sys_linux.go")).unwrap();
    let output = Command::new(workspace_root().join("guests/go/build"))
        .arg(&dir)
        .arg(dir.join("twice.wasm"))
        .output()
        .expect("guests/go/build runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for expected in [
        format!("{main}:5:1: the cgo preamble holds C code (\"static int twice(int x) {{ return 2 * x; }}\")"),
        format!("{main}:21:60: C.twice is C code, and GOOS=wasip1 has no C compiler for it"),
        "(fix: write it in Go in the plugin".to_owned(),
        "is a fluent-bit-go plugin that cannot be built as it is".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
    }
    assert_eq!(std::fs::read_to_string(dir.join("main.go")).unwrap(), source, "the plugin's file is untouched");
    assert!(!dir.join("twice.wasm").exists());
}

/// A plugin's own failures read in the agent's log as natively (its message on the agent's
/// stderr), then the host's account: os.Exit, log.Fatal and a panic in FLBPluginInit stop the
/// agent from starting; a panic or log.Fatal in a flush is a fault (the chunk is retried).
#[test]
fn exit_fatal_and_panics_are_named_in_the_agents_log() {
    let Some(agent) = real_agent("exit_fatal_and_panics_are_named_in_the_agents_log") else { return };
    let wasm = built_wasm("tests/guests/go-flbgo-faults");
    let cases: HashMap<&str, [&str; 2]> = HashMap::from([
        (
            "exit",
            ["[flbfaults] bad config, exiting", "guest faulted in init: guest exited with status 1 (an exit call"],
        ),
        ("fatal", ["[flbfaults] fatal: bad config", "guest faulted in init: guest exited with status 1 (an exit call"]),
        ("panic", ["panic: [flbfaults] panic: bad config", "guest faulted in init"]),
        ("flush-panic", ["panic: [flbfaults] panic in flush of t", "faulted in flush and is discarded"]),
        ("flush-fatal", ["[flbfaults] fatal in flush of t", "faulted in flush and is discarded"]),
    ]);
    for (fail, [message, account]) in cases {
        let side = Side::Wasm(&wasm);
        let config = config(side, &[vec![("fail", fail.to_owned())]], 1, "");
        let run = run(&agent, &format!("faults-{fail}"), side, &config, |_, log| log.contains(account));
        assert!(run.log.contains(message), "{fail}: expected the plugin's message {message:?} in:\n{}", run.log);
        let (at_message, at_account) = (run.log.find(message).unwrap(), run.log.find(account).unwrap());
        assert!(at_message < at_account, "{fail}: the message, then the host's account:\n{}", run.log);
        if !fail.starts_with("flush") {
            assert!(!run.status.success(), "{fail}: the agent does not start:\n{}", run.log);
        }
    }
}

// Plugins whose client libraries dial for themselves (issue 32): built unmodified, Go's own
// net, crypto/tls and net/http reach the network through the host (guests/go/build's overlay
// of std net, outwasm/stdnet), under wasm_allow_net, with the host's TLS roots as the guest's
// system roots. Each is run natively and in out_wasm against the same real server; then in
// out_wasm without a grant, where nothing leaves the guest and the chunk is retried with the
// grant named.

/// The records a run delivered, as JSON values, sorted (chunks are cut differently each run).
fn sorted_records(values: impl IntoIterator<Item = serde_json::Value>) -> Vec<String> {
    out_wasm_e2e::redis::sorted_records(values)
}

/// A retried chunk whose error names the grant, in the agent's log.
fn assert_retried_naming_the_grant(test: &str, log: &str, grant: &str) {
    assert!(log.contains(&format!("grant {grant} with wasm_allow_net")), "{test}: the error names the grant:\n{log}");
    assert!(log.contains("retry in"), "{test}: the agent retries the chunk:\n{log}");
}

#[test]
fn a_redis_plugin_dialing_with_its_own_client_delivers_the_same_records() {
    let test = "a_redis_plugin_dialing_with_its_own_client_delivers_the_same_records";
    let Some(agent) = real_agent(test) else { return };
    let Some(redis) = Redis::start(test) else { return };
    let (so, wasm) = built("tests/peers/fluent-bit-go/redis");
    let address = format!("127.0.0.1:{}", redis.port);
    let samples = 20;
    let keys = |key: &str| vec![("address", address.clone()), ("key", key.to_owned())];
    let native = Side::Native(&so, "flbredis");
    let run_native = run(&agent, "redis", native, &config(native, &[keys("native")], samples, ""), |_, _| {
        redis.len("native") == samples
    });
    assert!(run_native.status.success(), "native:\n{}", run_native.log);
    let mut granted = keys("wasm");
    granted.push(("wasm_allow_net", address.clone()));
    let guest = run(&agent, "redis", Side::Wasm(&wasm), &config(Side::Wasm(&wasm), &[granted], samples, ""), |_, _| {
        redis.len("wasm") == samples
    });
    assert!(guest.status.success(), "out_wasm:\n{}", guest.log);
    let records = redis.records("native");
    assert_eq!(records.len(), samples);
    assert_eq!(redis.records("wasm"), records, "out_wasm log:\n{}", guest.log);

    let denied = run(
        &agent,
        "redis-denied",
        Side::Wasm(&wasm),
        &config(Side::Wasm(&wasm), &[keys("denied")], 3, ""),
        |_, log| log.contains("retry in"),
    );
    assert_eq!(redis.len("denied"), 0, "nothing reached the server without a grant");
    assert!(denied.log.contains("[flbredis] RPUSH denied: dial tcp 127.0.0.1:"), "{}", denied.log);
    assert_retried_naming_the_grant("redis", &denied.log, &address);
}

#[test]
fn a_plugin_with_its_own_tls_and_transport_trusts_the_hosts_roots() {
    let test = "a_plugin_with_its_own_tls_and_transport_trusts_the_hosts_roots";
    let Some(agent) = real_agent(test) else { return };
    let (so, wasm) = built("tests/peers/fluent-bit-go/tls");
    let ca = out_wasm_e2e::http_server::PrivateCa::new("out_wasm Go TLS CA");
    let ca_file = ca.write("go-tls");
    let ca_path = ca_file.to_str().unwrap().to_owned();
    let samples = 5;
    let delivered =
        |server: &Server| {
            let seen = server.seen.lock().unwrap();
            sorted_records(seen.iter().flat_map(|s| {
                serde_json::from_str::<Vec<serde_json::Value>>(&s.body).expect("a JSON array of records")
            }))
        };
    for mode in ["transport", "dial"] {
        let server = Server::start_with(Some(ca.server.clone()));
        let grant = format!("localhost:{}", server.port);
        let target = match mode {
            "transport" => ("url", format!("https://localhost:{}/ingest", server.port)),
            _ => ("address", grant.clone()),
        };
        let keys = |extra: &[(&'static str, String)]| {
            let mut keys = vec![("mode", mode.to_owned()), target.clone()];
            keys.extend_from_slice(extra);
            vec![keys]
        };
        let native = Side::Native(&so, "flbtls");
        // Natively the plugin trusts the CA as Go trusts any: the system's roots, here the file.
        let run_native = run_env(
            &agent,
            &format!("tls-{mode}"),
            native,
            &config(native, &keys(&[]), samples, ""),
            &[("SSL_CERT_FILE", ca_path.as_str())],
            |_, _| delivered(&server).len() == samples,
        );
        assert!(run_native.status.success(), "{mode} native:\n{}", run_native.log);
        let records = delivered(&server);
        server.seen.lock().unwrap().clear();
        let side = Side::Wasm(&wasm);
        let granted = keys(&[("wasm_allow_net", grant.clone()), ("wasm_tls_ca_file", ca_path.clone())]);
        let guest = run(&agent, &format!("tls-{mode}"), side, &config(side, &granted, samples, ""), |_, _| {
            delivered(&server).len() == samples
        });
        assert!(guest.status.success(), "{mode} out_wasm:\n{}", guest.log);
        assert_eq!(delivered(&server), records, "{mode}: out_wasm log:\n{}", guest.log);
        server.seen.lock().unwrap().clear();

        // The guest's roots are the host's: without the CA file, the server's certificate is
        // not trusted (and nothing is sent over the connection).
        let untrusted = keys(&[("wasm_allow_net", grant.clone())]);
        let run_untrusted =
            run(&agent, &format!("tls-{mode}-untrusted"), side, &config(side, &untrusted, 2, ""), |_, log| {
                log.contains("retry in")
            });
        assert!(
            run_untrusted.log.contains("certificate signed by unknown authority"),
            "{mode}: the handshake refused the unknown CA:\n{}",
            run_untrusted.log
        );
        let denied = run(&agent, &format!("tls-{mode}-denied"), side, &config(side, &keys(&[]), 2, ""), |_, log| {
            log.contains("retry in")
        });
        assert_retried_naming_the_grant(mode, &denied.log, "localhost");
        assert!(server.seen.lock().unwrap().is_empty(), "{mode}: nothing was delivered untrusted or denied");
    }
}

#[test]
fn a_syslog_writer_sends_the_same_datagrams_over_udp() {
    let test = "a_syslog_writer_sends_the_same_datagrams_over_udp";
    let Some(agent) = real_agent(test) else { return };
    let (so, wasm) = built("tests/peers/fluent-bit-go/syslog");
    let (address, received) = out_wasm_e2e::udp_sink();
    // `<priority>timestamp host tag[pid]: message`: all but the time and the process id.
    let normalized = |all: Vec<String>| {
        let mut lines: Vec<String> = all
            .iter()
            .map(|d| {
                let words: Vec<&str> = d.splitn(4, ' ').collect();
                let tag = words[2].split('[').next().unwrap();
                format!("{} {} {tag}: {}", words[0].split('>').next().unwrap(), words[1], words[3].trim_end())
            })
            .collect();
        lines.sort();
        lines
    };
    let record = r#"{"message":"disk almost full","level":"warning"}"#;
    let samples = 5;
    let keys = [vec![("address", address.clone())]];
    let count = || received.lock().unwrap().len();
    let native = Side::Native(&so, "flbsyslog");
    let run_native =
        run(&agent, "syslog", native, &config_with(native, &keys, samples, "", record), |_, _| count() == samples);
    assert!(run_native.status.success(), "native:\n{}", run_native.log);
    let native_lines = std::mem::take(&mut *received.lock().unwrap());
    let side = Side::Wasm(&wasm);
    let granted = [vec![("address", address.clone()), ("wasm_allow_net", address.clone())]];
    let guest =
        run(&agent, "syslog", side, &config_with(side, &granted, samples, "", record), |_, _| count() == samples);
    assert!(guest.status.success(), "out_wasm:\n{}", guest.log);
    let guest_lines = std::mem::take(&mut *received.lock().unwrap());
    let expected = normalized(native_lines);
    // local0.warning, the agent's host name (os.Hostname, which log/syslog asks), the message.
    assert_eq!(expected[0], format!("<132 {} flbsyslog: disk almost full", hostname()));
    assert_eq!(normalized(guest_lines), expected, "out_wasm log:\n{}", guest.log);

    // log/syslog connects its UDP socket in FLBPluginInit, and connecting is what the host
    // judges: without a grant the plugin's init fails there, naming it (natively a UDP connect
    // never fails), and the agent does not start.
    let denied = run(&agent, "syslog-denied", side, &config_with(side, &keys, 2, "", record), |_, log| {
        log.contains("wasm_allow_net")
    });
    assert!(
        denied.log.contains(&format!(
            "[flbsyslog] dial udp {address}: connect: the host denied it: grant {address} with wasm_allow_net"
        )),
        "{}",
        denied.log
    );
    assert_eq!(count(), 0, "no datagram left the guest without a grant");
}

/// An output written with Calyptia's Go SDK (`tests/peers/calyptia`), built unmodified with
/// out_wasm's package in place of the SDK's module (which the Go module proxy here does not
/// serve, so there is no native build to compare with): its log lines at their levels, its
/// counter and gauge on the agent's metrics endpoint under the output's name, every record
/// through the channel to its Flush goroutine (which sends them over TCP with Go's own
/// net.Dial), and at exit the context cancelled and the channel closed, so it drains.
#[test]
fn a_calyptia_sdk_plugin_logs_counts_and_drains_at_exit() {
    use std::io::{BufRead, BufReader};
    let test = "a_calyptia_sdk_plugin_logs_counts_and_drains_at_exit";
    let Some(agent) = real_agent(test) else { return };
    let wasm = built_wasm("tests/peers/calyptia");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let sink = Arc::clone(&sink);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
    });
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let samples = 20;
    let side = Side::Wasm(&wasm);
    let keys = [vec![
        ("address", address.clone()),
        ("line_prefix", "cp|".to_owned()),
        ("wasm_allow_net", address.clone()),
        ("log_level", "debug".to_owned()),
    ]];
    let config = config(side, &keys, samples, "").replacen(
        "[SERVICE]\n",
        &format!("[SERVICE]\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    HTTP_Port {http}\n"),
        1,
    );
    let series = |scrape: &str, name: &str| {
        let prefix = format!("fluentbit_wasm_guest_{name}{{name=\"wasm.0\",tag=\"t\"}} ");
        scrape.lines().find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<f64>().ok())
    };
    let scraped = Mutex::new(String::new());
    let guest = run(&agent, "calyptia", side, &config, |_, _| {
        if lines.lock().unwrap().len() < samples {
            return false;
        }
        let scrape = crate::metrics_agent::get(http, "/api/v2/metrics/prometheus").unwrap_or_default();
        let done = series(&scrape, "calyptiapeer_records_total") == Some(samples as f64);
        *scraped.lock().unwrap() = scrape;
        done
    });
    assert!(guest.status.success(), "out_wasm:\n{}", guest.log);
    let scrape = scraped.into_inner().unwrap();
    assert_eq!(series(&scrape, "calyptiapeer_sent"), Some(samples as f64), "the gauge:\n{scrape}");
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), samples);
    let expected = r#"cp|{"record":{"message":"hello","n":1},"tag":"t","time":1700000000500000000}"#;
    assert!(lines.iter().all(|l| l == expected), "{lines:#?}");
    for (level, text) in [
        ("[ info]", format!("calyptiapeer init address={address} prefix=\"cp|\"")),
        ("[debug]", "calyptiapeer debug line".to_owned()),
        ("[ info]", format!("calyptiapeer drained {samples} records")),
    ] {
        assert!(
            guest.log.lines().any(|l| l.contains(level) && l.contains("[output:wasm:wasm.0]") && l.contains(&text)),
            "{level} {text} in the agent's log:\n{}",
            guest.log
        );
    }
    assert!(!guest.log.contains("has no line_prefix"), "camelCase linePrefix read line_prefix:\n{}", guest.log);
}
