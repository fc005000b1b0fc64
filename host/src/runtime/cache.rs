//! The compiled-artifact cache: a component compiled once is not compiled again, neither when a
//! hot swap returns to an earlier version nor when the agent restarts.
//!
//! An entry is keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime
//! version, compiler settings, CPU features), so an engine that could not run it never finds
//! it. Loading an entry maps native code the agent then runs, so an entry is used only if the
//! agent itself wrote it (docs/security.md, "The compile cache"):
//! - the directory passes [`PrivateDir`]'s rule (every path component root's or the agent's,
//!   writable by no other user, the directory the agent's alone), checked again at every load;
//! - every entry has beside it (`.cwasm.mac`) a keyed BLAKE3 MAC of its name and bytes, under a
//!   key (`key`, 32 random bytes, 0600) the agent created in the directory and reads, checked
//!   (the agent's, 0600, not a symlink) at every load: an entry written by anyone who cannot
//!   read the key never verifies, whatever they can write;
//! - entries, MACs and the key are written under random names with `O_EXCL | O_NOFOLLOW` and
//!   appear by rename (the key by a link that never replaces one).
//!
//! The entry is opened once (`O_NOFOLLOW`, the agent's, writable by no one else), its MAC
//! computed from that descriptor, and the same file mapped (through `/proc/self/fd`), so no
//! name is resolved between the check and the mapping. BLAKE3 because the check runs on every
//! cached start over the whole artifact (an interpreter's is 50 to 80 MiB): it takes a fraction
//! of SHA-256's (or HMAC-SHA256's) time here. Entries of earlier releases (`.blake3` or
//! `.sha256` beside them, no MAC) are not used: the component is compiled once more and stored
//! anew. Anything off (a foreign or open directory, a torn, truncated, stale or planted entry)
//! means compiling from source, never failing.
//!
//! An entry is wasmtime's serialized artifact as it is, so loading maps the file instead of
//! copying it onto the heap: its code is file-backed, paged in as it runs, and shared through
//! the page cache by every process of the agent's user that maps the same entry.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) use crate::runtime::private_dir::PrivateDir;

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

/// The MAC key's file in the cache directory.
const KEY_FILE: &str = "key";
const KEY_LEN: usize = blake3::KEY_LEN;

impl CompileCache {
    /// The cache at `dir` (created 0700 if missing, with its key), if it is safe to trust.
    pub fn open(dir: &Path) -> Result<Self> {
        let private = PrivateDir::create(dir)?;
        key(&private, true)?;
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

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, engine: &Engine, digest: &str) -> String {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        format!("{digest}-{:016x}.cwasm", hasher.finish())
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

    fn load(&self, engine: &Engine, entry: &str) -> Option<Component> {
        // Every load checks the directory and the key anew: what held when the cache was opened
        // (a directory's mode, a parent's owner) may not hold now.
        let dir = PrivateDir::open(&self.dir).ok()?;
        let key = key(&dir, false).ok()?;
        let expected = dir.read(&mac_name(entry), 2 * blake3::OUT_LEN as u64).ok()??;
        let file = dir.open_file(entry).ok()??;
        // `Hash`'s comparison takes the same time wherever the bytes differ.
        let expected = blake3::Hash::from_hex(&expected).ok();
        if expected != Some(mac(&key, entry, &file).ok()?) {
            // Torn, tampered with, or not written under this key: dropped so the next store
            // replaces it.
            dir.remove(entry);
            return None;
        }
        // The same open file, mapped: `/proc/self/fd/N` opens the inode the descriptor holds,
        // whatever the entry's name leads to now.
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        // SAFETY: the file was written by `store` from `Component::serialize` of an engine with
        // the same compatibility hash (part of the entry's name, which the MAC covers), and is
        // byte-for-byte what was written: its keyed MAC, computed just now from this descriptor,
        // is the one stored beside it under a key only the agent's user can read. It is a
        // regular file of the agent's user that no other user can write, in a directory only
        // that user can write, and the agent only ever replaces entries by a rename, never in
        // place, so the mapping cannot change under the code. Wasmtime checks the version and
        // settings again and refuses a mismatch.
        let component = unsafe { Component::deserialize_file(engine, &proc_path) }.ok();
        drop(file);
        component
    }

    fn store(&self, entry: &str, component: &Component) -> Result<()> {
        let dir = PrivateDir::open(&self.dir)?;
        let key = key(&dir, false)?;
        let artifact = component.serialize().map_err(anyhow::Error::from)?;
        let mut hasher = keyed(&key, entry);
        hasher.update(&artifact);
        // The MAC first: an entry is only used with a MAC that matches it, so a crash between
        // the two renames leaves a stale MAC, which refuses the old entry.
        dir.write_atomically(&mac_name(entry), hasher.finalize().to_hex().as_bytes())?;
        dir.write_atomically(entry, &artifact)?;
        // An earlier release's check of the same entry, if there was one, now checks nothing.
        dir.remove(&format!("{entry}.blake3"));
        dir.remove(&format!("{entry}.sha256"));
        Ok(())
    }
}

/// The cache's MAC key: read, and checked (the agent's, mode 0600, a regular file, not a
/// symlink, 32 bytes); with `create`, made if missing (random, 0600, never replacing one).
fn key(dir: &PrivateDir, create: bool) -> Result<[u8; KEY_LEN]> {
    if create {
        let mut fresh = [0u8; KEY_LEN];
        getrandom::fill(&mut fresh).map_err(|err| anyhow::anyhow!("failed to get random bytes: {err}"))?;
        dir.create_once(KEY_FILE, &fresh)?;
    }
    let file = dir.open_file(KEY_FILE)?.with_context(|| format!("{} has no key", dir.path().display()))?;
    let mode = file.metadata()?.permissions();
    if std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077 != 0 {
        bail!("the cache key {} is readable by other users", dir.path().join(KEY_FILE).display());
    }
    let mut key = [0u8; KEY_LEN];
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, KEY_LEN as u64 + 1), &mut bytes)?;
    if bytes.len() != KEY_LEN {
        bail!("the cache key {} is not {KEY_LEN} bytes", dir.path().join(KEY_FILE).display());
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// The file holding the MAC of `entry`.
fn mac_name(entry: &str) -> String {
    format!("{entry}.mac")
}

/// A keyed hasher that has taken the entry's name (what it claims to be) first.
fn keyed(key: &[u8; KEY_LEN], entry: &str) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(entry.as_bytes());
    hasher.update(&[0]);
    hasher
}

/// The MAC of the entry `entry` read from `file`, read in pieces. Not hashed
/// from a mapping of it: every page of a mapping counts in the process's resident memory while
/// it is mapped, which would add the whole artifact (up to 80 MiB) to the agent's peak for the
/// check; read, the pages stay the page cache's, and the mapping then maps only what runs.
fn mac(key: &[u8; KEY_LEN], entry: &str, file: &std::fs::File) -> std::io::Result<blake3::Hash> {
    let mut hasher = keyed(key, entry);
    hasher.update_reader(file)?;
    Ok(hasher.finalize())
}

/// Compiles without any cache.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::from_binary(engine, bytes).map_err(anyhow::Error::from).context("failed to compile the component")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("out-wasm-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    /// The smallest component: `(component)`.
    const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn an_entry_is_used_only_whole_and_as_stored() {
        let dir = scratch("entry");
        let cache = CompileCache::open(&dir).unwrap();
        let engine = Engine::default();
        let read = || Ok(EMPTY.to_vec());
        let (_, origin) = cache.load_or_compile(&engine, "d1", read).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = cache.load_or_compile(&engine, "d1", || panic!("read only to compile")).unwrap();
        assert_eq!(origin, Origin::Cache, "the stored entry is mapped");
        let entry = dir.join(cache.entry(&engine, "d1"));
        let mut artifact = std::fs::read(&entry).unwrap();
        let last = artifact.len() - 1;
        artifact[last] ^= 1;
        std::fs::write(&entry, &artifact).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, "d1", read).unwrap();
        assert_eq!(origin, Origin::Compiled, "a flipped bit is refused and the component compiled again");
        std::fs::remove_file(dir.join(mac_name(&cache.entry(&engine, "d1")))).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, "d1", read).unwrap();
        assert_eq!(origin, Origin::Compiled, "an entry without its MAC is not used");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_entry_planted_by_another_writer_is_refused_at_load() {
        let dir = scratch("planted");
        let cache = CompileCache::open(&dir).unwrap();
        let engine = Engine::default();
        let (component, _) = cache.load_or_compile(&engine, "d1", || Ok(EMPTY.to_vec())).unwrap();
        let name = cache.entry(&engine, "d1");
        // Another writer of the directory (a container sharing the volume, root squashed to the
        // same uid) plants an artifact with a hash beside it, as the cache of earlier releases
        // took: without the key, its MAC cannot be right.
        let planted = component.serialize().unwrap();
        std::fs::write(dir.join(&name), &planted).unwrap();
        std::fs::write(dir.join(mac_name(&name)), blake3::hash(&planted).to_hex().as_bytes()).unwrap();
        let mut other_key = [7u8; KEY_LEN];
        other_key[0] = 1;
        let mut hasher = keyed(&other_key, &name);
        hasher.update(&planted);
        std::fs::write(dir.join(format!("{name}.blake3")), blake3::hash(&planted).to_hex().as_bytes()).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, "d1", || Ok(EMPTY.to_vec())).unwrap();
        assert_eq!(origin, Origin::Compiled, "a plain hash is not a MAC");
        std::fs::write(dir.join(mac_name(&name)), hasher.finalize().to_hex().as_bytes()).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, "d1", || Ok(EMPTY.to_vec())).unwrap();
        assert_eq!(origin, Origin::Compiled, "a MAC under another key is refused");

        // An entry of its own, stored under a name it does not belong to, is refused too.
        let (_, origin) = cache.load_or_compile(&engine, "d1", || Ok(EMPTY.to_vec())).unwrap();
        assert_eq!(origin, Origin::Cache);
        let other = cache.entry(&engine, "d2");
        std::fs::copy(dir.join(&name), dir.join(&other)).unwrap();
        std::fs::copy(dir.join(mac_name(&name)), dir.join(mac_name(&other))).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, "d2", || Ok(EMPTY.to_vec())).unwrap();
        assert_eq!(origin, Origin::Compiled, "the MAC covers the entry's name");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_load_checks_the_directory_and_the_key_again() {
        let dir = scratch("recheck");
        let cache = CompileCache::open(&dir).unwrap();
        let engine = Engine::default();
        let read = || Ok(EMPTY.to_vec());
        cache.load_or_compile(&engine, "d1", read).unwrap();
        assert_eq!(cache.load_or_compile(&engine, "d1", read).unwrap().1, Origin::Cache);
        // Opened (and checked) while private; opened up afterwards: no longer trusted.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(cache.load_or_compile(&engine, "d1", read).unwrap().1, Origin::Compiled);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(cache.load_or_compile(&engine, "d1", read).unwrap().1, Origin::Cache);
        // A key others can read is no key.
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(cache.load_or_compile(&engine, "d1", read).unwrap().1, Origin::Compiled);
        // Nor is a key swapped for a symlink to a key someone else knows.
        std::fs::write(dir.join("known"), [9u8; KEY_LEN]).unwrap();
        std::fs::set_permissions(dir.join("known"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        std::os::unix::fs::symlink(dir.join("known"), dir.join(KEY_FILE)).unwrap();
        assert_eq!(cache.load_or_compile(&engine, "d1", read).unwrap().1, Origin::Compiled);
        assert!(CompileCache::open(&dir).is_err(), "a symlinked key is refused");
        // An entry swapped for a symlink to a file with the right bytes is not followed.
        std::fs::remove_file(dir.join(KEY_FILE)).unwrap();
        let cache = CompileCache::open(&dir).unwrap();
        cache.load_or_compile(&engine, "d1", read).unwrap();
        let name = cache.entry(&engine, "d1");
        std::fs::rename(dir.join(&name), dir.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join(&name)).unwrap();
        assert_eq!(cache.load_or_compile(&engine, "d1", read).unwrap().1, Origin::Compiled);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_directory_others_can_write() {
        let dir = scratch("open");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = format!("{:#}", CompileCache::open(&dir).unwrap_err());
        assert!(err.contains("writable by other users"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        CompileCache::open(&dir).expect("a private directory is trusted");
        let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the agent's alone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
