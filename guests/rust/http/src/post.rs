//! One HTTP POST over the host's `wasi:http`, with the flush deadline as its budget, and the
//! mapping of its outcome to a flush answer. Shared by the `http` and `otlp` example guests
//! (`otlp` includes this file by path: the examples stay one crate each, with no helper crate).

use std::time::Duration;

use out_wasm_guest::FlushError;
use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

pub struct Endpoint {
    pub scheme: Scheme,
    pub authority: String,
    pub path: String,
}

/// Parses `http://host:port/path` or `https://...`; the path defaults to `/`.
pub fn parse_url(url: &str) -> Result<Endpoint, String> {
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

/// A failed exchange: retry later, or drop the chunk.
pub enum Failure {
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
pub fn request_budget(time_left: Duration) -> Duration {
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

/// POSTs `body` (JSON) to `endpoint` at `path`, with `headers` besides the content type and
/// length, and waits for the status, for `budget` at most (none: as long as it takes).
pub fn post(
    endpoint: &Endpoint,
    path: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    budget: Option<Duration>,
) -> Result<u16, Failure> {
    let mut list = vec![
        ("content-type".to_owned(), b"application/json".to_vec()),
        ("content-length".to_owned(), body.len().to_string().into_bytes()),
    ];
    list.extend_from_slice(headers);
    let headers = Fields::from_list(&list).map_err(|err| Failure::Drop(format!("invalid headers: {err:?}")))?;
    let request = OutgoingRequest::new(headers);
    let setup = request
        .set_method(&Method::Post)
        .and_then(|()| request.set_scheme(Some(&endpoint.scheme)))
        .and_then(|()| request.set_authority(Some(&endpoint.authority)))
        .and_then(|()| request.set_path_with_query(Some(path)));
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

fn send_body(outgoing: OutgoingBody, body: &[u8]) -> Result<(), String> {
    {
        let stream = outgoing.write().map_err(|()| "no body stream".to_owned())?;
        for piece in body.chunks(4096) {
            stream.blocking_write_and_flush(piece).map_err(|err| format!("failed to send: {err:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|err| format!("failed to send: {err:?}"))
}

/// The flush answer for a POST's outcome: 2xx delivered (the status is returned); 5xx, 408,
/// 429 and transport failures retried; other 4xx dropped, saying the endpoint refused `what`.
pub fn answer(outcome: Result<u16, Failure>, what: &str) -> Result<u16, FlushError> {
    match outcome {
        Ok(status @ 200..=299) => Ok(status),
        Ok(status @ (408 | 429 | 500..=599)) => Err(FlushError::Retry(format!("the endpoint answered {status}"))),
        Ok(status) => Err(FlushError::Error(format!("the endpoint refused the {what}: {status}"))),
        Err(Failure::Retry(reason)) => Err(FlushError::Retry(reason)),
        Err(Failure::Drop(reason)) => Err(FlushError::Error(reason)),
    }
}
