//! Proxy checks (Sensu's `schedulerd/proxy_check.go`, `executor.go`): a check with
//! `proxy_requests` is sent once per entity of its namespace that all its
//! `entity_attributes` hold for, its strings token-substituted against that entity and
//! `proxy_entity_name` set to it; with `splay`, those requests are spread over
//! `splay_coverage`% of the time to its next run.

use super::schedulerd::{parse_cron, publish, DEFAULT_INTERVAL};
use crate::api::AppState;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use ward_types::{unix_now, Kind, Resource};

/// Sensu's `DefaultSplayCoverage`: the percentage of the time to a check's next run its
/// splayed proxy requests are spread over, when `splay_coverage` is not set.
pub const DEFAULT_SPLAY_COVERAGE: u64 = 90;

/// A CheckConfig's `proxy_requests` (core/v2 `ProxyRequests`). A check that has one (an
/// object, even an empty one) runs for the entities it matches only, as in Sensu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequests {
    /// JavaScript expressions over `entity`; an entity matches when all are true.
    pub entity_attributes: Vec<String>,
    pub splay: bool,
    /// 0: [`DEFAULT_SPLAY_COVERAGE`].
    pub splay_coverage: u64,
}

impl ProxyRequests {
    /// The check's `proxy_requests`, if it has them.
    pub fn of(r: &Resource) -> Option<ProxyRequests> {
        let pr = r.spec.get("proxy_requests")?.as_object()?;
        Some(ProxyRequests {
            entity_attributes: pr
                .get("entity_attributes")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            splay: pr.get("splay").and_then(|v| v.as_bool()).unwrap_or(false),
            splay_coverage: pr
                .get("splay_coverage")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        })
    }
}

/// The time between two splayed proxy requests (Sensu's `calculateSplayInterval`): the
/// `window` times `coverage`% (0: 90 %) shared among the `matches`.
pub fn splay_gap(window: Duration, coverage: u64, matches: usize) -> Duration {
    if matches == 0 {
        return Duration::ZERO;
    }
    let coverage = match coverage {
        0 => DEFAULT_SPLAY_COVERAGE,
        c => c.min(100),
    };
    window.mul_f64(coverage as f64 / 100.0 / matches as f64)
}

/// The time splayed requests are spread over: the check's interval or, for a cron check,
/// the time from `now` (Unix seconds) to its next time — to the one after that when the
/// next is less than 5 s away, as Sensu does.
pub fn splay_window(r: &Resource, now: i64) -> Result<Duration, String> {
    let Some(expr) = r.spec.get("cron").and_then(|v| v.as_str()) else {
        let interval = match r.spec.get("interval").and_then(|v| v.as_u64()).unwrap_or(0) {
            0 => DEFAULT_INTERVAL,
            i => i,
        };
        return Ok(Duration::from_secs(interval));
    };
    let cron = parse_cron(expr)?;
    let next = cron.next_after(now)?;
    let secs = if next - now < 5 {
        let from = next + 1;
        cron.next_after(from)? - from
    } else {
        next - now
    };
    Ok(Duration::from_secs(secs.max(0) as u64))
}

/// Which of `entities` every expression of `exprs` is true for (JavaScript truthiness),
/// over Sensu's view of the entity (`metadata` hoisted: `entity.name`,
/// `entity.labels.x`, `entity.entity_class`). As Sensu's `MatchEntities`: with no
/// expressions nothing matches, and an expression that throws (or runs past its limit)
/// is a no for that entity.
pub fn matching<'a>(
    entities: &'a [Resource],
    exprs: &[String],
) -> Result<Vec<&'a Resource>, String> {
    if exprs.is_empty() {
        return Ok(Vec::new());
    }
    ward_js::with_sandbox(ward_js::Limits::default(), |s| {
        entities
            .iter()
            .filter(|e| {
                let view = ward_types::tokens::entity_data(&e.to_flat()).to_string();
                s.predicates("entity", exprs, &view)
                    .iter()
                    .all(|x| x == &Ok(true))
            })
            .collect()
    })
    .map_err(|e| e.to_string())
}

/// The check as it is sent for `entity`: every string of its spec (but the
/// `proxy_requests` themselves) token-substituted against the entity, and
/// `proxy_entity_name` the entity's name.
pub fn for_entity(
    r: &Resource,
    entity: &Resource,
) -> Result<Resource, ward_types::tokens::TokenError> {
    let data = ward_types::tokens::entity_data(&entity.to_flat());
    let mut spec = serde_json::Value::Object(r.spec.clone());
    ward_types::tokens::substitute_all(&mut spec, &data, &["proxy_requests"])?;
    let mut out = r.clone();
    if let serde_json::Value::Object(mut m) = spec {
        m.insert(
            "proxy_entity_name".into(),
            entity.metadata.name.clone().into(),
        );
        out.spec = m;
    }
    Ok(out)
}

/// `namespace/check/entity` of the proxy requests whose tokens failed (each logged once,
/// until they substitute again).
static TOKEN_FAILURES: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The requests of a check with `proxy_requests`: one per matching entity of its
/// namespace ([`matching`], [`for_entity`]). An entity whose tokens cannot be substituted
/// gets none (logged at warn, once). Blocking: reads the store and runs JavaScript.
pub fn proxy_plan(
    st: &AppState,
    r: &Resource,
    pr: &ProxyRequests,
) -> Result<Vec<Resource>, String> {
    let ns = r.metadata.namespace.clone().unwrap_or_default();
    let mut entities = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = st
            .store
            .list(Kind::Entity, Some(&ns), 1000, after.as_deref())
            .map_err(|e| e.to_string())?;
        entities.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let matched = matching(&entities, &pr.entity_attributes)?;
    let mut out = Vec::with_capacity(matched.len());
    for e in matched {
        let key = format!("{ns}/{}/{}", r.metadata.name, e.metadata.name);
        let mut failures = TOKEN_FAILURES.lock().unwrap_or_else(|p| p.into_inner());
        let failures = failures.get_or_insert_with(HashSet::new);
        match for_entity(r, e) {
            Ok(c) => {
                failures.remove(&key);
                out.push(c);
            }
            Err(err) => {
                if failures.len() >= 10_000 {
                    failures.clear();
                }
                if failures.insert(key) {
                    tracing::warn!(check = %r.metadata.name, namespace = %ns, entity = %e.metadata.name, "proxy check request not sent for this entity: {err}");
                }
            }
        }
    }
    Ok(out)
}

/// What sending a check now did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Agents the requests sent so far went to (splayed ones go later).
    pub agents: usize,
    /// For a check with `proxy_requests`: the entities it is sent for.
    pub proxy_entities: Option<usize>,
}

/// Sends a check with `proxy_requests`: plans its requests on the blocking pool, then
/// sends them all now or, with `splay`, one every [`splay_gap`] (the first after one gap,
/// as Sensu), from a task of its own. `rr`: the round-robin turn, shared with the
/// check's schedule.
pub async fn fan_out(
    st: Arc<AppState>,
    r: Resource,
    pr: ProxyRequests,
    subscriptions: Option<Vec<String>>,
    rr: Arc<AtomicU64>,
) -> Sent {
    let (st2, r2, pr2) = (st.clone(), r.clone(), pr.clone());
    let planned = tokio::task::spawn_blocking(move || proxy_plan(&st2, &r2, &pr2)).await;
    let ns = r.metadata.namespace.clone().unwrap_or_default();
    let requests = match planned {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::warn!(check = %r.metadata.name, namespace = %ns, "proxy check not sent: the entities could not be matched: {e}");
            return Sent {
                agents: 0,
                proxy_entities: Some(0),
            };
        }
        Err(e) => {
            tracing::warn!(check = %r.metadata.name, namespace = %ns, "proxy check not sent: matching its entities failed: {e}");
            return Sent::default();
        }
    };
    let n = requests.len();
    if n == 0 {
        tracing::debug!(check = %r.metadata.name, namespace = %ns, "no entity matches the check's proxy_requests: not sent");
    }
    let mut sent = Sent {
        agents: 0,
        proxy_entities: Some(n),
    };
    let gap = if pr.splay && n > 0 {
        let window = splay_window(&r, unix_now());
        window.map(|w| splay_gap(w, pr.splay_coverage, n))
    } else {
        Ok(Duration::ZERO)
    };
    let gap = match gap {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(check = %r.metadata.name, namespace = %ns, "proxy check not splayed: {e}");
            Duration::ZERO
        }
    };
    // Each request takes the next round-robin turn: a round-robin check's requests go to
    // the subscribed agents in turn.
    let first = rr.fetch_add(n as u64, Ordering::Relaxed);
    if gap.is_zero() {
        for (i, c) in requests.iter().enumerate() {
            let mut turn = first.wrapping_add(i as u64);
            sent.agents += publish(&st, c, subscriptions.as_deref(), &mut turn);
        }
    } else {
        tracing::debug!(check = %r.metadata.name, requests = n, gap_ms = gap.as_millis() as u64, "proxy check requests splayed");
        tokio::spawn(async move {
            for (i, c) in requests.iter().enumerate() {
                tokio::time::sleep(gap).await;
                let mut turn = first.wrapping_add(i as u64);
                publish(&st, c, subscriptions.as_deref(), &mut turn);
            }
        });
    }
    sent
}
