//! How signals from outside reach the primaries: passed on as they came (no role map,
//! as tini does) or as each primary's stop signal or stop hook, through its rewrite
//! table, held back for the drain delay, and, as dumb-init does, job control. The
//! runtime that sends a stop signal keeps the deadline; exeunt adds one only when the
//! role map asks (`kill_primaries_after`).

use std::time::Duration;

use log::{debug, info, warn};

use super::Supervisor;
use super::process::{How, State};
use crate::duration::Show;
use crate::events::{Action, CheckId, Purpose, Time};
use crate::plan::Role;
use crate::signo::Signo;

impl Supervisor<'_> {
    pub(super) fn on_signal(&mut self, signo: Signo, now: Time, actions: &mut Vec<Action>) {
        if self.plan.job_control && matches!(signo.0, libc::SIGTSTP | libc::SIGTTOU | libc::SIGTTIN) {
            // dumb-init's job control: Ctrl-Z stops the child, then exeunt itself, so
            // that the shell that started them sees them stopped.
            self.pass_on(signo, actions);
            actions.push(Action::SuspendSelf);
            return;
        }
        if signo.asks_to_stop() && !self.rewritten_by_every_running_primary(signo) {
            let any_primary_ran =
                (0..self.procs.len()).any(|i| self.role(i) == Role::Primary && self.procs[i].state != State::Waiting);
            match self.shutdown.begun() {
                None if self.shutdown.holding() && !self.plan.kill_on_second_signal => {
                    info!("received {signo}: already waiting out the drain delay");
                }
                None if any_primary_ran && self.plan.stop_delay > Duration::ZERO && !self.shutdown.holding() => {
                    // Endpoints are taken out of the load balancer meanwhile: everything
                    // keeps running, and the signal is passed on afterwards.
                    let delay = self.plan.stop_delay;
                    info!("received {signo}: passing it on in {} (stop_delay)", Show(delay));
                    self.shutdown.hold(signo, now + delay);
                }
                None => {
                    info!("received {signo}: stopping");
                    if !any_primary_ran {
                        self.verdict.stopped_before_start(signo);
                    }
                    self.begin_shutdown(Some(signo), actions);
                    self.shutdown.mark_by_signal();
                }
                Some(begun) if self.plan.kill_on_second_signal && begun.by_signal => {
                    warn!("received {signo} again: killing what is left now");
                    self.hurry(now, actions);
                }
                Some(_) => {
                    // Asked again, the primaries are asked again: the runtime keeps the
                    // deadline, exeunt only passes its requests on.
                    info!("received {signo}: already stopping; passing it on");
                    self.shutdown.mark_by_signal();
                    self.ask_primaries_again(signo, actions);
                }
            }
            return;
        }
        // A stop signal that every primary gets as something else is no request to
        // stop: like any other, it is passed on.
        if signo.is_forwarded() {
            self.pass_on(signo, actions);
        }
    }

    /// Whether some primary runs, and every running one gets something else for `signo`.
    fn rewritten_by_every_running_primary(&self, signo: Signo) -> bool {
        let mut running = (0..self.procs.len())
            .filter(|&i| self.role(i) == Role::Primary && matches!(self.procs[i].state, State::Running { .. }))
            .peekable();
        running.peek().is_some() && running.all(|i| self.plan.processes[i].rewritten(signo).is_some())
    }

    /// Passes a signal on to every primary there is, as its rewrite table says.
    pub(super) fn pass_on(&self, signo: Signo, actions: &mut Vec<Action>) {
        for index in 0..self.procs.len() {
            if let (Role::Primary, State::Running { pid, .. } | State::Stopping { pid, .. }) =
                (self.role(index), self.procs[index].state)
                && let Some(signo) = self.as_rewritten(index, signo)
            {
                debug!("forwarding {signo} to {}", self.name(index));
                actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
            }
        }
    }

    /// What the process at `index` gets for `received`: the signal its rewrite table
    /// names (None to ignore it), else `received` itself.
    pub(super) fn as_rewritten(&self, index: usize, received: Signo) -> Option<Signo> {
        let spec = &self.plan.processes[index];
        match spec.rewritten(received) {
            None => Some(received),
            Some(Some(to)) => {
                debug!("{received} rewritten to {to} for {}", spec.name);
                Some(to)
            }
            Some(None) => {
                debug!("{received} rewritten to nothing for {}", spec.name);
                None
            }
        }
    }

    /// Passes a stop signal from outside on to a running primary: as it came without a
    /// role map (as tini does), else as the primary's stop signal or stop hook. No
    /// deadline of exeunt's own follows, unless `kill_primaries_after` asks for one:
    /// the runtime that sent the signal keeps the deadline.
    pub(super) fn ask_primary(&mut self, index: usize, received: Signo, now: Time, actions: &mut Vec<Action>) {
        let State::Running { pid, since } = self.procs[index].state else { return };
        let spec = &self.plan.processes[index];
        let deadline = self.plan.kill_primaries_after.map(|after| now + after);
        let then = match self.plan.kill_primaries_after {
            Some(after) => format!("; SIGKILL if it still runs {}", Show(after)),
            None => String::new(),
        };
        let how = match (&spec.stop_hook, self.plan.forward_stop_signals) {
            _ if spec.rewritten(received).is_some() => match self.as_rewritten(index, received) {
                Some(signo) => {
                    info!(subject = spec.name.as_str(); "{received}: sending {signo} to primary {} (rewrite){then}", spec.name);
                    actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
                    How::Signal(signo)
                }
                None => {
                    info!(subject = spec.name.as_str(); "{received}: nothing for primary {}: its rewrite table ignores it", spec.name);
                    How::Nothing
                }
            },
            (Some(hook), false) => {
                info!(subject = spec.name.as_str(); "{received}: stopping primary {} with its stop hook {hook}{then}", spec.name);
                actions.push(Action::StartCheck(CheckId { index, purpose: Purpose::Stop }));
                How::Hook { running: true }
            }
            (_, forward) => {
                let signo = if forward { received } else { spec.stop_signal };
                info!(subject = spec.name.as_str(); "{received}: sending {signo} to primary {}{then}", spec.name);
                actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
                How::Signal(signo)
            }
        };
        self.procs[index].state = State::Stopping { pid, since, asked: now, how, deadline };
    }

    /// A stop signal came again: each primary still there is asked again, as the
    /// first time (a stop hook under way is left to finish).
    pub(super) fn ask_primaries_again(&mut self, received: Signo, actions: &mut Vec<Action>) {
        for index in 0..self.procs.len() {
            let State::Stopping { pid, how, .. } = self.procs[index].state else { continue };
            if self.role(index) != Role::Primary {
                continue;
            }
            let spec = &self.plan.processes[index];
            if spec.rewritten(received).is_some() {
                if let Some(signo) = self.as_rewritten(index, received) {
                    actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
                }
                continue;
            }
            match how {
                How::Signal(_) | How::Nothing => {
                    let signo = if self.plan.forward_stop_signals { received } else { spec.stop_signal };
                    debug!("passing {received} on to primary {} as {signo} again", spec.name);
                    actions.push(Action::Signal { pid, signo, group: self.plan.signal_groups });
                }
                How::Hook { running: true } => {}
                How::Hook { running: false } => {
                    actions.push(Action::StartCheck(CheckId { index, purpose: Purpose::Stop }));
                    if let State::Stopping { how, .. } = &mut self.procs[index].state {
                        *how = How::Hook { running: true };
                    }
                }
            }
        }
    }
}
