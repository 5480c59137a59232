//! StatsD, as Sensu's agent listens for it (UDP 8125; gostatsd inside Sensu): lines
//! `name:value|type[|@rate][|#tag,tag:value]` (`c` counter, `g` gauge, `ms`/`h` timer, `s`
//! set), summed per flush into metric points named as Sensu names them:
//!
//! - counter: `NAME.value` (the sum, each sample divided by its rate) and
//!   `NAME.per_second`;
//! - gauge: `NAME.value` (the last value; `+n`/`-n` moves it);
//! - set: `NAME.value` (how many distinct values);
//! - timer: `NAME.min`, `.max`, `.count`, `.per_second`, `.mean`, `.median`, `.stddev`,
//!   `.sum`, `.sum_squares`, and for the fastest 90%: `.count_90`, `.mean_90`, `.sum_90`,
//!   `.sum_squares_90`, `.upper_90`.
//!
//! Tags (`#region:eu,canary`) become point tags (`canary` with an empty value). A flush
//! forgets everything: a gauge not set again is not sent again. At most [`MAX_SERIES`]
//! series are held between flushes; samples of further ones are refused (counted by the
//! caller).

use super::Point;
use std::collections::{HashMap, HashSet};

/// Series (name and tags) held between two flushes, at most.
pub const MAX_SERIES: usize = 10_000;
/// Timer samples held per series between two flushes, at most (further ones are counted
/// but not kept for the percentiles).
pub const MAX_TIMER_SAMPLES: usize = 10_000;

/// The kind of a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Counter,
    /// `delta` when the value was written with `+` or `-`: a change, not a value.
    Gauge {
        delta: bool,
    },
    Timer,
    /// A set's member, as written.
    Set(String),
}

/// One parsed StatsD line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub value: f64,
    pub kind: Kind,
    /// `@0.1`: the sample stands for 1/rate of them.
    pub rate: f64,
    pub tags: Vec<(String, String)>,
}

/// Parses one line; the error says what is wrong with it.
pub fn parse_line(line: &str) -> Result<Sample, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (name, rest) = line
        .split_once(':')
        .ok_or("no ':' (a StatsD line is name:value|type, such as abc.def:10|c)")?;
    if name.is_empty()
        || name.len() > 255
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("the metric name is empty, too long, or has spaces".into());
    }
    let mut parts = rest.split('|');
    let value = parts.next().unwrap_or("");
    let kind = parts
        .next()
        .ok_or("no '|type' after the value (c, g, ms, h or s)")?;
    let mut rate = 1.0;
    let mut tags = Vec::new();
    for p in parts {
        if let Some(r) = p.strip_prefix('@') {
            rate = r
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && *r <= 1.0)
                .ok_or_else(|| format!("sample rate {r:?} is not a number in (0, 1]"))?;
        } else if let Some(t) = p.strip_prefix('#') {
            for tag in t.split(',').filter(|t| !t.is_empty()) {
                let (k, v) = tag.split_once(':').unwrap_or((tag, ""));
                tags.push((k.to_string(), v.to_string()));
            }
        } else {
            return Err(format!(
                "{p:?} is neither a sample rate (@0.5) nor tags (#k:v)"
            ));
        }
    }
    tags.sort();
    let number = || {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("value {value:?} is not a number"))
    };
    let kind = match kind {
        "c" => Kind::Counter,
        "g" => Kind::Gauge {
            delta: value.starts_with('+') || value.starts_with('-'),
        },
        "ms" | "h" => Kind::Timer,
        "s" => {
            if value.is_empty() {
                return Err("a set's value is empty".into());
            }
            Kind::Set(value.to_string())
        }
        other => return Err(format!("type {other:?} is not one of c, g, ms, h, s")),
    };
    let value = match kind {
        Kind::Set(_) => 0.0,
        _ => number()?,
    };
    Ok(Sample {
        name: name.to_string(),
        value,
        kind,
        rate,
        tags,
    })
}

type Key = (String, Vec<(String, String)>);

#[derive(Default)]
struct Timer {
    values: Vec<f64>,
    /// Samples, scaled by their rates (may exceed `values.len()`).
    count: f64,
}

/// Samples summed since the last flush.
#[derive(Default)]
pub struct Aggregate {
    counters: HashMap<Key, f64>,
    gauges: HashMap<Key, f64>,
    timers: HashMap<Key, Timer>,
    sets: HashMap<Key, HashSet<String>>,
}

impl Aggregate {
    fn series(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.timers.len() + self.sets.len()
    }

    /// Adds a sample; false when it starts a new series and [`MAX_SERIES`] are held.
    pub fn add(&mut self, s: Sample) -> bool {
        let key = (s.name, s.tags);
        let full = self.series() >= MAX_SERIES;
        match s.kind {
            Kind::Counter => {
                if full && !self.counters.contains_key(&key) {
                    return false;
                }
                *self.counters.entry(key).or_default() += s.value / s.rate;
            }
            Kind::Gauge { delta } => {
                if full && !self.gauges.contains_key(&key) {
                    return false;
                }
                let g = self.gauges.entry(key).or_default();
                *g = if delta { *g + s.value } else { s.value };
            }
            Kind::Timer => {
                if full && !self.timers.contains_key(&key) {
                    return false;
                }
                let t = self.timers.entry(key).or_default();
                t.count += 1.0 / s.rate;
                if t.values.len() < MAX_TIMER_SAMPLES {
                    t.values.push(s.value);
                }
            }
            Kind::Set(member) => {
                if full && !self.sets.contains_key(&key) {
                    return false;
                }
                let set = self.sets.entry(key).or_default();
                if set.len() < MAX_TIMER_SAMPLES {
                    set.insert(member);
                }
            }
        }
        true
    }

    pub fn is_empty(&self) -> bool {
        self.series() == 0
    }

    /// The points of everything added since the last flush, stamped `now`, over a flush
    /// interval of `interval` seconds; the aggregate is emptied. Series come out sorted.
    pub fn flush(&mut self, now: i64, interval: f64) -> Vec<Point> {
        let interval = if interval > 0.0 { interval } else { 1.0 };
        let mut out = Vec::new();
        let point = |key: &Key, suffix: &str, value: f64| Point {
            name: format!("{}.{suffix}", key.0),
            value,
            timestamp: now,
            tags: key.1.clone(),
        };
        for (key, sum) in sorted(std::mem::take(&mut self.counters)) {
            out.push(point(&key, "value", sum));
            out.push(point(&key, "per_second", sum / interval));
        }
        for (key, v) in sorted(std::mem::take(&mut self.gauges)) {
            out.push(point(&key, "value", v));
        }
        for (key, set) in sorted(std::mem::take(&mut self.sets)) {
            out.push(point(&key, "value", set.len() as f64));
        }
        for (key, mut t) in sorted(std::mem::take(&mut self.timers)) {
            t.values.sort_by(f64::total_cmp);
            let v = &t.values;
            let n = v.len() as f64;
            let sum: f64 = v.iter().sum();
            let squares: f64 = v.iter().map(|x| x * x).sum();
            let mean = sum / n;
            let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
            let median = if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            };
            for (suffix, value) in [
                ("min", v[0]),
                ("max", v[v.len() - 1]),
                ("count", t.count),
                ("per_second", t.count / interval),
                ("mean", mean),
                ("median", median),
                ("stddev", var.sqrt()),
                ("sum", sum),
                ("sum_squares", squares),
            ] {
                out.push(point(&key, suffix, value));
            }
            // The fastest 90% (at least one sample).
            let k = ((n * 0.9).round() as usize).clamp(1, v.len());
            let fast = &v[..k];
            let fsum: f64 = fast.iter().sum();
            for (suffix, value) in [
                ("count_90", k as f64),
                ("mean_90", fsum / k as f64),
                ("sum_90", fsum),
                ("sum_squares_90", fast.iter().map(|x| x * x).sum()),
                ("upper_90", fast[k - 1]),
            ] {
                out.push(point(&key, suffix, value));
            }
        }
        out
    }
}

fn sorted<V>(m: HashMap<Key, V>) -> Vec<(Key, V)> {
    let mut v: Vec<(Key, V)> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a>(points: &'a [Point], name: &str) -> &'a Point {
        points
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no {name} in {points:?}"))
    }

    #[test]
    fn lines_parse_as_statsd_writes_them() {
        let s = parse_line("abc.def.g:10|c").unwrap();
        assert_eq!(
            (s.name.as_str(), s.value, &s.kind, s.rate),
            ("abc.def.g", 10.0, &Kind::Counter, 1.0)
        );
        let s = parse_line("api.latency:12.5|ms|@0.5|#region:eu,canary").unwrap();
        assert_eq!(s.kind, Kind::Timer);
        assert_eq!(s.rate, 0.5);
        assert_eq!(
            s.tags,
            [
                ("canary".to_string(), String::new()),
                ("region".into(), "eu".into())
            ]
        );
        assert_eq!(
            parse_line("temp:-3|g").unwrap().kind,
            Kind::Gauge { delta: true }
        );
        assert_eq!(
            parse_line("users:alice|s").unwrap().kind,
            Kind::Set("alice".into())
        );
        for (bad, why) in [
            ("nocolon", "no ':'"),
            (":1|c", "name"),
            ("a:1", "no '|type'"),
            ("a:x|c", "not a number"),
            ("a:1|q", "not one of"),
            ("a:1|c|@2", "sample rate"),
            ("a:1|c|x", "neither"),
            ("a:NaN|g", "not a number"),
            ("a:|s", "empty"),
        ] {
            let e = parse_line(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_flush_gives_sensus_points() {
        let mut a = Aggregate::default();
        for l in [
            "hits:1|c",
            "hits:2|c|@0.5",
            "temp:20|g",
            "temp:+5|g",
            "users:alice|s",
            "users:bob|s",
            "users:alice|s",
            "rt:10|ms",
            "rt:20|ms",
            "rt:30|ms",
            "rt:40|ms",
        ] {
            assert!(a.add(parse_line(l).unwrap()), "{l}");
        }
        let p = a.flush(1_700_000_000, 10.0);
        assert_eq!(named(&p, "hits.value").value, 5.0);
        assert_eq!(named(&p, "hits.per_second").value, 0.5);
        assert_eq!(named(&p, "temp.value").value, 25.0);
        assert_eq!(named(&p, "users.value").value, 2.0);
        assert_eq!(named(&p, "rt.min").value, 10.0);
        assert_eq!(named(&p, "rt.max").value, 40.0);
        assert_eq!(named(&p, "rt.count").value, 4.0);
        assert_eq!(named(&p, "rt.mean").value, 25.0);
        assert_eq!(named(&p, "rt.median").value, 25.0);
        assert_eq!(named(&p, "rt.sum").value, 100.0);
        assert_eq!(named(&p, "rt.sum_squares").value, 3000.0);
        assert!((named(&p, "rt.stddev").value - 125f64.sqrt()).abs() < 1e-9);
        assert_eq!(named(&p, "rt.upper_90").value, 40.0);
        assert!(p.iter().all(|x| x.timestamp == 1_700_000_000));
        // Emptied.
        assert!(a.is_empty());
        assert!(a.flush(1, 10.0).is_empty());
    }

    #[test]
    fn series_are_capped() {
        let mut a = Aggregate::default();
        for i in 0..MAX_SERIES {
            assert!(a.add(parse_line(&format!("m{i}:1|c")).unwrap()));
        }
        assert!(!a.add(parse_line("new:1|c").unwrap()));
        assert!(
            a.add(parse_line("m0:1|c").unwrap()),
            "an existing series still counts"
        );
    }
}
