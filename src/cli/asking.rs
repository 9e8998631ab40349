//! The client forms (`--status`, `--ready`, `--live`, `--restart`, `--signal`): their
//! options gathered as they come, then made one request.

use std::ffi::OsString;

use super::UsageError;
use crate::events::Request;
use crate::quoted::Quoted;
use crate::signo::Signo;

/// The options of a client form, as they come.
#[derive(Default)]
pub struct Asking {
    /// The option that says what to ask, with its value.
    verb: Option<(&'static str, Option<OsString>)>,
    json: bool,
    pub group: bool,
}

impl Asking {
    pub fn verb(&mut self, name: &str, value: Option<OsString>) -> Result<(), UsageError> {
        let name = match name {
            "json" => {
                self.json = true;
                return Ok(());
            }
            "status" => "status",
            "ready" => "ready",
            "live" => "live",
            "restart" => "restart",
            _ => "signal",
        };
        if let Some((first, _)) = &self.verb {
            return Err(UsageError::new(format!("--{first} and --{name} cannot be asked at once")));
        }
        self.verb = Some((name, value));
        Ok(())
    }

    /// The request, once the options have ended; `words` are the words after them.
    pub fn request(self, words: &[OsString]) -> Result<Option<Request>, UsageError> {
        let text = |word: &OsString| {
            word.to_str()
                .map(str::to_string)
                .ok_or_else(|| UsageError::new(format!("{} is not UTF-8", Quoted(&word.to_string_lossy()))))
        };
        let Some((verb, value)) = self.verb else {
            if self.json {
                return Err(UsageError::new("--json goes with --status".to_string()));
            }
            return Ok(None);
        };
        if self.json && verb != "status" {
            return Err(UsageError::new(format!("--json goes with --status, not --{verb}")));
        }
        let no_words = |request: Request| match words {
            [] => Ok(Some(request)),
            [word, ..] => Err(UsageError::new(format!("--{verb} takes no {}", Quoted(&word.to_string_lossy())))),
        };
        match (verb, value) {
            ("status", _) => no_words(Request::Status { json: self.json }),
            ("ready", _) => Ok(Some(Request::Ready { names: words.iter().map(text).collect::<Result<_, _>>()? })),
            ("live", _) => no_words(Request::Live),
            ("restart", Some(name)) => no_words(Request::Restart { name: text(&name)? }),
            (_, Some(signal)) => {
                let signo =
                    Signo::parse(&signal.to_string_lossy()).map_err(|e| UsageError::new(format!("--signal: {e}")))?;
                match words {
                    [name] => Ok(Some(Request::Signal { signo, name: text(name)?, group: self.group })),
                    _ => Err(UsageError::new("--signal SIGNAL takes one process name after it".to_string())),
                }
            }
            (_, None) => Err(UsageError::new(format!("--{verb} needs a value"))),
        }
    }
}
