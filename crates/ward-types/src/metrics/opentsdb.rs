//! `opentsdb_line`: `name timestamp value tag=value [tag=value…]`, one metric per line.

use super::{gonum, scan_lines, Collector, Point};

/// Sensu's reading: the output trimmed, then per line at least four fields separated by
/// single spaces: the name, an integer timestamp (13 characters long means milliseconds,
/// cut to seconds), a Go float, and one or more `name=value` tags (a bad one drops the
/// line).
pub(super) fn parse(output: &str, out: &mut Collector) {
    for (n, line) in scan_lines(output.trim()) {
        let Ok(line) = line else {
            out.line_too_long(n);
            return;
        };
        let mut fields = line.split(' ');
        let (Some(name), Some(timestamp), Some(value), Some(first_tag)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            out.error(
                n,
                "an opentsdb line needs a name, timestamp, value and a tag",
            );
            continue;
        };
        let Some(mut seconds) = gonum::parse_int(timestamp) else {
            out.error(n, "the opentsdb timestamp must be an integer");
            continue;
        };
        if timestamp.len() == 13 {
            seconds /= 1000;
        }
        let Some(value) = gonum::parse_float(value) else {
            out.error(n, "the opentsdb value must be a number");
            continue;
        };
        let tags = std::iter::once(first_tag)
            .chain(fields)
            .map(|tag| {
                let mut kv = tag.split('=');
                match (kv.next(), kv.next(), kv.next()) {
                    (Some(k), Some(v), None) => Some((k.to_string(), v.to_string())),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>();
        let Some(tags) = tags else {
            out.error(n, "an opentsdb tag must be name=value");
            continue;
        };
        let point = Point {
            name: name.to_string(),
            value,
            timestamp: seconds,
            tags,
        };
        if !out.point(n, point) {
            return;
        }
    }
}
