//! The PostgreSQL event store: the schema (versioned migrations, run in one transaction),
//! the batched write that folds events into the stored ones and upserts them, the reads the
//! events API needs, the health query, and the watermark that makes replays idempotent.
//!
//! Connections are made by `ward_pg` (libpq's parameters and environment, verification on
//! rustls); this module only speaks SQL over them. The runtime around it (workers, the
//! buffer, strict / fallback, replay) is the backend's eventd.

use crate::Result as StoreResult;
use crate::StoreError;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::Client;
use ward_types::event::{Fold, HistoryEntry, Prepared, State};
use ward_types::Resource;

/// A PostgresConfig's spec, typed, with Ward's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `metadata.name`: how /health names it.
    pub name: String,
    /// The connection string as given (it may hold a password: never log it).
    pub dsn: String,
    /// Most connections the backend holds: `batch_workers` writers plus readers.
    pub pool_size: usize,
    /// A connection older than this is closed and replaced (none: kept while it works).
    pub max_conn_lifetime: Option<Duration>,
    /// Idle read connections kept open.
    pub max_idle_conns: usize,
    /// Events accepted but not yet committed, across all writers; when full, new events are
    /// refused (503) so that agents keep them.
    pub batch_buffer: usize,
    /// Most events in one write transaction.
    pub batch_size: usize,
    /// Writers, each with its own connection; an event's (namespace, entity, check) always
    /// goes to the same writer, so its events are stored in the order received.
    pub batch_workers: usize,
    /// Accepted for compatibility; Ward has no round-robin scheduling state to keep yet.
    pub enable_round_robin: bool,
    /// true: events go only to PostgreSQL and wait for it; false: after three failed
    /// attempts they go to the embedded store and are replayed later.
    pub strict: bool,
}

/// Defaults where the spec leaves a field out (or sets it to 0).
pub const DEFAULT_POOL_SIZE: usize = 20;
pub const DEFAULT_BATCH_SIZE: usize = 1000;
pub const DEFAULT_BATCH_BUFFER: usize = 10_000;
/// Writers when the spec names none: one per core, at most 4. Measured (BENCHMARKS.md):
/// on 2 cores, 2 writers store more than 4, 8 or 16, because fewer writers fold larger
/// batches and a batch costs about the same whatever its size.
pub fn default_batch_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}
pub const DEFAULT_MAX_IDLE_CONNS: usize = 2;

/// Upper bounds: beyond them a value is a mistake (and would exhaust memory or file
/// descriptors), not a tuning choice.
const LIMITS: &[(&str, usize)] = &[
    ("pool_size", 1_000),
    ("batch_workers", 256),
    ("batch_size", 10_000),
    ("batch_buffer", 1_000_000),
    ("max_idle_conns", 1_000),
];

impl PgSettings {
    /// Reads a PostgresConfig resource (its spec is already type-checked by ward-types);
    /// the error names the field.
    pub fn from_resource(r: &Resource) -> Result<PgSettings, String> {
        let spec = &r.spec;
        let uint = |k: &str| spec.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let dsn = spec
            .get("dsn")
            .and_then(Value::as_str)
            .ok_or("spec.dsn: is required")?
            .to_string();
        for (field, most) in LIMITS {
            if let Some(v) = uint(field).filter(|v| v > most) {
                return Err(format!(
                    "spec.{field}: {v} is more than Ward allows ({most}); use a smaller value"
                ));
            }
        }
        let pool_size = uint("pool_size")
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_POOL_SIZE);
        if pool_size < 2 {
            return Err("spec.pool_size: must be at least 2 (one writer and one reader)".into());
        }
        let batch_workers = match uint("batch_workers").filter(|v| *v > 0) {
            Some(w) if w >= pool_size => {
                return Err(format!(
                    "spec.batch_workers: {w} leaves no connection for reads in a pool of {pool_size}; set it below pool_size"
                ))
            }
            Some(w) => w,
            None => default_batch_workers().min(pool_size - 1),
        };
        let max_conn_lifetime = match spec.get("max_conn_lifetime").and_then(Value::as_str) {
            None | Some("") | Some("0") => None,
            Some(s) => Some(
                ward_io::parse_duration("spec.max_conn_lifetime", s).map_err(|e| e.to_string())?,
            ),
        };
        let batch_size = uint("batch_size")
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_BATCH_SIZE);
        Ok(PgSettings {
            name: r.metadata.name.clone(),
            dsn,
            pool_size,
            max_conn_lifetime,
            max_idle_conns: uint("max_idle_conns").unwrap_or(DEFAULT_MAX_IDLE_CONNS),
            batch_buffer: uint("batch_buffer")
                .filter(|v| *v > 0)
                .unwrap_or(DEFAULT_BATCH_BUFFER)
                .max(batch_workers),
            batch_size,
            batch_workers,
            enable_round_robin: spec
                .get("enable_round_robin")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            strict: spec.get("strict").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// An event waiting to be written, with the time the backend received it (the fold uses it,
/// so a replay folds exactly as the first write would have).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Journaled")]
pub struct QueuedEvent {
    pub input: Prepared,
    pub received_at: i64,
}

/// A replay journal entry as read: Ward's current form, or the form of Wards before
/// `Prepared` (the event as posted, checked), prepared on the way in, so that a journal
/// written before an upgrade still replays.
#[derive(serde::Deserialize)]
struct Journaled {
    input: JournaledInput,
    received_at: i64,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JournaledInput {
    Prepared(Prepared),
    Posted(Posted),
}

/// The earlier form: the checked event's members, with its namespace and time.
#[derive(serde::Deserialize)]
struct Posted {
    namespace: String,
    executed: i64,
    raw: serde_json::Map<String, Value>,
}

impl TryFrom<Journaled> for QueuedEvent {
    type Error = String;
    fn try_from(j: Journaled) -> Result<QueuedEvent, String> {
        Ok(QueuedEvent {
            input: match j.input {
                JournaledInput::Prepared(p) => p,
                JournaledInput::Posted(p) => {
                    // It was checked when it was received; checked again, as it is read.
                    ward_types::event::parse_event(&Value::Object(p.raw), &p.namespace, p.executed)
                        .map_err(|e| format!("a journaled event: {e}"))?
                        .prepare()
                }
            },
            received_at: j.received_at,
        })
    }
}

/// The schema, one migration per version; each runs once, in order, in one transaction.
const MIGRATIONS: &[&str] = &[
    // 1: the latest event per check, with the model's fields as columns for paging/filtering.
    "CREATE TABLE events (
        namespace text NOT NULL,
        entity text NOT NULL,
        check_name text NOT NULL,
        status bigint NOT NULL,
        state text NOT NULL,
        occurrences bigint NOT NULL,
        occurrences_watermark bigint NOT NULL,
        last_ok bigint NOT NULL,
        history json NOT NULL,
        executed bigint NOT NULL,
        updated_at bigint NOT NULL,
        event json NOT NULL,
        version bigint NOT NULL,
        PRIMARY KEY (namespace, entity, check_name)
     );
     CREATE INDEX events_status ON events (namespace, status) WHERE status <> 0;
     CREATE TABLE ward_replay (source text PRIMARY KEY, seq bigint NOT NULL);",
];

/// The schema version this Ward writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database {
        path: "PostgreSQL".into(),
        reason: describe(&e),
    }
}

/// One line for a driver error: the server's own message and SQLSTATE when there is one
/// (`ward_pg`'s wording, the same as `ward pg audit`'s).
pub use ward_pg::connect::describe_pg_error as describe;

/// Whether a failed write is the batch's own fault (bad data, a constraint), so that
/// retrying it can never succeed, rather than the connection's or the server's.
pub fn is_data_error(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        let class = &c.code()[..2];
        class == "22" || class == "23"
    })
}

/// Brings the schema to `SCHEMA_VERSION` in one transaction, serialised between backends by
/// an advisory lock. Refuses a database whose schema is newer than this Ward.
pub async fn migrate(client: &mut Client) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(pg_err)?;
    // 2002874980 is 0x77617264, "ward": one lock for every Ward backend sharing this database.
    tx.execute("SELECT pg_advisory_xact_lock(2002874980)", &[])
        .await
        .map_err(pg_err)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS ward_schema (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        &[],
    )
    .await
    .map_err(pg_err)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM ward_schema", &[])
        .await
        .map_err(pg_err)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Invalid(format!(
            "the PostgreSQL event store's schema is version {current}, newer than this Ward's ({SCHEMA_VERSION}); upgrade Ward"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await.map_err(pg_err)?;
        tx.execute(
            "INSERT INTO ward_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await
        .map_err(pg_err)?;
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(())
}

/// What PostgresConfig creation checks: the connected user may create tables in the
/// current schema. The error says which user, which schema and the GRANT that fixes it.
pub async fn check_privileges(client: &Client) -> Result<(), String> {
    let row = client
        .query_one(
            "SELECT current_user::text, current_schema()::text, \
             coalesce(has_schema_privilege(current_schema(), 'CREATE'), false)",
            &[],
        )
        .await
        .map_err(|e| describe(&e))?;
    let user: String = row.get(0);
    let schema: Option<String> = row.get(1);
    let can: bool = row.get(2);
    match schema {
        None => Err(format!(
            "user {user:?} has no current schema (search_path names no existing schema); create one or set search_path"
        )),
        Some(s) if !can => Err(format!(
            "user {user:?} may not create tables in schema {s:?}; fix: GRANT CREATE ON SCHEMA {s} TO {user}"
        )),
        Some(_) => Ok(()),
    }
}

/// Health: the events table answers.
pub async fn check_health(client: &Client) -> StoreResult<()> {
    client
        .query_opt("SELECT 1 FROM events LIMIT 1", &[])
        .await
        .map_err(pg_err)?;
    Ok(())
}

type Key = (String, String, String);

fn key(i: &Prepared) -> Key {
    (i.namespace.clone(), i.entity.clone(), i.check.clone())
}

/// What a writer knows of the checks it owns: each one's fold (None: no row) and the row's
/// version. Every write raises the version by one, so a write folded from a version that is
/// no longer the stored one is detected and redone.
#[derive(Debug, Default)]
pub struct WriterCache {
    rows: HashMap<Key, (Option<Fold>, i64)>,
}

/// Most checks a writer remembers; past it the memory is cleared and refilled by reads.
const CACHE_LIMIT: usize = 50_000;

impl WriterCache {
    /// Forgets a check (its event was deleted, or a write found the row changed).
    pub fn forget(&mut self, namespace: &str, entity: &str, check: &str) {
        self.rows
            .remove(&(namespace.to_string(), entity.to_string(), check.to_string()));
    }
}

/// One check's new row: its fold, the index of its latest event in `Folded::out`, its new
/// version and the time that event was received.
struct Row {
    key: Key,
    fold: Fold,
    /// The fold's history as JSON text, rendered once for the event and its column.
    history: String,
    event: usize,
    version: i64,
    at: i64,
}

/// A batch folded: each event as stored (JSON text), in input order, and each check's new row.
struct Folded {
    out: Vec<String>,
    rows: Vec<Row>,
}

/// Folds `batch` in order onto `prev` (each check's fold and version); each check's row
/// gets version + 1.
fn fold(batch: &[QueuedEvent], prev: &HashMap<Key, (Option<Fold>, i64)>) -> Folded {
    let mut latest: HashMap<Key, Row> = HashMap::new();
    let mut out = Vec::with_capacity(batch.len());
    for (i, q) in batch.iter().enumerate() {
        let k = key(&q.input);
        let (next, version) = match latest.get(&k) {
            Some(r) => (Fold::next(Some(&r.fold), &q.input), r.version),
            None => {
                let (before, version) = prev
                    .get(&k)
                    .map(|(f, ver)| (f.as_ref(), *ver))
                    .unwrap_or((None, 0));
                (Fold::next(before, &q.input), version + 1)
            }
        };
        let history = next.history_json();
        out.push(q.input.render_with(&next, &history, q.received_at));
        latest.insert(
            k.clone(),
            Row {
                key: k,
                fold: next,
                history,
                event: i,
                version,
                at: q.received_at,
            },
        );
    }
    let mut rows: Vec<Row> = latest.into_values().collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Folded { out, rows }
}

/// The upsert of folded rows. `conditional`: an existing row is replaced only if its
/// version is the one the fold started from, or if it already is this very row (same
/// version, same event: a write of this fold committed but its answer was lost); RETURNING
/// names the rows written.
const UPSERT: &str = "INSERT INTO events (namespace, entity, check_name, status, state, occurrences,
            occurrences_watermark, last_ok, history, executed, updated_at, event, version)
         SELECT n, e, c, s, st, o, w, l, h::json, x, u, ev::json, v
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::int8[],
                     $7::int8[], $8::int8[], $9::text[], $10::int8[], $11::int8[], $12::text[], $13::int8[])
              AS t(n, e, c, s, st, o, w, l, h, x, u, ev, v)
         ON CONFLICT (namespace, entity, check_name) DO UPDATE SET
            status = excluded.status, state = excluded.state, occurrences = excluded.occurrences,
            occurrences_watermark = excluded.occurrences_watermark, last_ok = excluded.last_ok,
            history = excluded.history, executed = excluded.executed,
            updated_at = excluded.updated_at, event = excluded.event, version = excluded.version";

async fn upsert(
    client: &impl tokio_postgres::GenericClient,
    folded: &Folded,
    conditional: bool,
) -> Result<Vec<Key>, tokio_postgres::Error> {
    let mut cols = UpsertColumns::default();
    for r in &folded.rows {
        cols.push(r, &folded.out[r.event]);
    }
    let sql = if conditional {
        format!(
            "{UPSERT} WHERE events.version = excluded.version - 1
               OR (events.version = excluded.version AND events.event::text = excluded.event::text)
             RETURNING namespace, entity, check_name"
        )
    } else {
        format!("{UPSERT} RETURNING namespace, entity, check_name")
    };
    let written = client
        .query(
            &sql,
            &[
                &cols.ns,
                &cols.entity,
                &cols.check,
                &cols.status,
                &cols.state,
                &cols.occurrences,
                &cols.watermark,
                &cols.last_ok,
                &cols.history,
                &cols.executed,
                &cols.updated_at,
                &cols.event,
                &cols.version,
            ],
        )
        .await?;
    Ok(written
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Reads the fold (from the row's columns) and version of `keys` (absent ones as
/// `(None, 0)`), locking the rows in key order when `lock` (inside a transaction).
async fn read_rows(
    client: &impl tokio_postgres::GenericClient,
    keys: &[Key],
    lock: bool,
) -> Result<HashMap<Key, (Option<Fold>, i64)>, tokio_postgres::Error> {
    let (ns, en, ch): (Vec<&str>, Vec<&str>, Vec<&str>) = keys.iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |mut acc, (a, b, c)| {
            acc.0.push(a);
            acc.1.push(b);
            acc.2.push(c);
            acc
        },
    );
    let sql = format!(
        "SELECT e.namespace, e.entity, e.check_name, e.status, e.history::text, e.occurrences,
                e.occurrences_watermark, e.last_ok, e.state, e.version FROM events e
         JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(namespace, entity, check_name)
           USING (namespace, entity, check_name)
         ORDER BY e.namespace, e.entity, e.check_name{}",
        if lock { " FOR UPDATE OF e" } else { "" }
    );
    let rows = client.query(&sql, &[&ns, &en, &ch]).await?;
    let mut out: HashMap<Key, (Option<Fold>, i64)> =
        keys.iter().map(|k| (k.clone(), (None, 0))).collect();
    for r in rows {
        let k = (r.get::<_, String>(0), r.get(1), r.get(2));
        // A history that is not Ward's (edited by hand) starts again empty.
        let history =
            serde_json::from_str::<Vec<HistoryEntry>>(r.get::<_, &str>(4)).unwrap_or_default();
        let fold = Fold {
            status: u64::try_from(r.get::<_, i64>(3)).ok(),
            history,
            occurrences: r.get::<_, i64>(5).max(0) as u64,
            occurrences_watermark: r.get::<_, i64>(6).max(0) as u64,
            last_ok: r.get(7),
            total_state_change: 0,
            state: State::parse(Some(r.get::<_, &str>(8))),
        };
        out.insert(k, (Some(fold), r.get(9)));
    }
    Ok(out)
}

fn sorted_keys(batch: &[QueuedEvent]) -> Vec<Key> {
    let mut keys: Vec<Key> = batch.iter().map(|q| key(&q.input)).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Folds a batch into the stored events and upserts them in one transaction, the stored
/// rows locked first in key order (so backends sharing the database cannot interleave a
/// fold); returns each event as stored, in input order. Two events of the same check in one
/// batch fold one after the other. With `replay = Some((source, seq))` the replay watermark
/// of `source` moves to `seq` in the same transaction, so a replay interrupted after its
/// commit is never applied twice.
pub async fn write_batch(
    client: &mut Client,
    batch: &[QueuedEvent],
    replay: Option<(&str, i64)>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(write_locked(client, batch, replay, &mut HashMap::new())
        .await?
        .out)
}

/// As `write_batch`; the rows it folds from are also put in `seen` as soon as they are read.
async fn write_locked(
    client: &mut Client,
    batch: &[QueuedEvent],
    replay: Option<(&str, i64)>,
    seen: &mut HashMap<Key, (Option<Fold>, i64)>,
) -> Result<Folded, tokio_postgres::Error> {
    let keys = sorted_keys(batch);
    let tx = client.transaction().await?;
    let prev = read_rows(&tx, &keys, true).await?;
    seen.extend(prev.iter().map(|(k, v)| (k.clone(), v.clone())));
    let folded = fold(batch, &prev);
    upsert(&tx, &folded, false).await?;
    if let Some((source, seq)) = replay {
        tx.execute(
            "INSERT INTO ward_replay (source, seq) VALUES ($1, $2)
             ON CONFLICT (source) DO UPDATE SET seq = excluded.seq
             WHERE ward_replay.seq < excluded.seq",
            &[&source, &seq],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(folded)
}

/// A writer's usual path: folds onto what it remembers of its checks (reading only the
/// checks it does not know yet) and upserts in one statement, each row only if its version
/// is still the one folded from. Rows that changed meanwhile (another backend, a replay, a
/// deleted event) go through `write_batch`'s locked path.
/// The result is what `write_batch` would have stored, with one round trip in the common
/// case instead of four.
///
/// An error may hide a commit (the connection lost after PostgreSQL committed, before its
/// answer arrived). So the memory moves only once the whole batch is written: until then
/// it holds the rows the batch was last folded from, the retry of the batch folds to the
/// same rows (same versions, same texts), and the upsert takes a row it already wrote as
/// written rather than folding the batch onto it a second time.
pub async fn write_batch_cached(
    client: &mut Client,
    batch: &[QueuedEvent],
    cache: &mut WriterCache,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let keys = sorted_keys(batch);
    let unknown: Vec<Key> = keys
        .iter()
        .filter(|k| !cache.rows.contains_key(*k))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        let read = read_rows(&*client, &unknown, false).await?;
        cache.rows.extend(read);
    }
    let folded = fold(batch, &cache.rows);
    let written: std::collections::HashSet<Key> =
        upsert(&*client, &folded, true).await?.into_iter().collect();
    let Folded { mut out, rows } = folded;
    let mut redone_rows = Vec::new();
    if written.len() < keys.len() {
        let stale: Vec<usize> = batch
            .iter()
            .enumerate()
            .filter(|(_, q)| !written.contains(&key(&q.input)))
            .map(|(i, _)| i)
            .collect();
        let again: Vec<QueuedEvent> = stale.iter().map(|i| batch[*i].clone()).collect();
        // The rows it folds from replace the stale ones in the memory as soon as read.
        let redone = write_locked(client, &again, None, &mut cache.rows).await?;
        for (i, ev) in stale.into_iter().zip(redone.out) {
            out[i] = ev;
        }
        redone_rows = redone.rows;
    }
    for r in rows
        .into_iter()
        .filter(|r| written.contains(&r.key))
        .chain(redone_rows)
    {
        cache.rows.insert(r.key, (Some(r.fold), r.version));
    }
    if cache.rows.len() > CACHE_LIMIT {
        cache.rows.clear();
    }
    Ok(out)
}

/// The columns of one upsert, one array per column; the texts borrowed from the fold.
#[derive(Default)]
struct UpsertColumns<'a> {
    ns: Vec<&'a str>,
    entity: Vec<&'a str>,
    check: Vec<&'a str>,
    status: Vec<i64>,
    state: Vec<&'static str>,
    occurrences: Vec<i64>,
    watermark: Vec<i64>,
    last_ok: Vec<i64>,
    history: Vec<&'a str>,
    executed: Vec<i64>,
    updated_at: Vec<i64>,
    event: Vec<&'a str>,
    version: Vec<i64>,
}

impl<'a> UpsertColumns<'a> {
    fn push(&mut self, r: &'a Row, event: &'a str) {
        let f = &r.fold;
        self.ns.push(&r.key.0);
        self.entity.push(&r.key.1);
        self.check.push(&r.key.2);
        self.status.push(f.status.unwrap_or(0) as i64);
        self.state.push(f.state.as_str());
        self.occurrences.push(f.occurrences as i64);
        self.watermark.push(f.occurrences_watermark as i64);
        self.last_ok.push(f.last_ok);
        self.history.push(&r.history);
        self.executed
            .push(f.history.last().map_or(0, |h| h.executed));
        self.updated_at.push(r.at);
        self.event.push(event);
        self.version.push(r.version);
    }
}

/// The highest journal sequence number of `source` already in PostgreSQL (0 for none).
pub async fn replay_watermark(client: &Client, source: &str) -> StoreResult<i64> {
    Ok(client
        .query_opt("SELECT seq FROM ward_replay WHERE source = $1", &[&source])
        .await
        .map_err(pg_err)?
        .map(|r| r.get(0))
        .unwrap_or(0))
}

/// Events in a namespace (all when None), optionally of one entity, ordered by (namespace,
/// entity, check), as the JSON texts stored; `after` is the continue token of the previous
/// page (the embedded store's format: the three parts joined by NUL).
pub async fn events_raw(
    client: &Client,
    namespace: Option<&str>,
    entity: Option<&str>,
    limit: usize,
    after: Option<&str>,
) -> StoreResult<(Vec<String>, Option<String>)> {
    let limit = limit.clamp(1, 10_000);
    let mut parts = after.unwrap_or("").splitn(3, '\u{0}');
    let (a_ns, a_en, a_ch) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let rows = client
        .query(
            "SELECT namespace, entity, check_name, event::text FROM events
             WHERE ($1::text IS NULL OR namespace = $1) AND ($2::text IS NULL OR entity = $2)
               AND (namespace, entity, check_name) > ($3, $4, $5)
             ORDER BY namespace, entity, check_name LIMIT $6",
            &[
                &namespace,
                &entity,
                &a_ns,
                &a_en,
                &a_ch,
                &((limit + 1) as i64),
            ],
        )
        .await
        .map_err(pg_err)?;
    let more = rows.len() > limit;
    let mut next = None;
    let mut out = Vec::with_capacity(rows.len().min(limit));
    for r in rows.iter().take(limit) {
        out.push(r.get::<_, String>(3));
        if more {
            next = Some(format!(
                "{}\u{0}{}\u{0}{}",
                r.get::<_, &str>(0),
                r.get::<_, &str>(1),
                r.get::<_, &str>(2)
            ));
        }
    }
    Ok((out, next))
}

/// One event.
pub async fn event(
    client: &Client,
    namespace: &str,
    entity: &str,
    check: &str,
) -> StoreResult<Option<Value>> {
    let row = client
        .query_opt(
            "SELECT event::text FROM events WHERE namespace = $1 AND entity = $2 AND check_name = $3",
            &[&namespace, &entity, &check],
        )
        .await
        .map_err(pg_err)?;
    row.map(|r| {
        serde_json::from_str(r.get::<_, &str>(0))
            .map_err(|e| StoreError::Invalid(format!("stored event is corrupt: {e}")))
    })
    .transpose()
}

/// Deletes one event; `NotFound` when there was none.
pub async fn delete_event(
    client: &Client,
    namespace: &str,
    entity: &str,
    check: &str,
) -> StoreResult<()> {
    let n = client
        .execute(
            "DELETE FROM events WHERE namespace = $1 AND entity = $2 AND check_name = $3",
            &[&namespace, &entity, &check],
        )
        .await
        .map_err(pg_err)?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "Event",
            name: format!("{entity}/{check}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(spec: Value) -> Result<PgSettings, String> {
        let r = crate::resource_from_json(serde_json::json!({
            "type": "PostgresConfig", "api_version": "store/v1",
            "metadata": {"name": "p"}, "spec": spec
        }))
        .map_err(|e| e.to_string())?;
        PgSettings::from_resource(&r)
    }

    #[test]
    fn journal_entries_of_either_form_replay_as_the_same_event() {
        let body = serde_json::json!({"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "http"}, "status": 2, "output": "down"}});
        let input = ward_types::event::parse_event(&body, "default", 100).unwrap();
        // As a Ward before `Prepared` journaled it: the checked event, its check's status
        // and executed set.
        let before = serde_json::json!({"input": {
            "namespace": "default", "entity": "web-1", "check": "http", "status": 2, "executed": 100,
            "raw": {"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "http"}, "status": 2, "output": "down", "executed": 100}}
        }, "received_at": 100})
        .to_string();
        let now = QueuedEvent {
            input: input.prepare(),
            received_at: 100,
        };
        let read: QueuedEvent = serde_json::from_str(&before).unwrap();
        assert_eq!(read, now);
        let again: QueuedEvent =
            serde_json::from_str(&serde_json::to_string(&now).unwrap()).unwrap();
        assert_eq!(again, now);
        assert!(
            serde_json::from_str::<QueuedEvent>(r#"{"input": {"x": 1}, "received_at": 1}"#)
                .is_err()
        );
        let damaged = before.replace(r#""status":2,"output""#, r#""status":"2","output""#);
        assert_ne!(damaged, before);
        let e = serde_json::from_str::<QueuedEvent>(&damaged).unwrap_err();
        assert!(e.to_string().contains("check.status"), "{e}");
    }

    #[test]
    fn the_guides_config_gets_wards_defaults() {
        let s = pg(serde_json::json!({"dsn": "postgresql://sensu:mypass@postgres.example.com:5432/sensu_events", "pool_size": 20, "strict": false})).unwrap();
        assert_eq!(s.pool_size, 20);
        assert_eq!(s.batch_workers, default_batch_workers());
        assert_eq!(s.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(s.batch_buffer, DEFAULT_BATCH_BUFFER);
        assert!(!s.strict);
        assert_eq!(s.max_conn_lifetime, None);
    }

    #[test]
    fn impossible_pools_are_refused_naming_the_field() {
        let e =
            pg(serde_json::json!({"dsn": "x", "pool_size": 4, "batch_workers": 4})).unwrap_err();
        assert!(e.starts_with("spec.batch_workers"), "{e}");
        let e = pg(serde_json::json!({"dsn": "x", "pool_size": 1})).unwrap_err();
        assert!(e.starts_with("spec.pool_size"), "{e}");
        let e = pg(serde_json::json!({"dsn": "x", "batch_buffer": 1u64 << 62})).unwrap_err();
        assert!(
            e.starts_with("spec.batch_buffer") && e.contains("1000000"),
            "{e}"
        );
        let e = pg(serde_json::json!({"dsn": "x", "max_conn_lifetime": "soon"})).unwrap_err();
        assert!(e.contains("max_conn_lifetime"), "{e}");
        let s =
            pg(serde_json::json!({"dsn": "x", "pool_size": 3, "max_conn_lifetime": "5m"})).unwrap();
        assert_eq!(s.batch_workers, 2);
        assert_eq!(s.max_conn_lifetime, Some(Duration::from_secs(300)));
    }
}
