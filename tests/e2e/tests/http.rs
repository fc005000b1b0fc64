//! The `http` example guest against a real HTTP server on loopback: records arrive as a JSON
//! array; the endpoint's answers map to ok / retry / drop; an endpoint not granted with
//! `wasm_allow_net` is never contacted. Over HTTPS, with a certificate from a CA the test makes:
//! delivered when `wasm_tls_ca_file` trusts the CA, retried with the TLS error logged when not.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use out_wasm_e2e::{chunk, guest_path, init_err, init_ok, lines_with, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, status_name};

/// A request as the server saw it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    content_type: Option<String>,
    body: String,
}

/// A minimal HTTP/1.1 server (HTTPS with `tls`): one request per connection, answered with
/// the next scripted status (200 when the script is empty).
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

/// Reads one request from `stream` and answers it with the next scripted status.
fn answer(stream: impl Read + Write, seen: &Mutex<Vec<Seen>>, script: &Mutex<VecDeque<u16>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut length, mut content_type) = (0, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "content-type" => content_type = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let status = script.lock().unwrap().pop_front().unwrap_or(200);
    seen.lock().unwrap().push(Seen {
        request_line: request_line.trim_end().to_owned(),
        content_type,
        body: String::from_utf8(body).unwrap(),
    });
    let stream = reader.get_mut();
    write!(stream, "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
    stream.flush()
}

impl Server {
    fn start() -> Self {
        Self::start_with(None)
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (seen_by_server, script_for_server) = (seen.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                // A client that gives up (a refused certificate) only ends its connection.
                let _ = match &tls {
                    None => answer(stream, &seen_by_server, &script_for_server),
                    Some(config) => {
                        let connection = rustls::ServerConnection::new(config.clone()).unwrap();
                        answer(rustls::StreamOwned::new(connection, stream), &seen_by_server, &script_for_server)
                    }
                };
            }
        });
        Self { port, seen, script }
    }
}

/// A CA made for one test, and a server certificate for `localhost` and 127.0.0.1 it signed.
struct PrivateCa {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl PrivateCa {
    fn new(name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &*ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), ca.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        Self { ca_pem: ca.pem(), server: Arc::new(server) }
    }

    /// Writes the CA certificate as a PEM file for `wasm_tls_ca_file`.
    fn write(&self, test: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("out-wasm-ca-{test}-{}.pem", std::process::id()));
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

fn flush_to(url: &str, grant: &str) -> (i32, String) {
    flush_with(&[("url", url), ("wasm_allow_net", grant)])
}

fn flush_with(pairs: &[(&str, &str)]) -> (i32, String) {
    let path = guest_path("http");
    let mut plugin = open_plugin();
    let mut all = vec![("wasm_path", path.to_str().unwrap()), ("wasm_watch", "off")];
    all.extend_from_slice(pairs);
    let instance = init_ok(&mut plugin, &all);
    let call = instance.flush(&chunk(&[r#"{"msg":"a","n":1}"#, r#"{"msg":"b"}"#], 1_700_000_000, 500_000_000), "app");
    instance.exit();
    plugin.close();
    (call.value, call.log_text())
}

#[test]
fn records_are_posted_as_a_json_array_and_answers_map_to_statuses() {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/ingest", server.port);
    let grant = format!("127.0.0.1:{}", server.port);

    let (status, log) = flush_to(&url, &grant);
    assert_eq!(status, FLB_OK, "log:\n{log}");
    {
        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one request per chunk: {seen:?}");
        assert_eq!(seen[0].request_line, "POST /ingest HTTP/1.1");
        assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(seen[0].body, r#"[{"date":1700000000.5,"msg":"a","n":1},{"date":1700000000.5,"msg":"b"}]"#);
    }

    for (answer, expected) in
        [(503, FLB_RETRY), (500, FLB_RETRY), (429, FLB_RETRY), (400, FLB_ERROR), (404, FLB_ERROR), (204, FLB_OK)]
    {
        server.script.lock().unwrap().push_back(answer);
        let (status, log) = flush_to(&url, &grant);
        assert_eq!(status, expected, "endpoint answered {answer}: expected {}, log:\n{log}", status_name(expected));
        if answer >= 400 {
            assert!(log.contains(&answer.to_string()), "the log says what the endpoint answered:\n{log}");
        }
    }
}

#[test]
fn an_unreachable_endpoint_is_retried() {
    // Granted, but nothing listens there.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (status, log) = flush_to(&format!("http://127.0.0.1:{free}/"), &format!("127.0.0.1:{free}"));
    assert_eq!(status, FLB_RETRY, "log:\n{log}");
    assert!(log.contains("request failed"), "{log}");
}

#[test]
fn an_endpoint_not_granted_is_never_contacted() {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/ingest", server.port);
    for grant in ["127.0.0.1:1", "localhost:*", "10.0.0.1:*"] {
        let (status, log) = flush_to(&url, grant);
        assert_eq!(status, FLB_ERROR, "grant {grant}: log:\n{log}");
        assert!(log.contains("the host denied the request: grant the endpoint with wasm_allow_net"), "{log}");
    }
    // The server serves connections in the order they arrive: once it has answered one made
    // now, it has seen any request the guest made before.
    let mut sentinel = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(sentinel, "POST /sentinel HTTP/1.1\r\ncontent-length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    sentinel.read_to_string(&mut answer).unwrap();
    let seen = server.seen.lock().unwrap();
    let requests: Vec<&str> = seen.iter().map(|s| s.request_line.as_str()).collect();
    assert_eq!(requests, ["POST /sentinel HTTP/1.1"], "the server was contacted by the guest");
}

#[test]
fn https_to_a_private_ca_is_delivered_when_the_ca_is_trusted() {
    let ca = PrivateCa::new("out_wasm test CA");
    let server = Server::start_with(Some(ca.server.clone()));
    let ca_file = ca.write("trusted");
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/ingest", server.port);
        let grant = format!("{host}:{}", server.port);
        let (status, log) =
            flush_with(&[("url", &url), ("wasm_allow_net", &grant), ("wasm_tls_ca_file", ca_file.to_str().unwrap())]);
        assert_eq!(status, FLB_OK, "{url} with its CA in wasm_tls_ca_file: log:\n{log}");
    }
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one request per chunk, over TLS: {seen:?}");
    assert_eq!(seen[0].request_line, "POST /ingest HTTP/1.1");
    assert_eq!(seen[0].body, r#"[{"date":1700000000.5,"msg":"a","n":1},{"date":1700000000.5,"msg":"b"}]"#);
    let _ = std::fs::remove_file(ca_file);
}

#[test]
fn https_to_an_untrusted_ca_is_retried_with_the_tls_error_logged() {
    let ca = PrivateCa::new("out_wasm test CA");
    let server = Server::start_with(Some(ca.server.clone()));
    let other = PrivateCa::new("some other CA").write("other");
    let url = format!("https://127.0.0.1:{}/ingest", server.port);
    let grant = format!("127.0.0.1:{}", server.port);
    for ca_file in [None, Some(other.to_str().unwrap())] {
        let mut pairs = vec![("url", url.as_str()), ("wasm_allow_net", grant.as_str())];
        pairs.extend(ca_file.map(|file| ("wasm_tls_ca_file", file)));
        let (status, log) = flush_with(&pairs);
        assert_eq!(
            status, FLB_RETRY,
            "CA file {ca_file:?}: an untrusted endpoint is retried, not a fault; log:\n{log}"
        );
        let expected = format!(
            "TLS handshake with 127.0.0.1:{} failed: invalid peer certificate: UnknownIssuer; if the endpoint's \
             certificate is issued by a private CA, add that CA with wasm_tls_ca_file",
            server.port
        );
        assert!(log.contains(&expected), "CA file {ca_file:?}: expected {expected:?} in:\n{log}");
        assert!(log.contains("request failed: ErrorCode::TlsCertificateError"), "the guest's retry says why:\n{log}");
        assert!(!log.contains("faulted"), "{log}");
    }
    assert!(server.seen.lock().unwrap().is_empty(), "no request reached the untrusted endpoint");
    let _ = std::fs::remove_file(other);
}

#[test]
fn an_unreadable_ca_file_refuses_the_instance() {
    let path = guest_path("http");
    let mut plugin = open_plugin();
    let call = init_err(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("url", "https://127.0.0.1:1/"),
            ("wasm_tls_ca_file", "/nonexistent/ca.pem"),
        ],
    );
    assert_eq!(
        lines_with(&call, "failed to read the CA file /nonexistent/ca.pem ('wasm_tls_ca_file')").len(),
        1,
        "the reason is logged:\n{}",
        call.log_text()
    );
    plugin.close();
}

#[test]
fn a_slow_endpoint_is_a_clean_retry_within_the_flush_deadline() {
    // Takes connections and reads the request, but never answers while the test runs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            holder.lock().unwrap().push(stream);
        }
    });
    let path = guest_path("http");
    let url = format!("http://127.0.0.1:{port}/slow");
    let grant = format!("127.0.0.1:{port}");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("url", &url),
            ("wasm_allow_net", &grant),
            ("wasm_flush_timeout", "1s"),
        ],
    );
    let call = instance.flush(&chunk(&[r#"{"msg":"a"}"#], 1, 0), "app");
    let log = call.log_text();
    assert_eq!(call.value, FLB_RETRY, "expected a retry, log:\n{log}");
    assert!(!log.contains("faulted"), "the guest answered in time instead of being stopped:\n{log}");
    assert!(log.contains("guest asked to retry"), "{log}");
    // The same instance serves the next flush: nothing was discarded.
    let call = instance.flush(&chunk(&[r#"{"msg":"b"}"#], 1, 0), "app");
    assert!(!call.log_text().contains("faulted"), "{}", call.log_text());
    instance.exit();
    plugin.close();
    assert!(!held.lock().unwrap().is_empty(), "the request reached the endpoint");
}
