//! A command looked up as exec will look it up when the process starts: a program with
//! a `/` where it stands (from the process's workdir), any other in the `PATH` of the
//! process's own environment; executable by the user it runs as.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::plan::{Account, ProcessSpec};
use crate::quoted::Quoted;

/// The PATH that musl's execvp searches when the environment has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/bin:/usr/bin";

/// Where `program` would be executed from, or why it cannot be. `inherited_path` is
/// exeunt's own PATH, which the process inherits unless its variables set one.
pub fn look_up(process: &ProcessSpec, program: &OsStr, inherited_path: Option<&OsStr>) -> Result<PathBuf, String> {
    let account = process.account.as_ref();
    let shown = Quoted(&program.to_string_lossy()).to_string();
    let from_workdir = |path: &Path| match &process.workdir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    if program.as_bytes().contains(&b'/') {
        let path = from_workdir(Path::new(program));
        return match judge(&path, account) {
            Judgement::Runs => Ok(path),
            Judgement::Missing => Err(format!("command {shown} does not exist")),
            Judgement::Directory => Err(format!("command {shown} is a directory")),
            Judgement::NotExecutable => Err(format!("command {shown} is not executable{}", by(account))),
        };
    }
    let own_path = process.env.iter().find(|v| v.key == "PATH").map(|v| OsString::from(&v.value));
    let search = own_path.as_deref().or(inherited_path).unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut refused = None;
    for dir in search.as_bytes().split(|&b| b == b':') {
        // An empty entry is the working directory, as execvp reads it.
        let dir = if dir.is_empty() { Path::new(".") } else { Path::new(OsStr::from_bytes(dir)) };
        let path = from_workdir(&dir.join(program));
        match judge(&path, account) {
            Judgement::Runs => return Ok(path),
            Judgement::NotExecutable => refused = refused.or(Some(path)),
            Judgement::Missing | Judgement::Directory => {}
        }
    }
    let search = search.to_string_lossy();
    match refused {
        Some(path) => Err(format!("command {shown} ({}) is not executable{}", path.display(), by(account))),
        None => Err(format!("command {shown} is not found in PATH {search}")),
    }
}

fn by(account: Option<&Account>) -> String {
    account.map(|a| format!(" by {a}")).unwrap_or_default()
}

enum Judgement {
    Runs,
    Missing,
    Directory,
    NotExecutable,
}

/// Whether exec of `path` would run, by its kind and its permission bits, for
/// `account` (exeunt itself when None).
fn judge(path: &Path, account: Option<&Account>) -> Judgement {
    let Ok(meta) = std::fs::metadata(path) else { return Judgement::Missing };
    if meta.is_dir() {
        return Judgement::Directory;
    }
    let mode = meta.mode();
    let executable = match account {
        // Root may execute a file with any execute bit.
        Some(a) if a.uid == 0 => mode & 0o111 != 0,
        Some(a) if meta.uid() == a.uid => mode & 0o100 != 0,
        Some(a) if meta.gid() == a.gid => mode & 0o010 != 0,
        Some(_) => mode & 0o001 != 0,
        None => {
            let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return Judgement::Missing };
            // SAFETY: a NUL-terminated path; faccessat only reads it.
            unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), libc::X_OK, libc::AT_EACCESS) == 0 }
        }
    };
    if meta.is_file() && executable { Judgement::Runs } else { Judgement::NotExecutable }
}
