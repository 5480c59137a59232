//! schedulerd: publishes checks. Every CheckConfig with `publish: true` is sent as a
//! `check_request` every `interval` seconds (or at each `cron` time, in the cron's
//! `CRON_TZ=` zone) to every connected agent in its namespace with a matching
//! subscription — to one of them, in turn, with `round_robin: true` — except when its
//! `subdues` hold at that time. `POST …/checks/:check/execute` publishes one now,
//! subdued or not.
//!
//! A check with `proxy_requests` is sent once per matching entity (`super::proxy`).

use crate::api::AppState;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use ward_types::agent::{CheckRequest, CheckSpec, Frame, Secrets};
use ward_types::{Kind, Resource};

/// The interval of a published check that sets neither `interval` nor `cron` (the guides'
/// `expired_certs` is written so), in seconds.
pub const DEFAULT_INTERVAL: u64 = 60;

/// How often schedules are looked at (and CheckConfigs re-read).
pub const TICK: Duration = Duration::from_secs(1);

use ward_types::unix_now;

pub use super::proxy::{
    fan_out, for_entity, matching, proxy_plan, splay_gap, splay_window, ProxyRequests, Sent,
    DEFAULT_SPLAY_COVERAGE,
};

/// What the agent needs of a CheckConfig.
pub fn check_spec(r: &Resource) -> CheckSpec {
    let s = &r.spec;
    let text = |k: &str| {
        s.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let num = |k: &str| s.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let list = |k: &str| -> Vec<String> {
        s.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let value = |k: &str| match s.get(k) {
        Some(v) if v.as_array().is_some_and(|a| !a.is_empty()) => v.clone(),
        _ => serde_json::Value::Null,
    };
    CheckSpec {
        name: r.metadata.name.clone(),
        namespace: r.metadata.namespace.clone().unwrap_or_default(),
        command: text("command"),
        timeout: num("timeout").min(u32::MAX as u64) as u32,
        interval: num("interval").min(u32::MAX as u64) as u32,
        cron: s.get("cron").and_then(|v| v.as_str()).map(str::to_string),
        subscriptions: list("subscriptions"),
        handlers: list("handlers"),
        max_output_size: num("max_output_size"),
        stdin: s.get("stdin").and_then(|v| v.as_bool()).unwrap_or(false),
        ttl: s.get("ttl").and_then(|v| v.as_u64()),
        output_metric_format: text("output_metric_format"),
        output_metric_handlers: list("output_metric_handlers"),
        output_metric_tags: value("output_metric_tags"),
        output_metric_thresholds: value("output_metric_thresholds"),
        pipelines: value("pipelines"),
        config: with_defaults(r.to_flat()),
    }
}

/// A CheckConfig's fields as Sensu's agent puts them in an event: every field, the ones
/// not set at their defaults (Go's zero values, `scheduler` memory).
fn with_defaults(flat: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{json, Value};
    let mut m = match flat {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let defaults = [
        ("check_hooks", Value::Null),
        ("env_vars", Value::Null),
        ("handlers", json!([])),
        ("high_flap_threshold", json!(0)),
        ("low_flap_threshold", json!(0)),
        ("output_metric_format", json!("")),
        ("output_metric_handlers", Value::Null),
        ("pipelines", json!([])),
        ("proxy_entity_name", json!("")),
        ("publish", json!(false)),
        ("round_robin", json!(false)),
        ("runtime_assets", json!([])),
        ("scheduler", json!("memory")),
        ("secrets", Value::Null),
        ("stdin", json!(false)),
        ("subdue", Value::Null),
        ("subscriptions", json!([])),
        ("timeout", json!(0)),
        ("ttl", json!(0)),
        ("is_silenced", json!(false)),
    ];
    for (k, v) in defaults {
        m.entry(k).or_insert(v);
    }
    m
}

/// A parsed CheckConfig `cron`: its schedule, and the zone its times are in.
#[derive(Debug, Clone)]
pub struct Cron {
    expr: String,
    schedule: croner::Cron,
    zone: chrono_tz::Tz,
}

/// Parses a CheckConfig's `cron` (5 fields, or 6 with seconds; `@hourly` and friends),
/// with or without Sensu's `CRON_TZ=Zone ` / `TZ=Zone ` prefix. Without one, its times
/// are UTC (the Sensu backend's own zone in Sensu; Ward's backend always reads UTC).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let (zone, schedule) =
        ward_types::split_cron_zone(expr).map_err(|e| format!("cron {expr:?}: {e}"))?;
    let schedule = croner::Cron::new(schedule)
        .with_seconds_optional()
        .parse()
        .map_err(|e| format!("cron {expr:?}: {e}"))?;
    Ok(Cron {
        expr: expr.to_string(),
        schedule,
        zone: zone.unwrap_or(chrono_tz::Tz::UTC),
    })
}

impl Cron {
    /// The schedule's first time after `after` (Unix seconds), the schedule's fields read
    /// as wall-clock times in its zone. A time the zone skips (a spring-forward gap) runs
    /// at the first moment after the gap; a time it repeats (the fall-back hour) runs
    /// once, at its first occurrence, unless `after` is already past that one.
    pub fn next_after(&self, after: i64) -> Result<i64, String> {
        use chrono::TimeZone;
        let err = |e: &dyn std::fmt::Display| format!("cron {:?}: {e}", self.expr);
        let from = chrono::DateTime::from_timestamp(after, 0)
            .ok_or_else(|| err(&"time out of range"))?
            .with_timezone(&self.zone);
        let next = self
            .schedule
            .find_next_occurrence(&from, false)
            .map_err(|e| err(&e))?;
        if next.timestamp() > after {
            return Ok(next.timestamp());
        }
        // croner takes the earlier of a repeated wall-clock time; `after` is in the second
        // occurrence of the hour, so the later one is next.
        match self.zone.from_local_datetime(&next.naive_local()) {
            chrono::LocalResult::Ambiguous(_, later) if later.timestamp() > after => {
                Ok(later.timestamp())
            }
            _ => Err(err(&"no time after now")),
        }
    }
}

/// A check's `secrets`, resolved for its requests: sent over TLS only, and a secret that
/// cannot be resolved makes the check fail on the agent saying which (Sensu's agent too
/// reports a check it could not give its secrets).
fn check_secrets(st: &AppState, namespace: &str, r: &Resource) -> Secrets {
    let named = r
        .spec
        .get("secrets")
        .and_then(|v| v.as_array())
        .is_some_and(|a| !a.is_empty());
    if !named {
        return Secrets::default();
    }
    let (vars, error) = if st.agents.plaintext.load(Ordering::Relaxed) {
        (
            Vec::new(),
            Some("the check's secrets are sent to agents over TLS only, and this backend's agent port is plain ws:// (give the backend cert-file and key-file)".to_string()),
        )
    } else {
        match st.pipeline.check_secrets(namespace, &r.spec) {
            Ok(v) => (v, None),
            Err(e) => (
                Vec::new(),
                Some(format!("check {:?}: {e}", r.metadata.name)),
            ),
        }
    };
    Secrets { vars, error }
}

/// Sends one check request now to the agents it is for; returns how many got it.
pub fn publish(
    st: &AppState,
    r: &Resource,
    subscriptions: Option<&[String]>,
    rr: &mut u64,
) -> usize {
    let spec = check_spec(r);
    let subs: Vec<String> = subscriptions
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| spec.subscriptions.clone());
    let targets = st.agents.subscribed(&spec.namespace, &subs);
    if targets.is_empty() {
        return 0;
    }
    let round_robin = r
        .spec
        .get("round_robin")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let chosen: Vec<_> = if round_robin {
        let i = (*rr as usize) % targets.len();
        *rr = rr.wrapping_add(1);
        vec![targets[i].clone()]
    } else {
        targets
    };
    let (assets, hooks) = st.pipeline.check_extras(&spec.namespace, &r.spec);
    let secrets = check_secrets(st, &spec.namespace, r);
    let frame = Frame::CheckRequest(Box::new(CheckRequest {
        check: spec,
        issued: unix_now(),
        assets,
        hooks,
        secrets,
    }));
    let mut sent = 0;
    for s in chosen {
        if super::offer(&s, frame.clone()) {
            sent += 1;
        } else {
            st.agents
                .metrics
                .check_requests_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(agent = %s.name, check = %r.metadata.name, "check request not sent: the agent's session is not keeping up");
        }
    }
    sent
}

/// `POST …/checks/:check/execute`: sends the check now (to `subscriptions` if given),
/// whether or not it is published, scheduled or subdued; a check with `proxy_requests`
/// is sent once per matching entity, splayed as when scheduled (Sensu's ad hoc requests
/// take the same path as scheduled ones).
pub async fn execute(st: Arc<AppState>, r: Resource, subscriptions: Option<Vec<String>>) -> Sent {
    match ProxyRequests::of(&r) {
        Some(pr) => fan_out(st, r, pr, subscriptions, Arc::new(AtomicU64::new(0))).await,
        None => Sent {
            agents: publish(&st, &r, subscriptions.as_deref(), &mut 0),
            proxy_entities: None,
        },
    }
}

struct Schedule {
    next: i64,
    /// The spec it was computed for: a changed interval or cron reschedules.
    key: (u64, Option<String>),
    rr: Arc<AtomicU64>,
    /// A proxy check's requests are being planned: its next time is skipped rather than
    /// planned twice at once.
    planning: Arc<AtomicBool>,
}

/// Clears a schedule's `planning` when dropped.
struct Planning(Arc<AtomicBool>);

impl Drop for Planning {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Runs the schedules until the backend stops.
pub async fn run(st: Arc<AppState>) {
    let mut schedules: HashMap<(String, String), Schedule> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    let mut bad_cron_logged: HashMap<(String, String), String> = HashMap::new();
    loop {
        tick.tick().await;
        let st2 = st.clone();
        let checks = match tokio::task::spawn_blocking(move || all_checks(&st2)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "schedulerd: could not read the checks");
                continue;
            }
            Err(_) => continue,
        };
        let now = unix_now();
        let mut live = std::collections::HashSet::new();
        for r in checks {
            if r.spec.get("publish").and_then(|v| v.as_bool()) != Some(true) {
                continue;
            }
            let id = (
                r.metadata.namespace.clone().unwrap_or_default(),
                r.metadata.name.clone(),
            );
            let cron = r
                .spec
                .get("cron")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let interval = match r.spec.get("interval").and_then(|v| v.as_u64()).unwrap_or(0) {
                0 if cron.is_none() => DEFAULT_INTERVAL,
                i => i,
            };
            let key = (interval, cron.clone());
            let next_after = |from: i64| -> Result<i64, String> {
                match &cron {
                    Some(expr) => parse_cron(expr)?.next_after(from),
                    None => Ok(phase_after(&id.1, interval, from)),
                }
            };
            live.insert(id.clone());
            let entry = schedules.get_mut(&id).filter(|s| s.key == key);
            let sched = match entry {
                Some(s) => s,
                None => {
                    // A new or changed schedule: at its next time (an interval check's
                    // phase may be now).
                    let first = if cron.is_some() {
                        next_after(now)
                    } else {
                        Ok(phase_after(&id.1, interval, now - 1))
                    };
                    match first {
                        Ok(next) => {
                            bad_cron_logged.remove(&id);
                            schedules.insert(
                                id.clone(),
                                Schedule {
                                    next,
                                    key,
                                    rr: Arc::new(AtomicU64::new(0)),
                                    planning: Arc::new(AtomicBool::new(false)),
                                },
                            );
                            schedules.get_mut(&id).expect("just inserted")
                        }
                        Err(e) => {
                            if bad_cron_logged.get(&id) != Some(&e) {
                                tracing::warn!(check = %id.1, namespace = %id.0, "not scheduled: {e}");
                                bad_cron_logged.insert(id.clone(), e);
                            }
                            continue;
                        }
                    }
                }
            };
            if now < sched.next {
                continue;
            }
            // Subdued when due: not sent this time (as Sensu's interval and cron schedulers;
            // `POST …/execute` does not look at subdues, nor does Sensu's ad hoc one).
            if subdued(&r, now) {
                tracing::debug!(check = %id.1, namespace = %id.0, "check subdued: not published");
            } else if let Some(pr) = ProxyRequests::of(&r) {
                if sched.planning.swap(true, Ordering::AcqRel) {
                    tracing::warn!(check = %id.1, namespace = %id.0, "proxy check skipped this time: its previous requests are still being planned");
                } else {
                    let guard = Planning(sched.planning.clone());
                    let (st, rr) = (st.clone(), sched.rr.clone());
                    tokio::spawn(async move {
                        let _guard = guard;
                        let name = r.metadata.name.clone();
                        let sent = fan_out(st, r, pr, None, rr).await;
                        tracing::debug!(check = %name, agents = sent.agents, proxy_entities = sent.proxy_entities, "proxy check published");
                    });
                }
            } else {
                let mut turn = sched.rr.load(Ordering::Relaxed);
                let sent = publish(&st, &r, None, &mut turn);
                sched.rr.store(turn, Ordering::Relaxed);
                tracing::debug!(check = %id.1, agents = sent, "check published");
            }
            sched.next = next_after(now).unwrap_or(now + 60).max(now + 1);
        }
        schedules.retain(|k, _| live.contains(k));
    }
}

/// The first second after `after` at which an interval check named `name` runs: at the
/// times `t` (in nanoseconds) with `t ≡ splay (mod interval)`, `splay` being the first 8
/// bytes of the MD5 of the name, little-endian, as Sensu's interval timer derives its first
/// offset. Checks created together spread over their interval, and each keeps its phase
/// across restarts and on every backend. (Sensu computes the offset once with Go's
/// wrapping subtraction, then resets its timer by the interval; Ward keeps the true phase
/// at every run, rounded up to its one-second tick.)
pub fn phase_after(name: &str, interval: u64, after: i64) -> i64 {
    use md5::Digest;
    const NS: u128 = 1_000_000_000;
    let interval = u128::from(interval.max(1)) * NS;
    let sum = md5::Md5::digest(name.as_bytes());
    let splay = u128::from(u64::from_le_bytes(sum[..8].try_into().unwrap_or([0; 8])));
    // The first phase time strictly after `after`, then the second it falls in.
    let from = after.max(0) as u128 * NS + 1;
    let offset = (splay % interval + interval - from % interval) % interval;
    (from + offset).div_ceil(NS) as i64
}

/// Whether a CheckConfig's `subdues` hold at `now` (Unix seconds), or its older `subdue`
/// (Sensu 5's day-of-week windows, the same shape as a filter's `when`, still accepted).
fn subdued(r: &Resource, now: i64) -> bool {
    let legacy = r
        .spec
        .get("subdue")
        .filter(|w| !w.is_null())
        .is_some_and(|w| ward_types::when::in_windows(w, now).unwrap_or(false));
    legacy
        || r.spec
            .get("subdues")
            .is_some_and(|s| ward_types::subdue::subdued(s, now))
}

fn all_checks(st: &AppState) -> Result<Vec<Resource>, String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = st
            .store
            .list(Kind::CheckConfig, None, 1000, after.as_deref())
            .map_err(|e| e.to_string())?;
        out.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::phase_after;

    #[test]
    fn an_interval_check_runs_at_sensus_phase_for_its_name() {
        // Computed apart (Python: md5, little-endian u64, exact arithmetic).
        assert_eq!(phase_after("check-cpu", 60, 1_699_999_999), 1_700_000_024);
        assert_eq!(phase_after("keepalive-x", 60, 1_699_999_999), 1_700_000_015);
        // Then every interval, whatever second it is asked at.
        let first = phase_after("check-cpu", 60, 1_700_000_000);
        assert_eq!(first, 1_700_000_024);
        assert_eq!(phase_after("check-cpu", 60, first), first + 60);
        assert_eq!(phase_after("check-cpu", 60, first - 1), first);
        // An interval of 1 runs every second.
        assert_eq!(phase_after("c", 1, 41), 42);
        // Names spread over the interval.
        let seconds: std::collections::HashSet<i64> = (0..100)
            .map(|i| phase_after(&format!("check-{i}"), 60, 0) % 60)
            .collect();
        assert!(seconds.len() > 30, "{seconds:?}");
    }

    #[test]
    fn cron_takes_sensus_zone_prefix() {
        for ok in [
            "0 9 * * 1-5",
            "CRON_TZ=Europe/Paris 0 9 * * *",
            "TZ=UTC @hourly",
        ] {
            assert!(super::parse_cron(ok).is_ok(), "{ok}");
        }
        for bad in [
            "TZ= 0 9 * * *",
            "CRON_TZ=UTC",
            "CRON_TZ=../x 0 9 * * *",
            "TZ=UTC nope",
        ] {
            let e = super::parse_cron(bad).unwrap_err();
            assert!(e.starts_with("cron "), "{bad}: {e}");
        }
    }

    fn unix(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn next(cron: &str, after: &str) -> i64 {
        super::parse_cron(cron)
            .unwrap_or_else(|e| panic!("{e}"))
            .next_after(unix(after))
            .unwrap()
    }

    #[test]
    fn a_cron_zone_sets_the_wall_clock_of_its_times() {
        // No zone: UTC.
        assert_eq!(
            next("0 9 * * *", "2024-01-15T12:00:00Z"),
            unix("2024-01-16T09:00:00Z")
        );
        // 09:00 in Tokyo (+09:00, no daylight saving) is midnight UTC.
        assert_eq!(
            next("CRON_TZ=Asia/Tokyo 0 9 * * *", "2024-01-15T12:00:00Z"),
            unix("2024-01-16T00:00:00Z")
        );
        assert_eq!(
            next("TZ=Asia/Tokyo 0 9 * * *", "2024-01-15T23:59:59Z"),
            unix("2024-01-16T00:00:00Z")
        );
        // New York: 09:00 is 14:00 UTC in winter, 13:00 UTC in summer.
        let ny = "CRON_TZ=America/New_York 0 9 * * *";
        assert_eq!(
            next(ny, "2024-01-15T12:00:00Z"),
            unix("2024-01-15T14:00:00Z")
        );
        assert_eq!(
            next(ny, "2024-07-15T12:00:00Z"),
            unix("2024-07-15T13:00:00Z")
        );
        // Across the spring-forward night (2024-03-10): still 09:00 local, an hour earlier
        // in UTC than the day before.
        assert_eq!(
            next(ny, "2024-03-09T14:00:00Z"),
            unix("2024-03-10T13:00:00Z")
        );
        // Weekdays are the zone's: Monday 08:00 in Tokyo is Sunday 23:00 UTC.
        assert_eq!(
            next("CRON_TZ=Asia/Tokyo 0 8 * * 1", "2024-01-13T00:00:00Z"),
            unix("2024-01-14T23:00:00Z")
        );
    }

    #[test]
    fn a_cron_time_the_zone_skips_or_repeats_runs_once() {
        // 02:30 does not exist in New York on 2024-03-10: the first moment after the gap.
        let ny = "CRON_TZ=America/New_York 30 2 * * *";
        assert_eq!(
            next(ny, "2024-03-10T05:00:00Z"),
            unix("2024-03-10T03:00:00-04:00")
        );
        // 01:30 happens twice on 2024-11-03: the first (EDT) one, then the next day's.
        let ny = "CRON_TZ=America/New_York 30 1 * * *";
        assert_eq!(
            next(ny, "2024-11-03T00:00:00-04:00"),
            unix("2024-11-03T01:30:00-04:00")
        );
        assert_eq!(
            next(ny, "2024-11-03T01:30:00-04:00"),
            unix("2024-11-04T01:30:00-05:00")
        );
        // Scheduled from inside the repeated hour, after the first 01:30: the second one,
        // not a time in the past.
        assert_eq!(
            next(ny, "2024-11-03T01:10:00-05:00"),
            unix("2024-11-03T01:30:00-05:00")
        );
        // Every 15 minutes through the fall-back: never a time at or before the last.
        let every = super::parse_cron("CRON_TZ=America/New_York */15 * * * *").unwrap();
        let mut t = unix("2024-11-03T00:50:00-04:00");
        for _ in 0..12 {
            let n = every.next_after(t).unwrap();
            assert!(n > t && n - t <= 3600 + 900, "{t} -> {n}");
            t = n;
        }
    }

    #[test]
    fn a_check_is_subdued_by_its_subdues_only() {
        let check = |spec: serde_json::Value| {
            ward_types::Resource::from_flat(ward_types::Kind::CheckConfig, spec).unwrap()
        };
        let now = unix("2024-01-01T10:30:00Z");
        let window = serde_json::json!([
            {"begin": "2024-01-01T10:00:00Z", "end": "2024-01-01T11:00:00Z"}
        ]);
        let subdued = check(serde_json::json!({
            "metadata": {"name": "c"}, "command": "x", "interval": 60, "subdues": window,
        }));
        assert!(super::subdued(&subdued, now));
        assert!(!super::subdued(&subdued, unix("2024-01-01T11:00:01Z")));
        let plain = check(serde_json::json!({
            "metadata": {"name": "c"}, "command": "x", "interval": 60,
        }));
        assert!(!super::subdued(&plain, now));
    }

    fn resource(kind: ward_types::Kind, v: serde_json::Value) -> ward_types::Resource {
        ward_types::Resource::from_flat(kind, v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn entities() -> Vec<ward_types::Resource> {
        use serde_json::json;
        let e = |v| resource(ward_types::Kind::Entity, v);
        vec![
            e(
                json!({"metadata": {"name": "site-a", "namespace": "default",
                "labels": {"proxy_type": "website", "url": "https://a.example"}},
                "entity_class": "proxy"}),
            ),
            e(
                json!({"metadata": {"name": "router-1", "namespace": "default",
                "labels": {"url": "https://r.example"}}, "entity_class": "proxy"}),
            ),
            e(
                json!({"metadata": {"name": "runner-1", "namespace": "default"},
                "entity_class": "agent", "subscriptions": ["proxies"]}),
            ),
            e(
                json!({"metadata": {"name": "site-b", "namespace": "default",
                "labels": {"proxy_type": "website", "url": "https://b.example"}},
                "entity_class": "proxy"}),
            ),
        ]
    }

    fn names(v: &[&ward_types::Resource]) -> Vec<String> {
        v.iter().map(|r| r.metadata.name.clone()).collect()
    }

    #[test]
    fn entities_match_when_every_attribute_holds_over_sensus_view() {
        let all = entities();
        let m = |exprs: &[&str]| {
            let exprs: Vec<String> = exprs.iter().map(|x| x.to_string()).collect();
            names(&super::matching(&all, &exprs).unwrap())
        };
        // Sensu's example: metadata hoisted (entity.labels), every expression true.
        assert_eq!(
            m(&[
                "entity.entity_class == 'proxy'",
                "entity.labels.proxy_type == 'website'"
            ]),
            ["site-a", "site-b"]
        );
        assert_eq!(
            m(&["entity.entity_class == 'proxy'"]),
            ["site-a", "router-1", "site-b"]
        );
        assert_eq!(m(&["entity.name == 'runner-1'"]), ["runner-1"]);
        // Truthiness, as otto's ToBoolean: a label that is set.
        assert_eq!(m(&["entity.labels.url"]), ["site-a", "router-1", "site-b"]);
        // No expressions: nothing (Sensu's MatchEntities). One that throws: a no for that
        // entity (runner-1 has no labels), the others still decided.
        assert!(m(&[]).is_empty());
        assert_eq!(
            m(&[
                "entity.labels.url.length > 0",
                "entity.entity_class == 'proxy'"
            ]),
            ["site-a", "router-1", "site-b"]
        );
        assert!(m(&["entity.nothing.here"]).is_empty());
        assert!(m(&["entity.entity_class == 'proxy'", "false"]).is_empty());
    }

    #[test]
    fn a_proxy_request_has_the_entitys_tokens_and_name() {
        use serde_json::json;
        let check = resource(
            ward_types::Kind::CheckConfig,
            json!({"metadata": {"name": "website", "namespace": "default"},
                "command": "check-http {{ .labels.url }} {{ .name }}",
                "env_vars": ["PORT={{ .labels.port | default \"443\" }}"],
                "interval": 60, "publish": true, "subscriptions": ["proxies"],
                "proxy_requests": {"entity_attributes": ["entity.labels.url != '{{'"]}}),
        );
        let all = entities();
        let r = super::for_entity(&check, &all[0]).unwrap();
        assert_eq!(r.spec["command"], "check-http https://a.example site-a");
        assert_eq!(r.spec["env_vars"], json!(["PORT=443"]));
        assert_eq!(r.spec["proxy_entity_name"], "site-a");
        assert_eq!(r.spec["proxy_requests"], check.spec["proxy_requests"]);
        assert_eq!(r.metadata, check.metadata);
        let spec = super::check_spec(&r);
        assert_eq!(spec.command, "check-http https://a.example site-a");
        assert_eq!(spec.config["proxy_entity_name"], "site-a");
        // The agent's entity has no url label: an unmatched token, no request.
        let e = super::for_entity(&check, &all[2]).unwrap_err().to_string();
        assert!(e.starts_with("unmatched token"), "{e}");
        let pr = super::ProxyRequests::of(&check).unwrap();
        assert_eq!(
            (pr.entity_attributes.len(), pr.splay, pr.splay_coverage),
            (1, false, 0)
        );
        let mut plain = check.clone();
        plain.spec.remove("proxy_requests");
        assert_eq!(super::ProxyRequests::of(&plain), None);
    }

    #[test]
    fn splayed_requests_share_coverage_of_the_time_to_the_next_run() {
        use std::time::Duration;
        let gap = super::splay_gap;
        // Sensu's docs: 60 s at 90 % over three entities, 18 s apart.
        assert_eq!(gap(Duration::from_secs(60), 90, 3), Duration::from_secs(18));
        assert_eq!(
            gap(Duration::from_secs(4), 90, 2),
            Duration::from_millis(1800)
        );
        assert_eq!(
            gap(Duration::from_secs(10), 100, 4),
            Duration::from_millis(2500)
        );
        // Not set: 90 %.
        assert_eq!(gap(Duration::from_secs(60), 0, 2), Duration::from_secs(27));
        assert_eq!(gap(Duration::from_secs(60), 90, 0), Duration::ZERO);

        use serde_json::json;
        let check = |extra: serde_json::Value| {
            let mut v = json!({"metadata": {"name": "c"}, "command": "x"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            resource(ward_types::Kind::CheckConfig, v)
        };
        let now = unix("2024-01-15T12:00:30Z");
        let window = |r: &ward_types::Resource, now| super::splay_window(r, now).unwrap();
        assert_eq!(
            window(&check(json!({"interval": 30})), now),
            Duration::from_secs(30)
        );
        assert_eq!(window(&check(json!({})), now), Duration::from_secs(60));
        // A cron check: the time to its next run; when that is under 5 s, the time from
        // just after it to the one after (Sensu's calculateSplayInterval).
        let every_minute = check(json!({"cron": "* * * * *"}));
        assert_eq!(window(&every_minute, now), Duration::from_secs(30));
        assert_eq!(
            window(&every_minute, unix("2024-01-15T12:00:57Z")),
            Duration::from_secs(59)
        );
        let hourly_tokyo = check(json!({"cron": "CRON_TZ=Asia/Tokyo 0 * * * *"}));
        assert_eq!(window(&hourly_tokyo, now), Duration::from_secs(3600 - 30));
    }
}
