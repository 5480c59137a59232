//! Metric extraction: a check's output turned into Sensu Go metric points the way Sensu
//! Go's agent (6.12, `agent/transformers` and `agent/check_handler.go`) does it, then the
//! check's `output_metric_tags` added and its `output_metric_thresholds` evaluated.
//!
//! ```
//! use ward_types::metrics::{self, Format};
//! let output = "cpu.user;core=0 12.5 1700000000\ncpu.user;core=1 97 1700000000\n";
//! let mut parsed = metrics::parse(Format::GraphitePlaintext, output, 1700000005, 1700000006);
//! assert_eq!(parsed.points.len(), 2);
//! metrics::add_tags(
//!     Format::GraphitePlaintext,
//!     &mut parsed.points,
//!     &serde_json::json!([{"name": "host", "value": "web1"}]),
//! );
//! let rules = serde_json::json!([{"name": "cpu.user", "tags": [{"name": "core", "value": "1"}],
//!                                 "thresholds": [{"max": "90", "status": 2}]}]);
//! let verdict = metrics::thresholds(&rules, &parsed.points, 0);
//! assert_eq!(verdict.status, Some(2));
//! let (key, _) = &verdict.annotations[0];
//! assert_eq!(key, "sensu.io/output_metric_thresholds/cpu.user.1/max/critical");
//! ```
//!
//! What follows Sensu, quirks included (each has a test):
//! - Every parser reads numbers as Go's `strconv` does (`1_000`, `0x1p4`, `Inf`, `NaN` are
//!   numbers to graphite, influx and opentsdb; a value out of `f64` range rejects the line).
//! - graphite, influx and opentsdb trim the output, then read it line by line as Go's
//!   `bufio.Scanner` does: a line longer than 65535 bytes ends the reading there.
//! - nagios reads only outputs with exactly one `|`; a bad item skips that item.
//! - influx: a bad tag, field or timestamp drops the whole line; field values must be
//!   floats (`82i` is rejected); the timestamp keeps its first 10 characters (seconds).
//! - prometheus: parsing stops at the first error, keeping what came before it, including
//!   the sample on the failing line when its value was read (a bad timestamp, trailing
//!   blanks after the value); the last line counts only if the output ends with a newline;
//!   NaN samples are dropped; explicit timestamps (milliseconds) are kept, in seconds.
//! - The check's tags come first in graphite points and last in nagios, influx and opentsdb
//!   points; in prometheus points they replace same-named labels (`__name__` renames).
//!
//! Where Sensu's result is not fixed, Ward picks:
//! - prometheus families come out in the order they first appear (Go ranges over a map)
//!   and their tags sorted by name (they come from a Go map);
//! - a summary count or bucket value outside `u64` converts as Rust's `as u64` does (Go's
//!   float-to-uint64 conversion differs between amd64 and arm64);
//! - threshold annotations come in the order they were first made (Sensu keeps a map).
//!
//! Where Ward differs on purpose:
//! - [`Point::to_json`] always writes `tags` as an array (Sensu writes `null` for a
//!   graphite point when neither the line nor the check has tags) and writes a non-finite
//!   value as `null` (Go's JSON encoder refuses it, so a Sensu agent on the JSON transport
//!   drops the whole event).
//! - Graphite points never share tags: Sensu `append`s each line's tags onto the check's tag
//!   slice, so when that slice has spare capacity a later line overwrites an earlier
//!   point's tags.
//! - A parse stops once its points hold more than 64 MiB of names and tags (a hostile
//!   output could otherwise copy one long label onto many points); an error says so.

use serde_json::{json, Map, Value};
use std::fmt;

mod gonum;
mod graphite;
mod influxdb;
mod nagios;
mod opentsdb;
mod prometheus;
pub mod statsd;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_prometheus;
#[cfg(test)]
mod tests_realistic;
#[cfg(test)]
mod tests_values;
mod thresholds;

pub use thresholds::{thresholds, Verdict};

/// A check's `output_metric_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `nagios_perfdata`: `text | label=value[UOM];warn;crit;min;max …`
    NagiosPerfdata,
    /// `graphite_plaintext`: `path[;tag=value…] value timestamp` per line
    GraphitePlaintext,
    /// `influxdb_line`: `measurement[,tag=value…] field=value[,…] [timestamp]` per line
    InfluxdbLine,
    /// `opentsdb_line`: `name timestamp value tag=value…` per line
    OpentsdbLine,
    /// `prometheus_text`: the Prometheus text exposition format
    PrometheusText,
}

impl Format {
    /// Every format, in the order Sensu's documentation lists them.
    pub const ALL: [Format; 5] = [
        Format::NagiosPerfdata,
        Format::GraphitePlaintext,
        Format::InfluxdbLine,
        Format::OpentsdbLine,
        Format::PrometheusText,
    ];

    /// The format a check names (`"graphite_plaintext"`); `None` for any other string,
    /// which Sensu's agent answers with no metrics at all.
    pub fn from_name(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The name a check uses for this format.
    pub fn name(self) -> &'static str {
        match self {
            Format::NagiosPerfdata => "nagios_perfdata",
            Format::GraphitePlaintext => "graphite_plaintext",
            Format::InfluxdbLine => "influxdb_line",
            Format::OpentsdbLine => "opentsdb_line",
            Format::PrometheusText => "prometheus_text",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One measurement: Sensu's `MetricPoint`. `timestamp` is in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: String,
    pub value: f64,
    pub timestamp: i64,
    pub tags: Vec<(String, String)>,
}

impl Point {
    /// The point as Sensu's JSON writes it: `{"name", "value", "timestamp", "tags": [{"name",
    /// "value"}]}`, leaving out an empty name, tag name or tag value as Go's `omitempty`
    /// does. A NaN or infinite value is written as `null`.
    pub fn to_json(&self) -> Value {
        let mut point = Map::new();
        if !self.name.is_empty() {
            point.insert("name".into(), json!(self.name));
        }
        point.insert("value".into(), json!(self.value));
        point.insert("timestamp".into(), json!(self.timestamp));
        let tags = self
            .tags
            .iter()
            .map(|(name, value)| {
                let mut tag = Map::new();
                if !name.is_empty() {
                    tag.insert("name".into(), json!(name));
                }
                if !value.is_empty() {
                    tag.insert("value".into(), json!(value));
                }
                Value::Object(tag)
            })
            .collect();
        point.insert("tags".into(), Value::Array(tags));
        Value::Object(point)
    }
}

/// What a parse found: the points, and what it skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub points: Vec<Point>,
    /// One entry per line (nagios: per perfdata item) Sensu's agent would log and skip.
    pub errors: Vec<LineError>,
}

/// Why part of the output gave no points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line of the output (nagios: perfdata item; prometheus: the line the parser
    /// stopped at); 0 when the whole output is at fault.
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

/// Reads `output` as `format`. `executed` (the check's `executed`, seconds) stamps nagios
/// points; `now` (seconds) stamps influx lines without a timestamp and prometheus samples
/// without one. Never panics; the work and the result are bounded by the output's length.
pub fn parse(format: Format, output: &str, executed: i64, now: i64) -> Parsed {
    let mut out = Collector::default();
    match format {
        Format::NagiosPerfdata => nagios::parse(output, executed, &mut out),
        Format::GraphitePlaintext => graphite::parse(output, &mut out),
        Format::InfluxdbLine => influxdb::parse(output, now, &mut out),
        Format::OpentsdbLine => opentsdb::parse(output, &mut out),
        Format::PrometheusText => prometheus::parse(output, now, &mut out),
    }
    out.parsed
}

/// Adds a check's `output_metric_tags` (`[{"name", "value"}]`) to points `format` produced,
/// where Sensu puts them: before the point's own tags for graphite, after them for nagios,
/// influx and opentsdb; for prometheus each replaces the label of its name (a tag named
/// `__name__` renames the point) and the tags stay sorted. An entry missing its name or
/// value counts it as `""`, as Go's decoder does; entries that are not objects are skipped.
///
/// Tag values are used as given: Sensu resolves templates such as `{{ .name }}` in them
/// with the rest of the check's tokens before the check runs, not here.
pub fn add_tags(format: Format, points: &mut [Point], tags: &Value) {
    let tags: Vec<(String, String)> = tags
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|t| t.is_object())
        .map(|t| (text(t, "name").to_string(), text(t, "value").to_string()))
        .collect();
    if tags.is_empty() {
        return;
    }
    for point in points.iter_mut() {
        match format {
            Format::GraphitePlaintext => {
                point.tags.splice(0..0, tags.iter().cloned());
            }
            Format::PrometheusText => {
                for (name, value) in &tags {
                    prometheus::set_label(point, name, value);
                }
            }
            _ => point.tags.extend(tags.iter().cloned()),
        }
    }
}

/// A string field of a JSON object, `""` when absent or not a string.
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The longest line Go's `bufio.Scanner` returns with its default 64 KiB buffer.
const MAX_LINE: usize = 64 * 1024 - 1;

/// How much name and tag text the points of one parse may hold.
const OUTPUT_LIMIT: usize = 64 << 20;

/// The lines of `text` as Sensu reads them with `bufio.Scanner`: split at `\n`, one `\r`
/// dropped from each line's end, no empty last line. A line over [`MAX_LINE`] bytes comes
/// out as `Err` and ends the iteration (the scanner stops there).
pub(crate) fn scan_lines(text: &str) -> impl Iterator<Item = (usize, Result<&str, ()>)> {
    let mut rest = Some(text).filter(|t| !t.is_empty());
    let mut number = 0;
    std::iter::from_fn(move || {
        let current = rest?;
        let (line, after) = match current.split_once('\n') {
            Some((line, after)) => (line, Some(after).filter(|a| !a.is_empty())),
            None => (current, None),
        };
        number += 1;
        if line.len() > MAX_LINE {
            rest = None;
            return Some((number, Err(())));
        }
        rest = after;
        Some((number, Ok(line.strip_suffix('\r').unwrap_or(line))))
    })
}

/// Gathers points and errors, and stops a parse whose points grow past [`OUTPUT_LIMIT`].
#[derive(Default)]
pub(crate) struct Collector {
    parsed: Parsed,
    used: usize,
    full: bool,
}

impl Collector {
    pub(crate) fn error(&mut self, line: usize, reason: &'static str) {
        self.parsed.errors.push(LineError { line, reason });
    }

    /// Keeps `point`; false (and the point dropped) once the limit is reached, after which
    /// the parser should stop.
    pub(crate) fn point(&mut self, line: usize, point: Point) -> bool {
        if self.full {
            return false;
        }
        let size = 32
            + point.name.len()
            + point
                .tags
                .iter()
                .map(|(k, v)| k.len() + v.len() + 16)
                .sum::<usize>();
        self.used = self.used.saturating_add(size);
        if self.used > OUTPUT_LIMIT {
            self.full = true;
            self.error(
                line,
                "the metric points exceed 64 MiB of names and tags; the rest is ignored",
            );
            return false;
        }
        self.parsed.points.push(point);
        true
    }

    pub(crate) fn line_too_long(&mut self, line: usize) {
        self.error(
            line,
            "line longer than 65535 bytes; Sensu's line scanner stops here",
        );
    }
}
