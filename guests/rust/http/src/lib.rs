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

use std::time::Duration;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, JsonLines, Output, debug, export_output};
use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

struct Endpoint {
    scheme: Scheme,
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Endpoint, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("invalid url {url:?}: expected http:// or https://"));
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    if authority.is_empty() {
        return Err(format!("invalid url {url:?}: no host"));
    }
    Ok(Endpoint { scheme, authority: authority.to_owned(), path: path.to_owned() })
}

struct HttpOutput {
    endpoint: Endpoint,
    format: JsonLines,
    line: Vec<u8>,
}

/// A failed exchange: retry later, or drop the chunk.
enum Failure {
    Retry(String),
    Drop(String),
}

fn transport(err: ErrorCode) -> Failure {
    match err {
        ErrorCode::HttpRequestDenied => {
            Failure::Drop("the host denied the request: grant the endpoint with wasm_allow_net".into())
        }
        other => Failure::Retry(format!("request failed: {other:?}")),
    }
}

/// Time kept back from the flush deadline for answering the host: a tenth of it, at least 50 ms.
fn request_budget(time_left: Duration) -> Duration {
    time_left.saturating_sub((time_left / 10).max(Duration::from_millis(50)))
}

/// The request's own timeouts, so the host's HTTP client gives up by itself in time.
fn request_options(budget: Duration) -> Result<RequestOptions, Failure> {
    let options = RequestOptions::new();
    let nanos = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
    let set = options
        .set_connect_timeout(Some(nanos))
        .and_then(|()| options.set_first_byte_timeout(Some(nanos)))
        .and_then(|()| options.set_between_bytes_timeout(Some(nanos)));
    set.map_err(|()| Failure::Drop("the host refused the request timeouts".into()))?;
    Ok(options)
}

impl HttpOutput {
    /// POSTs `body` and waits for the status, for `budget` at most (none: as long as it takes).
    fn post(&self, body: &[u8], budget: Option<Duration>) -> Result<u16, Failure> {
        let headers = Fields::from_list(&[
            ("content-type".to_owned(), b"application/json".to_vec()),
            ("content-length".to_owned(), body.len().to_string().into_bytes()),
        ])
        .map_err(|err| Failure::Drop(format!("invalid headers: {err:?}")))?;
        let request = OutgoingRequest::new(headers);
        let setup = request
            .set_method(&Method::Post)
            .and_then(|()| request.set_scheme(Some(&self.endpoint.scheme)))
            .and_then(|()| request.set_authority(Some(&self.endpoint.authority)))
            .and_then(|()| request.set_path_with_query(Some(&self.endpoint.path)));
        setup.map_err(|()| Failure::Drop("the host refused the request's url".into()))?;
        let outgoing = request.body().map_err(|()| Failure::Retry("no request body".into()))?;
        let options = budget.map(request_options).transpose()?;
        let response = outgoing_handler::handle(request, options).map_err(transport)?;
        // A request the host refuses fails its body stream too; the response says why, so it
        // is awaited even when sending failed.
        let sent = send_body(outgoing, body);
        let answered = response.subscribe();
        if let Some(budget) = budget {
            let nanos = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
            let timer = monotonic_clock::subscribe_duration(nanos);
            let ready = wasi::io::poll::poll(&[&answered, &timer]);
            if !ready.contains(&0) {
                return Err(Failure::Retry(format!(
                    "the endpoint did not answer within {} ms (the flush deadline less a margin)",
                    budget.as_millis()
                )));
            }
        }
        answered.block();
        match response.get() {
            Some(Ok(Ok(response))) => sent.map(|()| response.status()).map_err(Failure::Retry),
            Some(Ok(Err(err))) => Err(transport(err)),
            Some(Err(())) | None => Err(Failure::Retry(sent.err().unwrap_or_else(|| "no response".into()))),
        }
    }
}

fn send_body(outgoing: OutgoingBody, body: &[u8]) -> Result<(), String> {
    {
        let stream = outgoing.write().map_err(|()| "no body stream".to_owned())?;
        for piece in body.chunks(4096) {
            stream.blocking_write_and_flush(piece).map_err(|err| format!("failed to send: {err:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|err| format!("failed to send: {err:?}"))
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
        match self.post(&body, chunk.time_left().map(request_budget)) {
            Ok(status @ 200..=299) => {
                debug!("posted {records} records: {status}");
                Ok(())
            }
            Ok(status @ (408 | 429 | 500..=599)) => Err(FlushError::Retry(format!("the endpoint answered {status}"))),
            Ok(status) => Err(FlushError::Error(format!("the endpoint refused the records: {status}"))),
            Err(Failure::Retry(reason)) => Err(FlushError::Retry(reason)),
            Err(Failure::Drop(reason)) => Err(FlushError::Error(reason)),
        }
    }
}

export_output!(HttpOutput);
