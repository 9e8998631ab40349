//! The words that decisions and I/O share: what happened (events), what to do
//! (actions), and how a process ended. The supervisor speaks them, and so do the
//! event sources and the code that carries actions out; neither imports the other
//! for them.

use std::fmt;
use std::time::Duration;

use crate::signo::Signo;

/// A point on the monotonic clock (time since boot), so that tests can make their own.
pub type Time = Duration;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(Signo),
    /// A process that is not exeunt's child (a sidecar of another container): it exited,
    /// and only its parent can know how. Counts as a failure (1).
    Unknown,
}

impl ExitStatus {
    /// The status as a shell reports it: the exit code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signal(signo) => 128 + signo.0,
            ExitStatus::Unknown => 1,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signo) => write!(f, "{signo} (status {})", self.code()),
            ExitStatus::Unknown => f.write_str("a status only its own parent knows"),
        }
    }
}

/// What a check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// One attempt of a sidecar's readiness probe.
    Ready,
    /// A process's stop hook.
    Stop,
    /// One attempt of a sidecar's liveness probe.
    Live,
}

/// Names one check of one process of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckId {
    pub index: usize,
    pub purpose: Purpose,
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let what = match self.purpose {
            Purpose::Ready => "readiness probe",
            Purpose::Stop => "stop hook",
            Purpose::Live => "liveness probe",
        };
        write!(f, "{what} of process #{}", self.index + 1)
    }
}

/// Why a check did not pass, shown as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFailure {
    /// No attempt has answered yet.
    NoAnswerYet,
    /// The attempt did not answer within its timeout.
    NoAnswerWithin(Duration),
    /// A file check's path does not exist.
    NoFile(std::path::PathBuf),
    /// A command check's command could not be started: the start's own words.
    NotStarted(String),
    /// A command check's command exited with something else than 0.
    Exited(ExitStatus),
    /// The same, with the end of what it wrote (at most 4 KiB).
    ExitedSaying(ExitStatus, String),
    /// One step of the conversation with an address failed; `errno` is the system's
    /// error, None when the connection took only part of the request.
    Io { addr: std::net::SocketAddr, step: Step, errno: Option<i32> },
    /// The address closed the connection before an HTTP status line.
    Closed(std::net::SocketAddr),
    /// More bytes than a status line takes came without one.
    NoStatusLine(std::net::SocketAddr),
    /// An HTTP status that does not pass.
    Status(u16),
    /// An answer whose first line is not HTTP's: its first 80 characters.
    NotHttp(String),
    /// Every address of the check failed, each for its reason.
    Every(Vec<CheckFailure>),
    /// The process closed its notification descriptor without a newline.
    NoNotice(u8),
}

impl CheckFailure {
    /// The failures of every address of one check, as one.
    pub fn every(mut failures: Vec<CheckFailure>) -> CheckFailure {
        match failures.len() {
            1 => failures.remove(0),
            _ => CheckFailure::Every(failures),
        }
    }
}

/// A step of a check's conversation with an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    Watch,
    Send,
    Read,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::NoAnswerYet => f.write_str("no probe has answered yet"),
            CheckFailure::NoAnswerWithin(limit) => write!(f, "no answer within {}", crate::duration::Show(*limit)),
            CheckFailure::NoFile(path) => write!(f, "{} does not exist", path.display()),
            CheckFailure::NotStarted(why) => f.write_str(why),
            CheckFailure::Exited(status) => write!(f, "the command exited with {status}"),
            CheckFailure::ExitedSaying(status, said) => {
                write!(f, "the command exited with {status}, its output ending {}", crate::quoted::Quoted(said))
            }
            CheckFailure::Io { addr, step, errno } => {
                match step {
                    Step::Connect => write!(f, "connect to {addr}: ")?,
                    Step::Watch => write!(f, "cannot watch the connection to {addr}: ")?,
                    Step::Send => write!(f, "sending the request to {addr}: ")?,
                    Step::Read => write!(f, "reading the answer of {addr}: ")?,
                }
                match errno {
                    Some(errno) => write!(f, "{}", std::io::Error::from_raw_os_error(*errno)),
                    None => f.write_str("the connection took only part of it"),
                }
            }
            CheckFailure::Closed(addr) => write!(f, "{addr} closed the connection without an HTTP answer"),
            CheckFailure::NoStatusLine(addr) => write!(f, "{addr} did not answer with an HTTP status line"),
            CheckFailure::Status(code) => write!(f, "HTTP status {code}"),
            CheckFailure::NotHttp(line) => write!(f, "not an HTTP status line: {line:?}"),
            CheckFailure::NoNotice(fd) => write!(f, "descriptor {fd} was closed without a newline"),
            CheckFailure::Every(failures) => {
                for (i, failure) in failures.iter().enumerate() {
                    write!(f, "{}{failure}", if i > 0 { "; " } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

/// A point in this container's life that the other containers of a pod learn of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// Its first process started.
    Born,
    /// Every process has started and every sidecar is ready.
    Ready,
    /// The shutdown has begun.
    Stopping,
    /// exeunt is exiting with this code.
    Died(i32),
}

/// A death that a tombstone records: when, and with which exit code, if it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    pub at: String,
    pub code: Option<i32>,
}

/// A process found in one of the primaries' process groups after they exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pid: i32,
    /// Its command name, as /proc says.
    pub name: String,
}

/// What a client of the control socket asks the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every process and the container's phase, as a table or one JSON document.
    Status { json: bool },
    /// Whether every process (or only these) is ready.
    Ready { names: Vec<String> },
    /// Whether the supervisor answers at all.
    Live,
    /// Stop a sidecar with its stop action, then start it again.
    Restart { name: String },
    /// Send one signal to one process, or to its process group.
    Signal { signo: Signo, name: String, group: bool },
}

/// How a request went, which becomes the client's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or yes (0).
    Ok,
    /// Understood, and the answer is no: not ready, or refused (1).
    No,
    /// Not understood: an unknown process, a request this exeunt does not speak (2).
    Error,
}

/// The supervisor's answer to a request: the outcome and text for the client to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    /// Whole lines, each ending in a newline.
    pub body: String,
}

impl Answer {
    pub fn new(outcome: Outcome, line: impl fmt::Display) -> Answer {
        Answer { outcome, body: format!("{line}\n") }
    }
}

/// Where the container and each of its processes stand: what `--status` asks for, as
/// data. The control socket renders it, as a table for people or as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `starting`, `running` or `stopping`.
    pub phase: &'static str,
    /// Time in this phase.
    pub phase_for: Duration,
    /// Whether the container is ready as a whole.
    pub ready: bool,
    pub processes: Vec<ProcessStatus>,
}

/// One process, as `--status` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    pub name: String,
    /// `primary` or `sidecar`.
    pub role: &'static str,
    pub pid: Option<i32>,
    /// The state's word, for JSON.
    pub word: &'static str,
    /// The state in a few words, for people.
    pub state: String,
    pub ready: bool,
    pub restarts: u32,
    /// Time in this state.
    pub held: Duration,
    /// Time until a restart that waits out a back-off.
    pub restart_in: Option<Duration>,
    pub exit_code: Option<i32>,
    /// Why a sidecar is not ready yet, as its probe last said.
    pub probe: Option<String>,
    /// What its liveness probe last said, once it has: `passed`, or its failures in a
    /// row and the last error.
    pub live: Option<String>,
    /// What it last said of itself on its notification socket (`STATUS=`).
    pub says: Option<String>,
}

impl ProcessStatus {
    /// Its state for people, with what its probe last met while it is not ready, unless
    /// the state says that already (a gate's `waiting: ...`).
    pub fn state_and_probe(&self) -> String {
        match &self.probe {
            Some(probe) if !self.ready && !self.state.ends_with(probe.as_str()) => format!("{} ({probe})", self.state),
            _ => self.state.clone(),
        }
    }
}

/// The supervisor's reply to a request: an answer in words, or the status as data,
/// `json` when the client asked for it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Said(Answer),
    Status { status: Status, json: bool },
}

/// What a process said on its notification socket, beside that it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// `STATUS=...`: how it says it stands, for `--status`.
    Status(String),
    /// `WATCHDOG=1`: it is alive.
    Watchdog,
    /// `WATCHDOG=trigger`: it asks to be taken as hung.
    WatchdogTrigger,
    /// `WATCHDOG_USEC=N`: a `WATCHDOG=1` is due at least this often from now on
    /// (0: none is).
    WatchdogEvery(std::time::Duration),
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The process at this index of the plan was started.
    Spawned { index: usize, pid: i32 },
    /// It could not be started; `code` is exeunt's exit code for it (126, 127, 2).
    SpawnFailed { index: usize, code: i32, reason: String },
    /// A child was reaped: one of the plan's, or an adopted orphan.
    Exited { pid: i32, status: ExitStatus },
    /// A round of reaping is over; `children_left` says whether any child still lives.
    Reaped { children_left: bool },
    /// A signal was sent to exeunt.
    Signal(Signo),
    /// A stop signal that carries the status to exit with (sent by the exeunt of
    /// another container of the pod, once its primaries were done).
    StopWithStatus { signo: Signo, status: i32, sender: i32 },
    /// No process of another container matches this sidecar yet.
    NotFound { index: usize },
    /// What the tombstone of another container of the pod says, read when it changed.
    Tombstone { container: String, ready: bool, died: Option<Death> },
    /// The descendants that `SignalDescendants` was for cannot be seen (no /proc):
    /// only the process groups of the processes started were signalled.
    LeftoversUnseen,
    /// Who was in the process groups that `SignalLeftovers` signalled (zombies aside).
    Leftovers { members: Vec<Member> },
    /// Who was left in the process group of the sidecar at `index` that `ClearGroup`
    /// signalled, after the sidecar itself exited.
    GroupLeft { index: usize, members: Vec<Member> },
    /// A check finished: Ok when it passed, else why not.
    CheckDone { id: CheckId, result: Result<(), CheckFailure> },
    /// The process at `index` said something on its notification socket.
    Notified { index: usize, note: Note },
    /// A client of the control socket asks something; the answer names `client`.
    Request { client: u32, request: Request },
    /// The clock passed the deadline the supervisor asked for.
    Tick,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the process at this index of the plan.
    Spawn(usize),
    /// Signal a process, or its whole process group.
    Signal { pid: i32, signo: Signo, group: bool },
    /// Ask a process (or its group) to stop with this signal, followed by SIGCONT when
    /// the process is stopped (SIGSTOP), so that it can act on it before the grace
    /// period ends.
    Stop { pid: i32, signo: Signo, group: bool },
    /// Ask a process of another container to stop (then SIGCONT when stopped, as for `Stop`),
    /// telling an exeunt there which status to exit with.
    SignalWithStatus { pid: i32, signo: Signo, status: i32 },
    /// Signal a process group, only the group: its leader may be reaped already.
    SignalGroup { pgid: i32, signo: Signo },
    /// Signal each process group that has live members with its signal, and report
    /// the members (`Event::Leftovers`).
    SignalLeftovers { groups: Vec<(i32, Signo)> },
    /// Signal what is left in the process group of the exited sidecar at `index`, and
    /// report who it was (`Event::GroupLeft`).
    ClearGroup { index: usize, pgid: i32, signo: Signo },
    /// Stop exeunt itself (dumb-init's job control: after its child, on SIGTSTP).
    SuspendSelf,
    /// Signal every descendant of exeunt, then reap.
    SignalDescendants(Signo),
    /// Reap now, so that the supervisor learns whether any child is left.
    Reap,
    /// Tell the other containers of the pod (write this container's tombstone).
    Record(Milestone),
    /// Run a check: the probe or the stop hook of the process it names.
    StartCheck(CheckId),
    /// Abandon a check that is under way; no CheckDone will follow.
    CancelCheck(CheckId),
    /// Answer a client of the control socket.
    Answer { client: u32, reply: Reply },
    /// Exit with this code: nothing is left running.
    Exit(i32),
}
