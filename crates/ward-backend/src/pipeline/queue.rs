//! Events in: the bounded queue, the worker that plans and starts each event's handlers,
//! and the pipeline's metrics.

use super::config::{Config, Snapshot};
use super::filter::Decisions;
use super::mutate::mutate;
use super::plan::workflows;
use super::run::{action, execute, Run};
use super::{Counters, EventCtx, Reason, BATCH, MAX_RUNNING, PLANNERS, QUEUE};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use ward_store::Store;
use ward_types::Kind;

struct Job {
    namespace: String,
    event: Value,
}

/// Reads the stored events for Sensu's event functions in filter expressions
/// (`sensu.FetchEvent`, …). Blocking: called on the blocking pool.
pub trait EventReads: Send + Sync {
    /// The event of ENTITY/CHECK in NAMESPACE (JSON text), None when there is none.
    fn event(&self, namespace: &str, entity: &str, check: &str) -> Result<Option<String>, String>;
    /// Up to `limit` events of NAMESPACE (JSON texts), and whether there are more.
    fn events(&self, namespace: &str, limit: usize) -> Result<(Vec<String>, bool), String>;
}

type Reads = Arc<std::sync::OnceLock<std::sync::Weak<dyn EventReads>>>;
type Cache = Arc<std::sync::OnceLock<Arc<ward_assets::Assets>>>;

/// One event's view of the event store, for its filters.
struct Lookup {
    reads: Option<Arc<dyn EventReads>>,
    namespace: String,
    entity: String,
}

impl Lookup {
    fn reads(&self) -> Result<&Arc<dyn EventReads>, String> {
        self.reads
            .as_ref()
            .ok_or_else(|| "the event store cannot be read here".to_string())
    }
}

impl ward_js::EventLookup for Lookup {
    fn entity(&self) -> &str {
        &self.entity
    }
    fn fetch(&self, entity: &str, check: &str) -> Result<Option<String>, String> {
        self.reads()?.event(&self.namespace, entity, check)
    }
    fn list(&self, limit: usize) -> Result<(Vec<String>, bool), String> {
        self.reads()?.events(&self.namespace, limit)
    }
}

/// The event pipeline. Create it inside a Tokio runtime; dropping it stops the worker once
/// the queue is empty (running handlers finish).
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    pub(super) counters: Arc<Counters>,
    config: Arc<Config>,
    store: Arc<Store>,
    reads: Reads,
    assets: Cache,
}

impl Pipeline {
    /// A pipeline with a queue of [`QUEUE`] events and [`MAX_RUNNING`] handlers at once.
    /// Must be called inside a Tokio runtime (it spawns the worker task). Reads the
    /// handlers, filters, mutators and pipelines from the store once (blocking).
    pub fn new(store: Arc<Store>) -> Arc<Pipeline> {
        Self::with_limits(store, QUEUE, MAX_RUNNING)
    }

    /// [`Pipeline::new`] with another queue size and number of handlers running at once
    /// (each at least 1).
    pub fn with_limits(store: Arc<Store>, queue: usize, max_running: usize) -> Arc<Pipeline> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let counters = Arc::new(Counters::default());
        let config = Arc::new(Config::default());
        match Snapshot::load(&store, &Snapshot::default()) {
            Ok(s) => config.set(s),
            Err(e) => {
                tracing::error!(error = %e, "pipeline: cannot read handlers, filters, mutators and pipelines; none run until one is written")
            }
        }
        let (reads, assets) = (Reads::default(), Cache::default());
        tokio::spawn(worker(
            rx,
            config.clone(),
            counters.clone(),
            Arc::new(Semaphore::new(max_running.max(1))),
            reads.clone(),
            assets.clone(),
        ));
        Arc::new(Pipeline {
            tx,
            counters,
            config,
            store,
            reads,
            assets,
        })
    }

    /// The cache that handlers', mutators' and filters' `runtime_assets` are fetched into.
    /// Without one they do not run (logged and counted as `asset`). Set once.
    pub fn set_assets(&self, assets: Arc<ward_assets::Assets>) {
        let _ = self.assets.set(assets);
    }

    /// Where filter expressions' `sensu.FetchEvent` and friends read events (the backend's
    /// state, which holds the pipeline: hence a weak reference). Set once.
    pub fn set_event_reads(&self, reads: std::sync::Weak<dyn EventReads>) {
        let _ = self.reads.set(reads);
    }

    /// What a check request carries besides the check: the HookConfigs its `check_hooks`
    /// name, and the Assets its and those hooks' `runtime_assets` name (flat resources,
    /// from memory; names without one are left out: the agent reports them).
    pub fn check_extras(
        &self,
        namespace: &str,
        spec: &serde_json::Map<String, Value>,
    ) -> (Vec<Value>, Vec<Value>) {
        let snap = self.config.get();
        let hooks: Vec<Arc<ward_types::Resource>> =
            ward_types::agent::all_hooks(spec.get("check_hooks"))
                .iter()
                .filter_map(|name| snap.get(Kind::HookConfig, namespace, name).cloned())
                .collect();
        let mut names: Vec<&str> = super::plan::strings(spec.get("runtime_assets"));
        for h in &hooks {
            for n in super::plan::strings(h.spec.get("runtime_assets")) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let assets = names
            .into_iter()
            .filter_map(|name| snap.get(Kind::Asset, namespace, name))
            .map(|r| r.to_flat())
            .collect();
        (assets, hooks.iter().map(|h| h.to_flat()).collect())
    }

    /// A check's `secrets` resolved (env provider: the backend's environment), for its
    /// check requests; the error names the secret that could not be.
    pub fn check_secrets(
        &self,
        namespace: &str,
        spec: &serde_json::Map<String, Value>,
    ) -> Result<Vec<(String, String)>, String> {
        self.config.get().secrets_of(namespace, spec)
    }

    #[cfg(test)]
    pub(super) fn config_snapshot(&self) -> Arc<Snapshot> {
        self.config.get()
    }

    /// Whether a change to `kind` concerns the pipeline.
    pub fn reads(kind: Kind) -> bool {
        super::config::KINDS.contains(&kind)
    }

    /// Reads the pipeline's resources again (after an API write to one). Blocking. One
    /// reload at a time, so a load that began earlier never replaces a later one.
    pub fn reload(&self) -> Result<(), ward_store::StoreError> {
        self.config
            .reload(|previous| Snapshot::load(&self.store, previous))
    }

    /// Hands a stored event to the pipeline. Never blocks or delays the caller: events
    /// that name no handler or pipeline are ignored, the rest queued; when the queue is
    /// full the event is not handled (it is stored), logged and counted.
    pub fn handle(&self, namespace: &str, event: &Value) {
        let named = |p: &str| {
            event
                .pointer(p)
                .and_then(Value::as_array)
                .is_some_and(|h| !h.is_empty())
        };
        if !(named("/check/handlers")
            || named("/check/pipelines")
            || named("/pipelines")
            || named("/metrics/handlers"))
        {
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
            let (job, why) = match &e {
                mpsc::error::TrySendError::Full(j) => (j, "the handler queue is full"),
                mpsc::error::TrySendError::Closed(j) => (j, "the pipeline has stopped"),
            };
            let (entity, check) = (name_of(&job.event, "entity"), name_of(&job.event, "check"));
            self.dropped(&job.namespace, &entity, &check, why);
        }
    }

    /// Whether the queue has room for an event now (else `handle` would drop it).
    pub fn has_room(&self) -> bool {
        self.tx.capacity() > 0
    }

    /// Counts (and logs, at most once a second) an event stored but not handled because
    /// the queue was full, without reading it.
    pub fn drop_one(&self, namespace: &str) {
        self.dropped(namespace, "", "", "the handler queue is full");
    }

    fn dropped(&self, namespace: &str, entity: &str, check: &str, why: &str) {
        let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if super::once_a_second(&self.counters.last_drop_log) {
            tracing::warn!(
                namespace = %namespace,
                entity = %entity,
                check = %check,
                dropped_total = dropped,
                "{why}: the event is stored but not handled (logged at most once a second; see ward_handler_dropped_total)"
            );
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
            "Workflows (a handler for an event) a filter stopped.",
            &c.filtered,
        );
        counter(
            out,
            "ward_filter_evaluations_total",
            "Filter expressions evaluated.",
            &c.evaluations,
        );
    }
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
    config: Arc<Config>,
    counters: Arc<Counters>,
    running: Arc<Semaphore>,
    reads: Reads,
    assets: Cache,
) {
    let planners = Arc::new(Semaphore::new(PLANNERS));
    let mut batch = Vec::with_capacity(BATCH);
    // Events are taken a batch at a time: under load every task hop waits behind the agent
    // sessions' tasks, so each hop is paid per batch, not per event.
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let Ok(planning) = planners.clone().acquire_owned().await else {
            return;
        };
        let jobs = std::mem::take(&mut batch);
        let (snap, counters, running) = (config.get(), counters.clone(), running.clone());
        let reads = reads.get().and_then(std::sync::Weak::upgrade);
        let cache = assets.get().cloned();
        tokio::spawn(async move {
            // Filters and JavaScript mutators run here: off the runtime's threads.
            let planned = {
                let (counters, cache) = (counters.clone(), cache.clone());
                tokio::task::spawn_blocking(move || {
                    jobs.into_iter()
                        .map(|job| {
                            let ctx = Arc::new(EventCtx {
                                entity: name_of(&job.event, "entity"),
                                check: name_of(&job.event, "check"),
                                namespace: job.namespace,
                            });
                            let lookup = std::rc::Rc::new(Lookup {
                                reads: reads.clone(),
                                namespace: ctx.namespace.clone(),
                                entity: ctx.entity.clone(),
                            });
                            let runs = ward_js::with_events(lookup, || {
                                prepare(&snap, &counters, &ctx, &job.event, cache.clone())
                            });
                            (ctx, runs)
                        })
                        .collect::<Vec<_>>()
                })
                .await
            };
            let planned = match planned {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "the pipeline could not plan events' handlers");
                    return;
                }
            };
            for (ctx, runs) in planned {
                for run in runs {
                    // A udp datagram is sent here; anything that may wait (a process, a
                    // connection) gets a task of its own, at most MAX_RUNNING at once.
                    if run.sends_datagram() {
                        execute(run, &counters, &ctx, None).await;
                        continue;
                    }
                    let Ok(permit) = running.clone().acquire_owned().await else {
                        return;
                    };
                    let (counters, ctx, cache) = (counters.clone(), ctx.clone(), cache.clone());
                    tokio::spawn(async move {
                        execute(run, &counters, &ctx, cache.as_deref()).await;
                        drop(permit);
                    });
                }
            }
            // Held until every run of the batch has started: while handlers are busy, no
            // more batches are taken, the queue fills and new events are dropped (counted),
            // instead of planned runs piling up in memory.
            drop(planning);
        });
    }
}

/// The event's workflows, filtered and mutated (but for pipe mutators, which run with
/// their handler): what is left to run. Blocking.
fn prepare(
    snap: &Snapshot,
    counters: &Counters,
    ctx: &EventCtx,
    event: &Value,
    cache: Option<Arc<ward_assets::Assets>>,
) -> Vec<Run> {
    let mut decisions = Decisions::default();
    decisions.cache = cache;
    let mut json: Option<Arc<[u8]>> = None;
    let mut runs = Vec::new();
    for wf in workflows(snap, counters, ctx, event) {
        match decisions.pass_all(snap, counters, ctx, event, &wf.filters) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(p) => {
                ctx.fail(counters, &wf.label, p.reason, &p.what, "");
                continue;
            }
        }
        let (act, timeout) = match action(snap, &wf.handler) {
            Ok(a) => a,
            Err((reason, what)) => {
                ctx.fail(counters, &wf.label, reason, &what, "");
                continue;
            }
        };
        let payload = match mutate(
            snap,
            ctx,
            event,
            &mut json,
            wf.mutator.as_deref(),
            decisions.cache.as_ref(),
        ) {
            Ok(p) => p,
            Err(f) => {
                let what = format!("{}; the handler does not run", f.what);
                ctx.fail(counters, &wf.label, f.reason, &what, "");
                continue;
            }
        };
        let event_json = json
            .get_or_insert_with(|| Arc::from(serde_json::to_vec(event).unwrap_or_default()))
            .clone();
        runs.push(Run {
            name: wf.handler.metadata.name.clone(),
            action: act,
            payload,
            timeout,
            event_json,
        });
    }
    runs
}
