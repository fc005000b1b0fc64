//! The compiled-artifact cache: a component compiled once is not compiled again, neither when a
//! hot swap returns to an earlier version nor when the agent restarts.
//!
//! An entry is keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime
//! version, compiler settings, CPU features), so an engine that could not run it never finds
//! it. Loading an entry maps native code, so the cache is trusted only as far as it can be:
//! the directory must belong to the agent's user and be writable by nobody else, every entry
//! carries the SHA-256 of its payload and is checked before use, and entries appear by atomic
//! rename. Anything off (a foreign or open directory, a torn, truncated or stale entry) means
//! compiling from source, never failing.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"OWCACHE1";

/// Where compiled components are kept.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
}

/// How a component was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Cache,
    Compiled,
}

impl CompileCache {
    /// The cache at `dir` (created 0700 if missing), if it is safe to trust.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("failed to create cache directory {}", dir.display()))?;
        let meta = std::fs::metadata(dir).with_context(|| format!("failed to inspect {}", dir.display()))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            bail!("cache directory {} belongs to uid {}, not to the agent's uid {euid}", dir.display(), meta.uid());
        }
        if meta.permissions().mode() & 0o022 != 0 {
            bail!("cache directory {} is writable by other users", dir.display());
        }
        Ok(Self { dir: dir.to_owned() })
    }

    /// The default directory: `$XDG_CACHE_HOME/out_wasm`, else `$HOME/.cache/out_wasm`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("out_wasm"))
    }

    fn entry(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
    }

    /// The component for `bytes` (whose SHA-256 is `digest`): from the cache, or compiled and
    /// then stored. Failing to read or write the cache is not an error; compiling is.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8], digest: &str) -> Result<(Component, Origin)> {
        let entry = self.entry(engine, digest);
        if let Some(component) = self.load(engine, &entry) {
            return Ok((component, Origin::Cache));
        }
        let component = compile(engine, bytes)?;
        // A failed store only costs a compile next time.
        let _ = self.store(&entry, &component);
        Ok((component, Origin::Compiled))
    }

    fn load(&self, engine: &Engine, entry: &Path) -> Option<Component> {
        let data = std::fs::read(entry).ok()?;
        let payload = verified_payload(&data);
        if payload.is_none() {
            // Torn or tampered: drop it so the next store replaces it.
            let _ = std::fs::remove_file(entry);
        }
        // SAFETY: the payload was written by `store` from `Component::serialize` of an engine
        // with the same compatibility hash (part of the entry's name), is byte-for-byte intact
        // (its SHA-256 matches), and sits in a directory only the agent's user can write.
        // Wasmtime checks the version and settings again and refuses a mismatch.
        unsafe { Component::deserialize(engine, payload?) }.ok()
    }

    fn store(&self, entry: &Path, component: &Component) -> Result<()> {
        let payload = component.serialize().map_err(anyhow::Error::from)?;
        let tmp = entry.with_extension(format!("tmp.{}.{:?}", std::process::id(), std::thread::current().id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(&payload))?;
        file.write_all(&payload)?;
        file.sync_all()?;
        // Concurrent writers each rename a complete file; the last one wins, all are valid.
        std::fs::rename(&tmp, entry).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(())
    }
}

fn verified_payload(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 32 {
        return None;
    }
    let (hash, payload) = rest.split_at(32);
    (Sha256::digest(payload).as_slice() == hash).then_some(payload)
}

/// Compiles without any cache.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::from_binary(engine, bytes).map_err(anyhow::Error::from).context("failed to compile the component")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_checked_before_use() {
        let payload = b"compiled code";
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(payload));
        entry.extend_from_slice(payload);
        assert_eq!(verified_payload(&entry), Some(payload.as_slice()));
        let last = entry.len() - 1;
        entry[last] ^= 1;
        assert_eq!(verified_payload(&entry), None, "a flipped bit is refused");
        assert_eq!(verified_payload(&entry[..20]), None, "a truncated entry is refused");
        assert_eq!(verified_payload(b"garbage"), None);
    }

    #[test]
    fn refuses_a_directory_others_can_write() {
        let dir = std::env::temp_dir().join(format!("out-wasm-cache-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = CompileCache::open(&dir).unwrap_err().to_string();
        assert!(err.contains("writable by other users"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        CompileCache::open(&dir).expect("a private directory is trusted");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
