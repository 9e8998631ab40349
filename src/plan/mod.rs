//! The plan: what exeunt will run and how it will stop it, resolved once from the
//! command line and the role map. Nothing downstream re-reads or re-checks its sources.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::logger::LogFormat;
use crate::quoted::Quoted;
use crate::signo::{SIGTERM, Signo};

mod environment;
mod probes;
mod show;

pub use environment::{EnvVar, Limit, RESOURCES, UNLIMITED, set_limit, set_var};
pub use probes::{
    Check, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_FAILURE_THRESHOLD, DEFAULT_INTERVAL, DEFAULT_LIVE_PERIOD,
    DEFAULT_READY_TIMEOUT, DEFAULT_SUCCESS_THRESHOLD, Endpoint, HttpTarget, Liveness, OnTimeout, Readiness, Watch,
};

/// The default time between a process's stop signal and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Whether a process is the job itself or serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its exit ends the run, and its status is exeunt's status.
    Primary,
    /// Runs beside the primaries and is stopped once they are done.
    Sidecar,
    /// Runs to completion before what follows it starts (a migration, a template):
    /// its exit 0 lets the start go on, any other end fails the run.
    Task,
    /// Runs nothing: a probe of something exeunt does not start (a database across
    /// the network, a port of another container), which what is after it waits for.
    Gate,
}

impl Role {
    /// Where processes of this role stand in the plan's order: the gates, then the
    /// sidecars and tasks, then the primaries. Sorted by it stably, each role keeps
    /// the role map's order.
    pub fn rank(self) -> u8 {
        match self {
            Role::Gate => 0,
            Role::Sidecar | Role::Task => 1,
            Role::Primary => 2,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Sidecar => "sidecar",
            Role::Task => "task",
            Role::Gate => "gate",
        })
    }
}

/// Where a process's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Straight to exeunt's own stdout and stderr, as the process found them: no copy,
    /// and a terminal stays a terminal.
    Inherit,
    /// Through exeunt, line by line, each line after the process's name: `web | line`.
    Prefix,
    /// Through exeunt, one JSON object per line.
    Json,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Output::Inherit => "inherit",
            Output::Prefix => "prefix",
            Output::Json => "json",
        })
    }
}

/// Where exeunt's control socket listens, when not at its default: an abstract name
/// (`@NAME`), a path, or nowhere (`off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlSocket {
    Abstract(String),
    Path(PathBuf),
    Off,
}

impl ControlSocket {
    /// Reads `@NAME`, a path, or `off`, as the role map and EXEUNT_CONTROL_SOCKET write it.
    pub fn parse(text: &str) -> Result<ControlSocket, String> {
        // sun_path holds 108 bytes, the terminating zero or the leading one included.
        const ROOM: usize = 107;
        let too_long = || format!("{} is longer than {ROOM} bytes, which a socket address holds", Quoted(text));
        match text {
            "" | "@" => Err("an empty control socket: give @NAME, a path, or off".to_string()),
            "off" => Ok(ControlSocket::Off),
            _ if text.len() > ROOM => Err(too_long()),
            _ if text.contains('\0') => Err(format!("{} holds a NUL byte", Quoted(text))),
            _ => Ok(match text.strip_prefix('@') {
                Some(name) => ControlSocket::Abstract(name.to_string()),
                None => ControlSocket::Path(PathBuf::from(text)),
            }),
        }
    }
}

impl fmt::Display for ControlSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlSocket::Abstract(name) => write!(f, "@{name}"),
            ControlSocket::Path(path) => write!(f, "{}", path.display()),
            ControlSocket::Off => f.write_str("off"),
        }
    }
}

/// What happens when a sidecar exits while the primaries run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// Start it again after a back-off.
    Restart,
    /// Log it and let the primaries run on.
    Ignore,
    /// Stop everything and exit with the sidecar's status.
    Fail,
}

impl fmt::Display for OnExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnExit::Restart => "restart",
            OnExit::Ignore => "ignore",
            OnExit::Fail => "fail",
        })
    }
}

/// The order in which sidecars are stopped once the primaries are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOrder {
    /// In reverse start order, each once the one started after it has exited.
    Ordered,
    /// All at once.
    Parallel,
}

/// How a sidecar of another container is found in a shared process namespace: by its
/// container's top process's name, and optionally who it runs as and which container
/// it is in. A name alone can be taken by any process of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub name: MatchName,
    /// Its real uid must be this.
    pub uid: Option<u32>,
    /// A path in /proc/PID/cgroup must contain this (the container's id, say).
    pub cgroup: Option<String>,
}

impl Matcher {
    /// A matcher by command name alone.
    pub fn comm(comm: &str) -> Matcher {
        Matcher { name: MatchName::Comm(comm.to_string()), uid: None, cgroup: None }
    }
}

/// The name part of a [`Matcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchName {
    /// The command name of /proc/PID/comm (at most 15 bytes, as the kernel keeps it).
    Comm(String),
    /// The executable's path, as /proc/PID/exe links to it.
    Exe(PathBuf),
    /// The first word of its command line.
    Argv0(String),
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            MatchName::Comm(comm) => write!(f, "comm = {comm:?}")?,
            MatchName::Exe(exe) => write!(f, "exe = {:?}", exe.display().to_string())?,
            MatchName::Argv0(argv0) => write!(f, "argv0 = {argv0:?}")?,
        }
        if let Some(uid) = self.uid {
            write!(f, ", uid = {uid}")?;
        }
        if let Some(cgroup) = &self.cgroup {
            write!(f, ", cgroup = {cgroup:?}")?;
        }
        Ok(())
    }
}

/// This container's place in a pod that coordinates through a graveyard volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// This container's name: its tombstone is `graveyard/name`.
    pub name: String,
    pub graveyard: PathBuf,
    /// Stop this container's processes when any of these containers has died.
    pub death_deps: Vec<String>,
    /// Start this container's processes once all of these containers are ready.
    pub birth_deps: Vec<String>,
    /// How long to wait for the birth deps, and for matched sidecars to appear.
    pub birth_timeout: Duration,
    /// Stopped because a death dep died, exeunt exits 0 whatever its processes
    /// returned (`KUBEXIT_IGNORE_CODE_ON_DEATH_DEPS`, of the kubexit fork that most
    /// users run); else with the dep's exit code.
    pub ignore_death_dep_code: bool,
    /// Which run of the pod this is (`EXEUNT_POD_UID`, the pod's uid from the downward
    /// API): written into this container's tombstone, and a dep's tombstone that names
    /// another run is from an earlier pod, and is not believed.
    pub run: Option<String>,
}

/// Restart back-off: 100 ms after a quick exit, doubling up to 30 s.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_millis(100);
pub const DEFAULT_MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

pub const DEFAULT_GRAVEYARD: &str = "/graveyard";
pub const DEFAULT_BIRTH_TIMEOUT: Duration = Duration::from_secs(30);

/// Who a process runs as: `USER[:GROUP]`, each a number or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: String,
    pub group: Option<String>,
}

impl fmt::Display for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}:{}", self.user, group),
            None => f.write_str(&self.user),
        }
    }
}

/// A `user` as /etc/passwd and /etc/group resolve it: the ids a process runs with, and
/// the name and home directory of its passwd entry, when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
    pub home: Option<PathBuf>,
}

impl fmt::Display for Account {
    /// `user postgres (uid 105)`, or `uid 1000` for an account without a name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "user {name} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// One process of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub name: String,
    pub role: Role,
    /// Empty for a sidecar found by `matcher` instead of started.
    pub command: Vec<OsString>,
    /// A sidecar of another container, found in a shared process namespace.
    pub matcher: Option<Matcher>,
    /// Asks the process to stop; also what follows a failed stop hook.
    pub stop_signal: Signo,
    /// Asks the process to stop instead of the stop signal (an HTTP POST or a command).
    pub stop_hook: Option<Check>,
    pub grace_period: Duration,
    pub ready: Option<Readiness>,
    /// Sidecars only: a probe whose failures restart it.
    pub live: Option<Liveness>,
    pub on_exit: OnExit,
    /// Restarts allowed before an exit counts as `fail`; None for no limit.
    pub max_restarts: Option<u32>,
    /// The wait before the first restart of a streak; it doubles with each quick exit.
    pub restart_delay: Duration,
    /// The longest wait between restarts.
    pub max_restart_delay: Duration,
    /// The code exeunt exits with when this sidecar fails the run.
    pub exit_code: Option<i32>,
    /// The processes (by index in the plan) it starts after: each sidecar once ready,
    /// each task once completed. Without `after` in the role map, the file's order.
    pub after: Vec<usize>,
    /// A task's: how long it may run before it is stopped and fails the run.
    pub timeout: Option<Duration>,
    /// A task's: how many times it is run again after a failed run, with the back-off
    /// of `restart_delay` and `max_restart_delay`.
    pub retries: u32,
    /// Added to the environment exeunt inherited, each key once.
    pub env: Vec<EnvVar>,
    /// Set in the process before it runs its command.
    pub limits: Vec<Limit>,
    pub umask: Option<u32>,
    pub workdir: Option<PathBuf>,
    /// Who the process runs as: the role map's `user`, looked up by
    /// [`crate::resolve`]; None runs it as exeunt runs.
    pub account: Option<Account>,
    /// Signals exeunt receives that this process gets as another one (Some) or not at
    /// all (None): primaries only.
    pub rewrite: Vec<(Signo, Option<Signo>)>,
    pub output: Output,
}

impl ProcessSpec {
    /// What this process gets for `received`, if its rewrite table says: Some(None) to
    /// get nothing.
    pub fn rewritten(&self, received: Signo) -> Option<Option<Signo>> {
        self.rewrite.iter().find(|(from, _)| *from == received).map(|(_, to)| *to)
    }

    /// A process with the defaults: stopped by SIGTERM, 10 s of grace.
    pub fn new(name: &str, role: Role, command: Vec<OsString>) -> ProcessSpec {
        ProcessSpec {
            name: name.to_string(),
            role,
            command,
            matcher: None,
            stop_signal: SIGTERM,
            stop_hook: None,
            grace_period: DEFAULT_GRACE,
            ready: None,
            live: None,
            on_exit: OnExit::Restart,
            max_restarts: None,
            restart_delay: DEFAULT_RESTART_DELAY,
            max_restart_delay: DEFAULT_MAX_RESTART_DELAY,
            exit_code: None,
            after: Vec::new(),
            timeout: None,
            retries: 0,
            env: Vec::new(),
            limits: Vec::new(),
            umask: None,
            workdir: None,
            account: None,
            rewrite: Vec::new(),
            output: Output::Inherit,
        }
    }
}

/// Exit codes that `-e` turns into 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZeroCodes(Vec<u8>);

impl ZeroCodes {
    pub fn add(&mut self, code: u8) {
        if !self.0.contains(&code) {
            self.0.push(code);
        }
    }

    /// The code exeunt exits with for a primary's code.
    pub fn apply(&self, code: i32) -> i32 {
        if u8::try_from(code).is_ok_and(|c| self.0.contains(&c)) { 0 } else { code }
    }
}

/// Everything the supervisor needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// In start order: gates, then sidecars and tasks, each in role-map order, then the primaries.
    pub processes: Vec<ProcessSpec>,
    /// Grace given to leftover descendants between SIGTERM and SIGKILL at the end.
    pub grace_period: Duration,
    pub shutdown: ShutdownOrder,
    /// Set when this container coordinates with others through a graveyard.
    pub pod: Option<Pod>,
    /// How long matched sidecars may take to appear, as the role map says; see
    /// [`Plan::match_timeout`] for the time that applies.
    pub match_timeout: Option<Duration>,
    /// Forward signals to the primaries' process groups, not only to them (`-g`).
    pub signal_groups: bool,
    /// `--sidecar`: this container is a sidecar of another container's primary, in a
    /// pod with a shared process namespace. A stop signal from that container's exeunt
    /// that carries an exit status makes this one exit with it; without the flag, no
    /// carried status is ever taken, since exeunt's own primaries decide its status.
    pub sidecar_container: bool,
    pub zero_codes: ZeroCodes,
    /// Log every reaped orphan at warn level (`-w`).
    pub report_reaped: bool,
    /// The stop signals exeunt gets reach the primaries as they came (no role map, as
    /// tini), rather than as each primary's stop signal or hook.
    pub forward_stop_signals: bool,
    /// How long primaries may run on after a stop signal from outside before exeunt
    /// kills them; None leaves the deadline to whoever sent the signal.
    pub kill_primaries_after: Option<Duration>,
    /// A second stop signal from outside kills what is left at once.
    pub kill_on_second_signal: bool,
    /// How long a stop signal from outside is held back while everything runs on (so
    /// that a load balancer takes the endpoints out first); zero passes it on at once.
    pub stop_delay: Duration,
    /// dumb-init's setsid mode: the primary leads a session of its own, and when it
    /// exits the rest of its process group gets SIGTERM.
    pub setsid: bool,
    /// dumb-init's job control: SIGTSTP, SIGTTOU and SIGTTIN are passed on, and then
    /// stop exeunt itself.
    pub job_control: bool,
    /// As dumb-init: exeunt leaves its working directory for `/` before the first process
    /// starts, so that it pins no mount; each process gets the directory back.
    pub leave_cwd: bool,
    /// As dumb-init: SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV and SIGSYS that
    /// another process sends are passed on like any other signal (a fault of exeunt's
    /// own still ends it: the kernel unblocks the signal it raises for one).
    pub forward_faults: bool,
    /// As dumb-init: exeunt exits as soon as the primary has, with its status, after
    /// the setsid mode's SIGTERM to its group; what is left is not waited for.
    pub exit_with_primary: bool,
    /// The `NOTIFY_SOCKET` exeunt itself was given (`podman run --sdnotify=container`, a
    /// systemd unit of `Type=notify`): told `READY=1` once every process has started
    /// and every sidecar is ready, `STOPPING=1` when the shutdown begins, and `STATUS=`
    /// lines; never passed on to the processes.
    pub notify_socket: Option<OsString>,
    /// Listening sockets the runtime passed to exeunt (socket activation), which go on
    /// to the first primary alone, with `LISTEN_PID` its pid.
    pub activation: Option<crate::activation::Activation>,
    /// The role map's `log_format`; None leaves it to EXEUNT_LOG_FORMAT.
    pub log_format: Option<LogFormat>,
    /// Where the control socket listens: the role map's `control_socket`, else
    /// EXEUNT_CONTROL_SOCKET; None is the default, named after the mount namespace.
    pub control_socket: Option<ControlSocket>,
}

/// The start order of a role map without `after`, for processes in plan order with
/// these roles: the gates probed at once, the first sidecar or task after all of them,
/// each sidecar and task after the one before it, the primaries after all of them.
pub fn file_order(roles: &[Role]) -> Vec<Vec<usize>> {
    let indices = |keep: fn(Role) -> bool| (0..roles.len()).filter(|&i| keep(roles[i])).collect::<Vec<usize>>();
    let (gates, served) = (indices(|r| r == Role::Gate), indices(|r| r != Role::Primary));
    let mut before = None;
    (0..roles.len())
        .map(|i| match roles[i] {
            Role::Primary => served.clone(),
            Role::Gate => Vec::new(),
            _ => before.replace(i).map_or_else(|| gates.clone(), |b| vec![b]),
        })
        .collect()
}

impl Plan {
    /// The plan for a role map's processes, put in start order (the file's).
    pub fn new(mut processes: Vec<ProcessSpec>, grace_period: Duration) -> Plan {
        processes.sort_by_key(|p| p.role.rank());
        let roles: Vec<Role> = processes.iter().map(|p| p.role).collect();
        for (process, after) in processes.iter_mut().zip(file_order(&roles)) {
            process.after = after;
        }
        Plan {
            processes,
            grace_period,
            shutdown: ShutdownOrder::Ordered,
            pod: None,
            match_timeout: None,
            signal_groups: false,
            sidecar_container: false,
            zero_codes: ZeroCodes::default(),
            report_reaped: false,
            forward_stop_signals: false,
            kill_primaries_after: None,
            kill_on_second_signal: false,
            stop_delay: Duration::ZERO,
            setsid: false,
            job_control: false,
            leave_cwd: false,
            forward_faults: false,
            exit_with_primary: false,
            notify_socket: None,
            activation: None,
            log_format: None,
            control_socket: None,
        }
    }

    /// How long sidecars found by `match` may take to appear: the role map's
    /// `match_timeout`, else the pod's birth timeout (which kubexit's variables may
    /// have set), else 30 s. Derived, not stored, so that no later setting of the
    /// pod can leave it stale.
    pub fn match_timeout(&self) -> Duration {
        self.match_timeout.or(self.pod.as_ref().map(|p| p.birth_timeout)).unwrap_or(DEFAULT_BIRTH_TIMEOUT)
    }
}

#[cfg(test)]
mod tests;
