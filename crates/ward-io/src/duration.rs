//! Durations as cfssl writes them (Go's `time.ParseDuration`: `17520h`, `1h30m`, `90s`), plus
//! whole days (`30d`), which operators reach for in expiry thresholds.

use crate::error::{Error, Result};
use std::time::Duration;

/// Parses a Go-style duration (`ns us µs ms s m h`, concatenated, with decimals) or a
/// day count (`30d`). Negative and zero durations are refused: every duration in Ward is a
/// lifetime or a threshold.
pub fn parse_duration(what: &str, value: &str) -> Result<Duration> {
    let bad = |reason: &str| Error::BadDuration {
        what: what.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let s = value.trim();
    if s.is_empty() {
        return Err(bad("empty duration"));
    }
    if s.starts_with('-') {
        return Err(bad("negative duration"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit"))?;
        if num_len == 0 {
            return Err(bad("expected a number"));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad("not a number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        total += number * seconds;
    }
    if total <= 0.0 {
        return Err(bad("duration must be positive"));
    }
    if total > 1e11 {
        return Err(bad("duration is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Renders a duration the way cfssl configs spell them (whole hours when exact).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(
            parse_duration("t", "17520h").unwrap().as_secs(),
            17520 * 3600
        );
        assert_eq!(parse_duration("t", "1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("t", "1.5h").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("t", "30d").unwrap().as_secs(), 30 * 86400);
        assert_eq!(parse_duration("t", "500ms").unwrap().as_millis(), 500);
    }

    #[test]
    fn bad_durations_are_refused_with_the_reason() {
        for v in ["", "10", "h", "-5h", "5y", "0h", "1h-2m"] {
            let e = parse_duration("expiry", v).unwrap_err().to_string();
            assert!(e.contains("expiry: bad duration"), "{v}: {e}");
        }
    }
}
