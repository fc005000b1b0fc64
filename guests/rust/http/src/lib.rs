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
//! across requests that could half-succeed.
//!
//! The request gets the flush's deadline, less a margin: an endpoint too slow to answer in time
//! is a clean retry, not a deadline fault that discards the instance. Delivery is at least once:
//! a request the endpoint took but answered too late is sent again with the retried chunk.

mod post;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, JsonLines, Output, debug, export_output};

use crate::post::{Endpoint, answer, parse_url, post, request_budget};

struct HttpOutput {
    endpoint: Endpoint,
    format: JsonLines,
    line: Vec<u8>,
}

impl Output for HttpOutput {
    fn config_schema() -> Vec<ConfigKey> {
        let mut keys = vec![ConfigKey::required("url", "where to POST: http://host:port/path or https://...")];
        keys.extend(JsonLines::config_keys());
        keys
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let config = &ctx.config;
        Ok(HttpOutput {
            endpoint: parse_url(config.get("url").unwrap_or_default())?,
            format: JsonLines::from_config(config)?,
            line: Vec::new(),
        })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        let mut body = b"[".to_vec();
        let mut records = 0;
        for event in chunk.events() {
            self.line.clear();
            self.format.write(&mut self.line, &event?);
            if records > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&self.line[..self.line.len() - 1]);
            records += 1;
        }
        body.push(b']');
        let budget = chunk.time_left().map(request_budget);
        let status = answer(post(&self.endpoint, &self.endpoint.path, &[], &body, budget), "records")?;
        debug!("posted {records} records: {status}");
        Ok(())
    }
}

export_output!(HttpOutput);
