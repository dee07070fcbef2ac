//! When a schedule is due: the due times of an interval or a cron
//! expression, each start's jitter, and durations and times as operators
//! write them.

use super::cron::Cron;
use crate::store::{Schedule, ScheduleSpec};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `1500`, `1500ms`, `30s`, `5m`, `2h`, `1d` as milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit_ms = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// The first due time after `now` of an interval.
pub(super) fn next_after(every_ms: u64, now: i64) -> i64 {
    let every = every_ms as i64;
    (now.div_euclid(every) + 1) * every
}

/// "Never": the next due time of a cron expression with none left.
pub(super) const NEVER: i64 = i64::MAX;

/// A spec's due times, to step through: its cron expression parsed (and
/// its time zone looked up) once, not at every step.
pub(super) enum Due {
    Every(u64),
    Cron(Box<Cron>),
    /// No due time (a spec that does not parse; checked when the schedule
    /// was created, so a stored one always does).
    Never,
}

impl Due {
    pub(super) fn of(spec: &ScheduleSpec) -> Due {
        match (&spec.every_ms, &spec.cron) {
            (Some(every), _) => Due::Every(*every),
            (None, Some(expression)) => Cron::parse(expression, spec.time_zone.as_deref())
                .map_or(Due::Never, |cron| Due::Cron(Box::new(cron))),
            (None, None) => Due::Never,
        }
    }

    /// The first due time after `after` ([`NEVER`] if none).
    pub(super) fn after(&self, after: i64) -> i64 {
        match self {
            Due::Every(every) => next_after(*every, after),
            Due::Cron(cron) => cron.next_after(after).unwrap_or(NEVER),
            Due::Never => NEVER,
        }
    }
}

/// This due time's start delay within the schedule's jitter: derived from
/// the schedule and the due time, so every node agrees on it.
pub(super) fn jitter(schedule: &Schedule, due: i64) -> i64 {
    if schedule.spec.jitter_ms == 0 {
        return 0;
    }
    let digest = Sha256::digest(format!("{}/{}/{due}", schedule.namespace, schedule.id));
    let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % schedule.spec.jitter_ms) as i64
}

/// A time given as milliseconds since the epoch or RFC 3339 text.
pub fn parse_time(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("1500"), Some(1500));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("30s"), Some(30_000));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000));
        assert_eq!(parse_duration("1d"), Some(86_400_000));
        for bad in ["", "s", "1.5s", "-1s", "10 parsecs", "5w"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn due_times_are_multiples_of_the_interval() {
        assert_eq!(next_after(1000, 12_345), 13_000);
        assert_eq!(next_after(1000, 13_000), 14_000);
        assert_eq!(next_after(60_000, 59_999), 60_000);
    }
}
