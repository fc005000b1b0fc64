//! A real OCI registry on loopback for the tests: Debian's `docker-registry` (the CNCF
//! distribution registry), with TLS from a [`PrivateCa`] and basic auth from an `htpasswd` file
//! (`apache2-utils`), storing to a directory the test owns.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    \
             enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {dir}/cert.pem\n    key: \
             {dir}/key.pem\nauth:\n  htpasswd:\n    realm: out-wasm\n    path: {dir}/htpasswd\n",
            storage = dir.join("storage").display(),
            dir = dir.display(),
        );
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
