//! The durable outbound queue: every event the agent produces is written here before it is
//! sent, and leaves only when the backend has answered for it (stored or rejected).
//!
//! One SQLite file, `queue.db` in cache-dir (0700), one table
//! `events(seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB)`:
//! - `AUTOINCREMENT`, not a bare rowid, so a sequence number is never reused even after the
//!   queue empties: the transport promises the backend increasing ids within a session, and
//!   the session's cursor (`seq > last sent`) relies on it.
//! - WAL with `synchronous=FULL`: an append is on disk (WAL fsynced) before the local API
//!   answers 202 or a check result counts as produced, so even a power cut loses nothing
//!   that was accepted. NORMAL would survive a `kill -9` too, but could lose the last
//!   transactions on power loss; an agent writes a few events a second, so the fsync is
//!   cheap.
//! - `locking_mode=EXCLUSIVE`: a second agent on the same cache-dir is refused instead of
//!   replaying the same events twice.
//!
//! The calls block (fsync); async callers run them on the blocking pool.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Why the queue could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// `cache-max-events` events are waiting already: the new one is refused.
    #[error("the event queue is full ({max} events waiting for the backend in {}); new events are refused until the backend acknowledges some (raise cache-max-events to hold more)", path.display())]
    Full { max: u64, path: PathBuf },
    /// The database failed.
    #[error("event queue {}: {reason}", path.display())]
    Storage { path: PathBuf, reason: String },
}

/// The on-disk queue of events waiting for the backend.
#[derive(Debug)]
pub struct EventQueue {
    path: PathBuf,
    conn: Mutex<Connection>,
    max_events: u64,
    /// Rows in the table, kept in memory so the bound and /metrics cost nothing.
    len: AtomicU64,
}

impl EventQueue {
    /// Opens (or creates) `dir/queue.db`, creating `dir` with mode 0700.
    pub fn open(dir: &Path, max_events: u64) -> Result<EventQueue, QueueError> {
        let path = dir.join("queue.db");
        let storage = |reason: String| QueueError::Storage {
            path: path.clone(),
            reason,
        };
        create_private_dir(dir).map_err(|e| {
            storage(format!(
                "cannot create the cache directory {}: {e}",
                dir.display()
            ))
        })?;
        let conn = Connection::open(&path).map_err(|e| storage(e.to_string()))?;
        // Check output can be sensitive; the WAL file SQLite creates copies this mode.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| storage(e.to_string()))?;
        }
        // Nobody else should ever hold this file: fail at once rather than wait.
        conn.busy_timeout(std::time::Duration::ZERO)
            .map_err(|e| storage(e.to_string()))?;
        let locked = |e: rusqlite::Error| {
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy)
            ) {
                storage(format!(
                    "another ward agent is using the cache directory {}; give each agent its own cache-dir",
                    dir.display()
                ))
            } else {
                storage(e.to_string())
            }
        };
        conn.execute_batch(
            "PRAGMA locking_mode=EXCLUSIVE;
             PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 body BLOB NOT NULL
             );",
        )
        .map_err(locked)?;
        let len: u64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(locked)?;
        Ok(EventQueue {
            path,
            conn: Mutex::new(conn),
            max_events,
            len: AtomicU64::new(len),
        })
    }

    fn storage(&self, e: impl std::fmt::Display) -> QueueError {
        QueueError::Storage {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every change is one
        // transaction), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events waiting.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound (`cache-max-events`).
    pub fn max_events(&self) -> u64 {
        self.max_events
    }

    /// Appends an event durably and returns its sequence number; [`QueueError::Full`] when
    /// `max_events` are waiting.
    pub fn append(&self, body: &[u8]) -> Result<u64, QueueError> {
        let conn = self.conn();
        if self.len() >= self.max_events {
            return Err(QueueError::Full {
                max: self.max_events,
                path: self.path.clone(),
            });
        }
        conn.execute("INSERT INTO events (body) VALUES (?1)", params![body])
            .map_err(|e| self.storage(e))?;
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(conn.last_insert_rowid() as u64)
    }

    /// The events after `seq`, in order: at most `max_events` of them, and no more than
    /// `max_bytes` of bodies (but always at least one, if any).
    pub fn after(
        &self,
        seq: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, QueueError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT seq, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(|e| self.storage(e))?;
        let rows = stmt
            .query_map(params![seq as i64, max_events as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.storage(e))?;
        let mut out = Vec::new();
        let mut bytes = 0;
        for row in rows {
            let (s, body) = row.map_err(|e| self.storage(e))?;
            bytes += body.len();
            out.push((s, body));
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Removes answered events (one transaction); unknown sequence numbers are ignored.
    pub fn remove(&self, seqs: &[u64]) -> Result<(), QueueError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.storage(e))?;
        let mut removed = 0u64;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM events WHERE seq = ?1")
                .map_err(|e| self.storage(e))?;
            for s in seqs {
                removed += stmt
                    .execute(params![*s as i64])
                    .map_err(|e| self.storage(e))? as u64;
            }
        }
        tx.commit().map_err(|e| self.storage(e))?;
        self.len.fetch_sub(removed, Ordering::Relaxed);
        Ok(())
    }

    /// Moves an event to the tail with a new sequence number (for a backend `retry`: it is
    /// sent again after what is already in flight, and ids stay increasing). Returns the
    /// new number, or `None` if the event is not queued.
    pub fn requeue(&self, seq: u64) -> Result<Option<u64>, QueueError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.storage(e))?;
        let body: Option<Vec<u8>> = tx
            .query_row(
                "SELECT body FROM events WHERE seq = ?1",
                params![seq as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.storage(e))?;
        let Some(body) = body else {
            return Ok(None);
        };
        tx.execute("DELETE FROM events WHERE seq = ?1", params![seq as i64])
            .map_err(|e| self.storage(e))?;
        tx.execute("INSERT INTO events (body) VALUES (?1)", params![body])
            .map_err(|e| self.storage(e))?;
        let new = tx.last_insert_rowid() as u64;
        tx.commit().map_err(|e| self.storage(e))?;
        Ok(Some(new))
    }
}

/// Creates `dir` (and its parents) with mode 0700; an existing directory that others can
/// read is used, with a warning.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            cache_dir = %dir.display(),
            mode = format!("{mode:04o}"),
            "the cache directory is readable by others and queued events may hold check output; run chmod 700 {}",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn appended_events_come_back_in_order_and_leave_when_answered() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("cache/agent");
        let q = EventQueue::open(&dir, 10).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(q.path()), 0o600);
        let a = q.append(b"a").unwrap();
        let b = q.append(b"b").unwrap();
        let c = q.append(b"c").unwrap();
        assert!(a < b && b < c);
        assert_eq!(q.len(), 3);
        let all = q.after(0, 10, usize::MAX).unwrap();
        assert_eq!(
            all.iter().map(|(_, b)| b.as_slice()).collect::<Vec<_>>(),
            [b"a", b"b", b"c"]
        );
        assert_eq!(q.after(a, 1, usize::MAX).unwrap(), [(b, b"b".to_vec())]);
        assert_eq!(
            q.after(0, 10, 1).unwrap().len(),
            1,
            "the byte budget stops the batch"
        );
        q.remove(&[a, c, 999]).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q.after(0, 10, usize::MAX).unwrap(), [(b, b"b".to_vec())]);
    }

    #[test]
    fn sequence_numbers_are_never_reused_and_requeue_moves_to_the_tail() {
        let d = tempfile::tempdir().unwrap();
        let q = EventQueue::open(d.path(), 10).unwrap();
        let a = q.append(b"a").unwrap();
        q.remove(&[a]).unwrap();
        let b = q.append(b"b").unwrap();
        assert!(b > a, "an emptied queue does not restart its numbering");
        let c = q.append(b"c").unwrap();
        let b2 = q.requeue(b).unwrap().unwrap();
        assert!(b2 > c);
        let order: Vec<_> = q
            .after(0, 10, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        assert_eq!(order, [b"c".to_vec(), b"b".to_vec()]);
        assert_eq!(q.requeue(12345).unwrap(), None);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn order_and_contents_survive_a_reopen() {
        let d = tempfile::tempdir().unwrap();
        {
            let q = EventQueue::open(d.path(), 10).unwrap();
            for i in 0..5 {
                q.append(format!("{i}").as_bytes()).unwrap();
            }
            let first = q.after(0, 1, usize::MAX).unwrap()[0].0;
            q.remove(&[first]).unwrap();
        }
        let q = EventQueue::open(d.path(), 10).unwrap();
        assert_eq!(q.len(), 4);
        let bodies: Vec<_> = q
            .after(0, 10, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, b)| String::from_utf8(b).unwrap())
            .collect();
        assert_eq!(bodies, ["1", "2", "3", "4"]);
        let next = q.append(b"5").unwrap();
        assert!(next > 5);
    }

    #[test]
    fn a_full_queue_refuses_new_events_and_takes_them_again_once_drained() {
        let d = tempfile::tempdir().unwrap();
        let q = EventQueue::open(d.path(), 2).unwrap();
        let a = q.append(b"a").unwrap();
        q.append(b"b").unwrap();
        let e = q.append(b"c").unwrap_err();
        assert!(matches!(e, QueueError::Full { max: 2, .. }));
        assert!(e.to_string().contains("cache-max-events"), "{e}");
        assert_eq!(q.len(), 2);
        q.remove(&[a]).unwrap();
        q.append(b"c").unwrap();
        // A requeue never needs room.
        let b = q.after(0, 1, usize::MAX).unwrap()[0].0;
        assert!(q.requeue(b).unwrap().is_some());
    }

    #[test]
    fn a_second_agent_on_the_same_cache_dir_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let _first = EventQueue::open(d.path(), 10).unwrap();
        let e = EventQueue::open(d.path(), 10).unwrap_err().to_string();
        assert!(
            e.contains("another ward agent is using the cache directory"),
            "{e}"
        );
    }
}
