//! `nagios_perfdata`: `service text | label=value[UOM];warn;crit;min;max label2=…`

use super::{gonum, Collector, Point};

/// Sensu's reading: the output must hold exactly one `|`; after it, items separated by
/// single spaces; each item's part before the first `;` must be `label=value`; the value
/// keeps only `-`, digits and `.` (so `0.80ms` is 0.8 and `0,` is 0) and must then read as
/// a Go float. Every point is stamped with the check's `executed` time.
pub(super) fn parse(output: &str, executed: i64, out: &mut Collector) {
    let mut halves = output.split('|');
    let (Some(_), Some(perfdata), None) = (halves.next(), halves.next(), halves.next()) else {
        out.error(
            0,
            "nagios perfdata needs the output to hold exactly one '|' before the perfdata",
        );
        return;
    };
    for (n, item) in perfdata.trim().split(' ').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let head = item.split(';').next().unwrap_or_default();
        let mut parts = head.split('=');
        let (Some(label), Some(raw), None) = (parts.next(), parts.next(), parts.next()) else {
            out.error(n + 1, "a perfdata item must be label=value");
            continue;
        };
        let kept: String = raw
            .chars()
            .filter(|c| matches!(c, '-' | '.' | '0'..='9'))
            .collect();
        let Some(value) = gonum::parse_float(&kept) else {
            out.error(n + 1, "a perfdata value must be a number");
            continue;
        };
        let point = Point {
            name: label.replace(' ', "_"),
            value,
            timestamp: executed,
            tags: Vec::new(),
        };
        if !out.point(n + 1, point) {
            return;
        }
    }
}
