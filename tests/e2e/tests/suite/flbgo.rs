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
        ("linux.go", "//go:build linux\n\npackage main\n".to_owned()),
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
    let linux = dir.join("linux.go").display().to_string();
    let expected = format!(
        "{linux}:1:1: its build constraint excludes GOOS=wasip1 GOARCH=wasm, but the native build takes it (fix: "
    );
    assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
    std::fs::remove_file(dir.join("linux.go")).unwrap();
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
