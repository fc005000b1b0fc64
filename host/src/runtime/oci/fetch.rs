//! The registry reads of a pull (resolving a tag, a manifest, a signature, a layer), each with
//! a byte cap, under one deadline per pull, and abandoned at once when the output stops.
//!
//! oci-client, which the host pushes with, reads every body it gets whole (manifests, token
//! answers, error bodies): a registry could make the agent hold as much as it cares to send.
//! Its client cannot be given a transport with limits, so the reads of a pull are made here on
//! the same reqwest and rustls: streamed, counted, and refused past their cap (the numbers are
//! in [`super`] and docs/security.md). The protocol is the distribution spec's: `GET /v2/`
//! answers with the `WWW-Authenticate` challenge (parsed with `http-auth`, as oci-client does),
//! a `Bearer` challenge is answered by the token service it names (with the credentials, if
//! any), a `Basic` one with the credentials.
//!
//! Plain HTTP: a registry on loopback (`localhost`, `127.0.0.0/8`, `::1`: kind's and k3d's
//! `localhost:5000`) is spoken to over HTTPS and, if its answer is not TLS, over plain HTTP, as
//! Docker does; any other registry over plain HTTP only under `wasm_oci_insecure_http on`.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::anyhow;
use base64::Engine;
use bytes::Bytes;
use oci_client::secrets::RegistryAuth;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use tokio_util::sync::CancellationToken;

use super::{PullError, refused};

/// The largest token service answer read (a JWT is a few KiB).
pub const TOKEN_CAP: u64 = 64 << 10;
/// The most of an error body read, for the message.
pub const ERROR_BODY_CAP: u64 = 4 << 10;

/// How the host speaks to one registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Https,
    Http,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
        }
    }
}

/// Whether `registry` (`host[:port]`) is on loopback.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.rsplit_once(':').map_or(registry, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The reads of one registry for one repository.
pub struct Fetcher {
    http: reqwest::Client,
    registry: String,
    /// The scheme that answered, once one did (plain HTTP from the start under
    /// `wasm_oci_insecure_http on`).
    scheme: Mutex<Option<Scheme>>,
    auth: RegistryAuth,
    /// The bearer token of the token service, once asked.
    token: Mutex<Option<String>>,
    /// Cancelled when the output stops: every read in flight ends at once.
    cancel: CancellationToken,
}

/// A response whose status was a success.
pub struct Answer {
    pub response: reqwest::Response,
}

impl Fetcher {
    pub fn new(http: reqwest::Client, registry: &str, insecure_http: bool, auth: RegistryAuth) -> Self {
        Self {
            http,
            registry: registry.to_owned(),
            scheme: Mutex::new(insecure_http.then_some(Scheme::Http)),
            auth,
            token: Mutex::new(None),
            cancel: CancellationToken::new(),
        }
    }

    /// Ends every read in flight and every later one: the output is stopping.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the output stopped (see [`Fetcher::cancel`]).
    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether the registry is spoken to over plain HTTP (known after the first answer).
    pub fn plain_http(&self) -> bool {
        *self.scheme.lock().unwrap_or_else(std::sync::PoisonError::into_inner) == Some(Scheme::Http)
    }

    /// Runs `read` on `runtime` until `deadline`, or until the output stops.
    pub fn run<T>(
        &self,
        runtime: &tokio::runtime::Handle,
        deadline: Instant,
        what: &str,
        read: impl Future<Output = Result<T, PullError>>,
    ) -> Result<T, PullError> {
        runtime.block_on(async {
            tokio::select! {
                () = self.cancel.cancelled() => {
                    Err(PullError::Registry(anyhow!("{what}: abandoned, the output is stopping")))
                }
                result = tokio::time::timeout_at(deadline.into(), read) => result.unwrap_or_else(|_| {
                    Err(PullError::Registry(anyhow!(
                        "{what}: the registry did not finish within the pull's deadline (wasm_oci_pull_timeout)"
                    )))
                }),
            }
        })
    }

    /// Probes the scheme (`GET /v2/`) if none answered yet; whether it is plain HTTP.
    pub async fn probe(&self) -> Result<bool, PullError> {
        self.get("/v2/", &[]).await.map(|_| ()).or_else(|err| match err {
            // A registry that wants credentials still answered on this scheme.
            PullError::Registry(_) if self.current_scheme().is_some() => Ok(()),
            err => Err(err),
        })?;
        Ok(self.plain_http())
    }

    fn current_scheme(&self) -> Option<Scheme> {
        *self.scheme.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `GET` of `path` (`/v2/...`), with the credentials the registry asks for; the response if
    /// its status is a success.
    pub async fn get(&self, path: &str, accept: &[&str]) -> Result<Answer, PullError> {
        self.request(reqwest::Method::GET, path, accept).await
    }

    /// As [`Fetcher::get`], a `HEAD`.
    pub async fn head(&self, path: &str, accept: &[&str]) -> Result<Answer, PullError> {
        self.request(reqwest::Method::HEAD, path, accept).await
    }

    async fn request(&self, method: reqwest::Method, path: &str, accept: &[&str]) -> Result<Answer, PullError> {
        let scheme = match self.current_scheme() {
            Some(scheme) => scheme,
            None => self.choose_scheme().await?,
        };
        let url = format!("{}://{}{path}", scheme.as_str(), self.registry);
        let mut response = self.send(&method, &url, accept, self.authorization()).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let authorization = self.answer_challenge(&response, path).await?;
            response = self.send(&method, &url, accept, authorization).await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(PullError::Registry(anyhow!(
                    "the registry refused the credentials (401 unauthorized for {url}): check the user and password \
                     for this registry in wasm_oci_auth_file"
                )));
            }
        }
        let status = response.status();
        if status.is_success() {
            return Ok(Answer { response });
        }
        let body = read_capped(response, ERROR_BODY_CAP, "an error body").await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_owned();
        Err(PullError::Registry(anyhow!("{method} {url}: {status}: {text}")).into_not_found(status))
    }

    /// The first request to the registry: HTTPS, else (loopback, or the operator said so)
    /// plain HTTP when the answer was not TLS.
    async fn choose_scheme(&self) -> Result<Scheme, PullError> {
        let url = format!("https://{}/v2/", self.registry);
        let tried = self.http.get(&url).send().await;
        let scheme = match tried {
            Ok(_) => Scheme::Https,
            // Plain HTTP only if it answers as HTTP: a TLS registry that broke one handshake off
            // is not spoken to in the clear from then on.
            Err(err) if not_tls(&err) && is_loopback(&self.registry) => {
                match self.http.get(format!("http://{}/v2/", self.registry)).send().await {
                    Ok(_) => Scheme::Http,
                    Err(_) => return Err(PullError::Registry(describe(err, &url))),
                }
            }
            Err(err) if not_tls(&err) => {
                return Err(PullError::Registry(anyhow!(
                    "{} did not answer over TLS ({:#}): if it is a registry serving plain HTTP on a network you \
                     trust, set wasm_oci_insecure_http on",
                    self.registry,
                    describe(err, &url)
                )));
            }
            Err(err) => return Err(PullError::Registry(describe(err, &url))),
        };
        *self.scheme.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(scheme);
        Ok(scheme)
    }

    async fn send(
        &self,
        method: &reqwest::Method,
        url: &str,
        accept: &[&str],
        authorization: Option<HeaderValue>,
    ) -> Result<reqwest::Response, PullError> {
        let mut request = self.http.request(method.clone(), url);
        if !accept.is_empty() {
            request = request.header(ACCEPT, accept.join(", "));
        }
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        request.send().await.map_err(|err| PullError::Registry(describe(err, url)))
    }

    /// What to send before any challenge: the token already obtained, the identity token, or
    /// nothing (Basic credentials only go where a `Basic` challenge asks for them).
    fn authorization(&self) -> Option<HeaderValue> {
        if let Some(token) = self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            return bearer(token);
        }
        match &self.auth {
            RegistryAuth::Bearer(token) => bearer(token),
            _ => None,
        }
    }

    /// The `Authorization` answering the challenge of a 401 `response` to `path`.
    async fn answer_challenge(
        &self,
        response: &reqwest::Response,
        path: &str,
    ) -> Result<Option<HeaderValue>, PullError> {
        let header = response.headers().get(WWW_AUTHENTICATE).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let challenges: Vec<_> = http_auth::ChallengeParser::new(header).filter_map(Result::ok).collect();
        let param = |challenge: &http_auth::ChallengeRef<'_>, name: &str| {
            challenge.params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_unescaped())
        };
        if let Some(challenge) = challenges.iter().find(|c| c.scheme.eq_ignore_ascii_case("bearer")) {
            let realm = param(challenge, "realm")
                .ok_or_else(|| PullError::Registry(anyhow!("the registry's Bearer challenge names no realm")))?;
            let repository = path.strip_prefix("/v2/").and_then(|p| p.split("/manifests/").next());
            let repository = repository.and_then(|r| r.split("/blobs/").next()).unwrap_or_default();
            let mut query: Vec<(&str, String)> = Vec::new();
            if !repository.is_empty() {
                query.push(("scope", format!("repository:{repository}:pull")));
            }
            if let Some(service) = param(challenge, "service") {
                query.push(("service", service));
            }
            let mut request = self.http.get(&realm).query(&query);
            if let RegistryAuth::Basic(user, password) = &self.auth {
                request = request.basic_auth(user, Some(password));
            }
            let answer = request.send().await.map_err(|err| PullError::Registry(describe(err, &realm)))?;
            if !answer.status().is_success() {
                return Err(PullError::Registry(anyhow!(
                    "the registry's token service refused the credentials ({}): check wasm_oci_auth_file",
                    answer.status()
                )));
            }
            let body = read_capped(answer, TOKEN_CAP, "the token service's answer").await?;
            #[derive(serde::Deserialize)]
            struct Token {
                token: Option<String>,
                access_token: Option<String>,
            }
            let token: Token = serde_json::from_slice(&body)
                .map_err(|err| PullError::Registry(anyhow!("the token service's answer is not a token: {err}")))?;
            let token = token
                .token
                .or(token.access_token)
                .ok_or_else(|| PullError::Registry(anyhow!("the token service's answer holds no token")))?;
            let value = bearer(&token);
            *self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token);
            return Ok(value);
        }
        match &self.auth {
            RegistryAuth::Basic(user, password) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Ok(HeaderValue::from_str(&format!("Basic {encoded}")).ok().map(|mut v| {
                    v.set_sensitive(true);
                    v
                }))
            }
            _ => Err(PullError::Registry(anyhow!(
                "the registry wants credentials (401 unauthorized): add an entry for {} to wasm_oci_auth_file",
                self.registry
            ))),
        }
    }
}

impl PullError {
    /// A 404 stays a registry error; the caller tells what is missing (see `verify`).
    fn into_not_found(self, status: StatusCode) -> Self {
        match (self, status) {
            (PullError::Registry(err), StatusCode::NOT_FOUND) => PullError::Registry(err.context(NotFound)),
            (other, _) => other,
        }
    }

    /// Whether the registry answered 404 (no such manifest or blob).
    pub fn is_not_found(&self) -> bool {
        matches!(self, PullError::Registry(err) if err.downcast_ref::<NotFound>().is_some())
    }
}

/// The marker of a 404 answer.
#[derive(Debug)]
struct NotFound;

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A transport error as a message: the URL, and its causes (reqwest's top line says little).
fn describe(err: reqwest::Error, url: &str) -> anyhow::Error {
    let mut message = format!("failed to reach {url}");
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    anyhow!(message)
}

/// Whether a failed HTTPS request failed because the other end does not speak TLS (it
/// connected, and the handshake failed), rather than because nothing answered.
fn not_tls(err: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if is_handshake_failure(err) {
            return true;
        }
        source = err.source();
    }
    false
}

/// A rustls error, or an I/O error that is one (the TLS stack wraps it in an I/O error, and
/// hyper-rustls that in another: `io::Error::source` skips what it wraps), or a plain server
/// closing on a ClientHello it cannot parse.
fn is_handshake_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    if err.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    let Some(io) = err.downcast_ref::<std::io::Error>() else { return false };
    if matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) {
        return true;
    }
    io.get_ref().is_some_and(|inner| is_handshake_failure(inner))
}

/// The body of `response`, refused past `cap` bytes: as the `Content-Length` says, or as it
/// comes (a body without one, or longer than it said).
pub async fn read_capped(mut response: reqwest::Response, cap: u64, what: &str) -> Result<Bytes, PullError> {
    if let Some(length) = response.content_length()
        && length > cap
    {
        return Err(refused(anyhow!("{what} is {length} bytes, more than the {cap} the host reads")));
    }
    let url = response.url().to_string();
    let mut body = Vec::new();
    while let Some(piece) = response
        .chunk()
        .await
        .map_err(|err| PullError::Registry(anyhow!("{what} broke off: {}", describe(err, &url))))?
    {
        if (body.len() + piece.len()) as u64 > cap {
            return Err(refused(anyhow!("{what} is more than the {cap} bytes the host reads")));
        }
        body.extend_from_slice(&piece);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_told_apart() {
        for registry in ["localhost:5000", "LOCALHOST", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"] {
            assert!(is_loopback(registry), "{registry}");
        }
        for registry in ["ghcr.io", "10.0.0.1:5000", "0.0.0.0:5000", "localhost.example.com:5000", "[2001:db8::1]:5000"]
        {
            assert!(!is_loopback(registry), "{registry}");
        }
    }
}
