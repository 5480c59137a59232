//! `influxdb_line`: `measurement[,tag=value…] field=value[,field=value…] [timestamp]`, one
//! line per measurement and one point (`measurement.field`) per field.

use super::{gonum, scan_lines, Collector, Point};

/// Sensu's reading: the output trimmed, then per line two or three fields separated by
/// unescaped single spaces. Tags and fields split at unescaped `,` and `=`; names and tag
/// values lose their escaping backslashes (`\\` stays one); field values must read as Go
/// floats as written. The timestamp keeps its first 10 characters (nanoseconds become
/// seconds); a line without one gets `now`. Any bad part drops the whole line.
pub(super) fn parse(output: &str, now: i64, out: &mut Collector) {
    'lines: for (n, line) in scan_lines(output.trim()) {
        let Ok(line) = line else {
            out.line_too_long(n);
            return;
        };
        let args = split_unescaped(line, ' ');
        let (series, field_set, timestamp) = match args.as_slice() {
            [series, fields] => (series, fields, None),
            [series, fields, timestamp] => (series, fields, Some(timestamp)),
            _ => {
                out.error(n, "influxdb line needs 2 fields and an optional timestamp");
                continue;
            }
        };
        let mut series = split_unescaped(series, ',').into_iter();
        let measurement = unescape(&series.next().unwrap_or_default());
        let tags = series
            .map(|tag| match split_unescaped(&tag, '=').as_slice() {
                [k, v] => Some((unescape(k), unescape(v))),
                _ => None,
            })
            .collect::<Option<Vec<_>>>();
        let Some(tags) = tags else {
            out.error(n, "an influxdb tag must be key=value");
            continue;
        };
        let mut fields = Vec::new();
        for field in split_unescaped(field_set, ',') {
            let (key, value) = match split_unescaped(&field, '=').as_slice() {
                [key, value] => (unescape(key), gonum::parse_float(value)),
                _ => {
                    out.error(n, "an influxdb field must be key=value");
                    continue 'lines;
                }
            };
            let Some(value) = value else {
                out.error(n, "an influxdb field value must be a float");
                continue 'lines;
            };
            fields.push((key, value));
        }
        let timestamp = match timestamp {
            None => now,
            Some(t) => {
                // Go slices the first 10 bytes; a cut inside a character is no integer
                // either way.
                let cut = if t.len() > 10 {
                    t.get(..10)
                } else {
                    Some(t.as_str())
                };
                match cut.and_then(gonum::parse_int) {
                    Some(seconds) => seconds,
                    None => {
                        out.error(n, "the influxdb timestamp must be an integer");
                        continue;
                    }
                }
            }
        };
        for (key, value) in fields {
            let point = Point {
                name: format!("{measurement}.{key}"),
                value,
                timestamp,
                tags: tags.clone(),
            };
            if !out.point(n, point) {
                return;
            }
        }
    }
}

/// Splits at `sep` except where a backslash escapes it; an escaped separator comes back
/// without its backslash. Sensu masks escaped separators with NUL bytes and unmasks every
/// NUL afterwards, so a NUL already in the text also comes back as `sep`; so here.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let masked = s.replace(&format!("\\{sep}"), "\0");
    masked
        .split(sep)
        .map(|part| part.replace('\0', sep.encode_utf8(&mut [0; 4])))
        .collect()
}

/// Drops escaping backslashes: `\\` becomes `\`, any other backslash goes (a NUL in the
/// text becomes `\`, as in Sensu's masking).
fn unescape(s: &str) -> String {
    s.replace("\\\\", "\0")
        .replace('\\', "")
        .replace('\0', "\\")
}
