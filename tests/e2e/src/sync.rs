//! Waiting on events, never on clocks: the test side of `tests/guests/sync.rs` (a directory a
//! test guest is granted read-write, where the guest leaves marks and waits at gates the test
//! opens), and the bounds that turn a hang into a failure.
//!
//! Every bound here is generous on purpose: reaching one means something hung, not that
//! something was slow. No test asserts how long anything took.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a test waits for an event before it calls it a hang.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Polls `done` until it holds; panics naming `what` after [`EVENT_TIMEOUT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < EVENT_TIMEOUT, "no {what} within {} s: hung", EVENT_TIMEOUT.as_secs());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A directory shared with a test guest: granted as [`SyncDir::GUEST`], read and written here.
pub struct SyncDir {
    host: PathBuf,
}

impl SyncDir {
    /// Where the guest sees the directory; pass it as the guest's `gate_dir` / `sync_dir`.
    pub const GUEST: &'static str = "/sync";

    /// A fresh, empty directory for test `test`.
    pub fn new(test: &str) -> Self {
        let host = crate::scratch_dir(&format!("sync-{test}-{}", std::process::id()));
        std::fs::remove_dir_all(&host).expect("failed to clear the sync dir");
        std::fs::create_dir_all(&host).expect("failed to create the sync dir");
        Self { host }
    }

    /// The `wasm_allow_dirs` value that grants it to the guest read-write.
    pub fn grant(&self) -> String {
        format!("{}:{}:rw", self.host.display(), Self::GUEST)
    }

    /// How many marks `<name>.<n>` the guest has made.
    pub fn marks(&self, name: &str) -> usize {
        let prefix = format!("{name}.");
        std::fs::read_dir(&self.host)
            .expect("failed to list the sync dir")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|file| file.strip_prefix(&prefix).is_some_and(|k| k.parse::<u64>().is_ok()))
            .count()
    }

    /// Waits until the guest has made at least `n` marks `<name>.<n>`; panics after
    /// [`EVENT_TIMEOUT`] saying `what` did not happen.
    pub fn wait_for_marks(&self, name: &str, n: usize, what: &str) {
        let started = Instant::now();
        loop {
            let made = self.marks(name);
            if made >= n {
                return;
            }
            assert!(
                started.elapsed() < EVENT_TIMEOUT,
                "{what}: expected {n} '{name}' marks, the guest made {made} within {} s",
                EVENT_TIMEOUT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Creates the file `name`, which a guest may be waiting for.
    pub fn create(&self, name: &str) {
        std::fs::write(self.host.join(name), b"").expect("failed to create a file in the sync dir");
    }

    /// Lets every guest waiting at the gate, and every later one, go on.
    pub fn open_gate(&self) {
        self.create("open");
    }

    /// Opens the gate when dropped, so that a failing test never leaves a guest waiting (and a
    /// scope joining its flush thread hanging).
    pub fn open_gate_on_drop(&self) -> GateOpener<'_> {
        GateOpener(self)
    }
}

pub struct GateOpener<'a>(&'a SyncDir);

impl Drop for GateOpener<'_> {
    fn drop(&mut self) {
        self.0.open_gate();
    }
}

/// Ends the test process with a message if it is still alive after [`EVENT_TIMEOUT`], for
/// calls that have no other bound (a guest the host failed to stop would hold its flush
/// forever). Disarmed when dropped.
pub struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Arms a [`Watchdog`] for `what`.
pub fn watchdog(what: impl Into<String>) -> Watchdog {
    let what = what.into();
    let (disarm, armed) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = armed.recv_timeout(EVENT_TIMEOUT) {
            eprintln!("{what} did not end within {} s: hung; failing the test process", EVENT_TIMEOUT.as_secs());
            std::process::exit(101);
        }
    });
    Watchdog { disarm: Some(disarm), thread: Some(thread) }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
