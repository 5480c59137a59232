//! The one way Ward writes files: atomically (temp file in the same directory, fsync,
//! rename, fsync of the directory), with the mode set before any byte is written, and
//! never over an existing file unless asked. The one way Ward reads a file: bounded, so no
//! path can make it read without end. And the one way Ward reads a private key file:
//! refusing it when group or others can reach it, as libpq and PostgreSQL do.

use crate::error::{Error, Result};
pub use crate::lock::DirLock;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode for private keys.
pub const KEY_MODE: u32 = 0o600;
/// Mode for certificates, CSRs, CRLs and configuration that is not secret.
pub const PUBLIC_MODE: u32 = 0o644;

/// One file to be written: where, what, with which mode.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
    /// uid and gid to give the file (before it becomes visible); `None` keeps ours.
    pub owner: Option<(u32, u32)>,
}

impl PlannedFile {
    pub fn key(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        PlannedFile {
            path: path.into(),
            contents: contents.into(),
            mode: KEY_MODE,
            owner: None,
        }
    }

    pub fn public(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        PlannedFile {
            path: path.into(),
            contents: contents.into(),
            mode: PUBLIC_MODE,
            owner: None,
        }
    }

    /// The same file with an explicit mode.
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// The same file, owned by `uid:gid` (PostgreSQL's files belong to its data directory's
    /// owner).
    pub fn owned_by(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }
}

/// Whether an existing destination may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Refuse,
    Allow,
}

/// Writes a set of files all-or-nothing as far as a crash allows: every destination is
/// checked first (so a refusal writes nothing), every file is staged and made durable, and
/// only then put in place.
///
/// When all files go into one directory that does not exist yet (`init-ca`, `bootstrap`
/// into a new folder), the whole directory is staged beside its destination and renamed
/// into place at once: the directory appears complete or not at all, and 10,000
/// certificates cost one `syncfs` and one rename rather than 30,000 of each. Otherwise each
/// file is staged as a temp file next to its destination and renamed over it.
///
/// Concurrent writers take turns: the check that no destination exists and the writing are
/// done under an exclusive lock on each directory written into ([`DirLock`]; on the parent
/// when the directory is new). So of several processes writing one name, exactly one wins
/// and the others get [`Error::Exists`]; with [`Overwrite::Allow`] they write one after the
/// other, and the files of one call (a certificate and its key) always end up together.
pub fn write_all(files: &[PlannedFile], overwrite: Overwrite) -> Result<()> {
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .map(|f| parent_of(&f.path).to_path_buf())
        .collect();
    dirs.sort();
    dirs.dedup();
    if let [dir] = dirs.as_slice() {
        if !dir.exists() {
            let parent = parent_of(dir);
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create directory", e))?;
            let _parent_lock = DirLock::exclusive(parent)?;
            // Under the lock: another writer may have created it while we waited.
            if !dir.exists() {
                return write_new_directory(dir, files);
            }
        }
    }
    for d in &dirs {
        fs::create_dir_all(d).map_err(|e| Error::io(d, "create directory", e))?;
    }
    // Sorted, so that an ancestor is always locked before its descendants.
    let _locks = dirs
        .iter()
        .map(|d| DirLock::exclusive(d))
        .collect::<Result<Vec<_>>>()?;
    if overwrite == Overwrite::Refuse {
        for f in files {
            if f.path.exists() {
                return Err(Error::Exists {
                    path: f.path.clone(),
                });
            }
        }
    }
    let batch = files.len() > 16;
    let pid = std::process::id();
    let mut staged: Vec<(PathBuf, &PlannedFile)> = Vec::with_capacity(files.len());
    let result = (|| {
        for (i, f) in files.iter().enumerate() {
            let tmp = temp_path(&f.path, pid, i);
            stage(&tmp, f, !batch)?;
            staged.push((tmp, f));
        }
        if batch {
            sync_file_system(&dirs[0])?;
        }
        for (tmp, f) in &staged {
            fs::rename(tmp, &f.path).map_err(|e| Error::io(&f.path, "rename into place", e))?;
        }
        for d in &dirs {
            sync_dir(d);
        }
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}

/// Where [`write_all`] stages a new directory `dir` while this process writes it:
/// `.NAME.staging-PID` beside it. A signal handler that must not leave it behind removes
/// this path (see [`remove_staging`]).
pub fn staging_path(dir: &Path) -> PathBuf {
    staging_path_for(dir, std::process::id())
}

fn staging_path_for(dir: &Path, pid: u32) -> PathBuf {
    parent_of(dir).join(format!(".{}.staging-{pid}", dir_name(dir)))
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dir".into())
}

/// Set by [`remove_staging`]: the process is about to exit, and its writers stop at their
/// next file, so that nothing is added to a staging directory while it is removed.
static STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For a process about to exit on a signal (the caller exits next): stops this process's
/// writers at their next file, for good, then removes its staging directory for `dir`, if there is one (retrying while a
/// file being written when the writers stopped still lands in it). Returns whether one was
/// removed.
pub fn remove_staging(dir: &Path) -> bool {
    STOPPED.store(true, std::sync::atomic::Ordering::SeqCst);
    let staging = staging_path(dir);
    for _ in 0..500 {
        match fs::remove_dir_all(&staging) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    false
}

/// Removes the staging directories of `dir` left by Ward processes that no longer exist
/// (a crash or `kill -9` mid-write), and returns their paths so that the caller can say so.
/// Those of running processes (another writer at work) are left alone.
pub fn remove_stale_staging(dir: &Path) -> Result<Vec<PathBuf>> {
    let parent = parent_of(dir);
    let prefix = format!(".{}.staging-", dir_name(dir));
    let entries = match fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(parent, "read directory", e)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = match rustix::process::Pid::from_raw(pid) {
            // ESRCH: no such process. EPERM: it exists, owned by someone else.
            Some(p) => rustix::process::test_kill_process(p) != Err(rustix::io::Errno::SRCH),
            None => false,
        };
        if alive {
            continue;
        }
        let path = entry.path();
        fs::remove_dir_all(&path).map_err(|e| Error::io(&path, "remove", e))?;
        removed.push(path);
    }
    removed.sort();
    Ok(removed)
}

/// Stages a whole new directory and renames it into place.
fn write_new_directory(dir: &Path, files: &[PlannedFile]) -> Result<()> {
    let parent = parent_of(dir);
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create directory", e))?;
    let staging = staging_path(dir);
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging).map_err(|e| Error::io(&staging, "create directory", e))?;
    let result = (|| {
        let fsync_each = files.len() <= 16;
        for f in files {
            let target = staging.join(f.path.file_name().unwrap_or_default());
            stage(&target, f, fsync_each)?;
        }
        if fsync_each {
            sync_dir(&staging);
        } else {
            sync_file_system(&staging)?;
        }
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(&staging, "set mode of", e))?;
        fs::rename(&staging, dir).map_err(|e| Error::io(dir, "rename into place", e))?;
        sync_dir(parent);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn sync_file_system(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
    rustix::fs::syncfs(&d).map_err(|e| Error::io(dir, "sync file system", e.into()))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        // A directory fsync makes renames durable; a failure here is not actionable and the
        // data itself is already on disk.
        let _ = d.sync_all();
    }
}

/// Writes one file atomically.
pub fn write_one(file: &PlannedFile, overwrite: Overwrite) -> Result<()> {
    write_all(std::slice::from_ref(file), overwrite)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_path(path: &Path, pid: u32, i: usize) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(path).join(format!(".{name}.{pid}.{i}.tmp"))
}

fn stage(tmp: &Path, f: &PlannedFile, fsync: bool) -> Result<()> {
    // The process is exiting on a signal (`remove_staging`): write nothing more, and do not
    // return either (an error here would end the process with its own exit status first).
    while STOPPED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(f.mode)
        .open(tmp)
        .map_err(|e| Error::io(tmp, "create", e))?;
    // The umask may have narrowed the mode (or, for a key, never widened it); set it
    // exactly unless the file already has it.
    if f.mode & umask() != 0 {
        out.set_permissions(fs::Permissions::from_mode(f.mode))
            .map_err(|e| Error::io(tmp, "set mode of", e))?;
    }
    if let Some((uid, gid)) = f.owner {
        std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(|e| {
            let _ = fs::remove_file(tmp);
            Error::io(tmp, "change the owner of", e)
        })?;
    }
    let written = out
        .write_all(&f.contents)
        .and_then(|_| if fsync { out.sync_all() } else { Ok(()) });
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(Error::io(&f.path, "write", e));
    }
    Ok(())
}

/// The process umask, read once (reading it means setting it, so it is put straight back
/// before any file is created).
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        rustix::process::umask(old);
        old.bits() as u32
    })
}

/// How much Ward reads of one kind of file at most, and what to call that kind in the
/// refusal. Every file Ward reads has a cap, so a path that names `/dev/zero`, a log or a
/// disk image fails at once with a line that says so, instead of filling memory.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub bytes: u64,
    pub what: &'static str,
}

/// Certificates, private keys, CSRs and CA bundles (the whole of a system trust store is
/// about 200 KiB).
pub const PEM: Limit = Limit {
    bytes: 1 << 20,
    what: "PEM file (certificate, key, CSR or CA bundle)",
};
/// Certificate revocation lists, which grow with every revocation.
pub const CRL: Limit = Limit {
    bytes: 64 << 20,
    what: "certificate revocation list",
};
/// Configuration: YAML and JSON config files, env files, signing configs, bootstrap plans.
pub const CONFIG: Limit = Limit {
    bytes: 16 << 20,
    what: "configuration file",
};

/// Reads at most `limit.bytes` of a file, naming it in the error; a longer file (or a
/// device that never ends) is refused with [`Error::TooLarge`] after reading one byte past
/// the cap.
pub fn read_bounded(path: &Path, limit: Limit) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, "read", e))?;
    read_open(file, path, limit)
}

/// Reads an open `file` (named `path` in errors) up to `limit`, one byte past it to tell.
fn read_open(file: File, path: &Path, limit: Limit) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    file.take(limit.bytes + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io(path, "read", e))?;
    if out.len() as u64 > limit.bytes {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit: limit.bytes,
            what: limit.what,
        });
    }
    Ok(out)
}

/// Reads a regular file under a cap, for paths found rather than given (a directory walk):
/// a FIFO, socket or device is refused with [`Error::NotRegular`] without blocking (the file
/// is opened non-blocking and checked on the open descriptor, so a swap between the check
/// and the read cannot slip one in). Returns the file's metadata (device and inode say
/// whether it was seen already) with its contents.
pub fn read_regular(path: &Path, limit: Limit) -> Result<(fs::Metadata, Vec<u8>)> {
    use std::os::unix::fs::FileTypeExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|e| Error::io(path, "read", e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, "read", e))?;
    let t = meta.file_type();
    if !t.is_file() {
        let kind = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else {
            "a special file"
        };
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    let out = read_open(file, path, limit)?;
    Ok((meta, out))
}

/// Reads a PEM file (certificate, key, CSR, CA bundle) under the [`PEM`] cap.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    read_bounded(path, PEM)
}

/// Ward's one rule for private key files, libpq's and PostgreSQL's: no access for group or
/// others (0600 or stricter), except that a key owned by root may be group-readable (0640),
/// so that a service's group can read a key root manages. So a key Ward accepts is one
/// PostgreSQL and libpq accept too.
pub fn check_private_key_mode(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o7777;
    let forbidden = if meta.uid() == 0 { 0o037 } else { 0o077 };
    if mode & forbidden != 0 {
        return Err(Error::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Reads a private key file after checking it under [`check_private_key_mode`].
pub fn read_private_key_file(path: &Path) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
    check_private_key_mode(path, &meta)?;
    read(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_written_0600_and_public_files_0644() {
        let d = tempfile::tempdir().unwrap();
        write_all(
            &[
                PlannedFile::key(d.path().join("k.pem"), "k"),
                PlannedFile::public(d.path().join("c.pem"), "c"),
            ],
            Overwrite::Refuse,
        )
        .unwrap();
        let m = |n: &str| fs::metadata(d.path().join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(m("k.pem"), 0o600);
        assert_eq!(m("c.pem"), 0o644);
    }

    #[test]
    fn an_existing_file_stops_the_whole_batch_before_anything_is_written() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("b"), "old").unwrap();
        let err = write_all(
            &[
                PlannedFile::public(d.path().join("a"), "new"),
                PlannedFile::public(d.path().join("b"), "new"),
            ],
            Overwrite::Refuse,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(!d.path().join("a").exists());
        assert_eq!(fs::read_to_string(d.path().join("b")).unwrap(), "old");
    }

    #[test]
    fn large_batches_leave_no_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..40)
            .map(|i| PlannedFile::public(d.path().join(format!("f{i}")), "x"))
            .collect();
        write_all(&files, Overwrite::Refuse).unwrap();
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 40);
    }

    #[test]
    fn a_file_past_its_cap_is_refused_at_once() {
        let e = read_bounded(Path::new("/dev/zero"), PEM)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/dev/zero: larger than 1048576 bytes"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("small");
        fs::write(&p, "x".repeat(10)).unwrap();
        let small = Limit {
            bytes: 10,
            what: "test file",
        };
        assert_eq!(read_bounded(&p, small).unwrap().len(), 10);
        fs::write(&p, "x".repeat(11)).unwrap();
        assert!(matches!(
            read_bounded(&p, small),
            Err(Error::TooLarge { limit: 10, .. })
        ));
    }

    #[test]
    fn a_key_others_can_read_is_refused_with_the_chmod() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.pem");
        fs::write(&p, "k").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private_key_file(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(e.contains("0644"), "{e}");
    }

    #[test]
    fn a_group_readable_key_is_accepted_only_when_root_owns_it() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.pem");
        fs::write(&p, "k").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let root_owned = fs::metadata(&p).unwrap().uid() == 0;
        assert_eq!(read_private_key_file(&p).is_ok(), root_owned);
        // Group write is never allowed, whoever owns the key.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o660)).unwrap();
        assert!(read_private_key_file(&p).is_err());
    }
}
