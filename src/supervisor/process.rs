//! One process's life, as the supervisor keeps it: where it stands (waiting, running,
//! stopping, backing off before a restart, searched for in another container), how
//! far its readiness probe has come, and every deadline it has, each listed once with
//! the duty that falls due then.

use std::time::Duration;

use super::alarms::Alarms;
use crate::duration::Show;
use crate::events::{Action, CheckFailure, CheckId, ExitStatus, Time};
use crate::plan::{ProcessSpec, Readiness};
use crate::signo::Signo;

/// Restart back-off is forgotten once a sidecar has run this long.
const BACKOFF_RESET: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    /// Asked to be spawned; the outcome is not known yet.
    Starting,
    Running {
        pid: i32,
        since: Time,
    },
    /// Asked to stop (signal or hook) at `asked`; SIGKILL at the deadline, if it has one.
    Stopping {
        pid: i32,
        since: Time,
        asked: Time,
        how: How,
        deadline: Option<Time>,
    },
    Killed {
        pid: i32,
        since: Time,
    },
    /// A sidecar waiting out its restart back-off.
    Backoff {
        until: Time,
    },
    /// A sidecar that exited, waiting for what it left in its process group to go
    /// before it starts again: at `until` at the earliest (its back-off), and the group
    /// gets SIGKILL at `deadline`.
    Clearing {
        pgid: i32,
        until: Time,
        deadline: Time,
    },
    /// A sidecar of another container, not found yet: looked for again at `retry`.
    Searching {
        retry: Time,
    },
    /// A gate whose `after` were met: nothing runs, its probe is all there is of it.
    Gate,
    Gone,
}

impl State {
    pub fn pid(self) -> Option<i32> {
        match self {
            State::Running { pid, .. } | State::Stopping { pid, .. } | State::Killed { pid, .. } => Some(pid),
            State::Waiting
            | State::Starting
            | State::Backoff { .. }
            | State::Clearing { .. }
            | State::Searching { .. }
            | State::Gate
            | State::Gone => None,
        }
    }

    pub fn alive(self) -> bool {
        matches!(self, State::Starting | State::Searching { .. }) || self.pid().is_some()
    }
}

/// How a process was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Signal(Signo),
    /// Nothing: its rewrite table ignores the stop signal exeunt got.
    Nothing,
    /// Its stop hook, still under way or done.
    Hook {
        running: bool,
    },
}

/// Where a sidecar stands on the way to ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// Not started yet.
    No,
    Probing {
        since: Time,
        /// When it gives up: the first probing, which the start waits for, has one; the
        /// probing after a restart only tells readiness and tries until it passes.
        deadline: Option<Time>,
        attempts: u32,
        /// When the next attempt starts, once none is under way.
        next: Time,
        /// The deadline of the attempt under way, if one is.
        attempt_deadline: Option<Time>,
        last_error: CheckFailure,
    },
    Yes,
    /// Ready once, and probed again every `period` since (`Readiness::watch`): ready
    /// or not by the latest attempts.
    Watching {
        ready: bool,
        next: Time,
        attempt_deadline: Option<Time>,
        /// Failed, and passed, attempts in a row.
        failures: u32,
        successes: u32,
        last_error: CheckFailure,
    },
    /// Not ready in time, or exited first, under `on_timeout = "start"`: the start went
    /// on. Why, when it was given up on for a reason of its own.
    GaveUp(Option<String>),
    /// It was ready (or the start went on without it), and it is being restarted: its
    /// probe runs again once it has started, and nothing waits for it.
    Lost,
}

/// Where a sidecar's liveness probing stands, while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub next: Time,
    pub attempt_deadline: Option<Time>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// What the last attempt said: None before the first answered.
    pub last: Option<Result<(), CheckFailure>>,
}

impl Live {
    /// Probing that begins a period after `now`.
    pub fn new(live: &crate::plan::Liveness, now: Time) -> Live {
        Live { next: now + live.period, attempt_deadline: None, failures: 0, last: None }
    }

    /// Its one deadline: the end of the attempt under way, or the next attempt.
    pub fn alarm(&self) -> (Time, LiveDuty) {
        match self.attempt_deadline {
            Some(at) => (at, LiveDuty::Abandon),
            None => (self.next, LiveDuty::Attempt),
        }
    }
}

/// What falls due for a liveness probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveDuty {
    Attempt,
    /// The attempt under way took too long: a failure.
    Abandon,
}

/// A change of readiness that the probing after the start found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// Ready again.
    Back,
    /// Not ready: its probe failed this many times in a row, the last time so.
    Lost { failures: u32, error: String },
}

/// What `exeunt --status` shows of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Waiting,
    /// Started or looked for, and not ready yet.
    Starting,
    Ready,
    /// Runs: a primary, or a sidecar without a passed probe.
    Running,
    /// Stopped to be started again, or waiting out its back-off.
    Restarting,
    Stopping,
    Exited,
    /// The run ended before it started.
    NotStarted,
}

/// What falls due at one of a process's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// The grace period after its stop action is over: SIGKILL.
    Kill,
    /// Its restart back-off is over, or it is time to look for it again: start it.
    Start,
    /// What it left in its group outlived the grace period: SIGKILL to the group.
    KillStrays,
    /// A duty of its liveness probe.
    Live(LiveDuty),
    /// The `WATCHDOG=1` it asked to be held to did not come in time.
    Watchdog,
    /// A task ran past its `timeout`.
    TaskTimeout,
    /// The probe attempt under way took too long: abandon it.
    AbandonAttempt,
    /// It was not ready in time.
    GiveUp,
    /// Time for the next probe attempt.
    Attempt,
}

/// One process of the plan, as it stands.
#[derive(Debug, Clone)]
pub struct Proc {
    pub state: State,
    pub ready: Ready,
    /// Restarts so far, for `max_restarts`.
    pub restarts: u32,
    /// Restarts asked for on the control socket (they count against no limit).
    pub asked_restarts: u32,
    /// A restart was asked for: once it has stopped, it starts again.
    pub restart_asked: bool,
    /// How it ended last.
    pub exit: Option<ExitStatus>,
    /// What its status shows, and since when.
    pub shown: (Shown, Time),
    /// Quick exits in a row, for the back-off.
    streak: u32,
    /// When its probe last passed, while it runs.
    pub probe_passed_at: Option<Time>,
    /// How long its first probing took to pass, once it has.
    pub ready_after: Option<Duration>,
    /// Exits in a row within a second of its probe passing.
    pub exits_after_passing: u32,
    /// What it left in its process group, while the group is cleared for its restart.
    pub strays: Vec<i32>,
    /// Its liveness probing, once it is ready and while it runs.
    pub live: Option<Live>,
    /// What it last said of itself on its notification socket (`STATUS=`), while it runs.
    pub says: Option<String>,
    /// The watchdog it asked for (`WATCHDOG_USEC=`): how often, and when the next
    /// `WATCHDOG=1` is due at the latest.
    pub watchdog: Option<(Duration, Time)>,
    /// A task's: when it has run too long, while it runs.
    pub task_deadline: Option<Time>,
    /// How long it ran, the last time it exited.
    pub ran: Option<Time>,
    /// Why exeunt stopped it, when it decided it itself: to restart a sidecar (else
    /// the restart was asked on the socket), or a primary's end.
    pub stop_reason: Option<&'static str>,
    /// For a sidecar of another container: until when it may take to appear, counted
    /// from the first search that found nothing.
    pub search_deadline: Option<Time>,
}

impl Proc {
    pub fn new() -> Proc {
        Proc {
            state: State::Waiting,
            ready: Ready::No,
            restarts: 0,
            asked_restarts: 0,
            restart_asked: false,
            exit: None,
            shown: (Shown::Waiting, Time::ZERO),
            streak: 0,
            probe_passed_at: None,
            ready_after: None,
            exits_after_passing: 0,
            strays: Vec::new(),
            live: None,
            says: None,
            watchdog: None,
            task_deadline: None,
            ran: None,
            stop_reason: None,
            search_deadline: None,
        }
    }

    /// What its status shows now.
    pub fn showing(&self) -> Shown {
        match (self.state, &self.ready) {
            (State::Waiting, _) => Shown::Waiting,
            (State::Starting | State::Searching { .. }, _) => Shown::Starting,
            // One the start went on without never became ready: it is still starting.
            (State::Running { .. }, Ready::Probing { .. } | Ready::GaveUp(Some(_))) => Shown::Starting,
            (State::Running { .. }, Ready::Yes | Ready::Watching { ready: true, .. }) => Shown::Ready,
            (State::Running { .. }, Ready::No | Ready::GaveUp(None) | Ready::Lost | Ready::Watching { .. }) => {
                Shown::Running
            }
            (State::Stopping { .. } | State::Killed { .. }, _) if self.restart_asked => Shown::Restarting,
            (State::Backoff { .. } | State::Clearing { .. }, _) => Shown::Restarting,
            (State::Gate, Ready::Yes) => Shown::Ready,
            (State::Gate, Ready::GaveUp(None)) => Shown::NotStarted,
            (State::Gate, _) => Shown::Starting,
            (State::Stopping { .. } | State::Killed { .. }, _) => Shown::Stopping,
            (State::Gone, _) if self.exit.is_some() => Shown::Exited,
            (State::Gone, _) => Shown::NotStarted,
        }
    }

    /// Notes when what its status shows changes.
    pub fn observe(&mut self, now: Time) {
        let showing = self.showing();
        if showing != self.shown.0 {
            self.shown = (showing, now);
        }
    }

    /// Whether it runs and has passed its probe since it started.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Running { .. })
            && matches!(self.ready, Ready::Yes | Ready::Watching { ready: true, .. })
    }

    /// Whether it ran and exited 0: a task that is done.
    pub fn completed(&self) -> bool {
        self.state == State::Gone && self.exit == Some(ExitStatus::Code(0))
    }

    /// Whether the processes after it may start, as far as it is concerned: it passed
    /// its first probing, or the start went on without it.
    pub fn settled(&self) -> bool {
        !self.first_probing()
    }

    /// Whether its first probing is still under way (or has not begun): the start of
    /// what follows waits for it.
    pub fn first_probing(&self) -> bool {
        matches!(self.ready, Ready::No | Ready::Probing { deadline: Some(_), .. })
    }

    /// Every deadline of this process with its duty, in the order the duties are done
    /// when several have passed. [`Alarms::deadline`] and [`Alarms::due`] both read this one
    /// list, so a deadline cannot be waited for without its duty, nor a duty done
    /// without its deadline.
    fn alarm_list(&self) -> [Option<(Time, Duty)>; 7] {
        let state = match self.state {
            State::Stopping { deadline: Some(deadline), .. } => Some((deadline, Duty::Kill)),
            State::Backoff { until } | State::Searching { retry: until } => Some((until, Duty::Start)),
            State::Clearing { deadline, .. } => Some((deadline, Duty::KillStrays)),
            _ => None,
        };
        let [abandon, give_up, attempt] = match &self.ready {
            Ready::Probing { deadline, next, attempt_deadline, .. } => [
                attempt_deadline.map(|at| (at, Duty::AbandonAttempt)),
                deadline.map(|at| (at, Duty::GiveUp)),
                attempt_deadline.is_none().then_some((*next, Duty::Attempt)),
            ],
            Ready::Watching { next, attempt_deadline, .. } => [
                attempt_deadline.map(|at| (at, Duty::AbandonAttempt)),
                None,
                attempt_deadline.is_none().then_some((*next, Duty::Attempt)),
            ],
            _ => [None, None, None],
        };
        let live = match (self.state, &self.live) {
            (State::Running { .. }, Some(live)) => {
                let (at, duty) = live.alarm();
                Some((at, Duty::Live(duty)))
            }
            _ => None,
        };
        let watchdog = match (self.state, self.watchdog) {
            (State::Running { .. }, Some((_, due))) => Some((due, Duty::Watchdog)),
            _ => None,
        };
        let task = match (self.state, self.task_deadline) {
            (State::Running { .. }, Some(at)) => Some((at, Duty::TaskTimeout)),
            _ => None,
        };
        [state, abandon, give_up, attempt, live, watchdog, task]
    }

    /// It runs now: its probe starts at once (or it is ready at once, without one).
    /// `first` is the probing the start waits for, which gives up after its timeout.
    pub fn start_probing(&mut self, ready: Option<&Readiness>, first: bool, now: Time) {
        self.live = None;
        self.ready = match ready {
            Some(ready) => Ready::Probing {
                since: now,
                deadline: first.then_some(now + ready.timeout),
                attempts: 0,
                next: now,
                attempt_deadline: None,
                last_error: CheckFailure::NoAnswerYet,
            },
            None => Ready::Yes,
        };
    }

    /// [`Duty::Attempt`]: starts a probe attempt, bounded by its attempt timeout.
    pub fn attempt(&mut self, ready: &Readiness, id: CheckId, now: Time, actions: &mut Vec<Action>) {
        match &mut self.ready {
            Ready::Probing { attempts, attempt_deadline, .. } => {
                *attempts += 1;
                *attempt_deadline = Some(now + ready.attempt_timeout);
            }
            Ready::Watching { attempt_deadline, .. } => *attempt_deadline = Some(now + ready.attempt_timeout),
            _ => return,
        }
        actions.push(Action::StartCheck(id));
    }

    /// [`Duty::AbandonAttempt`]: the attempt under way took too long; the next one
    /// starts an interval later.
    pub fn abandon_attempt(&mut self, ready: &Readiness, id: CheckId, now: Time, actions: &mut Vec<Action>) {
        if let Ready::Probing { next, attempt_deadline, last_error, .. } = &mut self.ready {
            actions.push(Action::CancelCheck(id));
            *attempt_deadline = None;
            *last_error = CheckFailure::NoAnswerWithin(ready.attempt_timeout);
            *next = now + ready.interval;
        }
    }

    /// [`Duty::GiveUp`]: why it is not ready, with the attempt under way cancelled.
    pub fn give_up(&mut self, ready: &Readiness, id: CheckId, actions: &mut Vec<Action>) -> String {
        let Ready::Probing { attempt_deadline, last_error, .. } = &self.ready else { return String::new() };
        if attempt_deadline.is_some() {
            actions.push(Action::CancelCheck(id));
        }
        format!("not ready within {}: {}: {last_error}", Show(ready.timeout), ready.probe)
    }

    /// A probe attempt answered. Returns how long the sidecar took to be ready and in
    /// how many attempts, once it is; an answer nobody waits for any more (cancelled)
    /// changes nothing.
    pub fn probe_answered(
        &mut self,
        result: Result<(), CheckFailure>,
        ready: &Readiness,
        now: Time,
    ) -> Option<(Duration, u32)> {
        let interval = ready.interval;
        let Ready::Probing { since, attempts, next, attempt_deadline, last_error, .. } = &mut self.ready else {
            return None;
        };
        attempt_deadline.take()?;
        match result {
            Ok(()) => {
                let took = (now.saturating_sub(*since), *attempts);
                self.ready = match ready.watch {
                    Some(watch) => Ready::Watching {
                        ready: true,
                        next: now + watch.period,
                        attempt_deadline: None,
                        failures: 0,
                        successes: 0,
                        last_error: CheckFailure::NoAnswerYet,
                    },
                    None => Ready::Yes,
                };
                self.probe_passed_at = Some(now);
                self.ready_after.get_or_insert(took.0);
                Some(took)
            }
            Err(e) => {
                *last_error = e;
                *next = now + interval;
                None
            }
        }
    }

    /// Whether a probe attempt is under way.
    pub fn probing_now(&self) -> bool {
        matches!(
            self.ready,
            Ready::Probing { attempt_deadline: Some(_), .. } | Ready::Watching { attempt_deadline: Some(_), .. }
        )
    }

    /// Whether it is ready once, and probed again every period since.
    pub fn watching(&self) -> bool {
        matches!(self.ready, Ready::Watching { .. })
    }

    /// An attempt of the probing that goes on once it is ready answered (or took too
    /// long): what changed, when its readiness did.
    pub fn watch_answered(
        &mut self,
        result: Result<(), CheckFailure>,
        ready: &Readiness,
        now: Time,
    ) -> Option<Watched> {
        let watch = ready.watch?;
        let Ready::Watching { ready: is_ready, next, attempt_deadline, failures, successes, last_error } =
            &mut self.ready
        else {
            return None;
        };
        attempt_deadline.take()?;
        *next = now + watch.period;
        match result {
            Ok(()) => {
                (*failures, *successes) = (0, *successes + 1);
                if !*is_ready && *successes >= watch.success_threshold {
                    *is_ready = true;
                    return Some(Watched::Back);
                }
            }
            Err(e) => {
                (*failures, *successes, *last_error) = (*failures + 1, 0, e);
                if *is_ready && *failures >= watch.failure_threshold {
                    *is_ready = false;
                    return Some(Watched::Lost { failures: *failures, error: last_error.to_string() });
                }
            }
        }
        None
    }

    /// Its liveness probing begins, a period from now, once it is ready (`live`).
    pub fn arm_live(&mut self, live: Option<&crate::plan::Liveness>, now: Time) {
        if let (Some(live), true, None) = (live, self.is_ready(), &self.live) {
            self.live = Some(Live::new(live, now));
        }
    }

    /// Its liveness probing ends, the attempt under way cancelled.
    pub fn end_live(&mut self, index: usize, actions: &mut Vec<Action>) {
        self.watchdog = None;
        if self.live.take().is_some_and(|live| live.attempt_deadline.is_some()) {
            actions.push(Action::CancelCheck(CheckId { index, purpose: crate::events::Purpose::Live }));
        }
    }

    /// Whether `max_restarts` still allows a restart.
    pub fn may_restart(&self, spec: &ProcessSpec) -> bool {
        spec.max_restarts.is_none_or(|max| self.restarts < max)
    }

    /// Schedules a restart after the back-off: `restart_delay`, doubled per quick exit
    /// in a row up to `max_restart_delay`, forgotten after a run of 10 s. Returns the delay.
    pub fn back_off(&mut self, spec: &ProcessSpec, ran_for: Duration, now: Time) -> Duration {
        self.strays.clear();
        if ran_for >= BACKOFF_RESET {
            self.streak = 0;
        }
        let delay = spec.restart_delay.saturating_mul(1 << self.streak.min(16)).min(spec.max_restart_delay);
        self.streak += 1;
        self.restarts += 1;
        self.state = State::Backoff { until: now + delay };
        delay
    }

    /// What it left in its group, process `pid`, went: it starts again after its
    /// back-off, if it was waiting for them.
    pub fn stray_gone(&mut self, pid: i32) {
        let before = self.strays.len();
        self.strays.retain(|&p| p != pid);
        if let (true, State::Clearing { until, .. }) =
            (self.strays.len() < before && self.strays.is_empty(), self.state)
        {
            self.state = State::Backoff { until };
        }
    }
}

impl Alarms for Proc {
    type Duty = Duty;

    fn alarms(&self) -> impl Iterator<Item = (Time, Duty)> {
        self.alarm_list().into_iter().flatten()
    }
}

#[cfg(test)]
mod tests;
