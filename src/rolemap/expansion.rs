//! Variables in the role map's strings, replaced from exeunt's own environment before
//! the values are read: in `command`, the values of `env`, `workdir`, the targets of
//! `ready`, `live` and `stop`, and the paths of `env_file`, `env_dir` and `{ file = ... }`.
//! A key whose variables cannot be replaced is one mistake, and is then left out as a
//! key that could not be read.

use std::ffi::OsString;

use toml::Spanned;

use super::raw::{RawEnvValue, RawProcess, RawReady, RawRoleMap};
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
        // A liveness probe is read with the readiness probe's keys.
        for (table, key) in [(&mut p.ready, "ready"), (&mut p.live, "live")] {
            if let Some(inner) = table
                && !self.probe_targets(inner.get_mut(), key)
            {
                *table = None;
                refused.push(key);
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

    /// The targets of a `ready` or `live` table (`key`); false when one cannot be expanded.
    fn probe_targets(&mut self, probe: &mut RawReady, key: &str) -> bool {
        let strings = [(&mut probe.tcp, "tcp"), (&mut probe.http, "http"), (&mut probe.file, "file")];
        let strings_ok = strings
            .into_iter()
            .all(|(value, name)| value.as_mut().is_none_or(|v| self.one(v, &format!("{key}.{name}")).is_ok()));
        let exec_ok = probe.exec.as_mut().is_none_or(|v| self.words(v, &format!("{key}.exec")).is_ok());
        strings_ok & exec_ok
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
