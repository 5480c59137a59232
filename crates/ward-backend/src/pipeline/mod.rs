//! The event pipeline: what happens to an event after it is stored, as Sensu's pipelined.
//!
//! [`Pipeline::handle`] takes a stored event and never blocks: an event that names
//! handlers or pipelines is queued (a bounded queue: when it is full the event is not
//! handled — it is already stored — and that is logged and counted). One Tokio task works
//! the queue: for each event it builds the workflows ([`plan`]: the Pipelines it names and
//! the legacy pipeline of `check.handlers`), applies each workflow's filters ([`filter`]:
//! the built-ins and EventFilters with JavaScript expressions), makes the handler's input
//! ([`mutate`]: `json`, `only_check_output`, JavaScript and pipe mutators) and runs the
//! handler ([`run`]), at most [`MAX_RUNNING`] at a time. While that many run, the worker
//! waits, the queue fills, and new events are dropped: storage never waits on handlers.
//! Handlers, filters, mutators and pipelines are read from memory ([`config`]), reloaded
//! after each API write to them.
//!
//! As in Sensu, no filter applies unless named: a handler without `is_incident` gets
//! every event, OK ones included. Unlike Sensu, a step that fails stops only its own
//! workflow (Sensu gives up on the rest of the pipeline), a set's own `filters` apply to its
//! members (Sensu ignores them), and handlers run concurrently.
//!
//! - `pipe`: `sh -c COMMAND` in its own process group, the payload on stdin, stdout
//!   discarded, `PATH` and the handler's `env_vars` as its whole environment (not the
//!   backend's, which may hold the env file's PG* secrets), killed (the whole group) after
//!   `timeout` seconds — [`DEFAULT_TIMEOUT`] when 0 or absent. A non-zero exit, a failure
//!   to start or a timeout is logged with the handler, entity and check and the first line
//!   of stderr, and counted.
//! - `tcp` / `udp`: the payload written to `socket.host:socket.port` (TCP: connect,
//!   write, close, within `timeout`; UDP: one datagram).
//! - `TCPStreamHandler` (pipeline/v1, in Pipelines only): each payload a line on a pool of
//!   persistent, optionally TLS connections ([`stream`]).
//! - `set`: its `handlers`, recursively; each handler runs once per event however many
//!   sets name it. Unknown names, cycles and sets nested deeper than [`MAX_SET_DEPTH`] are
//!   logged once per event and not followed.
//! - `runtime_assets` of pipe handlers, pipe mutators and filters are installed first
//!   (`ward_assets`), `secrets` resolved from the backend's environment (Secrets of the
//!   `env` provider); when either fails the step does not run: Ward never runs one
//!   without something it asked for.

mod config;
mod filter;
mod mutate;
mod plan;
mod queue;
mod run;
mod stream;
#[cfg(test)]
mod tests;

pub use queue::{EventReads, Pipeline};

use std::sync::atomic::{AtomicU64, Ordering};

/// Events waiting to be handled; beyond this, new events are dropped (for handling only).
pub const QUEUE: usize = 1024;
/// Handlers running at once.
pub const MAX_RUNNING: usize = 32;
/// Events taken from the queue at once, filtered and mutated together.
pub const BATCH: usize = 256;
/// Batches whose filters and JavaScript mutators are evaluated at once (each on a thread of
/// the blocking pool, with its own JavaScript sandbox).
pub const PLANNERS: usize = 4;
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
    /// A filter expression threw or ran past its limit, or a filter could not be judged.
    Filter,
    /// A mutator failed: the handler did not run.
    Mutator,
    /// A runtime asset could not be fetched, checked or unpacked: the step did not run.
    Asset,
    /// A secret could not be resolved: the step did not run.
    Secret,
}

impl Reason {
    const ALL: [Reason; 13] = [
        Reason::Spawn,
        Reason::Exit,
        Reason::Timeout,
        Reason::Socket,
        Reason::Unsupported,
        Reason::Config,
        Reason::NotFound,
        Reason::Set,
        Reason::Store,
        Reason::Filter,
        Reason::Mutator,
        Reason::Asset,
        Reason::Secret,
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
            Reason::Filter => "filter",
            Reason::Mutator => "mutator",
            Reason::Asset => "asset",
            Reason::Secret => "secret",
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    runs: AtomicU64,
    dropped: AtomicU64,
    filtered: AtomicU64,
    /// Filter expressions evaluated.
    evaluations: AtomicU64,
    /// Unix second of the last rate-limited log line.
    last_limited_log: AtomicU64,
    failures: [AtomicU64; Reason::ALL.len()],
    /// Unix second of the last log line of each reason (one a second at most).
    last_failure_log: [AtomicU64; Reason::ALL.len()],
    /// Unix second of the last "queue full" log line (one a second at most).
    last_drop_log: AtomicU64,
}

impl Counters {
    fn failed(&self, r: Reason) {
        self.failures[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `log` unless a rate-limited line was logged this second already.
    fn log_limited(&self, log: impl FnOnce()) {
        if once_a_second(&self.last_limited_log) {
            log();
        }
    }

    #[cfg(test)]
    fn failures(&self, r: Reason) -> u64 {
        self.failures[r as usize].load(Ordering::Relaxed)
    }
}

/// True at most once a second for `last` (the Unix second it last was).
fn once_a_second(last: &AtomicU64) -> bool {
    let now = u64::try_from(ward_types::unix_now()).unwrap_or(0);
    let seen = last.load(Ordering::Relaxed);
    now > seen
        && last
            .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The backend's own entity, as asset build filters see it (`entity.system.os`, …).
fn backend_entity() -> String {
    static ENTITY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENTITY
        .get_or_init(|| {
            let f = ward_io::host::facts();
            serde_json::json!({
                "name": f.hostname,
                "entity_class": "backend",
                "system": {
                    "hostname": f.hostname, "os": f.os, "platform": f.platform,
                    "platform_family": f.platform_family,
                    "platform_version": f.platform_version, "arch": f.arch,
                },
            })
            .to_string()
        })
        .clone()
}

/// What the log lines of one event carry.
struct EventCtx {
    namespace: String,
    entity: String,
    check: String,
}

impl EventCtx {
    /// Counts a failure and logs it: one line a second per reason at most (a missing handler
    /// or a failing command repeats with every event; the counters have them all).
    fn fail(&self, counters: &Counters, handler: &str, reason: Reason, what: &str, stderr: &str) {
        counters.failed(reason);
        if !once_a_second(&counters.last_failure_log[reason as usize]) {
            return;
        }
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
#[cfg(test)]
mod tests_docs;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_stream;
