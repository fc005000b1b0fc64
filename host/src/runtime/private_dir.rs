//! A directory the host keeps what it maps or runs from (the compile cache, the artifact store
//! of pulled guests): trusted only if no user but the agent's can change what is in it, checked
//! again by every operation, and only ever touched through the descriptor of the directory so
//! that no name is resolved twice.
//!
//! The rule, for every component of the directory's path from `/` down (symlinks resolved
//! first, then each component opened with `O_NOFOLLOW`, so a component swapped for a symlink
//! after the check is refused): it belongs to root or to the agent's effective uid, and no
//! other user can write it, except a sticky directory like `/tmp` above the last component
//! (there, others cannot rename or delete what the agent made). The directory itself belongs to
//! the agent's uid and is writable by it alone. Files are created with `O_CREAT | O_EXCL |
//! O_NOFOLLOW` under random names and appear by rename; files are read with `O_NOFOLLOW` and
//! only if they are regular, the agent's, and not writable by anyone else.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// The sticky bit: in such a directory only a file's owner may rename or delete it.
const STICKY: u32 = 0o1000;

/// An open, checked directory.
pub struct PrivateDir {
    path: PathBuf,
    fd: OwnedFd,
}

/// The agent's effective uid: the only user besides root a trusted path may belong to.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

impl PrivateDir {
    /// Creates `dir` (0700, and any missing parent) if missing, then opens and checks it.
    pub fn create(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("failed to create cache directory {}", dir.display()))?;
        Self::open(dir)
    }

    /// Opens `dir` component by component from `/`, checking each (see the module's rule).
    pub fn open(dir: &Path) -> Result<Self> {
        // Symlinks in the configured path are the operator's (`/var/run -> /run`); what they lead
        // to is what is checked, and opened without following any further link.
        let real = std::fs::canonicalize(dir).with_context(|| format!("failed to inspect {}", dir.display()))?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = rustix::fs::open("/", flags, Mode::empty()).context("failed to open /")?;
        let mut at = PathBuf::from("/");
        let components: Vec<_> = real.components().filter(|c| matches!(c, Component::Normal(_))).collect();
        let last = components.len();
        check_component(&fd, &at, last == 0)?;
        for (i, component) in components.into_iter().enumerate() {
            at.push(component);
            fd = rustix::fs::openat(&fd, component.as_os_str(), flags, Mode::empty())
                .with_context(|| format!("failed to open {} (a symlink there is refused)", at.display()))?;
            check_component(&fd, &at, i + 1 == last)?;
        }
        Ok(Self { path: dir.to_owned(), fd })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file `name` for reading: not a symlink, a regular file, the agent's, writable
    /// by nobody else. `None` if it is missing.
    pub fn open_file(&self, name: &str) -> Result<Option<File>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(err) => {
                return Err(err).with_context(|| format!("failed to open {} (a symlink is refused)", self.show(name)));
            }
        };
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            bail!("{} is not a regular file", self.show(name));
        }
        if stat.st_uid != euid() {
            bail!("{} belongs to uid {}, not to the agent's uid {}", self.show(name), stat.st_uid, euid());
        }
        if stat.st_mode & 0o022 != 0 {
            bail!("{} is writable by other users", self.show(name));
        }
        Ok(Some(File::from(fd)))
    }

    /// Reads the file `name` whole if it is at most `cap` bytes (see [`PrivateDir::open_file`]).
    pub fn read(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let Some(file) = self.open_file(name)? else { return Ok(None) };
        let mut bytes = Vec::new();
        file.take(cap + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > cap {
            bail!("{} is larger than {cap} bytes", self.show(name));
        }
        Ok(Some(bytes))
    }

    /// Creates the new file `name` (0600): `O_EXCL | O_NOFOLLOW`, so neither an existing file
    /// nor a symlink planted there is ever written through.
    pub fn create_new(&self, name: &str) -> Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))
            .with_context(|| format!("failed to create {}", self.show(name)))?;
        Ok(File::from(fd))
    }

    /// Writes `bytes` as `name` through a temporary file and a rename: readers see the old file
    /// or the new one, whole.
    pub fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_atomically_with(name, |file| Ok(file.write_all(bytes)?))
    }

    /// As [`PrivateDir::write_atomically`], with the content written by `write` (which may
    /// stream it): the file appears as `name` only if `write` succeeds. Concurrent writers each
    /// rename a complete file; the last one wins, all are valid.
    pub fn write_atomically_with(&self, name: &str, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
        let tmp = self.temporary_with(|file| {
            write(file)?;
            file.sync_all()?;
            Ok(())
        })?;
        let renamed = rustix::fs::renameat(&self.fd, &tmp, &self.fd, name)
            .with_context(|| format!("failed to rename into {}", self.show(name)));
        if renamed.is_err() {
            self.remove(&tmp);
        }
        renamed
    }

    /// Creates `name` with `bytes` unless it exists (then leaves it as it is): the content
    /// appears whole, by a link that fails if the name is taken. Whether this call made it.
    pub fn create_once(&self, name: &str, bytes: &[u8]) -> Result<bool> {
        let tmp = self.temporary_with(|file| {
            file.write_all(bytes)?;
            file.sync_all()?;
            Ok(())
        })?;
        let linked = rustix::fs::linkat(&self.fd, &tmp, &self.fd, name, AtFlags::empty());
        self.remove(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::EXIST) => Ok(false),
            Err(err) => Err(err).with_context(|| format!("failed to create {}", self.show(name))),
        }
    }

    /// A new file under a random name, written by `write`; its name, or nothing left behind.
    fn temporary_with(&self, write: impl FnOnce(&mut File) -> Result<()>) -> Result<String> {
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).map_err(|err| anyhow::anyhow!("failed to get random bytes: {err}"))?;
        let tmp: String =
            std::iter::once(".tmp-".to_owned()).chain(random.iter().map(|b| format!("{b:02x}"))).collect();
        let mut file = self.create_new(&tmp)?;
        if let Err(err) = write(&mut file) {
            self.remove(&tmp);
            return Err(err);
        }
        Ok(tmp)
    }

    /// Deletes `name` (best effort).
    pub fn remove(&self, name: &str) {
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
    }

    fn show(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }
}

/// One component of a trusted path (`last`: the directory itself).
fn check_component(fd: &impl AsFd, at: &Path, last: bool) -> Result<()> {
    let stat = rustix::fs::fstat(fd).with_context(|| format!("failed to inspect {}", at.display()))?;
    let euid = euid();
    if last {
        if stat.st_uid != euid {
            bail!("cache directory {} belongs to uid {}, not to the agent's uid {euid}", at.display(), stat.st_uid);
        }
        if stat.st_mode & 0o022 != 0 {
            bail!("cache directory {} is writable by other users", at.display());
        }
        return Ok(());
    }
    if stat.st_uid != 0 && stat.st_uid != euid {
        bail!(
            "{} (above cache directory) belongs to uid {}, neither root nor the agent's uid {euid}: its owner could \
             replace what is below it",
            at.display(),
            stat.st_uid
        );
    }
    if stat.st_mode & 0o022 != 0 && stat.st_mode & STICKY == 0 {
        bail!(
            "{} (above cache directory) is writable by other users and not sticky: they could replace what is below it",
            at.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("out-wasm-private-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn a_path_component_others_can_write_is_refused_unless_sticky() {
        let base = scratch("open");
        let cache = base.join("open/cache");
        PrivateDir::create(&cache).unwrap();
        std::fs::set_permissions(base.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = format!("{:#}", PrivateDir::open(&cache).err().expect("an open parent is refused"));
        assert!(err.contains("writable by other users and not sticky"), "{err}");
        std::fs::set_permissions(base.join("open"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        PrivateDir::open(&cache).expect("a sticky parent (like /tmp) is trusted");
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o770)).unwrap();
        let err = format!("{:#}", PrivateDir::open(&cache).err().expect("a group-writable directory is refused"));
        assert!(err.contains("writable by other users"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_path_component_of_another_user_is_refused() {
        if euid() != 0 {
            eprintln!("SKIPPED: giving a directory to another uid needs root");
            return;
        }
        let base = scratch("owner");
        let cache = base.join("theirs/cache");
        PrivateDir::create(&cache).unwrap();
        rustix::fs::chown(base.join("theirs"), Some(rustix::fs::Uid::from_raw(65534)), None).unwrap();
        let err = format!("{:#}", PrivateDir::open(&cache).err().expect("a parent of another uid is refused"));
        assert!(err.contains("belongs to uid 65534, neither root nor the agent's"), "{err}");
        rustix::fs::chown(base.join("theirs"), Some(rustix::fs::Uid::from_raw(0)), None).unwrap();
        rustix::fs::chown(&cache, Some(rustix::fs::Uid::from_raw(65534)), None).unwrap();
        let err = format!("{:#}", PrivateDir::open(&cache).err().expect("a directory of another uid is refused"));
        assert!(err.contains("belongs to uid 65534, not to the agent's"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn symlinks_are_never_written_through_nor_read() {
        let base = scratch("links");
        let dir = PrivateDir::create(&base.join("cache")).unwrap();
        let outside = base.join("outside");
        std::fs::write(&outside, b"theirs").unwrap();
        std::os::unix::fs::symlink(&outside, base.join("cache/planted")).unwrap();
        assert!(dir.create_new("planted").is_err(), "a symlink planted at a new file's name is refused");
        assert!(dir.create_once("planted", b"ours").is_ok_and(|made| !made), "nor replaced");
        let err = format!("{:#}", dir.read("planted", 64).expect_err("a symlink is not read"));
        assert!(err.contains("a symlink is refused"), "{err}");
        assert_eq!(std::fs::read(&outside).unwrap(), b"theirs");
        dir.write_atomically("entry", b"ours").unwrap();
        assert_eq!(dir.read("entry", 64).unwrap().unwrap(), b"ours");
        std::fs::set_permissions(base.join("cache/entry"), std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(dir.read("entry", 64).is_err(), "a file others can write is refused");
        let names: Vec<_> = std::fs::read_dir(base.join("cache")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!names.iter().any(|n| n.to_string_lossy().starts_with(".tmp-")), "no temporary left: {names:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
