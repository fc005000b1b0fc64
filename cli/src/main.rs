//! `out-wasm`: the plugin author's command. `check` validates a guest component before it is
//! deployed, `new` starts a guest project, `run` drives `out_wasm.so` from an agent config
//! without the agent, and `bench` measures a guest's throughput through the real plugin.

mod bench;
mod check;
mod new;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use out_wasm_loader::{AgentVersion, Layout, RunOptions, Time, TimeEncoding};

#[derive(Parser)]
#[command(name = "out-wasm", version, about = "Check, start, run and measure out_wasm guest components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks that a guest component loads in out_wasm: its world and WIT version, its imports
    /// against what the host provides, its declared keys, event format and event types.
    Check {
        /// The guest component (.wasm).
        guest: PathBuf,
        /// Also resolve this config (an `[OUTPUT]` section's KEY=VALUE pairs, `wasm_*` keys
        /// included) and run the guest's init once, then exit.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        config: Vec<(String, String)>,
        /// Run init with the guest's defaults alone (as `--config` with no pairs).
        #[arg(long)]
        init: bool,
        /// Compile without the compile cache (by default the plugin's own, so a checked guest
        /// starts warm).
        #[arg(long)]
        no_cache: bool,
    },
    /// Creates a guest project that builds with one command and passes `check`.
    New {
        language: new::Language,
        /// Name of the project, its directory and its component (`NAME.wasm`).
        name: String,
        /// Where to create the project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The out_wasm checkout whose SDK and build scripts the project uses (default: the
        /// release archive this command is in, else the checkout it was built from).
        #[arg(long, env = "OUT_WASM_ROOT")]
        root: Option<PathBuf>,
    },
    /// Runs the external outputs of a Fluent Bit config on JSON lines, as the agent would.
    Run(RunArgs),
    /// Measures a guest's records/s through out_wasm.so, in both event formats.
    Bench {
        guest: PathBuf,
        /// Records in the generated corpus.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// Records per chunk (the agent flushes chunks of up to ~2 MB).
        #[arg(long, default_value_t = 256)]
        records_per_chunk: usize,
        /// The plugin library (default: out_wasm.so next to this command).
        #[arg(short = 'e', long)]
        plugin: Option<PathBuf>,
        /// Extra keys for the guest's `[OUTPUT]` section.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        config: Vec<(String, String)>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The agent config (classic or YAML) whose external `[OUTPUT]`s run.
    #[arg(short, long)]
    config: PathBuf,
    /// JSON lines, one record each (default: stdin).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Also load this plugin library (besides the config's plugins file).
    #[arg(short = 'e', long = "plugin")]
    plugins: Vec<PathBuf>,
    #[arg(long, default_value_t = 256)]
    records_per_chunk: usize,
    /// Every record's time, in seconds since the epoch (default: now).
    #[arg(long)]
    time: Option<f64>,
    #[arg(long, value_enum, default_value_t = LayoutArg::Metadata)]
    layout: LayoutArg,
    #[arg(long, value_enum, default_value_t = EncodingArg::Ext)]
    time_encoding: EncodingArg,
    /// Flush the whole input this many times.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Print records/s and MB/s per output.
    #[arg(long)]
    stats: bool,
    /// Flush this file's bytes as one chunk, exactly as given, instead of chunks made from JSON
    /// lines (repeatable).
    #[arg(long = "chunk")]
    chunks: Vec<PathBuf>,
    /// Play this Fluent Bit (2.2, 3.2, 4.2.2, 4.2.3, 4.2, 5.0, 5.1): its struct sizes, its
    /// exported functions and the event types it routes to the plugin.
    #[arg(long, value_parser = AgentVersion::parse, default_value = "5.1")]
    agent: AgentVersion,
}

#[derive(Clone, Copy, ValueEnum)]
enum LayoutArg {
    /// `[[time, metadata], body]`, what current agents send.
    Metadata,
    /// `[time, body]`, older agents and some inputs.
    Forward,
}

#[derive(Clone, Copy, ValueEnum)]
enum EncodingArg {
    /// msgpack EventTime (ext type 0).
    Ext,
    Int,
    Float,
}

impl RunArgs {
    fn options(self) -> RunOptions {
        let mut options = RunOptions::new(self.config);
        options.input = self.input;
        options.plugins = self.plugins;
        options.per_chunk = self.records_per_chunk;
        options.time =
            self.time.map(|secs| Time { seconds: secs as u32, nanoseconds: (secs.fract() * 1e9).round() as u32 });
        options.layout = match self.layout {
            LayoutArg::Metadata => Layout::WithMetadata,
            LayoutArg::Forward => Layout::Forward,
        };
        options.encoding = match self.time_encoding {
            EncodingArg::Ext => TimeEncoding::EventTime,
            EncodingArg::Int => TimeEncoding::Integer,
            EncodingArg::Float => TimeEncoding::Float,
        };
        options.repeat = self.repeat;
        options.stats = self.stats;
        options.chunk_files = self.chunks;
        options.agent = self.agent;
        options
    }
}

fn key_value(arg: &str) -> Result<(String, String)> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.to_owned())),
        _ => bail!("expected KEY=VALUE, got {arg:?}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check { guest, config, init, no_cache } => {
            check::check(&guest, (init || !config.is_empty()).then_some(&config[..]), !no_cache)
        }
        Command::New { language, name, dir, root } => new::new(language, &name, &dir, root.as_deref()),
        Command::Run(args) => {
            out_wasm_loader::echo_logs(true);
            // The loader's own words, so scripts reading its output see no difference.
            Ok(out_wasm_loader::run(&args.options()).unwrap_or_else(|err| {
                eprintln!("[loader] error: {err:#}");
                ExitCode::FAILURE
            }))
        }
        Command::Bench { guest, records, records_per_chunk, plugin, config } => {
            bench::bench(&guest, records, records_per_chunk, plugin, &config)
        }
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("out-wasm: {err:#}");
            ExitCode::FAILURE
        }
    }
}
