//! Variables in the role map's strings, replaced from exeunt's own environment before
//! the values are read: in `command`, the values of `env`, `workdir`, the targets of
//! `ready`, `live` and `stop`, and the paths of `env_file`, `env_dir` and `{ file = ... }`.
//! A key whose variables cannot be replaced is one mistake, and is then left out as a
//! key that could not be read.

use std::ffi::OsString;

use toml::Spanned;

use super::raw::{RawEnvValue, RawProcess, RawRoleMap};
use super::{Mistake, Mistakes};
use crate::expand::{ExpandError, expand};

/// Looks up a variable of exeunt's own environment.
pub type Env<'a> = dyn Fn(&str) -> Option<OsString> + 'a;

/// Replaces the variables of every key that takes them.
pub fn expand_document(raw: &mut RawRoleMap, text: &str, env: &Env, m: &mut Mistakes) {
    let mut ex = Expander { text, env, m };
    if ex.paths(&mut raw.env_file, "env_file").is_err() {
        raw.env_file = None;
    }
    for process in &mut raw.process {
        ex.process(process);
    }
}

struct Expander<'a, 'm> {
    text: &'a str,
    env: &'a Env<'a>,
    m: &'m mut Mistakes,
}

impl Expander<'_, '_> {
    fn process(&mut self, p: &mut RawProcess) {
        let mut refused = Vec::new();
        if let Some(command) = &mut p.command
            && self.words(command, "command").is_err()
        {
            p.command = None;
            refused.push("command");
        }
        if let Some(env) = &mut p.env {
            let span = env.span();
            for (key, value) in env.get_mut().iter_mut() {
                let (RawEnvValue::Text(text) | RawEnvValue::File(text)) = value;
                match expand(text, self.env) {
                    Ok(expanded) => *text = expanded,
                    Err(e) => {
                        self.m.push(Mistake::at(self.text, span.clone(), format!("env: {key}: {e}")));
                        refused.push("env");
                    }
                }
            }
            if refused.contains(&"env") {
                p.env = None;
            }
        }
        if self.paths(&mut p.env_file, "env_file").is_err() {
            p.env_file = None;
            refused.push("env_file");
        }
        for (value, key) in [(&mut p.env_dir, "env_dir"), (&mut p.workdir, "workdir")] {
            if let Some(inner) = value
                && self.one(inner, key).is_err()
            {
                *value = None;
                refused.push(key);
            }
        }
        if let Some(ready) = &mut p.ready {
            let r = ready.get_mut();
            let strings = [(&mut r.tcp, "ready.tcp"), (&mut r.http, "ready.http"), (&mut r.file, "ready.file")];
            let failed = strings.into_iter().any(|(v, key)| v.as_mut().is_some_and(|v| self.one(v, key).is_err()))
                | r.exec.as_mut().is_some_and(|v| self.words(v, "ready.exec").is_err());
            if failed {
                p.ready = None;
                refused.push("ready");
            }
        }
        if let Some(live) = &mut p.live {
            let l = live.get_mut();
            let strings = [(&mut l.tcp, "live.tcp"), (&mut l.http, "live.http"), (&mut l.file, "live.file")];
            let failed = strings.into_iter().any(|(v, key)| v.as_mut().is_some_and(|v| self.one(v, key).is_err()))
                | l.exec.as_mut().is_some_and(|v| self.words(v, "live.exec").is_err());
            if failed {
                p.live = None;
                refused.push("live");
            }
        }
        if let Some(stop) = &mut p.stop {
            let s = stop.get_mut();
            let failed = s.http.as_mut().is_some_and(|v| self.one(v, "stop.http").is_err())
                | s.exec.as_mut().is_some_and(|v| self.words(v, "stop.exec").is_err());
            if failed {
                p.stop = None;
                refused.push("stop");
            }
        }
        p.refused.extend(refused.into_iter().map(str::to_string));
    }

    /// One string, replaced in place; a failure is noted.
    fn one(&mut self, value: &mut Spanned<String>, key: &str) -> Result<(), ()> {
        let span = value.span();
        match expand(value.get_ref(), self.env) {
            Ok(expanded) => {
                *value.get_mut() = expanded;
                Ok(())
            }
            Err(e) => self.mistake(span, key, &e),
        }
    }

    fn words(&mut self, value: &mut Spanned<Vec<String>>, key: &str) -> Result<(), ()> {
        let span = value.span();
        let expanded: Result<Vec<String>, ExpandError> = value.get_ref().iter().map(|w| expand(w, self.env)).collect();
        match expanded {
            Ok(words) => {
                *value.get_mut() = words;
                Ok(())
            }
            Err(e) => self.mistake(span, key, &e),
        }
    }

    fn paths(&mut self, value: &mut Option<Spanned<Vec<String>>>, key: &str) -> Result<(), ()> {
        match value {
            Some(paths) => self.words(paths, key),
            None => Ok(()),
        }
    }

    /// Notes that `key` at `span` cannot be expanded.
    fn mistake(&mut self, span: std::ops::Range<usize>, key: &str, e: &ExpandError) -> Result<(), ()> {
        self.m.push(Mistake::at(self.text, span, format!("{key}: {e}")));
        Err(())
    }
}
