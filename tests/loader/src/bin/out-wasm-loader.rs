//! `out-wasm-loader`: runs the `[OUTPUT]` sections of a Fluent Bit config that name an external
//! plugin, feeding them JSON lines, the way the agent would with a `stdin` input.
//!
//! ```text
//! out-wasm-loader -c fluent-bit.conf [-i events.jsonl] [-e plugin.so] [--records-per-chunk N]
//!                 [--time SECONDS] [--layout metadata|forward] [--time-encoding ext|int|float]
//!                 [--repeat N] [--stats] [--chunk CHUNK.msgpack ...] [--metrics FILE]
//!                 [--old-agent]
//! ```
//! `--chunk` (repeatable) flushes the file's bytes as one chunk, exactly as given, instead of
//! chunks made from JSON lines: the conformance corpus feeds every msgpack type that way.
//! The loader plays Fluent Bit 5.1, which exports `flb_output_name` and its cmetrics functions
//! to plugins: instances are named as the agent names them (`alias`, or `<name>.<index>`
//! counting every `[OUTPUT]`), and `--metrics FILE` writes what the plugins published, in the
//! Prometheus text format of the agent's `/api/v2/metrics/prometheus`, after the last flush.
//! `--old-agent` plays an agent that exports neither.
//! Exits 1 when a plugin fails to load or an instance fails to initialise (the agent refuses to
//! start then), 0 otherwise.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use out_wasm_loader::{
    AgentConfig, FLB_OK, FLB_RETRY, Instance, Layout, Plugin, Properties, Time, TimeEncoding, echo_logs, events,
    status_name, tag_matches,
};

struct Args {
    config: PathBuf,
    input: Option<PathBuf>,
    plugins: Vec<PathBuf>,
    per_chunk: usize,
    time: Option<Time>,
    layout: Layout,
    encoding: TimeEncoding,
    repeat: usize,
    stats: bool,
    chunk_files: Vec<PathBuf>,
    metrics: Option<PathBuf>,
    old_agent: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        config: PathBuf::new(),
        input: None,
        plugins: Vec::new(),
        per_chunk: 256,
        time: None,
        layout: Layout::WithMetadata,
        encoding: TimeEncoding::EventTime,
        repeat: 1,
        stats: false,
        chunk_files: Vec::new(),
        metrics: None,
        old_agent: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-c" | "--config" => args.config = value()?.into(),
            "-i" | "--input" => args.input = Some(value()?.into()),
            "-e" | "--plugin" => args.plugins.push(value()?.into()),
            "--records-per-chunk" => args.per_chunk = value()?.parse()?,
            "--time" => {
                let secs: f64 = value()?.parse()?;
                args.time = Some(Time { seconds: secs as u32, nanoseconds: ((secs.fract()) * 1e9).round() as u32 });
            }
            "--layout" => {
                args.layout = match value()?.as_str() {
                    "metadata" => Layout::WithMetadata,
                    "forward" => Layout::Forward,
                    other => bail!("unknown layout {other} (metadata, forward)"),
                }
            }
            "--time-encoding" => {
                args.encoding = match value()?.as_str() {
                    "ext" => TimeEncoding::EventTime,
                    "int" => TimeEncoding::Integer,
                    "float" => TimeEncoding::Float,
                    other => bail!("unknown time encoding {other} (ext, int, float)"),
                }
            }
            "--repeat" => args.repeat = value()?.parse()?,
            "--stats" => args.stats = true,
            "--chunk" => args.chunk_files.push(value()?.into()),
            "--metrics" => args.metrics = Some(value()?.into()),
            "--old-agent" => args.old_agent = true,
            "-h" | "--help" => {
                println!(
                    "usage: out-wasm-loader -c CONFIG [-i EVENTS.jsonl] [-e PLUGIN.so] [--records-per-chunk N] [--time S] [--layout metadata|forward] [--time-encoding ext|int|float] [--repeat N] [--stats] [--chunk CHUNK.msgpack ...] [--metrics FILE] [--old-agent]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.config.as_os_str().is_empty() {
        bail!("-c CONFIG is required");
    }
    if args.old_agent && args.metrics.is_some() {
        bail!("--metrics needs the agent's metrics, which --old-agent leaves out");
    }
    Ok(args)
}

struct Output {
    name: String,
    matcher: String,
    workers: usize,
    retry_limit: usize,
    instance: Instance,
}

fn main() -> ExitCode {
    echo_logs(true);
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("[loader] error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let args = parse_args()?;
    if !args.old_agent {
        out_wasm_loader::metrics::load_agent_symbols()?;
    }
    let config = AgentConfig::read(&args.config)?;
    let mut plugins = Vec::new();
    for path in config.plugins.iter().chain(&args.plugins) {
        let plugin = Plugin::open(path)?;
        eprintln!("[loader] loaded {} as output '{}' ({})", path.display(), plugin.name(), plugin.description());
        plugins.push(plugin);
    }

    let mut outputs = Vec::new();
    // The agent numbers every output, external or not, in the order of the configuration.
    for (id, section) in config.outputs.iter().enumerate() {
        let name = section.get("name").unwrap_or_default();
        let Some(plugin) = plugins.iter_mut().find(|p| p.name().eq_ignore_ascii_case(name)) else {
            eprintln!("[loader] output '{name}' is not an external plugin; ignored");
            continue;
        };
        let instance_name = section.get("alias").map_or_else(|| format!("{}.{id}", plugin.name()), str::to_owned);
        let props = Properties::new(section.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))).id(id);
        let init = plugin.init(props);
        match init.value {
            Ok(instance) => outputs.push(Output {
                name: instance_name,
                matcher: section.get("match").unwrap_or("*").to_owned(),
                workers: section.get("workers").and_then(|w| w.parse().ok()).unwrap_or(0),
                retry_limit: section.get("retry_limit").and_then(|w| w.parse().ok()).unwrap_or(1),
                instance,
            }),
            Err(code) => {
                eprintln!(
                    "[loader] error: failed to initialize output {instance_name} (FLBPluginInit returned {code})"
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }

    let tag = config.inputs.first().and_then(|i| i.get("tag")).unwrap_or("stdin.0").to_owned();
    let (chunks, records) = if args.chunk_files.is_empty() {
        let text = match &args.input {
            Some(path) => {
                std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?
            }
            None => {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text
            }
        };
        let bodies = events::parse_lines(&text)?;
        let time = args.time.unwrap_or_else(Time::now);
        (events::chunks(&bodies, args.per_chunk, time, args.layout, args.encoding)?, Some(bodies.len()))
    } else {
        let mut chunks = Vec::new();
        for path in &args.chunk_files {
            chunks.push(std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?);
        }
        (chunks, None)
    };
    let chunk_bytes: usize = chunks.iter().map(Vec::len).sum();

    for output in &outputs {
        if !tag_matches(&output.matcher, &tag) {
            continue;
        }
        let started = Instant::now();
        let counts = flush_all(output, &chunks, &tag, args.repeat);
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "[loader] {}: {} chunks: {} ok, {} retried, {} failed",
            output.name,
            counts[0] + counts[1] + counts[2],
            counts[0],
            counts[1],
            counts[2]
        );
        if args.stats {
            let bytes = chunk_bytes * args.repeat;
            let mb = bytes as f64 / elapsed / 1e6;
            match records.map(|r| r * args.repeat) {
                Some(records) => eprintln!(
                    "[loader] {}: {records} records, {bytes} bytes of chunks in {elapsed:.3} s: {:.0} records/s, {mb:.1} MB/s",
                    output.name,
                    records as f64 / elapsed,
                ),
                None => eprintln!("[loader] {}: {bytes} bytes of chunks in {elapsed:.3} s: {mb:.1} MB/s", output.name),
            }
        }
    }

    if let Some(path) = &args.metrics {
        let text = out_wasm_loader::metrics::snapshot().prometheus();
        std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))?;
    }
    for output in outputs {
        output.instance.exit();
    }
    for plugin in plugins {
        plugin.close();
    }
    Ok(ExitCode::SUCCESS)
}

/// Flushes every chunk `repeat` times, on `workers` threads at once (1 if unset), retrying
/// like the agent up to `retry_limit`. Returns [delivered, given up after retries, errors].
fn flush_all(output: &Output, chunks: &[Vec<u8>], tag: &str, repeat: usize) -> [usize; 3] {
    let total = chunks.len() * repeat;
    let next = AtomicUsize::new(0);
    let counts: [AtomicUsize; 3] = Default::default();
    std::thread::scope(|scope| {
        for _ in 0..output.workers.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let chunk = &chunks[i % chunks.len()];
                    let mut attempts = 0;
                    let status = loop {
                        let status = output.instance.flush(chunk, tag).value;
                        if status != FLB_RETRY || attempts >= output.retry_limit {
                            break status;
                        }
                        attempts += 1;
                    };
                    let slot = match status {
                        FLB_OK => 0,
                        FLB_RETRY => 1,
                        _ => 2,
                    };
                    if slot != 0 {
                        eprintln!("[loader] {}: chunk {i} ended with {}", output.name, status_name(status));
                    }
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    counts.map(|c| c.into_inner())
}
