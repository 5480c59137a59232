//! What every handler shares: the store, the event router, agents, the pipeline.

use super::metrics::Metrics;
use serde_json::Value;
use std::sync::Arc;
use ward_store::{Store, StoreError};

/// What every handler shares.
pub struct AppState {
    pub store: Arc<Store>,
    /// Where events are stored and read: the embedded store or PostgreSQL.
    pub events: crate::eventd::EventRouter,
    pub cluster_id: u64,
    pub member_id: u64,
    pub name: String,
    pub metrics: Arc<Metrics>,
    /// Certificates the backend serves or trusts, for days-left metrics.
    pub certificates: Vec<std::path::PathBuf>,
    /// The CA this backend holds (`ca-dir`), for revocation through the API.
    pub ca: Option<super::certificates::CaHolder>,
    /// Access token lifetime, seconds.
    pub access_token_ttl: i64,
    /// False while start-up checks run: /ready answers 503 with Retry-After until then.
    pub ready: std::sync::atomic::AtomicBool,
    /// The connected agents, keepalived's tracker, and the agent port's counters.
    pub agents: crate::agentd::Agents,
    /// Handlers for stored events.
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    /// Password checks: off the workers, capped, throttled.
    pub logins: crate::auth::Logins,
    /// The RBAC roles and bindings in force (`crate::rbac`).
    pub policy: Arc<crate::rbac::PolicyCell>,
    /// The Silenced entries in force (`crate::silences`).
    pub silences: Arc<crate::silences::Silences>,
    /// The handler told of deregistrations of agents that name none (sensu-backend's
    /// `deregistration-handler`); empty: none.
    pub deregistration_handler: String,
}

impl AppState {
    /// The async face of the store: runs `f` on the blocking pool, so that no async worker
    /// waits on SQLite (a write's fsync, a reader's disk). Every store call from the API
    /// goes through it.
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Invalid(format!("a store task failed: {e}")))?
    }

    /// Stores an event the backend itself raises (a keepalive or TTL failure): with an `id`
    /// when it has none, silenced as any, then handled.
    pub async fn store_event(
        &self,
        mut input: ward_types::event::EventInput,
    ) -> Result<(), crate::eventd::SubmitError> {
        let now = ward_types::unix_now();
        if !input.has_id() {
            let id = crate::auth::new_uuid()
                .map_err(|e| crate::eventd::SubmitError::Failed(format!("no event id: {e}")))?;
            input.set_id(&id);
        }
        self.silences.apply(&mut input, now);
        let namespace = input.namespace.clone();
        let handlers = input.needs_after_store();
        let stored = self.events.submit(input.prepare()).await?;
        self.metrics
            .events_stored
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if handlers {
            self.after_store(&namespace, &stored);
        }
        Ok(())
    }

    /// What happens to an event once it is stored (it is already acknowledged): a
    /// resolution ends the silences that expire on resolution, and its JSON text goes to
    /// the handler pipeline, which never delays storage. Callers pass it only when
    /// `EventInput::needs_after_store`: only then is it parsed again.
    pub fn after_store(&self, namespace: &str, stored: &str) {
        // `silenced` is only stored when an entry matched.
        let silenced = stored.contains("\"silenced\":[");
        // A full queue drops the handling: the event is not parsed for nothing.
        if !silenced && !self.pipeline.has_room() {
            self.pipeline.drop_one(namespace);
            return;
        }
        match serde_json::from_str::<Value>(stored) {
            Ok(mut v) => {
                if silenced {
                    crate::silences::on_resolution(&self.store, &self.silences, namespace, &mut v);
                }
                self.pipeline.handle(namespace, &v)
            }
            Err(e) => tracing::error!(error = %e, "a stored event is not JSON; not handled"),
        }
    }
}

/// Sensu's event functions in filter expressions read events where the API reads them
/// (PostgreSQL when it is the event store). Called on the blocking pool.
impl crate::pipeline::EventReads for AppState {
    fn event(&self, namespace: &str, entity: &str, check: &str) -> Result<Option<String>, String> {
        tokio::runtime::Handle::current()
            .block_on(self.events.event(namespace, entity, check))
            .map(|e| e.map(|v| v.to_string()))
            .map_err(|e| e.to_string())
    }

    fn events(&self, namespace: &str, limit: usize) -> Result<(Vec<String>, bool), String> {
        tokio::runtime::Handle::current()
            .block_on(self.events.events_raw(Some(namespace), None, limit, None))
            .map(|(events, next)| (events, next.is_some()))
            .map_err(|e| e.to_string())
    }
}
