//! The file of TLS roots a guest reads as its system's (`sandbox::tls::offer`): written once per
//! distinct set of roots into a directory of the host's own, trusted as the compile cache's is
//! ([`PrivateDir`]): `$XDG_CACHE_HOME/out_wasm/tls/<digest>/roots.pem` (else under
//! `~/.cache`, else under the temporary directory with the agent's uid in the name), named by
//! the BLAKE3 digest of its content, so instances with the same roots share it and the file
//! never changes once written.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::{Context, Result};

use crate::runtime::cache::CompileCache;
use crate::runtime::private_dir::PrivateDir;
use crate::sandbox::tls::{GUEST_FILE_NAME, TlsTrust};

/// The directories written by this process, by digest: later instances skip the check.
static WRITTEN: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();

/// The directory holding `trust`'s roots file, written if missing or different.
pub fn dir(trust: &TlsTrust) -> Result<PathBuf> {
    let pem = trust.roots_pem();
    let digest = blake3::hash(&pem).to_hex()[..32].to_owned();
    let written = WRITTEN.get_or_init(Default::default);
    if let Some(dir) = written.lock().unwrap_or_else(PoisonError::into_inner).get(&digest) {
        return Ok(dir.clone());
    }
    let base = CompileCache::default_dir()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("out_wasm-{}", rustix::process::geteuid().as_raw())));
    let dir = base.join("tls").join(&digest);
    let private = PrivateDir::create(&dir).context("failed to make the directory of the guests' TLS roots file")?;
    let cap = u64::try_from(pem.len()).unwrap_or(u64::MAX);
    // A file another run left with other content (it cannot be, but for the digest) is replaced.
    if private.read(GUEST_FILE_NAME, cap).ok().flatten().as_deref() != Some(pem.as_slice()) {
        private
            .write_atomically(GUEST_FILE_NAME, &pem)
            .with_context(|| format!("failed to write the guests' TLS roots file in {}", dir.display()))?;
    }
    written.lock().unwrap_or_else(PoisonError::into_inner).insert(digest, dir.clone());
    Ok(dir)
}
