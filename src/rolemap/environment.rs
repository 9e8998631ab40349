//! What a process starts with, as the role map says it: `env` (values, and files to
//! read), `env_file`, `env_dir`, `limits` and `umask`. Each is checked for its form
//! here; the files are read by the resolver, which makes them the process's variables.

use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;

use super::raw::{RawEnvValue, RawSignal};
use super::{At, Mistake, Mistakes};
use crate::plan::{Limit, RESOURCES, UNLIMITED};
use crate::quoted::Quoted;

/// A process's variables as the role map says them; the resolver reads the files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaidEnv {
    /// `env_file`, in order, and where the key is.
    pub files: Vec<PathBuf>,
    pub files_at: Option<Range<usize>>,
    /// `env_dir`, and where it is.
    pub dir: Option<(PathBuf, Range<usize>)>,
    /// `env`, in the order of its keys, and where it is.
    pub vars: Vec<(String, SaidValue)>,
    pub vars_at: Option<Range<usize>>,
}

/// A value of `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaidValue {
    Text(String),
    /// `{ file = "PATH" }`: the file's content, a secret.
    File(PathBuf),
}

/// `env`, `env_file` and `env_dir` of one process.
pub fn read_env(
    env: Option<&Spanned<std::collections::BTreeMap<String, RawEnvValue>>>,
    files: Option<&Spanned<Vec<String>>>,
    dir: Option<&Spanned<String>>,
    at: &At,
    m: &mut Mistakes,
) -> SaidEnv {
    let mut said = SaidEnv::default();
    if let Some(env) = env {
        said.vars_at = Some(env.span());
        for (key, value) in env.get_ref() {
            if !is_variable_name(key) {
                let why = "cannot be set: names must be non-empty and hold no '=' or NUL";
                m.push(at(env.span(), format!("env: {} {why}", Quoted(key))));
                continue;
            }
            let value = match value {
                RawEnvValue::Text(text) if text.contains('\0') => {
                    m.push(at(env.span(), format!("env: {key}: the value holds a NUL character")));
                    continue;
                }
                RawEnvValue::Text(text) => SaidValue::Text(text.clone()),
                RawEnvValue::File(path) => match read_path(path) {
                    Some(path) => SaidValue::File(path),
                    None => {
                        m.push(at(env.span(), format!("env: {key}: file must be a non-empty path")));
                        continue;
                    }
                },
            };
            said.vars.push((key.clone(), value));
        }
    }
    if let Some(files) = files {
        said.files_at = Some(files.span());
        for path in files.get_ref() {
            match read_path(path) {
                Some(path) => said.files.push(path),
                None => m.push(at(files.span(), "env_file: each must be a non-empty path".to_string())),
            }
        }
    }
    if let Some(dir) = dir {
        match read_path(dir.get_ref()) {
            Some(path) => said.dir = Some((path, dir.span())),
            None => m.push(at(dir.span(), "env_dir: must be a non-empty path".to_string())),
        }
    }
    said
}

/// Whether `key` can be a variable's name: non-empty, without '=' or NUL.
pub fn is_variable_name(key: &str) -> bool {
    !key.is_empty() && !key.contains(['=', '\0'])
}

fn read_path(path: &str) -> Option<PathBuf> {
    (!path.is_empty() && !path.contains('\0')).then(|| PathBuf::from(path))
}

/// `limits`: each resource's soft and hard limit, with where the table is.
pub fn read_limits(
    table: &Spanned<std::collections::BTreeMap<String, RawSignal>>,
    at: &At,
    m: &mut Mistakes,
) -> Vec<(Limit, Range<usize>)> {
    let mut limits = Vec::new();
    for (name, value) in table.get_ref() {
        let Some(resource) = RESOURCES.iter().position(|(n, _)| n == name) else {
            let names: Vec<&str> = RESOURCES.iter().map(|(n, _)| *n).collect();
            let why = format!("limits: {} is not a resource limit; give one of {}", Quoted(name), names.join(", "));
            m.push(at(table.span(), why));
            continue;
        };
        match read_limit(value) {
            Ok((soft, hard)) => limits.push((Limit { resource, soft, hard }, table.span())),
            Err(why) => m.push(at(table.span(), format!("limits.{name}: {why}"))),
        }
    }
    limits
}

/// A number (soft and hard alike), `"unlimited"`, or `"SOFT:HARD"`.
fn read_limit(value: &RawSignal) -> Result<(u64, u64), String> {
    let one = |text: &str| -> Result<u64, String> {
        match text.trim() {
            "unlimited" | "infinity" => Ok(UNLIMITED),
            number if number.starts_with('-') => Err(format!("{number} is below 0")),
            number => number
                .parse::<u64>()
                .ok()
                .filter(|&n| n < UNLIMITED)
                .ok_or_else(|| format!("{} is not a number or \"unlimited\"", Quoted(number))),
        }
    };
    let (soft, hard) = match value.0.split_once(':') {
        Some((soft, hard)) => (one(soft)?, one(hard)?),
        None => {
            let both = one(&value.0)?;
            (both, both)
        }
    };
    if soft > hard {
        return Err(format!("the soft limit {soft} is above the hard limit {hard}"));
    }
    Ok((soft, hard))
}

/// `umask`: octal digits, such as `"0027"`.
pub fn read_umask(value: &Spanned<String>, at: &At) -> Result<u32, Mistake> {
    let text = value.get_ref();
    let octal = (1..=4).contains(&text.len()) && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match octal.then(|| u32::from_str_radix(text, 8).ok()).flatten().filter(|&mask| mask <= 0o777) {
        Some(mask) => Ok(mask),
        None => Err(at(value.span(), format!("umask: {} is not an octal mask such as \"0027\"", Quoted(text)))),
    }
}
