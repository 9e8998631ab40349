//! Where decisions are made. The supervisor is a state machine: events in (a process
//! started or exited, a signal arrived, a check answered, a deadline passed), actions
//! out (start, signal, check, exit). It never touches the OS, so every lifecycle rule
//! is testable without processes; the event loop carries the actions out and feeds
//! back what happened.

use std::time::Duration;

use log::{debug, error, info, warn};

use crate::duration::Show;
use crate::events::{Action, CheckId, Event, ExitStatus, Milestone, Purpose, Time};
use crate::plan::{OnExit, OnTimeout, Plan, Role, ShutdownOrder};
use crate::signo::{SIGKILL, SIGTERM, Signo};

/// Exeunt's exit code when a sidecar was not ready in time, or exited before it was.
pub const NOT_READY: i32 = 1;

/// Restart back-off: the first delay, doubled per quick exit up to the maximum, and
/// forgotten once a sidecar has run long enough.
const BACKOFF_RESET: Duration = Duration::from_secs(10);

/// How long descendants may take to die of SIGKILL before it is sent again: a process
/// forked while the sweep walked /proc (when exeunt is not PID 1) was not signalled.
const KILL_RETRY: Duration = Duration::from_secs(1);

/// How long to wait before looking again for a sidecar of another container.
const SEARCH_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    /// Asked to be spawned; the outcome is not known yet.
    Starting,
    Running {
        pid: i32,
        since: Time,
    },
    /// Asked to stop (signal or hook); SIGKILL at the deadline.
    Stopping {
        pid: i32,
        since: Time,
        deadline: Time,
        hook_running: bool,
    },
    Killed {
        pid: i32,
        since: Time,
    },
    /// A sidecar waiting out its restart back-off.
    Backoff {
        until: Time,
    },
    /// A sidecar of another container, not found yet: looked for again at `retry`.
    Searching {
        retry: Time,
    },
    Gone,
}

impl State {
    fn pid(self) -> Option<i32> {
        match self {
            State::Running { pid, .. } | State::Stopping { pid, .. } | State::Killed { pid, .. } => Some(pid),
            State::Waiting | State::Starting | State::Backoff { .. } | State::Searching { .. } | State::Gone => None,
        }
    }

    fn alive(self) -> bool {
        matches!(self, State::Starting | State::Searching { .. }) || self.pid().is_some()
    }
}

/// Where a sidecar stands on the way to ready.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ready {
    /// Not started yet.
    No,
    Probing {
        since: Time,
        deadline: Time,
        attempts: u32,
        /// When the next attempt starts, once none is under way.
        next: Time,
        /// The deadline of the attempt under way, if one is.
        attempt_deadline: Option<Time>,
        last_error: String,
    },
    Yes,
    /// Not ready in time, or exited first, under `on_timeout = "start"`: the start went on.
    GaveUp,
}

/// One process of the plan, as it stands.
#[derive(Debug, Clone)]
struct Proc {
    state: State,
    ready: Ready,
    /// Restarts so far, for `max_restarts`.
    restarts: u32,
    /// Quick exits in a row, for the back-off.
    streak: u32,
    /// For a sidecar of another container: until when it may take to appear, counted
    /// from the first search that found nothing.
    search_deadline: Option<Time>,
}

/// The shutdown, once it has begun.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    /// The signal the primaries get instead of their stop action (the one exeunt got).
    primary_signal: Option<Signo>,
    /// Begun by a stop signal: a further one skips every remaining grace period.
    by_signal: bool,
    /// Skip grace periods: SIGKILL at once.
    hurry: bool,
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

/// The supervisor of one plan.
pub struct Supervisor<'p> {
    plan: &'p Plan,
    procs: Vec<Proc>,
    shutdown: Option<Shutdown>,
    sweep: Sweep,
    /// The first failing primary's code, else the last primary's.
    primary_code: Option<i32>,
    /// A failure that decides the exit code over the primaries' (a process could not
    /// be started, a sidecar was not ready, a sidecar failed the run).
    error_code: Option<i32>,
    /// A stop signal that came before any primary ran: exit as if killed by it.
    signal_code: Option<i32>,
    /// Until when the birth deps may take to be ready; None once they are (or if none).
    birth_deadline: Option<Time>,
    born: bool,
    ready: bool,
}

impl<'p> Supervisor<'p> {
    /// A supervisor of `plan`, created at `now` (the birth deps' wait starts then).
    pub fn new(plan: &'p Plan, now: Time) -> Supervisor<'p> {
        let proc = Proc { state: State::Waiting, ready: Ready::No, restarts: 0, streak: 0, search_deadline: None };
        Supervisor {
            plan,
            procs: vec![proc; plan.processes.len()],
            shutdown: None,
            sweep: Sweep::NotYet,
            primary_code: None,
            error_code: None,
            signal_code: None,
            birth_deadline: plan.pod.as_ref().filter(|p| !p.birth_deps.is_empty()).map(|p| now + p.birth_timeout),
            born: false,
            ready: false,
        }
    }

    /// The first actions: start the first process (once the birth deps are ready).
    pub fn start(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if let (Some(_), Some(pod)) = (self.birth_deadline, &self.plan.pod) {
            let within = Show(pod.birth_timeout);
            info!("waiting for the birth deps {} to be ready (at most {within})", pod.birth_deps.join(", "));
        }
        if self.shutdown.is_none() {
            self.start_next(&mut actions);
        }
        actions
    }

    /// The earliest deadline the event loop must wake up for, if any.
    pub fn next_deadline(&self) -> Option<Time> {
        let procs = self.procs.iter().filter_map(|p| {
            let state = match p.state {
                State::Stopping { deadline, .. } => Some(deadline),
                State::Backoff { until } => Some(until),
                State::Searching { retry } => Some(retry),
                _ => None,
            };
            let probe = match p.ready {
                Ready::Probing { deadline, next, attempt_deadline, .. } => {
                    Some(deadline.min(attempt_deadline.unwrap_or(next)))
                }
                _ => None,
            };
            state.into_iter().chain(probe).min()
        });
        let sweep = match self.sweep {
            Sweep::Terminating { deadline } => Some(deadline),
            Sweep::Killing { retry } => Some(retry),
            _ => None,
        };
        procs.chain(sweep).chain(self.birth_deadline).min()
    }

    /// Takes one event at time `now` and returns what to do about it.
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.sweep == Sweep::Done {
            return actions;
        }
        match event {
            Event::Spawned { index, pid } => self.on_spawned(index, pid, now, &mut actions),
            Event::SpawnFailed { index, code, reason } => {
                error!("cannot start {}: {reason}", self.name(index));
                self.procs[index].state = State::Gone;
                self.error_code.get_or_insert(code);
                self.begin_shutdown(None, &mut actions);
            }
            Event::Exited { pid, status } => self.on_exit(pid, status, now, &mut actions),
            Event::Reaped { children_left } => {
                if !children_left && self.shutdown.is_some() && !self.any_alive() {
                    self.finish(&mut actions);
                    return actions;
                }
                if children_left && self.sweep == Sweep::Pending {
                    // Daemons or orphans the plan's processes left behind: they go too.
                    // Only now, because finding them takes a walk through /proc when
                    // exeunt is not PID 1.
                    self.sweep_leftovers(now, &mut actions);
                }
            }
            Event::Signal(signo) => self.on_signal(signo, now, &mut actions),
            Event::StopWithStatus { signo, status } => {
                info!("received {signo} carrying exit status {status} from another container's exeunt");
                self.error_code.get_or_insert(status);
                self.on_signal(signo, now, &mut actions);
            }
            Event::NotFound { index } => {
                let deadline = *self.procs[index].search_deadline.get_or_insert(now + self.plan.match_timeout());
                if self.shutdown.is_some() {
                    // The shutdown began while this search was under way: nothing to stop.
                    // Searching on would keep a deadline that nothing acts on any more.
                    self.procs[index].state = State::Gone;
                } else if now >= deadline {
                    let spec = &self.plan.processes[index];
                    let matcher = spec.matcher.as_ref().map(ToString::to_string).unwrap_or_default();
                    let waited = Show(self.plan.match_timeout());
                    self.procs[index].state = State::Gone;
                    self.not_ready(
                        index,
                        &format!("not there: no process with {matcher} appeared within {waited}"),
                        &mut actions,
                    );
                } else {
                    self.procs[index].state = State::Searching { retry: now + SEARCH_INTERVAL };
                }
            }
            Event::BirthDepsReady => {
                if self.birth_deadline.take().is_some() {
                    info!("birth deps are ready: starting");
                }
            }
            Event::BirthDepDied { name, code } => {
                if self.birth_deadline.take().is_some() {
                    error!("birth dep {name} died (exit code {code}) before it was ready: stopping");
                    self.error_code.get_or_insert(NOT_READY);
                    self.begin_shutdown(None, &mut actions);
                }
            }
            Event::DeathDepDied { name, code } => {
                if self.shutdown.is_none() {
                    info!("death dep {name} died with exit code {code}: stopping, to exit with {code}");
                }
                self.birth_deadline = None;
                self.error_code.get_or_insert(code);
                self.begin_shutdown(None, &mut actions);
            }
            Event::CheckDone { id, result } => self.on_check(id, result, now, &mut actions),
            Event::Tick => self.on_tick(now, &mut actions),
        }
        if self.shutdown.is_none() {
            self.start_next(&mut actions);
            self.note_ready(&mut actions);
        }
        self.advance(now, &mut actions);
        actions
    }

    /// Records, once, that every process has started and every sidecar is ready.
    fn note_ready(&mut self, actions: &mut Vec<Action>) {
        // Called after every event, so once recorded it costs nothing (think of a burst
        // of thousands of reaped orphans).
        if self.ready || self.birth_deadline.is_some() {
            return;
        }
        let settled = |p: &Proc| {
            !matches!(p.state, State::Waiting | State::Starting | State::Searching { .. })
                && (p.ready != Ready::No || p.state == State::Gone)
        };
        let sidecars_ready = (0..self.procs.len())
            .filter(|&i| self.role(i) == Role::Sidecar)
            .all(|i| matches!(self.procs[i].ready, Ready::Yes | Ready::GaveUp));
        if sidecars_ready && self.procs.iter().all(settled) {
            self.ready = true;
            info!("every process has started and every sidecar is ready");
            if self.plan.pod.is_some() {
                actions.push(Action::Record(Milestone::Ready));
            }
        }
    }

    fn name(&self, index: usize) -> &str {
        &self.plan.processes[index].name
    }

    fn role(&self, index: usize) -> Role {
        self.plan.processes[index].role
    }

    fn any_alive(&self) -> bool {
        self.procs.iter().any(|p| p.state.alive())
    }

    fn primary_alive(&self) -> bool {
        (0..self.procs.len()).any(|i| self.role(i) == Role::Primary && self.procs[i].state.alive())
    }

    /// Starts the next waiting process once every sidecar before it is ready: sidecars
    /// one after another, then the primaries together.
    fn start_next(&mut self, actions: &mut Vec<Action>) {
        if self.birth_deadline.is_some() || self.procs.iter().any(|p| p.state == State::Starting) {
            return;
        }
        let Some(index) = self.procs.iter().position(|p| p.state == State::Waiting) else { return };
        let settled = |p: &Proc| matches!(p.ready, Ready::Yes | Ready::GaveUp);
        let sidecars_before_ready =
            (0..index).filter(|&j| self.role(j) == Role::Sidecar).all(|j| settled(&self.procs[j]));
        if sidecars_before_ready {
            self.procs[index].state = State::Starting;
            actions.push(Action::Spawn(index));
        }
    }

    fn on_spawned(&mut self, index: usize, pid: i32, now: Time, actions: &mut Vec<Action>) {
        let spec = &self.plan.processes[index];
        if !self.born {
            self.born = true;
            if self.plan.pod.is_some() {
                actions.push(Action::Record(Milestone::Born));
            }
        }
        let proc = &mut self.procs[index];
        proc.state = State::Running { pid, since: now };
        if proc.restarts > 0 {
            info!("restarted sidecar {} (pid {pid}, restart {})", spec.name, proc.restarts);
            return;
        }
        match &spec.matcher {
            Some(matcher) => info!("found sidecar {} of another container: pid {pid}, {matcher}", spec.name),
            None => info!("started {} {} (pid {pid})", spec.role, spec.name),
        }
        if self.shutdown.is_some() {
            return;
        }
        proc.ready = match &spec.ready {
            Some(ready) => Ready::Probing {
                since: now,
                deadline: now + ready.timeout,
                attempts: 0,
                next: now,
                attempt_deadline: None,
                last_error: "no probe has answered yet".to_string(),
            },
            None => Ready::Yes,
        };
        self.drive_probe(index, now, actions);
    }

    /// Starts a due probe attempt, times out a slow one, and gives up at the deadline.
    fn drive_probe(&mut self, index: usize, now: Time, actions: &mut Vec<Action>) {
        let Some(ready) = &self.plan.processes[index].ready else { return };
        let Ready::Probing { deadline, attempts, next, attempt_deadline, last_error, .. } =
            &mut self.procs[index].ready
        else {
            return;
        };
        let id = CheckId { index, purpose: Purpose::Ready };
        if attempt_deadline.is_some_and(|d| d <= now) {
            actions.push(Action::CancelCheck(id));
            *attempt_deadline = None;
            *last_error = format!("no answer within {}", Show(ready.attempt_timeout));
            *next = now + ready.interval;
        }
        if *deadline <= now {
            let reason = format!("not ready within {}: {}: {last_error}", Show(ready.timeout), ready.probe);
            if attempt_deadline.is_some() {
                actions.push(Action::CancelCheck(id));
            }
            self.not_ready(index, &reason, actions);
            return;
        }
        if attempt_deadline.is_none() && *next <= now {
            *attempts += 1;
            *attempt_deadline = Some(now + ready.attempt_timeout);
            actions.push(Action::StartCheck(id));
        }
    }

    /// A sidecar that will not be ready: stop everything, or go on, as it asks.
    fn not_ready(&mut self, index: usize, reason: &str, actions: &mut Vec<Action>) {
        let spec = &self.plan.processes[index];
        self.procs[index].ready = Ready::GaveUp;
        let on_timeout = spec.ready.as_ref().map_or(OnTimeout::Fail, |r| r.on_timeout);
        match on_timeout {
            OnTimeout::Fail => {
                error!("sidecar {} is {reason}: stopping", spec.name);
                self.error_code.get_or_insert(NOT_READY);
                self.begin_shutdown(None, actions);
            }
            OnTimeout::Start => warn!("sidecar {} is {reason}: starting the rest anyway", spec.name),
        }
    }

    fn on_check(&mut self, id: CheckId, result: Result<(), String>, now: Time, actions: &mut Vec<Action>) {
        let plan = self.plan;
        let spec = &plan.processes[id.index];
        let proc = &mut self.procs[id.index];
        match (id.purpose, &mut proc.ready, proc.state) {
            (Purpose::Ready, Ready::Probing { since, attempts, next, attempt_deadline, last_error, .. }, _) => {
                if attempt_deadline.take().is_none() {
                    return;
                }
                match result {
                    Ok(()) => {
                        let took = Show(Duration::from_millis(now.saturating_sub(*since).as_millis() as u64));
                        info!("sidecar {} is ready after {took} ({attempts} probes)", spec.name);
                        proc.ready = Ready::Yes;
                    }
                    Err(e) => {
                        debug!("probe of {} failed: {e}", spec.name);
                        *last_error = e;
                        *next = now + spec.ready.as_ref().map_or(Duration::ZERO, |r| r.interval);
                    }
                }
            }
            (Purpose::Stop, _, State::Stopping { pid, since, deadline, hook_running: true }) => {
                proc.state = State::Stopping { pid, since, deadline, hook_running: false };
                match result {
                    Ok(()) => debug!("stop hook of {} succeeded; waiting for it to exit", spec.name),
                    Err(e) => {
                        // A hook that failed will not stop the process: the stop signal
                        // goes now, with a whole grace period of its own.
                        warn!("stop hook of {} failed ({e}): sending {} now", spec.name, spec.stop_signal);
                        actions.push(Action::Stop { pid, signo: spec.stop_signal, group: plan.signal_groups });
                        let deadline = now + spec.grace_period;
                        proc.state = State::Stopping { pid, since, deadline, hook_running: false };
                    }
                }
            }
            _ => {}
        }
    }

    fn on_exit(&mut self, pid: i32, status: ExitStatus, now: Time, actions: &mut Vec<Action>) {
        let Some(index) = self.procs.iter().position(|p| p.state.pid() == Some(pid)) else {
            if self.plan.report_reaped {
                warn!("Reaped zombie process with pid={pid}");
            } else {
                debug!("reaped orphan pid {pid} ({status})");
            }
            return;
        };
        let plan = self.plan;
        let spec = &plan.processes[index];
        let (since, hook_running) = match self.procs[index].state {
            State::Running { since, .. } | State::Killed { since, .. } => (since, false),
            State::Stopping { since, hook_running, .. } => (since, hook_running),
            _ => (now, false),
        };
        if hook_running {
            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Stop }));
        }
        self.procs[index].state = State::Gone;
        let ran_for = now.saturating_sub(since);
        let ran = Show(Duration::from_millis(ran_for.as_millis() as u64));
        let name = &spec.name;
        if spec.role == Role::Primary {
            info!("primary {name} exited with {status} after {ran}");
            if self.primary_code.is_none_or(|code| code == 0) {
                self.primary_code = Some(status.code());
            }
            let primaries_left = self.primary_alive();
            if status.code() != 0 && primaries_left && self.shutdown.is_none() {
                warn!("primary {name} failed: stopping the other primaries");
            }
            if status.code() != 0 || !primaries_left {
                self.begin_shutdown(None, actions);
            }
            return;
        }
        if self.shutdown.is_some() {
            info!("sidecar {name} exited with {status} after {ran}");
            return;
        }
        if matches!(self.procs[index].ready, Ready::Probing { .. } | Ready::No) {
            if let Ready::Probing { attempt_deadline: Some(_), .. } = self.procs[index].ready {
                actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Ready }));
            }
            self.not_ready(index, &format!("not ready: it exited with {status} after {ran}"), actions);
            return;
        }
        let proc = &mut self.procs[index];
        let may_restart = spec.max_restarts.is_none_or(|max| proc.restarts < max);
        match spec.on_exit {
            OnExit::Restart if may_restart => {
                if ran_for >= BACKOFF_RESET {
                    proc.streak = 0;
                }
                let delay = spec.restart_delay.saturating_mul(1 << proc.streak.min(16)).min(spec.max_restart_delay);
                proc.streak += 1;
                proc.restarts += 1;
                proc.state = State::Backoff { until: now + delay };
                warn!("sidecar {name} exited with {status} after {ran}: restarting it in {}", Show(delay));
            }
            OnExit::Ignore => warn!("sidecar {name} exited with {status} after {ran}: ignored, the primaries run on"),
            OnExit::Restart | OnExit::Fail => {
                let after = if spec.on_exit == OnExit::Restart {
                    format!(" and {} restarts", proc.restarts)
                } else {
                    String::new()
                };
                error!("sidecar {name} exited with {status} after {ran}{after}: stopping everything");
                self.error_code.get_or_insert(spec.exit_code.unwrap_or(status.code()));
                self.begin_shutdown(None, actions);
            }
        }
    }

    fn on_signal(&mut self, signo: Signo, now: Time, actions: &mut Vec<Action>) {
        if signo.asks_to_stop() {
            match self.shutdown {
                None => {
                    info!("received {signo}: stopping");
                    let any_primary_ran = (0..self.procs.len())
                        .any(|i| self.role(i) == Role::Primary && self.procs[i].state != State::Waiting);
                    if !any_primary_ran {
                        self.signal_code = Some(128 + signo.0);
                    }
                    self.begin_shutdown(Some(signo), actions);
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
        for index in 0..self.procs.len() {
            if let (Role::Primary, State::Running { pid, .. } | State::Stopping { pid, .. }) =
                (self.role(index), self.procs[index].state)
            {
                debug!("forwarding {signo} to {}", self.name(index));
                actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
            }
        }
    }

    fn on_tick(&mut self, now: Time, actions: &mut Vec<Action>) {
        if self.birth_deadline.is_some_and(|deadline| deadline <= now) {
            self.birth_deadline = None;
            let pod = self.plan.pod.as_ref();
            let deps = pod.map(|p| p.birth_deps.join(", ")).unwrap_or_default();
            let waited = Show(pod.map_or(Duration::ZERO, |p| p.birth_timeout));
            error!("birth deps not ready within {waited} (waiting for {deps}): stopping");
            self.error_code.get_or_insert(NOT_READY);
            self.begin_shutdown(None, actions);
        }
        for index in 0..self.procs.len() {
            match self.procs[index].state {
                State::Stopping { pid, since, deadline, hook_running } if deadline <= now => {
                    let spec = &self.plan.processes[index];
                    let how = match (&spec.stop_hook, hook_running) {
                        (Some(hook), true) => {
                            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Stop }));
                            format!("its stop hook ({hook})")
                        }
                        _ => spec.stop_signal.to_string(),
                    };
                    warn!("killing {}: still running {} after {how}", spec.name, Show(spec.grace_period));
                    self.kill(index, pid, since, actions);
                }
                State::Backoff { until } | State::Searching { retry: until }
                    if until <= now && self.shutdown.is_none() =>
                {
                    self.procs[index].state = State::Starting;
                    actions.push(Action::Spawn(index));
                }
                _ => {}
            }
            if self.shutdown.is_none() {
                self.drive_probe(index, now, actions);
            }
        }
        match self.sweep {
            Sweep::Terminating { deadline } if deadline <= now => {
                warn!("killing leftover processes: still running {} after SIGTERM", Show(self.plan.grace_period));
                self.kill_leftovers(now, actions);
            }
            Sweep::Killing { retry } if retry <= now => {
                warn!("leftover processes still there {} after SIGKILL: sending it again", Show(KILL_RETRY));
                self.kill_leftovers(now, actions);
            }
            _ => {}
        }
    }

    fn begin_shutdown(&mut self, primary_signal: Option<Signo>, actions: &mut Vec<Action>) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(Shutdown { primary_signal, by_signal: false, hurry: false });
        for index in 0..self.procs.len() {
            let proc = &mut self.procs[index];
            if matches!(proc.state, State::Waiting | State::Backoff { .. } | State::Searching { .. }) {
                proc.state = State::Gone;
            }
            if let Ready::Probing { attempt_deadline, .. } = proc.ready {
                if attempt_deadline.is_some() {
                    actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Ready }));
                }
                proc.ready = Ready::GaveUp;
            }
        }
    }

    /// Skips every remaining grace period: SIGKILL to all that is alive.
    fn hurry(&mut self, now: Time, actions: &mut Vec<Action>) {
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.hurry = true;
        }
        for index in 0..self.procs.len() {
            match self.procs[index].state {
                State::Running { pid, since } => self.kill(index, pid, since, actions),
                State::Stopping { pid, since, hook_running, .. } => {
                    if hook_running {
                        actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Stop }));
                    }
                    self.kill(index, pid, since, actions);
                }
                _ => {}
            }
        }
        if let Sweep::Terminating { .. } | Sweep::Pending = self.sweep {
            self.kill_leftovers(now, actions);
        }
    }

    /// SIGKILL to every descendant, again after [`KILL_RETRY`] while any is left.
    fn kill_leftovers(&mut self, now: Time, actions: &mut Vec<Action>) {
        actions.push(Action::SignalDescendants(SIGKILL));
        self.sweep = Sweep::Killing { retry: now + KILL_RETRY };
    }

    /// Moves the shutdown on: the primaries first; then the sidecars, in reverse start
    /// order or all at once; then whatever descendants are left.
    fn advance(&mut self, now: Time, actions: &mut Vec<Action>) {
        let Some(shutdown) = self.shutdown else { return };
        for index in 0..self.procs.len() {
            if self.role(index) == Role::Primary {
                self.stop(index, shutdown.primary_signal, now, actions);
            }
        }
        if self.primary_alive() {
            return;
        }
        let sidecars = (0..self.procs.len()).filter(|&i| self.role(i) == Role::Sidecar);
        match self.plan.shutdown {
            ShutdownOrder::Parallel => {
                for index in sidecars.collect::<Vec<_>>() {
                    self.stop(index, None, now, actions);
                }
            }
            ShutdownOrder::Ordered => {
                // Only the last-started sidecar still alive may be stopped now.
                if let Some(index) = sidecars.rev().find(|&i| self.procs[i].state.alive()) {
                    self.stop(index, None, now, actions);
                }
            }
        }
        if self.any_alive() || self.sweep != Sweep::NotYet {
            return;
        }
        self.sweep = Sweep::Pending;
        actions.push(Action::Reap);
    }

    /// SIGTERM to every descendant left, SIGKILL after the grace period (or at once).
    fn sweep_leftovers(&mut self, now: Time, actions: &mut Vec<Action>) {
        if self.shutdown.is_some_and(|s| s.hurry) {
            self.kill_leftovers(now, actions);
        } else {
            actions.push(Action::SignalDescendants(SIGTERM));
            self.sweep = Sweep::Terminating { deadline: now + self.plan.grace_period };
        }
    }

    /// Asks a running process to stop: with `signal` when given (the signal exeunt got,
    /// for primaries), else with its stop hook or stop signal.
    fn stop(&mut self, index: usize, signal: Option<Signo>, now: Time, actions: &mut Vec<Action>) {
        let State::Running { pid, since } = self.procs[index].state else { return };
        if self.shutdown.is_some_and(|s| s.hurry) {
            self.kill(index, pid, since, actions);
            return;
        }
        let spec = &self.plan.processes[index];
        let deadline = now + spec.grace_period;
        let grace = Show(spec.grace_period);
        let hook_running = match (&spec.stop_hook, signal) {
            (Some(hook), None) => {
                info!("stopping {} {} with its stop hook {hook} (grace {grace})", spec.role, spec.name);
                actions.push(Action::StartCheck(CheckId { index, purpose: Purpose::Stop }));
                true
            }
            (_, signal) => {
                let signo = signal.unwrap_or(spec.stop_signal);
                info!("sending {signo} to {} {} (grace {grace})", spec.role, spec.name);
                if spec.matcher.is_some() {
                    // An exeunt in that container exits with this container's status.
                    actions.push(Action::SignalWithStatus { pid, signo, status: self.exit_code() });
                } else {
                    actions.push(Action::Stop { pid, signo, group: self.plan.signal_groups });
                }
                false
            }
        };
        self.procs[index].state = State::Stopping { pid, since, deadline, hook_running };
    }

    fn kill(&mut self, index: usize, pid: i32, since: Time, actions: &mut Vec<Action>) {
        actions.push(Action::Signal { pid, signo: SIGKILL, group: true });
        self.procs[index].state = State::Killed { pid, since };
    }

    /// The code exeunt exits with, as far as it is decided now.
    fn exit_code(&self) -> i32 {
        let primary = self.primary_code.map(|code| self.plan.zero_codes.apply(code));
        self.error_code.or(primary).or(self.signal_code).unwrap_or(0)
    }

    fn finish(&mut self, actions: &mut Vec<Action>) {
        let code = self.exit_code();
        info!("all processes are gone: exiting with {code}");
        self.sweep = Sweep::Done;
        actions.push(Action::Exit(code));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Check, DEFAULT_GRACE, ProcessSpec, Readiness};

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
        let mut sup = Supervisor::new(plan, Time::ZERO);
        let mut actions = sup.start();
        while let [Action::Spawn(i)] = actions.as_slice() {
            let i = *i;
            actions = sup.handle(Event::Spawned { index: i, pid: 100 + i as i32 }, Time::ZERO);
        }
        assert!(actions.is_empty(), "{actions:?}");
        sup
    }

    fn term(pid: i32) -> Action {
        Action::Stop { pid, signo: SIGTERM, group: false }
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
        let mut sup = Supervisor::new(&plan, Time::ZERO);
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
            [Action::Reap]
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
        assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
    }

    #[test]
    fn sidecar_exit_before_the_primary_leaves_the_primary_running() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 1), SEC), []);
        assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), []);
        assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
    }

    #[test]
    fn stop_signal_goes_to_primaries_first_then_sidecars() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        let int = Signo(libc::SIGINT);
        assert_eq!(sup.handle(Event::Signal(int), SEC), [Action::Stop { pid: 101, signo: int, group: false }]);
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
        assert_eq!(sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGKILL) }, SEC), [Action::Reap]);
        let leftovers = Event::Reaped { children_left: true };
        assert_eq!(sup.handle(leftovers, SEC), [Action::SignalDescendants(SIGKILL)], "leftovers get no grace either");
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
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO), [Action::Spawn(1)]);
        let failed = Event::SpawnFailed { index: 1, code: 127, reason: "not found".into() };
        assert_eq!(sup.handle(failed, Time::ZERO), [term(10)]);
        assert_eq!(sup.handle(exited(10, 0), SEC), [Action::Reap]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(127)]);
    }

    #[test]
    fn leftover_descendants_get_sigterm_then_sigkill_after_grace() {
        let plan = plan(&[("job", Role::Primary)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 0), SEC), [Action::Reap]);
        // Only when children are left is it worth looking for them.
        assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), [Action::SignalDescendants(SIGTERM)]);
        assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE));
        assert_eq!(sup.handle(Event::Tick, SEC + DEFAULT_GRACE), [Action::SignalDescendants(SIGKILL)]);
        assert_eq!(sup.handle(exited(555, 0), SEC + DEFAULT_GRACE), []);
        assert_eq!(sup.handle(GONE, SEC + DEFAULT_GRACE), [Action::Exit(0)]);
        assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC + DEFAULT_GRACE), []);
    }

    #[test]
    fn a_descendant_that_outlives_the_sigkill_sweep_gets_sigkill_again() {
        // Found by fuzzing: not PID 1, a process forked while the sweep walked /proc was
        // never signalled, and exeunt waited for it with no deadline at all.
        let plan = plan(&[("job", Role::Primary)]);
        let mut sup = started(&plan);
        sup.handle(exited(100, 0), SEC);
        sup.handle(Event::Reaped { children_left: true }, SEC);
        let killed_at = SEC + DEFAULT_GRACE;
        assert_eq!(sup.handle(Event::Tick, killed_at), [Action::SignalDescendants(SIGKILL)]);
        assert_eq!(sup.handle(Event::Reaped { children_left: true }, killed_at), []);
        assert_eq!(sup.next_deadline(), Some(killed_at + KILL_RETRY));
        assert_eq!(sup.handle(Event::Tick, killed_at + KILL_RETRY), [Action::SignalDescendants(SIGKILL)]);
        assert_eq!(sup.handle(GONE, killed_at + KILL_RETRY), [Action::Exit(0)]);
        assert_eq!(sup.next_deadline(), None);
    }

    #[test]
    fn no_leftovers_means_no_search_for_them() {
        let plan = plan(&[("job", Role::Primary)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 0), SEC), [Action::Reap]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
    }

    #[test]
    fn stop_signal_before_any_primary_started_exits_as_killed_by_it() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = Supervisor::new(&plan, Time::ZERO);
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

    const MS: Duration = Duration::from_millis(1);

    fn probe(on_timeout: OnTimeout) -> Readiness {
        Readiness {
            probe: Check::File("/ready".into()),
            interval: 100 * MS,
            timeout: 2 * SEC,
            attempt_timeout: SEC,
            on_timeout,
        }
    }

    fn check(index: usize, purpose: Purpose) -> CheckId {
        CheckId { index, purpose }
    }

    fn done(index: usize, purpose: Purpose, result: Result<(), &str>) -> Event {
        Event::CheckDone { id: check(index, purpose), result: result.map_err(str::to_string) }
    }

    #[test]
    fn next_sidecar_starts_only_once_the_previous_one_is_ready() {
        let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar), ("log", Role::Sidecar)]);
        plan.processes[0].ready = Some(probe(OnTimeout::Fail));
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        assert_eq!(sup.start(), [Action::Spawn(0)]);
        // The first probe goes at once; a failure waits one interval.
        assert_eq!(
            sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO),
            [Action::StartCheck(check(0, Purpose::Ready))]
        );
        assert_eq!(sup.handle(done(0, Purpose::Ready, Err("refused")), 5 * MS), []);
        assert_eq!(sup.next_deadline(), Some(105 * MS));
        assert_eq!(sup.handle(Event::Tick, 105 * MS), [Action::StartCheck(check(0, Purpose::Ready))]);
        assert_eq!(sup.handle(done(0, Purpose::Ready, Ok(())), 110 * MS), [Action::Spawn(1)]);
        assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 11 }, 110 * MS), [Action::Spawn(2)]);
        assert_eq!(sup.next_deadline(), None, "nothing to wake up for once ready");
    }

    #[test]
    fn probe_attempt_without_answer_is_cancelled_at_its_attempt_timeout() {
        let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
        plan.processes[0].ready = Some(probe(OnTimeout::Fail));
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
        assert_eq!(sup.next_deadline(), Some(SEC));
        assert_eq!(sup.handle(Event::Tick, SEC), [Action::CancelCheck(check(0, Purpose::Ready))]);
        assert_eq!(sup.handle(Event::Tick, SEC + 100 * MS), [Action::StartCheck(check(0, Purpose::Ready))]);
    }

    #[test]
    fn sidecar_not_ready_in_time_stops_everything_and_exits_not_ready() {
        let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
        plan.processes[0].ready = Some(probe(OnTimeout::Fail));
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
        sup.handle(done(0, Purpose::Ready, Err("refused")), 10 * MS);
        assert_eq!(sup.handle(Event::Tick, 2 * SEC), [term(10)], "the primary never starts");
        sup.handle(exited(10, 0), 2 * SEC);
        assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(NOT_READY)]);
    }

    #[test]
    fn sidecar_not_ready_in_time_with_on_timeout_start_lets_the_primary_start() {
        let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
        plan.processes[0].ready = Some(probe(OnTimeout::Start));
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
        sup.handle(done(0, Purpose::Ready, Err("refused")), 10 * MS);
        assert_eq!(sup.handle(Event::Tick, 2 * SEC), [Action::Spawn(1)]);
    }

    #[test]
    fn sidecar_exiting_before_it_is_ready_is_a_readiness_failure() {
        let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
        plan.processes[0].ready = Some(probe(OnTimeout::Fail));
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
        assert_eq!(sup.handle(exited(10, 2), 50 * MS), [Action::CancelCheck(check(0, Purpose::Ready)), Action::Reap]);
        assert_eq!(sup.handle(GONE, 50 * MS), [Action::Exit(NOT_READY)]);
    }

    #[test]
    fn stop_signal_during_the_readiness_wait_cancels_the_probe_and_stops_the_sidecar() {
        let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
        plan.processes[0].ready = Some(probe(OnTimeout::Fail));
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
        assert_eq!(sup.handle(Event::Signal(SIGTERM), MS), [Action::CancelCheck(check(0, Purpose::Ready)), term(10)]);
        sup.handle(exited(10, 0), 2 * MS);
        assert_eq!(sup.handle(GONE, 2 * MS), [Action::Exit(143)]);
    }

    #[test]
    fn crashing_sidecar_restarts_with_doubling_back_off_reset_after_a_long_run() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        let mut now = SEC;
        let mut pid = 100;
        for expected in [100, 200, 400, 800] {
            assert_eq!(sup.handle(exited(pid, 1), now), []);
            assert_eq!(sup.next_deadline(), Some(now + expected * MS));
            now += expected * MS;
            assert_eq!(sup.handle(Event::Tick, now), [Action::Spawn(0)]);
            pid += 10;
            sup.handle(Event::Spawned { index: 0, pid }, now);
        }
        // A run of 10 s forgives the past crashes.
        now += 10 * SEC;
        sup.handle(exited(pid, 1), now);
        assert_eq!(sup.next_deadline(), Some(now + 100 * MS));
    }

    #[test]
    fn back_off_never_exceeds_30s() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        let mut now = SEC;
        for round in 0..20 {
            let pid = 1000 + round;
            if round == 0 {
                sup.handle(exited(100, 1), now);
            } else {
                sup.handle(Event::Spawned { index: 0, pid }, now);
                sup.handle(exited(pid, 1), now);
            }
            let delay = sup.next_deadline().expect("a restart is due") - now;
            assert!(delay <= 30 * SEC, "{delay:?}");
            now += delay;
            sup.handle(Event::Tick, now);
        }
    }

    #[test]
    fn back_off_follows_the_sidecars_restart_delays() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.processes[0].restart_delay = 20 * MS;
        plan.processes[0].max_restart_delay = 50 * MS;
        let mut sup = started(&plan);
        let (mut now, mut pid) = (SEC, 100);
        for expected in [20, 40, 50, 50] {
            sup.handle(exited(pid, 1), now);
            let delay = sup.next_deadline().expect("a restart is due") - now;
            assert_eq!(delay, expected * MS);
            now += delay;
            assert_eq!(sup.handle(Event::Tick, now), [Action::Spawn(0)]);
            pid += 1;
            sup.handle(Event::Spawned { index: 0, pid }, now);
        }
    }

    #[test]
    fn max_restarts_then_the_sidecar_fails_the_run_with_its_exit_code() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.processes[0].max_restarts = Some(1);
        plan.processes[0].exit_code = Some(42);
        let mut sup = started(&plan);
        sup.handle(exited(100, 1), SEC);
        sup.handle(Event::Tick, SEC + 100 * MS);
        sup.handle(Event::Spawned { index: 0, pid: 200 }, SEC + 100 * MS);
        assert_eq!(sup.handle(exited(200, 1), 2 * SEC), [term(101)]);
        sup.handle(Event::Exited { pid: 101, status: ExitStatus::Signal(SIGTERM) }, 2 * SEC);
        assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(42)]);
    }

    #[test]
    fn sidecar_with_on_exit_fail_stops_the_primary_and_exits_with_its_status() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.processes[0].on_exit = OnExit::Fail;
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 9), SEC), [term(101)]);
        sup.handle(exited(101, 0), SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(9)]);
    }

    #[test]
    fn sidecar_with_on_exit_ignore_is_left_gone() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.processes[0].on_exit = OnExit::Ignore;
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(100, 9), SEC), []);
        assert_eq!(sup.next_deadline(), None, "no restart is scheduled");
        assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
    }

    #[test]
    fn stop_hook_replaces_the_stop_signal_and_a_failed_hook_falls_through_at_once() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.processes[0].stop_hook = Some(Check::Exec(vec!["quit".into()]));
        plan.processes[0].grace_period = 5 * SEC;
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(101, 0), SEC), [Action::StartCheck(check(0, Purpose::Stop))]);
        assert_eq!(sup.next_deadline(), Some(6 * SEC));
        assert_eq!(sup.handle(done(0, Purpose::Stop, Err("refused")), 2 * SEC), [term(100)]);
        assert_eq!(sup.next_deadline(), Some(7 * SEC), "the stop signal gets a whole grace period");
    }

    #[test]
    fn process_that_exits_during_its_stop_hook_cancels_the_hook() {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.processes[0].stop_hook = Some(Check::Exec(vec!["quit".into()]));
        let mut sup = started(&plan);
        sup.handle(exited(101, 0), SEC);
        assert_eq!(sup.handle(exited(100, 0), SEC), [Action::CancelCheck(check(0, Purpose::Stop)), Action::Reap]);
    }

    #[test]
    fn sidecars_stop_in_reverse_start_order_each_after_the_next_exited() {
        let plan = plan(&[("job", Role::Primary), ("a", Role::Sidecar), ("b", Role::Sidecar), ("c", Role::Sidecar)]);
        let mut sup = started(&plan);
        // a=100, b=101, c=102, job=103
        assert_eq!(sup.handle(exited(103, 0), SEC), [term(102)]);
        assert_eq!(sup.handle(exited(102, 0), SEC), [term(101)]);
        assert_eq!(sup.handle(exited(101, 0), SEC), [term(100)]);
    }

    #[test]
    fn parallel_shutdown_stops_every_sidecar_at_once() {
        let mut plan = plan(&[("job", Role::Primary), ("a", Role::Sidecar), ("b", Role::Sidecar)]);
        plan.shutdown = ShutdownOrder::Parallel;
        let mut sup = started(&plan);
        assert_eq!(sup.handle(exited(102, 0), SEC), [term(100), term(101)]);
    }

    #[test]
    fn a_sidecar_restarting_when_the_primary_exits_is_not_started_again() {
        let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        let mut sup = started(&plan);
        sup.handle(exited(100, 1), SEC);
        assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
        assert_eq!(sup.handle(Event::Tick, 2 * SEC), []);
    }

    fn pod_plan(birth_deps: &[&str]) -> Plan {
        let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
        plan.pod = Some(crate::plan::Pod {
            name: "queue".into(),
            graveyard: "/graveyard".into(),
            death_deps: vec!["forwarder".into()],
            birth_deps: birth_deps.iter().map(|d| d.to_string()).collect(),
            birth_timeout: 30 * SEC,
        });
        plan
    }

    #[test]
    fn nothing_starts_before_the_birth_deps_are_ready() {
        let plan = pod_plan(&["db"]);
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        assert_eq!(sup.start(), []);
        assert_eq!(sup.next_deadline(), Some(30 * SEC));
        assert_eq!(sup.handle(Event::BirthDepsReady, SEC), [Action::Spawn(0)]);
        assert_eq!(
            sup.handle(Event::Spawned { index: 0, pid: 10 }, SEC),
            [Action::Record(Milestone::Born), Action::Spawn(1)]
        );
        assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 11 }, SEC), [Action::Record(Milestone::Ready)]);
    }

    #[test]
    fn birth_deps_not_ready_in_time_end_the_run_before_anything_starts() {
        let plan = pod_plan(&["db"]);
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        assert_eq!(sup.handle(Event::Tick, 30 * SEC), [Action::Reap]);
        assert_eq!(sup.handle(GONE, 30 * SEC), [Action::Exit(NOT_READY)]);
    }

    #[test]
    fn a_death_dep_that_died_before_the_start_means_nothing_starts_and_its_code_is_kept() {
        let plan = pod_plan(&["db"]);
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        let died = Event::DeathDepDied { name: "forwarder".into(), code: 3 };
        assert_eq!(sup.handle(died, Time::ZERO), [Action::Reap]);
        assert_eq!(sup.start(), []);
        assert_eq!(sup.handle(Event::BirthDepsReady, Time::ZERO), []);
        assert_eq!(sup.handle(GONE, Time::ZERO), [Action::Exit(3)]);
    }

    #[test]
    fn a_death_dep_dying_stops_everything_and_its_code_wins_over_the_stopped_primary() {
        let plan = pod_plan(&[]);
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::Spawned { index: 0, pid: 100 }, Time::ZERO);
        sup.handle(Event::Spawned { index: 1, pid: 101 }, Time::ZERO);
        let died = Event::DeathDepDied { name: "forwarder".into(), code: 0 };
        assert_eq!(sup.handle(died, SEC), [term(101)]);
        sup.handle(Event::Exited { pid: 101, status: ExitStatus::Signal(SIGTERM) }, SEC);
        sup.handle(exited(100, 0), SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)], "the forwarder succeeded, so the pod succeeds");
    }

    #[test]
    fn a_birth_dep_that_died_before_it_was_ready_ends_the_wait() {
        let plan = pod_plan(&["db"]);
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::BirthDepDied { name: "db".into(), code: 2 }, SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(NOT_READY)]);
    }

    #[test]
    fn stop_signal_carrying_a_status_makes_exeunt_exit_with_it() {
        let plan = plan(&[("job", Role::Primary)]);
        let mut sup = started(&plan);
        assert_eq!(sup.handle(Event::StopWithStatus { signo: SIGTERM, status: 4 }, SEC), [term(100)]);
        sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGTERM) }, SEC);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(4)]);
    }

    fn matched_plan() -> Plan {
        let mut plan = plan(&[("job", Role::Primary), ("mesh", Role::Sidecar)]);
        plan.processes[0].matcher = Some(crate::plan::Matcher::Comm("envoy".into()));
        plan.processes[0].command.clear();
        plan.match_timeout = Some(SEC);
        plan
    }

    #[test]
    fn a_sidecar_of_another_container_is_looked_for_until_it_appears() {
        let plan = matched_plan();
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        assert_eq!(sup.start(), [Action::Spawn(0)]);
        assert_eq!(sup.handle(Event::NotFound { index: 0 }, Time::ZERO), []);
        assert_eq!(sup.next_deadline(), Some(100 * MS));
        assert_eq!(sup.handle(Event::Tick, 100 * MS), [Action::Spawn(0)]);
        assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 50 }, 100 * MS), [Action::Spawn(1)]);
        // Once the primary is done, the stop signal carries its status to that container.
        sup.handle(Event::Spawned { index: 1, pid: 51 }, 100 * MS);
        assert_eq!(sup.handle(exited(51, 3), SEC), [Action::SignalWithStatus { pid: 50, signo: SIGTERM, status: 3 }]);
        assert_eq!(sup.handle(Event::Exited { pid: 50, status: ExitStatus::Unknown }, SEC), [Action::Reap]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(3)]);
    }

    #[test]
    fn a_search_that_ends_after_the_shutdown_began_is_not_resumed() {
        // Found by fuzzing: the search went on with a deadline no Tick acted on, so the
        // timer fired again and again and exeunt never exited.
        let mut plan = plan(&[("mesh", Role::Sidecar), ("job", Role::Primary)]);
        plan.processes[0].matcher = Some(crate::plan::Matcher::Comm("mesh".into()));
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        assert_eq!(sup.start(), [Action::Spawn(0)]);
        sup.handle(Event::NotFound { index: 0 }, Time::ZERO);
        assert_eq!(sup.handle(Event::Tick, 100 * MS), [Action::Spawn(0)]);
        assert_eq!(sup.handle(Event::Signal(SIGTERM), 100 * MS), []);
        assert_eq!(sup.handle(Event::NotFound { index: 0 }, 100 * MS), [Action::Reap]);
        assert_eq!(sup.next_deadline(), None);
        assert_eq!(sup.handle(GONE, 100 * MS), [Action::Exit(128 + libc::SIGTERM)]);
    }

    #[test]
    fn a_sidecar_of_another_container_that_never_appears_fails_the_start() {
        let plan = matched_plan();
        let mut sup = Supervisor::new(&plan, Time::ZERO);
        sup.start();
        sup.handle(Event::NotFound { index: 0 }, Time::ZERO);
        assert_eq!(sup.handle(Event::Tick, SEC), [Action::Spawn(0)]);
        assert_eq!(sup.handle(Event::NotFound { index: 0 }, SEC), [Action::Reap]);
        assert_eq!(sup.handle(GONE, SEC), [Action::Exit(NOT_READY)]);
    }
}
