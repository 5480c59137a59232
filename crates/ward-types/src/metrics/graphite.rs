//! `graphite_plaintext`: `path[;tag=value…] value timestamp`, one metric per line.

use super::{gonum, scan_lines, Collector, Point};

/// Sensu's reading: the output trimmed, then per line exactly three fields separated by
/// single spaces; the path may carry `;name=value` tags (one bad tag drops the line); the
/// value is a Go float and the timestamp a Go integer, taken as given.
pub(super) fn parse(output: &str, out: &mut Collector) {
    for (n, line) in scan_lines(output.trim()) {
        let Ok(line) = line else {
            out.line_too_long(n);
            return;
        };
        let mut fields = line.split(' ');
        let (Some(series), Some(value), Some(timestamp), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            out.error(
                n,
                "graphite plaintext needs exactly 3 fields: path value timestamp",
            );
            continue;
        };
        let Some((name, tags)) = series_tags(series) else {
            out.error(n, "a graphite tag must be name=value");
            continue;
        };
        let Some(value) = gonum::parse_float(value) else {
            out.error(n, "the graphite value must be a number");
            continue;
        };
        let Some(timestamp) = gonum::parse_int(timestamp) else {
            out.error(n, "the graphite timestamp must be an integer");
            continue;
        };
        let point = Point {
            name: name.to_string(),
            value,
            timestamp,
            tags,
        };
        if !out.point(n, point) {
            return;
        }
    }
}

/// `path;a=1;b=2` → (`path`, [(a, 1), (b, 2)]); `None` when a tag is not exactly one `=`.
fn series_tags(series: &str) -> Option<(&str, Vec<(String, String)>)> {
    let mut parts = series.split(';');
    let name = parts.next().unwrap_or_default();
    let tags = parts
        .map(|tag| {
            let mut kv = tag.split('=');
            match (kv.next(), kv.next(), kv.next()) {
                (Some(k), Some(v), None) => Some((k.to_string(), v.to_string())),
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()?;
    Some((name, tags))
}
