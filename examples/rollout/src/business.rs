//! Business hours, computed from the journaled clock.

use serde::Deserialize;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Working hours `[start_hour, end_hour)` on weekdays, at a fixed offset
/// from UTC.
#[derive(Debug, Clone, Deserialize)]
pub struct Hours {
    pub start_hour: u32,
    pub end_hour: u32,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Saturdays and Sundays count too.
    #[serde(default)]
    pub weekends: bool,
}

impl Hours {
    fn open_on(&self, day: i64) -> bool {
        // 1970-01-01 was a Thursday: Monday = 0.
        let weekday = (day + 3).rem_euclid(7);
        self.weekends || weekday < 5
    }

    /// The first instant at or after `at_ms` that is inside working hours.
    pub fn next_open(&self, at_ms: i64) -> i64 {
        let offset = self.utc_offset_minutes as i64 * 60_000;
        let local = at_ms + offset;
        let day = local.div_euclid(DAY);
        let in_day = local.rem_euclid(DAY);
        let (start, end) = (self.start_hour as i64 * HOUR, self.end_hour as i64 * HOUR);
        if self.open_on(day) && in_day >= start && in_day < end {
            return at_ms;
        }
        let first = if self.open_on(day) && in_day < start {
            day
        } else {
            day + 1
        };
        let open_day = (first..first + 8)
            .find(|d| self.open_on(*d))
            .expect("a week has a working day");
        open_day * DAY + start - offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Monday 2026-11-23 00:00 UTC.
    const MONDAY: i64 = 1_795_392_000_000;

    fn nine_to_five() -> Hours {
        Hours {
            start_hour: 9,
            end_hour: 17,
            utc_offset_minutes: 0,
            weekends: false,
        }
    }

    #[test]
    fn inside_hours_is_now() {
        let at = MONDAY + 10 * HOUR;
        assert_eq!(nine_to_five().next_open(at), at);
    }

    #[test]
    fn before_hours_waits_for_the_morning() {
        assert_eq!(
            nine_to_five().next_open(MONDAY + 7 * HOUR),
            MONDAY + 9 * HOUR
        );
    }

    #[test]
    fn after_hours_waits_for_the_next_morning() {
        assert_eq!(
            nine_to_five().next_open(MONDAY + 18 * HOUR),
            MONDAY + DAY + 9 * HOUR
        );
    }

    #[test]
    fn friday_evening_waits_for_monday() {
        let friday_evening = MONDAY + 4 * DAY + 17 * HOUR;
        assert_eq!(
            nine_to_five().next_open(friday_evening),
            MONDAY + 7 * DAY + 9 * HOUR
        );
    }

    #[test]
    fn offsets_shift_the_window() {
        // 9:00 at UTC+2 is 7:00 UTC.
        let hours = Hours {
            utc_offset_minutes: 120,
            ..nine_to_five()
        };
        assert_eq!(hours.next_open(MONDAY + 6 * HOUR), MONDAY + 7 * HOUR);
    }
}
