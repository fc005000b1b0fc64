//! The kept-alive HTTP/1.1 connections of one output instance (`wasm_http_keepalive`), shared by
//! all its guest instances and versions, so an HTTPS output does not pay a handshake per flush.
//!
//! A connection goes back here once its response has been read to the end, and is closed when
//! it has not been used for the keep-alive time, when the server closes it, or when the output
//! exits (its tasks run on the instance's I/O runtime, which exit shuts down: no thread of its
//! own). Taking one back is no shortcut past the sandbox: every request is judged by the
//! network policy before it is sent (`sandbox::http`), whichever connection carries it.
//!
//! Each connection, in use or idle, holds a place among the output's descriptors
//! ([`crate::sandbox::descriptors`], `wasm_max_descriptors`) for as long as it is open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use hyper::client::conn::http1::SendRequest;
use wasmtime_wasi_http::WasiBody;

use crate::sandbox::descriptors::Descriptors;
use crate::sandbox::destinations::Destinations;

/// Which connections may carry a request: the same scheme, host and port.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

/// The sending half of an HTTP/1.1 connection.
pub type Sender = SendRequest<WasiBody>;

struct Idle {
    id: u64,
    sender: Sender,
}

/// The idle connections of one output instance.
pub struct Connections {
    /// How long a connection may stay unused before it is closed; `None`: no keep-alive, every
    /// request has a connection of its own.
    keep_alive: Option<Duration>,
    idle: Mutex<HashMap<Endpoint, Vec<Idle>>>,
    next: AtomicU64,
    /// Connections made, and requests sent on a kept one, since the output started.
    opened: AtomicU64,
    reused: AtomicU64,
    /// The output's descriptors, which its connections count against.
    descriptors: Arc<Descriptors>,
    /// What the output's requests asked of each destination.
    destinations: Destinations,
}

impl Connections {
    pub fn new(keep_alive: Option<Duration>, descriptors: Arc<Descriptors>) -> Arc<Self> {
        Arc::new(Self {
            keep_alive,
            idle: Mutex::default(),
            next: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            destinations: Destinations::default(),
            descriptors,
        })
    }

    /// The descriptors of the output: its guests' files and sockets, and these connections.
    pub fn descriptors(&self) -> &Arc<Descriptors> {
        &self.descriptors
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, HashMap<Endpoint, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection to `endpoint` that can take a request now, if there is one. The most
    /// recently used goes first: the one least likely to have been closed by the server.
    pub fn take(&self, endpoint: &Endpoint) -> Option<Sender> {
        let mut idle = self.idle();
        let list = idle.get_mut(endpoint)?;
        while let Some(Idle { sender, .. }) = list.pop() {
            if sender.is_ready() {
                self.reused.fetch_add(1, Ordering::Relaxed);
                return Some(sender);
            }
            // Closed by the server, or not reusable (`Connection: close`): dropping it ends it.
        }
        None
    }

    /// Takes `sender` back after its exchange ended: once hyper has finished the response it
    /// is idle, and it is closed after the keep-alive time unused. Call from a task of the
    /// instance's I/O runtime.
    pub fn give_back(self: &Arc<Self>, endpoint: Endpoint, mut sender: Sender) {
        let Some(keep_alive) = self.keep_alive else { return };
        let connections: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            // Ready once hyper has read the response to the end; an error or no readiness
            // within the keep-alive time means the connection cannot be reused.
            if !matches!(tokio::time::timeout(keep_alive, sender.ready()).await, Ok(Ok(()))) {
                return;
            }
            let Some(this) = connections.upgrade() else { return };
            let id = this.next.fetch_add(1, Ordering::Relaxed);
            this.idle().entry(endpoint.clone()).or_default().push(Idle { id, sender });
            drop(this);
            tokio::time::sleep(keep_alive).await;
            if let Some(this) = connections.upgrade() {
                this.forget(&endpoint, id);
            }
        });
    }

    /// Closes the connection `id` if it is still idle.
    fn forget(&self, endpoint: &Endpoint, id: u64) {
        let mut idle = self.idle();
        if let Some(list) = idle.get_mut(endpoint) {
            list.retain(|entry| entry.id != id);
            if list.is_empty() {
                idle.remove(endpoint);
            }
        }
    }

    /// A new connection was made for a request.
    /// What the output's requests asked of each destination.
    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    pub fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections made, and requests sent on a kept-alive one, so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.opened.load(Ordering::Relaxed), self.reused.load(Ordering::Relaxed))
    }

    /// Closes every idle connection (the output exits).
    pub fn close_all(&self) {
        self.idle().clear();
    }
}
