//! Events in: the bounded queue, the worker that plans and starts each event's handlers,
//! and the pipeline's metrics.

use super::plan::plan;
use super::run::execute;
use super::{Counters, EventCtx, Reason, MAX_RUNNING, QUEUE};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use ward_store::Store;

struct Job {
    namespace: String,
    event: Value,
}

/// The event pipeline. Create it inside a Tokio runtime; dropping it stops the worker once
/// the queue is empty (running handlers finish).
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    pub(super) counters: Arc<Counters>,
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
            let now = u64::try_from(ward_types::unix_now()).unwrap_or(0);
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

pub(super) fn name_of(event: &Value, part: &str) -> String {
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
