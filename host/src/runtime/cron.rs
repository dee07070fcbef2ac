//! Cron expressions in a time zone: five fields (minute, hour, day of
//! month, month, day of week) or a macro (`@hourly`, `@daily`, `@weekly`,
//! `@monthly`, `@yearly`), the due times of a cron schedule. A due time
//! that a daylight-saving gap skips fires at the first minute after the
//! gap; one that a fold repeats fires once, the first time.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// How far ahead a due time is looked for (an expression with none in that
/// span, such as February 30th, is refused).
const HORIZON_DAYS: usize = 5 * 366;

/// The fields, with their ranges and names.
const FIELDS: [(&str, u32, u32, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day of month", 1, 31, &[]),
    (
        "month",
        1,
        12,
        &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    ),
    (
        "day of week",
        0,
        7,
        &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    ),
];

#[derive(Debug, Clone)]
pub struct Cron {
    /// One bit per allowed value of each field.
    sets: [u64; 5],
    /// Whether day of month and day of week were `*` (when both are
    /// restricted, a day matching either is due, as in every cron).
    any_day_of_month: bool,
    any_day_of_week: bool,
    zone: TimeZone,
}

fn value(text: &str, field: usize) -> Result<u32, String> {
    let (name, low, high, names) = FIELDS[field];
    let lower = text.to_ascii_lowercase();
    let n = match names.iter().position(|n| *n == lower) {
        Some(i) => i as u32 + if field == 3 { 1 } else { 0 },
        None => text
            .parse::<u32>()
            .map_err(|_| format!("`{text}` is not a {name}"))?,
    };
    if n < low || n > high {
        return Err(format!("{name} `{text}` is out of range {low}-{high}"));
    }
    Ok(n)
}

/// One field (`*`, `5`, `1-5`, `*/15`, `10-50/10`, `mon,wed,fri`) as bits.
fn field_set(text: &str, field: usize) -> Result<u64, String> {
    let (_, low, high, _) = FIELDS[field];
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("step `{step}` is not a positive number"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (low, high),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a, field)?, value(b, field)?),
                // `5/15` is 5, 20, 35, 50.
                None if step > 1 => (value(range, field)?, high),
                None => {
                    let v = value(range, field)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(format!("range `{range}` runs backwards"));
        }
        for v in (from..=to).step_by(step as usize) {
            set |= 1 << v;
        }
    }
    if field == 4 && set & (1 << 7) != 0 {
        // 7 is Sunday too.
        set = (set | 1) & !(1 << 7);
    }
    Ok(set)
}

impl Cron {
    /// Parse `expression` for `zone` (an IANA name such as
    /// `Europe/Berlin`; `UTC` when none). Errors name the field.
    pub fn parse(expression: &str, zone: Option<&str>) -> Result<Cron, String> {
        let zone_name = zone.unwrap_or("UTC");
        let zone = TimeZone::get(zone_name).map_err(|_| {
            format!("unknown time zone `{zone_name}` (use an IANA name such as Europe/Berlin)")
        })?;
        let expanded = match expression.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), \
                 `{expression}` has {}",
                parts.len()
            ));
        }
        let mut sets = [0u64; 5];
        for (i, part) in parts.iter().enumerate() {
            sets[i] = field_set(part, i)
                .map_err(|e| format!("field {} ({}): {e}", i + 1, FIELDS[i].0))?;
        }
        let cron = Cron {
            sets,
            any_day_of_month: parts[2] == "*",
            any_day_of_week: parts[4] == "*",
            zone,
        };
        if cron.next_after(Timestamp::now().as_millisecond()).is_none() {
            return Err(format!("`{expression}` is never due"));
        }
        Ok(cron)
    }

    fn has(&self, field: usize, v: i8) -> bool {
        self.sets[field] & (1 << v) != 0
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.has(2, date.day());
        let dow = self.has(4, date.weekday().to_sunday_zero_offset());
        match (self.any_day_of_month, self.any_day_of_week) {
            (false, false) => dom || dow,
            _ => dom && dow,
        }
    }

    /// The first due time after `after_ms` (milliseconds since the epoch).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = Timestamp::from_millisecond(after_ms).ok()?;
        let start: DateTime = after.to_zoned(self.zone.clone()).datetime();
        // Due times are whole minutes: the minute under way is a candidate.
        let floor = start.with().second(0).subsec_nanosecond(0).build().ok()?;
        let mut date = start.date();
        for _ in 0..HORIZON_DAYS {
            if self.has(3, date.month()) && self.day_matches(date) {
                for hour in (0..24).filter(|h| self.has(1, *h)) {
                    for minute in (0..60).filter(|m| self.has(0, *m)) {
                        let at = date.at(hour, minute, 0, 0);
                        if at < floor {
                            continue;
                        }
                        let due = self.zone.to_zoned(at).ok()?.timestamp().as_millisecond();
                        if due > after_ms {
                            return Some(due);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn next(expr: &str, zone: &str, after: &str) -> String {
        let cron = Cron::parse(expr, Some(zone)).unwrap();
        let due = cron.next_after(ms(after)).unwrap();
        Timestamp::from_millisecond(due).unwrap().to_string()
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        assert_eq!(
            next("*/15 * * * *", "UTC", "2026-12-02T10:07:30Z"),
            "2026-12-02T10:15:00Z"
        );
        assert_eq!(
            next("0 9 * * mon-fri", "UTC", "2026-12-04T09:00:00Z"),
            "2026-12-07T09:00:00Z"
        );
        assert_eq!(
            next("30 2 1 jan,jul *", "UTC", "2026-12-02T00:00:00Z"),
            "2027-01-01T02:30:00Z"
        );
        assert_eq!(
            next("5/20 * * * *", "UTC", "2026-12-02T10:30:00Z"),
            "2026-12-02T10:45:00Z"
        );
        assert_eq!(
            next("@daily", "UTC", "2026-12-02T10:00:00Z"),
            "2026-12-03T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 7", "UTC", "2026-12-02T10:00:00Z"),
            "2026-12-06T00:00:00Z"
        );
        // Both days restricted: either matches (the 13th, or a Friday).
        assert_eq!(
            next("0 0 13 * fri", "UTC", "2026-12-02T10:00:00Z"),
            "2026-12-04T00:00:00Z"
        );
    }

    #[test]
    fn due_times_are_in_the_time_zone_across_daylight_saving() {
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
        assert_eq!(
            next("0 9 * * *", "America/New_York", "2026-03-07T15:00:00Z"),
            "2026-03-08T13:00:00Z"
        );
        assert_eq!(
            next("0 9 * * *", "America/New_York", "2026-03-06T15:00:00Z"),
            "2026-03-07T14:00:00Z"
        );
        // 02:30 does not exist on 2026-03-08 there: due at 03:30 EDT.
        assert_eq!(
            next("30 2 * * *", "America/New_York", "2026-03-08T05:00:00Z"),
            "2026-03-08T07:30:00Z"
        );
        // 01:30 happens twice on 2026-11-01: due once, the first time.
        let first = next("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z");
        assert_eq!(first, "2026-11-01T05:30:00Z");
        assert_eq!(
            next("30 1 * * *", "America/New_York", &first),
            "2026-11-02T06:30:00Z"
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (expr, zone, says) in [
            ("* * * *", None, "has 4"),
            (
                "61 * * * *",
                None,
                "field 1 (minute): minute `61` is out of range 0-59",
            ),
            ("* 24 * * *", None, "field 2 (hour)"),
            ("* * * foo *", None, "`foo` is not a month"),
            ("*/0 * * * *", None, "step `0`"),
            ("10-5 * * * *", None, "runs backwards"),
            ("0 0 30 feb *", None, "never due"),
            (
                "* * * * *",
                Some("Mars/Olympus"),
                "unknown time zone `Mars/Olympus`",
            ),
        ] {
            let err = Cron::parse(expr, zone).unwrap_err();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }
}
