//! The pipeline's resources (handlers, filters, mutators, pipelines, and the assets,
//! secrets and hooks they and checks name) held in memory, so that planning an event (or
//! sending a check request) reads no store: loaded when the pipeline starts and again after
//! every API write to one of these kinds (`Pipeline::reload`).

use super::stream::{carry_over, Pools, StreamPool};
use std::collections::HashMap;
use std::sync::Arc;
use ward_store::{Store, StoreError};
use ward_types::{Kind, Resource};

/// The kinds the pipeline reads.
pub const KINDS: [Kind; 8] = [
    Kind::Asset,
    Kind::HookConfig,
    Kind::Secret,
    Kind::Handler,
    Kind::EventFilter,
    Kind::Mutator,
    Kind::Pipeline,
    Kind::TCPStreamHandler,
];

/// One load of the pipeline's resources, by (kind, namespace, name).
#[derive(Default)]
pub struct Snapshot {
    by_key: HashMap<(Kind, String, String), Arc<Resource>>,
    /// The TCPStreamHandlers' connection pools.
    streams: Pools,
}

impl Snapshot {
    /// Every resource of the pipeline's kinds, with the stream pools of `previous` whose
    /// handler is unchanged. Blocking.
    pub fn load(store: &Store, previous: &Snapshot) -> Result<Snapshot, StoreError> {
        let mut by_key = HashMap::new();
        for kind in KINDS {
            let mut after: Option<String> = None;
            loop {
                let (page, next) = store.list(kind, None, 1000, after.as_deref())?;
                for r in page {
                    let key = (
                        kind,
                        r.metadata.namespace.clone().unwrap_or_default(),
                        r.metadata.name.clone(),
                    );
                    by_key.insert(key, Arc::new(r));
                }
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        let streams = carry_over(
            &previous.streams,
            by_key
                .iter()
                .filter(|((k, _, _), _)| *k == Kind::TCPStreamHandler)
                .map(|(_, r)| r.as_ref()),
        );
        Ok(Snapshot { by_key, streams })
    }

    /// The Assets a spec's `runtime_assets` names, in order; an error names a missing one.
    pub(super) fn assets_of(
        &self,
        namespace: &str,
        spec: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<ward_assets::Asset>, String> {
        super::plan::strings(spec.get("runtime_assets"))
            .into_iter()
            .map(|name| {
                self.get(Kind::Asset, namespace, name)
                    .map(|r| ward_assets::Asset::from_spec(name, &r.spec))
                    .ok_or_else(|| {
                        format!("runtime_assets: no asset {name:?} in namespace {namespace:?}")
                    })
            })
            .collect()
    }

    /// A spec's `secrets` as environment variables (`name` = the value of its Secret),
    /// read from the backend's environment now (the `env` provider). Errors name the
    /// secret, never a value.
    pub(super) fn secrets_of(
        &self,
        namespace: &str,
        spec: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<(String, String)>, String> {
        let list = spec
            .get("secrets")
            .and_then(serde_json::Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        list.iter()
            .map(|s| {
                let field = |k: &str| s.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
                let (var, secret) = (field("name"), field("secret"));
                let r = self.get(Kind::Secret, namespace, secret).ok_or_else(|| {
                    format!("secrets: no Secret {secret:?} in namespace {namespace:?}")
                })?;
                let id = r.spec.get("id").and_then(serde_json::Value::as_str).unwrap_or("");
                let provider = r
                    .spec
                    .get("provider")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                if provider != "env" || ward_types::backend_own_variable(id) {
                    return Err(format!(
                        "secrets: Secret {secret:?} is not one of the env provider Ward can read"
                    ));
                }
                let value = std::env::var(id).map_err(|_| {
                    format!("secrets: Secret {secret:?}: the backend's environment has no {id} (set it in the backend's env file)")
                })?;
                Ok((var.to_string(), value))
            })
            .collect()
    }

    /// The pool of a TCPStreamHandler, or why it has none.
    pub(super) fn stream(&self, namespace: &str, name: &str) -> Result<Arc<StreamPool>, String> {
        match self.streams.get(&(namespace.to_string(), name.to_string())) {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!(
                "no TCPStreamHandler {name:?} in namespace {namespace:?}"
            )),
        }
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Resource>> {
        self.by_key
            .get(&(kind, namespace.to_string(), name.to_string()))
    }
}

/// The snapshot in force.
pub type Config = crate::current::Current<Snapshot>;
