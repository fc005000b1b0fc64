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
//! The host renders the lines with these keys (the guest asks for JSON lines with them) and this
//! guest writes them through. With `wasm_event_format msgpack` it renders them itself, with the
//! same renderer (the SDK's, the host's).
//!
//! It counts the records it printed per tag in the guest metric `records_printed` (exported as
//! `fluentbit_wasm_guest_records_printed_total`), as the other languages' `stdout` examples do.

use std::io::Write;

use out_wasm_guest::metrics::Counter;
use out_wasm_guest::{
    Chunk, Config, ConfigKey, EventFormat, FlushError, InitContext, JsonLines, Output, export_output,
};

struct Stdout {
    /// `None` when the host delivers ready-made JSON lines.
    format: Option<JsonLines>,
    buffer: Vec<u8>,
    printed: Counter,
}

impl Output for Stdout {
    fn config_schema() -> Vec<ConfigKey> {
        JsonLines::config_keys()
    }

    fn preferred_event_format(config: &Config) -> Result<EventFormat, String> {
        Ok(EventFormat::json_lines(&JsonLines::from_config(config)?))
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let format = match ctx.event_format {
            EventFormat::Msgpack => Some(JsonLines::from_config(&ctx.config)?),
            // Rendered by the host with this guest's keys (or, when the operator chose
            // json_lines for a guest of theirs, the same).
            EventFormat::JsonLines(_) => None,
            EventFormat::OtlpJson => {
                return Err(
                    "this guest prints the agent's JSON lines: use wasm_event_format msgpack or json_lines".into()
                );
            }
        };
        let printed = Counter::declare("records_printed", "records printed on stdout", &["tag"])?;
        Ok(Stdout { format, buffer: Vec::new(), printed })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        let lines = match &self.format {
            None => chunk.bytes(),
            Some(format) => {
                self.buffer.clear();
                format.write_chunk(&mut self.buffer, chunk.bytes())?;
                &self.buffer
            }
        };
        // One write per chunk, as the agent does, so lines of concurrent flushes never interleave.
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(lines)
            .and_then(|()| stdout.flush())
            .map_err(|err| FlushError::Retry(format!("failed to write to stdout: {err}")))?;
        let records = lines.iter().filter(|&&byte| byte == b'\n').count();
        // A refusal (the operator's series cap) costs the metric, never the records: the host
        // already counts and logs it.
        let _ = self.printed.add(&[chunk.tag()], records as f64);
        Ok(())
    }
}

export_output!(Stdout);
