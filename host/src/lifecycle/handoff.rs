//! The hand-off between an agent thread and a worker thread: spin briefly, then park.
//!
//! A short guest call answers in a few microseconds, but a parked thread takes tens of
//! microseconds to wake on a busy or virtualised machine, which would be most of a small flush's
//! cost. Each side therefore polls its channel for a moment before it parks, and gives up the
//! core at once when the answer does not come: the spin is bounded so a long guest call or an
//! idle output costs no more than `SPIN` of CPU per hand-off.

use std::sync::mpsc::{Receiver, RecvError, TryRecvError};
use std::time::{Duration, Instant};

/// How long a waiting side polls before it parks.
pub const SPIN: Duration = Duration::from_micros(50);

/// `rx.recv()`, polling for up to `SPIN` first.
pub fn recv<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let started = Instant::now();
    loop {
        // Reading the clock costs more than a poll, so poll a batch per reading.
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(value) => return Ok(value),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        if started.elapsed() >= SPIN {
            return rx.recv();
        }
    }
}
