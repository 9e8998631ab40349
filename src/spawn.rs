//! Where processes are spawned. Everything that can be checked before the first start
//! (users and groups) is resolved by [`Launcher::new`], so that a bad plan starts
//! nothing; [`Launcher::spawn`] then sets each child up between fork and exec.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Group, Uid, User};

use crate::logger::Quoted;
use crate::plan::{Plan, Role, UserSpec};
use crate::signals::Inherited;

/// Why a process could not be started, and the exit code that stands for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnError {
    pub code: i32,
    pub reason: String,
}

/// Starts the plan's processes.
pub struct Launcher {
    inherited: Inherited,
    /// Children die with exeunt when it is not PID 1 (as PID 1 the kernel sees to it).
    die_with_exeunt: bool,
    /// The process that gets the terminal's foreground: the first primary, when
    /// stdin is a terminal, so that `docker run -it` reaches it.
    foreground: Option<usize>,
    ids: Vec<Option<(u32, u32)>>,
}

impl Launcher {
    /// Resolves every `user` of the plan; refuses users that do not exist and user
    /// changes that need root when exeunt is not root.
    pub fn new(plan: &Plan, inherited: Inherited, is_pid1: bool) -> Result<Launcher, String> {
        let ids = plan
            .processes
            .iter()
            .map(|p| p.user.as_ref().map(|u| resolve(u).map_err(|e| format!("process {}: {e}", p.name))).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let me = (Uid::effective().as_raw(), Gid::effective().as_raw());
        if me.0 != 0 {
            let needs_root = plan.processes.iter().zip(&ids).find(|(_, id)| id.is_some_and(|id| id != me));
            if let Some((p, _)) = needs_root {
                let user = p.user.as_ref().map(ToString::to_string).unwrap_or_default();
                return Err(format!(
                    "process {}: user = \"{user}\" needs exeunt to run as root (it runs as uid {})",
                    p.name, me.0
                ));
            }
        }
        // SAFETY: isatty only inspects the descriptor.
        let stdin_is_tty = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1;
        let foreground = stdin_is_tty.then(|| plan.processes.iter().position(|p| p.role == Role::Primary)).flatten();
        Ok(Launcher { inherited, die_with_exeunt: !is_pid1, foreground, ids })
    }

    /// Starts the process at `index` of the plan in its own process group.
    pub fn spawn(&self, plan: &Plan, index: usize) -> Result<i32, SpawnError> {
        let spec = &plan.processes[index];
        let mut command = self.command(plan, index, &spec.command, self.foreground == Some(index))?;
        if spec.role == Role::Sidecar {
            // Sidecars must not compete with the primary for a terminal's input.
            command.stdin(Stdio::null());
        }
        start(command, &spec.command[0])
    }

    /// Starts a check's command for the process at `index`: with that process's
    /// environment, directory and user, as a probe inside its container would run.
    pub fn spawn_check(&self, plan: &Plan, index: usize, argv: &[OsString]) -> Result<i32, SpawnError> {
        let mut command = self.command(plan, index, argv, false)?;
        command.stdin(Stdio::null()).stdout(Stdio::null());
        start(command, &argv[0])
    }

    fn command(
        &self,
        plan: &Plan,
        index: usize,
        argv: &[OsString],
        take_terminal: bool,
    ) -> Result<Command, SpawnError> {
        let spec = &plan.processes[index];
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).envs(spec.env.iter().map(|(k, v)| (k, v))).process_group(0);
        if let Some(dir) = &spec.workdir {
            if !dir.is_dir() {
                return Err(SpawnError { code: 2, reason: format!("workdir {} is not a directory", dir.display()) });
            }
            command.current_dir(dir);
        }
        if let Some((uid, gid)) = self.ids[index] {
            // The standard library sets the gid, drops supplementary groups (as root),
            // then sets the uid, in that order.
            command.uid(uid).gid(gid);
        }
        let inherited = self.inherited;
        let die_with_exeunt = self.die_with_exeunt;
        // SAFETY: getpid cannot fail.
        let exeunt = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec, so it may only make
        // async-signal-safe calls and must not allocate: it calls tcsetpgrp, prctl,
        // getppid, kill, sigaction and sigprocmask on values copied in beforehand.
        unsafe {
            command.pre_exec(move || {
                if take_terminal {
                    // Done in the child, while every signal is still blocked: a
                    // background group calling tcsetpgrp would otherwise get SIGTTOU.
                    // Failure (no controlling terminal) leaves the terminal as it was.
                    libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
                }
                if die_with_exeunt {
                    // Set after the uid change, which would clear it.
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                    if libc::getppid() != exeunt {
                        // exeunt died before the signal was armed.
                        libc::kill(libc::getpid(), libc::SIGKILL);
                    }
                }
                inherited.restore_in_child()
            });
        }
        Ok(command)
    }
}

fn start(mut command: Command, program: &OsString) -> Result<i32, SpawnError> {
    match command.spawn() {
        // The Child handle is dropped without waiting: the reaper collects it.
        Ok(child) => Ok(child.id() as i32),
        Err(error) => Err(describe(program, &error)),
    }
}

fn describe(program: &OsString, error: &std::io::Error) -> SpawnError {
    let program = program.to_string_lossy();
    match error.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => {
            SpawnError { code: 127, reason: format!("command {} not found", Quoted(&program)) }
        }
        Some(libc::EACCES | libc::ENOEXEC | libc::EISDIR | libc::EPERM) => {
            SpawnError { code: 126, reason: format!("command {} cannot be executed: {error}", Quoted(&program)) }
        }
        _ => SpawnError { code: 126, reason: format!("command {}: {error}", Quoted(&program)) },
    }
}

/// A uid and gid for `USER[:GROUP]`. A user given by name takes its passwd group
/// unless a group is given; a numeric uid without a passwd entry takes the same gid.
fn resolve(spec: &UserSpec) -> Result<(u32, u32), String> {
    let lookup_error = |what: &str, e: nix::Error| format!("cannot look up {what}: {e}");
    let (uid, passwd_gid) = match spec.user.parse::<u32>() {
        Ok(uid) => {
            let entry = User::from_uid(Uid::from_raw(uid)).map_err(|e| lookup_error("the user", e))?;
            (uid, entry.map_or(uid, |u| u.gid.as_raw()))
        }
        Err(_) => {
            let entry = User::from_name(&spec.user).map_err(|e| lookup_error("the user", e))?;
            let user = entry.ok_or_else(|| format!("user {} does not exist in /etc/passwd", Quoted(&spec.user)))?;
            (user.uid.as_raw(), user.gid.as_raw())
        }
    };
    let gid = match &spec.group {
        None => passwd_gid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => Group::from_name(group)
                .map_err(|e| lookup_error("the group", e))?
                .ok_or_else(|| format!("group {} does not exist in /etc/group", Quoted(group)))?
                .gid
                .as_raw(),
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_by_number_or_name() {
        let root = UserSpec { user: "root".into(), group: None };
        assert_eq!(resolve(&root), Ok((0, 0)));
        let numeric = UserSpec { user: "4242".into(), group: Some("4343".into()) };
        assert_eq!(resolve(&numeric), Ok((4242, 4343)));
        let unknown = UserSpec { user: "no-such-user-here".into(), group: None };
        assert_eq!(resolve(&unknown), Err("user 'no-such-user-here' does not exist in /etc/passwd".into()));
        let bad_group = UserSpec { user: "0".into(), group: Some("no-such-group-here".into()) };
        assert_eq!(resolve(&bad_group), Err("group 'no-such-group-here' does not exist in /etc/group".into()));
    }

    #[test]
    fn exec_errors_map_to_shell_codes() {
        let program = OsString::from("/x");
        assert_eq!(describe(&program, &std::io::Error::from_raw_os_error(libc::ENOENT)).code, 127);
        assert_eq!(describe(&program, &std::io::Error::from_raw_os_error(libc::EACCES)).code, 126);
    }
}
