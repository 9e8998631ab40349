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
use crate::plan::{Account, DEFAULT_GRACE, Plan, ProcessSpec, Role, ShutdownOrder, UserSpec};
use crate::pod::kubexit_env::{self, KUBEXIT_DEFAULT_GRACE, KubexitError};
use crate::quoted::Quoted;
use crate::rolemap::{self, RoleMap, RoleMapError, SaidProcess};
use crate::signo::Signo;
use crate::spawn::{WorkdirProblem, workdir_problem};

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
    pub process: String,
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
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(place) = &self.place {
            write!(f, "{place}: ")?;
        }
        write!(f, "process {}: ", self.process)?;
        match &self.problem {
            Problem::User(problem) | Problem::TooLarge(problem) => f.write_str(problem),
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
            Some(rolemap::load(path, command)?)
        }
        None => None,
    };
    let kubexit = kubexit_env::read(map.as_mut().and_then(|m| m.pod.take()), env)?;
    // kubexit's own default grace applies where kubexit's variables alone set up a pod.
    let kubexit_default = (map.is_none() && kubexit.pod.is_some()).then_some(KUBEXIT_DEFAULT_GRACE);
    let grace = options.grace.or(kubexit.grace).or(kubexit_default);
    let processes = match &mut map {
        Some(map) => resolve_processes(std::mem::take(&mut map.processes), Some(map), options, grace)?,
        None => {
            let main = ProcessSpec::new("main", Role::Primary, options.command.clone());
            resolve_processes(vec![SaidProcess { spec: main, user: None, workdir_at: None }], None, options, grace)?
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
        log_format: map.as_ref().and_then(|m| m.log_format),
        // The role map's `control_socket` wins, as its `log_format` does.
        control_socket: map.as_ref().and_then(|m| m.control_socket.clone()).or(options.control_socket.clone()),
    };
    Ok(Resolved { plan, kubexit_api_variables: kubexit.api_variables_ignored })
}

/// Each process as it will run: grace periods overridden by `grace`, the command
/// line's rewrites added to the primaries, users looked up, and what exec and chdir
/// will meet checked. Every process that cannot run so is one error.
fn resolve_processes(
    said: Vec<SaidProcess>,
    map: Option<&RoleMap>,
    options: &Options,
    grace: Option<std::time::Duration>,
) -> Result<Vec<ProcessSpec>, ResolveError> {
    let rewrite = rewrites(options);
    let inherited: Vec<usize> = std::env::vars_os().map(|(k, v)| k.len() + v.len() + 1).collect();
    let (euid, limit) = (Uid::effective().as_raw(), exec_limit());
    let mut errors = Vec::new();
    let mut processes = Vec::with_capacity(said.len());
    for SaidProcess { mut spec, user, workdir_at } in said {
        let mut error = |place: Option<&std::ops::Range<usize>>, problem| {
            let order = place.map_or(usize::MAX, |span| span.start);
            let place = place.zip(map).map(|(span, map)| map.place(span));
            errors.push((order, ProcessError { place, process: spec.name.clone(), problem }));
        };
        if let Some(grace) = grace {
            spec.grace_period = grace;
        }
        if spec.role == Role::Primary {
            for &(from, to) in &rewrite {
                // The role map's own table wins for the signals it names.
                if spec.rewritten(from).is_none() {
                    spec.rewrite.push((from, to));
                }
            }
        }
        if let Some((user, at)) = &user {
            match account(user, euid) {
                Ok(account) => spec.account = Some(account),
                Err(problem) => error(Some(at), problem),
            }
        }
        if !spec.command.is_empty()
            && let Err(problem) = exec_room(&spec, &inherited, limit)
        {
            error(None, Problem::TooLarge(problem));
        }
        if let Some(dir) = &spec.workdir {
            let shown = dir.display().to_string();
            match workdir_problem(dir, spec.account.as_ref()) {
                Some(WorkdirProblem::NotADirectory) => error(workdir_at.as_ref(), Problem::Workdir { dir: shown }),
                Some(WorkdirProblem::Denied { user }) => {
                    error(workdir_at.as_ref(), Problem::WorkdirDenied { dir: shown, user })
                }
                None => {}
            }
        }
        processes.push(spec);
    }
    if errors.is_empty() {
        return Ok(processes);
    }
    // In the order of the role map's text, as its other mistakes.
    errors.sort_by_key(|(order, _)| *order);
    Err(ResolveError::Processes(errors.into_iter().map(|(_, error)| error).collect()))
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
    let own: usize = process.env.iter().map(|(k, v)| k.len() + v.len() + 2 + pointer).sum();
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
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// A role map written to a scratch file, and options that run it.
    struct Map(PathBuf);

    impl Map {
        fn new(test: &str, text: &str) -> Map {
            let path = std::env::temp_dir().join(format!("exeunt-resolve-{test}-{}.toml", std::process::id()));
            std::fs::write(&path, text).expect("write the role map");
            Map(path)
        }

        fn options(&self) -> Options {
            Options { config: Some(self.0.clone()), ..Options::default() }
        }
    }

    impl Drop for Map {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
    }

    const JOB: &str = "[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\n";

    #[test]
    fn an_explicit_match_timeout_wins_over_kubexit_birth_timeout() {
        let map = Map::new("match", &format!("match_timeout = \"5s\"\n{JOB}"));
        let vars = env(&[("KUBEXIT_NAME", "app"), ("KUBEXIT_BIRTH_TIMEOUT", "60s")]);
        let plan = resolve(&map.options(), &vars).expect("valid").plan;
        assert_eq!(plan.match_timeout(), 5 * SEC);
        assert_eq!(plan.pod.as_ref().map(|p| p.birth_timeout), Some(60 * SEC), "the birth deps still get 60 s");
    }

    #[test]
    fn without_match_timeout_the_pods_birth_timeout_applies_kubexits_first() {
        let map = Map::new("birth", &format!("[pod]\nname = \"app\"\nbirth_timeout = \"10s\"\n{JOB}"));
        assert_eq!(resolve(&map.options(), &env(&[])).expect("valid").plan.match_timeout(), 10 * SEC);
        let vars = env(&[("KUBEXIT_BIRTH_TIMEOUT", "60s")]);
        assert_eq!(resolve(&map.options(), &vars).expect("valid").plan.match_timeout(), 60 * SEC);
        let plain = Map::new("plain", JOB);
        assert_eq!(resolve(&plain.options(), &env(&[])).expect("valid").plan.match_timeout(), 30 * SEC);
    }

    #[test]
    fn grace_comes_from_the_command_line_then_kubexit_then_the_role_map() {
        let map = Map::new("grace", &format!("grace_period = \"3s\"\n{JOB}"));
        let grace = |options: &Options, vars: &dyn Fn(&str) -> Option<OsString>| {
            let plan = resolve(options, vars).expect("valid").plan;
            (plan.grace_period, plan.processes[0].grace_period)
        };
        assert_eq!(grace(&map.options(), &env(&[])), (3 * SEC, 3 * SEC));
        assert_eq!(grace(&map.options(), &env(&[("KUBEXIT_GRACE_PERIOD", "7s")])), (7 * SEC, 7 * SEC));
        let flag = Options { grace: Some(SEC), ..map.options() };
        assert_eq!(grace(&flag, &env(&[("KUBEXIT_GRACE_PERIOD", "7s")])), (SEC, SEC));
        let kubexit_only = Options { command: vec!["true".into()], ..Options::default() };
        assert_eq!(grace(&kubexit_only, &env(&[("KUBEXIT_NAME", "app")])), (30 * SEC, 30 * SEC), "kubexit's default");
        assert_eq!(grace(&kubexit_only, &env(&[])), (DEFAULT_GRACE, DEFAULT_GRACE));
    }

    #[test]
    fn kubexit_variables_unknown_users_and_missing_workdirs_are_refused() {
        let map = Map::new("refused", JOB);
        let err = resolve(&map.options(), &env(&[("KUBEXIT_NAME", "../x")])).expect_err("a path").to_string();
        assert!(err.starts_with("KUBEXIT_NAME: '../x' is not a valid name"), "{err}");
        let user = Map::new("user", &format!("{JOB}user = \"no-such-user-here\"\n"));
        let err = resolve(&user.options(), &env(&[])).expect_err("no such user").to_string();
        let place = user.0.display();
        assert_eq!(err, format!("{place}:5:8: process job: user 'no-such-user-here' does not exist in /etc/passwd"));
        let dir = Map::new("workdir", &format!("{JOB}workdir = \"/no/such/dir\"\n"));
        let err = resolve(&dir.options(), &env(&[])).expect_err("no such dir").to_string();
        assert_eq!(err, format!("{}:5:11: process job: workdir '/no/such/dir' is not a directory", dir.0.display()));
    }

    #[test]
    fn a_user_change_needs_root() {
        let user = UserSpec { user: "4242".into(), group: None };
        let err = account(&user, 65534).expect_err("not root");
        assert_eq!(err, Problem::NeedsRoot { user: "4242".into(), uid: 65534 });
        let problem = ProcessError { place: Some("m:5:8".into()), process: "job".into(), problem: err };
        assert_eq!(
            problem.to_string(),
            "m:5:8: process job: user = \"4242\" needs exeunt to run as root (it runs as uid 65534)"
        );
        let account = account(&user, 0).expect("root may");
        assert_eq!((account.uid, account.gid), (4242, 4242));
    }

    #[test]
    fn every_process_that_cannot_run_is_told_at_once_with_its_place() {
        let text = format!(
            "{JOB}user = \"no-such-user-here\"\n\n[[process]]\nname = \"db\"\nrole = \"sidecar\"\ncommand = [\"true\"]\nworkdir = \"/no/such/dir\"\n"
        );
        let map = Map::new("every", &text);
        let err = resolve(&map.options(), &env(&[])).expect_err("two problems").to_string();
        let path = map.0.display();
        assert_eq!(
            err,
            format!(
                "{path}:5:8: process job: user 'no-such-user-here' does not exist in /etc/passwd\n\
                 {path}:11:11: process db: workdir '/no/such/dir' is not a directory"
            )
        );
    }

    #[test]
    fn users_resolve_by_number_or_name() {
        let user =
            |user: &str, group: Option<&str>| look_up(&UserSpec { user: user.into(), group: group.map(Into::into) });
        let root = Account { uid: 0, gid: 0, name: Some("root".into()), home: Some("/root".into()) };
        assert_eq!(user("root", None), Ok(root));
        assert_eq!(user("4242", Some("4343")), Ok(Account { uid: 4242, gid: 4343, name: None, home: None }));
        assert_eq!(
            user("no-such-user-here", None),
            Err("user 'no-such-user-here' does not exist in /etc/passwd".into())
        );
        assert_eq!(
            user("0", Some("no-such-group-here")),
            Err("group 'no-such-group-here' does not exist in /etc/group".into())
        );
    }
}
