//! `http`: POSTs each chunk's records as one JSON array to an endpoint, over the host's
//! outbound HTTP (`wasi:http`). The endpoint's `host:port` must be granted with
//! `wasm_allow_net`.
//!
//! Keys:
//! - `url` (required): `http://host:port/path` or `https://...`.
//! - `json_date_key` (`date`), `json_date_format` (`double`), `escape_unicode` (`on`): as for
//!   the `stdout` guest.
//!
//! Answers: 2xx is delivered; 5xx, 408, 429 and failures to connect or to get an answer are
//! retried (the agent flushes the chunk again later); other 4xx drop the chunk (the endpoint
//! refuses it and would again), as does a request the host denies (no grant).
//! One request per chunk, so a retried chunk is sent whole and once more; nothing is split
//! across requests that could half-succeed. Each request carries the chunk's delivery id as its
//! `Idempotency-Key` header: the same on every delivery of the chunk, so an endpoint that
//! honours the header stores a retried chunk once.
//!
//! The host renders the records as JSON lines with the three keys (the guest asks for that
//! format); the body is those lines joined as one array.
//!
//! The request gets the flush's deadline, less a margin: an endpoint too slow to answer in time
//! is a clean retry, not a deadline fault that discards the instance. Delivery is at least once:
//! a request the endpoint took but answered too late is sent again with the retried chunk.

mod post;

use out_wasm_guest::{
    Chunk, Config, ConfigKey, EventFormat, FlushError, InitContext, JsonLines, Output, debug, export_output,
};

use crate::post::{Endpoint, answer, parse_url, post, request_budget};

struct HttpOutput {
    endpoint: Endpoint,
    /// `None` when the host renders the lines (the guest's preference); the renderer otherwise
    /// (`wasm_event_format msgpack`).
    format: Option<JsonLines>,
    lines: Vec<u8>,
}

impl Output for HttpOutput {
    fn config_schema() -> Vec<ConfigKey> {
        let mut keys = vec![ConfigKey::required("url", "where to POST: http://host:port/path or https://...")];
        keys.extend(JsonLines::config_keys());
        keys
    }

    fn preferred_event_format(config: &Config) -> Result<EventFormat, String> {
        Ok(EventFormat::json_lines(&JsonLines::from_config(config)?))
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let config = &ctx.config;
        let format = match ctx.event_format {
            EventFormat::JsonLines(_) => None,
            EventFormat::Msgpack => Some(JsonLines::from_config(config)?),
            EventFormat::OtlpJson => {
                return Err("this guest posts JSON records: use wasm_event_format json_lines or msgpack".into());
            }
        };
        Ok(HttpOutput { endpoint: parse_url(config.get("url").unwrap_or_default())?, format, lines: Vec::new() })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        let lines = match &self.format {
            None => chunk.bytes(),
            Some(format) => {
                self.lines.clear();
                format.write_chunk(&mut self.lines, chunk.bytes())?;
                &self.lines
            }
        };
        // One JSON line per record: the array is the lines, comma-separated, without their
        // newlines.
        let mut body = Vec::with_capacity(lines.len() + 2);
        body.push(b'[');
        let mut records = 0;
        for line in lines.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
            if records > 0 {
                body.push(b',');
            }
            body.extend_from_slice(line);
            records += 1;
        }
        body.push(b']');
        let headers: Vec<(String, Vec<u8>)> = chunk
            .delivery()
            .map(|delivery| ("idempotency-key".to_owned(), delivery.id.clone().into_bytes()))
            .into_iter()
            .collect();
        let budget = chunk.time_left().map(request_budget);
        let status = answer(post(&self.endpoint, &self.endpoint.path, &headers, &body, budget), "records")?;
        debug!("posted {records} records: {status}");
        Ok(())
    }
}

export_output!(HttpOutput);
