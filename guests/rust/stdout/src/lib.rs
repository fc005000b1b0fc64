//! `stdout`: prints every record as one JSON line on the agent's stdout, byte for byte like the
//! agent's built-in `stdout` output with `format json_lines`.
//!
//! Keys (the built-in output's, with its defaults):
//! - `json_date_key` (`date`): key of the record time; `false`/`off`/`no` leaves it out.
//! - `json_date_format` (`double`): `double`, `epoch`, `epoch_ms`, `iso8601` or
//!   `java_sql_timestamp`.
//! - `escape_unicode` (`on`): the agent's `[SERVICE] json.escape_unicode`; `on` writes non-ASCII
//!   as `\uXXXX` like the agent does by default, `off` keeps UTF-8 as is.

use std::io::Write;

use out_wasm_guest::{Chunk, ConfigKey, DateFormat, FlushError, InitContext, Output, export_output, write_json_line};

struct Stdout {
    date_key: Option<String>,
    date_format: DateFormat,
    escape_unicode: bool,
    buffer: Vec<u8>,
}

fn switch(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("invalid value {value:?} for key '{key}': expected on or off")),
    }
}

impl Output for Stdout {
    fn config_schema() -> Vec<ConfigKey> {
        vec![
            ConfigKey::optional("json_date_key", "key of the record time; off to leave it out").default("date"),
            ConfigKey::optional("json_date_format", "double, epoch, epoch_ms, iso8601 or java_sql_timestamp")
                .default("double"),
            ConfigKey::optional("escape_unicode", "on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8")
                .default("on"),
        ]
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let config = &ctx.config;
        let date_key = config.get("json_date_key").unwrap_or("date");
        // Like the agent: a boolean-looking "false" disables the key, anything else names it.
        let date_key = match switch("json_date_key", date_key) {
            Ok(false) => None,
            _ => Some(date_key.to_owned()),
        };
        Ok(Stdout {
            date_key,
            date_format: config.parse("json_date_format")?.unwrap_or_default(),
            escape_unicode: switch("escape_unicode", config.get("escape_unicode").unwrap_or("on"))?,
            buffer: Vec::new(),
        })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        self.buffer.clear();
        for event in chunk.events() {
            write_json_line(&mut self.buffer, &event?, self.date_key.as_deref(), self.date_format, self.escape_unicode);
        }
        // One write per chunk, as the agent does, so lines of concurrent flushes never interleave.
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&self.buffer)
            .and_then(|()| stdout.flush())
            .map_err(|err| FlushError::Retry(format!("failed to write to stdout: {err}")))
    }
}

export_output!(Stdout);
