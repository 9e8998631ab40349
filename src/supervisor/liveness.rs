//! A liveness probe (`live`): once the process is ready, an attempt every period;
//! `failure_threshold` failures in a row, an attempt past its timeout among them,
//! restart a sidecar, as the kubelet restarts a container whose liveness probe fails,
//! and stop a primary, whose exit then ends the run as any exit of it does. It waits
//! for readiness so that a slow start is not taken for a hang.

use log::warn;

use super::Supervisor;
use super::process::{LiveDuty, State};
use crate::events::{Action, CheckFailure, CheckId, Purpose, Time};
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
        let State::Running { pid, .. } = proc.state else { return };
        // A sidecar is started again; a primary's end is the run's, as any exit of it.
        let restart = spec.role == Role::Sidecar;
        warn!(
            subject = spec.name.as_str();
            "{} {} (pid {pid}) failed its liveness probe {} times in a row: {}: {error}: {}",
            spec.role,
            spec.name,
            live.failures,
            spec_live.probe,
            if restart { "restarting it" } else { "stopping it" }
        );
        proc.live = None;
        if proc.probing_now() {
            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Ready }));
        }
        proc.ready = super::process::Ready::Lost;
        self.stop(index, now, actions);
        self.procs[index].restart_asked = restart;
        self.procs[index].stop_reason = Some("since its liveness probe failed");
    }
}
