//! Outbound HTTP for guests (`wasi:http/outgoing-handler`): each request is judged by the
//! instance's network policy before any connection (a denied one fails with
//! `HTTP-request-denied`), then sent over HTTP/1.1, with TLS for `https` trusting the roots
//! of [`crate::sandbox::tls`], on a kept-alive connection of the output's when one is idle
//! ([`crate::sandbox::connections`]). A new connection goes to an address the host judged: the
//! request's address itself, or an answer of the host's own lookup of the granted name that the
//! policy allows (no second lookup), and takes a place among the output's descriptors. With
//! `wasm_http_proxy`, the connection is the proxy's ([`crate::sandbox::proxy`]): plain HTTP
//! requests in absolute form, HTTPS through a `CONNECT` tunnel with TLS to the target inside.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wasmtime::component::Linker;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

use crate::sandbox::connections::{Connections, Endpoint, Sender};
use crate::sandbox::descriptors::Kind;
use crate::sandbox::destinations::Outcome;
use crate::sandbox::network::{NetPolicy, NetUse};
use crate::sandbox::proxy::HttpProxy;

/// The per-instance HTTP policy.
pub struct HttpPolicy {
    net: Arc<NetPolicy>,
    tls: Arc<ClientConfig>,
    connections: Arc<Connections>,
    /// Where requests go first (`wasm_http_proxy`), for targets it applies to.
    proxy: Option<Arc<HttpProxy>>,
    /// The requests of the current call, for the flight recorder: what was asked of whom, and
    /// how it went (no bodies, no headers: they may hold credentials and the records).
    exchanges: Arc<std::sync::Mutex<Vec<Exchange>>>,
}

/// One request a guest made: method, origin, and its answer's status or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    /// `scheme://host:port`: no path or query (they may carry tokens).
    pub origin: String,
    /// The response's status, or why there was none (denied, connection refused...).
    pub status: Result<u16, String>,
    /// From the request to the response's head (or the failure).
    pub elapsed: Duration,
}

/// At most this many requests are kept per call: a guest that sends thousands keeps its first.
pub const EXCHANGES_PER_CALL: usize = 256;

impl HttpPolicy {
    pub fn new(
        net: Arc<NetPolicy>,
        tls: Arc<ClientConfig>,
        connections: Arc<Connections>,
        proxy: Option<Arc<HttpProxy>>,
    ) -> Self {
        Self { net, tls, connections, proxy, exchanges: Arc::default() }
    }

    /// The requests made since the last call of this (at most [`EXCHANGES_PER_CALL`]).
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.exchanges.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The instance's network policy, shared with its sockets and lookups.
    pub fn net(&self) -> &NetPolicy {
        &self.net
    }
}

/// Links `wasi:http/outgoing-handler` and its types (no incoming handler: an output serves
/// nothing); the store's [`WasiHttpView`] hands each request to the instance's [`HttpPolicy`].
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
        .map_err(anyhow::Error::from)
        .context("failed to link WASI HTTP")
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Response = wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Response> + Send> {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let granted = uri.host().is_some_and(|host| self.net.judge(NetUse::Http { host, port }));
        let started = std::time::Instant::now();
        let exchange = Exchange {
            method: request.method().to_string(),
            origin: format!("{}://{}:{port}", if https { "https" } else { "http" }, uri.host().unwrap_or_default()),
            status: Err(String::new()),
            elapsed: Duration::ZERO,
        };
        let exchanges = self.exchanges.clone();
        let connections = self.connections.clone();
        let keep = move |status: Result<u16, String>, outcome: Outcome| {
            let elapsed = started.elapsed();
            connections.destinations().record(&exchange.origin, outcome, elapsed);
            let mut exchanges = exchanges.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if exchanges.len() < EXCHANGES_PER_CALL {
                exchanges.push(Exchange { status, elapsed, ..exchange });
            }
        };
        if !granted {
            keep(Err("denied by the network policy".to_owned()), Outcome::Denied);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let tls = https.then(|| self.tls.clone());
        let (net, connections) = (self.net.clone(), self.connections.clone());
        let proxy = self.proxy.clone();
        Box::new(async move {
            let options = options.unwrap_or_default();
            let response = send(request, port, options, tls, &net, connections, proxy.as_deref()).await;
            match &response {
                Ok((response, _)) => keep(Ok(response.status().as_u16()), Outcome::Status(response.status().as_u16())),
                Err(err) => keep(Err(format!("{err:?}")), Outcome::Failed),
            }
            response
        })
    }

    /// A write to a request body may hand the host this much: what a body not yet sent keeps
    /// in host memory is bounded (see `sandbox::memory::HostSideCaps`).
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        crate::sandbox::memory::HostSideCaps::BODY_WRITE_BYTES
    }
}

/// A connection, plain or TLS, as hyper drives it.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Waits for `future` at most `limit` (no limit: the guest's own deadline bounds the call).
async fn within<F: Future>(limit: Option<Duration>, future: F) -> Result<F::Output, ()> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.map_err(drop),
        None => Ok(future.await),
    }
}

async fn send(
    mut request: http::Request<WasiBody>,
    port: u16,
    options: RequestOptions,
    tls: Option<Arc<ClientConfig>>,
    net: &NetPolicy,
    connections: Arc<Connections>,
    proxy: Option<&HttpProxy>,
) -> Response {
    let host = request.uri().host().ok_or(Error::HttpRequestUriInvalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let via = proxy.filter(|proxy| proxy.applies_to(&host));
    let endpoint = Endpoint { https: tls.is_some(), host, port };
    let mut sender = match connections.take(&endpoint) {
        Some(sender) => sender,
        None => {
            let sender = connect(&endpoint, &options, tls, net, &connections, via).await?;
            connections.opened();
            sender
        }
    };
    match via {
        // Plain HTTP through the proxy: the request line carries the whole URL, for the proxy.
        Some(proxy) if !endpoint.https => {
            if let Some(authorization) = proxy.authorization() {
                request.headers_mut().insert(http::header::PROXY_AUTHORIZATION, authorization.clone());
            }
        }
        // To the server itself (or through a tunnel to it): the request line carries the path.
        _ => {
            let path = request.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
            *request.uri_mut() = http::Uri::from(path);
        }
    }
    let response = within(options.first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|()| Error::ConnectionReadTimeout)?
        .map_err(|err| alert_after_handshake(err, &endpoint, net))?;
    let between_bytes = options.between_bytes_timeout;
    // The connection can carry another request once this response has been read to the end.
    let kept = Some(Kept { connections, endpoint, sender });
    let response = response.map(|body| Timed::new(body, between_bytes, kept).boxed_unsync());
    // The connection runs as a task of its own (spawned by `connect`): nothing is left for the
    // caller to drive.
    let io: IoFuture = Box::new(async { Ok(()) });
    Ok((response, io))
}

/// A new connection to `endpoint` (or to the proxy `via`, tunnelled for `https`), TCP then TLS
/// for `https`, its HTTP/1.1 side driven by a task of the instance's I/O runtime for as long as
/// it lives, holding a place among the output's descriptors meanwhile.
async fn connect(
    endpoint: &Endpoint,
    options: &RequestOptions,
    tls: Option<Arc<ClientConfig>>,
    net: &NetPolicy,
    connections: &Connections,
    via: Option<&HttpProxy>,
) -> Result<Sender, Error> {
    let Endpoint { host, port, .. } = endpoint;
    let Some(slot) = connections.descriptors().take(Kind::Connection) else {
        // The idle connections are the ones the output can do without: closed, they make room
        // for a later request.
        connections.close_all();
        net.warn(connections.descriptors().refusal_line(&format!("a new HTTP connection to {host}:{port}")));
        return Err(Error::ConnectionLimitReached);
    };
    let tcp = match via {
        None => {
            let addresses = addresses(host, *port, options, net).await?;
            dial(&addresses, options).await?
        }
        Some(proxy) => {
            // The target's name is the proxy's to look up; where the host can look it up too,
            // its answers are held to the policy's rule for special ranges all the same (a
            // proxy beside the agent would otherwise reach the agent's loopback for it).
            if host.parse::<IpAddr>().is_err()
                && let Ok(Ok(answers)) =
                    within(options.connect_timeout, tokio::net::lookup_host((host.as_str(), *port))).await
                && answers.into_iter().any(|addr| !net.http_answer(host, addr))
            {
                return Err(Error::DestinationIpProhibited);
            }
            // The proxy is the operator's choice, not the guest's: its name's answers are used
            // as they are (a corporate proxy is usually on a private address).
            let addresses = match proxy.host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, proxy.port)],
                Err(_) => within(options.connect_timeout, tokio::net::lookup_host((proxy.host.as_str(), proxy.port)))
                    .await
                    .map_err(|()| Error::DnsTimeout)?
                    .map_err(|err| {
                        net.warn(format!("failed to look up the proxy {} (wasm_http_proxy): {err}", proxy.host));
                        Error::DnsError { rcode: Some(err.to_string()), info_code: None }
                    })?
                    .collect(),
            };
            dial(&addresses, options).await.inspect_err(|err| {
                net.warn(format!("failed to reach the proxy {}:{} (wasm_http_proxy): {err}", proxy.host, proxy.port));
            })?
        }
    };
    let stream: Box<dyn Stream> = match (via, endpoint.https) {
        (Some(proxy), true) => Box::new(tunnel(tcp, proxy, host, *port, options, net).await?),
        _ => Box::new(tcp),
    };
    let stream: Box<dyn Stream> = match tls {
        None => stream,
        Some(config) => {
            let name = match host.parse::<IpAddr>() {
                Ok(ip) => ServerName::from(ip),
                Err(_) => ServerName::try_from(host.clone()).map_err(Error::InvalidDnsNameError)?,
            };
            let handshake = TlsConnector::from(config).connect(name, stream);
            let connected = within(options.connect_timeout, handshake).await.map_err(|()| Error::ConnectionTimeout)?;
            Box::new(connected.map_err(|err| tls_failure(host, *port, err, net))?)
        }
    };
    let (sender, connection) =
        within(options.connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
            .await
            .map_err(|()| Error::ConnectionTimeout)??;
    // Ends when the server closes the connection, when it fails (the request it carries then
    // fails with the reason), or when the last sender is dropped.
    tokio::spawn(async move {
        let _slot = slot;
        let _ = connection.await;
    });
    Ok(sender)
}

/// Where a request to `host` may connect: the address itself (judged by the request's authority
/// already), or the answers of the host's own lookup of the name the policy allows for it, in
/// the resolver's order. What is connected to is one of these: the name is not looked up again.
async fn addresses(host: &str, port: u16, options: &RequestOptions, net: &NetPolicy) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let answers: Vec<SocketAddr> = within(options.connect_timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|()| Error::DnsTimeout)?
        .map_err(|err| Error::DnsError { rcode: Some(err.to_string()), info_code: None })?
        .collect();
    if answers.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    let allowed: Vec<SocketAddr> = answers.into_iter().filter(|addr| net.http_answer(host, *addr)).collect();
    if allowed.is_empty() {
        return Err(Error::DestinationIpProhibited);
    }
    Ok(allowed)
}

/// A TCP connection to the first of `addresses` that accepts one, within the connect timeout.
async fn dial(addresses: &[SocketAddr], options: &RequestOptions) -> Result<TcpStream, Error> {
    let tcp = within(options.connect_timeout, connect_any(addresses))
        .await
        .map_err(|()| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    // hyper writes a request's head and body separately: without this, Nagle's algorithm holds
    // the body back until the server's delayed ACK of the head, some 40 ms a request on a kept
    // connection.
    tcp.set_nodelay(true).map_err(Error::Connect)?;
    Ok(tcp)
}

/// A tunnel to `host:port` through the proxy connected on `tcp` (`CONNECT`, RFC 9110 9.3.6),
/// for TLS end to end; a refusal is logged with the proxy's status.
async fn tunnel(
    tcp: TcpStream,
    proxy: &HttpProxy,
    host: &str,
    port: u16,
    options: &RequestOptions,
    net: &NetPolicy,
) -> Result<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>, Error> {
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let (mut sender, connection) =
        within(options.connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(tcp)))
            .await
            .map_err(|()| Error::ConnectionTimeout)??;
    tokio::spawn(connection.with_upgrades());
    let mut request = http::Request::connect(authority.as_str())
        .header(http::header::HOST, authority.as_str())
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    if let Some(authorization) = proxy.authorization() {
        request.headers_mut().insert(http::header::PROXY_AUTHORIZATION, authorization.clone());
    }
    let response = within(options.connect_timeout, sender.send_request(request))
        .await
        .map_err(|()| Error::ConnectionTimeout)??;
    if !response.status().is_success() {
        net.warn(format!(
            "the proxy {}:{} (wasm_http_proxy) refused a tunnel to {authority}: {}{}",
            proxy.host,
            proxy.port,
            response.status(),
            if response.status() == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                "; give its credentials with wasm_http_proxy_auth_file"
            } else {
                ""
            }
        ));
        return Err(Error::ConnectionRefused);
    }
    let upgraded = within(options.connect_timeout, hyper::upgrade::on(response))
        .await
        .map_err(|()| Error::ConnectionTimeout)??;
    Ok(hyper_util::rt::TokioIo::new(upgraded))
}

/// A TCP connection to the first of `addresses` that accepts one (as a client tries a name's
/// addresses), or the last failure.
async fn connect_any(addresses: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut failure = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(tcp) => return Ok(tcp),
            Err(err) => failure = Some(err),
        }
    }
    Err(failure.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
}

/// A connection waiting for its response body to be read to the end before it goes back.
struct Kept {
    connections: Arc<Connections>,
    endpoint: Endpoint,
    sender: Sender,
}

/// A failed TLS handshake: logged with the reason and the fix, answered to the guest as a
/// certificate error when the certificate was the problem.
fn tls_failure(host: &str, port: u16, err: std::io::Error, net: &NetPolicy) -> Error {
    let certificate = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|err| matches!(err, rustls::Error::InvalidCertificate(_)));
    if certificate {
        net.warn(format!(
            "TLS handshake with {host}:{port} failed: {err}; if the endpoint's certificate is issued by a private \
             CA, add that CA with wasm_tls_ca_file"
        ));
        Error::TlsCertificateError
    } else {
        net.warn(format!("TLS handshake with {host}:{port} failed: {err}"));
        Error::Tls(err)
    }
}

/// A request that failed because the server sent a TLS alert after the handshake: in TLS 1.3
/// the server judges the client's certificate only then, so a missing or refused one shows up
/// here, at the first read, rather than as a failed handshake. Logged with the fix and answered
/// as the alert; any other failure is passed on as it is.
fn alert_after_handshake(err: hyper::Error, endpoint: &Endpoint, net: &NetPolicy) -> Error {
    use rustls::AlertDescription as Alert;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut alert = None;
    while let Some(current) = source {
        // An I/O error's `source` skips the error it wraps: that one is its `get_ref`.
        let inner = current.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
        let tls = inner.and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::AlertReceived(received)) = tls.or_else(|| current.downcast_ref::<rustls::Error>()) {
            alert = Some(*received);
            break;
        }
        source = current.source();
    }
    let Some(alert) = alert else { return err.into() };
    let (host, port) = (&endpoint.host, endpoint.port);
    net.warn(match alert {
        Alert::CertificateRequired => format!(
            "the server {host}:{port} requires a client certificate: give the output one with wasm_tls_crt_file \
             and wasm_tls_key_file"
        ),
        Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateUnknown | Alert::CertificateExpired => {
            format!("the server {host}:{port} refused the output's client certificate (TLS alert {alert:?})")
        }
        other => format!("the server {host}:{port} ended the TLS session (TLS alert {other:?})"),
    });
    Error::TlsAlertReceived { alert_id: Some(u8::from(alert)), alert_message: Some(format!("{alert:?}")) }
}

/// A response body whose frames must come at most `limit` apart (`between-bytes-timeout`), and
/// which hands its connection back when it has been read to the end.
struct Timed {
    body: hyper::body::Incoming,
    limit: Option<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    kept: Option<Kept>,
}

impl Timed {
    fn new(body: hyper::body::Incoming, limit: Option<Duration>, kept: Option<Kept>) -> Self {
        let mut timed = Self { body, limit, timer: None, kept };
        // A body that is empty from the start (a 204, `content-length: 0`) is done already: a
        // guest that reads no body frees the connection too.
        if timed.body.is_end_stream() {
            timed.done();
        }
        timed
    }

    /// Hands the connection back.
    fn done(&mut self) {
        if let Some(Kept { connections, endpoint, sender }) = self.kept.take() {
            connections.give_back(endpoint, sender);
        }
    }
}

impl Body for Timed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                match &frame {
                    // A failed body leaves the connection in no state to be reused.
                    Some(Err(_)) => this.kept = None,
                    // Read to the end: the connection can take the next request.
                    None => this.done(),
                    Some(Ok(_)) => {}
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Error::from)))
            }
            Poll::Pending => {
                let Some(limit) = this.limit else { return Poll::Pending };
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
