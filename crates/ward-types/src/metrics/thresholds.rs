//! `output_metric_thresholds`: the check status Sensu's agent derives from the points, and
//! the annotations it adds to the event to explain it.

use super::{gonum, text, Point};
use serde_json::Value;
use std::collections::HashMap;

/// What the thresholds decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The check's new status; `None` when the thresholds were not applied (the check
    /// did not exit 0, gave no points, or has no rules), so its own status stands.
    /// `Some(0)` leaves it at 0.
    pub status: Option<u32>,
    /// Annotations for the event's metadata, in the order first made; a later one with the
    /// same key replaced the earlier one's value.
    pub annotations: Vec<(String, String)>,
}

/// One entry of `output_metric_thresholds`.
struct Rule<'a> {
    name: &'a str,
    tags: Vec<(&'a str, &'a str)>,
    limits: Vec<Limit<'a>>,
    null_status: u32,
}

/// One `{min, max, status}` of a rule.
struct Limit<'a> {
    min: &'a str,
    max: &'a str,
    status: u32,
}

/// Applies a check's `output_metric_thresholds` to its points as Sensu's agent does, only
/// for a check that exited 0 with at least one point. For each rule, every point of its
/// name carrying all its tags is checked against each `{min, max, status}`: below `min`,
/// or else above `max`, gives that status and an annotation
/// `sensu.io/output_metric_thresholds/<name>[.<tag value>…]/<min|max>/<status caption>`;
/// a `min` that does not read as a number skips that entry (its `max` too). A rule no
/// point matches gives its `null_status`, when above 0, and a `…/null-status/<caption>`
/// annotation. The worst status wins, and unless it came only from a status-0 entry it
/// is explained again under `sensu.io/notifications/<caption>`. Captions are `ok`,
/// `warning`, `critical`, else `unknown`. `min` and `max` are trimmed, as Sensu stores them.
pub fn thresholds(rules: &Value, points: &[Point], exit_status: u32) -> Verdict {
    let rules: Vec<Rule> = rules
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|r| r.is_object())
        .map(rule)
        .collect();
    if exit_status != 0 || points.is_empty() || rules.is_empty() {
        return Verdict::default();
    }
    let mut notes = Annotations::default();
    let mut status = 0;
    let mut reason = String::new();
    for rule in &rules {
        let mut matched = false;
        for point in points.iter().filter(|p| matches(rule, p)) {
            matched = true;
            for limit in &rule.limits {
                let mut crossed = None;
                if !limit.min.is_empty() {
                    let Some(min) = gonum::parse_float(limit.min) else {
                        continue;
                    };
                    if point.value < min {
                        crossed = Some(("min", limit.min));
                    }
                }
                if crossed.is_none() && !limit.max.is_empty() {
                    let Some(max) = gonum::parse_float(limit.max) else {
                        continue;
                    };
                    if point.value > max {
                        crossed = Some(("max", limit.max));
                    }
                }
                let Some((measure, bound)) = crossed else {
                    continue;
                };
                let explained = exceeded(rule, measure, bound, point.value);
                notes.set(key(rule, measure, limit.status), explained.clone());
                if status < limit.status {
                    status = limit.status;
                    reason = explained;
                }
            }
        }
        if !matched && rule.null_status > 0 {
            let explained = missing(rule);
            notes.set(
                key(rule, "null-status", rule.null_status),
                explained.clone(),
            );
            if status < rule.null_status {
                status = rule.null_status;
                reason = explained;
            }
        }
    }
    if !reason.is_empty() {
        notes.set(
            format!("sensu.io/notifications/{}", caption(status)),
            reason,
        );
    }
    Verdict {
        status: Some(status),
        annotations: notes.list,
    }
}

fn rule(v: &Value) -> Rule<'_> {
    let list = |key: &str| {
        v.get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    Rule {
        name: text(v, "name"),
        tags: list("tags")
            .iter()
            .map(|t| (text(t, "name"), text(t, "value")))
            .collect(),
        limits: list("thresholds")
            .iter()
            .map(|l| Limit {
                min: text(l, "min").trim(),
                max: text(l, "max").trim(),
                status: status_of(l, "status"),
            })
            .collect(),
        null_status: status_of(v, "null_status"),
    }
}

/// A `uint32` field; anything else reads as 0.
fn status_of(v: &Value, key: &str) -> u32 {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(0)
}

/// The point has the rule's name and every one of its tags.
fn matches(rule: &Rule, point: &Point) -> bool {
    rule.name == point.name
        && rule
            .tags
            .iter()
            .all(|&(k, v)| point.tags.iter().any(|(pk, pv)| pk == k && pv == v))
}

/// Sensu's `CheckStatusToCaption`.
fn caption(status: u32) -> &'static str {
    match status {
        0 => "ok",
        1 => "warning",
        2 => "critical",
        _ => "unknown",
    }
}

fn key(rule: &Rule, measure: &str, status: u32) -> String {
    let mut key = format!("sensu.io/output_metric_thresholds/{}", rule.name);
    for (_, value) in &rule.tags {
        key.push('.');
        key.push_str(value);
    }
    format!("{key}/{measure}/{}", caption(status))
}

/// "The value of disk_rate (device=sda) exceeded the configured threshold (max: 5, actual: 7)."
fn exceeded(rule: &Rule, measure: &str, bound: &str, value: f64) -> String {
    let tags: Vec<String> = rule.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let tags = tags.join(",");
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!(" ({tags})")
    };
    format!(
        "The value of {}{tags} exceeded the configured threshold ({measure}: {bound}, actual: {}).",
        rule.name,
        gonum::format_f(value)
    )
}

/// `WARNING : no metric matching "disk_rate" (device="sda") was found; expected max: 5
/// (status: critical)`, on one line.
fn missing(rule: &Rule) -> String {
    let tags: Vec<String> = rule
        .tags
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    let tags = tags.join(", ");
    let mut text = format!(
        "{} : no metric matching \"{}\"",
        caption(rule.null_status).to_uppercase(),
        rule.name
    );
    if !tags.is_empty() {
        text.push_str(&format!(" ({tags})"));
    }
    text.push_str(" was found");
    for limit in &rule.limits {
        text.push_str("; expected ");
        if !limit.min.is_empty() {
            text.push_str(&format!("min: {}", limit.min));
        }
        if !limit.min.is_empty() && !limit.max.is_empty() {
            text.push_str(" - ");
        }
        if !limit.max.is_empty() {
            text.push_str(&format!("max: {}", limit.max));
        }
        text.push_str(&format!(" (status: {})", caption(limit.status)));
    }
    text
}

/// Annotations with a map's replace-by-key behaviour, kept in first-made order.
#[derive(Default)]
struct Annotations {
    list: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Annotations {
    fn set(&mut self, key: String, value: String) {
        match self.index.get(&key) {
            Some(&i) => {
                if let Some(entry) = self.list.get_mut(i) {
                    entry.1 = value;
                }
            }
            None => {
                self.index.insert(key.clone(), self.list.len());
                self.list.push((key, value));
            }
        }
    }
}
