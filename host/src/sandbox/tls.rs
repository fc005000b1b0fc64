//! Which certificate authorities a guest's outgoing HTTPS requests trust.
//!
//! - Always: the public roots compiled into the host (Mozilla's, from `webpki-roots`).
//! - `wasm_tls_ca_file`: a PEM file of CA certificates added to them (a private or corporate
//!   CA). Read when the instance starts; a missing file, or one without a certificate, refuses
//!   the instance.
//! - `wasm_tls_system_roots on`: the system's trust store too (`SSL_CERT_FILE`,
//!   `SSL_CERT_DIR`, or the distribution's bundle), as `rustls-native-certs` finds it.
//!
//! The same trust is the guest's own, for TLS it does itself over a socket (Go's `crypto/tls`,
//! OpenSSL, rustls in the guest): the roots as one PEM file ([`TlsTrust::roots_pem`], the
//! public ones as whole certificates from `webpki-root-certs`, the same Mozilla set), which
//! [`offer`] preopens read-only at [`GUEST_DIR`] and names with `SSL_CERT_FILE`, the variable
//! those libraries read for their system roots. The runtime writes the file
//! (`runtime::trust_file`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::sandbox::client_cert::ClientCert;

/// Where a guest finds the roots file: a directory preopened read-only holding only
/// [`GUEST_FILE_NAME`].
pub const GUEST_DIR: &str = "/.out_wasm/tls";
/// The roots file's name in [`GUEST_DIR`] (and in the host's directory of it).
pub const GUEST_FILE_NAME: &str = "roots.pem";

/// The roots an instance's HTTPS requests trust, and the client configuration made of them.
#[derive(Clone)]
pub struct TlsTrust {
    pub ca_file: Option<PathBuf>,
    pub system_roots: bool,
    /// Certificates the roots hold beyond the public ones (from the file and the system).
    pub added: usize,
    /// What HTTPS requests present to a server that asks (`wasm_tls_crt_file`).
    pub client_cert: Option<Arc<ClientCert>>,
    roots: Arc<RootCertStore>,
    client: Arc<ClientConfig>,
    /// The certificates beyond the public ones, for [`TlsTrust::roots_pem`].
    extra: Arc<Vec<CertificateDer<'static>>>,
}

impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTrust")
            .field("ca_file", &self.ca_file)
            .field("system_roots", &self.system_roots)
            .field("added", &self.added)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsTrust {
    fn eq(&self, other: &Self) -> bool {
        let cert = |trust: &Self| trust.client_cert.as_ref().map(|cert| (cert.crt_file.clone(), cert.key_file.clone()));
        (&self.ca_file, self.system_roots, self.added, cert(self))
            == (&other.ca_file, other.system_roots, other.added, cert(other))
    }
}

impl Eq for TlsTrust {}

impl Default for TlsTrust {
    fn default() -> Self {
        Self {
            ca_file: None,
            system_roots: false,
            added: 0,
            client_cert: None,
            roots: Arc::new(public_roots()),
            client: client(public_roots(), None).expect("a client without a certificate"),
            extra: Arc::new(Vec::new()),
        }
    }
}

fn public_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn client(roots: RootCertStore, cert: Option<&ClientCert>) -> Result<Arc<ClientConfig>> {
    // The provider is named rather than taken from the process default, which is ambiguous
    // when more than one is compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some(cert) => builder.with_client_auth_cert(cert.chain.clone(), cert.key()).with_context(|| {
            format!(
                "the key of {} ('wasm_tls_key_file') does not go with the certificate of {} ('wasm_tls_crt_file')",
                cert.key_file.display(),
                cert.crt_file.display()
            )
        })?,
    };
    Ok(Arc::new(config))
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
        let mut extra = Vec::new();
        if system_roots {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                bail!("'wasm_tls_system_roots on' found no certificate in the system's trust store: {why}");
            }
            // A store with a few unparsable entries is common; the others still count.
            let before = roots.len();
            for cert in found.certs {
                if roots.add(cert.clone()).is_ok() {
                    extra.push(cert);
                }
            }
            if roots.len() == before {
                bail!("'wasm_tls_system_roots on' found no usable certificate in the system's trust store");
            }
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
                extra.push(cert.clone());
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
        Ok(Self {
            ca_file,
            system_roots,
            added,
            client_cert: None,
            client: client(roots.clone(), None)?,
            roots: Arc::new(roots),
            extra: Arc::new(extra),
        })
    }

    /// The same trust, with `cert` presented to servers that ask for a client certificate.
    pub fn with_client_cert(self, cert: ClientCert) -> Result<Self> {
        let client = client(RootCertStore::clone(&self.roots), Some(&cert))?;
        Ok(Self { client, client_cert: Some(Arc::new(cert)), ..self })
    }

    /// The roots as one PEM file: the public ones (whole certificates, the same set the host's
    /// client trusts), then the system's and the CA file's when configured.
    pub fn roots_pem(&self) -> Arc<Vec<u8>> {
        static PUBLIC: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
        let public = PUBLIC.get_or_init(|| Arc::new(pem_of(webpki_root_certs::TLS_SERVER_ROOT_CERTS)));
        if self.extra.is_empty() {
            return public.clone();
        }
        let mut all = Vec::clone(public);
        all.extend(pem_of(&self.extra));
        Arc::new(all)
    }

    /// The client configuration HTTPS connections use.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }
}

fn pem_of(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    let blocks: Vec<pem::Pem> = certs.iter().map(|c| pem::Pem::new("CERTIFICATE", c.as_ref())).collect();
    pem::encode_many(&blocks).into_bytes()
}

/// Gives the guest the roots file kept in `host_dir` ([`GUEST_FILE_NAME`]): the directory
/// preopened read-only at [`GUEST_DIR`], and `SSL_CERT_FILE` naming the file.
pub fn offer(builder: &mut WasiCtxBuilder, host_dir: &Path) -> Result<()> {
    builder
        .preopened_dir(host_dir, GUEST_DIR, FsPerms::ReadOnly)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("failed to open the directory of the TLS roots file {}", host_dir.display()))?;
    builder.env("SSL_CERT_FILE", format!("{GUEST_DIR}/{GUEST_FILE_NAME}"));
    Ok(())
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

    #[test]
    fn the_guests_roots_file_holds_the_public_roots_then_the_ca_file() {
        let count = |pem: &[u8]| CertificateDer::pem_slice_iter(pem).filter(Result::is_ok).count();
        let public = trust(&[]).unwrap().roots_pem();
        assert_eq!(count(&public), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len(), "every public root, whole");
        let dir = std::env::temp_dir().join(format!("out-wasm-tls-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A CA of the public set stands for a private one: any usable CA certificate does.
        let ca = pem_of(&webpki_root_certs::TLS_SERVER_ROOT_CERTS[..1]);
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca).unwrap();
        let with = trust(&[("wasm_tls_ca_file", ca_file.to_str().unwrap())]).unwrap().roots_pem();
        assert_eq!(count(&with), count(&public) + 1);
        assert!(with.starts_with(&public) && with.ends_with(&ca), "the public roots, then the CA file's");
        let _ = std::fs::remove_dir_all(dir);
    }
}
