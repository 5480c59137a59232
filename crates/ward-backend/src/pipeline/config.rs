//! The pipeline's resources (handlers, filters, mutators, pipelines) held in memory, so
//! that planning an event reads no store: loaded when the pipeline starts and again after
//! every API write to one of these kinds (`Pipeline::reload`).

use super::stream::{carry_over, Pools, StreamPool};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use ward_store::{Store, StoreError};
use ward_types::{Kind, Resource};

/// The kinds the pipeline reads.
pub const KINDS: [Kind; 5] = [
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
#[derive(Default)]
pub struct Config {
    snap: RwLock<Arc<Snapshot>>,
}

impl Config {
    pub fn get(&self) -> Arc<Snapshot> {
        self.snap
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set(&self, s: Snapshot) {
        if let Ok(mut w) = self.snap.write() {
            *w = Arc::new(s);
        }
    }
}
