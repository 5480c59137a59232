//! The embedded store: one SQLite database under `state-dir`, in WAL mode with
//! `synchronous = FULL`, so that anything the backend acknowledged survives `kill -9`.
//! Every change is one transaction. Two write connections, each behind its own mutex: the
//! event writer's (events, agents' entities, the replay journal: eventd's group commit) and
//! the configuration writer's (resources, users, tokens: API writes). SQLite still lets one
//! write transaction run at a time, but an API write waits in SQLite's busy handler, on the
//! caller's blocking thread, only for the commit in progress, and never holds the event
//! writer's mutex across that writer's fsync (nor the reverse).
//!
//! The schema is versioned (`PRAGMA user_version`), with ordered migrations run once each
//! in one transaction; a database newer than this binary is refused.
//!
//! `postgres` is the PostgreSQL event store's SQL; while it is unreachable (and its
//! PostgresConfig is not strict) events are stored here and also kept in a replay journal
//! (`pg_replay`), in the same transaction, until they are in PostgreSQL.

#![forbid(unsafe_code)]

pub mod apikeys;
pub mod postgres;
mod seed;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use ward_types::{Document, Kind, Resource};

/// What can go wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} already exists")]
    Exists { kind: &'static str, name: String },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("the store at {path}: {reason}")]
    Database { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// The database was written by a newer Ward.
    #[error("the store at {path} has schema version {found}, newer than this Ward's ({known}); run the Ward that wrote it, or a newer one")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    /// The change would leave no enabled member of `group` (the last cluster admin).
    #[error("user {name:?} is the last enabled member of {group}; add another member first")]
    LastMember { group: String, name: String },
    /// The system's random-number generator failed: no token or ID is made from zeroes.
    #[error("the system's random-number generator failed; nothing was created")]
    NoRandomness,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// argon2id PHC string; `None`: cannot log in until a password is set.
    pub password_hash: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
}

/// A token as stored (by the SHA-256 of its value; the value itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub user: String,
    pub refresh: bool,
    pub expires_at: i64,
    /// The session the token belongs to: every token made by one login, and by the refreshes
    /// that follow it, shares one family. Logout and refresh-token reuse revoke a family.
    pub family: String,
}

/// What redeeming a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The token was valid and unused; it is now used.
    Fresh(StoredToken),
    /// The token had been used already: its whole family has just been revoked (a stolen
    /// refresh token is then worthless to both the thief and the owner).
    Reused,
    /// No such token (never issued, expired and purged, or revoked).
    Unknown,
}

/// The embedded store.
/// How a keepalive writes an agent's entity ([`Store::write_entities`]).
#[derive(Debug, Clone)]
pub enum Registration {
    /// Configuration and state are the agent's (it manages its entity): created or
    /// replaced whole.
    Replace(Resource),
    /// Only the state is the agent's: created whole when missing; otherwise only
    /// `spec.system`, `spec.sensu_agent_version`, `spec.last_seen` and `spec.user` (the
    /// user it authenticated as) change (and `entity_class` is `agent` again), and the
    /// stored configuration stays.
    State(Resource),
}

impl Registration {
    pub fn resource(&self) -> &Resource {
        match self {
            Registration::Replace(r) | Registration::State(r) => r,
        }
    }
}

pub struct Store {
    path: PathBuf,
    /// The event writer: events, agents' entities, the replay journal.
    conn: Mutex<Connection>,
    /// The configuration writer: resources, users, tokens (API writes), so that they never
    /// wait for the event writer's mutex while it fsyncs a batch (see the module doc).
    config: Mutex<Connection>,
    /// Read-only connections: in WAL mode readers see committed data and neither wait for
    /// the writer's fsync nor hold it up.
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
}

/// Read connections per store.
const READERS: usize = 4;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

/// The schema, one migration per version (`PRAGMA user_version`); each runs once, in order,
/// in one transaction. Version 1 is the schema of databases made before versioning (its
/// `IF NOT EXISTS` makes it a no-op on them).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
  kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL,
  updated_at INTEGER NOT NULL, PRIMARY KEY (kind, namespace, name));
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, password_hash TEXT, groups TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (
  namespace TEXT NOT NULL, entity TEXT NOT NULL, check_name TEXT NOT NULL, event TEXT NOT NULL,
  status INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (namespace, entity, check_name));
CREATE TABLE IF NOT EXISTS pg_replay (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, user TEXT NOT NULL, refresh INTEGER NOT NULL, expires_at INTEGER NOT NULL);
",
    // Token families (one per login) and single-use refresh tokens that are kept, marked
    // used, so that a reuse is recognised. Tokens from before are each their own family.
    "
ALTER TABLE tokens ADD COLUMN family TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
UPDATE tokens SET family = hash;
CREATE INDEX tokens_family ON tokens (family);
",
    // API keys: a public name (a UUID) and the SHA-256 of the secret key, never the key.
    "
CREATE TABLE api_keys (
  name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, username TEXT NOT NULL,
  created_at INTEGER NOT NULL, created_by TEXT NOT NULL DEFAULT '');
",
];

/// The schema version this Ward writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to `SCHEMA_VERSION` in one transaction; refuses one that is newer.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let db = |e: rusqlite::Error| StoreError::Database {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .map_err(db)?;
    let current: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for sql in MIGRATIONS.iter().skip(current.max(0) as usize) {
        tx.execute_batch(sql).map_err(db)?;
    }
    // PRAGMA takes no parameters; the value is a constant of this binary.
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

use ward_types::unix_now as now;

fn kind_key(k: Kind) -> &'static str {
    k.type_name()
}

impl Store {
    /// Opens (creating) `state_dir/ward.db`.
    pub fn open(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join("ward.db");
        let db = |e: rusqlite::Error| StoreError::Database {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let writer = || -> Result<Connection> {
            let conn = Connection::open(&path).map_err(db)?;
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                .map_err(db)?;
            Ok(conn)
        };
        let mut conn = writer()?;
        migrate(&mut conn, &path)?;
        let config = writer()?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let r = Connection::open_with_flags(&path, flags).map_err(db)?;
            r.execute_batch("PRAGMA busy_timeout = 5000;").map_err(db)?;
            readers.push(Mutex::new(r));
        }
        Ok(Store {
            path,
            conn: Mutex::new(conn),
            config: Mutex::new(config),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Runs a read on one of the read connections.
    fn read<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        let mut c = self.readers[i]
            .lock()
            .map_err(|_| StoreError::Invalid("store lock poisoned".into()))?;
        f(&mut c).map_err(|e| StoreError::Database {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Runs `f` on the event writer's connection.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.on(&self.conn, f)
    }

    /// Runs `f` on the configuration writer's connection (resources, users, tokens).
    fn with_config<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.on(&self.config, f)
    }

    fn on<T>(
        &self,
        conn: &Mutex<Connection>,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut c = conn
            .lock()
            .map_err(|_| StoreError::Invalid("store lock poisoned".into()))?;
        f(&mut c).map_err(|e| StoreError::Database {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// SQLite's `PRAGMA quick_check`: the database file is sound.
    pub fn quick_check(&self) -> Result<()> {
        let r: String = self.with(|c| c.query_row("PRAGMA quick_check", [], |r| r.get(0)))?;
        if r != "ok" {
            return Err(StoreError::Invalid(format!("integrity check failed: {r}")));
        }
        Ok(())
    }

    /// The cluster and member IDs, made once (random 63-bit numbers) and kept.
    pub fn ids(&self) -> Result<(u64, u64)> {
        // Drawn before the transaction (used only if the IDs are not there yet), so that a
        // failing generator is an error and never an ID of zeroes.
        let mut fresh = [0u8; 16];
        aws_lc_rs::rand::fill(&mut fresh).map_err(|_| StoreError::NoRandomness)?;
        self.with_config(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let get = |tx: &rusqlite::Transaction, k: &str| -> rusqlite::Result<Option<u64>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
                .map(|v| v.and_then(|s| s.parse().ok()))
            };
            let mut ids = [0u64; 2];
            for (i, k) in ["cluster_id", "member_id"].iter().enumerate() {
                ids[i] = match get(&tx, k)? {
                    Some(v) => v,
                    None => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&fresh[i * 8..i * 8 + 8]);
                        let v = u64::from_be_bytes(b) >> 1;
                        tx.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                            params![k, v.to_string()],
                        )?;
                        v
                    }
                };
            }
            tx.commit()?;
            Ok((ids[0], ids[1]))
        })
    }

    /// Creates (`create_only`) or creates-or-replaces a resource.
    pub fn put(&self, r: &Resource, create_only: bool) -> Result<()> {
        let doc = serde_json::to_string(&r.to_document())
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let ns = r.metadata.namespace.clone().unwrap_or_default();
        let name = r.metadata.name.clone();
        let kind = r.kind;
        let changed = self.with_config(|c| {
            let sql = if create_only {
                "INSERT OR IGNORE INTO resources (kind, namespace, name, doc, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)"
            } else {
                "INSERT INTO resources (kind, namespace, name, doc, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, namespace, name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at"
            };
            c.execute(sql, params![kind_key(kind), ns, name, doc, now()])
        })?;
        if changed == 0 {
            return Err(StoreError::Exists {
                kind: kind.type_name(),
                name,
            });
        }
        Ok(())
    }

    /// Agents' entities in one transaction: each of `register` is written as it says (first
    /// keepalive of a session, or changed facts); `seen` set `spec.last_seen` of entities
    /// that exist. Keepalives from a whole fleet cost one commit per batch, not one each.
    pub fn write_entities(
        &self,
        register: &[Registration],
        seen: &[(String, String, i64)],
    ) -> Result<()> {
        let docs = register
            .iter()
            .map(|reg| {
                let (r, replace) = match reg {
                    Registration::Replace(r) => (r, true),
                    Registration::State(r) => (r, false),
                };
                serde_json::to_string(&r.to_document())
                    .map(|d| {
                        (
                            r.metadata.namespace.clone().unwrap_or_default(),
                            r.metadata.name.clone(),
                            d,
                            replace,
                        )
                    })
                    .map_err(|e| StoreError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut replace = tx.prepare_cached(
                    "INSERT INTO resources (kind, namespace, name, doc, updated_at) VALUES ('Entity', ?1, ?2, ?3, ?4)
                     ON CONFLICT (kind, namespace, name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
                )?;
                // The stored configuration (labels, subscriptions, ...) is the backend's:
                // only what the agent observes about itself changes, and a class changed
                // to proxy through the API goes back to agent, as in Sensu.
                let mut state = tx.prepare_cached(
                    "INSERT INTO resources (kind, namespace, name, doc, updated_at) VALUES ('Entity', ?1, ?2, ?3, ?4)
                     ON CONFLICT (kind, namespace, name) DO UPDATE SET doc = json_set(resources.doc,
                         '$.spec.system', json(excluded.doc -> '$.spec.system'),
                         '$.spec.sensu_agent_version', excluded.doc ->> '$.spec.sensu_agent_version',
                         '$.spec.user', excluded.doc ->> '$.spec.user',
                         '$.spec.last_seen', excluded.doc ->> '$.spec.last_seen',
                         '$.spec.entity_class', 'agent'), updated_at = excluded.updated_at",
                )?;
                for (ns, name, doc, whole) in &docs {
                    let put = if *whole { &mut replace } else { &mut state };
                    put.execute(params![ns, name, doc, t])?;
                }
                let mut touch = tx.prepare_cached(
                    "UPDATE resources SET doc = json_set(doc, '$.spec.last_seen', ?3), updated_at = ?4
                     WHERE kind = 'Entity' AND namespace = ?1 AND name = ?2",
                )?;
                for (ns, name, at) in seen {
                    touch.execute(params![ns, name, at, t])?;
                }
            }
            tx.commit()
        })
    }

    /// One resource.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Option<Resource>> {
        let doc: Option<String> = self.read(|c| {
            c.query_row(
                "SELECT doc FROM resources WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                params![kind_key(kind), namespace, name],
                |r| r.get(0),
            )
            .optional()
        })?;
        doc.map(|d| decode(&d)).transpose()
    }

    /// A page of resources ordered by (namespace, name); `after` is the continue token the
    /// previous page returned. `namespace = None` lists every namespace.
    pub fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<Resource>, Option<String>)> {
        let limit = limit.clamp(1, 10_000);
        let after = after.unwrap_or("");
        let rows: Vec<(String, String, String)> = self.read(|c| {
            let mut st = c.prepare(
                "SELECT namespace, name, doc FROM resources WHERE kind = ?1 AND (?2 IS NULL OR namespace = ?2)
                 AND (namespace || char(0) || name) > ?3 ORDER BY namespace, name LIMIT ?4",
            )?;
            let rows = st
                .query_map(params![kind_key(kind), namespace, after, (limit + 1) as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let more = rows.len() > limit;
        let page: Vec<_> = rows.into_iter().take(limit).collect();
        let next = if more {
            page.last().map(|(ns, n, _)| format!("{ns}\u{0}{n}"))
        } else {
            None
        };
        let resources = page
            .iter()
            .map(|(_, _, d)| decode(d))
            .collect::<Result<Vec<_>>>()?;
        Ok((resources, next))
    }

    /// Deletes a resource; `NotFound` when there was none.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<()> {
        let n = self.with_config(|c| {
            c.execute(
                "DELETE FROM resources WHERE kind = ?1 AND namespace = ?2 AND name = ?3",
                params![kind_key(kind), namespace, name],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound {
                kind: kind.type_name(),
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Creates a user; `Exists` if the name is taken.
    pub fn create_user(&self, u: &User) -> Result<()> {
        let groups = serde_json::to_string(&u.groups).unwrap_or_else(|_| "[]".into());
        let n = self.with_config(|c| {
            c.execute(
                "INSERT OR IGNORE INTO users (name, password_hash, groups, disabled) VALUES (?1, ?2, ?3, ?4)",
                params![u.name, u.password_hash, groups, u.disabled as i64],
            )
        })?;
        if n == 0 {
            return Err(StoreError::Exists {
                kind: "User",
                name: u.name.clone(),
            });
        }
        Ok(())
    }

    pub fn user(&self, name: &str) -> Result<Option<User>> {
        self.read(|c| {
            c.query_row(
                "SELECT name, password_hash, groups, disabled FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok(User {
                        name: r.get(0)?,
                        password_hash: r.get(1)?,
                        groups: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                        disabled: r.get::<_, i64>(3)? != 0,
                    })
                },
            )
            .optional()
        })
    }

    pub fn users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT name, password_hash, groups, disabled FROM users ORDER BY name")?;
            let rows = st
                .query_map([], |r| {
                    Ok(User {
                        name: r.get(0)?,
                        password_hash: r.get(1)?,
                        groups: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                        disabled: r.get::<_, i64>(3)? != 0,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Replaces a user's password hash, groups and disabled flag; revokes their tokens when
    /// the password changes or the user is disabled. With `keep_group`, the change is refused
    /// (`LastMember`, nothing written) when it would leave no enabled member of that group.
    pub fn update_user(&self, u: &User, keep_group: Option<&str>) -> Result<()> {
        let groups = serde_json::to_string(&u.groups).unwrap_or_else(|_| "[]".into());
        let n = self.with_config(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let old: Option<(Option<String>, i64)> = tx
                .query_row(
                    "SELECT password_hash, disabled FROM users WHERE name = ?1",
                    [&u.name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((old_hash, _)) = old else {
                return Ok(0);
            };
            tx.execute(
                "UPDATE users SET password_hash = ?2, groups = ?3, disabled = ?4 WHERE name = ?1",
                params![u.name, u.password_hash, groups, u.disabled as i64],
            )?;
            if let Some(g) = keep_group {
                let left: i64 = tx.query_row(
                    "SELECT count(*) FROM users, json_each(users.groups) WHERE users.disabled = 0 AND json_each.value = ?1",
                    [g],
                    |r| r.get(0),
                )?;
                if left == 0 {
                    // Dropping the transaction rolls the update back.
                    return Ok(2);
                }
            }
            if old_hash != u.password_hash || u.disabled {
                tx.execute("DELETE FROM tokens WHERE user = ?1", [&u.name])?;
            }
            tx.commit()?;
            Ok(1)
        })?;
        match n {
            0 => Err(StoreError::NotFound {
                kind: "User",
                name: u.name.clone(),
            }),
            2 => Err(StoreError::LastMember {
                group: keep_group.unwrap_or_default().to_string(),
                name: u.name.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Stores a new token (and purges expired ones).
    pub fn insert_token(&self, hash: &str, t: &StoredToken) -> Result<()> {
        self.with_config(|c| {
            c.execute("DELETE FROM tokens WHERE expires_at < ?1", [now()])?;
            c.execute(
                "INSERT INTO tokens (hash, user, refresh, expires_at, family) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, t.user, t.refresh as i64, t.expires_at, t.family],
            )
        })?;
        Ok(())
    }

    /// A token by its hash (used refresh tokens included: check `refresh`).
    pub fn token(&self, hash: &str) -> Result<Option<StoredToken>> {
        self.read(|c| {
            c.query_row(
                "SELECT user, refresh, expires_at, family FROM tokens WHERE hash = ?1",
                [hash],
                |r| {
                    Ok(StoredToken {
                        user: r.get(0)?,
                        refresh: r.get::<_, i64>(1)? != 0,
                        expires_at: r.get(2)?,
                        family: r.get(3)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Revokes every token of one session (token family).
    pub fn revoke_family(&self, family: &str) -> Result<()> {
        self.with_config(|c| c.execute("DELETE FROM tokens WHERE family = ?1", [family]))?;
        Ok(())
    }

    /// Redeems a refresh token, atomically on the configuration writer: of two concurrent
    /// callers with the same token, exactly one gets `Fresh`. A used token is kept (until it
    /// expires) so that its reuse is recognised: that revokes its whole family (`Reused`).
    pub fn redeem_refresh(&self, hash: &str) -> Result<Redeemed> {
        self.with_config(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let row: Option<(StoredToken, bool)> = tx
                .query_row(
                    "SELECT user, refresh, expires_at, family, used FROM tokens WHERE hash = ?1 AND refresh = 1",
                    [hash],
                    |r| {
                        Ok((
                            StoredToken {
                                user: r.get(0)?,
                                refresh: true,
                                expires_at: r.get(2)?,
                                family: r.get(3)?,
                            },
                            r.get::<_, i64>(4)? != 0,
                        ))
                    },
                )
                .optional()?;
            let out = match row {
                None => Redeemed::Unknown,
                Some((t, true)) => {
                    tx.execute("DELETE FROM tokens WHERE family = ?1", [&t.family])?;
                    Redeemed::Reused
                }
                Some((t, false)) => {
                    tx.execute("UPDATE tokens SET used = 1 WHERE hash = ?1", [hash])?;
                    Redeemed::Fresh(t)
                }
            };
            tx.commit()?;
            Ok(out)
        })
    }
}

impl Store {
    /// Folds several events in order, in one transaction: one commit (one fsync) for the
    /// whole batch — group commit for concurrent writers. Two events of the same check in
    /// one batch fold one after the other. Returns each event as stored (JSON text).
    pub fn record_events(
        &self,
        inputs: &[ward_types::event::Prepared],
        now: i64,
    ) -> Result<Vec<String>> {
        let timed: Vec<_> = inputs.iter().map(|i| (i, now)).collect();
        self.record(&timed, None)
    }

    /// As `record_events`, and each event also goes into the replay journal, all in one
    /// transaction: stored here while PostgreSQL is unreachable, and replayed into it later.
    /// Each event folds with the time it was received.
    pub fn record_events_for_replay(&self, batch: &[postgres::QueuedEvent]) -> Result<Vec<String>> {
        let timed: Vec<_> = batch.iter().map(|q| (&q.input, q.received_at)).collect();
        self.record(&timed, Some(batch))
    }

    /// Folds `(event, received at)` pairs in order in one transaction; `journal` events go
    /// into the replay journal in that transaction too.
    fn record(
        &self,
        inputs: &[(&ward_types::event::Prepared, i64)],
        journal: Option<&[postgres::QueuedEvent]>,
    ) -> Result<Vec<String>> {
        use ward_types::event::Fold;
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(inputs.len());
            {
                if let Some(journal) = journal {
                    let mut keep = tx.prepare_cached("INSERT INTO pg_replay (event) VALUES (?1)")?;
                    for q in journal {
                        let text = serde_json::to_string(q)
                            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                        keep.execute([text])?;
                    }
                }
                let mut read = tx.prepare_cached("SELECT event FROM events WHERE namespace = ?1 AND entity = ?2 AND check_name = ?3")?;
                let mut write = tx.prepare_cached(
                    "INSERT INTO events (namespace, entity, check_name, event, status, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (namespace, entity, check_name) DO UPDATE SET event = excluded.event, status = excluded.status, updated_at = excluded.updated_at",
                )?;
                for (input, now) in inputs {
                    // Only what the fold reads is parsed, not the whole previous event.
                    let prev: Option<Fold> = read
                        .query_row(params![input.namespace, input.entity, input.check], |r| {
                            r.get_ref(0).map(|v| v.as_str().ok().and_then(Fold::from_stored))
                        })
                        .optional()?
                        .flatten();
                    let fold = Fold::next(prev.as_ref(), input);
                    let event = input.render(&fold, *now);
                    write.execute(params![input.namespace, input.entity, input.check, event, input.status as i64, now])?;
                    out.push(event);
                }
            }
            tx.commit()?;
            Ok(out)
        })
    }

    /// Events in a namespace (all when None), optionally of one entity, ordered by
    /// (entity, check), paged like `list`.
    pub fn events(
        &self,
        namespace: Option<&str>,
        entity: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>)> {
        let (raw, next) = self.events_raw(namespace, entity, limit, after)?;
        let events = raw
            .iter()
            .map(|ev| {
                serde_json::from_str(ev)
                    .map_err(|e| StoreError::Invalid(format!("stored event is corrupt: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((events, next))
    }

    /// As `events`, but each event as the JSON text it is stored as (written by
    /// `Prepared::render` from text checked as a whole on the way in, so it is valid JSON),
    /// for responses that only pass it on.
    pub fn events_raw(
        &self,
        namespace: Option<&str>,
        entity: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let limit = limit.clamp(1, 10_000);
        let rows: Vec<(String, String, String, String)> = self.read(|c| {
            let mut st = c.prepare(
                "SELECT namespace, entity, check_name, event FROM events WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR entity = ?2)
                 AND (namespace || char(0) || entity || char(0) || check_name) > ?3 ORDER BY namespace, entity, check_name LIMIT ?4",
            )?;
            let rows = st
                .query_map(params![namespace, entity, after.unwrap_or(""), (limit + 1) as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let more = rows.len() > limit;
        let page: Vec<_> = rows.into_iter().take(limit).collect();
        let next = if more {
            page.last()
                .map(|(n, e, c, _)| format!("{n}\u{0}{e}\u{0}{c}"))
        } else {
            None
        };
        Ok((page.into_iter().map(|(_, _, _, ev)| ev).collect(), next))
    }

    /// One event.
    pub fn event(&self, namespace: &str, entity: &str, check: &str) -> Result<Option<Value>> {
        let ev: Option<String> = self.read(|c| {
            c.query_row(
                "SELECT event FROM events WHERE namespace = ?1 AND entity = ?2 AND check_name = ?3",
                params![namespace, entity, check],
                |r| r.get(0),
            )
            .optional()
        })?;
        ev.map(|e| {
            serde_json::from_str(&e)
                .map_err(|e| StoreError::Invalid(format!("stored event is corrupt: {e}")))
        })
        .transpose()
    }

    /// Deletes one event.
    pub fn delete_event(&self, namespace: &str, entity: &str, check: &str) -> Result<()> {
        let n = self.with(|c| {
            c.execute(
                "DELETE FROM events WHERE namespace = ?1 AND entity = ?2 AND check_name = ?3",
                params![namespace, entity, check],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound {
                kind: "Event",
                name: format!("{entity}/{check}"),
            });
        }
        Ok(())
    }
}

impl Store {
    /// Up to `limit` journaled events with a sequence number above `after`, oldest first.
    pub fn replay_batch(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, postgres::QueuedEvent)>> {
        let rows: Vec<(i64, String)> = self.read(|c| {
            let mut st =
                c.prepare("SELECT seq, event FROM pg_replay WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
            let rows = st
                .query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(seq, text)| {
                serde_json::from_str(&text).map(|q| (seq, q)).map_err(|e| {
                    StoreError::Invalid(format!("replay journal entry {seq} is corrupt: {e}"))
                })
            })
            .collect()
    }

    /// Forgets journaled events up to and including `seq` (they are in PostgreSQL).
    pub fn replay_done(&self, seq: i64) -> Result<()> {
        self.with(|c| c.execute("DELETE FROM pg_replay WHERE seq <= ?1", [seq]))?;
        Ok(())
    }

    /// Journaled events not yet in PostgreSQL.
    pub fn replay_pending(&self) -> Result<u64> {
        self.read(|c| c.query_row("SELECT count(*) FROM pg_replay", [], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
    }

    /// Empties the journal (the PostgresConfig was deleted: the embedded store is the event
    /// store again and already holds those events).
    pub fn replay_clear(&self) -> Result<()> {
        self.with(|c| c.execute("DELETE FROM pg_replay", []))?;
        Ok(())
    }
}

/// A stored document, checked as stored: the rules between fields are not checked again,
/// so that one stored before a rule was added stays readable (and a list of them works).
fn decode(doc: &str) -> Result<Resource> {
    let d: Document = serde_json::from_str(doc)
        .map_err(|e| StoreError::Invalid(format!("stored document is corrupt: {e}")))?;
    Resource::from_stored(d)
        .map_err(|e| StoreError::Invalid(format!("stored document no longer validates: {e}")))
}

/// Convenience for tests and callers holding raw JSON.
pub fn resource_from_json(v: Value) -> Result<Resource> {
    let d: Document = serde_json::from_value(v).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Resource::from_document(d).map_err(|e| StoreError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str) -> Resource {
        resource_from_json(serde_json::json!({"type":"CheckConfig","api_version":"core/v2","metadata":{"name":name},"spec":{"command":"true"}})).unwrap()
    }

    #[test]
    fn resources_round_trip_and_page() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        for i in 0..5 {
            s.put(&check(&format!("c{i}")), true).unwrap();
        }
        assert!(matches!(
            s.put(&check("c1"), true),
            Err(StoreError::Exists { .. })
        ));
        let (page, next) = s.list(Kind::CheckConfig, Some("default"), 2, None).unwrap();
        assert_eq!(page.len(), 2);
        let (page2, _) = s
            .list(Kind::CheckConfig, Some("default"), 10, next.as_deref())
            .unwrap();
        assert_eq!(page2.len(), 3);
        assert_eq!(page2[0].metadata.name, "c2");
        s.delete(Kind::CheckConfig, "default", "c0").unwrap();
        assert!(s.get(Kind::CheckConfig, "default", "c0").unwrap().is_none());
        let ids = s.ids().unwrap();
        drop(s);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.ids().unwrap(), ids, "IDs persist");
        assert_eq!(
            s.get(Kind::CheckConfig, "default", "c1").unwrap().unwrap(),
            check("c1")
        );
    }

    fn entity(labels: serde_json::Value, system: &str) -> Resource {
        resource_from_json(serde_json::json!({"type":"Entity","api_version":"core/v2",
            "metadata":{"name":"a1","namespace":"default","labels":labels},
            "spec":{"entity_class":"agent","subscriptions":["linux"],"system":{"hostname":system},
                    "sensu_agent_version":"1.0","last_seen":5}}))
        .unwrap()
    }

    #[test]
    fn a_state_registration_keeps_the_stored_configuration() {
        use serde_json::json;
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let write = |r: Registration| s.write_entities(&[r], &[]).unwrap();
        let stored = || {
            s.get(Kind::Entity, "default", "a1")
                .unwrap()
                .unwrap()
                .to_document()
        };
        let region = |d: &Document| d.metadata.labels.get("region").cloned();
        write(Registration::State(entity(json!({"region": "eu"}), "h1")));
        // The API changes the configuration (and the class, which goes back).
        let mut edited = entity(json!({"region": "us"}), "h1").to_document();
        edited.spec["subscriptions"] = json!(["web"]);
        edited.spec["entity_class"] = json!("proxy");
        s.put(&Resource::from_document(edited).unwrap(), false)
            .unwrap();
        write(Registration::State(entity(json!({"region": "eu"}), "h2")));
        let got = stored();
        assert_eq!(region(&got).as_deref(), Some("us"));
        assert_eq!(got.spec["subscriptions"], json!(["web"]));
        assert_eq!(
            got.spec["system"],
            json!({"hostname": "h2"}),
            "state is the agent's"
        );
        assert_eq!(got.spec["entity_class"], "agent");
        assert_eq!(got.spec["last_seen"], 5);
        // A replacement writes everything.
        write(Registration::Replace(entity(json!({"region": "fr"}), "h3")));
        let got = stored();
        assert_eq!(region(&got).as_deref(), Some("fr"));
        assert_eq!(got.spec["subscriptions"], json!(["linux"]));
    }
}
