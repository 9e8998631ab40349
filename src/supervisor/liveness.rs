//! A liveness probe (`live`): once the process is ready, an attempt every period;
//! `failure_threshold` failures in a row, an attempt past its timeout among them,
//! restart a sidecar, as the kubelet restarts a container whose liveness probe fails,
//! and stop a primary, whose exit then ends the run as any exit of it does. It waits
//! for readiness so that a slow start is not taken for a hang.

use log::warn;

use super::Supervisor;
use super::process::{LiveDuty, State};
use crate::duration::Show;
use crate::events::{Action, CheckFailure, CheckId, Note, Purpose, Time};
use crate::plan::Role;

impl Supervisor<'_> {
    /// A liveness duty of the sidecar at `index` fell due.
    pub(super) fn live_duty(&mut self, index: usize, duty: LiveDuty, now: Time, actions: &mut Vec<Action>) {
        let Some(spec_live) = self.plan.processes[index].live.as_ref() else { return };
        let id = CheckId { index, purpose: Purpose::Live };
        let Some(live) = self.procs[index].live.as_mut() else { return };
        match duty {
            LiveDuty::Attempt => {
                live.attempt_deadline = Some(now + spec_live.attempt_timeout);
                actions.push(Action::StartCheck(id));
            }
            LiveDuty::Abandon => {
                actions.push(Action::CancelCheck(id));
                self.live_answered(index, Err(CheckFailure::NoAnswerWithin(spec_live.attempt_timeout)), now, actions);
            }
        }
    }

    /// An attempt of the liveness probe of the sidecar at `index` answered.
    pub(super) fn live_answered(
        &mut self,
        index: usize,
        result: Result<(), CheckFailure>,
        now: Time,
        actions: &mut Vec<Action>,
    ) {
        let spec = &self.plan.processes[index];
        let Some(spec_live) = spec.live.as_ref() else { return };
        let proc = &mut self.procs[index];
        let Some(live) = proc.live.as_mut() else { return };
        if live.attempt_deadline.take().is_none() {
            // Cancelled already: nobody waits for it.
            return;
        }
        live.next = now + spec_live.period;
        live.last = Some(result.clone());
        let error = match result {
            Ok(()) => {
                live.failures = 0;
                return;
            }
            Err(e) => e,
        };
        live.failures += 1;
        if live.failures < spec_live.failure_threshold || self.shutdown.is_begun() {
            return;
        }
        let why = format!("failed its liveness probe {} times in a row: {}: {error}", live.failures, spec_live.probe);
        self.not_alive(index, &why, "since its liveness probe failed", now, actions);
    }

    /// The process at `index` said something on its notification socket. What it says
    /// counts for its present run only.
    pub(super) fn notified(&mut self, index: usize, note: Note, now: Time, actions: &mut Vec<Action>) {
        let proc = &mut self.procs[index];
        if !matches!(proc.state, State::Running { .. }) || self.shutdown.is_begun() {
            return;
        }
        match note {
            Note::Status(text) => proc.says = Some(text),
            Note::Watchdog => {
                if let Some((every, due)) = &mut proc.watchdog {
                    *due = now + *every;
                }
            }
            Note::WatchdogEvery(every) if every.is_zero() => proc.watchdog = None,
            Note::WatchdogEvery(every) => proc.watchdog = Some((every, now + every)),
            Note::WatchdogTrigger => {
                let why = "asked to be taken as hung (WATCHDOG=trigger)";
                self.not_alive(index, why, "since it asked to be taken as hung", now, actions);
            }
        }
    }

    /// The `WATCHDOG=1` the process at `index` asked to be held to did not come in time.
    pub(super) fn watchdog_missed(&mut self, index: usize, now: Time, actions: &mut Vec<Action>) {
        let Some((every, _)) = self.procs[index].watchdog else { return };
        let why = format!("sent no WATCHDOG=1 within {}", Show(every));
        self.not_alive(index, &why, "since it missed its watchdog", now, actions);
    }

    /// The process at `index` is taken as hung, `why` says how it showed: a sidecar is
    /// restarted, a primary stopped (its exit ends the run as any exit of it does).
    /// `reason` ends the line that tells its exit.
    fn not_alive(&mut self, index: usize, why: &str, reason: &'static str, now: Time, actions: &mut Vec<Action>) {
        let spec = &self.plan.processes[index];
        let proc = &mut self.procs[index];
        let State::Running { pid, .. } = proc.state else { return };
        let restart = spec.role == Role::Sidecar;
        let what = if restart { "restarting it" } else { "stopping it" };
        warn!(subject = spec.name.as_str(); "{} {} (pid {pid}) {why}: {what}", spec.role, spec.name);
        proc.live = None;
        if proc.probing_now() {
            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Ready }));
        }
        proc.ready = super::process::Ready::Lost;
        self.stop(index, now, actions);
        self.procs[index].restart_asked = restart;
        self.procs[index].stop_reason = Some(reason);
    }
}
