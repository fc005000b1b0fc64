//! `out-wasm-loader`: runs the `[OUTPUT]` sections of a Fluent Bit config that name an external
//! plugin, feeding them JSON lines, the way the agent would with a `stdin` input.
//!
//! ```text
//! out-wasm-loader -c fluent-bit.conf [-i events.jsonl] [-e plugin.so] [--records-per-chunk N]
//!                 [--time SECONDS] [--layout metadata|forward] [--time-encoding ext|int|float]
//!                 [--repeat N] [--stats] [--chunk CHUNK.msgpack ...] [--metrics FILE]
//!                 [--old-agent] [--agent VERSION]
//! ```
//! `--chunk` (repeatable) flushes the file's bytes as one chunk, exactly as given, instead of
//! chunks made from JSON lines: the conformance corpus feeds every msgpack type that way.
//! The loader plays Fluent Bit 5.1, which exports `flb_output_name` and its cmetrics functions
//! to plugins: instances are named as the agent names them (`alias`, or `<name>.<index>`
//! counting every `[OUTPUT]`), and `--metrics FILE` writes what the plugins published, in the
//! Prometheus text format of the agent's `/api/v2/metrics/prometheus`, after the last flush.
//! `--old-agent` plays an agent that exports neither. `--agent VERSION` (2.2, 3.2, 4.2.2, 4.2.3,
//! 4.2, 5.0, 5.1) plays that Fluent Bit's struct sizes and exports: every struct the plugin gets
//! is allocated at that agent's size against an inaccessible page, so a write past its end
//! kills the loader at once (with SIGSEGV), and only the event types that agent routes reach
//! the plugin.
//! Exits 1 when a plugin fails to load or an instance fails to initialise (the agent refuses to
//! start then), 0 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use out_wasm_loader::{AgentVersion, Layout, RunOptions, Time, TimeEncoding, echo_logs};

fn parse_args() -> Result<RunOptions> {
    let mut args = RunOptions::new(PathBuf::new());
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
            "--agent" => args.agent = AgentVersion::parse(&value()?)?,
            "-h" | "--help" => {
                println!(
                    "usage: out-wasm-loader -c CONFIG [-i EVENTS.jsonl] [-e PLUGIN.so] [--records-per-chunk N] [--time S] [--layout metadata|forward] [--time-encoding ext|int|float] [--repeat N] [--stats] [--chunk CHUNK.msgpack ...] [--metrics FILE] [--old-agent] [--agent VERSION]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.config.as_os_str().is_empty() {
        bail!("-c CONFIG is required");
    }
    Ok(args)
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
    out_wasm_loader::run(&parse_args()?)
}
