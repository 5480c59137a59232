//! Sensu's `when` time windows (an EventFilter's `when`): `days` maps `all`, `sunday` …
//! `saturday` to lists of `{begin, end}` in the 12-hour clock (`5:00 PM`, spaces ignored),
//! read in UTC. A window whose end is before its begin crosses midnight. Now is in the
//! windows when it is in one of `all`'s or today's.

use serde_json::Value;

/// Minutes since midnight of a `3:04PM` time (spaces ignored, as Sensu).
fn kitchen(field: &str, s: &str) -> Result<u32, String> {
    let t: String = s.chars().filter(|c| *c != ' ').collect();
    let bad = || format!("{field}: {s:?} is not a time like 5:00PM");
    let upper = t.to_ascii_uppercase();
    let (clock, pm) = if let Some(c) = upper.strip_suffix("PM") {
        (c, true)
    } else if let Some(c) = upper.strip_suffix("AM") {
        (c, false)
    } else {
        return Err(bad());
    };
    let (h, m) = clock.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&h) || m > 59 || clock.len() > 5 || m >= 60 {
        return Err(bad());
    }
    Ok((h % 12 + if pm { 12 } else { 0 }) * 60 + m)
}

use crate::schema::DAYS;

/// Checks every window of a `when`: the error names the field.
pub fn check(when: &Value) -> Result<(), String> {
    in_windows(when, 0).map(|_| ())
}

/// Whether `now` (Unix seconds) is inside the windows, read in UTC.
pub fn in_windows(when: &Value, now: i64) -> Result<bool, String> {
    let days = match when.get("days") {
        None | Some(Value::Null) => return Ok(false),
        Some(d) => d,
    };
    let secs_of_day = now.rem_euclid(86_400);
    let minute = (secs_of_day / 60) as u32;
    let second = (secs_of_day % 60) as u32;
    // 1970-01-01 was a Thursday; DAYS is `all`, then Sunday to Saturday.
    let weekday = DAYS[1 + (now.div_euclid(86_400) + 4).rem_euclid(7) as usize];
    let mut inside = false;
    for day in DAYS {
        let Some(list) = days.get(day).and_then(Value::as_array) else {
            continue;
        };
        for (i, w) in list.iter().enumerate() {
            let field = |k: &str| format!("when.days.{day}[{i}].{k}");
            let get = |k: &str| {
                w.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{}: is required (a time like 5:00PM)", field(k)))
            };
            let begin = kitchen(&field("begin"), get("begin")?)?;
            let end = kitchen(&field("end"), get("end")?)?;
            if day != "all" && day != weekday {
                continue;
            }
            // Sensu compares whole times: the end minute counts up to its :00 second.
            let at_or_before_end = |end: u32| minute < end || (minute == end && second == 0);
            let hit = if end < begin {
                minute >= begin || at_or_before_end(end)
            } else {
                minute >= begin && at_or_before_end(end)
            };
            inside |= hit;
        }
    }
    Ok(inside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // 1700000000 is Tuesday 2023-11-14 22:13:20 UTC.
    const TUE_2213: i64 = 1_700_000_000;

    #[test]
    fn windows_are_read_in_utc_for_all_days_and_today() {
        let w = json!({"days": {"all": [{"begin": "10:00 PM", "end": "11:00 PM"}]}});
        assert_eq!(in_windows(&w, TUE_2213), Ok(true));
        assert_eq!(in_windows(&w, TUE_2213 + 3600), Ok(false));
        let w = json!({"days": {"monday": [{"begin": "9:00 PM", "end": "11:30 PM"}]}});
        assert_eq!(in_windows(&w, TUE_2213), Ok(false));
        let w = json!({"days": {"tuesday": [{"begin": "9:00PM", "end": "11:30PM"}]}});
        assert_eq!(in_windows(&w, TUE_2213), Ok(true));
    }

    #[test]
    fn a_window_ending_before_it_begins_crosses_midnight() {
        let w = json!({"days": {"all": [{"begin": "5:00 PM", "end": "8:00 AM"}]}});
        assert_eq!(in_windows(&w, TUE_2213), Ok(true));
        // 12:13 UTC the next day: outside.
        assert_eq!(in_windows(&w, TUE_2213 + 14 * 3600), Ok(false));
        // 02:13: inside.
        assert_eq!(in_windows(&w, TUE_2213 + 4 * 3600), Ok(true));
    }

    #[test]
    fn bad_times_name_the_field() {
        let w = json!({"days": {"friday": [{"begin": "25:00", "end": "8:00 AM"}]}});
        assert_eq!(
            check(&w),
            Err("when.days.friday[0].begin: \"25:00\" is not a time like 5:00PM".into())
        );
        let w = json!({"days": {"all": [{"begin": "1:00 PM"}]}});
        assert!(check(&w).unwrap_err().starts_with("when.days.all[0].end"));
    }
}
