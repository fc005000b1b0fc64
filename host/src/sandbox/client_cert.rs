//! The client certificate an output's guests present to HTTPS servers that ask for one (mutual
//! TLS): `wasm_tls_crt_file` (the certificate, then any intermediates, PEM) and
//! `wasm_tls_key_file` (its private key, PEM: PKCS#8, PKCS#1 or SEC1), both read at start. An
//! encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`) is decrypted with the password in
//! `wasm_tls_key_passwd_file`. The key stays in the host: the guest neither reads it nor
//! learns where it is.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use pkcs8::der::pem::PemLabel;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain and its key, as rustls presents them.
pub struct ClientCert {
    pub crt_file: PathBuf,
    pub key_file: PathBuf,
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for ClientCert {
    // The key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert")
            .field("crt_file", &self.crt_file)
            .field("key_file", &self.key_file)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for ClientCert {
    fn clone(&self) -> Self {
        Self {
            crt_file: self.crt_file.clone(),
            key_file: self.key_file.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl ClientCert {
    /// Reads the chain of `crt_file` and the key of `key_file`, decrypting it with the first
    /// line of `passwd_file` when it is encrypted.
    pub fn load(crt_file: PathBuf, key_file: PathBuf, passwd_file: Option<&Path>) -> Result<Self> {
        let chain = CertificateDer::pem_file_iter(&crt_file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| anyhow!("{err}"))
            .with_context(|| {
                format!("failed to read the certificate file {} ('wasm_tls_crt_file')", crt_file.display())
            })?;
        if chain.is_empty() {
            bail!("the certificate file {} ('wasm_tls_crt_file') holds no PEM certificate", crt_file.display());
        }
        let pem = std::fs::read_to_string(&key_file)
            .with_context(|| format!("failed to read the key file {} ('wasm_tls_key_file')", key_file.display()))?;
        let key = if pem.contains(&format!("-----BEGIN {}-----", pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL)) {
            let Some(passwd_file) = passwd_file else {
                bail!(
                    "the key file {} ('wasm_tls_key_file') is encrypted: name a file holding its password with \
                     wasm_tls_key_passwd_file",
                    key_file.display()
                );
            };
            decrypt(&pem, passwd_file).with_context(|| {
                format!("failed to decrypt the key file {} ('wasm_tls_key_file')", key_file.display())
            })?
        } else {
            if passwd_file.is_some() {
                bail!(
                    "wasm_tls_key_passwd_file is set, but the key file {} ('wasm_tls_key_file') is not an encrypted \
                     PKCS#8 key (ENCRYPTED PRIVATE KEY)",
                    key_file.display()
                );
            }
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|err| {
                anyhow!(
                    "the key file {} ('wasm_tls_key_file') holds no usable PEM private key (PKCS#8, PKCS#1 or \
                     SEC1): {err}",
                    key_file.display()
                )
            })?
        };
        Ok(Self { crt_file, key_file, chain, key })
    }

    /// The key, for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// The PKCS#8 key of an `ENCRYPTED PRIVATE KEY` PEM block, with the password on the first line
/// of `passwd_file` (as `openssl pkcs8 -topk8` writes and `-passin file:` reads).
fn decrypt(pem: &str, passwd_file: &Path) -> Result<PrivateKeyDer<'static>> {
    let text = std::fs::read_to_string(passwd_file).with_context(|| {
        format!("failed to read the password file {} ('wasm_tls_key_passwd_file')", passwd_file.display())
    })?;
    let password = text.lines().next().unwrap_or_default();
    let (_, document) = pkcs8::der::Document::from_pem(pem).map_err(|err| anyhow!("not one PEM block: {err}"))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
        .map_err(|err| anyhow!("not an encrypted PKCS#8 key: {err}"))?;
    let key = info
        .decrypt(password)
        .map_err(|err| anyhow!("wrong password (wasm_tls_key_passwd_file) or an unsupported cipher: {err}"))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.as_bytes().to_vec())))
}
