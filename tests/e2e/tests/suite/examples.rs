//! The shipped examples, run as users run them: the loader CLI on `examples/` (and the real
//! agent when `FLUENT_BIT` names its binary).

use std::collections::HashMap;
use std::process::{Command, Stdio};

use out_wasm_e2e::{guest_path, loader_bin, workspace_root};

/// What the agent's built-in `stdout` output with `format json_lines` prints for
/// `examples/events.jsonl` stamped 1700000000.5 (checked against Fluent Bit 5.1.1).
const EXPECTED: &str = r#"{"date":1700000000.5,"level":"info","msg":"user logged in","user":{"id":42,"name":"ana"},"latency_ms":12.5}
{"date":1700000000.5,"level":"warn","msg":"slow query","query":"SELECT * FROM t WHERE x = \"y\"","took":1.0}
{"date":1700000000.5,"level":"error","msg":"upload failed","path":"/srv/\u00fcn\u00ef/\u30d5\u30a1\u30a4\u30eb.txt","retry":true,"tags":["a","b"],"detail":null}
{"date":1700000000.5,"level":"info","msg":"tab\there, newline\nthere","count":-7,"big":18446744073709551615}
"#;

fn run_loader(config: &str) -> (String, String) {
    guest_path("stdout");
    let output = Command::new(loader_bin())
        .args(["-c", config, "-i", "examples/events.jsonl", "--time", "1700000000.5"])
        .current_dir(workspace_root())
        .output()
        .expect("the loader runs");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "loader failed with {}:\n{stderr}", output.status);
    (stdout, stderr)
}

#[test]
fn classic_example_prints_what_the_agents_stdout_output_prints() {
    let (stdout, stderr) = run_loader("examples/fluent-bit.conf");
    assert_eq!(stdout, EXPECTED, "stdout guest output differs from the agent's json_lines; stderr:\n{stderr}");
    for needle in [
        "[output:wasm:wasm.1] [demo] running total: 4 records (app.demo=4)",
        "[output:wasm:wasm.1] [demo] final total: 4 records (app.demo=4)",
    ] {
        assert!(stderr.contains(needle), "expected {needle:?} in the log:\n{stderr}");
    }
    // Once: the warm spare, which never flushed, does not speak for the output.
    assert_eq!(stderr.matches("final total").count(), 1, "the output's totals once:\n{stderr}");
}

#[test]
fn yaml_example_behaves_like_the_classic_one() {
    let (stdout, stderr) = run_loader("examples/fluent-bit.yaml");
    assert_eq!(stdout, EXPECTED, "stderr:\n{stderr}");
    assert!(stderr.contains("[demo] final total: 4 records"), "counter ran:\n{stderr}");
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

/// Runs the agent with `args` in the repository root, `examples/events.jsonl` piped to its
/// stdin (the agent's stdin input needs a pipe, not a file, and stops the agent at EOF); kills
/// it after `EVENT_TIMEOUT` (a hang).
fn run_agent(agent: &std::ffi::OsStr, args: &[&std::ffi::OsStr]) -> (String, String) {
    let events = std::fs::read(workspace_root().join("examples/events.jsonl")).unwrap();
    let mut child = Command::new(agent)
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the agent starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(&events).expect("the agent reads its stdin");
    }
    let deadline = std::time::Instant::now() + out_wasm_e2e::sync::EVENT_TIMEOUT;
    // Drain the pipes on their own threads so a chatty agent never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut text).map(|_| text)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = std::process::Output {
        status,
        stdout: out.join().unwrap().expect("agent stdout"),
        stderr: err.join().unwrap().expect("agent stderr"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "agent exited with {}:\n{stderr}", output.status);
    (stdout, stderr)
}

/// JSON lines with the `date` value blanked: the agent stamps stdin records with the time read.
fn without_dates(lines: &str) -> Vec<String> {
    lines
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let rest = l.strip_prefix("{\"date\":").expect("a date first");
            let end = rest.find(',').expect("more keys after the date");
            format!("{{\"date\":_{}", &rest[end..])
        })
        .collect()
}

#[test]
fn real_agent_runs_the_examples() {
    let Some(agent) = real_agent("real_agent_runs_the_examples") else {
        return;
    };
    guest_path("stdout");
    guest_path("counter");
    out_wasm_e2e::plugin_path();
    // What the agent's own stdout output prints for these events: EXPECTED on 5.1.1, but the
    // agent's stdin parser changed with the versions (3.2 reads 18446744073709551615 as the
    // largest i64), so the truth is the same agent's.
    let builtin = ["-i", "stdin", "-t", "app.demo", "-o", "stdout", "-p", "format=json_lines", "-m", "*"];
    let (expected, _) = run_agent(&agent, &builtin.map(std::ffi::OsStr::new));
    for config in ["examples/fluent-bit.conf", "examples/fluent-bit.yaml"] {
        let version = out_wasm_e2e::agent_version(&agent);
        if config.ends_with(".yaml") && version < (3, 2, 0) {
            eprintln!(
                "SKIP real_agent_runs_the_examples, {config}: Fluent Bit {version:?} reads no `plugins` list in a YAML \
                 plugins file (3.2 on do); the classic example covers this agent"
            );
            continue;
        }
        let (stdout, stderr) = run_agent(&agent, &["-c".as_ref(), config.as_ref()]);
        if out_wasm_e2e::agent_escapes_unicode(&agent) {
            assert_eq!(
                without_dates(&stdout),
                without_dates(&expected),
                "{config}: stdout guest output; log:\n{stderr}"
            );
        } else {
            // This agent writes non-ASCII as UTF-8, the example's guest escapes it: the same
            // JSON values, written two ways.
            let values = |lines: &str| -> Vec<serde_json::Value> {
                without_dates(lines)
                    .iter()
                    .map(|l| serde_json::from_str(&l.replacen("\"date\":_", "\"date\":0", 1)).expect("a JSON line"))
                    .collect()
            };
            assert_eq!(values(&stdout), values(&expected), "{config}: stdout guest output; log:\n{stderr}");
        }
        assert!(
            stderr.contains("[demo] final total: 4 records (app.demo=4)"),
            "{config}: counter's exit ran:\n{stderr}"
        );
        assert_eq!(stderr.matches("final total").count(), 1, "{config}: the output's totals once:\n{stderr}");
        // The agent's own stop is no fault of the plugin's: not one line of out_wasm's says so.
        assert!(!stderr.contains("exit refused"), "{config}:\n{stderr}");
    }
}

/// With the real agent: one pipeline feeds the same records to the built-in `stdout` output
/// (json_lines) and to the `stdout` guest; every line must appear exactly twice.
#[test]
fn real_agent_prints_the_same_lines_from_the_guest_and_its_builtin_stdout() {
    let Some(agent) = real_agent("real_agent_prints_the_same_lines_from_the_guest_and_its_builtin_stdout") else {
        return;
    };
    guest_path("stdout");
    let plugin = out_wasm_e2e::plugin_path();
    let dir = std::env::temp_dir().join(format!("out-wasm-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("both.conf");
    std::fs::write(
        &config,
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n\n[INPUT]\n    Name stdin\n    Tag app.real\n\n\
             [OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n\n\
             [OUTPUT]\n    Name wasm\n    Match *\n    wasm_path {}\n    escape_unicode {}\n",
            guest_path("stdout").display(),
            // As this agent's own JSON writes non-ASCII.
            if out_wasm_e2e::agent_escapes_unicode(&agent) { "on" } else { "off" }
        ),
    )
    .unwrap();
    let (stdout, stderr) = run_agent(&agent, &["-e".as_ref(), plugin.as_os_str(), "-c".as_ref(), config.as_os_str()]);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        *counts.entry(line).or_default() += 1;
    }
    assert_eq!(counts.len(), 4, "four distinct records expected, stdout:\n{stdout}\nstderr:\n{stderr}");
    for (line, n) in counts {
        assert_eq!(n, 2, "line printed {n} times instead of once per output:\n{line}\nstdout:\n{stdout}");
    }
}
