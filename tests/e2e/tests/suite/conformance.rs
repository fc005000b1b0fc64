//! The conformance corpus (`out_wasm_e2e::corpus`) through the real `out_wasm.so`: every
//! language's `stdout` example must print exactly `tests/conformance/<config>/<case>.jsonl`.
//!
//! Each language runs the loader CLI once per config with every corpus chunk in order, with
//! the guest's output going to the loader's stdout as it goes to the agent's. A mismatch names
//! the language, the config, the case and the first differing line.
//!
//! `OUT_WASM_BLESS=1` rewrites the expected files from the Rust guest (then check them with
//! `FLUENT_BIT` set: `agent_prints_the_expected_lines` compares them with the agent's own
//! `stdout` output).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use out_wasm_e2e::corpus::{self, Case};
use out_wasm_e2e::{language_guest, loader_bin, plugin_path, scratch_dir, workspace_root};

fn expected_dir(config: &str) -> PathBuf {
    workspace_root().join("tests/conformance").join(config)
}

/// The corpus chunks as files, in case order.
fn chunk_files() -> &'static [(String, PathBuf)] {
    static FILES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = scratch_dir("corpus");
        corpus::cases()
            .iter()
            .map(|case: &Case| {
                let path = dir.join(format!("{}.msgpack", case.name));
                std::fs::write(&path, case.chunk()).expect("failed to write a corpus chunk");
                (case.name.to_owned(), path)
            })
            .collect()
    })
}

/// Runs the loader with `guest` and `keys` over the whole corpus; returns its stdout.
fn run_corpus(lang: &str, label: &str, guest: &Path, keys: &[(&str, &str)]) -> String {
    let mut conf = String::from("[SERVICE]\n    Flush 1\n\n[INPUT]\n    Name stdin\n    Tag  corpus\n\n[OUTPUT]\n");
    conf += "    Name wasm\n    Match *\n    wasm_watch off\n";
    conf += &format!("    wasm_path {}\n", guest.display());
    for (key, value) in keys {
        conf += &format!("    {key} {value}\n");
    }
    let conf_path = scratch_dir("conformance").join(format!("{lang}-{label}.conf"));
    std::fs::write(&conf_path, conf).expect("failed to write the loader config");
    let mut command = Command::new(loader_bin());
    command.arg("-c").arg(&conf_path).arg("-e").arg(plugin_path());
    for (_, file) in chunk_files() {
        command.arg("--chunk").arg(file);
    }
    let output = command.output().expect("the loader runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{lang} ({label}): the loader failed with {}:\n{stderr}", output.status);
    let chunks = chunk_files().len();
    assert!(
        stderr.contains(&format!("{chunks} chunks: {chunks} ok, 0 retried, 0 failed")),
        "{lang} ({label}): expected every corpus chunk to be delivered; log:\n{stderr}"
    );
    String::from_utf8(output.stdout).unwrap_or_else(|err| panic!("{lang} ({label}): stdout is not UTF-8: {err}"))
}

/// The expected lines of `config`, each with the case it belongs to.
fn expected_lines(config: &str) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for (case, _) in chunk_files() {
        let path = expected_dir(config).join(format!("{case}.jsonl"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("failed to read {}: {err}", path.display()));
        lines.extend(text.lines().map(|line| (case.clone(), line.to_owned())));
    }
    lines
}

/// Fails naming the first line of `actual` that differs from `expected`.
fn compare(who: &str, expected: &[(String, String)], actual: &str) {
    let actual: Vec<&str> = actual.lines().collect();
    for (i, (case, want)) in expected.iter().enumerate() {
        let line_in_case = expected[..i].iter().filter(|(c, _)| c == case).count() + 1;
        match actual.get(i) {
            Some(got) if got == want => {}
            Some(got) => {
                let at = want.bytes().zip(got.bytes()).take_while(|(a, b)| a == b).count();
                panic!(
                    "{who}: case '{case}' line {line_in_case} differs at byte {at} (lengths {} expected, {} actual)\n expected: {}\n   actual: {}\n(see tests/conformance/README.md)",
                    want.len(),
                    got.len(),
                    excerpt(want, at),
                    excerpt(got, at)
                )
            }
            None => panic!(
                "{who}: output ends before case '{case}' line {line_in_case} (got {} lines, expected {})\n expected: {want}",
                actual.len(),
                expected.len()
            ),
        }
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "{who}: {} extra lines after the last expected one, first: {:?}",
        actual.len().saturating_sub(expected.len()),
        actual.get(expected.len())
    );
}

/// Up to 120 bytes of `line` around byte `at`, so a long line's difference stays readable.
fn excerpt(line: &str, at: usize) -> String {
    let bytes = line.as_bytes();
    let start = at.saturating_sub(60);
    let end = (at + 60).min(bytes.len());
    let dots = |cut: bool| if cut { "…" } else { "" };
    format!("{}{}{}", dots(start > 0), String::from_utf8_lossy(&bytes[start..end]), dots(end < bytes.len()))
}

/// Runs `lang`'s stdout example over the corpus in every config, and once more with the host
/// rendering the lines (`wasm_event_format json_lines`, default keys).
fn conforms(lang: &str) {
    let guest = language_guest(lang, "stdout");
    let blessing = lang == "rust" && std::env::var_os("OUT_WASM_BLESS").is_some();
    for (config, keys) in corpus::configs() {
        if blessing {
            bless_config(&guest, config, &keys);
            continue;
        }
        let output = run_corpus(lang, config, &guest, &keys);
        compare(&format!("{lang} stdout guest, config '{config}'"), &expected_lines(config), &output);
    }
    let output = run_corpus(lang, "host-json-lines", &guest, &[("wasm_event_format", "json_lines")]);
    compare(
        &format!("{lang} stdout guest, wasm_event_format json_lines (host-rendered)"),
        &expected_lines("default"),
        &output,
    );
}

/// Writes the Rust guest's output for each case of `config`, one loader run per case.
fn bless_config(guest: &Path, config: &str, keys: &[(&str, &str)]) {
    let dir = expected_dir(config);
    std::fs::create_dir_all(&dir).unwrap();
    for (case, file) in chunk_files() {
        let conf_path = scratch_dir("conformance").join("bless.conf");
        let mut conf =
            format!("[OUTPUT]\n    Name wasm\n    Match *\n    wasm_watch off\n    wasm_path {}\n", guest.display());
        for (key, value) in keys {
            conf += &format!("    {key} {value}\n");
        }
        std::fs::write(&conf_path, conf).unwrap();
        let output = Command::new(loader_bin())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(plugin_path())
            .arg("--chunk")
            .arg(file)
            .output()
            .expect("the loader runs");
        assert!(output.status.success());
        std::fs::write(dir.join(format!("{case}.jsonl")), output.stdout).unwrap();
    }
}

/// Each language's `stdout` guest matches the corpus: a test per language of guests/languages.
mod stdout_guest_matches_the_corpus {
    macro_rules! conformance {
        ($lang:ident) => {
            #[test]
            fn $lang() {
                super::conforms(stringify!($lang));
            }
        };
    }
    out_wasm_e2e::each_language!(conformance);
}

/// The agent's own `stdout` output (format json_lines, same keys) prints the expected lines
/// for the corpus: the chunks reach it unchanged through its `forward` input (PackedForward
/// entries are appended as they are), so the expected files are the agent's truth, not ours.
#[test]
fn agent_prints_the_expected_lines() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP agent_prints_the_expected_lines: FLUENT_BIT is not set (the path of a fluent-bit binary); \
             this test checks the corpus against the real agent"
        );
        return;
    };
    // The corpus is the rendering of the agent it was blessed with; out_wasm renders as that
    // agent does whatever agent runs it. Other releases render some cases their own way (3.2's
    // stdout output prints no log metadata): there the differences are reported, not failed.
    let version = out_wasm_e2e::agent_version(&agent);
    let blessed = (version.0, version.1) == BLESSED_WITH;
    for (config, keys) in corpus::configs() {
        let expected = expected_lines(config);
        let output = agent_output(&agent, config, &keys);
        if blessed {
            compare(&format!("fluent-bit's own stdout output, config '{config}'"), &expected, &output);
            continue;
        }
        let mut printed: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for line in output.lines() {
            *printed.entry(line).or_default() += 1;
        }
        let mut differing: Vec<&str> = Vec::new();
        for (case, line) in &expected {
            match printed.get_mut(line.as_str()) {
                Some(n) if *n > 0 => *n -= 1,
                _ if !differing.contains(&case.as_str()) => differing.push(case),
                _ => {}
            }
        }
        eprintln!(
            "SKIP agent_prints_the_expected_lines, config '{config}': the corpus is Fluent Bit {}.{}'s rendering \
             and this agent is {}.{}.{}; its own stdout output renders these cases differently: {}",
            BLESSED_WITH.0,
            BLESSED_WITH.1,
            version.0,
            version.1,
            version.2,
            if differing.is_empty() { "none".to_owned() } else { differing.join(", ") }
        );
    }
}

/// The release whose own `stdout` output the expected files are (`OUT_WASM_BLESS`, then
/// checked with this test): Fluent Bit 5.1.
const BLESSED_WITH: (u32, u32) = (5, 1);

/// Runs the agent with a forward input and a stdout output set up like the guest's `keys`,
/// sends every corpus chunk and an end marker, and returns its stdout up to the marker (or,
/// hung, fails after `EVENT_TIMEOUT`).
fn agent_output(agent: &std::ffi::OsStr, config: &str, keys: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut service = String::from("[SERVICE]\n    Flush 0.2\n    Grace 1\n    Log_Level warn\n");
    let mut output = String::from("[OUTPUT]\n    Name stdout\n    Match *\n    Format json_lines\n");
    for (key, value) in keys {
        match *key {
            // The guest's key is the agent's [SERVICE] json.escape_unicode.
            "escape_unicode" => service += &format!("    json.escape_unicode {value}\n"),
            _ => output += &format!("    {key} {value}\n"),
        }
    }
    let conf = format!("{service}\n[INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port {port}\n\n{output}");
    let conf_path = scratch_dir("conformance").join(format!("agent-{config}.conf"));
    std::fs::write(&conf_path, conf).unwrap();

    let mut child = Command::new(agent)
        .arg("-c")
        .arg(&conf_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the agent starts");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let stdout = stdout.clone();
        let mut pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                stdout.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let started = std::time::Instant::now();
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(err) if started.elapsed() > out_wasm_e2e::sync::EVENT_TIMEOUT => {
                child.kill().ok();
                panic!("the agent's forward input did not come up on port {port}: {err}");
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    for (_, file) in chunk_files() {
        let chunk = std::fs::read(file).unwrap();
        if chunk.is_empty() {
            continue;
        }
        // PackedForward: [tag, bin(entries), options]. The (empty) options map is optional in
        // the protocol, but Fluent Bit 3.2 and older refuse the message without it.
        let mut message = Vec::new();
        rmp::encode::write_array_len(&mut message, 3).unwrap();
        rmp::encode::write_str(&mut message, "corpus").unwrap();
        rmp::encode::write_bin(&mut message, &chunk).unwrap();
        rmp::encode::write_map_len(&mut message, 0).unwrap();
        stream.write_all(&message).expect("the agent takes the chunk");
    }
    // A last record marks the end: the agent flushes in order, so once its line is out every
    // corpus line is (however many this agent printed).
    let mut end = Vec::new();
    rmp::encode::write_array_len(&mut end, 3).unwrap();
    rmp::encode::write_str(&mut end, "corpus").unwrap();
    rmp::encode::write_bin(&mut end, &out_wasm_e2e::chunk(&[END_OF_CORPUS], 1_700_000_000, 0)).unwrap();
    rmp::encode::write_map_len(&mut end, 0).unwrap();
    stream.write_all(&end).expect("the agent takes the end marker");
    let deadline = std::time::Instant::now() + out_wasm_e2e::sync::EVENT_TIMEOUT;
    while !String::from_utf8_lossy(&stdout.lock().unwrap()).contains(END_MARK) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(stream);
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("the agent exits");
    reader.join().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).ok();
    let text = String::from_utf8_lossy(&stdout.lock().unwrap()).into_owned();
    assert!(text.contains(END_MARK), "the agent did not print the end marker (exit {status}):\n{stderr}");
    text.lines().filter(|line| !line.contains(END_MARK)).map(|line| format!("{line}\n")).collect()
}

/// The record sent after the corpus, and what of it every rendering prints.
const END_OF_CORPUS: &str = r#"{"end_of_corpus":true}"#;
const END_MARK: &str = "\"end_of_corpus\":true";
