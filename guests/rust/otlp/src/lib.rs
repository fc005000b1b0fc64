//! `otlp`: exports logs, metrics and traces to an OpenTelemetry OTLP/HTTP receiver. The host
//! renders each chunk as one OTLP/JSON export request (the `otlp-json` event format); the guest
//! POSTs it to the receiver's `/v1/logs`, `/v1/metrics` or `/v1/traces` by the chunk's event
//! type, over the host's outbound HTTP (`wasi:http`). The endpoint's `host:port` must be granted
//! with `wasm_allow_net`.
//!
//! Keys:
//! - `endpoint` (required): the receiver's base URL, `http://host:port` or `https://...`, with
//!   an optional path prefix (`http://collector:4318/otlp` posts to `/otlp/v1/logs`).
//! - `headers` (none): extra request headers as `name=value` pairs separated by commas, as in
//!   `OTEL_EXPORTER_OTLP_HEADERS` (`authorization=Bearer t0k3n,x-tenant=a`).
//!
//! The instance needs the `otlp-json` event format (its preferred one): an operator's
//! `wasm_event_format` of anything else fails `init`.
//!
//! Answers, as the `http` guest's: 2xx is delivered; 5xx, 408, 429 and failures to connect or to
//! get an answer are retried (the agent flushes the chunk again later); other 4xx drop the chunk
//! (the receiver refuses it and would again), as does a request the host denies (no grant).
//! One request per chunk, with the flush's deadline less a margin as its budget: a receiver too
//! slow to answer in time is a clean retry. Delivery is at least once.

#[path = "../../http/src/post.rs"]
mod post;

use out_wasm_guest::{
    Chunk, Config, ConfigKey, EventFormat, EventType, EventTypes, FlushError, InitContext, Output, debug, export_output,
};

use crate::post::{Endpoint, answer, parse_url, post, request_budget};

struct OtlpOutput {
    endpoint: Endpoint,
    /// The request paths by event type: the endpoint's path prefix and the OTLP signal path.
    logs: String,
    metrics: String,
    traces: String,
    headers: Vec<(String, Vec<u8>)>,
}

fn parse_headers(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_ascii_lowercase(), value.trim().as_bytes().to_vec()))
            }
            _ => Err(format!("invalid headers: {pair:?} is not name=value")),
        })
        .collect()
}

impl Output for OtlpOutput {
    fn config_schema() -> Vec<ConfigKey> {
        vec![
            ConfigKey::required("endpoint", "the OTLP/HTTP receiver: http://host:port or https://..."),
            ConfigKey::optional("headers", "extra request headers: name=value,name=value"),
        ]
    }

    fn preferred_event_format(_config: &Config) -> Result<EventFormat, String> {
        Ok(EventFormat::OtlpJson)
    }

    fn accepted_event_types() -> EventTypes {
        EventTypes::LOGS | EventTypes::METRICS | EventTypes::TRACES
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        if !matches!(ctx.event_format, EventFormat::OtlpJson) {
            return Err("the otlp guest needs wasm_event_format otlp_json (its default)".into());
        }
        let config = &ctx.config;
        let endpoint = parse_url(config.get("endpoint").unwrap_or_default())?;
        let prefix = endpoint.path.trim_end_matches('/').to_owned();
        Ok(OtlpOutput {
            logs: format!("{prefix}/v1/logs"),
            metrics: format!("{prefix}/v1/metrics"),
            traces: format!("{prefix}/v1/traces"),
            headers: parse_headers(config.get("headers").unwrap_or_default())?,
            endpoint,
        })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        let path = match chunk.event_type() {
            EventType::Logs => &self.logs,
            EventType::Metrics => &self.metrics,
            EventType::Traces => &self.traces,
        };
        let budget = chunk.time_left().map(request_budget);
        let outcome = post(&self.endpoint, path, &self.headers, chunk.bytes(), budget);
        let status = answer(outcome, "export request")?;
        debug!("posted {} bytes to {path}: {status}", chunk.bytes().len());
        Ok(())
    }
}

export_output!(OtlpOutput);
