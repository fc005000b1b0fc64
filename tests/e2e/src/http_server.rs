//! Real HTTP endpoints on loopback for the tests of guests that send HTTP: a scripted HTTP/1.1
//! server (HTTPS with a certificate from a CA made for the test) that records what it is sent.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A request as the server saw it.
#[derive(Debug)]
pub struct Seen {
    pub request_line: String,
    pub content_type: Option<String>,
    /// The `idempotency-key` header, if the request had one.
    pub idempotency_key: Option<String>,
    pub body: String,
}

/// A minimal HTTP/1.1 server (HTTPS with `tls`): one request per connection, answered with
/// the next scripted status (200 when the script is empty).
pub struct Server {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The statuses the next requests get, in order (200 when empty).
    pub script: Arc<Mutex<VecDeque<u16>>>,
}

/// Reads one request from `stream` and answers it with the next scripted status.
fn answer(stream: impl Read + Write, seen: &Mutex<Vec<Seen>>, script: &Mutex<VecDeque<u16>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut length, mut content_type, mut idempotency_key) = (0, None, None);
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
            "idempotency-key" => idempotency_key = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let status = script.lock().unwrap().pop_front().unwrap_or(200);
    seen.lock().unwrap().push(Seen {
        request_line: request_line.trim_end().to_owned(),
        content_type,
        idempotency_key,
        body: String::from_utf8(body).unwrap(),
    });
    let stream = reader.get_mut();
    write!(stream, "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
    stream.flush()
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    pub fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
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
pub struct PrivateCa {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl PrivateCa {
    pub fn new(name: &str) -> Self {
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
    pub fn write(&self, test: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("out-wasm-ca-{test}-{}.pem", std::process::id()));
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}
