//! API keys (`Authorization: Key KEY`): each has a public name (a UUID, what lists show and
//! DELETE takes) and a secret key, of which only the SHA-256 is stored. Sensu 6 used the
//! name itself as the key and stored it in clear; Ward never shows a key after creating it.

use super::{Result, Store, StoreError};
use rusqlite::{params, OptionalExtension};

/// An API key as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub username: String,
    pub created_at: i64,
    pub created_by: String,
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        name: r.get(0)?,
        username: r.get(1)?,
        created_at: r.get(2)?,
        created_by: r.get(3)?,
    })
}

impl Store {
    /// Stores a new key for an existing user; `hash` is the SHA-256 of the secret.
    pub fn insert_api_key(&self, key: &ApiKey, hash: &str) -> Result<()> {
        let k = key.clone();
        let hash = hash.to_string();
        let inserted = self.with_config(move |c| {
            let tx = c.transaction()?;
            let user: Option<i64> = tx
                .query_row("SELECT 1 FROM users WHERE name = ?1", [&k.username], |r| {
                    r.get(0)
                })
                .optional()?;
            if user.is_none() {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO api_keys (name, hash, username, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![k.name, hash, k.username, k.created_at, k.created_by],
            )?;
            tx.commit()?;
            Ok(true)
        })?;
        if !inserted {
            return Err(StoreError::NotFound {
                kind: "User",
                name: key.username.clone(),
            });
        }
        Ok(())
    }

    /// The key whose secret hashes to `hash`.
    pub fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.read(|c| {
            c.query_row(
                "SELECT name, username, created_at, created_by FROM api_keys WHERE hash = ?1",
                [hash],
                row,
            )
            .optional()
        })
    }

    /// One key by name.
    pub fn api_key(&self, name: &str) -> Result<Option<ApiKey>> {
        self.read(|c| {
            c.query_row(
                "SELECT name, username, created_at, created_by FROM api_keys WHERE name = ?1",
                [name],
                row,
            )
            .optional()
        })
    }

    /// Every key, by name.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT name, username, created_at, created_by FROM api_keys ORDER BY name",
            )?;
            let rows = st.query_map([], row)?;
            rows.collect()
        })
    }

    /// Revokes a key; NotFound when there is none of that name.
    pub fn delete_api_key(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        let gone =
            self.with_config(move |c| c.execute("DELETE FROM api_keys WHERE name = ?1", [n]))?;
        if gone == 0 {
            return Err(StoreError::NotFound {
                kind: "APIKey",
                name: name.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_hash_listed_and_revoked() {
        let d = std::env::temp_dir().join(format!("ward-apikeys-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let s = Store::open(&d).unwrap();
        s.create_user(&crate::User {
            name: "alice".into(),
            password_hash: None,
            groups: vec![],
            disabled: false,
        })
        .unwrap();
        let k = ApiKey {
            name: "n1".into(),
            username: "alice".into(),
            created_at: 5,
            created_by: "admin".into(),
        };
        s.insert_api_key(&k, "h1").unwrap();
        assert_eq!(s.api_key_by_hash("h1").unwrap(), Some(k.clone()));
        assert_eq!(s.api_key_by_hash("h2").unwrap(), None);
        assert_eq!(s.api_keys().unwrap(), vec![k.clone()]);
        let ghost = ApiKey {
            username: "ghost".into(),
            name: "n2".into(),
            ..k.clone()
        };
        assert!(matches!(
            s.insert_api_key(&ghost, "h2"),
            Err(StoreError::NotFound { kind: "User", .. })
        ));
        s.delete_api_key("n1").unwrap();
        assert_eq!(s.api_key_by_hash("h1").unwrap(), None);
        assert!(s.delete_api_key("n1").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
