//! `out-wasm replay DIR [--guest OTHER.wasm]`: the flight recorder's flushes (`wasm_record`)
//! run again, offline, through the real plugin (`out_wasm.so`, driven by the loader as `bench`
//! and `run` drive it): the recorded version (its component kept beside the recordings) or
//! another, with the recorded section's keys. Prints, for each recording, what the guest
//! answered and logged then and now: the way to check a fix before pushing it.
//!
//! The replayed guest reaches what the recorded keys grant it (`wasm_allow_net`, ...): its
//! requests go to the real endpoints. Keys whose values the recorder left out (secrets) are
//! not set unless given with `--config`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use out_wasm::inspect::{REDACTED, Recording};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, Logged, Plugin, Properties};

/// How a flush ended, as recorded or replayed: `ok`, `error: ...`, `retry: ...`, `fault: ...`.
#[derive(Debug, PartialEq)]
struct Answer {
    kind: &'static str,
    message: String,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() { f.write_str(self.kind) } else { write!(f, "{}: {}", self.kind, self.message) }
    }
}

/// The recording files under `dir`: its own `*.json`, or those of its subdirectories (one per
/// output, as `wasm_record DIR` lays them out), oldest first in each.
fn recordings(dir: &Path) -> Result<Vec<PathBuf>> {
    let json = |dir: &Path| -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("failed to read {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json") && path.is_file())
            .collect();
        files.sort();
        Ok(files)
    };
    let mut found = json(dir)?;
    if found.is_empty() {
        let mut outputs: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        outputs.sort();
        for output in outputs {
            found.extend(json(&output)?);
        }
    }
    if found.is_empty() {
        bail!("no recordings in {} (wasm_record writes DIR/<output>/*.json)", dir.display());
    }
    Ok(found)
}

/// Replays every recording under `dir`; `guest` replaces the recorded version.
pub fn replay(
    dir: &Path,
    guest: Option<&Path>,
    plugin: Option<PathBuf>,
    config: &[(String, String)],
) -> Result<ExitCode> {
    let plugin_path = match plugin {
        Some(path) => path,
        None => {
            std::env::current_exe().context("failed to find this command's directory")?.with_file_name("out_wasm.so")
        }
    };
    let files = recordings(dir)?;
    let mut plugin = Plugin::open(&plugin_path).with_context(|| format!("failed to load {}", plugin_path.display()))?;
    let (mut same, mut different) = (0, 0);
    for file in &files {
        let recording = Recording::read(file)?;
        let chunk = recording.chunk()?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let recorded_guest = match &recording.guest.component {
            Some(component) => file.with_file_name(component),
            None => PathBuf::new(),
        };
        let guest_path = match guest {
            Some(guest) => guest.to_owned(),
            None if recording.guest.component.is_some() => recorded_guest,
            None => bail!(
                "{name}: the recorder kept no copy of sha256 {} (the file changed before it was copied); pass --guest",
                recording.guest.sha256
            ),
        };
        println!("== {name}: output {}, tag '{}', {} bytes", recording.output, recording.tag, chunk.len());
        let recorded = Answer {
            kind: match recording.result.as_str() {
                "error" => "error",
                "retry" => "retry",
                _ => "fault",
            },
            message: recording.answer.clone(),
        };
        let replayed = run(&mut plugin, &recording, &guest_path, config, &chunk);
        let what = match guest {
            Some(guest) => format!("{} ({})", guest.display(), digest_of(guest)),
            None => format!("the recorded version ({})", short(&recording.guest.sha256)),
        };
        println!("   recorded: sha256 {} ({})", short(&recording.guest.sha256), recording.guest.path);
        println!("   replayed: {what}");
        column("answer", &recorded.to_string(), &replayed.answer.to_string());
        if let Some(backtrace) = &recording.backtrace {
            println!("   recorded backtrace:");
            for line in backtrace.lines() {
                println!("     {line}");
            }
        }
        let then: Vec<String> =
            recording.logs.iter().map(|(level, text)| format!("[{level}] {}", unprefixed(text))).collect();
        lines("recorded log", &then);
        lines("replayed log", &replayed.logs);
        let http: Vec<String> = recording
            .http
            .iter()
            .map(|x| match (&x.status, &x.error) {
                (Some(status), _) => format!("{} {} -> {status} in {:.1} ms", x.method, x.origin, x.ms),
                (None, error) => {
                    format!("{} {} -> {} in {:.1} ms", x.method, x.origin, error.as_deref().unwrap_or("?"), x.ms)
                }
            })
            .collect();
        lines("recorded http", &http);
        if recorded == replayed.answer {
            same += 1;
            println!("   => the same answer");
        } else {
            different += 1;
            println!("   => a different answer");
        }
    }
    plugin.close();
    println!("{} recordings: {same} answered as recorded, {different} differently", files.len());
    Ok(ExitCode::SUCCESS)
}

struct Replayed {
    answer: Answer,
    logs: Vec<String>,
}

/// One recording through a fresh instance of `guest` with the recorded keys.
fn run(
    plugin: &mut Plugin,
    recording: &Recording,
    guest: &Path,
    config: &[(String, String)],
    chunk: &[u8],
) -> Replayed {
    let mut props: Vec<(String, String)> = recording
        .config
        .iter()
        .filter(|(key, value)| value != REDACTED && !config.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)))
        .cloned()
        .collect();
    props.extend(config.iter().cloned());
    props.push(("wasm_path".into(), guest.display().to_string()));
    props.push(("wasm_watch".into(), "off".into()));
    let init = plugin.init(Properties::new(props.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    let init_logs = texts(&init);
    let instance = match init.value {
        Ok(instance) => instance,
        Err(code) => {
            return Replayed {
                answer: Answer { kind: "init failed", message: format!("FLBPluginInit returned {code}") },
                logs: init_logs,
            };
        }
    };
    let flush = instance.flush(chunk, &recording.tag);
    let logs = texts(&flush);
    instance.exit();
    let said = |needle: &str| {
        flush.logs.iter().find_map(|line| {
            let text = unprefixed(&line.message);
            text.contains(needle).then(|| text.split_once(needle).map(|(_, rest)| rest.to_owned()).unwrap_or_default())
        })
    };
    let answer = if let Some(fault) = said(" will be retried: ").or_else(|| said(" is dropped (wasm_on_trap error): "))
    {
        Answer { kind: "fault", message: fault.lines().next().unwrap_or_default().to_owned() }
    } else {
        match flush.value {
            FLB_OK => Answer { kind: "ok", message: String::new() },
            FLB_RETRY => Answer { kind: "retry", message: said("': ").unwrap_or_default() },
            FLB_ERROR => Answer { kind: "error", message: said(", it is dropped: ").unwrap_or_default() },
            other => Answer { kind: "unknown", message: format!("status {other}") },
        }
    };
    Replayed { answer, logs }
}

/// A call's lines, without the output's prefix.
fn texts<T>(call: &Logged<T>) -> Vec<String> {
    call.logs.iter().map(|line| format!("[{}] {}", line.level_name(), unprefixed(&line.message))).collect()
}

/// `[output:wasm:wasm.0] text` -> `text`.
fn unprefixed(text: &str) -> &str {
    match text.strip_prefix("[output:") {
        Some(rest) => rest.split_once("] ").map_or(text, |(_, text)| text),
        None => text,
    }
}

fn column(what: &str, recorded: &str, replayed: &str) {
    println!("   {what:<8} recorded | {recorded}");
    println!("   {:<8} replayed | {replayed}", "");
}

fn lines(what: &str, lines: &[String]) {
    if lines.is_empty() {
        println!("   {what}: (none)");
        return;
    }
    println!("   {what}:");
    for line in lines {
        for (n, part) in line.lines().enumerate() {
            println!("     {}{part}", if n > 0 { "  " } else { "" });
        }
    }
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

fn digest_of(path: &Path) -> String {
    std::fs::read(path).map_or_else(
        |_| "unreadable".to_owned(),
        |bytes| {
            use sha2::Digest;
            let hash = sha2::Sha256::digest(bytes);
            format!("sha256 {}", hash.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>())
        },
    )
}
