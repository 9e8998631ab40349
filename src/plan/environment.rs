//! What a process starts with beyond its command: the variables it is given, the
//! resource limits it runs under, and its umask.

use std::fmt;
use std::path::PathBuf;

/// A variable a process is given on top of the environment exeunt inherited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
    /// The file the value was read from: an env file, a `{ file = ... }`, a file of
    /// `env_dir`. Such a value is a secret, shown nowhere.
    pub from: Option<PathBuf>,
}

impl fmt::Display for EnvVar {
    /// `KEY`, or `KEY=<from PATH>`: never the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(path) => write!(f, "{}=<from {}>", self.key, path.display()),
            None => f.write_str(&self.key),
        }
    }
}

/// Sets `key` in `vars`, replacing an earlier value: the later one wins.
pub fn set_var(vars: &mut Vec<EnvVar>, var: EnvVar) {
    match vars.iter_mut().find(|v| v.key == var.key) {
        Some(earlier) => *earlier = var,
        None => vars.push(var),
    }
}

/// The resource limits a role map can set, by the lower-case name of their `RLIMIT_*`.
pub const RESOURCES: [(&str, i32); 16] = [
    ("as", libc::RLIMIT_AS as i32),
    ("core", libc::RLIMIT_CORE as i32),
    ("cpu", libc::RLIMIT_CPU as i32),
    ("data", libc::RLIMIT_DATA as i32),
    ("fsize", libc::RLIMIT_FSIZE as i32),
    ("locks", libc::RLIMIT_LOCKS as i32),
    ("memlock", libc::RLIMIT_MEMLOCK as i32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as i32),
    ("nice", libc::RLIMIT_NICE as i32),
    ("nofile", libc::RLIMIT_NOFILE as i32),
    ("nproc", libc::RLIMIT_NPROC as i32),
    ("rss", libc::RLIMIT_RSS as i32),
    ("rtprio", libc::RLIMIT_RTPRIO as i32),
    ("rttime", libc::RLIMIT_RTTIME as i32),
    ("sigpending", libc::RLIMIT_SIGPENDING as i32),
    ("stack", libc::RLIMIT_STACK as i32),
];

/// No limit, as setrlimit takes it.
pub const UNLIMITED: u64 = libc::RLIM_INFINITY;

/// One resource limit, soft and hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// An index into [`RESOURCES`].
    pub resource: usize,
    pub soft: u64,
    pub hard: u64,
}

impl Limit {
    /// The lower-case name of its `RLIMIT_*`.
    pub fn name(&self) -> &'static str {
        RESOURCES[self.resource].0
    }

    /// The `RLIMIT_*` number.
    pub fn number(&self) -> i32 {
        RESOURCES[self.resource].1
    }
}

impl fmt::Display for Limit {
    /// `nofile=1024:4096`, `core=0`, `stack=unlimited`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = |n: u64| if n == UNLIMITED { "unlimited".to_string() } else { n.to_string() };
        match self.soft == self.hard {
            true => write!(f, "{}={}", self.name(), value(self.soft)),
            false => write!(f, "{}={}:{}", self.name(), value(self.soft), value(self.hard)),
        }
    }
}

/// Sets `limit` in `limits`, replacing an earlier one of the same resource.
pub fn set_limit(limits: &mut Vec<Limit>, limit: Limit) {
    match limits.iter_mut().find(|l| l.resource == limit.resource) {
        Some(earlier) => *earlier = limit,
        None => limits.push(limit),
    }
}
