//! Silencing, as Sensu's eventd applies it: which Silenced entries an event matches.
//!
//! An entry names a subscription, a check, or both (`*` or empty: any). It matches an
//! event when it has begun, has not expired, its check is the event's check (or any), and
//! its subscription is one of:
//! - `entity:NAME`, the event's own entity (always, whatever the entity lists);
//! - for a proxy check (`check.proxy_entity_name` set), any of the entity's subscriptions;
//! - otherwise a subscription the check *and* the entity both have (a `windows` silence
//!   does not silence a Linux host's run of a check sent to `linux` and `windows`).
//!
//! The names that match go into `check.silenced` and `check.is_silenced` is true when
//! there is at least one; the `not_silenced` filter stops such events.

use crate::Resource;
use serde_json::Value;

/// One Silenced entry, as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// Empty or `*`: any.
    pub subscription: String,
    /// Empty or `*`: any.
    pub check: String,
    /// Unix seconds; it silences nothing before.
    pub begin: i64,
    /// Unix seconds; 0: never expires by time.
    pub expire_at: i64,
    pub expire_on_resolve: bool,
}

impl Entry {
    /// The entry a stored Silenced resource describes.
    pub fn from_resource(r: &Resource) -> Entry {
        let s = |k: &str| {
            r.spec
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let i = |k: &str| r.spec.get(k).and_then(Value::as_i64).unwrap_or(0);
        Entry {
            name: r.metadata.name.clone(),
            subscription: s("subscription"),
            check: s("check"),
            begin: i("begin"),
            expire_at: i("expire_at").max(0),
            expire_on_resolve: r
                .spec
                .get("expire_on_resolve")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.expire_at > 0 && self.expire_at <= now
    }

    /// Sensu's `Silenced.Matches`: the check and the subscription, each `*` or empty for any.
    fn matches(&self, check: &str, subscription: &str) -> bool {
        let any = |s: &str| s.is_empty() || s == "*";
        (any(&self.subscription) || self.subscription == subscription)
            && (any(&self.check) || self.check == check)
    }
}

/// What silencing reads from an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub check: String,
    pub entity: String,
    pub entity_subscriptions: Vec<String>,
    pub check_subscriptions: Vec<String>,
    /// `check.proxy_entity_name` is set.
    pub proxy: bool,
}

/// The names of the entries that silence `t` at `now`, in the entries' order, each once.
pub fn silenced_by(entries: &[Entry], t: &Target, now: i64) -> Vec<String> {
    let own = format!("entity:{}", t.entity);
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        if e.begin > now || e.expired(now) {
            continue;
        }
        let hit = e.matches(&t.check, &own)
            || if t.proxy {
                t.entity_subscriptions
                    .iter()
                    .any(|s| e.matches(&t.check, s))
            } else {
                t.check_subscriptions
                    .iter()
                    .filter(|s| t.entity_subscriptions.contains(s))
                    .any(|s| e.matches(&t.check, s))
            };
        if hit && !out.contains(&e.name) {
            out.push(e.name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sub: &str, check: &str) -> Entry {
        Entry {
            name: format!("{}:{}", if sub.is_empty() { "*" } else { sub }, check),
            subscription: sub.into(),
            check: check.into(),
            begin: 100,
            expire_at: 0,
            expire_on_resolve: false,
        }
    }

    fn target(check: &str, entity_subs: &[&str], check_subs: &[&str], proxy: bool) -> Target {
        Target {
            check: check.into(),
            entity: "web-1".into(),
            entity_subscriptions: entity_subs.iter().map(|s| s.to_string()).collect(),
            check_subscriptions: check_subs.iter().map(|s| s.to_string()).collect(),
            proxy,
        }
    }

    #[test]
    fn an_entity_silence_matches_its_own_entity_whatever_it_lists() {
        let e = [entry("entity:web-1", "*"), entry("entity:web-2", "*")];
        let t = target("http", &[], &["linux"], false);
        assert_eq!(silenced_by(&e, &t, 200), vec!["entity:web-1:*"]);
    }

    #[test]
    fn a_subscription_silence_needs_the_check_and_the_entity_to_share_it() {
        let e = [entry("windows", "http")];
        let t = target("http", &["linux"], &["linux", "windows"], false);
        assert!(silenced_by(&e, &t, 200).is_empty());
        let t = target("http", &["linux", "windows"], &["linux", "windows"], false);
        assert_eq!(silenced_by(&e, &t, 200), vec!["windows:http"]);
    }

    #[test]
    fn a_proxy_check_is_silenced_by_any_entity_subscription() {
        let e = [entry("switches", "*")];
        let t = target("ping", &["switches"], &["poller"], true);
        assert_eq!(silenced_by(&e, &t, 200), vec!["switches:*"]);
    }

    #[test]
    fn a_check_silence_matches_every_entity_and_only_that_check() {
        let e = [entry("", "http")];
        assert_eq!(
            silenced_by(&e, &target("http", &[], &[], false), 200),
            vec!["*:http"]
        );
        assert!(silenced_by(&e, &target("disk", &[], &[], false), 200).is_empty());
    }

    #[test]
    fn an_entry_silences_nothing_before_it_begins_or_once_it_expired() {
        let mut e = entry("", "http");
        let t = target("http", &[], &[], false);
        assert!(silenced_by(std::slice::from_ref(&e), &t, 99).is_empty());
        e.expire_at = 150;
        assert_eq!(silenced_by(std::slice::from_ref(&e), &t, 149).len(), 1);
        assert!(silenced_by(std::slice::from_ref(&e), &t, 150).is_empty());
    }
}
