//! Tombstones: what a container's exeunt tells the other containers of its pod, in
//! kubexit's format (YAML keys `Born`, `Died`, `ExitCode`, RFC 3339 times) plus `Ready`,
//! written once this container's processes are ready, and `Pod`: which run of the pod
//! wrote it.

use std::fmt::Write;

use crate::quoted::Quoted;
use crate::utc::{self, Fraction};

/// A tombstone larger than this is not a tombstone: it is refused unread.
pub const MAX_SIZE: u64 = 64 * 1024;

/// The keys a tombstone is read for; any other is passed over.
const KEYS: [&str; 5] = ["Born", "Ready", "Died", "ExitCode", "Pod"];

/// One container's milestones.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub born: Option<String>,
    pub ready: Option<String>,
    pub died: Option<String>,
    pub exit_code: Option<i32>,
    /// The run of the pod whose container wrote it (its `EXEUNT_POD_UID`).
    pub pod: Option<String>,
}

impl Tombstone {
    /// Reads a tombstone. Unknown keys are passed over (a later version may add some);
    /// an empty text is a tombstone with nothing on it yet (a writer that writes in
    /// place, as kubexit does, can be seen half-way).
    pub fn parse(text: &str) -> Result<Tombstone, String> {
        let mut tombstone = Tombstone::default();
        // Only the keys read are checked for repeats, in a fixed set: the parse takes
        // time in proportion to the text, however many other keys a neighbour writes.
        let mut seen = [false; KEYS.len()];
        for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end())) {
            if line.trim().is_empty() || line.trim_start().starts_with('#') || line == "---" {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(format!("line {number}: expected 'Key: value'"));
            };
            let key = key.trim();
            if let Some(at) = KEYS.iter().position(|k| *k == key) {
                if seen[at] {
                    return Err(format!("line {number}: {} is given twice", Quoted(key)));
                }
                seen[at] = true;
            }
            let value = unquote(value.trim());
            let present = !matches!(value, "" | "null" | "~");
            match key {
                "Born" | "Ready" | "Died" if present => {
                    if !is_rfc3339(value) {
                        return Err(format!("line {number}: {key} {} is not an RFC 3339 time", Quoted(value)));
                    }
                    let slot = match key {
                        "Born" => &mut tombstone.born,
                        "Ready" => &mut tombstone.ready,
                        _ => &mut tombstone.died,
                    };
                    *slot = Some(value.to_string());
                }
                "ExitCode" if present => {
                    let code = value
                        .parse()
                        .map_err(|_| format!("line {number}: ExitCode {} is not a number", Quoted(value)))?;
                    tombstone.exit_code = Some(code);
                }
                "Pod" if present => tombstone.pod = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(tombstone)
    }

    /// The tombstone as kubexit writes it, with `Ready` after `Born`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (key, value) in [("Born", &self.born), ("Ready", &self.ready), ("Died", &self.died)] {
            if let Some(value) = value {
                let _ = writeln!(text, "{key}: \"{value}\"");
            }
        }
        if let Some(code) = self.exit_code {
            let _ = writeln!(text, "ExitCode: {code}");
        }
        if let Some(pod) = &self.pod {
            let _ = writeln!(text, "Pod: \"{pod}\"");
        }
        text
    }
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner;
        }
    }
    value
}

/// Whether `text` is an RFC 3339 time: `2026-11-27T21:48:59Z`, with an optional
/// fraction and a `Z` or `±HH:MM` offset.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if len == 0 {
            return false;
        }
        rest = &fraction[len..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// The current time in UTC, as RFC 3339 with nanoseconds (trailing zeros dropped), as
/// kubexit writes it.
pub fn now() -> String {
    let (seconds, nanos) = utc::now();
    utc::format(seconds, nanos, Fraction::Trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tombstone_written_by_kubexit() {
        let text = "Born: \"2020-04-28T10:41:46.9926314Z\"\nDied: \"2020-04-28T10:41:47.0498724Z\"\nExitCode: 0\n";
        let tombstone = Tombstone::parse(text).expect("valid");
        assert_eq!(tombstone.born.as_deref(), Some("2020-04-28T10:41:46.9926314Z"));
        assert_eq!(tombstone.died.as_deref(), Some("2020-04-28T10:41:47.0498724Z"));
        assert_eq!((tombstone.ready, tombstone.exit_code), (None, Some(0)));
        let unquoted = Tombstone::parse("Born: 2020-04-28T10:41:46Z\n").expect("valid");
        assert_eq!(unquoted.born.as_deref(), Some("2020-04-28T10:41:46Z"));
    }

    #[test]
    fn writes_what_it_reads_back() {
        let tombstone = Tombstone {
            born: Some(utc::format(1_700_000_000, 5, Fraction::Trimmed)),
            ready: Some(utc::format(1_700_000_001, 0, Fraction::Trimmed)),
            died: Some(utc::format(1_700_000_002, 120_000_000, Fraction::Trimmed)),
            exit_code: Some(143),
            pod: Some("5f1e3a52-0b7e-4c11-9d0e-6a7b1c2d3e4f".into()),
        };
        let text = tombstone.render();
        assert_eq!(
            text,
            "Born: \"2023-11-14T22:13:20.000000005Z\"\nReady: \"2023-11-14T22:13:21Z\"\nDied: \"2023-11-14T22:13:22.12Z\"\nExitCode: 143\nPod: \"5f1e3a52-0b7e-4c11-9d0e-6a7b1c2d3e4f\"\n"
        );
        assert_eq!(Tombstone::parse(&text), Ok(tombstone));
    }

    #[test]
    fn empty_and_partial_tombstones_mean_nothing_yet() {
        assert_eq!(Tombstone::parse(""), Ok(Tombstone::default()));
        assert_eq!(Tombstone::parse("Died: null\nExitCode: ~\nExtra: kept for later\n"), Ok(Tombstone::default()));
    }

    #[test]
    fn corrupt_tombstones_say_which_line() {
        for (text, expected) in [
            ("garbage", "line 1: expected 'Key: value'"),
            ("Born: yesterday", "line 1: Born 'yesterday' is not an RFC 3339 time"),
            ("ExitCode: 0\nExitCode: 1", "line 2: 'ExitCode' is given twice"),
            ("ExitCode: lots", "line 1: ExitCode 'lots' is not a number"),
        ] {
            assert_eq!(Tombstone::parse(text), Err(expected.to_string()), "{text}");
        }
    }

    #[test]
    fn unknown_keys_may_repeat_and_are_passed_over() {
        let text = "Extra: 1\nExtra: 2\nExitCode: 4\n";
        assert_eq!(Tombstone::parse(text).map(|t| t.exit_code), Ok(Some(4)));
    }

    #[test]
    fn times_written_and_read_are_rfc3339() {
        assert!(is_rfc3339(&now()));
        assert!(is_rfc3339("2026-11-27T21:48:59+01:00"));
        assert!(!is_rfc3339("2026-11-27T21:48:59"));
        assert!(!is_rfc3339("2026-11-27T21:48:59.Z"));
    }
}
