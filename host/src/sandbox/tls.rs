//! Which certificate authorities a guest's outgoing HTTPS requests trust.
//!
//! - Always: the public roots compiled into the host (Mozilla's, from `webpki-roots`).
//! - `wasm_tls_ca_file`: a PEM file of CA certificates added to them (a private or corporate
//!   CA). Read when the instance starts; a missing file, or one without a certificate, refuses
//!   the instance.
//! - `wasm_tls_system_roots on`: the system's trust store too (`SSL_CERT_FILE`,
//!   `SSL_CERT_DIR`, or the distribution's bundle), as `rustls-native-certs` finds it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The roots an instance's HTTPS requests trust, and the client configuration made of them.
#[derive(Clone)]
pub struct TlsTrust {
    pub ca_file: Option<PathBuf>,
    pub system_roots: bool,
    /// Certificates the roots hold beyond the public ones (from the file and the system).
    pub added: usize,
    client: Arc<ClientConfig>,
}

impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTrust")
            .field("ca_file", &self.ca_file)
            .field("system_roots", &self.system_roots)
            .field("added", &self.added)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsTrust {
    fn eq(&self, other: &Self) -> bool {
        (&self.ca_file, self.system_roots, self.added) == (&other.ca_file, other.system_roots, other.added)
    }
}

impl Eq for TlsTrust {}

impl Default for TlsTrust {
    fn default() -> Self {
        Self { ca_file: None, system_roots: false, added: 0, client: client(public_roots()) }
    }
}

fn public_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn client(roots: RootCertStore) -> Arc<ClientConfig> {
    // The provider is named rather than taken from the process default, which is ambiguous
    // when more than one is compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

impl TlsTrust {
    /// The public roots, the system's with `system_roots` (`wasm_tls_system_roots`), and the
    /// certificates of `ca_file` (`wasm_tls_ca_file`), read now.
    pub fn load(ca_file: Option<PathBuf>, system_roots: bool) -> Result<Self> {
        if ca_file.is_none() && !system_roots {
            return Ok(Self::default());
        }
        let mut roots = public_roots();
        let public = roots.len();
        if system_roots {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                bail!("'wasm_tls_system_roots on' found no certificate in the system's trust store: {why}");
            }
            // A store with a few unparsable entries is common; the others still count.
            roots.add_parsable_certificates(found.certs);
        }
        if let Some(path) = &ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| anyhow::anyhow!("{err}"))
                .with_context(|| format!("failed to read the CA file {} ('wasm_tls_ca_file')", path.display()))?;
            if certs.is_empty() {
                bail!("the CA file {} ('wasm_tls_ca_file') holds no PEM certificate", path.display());
            }
            for (n, cert) in certs.into_iter().enumerate() {
                roots.add(cert).with_context(|| {
                    format!(
                        "certificate #{} of the CA file {} ('wasm_tls_ca_file') is not a usable CA",
                        n + 1,
                        path.display()
                    )
                })?;
            }
        }
        let added = roots.len() - public;
        Ok(Self { ca_file, system_roots, added, client: client(roots) })
    }

    /// The client configuration HTTPS connections use.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(pairs: &[(&str, &str)]) -> Result<TlsTrust> {
        let value = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        TlsTrust::load(value("wasm_tls_ca_file").map(PathBuf::from), value("wasm_tls_system_roots") == Some("on"))
    }

    #[test]
    fn public_roots_by_default_and_bad_settings_are_refused() {
        let default = trust(&[]).unwrap();
        assert_eq!((default.added, default.system_roots), (0, false));
        let dir = std::env::temp_dir().join(format!("out-wasm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        for (key, value, expected) in [
            ("wasm_tls_ca_file", "/nonexistent/ca.pem", "failed to read the CA file /nonexistent/ca.pem"),
            ("wasm_tls_ca_file", empty.to_str().unwrap(), "holds no PEM certificate"),
            ("wasm_tls_ca_file", garbage.to_str().unwrap(), "is not a usable CA"),
        ] {
            let err = format!("{:#}", trust(&[(key, value)]).unwrap_err());
            assert!(err.contains(expected), "{key}={value}: expected {expected:?} in {err}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
