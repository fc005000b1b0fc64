//! `stdout`: prints every record as one JSON line on the agent's stdout, byte for byte like the
//! agent's built-in `stdout` output with `format json_lines`.
//!
//! Keys (the built-in output's, with its defaults):
//! - `json_date_key` (`date`): key of the record time; `false`/`off`/`no` leaves it out.
//! - `json_date_format` (`double`): `double`, `epoch`, `epoch_ms`, `iso8601` or
//!   `java_sql_timestamp`.
//! - `escape_unicode` (`on`): the agent's `[SERVICE] json.escape_unicode`; `on` writes non-ASCII
//!   as `\uXXXX` like the agent does by default, `off` keeps UTF-8 as is.
//!
//! With `wasm_event_format json_lines` the host renders the lines (with the keys' defaults) and
//! this guest writes them through; other key values then need `msgpack`, and init says so.

use std::io::Write;

use out_wasm_guest::{Chunk, ConfigKey, EventFormat, FlushError, InitContext, JsonLines, Output, export_output};

struct Stdout {
    /// `None` when the host delivers ready-made JSON lines.
    format: Option<JsonLines>,
    buffer: Vec<u8>,
}

impl Output for Stdout {
    fn config_schema() -> Vec<ConfigKey> {
        JsonLines::config_keys()
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let format = JsonLines::from_config(&ctx.config)?;
        let format = match ctx.event_format {
            EventFormat::Msgpack => Some(format),
            EventFormat::JsonLines if format.is_default() => None,
            EventFormat::JsonLines => {
                return Err("json_date_key, json_date_format and escape_unicode other than their defaults need \
                            wasm_event_format msgpack: the host renders json_lines with the defaults"
                    .into());
            }
            EventFormat::OtlpJson => {
                return Err(
                    "this guest prints the agent's JSON lines: use wasm_event_format msgpack or json_lines".into()
                );
            }
        };
        Ok(Stdout { format, buffer: Vec::new() })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        let lines = match &self.format {
            None => chunk.bytes(),
            Some(format) => {
                self.buffer.clear();
                for event in chunk.events() {
                    format.write(&mut self.buffer, &event?);
                }
                &self.buffer
            }
        };
        // One write per chunk, as the agent does, so lines of concurrent flushes never interleave.
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(lines)
            .and_then(|()| stdout.flush())
            .map_err(|err| FlushError::Retry(format!("failed to write to stdout: {err}")))
    }
}

export_output!(Stdout);
