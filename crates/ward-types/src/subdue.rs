//! A CheckConfig's `subdues` (Sensu Go 6.7 and later): periods when the scheduler does not
//! publish the check. Each is `{begin, end, repeat}`, `begin` and `end` in RFC 3339 with
//! an offset (`2022-04-18T17:00:00-07:00`), as Sensu's checks reference describes them:
//!
//! - Without `repeat`, the check is subdued from `begin` to `end`, both included: Sensu
//!   (since 6.8.1) reads a window as half-open, up to a second past `end`.
//! - With `repeat`, that first window still holds; after it, `begin` and `end` give only
//!   times of day. The window recurs, starting at `begin`'s time of day on each day the
//!   repeat names, and ends at the next `end` time of day: a window from 17:00 to 08:00
//!   the next morning repeated `weekdays` starts on Monday to Friday evenings and runs
//!   into the next morning (Friday's into Saturday's), and a `fridays` window written from
//!   Friday 17:00 to Monday 08:00 covers the whole weekend the first time only, then
//!   Friday 17:00 to Saturday 08:00 (the docs' "Repeat and multi-day subdues"). Nothing
//!   repeats before `begin`.
//! - Days and times of day are those of `begin`'s own offset, which is fixed: a window
//!   written with `-07:00` (PDT) stays at `-07:00` in winter, as in Sensu, whose Go times
//!   carry the parsed offset.
//!
//! `repeat` is any of `daily`, `weekdays` (Monday to Friday), `weekends`, `sundays` …
//! `saturdays`, `weekly` (`begin`'s weekday), `monthly` (`begin`'s day of the month; none
//! in a month without it) and `annually` (`begin`'s month and day). Validation at creation
//! refuses the rest and bad times; here a window that does not parse subdues nothing.

use crate::rules_check::rfc3339_offset;
use serde_json::Value;

const DAY: i64 = 86_400;

/// Every `repeat` Sensu knows, the day repeats last ([`WEEKDAYS`]'s order), for the
/// validation's message.
pub const REPEATS: [&str; 13] = [
    "annually",
    "monthly",
    "weekly",
    "weekdays",
    "weekends",
    "daily",
    WEEKDAYS[0],
    WEEKDAYS[1],
    WEEKDAYS[2],
    WEEKDAYS[3],
    WEEKDAYS[4],
    WEEKDAYS[5],
    WEEKDAYS[6],
];

/// The day repeats, Sunday first (`(days since 1970-01-01 + 4) mod 7`: 1970-01-01 was a
/// Thursday).
const WEEKDAYS: [&str; 7] = [
    "sundays",
    "mondays",
    "tuesdays",
    "wednesdays",
    "thursdays",
    "fridays",
    "saturdays",
];

/// Whether a CheckConfig's `subdues` (an array of `{begin, end, repeat}`; anything else
/// subdues nothing) hold at `now_unix` (Unix seconds).
pub fn subdued(subdues: &Value, now_unix: i64) -> bool {
    subdues
        .as_array()
        .is_some_and(|ws| ws.iter().any(|w| in_window(w, now_unix)))
}

fn in_window(w: &Value, t: i64) -> bool {
    let time = |k: &str| w.get(k).and_then(Value::as_str).and_then(rfc3339_offset);
    let (Some((begin, offset)), Some((end, _))) = (time("begin"), time("end")) else {
        return false;
    };
    if end < begin || t < begin {
        return false;
    }
    if t <= end {
        return true;
    }
    let repeat: Vec<&str> = w
        .get("repeat")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if repeat.is_empty() {
        return false;
    }
    // From begin's time of day to the next end time of day (a whole day when they are
    // equal), in seconds; the window holds for that many seconds and one more.
    let len = match (end - begin).rem_euclid(DAY) {
        0 if end > begin => DAY,
        l => l,
    };
    let begin_day = (begin + offset).div_euclid(DAY);
    let time_of_day = (begin + offset).rem_euclid(DAY);
    let today = (t + offset).div_euclid(DAY);
    // A window is at most a day long: only yesterday's or today's can hold now. (One that
    // would start before begin ends at begin at the latest, inside the first window.)
    (today - 1..=today).any(|day| {
        let start = day * DAY + time_of_day - offset;
        start <= t && t <= start + len && repeat.iter().any(|r| repeats_on(r, day, begin_day))
    })
}

/// Whether the repeat `r` of a window that began on `begin_day` starts one on `day`
/// (both days since 1970-01-01 in begin's offset).
fn repeats_on(r: &str, day: i64, begin_day: i64) -> bool {
    let weekday = |d: i64| (d + 4).rem_euclid(7) as usize;
    match r {
        "daily" => true,
        "weekdays" => (1..=5).contains(&weekday(day)),
        "weekends" => matches!(weekday(day), 0 | 6),
        "weekly" => weekday(day) == weekday(begin_day),
        "monthly" => month_day(day).1 == month_day(begin_day).1,
        "annually" => month_day(day) == month_day(begin_day),
        _ => WEEKDAYS.iter().position(|d| *d == r) == Some(weekday(day)),
    }
}

/// The month (1–12) and day of the month of a day counted from 1970-01-01 (the proleptic
/// Gregorian calendar; Howard Hinnant's `civil_from_days`).
fn month_day(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> i64 {
        crate::rules_check::rfc3339(s).expect(s)
    }

    fn window(begin: &str, end: &str, repeat: &[&str]) -> Value {
        json!([{"begin": begin, "end": end, "repeat": repeat}])
    }

    #[test]
    fn an_absolute_window_holds_from_begin_to_end_included() {
        let w = window("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", &[]);
        assert!(!subdued(&w, at("2024-01-01T09:59:59Z")));
        assert!(subdued(&w, at("2024-01-01T10:00:00Z")));
        assert!(subdued(&w, at("2024-01-01T10:30:00Z")));
        assert!(subdued(&w, at("2024-01-01T11:00:00Z")));
        assert!(!subdued(&w, at("2024-01-01T11:00:01Z")));
        // Without repeat, never again.
        assert!(!subdued(&w, at("2024-01-02T10:30:00Z")));
        // The same window, without a `repeat` key at all.
        let w = json!([{"begin": "2024-01-01T10:00:00Z", "end": "2024-01-01T11:00:00Z"}]);
        assert!(subdued(&w, at("2024-01-01T10:30:00Z")));
        assert!(!subdued(&w, at("2024-01-02T10:30:00Z")));
    }

    #[test]
    fn nothing_or_anything_unparsable_subdues_nothing() {
        let now = at("2024-01-01T10:30:00Z");
        for v in [
            json!(null),
            json!([]),
            json!({}),
            json!([1, "x", null]),
            json!([{"begin": "tomorrow", "end": "2024-01-01T11:00:00Z"}]),
            json!([{"begin": "2024-01-01T10:00:00Z"}]),
            // end before begin.
            json!([{"begin": "2024-01-01T11:00:00Z", "end": "2024-01-01T10:00:00Z"}]),
        ] {
            assert!(!subdued(&v, now), "{v}");
        }
    }

    #[test]
    fn any_of_several_windows_subdues() {
        let w = json!([
            {"begin": "2024-01-01T08:00:00Z", "end": "2024-01-01T09:00:00Z"},
            {"begin": "2024-01-01T10:00:00Z", "end": "2024-01-01T11:00:00Z"},
        ]);
        assert!(subdued(&w, at("2024-01-01T08:30:00Z")));
        assert!(!subdued(&w, at("2024-01-01T09:30:00Z")));
        assert!(subdued(&w, at("2024-01-01T10:30:00Z")));
    }

    #[test]
    fn a_daily_window_recurs_across_midnight() {
        // 22:00 to 06:00 the next morning, every day from 2024-01-01.
        let w = window("2024-01-01T22:00:00Z", "2024-01-02T06:00:00Z", &["daily"]);
        assert!(!subdued(&w, at("2024-01-01T21:59:59Z")));
        assert!(subdued(&w, at("2024-01-01T23:00:00Z")));
        assert!(subdued(&w, at("2024-01-05T22:00:00Z")));
        assert!(subdued(&w, at("2024-01-05T23:59:59Z")));
        assert!(subdued(&w, at("2024-01-06T00:00:00Z")));
        assert!(subdued(&w, at("2024-01-06T03:00:00Z")));
        assert!(subdued(&w, at("2024-01-06T06:00:00Z")));
        assert!(!subdued(&w, at("2024-01-06T06:00:01Z")));
        assert!(!subdued(&w, at("2024-01-06T12:00:00Z")));
        assert!(!subdued(&w, at("2024-01-06T21:59:59Z")));
        // Nothing repeats before begin: the morning of its first day is not subdued.
        assert!(!subdued(&w, at("2024-01-01T03:00:00Z")));
    }

    #[test]
    fn weekdays_and_weekends_start_on_their_days() {
        // 2024-01-01 was a Monday.
        let weekdays = window(
            "2024-01-01T09:00:00Z",
            "2024-01-01T17:00:00Z",
            &["weekdays"],
        );
        let weekends = window(
            "2024-01-06T00:00:00Z",
            "2024-01-06T23:59:59Z",
            &["weekends"],
        );
        for (t, on_weekdays, on_weekends) in [
            ("2024-01-03T12:00:00Z", true, false),  // Wednesday
            ("2024-01-05T16:59:59Z", true, false),  // Friday
            ("2024-01-05T17:00:01Z", false, false), // Friday, after the window
            ("2024-01-06T12:00:00Z", false, true),  // Saturday
            ("2024-01-07T00:00:00Z", false, true),  // Sunday's first second
            ("2024-01-07T23:59:59Z", false, true),  // Sunday's last
            ("2024-01-08T00:00:00Z", false, false), // Monday, before 09:00
            ("2024-01-08T09:00:00Z", true, false),  // Monday
        ] {
            assert_eq!(subdued(&weekdays, at(t)), on_weekdays, "weekdays at {t}");
            assert_eq!(subdued(&weekends, at(t)), on_weekends, "weekends at {t}");
        }
        let fridays = window("2024-01-05T09:00:00Z", "2024-01-05T10:00:00Z", &["fridays"]);
        assert!(subdued(&fridays, at("2024-01-12T09:30:00Z")));
        assert!(!subdued(&fridays, at("2024-01-11T09:30:00Z")));
        let two = window(
            "2024-01-01T09:00:00Z",
            "2024-01-01T10:00:00Z",
            &["tuesdays", "thursdays"],
        );
        assert!(subdued(&two, at("2024-01-02T09:30:00Z")));
        assert!(!subdued(&two, at("2024-01-03T09:30:00Z")));
        assert!(subdued(&two, at("2024-01-04T09:30:00Z")));
    }

    #[test]
    fn days_and_times_are_those_of_begins_offset() {
        // Sensu's docs' example: weekdays from 17:00 to 08:00 PDT, from Monday 2022-04-18.
        let w = window(
            "2022-04-18T17:00:00-07:00",
            "2022-04-19T08:00:00-07:00",
            &["weekdays"],
        );
        // Friday 17:30 PDT is Saturday 00:30 UTC: Friday's window, subdued.
        assert!(subdued(&w, at("2022-04-22T17:30:00-07:00")));
        assert!(subdued(&w, at("2022-04-23T00:30:00Z")));
        // ... and it runs into Saturday morning, to 08:00 PDT (15:00 UTC).
        assert!(subdued(&w, at("2022-04-23T14:59:59Z")));
        assert!(!subdued(&w, at("2022-04-23T15:00:01Z")));
        // No window starts on Saturday or Sunday evening: Monday 07:00 PDT is free.
        assert!(!subdued(&w, at("2022-04-24T18:00:00-07:00")));
        assert!(!subdued(&w, at("2022-04-25T07:00:00-07:00")));
        // Monday's starts at 17:00 PDT, 00:00 UTC Tuesday.
        assert!(!subdued(&w, at("2022-04-25T23:59:59Z")));
        assert!(subdued(&w, at("2022-04-26T00:00:00Z")));
        // The offset is fixed: in January, 17:00 -07:00 is still 00:00 UTC.
        assert!(subdued(&w, at("2023-01-10T00:00:00Z")));
        assert!(!subdued(&w, at("2023-01-09T23:59:59Z")));
        // A window east of UTC: 01:00 to 03:00 +09:00 is 16:00 to 18:00 UTC the day before.
        let tokyo = window(
            "2024-01-01T01:00:00+09:00",
            "2024-01-01T03:00:00+09:00",
            &["mondays"],
        );
        // Monday 2024-01-08 01:30 in Tokyo is Sunday 16:30 UTC.
        assert!(subdued(&tokyo, at("2024-01-07T16:30:00Z")));
        assert!(!subdued(&tokyo, at("2024-01-08T16:30:00Z")));
    }

    #[test]
    fn a_repeated_multi_day_window_keeps_only_its_times_of_day() {
        // The docs' "Repeat and multi-day subdues": Friday 17:00 to Monday 08:00 PDT.
        let w = window(
            "2022-05-06T17:00:00-07:00",
            "2022-05-09T08:00:00-07:00",
            &["fridays"],
        );
        // The first weekend whole ...
        assert!(subdued(&w, at("2022-05-08T12:00:00-07:00")));
        assert!(subdued(&w, at("2022-05-09T08:00:00-07:00")));
        // ... then Friday 17:00 to Saturday 08:00 only.
        assert!(subdued(&w, at("2022-05-13T17:00:00-07:00")));
        assert!(subdued(&w, at("2022-05-14T07:59:59-07:00")));
        assert!(!subdued(&w, at("2022-05-14T09:00:00-07:00")));
        assert!(!subdued(&w, at("2022-05-15T12:00:00-07:00")));
    }

    #[test]
    fn weekly_monthly_and_annually_follow_begins_day() {
        // 2024-01-31 was a Wednesday.
        let weekly = window("2024-01-31T10:00:00Z", "2024-01-31T11:00:00Z", &["weekly"]);
        assert!(subdued(&weekly, at("2024-02-07T10:30:00Z")));
        assert!(!subdued(&weekly, at("2024-02-08T10:30:00Z")));
        let monthly = window("2024-01-31T10:00:00Z", "2024-01-31T11:00:00Z", &["monthly"]);
        assert!(subdued(&monthly, at("2024-03-31T10:30:00Z")));
        assert!(!subdued(&monthly, at("2024-02-29T10:30:00Z")));
        assert!(!subdued(&monthly, at("2024-03-30T10:30:00Z")));
        let annually = window(
            "2024-01-31T10:00:00Z",
            "2024-01-31T11:00:00Z",
            &["annually"],
        );
        assert!(subdued(&annually, at("2025-01-31T10:30:00Z")));
        assert!(!subdued(&annually, at("2024-03-31T10:30:00Z")));
    }

    #[test]
    fn month_day_is_the_calendars() {
        assert_eq!(month_day(0), (1, 1));
        assert_eq!(month_day(at("2024-02-29T00:00:00Z") / DAY), (2, 29));
        assert_eq!(month_day(at("2000-12-31T00:00:00Z") / DAY), (12, 31));
        assert_eq!(month_day(-1), (12, 31));
    }
}
