//! eventd: where events are stored. The embedded store (SQLite, `embedded`) until a
//! PostgresConfig exists; then the PostgreSQL event store (`postgres`), switched to and from
//! with no restart. Every event is acknowledged only once it is committed somewhere it will
//! not be lost.

pub mod embedded;
pub mod postgres;
pub mod ttl;

use crate::api::Metrics;
use postgres::PgEventStore;
use serde_json::Value;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use ward_pg::conninfo::ConnParams;
use ward_store::postgres::{PgSettings, QueuedEvent};
use ward_store::{Store, StoreError};
use ward_types::event::Prepared;

/// How long a connection attempt (TCP, TLS, authentication) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an event was not stored.
#[derive(Debug, Clone)]
pub enum SubmitError {
    /// Not now: the buffer is full or the store is being switched. The sender keeps the
    /// event and retries (the API answers 503 with Retry-After).
    Busy(String),
    /// The store failed or refused it (500).
    Failed(String),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Busy(m) | SubmitError::Failed(m) => f.write_str(m),
        }
    }
}

/// Why a read could not be answered.
#[derive(Debug)]
pub enum ReadError {
    /// PostgreSQL is the event store and does not answer now (503).
    Unavailable(String),
    Store(StoreError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unavailable(m) => {
                write!(f, "the PostgreSQL event store does not answer: {m}")
            }
            ReadError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        ReadError::Store(e)
    }
}

/// Connects with libpq's parameters and environment (`ward_pg`), within `CONNECT_TIMEOUT`.
pub async fn connect(params: &ConnParams) -> Result<tokio_postgres::Client, String> {
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        ward_pg::connect::connect(params, "ward backend"),
    )
    .await
    {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "{}: no answer within {} s",
            params.describe_target(),
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// Resolves a PostgresConfig's DSN with the backend's environment (the env file's PG*
/// variables) and libpq's defaults. The error is one line naming the parameter.
pub fn resolve(settings: &PgSettings) -> Result<ConnParams, String> {
    let params = ward_pg::conninfo::resolve(&settings.dsn, &|k| std::env::var(k).ok())
        .map_err(|e| format!("spec.dsn: {e}"))?;
    // What libpq would print on stderr (a password file ignored for its permissions, …).
    for w in &params.warnings {
        tracing::warn!(store = %settings.name, warning = %w, "PostgreSQL connection parameters");
    }
    Ok(params)
}

/// What PostgresConfig creation checks: PostgreSQL accepts the connection and the user may
/// create tables in the current schema. The error is the server's reason.
pub async fn validate(params: &ConnParams) -> Result<(), String> {
    let c = connect(params).await?;
    ward_store::postgres::check_privileges(&c).await
}

/// One PostgresConfig's entry in /health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgHealth {
    pub name: String,
    pub active: bool,
    pub healthy: bool,
}

use ward_types::unix_now as now;

/// An event queued for storage.
pub enum Pending {
    Embedded(embedded::Answer),
    Pg(postgres::Answer),
}

impl Pending {
    /// Once committed: the stored event (JSON text), unless it was queued with `keep` false.
    pub async fn wait(self) -> Result<Option<String>, SubmitError> {
        match self {
            Pending::Embedded(rx) => rx
                .await
                .map_err(|_| SubmitError::Failed("the event writer has stopped".into()))?
                .map_err(SubmitError::Failed),
            Pending::Pg(rx) => rx.await.unwrap_or_else(|_| {
                Err(SubmitError::Busy(
                    "the event store is being switched".into(),
                ))
            }),
        }
    }
}

/// Routes events and event reads to the store in use.
pub struct EventRouter {
    embedded: embedded::EmbeddedWriter,
    store: Arc<Store>,
    /// This backend's name in PostgreSQL's replay watermarks.
    source: String,
    metrics: Arc<Metrics>,
    pg: RwLock<Option<Arc<PgEventStore>>>,
    /// Serialises switches: the old store is stopped and awaited before the next starts.
    switch: tokio::sync::Mutex<()>,
    /// The checks whose next result is awaited (`ttl`).
    pub ttls: ttl::Ttls,
}

impl EventRouter {
    pub fn new(store: Arc<Store>, member_id: u64, metrics: Arc<Metrics>) -> EventRouter {
        EventRouter {
            embedded: embedded::EmbeddedWriter::start(store.clone()),
            store,
            source: format!("{member_id:016x}"),
            metrics,
            pg: RwLock::new(None),
            switch: tokio::sync::Mutex::new(()),
            ttls: ttl::Ttls::default(),
        }
    }

    fn current(&self) -> Option<Arc<PgEventStore>> {
        self.pg.read().ok().and_then(|p| p.clone())
    }

    /// Makes PostgreSQL (these settings) the event store, replacing any other; no restart.
    /// The store it replaces is stopped and awaited first (events sent meanwhile get 503),
    /// so two stores never write or replay at once.
    pub async fn activate(&self, settings: PgSettings) -> Result<(), String> {
        let params = resolve(&settings)?;
        let _switching = self.switch.lock().await;
        if let Some(old) = self.current() {
            old.shutdown().await;
        }
        let name = settings.name.clone();
        let strict = settings.strict;
        let next = PgEventStore::start(
            settings,
            params,
            self.store.clone(),
            self.source.clone(),
            self.metrics.clone(),
        );
        let target = next.target.clone();
        if let Ok(mut p) = self.pg.write() {
            *p = Some(next);
        }
        tracing::info!(store = %name, target = %target, strict, "switched the event store to PostgreSQL");
        Ok(())
    }

    /// Back to the embedded store (the PostgresConfig `name` was deleted). Events already in
    /// PostgreSQL stay there; the replay journal is emptied, since the embedded store
    /// already holds everything in it.
    pub async fn deactivate(&self, name: &str) {
        let _switching = self.switch.lock().await;
        let Some(old) = self.current().filter(|s| s.settings.name == name) else {
            return;
        };
        old.shutdown().await;
        if let Ok(mut p) = self.pg.write() {
            *p = None;
        }
        if let Err(e) = self.store.replay_clear() {
            tracing::error!(error = %e, "could not empty the replay journal");
        }
        tracing::info!(store = %name, "switched the event store back to the embedded store");
    }

    /// The /health entry of the PostgresConfig `name`.
    pub fn health(&self, name: &str) -> PgHealth {
        match self.current() {
            Some(s) if s.settings.name == name => PgHealth {
                name: name.into(),
                active: s.active(),
                healthy: s.healthy(),
            },
            _ => PgHealth {
                name: name.into(),
                active: false,
                healthy: false,
            },
        }
    }

    /// Stores one event; resolves once it is committed, with the stored event (JSON text).
    pub async fn submit(&self, input: Prepared) -> Result<String, SubmitError> {
        self.enqueue(input)
            .await?
            .wait()
            .await?
            .ok_or_else(|| SubmitError::Failed("the event writer answered no event".into()))
    }

    /// As `enqueue`, giving the event back when it was not queued (so that the caller can
    /// wait and queue it again, keeping its check's order). With `keep` false the caller
    /// does not need the stored event: the embedded store answers None (PostgreSQL's
    /// writers answer it anyway).
    pub async fn enqueue_or_return(
        &self,
        input: Prepared,
        keep: bool,
    ) -> Result<Pending, (SubmitError, Prepared)> {
        self.arrived(&input);
        match self.current() {
            Some(pg) => pg
                .enqueue_or_return(QueuedEvent {
                    input,
                    received_at: now(),
                })
                .map(Pending::Pg)
                .map_err(|(e, q)| (e, q.input)),
            None => self
                .embedded
                .enqueue_or_return(input, keep)
                .await
                .map(Pending::Embedded)
                .map_err(|(e, i)| (SubmitError::Failed(e), i)),
        }
    }

    /// Queues one event, waiting only for room; `Pending::wait` resolves once it is
    /// committed. Events of one check queued one after another are committed in that order,
    /// so a session can have many events in flight and still keep each check's order.
    pub async fn enqueue(&self, input: Prepared) -> Result<Pending, SubmitError> {
        self.arrived(&input);
        match self.current() {
            Some(pg) => pg
                .enqueue(QueuedEvent {
                    input,
                    received_at: now(),
                })
                .map(Pending::Pg),
            None => self
                .embedded
                .enqueue(input)
                .await
                .map(Pending::Embedded)
                .map_err(SubmitError::Failed),
        }
    }

    /// A check result arrived: its TTL watch starts again (keepalives have their own).
    fn arrived(&self, input: &Prepared) {
        if (input.ttl > 0 || !self.ttls.is_empty())
            && input.check != ward_types::agent::KEEPALIVE_CHECK
        {
            self.ttls.touch(
                &input.namespace,
                &input.entity,
                &input.check,
                input.ttl,
                now(),
            );
        }
    }

    /// The PostgreSQL store when reads go there now.
    fn pg_reads(&self) -> Option<Arc<PgEventStore>> {
        self.current().filter(|p| p.serves_reads())
    }

    /// A page of events as stored JSON texts (see `Store::events_raw`).
    pub async fn events_raw(
        &self,
        namespace: Option<&str>,
        entity: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), ReadError> {
        match self.pg_reads() {
            Some(pg) => {
                let c = pg.reader().await.map_err(ReadError::Unavailable)?;
                ward_store::postgres::events_raw(&c, namespace, entity, limit, after)
                    .await
                    .map_err(unavailable)
            }
            None => Ok(self.store.events_raw(namespace, entity, limit, after)?),
        }
    }

    /// One event.
    pub async fn event(
        &self,
        namespace: &str,
        entity: &str,
        check: &str,
    ) -> Result<Option<Value>, ReadError> {
        match self.pg_reads() {
            Some(pg) => {
                let c = pg.reader().await.map_err(ReadError::Unavailable)?;
                ward_store::postgres::event(&c, namespace, entity, check)
                    .await
                    .map_err(unavailable)
            }
            None => Ok(self.store.event(namespace, entity, check)?),
        }
    }

    /// Deletes one event where events are stored now. While a non-strict PostgreSQL store has
    /// fallen back, deleting is refused (503): the event may be in PostgreSQL too.
    pub async fn delete_event(
        &self,
        namespace: &str,
        entity: &str,
        check: &str,
    ) -> Result<(), ReadError> {
        match self.current() {
            Some(pg) if pg.serves_reads() => {
                let c = pg.reader().await.map_err(ReadError::Unavailable)?;
                let deleted = ward_store::postgres::delete_event(&c, namespace, entity, check)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound { .. } => ReadError::Store(e),
                        other => ReadError::Unavailable(other.to_string()),
                    });
                pg.forget(namespace, entity, check).await;
                deleted
            }
            Some(pg) => Err(ReadError::Unavailable(format!(
                "the PostgreSQL event store is not answering ({}); events cannot be deleted until it is back",
                pg.last_error()
            ))),
            None => Ok(self.store.delete_event(namespace, entity, check)?),
        }
    }
}

fn unavailable(e: StoreError) -> ReadError {
    ReadError::Unavailable(e.to_string())
}
