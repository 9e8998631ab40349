//! A process's variables as a run gives them: the role map's values, and what its env
//! files, `env_dir` and `{ file = ... }` hold, read here, once, when the plan is made.
//! A value read from a file is a secret: it keeps the file's name, which is what
//! `--check` shows, and no message here ever holds a value.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::dotenv;
use crate::plan::{EnvVar, set_var};
use crate::rolemap::{SaidEnv, SaidValue, is_variable_name};

/// The largest file read for variables.
pub const MAX_FILE: u64 = 1 << 20;

/// The variables of the env files `paths`, set into `vars` in order: a later one wins.
pub fn read_env_files(paths: &[PathBuf], vars: &mut Vec<EnvVar>) -> Result<(), String> {
    for path in paths {
        let shown = path.display();
        let bytes = read_regular(path).map_err(|e| format!("env_file {shown}: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("env_file {shown}: is not UTF-8 text"))?;
        let read = dotenv::parse(&text).map_err(|e| format!("env_file {shown}: {e}"))?;
        for (key, value) in read {
            set_var(vars, EnvVar { key, value, from: Some(path.clone()) });
        }
    }
    Ok(())
}

/// What a process's `env_file`, `env_dir` and `env` add to `vars` (the top level's env
/// files, read already), in that order. Each problem is one message with its key.
pub fn read_said(said: &SaidEnv, vars: &mut Vec<EnvVar>) -> Vec<(Problem, String)> {
    let mut problems = Vec::new();
    if let Err(e) = read_env_files(&said.files, vars) {
        problems.push((Problem::Files, e));
    }
    if let Some((dir, _)) = &said.dir
        && let Err(e) = read_env_dir(dir, vars)
    {
        problems.push((Problem::Dir, e));
    }
    for (key, value) in &said.vars {
        let var = match value {
            SaidValue::Text(text) => EnvVar { key: key.clone(), value: text.clone(), from: None },
            SaidValue::File(path) => match read_secret(path) {
                Ok(value) => EnvVar { key: key.clone(), value, from: Some(path.clone()) },
                Err(e) => {
                    problems.push((Problem::Vars, format!("env: {key}: {} {e}", path.display())));
                    continue;
                }
            },
        };
        set_var(vars, var);
    }
    problems
}

/// Which key of a process a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Files,
    Dir,
    Vars,
}

/// One variable per regular file of `dir`, named as the file, as chpst's envdir and a
/// Kubernetes secret mounted as a directory give them. Names starting with a dot are
/// passed over: a mounted secret keeps its files in a `..DATE` directory behind a
/// `..data` link, and links each key to `..data/KEY`; the links are followed.
pub fn read_env_dir(dir: &Path, vars: &mut Vec<EnvVar>) -> Result<(), String> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("env_dir {shown}: {e}"))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("env_dir {shown}: {e}"))?;
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(b".") {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let key = name.to_str().filter(|key| is_variable_name(key)).ok_or_else(|| {
            format!("env_dir {shown}: {} cannot name a variable (not UTF-8, or holds '=')", path.display())
        })?;
        let value = read_secret(&path).map_err(|e| format!("env_dir {shown}: {} {e}", path.display()))?;
        set_var(vars, EnvVar { key: key.to_string(), value, from: Some(path.clone()) });
    }
    Ok(())
}

/// The content of a regular file, as one value: one trailing newline removed.
pub fn read_secret(path: &Path) -> Result<String, String> {
    let mut bytes = read_regular(path)?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    if bytes.contains(&0) {
        return Err("holds a NUL byte, which no environment can carry".to_string());
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
}

/// A regular file's bytes, at most [`MAX_FILE`]. Opened without blocking and checked
/// after opening, so that a FIFO put in a file's place cannot hold exeunt.
fn read_regular(path: &Path) -> Result<Vec<u8>, String> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".to_string());
    }
    if meta.len() > MAX_FILE {
        return Err(format!("is larger than {MAX_FILE} bytes"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("is larger than {MAX_FILE} bytes"));
    }
    Ok(bytes)
}
