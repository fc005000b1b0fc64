//! A real OCI registry on loopback for the tests: Debian's `docker-registry` (the CNCF
//! distribution registry), with TLS from a [`PrivateCa`] and basic auth from an `htpasswd` file
//! (`apache2-utils`), or over plain HTTP as kind's and k3d's local registries serve, storing to
//! a directory the test owns. And [`HostileRegistry`]: a loopback server of the tests' own for
//! what no real registry does on purpose (a manifest without end, bytes at a trickle).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

use crate::http_server::PrivateCa;
use crate::sync::EVENT_TIMEOUT;

/// The registry binary: `$DOCKER_REGISTRY`, else Debian's.
pub fn registry_bin() -> Option<PathBuf> {
    let bin =
        std::env::var_os("DOCKER_REGISTRY").map_or_else(|| PathBuf::from("/usr/bin/docker-registry"), PathBuf::from);
    let htpasswd = Path::new("/usr/bin/htpasswd").exists();
    (bin.exists() && htpasswd).then_some(bin)
}

/// One running registry.
pub struct Registry {
    pub dir: PathBuf,
    pub port: u16,
    pub ca: PrivateCa,
    pub ca_file: PathBuf,
    pub user: String,
    pub password: String,
    child: Option<Child>,
}

impl Registry {
    /// Starts a registry in a fresh `dir`, with the user `fleet` and a password of its own.
    pub fn start(test: &str) -> Self {
        Self::start_with(test, true)
    }

    /// Starts a registry over plain HTTP without credentials, as a local development registry
    /// (kind's, k3d's `localhost:5000`) is.
    pub fn start_plain(test: &str) -> Self {
        Self::start_with(test, false)
    }

    fn start_with(test: &str, tls: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("out-wasm-registry-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let ca = PrivateCa::new(&format!("out-wasm registry CA {test}"));
        let pem = ca.server_pem();
        let first_cert = pem.find("-----BEGIN CERTIFICATE-----").unwrap();
        std::fs::write(dir.join("key.pem"), &pem[..first_cert]).unwrap();
        std::fs::write(dir.join("cert.pem"), &pem[first_cert..]).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem).unwrap();
        let password = format!("pw-{}-{test}", std::process::id());
        let htpasswd = Command::new("htpasswd").args(["-Bbn", "fleet", &password]).output().unwrap();
        assert!(htpasswd.status.success(), "htpasswd failed");
        std::fs::write(dir.join("htpasswd"), &htpasswd.stdout).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    \
             enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage = dir.join("storage").display(),
        );
        if tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {dir}/cert.pem\n    key: {dir}/key.pem\nauth:\n  htpasswd:\n    realm: \
                 out-wasm\n    path: {dir}/htpasswd\n",
                dir = dir.display(),
            ));
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let mut registry = Self { dir, port, ca, ca_file, user: "fleet".into(), password, child: None };
        registry.resume();
        registry
    }

    /// `localhost:PORT`.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// `oci://localhost:PORT/REPOSITORY`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("oci://{}/{repository_and_tag}", self.host())
    }

    /// Writes a Docker `config.json` with `password` for this registry; returns its path.
    pub fn auth_file(&self, name: &str, password: &str) -> PathBuf {
        use base64::Engine;
        use std::io::Write;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", self.user));
        let path = self.dir.join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        write!(file, r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#, self.host()).unwrap();
        path
    }

    /// Stops the registry (the agent must keep serving without it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage; returns once it accepts connections.
    pub fn resume(&mut self) {
        let child = Command::new(registry_bin().expect("docker-registry"))
            .args(["serve", self.dir.join("config.yml").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("registry.log")).unwrap())
            .spawn()
            .expect("failed to start docker-registry");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < EVENT_TIMEOUT, "docker-registry did not listen on {}", self.port);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The directory of `repository` in the storage (the filesystem driver's layout): its tags,
    /// manifest revisions and blob links.
    pub fn repository_dir(&self, repository: &str) -> PathBuf {
        self.dir.join("storage/docker/registry/v2/repositories").join(repository)
    }

    /// The stored blob `sha256:HEX` (the filesystem driver's layout): what a test corrupts.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join(format!("storage/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request to a [`HostileRegistry`]: its method and path, and the connection to answer on.
pub struct Request {
    pub method: String,
    pub path: String,
    pub stream: TcpStream,
}

impl Request {
    /// Answers with `status`, `headers` and `body` whole (`Content-Length` set).
    pub fn answer(mut self, status: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let _ = self.stream.write_all(head.as_bytes());
        if self.method != "HEAD" {
            let _ = self.stream.write_all(body);
        }
    }

    /// Answers 200 with a body of `total` bytes of `piece` at a time, `Content-Length` given or
    /// not (then the body ends when the connection does), waiting for `pace` before each piece;
    /// returns how many bytes were written before the client stopped reading.
    pub fn stream(mut self, total: u64, with_length: bool, piece: usize, pace: std::time::Duration) -> u64 {
        let mut head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n".to_owned();
        if with_length {
            head.push_str(&format!("Content-Length: {total}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        if self.stream.write_all(head.as_bytes()).is_err() {
            return 0;
        }
        let chunk = vec![b' '; piece];
        let mut sent = 0;
        while sent < total {
            if !pace.is_zero() {
                std::thread::sleep(pace);
            }
            if self.stream.write_all(&chunk).is_err() {
                break;
            }
            sent += piece as u64;
        }
        sent
    }
}

/// A registry of the tests' own on loopback, over plain HTTP: each request goes to the test's
/// `answer`, on a thread of its own; each request line is also sent to [`HostileRegistry::seen`].
pub struct HostileRegistry {
    pub port: u16,
    seen: Receiver<String>,
}

impl HostileRegistry {
    pub fn start(answer: impl Fn(Request) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tell, seen): (Sender<String>, Receiver<String>) = mpsc::channel();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (answer, tell) = (answer.clone(), tell.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    // The rest of the head; requests here have no body.
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    let mut parts = line.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                    let _ = tell.send(format!("{method} {path}"));
                    (*answer)(Request { method: method.to_owned(), path: path.to_owned(), stream });
                });
            }
        });
        Self { port, seen }
    }

    /// `oci://127.0.0.1:PORT/REPOSITORY:TAG`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("oci://127.0.0.1:{}/{repository_and_tag}", self.port)
    }

    /// Waits until a request whose line contains `needle` arrives.
    pub fn wait_for(&self, needle: &str) {
        let started = Instant::now();
        loop {
            let left = EVENT_TIMEOUT.saturating_sub(started.elapsed());
            match self.seen.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("no request {needle:?} within {EVENT_TIMEOUT:?}"),
            }
        }
    }
}
