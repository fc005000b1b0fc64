//! Events a test guest shares with its test through a directory the test grants read-write
//! (`wasm_allow_dirs <host dir>:/sync:rw`), so tests wait on what the guest did instead of on
//! clocks. Included by path into the test guests that need it (`#[path] mod sync;`); the test
//! side is `tests/e2e/src/sync.rs`.
//!
//! - A *mark* `<name>.<n>` is an empty file the guest creates to say "this happened once more";
//!   the test counts them. `n` is random and the file created exclusively, so concurrent
//!   instances never share one.
//! - A *gate* is the file `open`: a guest that waits at the gate goes on once the test creates
//!   it. It gives up after [`GIVE_UP`], so a test that never opens it fails instead of hanging.

use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::time::{Duration, Instant};

/// Longer than any test waits for an event: reaching it means the test is already failing.
pub const GIVE_UP: Duration = Duration::from_secs(180);

/// Creates a new mark `<dir>/<name>.<n>`; returns n, a random number (a counter would have to
/// be read and written, or probed file by file, which slows down as marks pile up).
pub fn mark(dir: &str, name: &str) -> Result<u64, String> {
    loop {
        // Keyed from WASI's random source, fresh keys for every RandomState.
        let n = RandomState::new().hash_one(name);
        let path = Path::new(dir).join(format!("{name}.{n}"));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return Ok(n),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(format!("failed to create the mark {}: {err}", path.display())),
        }
    }
}

/// Whether the test created `<dir>/<name>`.
pub fn exists(dir: &str, name: &str) -> bool {
    Path::new(dir).join(name).exists()
}

/// Waits until the test opens the gate (creates `<dir>/open`), or fails after [`GIVE_UP`].
pub fn wait_at_gate(dir: &str) -> Result<(), String> {
    let started = Instant::now();
    while !exists(dir, "open") {
        if started.elapsed() > GIVE_UP {
            return Err(format!("the gate {dir}/open was not opened within {} s", GIVE_UP.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
