//! A guest component file, compiled and linked once, from which guest instances are made.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::bindings::{OutputPluginPre, WitVersion, v0_1_0, v0_2_0};
use crate::runtime::cache::{self, CompileCache, Origin};
use crate::runtime::compiled::SharedByDigest;
use crate::runtime::engine::engine_for;
use crate::runtime::linker::linker;
use crate::runtime::store::HostState;

const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// A compiled, linked guest component, as one output loaded it.
pub struct GuestImage {
    path: PathBuf,
    digest: String,
    origin: Origin,
    load_time: Duration,
    compiled: Arc<Compiled>,
}

/// The part every output serving the same digest shares (see [`crate::runtime::compiled`]).
pub struct Compiled {
    version: WitVersion,
    pre: Pre,
}

/// Every component compiled in this process, by digest.
static COMPILED: SharedByDigest<Compiled> = SharedByDigest::new();

/// A component linked and checked against the world of its WIT version.
pub(crate) enum Pre {
    V0_3_0(OutputPluginPre<HostState>),
    V0_2_0(v0_2_0::OutputPluginPre<HostState>),
    V0_1_0(v0_1_0::OutputPluginPre<HostState>),
}

impl GuestImage {
    /// Checks, compiles (or takes from `cache`, or from another output of this process) and
    /// links the component at `path`. The file is read into memory only to be compiled: its
    /// digest is computed in pieces, so a component the process or the cache already has costs
    /// no copy of it (an interpreter's component is tens of MiB, and memory freed by the C
    /// allocator after a large read stays with the process).
    pub fn load(path: &Path, cache: Option<&CompileCache>, deadlines: bool) -> Result<Self> {
        let started = Instant::now();
        let digest = file_digest(path)?;
        let expected = digest.clone();
        let read = move || -> Result<Vec<u8>> {
            let bytes = std::fs::read(path).context("failed to read the file")?;
            if self::digest(&bytes) != expected {
                bail!("the file changed while it was loaded; the next check of the file loads it again");
            }
            Ok(bytes)
        };
        Self::loaded(path, digest, started, cache, deadlines, read)
    }

    /// As [`GuestImage::load`], for bytes already read from `path`.
    pub fn from_bytes(path: &Path, bytes: &[u8], cache: Option<&CompileCache>, deadlines: bool) -> Result<Self> {
        let started = Instant::now();
        check_header(bytes)?;
        Self::loaded(path, digest(bytes), started, cache, deadlines, || Ok(bytes.to_vec()))
    }

    fn loaded(
        path: &Path,
        digest: String,
        started: Instant,
        cache: Option<&CompileCache>,
        deadlines: bool,
        read: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let mut origin = Origin::Shared;
        let (compiled, shared) = COMPILED.get_or_load(&digest, deadlines, || {
            let engine = engine_for(deadlines)?;
            let (component, loaded) = match cache {
                Some(cache) => cache.load_or_compile(engine, &digest, read)?,
                None => (cache::compile(engine, &read()?)?, Origin::Compiled),
            };
            origin = loaded;
            Compiled::link(engine, &component)
        })?;
        if shared {
            origin = Origin::Shared;
        }
        Ok(Self { path: path.to_owned(), digest, origin, load_time: started.elapsed(), compiled })
    }
}

/// The lowercase hex SHA-256 of the component file at `path`, read in pieces, after checking
/// from its first bytes that it is a component.
///
/// A file this process has hashed before and that has not changed since is not read again:
/// an interpreter's component is 15 to 20 MiB, tens of milliseconds to hash, and every further
/// output naming it (and every check the watcher makes after a change it then ignores) would
/// pay that. "Not changed" is the file's identity and stamps as the kernel keeps them (device,
/// inode, size, modification and status-change times): a write or a rename onto the path
/// changes one of them, and the status-change time cannot be set back by anyone. This is the
/// same trust the hot-swap watcher puts in a file's stamp; bytes read for a compile are hashed
/// again regardless.
pub fn file_digest(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).context("failed to read the file")?;
    let identity = file.metadata().ok().map(|meta| FileIdentity::of(&meta));
    if let Some(digest) = identity.as_ref().and_then(known_digest) {
        return Ok(digest);
    }
    let mut head = [0; 8];
    let got = read_up_to(&mut file, &mut head).context("failed to read the file")?;
    check_header(&head[..got])?;
    let mut hasher = Sha256::new();
    hasher.update(&head[..got]);
    std::io::copy(&mut file, &mut hasher).context("failed to read the file")?;
    let digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    // Stamped before reading: a change while the file was read leaves a stamp that no later
    // look at the file matches, so that digest is never reused.
    if let Some(identity) = identity {
        remember_digest(identity, &digest);
    }
    Ok(digest)
}

/// What tells this process a component file is unchanged without reading it.
#[derive(Clone, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Digests of component files hashed in this process, newest last; a handful (each output's
/// current file and the versions swapped through), bounded so churn cannot grow it.
static DIGESTS: Mutex<Vec<(FileIdentity, String)>> = Mutex::new(Vec::new());
const DIGESTS_KEPT: usize = 64;

fn known_digest(identity: &FileIdentity) -> Option<String> {
    let known = DIGESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    known.iter().find(|(id, _)| id == identity).map(|(_, digest)| digest.clone())
}

fn remember_digest(identity: FileIdentity, digest: &str) {
    let mut known = DIGESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    known.retain(|(id, _)| *id != identity);
    if known.len() >= DIGESTS_KEPT {
        known.remove(0);
    }
    known.push((identity, digest.to_owned()));
}

/// Reads until `buf` is full or the file ends; how much was read.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

impl Compiled {
    /// Links `component` against the world of the newest WIT version it exports.
    fn link(engine: &Engine, component: &Component) -> Result<Self> {
        let version = wit_version(engine, component)?;
        let world = version.world();
        let linker = linker(engine)?;
        let instance_pre = linker.instantiate_pre(component).map_err(anyhow::Error::from).with_context(|| {
            format!("the component does not fit world {world}: it imports something the host does not provide")
        })?;
        let pre = match version {
            WitVersion::V0_3_0 => OutputPluginPre::new(instance_pre).map(Pre::V0_3_0),
            WitVersion::V0_2_0 => v0_2_0::OutputPluginPre::new(instance_pre).map(Pre::V0_2_0),
            WitVersion::V0_1_0 => v0_1_0::OutputPluginPre::new(instance_pre).map(Pre::V0_1_0),
        }
        .map_err(anyhow::Error::from)
        .with_context(|| format!("the component does not implement world {world}"))?;
        Ok(Self { version, pre })
    }
}

impl GuestImage {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lowercase hex SHA-256 of the component file.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether the code came from the cache, was compiled, or was already loaded by another
    /// output in this process, and how long loading took.
    pub fn provenance(&self) -> String {
        let how = match self.origin {
            Origin::Cache => "loaded from the compile cache",
            Origin::Compiled => "compiled",
            Origin::Shared => "shared with another output",
        };
        format!("{how} in {} ms", self.load_time.as_millis())
    }

    /// The WIT version the guest was built against.
    pub fn version(&self) -> WitVersion {
        self.compiled.version
    }

    pub(crate) fn pre(&self) -> &Pre {
        &self.compiled.pre
    }

    pub(crate) fn engine(&self) -> &Engine {
        match &self.compiled.pre {
            Pre::V0_3_0(pre) => pre.engine(),
            Pre::V0_2_0(pre) => pre.engine(),
            Pre::V0_1_0(pre) => pre.engine(),
        }
    }
}

/// The newest supported WIT version whose `output` interface the component exports.
pub(crate) fn wit_version(engine: &Engine, component: &Component) -> Result<WitVersion> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    if let Some(version) = WitVersion::SUPPORTED.into_iter().find(|v| exports.contains(&v.output_export().as_str())) {
        return Ok(version);
    }
    let supported: Vec<String> = WitVersion::SUPPORTED.iter().map(|v| v.world()).collect();
    let exported = if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") };
    bail!(
        "the component does not implement an out_wasm world this host supports ({}); it exports {exported}",
        supported.join(", ")
    )
}

/// Lowercase hex SHA-256 of a component file.
pub fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        bail!("the file is not WebAssembly (no \\0asm header)");
    }
    match <[u8; 4]>::try_from(&bytes[4..8]).expect("slice of 4") {
        COMPONENT_VERSION => Ok(()),
        CORE_MODULE_VERSION => bail!(
            "the file is a core WebAssembly module, not a component; build for wasm32-wasip2 or \
             wrap it with `wasm-tools component new`"
        ),
        other => bail!("the file has an unsupported WebAssembly version/layer {other:02x?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn a_rewritten_file_is_hashed_again() {
        let path = std::env::temp_dir().join(format!("out-wasm-digest-{}.wasm", std::process::id()));
        let first = b"\0asm\x0d\0\x01\0first";
        let second = b"\0asm\x0d\0\x01\0other";
        std::fs::write(&path, first).unwrap();
        assert_eq!(file_digest(&path).unwrap(), digest(first));
        assert_eq!(file_digest(&path).unwrap(), digest(first), "unchanged: the remembered digest");
        // Same size, same path, same inode: only the stamps tell the change.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all_at(second, 0).unwrap();
        assert_eq!(file_digest(&path).unwrap(), digest(second), "a rewrite in place is read again");
        std::fs::write(path.with_extension("new"), first).unwrap();
        std::fs::rename(path.with_extension("new"), &path).unwrap();
        assert_eq!(file_digest(&path).unwrap(), digest(first), "a rename onto the path is read again");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn header_check_names_what_the_file_is() {
        let cases: [(&[u8], &str); 4] = [
            (b"", "not WebAssembly"),
            (b"#!/bin/sh\necho", "not WebAssembly"),
            (b"\0asm\x01\0\0\0", "core WebAssembly module, not a component"),
            (b"\0asm\x0e\0\x01\0", "unsupported WebAssembly version"),
        ];
        for (bytes, expected) in cases {
            let err = check_header(bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{bytes:?}: expected '{expected}' in {err:?}");
        }
        check_header(b"\0asm\x0d\0\x01\0").expect("a component header is accepted");
    }
}
