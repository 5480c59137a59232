//! The PostgreSQL event store at run time: writers, the buffer, health, strict / fallback and
//! replay.
//!
//! - Writers: `batch_workers` tasks, each with its own connection. An event goes to the
//!   writer chosen by its (namespace, entity, check), so one check's events are stored in the
//!   order received. A writer takes whatever has queued (up to `batch_size`) as soon as it is
//!   free, so nothing waits for a timer: a batch is flushed well within 100 ms.
//! - The buffer: each writer's queue holds `batch_buffer / batch_workers` events. When it is
//!   full the event is refused at once (the API answers 503 with Retry-After), so the sender
//!   keeps it: nothing is acknowledged that is not committed.
//! - Health: every `PROBE_INTERVAL` a fresh connection is made and the events table queried.
//!   `Healthy` is the last probe's answer, so /health never waits for PostgreSQL.
//! - `strict: false`: after `ATTEMPTS` failed attempts in a row (writes or probes), events go
//!   to the embedded store and, in the same transaction, to its replay journal. When the
//!   probe succeeds again the journal is replayed into PostgreSQL in order, and then writes
//!   go to PostgreSQL again. `strict: true`: events wait for PostgreSQL, only in the buffer;
//!   a journal left from an earlier non-strict outage is replayed first ("draining"), and
//!   never added to.
//! - Every call to PostgreSQL has a time limit (`CALL_TIMEOUT`): a server that hangs counts
//!   as a failed attempt, like one that refuses.

use super::{SubmitError, CONNECT_TIMEOUT};
use crate::api::Metrics;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;
use ward_io::backoff::Backoff;
use ward_pg::conninfo::ConnParams;
use ward_store::postgres::{self as pg, PgSettings, QueuedEvent, WriterCache};
use ward_store::Store;

/// Failed attempts in a row before a non-strict store falls back to the embedded one.
pub const ATTEMPTS: u32 = 3;
/// How often health is probed while PostgreSQL answers.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Longest wait for one statement or transaction (a batch of upserts takes milliseconds).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping store's tasks may take to finish what they hold before being ended.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// `fut` within `CALL_TIMEOUT`; a timeout is an error like any other.
async fn within<T>(
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CallError::Pg(e)),
        Err(_) => Err(CallError::Timeout),
    }
}

/// A PostgreSQL call that failed: the driver's error, or no answer in time.
enum CallError {
    Pg(tokio_postgres::Error),
    Timeout,
}

impl CallError {
    fn is_data_error(&self) -> bool {
        matches!(self, CallError::Pg(e) if pg::is_data_error(e))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Pg(e) => f.write_str(&pg::describe(e)),
            CallError::Timeout => write!(f, "no answer within {} s", CALL_TIMEOUT.as_secs()),
        }
    }
}

/// Where events go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Not yet written to; with `strict` events wait, without they will fall back.
    Connecting = 0,
    /// PostgreSQL is the event store.
    Active = 1,
    /// PostgreSQL failed and the config is not strict: events go to the embedded store and
    /// its replay journal.
    Fallback = 2,
}

/// Backoff between attempts (the one backoff, `ward_io::backoff`): from 1 s, the ceiling
/// doubling to 5 s, jittered so that several backends do not come back in step.
fn backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 2.0)
}

/// Where a queued event's outcome arrives: the stored event's JSON text, once committed.
pub type Answer = oneshot::Receiver<Result<Option<String>, SubmitError>>;

/// Where a writer answers one event.
type Reply = oneshot::Sender<Result<Option<String>, SubmitError>>;

struct Job {
    event: QueuedEvent,
    reply: Reply,
}

enum WriteError {
    /// The batch's own fault (bad data): retrying it cannot help.
    Data(String),
    /// The connection's or the server's: retry.
    Unavailable(String),
}

/// One PostgresConfig in use.
pub struct PgEventStore {
    pub settings: PgSettings,
    params: ConnParams,
    /// `user@host:port (hostaddr …)/dbname`, for logs (never the DSN: it may hold a password).
    pub target: String,
    writers: Vec<mpsc::Sender<Job>>,
    /// Each writer's memory of the checks it owns (see `pg::write_batch_cached`).
    caches: Vec<tokio::sync::Mutex<WriterCache>>,
    mode: AtomicU8,
    healthy: AtomicBool,
    /// The replay journal is known to be empty (or replayed). Until then a strict store's
    /// writers wait, so that journaled events reach PostgreSQL before newer ones.
    drained: AtomicBool,
    /// The writer and probe tasks, awaited when the store stops.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Journal writes hold it shared; the switch back to PostgreSQL holds it alone, so no
    /// event can slip into the journal after its last replay.
    route: tokio::sync::RwLock<()>,
    reads: ReadPool,
    store: Arc<Store>,
    /// This backend's name in the replay watermark table.
    source: String,
    migrated: AtomicBool,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    last_error: Mutex<String>,
}

impl PgEventStore {
    /// Starts writers and the health probe. When the replay journal is not empty (or cannot
    /// be read), journaled events must reach PostgreSQL before newer ones: a non-strict store
    /// starts in `Fallback` (new events join the journal), a strict one drains it first.
    pub fn start(
        settings: PgSettings,
        params: ConnParams,
        store: Arc<Store>,
        source: String,
        metrics: Arc<Metrics>,
    ) -> Arc<PgEventStore> {
        let pending = store.replay_pending().unwrap_or(u64::MAX);
        let per_writer = (settings.batch_buffer / settings.batch_workers).max(1);
        let mut writers = Vec::with_capacity(settings.batch_workers);
        let mut queues = Vec::with_capacity(settings.batch_workers);
        for _ in 0..settings.batch_workers {
            let (tx, rx) = mpsc::channel(per_writer);
            writers.push(tx);
            queues.push(rx);
        }
        let (stop, _) = watch::channel(false);
        let target = format!(
            "{}@{}/{}",
            params.user,
            params.describe_target(),
            params.dbname
        );
        let readers = settings.pool_size - settings.batch_workers;
        let this = Arc::new(PgEventStore {
            reads: ReadPool::new(
                params.clone(),
                readers,
                settings.max_idle_conns,
                settings.max_conn_lifetime,
            ),
            mode: AtomicU8::new(if pending > 0 && !settings.strict {
                Mode::Fallback as u8
            } else {
                Mode::Connecting as u8
            }),
            drained: AtomicBool::new(pending == 0),
            tasks: Mutex::new(Vec::new()),
            caches: (0..writers.len())
                .map(|_| tokio::sync::Mutex::new(WriterCache::default()))
                .collect(),
            settings,
            params,
            target,
            writers,
            healthy: AtomicBool::new(false),
            route: tokio::sync::RwLock::new(()),
            store,
            source,
            migrated: AtomicBool::new(false),
            metrics,
            stop,
            last_error: Mutex::new(String::new()),
        });
        if pending > 0 && this.settings.strict {
            tracing::warn!(store = %this.settings.name, pending, "events from an earlier outage wait to be replayed into PostgreSQL; new events wait until they are in (strict: true)");
        } else if pending > 0 {
            tracing::warn!(store = %this.settings.name, pending, "events from an earlier outage wait to be replayed into PostgreSQL; new events join them until it answers");
        }
        let mut tasks: Vec<_> = queues
            .into_iter()
            .enumerate()
            .map(|(i, rx)| tokio::spawn(this.clone().run_writer(i, rx)))
            .collect();
        tasks.push(tokio::spawn(this.clone().run_probe()));
        if let Ok(mut t) = this.tasks.lock() {
            *t = tasks;
        }
        this
    }

    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Acquire) {
            1 => Mode::Active,
            2 => Mode::Fallback,
            _ => Mode::Connecting,
        }
    }

    /// /health's `Active`: events go to PostgreSQL (or, with `strict`, wait for it).
    pub fn active(&self) -> bool {
        match self.mode() {
            Mode::Active => true,
            Mode::Connecting => self.settings.strict,
            Mode::Fallback => false,
        }
    }

    /// /health's `Healthy`: the last probe connected and the events table answered.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Whether reads are answered from PostgreSQL (otherwise from the embedded store).
    pub fn serves_reads(&self) -> bool {
        self.active()
    }

    /// The last failure, for messages.
    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Stops writers and the probe and waits for them: a batch being written finishes (or
    /// is ended after `STOP_GRACE`, its transaction rolled back with its connection), and
    /// queued events are refused (503: their senders retry). When this returns, nothing of
    /// this store touches PostgreSQL or the journal any more.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(STOP_GRACE, t).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Queues one event for its check's writer; the receiver answers once it is committed.
    /// A full buffer refuses it at once.
    pub fn enqueue(&self, event: QueuedEvent) -> Result<Answer, SubmitError> {
        self.enqueue_or_return(event).map_err(|(e, _)| e)
    }

    /// As `enqueue`, giving the event back when it was not queued.
    #[allow(clippy::result_large_err)]
    pub fn enqueue_or_return(
        &self,
        event: QueuedEvent,
    ) -> Result<Answer, (SubmitError, QueuedEvent)> {
        let i = writer_for(
            &event.input.namespace,
            &event.input.entity,
            &event.input.check,
            self.writers.len(),
        );
        let (reply, rx) = oneshot::channel();
        match self.writers[i].try_send(Job { event, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                self.metrics.pg_buffer_full.fetch_add(1, Ordering::Relaxed);
                return Err((
                    SubmitError::Busy(format!(
                        "the PostgreSQL event store's buffer is full (batch_buffer {}): {}",
                        self.settings.batch_buffer,
                        if self.healthy() {
                            "it is writing as fast as it can".to_string()
                        } else {
                            format!("PostgreSQL is not answering ({})", self.last_error())
                        }
                    )),
                    job.event,
                ));
            }
            Err(mpsc::error::TrySendError::Closed(job)) => {
                return Err((
                    SubmitError::Busy("the event store is being switched".into()),
                    job.event,
                ))
            }
        }
        Ok(rx)
    }

    fn set_mode(&self, from: Mode, to: Mode) -> bool {
        self.mode
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn note_failure(&self, e: &str) {
        self.healthy.store(false, Ordering::Release);
        if let Ok(mut l) = self.last_error.lock() {
            *l = e.to_string();
        }
    }

    /// Non-strict only: events go to the embedded store from now on, until replayed.
    fn fall_back(&self, reason: &str) {
        if self.settings.strict {
            return;
        }
        if self.set_mode(Mode::Connecting, Mode::Fallback)
            || self.set_mode(Mode::Active, Mode::Fallback)
        {
            tracing::warn!(store = %self.settings.name, target = %self.target, error = %reason, attempts = ATTEMPTS,
                "PostgreSQL event store unavailable; events go to the embedded store and will be replayed into PostgreSQL when it answers (strict: false)");
        }
    }

    /// A new connection, with the schema migrated on the first one.
    async fn open(&self) -> Result<Client, String> {
        let mut c = super::connect(&self.params).await?;
        if !self.migrated.load(Ordering::Acquire) {
            pg::migrate(&mut c).await.map_err(|e| e.to_string())?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(c)
    }

    async fn run_writer(self: Arc<Self>, writer: usize, mut rx: mpsc::Receiver<Job>) {
        let mut stop = self.stop.subscribe();
        let mut conn: Option<(Client, Instant)> = None;
        let mut failures = backoff();
        loop {
            let first = tokio::select! {
                j = rx.recv() => match j { Some(j) => j, None => break },
                _ = stop.changed() => break,
            };
            let mut jobs = vec![first];
            while jobs.len() < self.settings.batch_size {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let (events, replies) = jobs.into_iter().map(|j| (j.event, j.reply)).unzip();
            self.deliver(writer, events, replies, &mut conn, &mut failures, &mut stop)
                .await;
        }
        rx.close();
        while let Ok(j) = rx.try_recv() {
            let _ = j.reply.send(Err(SubmitError::Busy(
                "the event store is being switched".into(),
            )));
        }
    }

    /// Stores one batch: in PostgreSQL, or (fallen back) in the embedded store and journal.
    /// Returns once every event in it has its answer (`replies`, in the same order).
    async fn deliver(
        &self,
        writer: usize,
        events: Vec<QueuedEvent>,
        replies: Vec<Reply>,
        conn: &mut Option<(Client, Instant)>,
        failures: &mut Backoff,
        stop: &mut watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return answer(
                    replies,
                    Err(SubmitError::Busy(
                        "the event store is being switched".into(),
                    )),
                );
            }
            {
                let _shared = self.route.read().await;
                if self.mode() == Mode::Fallback {
                    let store = self.store.clone();
                    let n = events.len() as u64;
                    let r = tokio::task::spawn_blocking(move || {
                        store.record_events_for_replay(&events)
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    if r.is_ok() {
                        failures.reset();
                        self.metrics
                            .pg_fallback_events
                            .fetch_add(n, Ordering::Relaxed);
                    }
                    return answer_each(replies, r.map_err(SubmitError::Failed));
                }
            }
            if !self.drained.load(Ordering::Acquire) {
                // Strict, with a journal from an earlier outage: the probe replays it first.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            match self.write(writer, conn, &events).await {
                Ok(values) => {
                    failures.reset();
                    self.set_mode(Mode::Connecting, Mode::Active);
                    return answer_each(replies, Ok(values));
                }
                Err(WriteError::Data(e)) if replies.len() > 1 => {
                    // One bad event must not sink the others: store them one by one.
                    tracing::warn!(store = %self.settings.name, error = %e, events = replies.len(), "PostgreSQL refused a batch; storing its events one by one");
                    for (event, reply) in events.into_iter().zip(replies) {
                        Box::pin(self.deliver(
                            writer,
                            vec![event],
                            vec![reply],
                            conn,
                            failures,
                            stop,
                        ))
                        .await;
                    }
                    return;
                }
                Err(WriteError::Data(e)) => {
                    tracing::error!(store = %self.settings.name, error = %e, "PostgreSQL refused an event; it was not stored");
                    return answer(
                        replies,
                        Err(SubmitError::Failed(format!(
                            "PostgreSQL refused the event: {e}"
                        ))),
                    );
                }
                Err(WriteError::Unavailable(e)) => {
                    *conn = None;
                    let wait = failures.next_delay();
                    self.note_failure(&e);
                    tracing::warn!(store = %self.settings.name, target = %self.target, error = %e, attempt = failures.failures(), strict = self.settings.strict, "PostgreSQL event store write failed; retrying");
                    if failures.failures() >= ATTEMPTS {
                        self.fall_back(&e);
                        if self.mode() == Mode::Fallback {
                            continue;
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    async fn write(
        &self,
        writer: usize,
        conn: &mut Option<(Client, Instant)>,
        events: &[QueuedEvent],
    ) -> Result<Vec<String>, WriteError> {
        let expired = |born: &Instant| {
            self.settings
                .max_conn_lifetime
                .is_some_and(|l| born.elapsed() > l)
        };
        if conn
            .as_ref()
            .is_some_and(|(c, born)| c.is_closed() || expired(born))
        {
            *conn = None;
        }
        if conn.is_none() {
            *conn = Some((
                self.open().await.map_err(WriteError::Unavailable)?,
                Instant::now(),
            ));
        }
        let Some((client, _)) = conn.as_mut() else {
            return Err(WriteError::Unavailable("no connection".into()));
        };
        let mut cache = self.caches[writer].lock().await;
        within(pg::write_batch_cached(client, events, &mut cache))
            .await
            .map_err(|e| {
                if e.is_data_error() {
                    WriteError::Data(e.to_string())
                } else {
                    WriteError::Unavailable(e.to_string())
                }
            })
    }

    async fn run_probe(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        let mut failures = backoff();
        loop {
            let probe = async {
                let c = self.open().await?;
                pg::check_health(&c).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(c)
            };
            let result = match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
            };
            let wait = match result {
                Ok(mut client) => {
                    if failures.failures() > 0 {
                        tracing::info!(store = %self.settings.name, target = %self.target, "PostgreSQL event store answers again");
                    }
                    failures.reset();
                    self.healthy.store(true, Ordering::Release);
                    if self.mode() == Mode::Fallback || !self.drained.load(Ordering::Acquire) {
                        if let Err(e) = self.replay(&mut client).await {
                            self.note_failure(&e);
                            tracing::warn!(store = %self.settings.name, error = %e, "replay into PostgreSQL interrupted; it resumes at the next probe");
                        }
                    } else {
                        self.set_mode(Mode::Connecting, Mode::Active);
                    }
                    PROBE_INTERVAL
                }
                Err(e) => {
                    let wait = failures.next_delay();
                    let failed = failures.failures();
                    self.note_failure(&e);
                    if failed == 1 || failed.is_multiple_of(30) {
                        tracing::warn!(store = %self.settings.name, target = %self.target, error = %e, "PostgreSQL event store health check failed");
                    }
                    if failed >= ATTEMPTS {
                        self.fall_back(&e);
                    }
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Replays the journal into PostgreSQL in order, then makes PostgreSQL the event store
    /// again. The last round runs with the route held alone, so no event is journaled after
    /// it. Each chunk moves the watermark in its own transaction: an interrupted replay
    /// resumes where it stopped and never applies an event twice. Every call has a time
    /// limit, so the route is never held for long.
    async fn replay(&self, client: &mut Client) -> Result<(), String> {
        let started = Instant::now();
        let mut total = 0u64;
        for alone in [false, true] {
            let _route = if alone {
                Some(self.route.write().await)
            } else {
                None
            };
            loop {
                let done =
                    tokio::time::timeout(CALL_TIMEOUT, pg::replay_watermark(client, &self.source))
                        .await
                        .map_err(|_| CallError::Timeout.to_string())?
                        .map_err(|e| e.to_string())?;
                let store = self.store.clone();
                let size = self.settings.batch_size;
                let chunk = tokio::task::spawn_blocking(move || store.replay_batch(done, size))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                let Some(last) = chunk.last().map(|(seq, _)| *seq) else {
                    let _ = self.store.replay_done(done);
                    break;
                };
                let events: Vec<QueuedEvent> = chunk.iter().map(|(_, q)| q.clone()).collect();
                match within(pg::write_batch(client, &events, Some((&self.source, last)))).await {
                    Ok(_) => {}
                    Err(e) if e.is_data_error() => {
                        // Find the event PostgreSQL refuses: this stretch one at a time.
                        for (seq, ev) in &chunk {
                            match within(pg::write_batch(
                                client,
                                std::slice::from_ref(ev),
                                Some((&self.source, *seq)),
                            ))
                            .await
                            {
                                Ok(_) => {}
                                Err(e) if e.is_data_error() => {
                                    // It can never be stored there; it stays in the embedded store.
                                    tracing::error!(store = %self.settings.name, seq, error = %e, "PostgreSQL refused a journaled event; skipped (it remains in the embedded store)");
                                    within(pg::write_batch(
                                        client,
                                        &[],
                                        Some((&self.source, *seq)),
                                    ))
                                    .await
                                    .map_err(|e| e.to_string())?;
                                }
                                Err(e) => return Err(e.to_string()),
                            }
                        }
                    }
                    Err(e) => return Err(e.to_string()),
                }
                let _ = self.store.replay_done(last);
                total += events.len() as u64;
                self.metrics
                    .pg_replayed_events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
            }
            if alone {
                self.drained.store(true, Ordering::Release);
                self.mode.store(Mode::Active as u8, Ordering::Release);
            }
        }
        if total > 0 {
            tracing::info!(store = %self.settings.name, target = %self.target, replayed = total, seconds = started.elapsed().as_secs_f64(),
                "replayed the events stored during the outage into PostgreSQL; it is the event store again");
        }
        Ok(())
    }

    /// Tells the writer owning a check that its event was deleted, so that its next event
    /// starts a new history rather than folding onto the deleted one.
    pub async fn forget(&self, namespace: &str, entity: &str, check: &str) {
        let i = writer_for(namespace, entity, check, self.writers.len());
        self.caches[i].lock().await.forget(namespace, entity, check);
    }

    /// A read connection (from the pool of `pool_size - batch_workers`).
    pub async fn reader(&self) -> Result<PooledClient<'_>, String> {
        self.reads.get().await
    }
}

/// Which writer a check's events go to, so that they stay in order.
fn writer_for(namespace: &str, entity: &str, check: &str, writers: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    namespace.hash(&mut h);
    entity.hash(&mut h);
    check.hash(&mut h);
    (h.finish() % writers.max(1) as u64) as usize
}

fn answer(replies: Vec<Reply>, r: Result<Option<String>, SubmitError>) {
    for j in replies {
        let _ = j.send(r.clone());
    }
}

fn answer_each(replies: Vec<Reply>, r: Result<Vec<String>, SubmitError>) {
    match r {
        Ok(values) => {
            for (j, v) in replies.into_iter().zip(values) {
                let _ = j.send(Ok(Some(v)));
            }
        }
        Err(e) => answer(replies, Err(e)),
    }
}

/// Read connections: at most `size` at once, up to `max_idle` kept open between uses, none
/// kept past `max_lifetime`.
///
/// Hand-written rather than deadpool-postgres: deadpool's custom-connect hook must fail with a
/// `tokio_postgres::Error`, and Ward's libpq layer fails before the driver is involved (a key
/// file with group access, a missing root certificate), with its own messages.
struct ReadPool {
    params: ConnParams,
    idle: Mutex<Vec<(Client, Instant)>>,
    permits: Arc<Semaphore>,
    max_idle: usize,
    max_lifetime: Option<Duration>,
}

/// A pooled read connection; back to the pool when dropped (if still open and wanted).
pub struct PooledClient<'a> {
    client: Option<(Client, Instant)>,
    pool: &'a ReadPool,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledClient<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        match &self.client {
            Some((c, _)) => c,
            None => unreachable!("a PooledClient holds its client until dropped"),
        }
    }
}

impl Drop for PooledClient<'_> {
    fn drop(&mut self) {
        if let Some((c, born)) = self.client.take() {
            if !c.is_closed() && !self.pool.expired(&born) {
                if let Ok(mut idle) = self.pool.idle.lock() {
                    if idle.len() < self.pool.max_idle {
                        idle.push((c, born));
                    }
                }
            }
        }
    }
}

impl ReadPool {
    fn new(
        params: ConnParams,
        size: usize,
        max_idle: usize,
        max_lifetime: Option<Duration>,
    ) -> Self {
        ReadPool {
            params,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
            max_idle,
            max_lifetime,
        }
    }

    fn expired(&self, born: &Instant) -> bool {
        self.max_lifetime.is_some_and(|l| born.elapsed() > l)
    }

    async fn get(&self) -> Result<PooledClient<'_>, String> {
        let permit = tokio::time::timeout(CONNECT_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| "every read connection is busy".to_string())?
            .map_err(|_| "the read pool is closed".to_string())?;
        loop {
            let next = self.idle.lock().ok().and_then(|mut i| i.pop());
            match next {
                Some((c, born)) if !c.is_closed() && !self.expired(&born) => {
                    return Ok(PooledClient {
                        client: Some((c, born)),
                        pool: self,
                        _permit: permit,
                    })
                }
                Some(_) => continue,
                None => break,
            }
        }
        let c = super::connect(&self.params).await?;
        Ok(PooledClient {
            client: Some((c, Instant::now())),
            pool: self,
            _permit: permit,
        })
    }
}
