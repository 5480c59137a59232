//! The event pipeline: what happens to an event after it is stored.
//!
//! [`Pipeline::handle`] takes a stored event and never blocks: it applies the built-in
//! `is_incident` filter on the spot and queues the rest (a bounded queue: when it is full
//! the event is not handled — it is already stored — and that is logged and counted). One
//! Tokio task works the queue: it looks up the check's `handlers` in the embedded store,
//! expands `set` handlers, applies each handler's filters and runs it, at most
//! [`MAX_RUNNING`] handlers at a time. While that many run, the worker waits, the queue
//! fills, and new events are dropped: storage never waits on handlers.
//!
//! - `is_incident` always applies: an event reaches handlers when its status is not 0, or
//!   when it is a resolution (status 0 and the previous entry of `check.history` not 0).
//! - `pipe`: `sh -c COMMAND` in its own process group, the event JSON on stdin, stdout
//!   discarded, `PATH` and the handler's `env_vars` as its whole environment (not the
//!   backend's, which may hold the env file's PG* secrets), killed (the whole group) after
//!   `timeout` seconds — [`DEFAULT_TIMEOUT`] when 0 or absent. A non-zero exit, a failure
//!   to start or a timeout is logged with the handler, entity and check and the first line
//!   of stderr, and counted.
//! - `tcp` / `udp`: the event JSON written to `socket.host:socket.port` (TCP: connect,
//!   write, close, within `timeout`; UDP: one datagram).
//! - `set`: its `handlers`, recursively; each handler runs once per event however many
//!   sets name it. Unknown names, cycles and sets nested deeper than [`MAX_SET_DEPTH`] are
//!   logged once per event and not followed.
//! - Filters: `is_incident` (always on), `not_silenced` (stops events whose
//!   `check.is_silenced` is true) and `has_metrics` (stops events without `metrics`) are
//!   built in. A handler naming any other filter, a mutator other than `json` or
//!   `only_check_output`, `runtime_assets` or `secrets` is skipped and logged: Ward never
//!   runs a handler without something it asked for.

use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use ward_store::Store;
use ward_types::{Kind, Resource};

/// Events waiting to be handled; beyond this, new events are dropped (for handling only).
pub const QUEUE: usize = 1024;
/// Handlers running at once.
pub const MAX_RUNNING: usize = 32;
/// Seconds a `pipe` or `tcp` handler may take when its `timeout` is 0 or absent.
pub const DEFAULT_TIMEOUT: u64 = 60;
/// How deep `set` handlers may nest (a check's own `handlers` are depth 0).
pub const MAX_SET_DEPTH: usize = 4;
/// The longest stderr line kept for the log, in bytes.
const STDERR_LINE: usize = 512;
/// `PATH` for handlers when the backend has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a handler failed or could not run: the `reason` label of
/// `ward_handler_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// `sh` could not be started.
    Spawn,
    /// The command exited non-zero or was killed by a signal.
    Exit,
    /// Killed after its timeout (pipe), or the socket did not answer in time (tcp/udp).
    Timeout,
    /// Connecting or writing to a tcp/udp handler's socket failed.
    Socket,
    /// The handler asks for something Ward does not do yet (named filter, mutator,
    /// runtime assets, secrets).
    Unsupported,
    /// The handler is incomplete: a pipe without a command, a tcp/udp without a socket.
    Config,
    /// No handler of that name in the event's namespace.
    NotFound,
    /// A set that names itself (directly or not) or nests too deeply.
    Set,
    /// The store could not be read.
    Store,
}

impl Reason {
    const ALL: [Reason; 9] = [
        Reason::Spawn,
        Reason::Exit,
        Reason::Timeout,
        Reason::Socket,
        Reason::Unsupported,
        Reason::Config,
        Reason::NotFound,
        Reason::Set,
        Reason::Store,
    ];

    fn label(self) -> &'static str {
        match self {
            Reason::Spawn => "spawn",
            Reason::Exit => "exit",
            Reason::Timeout => "timeout",
            Reason::Socket => "socket",
            Reason::Unsupported => "unsupported",
            Reason::Config => "config",
            Reason::NotFound => "not_found",
            Reason::Set => "set",
            Reason::Store => "store",
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    runs: AtomicU64,
    dropped: AtomicU64,
    filtered: AtomicU64,
    failures: [AtomicU64; Reason::ALL.len()],
    /// Unix second of the last "queue full" log line (one a second at most).
    last_drop_log: AtomicU64,
}

impl Counters {
    fn failed(&self, r: Reason) {
        self.failures[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn failures(&self, r: Reason) -> u64 {
        self.failures[r as usize].load(Ordering::Relaxed)
    }
}

struct Job {
    namespace: String,
    event: Value,
}

/// The event pipeline. Create it inside a Tokio runtime; dropping it stops the worker once
/// the queue is empty (running handlers finish).
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

impl Pipeline {
    /// A pipeline with a queue of [`QUEUE`] events and [`MAX_RUNNING`] handlers at once.
    /// Must be called inside a Tokio runtime (it spawns the worker task).
    pub fn new(store: Arc<Store>) -> Arc<Pipeline> {
        Self::with_limits(store, QUEUE, MAX_RUNNING)
    }

    /// [`Pipeline::new`] with another queue size and number of handlers running at once
    /// (each at least 1).
    pub fn with_limits(store: Arc<Store>, queue: usize, max_running: usize) -> Arc<Pipeline> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let counters = Arc::new(Counters::default());
        tokio::spawn(worker(
            rx,
            store,
            counters.clone(),
            Arc::new(Semaphore::new(max_running.max(1))),
        ));
        Arc::new(Pipeline { tx, counters })
    }

    /// Hands a stored event to the pipeline. Never blocks or delays the caller: events
    /// without handlers are ignored, `is_incident` is applied here, and the rest is queued;
    /// when the queue is full the event is not handled (it is stored), logged and counted.
    pub fn handle(&self, namespace: &str, event: &Value) {
        let has_handlers = event
            .pointer("/check/handlers")
            .and_then(Value::as_array)
            .is_some_and(|h| h.iter().any(Value::is_string));
        if !has_handlers {
            return;
        }
        if !is_incident(event) {
            self.counters.filtered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let namespace = if namespace.is_empty() {
            event_namespace(event)
        } else {
            namespace.to_string()
        };
        let job = Job {
            namespace,
            event: event.clone(),
        };
        if let Err(e) = self.tx.try_send(job) {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let job = match &e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            let now = unix_now();
            let last = self.counters.last_drop_log.load(Ordering::Relaxed);
            if now > last
                && self
                    .counters
                    .last_drop_log
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let why = match &e {
                    mpsc::error::TrySendError::Full(_) => "the handler queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the pipeline has stopped",
                };
                tracing::warn!(
                    namespace = %job.namespace,
                    entity = %name_of(&job.event, "entity"),
                    check = %name_of(&job.event, "check"),
                    dropped_total = dropped,
                    "{why}: the event is stored but not handled (logged at most once a second; see ward_handler_dropped_total)"
                );
            }
        }
    }

    /// Appends the pipeline's counters in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        let c = &self.counters;
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        };
        counter(
            out,
            "ward_handler_runs_total",
            "Handler runs started (pipe, tcp, udp).",
            &c.runs,
        );
        out.push_str("# HELP ward_handler_failures_total Handler runs that failed, and handlers that could not be run, by reason.\n# TYPE ward_handler_failures_total counter\n");
        for r in Reason::ALL {
            out.push_str(&format!(
                "ward_handler_failures_total{{reason=\"{}\"}} {}\n",
                r.label(),
                c.failures[r as usize].load(Ordering::Relaxed)
            ));
        }
        counter(
            out,
            "ward_handler_dropped_total",
            "Stored events not handled because the handler queue was full.",
            &c.dropped,
        );
        counter(
            out,
            "ward_handler_filtered_total",
            "Events with handlers stopped by is_incident, and handlers a built-in filter skipped.",
            &c.filtered,
        );
    }
}

/// Sensu's `is_incident`: a non-zero status, or a resolution (status 0 after a non-zero
/// one: the previous entry of the history).
fn is_incident(event: &Value) -> bool {
    let status = event
        .pointer("/check/status")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if status != 0 {
        return true;
    }
    let history = event
        .pointer("/check/history")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    history.len() >= 2
        && history[history.len() - 2]
            .get("status")
            .and_then(Value::as_u64)
            .is_some_and(|s| s != 0)
}

fn name_of(event: &Value, part: &str) -> String {
    event
        .get(part)
        .and_then(|p| p.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn event_namespace(event: &Value) -> String {
    ["/entity/metadata/namespace", "/check/metadata/namespace"]
        .iter()
        .find_map(|p| event.pointer(p).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the log lines of one event carry.
struct EventCtx {
    namespace: String,
    entity: String,
    check: String,
}

impl EventCtx {
    fn fail(&self, counters: &Counters, handler: &str, reason: Reason, what: &str, stderr: &str) {
        counters.failed(reason);
        if stderr.is_empty() {
            tracing::warn!(
                namespace = %self.namespace,
                handler = %handler,
                entity = %self.entity,
                check = %self.check,
                reason = reason.label(),
                "handler: {what}"
            );
        } else {
            tracing::warn!(
                namespace = %self.namespace,
                handler = %handler,
                entity = %self.entity,
                check = %self.check,
                reason = reason.label(),
                stderr = %stderr,
                "handler: {what}"
            );
        }
    }
}

/// A handler ready to run.
struct Run {
    name: String,
    action: Action,
    payload: Arc<Vec<u8>>,
    timeout: Duration,
}

enum Action {
    Pipe {
        command: String,
        env: Vec<(String, String)>,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Udp {
        host: String,
        port: u16,
    },
}

async fn worker(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<Store>,
    counters: Arc<Counters>,
    running: Arc<Semaphore>,
) {
    while let Some(job) = rx.recv().await {
        let ctx = Arc::new(EventCtx {
            entity: name_of(&job.event, "entity"),
            check: name_of(&job.event, "check"),
            namespace: job.namespace,
        });
        // The store is read synchronously: off the runtime's threads.
        let planned = {
            let (store, counters, ctx) = (store.clone(), counters.clone(), ctx.clone());
            tokio::task::spawn_blocking(move || plan(&store, &counters, &ctx, &job.event)).await
        };
        let runs = match planned {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the pipeline could not plan an event's handlers");
                continue;
            }
        };
        for run in runs {
            let Ok(permit) = running.clone().acquire_owned().await else {
                return;
            };
            let (counters, ctx) = (counters.clone(), ctx.clone());
            tokio::spawn(async move {
                execute(run, &counters, &ctx).await;
                drop(permit);
            });
        }
    }
}

/// Resolves an event's handlers: sets expanded, filters applied, each handler once.
fn plan(store: &Store, counters: &Counters, ctx: &EventCtx, event: &Value) -> Vec<Run> {
    let names: Vec<String> = event
        .pointer("/check/handlers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut x = Expander {
        store,
        counters,
        ctx,
        event,
        seen: HashSet::new(),
        path: Vec::new(),
        logged: HashSet::new(),
        leaves: Vec::new(),
    };
    x.expand(&names, 0);
    let leaves = std::mem::take(&mut x.leaves);
    let mut json: Option<Arc<Vec<u8>>> = None;
    let mut runs = Vec::new();
    for r in leaves {
        let name = r.metadata.name.clone();
        let payload = match r.spec.get("mutator").and_then(Value::as_str).unwrap_or("") {
            "" | "json" => json
                .get_or_insert_with(|| Arc::new(serde_json::to_vec(event).unwrap_or_default()))
                .clone(),
            "only_check_output" => Arc::new(
                event
                    .pointer("/check/output")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .as_bytes()
                    .to_vec(),
            ),
            other => {
                x.problem(
                    &name,
                    Reason::Unsupported,
                    format!("mutator {other:?} is not supported yet (only json and only_check_output); the handler is skipped"),
                );
                continue;
            }
        };
        let timeout = Duration::from_secs(
            r.spec
                .get("timeout")
                .and_then(Value::as_u64)
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_TIMEOUT),
        );
        let ty = r.spec.get("type").and_then(Value::as_str).unwrap_or("");
        let action = match ty {
            "pipe" => {
                let command = r
                    .spec
                    .get("command")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if command.is_empty() {
                    x.problem(
                        &name,
                        Reason::Config,
                        "a pipe handler without a command".into(),
                    );
                    continue;
                }
                let mut env = Vec::new();
                for kv in string_list(&r.spec, "env_vars") {
                    match kv.split_once('=') {
                        Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
                        // A warning, not a failure: the handler runs without it.
                        _ => tracing::warn!(
                            namespace = %ctx.namespace,
                            handler = %name,
                            "handler: an env_vars entry ({} bytes, not shown: it may hold a secret) is not KEY=VALUE; it is left out",
                            kv.len()
                        ),
                    }
                }
                Action::Pipe { command, env }
            }
            "tcp" | "udp" => {
                let host = r
                    .spec
                    .get("socket")
                    .and_then(|s| s.get("host"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let port = r
                    .spec
                    .get("socket")
                    .and_then(|s| s.get("port"))
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p > 0);
                let Some(port) = port.filter(|_| !host.is_empty()) else {
                    x.problem(
                        &name,
                        Reason::Config,
                        format!("a {ty} handler needs socket.host and socket.port (1-65535); unsupported without them"),
                    );
                    continue;
                };
                let host = host.to_string();
                if ty == "tcp" {
                    Action::Tcp { host, port }
                } else {
                    Action::Udp { host, port }
                }
            }
            other => {
                x.problem(
                    &name,
                    Reason::Config,
                    format!("{other:?} is not a handler type Ward runs"),
                );
                continue;
            }
        };
        runs.push(Run {
            name,
            action,
            payload,
            timeout,
        });
    }
    runs
}

fn string_list<'a>(spec: &'a serde_json::Map<String, Value>, key: &str) -> Vec<&'a str> {
    spec.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

struct Expander<'a> {
    store: &'a Store,
    counters: &'a Counters,
    ctx: &'a EventCtx,
    event: &'a Value,
    /// Handlers and sets already taken for this event.
    seen: HashSet<String>,
    /// The sets being expanded, outermost first.
    path: Vec<String>,
    /// Problems already logged for this event.
    logged: HashSet<(String, &'static str)>,
    leaves: Vec<Resource>,
}

impl Expander<'_> {
    /// Logs and counts a problem with one handler, once per event.
    fn problem(&mut self, handler: &str, reason: Reason, what: String) {
        if self.logged.insert((handler.to_string(), reason.label())) {
            self.ctx.fail(self.counters, handler, reason, &what, "");
        }
    }

    fn expand(&mut self, names: &[String], depth: usize) {
        for name in names {
            if self.path.contains(name) {
                let cycle = format!("{} -> {name}", self.path.join(" -> "));
                self.problem(
                    name,
                    Reason::Set,
                    format!("handler sets form a cycle ({cycle}); not followed"),
                );
                continue;
            }
            if !self.seen.insert(name.clone()) {
                continue;
            }
            let r = match self.store.get(Kind::Handler, &self.ctx.namespace, name) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    self.problem(
                        name,
                        Reason::NotFound,
                        format!("no handler {name:?} in namespace {:?}", self.ctx.namespace),
                    );
                    continue;
                }
                Err(e) => {
                    self.problem(name, Reason::Store, format!("cannot read the handler: {e}"));
                    continue;
                }
            };
            if !self.passes(&r) {
                continue;
            }
            if r.spec.get("type").and_then(Value::as_str) == Some("set") {
                if depth >= MAX_SET_DEPTH {
                    self.problem(
                        name,
                        Reason::Set,
                        format!(
                            "handler sets nest deeper than {MAX_SET_DEPTH} levels; not followed"
                        ),
                    );
                    continue;
                }
                let members: Vec<String> = string_list(&r.spec, "handlers")
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                self.path.push(name.clone());
                self.expand(&members, depth + 1);
                self.path.pop();
            } else {
                self.leaves.push(r);
            }
        }
    }

    /// The handler's filters and what it needs: false when it must not run for this event.
    fn passes(&mut self, r: &Resource) -> bool {
        let name = &r.metadata.name;
        for field in ["runtime_assets", "secrets"] {
            let present = match r.spec.get(field) {
                None | Some(Value::Null) => false,
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if present {
                self.problem(
                    name,
                    Reason::Unsupported,
                    format!("{field} are not supported yet; the handler is skipped"),
                );
                return false;
            }
        }
        for f in string_list(&r.spec, "filters") {
            let pass = match f {
                // Applied to every event before this point.
                "is_incident" => true,
                "not_silenced" => {
                    self.event
                        .pointer("/check/is_silenced")
                        .and_then(Value::as_bool)
                        != Some(true)
                }
                "has_metrics" => self.event.get("metrics").is_some_and(|m| !m.is_null()),
                other => {
                    self.problem(
                        name,
                        Reason::Unsupported,
                        format!("filter {other:?}: named filters are not supported yet (built in: is_incident, not_silenced, has_metrics); the handler is skipped"),
                    );
                    return false;
                }
            };
            if !pass {
                self.counters.filtered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(handler = %name, filter = f, entity = %self.ctx.entity, check = %self.ctx.check, "filtered");
                return false;
            }
        }
        true
    }
}

async fn execute(run: Run, counters: &Counters, ctx: &EventCtx) {
    counters.runs.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let result = match run.action {
        Action::Pipe { command, env } => {
            let (payload, timeout) = (run.payload.clone(), run.timeout);
            match tokio::task::spawn_blocking(move || run_pipe(&command, &env, timeout, payload))
                .await
            {
                Ok(r) => r,
                Err(e) => Err(Failed {
                    reason: Reason::Spawn,
                    what: format!("the handler's thread failed: {e}"),
                    stderr: String::new(),
                }),
            }
        }
        Action::Tcp { host, port } => {
            send_socket(false, &host, port, run.timeout, &run.payload).await
        }
        Action::Udp { host, port } => {
            send_socket(true, &host, port, run.timeout, &run.payload).await
        }
    };
    match result {
        Ok(()) => {
            tracing::debug!(handler = %run.name, entity = %ctx.entity, check = %ctx.check, elapsed_ms = started.elapsed().as_millis() as u64, "handler ran")
        }
        Err(f) => ctx.fail(counters, &run.name, f.reason, &f.what, &f.stderr),
    }
}

struct Failed {
    reason: Reason,
    what: String,
    /// The first non-blank line of stderr (pipe handlers).
    stderr: String,
}

/// Runs a pipe handler to completion or its timeout (blocking).
fn run_pipe(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    payload: Arc<Vec<u8>>,
) -> Result<(), Failed> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Failed {
            reason: Reason::Spawn,
            what: format!("cannot start sh: {e}"),
            stderr: String::new(),
        })?;
    let pid = child.id();
    // stdin and stderr on their own threads: a handler that reads nothing or writes a lot
    // must not stall the wait (or the timeout).
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            // A handler may exit without reading its input: EPIPE is not a failure.
            let _ = stdin.write_all(&payload);
        });
    }
    let first_line = Arc::new(Mutex::new(String::new()));
    let (eof_tx, eof_rx) = std::sync::mpsc::channel::<()>();
    if let Some(stderr) = child.stderr.take() {
        let first_line = first_line.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                // Lines are read at most STDERR_LINE bytes at a time; the rest is drained.
                match (&mut r)
                    .take(STDERR_LINE as u64)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim();
                        if !text.is_empty() {
                            if let Ok(mut f) = first_line.lock() {
                                *f = text.to_string();
                            }
                            let _ = std::io::copy(&mut r, &mut std::io::sink());
                            break;
                        }
                    }
                }
            }
            let _ = eof_tx.send(());
        });
    } else {
        drop(eof_tx);
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(e) => {
                kill_group(pid);
                let _ = child.wait();
                return Err(Failed {
                    reason: Reason::Spawn,
                    what: format!("cannot wait for the command: {e}"),
                    stderr: String::new(),
                });
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            kill_group(pid);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    // stderr closes when the command's processes have exited; a background process that
    // keeps it open is not waited for long.
    let _ = eof_rx.recv_timeout(Duration::from_secs(1));
    let stderr = first_line.lock().map(|s| s.clone()).unwrap_or_default();
    match status {
        None => Err(Failed {
            reason: Reason::Timeout,
            what: format!(
                "killed after its {}s timeout (the whole process group)",
                timeout.as_secs()
            ),
            stderr,
        }),
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(Failed {
            reason: Reason::Exit,
            what: match s.code() {
                Some(c) => format!("the command exited with status {c}"),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    format!(
                        "the command was killed by signal {}",
                        s.signal().unwrap_or(0)
                    )
                }
            },
            stderr,
        }),
    }
}

/// SIGKILL to a process group (the pipe handler's `sh` leads its own, and is not reaped
/// yet, so the id cannot have been reused).
fn kill_group(pgid: u32) {
    let Some(pgid) = i32::try_from(pgid)
        .ok()
        .filter(|p| *p > 1)
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
}

/// Writes the payload to a tcp (connect, write, close) or udp (one datagram) handler.
async fn send_socket(
    udp: bool,
    host: &str,
    port: u16,
    timeout: Duration,
    payload: &[u8],
) -> Result<(), Failed> {
    use tokio::io::AsyncWriteExt;
    let target = format!("{host}:{port}");
    let send = async {
        if udp {
            let addr = tokio::net::lookup_host((host, port))
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other("the name has no address"))?;
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = tokio::net::UdpSocket::bind(local).await?;
            let n = s.send_to(payload, addr).await?;
            if n < payload.len() {
                return Err(std::io::Error::other(format!(
                    "sent {n} of {} bytes",
                    payload.len()
                )));
            }
        } else {
            let mut s = tokio::net::TcpStream::connect((host, port)).await?;
            s.write_all(payload).await?;
            s.shutdown().await?;
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failed {
            reason: Reason::Socket,
            what: format!("{target}: {e}"),
            stderr: String::new(),
        }),
        Err(_) => Err(Failed {
            reason: Reason::Timeout,
            what: format!("{target}: no answer within {}s", timeout.as_secs()),
            stderr: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ward_testkit::TempDir;

    fn handler(store: &Store, name: &str, spec: Value) {
        let r = ward_store::resource_from_json(json!({
            "type": "Handler", "api_version": "core/v2",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }))
        .unwrap();
        store.put(&r, false).unwrap();
    }

    /// Folds statuses through the event model, as the backend stores them.
    fn event(statuses: &[u64], handlers: &[&str], output: &str) -> Value {
        let mut prev: Option<Value> = None;
        for (i, s) in statuses.iter().enumerate() {
            let body = json!({
                "entity": {"metadata": {"name": "web-1"}},
                "check": {"metadata": {"name": "http"}, "status": s, "output": output, "handlers": handlers},
            });
            let t = 1_000 + i as i64;
            let input = ward_types::event::parse_event(&body, "default", t).unwrap();
            prev = Some(ward_types::event::apply(prev.as_ref(), &input, t));
        }
        prev.unwrap()
    }

    fn setup() -> (TempDir, Arc<Store>) {
        let dir = TempDir::new();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        (dir, store)
    }

    async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn sh_quote(p: &std::path::Path) -> String {
        format!("'{}'", p.display())
    }

    /// A pipe handler that writes its stdin to `out` (atomically, so it is complete once
    /// it exists).
    fn recorder(store: &Store, name: &str, out: &std::path::Path) {
        let tmp = out.with_extension("tmp");
        handler(
            store,
            name,
            json!({"type": "pipe", "command": format!("cat > {} && mv {} {}", sh_quote(&tmp), sh_quote(&tmp), sh_quote(out))}),
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_event_reaches_a_pipe_handler_with_its_whole_json() {
        let (dir, store) = setup();
        let out = dir.join("got.json");
        recorder(&store, "rec", &out);
        let p = Pipeline::new(store);
        // Larger than a pipe buffer: stdin is written while the handler runs.
        let ev = event(&[0, 2], &["rec"], &"x".repeat(300_000));
        p.handle("default", &ev);
        wait_for("the handler's file", 10, || out.exists()).await;
        let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(got, ev);
        wait_for("the run to end", 5, || {
            p.counters.runs.load(Ordering::Relaxed) == 1
        })
        .await;
        let mut m = String::new();
        p.render_metrics(&mut m);
        assert!(m.contains("ward_handler_runs_total 1\n"), "{m}");
        assert!(
            m.contains("ward_handler_failures_total{reason=\"exit\"} 0\n"),
            "{m}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passing_events_are_filtered_and_a_resolution_is_handled() {
        let (dir, store) = setup();
        let out = dir.join("got.json");
        recorder(&store, "rec", &out);
        let p = Pipeline::new(store);
        p.handle("default", &event(&[0], &["rec"], "ok"));
        p.handle("default", &event(&[0, 0, 0], &["rec"], "ok"));
        p.handle("default", &event(&[2, 0, 0], &["rec"], "ok"));
        assert_eq!(p.counters.filtered.load(Ordering::Relaxed), 3);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!out.exists(), "a passing event reached the handler");
        assert_eq!(p.counters.runs.load(Ordering::Relaxed), 0);
        let resolution = event(&[0, 2, 2, 0], &["rec"], "back");
        p.handle("default", &resolution);
        wait_for("the resolution", 10, || out.exists()).await;
        let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(got["check"]["status"], 0);
        assert_eq!(p.counters.filtered.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sets_expand_once_and_cycles_and_unknown_names_are_not_followed() {
        let (dir, store) = setup();
        for n in ["a", "b", "c"] {
            let f = dir.join(n);
            handler(
                &store,
                n,
                json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&f)), "env_vars": ["X=1"]}),
            );
        }
        handler(
            &store,
            "outer",
            json!({"type": "set", "handlers": ["a", "inner", "loop", "missing"]}),
        );
        handler(
            &store,
            "inner",
            json!({"type": "set", "handlers": ["b", "a", "outer"]}),
        );
        handler(
            &store,
            "loop",
            json!({"type": "set", "handlers": ["loop2", "c"]}),
        );
        handler(
            &store,
            "loop2",
            json!({"type": "set", "handlers": ["loop"]}),
        );
        let p = Pipeline::new(store);
        p.handle("default", &event(&[2], &["outer", "a"], "bad"));
        wait_for("three runs to end", 10, || {
            ["a", "b", "c"].iter().all(|n| dir.join(n).exists())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for n in ["a", "b", "c"] {
            let runs = std::fs::read_to_string(dir.join(n)).unwrap();
            assert_eq!(runs.lines().count(), 1, "{n} ran {runs:?}");
        }
        let c = &p.counters;
        assert_eq!(c.runs.load(Ordering::Relaxed), 3);
        // outer -> inner -> outer, and loop -> loop2 -> loop.
        assert_eq!(c.failures(Reason::Set), 2);
        assert_eq!(c.failures(Reason::NotFound), 1);
        assert_eq!(c.failures(Reason::Exit), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deep_sets_are_cut_and_named_filters_skip_the_handler() {
        let (dir, store) = setup();
        let f = dir.join("leaf");
        handler(
            &store,
            "leaf",
            json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&f))}),
        );
        let mut below = "leaf".to_string();
        for i in 0..=MAX_SET_DEPTH {
            let name = format!("s{i}");
            handler(&store, &name, json!({"type": "set", "handlers": [below]}));
            below = name;
        }
        let g = dir.join("filtered");
        handler(
            &store,
            "custom",
            json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&g)), "filters": ["is_incident", "my_filter"]}),
        );
        handler(
            &store,
            "quiet",
            json!({"type": "pipe", "command": format!("echo run >> {}", sh_quote(&g)), "filters": ["not_silenced", "has_metrics"]}),
        );
        let p = Pipeline::new(store);
        p.handle(
            "default",
            &event(&[2], &[below.as_str(), "custom", "quiet"], "x"),
        );
        wait_for("the problems", 10, || {
            p.counters.failures(Reason::Set) == 1
                && p.counters.failures(Reason::Unsupported) == 1
                && p.counters.filtered.load(Ordering::Relaxed) == 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!f.exists() && !g.exists());
        assert_eq!(p.counters.runs.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timeout_kills_the_process_group_and_counts() {
        let (dir, store) = setup();
        let pid_file = dir.join("bg.pid");
        handler(
            &store,
            "slow",
            json!({"type": "pipe", "timeout": 1, "command": format!("sleep 60 & echo $! > {}; echo too slow >&2; sleep 60", sh_quote(&pid_file))}),
        );
        handler(
            &store,
            "fails",
            json!({"type": "pipe", "command": "echo first words >&2; echo more >&2; exit 3"}),
        );
        let p = Pipeline::new(store);
        let started = Instant::now();
        p.handle("default", &event(&[1], &["slow", "fails"], "x"));
        wait_for("the timeout", 10, || {
            p.counters.failures(Reason::Timeout) == 1 && p.counters.failures(Reason::Exit) == 1
        })
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the group: gone (or a zombie awaiting its reaper).
        wait_for(
            "the background process to die",
            5,
            || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => true,
                Ok(s) => s
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')),
            },
        )
        .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts() {
        let (_dir, store) = setup();
        handler(&store, "h", json!({"type": "pipe", "command": "true"}));
        let p = Pipeline::with_limits(store, 2, 1);
        let ev = event(&[2], &["h"], "x");
        // The worker cannot run before this test yields: the first two fill the queue.
        for _ in 0..10 {
            p.handle("default", &ev);
        }
        assert_eq!(p.counters.dropped.load(Ordering::Relaxed), 8);
        let mut m = String::new();
        p.render_metrics(&mut m);
        assert!(m.contains("ward_handler_dropped_total 8\n"), "{m}");
        wait_for("the queued two", 10, || {
            p.counters.runs.load(Ordering::Relaxed) == 2
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tcp_and_udp_handlers_get_the_event_json() {
        let (_dir, store) = setup();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        handler(
            &store,
            "t",
            json!({"type": "tcp", "socket": {"host": "127.0.0.1", "port": tcp.local_addr().unwrap().port()}}),
        );
        handler(
            &store,
            "u",
            json!({"type": "udp", "socket": {"host": "127.0.0.1", "port": udp.local_addr().unwrap().port()}}),
        );
        handler(&store, "nosocket", json!({"type": "tcp"}));
        let p = Pipeline::new(store);
        let ev = event(&[2], &["t", "u", "nosocket"], "x");
        p.handle("default", &ev);
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            use tokio::io::AsyncReadExt;
            let (mut s, _) = tcp.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            buf
        })
        .await
        .unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&got).unwrap(), ev);
        let mut buf = vec![0u8; 65_536];
        let n = tokio::time::timeout(Duration::from_secs(10), udp.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&buf[..n]).unwrap(), ev);
        assert_eq!(p.counters.failures(Reason::Config), 1);
    }
}
