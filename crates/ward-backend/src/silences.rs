//! The Silenced entries in force, kept in memory (as Sensu's eventd keeps a cache of them):
//! every event is matched against its namespace's entries before it is stored
//! (`ward_types::silence`), so the stored event and what handlers get carry
//! `check.silenced` and `check.is_silenced`.
//!
//! - The cache is reloaded from the store after every API write to a Silenced entry and
//!   when an entry is removed here.
//! - Expiry: [`sweep`] wakes once a second, looks at the cached entries only (never at
//!   events), and deletes those whose `expire_at` has passed; until then matching already
//!   ignores them.
//! - `expire_on_resolve`: when a stored event is a resolution, the entries that silenced it
//!   and have `expire_on_resolve` are deleted, and they are taken out of the event's
//!   `check.silenced` before handlers see it (the stored resolution still names them).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use ward_store::{Store, StoreError};
use ward_types::event::EventInput;
use ward_types::silence::{silenced_by, Entry};
use ward_types::Kind;

type ByNamespace = HashMap<String, Vec<Entry>>;

/// The cached entries, by namespace.
#[derive(Default)]
pub struct Silences {
    entries: crate::current::Current<ByNamespace>,
}

impl Silences {
    /// Every Silenced entry in the store, by namespace. Blocking: call it off the runtime's
    /// workers.
    pub fn load(store: &Store) -> Result<ByNamespace, StoreError> {
        let mut out: ByNamespace = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = store.list(Kind::Silenced, None, 1000, after.as_deref())?;
            for r in &page {
                out.entry(r.metadata.namespace.clone().unwrap_or_default())
                    .or_default()
                    .push(Entry::from_resource(r));
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Reads the entries again and puts them in force. Blocking.
    pub fn reload(&self, store: &Store) -> Result<(), StoreError> {
        self.entries.reload(|_| Self::load(store))
    }

    pub fn set(&self, entries: ByNamespace) {
        self.entries.set(entries);
    }

    fn snapshot(&self) -> Arc<ByNamespace> {
        self.entries.get()
    }

    /// Sets `check.silenced` (when any entry matches) and `check.is_silenced` on an event
    /// about to be stored, as Sensu's eventd. Costs one map lookup when its namespace has no
    /// entries.
    pub fn apply(&self, input: &mut EventInput, now: i64) {
        let all = self.snapshot();
        let names = match all.get(&input.namespace).filter(|e| !e.is_empty()) {
            Some(entries) => silenced_by(entries, &input.silence_target(), now),
            None => Vec::new(),
        };
        input.set_silenced(&names);
    }

    /// Of `names` (an event's `check.silenced`), those that expire on resolution.
    fn expiring_on_resolve(&self, namespace: &str, names: &[String]) -> Vec<String> {
        let all = self.snapshot();
        all.get(namespace)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.expire_on_resolve && names.contains(&e.name))
                    .map(|e| e.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Entries past their `expire_at`, as (namespace, name).
    fn expired(&self, now: i64) -> Vec<(String, String)> {
        let all = self.snapshot();
        all.iter()
            .flat_map(|(ns, entries)| {
                entries
                    .iter()
                    .filter(|e| e.expired(now))
                    .map(|e| (ns.clone(), e.name.clone()))
            })
            .collect()
    }
}

/// Deletes entries from the store and reloads the cache. Blocking.
fn remove(store: &Store, cache: &Silences, doomed: &[(String, String)]) -> Result<(), StoreError> {
    for (ns, name) in doomed {
        store.delete(Kind::Silenced, ns, name)?;
    }
    cache.reload(store)
}

/// The resolution side of `expire_on_resolve`: for a stored event that is a resolution,
/// deletes the entries that silenced it and expire on resolution (off the runtime's
/// workers), and takes them out of `check.silenced` (and `is_silenced`) for the handlers.
pub fn on_resolution(
    store: &Arc<Store>,
    cache: &Arc<Silences>,
    namespace: &str,
    event: &mut Value,
) {
    if !ward_types::event::is_resolution(event) {
        return;
    }
    let names: Vec<String> = event
        .pointer("/check/silenced")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return;
    }
    let doomed = cache.expiring_on_resolve(namespace, &names);
    if doomed.is_empty() {
        return;
    }
    let kept: Vec<&String> = names.iter().filter(|n| !doomed.contains(n)).collect();
    if let Some(check) = event.get_mut("check").and_then(Value::as_object_mut) {
        check.insert("is_silenced".into(), Value::Bool(!kept.is_empty()));
        check.insert("silenced".into(), serde_json::json!(kept));
    }
    let (store, cache, ns) = (store.clone(), cache.clone(), namespace.to_string());
    tokio::task::spawn_blocking(move || {
        let doomed: Vec<(String, String)> = doomed.into_iter().map(|n| (ns.clone(), n)).collect();
        match remove(&store, &cache, &doomed) {
            Ok(()) => {
                for (ns, name) in &doomed {
                    tracing::info!(namespace = %ns, silenced = %name, "silence removed: the event it silenced resolved (expire_on_resolve)");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not remove silences that expire on resolution")
            }
        }
    });
}

/// How often expired entries are looked for.
pub const SWEEP: Duration = Duration::from_secs(1);

/// Loads the cache, then deletes expired entries as their time comes.
pub async fn sweep(store: Arc<Store>, cache: Arc<Silences>) {
    let (s, c) = (store.clone(), cache.clone());
    match tokio::task::spawn_blocking(move || c.reload(&s)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "could not load the silences; events are not silenced until one is written")
        }
        Err(e) => tracing::error!(error = %e, "the silences loader failed"),
    }
    let mut tick = tokio::time::interval(SWEEP);
    loop {
        tick.tick().await;
        let doomed = cache.expired(ward_types::unix_now());
        if doomed.is_empty() {
            continue;
        }
        let (s, c) = (store.clone(), cache.clone());
        let done =
            tokio::task::spawn_blocking(move || remove(&s, &c, &doomed).map(|()| doomed)).await;
        match done {
            Ok(Ok(gone)) => {
                for (ns, name) in gone {
                    tracing::info!(namespace = %ns, silenced = %name, "silence expired and removed");
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not remove expired silences; trying again")
            }
            Err(e) => tracing::error!(error = %e, "the silences sweeper failed"),
        }
    }
}
