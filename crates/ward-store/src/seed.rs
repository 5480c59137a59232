//! Resources a new store starts with (the seeded RBAC roles and bindings), written once:
//! a cluster admin may then edit or delete them, and they are not brought back.

use super::{kind_key, now, Result, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use ward_types::Resource;

impl Store {
    /// Writes `resources` unless the seed `name` was written before (a `meta` key), in
    /// one transaction; resources that exist already are left as they are. True when it
    /// wrote.
    pub fn seed_once(&self, name: &str, resources: &[Resource]) -> Result<bool> {
        let docs = resources
            .iter()
            .map(|r| {
                serde_json::to_string(&r.to_document())
                    .map(|d| (r, d))
                    .map_err(|e| StoreError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let key = format!("seed:{name}");
        self.with_config(|c| {
            let tx = c.transaction()?;
            let done: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| r.get(0))
                .optional()?;
            if done.is_some() {
                return Ok(false);
            }
            for (r, doc) in &docs {
                tx.execute(
                    "INSERT OR IGNORE INTO resources (kind, namespace, name, doc, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        kind_key(r.kind),
                        r.metadata.namespace.clone().unwrap_or_default(),
                        r.metadata.name,
                        doc,
                        now()
                    ],
                )?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![key, now().to_string()],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }
}
