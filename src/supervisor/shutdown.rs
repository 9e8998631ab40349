//! The shutdown, once it has begun: who is asked to stop in which order, and the sweep
//! of whatever descendants are left once the plan's processes are gone, with the
//! sweep's deadlines listed once beside their duties.

use std::time::Duration;

use log::{info, warn};

use super::alarms::Alarms;
use super::process::Proc;
use crate::duration::Show;
use crate::events::{Action, Time};
use crate::plan::{Plan, Role, ShutdownOrder};
use crate::signo::{SIGKILL, SIGTERM, Signo};

/// How long descendants may take to die of SIGKILL before it is sent again: a process
/// forked while the sweep walked /proc (when exeunt is not PID 1) was not signalled.
pub const KILL_RETRY: Duration = Duration::from_secs(1);

/// How the shutdown was begun, and how it goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begun {
    /// The signal the primaries get instead of their stop action (the one exeunt got).
    pub primary_signal: Option<Signo>,
    /// Begun by a stop signal: a further one skips every remaining grace period.
    pub by_signal: bool,
    /// Skip grace periods: SIGKILL at once.
    pub hurry: bool,
}

/// The end of the run, after the plan's processes are gone: leftover descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    NotYet,
    /// The plan's processes are gone; whether anything else is left is being asked.
    Pending,
    Terminating {
        deadline: Time,
    },
    /// SIGKILL went to every descendant; it goes again at `retry` to any still there.
    Killing {
        retry: Time,
    },
    Done,
}

/// What falls due at one of the shutdown's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// The drain delay after a stop signal from outside is over: pass it on.
    PassOn(Signo),
    /// The leftovers' grace period after SIGTERM is over.
    KillLeftovers,
    /// Leftovers are still there a while after SIGKILL.
    KillAgain,
}

#[derive(Debug)]
pub struct Shutdown {
    /// A stop signal from outside, held back for the drain delay until then.
    held: Option<(Time, Signo)>,
    begun: Option<Begun>,
    sweep: Sweep,
    /// The descendants cannot be seen (no /proc): the sweep signals the process groups
    /// started, and does not wait for what it cannot see.
    blind: bool,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown { held: None, begun: None, sweep: Sweep::NotYet, blind: false }
    }

    /// Holds a stop signal back until `until` (the drain delay), while everything runs
    /// on; false when one is held already.
    pub fn hold(&mut self, signo: Signo, until: Time) -> bool {
        if self.held.is_some() {
            return false;
        }
        self.held = Some((until, signo));
        true
    }

    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    pub fn begun(&self) -> Option<Begun> {
        self.begun
    }

    pub fn is_begun(&self) -> bool {
        self.begun.is_some()
    }

    /// Begins the shutdown; false when it had begun already.
    pub fn begin(&mut self, primary_signal: Option<Signo>) -> bool {
        if self.begun.is_some() {
            return false;
        }
        self.begun = Some(Begun { primary_signal, by_signal: false, hurry: false });
        // A held stop signal is overtaken: the shutdown is under way.
        self.held = None;
        true
    }

    /// A stop signal is behind the shutdown: the next one hurries it.
    pub fn mark_by_signal(&mut self) {
        if let Some(begun) = &mut self.begun {
            begun.by_signal = true;
        }
    }

    pub fn hurried(&self) -> bool {
        self.begun.is_some_and(|b| b.hurry)
    }

    /// Skips every remaining grace period, the leftovers' too.
    pub fn hurry(&mut self, now: Time, actions: &mut Vec<Action>) {
        if let Some(begun) = &mut self.begun {
            begun.hurry = true;
        }
        if let Sweep::Terminating { .. } | Sweep::Pending = self.sweep {
            self.kill_leftovers(now, actions);
        }
    }

    /// The plan's processes are all gone: reap, to learn whether anything is left.
    pub fn all_gone(&mut self, actions: &mut Vec<Action>) {
        if self.sweep == Sweep::NotYet {
            self.sweep = Sweep::Pending;
            actions.push(Action::Reap);
        }
    }

    /// Whether the sweep has been asked for and nothing is known yet of leftovers.
    pub fn pending(&self) -> bool {
        self.sweep == Sweep::Pending
    }

    /// Daemons or orphans the plan's processes left behind: SIGTERM, then SIGKILL after
    /// the grace period (or SIGKILL at once, when hurried).
    pub fn sweep_leftovers(&mut self, grace: Duration, now: Time, actions: &mut Vec<Action>) {
        if self.hurried() {
            info!("processes the plan's processes left behind are still running: sending them SIGKILL");
            self.kill_leftovers(now, actions);
        } else {
            info!(
                "processes the plan's processes left behind are still running: sending them SIGTERM (grace {})",
                Show(grace)
            );
            actions.push(Action::SignalDescendants(SIGTERM));
            self.sweep = Sweep::Terminating { deadline: now + grace };
        }
    }

    /// SIGKILL to every descendant, again after [`KILL_RETRY`] while any is left.
    fn kill_leftovers(&mut self, now: Time, actions: &mut Vec<Action>) {
        actions.push(Action::SignalDescendants(SIGKILL));
        self.sweep = Sweep::Killing { retry: now + KILL_RETRY };
    }

    /// The sweep's signals reached only the process groups of the processes started.
    /// Said once.
    pub fn unseen(&mut self) {
        if !std::mem::replace(&mut self.blind, true) {
            warn!(
                "/proc cannot be read: the processes left behind cannot be seen, so their process groups are signalled, and whatever left them is not waited for"
            );
        }
    }

    pub fn is_blind(&self) -> bool {
        self.blind
    }

    /// Nothing is left: the run is over.
    pub fn finish(&mut self) {
        self.sweep = Sweep::Done;
    }

    pub fn is_done(&self) -> bool {
        self.sweep == Sweep::Done
    }

    /// The shutdown's one deadline with its duty (the drain delay's before the shutdown
    /// begins, the sweep's after); [`Alarms::deadline`] and
    /// [`Alarms::due`] both read it.
    fn alarm(&self) -> Option<(Time, Duty)> {
        if let Some((until, signo)) = self.held {
            return Some((until, Duty::PassOn(signo)));
        }
        match self.sweep {
            Sweep::Terminating { deadline } => Some((deadline, Duty::KillLeftovers)),
            Sweep::Killing { retry } => Some((retry, Duty::KillAgain)),
            Sweep::NotYet | Sweep::Pending | Sweep::Done => None,
        }
    }

    /// Takes back the held stop signal whose drain delay is over.
    pub fn release(&mut self) -> Option<Signo> {
        self.held.take().map(|(_, signo)| signo)
    }

    /// Does what fell due to the sweep; `grace` is the leftovers' grace period, for the
    /// message. (A held signal is released with [`Shutdown::release`].)
    pub fn ring(&mut self, duty: Duty, grace: Duration, now: Time, actions: &mut Vec<Action>) {
        match duty {
            Duty::PassOn(_) => return,
            Duty::KillLeftovers => warn!("killing leftover processes: still running {} after SIGTERM", Show(grace)),
            Duty::KillAgain => {
                warn!("leftover processes still there {} after SIGKILL: sending it again", Show(KILL_RETRY));
            }
        }
        self.kill_leftovers(now, actions);
    }
}

/// The processes to ask to stop now: every primary; once no primary is left, the
/// sidecars (and a task still running), all at once, or (in order) each once nothing
/// that started after it, directly or through others, is still alive: the start order
/// reversed.
pub fn to_stop(plan: &Plan, procs: &[Proc]) -> Vec<usize> {
    let alive = |i: &usize| procs[*i].state.alive();
    let primary = |i: &usize| plan.processes[*i].role == Role::Primary;
    let primaries: Vec<usize> = (0..procs.len()).filter(primary).filter(alive).collect();
    if !primaries.is_empty() {
        return primaries;
    }
    let rest = (0..procs.len()).filter(|i| !primary(i)).filter(alive);
    if plan.shutdown == ShutdownOrder::Parallel {
        return rest.collect();
    }
    // Held: what something alive started after, however far back.
    let mut held = vec![false; procs.len()];
    let mut next: Vec<usize> = (0..procs.len()).filter(alive).flat_map(|j| plan.processes[j].after.clone()).collect();
    while let Some(i) = next.pop() {
        if !std::mem::replace(&mut held[i], true) {
            next.extend(&plan.processes[i].after);
        }
    }
    rest.filter(|&i| !held[i]).collect()
}

impl Alarms for Shutdown {
    type Duty = Duty;

    /// The shutdown's one deadline.
    fn alarms(&self) -> impl Iterator<Item = (Time, Duty)> {
        self.alarm().into_iter()
    }
}
