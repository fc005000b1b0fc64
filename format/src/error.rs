//! The one error of the format: where and why decoding stopped.

use std::fmt;

/// A chunk that is not well-formed msgpack records. Names where decoding stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset into the chunk.
    pub offset: usize,
    pub reason: String,
}

impl DecodeError {
    pub fn new(offset: usize, reason: impl Into<String>) -> Self {
        Self { offset, reason: reason.into() }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed chunk at byte offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for DecodeError {}
