//! The words of a command line, walked the same way by both of exeunt's parsers.

use std::ffi::OsString;

use super::UsageError;

/// One option of a command line, as [`Words`] finds it.
pub enum Opt<'a> {
    /// `--name` or `--name=value`.
    Long { name: &'a str, inline: Option<&'a str> },
    /// `-abc`: one or more short flags, the last of which may take the rest as a value.
    Short(&'a str),
}

/// Walks the options of a command line the way both of exeunt's command lines read
/// them: they end at `--` or at the first word that is not an option; a long option's
/// value follows `=` or is the next word; short flags group (`-vvv`), and one that takes
/// a value takes the rest of its word or the next word (`-e3`, `-e 3`).
pub struct Words<'a> {
    words: std::slice::Iter<'a, OsString>,
    /// The first word that was not an option, once met.
    first: Option<&'a OsString>,
}

impl<'a> Words<'a> {
    pub fn new(args: &'a [OsString]) -> Words<'a> {
        Words { words: args.iter(), first: None }
    }

    /// The next option; None once the options have ended.
    pub fn next_option(&mut self) -> Option<Opt<'a>> {
        let word = self.words.next()?;
        let Some(text) = word.to_str() else {
            self.first = Some(word);
            return None;
        };
        if text == "--" {
            return None;
        }
        if let Some(long) = text.strip_prefix("--") {
            return Some(match long.split_once('=') {
                Some((name, value)) => Opt::Long { name, inline: Some(value) },
                None => Opt::Long { name: long, inline: None },
            });
        }
        match text.strip_prefix('-').filter(|flags| !flags.is_empty()) {
            Some(flags) => Some(Opt::Short(flags)),
            None => {
                self.first = Some(word);
                None
            }
        }
    }

    /// The value of long option `name`: after its `=`, else the next word.
    pub fn long_value(&mut self, name: &str, inline: Option<&str>, what: &str) -> Result<OsString, UsageError> {
        inline
            .map(OsString::from)
            .or_else(|| self.words.next().cloned())
            .ok_or_else(|| UsageError::new(format!("--{name} needs {what}")))
    }

    /// The value of short flag `flag`: the rest of its word, else the next word.
    pub fn short_value(&mut self, flag: char, joined: &str, what: &str) -> Result<OsString, UsageError> {
        if joined.is_empty() {
            self.words.next().cloned().ok_or_else(|| UsageError::new(format!("-{flag} needs {what}")))
        } else {
            Ok(OsString::from(joined))
        }
    }

    /// What follows the options: COMMAND and its arguments.
    pub fn command(self) -> Vec<OsString> {
        self.first.into_iter().chain(self.words).cloned().collect()
    }
}
