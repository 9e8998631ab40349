//! Where decisions are made. The supervisor is a state machine: events in (a process
//! started or exited, a signal arrived, a deadline passed), actions out (start, signal,
//! exit). It never touches the OS, so every lifecycle rule is testable without
//! processes; the event loop carries the actions out and feeds back what happened.

use std::fmt;
use std::time::Duration;

use log::{debug, error, info, warn};

use crate::duration::Show;
use crate::plan::{Plan, Role};
use crate::signals::{SIGKILL, SIGTERM, Signo};

/// A point on the monotonic clock (time since boot), so that tests can make their own.
pub type Time = Duration;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(Signo),
}

impl ExitStatus {
    /// The status as a shell reports it: the exit code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(code) => code,
            ExitStatus::Signal(signo) => 128 + signo.0,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signo) => write!(f, "{signo} (status {})", self.code()),
        }
    }
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
    /// Signal every descendant of exeunt, then reap.
    SignalDescendants(Signo),
    /// Exit with this code: nothing is left running.
    Exit(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    /// Asked to be spawned; the outcome is not known yet.
    Starting,
    Running {
        pid: i32,
        since: Time,
    },
    /// Sent its stop signal; SIGKILL at the deadline.
    Stopping {
        pid: i32,
        since: Time,
        deadline: Time,
    },
    Killed {
        pid: i32,
        since: Time,
    },
    Gone,
}

impl State {
    fn pid(self) -> Option<i32> {
        match self {
            State::Running { pid, .. } | State::Stopping { pid, .. } | State::Killed { pid, .. } => Some(pid),
            State::Waiting | State::Starting | State::Gone => None,
        }
    }

    fn alive(self) -> bool {
        self == State::Starting || self.pid().is_some()
    }
}

/// The shutdown, once it has begun.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    /// Begun by a stop signal: a further one skips every remaining grace period.
    by_signal: bool,
    /// Skip grace periods: SIGKILL at once.
    hurry: bool,
}

/// The end of the run, after the plan's processes are gone: leftover descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    NotYet,
    Terminating { deadline: Time },
    Killing,
    Done,
}

/// The supervisor of one plan.
pub struct Supervisor<'p> {
    plan: &'p Plan,
    states: Vec<State>,
    shutdown: Option<Shutdown>,
    sweep: Sweep,
    /// The first failing primary's code, else the last primary's.
    primary_code: Option<i32>,
    /// Exeunt's own failure (a process could not be started).
    error_code: Option<i32>,
    /// A stop signal that came before any primary ran: exit as if killed by it.
    signal_code: Option<i32>,
}

impl<'p> Supervisor<'p> {
    pub fn new(plan: &'p Plan) -> Supervisor<'p> {
        Supervisor {
            plan,
            states: vec![State::Waiting; plan.processes.len()],
            shutdown: None,
            sweep: Sweep::NotYet,
            primary_code: None,
            error_code: None,
            signal_code: None,
        }
    }

    /// The first actions: start the first process.
    pub fn start(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        self.start_next(&mut actions);
        actions
    }

    /// The earliest deadline the event loop must wake up for, if any.
    pub fn next_deadline(&self) -> Option<Time> {
        let stops = self.states.iter().filter_map(|s| match s {
            State::Stopping { deadline, .. } => Some(*deadline),
            _ => None,
        });
        let sweep = match self.sweep {
            Sweep::Terminating { deadline } => Some(deadline),
            _ => None,
        };
        stops.chain(sweep).min()
    }

    /// Takes one event at time `now` and returns what to do about it.
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.sweep == Sweep::Done {
            return actions;
        }
        match event {
            Event::Spawned { index, pid } => {
                info!("started {} {} (pid {pid})", self.plan.processes[index].role, self.name(index));
                self.states[index] = State::Running { pid, since: now };
                if self.shutdown.is_none() {
                    self.start_next(&mut actions);
                } else {
                    self.stop(index, None, now, &mut actions);
                }
            }
            Event::SpawnFailed { index, code, reason } => {
                error!("cannot start {}: {reason}", self.name(index));
                self.states[index] = State::Gone;
                self.error_code.get_or_insert(code);
                self.begin_shutdown(None, now, &mut actions);
            }
            Event::Exited { pid, status } => self.on_exit(pid, status, now, &mut actions),
            Event::Reaped { children_left } => {
                if !children_left && self.shutdown.is_some() && !self.any_alive() {
                    self.finish(&mut actions);
                }
            }
            Event::Signal(signo) => self.on_signal(signo, now, &mut actions),
            Event::Tick => self.on_tick(now, &mut actions),
        }
        self.advance(now, &mut actions);
        actions
    }

    fn name(&self, index: usize) -> &str {
        &self.plan.processes[index].name
    }

    fn role(&self, index: usize) -> Role {
        self.plan.processes[index].role
    }

    fn any_alive(&self) -> bool {
        self.states.iter().any(|s| s.alive())
    }

    fn primary_alive(&self) -> bool {
        (0..self.states.len()).any(|i| self.role(i) == Role::Primary && self.states[i].alive())
    }

    fn start_next(&mut self, actions: &mut Vec<Action>) {
        if let Some(index) = self.states.iter().position(|s| *s == State::Waiting) {
            self.states[index] = State::Starting;
            actions.push(Action::Spawn(index));
        }
    }

    fn on_exit(&mut self, pid: i32, status: ExitStatus, now: Time, actions: &mut Vec<Action>) {
        let Some(index) = self.states.iter().position(|s| s.pid() == Some(pid)) else {
            if self.plan.report_reaped {
                warn!("Reaped zombie process with pid={pid}");
            } else {
                debug!("reaped orphan pid {pid} ({status})");
            }
            return;
        };
        let since = match self.states[index] {
            State::Running { since, .. } | State::Stopping { since, .. } | State::Killed { since, .. } => since,
            State::Waiting | State::Starting | State::Gone => now,
        };
        self.states[index] = State::Gone;
        let ran = Show(Duration::from_millis(now.saturating_sub(since).as_millis() as u64));
        let plan = self.plan;
        let name = &plan.processes[index].name;
        match self.role(index) {
            Role::Primary => {
                info!("primary {name} exited with {status} after {ran}");
                if self.primary_code.is_none_or(|code| code == 0) {
                    self.primary_code = Some(status.code());
                }
                let primaries_left = self.primary_alive();
                if status.code() != 0 && primaries_left && self.shutdown.is_none() {
                    warn!("primary {name} failed: stopping the other primaries");
                }
                if status.code() != 0 || !primaries_left {
                    self.begin_shutdown(None, now, actions);
                }
            }
            Role::Sidecar if self.shutdown.is_none() => {
                warn!("sidecar {name} exited with {status} after {ran}; the primaries keep running");
            }
            Role::Sidecar => info!("sidecar {name} exited with {status} after {ran}"),
        }
    }

    fn on_signal(&mut self, signo: Signo, now: Time, actions: &mut Vec<Action>) {
        if signo.asks_to_stop() {
            match self.shutdown {
                None => {
                    info!("received {signo}: stopping");
                    let any_primary_ran = (0..self.states.len())
                        .any(|i| self.role(i) == Role::Primary && self.states[i] != State::Waiting);
                    if !any_primary_ran {
                        self.signal_code = Some(128 + signo.0);
                    }
                    self.begin_shutdown(Some(signo), now, actions);
                    if let Some(shutdown) = &mut self.shutdown {
                        shutdown.by_signal = true;
                    }
                }
                Some(Shutdown { by_signal: false, .. }) => {
                    info!("received {signo}: already stopping; another one kills what is left");
                    if let Some(shutdown) = &mut self.shutdown {
                        shutdown.by_signal = true;
                    }
                }
                Some(_) => {
                    warn!("received {signo} again: killing what is left now");
                    self.hurry(now, actions);
                }
            }
            return;
        }
        if !signo.is_forwarded() {
            return;
        }
        for index in 0..self.states.len() {
            if let (Role::Primary, State::Running { pid, .. } | State::Stopping { pid, .. }) =
                (self.role(index), self.states[index])
            {
                debug!("forwarding {signo} to {}", self.name(index));
                actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
            }
        }
    }

    fn on_tick(&mut self, now: Time, actions: &mut Vec<Action>) {
        for index in 0..self.states.len() {
            if let State::Stopping { pid, since, deadline } = self.states[index]
                && deadline <= now
            {
                let spec = &self.plan.processes[index];
                warn!("killing {}: still running {} after {}", spec.name, Show(spec.grace_period), spec.stop_signal);
                self.kill(index, pid, since, actions);
            }
        }
        if let Sweep::Terminating { deadline } = self.sweep
            && deadline <= now
        {
            warn!("killing leftover processes: still running {} after SIGTERM", Show(self.plan.grace_period));
            actions.push(Action::SignalDescendants(SIGKILL));
            self.sweep = Sweep::Killing;
        }
    }

    fn begin_shutdown(&mut self, primary_signal: Option<Signo>, now: Time, actions: &mut Vec<Action>) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(Shutdown { by_signal: false, hurry: false });
        for index in 0..self.states.len() {
            match (self.role(index), self.states[index]) {
                (_, State::Waiting) => self.states[index] = State::Gone,
                (Role::Primary, State::Running { .. }) => self.stop(index, primary_signal, now, actions),
                _ => {}
            }
        }
    }

    /// Skips every remaining grace period: SIGKILL to all that is alive.
    fn hurry(&mut self, _now: Time, actions: &mut Vec<Action>) {
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.hurry = true;
        }
        for index in 0..self.states.len() {
            if let State::Running { pid, since } | State::Stopping { pid, since, .. } = self.states[index] {
                self.kill(index, pid, since, actions);
            }
        }
        if let Sweep::Terminating { .. } = self.sweep {
            actions.push(Action::SignalDescendants(SIGKILL));
            self.sweep = Sweep::Killing;
        }
    }

    /// Moves the shutdown on: sidecars once no primary is alive, then the leftovers.
    fn advance(&mut self, now: Time, actions: &mut Vec<Action>) {
        if self.shutdown.is_none() {
            return;
        }
        if self.primary_alive() {
            return;
        }
        for index in 0..self.states.len() {
            if self.role(index) == Role::Sidecar && matches!(self.states[index], State::Running { .. }) {
                self.stop(index, None, now, actions);
            }
        }
        if self.any_alive() || self.sweep != Sweep::NotYet {
            return;
        }
        // Whatever the plan's processes left behind (daemons, orphans) goes too.
        let hurry = self.shutdown.is_some_and(|s| s.hurry);
        if hurry {
            actions.push(Action::SignalDescendants(SIGKILL));
            self.sweep = Sweep::Killing;
        } else {
            actions.push(Action::SignalDescendants(SIGTERM));
            self.sweep = Sweep::Terminating { deadline: now + self.plan.grace_period };
        }
    }

    fn stop(&mut self, index: usize, signal: Option<Signo>, now: Time, actions: &mut Vec<Action>) {
        let State::Running { pid, since } = self.states[index] else { return };
        let spec = &self.plan.processes[index];
        if self.shutdown.is_some_and(|s| s.hurry) {
            self.kill(index, pid, since, actions);
            return;
        }
        let signo = signal.unwrap_or(spec.stop_signal);
        info!("sending {signo} to {} {} (grace {})", spec.role, spec.name, Show(spec.grace_period));
        actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
        self.states[index] = State::Stopping { pid, since, deadline: now + spec.grace_period };
    }

    fn kill(&mut self, index: usize, pid: i32, since: Time, actions: &mut Vec<Action>) {
        actions.push(Action::Signal { pid, signo: SIGKILL, group: true });
        self.states[index] = State::Killed { pid, since };
    }

    fn finish(&mut self, actions: &mut Vec<Action>) {
        let primary = self.primary_code.map(|code| self.plan.zero_codes.apply(code));
        let code = self.error_code.or(primary).or(self.signal_code).unwrap_or(0);
        info!("all processes are gone: exiting with {code}");
        self.sweep = Sweep::Done;
        actions.push(Action::Exit(code));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DEFAULT_GRACE, ProcessSpec};

    const SEC: Duration = Duration::from_secs(1);

    fn plan(roles: &[(&str, Role)]) -> Plan {
        let specs = roles.iter().map(|(name, role)| ProcessSpec::new(name, *role, vec!["x".into()])).collect();
        Plan::new(specs, DEFAULT_GRACE)
    }

    fn index(plan: &Plan, name: &str) -> usize {
        plan.processes.iter().position(|p| p.name == name).expect("in the plan")
    }

    /// Starts every process of the plan, giving process i the pid 100+i.
    fn started(plan: &Plan) -> Supervisor<'_> {
        let mut sup = Supervisor::new(plan);
        let mut actions = sup.start();
        while let [Action::Spawn(i)] = actions.as_slice() {
            let i = *i;
            actions = sup.handle(Event::Spawned { index: i, pid: 100 + i as i32 }, Time::ZERO);
        }
        assert!(actions.is_empty(), "{actions:?}");
        sup
    }

    fn term(pid: i32) -> Action {
        Action::Signal { pid, signo: SIGTERM, group: false }
    }

    fn kill(pid: i32) -> Action {
        Action::Signal { pid, signo: SIGKILL, group: true }
    }

    fn exited(pid: i32, code: i32) -> Event {
        Event::Exited { pid, status: ExitStatus::Code(code) }
    }

    const GONE: Event = Event::Reaped { children_left: false };

    #[test]
    fn starts_sidecars_one_after_another_then_the_primary() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar), ("log", Role::Sidecar)]);
        let mut sup = Supervisor::new(&plan);
        assert_eq!(sup.start(), [Action::Spawn(index(&plan, "proxy"))]);
        assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO), [Action::Spawn(index(&plan, "log"))]);
        assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 11 }, Time::ZERO), [Action::Spawn(index(&plan, "job"))]);
        assert_eq!(sup.handle(Event::Spawned { index: 2, pid: 12 }, Time::ZERO), []);
    }

    #[test]
    fn primary_exit_stops_sidecars_and_exit_code_is_the_primarys() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(101, 3), SEC), [term(100)]);
        assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE));
        assert_eq!(
            sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGTERM) }, 2 * SEC),
            [Action::SignalDescendants(SIGTERM)]
        );
        assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(3)]);
    }

    #[test]
    fn a_stopped_sidecar_does_not_change_a_successful_primarys_status() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        sup.handle(exited(101, 0), SEC);
        sup.handle(exited(100, 1), SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
    }

    #[test]
    fn sidecar_ignoring_its_stop_signal_is_killed_at_the_grace_deadline() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.processes[0].grace_period = 3 * SEC;
        let mut sup = started(&plan);
        sup.handle(exited(101, 0), SEC);
        assert_eq!(sup.next_deadline(), Some(4 * SEC));
        assert_eq!(sup.handle(Event::Tick, 3 * SEC), []);
        assert_eq!(sup.handle(Event::Tick, 4 * SEC), [kill(100)]);
        assert_eq!(sup.next_deadline(), None);
    }

    #[test]
    fn killed_by_signal_gives_128_plus_n() {
        let plan = plan(&[("job", Role::Primary)]);
        let mut sup = started(&plan);
        sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(Signo(libc::SIGSEGV)) }, SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(139)]);
    }

    #[test]
    fn zero_codes_remap_the_primarys_status() {
        let mut plan = plan(&[("job", Role::Primary)]);
        plan.zero_codes.add(143);
        let mut sup = started(&plan);
        sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGTERM) }, SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
    }

    #[test]
    fn first_failing_primary_stops_the_others_and_sets_the_status() {
        let plan = plan(&[("a", Role::Primary), ("b", Role::Primary), ("side", Role::Sidecar)]);
        let mut sup = started(&plan);
        // side=100, a=101, b=102
        assert_eq!(sup.handle(exited(101, 5), SEC), [term(102)]);
        assert_eq!(sup.handle(Event::Exited { pid: 102, status: ExitStatus::Signal(SIGTERM) }, SEC), [term(100)]);
        sup.handle(exited(100, 0), SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(5)]);
    }

    #[test]
    fn a_primary_that_succeeds_waits_for_the_others() {
        let plan = plan(&[("a", Role::Primary), ("b", Role::Primary)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 0), SEC), []);
        assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), []);
        assert_eq!(sup.handle(exited(101, 0), SEC), [Action::SignalDescendants(SIGTERM)]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
    }

    #[test]
    fn sidecar_exit_before_the_primary_leaves_the_primary_running() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 1), SEC), []);
        assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), []);
        assert_eq!(sup.handle(exited(101, 0), SEC), [Action::SignalDescendants(SIGTERM)]);
    }

    #[test]
    fn stop_signal_goes_to_primaries_first_then_sidecars() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        let int = Signo(libc::SIGINT);
        assert_eq!(sup.handle(Event::Signal(int), SEC), [Action::Signal { pid: 101, signo: int, group: false }]);
        assert_eq!(sup.handle(Event::Exited { pid: 101, status: ExitStatus::Signal(int) }, SEC), [term(100)]);
        sup.handle(exited(100, 0), SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(130)]);
    }

    #[test]
    fn second_stop_signal_skips_the_grace_periods() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        sup.handle(Event::Signal(SIGTERM), SEC);
        // Everything alive is killed at once, the sidecar that was still waiting its turn too.
        assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC), [kill(100), kill(101)]);
        assert_eq!(sup.next_deadline(), None);
        assert_eq!(sup.handle(Event::Exited { pid: 101, status: ExitStatus::Signal(SIGKILL) }, SEC), []);
        assert_eq!(
            sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGKILL) }, SEC),
            [Action::SignalDescendants(SIGKILL)]
        );
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(137)]);
    }

    #[test]
    fn other_signals_are_forwarded_to_running_primaries_only() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.signal_groups = true;
        let mut sup = started(&plan);
        let usr1 = Signo(libc::SIGUSR1);
        assert_eq!(sup.handle(Event::Signal(usr1), SEC), [Action::Signal { pid: 101, signo: usr1, group: true }]);
        assert_eq!(sup.handle(Event::Signal(Signo(libc::SIGCHLD)), SEC), []);
    }

    #[test]
    fn failed_spawn_stops_what_started_and_starts_nothing_more() {
        let plan = plan(&[("job", Role::Primary), ("a", Role::Sidecar), ("b", Role::Sidecar)]);
        let mut sup = Supervisor::new(&plan);
        sup.start();
        assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO), [Action::Spawn(1)]);
        let failed = Event::SpawnFailed { index: 1, code: 127, reason: "not found".into() };
        assert_eq!(sup.handle(failed, Time::ZERO), [term(10)]);
        assert_eq!(sup.handle(exited(10, 0), SEC), [Action::SignalDescendants(SIGTERM)]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(127)]);
    }

    #[test]
    fn leftover_descendants_get_sigterm_then_sigkill_after_grace() {
        let plan = plan(&[("job", Role::Primary)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 0), SEC), [Action::SignalDescendants(SIGTERM)]);
        assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), []);
        assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE));
        assert_eq!(sup.handle(Event::Tick, SEC + DEFAULT_GRACE), [Action::SignalDescendants(SIGKILL)]);
        assert_eq!(sup.handle(exited(555, 0), SEC + DEFAULT_GRACE), []);
        assert_eq!(sup.handle(GONE, SEC + DEFAULT_GRACE), [Action::Exit(0)]);
        assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC + DEFAULT_GRACE), []);
    }

    #[test]
    fn stop_signal_before_any_primary_started_exits_as_killed_by_it() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = Supervisor::new(&plan);
        sup.start();
        assert_eq!(sup.handle(Event::Signal(SIGTERM), Time::ZERO), []);
        assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO), [term(10)]);
        sup.handle(exited(10, 0), SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(143)]);
    }

    #[test]
    fn idle_supervisor_asks_for_no_wakeup() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let sup = started(&plan);
        assert_eq!(sup.next_deadline(), None);
    }
}
