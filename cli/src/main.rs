//! `out-wasm`: the plugin author's command. `check` validates a guest component before it is
//! deployed, `new` starts a guest project, `run` drives `out_wasm.so` from an agent config
//! without the agent, `bench` measures a guest's throughput through the real plugin, `push`
//! and `sign` publish a guest to an OCI registry for `wasm_path oci://...`, and `replay` runs
//! the flight recorder's failed flushes (`wasm_record`) again.

mod bench;
mod check;
mod new;
mod progress;
mod replay;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use out_wasm::inspect::oci;
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
        /// The guest component (.wasm), or `oci://REGISTRY/REPOSITORY:TAG` (or `@sha256:...`):
        /// pulled with every check the plugin makes, then checked.
        guest: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
        /// With an `oci://` guest: `off`, `digest` or a cosign public key (`wasm_oci_verify`).
        #[arg(long, value_name = "off|digest|KEY.pub")]
        verify: Option<String>,
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
    /// Prints the host's `wasm_*` keys (name, default, the release that added it, meaning) as
    /// README's Markdown table: the keys an `[OUTPUT] Name wasm` section may set for the host.
    Keys,
    /// Pushes a guest component to a registry as a CNCF WebAssembly artifact (config
    /// `application/vnd.wasm.config.v0+json`, one `application/wasm` layer).
    Push {
        /// The guest component (.wasm).
        guest: PathBuf,
        /// `oci://REGISTRY/REPOSITORY:TAG`.
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Signs what a reference names now, stored as cosign stores signatures (`sha256-D.sig`),
    /// for `wasm_oci_verify KEY.pub`.
    Sign {
        /// `oci://REGISTRY/REPOSITORY:TAG` or `...@sha256:DIGEST`.
        reference: String,
        /// An unencrypted ECDSA P-256 private key, PKCS#8 PEM
        /// (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
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
    /// Runs the flushes the flight recorder kept (`wasm_record DIR`) again through out_wasm.so,
    /// against the recorded version or another, and prints what each answered and logged then
    /// and now.
    Replay {
        /// The recorder's directory (`wasm_record`), or one output's directory in it.
        dir: PathBuf,
        /// Replay against this component instead of the recorded version (a fix to check).
        #[arg(long)]
        guest: Option<PathBuf>,
        /// The plugin library (default: out_wasm.so next to this command).
        #[arg(short = 'e', long)]
        plugin: Option<PathBuf>,
        /// Keys to set or replace (the recorder leaves secrets out: give them here).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        config: Vec<(String, String)>,
    },
}

/// How a command reaches a registry: the keys an `[OUTPUT]` section would have.
#[derive(clap::Args)]
struct RegistryArgs {
    /// A Docker config.json with the registry's credentials (`wasm_oci_auth_file`; default
    /// `~/.docker/config.json`).
    #[arg(long, value_name = "CONFIG.json")]
    auth_file: Option<PathBuf>,
    /// CA certificates (PEM) the registry's certificate may chain to (`wasm_tls_ca_file`).
    #[arg(long, value_name = "CA.pem")]
    ca_file: Option<PathBuf>,
    /// Speak plain HTTP to a registry not on loopback (`wasm_oci_insecure_http on`); a registry
    /// on loopback (`localhost:5000`) is spoken to over plain HTTP when it does not speak TLS.
    #[arg(long)]
    insecure_http: bool,
}

impl RegistryArgs {
    fn access(self) -> oci::Access {
        oci::Access { auth_file: self.auth_file, ca_file: self.ca_file, insecure_http: self.insecure_http }
    }
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

/// The file to check: `guest` itself, or an `oci://` reference pulled (with the plugin's checks)
/// into a store of its own, kept while the check runs.
fn pulled(guest: &Path, verify: Option<&str>, access: oci::Access) -> Result<(PathBuf, Option<TempStore>)> {
    let Some(reference) = guest.to_str().filter(|g| oci::is_reference(g)) else {
        return Ok((guest.to_owned(), None));
    };
    let store = TempStore(std::env::temp_dir().join(format!("out-wasm-check-{}", std::process::id())));
    let (manifest, path) = oci::pull(reference, verify, &store.0, &access)?;
    println!("pulled:     {reference} (manifest {manifest})");
    Ok((path, Some(store)))
}

/// A directory removed when dropped.
struct TempStore(PathBuf);

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check { guest, registry, verify, config, init, no_cache } => {
            pulled(&guest, verify.as_deref(), registry.access()).and_then(|(guest, _store)| {
                check::check(&guest, (init || !config.is_empty()).then_some(&config[..]), !no_cache)
            })
        }
        Command::Keys => {
            print!("{}", out_wasm::inspect::host_keys());
            Ok(ExitCode::SUCCESS)
        }
        Command::Push { guest, reference, registry } => {
            oci::push(&guest, &reference, &registry.access()).map(|digest| {
                println!("pushed {} to {reference}: manifest {digest}", guest.display());
                println!(
                    "pin it with: wasm_path {}@{digest}",
                    reference.rsplit_once(':').map_or(&reference[..], |(r, _)| r)
                );
                ExitCode::SUCCESS
            })
        }
        Command::Sign { reference, key, registry } => {
            oci::sign(&reference, &key, &registry.access()).map(|(digest, tag)| {
                println!("signed {reference} (manifest {digest}): {tag}");
                ExitCode::SUCCESS
            })
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
        Command::Replay { dir, guest, plugin, config } => replay::replay(&dir, guest.as_deref(), plugin, &config),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("out-wasm: {err:#}");
            ExitCode::FAILURE
        }
    }
}
