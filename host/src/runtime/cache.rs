//! The compiled-artifact cache: a component compiled once is not compiled again, neither when a
//! hot swap returns to an earlier version nor when the agent restarts.
//!
//! An entry is keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime
//! version, compiler settings, CPU features), so an engine that could not run it never finds
//! it. Loading an entry maps native code, so the cache is trusted only as far as it can be:
//! the directory must belong to the agent's user and be writable by nobody else, every entry
//! has the BLAKE3 hash of its artifact beside it (`.blake3`), checked before use, and entries
//! appear by atomic rename. BLAKE3 rather than SHA-256 because the check runs on every cached
//! start over the whole artifact (an interpreter's is 50 to 80 MiB): it takes a fraction of
//! SHA-256's time here, and the check is about integrity (a torn copy of a cache volume, a
//! damaged disk), not identity. Entries of earlier releases (`.sha256` beside them) are not
//! used: the component is compiled once more and stored anew.
//! Anything off (a foreign or open directory, a torn, truncated or stale entry) means compiling
//! from source, never failing.
//!
//! An entry is wasmtime's serialized artifact as it is, so loading maps the file
//! (`Component::deserialize_file`) instead of copying it onto the heap: its code is file-backed,
//! paged in as it runs, and shared through the page cache by every process on the node that
//! maps the same entry (the agents of a DaemonSet's pods sharing a cache volume).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

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
    /// Already loaded by another output of this process (`runtime::compiled`).
    Shared,
}

impl CompileCache {
    /// The cache at `dir` (created 0700 if missing), if it is safe to trust.
    pub fn open(dir: &Path) -> Result<Self> {
        open_private(dir)?;
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

    /// The component whose file has the SHA-256 `digest`: from the cache, or compiled from the
    /// bytes `read` gives and then stored. Failing to read or write the cache is not an error;
    /// compiling (or reading the bytes) is.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        read: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<(Component, Origin)> {
        let entry = self.entry(engine, digest);
        if let Some(component) = self.load(engine, &entry) {
            return Ok((component, Origin::Cache));
        }
        let component = compile(engine, &read()?)?;
        // A failed store only costs a compile next time.
        let _ = self.store(&entry, &component);
        Ok((component, Origin::Compiled))
    }

    fn load(&self, engine: &Engine, entry: &Path) -> Option<Component> {
        let expected = std::fs::read_to_string(sidecar(entry)).ok()?;
        if file_hash(entry).ok()? != expected.trim() {
            // Torn or tampered: drop it so the next store replaces it.
            let _ = std::fs::remove_file(entry);
            return None;
        }
        // SAFETY: the file was written by `store` from `Component::serialize` of an engine with
        // the same compatibility hash (part of the entry's name), is byte-for-byte what was
        // written (its SHA-256 matches the one stored beside it), sits in a directory only the
        // agent's user can write, and is only ever replaced by a rename, never modified in
        // place, so the mapping cannot change under the code. Wasmtime checks the version and
        // settings again and refuses a mismatch.
        unsafe { Component::deserialize_file(engine, entry) }.ok()
    }

    fn store(&self, entry: &Path, component: &Component) -> Result<()> {
        let artifact = component.serialize().map_err(anyhow::Error::from)?;
        let hash = blake3::hash(&artifact).to_hex();
        // The hash first: an entry is only used with a hash that matches it, so a crash between
        // the two renames leaves a stale hash, which refuses the old entry.
        write_atomically(&sidecar(entry), hash.as_bytes())?;
        write_atomically(entry, &artifact)?;
        // An earlier release's check of the same entry, if there was one, now checks nothing.
        let _ = std::fs::remove_file(entry.with_extension("cwasm.sha256"));
        Ok(())
    }
}

/// Creates `dir` (0700) if missing and checks that it can be trusted with what the host maps or
/// runs from it: it belongs to the agent's user and nobody else can write it. The rule of the
/// compile cache and of the artifact store of pulled guests (`runtime::oci::store`).
pub(crate) fn open_private(dir: &Path) -> Result<()> {
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
    Ok(())
}

/// The file holding the BLAKE3 hash of `entry`.
fn sidecar(entry: &Path) -> PathBuf {
    entry.with_extension("cwasm.blake3")
}

/// Lowercase hex BLAKE3 of a file, read in pieces. Not hashed from a mapping of it: every
/// page of a mapping counts in the process's resident memory while it is mapped, which would
/// add the whole artifact (up to 80 MiB) to the agent's peak for the check; read, the pages
/// stay the page cache's, and `deserialize_file` then maps only what runs.
fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Writes `bytes` to `path` through a temporary file and a rename: readers see the old file or
/// the new one, whole.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |file| Ok(file.write_all(bytes)?))
}

/// As [`write_atomically`], with the content written by `write` (which may stream it): the file
/// appears at `path` only if `write` succeeds.
pub(crate) fn write_atomically_with(path: &Path, write: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let tmp = temporary(path);
    let written = std::fs::File::create(&tmp).map_err(anyhow::Error::from).and_then(|mut file| {
        write(&mut file)?;
        file.sync_all()?;
        Ok(())
    });
    // Concurrent writers each rename a complete file; the last one wins, all are valid.
    let renamed = written.and_then(|()| Ok(std::fs::rename(&tmp, path)?));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// A name beside `path` no other writer (process or thread) uses.
fn temporary(path: &Path) -> PathBuf {
    path.with_extension(format!("tmp.{}.{:?}", std::process::id(), std::thread::current().id()))
}

/// Compiles without any cache.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::from_binary(engine, bytes).map_err(anyhow::Error::from).context("failed to compile the component")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_only_whole_and_as_stored() {
        let dir = std::env::temp_dir().join(format!("out-wasm-cache-entry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let cache = CompileCache::open(&dir).unwrap();
        let engine = Engine::default();
        // The smallest component: `(component)`.
        let bytes = b"\0asm\x0d\0\x01\0";
        let read = || Ok(bytes.to_vec());
        let (_, origin) = cache.load_or_compile(&engine, "d1", read).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = cache.load_or_compile(&engine, "d1", || panic!("read only to compile")).unwrap();
        assert_eq!(origin, Origin::Cache, "the stored entry is mapped");
        let entry = cache.entry(&engine, "d1");
        let mut artifact = std::fs::read(&entry).unwrap();
        let last = artifact.len() - 1;
        artifact[last] ^= 1;
        std::fs::write(&entry, &artifact).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, "d1", read).unwrap();
        assert_eq!(origin, Origin::Compiled, "a flipped bit is refused and the component compiled again");
        std::fs::remove_file(sidecar(&entry)).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, "d1", read).unwrap();
        assert_eq!(origin, Origin::Compiled, "an entry without its digest is not used");
        std::fs::remove_dir_all(&dir).unwrap();
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
