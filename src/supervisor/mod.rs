//! Where decisions are made. The supervisor is a state machine: events in (a process
//! started or exited, a signal arrived, a check answered, a tombstone changed, time
//! passed), actions out (start, signal, check, record, exit). It never touches the OS,
//! so every lifecycle rule is testable without processes; the event loop carries the
//! actions out and feeds back what happened.
//!
//! It is made of parts that own their state: each process's life and readiness
//! ([`process`]), the shutdown and the sweep ([`shutdown`]), the pod's gating
//! ([`pod`]) and the exit code ([`verdict`]). What an exit means is decided in
//! [`exits`], what a signal from outside means in [`forwarding`]. A part with deadlines lists each one
//! once, beside the duty that falls due then ([`alarms`]); after every event the supervisor does
//! every duty whose deadline has passed, and the earliest deadline left is the one
//! the event loop waits for. A deadline nobody acts on cannot be written.

mod alarms;
mod exits;
mod forwarding;
mod leftovers;
mod liveness;
mod pod;
mod probes;
mod process;
mod shutdown;
mod status;
mod tasks;
mod verdict;

use std::time::Duration;

use log::{error, info, warn};

use crate::duration::Show;
use crate::events::{Action, CheckFailure, CheckId, Event, Purpose, Time};
use crate::plan::{Plan, Role};
use crate::signo::{SIGKILL, Signo};
use alarms::Alarms;
use leftovers::Leftovers;
use pod::{News, PodGate};
use process::{Duty, How, Proc, Ready, State};
use shutdown::Shutdown;
use verdict::Verdict;

/// Exeunt's exit code when a sidecar was not ready in time, or exited before it was.
pub const NOT_READY: i32 = 1;

/// How long to wait before looking again for a sidecar of another container.
const SEARCH_INTERVAL: Duration = Duration::from_millis(100);

/// Duties done for one process in one turn, at most: each duty moves its deadline on,
/// so more would mean a part that does not.
const MAX_DUTIES_PER_TURN: usize = 8;

/// The supervisor of one plan.
pub struct Supervisor<'p> {
    plan: &'p Plan,
    procs: Vec<Proc>,
    shutdown: Shutdown,
    leftovers: Leftovers,
    verdict: Verdict,
    pod: PodGate<'p>,
    /// Where the container stands, and since when, for `--status`.
    phase: (status::Phase, Time),
}

impl<'p> Supervisor<'p> {
    /// A supervisor of `plan`, created at `now` (the birth deps' wait starts then).
    pub fn new(plan: &'p Plan, now: Time) -> Supervisor<'p> {
        let mut proc = Proc::new();
        proc.shown.1 = now;
        Supervisor {
            plan,
            procs: vec![proc; plan.processes.len()],
            shutdown: Shutdown::new(),
            leftovers: Leftovers::new(),
            verdict: Verdict::default(),
            pod: PodGate::new(plan.pod.as_ref(), plan.notify_socket.is_some(), now),
            phase: (status::Phase::Starting, now),
        }
    }

    /// The first actions at `now`: start the first processes, and probe the first
    /// gates (once the birth deps are ready).
    pub fn start(&mut self, now: Time) -> Vec<Action> {
        let mut actions = Vec::new();
        self.pod.announce();
        if !self.shutdown.is_begun() && self.start_next(now, &mut actions) {
            self.do_what_is_due(now, &mut actions);
        }
        actions
    }

    /// The earliest deadline the event loop must wake up for, if any.
    pub fn next_deadline(&self) -> Option<Time> {
        let procs = self.procs.iter().filter_map(Proc::deadline);
        procs.chain(self.shutdown.deadline()).chain(self.leftovers.deadline()).chain(self.pod.deadline()).min()
    }

    /// Takes one event at time `now` and returns what to do about it.
    pub fn handle(&mut self, event: Event, now: Time) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.shutdown.is_done() {
            self.turn(event, now, &mut actions);
            self.observe(now);
        }
        actions
    }

    /// One event, and everything that follows from it at `now`.
    fn turn(&mut self, event: Event, now: Time, actions: &mut Vec<Action>) {
        if self.on(event, now, actions) {
            return;
        }
        self.do_what_is_due(now, actions);
        let done = actions.len();
        let mut gates = false;
        if !self.shutdown.is_begun() {
            gates = self.start_next(now, actions);
            self.note_ready(actions);
        }
        self.advance(now, actions);
        // A stop action of no grace at all is due at once, as is a gate's first probe.
        // What is new since the pass above came with an action, a gate, or the shutdown.
        if actions.len() > done || gates || self.shutdown.is_begun() {
            self.do_what_is_due(now, actions);
        }
    }

    /// The event itself. Returns true when the run is over.
    fn on(&mut self, event: Event, now: Time, actions: &mut Vec<Action>) -> bool {
        match event {
            Event::Spawned { index, pid } => self.on_spawned(index, pid, now, actions),
            Event::SpawnFailed { index, code, reason } => {
                error!(subject = self.name(index); "cannot start {}: {reason}", self.name(index));
                self.procs[index].state = State::Gone;
                self.verdict.fail(code);
                self.begin_shutdown(None, actions);
            }
            Event::Exited { pid, status } => self.on_exit(pid, status, now, actions),
            Event::Reaped { children_left } => {
                if !children_left && self.shutdown.is_begun() && !self.any_alive() {
                    self.finish(actions);
                    return true;
                }
                if children_left && self.shutdown.pending() {
                    // Daemons or orphans the plan's processes left behind: they go too.
                    // Only now, because finding them takes a walk through /proc when
                    // exeunt is not PID 1.
                    self.shutdown.sweep_leftovers(self.plan.grace_period, now, actions);
                }
            }
            Event::Signal(signo) => self.on_signal(signo, now, actions),
            Event::StopWithStatus { signo, status, sender } => {
                info!("received {signo} carrying exit status {status} from another container's exeunt (pid {sender})");
                self.verdict.fail(status);
                self.on_signal(signo, now, actions);
            }
            Event::NotFound { index } => self.on_not_found(index, now, actions),
            Event::Tombstone { container, ready, died } => {
                if let Some(news) = self.pod.tombstone(&container, ready, died.as_ref()) {
                    self.on_news(news, actions);
                }
            }
            Event::LeftoversUnseen => self.shutdown.unseen(),
            Event::Leftovers { members } => self.leftovers.found(&members, self.plan, now),
            Event::GroupLeft { index, members } => self.group_left(index, &members),
            Event::CheckDone { id, result } => self.on_check(id, result, now, actions),
            Event::Notified { index, note } => self.notified(index, note, now, actions),
            Event::Request { client, request } => {
                let reply = self.answer(request, now, actions);
                actions.push(Action::Answer { client, reply });
            }
            // Time passed: what fell due is done below, as after any event.
            Event::Tick => {}
        }
        false
    }

    /// Does every duty whose deadline has passed at `now`.
    fn do_what_is_due(&mut self, now: Time, actions: &mut Vec<Action>) {
        if let Some(pod::Duty::BirthTimeout) = self.pod.due(now) {
            let reason = self.pod.time_out();
            error!("{reason}: stopping");
            self.verdict.fail(NOT_READY);
            self.begin_shutdown(None, actions);
        }
        for index in 0..self.procs.len() {
            for _ in 0..MAX_DUTIES_PER_TURN {
                let Some(duty) = self.procs[index].due(now) else { break };
                self.do_duty(index, duty, now, actions);
            }
        }
        match self.shutdown.due(now) {
            Some(shutdown::Duty::PassOn(_)) => {
                if let Some(signo) = self.shutdown.release() {
                    info!("the drain delay after {signo} is over: stopping");
                    self.begin_shutdown(Some(signo), actions);
                    self.shutdown.mark_by_signal();
                }
            }
            Some(shutdown::Duty::KillAgain) if self.shutdown.is_blind() => {
                warn!("exiting without knowing whether all processes left behind are gone: /proc cannot be read");
                self.finish(actions);
                return;
            }
            Some(duty) => self.shutdown.ring(duty, self.plan.grace_period, now, actions),
            None => {}
        }
        if let Some(duty) = self.leftovers.due(now) {
            self.leftovers.ring(duty, actions);
        }
    }

    fn do_duty(&mut self, index: usize, duty: Duty, now: Time, actions: &mut Vec<Action>) {
        if let Duty::Live(duty) = duty {
            return self.live_duty(index, duty, now, actions);
        }
        let plan = self.plan;
        let spec = &plan.processes[index];
        let id = CheckId { index, purpose: Purpose::Ready };
        let proc = &mut self.procs[index];
        match (duty, &spec.ready) {
            (Duty::Kill, _) => {
                let State::Stopping { pid, since, asked, how, deadline: Some(deadline) } = proc.state else { return };
                let how = match how {
                    How::Hook { running } => {
                        if running {
                            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Stop }));
                        }
                        let hook = spec.stop_hook.as_ref().map(ToString::to_string).unwrap_or_default();
                        format!("its stop hook ({hook})")
                    }
                    How::Signal(signo) => signo.to_string(),
                    How::Nothing => "a stop signal it ignores".to_string(),
                };
                warn!(subject = spec.name.as_str(); "killing {}: still running {} after {how}", spec.name, Show(deadline.saturating_sub(asked)));
                self.kill(index, pid, since, actions);
            }
            (Duty::Start, _) => {
                proc.state = State::Starting;
                actions.push(Action::Spawn(index));
            }
            (Duty::KillStrays, _) => {
                let State::Clearing { pgid, until, .. } = proc.state else { return };
                warn!(subject = spec.name.as_str(); "killing what sidecar {} left in its process group: {} still running {} after {}", spec.name, proc.strays.len(), Show(spec.grace_period), spec.stop_signal);
                actions.push(Action::SignalGroup { pgid, signo: crate::signo::SIGKILL });
                proc.strays.clear();
                proc.state = State::Backoff { until };
            }
            (Duty::AbandonAttempt, Some(ready)) if proc.watching() => {
                actions.push(Action::CancelCheck(id));
                let change = proc.watch_answered(Err(CheckFailure::NoAnswerWithin(ready.attempt_timeout)), ready, now);
                Self::watched(spec, ready, change);
            }
            (Duty::AbandonAttempt, Some(ready)) => proc.abandon_attempt(ready, id, now, actions),
            (Duty::Attempt, Some(ready)) => proc.attempt(ready, id, now, actions),
            (Duty::GiveUp, Some(ready)) => {
                let reason = proc.give_up(ready, id, actions);
                self.not_ready(index, &reason, actions);
            }
            // A probe's duties without a probe: nothing can be due.
            (Duty::AbandonAttempt | Duty::Attempt | Duty::GiveUp, None) => proc.ready = Ready::GaveUp(None),
            (Duty::Watchdog, _) => self.watchdog_missed(index, now, actions),
            (Duty::TaskTimeout, _) => self.task_timed_out(index, now, actions),
            (Duty::Live(_), _) => {}
        }
    }

    /// Records, once, that every process has started and every sidecar is ready.
    fn note_ready(&mut self, actions: &mut Vec<Action>) {
        // Called after every event, so once recorded it costs nothing (think of a burst
        // of thousands of reaped orphans).
        if self.pod.is_ready() || self.pod.waiting() {
            return;
        }
        let settled = |p: &Proc| {
            !matches!(p.state, State::Waiting | State::Starting | State::Searching { .. })
                && (p.ready != Ready::No || p.state == State::Gone)
        };
        let sidecars_ready = (0..self.procs.len()).all(|i| self.lets_the_next_start(i));
        if sidecars_ready && self.procs.iter().all(settled) {
            // Sidecars whose start went on without them (`on_timeout = "start"`).
            let plan = self.plan;
            let given_up: Vec<&str> = (0..self.procs.len())
                .filter(|&i| matches!(self.procs[i].ready, Ready::GaveUp(Some(_))))
                .map(|i| plan.processes[i].name.as_str())
                .collect();
            self.pod.ready(&given_up, actions);
        }
    }

    /// Whether what comes after the process at `index` may start, as far as it goes: a
    /// sidecar passed its first probing (or the start went on without it), a task
    /// completed.
    fn lets_the_next_start(&self, index: usize) -> bool {
        match self.role(index) {
            Role::Sidecar | Role::Gate => self.procs[index].settled(),
            Role::Task => self.procs[index].completed(),
            Role::Primary => true,
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

    /// Starts every waiting process whose `after` are all met: each sidecar ready, each
    /// task completed, each gate passed. Those with no path between them start
    /// together. A gate starts by being probed: returns whether one did, since its
    /// first attempt is due at once.
    fn start_next(&mut self, now: Time, actions: &mut Vec<Action>) -> bool {
        if self.pod.waiting() {
            return false;
        }
        let mut gates = false;
        for index in 0..self.procs.len() {
            let spec = &self.plan.processes[index];
            if self.procs[index].state != State::Waiting || !spec.after.iter().all(|&j| self.lets_the_next_start(j)) {
                continue;
            }
            let proc = &mut self.procs[index];
            if spec.role == Role::Gate {
                let probe = spec.ready.as_ref().map(|r| r.probe.to_string()).unwrap_or_default();
                info!(subject = spec.name.as_str(); "waiting for gate {}: {probe}", spec.name);
                proc.state = State::Gate;
                proc.start_probing(spec.ready.as_ref(), true, now);
                gates = true;
            } else {
                proc.state = State::Starting;
                actions.push(Action::Spawn(index));
            }
        }
        gates
    }

    fn on_spawned(&mut self, index: usize, pid: i32, now: Time, actions: &mut Vec<Action>) {
        let spec = &self.plan.processes[index];
        self.pod.born(actions);
        let proc = &mut self.procs[index];
        proc.state = State::Running { pid, since: now };
        proc.says = None;
        proc.task_deadline = spec.timeout.map(|timeout| now + timeout);
        let restarts = proc.restarts + proc.asked_restarts;
        if restarts > 0 {
            info!(subject = spec.name.as_str(); "restarted sidecar {} (pid {pid}, restart {restarts})", spec.name);
            if !self.shutdown.is_begun() {
                // Probed again, to tell its readiness; only a first probing holds the
                // start of the rest up.
                let first = proc.first_probing();
                proc.start_probing(spec.ready.as_ref(), first, now);
                proc.arm_live(spec.live.as_ref(), now);
            }
            return;
        }
        match &spec.matcher {
            Some(matcher) => {
                info!(subject = spec.name.as_str(); "found sidecar {} of another container: pid {pid}, {matcher}", spec.name)
            }
            None => info!(subject = spec.name.as_str(); "started {} {} (pid {pid})", spec.role, spec.name),
        }
        if !self.shutdown.is_begun() {
            // Its first probe attempt is due at once.
            proc.start_probing(spec.ready.as_ref(), true, now);
            proc.arm_live(spec.live.as_ref(), now);
        }
    }

    /// No process of another container matches this sidecar yet: look again soon, or
    /// give up once it has taken the match timeout.
    fn on_not_found(&mut self, index: usize, now: Time, actions: &mut Vec<Action>) {
        let waited = self.plan.match_timeout();
        let deadline = *self.procs[index].search_deadline.get_or_insert(now + waited);
        if self.shutdown.is_begun() {
            // The shutdown began while this search was under way: nothing to stop.
            self.procs[index].state = State::Gone;
        } else if now >= deadline {
            let spec = &self.plan.processes[index];
            let matcher = spec.matcher.as_ref().map(ToString::to_string).unwrap_or_default();
            self.procs[index].state = State::Gone;
            let reason = format!("not there: no process with {matcher} appeared within {}", Show(waited));
            self.not_ready(index, &reason, actions);
        } else {
            self.procs[index].state = State::Searching { retry: now + SEARCH_INTERVAL };
        }
    }

    /// What another container's tombstone means for this one.
    fn on_news(&mut self, news: News, actions: &mut Vec<Action>) {
        match news {
            News::BirthDepsReady => {
                if self.pod.end_wait() {
                    info!("birth deps are ready: starting");
                }
            }
            News::BirthDepDied { name, code } => {
                if self.pod.end_wait() {
                    error!("birth dep {name} died (exit code {code}) before it was ready: stopping");
                    self.verdict.fail(NOT_READY);
                    self.begin_shutdown(None, actions);
                }
            }
            News::DeathDepDied { name, code } => {
                // The kubexit fork's KUBEXIT_IGNORE_CODE_ON_DEATH_DEPS: a container
                // stopped for its death dep's sake has done its part.
                let ignore = self.plan.pod.as_ref().is_some_and(|pod| pod.ignore_death_dep_code);
                let exit = if ignore { 0 } else { code };
                if !self.shutdown.is_begun() {
                    info!("death dep {name} died with exit code {code}: stopping, to exit with {exit}");
                }
                self.pod.end_wait();
                self.verdict.fail(exit);
                self.begin_shutdown(None, actions);
            }
        }
    }

    /// Begins the shutdown: nothing more starts, the birth wait and probes end.
    fn begin_shutdown(&mut self, primary_signal: Option<Signo>, actions: &mut Vec<Action>) {
        if !self.shutdown.begin(primary_signal) {
            return;
        }
        if self.plan.notify_socket.is_some() {
            actions.push(Action::Record(crate::events::Milestone::Stopping));
        }
        self.pod.end_wait();
        for index in 0..self.procs.len() {
            let proc = &mut self.procs[index];
            proc.end_live(index, actions);
            // What a sidecar left in its group goes with the shutdown's own sweep.
            if matches!(
                proc.state,
                State::Waiting | State::Backoff { .. } | State::Clearing { .. } | State::Searching { .. }
            ) {
                proc.state = State::Gone;
            }
            if let Ready::Probing { .. } | Ready::Watching { .. } = proc.ready {
                if proc.probing_now() {
                    actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Ready }));
                }
                proc.ready = if proc.watching() { Ready::Lost } else { Ready::GaveUp(None) };
            }
        }
    }

    /// Skips every remaining grace period: SIGKILL to all that is alive.
    fn hurry(&mut self, now: Time, actions: &mut Vec<Action>) {
        for index in 0..self.procs.len() {
            match self.procs[index].state {
                State::Running { pid, since } => self.kill(index, pid, since, actions),
                State::Stopping { pid, since, how, .. } => {
                    if how == (How::Hook { running: true }) {
                        actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Stop }));
                    }
                    self.kill(index, pid, since, actions);
                }
                _ => {}
            }
        }
        self.shutdown.hurry(now, actions);
        self.leftovers.hurry(actions);
    }

    /// Moves the shutdown on: the primaries first; then the sidecars, in reverse start
    /// order or all at once; then whatever descendants are left.
    fn advance(&mut self, now: Time, actions: &mut Vec<Action>) {
        let Some(begun) = self.shutdown.begun() else { return };
        let sidecars_wait = !self.primary_alive()
            && (0..self.procs.len())
                .any(|i| self.role(i) != Role::Primary && matches!(self.procs[i].state, State::Running { .. }))
            && !begun.hurry
            && self.leftovers.hold_sidecars(actions);
        for index in shutdown::to_stop(self.plan, &self.procs) {
            if sidecars_wait && self.role(index) != Role::Primary {
                continue;
            }
            match (self.role(index), begun.primary_signal) {
                (Role::Primary, Some(received)) if !begun.hurry => self.ask_primary(index, received, now, actions),
                _ => self.stop(index, now, actions),
            }
        }
        if !self.any_alive() {
            self.shutdown.all_gone(actions);
        }
    }

    /// Asks a running process to stop, as exeunt decided: with its stop hook or stop
    /// signal, then SIGKILL after its grace period.
    fn stop(&mut self, index: usize, now: Time, actions: &mut Vec<Action>) {
        let State::Running { pid, since } = self.procs[index].state else { return };
        self.procs[index].end_live(index, actions);
        if self.shutdown.hurried() {
            self.kill(index, pid, since, actions);
            return;
        }
        let spec = &self.plan.processes[index];
        let deadline = Some(now + spec.grace_period);
        let grace = Show(spec.grace_period);
        let how = match &spec.stop_hook {
            Some(hook) => {
                info!(subject = spec.name.as_str(); "stopping {} {} with its stop hook {hook} (grace {grace})", spec.role, spec.name);
                actions.push(Action::StartCheck(CheckId { index, purpose: Purpose::Stop }));
                How::Hook { running: true }
            }
            None => {
                let signo = spec.stop_signal;
                info!(subject = spec.name.as_str(); "sending {signo} to {} {} (grace {grace})", spec.role, spec.name);
                if spec.matcher.is_some() {
                    // An exeunt in that container exits with this container's status.
                    let status = self.verdict.code(&self.plan.zero_codes);
                    actions.push(Action::SignalWithStatus { pid, signo, status });
                } else {
                    actions.push(Action::Stop { pid, signo, group: self.plan.signal_groups });
                }
                How::Signal(signo)
            }
        };
        self.procs[index].state = State::Stopping { pid, since, asked: now, how, deadline };
    }

    fn kill(&mut self, index: usize, pid: i32, since: Time, actions: &mut Vec<Action>) {
        actions.push(Action::Signal { pid, signo: SIGKILL, group: true });
        self.procs[index].state = State::Killed { pid, since };
    }

    fn finish(&mut self, actions: &mut Vec<Action>) {
        let code = self.verdict.code(&self.plan.zero_codes);
        info!("all processes are gone: exiting with {code}");
        self.shutdown.finish();
        actions.push(Action::Exit(code));
    }
}

#[cfg(test)]
mod tests;
