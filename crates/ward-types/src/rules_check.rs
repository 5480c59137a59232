//! A CheckConfig's rules (core/v2 `check_config.go`, `check_proxy_requests.go`,
//! `hook.go` `HookList`, `time_window.go`), and the cron, RFC 3339 and time-of-day forms
//! they use.

use crate::rules::{
    assets, check_list, check_secrets, env_vars, int, is_sensu_name, is_subscription, items, obj,
    reference, required, text, uint, Spec,
};
use crate::schema::{join, DAYS};
use crate::{field_error, FieldError, Kind};
use serde_json::Value;

/// Splits a cron expression's `CRON_TZ=Zone ` or `TZ=Zone ` prefix (robfig/cron's
/// form, which Sensu accepts) from the schedule: `(Some(Tz::Europe__Paris), "0 9 * * *")`.
/// The zone must be a name of the tz database that chrono-tz carries (`UTC`,
/// `America/New_York`, `Etc/GMT+5`; case matters, as in Go's `time.LoadLocation`).
pub fn split_cron_zone(expr: &str) -> Result<(Option<chrono_tz::Tz>, &str), String> {
    let expr = expr.trim();
    let Some(rest) = expr
        .strip_prefix("CRON_TZ=")
        .or_else(|| expr.strip_prefix("TZ="))
    else {
        return Ok((None, expr));
    };
    let (zone, schedule) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let plausible = !zone.is_empty()
        && zone.len() <= 64
        && zone.starts_with(|c: char| c.is_ascii_alphabetic())
        && !zone.ends_with('/')
        && !zone.contains("//")
        && !zone.contains("..")
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    if !plausible {
        return Err(format!(
            "{zone:?} is not a time zone name (such as UTC or Europe/Paris)"
        ));
    }
    let Ok(tz) = zone.parse::<chrono_tz::Tz>() else {
        return Err(format!(
            "{zone:?} is not a time zone of the tz database (such as UTC or Europe/Paris)"
        ));
    };
    let schedule = schedule.trim();
    if schedule.is_empty() {
        return Err(format!("no schedule after the time zone {zone:?}"));
    }
    Ok((Some(tz), schedule))
}

/// A schedule's shape: a descriptor (`@hourly`, `@every 1m`) or 5 or 6 fields. (The
/// backend parses it fully.)
fn check_cron(at: &str, expr: &str) -> Result<(), FieldError> {
    let (_, schedule) = split_cron_zone(expr).map_err(|e| field_error(at, e))?;
    let fields = schedule.split_whitespace().count();
    if !schedule.starts_with('@') && !(5..=6).contains(&fields) {
        return Err(field_error(
            at,
            format!("{schedule:?} is not a cron schedule: use 5 fields (minute hour day month weekday) or a descriptor such as @hourly"),
        ));
    }
    Ok(())
}

/// Go's `time.Kitchen` (`3:04PM`), spaces removed first as Sensu does (`3:00 PM`).
fn is_kitchen(s: &str) -> bool {
    let s: String = s.chars().filter(|c| *c != ' ').collect();
    let Some(t) = s.strip_suffix("AM").or_else(|| s.strip_suffix("PM")) else {
        return false;
    };
    let Some((h, m)) = t.split_once(':') else {
        return false;
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    digits(h)
        && h.len() <= 2
        && h.parse::<u8>().is_ok_and(|h| h <= 12)
        && m.len() == 2
        && digits(m)
        && m.parse::<u8>().is_ok_and(|m| m < 60)
}

/// `subdue` / `when`: `{days: {all|sunday…: [{begin, end}]}}`.
pub(crate) fn when(at: &str, w: Option<&Spec>) -> Result<(), FieldError> {
    let Some(days) = w.and_then(|w| obj(w, "days")) else {
        return Ok(());
    };
    for day in DAYS {
        for (i, r) in items(days, day).iter().enumerate() {
            let r = r.as_object().cloned().unwrap_or_default();
            for k in ["begin", "end"] {
                let v = text(&r, k).unwrap_or_default();
                if !is_kitchen(v) {
                    return Err(field_error(
                        format!("{at}.days.{day}[{i}].{k}"),
                        format!("{v:?} is not a time of day such as 3:04PM"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// RFC 3339 (`2024-01-31T17:00:00-05:00`) as Unix seconds.
pub(crate) fn rfc3339(s: &str) -> Option<i64> {
    rfc3339_offset(s).map(|(t, _)| t)
}

/// RFC 3339 as Unix seconds and the time's offset east of UTC, in seconds (`-05:00`:
/// -18000; `Z`: 0). Fractions of a second are dropped.
pub(crate) fn rfc3339_offset(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |a: usize, z: usize| -> Option<i64> {
        s.get(a..z)?.bytes().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then_some(n * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, se) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &f[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (oh, om) = rest.get(1..)?.split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            let (oh, om) = (oh.parse::<i64>().ok()?, om.parse::<i64>().ok()?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset, offset))
}

fn subdues(p: &str, spec: &Spec) -> Result<(), FieldError> {
    for (i, w) in items(spec, "subdues").iter().enumerate() {
        let at = format!("{}[{i}]", join(p, "subdues"));
        let w = w.as_object().cloned().unwrap_or_default();
        let mut times = [0; 2];
        for (j, k) in ["begin", "end"].into_iter().enumerate() {
            let v = text(&w, k).unwrap_or_default();
            times[j] = rfc3339(v).ok_or_else(|| {
                field_error(
                    format!("{at}.{k}"),
                    format!("{v:?} is not an RFC 3339 time such as 2024-01-31T17:00:00-05:00"),
                )
            })?;
        }
        if times[1] < times[0] {
            return Err(field_error(format!("{at}.end"), "is before begin"));
        }
        check_list(
            &at,
            &w,
            "repeat",
            |r| crate::subdue::REPEATS.contains(&r),
            &format!("a repeat period ({})", crate::subdue::REPEATS.join(", ")),
        )?;
    }
    Ok(())
}

pub(crate) fn check_config(p: &str, spec: &Spec) -> Result<(), FieldError> {
    let k = Kind::CheckConfig;
    required(k, p, spec, "command")?;
    let interval = uint(spec, "interval");
    if let Some(cron) = text(spec, "cron") {
        if interval > 0 {
            return Err(field_error(
                join(p, "cron"),
                "set either interval or cron, not both",
            ));
        }
        check_cron(&join(p, "cron"), cron)?;
    }
    let ttl = int(spec, "ttl");
    if ttl > 0 && ttl <= interval as i64 {
        return Err(field_error(
            join(p, "ttl"),
            format!("must be greater than the interval ({interval})"),
        ));
    }
    let (low, high) = (
        uint(spec, "low_flap_threshold"),
        uint(spec, "high_flap_threshold"),
    );
    if low != 0 && high != 0 && low >= high {
        return Err(field_error(
            join(p, "low_flap_threshold"),
            format!("must be below high_flap_threshold ({high})"),
        ));
    }
    check_list(
        p,
        spec,
        "subscriptions",
        is_subscription,
        "a subscription (letters, digits, '_', '.', '-', and at most one ':' inside)",
    )?;
    env_vars(p, spec)?;
    assets(p, spec)?;
    check_secrets(p, spec)?;
    if let Some(n) = text(spec, "proxy_entity_name") {
        if !is_sensu_name(n) {
            return Err(field_error(
                join(p, "proxy_entity_name"),
                format!("{n:?} is not a valid name"),
            ));
        }
    }
    if let Some(pr) = obj(spec, "proxy_requests") {
        let cov = uint(pr, "splay_coverage");
        if cov > 100 {
            return Err(field_error(
                join(p, "proxy_requests.splay_coverage"),
                "must be from 0 to 100",
            ));
        }
        if pr.get("splay").and_then(Value::as_bool) == Some(true) && cov == 0 {
            return Err(field_error(
                join(p, "proxy_requests.splay_coverage"),
                "must be above 0 when splay is true",
            ));
        }
        check_list(
            &join(p, "proxy_requests"),
            pr,
            "entity_attributes",
            |s| !s.trim().is_empty(),
            "an expression",
        )?;
    }
    const FORMATS: [&str; 5] = [
        "nagios_perfdata",
        "graphite_plaintext",
        "opentsdb_line",
        "influxdb_line",
        "prometheus_text",
    ];
    if let Some(f) = text(spec, "output_metric_format") {
        if !FORMATS.contains(&f) {
            return Err(field_error(
                join(p, "output_metric_format"),
                format!("{f:?} is not a metric format; use {}", FORMATS.join(", ")),
            ));
        }
    }
    for (i, t) in items(spec, "output_metric_tags").iter().enumerate() {
        if t.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            return Err(field_error(
                format!("{}[{i}].name", join(p, "output_metric_tags")),
                "is required",
            ));
        }
    }
    for (i, t) in items(spec, "output_metric_thresholds").iter().enumerate() {
        let at = format!("{}[{i}]", join(p, "output_metric_thresholds"));
        if t.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            return Err(field_error(format!("{at}.name"), "is required"));
        }
        for (j, r) in t
            .get("thresholds")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            for k in ["min", "max"] {
                let v = r.get(k).and_then(Value::as_str).unwrap_or_default();
                if !v.is_empty() && v.trim().parse::<f64>().is_err() {
                    return Err(field_error(
                        format!("{at}.thresholds[{j}].{k}"),
                        format!("{v:?} is not a number"),
                    ));
                }
            }
        }
    }
    const SEVERITIES: [&str; 5] = ["ok", "warning", "critical", "unknown", "non-zero"];
    for (i, h) in items(spec, "check_hooks").iter().enumerate() {
        let at = format!("{}[{i}]", join(p, "check_hooks"));
        let h = h.as_object().cloned().unwrap_or_default();
        if h.is_empty() {
            return Err(field_error(
                at,
                "must name a status and its hooks, such as {\"critical\": [hook]}",
            ));
        }
        for (t, hooks) in &h {
            let status = t.bytes().all(|b| b.is_ascii_digit())
                && t.parse::<u8>().is_ok()
                && (t == "0" || !t.starts_with('0'));
            if !status && !SEVERITIES.contains(&t.as_str()) {
                return Err(field_error(
                    format!("{at}.{t}"),
                    "is not a hook type: use 0 to 255, ok, warning, critical, unknown or non-zero",
                ));
            }
            let hooks = hooks.as_array().map(Vec::as_slice).unwrap_or_default();
            if hooks.is_empty() {
                return Err(field_error(format!("{at}.{t}"), "lists no hooks"));
            }
            for (j, n) in hooks.iter().enumerate() {
                let n = n.as_str().unwrap_or_default();
                if !is_sensu_name(n) {
                    return Err(field_error(
                        format!("{at}.{t}[{j}]"),
                        format!("{n:?} is not a hook name"),
                    ));
                }
            }
        }
    }
    when(&join(p, "subdue"), obj(spec, "subdue"))?;
    subdues(p, spec)?;
    for (i, r) in items(spec, "pipelines").iter().enumerate() {
        reference(
            &format!("{}[{i}]", join(p, "pipelines")),
            r.as_object(),
            &["core/v2.Pipeline"],
        )?;
    }
    if let Some(f) = obj(spec, "fallback_pipeline") {
        if !items(spec, "pipelines").is_empty() {
            return Err(field_error(
                join(p, "fallback_pipeline"),
                "set either pipelines or fallback_pipeline, not both",
            ));
        }
        reference(
            &join(p, "fallback_pipeline"),
            Some(f),
            &["core/v2.Pipeline"],
        )?;
    }
    Ok(())
}
