//! Users, passwords (argon2id), tokens, and the roles they carry; `Logins`, which runs
//! password checks off the async workers, under a concurrency cap, throttled.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use ward_store::{Redeemed, Store, StoreError, StoredToken, User};

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

/// Why a password cannot be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords must have at least 8 characters")]
    TooShort,
    #[error("the system's random-number generator failed")]
    NoRandomness,
    #[error("{0}")]
    Hash(String),
}

/// An argon2id hash in PHC form. CPU-heavy (tens of milliseconds): call it off the async
/// workers (`tokio::task::spawn_blocking`).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.len() < 8 {
        return Err(PasswordError::TooShort);
    }
    let mut raw = [0u8; 16];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| PasswordError::NoRandomness)?;
    let salt = SaltString::encode_b64(&raw).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// The user name and password of an `Authorization: Basic` header.
pub fn basic(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.strip_prefix("Basic ")?.trim())
        .ok()?;
    let (u, p) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Checks `password` against a PHC hash.
fn verify(hash: &str, password: &str) -> bool {
    if is_bcrypt(hash) {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Checks a password against a user (or against `dummy` when there is no such user or no
/// password, so that every answer costs one argon2 verification and the time taken does
/// not tell which users exist); disabled users fail after the verification.
/// `verifications` counts the argon2 verifications made.
/// Replaces a user's bcrypt hash by an argon2id one after a successful login (best
/// effort: a failure is logged, and the login stands).
fn upgrade_hash(store: &Store, user: &User, password: &str) {
    let result = hash_password(password)
        .map_err(|e| e.to_string())
        .and_then(|h| {
            let mut u = user.clone();
            u.password_hash = Some(h);
            store.update_user(&u, None).map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => {
            tracing::info!(user = %user.name, "replaced a bcrypt password hash (from Sensu) by argon2id")
        }
        Err(e) => {
            tracing::warn!(user = %user.name, error = %e, "cannot replace a bcrypt password hash")
        }
    }
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2y$`), as Sensu stores them: accepted so that users
/// come over from Sensu with their passwords, and replaced by argon2id at their first
/// login.
fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

pub fn check_password_timed(
    user: Option<&User>,
    password: &str,
    dummy: &str,
    verifications: &AtomicU64,
) -> bool {
    let ok = match user.and_then(|u| u.password_hash.as_deref().map(|h| (u, h))) {
        Some((u, h)) => verify(h, password) && !u.disabled,
        None => {
            let _ = verify(dummy, password);
            false
        }
    };
    verifications.fetch_add(1, Ordering::Relaxed);
    ok
}

use ward_types::unix_now as now;

/// The SHA-256 of a token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    ward_io::text::hex(d.as_ref())
}

/// A random (version 4) UUID, as Sensu names API keys and events.
pub fn new_uuid() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| StoreError::NoRandomness)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = ward_io::text::hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// 256 random bits, URL-safe base64; an error (never zeroes) when the generator fails.
pub fn new_token() -> Result<String, StoreError> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| StoreError::NoRandomness)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// A fresh access/refresh pair for `user` in session `family` (None: a new session, as
/// at login). Blocking (the store): call it off the async workers.
pub fn issue_tokens(
    store: &Store,
    user: &str,
    access_ttl: i64,
    family: Option<String>,
) -> Result<(String, String, i64), StoreError> {
    let (access, refresh) = (new_token()?, new_token()?);
    let family = match family {
        Some(f) => f,
        None => token_hash(&new_token()?),
    };
    let expires = now() + access_ttl;
    store.insert_token(
        &token_hash(&access),
        &StoredToken {
            user: user.into(),
            refresh: false,
            expires_at: expires,
            family: family.clone(),
        },
    )?;
    store.insert_token(
        &token_hash(&refresh),
        &StoredToken {
            user: user.into(),
            refresh: true,
            expires_at: now() + REFRESH_TTL,
            family,
        },
    )?;
    Ok((access, refresh, expires))
}

/// The user an unexpired access token belongs to, and the token's session family.
/// Blocking (the store).
pub fn authenticate_bearer(
    store: &Store,
    token: &str,
) -> Result<Option<(User, String)>, StoreError> {
    let Some(t) = store.token(&token_hash(token))? else {
        return Ok(None);
    };
    if t.refresh || t.expires_at <= now() {
        return Ok(None);
    }
    Ok(store
        .user(&t.user)?
        .filter(|u| !u.disabled)
        .map(|u| (u, t.family)))
}

/// The enabled user an API key (`Authorization: Key KEY`) belongs to. Keys are 256
/// random bits, so they are looked up by their SHA-256, as tokens are. Blocking (the store).
pub fn authenticate_key(store: &Store, key: &str) -> Result<Option<User>, StoreError> {
    let Some(k) = store.api_key_by_hash(&token_hash(key))? else {
        return Ok(None);
    };
    Ok(store.user(&k.username)?.filter(|u| !u.disabled))
}

/// The user a refresh token belongs to and its family (the token is now used: refresh
/// tokens are single-use; reusing one revokes its whole session). Blocking (the store).
pub fn redeem_refresh(store: &Store, token: &str) -> Result<Option<(User, String)>, StoreError> {
    let t = match store.redeem_refresh(&token_hash(token))? {
        Redeemed::Fresh(t) => t,
        Redeemed::Reused => {
            tracing::warn!("a used refresh token was presented again; its session is revoked");
            return Ok(None);
        }
        Redeemed::Unknown => return Ok(None),
    };
    if t.expires_at <= now() {
        return Ok(None);
    }
    Ok(store
        .user(&t.user)?
        .filter(|u| !u.disabled)
        .map(|u| (u, t.family)))
}

/// Failed logins allowed per source address within `WINDOW` before 429.
pub const SOURCE_FAILURES: u32 = 30;
/// Failed logins allowed per user name within `WINDOW` before 429.
pub const USER_FAILURES: u32 = 10;
/// The throttling window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Entries kept per table before expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// Why a login did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    Wrong,
    #[error("too many failed logins from this address or for this user; retry in {0} s")]
    Throttled(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the password check did not finish: {0}")]
    Task(String),
}

#[derive(Default)]
struct Failures {
    by_source: HashMap<IpAddr, (u32, Instant)>,
    by_user: HashMap<String, (u32, Instant)>,
}

/// Password checks: run on the blocking pool (argon2 costs ~17 ms of CPU), at most
/// cores − 1 at once (more wait, without holding a worker), and throttled: after
/// `SOURCE_FAILURES` failures from one address or `USER_FAILURES` for one name within
/// `WINDOW`, further attempts are refused (429 with Retry-After) before any hashing.
pub struct Logins {
    permits: tokio::sync::Semaphore,
    /// A hash of a random password, made once, verified against when the user does not
    /// exist or has no password: unknown and known users then take the same time.
    dummy: Arc<OnceLock<String>>,
    failures: Mutex<Failures>,
    /// Password verifications made (argon2 runs, the dummy's included): for /metrics.
    pub verifications: Arc<AtomicU64>,
    /// Attempts refused by throttling, before any hashing: for /metrics.
    pub throttled_attempts: AtomicU64,
}

impl Default for Logins {
    fn default() -> Self {
        // One core is left to the async workers: password checks alone can never take
        // every core, so a flood of logins costs other requests a share of the CPU, not
        // all of it (on 2 cores, one check at a time: ~60 logins/s with release argon2).
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Logins {
            permits: tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1)),
            dummy: Arc::default(),
            failures: Mutex::new(Failures::default()),
            verifications: Arc::default(),
            throttled_attempts: AtomicU64::new(0),
        }
    }
}

impl Logins {
    /// The seconds left before `source` or `user` may try again, if throttled.
    fn throttled(&self, source: Option<IpAddr>, user: &str) -> Option<u64> {
        let f = self.failures.lock().ok()?;
        let left = |(n, since): &(u32, Instant), max: u32| {
            let elapsed = since.elapsed();
            (*n >= max && elapsed < WINDOW).then(|| (WINDOW - elapsed).as_secs().max(1))
        };
        let s = source
            .and_then(|s| f.by_source.get(&s))
            .and_then(|e| left(e, SOURCE_FAILURES));
        let u = f.by_user.get(user).and_then(|e| left(e, USER_FAILURES));
        s.max(u)
    }

    fn record(&self, source: Option<IpAddr>, user: &str, ok: bool) {
        let Ok(mut f) = self.failures.lock() else {
            return;
        };
        fn bump<K: std::hash::Hash + Eq>(m: &mut HashMap<K, (u32, Instant)>, k: K) {
            if m.len() > SWEEP_ABOVE {
                m.retain(|_, (_, since)| since.elapsed() < WINDOW);
            }
            let e = m.entry(k).or_insert((0, Instant::now()));
            if e.1.elapsed() >= WINDOW {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
        if ok {
            f.by_user.remove(user);
            if let Some(s) = source {
                f.by_source.remove(&s);
            }
        } else {
            bump(&mut f.by_user, user.to_string());
            if let Some(s) = source {
                bump(&mut f.by_source, s);
            }
        }
    }

    /// Checks `user`'s `password`: the user when right, else why not. Never on the
    /// caller's worker: the store read and argon2 run on the blocking pool.
    pub async fn check(
        &self,
        store: Arc<Store>,
        source: Option<IpAddr>,
        user: &str,
        password: String,
    ) -> Result<User, LoginError> {
        if let Some(s) = self.throttled(source, user) {
            self.throttled_attempts.fetch_add(1, Ordering::Relaxed);
            return Err(LoginError::Throttled(s));
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| LoginError::Task(e.to_string()))?;
        let name = user.to_string();
        let dummy_cell = self.dummy.clone();
        let verifications = self.verifications.clone();
        let found = tokio::task::spawn_blocking(move || -> Result<Option<User>, LoginError> {
            let dummy = match dummy_cell.get() {
                Some(d) => d,
                None => {
                    let d = hash_password(&new_token()?)
                        .map_err(|e| LoginError::Task(e.to_string()))?;
                    dummy_cell.get_or_init(|| d)
                }
            };
            let u = store.user(&name)?;
            let ok = check_password_timed(u.as_ref(), &password, dummy, &verifications);
            let u = u.filter(|_| ok);
            if let Some(user) = &u {
                if user.password_hash.as_deref().is_some_and(is_bcrypt) {
                    upgrade_hash(&store, user, &password);
                }
            }
            Ok(u)
        })
        .await
        .map_err(|e| LoginError::Task(e.to_string()))??;
        self.record(source, user, found.is_some());
        found.ok_or(LoginError::Wrong)
    }
}
