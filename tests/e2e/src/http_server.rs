//! Real HTTP endpoints on loopback for the tests of guests that send HTTP: a scripted HTTP/1.1
//! server (HTTPS with a certificate from a CA made for the test) that records what it is sent.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A request as the server saw it.
#[derive(Debug)]
pub struct Seen {
    pub request_line: String,
    pub content_type: Option<String>,
    /// The `idempotency-key` header, if the request had one.
    pub idempotency_key: Option<String>,
    /// Every header, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    /// The value of header `name` (lowercase), if the request had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 server (HTTPS with `tls`): one request per connection, answered with
/// the next scripted status (200 when the script is empty).
pub struct Server {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The statuses the next requests get, in order (200 when empty).
    pub script: Arc<Mutex<VecDeque<u16>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

/// Reads requests from `stream` and answers each with the next scripted status: one, then the
/// connection is closed, or (`keep_alive`) as many as the client sends on it.
fn answer(
    stream: impl Read + Write,
    seen: &Mutex<Vec<Seen>>,
    script: &Mutex<VecDeque<u16>>,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        answer_one(&mut reader, request_line, seen, script, keep_alive)?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn answer_one(
    reader: &mut BufReader<impl Read + Write>,
    request_line: String,
    seen: &Mutex<Vec<Seen>>,
    script: &Mutex<VecDeque<u16>>,
    keep_alive: bool,
) -> std::io::Result<()> {
    let (mut length, mut content_type, mut idempotency_key, mut headers) = (0, None, None, Vec::new());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
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
        headers,
        body: String::from_utf8(body).unwrap(),
    });
    let stream = reader.get_mut();
    let connection = if keep_alive { "keep-alive" } else { "close" };
    // One write: `write!` writes each piece of its format on its own, and a second small
    // segment waits (Nagle) for the ACK of the first, which the client delays by 40 ms.
    let answer = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: {connection}\r\n\r\n");
    stream.write_all(answer.as_bytes())?;
    stream.flush()
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    pub fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        Self::serve(tls, false)
    }

    /// A server that keeps each connection open for the client's next request (HTTP/1.1
    /// keep-alive), serving its connections one after another.
    pub fn keep_alive(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        Self::serve(tls, true)
    }

    fn serve(tls: Option<Arc<rustls::ServerConfig>>, keep_alive: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen_by_server, script_for_server, accepted) = (seen.clone(), script.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                accepted.fetch_add(1, Ordering::SeqCst);
                let (tls, seen, script) = (tls.clone(), seen_by_server.clone(), script_for_server.clone());
                let serve = move || {
                    // A client that gives up (a refused certificate) only ends its connection.
                    let _ = match &tls {
                        None => answer(stream, &seen, &script, keep_alive),
                        Some(config) => {
                            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
                            answer(rustls::StreamOwned::new(connection, stream), &seen, &script, keep_alive)
                        }
                    };
                };
                // One connection at a time (so a request answered means every earlier one was
                // seen), but a kept-alive connection would hold the others back: each gets a
                // thread.
                if keep_alive {
                    std::thread::spawn(serve);
                } else {
                    serve();
                }
            }
        });
        Self { port, seen, script, connections }
    }
}

/// A CA made for one test, and a server certificate for `localhost` and 127.0.0.1 it signed.
pub struct PrivateCa {
    pub ca_pem: String,
    /// The CA, to sign client certificates with.
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub server: Arc<rustls::ServerConfig>,
    /// The server's key, its certificate and the CA's, as PEM: a server in another process.
    server_pem: String,
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
        let server_pem = format!("{}{}{}", key.serialize_pem(), leaf.pem(), ca.pem());
        Self { ca_pem: ca.pem(), server: Self::server_config_from_pem(&server_pem), server_pem, issuer: ca }
    }

    /// A client certificate for `name` signed by the CA, and its key, as PEM texts.
    pub fn client_cert(&self, name: &str) -> (String, String) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The server's configuration, but requiring a client certificate the CA signed.
    pub fn server_requiring_client_certs(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let pem = self.server_pem.as_bytes();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem).expect("a private key");
        let chain: Vec<_> =
            rustls::pki_types::CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().expect("certificates");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(server)
    }

    /// The server's key and certificate chain as one PEM text.
    pub fn server_pem(&self) -> &str {
        &self.server_pem
    }

    /// A TLS server configuration from [`PrivateCa::server_pem`]'s text.
    pub fn server_config_from_pem(pem: &str) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).expect("a private key");
        let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("certificates");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(server)
    }

    /// Writes the CA certificate as a PEM file for `wasm_tls_ca_file`.
    pub fn write(&self, test: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("out-wasm-ca-{test}-{}.pem", std::process::id()));
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}
