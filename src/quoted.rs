//! How a message quotes text from outside (a role map value, a variable, a tombstone
//! line, a request): a leaf, so that every module that reports outside input can quote
//! it without reaching the logger.

use std::fmt;

/// Text from outside, as a message quotes it: between single quotes, with control
/// characters escaped, so that an error always stays one line and input cannot forge a
/// log line.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_stays_on_one_line() {
        assert_eq!(Quoted("it's 10 s").to_string(), "'it's 10 s'");
        assert_eq!(Quoted("a\nb\r\u{1b}[31m").to_string(), "'a\\nb\\r\\u{1b}[31m'");
        assert_eq!(Quoted("µs").to_string(), "'µs'");
    }
}
