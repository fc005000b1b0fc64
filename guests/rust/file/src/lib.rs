//! `file`: appends every record as one JSON line (the agent's `json_lines` format, like the
//! `stdout` guest) to a file in a directory the operator granted with `wasm_allow_dirs`.
//!
//! Keys:
//! - `path` (required): the file, as the guest sees it (inside a granted directory), e.g.
//!   `/out/records.jsonl`.
//! - `max_size` (`0`: never): rotate when the file reaches this size (`10M`, `512K`, bytes):
//!   `records.jsonl` becomes `records.jsonl.1`, `.1` becomes `.2`, and so on.
//! - `rotate_keep` (`5`): how many rotated files to keep.
//! - `json_date_key` (`date`), `json_date_format` (`double`), `escape_unicode` (`on`): as for
//!   the `stdout` guest.
//!
//! A chunk is written with one write; if it fails (disk full, directory gone) the flush asks
//! the agent to retry. Without a grant for `path` the instance fails to start.

use std::fs::{File, OpenOptions};
use std::io::Write;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, JsonLines, Output, export_output, info};

struct FileOutput {
    path: String,
    file: File,
    size: u64,
    max_size: u64,
    keep: u32,
    format: JsonLines,
    buffer: Vec<u8>,
}

fn parse_size(value: &str) -> Result<u64, String> {
    let upper = value.trim().to_ascii_uppercase();
    let (number, shift) = match upper.chars().last() {
        Some('K') => (&upper[..upper.len() - 1], 10),
        Some('M') => (&upper[..upper.len() - 1], 20),
        Some('G') => (&upper[..upper.len() - 1], 30),
        _ => (upper.as_str(), 0),
    };
    number.trim().parse::<u64>().map(|n| n << shift).map_err(|_| format!("invalid size {value:?} for key 'max_size'"))
}

fn open(path: &str) -> Result<(File, u64), String> {
    let file =
        OpenOptions::new().create(true).append(true).open(path).map_err(|err| {
            format!("failed to open {path}: {err} (is its directory granted with wasm_allow_dirs, rw?)")
        })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((file, size))
}

impl FileOutput {
    fn rotate(&mut self) -> Result<(), String> {
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(format!("{}.{n}", self.path), format!("{}.{}", self.path, n + 1));
        }
        if self.keep > 0 {
            std::fs::rename(&self.path, format!("{}.1", self.path)).map_err(|e| format!("failed to rotate: {e}"))?;
        } else {
            std::fs::remove_file(&self.path).map_err(|e| format!("failed to rotate: {e}"))?;
        }
        (self.file, self.size) = open(&self.path)?;
        info!("rotated {}", self.path);
        Ok(())
    }
}

impl Output for FileOutput {
    fn config_schema() -> Vec<ConfigKey> {
        let mut keys = vec![
            ConfigKey::required("path", "the file, as the guest sees it, inside a granted directory"),
            ConfigKey::optional("max_size", "rotate at this size (0: never)").default("0"),
            ConfigKey::optional("rotate_keep", "rotated files to keep").default("5"),
        ];
        keys.extend(JsonLines::config_keys());
        keys
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let config = &ctx.config;
        let path = config.get("path").unwrap_or_default().to_owned();
        let (file, size) = open(&path)?;
        Ok(FileOutput {
            path,
            file,
            size,
            max_size: parse_size(config.get("max_size").unwrap_or("0"))?,
            keep: config.parse("rotate_keep")?.unwrap_or(5),
            format: JsonLines::from_config(config)?,
            buffer: Vec::new(),
        })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        self.buffer.clear();
        self.format.write_chunk(&mut self.buffer, chunk.bytes())?;
        if self.max_size > 0 && self.size > 0 && self.size + self.buffer.len() as u64 > self.max_size {
            self.rotate().map_err(FlushError::Retry)?;
        }
        self.file
            .write_all(&self.buffer)
            .and_then(|()| self.file.flush())
            .map_err(|err| FlushError::Retry(format!("failed to write {}: {err}", self.path)))?;
        self.size += self.buffer.len() as u64;
        Ok(())
    }
}

export_output!(FileOutput);
