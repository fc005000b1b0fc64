//! The artifact store: pulled components, content-addressed, beside the compile cache
//! (`<wasm_cache_dir>/oci`), so that a restart, an unreachable registry or an air-gapped node
//! starts from the last artifact that passed every check.
//!
//! The compile cache's directory rule holds here too ([`PrivateDir`]: every path component
//! root's or the agent's and writable by no other user, checked again by every operation, the
//! compile cache's directory above included), files are created `O_EXCL | O_NOFOLLOW` and
//! appear by atomic rename, and a component is used only if its SHA-256 is still the digest
//! it is stored under (checked on every use; a damaged one is deleted and pulled again). Only what passed its checks is
//! written: `sha256-<digest>.wasm` (a component), `manifest-<digest>.json` (which component a
//! manifest digest has, and the verification rule it passed), `ref-<hash>.json` (the manifest
//! digest a reference last resolved to).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::runtime::oci::{Artifact, OciRef, satisfies};
use crate::runtime::private_dir::PrivateDir;

/// The largest record or reference file the store reads (they are a few hundred bytes).
const RECORD_CAP: u64 = 64 << 10;

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
        PrivateDir::create(dir).context("the artifact store of pulled guests cannot be trusted")?;
        Ok(Self { dir: dir.to_owned() })
    }

    /// The directory, checked again.
    fn private(&self) -> Result<PrivateDir> {
        PrivateDir::open(&self.dir).context("the artifact store of pulled guests cannot be trusted")
    }

    /// The store beside the compile cache at `cache_dir`.
    pub fn beside(cache_dir: &Path) -> PathBuf {
        cache_dir.join("oci")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn component_name(digest: &str) -> Option<String> {
        Some(format!("sha256-{}.wasm", hex(digest)?))
    }

    /// The stored component with SHA-256 `digest`, if it is there and still has that digest;
    /// a damaged one is deleted.
    pub fn component(&self, digest: &str) -> Option<PathBuf> {
        let name = Self::component_name(digest)?;
        let dir = self.private().ok()?;
        // Opened without following a symlink, and only if it is the agent's and no one else
        // can write it; hashed from that descriptor.
        let file = match dir.open_file(&name) {
            Ok(Some(file)) => file,
            Ok(None) => return None,
            Err(_) => {
                dir.remove(&name);
                return None;
            }
        };
        let mut hasher = sha2::Sha256::new();
        let read = std::io::copy(&mut &file, &mut hasher);
        let actual: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if read.is_err() || actual != hex(digest)? {
            // Damaged (another digest): pulled again.
            dir.remove(&name);
            return None;
        }
        Some(self.dir.join(name))
    }

    /// Writes the component `digest` with `write` (which streams it and checks it), appearing
    /// only if `write` succeeds.
    pub fn write(&self, digest: &str, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<PathBuf> {
        let name = Self::component_name(digest).context("not a sha256 digest")?;
        self.private()?.write_atomically_with(&name, write)?;
        Ok(self.dir.join(name))
    }

    /// Deletes the component `digest` (it turned out not to be loadable).
    pub fn forget(&self, digest: &str) {
        if let (Some(name), Ok(dir)) = (Self::component_name(digest), self.private()) {
            dir.remove(&name);
        }
    }

    fn manifest_name(manifest: &str) -> Option<String> {
        Some(format!("manifest-{}.json", hex(manifest)?))
    }

    /// Records what manifest `manifest` holds and the rule it passed.
    pub fn record(&self, manifest: &str, record: &Record) -> Result<()> {
        let name = Self::manifest_name(manifest).context("not a sha256 digest")?;
        self.private()?.write_atomically(&name, &serde_json::to_vec(record)?)
    }

    /// The stored artifact of manifest `manifest`, if its record satisfies the rule `policy`
    /// and its component is intact.
    pub fn find(&self, manifest: &str, policy: &str) -> Option<Artifact> {
        let bytes = self.private().ok()?.read(&Self::manifest_name(manifest)?, RECORD_CAP).ok()??;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        if !satisfies(&record.policy, policy) {
            return None;
        }
        let path = self.component(&record.component)?;
        Some(Artifact { manifest: manifest.to_owned(), digest: record.component, path, offline: None })
    }

    fn reference_name(reference: &OciRef) -> String {
        let name = crate::runtime::image::digest(reference.to_string().as_bytes());
        format!("ref-{}.json", &name[..32])
    }

    /// Remembers that `reference` resolved to `manifest` (best effort: it only matters to a
    /// start without the registry).
    pub fn remember(&self, reference: &OciRef, manifest: &str) {
        let at_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let resolved = Resolved { reference: reference.to_string(), manifest: manifest.to_owned(), at_unix };
        if let (Ok(bytes), Ok(dir)) = (serde_json::to_vec(&resolved), self.private()) {
            let _ = dir.write_atomically(&Self::reference_name(reference), &bytes);
        }
    }

    /// The manifest digest `reference` last resolved to.
    pub fn recall(&self, reference: &OciRef) -> Option<String> {
        let bytes = self.private().ok()?.read(&Self::reference_name(reference), RECORD_CAP).ok()??;
        let resolved: Resolved = serde_json::from_slice(&bytes).ok()?;
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

    #[test]
    fn the_store_is_not_trusted_below_a_cache_directory_others_can_write() {
        let cache = std::env::temp_dir().join(format!("out-wasm-oci-parent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let store = ArtifactStore::open(&ArtifactStore::beside(&cache)).unwrap();
        let bytes = b"\0asm\x0d\0\x01\0";
        let digest = crate::runtime::image::digest(bytes);
        store.write(&digest, |file| Ok(std::io::Write::write_all(file, bytes)?)).unwrap();
        let manifest = format!("sha256:{}", "2".repeat(64));
        store.record(&manifest, &Record { component: digest.clone(), policy: "none".into() }).unwrap();
        assert!(store.find(&manifest, "none").is_some());
        // The parent opened up after the store was opened: whoever can write it can swap `oci`.
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(store.find(&manifest, "none").is_none(), "every use checks the whole path again");
        let err = format!("{:#}", ArtifactStore::open(&ArtifactStore::beside(&cache)).unwrap_err());
        assert!(err.contains("writable by other users and not sticky"), "{err}");
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
