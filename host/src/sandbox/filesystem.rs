//! `wasm_allow_dirs`: `host_dir:guest_dir[:ro|rw], ...`, the directories a guest may open
//! (read-only unless `rw`), preopened under the guest path; no other file is reachable.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A directory the guest may open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// The grants of `wasm_allow_dirs`, one per item; each host directory must exist.
pub fn grants(items: &[String]) -> Result<Vec<DirGrant>> {
    items.iter().map(|item| grant(item)).collect()
}

fn grant(item: &str) -> Result<DirGrant> {
    let mut parts: Vec<&str> = item.split(':').collect();
    let writable = match parts.last() {
        Some(&"rw") => {
            parts.pop();
            true
        }
        Some(&"ro") => {
            parts.pop();
            false
        }
        _ => false,
    };
    let [host, guest] = parts[..] else {
        bail!("invalid directory grant {item:?} in 'wasm_allow_dirs' (host_dir:guest_dir[:ro|rw])");
    };
    let host = PathBuf::from(host);
    if !host.is_dir() {
        bail!("directory {} granted by 'wasm_allow_dirs' does not exist", host.display());
    }
    if !guest.starts_with('/') {
        bail!("guest path {guest:?} in 'wasm_allow_dirs' must be absolute");
    }
    Ok(DirGrant { host, guest: guest.to_owned(), writable })
}

/// Preopens exactly the granted directories.
pub fn apply(builder: &mut WasiCtxBuilder, dirs: &[DirGrant]) -> Result<()> {
    for dir in dirs {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to open granted directory {}", dir.host.display()))?;
    }
    Ok(())
}
