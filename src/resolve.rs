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
use crate::plan::{Account, DEFAULT_GRACE, Plan, ProcessSpec, Role, UserSpec};
use crate::pod::kubexit_env::{self, KUBEXIT_DEFAULT_GRACE, KubexitError};
use crate::quoted::Quoted;
use crate::rolemap::{self, RoleMapError};
use crate::spawn::{WorkdirProblem, workdir_problem};

/// Why no plan could be made; each shown as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    RoleMap(RoleMapError),
    Kubexit(KubexitError),
    /// A `user` that the user database does not know, or cannot be asked about.
    User {
        process: String,
        problem: String,
    },
    /// A `user` other than exeunt's own, while exeunt is not root.
    NeedsRoot {
        process: String,
        user: String,
        uid: u32,
    },
    /// A command line and environment larger than exec takes (E2BIG).
    TooLarge {
        process: String,
        problem: String,
    },
    /// A `workdir` that is not a directory.
    Workdir {
        process: String,
        dir: String,
    },
    /// A `workdir` that the process's `user` may not enter.
    WorkdirDenied {
        process: String,
        dir: String,
        user: String,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::RoleMap(e) => e.fmt(f),
            ResolveError::Kubexit(e) => e.fmt(f),
            ResolveError::User { process, problem } => write!(f, "process {process}: {problem}"),
            ResolveError::NeedsRoot { process, user, uid } => {
                write!(f, "process {process}: user = \"{user}\" needs exeunt to run as root (it runs as uid {uid})")
            }
            ResolveError::TooLarge { process, problem } => write!(f, "process {process}: {problem}"),
            ResolveError::Workdir { process, dir } => {
                write!(f, "process {process}: workdir {} is not a directory", Quoted(dir))
            }
            ResolveError::WorkdirDenied { process, dir, user } => {
                write!(f, "process {process}: workdir {} cannot be entered by {user}", Quoted(dir))
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

/// Resolves the plan of a run. `env` looks up an environment variable.
pub fn resolve(options: &Options, env: &dyn Fn(&str) -> Option<OsString>) -> Result<Resolved, ResolveError> {
    let mut plan = match &options.config {
        Some(path) => {
            let command = (!options.command.is_empty()).then_some(options.command.as_slice());
            rolemap::load(path, command)?
        }
        None => Plan::new(vec![ProcessSpec::new("main", Role::Primary, options.command.clone())], DEFAULT_GRACE),
    };
    let kubexit = kubexit_env::read(plan.pod.take(), env)?;
    if let Some(pod) = kubexit.pod {
        if options.config.is_none() && kubexit.grace.is_none() {
            plan.override_grace(KUBEXIT_DEFAULT_GRACE);
        }
        plan.pod = Some(pod);
    }
    if let Some(grace) = options.grace.or(kubexit.grace) {
        plan.override_grace(grace);
    }
    plan.signal_groups = options.signal_groups;
    plan.sidecar_container = options.sidecar_container;
    // The role map's `control_socket` wins, as its `log_format` does.
    if plan.control_socket.is_none() {
        plan.control_socket = options.control_socket.clone();
    }
    plan.zero_codes = options.zero_codes.clone();
    plan.report_reaped = options.report_reaped;
    // Without a role map, exeunt stands in for tini: signals go on as they came.
    plan.forward_stop_signals = options.config.is_none();
    if let Some(delay) = options.stop_delay {
        plan.stop_delay = delay;
    }
    if let Some(dumb_init) = options.dumb_init {
        plan.setsid = dumb_init.setsid;
        plan.job_control = true;
        plan.leave_cwd = true;
    }
    let mut rewrite = options.rewrite.clone();
    if plan.setsid {
        // The child's group has no terminal of exeunt's to stop on: the terminal's stop
        // signals become SIGSTOP for it, unless rewritten.
        for signo in [libc::SIGTSTP, libc::SIGTTOU, libc::SIGTTIN] {
            if !rewrite.iter().any(|(from, _)| from.0 == signo) {
                rewrite.push((crate::signo::Signo(signo), Some(crate::signo::Signo(libc::SIGSTOP))));
            }
        }
    }
    for primary in plan.processes.iter_mut().filter(|p| p.role == Role::Primary) {
        for &(from, to) in &rewrite {
            // The role map's own table wins for the signals it names.
            if primary.rewritten(from).is_none() {
                primary.rewrite.push((from, to));
            }
        }
    }
    resolve_accounts(&mut plan, Uid::effective().as_raw())?;
    let inherited: Vec<usize> = std::env::vars_os().map(|(k, v)| k.len() + v.len() + 1).collect();
    for process in plan.processes.iter().filter(|p| !p.command.is_empty()) {
        exec_room(process, &inherited, exec_limit())
            .map_err(|problem| ResolveError::TooLarge { process: process.name.clone(), problem })?;
    }
    for process in &plan.processes {
        let Some(dir) = &process.workdir else { continue };
        let (name, shown) = (process.name.clone(), dir.display().to_string());
        match workdir_problem(dir, process.account.as_ref()) {
            Some(WorkdirProblem::NotADirectory) => return Err(ResolveError::Workdir { process: name, dir: shown }),
            Some(WorkdirProblem::Denied { user }) => {
                return Err(ResolveError::WorkdirDenied { process: name, dir: shown, user });
            }
            None => {}
        }
    }
    Ok(Resolved { plan, kubexit_api_variables: kubexit.api_variables_ignored })
}

/// Looks every `user` up; refuses a user change that needs root when exeunt (`euid`)
/// is not root.
fn resolve_accounts(plan: &mut Plan, euid: u32) -> Result<(), ResolveError> {
    let my_gid = Gid::effective().as_raw();
    for process in &mut plan.processes {
        let Some(user) = &process.user else { continue };
        let account = account(user).map_err(|problem| ResolveError::User { process: process.name.clone(), problem })?;
        if euid != 0 && (account.uid, account.gid) != (euid, my_gid) {
            return Err(ResolveError::NeedsRoot { process: process.name.clone(), user: user.to_string(), uid: euid });
        }
        process.account = Some(account);
    }
    Ok(())
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
fn account(spec: &UserSpec) -> Result<Account, String> {
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
        assert_eq!(err, "process job: user 'no-such-user-here' does not exist in /etc/passwd");
        let dir = Map::new("workdir", &format!("{JOB}workdir = \"/no/such/dir\"\n"));
        let err = resolve(&dir.options(), &env(&[])).expect_err("no such dir").to_string();
        assert_eq!(err, "process job: workdir '/no/such/dir' is not a directory");
    }

    #[test]
    fn a_user_change_needs_root() {
        let mut plan = Plan::new(vec![ProcessSpec::new("job", Role::Primary, vec!["true".into()])], DEFAULT_GRACE);
        plan.processes[0].user = Some(UserSpec { user: "4242".into(), group: None });
        let err = resolve_accounts(&mut plan.clone(), 65534).expect_err("not root").to_string();
        assert_eq!(err, "process job: user = \"4242\" needs exeunt to run as root (it runs as uid 65534)");
        resolve_accounts(&mut plan, 0).expect("root may");
        assert_eq!(plan.processes[0].account.as_ref().map(|a| (a.uid, a.gid)), Some((4242, 4242)));
    }

    #[test]
    fn users_resolve_by_number_or_name() {
        let user =
            |user: &str, group: Option<&str>| account(&UserSpec { user: user.into(), group: group.map(Into::into) });
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
