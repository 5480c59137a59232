//! Users, passwords (argon2id), tokens, and the roles they carry.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use ward_store::{Store, StoredToken, User};

/// How long an access token lives unless `access-token-ttl` says otherwise.
pub const ACCESS_TTL: i64 = 15 * 60;
/// How long a refresh token lives.
pub const REFRESH_TTL: i64 = 12 * 3600;

/// The group that makes a user a cluster admin.
pub const ADMIN_GROUP: &str = "cluster-admins";
/// The group of agents.
pub const AGENT_GROUP: &str = "system:agents";
/// The group of read-only users.
pub const VIEW_GROUP: &str = "view";

/// What a user may do, from their groups (the seeded role bindings: cluster-admins →
/// cluster-admin, system:agents → system:agent, view → view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// No binding: nothing beyond /auth.
    None,
    /// Create events (in any namespace it is bound to; Ward binds all).
    Agent,
    /// Read everything, change nothing.
    View,
    /// Everything.
    ClusterAdmin,
}

pub fn role_of(user: &User) -> Role {
    let has = |g: &str| user.groups.iter().any(|x| x == g);
    if has(ADMIN_GROUP) {
        Role::ClusterAdmin
    } else if has(VIEW_GROUP) {
        Role::View
    } else if has(AGENT_GROUP) {
        Role::Agent
    } else {
        Role::None
    }
}

/// An argon2id hash in PHC form.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.len() < 8 {
        return Err("passwords must have at least 8 characters".into());
    }
    let mut raw = [0u8; 16];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| "no randomness".to_string())?;
    let salt = SaltString::encode_b64(&raw).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a user; disabled users and users without a password fail.
pub fn check_password(user: &User, password: &str) -> bool {
    if user.disabled {
        return false;
    }
    let Some(h) = &user.password_hash else {
        return false;
    };
    let Ok(parsed) = PasswordHash::new(h) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

use ward_types::unix_now as now;

/// The SHA-256 of a token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token() -> String {
    let mut b = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A fresh access/refresh pair for `user`.
pub fn issue_tokens(
    store: &Store,
    user: &str,
    access_ttl: i64,
) -> Result<(String, String, i64), ward_store::StoreError> {
    let (access, refresh) = (new_token(), new_token());
    let expires = now() + access_ttl;
    store.insert_token(
        &token_hash(&access),
        &StoredToken {
            user: user.into(),
            refresh: false,
            expires_at: expires,
        },
    )?;
    store.insert_token(
        &token_hash(&refresh),
        &StoredToken {
            user: user.into(),
            refresh: true,
            expires_at: now() + REFRESH_TTL,
        },
    )?;
    Ok((access, refresh, expires))
}

/// The user an unexpired access token belongs to.
pub fn authenticate_bearer(store: &Store, token: &str) -> Option<User> {
    let t = store.token(&token_hash(token)).ok()??;
    if t.refresh || t.expires_at <= now() {
        return None;
    }
    store.user(&t.user).ok()?.filter(|u| !u.disabled)
}

/// The user a refresh token belongs to (and revokes it: refresh tokens are single-use).
pub fn redeem_refresh(store: &Store, token: &str) -> Option<User> {
    let t = store.take_token(&token_hash(token)).ok()??;
    if !t.refresh || t.expires_at <= now() {
        return None;
    }
    store.user(&t.user).ok()?.filter(|u| !u.disabled)
}
