//! The loader's run: an agent config's external outputs fed JSON lines (or raw chunks), the way
//! the agent would with a `stdin` input. Shared by `out-wasm-loader` and `out-wasm run`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::{
    AgentConfig, AgentVersion, FLB_OK, FLB_RETRY, Layout, LoadedOutput, OpenOptions, Plugin, Properties, Time,
    TimeEncoding, chunks, status_name, tag_matches,
};

/// What to run, and how to cut and time the events.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    /// JSON lines; stdin when unset.
    pub input: Option<PathBuf>,
    /// Plugins loaded besides the config's plugins file.
    pub plugins: Vec<PathBuf>,
    pub per_chunk: usize,
    /// Every record's time; now when unset.
    pub time: Option<Time>,
    pub layout: Layout,
    pub encoding: TimeEncoding,
    pub repeat: usize,
    pub stats: bool,
    /// Files flushed as one chunk each, exactly as given, instead of chunks made from JSON lines.
    pub chunk_files: Vec<PathBuf>,
    /// Where to write the agent's metrics (Prometheus text) after the run.
    pub metrics: Option<PathBuf>,
    /// Play an agent that exports no cmetrics symbols (as older agents do).
    pub old_agent: bool,
    /// The agent whose structs and exports the plugins meet (default: Fluent Bit 5.1).
    pub agent: AgentVersion,
}

impl RunOptions {
    /// The loader's defaults: 256 records a chunk, the metadata layout, EventTime times, once.
    pub fn new(config: PathBuf) -> Self {
        Self {
            config,
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
            agent: AgentVersion::default(),
        }
    }
}

struct Output {
    name: String,
    matcher: String,
    workers: usize,
    retry_limit: usize,
    /// The event types the agent routes to the output (`FLB_OUTPUT_*` bits).
    routed: i32,
    instance: LoadedOutput,
}

/// `FLB_OUTPUT_LOGS`, `FLB_OUTPUT_METRICS`, `FLB_OUTPUT_TRACES`.
const LOGS: i32 = 1;
const METRICS: i32 = 2;
const TRACES: i32 = 4;

/// What the agent routes to a plugin's outputs: the definition's event types (0 meaning logs),
/// or logs alone for an agent whose definition has none.
fn routed_types(plugin: &Plugin) -> i32 {
    match plugin.event_type() {
        Some(0) | None => LOGS,
        Some(types) => types,
    }
}

fn event_bit(chunk: &[u8]) -> i32 {
    match out_wasm_format::event_type(chunk) {
        out_wasm_format::EventType::Logs => LOGS,
        out_wasm_format::EventType::Metrics => METRICS,
        out_wasm_format::EventType::Traces => TRACES,
    }
}

/// Runs the external outputs of the agent config `args.config` on the events of `args.input`
/// (stdin when unset), printing what happened on stderr like the agent would. `FAILURE` when a
/// plugin instance fails to initialise (the agent refuses to start then).
pub fn run(args: &RunOptions) -> Result<ExitCode> {
    if args.old_agent && args.metrics.is_some() {
        anyhow::bail!("--metrics needs the agent's metrics, which --old-agent leaves out");
    }
    if !args.old_agent {
        crate::metrics::load_agent_symbols_of(args.agent)?;
    }
    let config = AgentConfig::read(&args.config)?;
    let mut plugins = Vec::new();
    for path in config.plugins.iter().chain(&args.plugins) {
        let plugin = Plugin::open_as(path, OpenOptions { agent: args.agent, ..OpenOptions::default() })?;
        let event_types = match plugin.event_type() {
            Some(types) => format!("event types {types}"),
            None => format!("no event types in {}'s definition", args.agent),
        };
        eprintln!(
            "[loader] loaded {} as output '{}' ({}; {event_types})",
            path.display(),
            plugin.name(),
            plugin.description()
        );
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
        let routed = routed_types(plugin);
        let props = Properties::new(section.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))).id(id);
        let init = plugin.init(props);
        match init.value {
            Ok(instance) => outputs.push(Output {
                name: instance_name,
                matcher: section.get("match").unwrap_or("*").to_owned(),
                workers: section.get("workers").and_then(|w| w.parse().ok()).unwrap_or(0),
                retry_limit: section.get("retry_limit").and_then(|w| w.parse().ok()).unwrap_or(1),
                routed,
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
        let bodies = chunks::parse_lines(&text)?;
        let time = args.time.unwrap_or_else(Time::now);
        (chunks::chunks(&bodies, args.per_chunk, time, args.layout, args.encoding)?, Some(bodies.len()))
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
        // As the agent's router: a chunk of a type the output did not register for never
        // reaches it.
        let (chunks, unrouted): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) =
            chunks.iter().partition(|chunk| output.routed & event_bit(chunk) != 0);
        if !unrouted.is_empty() {
            eprintln!(
                "[loader] {}: {} chunks not routed: {} does not route their event type to this plugin",
                output.name,
                unrouted.len(),
                args.agent
            );
        }
        if chunks.is_empty() {
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
        let text = crate::metrics::snapshot().prometheus();
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
fn flush_all(output: &Output, chunks: &[&Vec<u8>], tag: &str, repeat: usize) -> [usize; 3] {
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
