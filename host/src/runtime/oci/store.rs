//! The artifact store: pulled components, content-addressed, beside the compile cache
//! (`<wasm_cache_dir>/oci`), so that a restart, an unreachable registry or an air-gapped node
//! starts from the last artifact that passed every check.
//!
//! The compile cache's trust rules hold here too ([`crate::runtime::cache`]): the directory
//! belongs to the agent's user and nobody else can write it, files appear by atomic rename,
//! and a component is used only if its SHA-256 is still the digest it is stored under (checked
//! on every use; a damaged one is deleted and pulled again). Only what passed its checks is
//! written: `sha256-<digest>.wasm` (a component), `manifest-<digest>.json` (which component a
//! manifest digest has, and the verification rule it passed), `ref-<hash>.json` (the manifest
//! digest a reference last resolved to).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::runtime::cache::{open_private, write_atomically, write_atomically_with};
use crate::runtime::oci::{Artifact, OciRef, satisfies};

/// Where pulled components are kept.
#[derive(Clone, Debug)]
pub struct ArtifactStore {
    dir: PathBuf,
}

/// What the store knows of one manifest digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Lowercase hex SHA-256 of its component.
    pub component: String,
    /// The rule it was verified under (`none`, `digest`, `cosign:<key fingerprint>`).
    pub policy: String,
}

/// The manifest digest a reference resolved to, and when.
#[derive(Debug, Serialize, Deserialize)]
struct Resolved {
    reference: String,
    manifest: String,
    at_unix: u64,
}

/// A digest as it may appear in a file name (hex only), or `None`.
fn hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

impl ArtifactStore {
    /// The store at `dir` (created 0700 if missing), if it is safe to trust.
    pub fn open(dir: &Path) -> Result<Self> {
        open_private(dir).context("the artifact store of pulled guests cannot be trusted")?;
        Ok(Self { dir: dir.to_owned() })
    }

    /// The store beside the compile cache at `cache_dir`.
    pub fn beside(cache_dir: &Path) -> PathBuf {
        cache_dir.join("oci")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn component_path(&self, digest: &str) -> Option<PathBuf> {
        Some(self.dir.join(format!("sha256-{}.wasm", hex(digest)?)))
    }

    /// The stored component with SHA-256 `digest`, if it is there and still has that digest;
    /// a damaged one is deleted.
    pub fn component(&self, digest: &str) -> Option<PathBuf> {
        let path = self.component_path(digest)?;
        match crate::runtime::image::file_digest(&path) {
            Ok(actual) if actual == hex(digest)? => Some(path),
            // Damaged (another digest, or no longer a component): pulled again.
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
                None
            }
            Err(_) if path.is_file() => {
                let _ = std::fs::remove_file(&path);
                None
            }
            Err(_) => None,
        }
    }

    /// Writes the component `digest` with `write` (which streams it and checks it), appearing
    /// only if `write` succeeds.
    pub fn write(&self, digest: &str, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<PathBuf> {
        let path = self.component_path(digest).context("not a sha256 digest")?;
        write_atomically_with(&path, write)?;
        Ok(path)
    }

    /// Deletes the component `digest` (it turned out not to be loadable).
    pub fn forget(&self, digest: &str) {
        if let Some(path) = self.component_path(digest) {
            let _ = std::fs::remove_file(path);
        }
    }

    fn manifest_path(&self, manifest: &str) -> Option<PathBuf> {
        Some(self.dir.join(format!("manifest-{}.json", hex(manifest)?)))
    }

    /// Records what manifest `manifest` holds and the rule it passed.
    pub fn record(&self, manifest: &str, record: &Record) -> Result<()> {
        let path = self.manifest_path(manifest).context("not a sha256 digest")?;
        write_atomically(&path, &serde_json::to_vec(record)?)
    }

    /// The stored artifact of manifest `manifest`, if its record satisfies the rule `policy`
    /// and its component is intact.
    pub fn find(&self, manifest: &str, policy: &str) -> Option<Artifact> {
        let record: Record = serde_json::from_slice(&std::fs::read(self.manifest_path(manifest)?).ok()?).ok()?;
        if !satisfies(&record.policy, policy) {
            return None;
        }
        let path = self.component(&record.component)?;
        Some(Artifact { manifest: manifest.to_owned(), digest: record.component, path, offline: None })
    }

    fn reference_path(&self, reference: &OciRef) -> PathBuf {
        let name = crate::runtime::image::digest(reference.to_string().as_bytes());
        self.dir.join(format!("ref-{}.json", &name[..32]))
    }

    /// Remembers that `reference` resolved to `manifest` (best effort: it only matters to a
    /// start without the registry).
    pub fn remember(&self, reference: &OciRef, manifest: &str) {
        let at_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let resolved = Resolved { reference: reference.to_string(), manifest: manifest.to_owned(), at_unix };
        if let Ok(bytes) = serde_json::to_vec(&resolved) {
            let _ = write_atomically(&self.reference_path(reference), &bytes);
        }
    }

    /// The manifest digest `reference` last resolved to.
    pub fn recall(&self, reference: &OciRef) -> Option<String> {
        let resolved: Resolved = serde_json::from_slice(&std::fs::read(self.reference_path(reference)).ok()?).ok()?;
        (resolved.reference == reference.to_string()).then_some(resolved.manifest)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_component_is_used_only_with_its_digest_and_records_keep_their_rule() {
        let dir = std::env::temp_dir().join(format!("out-wasm-oci-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ArtifactStore::open(&dir).unwrap();
        let bytes = b"\0asm\x0d\0\x01\0";
        let digest = crate::runtime::image::digest(bytes);
        store.write(&digest, |file| Ok(std::io::Write::write_all(file, bytes)?)).unwrap();
        assert!(store.component(&digest).is_some());
        let failed = store.write(&"0".repeat(64), |_| anyhow::bail!("the layer did not match"));
        assert!(failed.is_err() && store.component(&"0".repeat(64)).is_none(), "a failed write leaves nothing");

        let manifest = format!("sha256:{}", "1".repeat(64));
        store.record(&manifest, &Record { component: digest.clone(), policy: "cosign:k1".into() }).unwrap();
        assert!(store.find(&manifest, "none").is_some());
        assert!(store.find(&manifest, "cosign:k1").is_some());
        assert!(store.find(&manifest, "cosign:k2").is_none(), "checked under another key");
        let reference = OciRef::parse("oci://localhost:5000/g:v1").unwrap();
        store.remember(&reference, &manifest);
        assert_eq!(store.recall(&reference), Some(manifest.clone()));

        let path = store.component(&digest).unwrap();
        std::fs::write(&path, b"\0asm\x0d\0\x01\x01").unwrap();
        assert!(store.find(&manifest, "none").is_none(), "a damaged component is not used");
        assert!(!path.exists(), "and deleted");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = format!("{:#}", ArtifactStore::open(&dir).unwrap_err());
        assert!(err.contains("writable by other users"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
