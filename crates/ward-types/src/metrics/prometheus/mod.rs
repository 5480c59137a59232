//! `prometheus_text`: the Prometheus text exposition format, read as the Go parser Sensu
//! uses (`expfmt.TextParser`, prometheus/common 0.45) reads it and turned into samples as
//! `expfmt.ExtractSamples` does, then into points as Sensu's transformer does: labels
//! become tags (sorted by name here), plus `prom_type` and, for documented families,
//! `prom_help`; NaN samples are dropped.

use super::{gonum, Collector, Point};
use std::collections::{BTreeMap, HashMap};

mod parser;

/// A family's declared type (`# TYPE`), spelled in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
    /// Accepted by the parser, but no sample is extracted from it.
    GaugeHistogram,
}

impl Kind {
    /// Go upper-cases the word (Unicode-aware: `ſ` is `S`, `ı` is `I`) and looks it up.
    fn from_word(word: &str) -> Option<Kind> {
        let upper: String = word
            .chars()
            .map(|c| match c {
                'ſ' => 'S',
                'ı' => 'I',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        Some(match upper.as_str() {
            "COUNTER" => Kind::Counter,
            "GAUGE" => Kind::Gauge,
            "SUMMARY" => Kind::Summary,
            "UNTYPED" => Kind::Untyped,
            "HISTOGRAM" => Kind::Histogram,
            "GAUGE_HISTOGRAM" => Kind::GaugeHistogram,
            _ => return None,
        })
    }

    /// The `prom_type` tag.
    fn tag(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
            Kind::GaugeHistogram => "gauge_histogram",
        }
    }
}

/// A summary's quantiles or a histogram's buckets, with its sum and count.
#[derive(Debug, Default)]
struct Aggregate {
    /// (quantile, value) or (upper bound, cumulative count).
    entries: Vec<(f64, f64)>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Metric {
    /// The labels in the order written (a summary's `quantile` and a histogram's `le` aside).
    labels: Vec<(String, String)>,
    /// A counter's, gauge's or untyped metric's value, once read.
    value: Option<f64>,
    aggregate: Option<Aggregate>,
    timestamp_ms: Option<i64>,
}

#[derive(Debug)]
struct Family {
    name: String,
    help: Option<String>,
    kind: Option<Kind>,
    metrics: Vec<Metric>,
    /// A summary's or histogram's metrics by their labels.
    by_labels: HashMap<Vec<(String, String)>, usize>,
}

/// Which of a summary's or histogram's series a line feeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Series {
    #[default]
    Plain,
    Count,
    Sum,
}

/// The family `name` belongs to, as Go's `setOrCreateCurrentMF` finds it: its own, else the
/// summary a `_count`/`_sum` name belongs to, else the histogram a `_count`/`_sum`/`_bucket`
/// name belongs to, else a new one.
fn family_of(
    families: &mut Vec<Family>,
    by_name: &mut HashMap<String, usize>,
    name: String,
) -> (usize, Series) {
    if let Some(&i) = by_name.get(&name) {
        return (i, Series::Plain);
    }
    let series = if is_suffixed(&name, "_count") {
        Series::Count
    } else if is_suffixed(&name, "_sum") {
        Series::Sum
    } else {
        Series::Plain
    };
    let base = |suffixes: &[&str]| {
        suffixes
            .iter()
            .find(|s| is_suffixed(&name, s))
            .and_then(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string()
    };
    for (parent, kind) in [
        (base(&["_count", "_sum"]), Kind::Summary),
        (base(&["_count", "_sum", "_bucket"]), Kind::Histogram),
    ] {
        if let Some(&i) = by_name.get(&parent) {
            if families.get(i).and_then(|f| f.kind) == Some(kind) {
                return (i, series);
            }
        }
    }
    by_name.insert(name.clone(), families.len());
    families.push(Family {
        name,
        help: None,
        kind: None,
        metrics: Vec::new(),
        by_labels: HashMap::new(),
    });
    (families.len() - 1, Series::Plain)
}

/// `_count`, `_sum` and `_bucket` count only after at least one other character.
fn is_suffixed(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() && name.ends_with(suffix)
}

pub(super) fn parse(output: &str, now: i64, out: &mut Collector) {
    let read = parser::read(output);
    if let Some(error) = read.error {
        out.error(error.line, error.reason);
    }
    extract(&read.families, now, read.lines, out);
}

/// Go's `Time.Unix()` of `TimeFromUnixNano(ms * 1e6)`, wrapping as Go's int64 does.
fn seconds_of_ms(ms: i64) -> i64 {
    ms.wrapping_mul(1_000_000) / 1_000_000 / 1000
}

/// The samples of every family, in the order the families first appeared.
fn extract(families: &[Family], now: i64, line: usize, out: &mut Collector) {
    let default_seconds = now.wrapping_mul(1000) / 1000;
    for family in families {
        let Some(kind) = family.kind else { continue };
        let help = family.help.as_deref().filter(|h| !h.is_empty());
        let mut emit = |metric: &Metric, suffix: &str, bound: Option<(&str, String)>, value| {
            let mut tags: BTreeMap<&str, String> = metric
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            if let Some((name, text)) = bound {
                tags.insert(name, text);
            }
            tags.insert("prom_type", kind.tag().to_string());
            if let Some(help) = help {
                tags.insert("prom_help", help.to_string());
            }
            if f64::is_nan(value) {
                return true;
            }
            let point = Point {
                name: format!("{}{suffix}", family.name),
                value,
                timestamp: metric.timestamp_ms.map_or(default_seconds, seconds_of_ms),
                tags: tags.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            };
            out.point(line, point)
        };
        for metric in &family.metrics {
            let kept = match kind {
                Kind::Counter | Kind::Gauge | Kind::Untyped => match metric.value {
                    Some(v) => emit(metric, "", None, v),
                    None => true,
                },
                Kind::Summary | Kind::Histogram => {
                    let Some(agg) = &metric.aggregate else {
                        continue;
                    };
                    let (suffix, bound) = if kind == Kind::Summary {
                        ("", "quantile")
                    } else {
                        ("_bucket", "le")
                    };
                    let mut kept = agg
                        .entries
                        .iter()
                        .all(|&(b, v)| emit(metric, suffix, Some((bound, gonum::format_g(b))), v));
                    kept = kept
                        && emit(metric, "_sum", None, agg.sum)
                        && emit(metric, "_count", None, agg.count as f64);
                    let has_inf = agg.entries.iter().any(|&(b, _)| b == f64::INFINITY);
                    if kept && kind == Kind::Histogram && !has_inf {
                        let inf = Some(("le", "+Inf".to_string()));
                        kept = emit(metric, "_bucket", inf, agg.count as f64);
                    }
                    kept
                }
                Kind::GaugeHistogram => true,
            };
            if !kept {
                return;
            }
        }
    }
}

/// Sets a label on a point as Sensu sets a check's tag on a sample: replacing the label of
/// that name (`__name__` is the point's name), keeping the tags sorted.
pub(super) fn set_label(point: &mut Point, name: &str, value: &str) {
    if name == "__name__" {
        point.name = value.replace('\n', "");
        return;
    }
    match point.tags.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        Ok(i) => {
            if let Some(tag) = point.tags.get_mut(i) {
                tag.1 = value.to_string();
            }
        }
        Err(i) => point.tags.insert(i, (name.to_string(), value.to_string())),
    }
}
