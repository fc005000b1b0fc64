//! The loader's run: an agent config's external outputs fed JSON lines (or raw chunks), the way
//! the agent would with a `stdin` input. Shared by `out-wasm-loader` and `out-wasm run`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::{
    AgentConfig, FLB_OK, FLB_RETRY, Instance, Layout, Plugin, Properties, Time, TimeEncoding, events, status_name,
    tag_matches,
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
        }
    }
}

struct Output {
    name: String,
    matcher: String,
    workers: usize,
    retry_limit: usize,
    instance: Instance,
}

/// Runs the external outputs of the agent config `args.config` on the events of `args.input`
/// (stdin when unset), printing what happened on stderr like the agent would. `FAILURE` when a
/// plugin instance fails to initialise (the agent refuses to start then).
pub fn run(args: &RunOptions) -> Result<ExitCode> {
    if args.old_agent && args.metrics.is_some() {
        anyhow::bail!("--metrics needs the agent's metrics, which --old-agent leaves out");
    }
    if !args.old_agent {
        crate::metrics::load_agent_symbols()?;
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
