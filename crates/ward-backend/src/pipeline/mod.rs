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
//!
//! The code: [`queue`] takes events in and works the queue, [`plan`] turns an event into the
//! handler runs it needs, [`run`] runs them (pipe handlers through `ward_exec`, the
//! subprocess runner the agent's checks use too).

mod plan;
mod queue;
mod run;
#[cfg(test)]
mod tests;

pub use queue::Pipeline;

use std::sync::atomic::{AtomicU64, Ordering};

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
