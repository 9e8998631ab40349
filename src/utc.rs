//! The wall clock in UTC, written as RFC 3339: for tombstones (nanoseconds, as kubexit
//! writes them) and for JSON lines (milliseconds).

/// The wall clock now: seconds and nanoseconds since the Unix epoch.
pub fn now() -> (i64, u32) {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).map_or((0, 0), |t| (t.tv_sec(), t.tv_nsec() as u32))
}

/// How much of the second's fraction a time shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fraction {
    /// Nanoseconds with the trailing zeros dropped, and none for a whole second.
    Trimmed,
    /// Always three digits.
    Millis,
}

/// Seconds and nanoseconds since the Unix epoch as an RFC 3339 UTC time.
pub fn format(seconds: i64, nanos: u32, fraction: Fraction) -> String {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let time =
        format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", of_day / 3600, of_day % 3600 / 60, of_day % 60);
    match fraction {
        Fraction::Trimmed if nanos == 0 => format!("{time}Z"),
        Fraction::Trimmed => format!("{time}.{}Z", format!("{nanos:09}").trim_end_matches('0')),
        Fraction::Millis => format!("{time}.{:03}Z", nanos / 1_000_000),
    }
}

/// The time now with milliseconds, written anew only when the millisecond changed:
/// a process's lines come faster than that.
#[derive(Debug, Default)]
pub struct MillisClock {
    at: (i64, u32),
    text: String,
}

impl MillisClock {
    pub fn now(&mut self) -> &str {
        let (seconds, nanos) = now();
        if self.text.is_empty() || self.at != (seconds, nanos / 1_000_000) {
            self.at = (seconds, nanos / 1_000_000);
            self.text = format(seconds, nanos, Fraction::Millis);
        }
        &self.text
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (an algorithm known
/// from Howard Hinnant's date library: eras of 400 years, March-based years).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_right_across_eras_and_leap_days() {
        assert_eq!(format(0, 0, Fraction::Trimmed), "1970-01-01T00:00:00Z");
        assert_eq!(format(951_782_400, 0, Fraction::Trimmed), "2000-02-29T00:00:00Z");
        assert_eq!(format(1_709_208_000, 0, Fraction::Trimmed), "2024-02-29T12:00:00Z");
        assert_eq!(format(4_107_542_399, 0, Fraction::Trimmed), "2100-02-28T23:59:59Z");
        assert_eq!(format(-1, 0, Fraction::Trimmed), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn fractions_are_trimmed_nanoseconds_for_tombstones_and_milliseconds_for_json() {
        assert_eq!(format(1_796_083_200, 120_000_000, Fraction::Trimmed), "2026-12-01T00:00:00.12Z");
        assert_eq!(format(1_796_083_200, 7_900_000, Fraction::Millis), "2026-12-01T00:00:00.007Z");
        assert_eq!(format(1_796_083_200, 0, Fraction::Millis), "2026-12-01T00:00:00.000Z");
    }
}
