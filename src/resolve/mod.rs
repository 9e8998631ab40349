//! The one plan resolver: the command line, the role map, kubexit's variables and the
//! system's user database, turned into the [`Plan`] a run follows. A run and `--check`
//! both go through [`resolve`], so `--check` says "ok" only to what a run would start.
//!
//! Where settings overlap, the most specific wins:
//! - grace periods: `--grace`, else `KUBEXIT_GRACE_PERIOD`, else the role map's (per
//!   process, then global), else kubexit's 30 s when kubexit's variables alone set up
//!   a pod, else 10 s;
//! - the pod: each of kubexit's variables over the matching key of `[pod]`;
//! - the time a sidecar found by `match` may take to appear: the role map's
//!   `match_timeout`, else the pod's birth timeout (`KUBEXIT_BIRTH_TIMEOUT` over
//!   `[pod] birth_timeout`), else 30 s (derived by [`Plan::match_timeout`]).

use std::ffi::OsString;
use std::fmt;

use nix::unistd::{Gid, Group, Uid, User};

use crate::cli::Options;
use crate::plan::{Account, Check, DEFAULT_GRACE, EnvVar, Plan, ProcessSpec, Role, ShutdownOrder, UserSpec, set_limit};
use crate::pod::kubexit_env::{self, KUBEXIT_DEFAULT_GRACE, KubexitError};
use crate::quoted::Quoted;
use crate::rolemap::{self, RoleMap, RoleMapError, SaidProcess};
use crate::signo::Signo;
use crate::spawn::{WorkdirProblem, workdir_problem};

mod command;
mod environment;
mod limits;

/// Why no plan could be made; each mistake shown as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    RoleMap(RoleMapError),
    Kubexit(KubexitError),
    /// Every process that cannot run as its role map says, each with its problem.
    Processes(Vec<ProcessError>),
}

/// A process that cannot run as it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessError {
    /// `file:line:column` of the key at fault, when a role map wrote it.
    pub place: Option<String>,
    /// None for a key of the role map's top level, which every process shares.
    pub process: Option<String>,
    pub problem: Problem,
}

/// What stands between a process and its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A `user` that the user database does not know, or cannot be asked about.
    User(String),
    /// A `user` other than exeunt's own, while exeunt is not root.
    NeedsRoot { user: String, uid: u32 },
    /// A command line and environment larger than exec takes (E2BIG).
    TooLarge(String),
    /// A `workdir` that is not a directory.
    Workdir { dir: String },
    /// A `workdir` that the process's `user` may not enter.
    WorkdirDenied { dir: String, user: String },
    /// An env file, `env_dir` or `{ file = ... }` that cannot be read for variables.
    Env(String),
    /// A resource limit that exeunt may not set.
    Limit(String),
    /// A command that exec would not find, or not run.
    Command(String),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(place) = &self.place {
            write!(f, "{place}: ")?;
        }
        if let Some(process) = &self.process {
            write!(f, "process {process}: ")?;
        }
        match &self.problem {
            Problem::User(problem)
            | Problem::TooLarge(problem)
            | Problem::Env(problem)
            | Problem::Limit(problem)
            | Problem::Command(problem) => f.write_str(problem),
            Problem::NeedsRoot { user, uid } => {
                write!(f, "user = \"{user}\" needs exeunt to run as root (it runs as uid {uid})")
            }
            Problem::Workdir { dir } => write!(f, "workdir {} is not a directory", Quoted(dir)),
            Problem::WorkdirDenied { dir, user } => write!(f, "workdir {} cannot be entered by {user}", Quoted(dir)),
        }
    }
}

/// One line per mistake.
impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::RoleMap(e) => e.fmt(f),
            ResolveError::Kubexit(e) => e.fmt(f),
            ResolveError::Processes(errors) => {
                for (i, error) in errors.iter().enumerate() {
                    write!(f, "{}{error}", if i > 0 { "\n" } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ResolveError {}

impl From<RoleMapError> for ResolveError {
    fn from(e: RoleMapError) -> ResolveError {
        ResolveError::RoleMap(e)
    }
}

impl From<KubexitError> for ResolveError {
    fn from(e: KubexitError) -> ResolveError {
        ResolveError::Kubexit(e)
    }
}

/// A plan, and what the resolver noticed on the way.
#[derive(Debug)]
pub struct Resolved {
    pub plan: Plan,
    /// KUBEXIT_POD_NAME or KUBEXIT_NAMESPACE was set: accepted, and not needed.
    pub kubexit_api_variables: bool,
}

/// Resolves the plan of a run: the one place where what the role map and the command
/// line say becomes what a run will do. `env` looks up an environment variable.
pub fn resolve(options: &Options, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Resolved, ResolveError> {
    let mut map = match &options.config {
        Some(path) => {
            let command = (!options.command.is_empty()).then_some(options.command.as_slice());
            Some(rolemap::load(path, command, env)?)
        }
        None => None,
    };
    let kubexit = kubexit_env::read(map.as_mut().and_then(|m| m.pod.take()), env)?;
    // kubexit's own default grace applies where kubexit's variables alone set up a pod.
    let kubexit_default = (map.is_none() && kubexit.pod.is_some()).then_some(KUBEXIT_DEFAULT_GRACE);
    let grace = options.grace.or(kubexit.grace).or(kubexit_default);
    let processes = match &mut map {
        Some(map) => {
            let said = std::mem::take(&mut map.processes);
            Resolver::new(Some(map), options, grace, env).processes(said)?
        }
        None => {
            let main = ProcessSpec::new("main", Role::Primary, options.command.clone());
            Resolver::new(None, options, grace, env).processes(vec![SaidProcess::bare(main)])?
        }
    };
    let said = |read: fn(&RoleMap) -> Option<std::time::Duration>| map.as_ref().and_then(read);
    let plan = Plan {
        processes,
        grace_period: grace.or(map.as_ref().map(|m| m.grace_period)).unwrap_or(DEFAULT_GRACE),
        shutdown: map.as_ref().map_or(ShutdownOrder::Ordered, |m| m.shutdown),
        pod: kubexit.pod,
        match_timeout: said(|m| m.match_timeout),
        signal_groups: options.signal_groups,
        sidecar_container: options.sidecar_container,
        zero_codes: options.zero_codes.clone(),
        report_reaped: options.report_reaped,
        // Without a role map, exeunt stands in for tini: signals go on as they came.
        forward_stop_signals: map.is_none(),
        kill_primaries_after: said(|m| m.kill_primaries_after),
        kill_on_second_signal: map.as_ref().is_some_and(|m| m.kill_on_second_signal),
        stop_delay: options.stop_delay.or(said(|m| Some(m.stop_delay))).unwrap_or_default(),
        setsid: options.dumb_init.is_some_and(|d| d.setsid),
        job_control: options.dumb_init.is_some(),
        leave_cwd: options.dumb_init.is_some(),
        forward_faults: options.dumb_init.is_some(),
        exit_with_primary: options.dumb_init.is_some(),
        notify_socket: env("NOTIFY_SOCKET").filter(|socket| !socket.is_empty()),
        activation: crate::activation::Activation::from_env(env, std::process::id()),
        log_format: map.as_ref().and_then(|m| m.log_format),
        // The role map's `control_socket` wins, as its `log_format` does.
        control_socket: map.as_ref().and_then(|m| m.control_socket.clone()).or(options.control_socket.clone()),
    };
    Ok(Resolved { plan, kubexit_api_variables: kubexit.api_variables_ignored })
}

/// What every process of a run is resolved against, and the problems found so far,
/// each with where it sorts in the role map's text.
struct Resolver<'a> {
    map: Option<&'a RoleMap>,
    grace: Option<std::time::Duration>,
    rewrite: Vec<(Signo, Option<Signo>)>,
    /// The size of each inherited variable, `KEY=VALUE` and its NUL.
    inherited: Vec<usize>,
    inherited_path: Option<OsString>,
    euid: u32,
    exec_limit: usize,
    /// The variables of the top level's env files, which every process starts from.
    shared_env: Vec<EnvVar>,
    errors: Vec<(usize, ProcessError)>,
}

impl<'a> Resolver<'a> {
    fn new(
        map: Option<&'a RoleMap>,
        options: &Options,
        grace: Option<std::time::Duration>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Resolver<'a> {
        let mut resolver = Resolver {
            map,
            grace,
            rewrite: rewrites(options),
            inherited: std::env::vars_os().map(|(k, v)| k.len() + v.len() + 1).collect(),
            inherited_path: env("PATH"),
            euid: Uid::effective().as_raw(),
            exec_limit: exec_limit(),
            shared_env: Vec::new(),
            errors: Vec::new(),
        };
        if let Some(map) = map
            && let Err(e) = environment::read_env_files(&map.env_files, &mut resolver.shared_env)
        {
            resolver.error(None, map.env_files_at.as_ref(), Problem::Env(e));
        }
        resolver
    }

    /// Notes a problem of `process` (None: the top level's) at `place` in the role map.
    fn error(&mut self, process: Option<&str>, place: Option<&std::ops::Range<usize>>, problem: Problem) {
        let order = place.map_or(usize::MAX, |span| span.start);
        let place = place.zip(self.map).map(|(span, map)| map.place(span));
        self.errors.push((order, ProcessError { place, process: process.map(str::to_string), problem }));
    }

    /// Each process as it will run: grace periods overridden, the command line's
    /// rewrites added to the primaries, users looked up, variables read, limits and
    /// commands checked, and what exec and chdir will meet checked. Every process that
    /// cannot run so is one error.
    fn processes(mut self, said: Vec<SaidProcess>) -> Result<Vec<ProcessSpec>, ResolveError> {
        let processes: Vec<ProcessSpec> = said.into_iter().map(|said| self.process(said)).collect();
        if self.errors.is_empty() {
            return Ok(processes);
        }
        // In the order of the role map's text, as its other mistakes.
        self.errors.sort_by_key(|(order, _)| *order);
        Err(ResolveError::Processes(self.errors.into_iter().map(|(_, error)| error).collect()))
    }

    fn process(&mut self, said: SaidProcess) -> ProcessSpec {
        let SaidProcess { mut spec, user, workdir_at, variables: env, own_limits: limits, command_check, command_at } =
            said;
        let name = spec.name.clone();
        if let Some(grace) = self.grace {
            spec.grace_period = grace;
        }
        if spec.role == Role::Primary {
            for &(from, to) in &self.rewrite {
                // The role map's own table wins for the signals it names.
                if spec.rewritten(from).is_none() {
                    spec.rewrite.push((from, to));
                }
            }
        }
        if let Some((user, at)) = &user {
            match account(user, self.euid) {
                Ok(account) => spec.account = Some(account),
                Err(problem) => self.error(Some(&name), Some(at), problem),
            }
        }
        spec.env = self.shared_env.clone();
        for (key, problem) in environment::read_said(&env, &mut spec.env) {
            let at = match key {
                environment::Problem::Files => env.files_at.as_ref(),
                environment::Problem::Dir => env.dir.as_ref().map(|(_, at)| at),
                environment::Problem::Vars => env.vars_at.as_ref(),
            };
            self.error(Some(&name), at, Problem::Env(problem));
        }
        self.limits(&mut spec, &limits);
        if !spec.command.is_empty()
            && let Err(problem) = exec_room(&spec, &self.inherited, self.exec_limit)
        {
            self.error(Some(&name), None, Problem::TooLarge(problem));
        }
        if let Some(dir) = &spec.workdir {
            let shown = dir.display().to_string();
            match workdir_problem(dir, spec.account.as_ref()) {
                Some(WorkdirProblem::NotADirectory) => {
                    self.error(Some(&name), workdir_at.as_ref(), Problem::Workdir { dir: shown })
                }
                Some(WorkdirProblem::Denied { user }) => {
                    self.error(Some(&name), workdir_at.as_ref(), Problem::WorkdirDenied { dir: shown, user })
                }
                None => {}
            }
        }
        // Without a role map, a command that cannot run gets tini's 127 or 126.
        if self.map.is_some() && command_check {
            self.commands(&spec, command_at.as_ref());
        }
        spec
    }

    /// The top level's limits and umask where the process sets none of its own, each
    /// limit checked against what exeunt may set.
    fn limits(&mut self, spec: &mut ProcessSpec, own: &[(crate::plan::Limit, std::ops::Range<usize>)]) {
        let shared = self.map.map(|m| m.limits.as_slice()).unwrap_or_default();
        let mut merged: Vec<(crate::plan::Limit, std::ops::Range<usize>)> = shared.to_vec();
        for (limit, at) in own {
            match merged.iter_mut().find(|(l, _)| l.resource == limit.resource) {
                Some(earlier) => *earlier = (*limit, at.clone()),
                None => merged.push((*limit, at.clone())),
            }
        }
        for (limit, at) in merged {
            match limits::limit_problem(&limit) {
                Some(problem) => self.error(Some(&spec.name.clone()), Some(&at), Problem::Limit(problem)),
                None => set_limit(&mut spec.limits, limit),
            }
        }
        spec.umask = spec.umask.or(self.map.and_then(|m| m.umask));
    }

    /// The process's command, and its probe's and stop hook's, looked up as exec will.
    fn commands(&mut self, spec: &ProcessSpec, command_at: Option<&std::ops::Range<usize>>) {
        let checks =
            [spec.ready.as_ref().map(|r| &r.probe), spec.live.as_ref().map(|l| &l.probe), spec.stop_hook.as_ref()];
        let hooks = checks.into_iter().flatten().filter_map(|check| match check {
            Check::Exec(argv) => argv.first(),
            _ => None,
        });
        let first = spec.command.first().map(|program| (program, command_at));
        for (program, at) in first.into_iter().chain(hooks.map(|program| (program, None))) {
            if let Err(problem) = command::look_up(spec, program, self.inherited_path.as_deref()) {
                self.error(Some(&spec.name), at, Problem::Command(problem));
            }
        }
    }
}

/// The command line's rewrites (`-r`), and in dumb-init's setsid mode the terminal's
/// stop signals as SIGSTOP: the primary's group has no terminal of exeunt's to stop on.
fn rewrites(options: &Options) -> Vec<(Signo, Option<Signo>)> {
    let mut rewrite = options.rewrite.clone();
    if options.dumb_init.is_some_and(|d| d.setsid) {
        for signo in [libc::SIGTSTP, libc::SIGTTOU, libc::SIGTTIN] {
            if !rewrite.iter().any(|(from, _)| from.0 == signo) {
                rewrite.push((Signo(signo), Some(Signo(libc::SIGSTOP))));
            }
        }
    }
    rewrite
}

/// Looks `user` up; refuses a user change that needs root when exeunt (`euid`) is not
/// root.
fn account(user: &UserSpec, euid: u32) -> Result<Account, Problem> {
    let account = look_up(user).map_err(Problem::User)?;
    if euid != 0 && (account.uid, account.gid) != (euid, Gid::effective().as_raw()) {
        return Err(Problem::NeedsRoot { user: user.to_string(), uid: euid });
    }
    Ok(account)
}

/// The most a single argument or variable may take (the kernel's MAX_ARG_STRLEN).
const MAX_STRING: usize = 32 * 4096;

/// The room exec gives the argument and environment strings and their pointers: a
/// quarter of the stack limit, at least 128 KiB and at most 6 MiB, as Linux reckons it.
fn exec_limit() -> usize {
    let mut stack = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut stack) } == 0;
    let quarter = if known && stack.rlim_cur != libc::RLIM_INFINITY { stack.rlim_cur as usize / 4 } else { usize::MAX };
    quarter.clamp(128 << 10, 6 << 20)
}

/// Whether exec takes this process's command line and environment (`inherited`: the
/// size of each inherited variable, `KEY=VALUE` and its NUL) within `limit` bytes.
fn exec_room(process: &ProcessSpec, inherited: &[usize], limit: usize) -> Result<(), String> {
    let pointer = std::mem::size_of::<usize>();
    if let Some(long) = process.command.iter().find(|a| a.len() + 1 > MAX_STRING) {
        let shown: String = long.to_string_lossy().chars().take(20).collect();
        return Err(format!(
            "an argument ({} bytes, {}...) is longer than the {MAX_STRING} bytes exec takes",
            long.len(),
            Quoted(&shown)
        ));
    }
    let args: usize = process.command.iter().map(|a| a.len() + 1 + pointer).sum();
    let own: usize = process.env.iter().map(|v| v.key.len() + v.value.len() + 2 + pointer).sum();
    // Variables the role map sets replace inherited ones; counting both errs on the safe side
    // by at most the inherited values' size.
    let env: usize = inherited.iter().map(|size| size + 1 + pointer).sum::<usize>() + own;
    let total = args + env + 2 * pointer;
    if total > limit {
        return Err(format!(
            "its command ({} arguments) and environment take {total} bytes, more than the {limit} bytes exec takes",
            process.command.len()
        ));
    }
    Ok(())
}

/// The ids for `USER[:GROUP]`. A user given by name takes its passwd group unless a
/// group is given; a numeric uid without a passwd entry takes the same gid.
fn look_up(spec: &UserSpec) -> Result<Account, String> {
    let lookup_error = |what: &str, e: nix::Error| format!("cannot look up {what}: {e}");
    let (uid, entry) = match spec.user.parse::<u32>() {
        Ok(uid) => (uid, User::from_uid(Uid::from_raw(uid)).map_err(|e| lookup_error("the user", e))?),
        Err(_) => {
            let entry = User::from_name(&spec.user).map_err(|e| lookup_error("the user", e))?;
            let user = entry.ok_or_else(|| format!("user {} does not exist in /etc/passwd", Quoted(&spec.user)))?;
            (user.uid.as_raw(), Some(user))
        }
    };
    // setresuid and setresgid read -1 as "leave it as it is": no process can take it.
    if uid == u32::MAX {
        return Err(format!("uid {uid} is not one a process can run as"));
    }
    // A uid without a passwd entry takes the same number as gid.
    let passwd_gid = entry.as_ref().map_or(uid, |u| u.gid.as_raw());
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
    if gid == u32::MAX {
        return Err(format!("gid {gid} is not one a process can run as"));
    }
    let (name, home) = entry.map_or((None, None), |u| (Some(u.name), Some(u.dir)));
    Ok(Account { uid, gid, name, home })
}

#[cfg(test)]
mod tests;
