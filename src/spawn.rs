//! Where processes are spawned. Users, working directories, variables and limits were
//! resolved with the plan ([`crate::resolve`]), so that a bad plan starts nothing;
//! [`Launcher::spawn`] sets each child up between fork and exec: its terminal, its
//! limits and umask, its user, its directory, in that order.

use std::ffi::OsString;
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::plan::{Account, Plan, Role};
use crate::quoted::Quoted;
use crate::signals::Inherited;

/// Why a process could not be started.
#[derive(Debug)]
pub enum SpawnError {
    NotFound {
        program: String,
    },
    CannotExecute {
        program: String,
        error: std::io::Error,
    },
    /// Its `workdir` has gone since the plan was resolved.
    Workdir {
        dir: PathBuf,
    },
    /// Its `user` may not enter its `workdir`.
    WorkdirDenied {
        dir: PathBuf,
        user: String,
    },
    /// exeunt has no descriptor, or the system no process, left for it.
    NoRoom {
        program: String,
        error: std::io::Error,
    },
    Other {
        program: String,
        error: std::io::Error,
    },
}

impl SpawnError {
    /// The exit code that stands for it, as a shell would have it.
    pub fn code(&self) -> i32 {
        match self {
            SpawnError::NotFound { .. } => 127,
            SpawnError::CannotExecute { .. } | SpawnError::Other { .. } => 126,
            SpawnError::Workdir { .. } | SpawnError::WorkdirDenied { .. } => 2,
            // exeunt's own limits, not the command's fault.
            SpawnError::NoRoom { .. } => 1,
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound { program } => write!(f, "command {} not found", Quoted(program)),
            SpawnError::CannotExecute { program, error } => {
                write!(f, "command {} cannot be executed: {error}", Quoted(program))
            }
            SpawnError::Workdir { dir } => write!(f, "workdir {} is not a directory", dir.display()),
            SpawnError::WorkdirDenied { dir, user } => {
                write!(f, "workdir {} cannot be entered by {user}", dir.display())
            }
            SpawnError::NoRoom { program, error } => {
                let why = match error.raw_os_error() {
                    Some(libc::EMFILE) => {
                        format!("exeunt has no descriptor left (its limit of open files is {})", open_files_limit())
                    }
                    Some(libc::ENFILE) => "the system has no descriptor left".to_string(),
                    _ => "the system has no room for another process".to_string(),
                };
                write!(f, "command {} cannot be started: {why}: {error}", Quoted(program))
            }
            SpawnError::Other { program, error } => write!(f, "command {}: {error}", Quoted(program)),
        }
    }
}

impl std::error::Error for SpawnError {}

/// The process's end of the channel it announces its readiness on.
pub enum Announce {
    /// The write end of a pipe, which it gets as descriptor `fd`.
    Fd { pipe: OwnedFd, fd: u8 },
    /// The `NOTIFY_SOCKET` it is told.
    Socket(OsString),
}

/// Starts the plan's processes.
pub struct Launcher {
    inherited: Inherited,
    /// Children die with exeunt when it is not PID 1 (as PID 1 the kernel sees to it).
    die_with_exeunt: bool,
    /// The process that gets the terminal's foreground: the first primary, when
    /// stdin is a terminal, so that `docker run -it` reaches it.
    foreground: Option<usize>,
    /// dumb-init's setsid mode: primaries lead sessions of their own and take the
    /// terminal as theirs.
    setsid: bool,
    /// The directory exeunt was started in, when it left it for `/` (the plan's
    /// `leave_cwd`): each process without a `workdir` goes back to it before exec, so
    /// that no process ever sees exeunt in `/` while it is still in the caller's.
    started_in: Option<OwnedFd>,
}

impl Launcher {
    /// A launcher for `plan`; children get back what `inherited` holds.
    pub fn new(plan: &Plan, inherited: Inherited, is_pid1: bool) -> Launcher {
        // SAFETY: isatty only inspects the descriptor.
        let stdin_is_tty = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1;
        let foreground = stdin_is_tty.then(|| plan.processes.iter().position(|p| p.role == Role::Primary)).flatten();
        Launcher {
            inherited,
            die_with_exeunt: !is_pid1,
            foreground,
            setsid: plan.setsid,
            started_in: plan.leave_cwd.then(leave_cwd).flatten(),
        }
    }

    /// Starts the process at `index` of the plan in its own process group; `output`,
    /// when given, becomes its stdout and stderr.
    /// `notice`, when given, is the process's end of the channel it announces its
    /// readiness on.
    pub fn spawn(
        &self,
        plan: &Plan,
        index: usize,
        output: Option<(OwnedFd, OwnedFd)>,
        notice: Option<Announce>,
    ) -> Result<i32, SpawnError> {
        let spec = &plan.processes[index];
        let session = self.setsid && spec.role == Role::Primary;
        let mut command = self.command(plan, index, &spec.command, self.foreground == Some(index), session)?;
        if let Some(Announce::Socket(name)) = &notice {
            command.env("NOTIFY_SOCKET", name);
        }
        if let Some(Announce::Fd { pipe, fd }) = &notice {
            use std::os::fd::AsRawFd;
            let (from, to) = (pipe.as_raw_fd(), i32::from(*fd));
            // SAFETY: dup2 and fcntl only, on descriptors made before the fork.
            unsafe {
                command.pre_exec(move || {
                    if from == to {
                        // Already at its number: only its close-on-exec goes.
                        libc::fcntl(to, libc::F_SETFD, 0);
                    } else if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if spec.role != Role::Primary {
            // Sidecars and tasks must not compete with the primary for a terminal's input.
            command.stdin(Stdio::null());
        }
        if let Some((stdout, stderr)) = output {
            command.stdout(stdout).stderr(stderr);
        }
        if let (Some(dir), None) = (&self.started_in, &spec.workdir) {
            use std::os::fd::AsRawFd;
            let dir = dir.as_raw_fd();
            // SAFETY: fchdir only, on a descriptor opened before the fork.
            unsafe {
                command.pre_exec(move || match libc::fchdir(dir) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                });
            }
        }
        let first_primary = plan.processes.iter().position(|p| p.role == Role::Primary) == Some(index);
        if let (Some(activation), true) = (&plan.activation, first_primary) {
            let program = spec.command[0].to_string_lossy().into_owned();
            activation.hand_to(&mut command).map_err(|error| SpawnError::Other { program, error })?;
        }
        start(command, &spec.command[0])
    }

    /// Starts a check's command for the process at `index`: with that process's
    /// environment, directory and user, as a probe inside its container would run.
    /// `output`, when given, becomes its stdout and stderr (the process's output is
    /// carried); else its stdout goes nowhere and its stderr is exeunt's.
    pub fn spawn_check(
        &self,
        plan: &Plan,
        index: usize,
        argv: &[OsString],
        output: Option<(OwnedFd, OwnedFd)>,
    ) -> Result<i32, SpawnError> {
        let mut command = self.command(plan, index, argv, false, false)?;
        command.stdin(Stdio::null());
        match output {
            Some((stdout, stderr)) => command.stdout(stdout).stderr(stderr),
            None => command.stdout(Stdio::null()),
        };
        start(command, &argv[0])
    }

    fn command(
        &self,
        plan: &Plan,
        index: usize,
        argv: &[OsString],
        take_terminal: bool,
        new_session: bool,
    ) -> Result<Command, SpawnError> {
        let spec = &plan.processes[index];
        let mut command = Command::new(&argv[0]);
        if plan.notify_socket.is_some() {
            // The runtime's socket is exeunt's to answer on, not its processes'.
            command.env_remove("NOTIFY_SOCKET");
        }
        if plan.activation.is_some() {
            // The passed sockets' variables: the first primary's alone (see `spawn`).
            for variable in crate::activation::VARIABLES {
                command.env_remove(variable);
            }
        }
        command.args(&argv[1..]).envs(spec.env.iter().map(|v| (&v.key, &v.value)));
        if !new_session {
            command.process_group(0);
        }
        let mut workdir = None;
        if let Some(dir) = &spec.workdir {
            match workdir_problem(dir, spec.account.as_ref()) {
                Some(WorkdirProblem::NotADirectory) => return Err(SpawnError::Workdir { dir: dir.clone() }),
                Some(WorkdirProblem::Denied { user }) => {
                    return Err(SpawnError::WorkdirDenied { dir: dir.clone(), user });
                }
                None => {}
            }
            // The role map's paths hold no NUL.
            workdir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok();
        }
        if let Some(account) = &spec.account {
            // As su, gosu and Docker's USER do, unless the process's variables say otherwise.
            let given = |key: &str| spec.env.iter().any(|v| v.key == key);
            for (key, value) in
                [("HOME", account.home.as_ref().map(|h| h.as_os_str())), ("USER", None), ("LOGNAME", None)]
            {
                let value = value.or(account.name.as_deref().map(std::ffi::OsStr::new));
                if let (false, Some(value)) = (given(key), value) {
                    command.env(key, value);
                }
            }
        }
        let setup = ChildSetup {
            new_session,
            take_terminal,
            limits: spec
                .limits
                .iter()
                .map(|l| (l.number(), libc::rlimit { rlim_cur: l.soft as _, rlim_max: l.hard as _ }))
                .collect(),
            umask: spec.umask,
            ids: spec.account.as_ref().map(|a| (a.uid, a.gid)),
            workdir,
            die_with_exeunt: self.die_with_exeunt,
            // SAFETY: getpid cannot fail.
            exeunt: unsafe { libc::getpid() },
            inherited: self.inherited,
        };
        // SAFETY: the closure runs between fork and exec; ChildSetup::apply makes only
        // async-signal-safe calls and allocates nothing.
        unsafe {
            command.pre_exec(move || setup.apply());
        }
        Ok(command)
    }
}

/// What a child does to itself between fork and exec, all of it made beforehand: the
/// child may not allocate there.
struct ChildSetup {
    new_session: bool,
    take_terminal: bool,
    /// Each `RLIMIT_*` number and its limits.
    limits: Vec<(i32, libc::rlimit)>,
    umask: Option<u32>,
    /// The uid and gid it runs as, when not exeunt's.
    ids: Option<(u32, u32)>,
    workdir: Option<std::ffi::CString>,
    die_with_exeunt: bool,
    exeunt: libc::pid_t,
    inherited: Inherited,
}

impl ChildSetup {
    /// Runs in the child, in this order: its session or its terminal, its limits and
    /// umask (before the user changes: raising a hard limit takes exeunt's privilege),
    /// its user, its directory (as the user, so that one it may not enter stays shut),
    /// then the parent-death signal (after the uid change, which would clear it) and
    /// the signal state it inherits. Only setsid, ioctl, tcsetpgrp, setrlimit, umask,
    /// setgid, setgroups, setuid, chdir, prctl, getppid, kill, sigaction and
    /// sigprocmask: async-signal-safe calls.
    fn apply(&self) -> std::io::Result<()> {
        let failed = || Err(std::io::Error::last_os_error());
        // SAFETY: each call takes plain values or pointers to memory made before the fork.
        unsafe {
            if self.new_session {
                // A session of its own, which leads its own group; the terminal exeunt
                // gave up becomes its own, when there is one.
                if libc::setsid() == -1 {
                    return failed();
                }
                libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0);
            } else if self.take_terminal {
                // Done in the child, while every signal is still blocked: a background
                // group calling tcsetpgrp would otherwise get SIGTTOU. Failure (no
                // controlling terminal) leaves the terminal as it was.
                libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
            }
            for (resource, limit) in &self.limits {
                if libc::setrlimit(*resource as _, limit) != 0 {
                    return failed();
                }
            }
            if let Some(mask) = self.umask {
                libc::umask(mask as libc::mode_t);
            }
            if let Some((uid, gid)) = self.ids {
                // The gid, the supplementary groups dropped (where exeunt may), then the
                // uid, in the order the standard library keeps.
                if libc::setgid(gid) != 0 {
                    return failed();
                }
                if libc::setgroups(0, std::ptr::null()) != 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
                {
                    return failed();
                }
                if libc::setuid(uid) != 0 {
                    return failed();
                }
            }
            if let Some(dir) = &self.workdir
                && libc::chdir(dir.as_ptr()) != 0
            {
                return failed();
            }
            if self.die_with_exeunt {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                if libc::getppid() != self.exeunt {
                    // exeunt died before the signal was armed.
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
        }
        self.inherited.restore_in_child()
    }
}

/// As dumb-init: exeunt leaves the directory it was started in for `/`, so that it pins
/// no mount, and keeps it open for its processes to go back to. None (and exeunt stays
/// where it is) when the directory cannot be opened, or `/` cannot be entered.
fn leave_cwd() -> Option<OwnedFd> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let here = nix::fcntl::open(".", flags, nix::sys::stat::Mode::empty()).ok()?;
    std::env::set_current_dir("/").ok()?;
    Some(here)
}

fn start(mut command: Command, program: &OsString) -> Result<i32, SpawnError> {
    match command.spawn() {
        // The Child handle is dropped without waiting: the reaper collects it.
        Ok(child) => Ok(child.id() as i32),
        Err(error) => Err(describe(program, error)),
    }
}

fn describe(program: &OsString, error: std::io::Error) -> SpawnError {
    let program = program.to_string_lossy().into_owned();
    match error.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => SpawnError::NotFound { program },
        Some(libc::EACCES | libc::ENOEXEC | libc::EISDIR | libc::EPERM) => SpawnError::CannotExecute { program, error },
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM) => SpawnError::NoRoom { program, error },
        _ => SpawnError::Other { program, error },
    }
}

/// RLIMIT_NOFILE's soft limit, for a message.
fn open_files_limit() -> String {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit.
    match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 if limit.rlim_cur != libc::RLIM_INFINITY => limit.rlim_cur.to_string(),
        _ => "unknown".to_string(),
    }
}

/// Why a process cannot start in its `workdir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkdirProblem {
    NotADirectory,
    /// Its `user` (this account) may not enter it.
    Denied {
        user: String,
    },
}

/// What stands between a process running as `account` (exeunt's own when None) and
/// its workdir `dir`: judged once the plan is resolved, and again at each start, since
/// the directory may have changed meanwhile.
pub fn workdir_problem(dir: &Path, account: Option<&Account>) -> Option<WorkdirProblem> {
    if !dir.is_dir() {
        return Some(WorkdirProblem::NotADirectory);
    }
    let account = account.filter(|a| !may_enter(dir, a.uid, a.gid))?;
    Some(WorkdirProblem::Denied { user: account.to_string() })
}

/// Whether a process running as `uid` and `gid` alone (the standard library drops the
/// supplementary groups) may search every directory on the way to `dir` and `dir`
/// itself, by the permission bits, as the kernel will judge its chdir. Root may enter
/// any directory.
fn may_enter(dir: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    if uid == 0 {
        return true;
    }
    dir.ancestors().filter(|d| !d.as_os_str().is_empty()).all(|d| match std::fs::metadata(d) {
        Ok(meta) if meta.uid() == uid => meta.mode() & 0o100 != 0,
        Ok(meta) if meta.gid() == gid => meta.mode() & 0o010 != 0,
        Ok(meta) => meta.mode() & 0o001 != 0,
        // What exeunt cannot see is left for the chdir itself to judge.
        Err(_) => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_errors_map_to_shell_codes() {
        let program = OsString::from("/x");
        assert_eq!(describe(&program, std::io::Error::from_raw_os_error(libc::ENOENT)).code(), 127);
        assert_eq!(describe(&program, std::io::Error::from_raw_os_error(libc::EACCES)).code(), 126);
    }
}
