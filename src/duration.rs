//! Durations as people write them: `500ms`, `10s`, `2m`, `1h30m`, `1.5s`.
//!
//! The syntax is Go's `time.ParseDuration` (units ns, us, µs, ms, s, m, h), so values
//! written for kubexit (`KUBEXIT_GRACE_PERIOD=10s`) mean the same here.

use std::fmt;
use std::time::Duration;

use crate::quoted::Quoted;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {}: {} (write it like 500ms, 10s or 2m)", Quoted(&self.input), self.reason)
    }
}

impl std::error::Error for DurationError {}

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a duration such as `500ms` or `1m30s`. A bare `0` is accepted; any other
/// number needs a unit, so that `10` is never silently read as ten nanoseconds.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError { input: input.to_string(), reason };
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    if input.is_empty() {
        return Err(fail("it is empty"));
    }
    if input.starts_with('-') {
        return Err(fail("it is negative"));
    }
    let mut rest = input;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(len)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(fail("expected a number"));
        }
        let unit_len = after_number
            .char_indices()
            .find(|&(_, c)| c.is_ascii_digit() || c == '.')
            .map_or(after_number.len(), |(i, _)| i);
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            return Err(fail("a unit is missing (ms, s, m or h)"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(fail("unknown unit (use ns, us, ms, s, m or h)"));
        };
        let whole = digits_value(int_digits).ok_or_else(|| fail("it is too long"))?;
        // Fractions past nanosecond precision cannot change the result: keep 18 digits.
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let frac = digits_value(frac_digits).ok_or_else(|| fail("it is too long"))?;
        let part = whole
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac * scale / 10u128.pow(frac_digits.len() as u32)))
            .ok_or_else(|| fail("it is too long"))?;
        total = total.checked_add(part).ok_or_else(|| fail("it is too long"))?;
        rest = after_unit;
    }
    let nanos = u64::try_from(total).map_err(|_| fail("it is too long"))?;
    Ok(Duration::from_nanos(nanos))
}

fn digits_value(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| acc.checked_mul(10)?.checked_add(u128::from(b - b'0')))
}

/// Shows a duration in the largest unit that states it exactly: `10s`, `1500ms`, `2m`.
pub struct Show(pub Duration);

impl fmt::Display for Show {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        let (scale, unit) =
            [(3_600_000_000_000, "h"), (60_000_000_000, "m"), (1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")]
                .into_iter()
                .find(|(scale, _)| nanos.is_multiple_of(*scale))
                .unwrap_or((1, "ns"));
        write!(f, "{}{}", nanos / scale, unit)
    }
}

/// A time rounded for people: 850ms, 12.3s, 5m12s, 2h5m.
pub struct Rounded(pub Duration);

impl fmt::Display for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ms, s) = (self.0.as_millis(), self.0.as_secs());
        match s {
            0 => write!(f, "{ms}ms"),
            1..60 => write!(f, "{}.{}s", s, (ms % 1000) / 100),
            60..3600 => write!(f, "{}m{}s", s / 60, s % 60),
            _ => write!(f, "{}h{}m", s / 3600, (s % 3600) / 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_units_people_write() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn reads_go_style_compound_and_fractional_durations() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
    }

    #[test]
    fn refuses_numbers_without_units_and_garbage() {
        for bad in ["", "10", "ten", "10x", "-1s", "s", "1.s.", "1..5s", "10 s"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn refuses_durations_that_overflow() {
        assert!(parse("99999999999999999999999999999999999999999h").is_err());
        assert!(parse("9999999999h").is_err());
    }

    #[test]
    fn shows_the_largest_exact_unit() {
        assert_eq!(Show(Duration::from_secs(10)).to_string(), "10s");
        assert_eq!(Show(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Show(Duration::from_secs(120)).to_string(), "2m");
        assert_eq!(Show(Duration::ZERO).to_string(), "0s");
        assert_eq!(Show(Duration::from_nanos(3)).to_string(), "3ns");
    }
}
