//! Test guest `hostile`: misbehaves on purpose, in the way its `mode` key names, so tests can
//! show that no guest hurts the agent.
//!
//! Contract:
//! - Keys: `mode` (required), `target` (a path or `host:port` for the modes that need one),
//!   `every` (default `3`), `sleep_ms` (default `0`), `sync_dir` (optional: the guest path of a
//!   directory the test grants read-write, see `tests/guests/sync.rs`).
//! - init logs `hostile init mode=<mode>` at info and, with `sync_dir`, creates the mark
//!   `<sync_dir>/init.<n>`. Mode `spin-init` then loops forever; mode `panic-init` panics.
//! - With `sync_dir`, every flush first creates the mark `<sync_dir>/flush.<n>`, before anything
//!   else (so a test counts the flushes a guest really ran, traps included).
//! - flush: a chunk none of whose records has `"evil": true` is delivered: the guest logs
//!   `hostile delivered <n> records in flush #<k>` (k counts this instance's flushes from 1)
//!   and answers ok (after sleeping `sleep_ms`). A chunk with an evil
//!   record triggers the mode:
//!   - `spin`: loops forever, computing.
//!   - `stuck` (needs `sync_dir`): creates the mark `stuck.<n>`, then loops forever like `spin`;
//!     while it loops it looks for the file `<sync_dir>/shutdown` and, once it is there, creates
//!     the mark `noticed.<n>` (proof that the flush was still running when the test created it)
//!     and goes on looping.
//!   - `sleep`: sleeps an hour, waiting in a host call (WASI clocks).
//!   - `alloc-until-cap`: allocates 1 MiB blocks and keeps them, without end.
//!   - `huge-alloc`: asks for 1.5 GiB in one allocation (wasm32 allows at most 2 GiB).
//!   - `leak`: keeps 4 MiB it never frees, then delivers (as bindings that leak each call's
//!     arguments do, a little at a time).
//!   - `oob-load`: loads from an address past the end of its linear memory.
//!   - `recursion`: recurses without end.
//!   - `panic`: panics.
//!   - `div-zero`: divides an integer by zero with the machine instruction (no Rust check).
//!   - `flood-log`: writes 100,000 log lines, then answers ok.
//!   - `read`: reads the file `target`; `write`: writes a file at `target`; `connect`: opens a
//!     TCP connection to `target`; `env` reads the environment variable `target`. Success
//!     answers ok and logs `hostile <mode> succeeded: <n> bytes`;
//!     failure answers error with `hostile <mode> denied: <reason>`. `connect` to a name
//!     (`localhost:8080`) looks the name up first, as any socket client does.
//!   - `lookup`: resolves the name `target` with `wasi:sockets/ip-name-lookup`; success logs
//!     `hostile lookup succeeded: <addresses>` (comma-separated) and answers ok; failure
//!     answers error with `hostile lookup denied: <error-code>`.
//!   - `hold-fields`: creates `count` (default 2000) `wasi:http/types.fields`, each with one
//!     header of `size` bytes (default 8192), and keeps them all, flush after flush; then logs
//!     `hostile holds <n> fields` and answers ok.
//!   - `forge-log`: logs, and prints on stdout and stderr, text made to pass for the agent's
//!     own log line (a line break, a timestamp, `[error] [engine]`, a terminal escape
//!     sequence), then answers ok.
//!   - `flood-stdout`: prints 64 MiB on stdout, then answers ok.
//!   - `open-files`: opens the file `target` again and again and closes none (they stay open
//!     while the instance lives); `open-sockets`: the same with TCP connections to `target`
//!     (`host:port`); `open-http`: the same with HTTP GET requests to the URL `target` whose
//!     responses it keeps unread (so each takes a connection of its own). It stops at the first
//!     refusal or after `every` successes, logs `hostile <mode> holds <n>` and answers ok, or
//!     error with `hostile <mode> refused after <n>: <reason>`.
//! - Mode `trap-every`: every `every`-th flush panics, evil or not; the others deliver.
//! - Modes that misbehave in `idle` (WIT 0.3.0), whether or not a chunk ever comes:
//!   `idle-flood` logs 20 lines of 1 MiB each call and asks to be called again at once;
//!   `idle-spin` loops forever in its first `idle` call. With `sync_dir`, each of their idle
//!   calls first creates the mark `idle.<n>`.
//! - exit logs `hostile exit`; in mode `panic-exit` it then panics.

#[path = "../../sync.rs"]
#[allow(dead_code, reason = "hostile makes marks but has no gate")]
mod sync;

use std::hint::black_box;
use std::time::Duration;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, Output, Value, export_output, info};

struct Hostile {
    mode: String,
    target: String,
    every: u64,
    sleep: Duration,
    sync_dir: Option<String>,
    flushes: u64,
    count: usize,
    size: usize,
    /// What `hold-fields` keeps.
    held: Vec<wasi::http::types::Fields>,
    /// What the `open-*` modes hold open.
    kept: Vec<Box<dyn std::any::Any>>,
}

/// Text made to pass for a line of the agent's own log.
const FORGED: &str = "hostile forged\n[2026/12/07 10:00:00] [error] [engine] forged by a guest\u{1b}[2J\u{1b}[31m";

#[inline(never)]
#[allow(unconditional_recursion, reason = "exhausting the stack is the point")]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth) + 1)) + 1
}

impl Hostile {
    fn evil(&mut self) -> Result<(), FlushError> {
        let mode = self.mode.clone();
        match mode.as_str() {
            "spin" => loop {
                black_box(());
            },
            "stuck" => {
                let dir = self.sync_dir.as_deref().ok_or_else(|| FlushError::Error("stuck needs sync_dir".into()))?;
                sync::mark(dir, "stuck").map_err(FlushError::Error)?;
                while !sync::exists(dir, "shutdown") {
                    black_box(());
                }
                sync::mark(dir, "noticed").map_err(FlushError::Error)?;
                loop {
                    black_box(());
                }
            }
            "sleep" => {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(())
            }
            "alloc-until-cap" => {
                let mut kept = Vec::new();
                loop {
                    kept.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "leak" => {
                std::mem::forget(black_box(vec![1u8; 4 << 20]));
                Ok(())
            }
            "huge-alloc" => {
                let v: Vec<u8> = Vec::with_capacity(black_box(3usize << 29));
                black_box(&v);
                Ok(())
            }
            "oob-load" => {
                // SAFETY: none; reading outside linear memory is this guest's purpose.
                let value = unsafe { std::ptr::read_volatile(black_box(0xffff_fff0usize) as *const u64) };
                black_box(value);
                Ok(())
            }
            "recursion" => {
                black_box(recurse(0));
                Ok(())
            }
            "panic" => panic!("hostile guest panics on purpose"),
            "div-zero" => {
                // Rust checks `/` for zero; dividing by a NonZero skips the check, so this is
                // the machine's own `i32.div_u` by zero.
                // SAFETY: none; a zero divisor is this guest's purpose.
                let divisor = unsafe { std::num::NonZeroU32::new_unchecked(black_box(0)) };
                black_box(black_box(7u32) / divisor);
                Ok(())
            }
            "flood-log" => {
                for i in 0..100_000 {
                    info!("hostile flood line {i}");
                }
                Ok(())
            }
            "read" => self.report(std::fs::read(&self.target).map(|bytes| bytes.len())),
            "write" => self.report(std::fs::write(&self.target, b"hostile\n").map(|()| 8)),
            "connect" => self.report(std::net::TcpStream::connect(&self.target).map(|_| 0)),
            "lookup" => match lookup(&self.target) {
                Ok(addresses) => {
                    info!("hostile lookup succeeded: {}", addresses.join(","));
                    Ok(())
                }
                Err(code) => Err(FlushError::Error(format!("hostile lookup denied: {}", code.name()))),
            },
            "env" => self.report(std::env::var(&self.target).map(|v| v.len()).map_err(std::io::Error::other)),
            "hold-fields" => {
                let name = "x-hostile".to_owned();
                let value = vec![b'h'; self.size];
                for _ in 0..self.count {
                    let fields = wasi::http::types::Fields::new();
                    // A refusal (the value is past the host's cap) keeps the empty fields all
                    // the same: the handle is what the host holds.
                    let _ = fields.append(&name, &value);
                    self.held.push(fields);
                }
                info!("hostile holds {} fields", self.held.len());
                Ok(())
            }
            "forge-log" => {
                info!("{FORGED}");
                println!("{FORGED}");
                eprintln!("{FORGED}");
                Ok(())
            }
            "flood-stdout" => {
                use std::io::Write;
                let block = vec![b'o'; 64 << 10];
                let mut stdout = std::io::stdout().lock();
                for _ in 0..1024 {
                    stdout.write_all(&block).map_err(|err| FlushError::Error(err.to_string()))?;
                }
                drop(stdout.flush());
                Ok(())
            }
            "open-files" => {
                let target = self.target.clone();
                self.hold(|| std::fs::File::open(&target).map(|f| Box::new(f) as _).map_err(|e| e.to_string()))
            }
            "open-sockets" => {
                let target = self.target.clone();
                self.hold(|| std::net::TcpStream::connect(&target).map(|s| Box::new(s) as _).map_err(|e| e.to_string()))
            }
            "open-http" => {
                let target = self.target.clone();
                self.hold(|| http_get(&target).map(|r| Box::new(r) as _))
            }
            other => Err(FlushError::Error(format!("unknown mode {other}"))),
        }
    }

    /// Opens with `open` until it fails or `every` are open, keeping all.
    fn hold(&mut self, open: impl Fn() -> Result<Box<dyn std::any::Any>, String>) -> Result<(), FlushError> {
        let before = self.kept.len();
        for _ in 0..self.every {
            match open() {
                Ok(kept) => self.kept.push(kept),
                Err(err) => {
                    let n = self.kept.len() - before;
                    return Err(FlushError::Error(format!("hostile {} refused after {n}: {err}", self.mode)));
                }
            }
        }
        info!("hostile {} holds {}", self.mode, self.kept.len() - before);
        Ok(())
    }

    fn report(&self, outcome: std::io::Result<usize>) -> Result<(), FlushError> {
        match outcome {
            Ok(n) => {
                info!("hostile {} succeeded: {n} bytes", self.mode);
                Ok(())
            }
            Err(err) => Err(FlushError::Error(format!("hostile {} denied: {err}", self.mode))),
        }
    }
}

/// The response to a GET of `url` (`http://host:port/path`), its body unread.
fn http_get(url: &str) -> Result<wasi::http::types::IncomingResponse, String> {
    use wasi::http::types::{Fields, OutgoingRequest, Scheme};
    let rest = url.strip_prefix("http://").ok_or("open-http takes an http:// URL")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).map_err(|()| "scheme")?;
    request.set_authority(Some(authority)).map_err(|()| "authority")?;
    request.set_path_with_query(Some(&path)).map_err(|()| "path")?;
    let response = wasi::http::outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    response.subscribe().block();
    match response.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(format!("{code:?}")),
        Some(Err(())) | None => Err("no response".to_owned()),
    }
}

/// Every address `name` resolves to, as `wasi:sockets/ip-name-lookup` answers.
fn lookup(name: &str) -> Result<Vec<String>, wasi::sockets::network::ErrorCode> {
    use wasi::sockets::network::{ErrorCode, IpAddress};
    let network = wasi::sockets::instance_network::instance_network();
    let stream = wasi::sockets::ip_name_lookup::resolve_addresses(&network, name)?;
    let mut addresses = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => addresses.push(format!("{a}.{b}.{c}.{d}")),
            Ok(Some(IpAddress::Ipv6((a, b, c, d, e, f, g, h)))) => {
                addresses.push(std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).to_string());
            }
            Ok(None) => return Ok(addresses),
            Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
            Err(code) => return Err(code),
        }
    }
}

impl Output for Hostile {
    fn config_schema() -> Vec<ConfigKey> {
        vec![
            ConfigKey::required("mode", "how to misbehave"),
            ConfigKey::optional("target", "path or host:port for read, write and connect").default(""),
            ConfigKey::optional("every", "trap-every: which flushes panic; open-*: how many to open").default("3"),
            ConfigKey::optional("sleep_ms", "how long a delivering flush takes").default("0"),
            ConfigKey::optional("sync_dir", "a granted directory for the marks tests count"),
            ConfigKey::optional("count", "hold-fields: fields made per flush").default("2000"),
            ConfigKey::optional("size", "hold-fields: bytes of each header value").default("8192"),
        ]
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let mode = ctx.config.get("mode").unwrap_or_default().to_owned();
        info!("hostile init mode={mode}");
        let sync_dir = ctx.config.get("sync_dir").map(str::to_owned);
        if let Some(dir) = &sync_dir {
            sync::mark(dir, "init")?;
        }
        if mode == "panic-init" {
            panic!("hostile guest panics in init");
        }
        if mode == "spin-init" {
            loop {
                black_box(());
            }
        }
        Ok(Hostile {
            mode,
            target: ctx.config.get("target").unwrap_or_default().to_owned(),
            every: ctx.config.parse("every")?.unwrap_or(3),
            sleep: Duration::from_millis(ctx.config.parse("sleep_ms")?.unwrap_or(0)),
            sync_dir,
            flushes: 0,
            count: ctx.config.parse("count")?.unwrap_or(2000),
            size: ctx.config.parse("size")?.unwrap_or(8192),
            held: Vec::new(),
            kept: Vec::new(),
        })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        self.flushes += 1;
        if let Some(dir) = &self.sync_dir {
            sync::mark(dir, "flush").map_err(FlushError::Error)?;
        }
        if self.mode == "trap-every" && self.flushes.is_multiple_of(self.every) {
            panic!("hostile guest panics on flush {}", self.flushes);
        }
        let mut records = 0;
        let mut evil = false;
        for event in chunk.events() {
            evil |= event?.body.get("evil") == Some(&Value::Bool(true));
            records += 1;
        }
        if evil {
            return self.evil();
        }
        std::thread::sleep(self.sleep);
        info!("hostile delivered {records} records in flush #{}", self.flushes);
        Ok(())
    }

    fn idle(&mut self, _budget: Duration) -> Option<Duration> {
        if let Some(dir) = &self.sync_dir
            && self.mode.starts_with("idle-")
        {
            let _ = sync::mark(dir, "idle");
        }
        match self.mode.as_str() {
            "idle-flood" => {
                let line = "i".repeat(1 << 20);
                for _ in 0..20 {
                    info!("{line}");
                }
                Some(Duration::ZERO)
            }
            "idle-spin" => loop {
                black_box(());
            },
            _ => None,
        }
    }

    fn exit(&mut self) {
        info!("hostile exit");
        if self.mode == "panic-exit" {
            panic!("hostile guest panics in exit");
        }
    }
}

export_output!(Hostile);
