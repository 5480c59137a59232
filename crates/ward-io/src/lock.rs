//! Exclusive locks on directories, so that Ward processes writing into one directory (a CA
//! directory with its revocation state, an output directory) take turns: every
//! read-modify-write and every "refuse if it exists, else write" happens whole under the
//! lock.
//!
//! The lock is `flock(2)` on the directory itself (no lock file is left behind, and the
//! kernel drops it when the process dies, so a crash never leaves a stale lock). It is
//! advisory: it orders Ward processes, not other programs.
//!
//! Within one process the lock is reentrant: a function that holds a directory's lock can
//! call the atomic writer, which locks the directories it writes into, without deadlocking
//! on itself. So it excludes other processes, not other threads of the same process.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Directories this process holds locked: (device, inode) → the locked descriptor and how
/// many guards share it.
type Held = HashMap<(u64, u64), (File, usize)>;
static HELD: Mutex<Option<Held>> = Mutex::new(None);

/// An exclusive lock on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    id: (u64, u64),
    path: PathBuf,
}

impl DirLock {
    /// Waits for, then takes, the exclusive lock on `dir` (which must exist).
    ///
    /// Fails only when the directory cannot be opened or locked (missing, not a directory,
    /// no permission), naming it.
    pub fn exclusive(dir: &Path) -> Result<DirLock> {
        let file = File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(dir, "open directory", e))?;
        if !meta.is_dir() {
            return Err(Error::io(
                dir,
                "lock",
                std::io::Error::other("not a directory"),
            ));
        }
        let id = (meta.dev(), meta.ino());
        {
            let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, count)) = held.get_or_insert_with(HashMap::new).get_mut(&id) {
                *count += 1;
                return Ok(DirLock {
                    id,
                    path: dir.to_path_buf(),
                });
            }
        }
        // Blocking here, outside the registry's mutex: another process holds the lock.
        // (Two threads of this process racing to lock one directory both end up here, and
        // flock orders them, as it does processes.)
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(dir, "lock", e.into()))?;
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        let held = held.get_or_insert_with(HashMap::new);
        match held.get_mut(&id) {
            // Another thread of ours took it meanwhile and we waited on it: count ours in;
            // our descriptor's lock is released when `file` closes here.
            Some((_, count)) => *count += 1,
            None => {
                held.insert(id, (file, 1));
            }
        }
        Ok(DirLock {
            id,
            path: dir.to_path_buf(),
        })
    }

    /// The directory locked.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(map) = held.as_mut() {
            if let Some((_, count)) = map.get_mut(&self.id) {
                *count -= 1;
                if *count == 0 {
                    // Closing the descriptor releases the flock.
                    map.remove(&self.id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_reentrant_within_a_process_and_exclusive_across_descriptors() {
        let d = tempfile::tempdir().unwrap();
        let outer = DirLock::exclusive(d.path()).unwrap();
        let inner = DirLock::exclusive(d.path()).unwrap();
        // Another open file description (as another process would have) cannot take it.
        let other = File::open(d.path()).unwrap();
        assert!(
            rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err()
        );
        drop(inner);
        assert!(
            rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err()
        );
        drop(outer);
        rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    }

    #[test]
    fn a_missing_directory_is_named() {
        let e = DirLock::exclusive(Path::new("/nonexistent/ward-dir"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/ward-dir: cannot open directory"),
            "{e}"
        );
    }
}
