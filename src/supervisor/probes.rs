//! What the answer of a check means: a readiness probe's, for the first probing (the
//! start waits for it) and the watch every `period` after it; a stop hook's, whose
//! failure sends the stop signal at once; a liveness probe's goes to [`super::liveness`].

use std::time::Duration;

use log::{debug, error, info, warn};

use super::process::{How, Ready, State, Watched};
use super::{NOT_READY, Supervisor};
use crate::duration::Show;
use crate::events::{Action, CheckFailure, CheckId, Purpose, Time};
use crate::plan::{OnTimeout, Role};

impl Supervisor<'_> {
    /// A sidecar that will not be ready: stop everything, or go on, as it asks.
    pub(super) fn not_ready(&mut self, index: usize, reason: &str, actions: &mut Vec<Action>) {
        let spec = &self.plan.processes[index];
        self.procs[index].ready = Ready::GaveUp(Some(reason.to_string()));
        let on_timeout = spec.ready.as_ref().map_or(OnTimeout::Fail, |r| r.on_timeout);
        match on_timeout {
            OnTimeout::Fail => {
                error!(subject = spec.name.as_str(); "{} {} is {reason}: stopping", spec.role, spec.name);
                self.verdict.fail(NOT_READY);
                self.begin_shutdown(None, actions);
            }
            OnTimeout::Start => {
                warn!(subject = spec.name.as_str(); "{} {} is {reason}: starting the rest anyway", spec.role, spec.name)
            }
        }
    }

    pub(super) fn on_check(
        &mut self,
        id: CheckId,
        result: Result<(), CheckFailure>,
        now: Time,
        actions: &mut Vec<Action>,
    ) {
        let plan = self.plan;
        // A primary stopped on a request from outside gets what follows as a passed-on
        // signal, like the request itself.
        let from_outside = plan.processes[id.index].role == Role::Primary
            && self.shutdown.begun().is_some_and(|b| b.primary_signal.is_some());
        let spec = &plan.processes[id.index];
        let proc = &mut self.procs[id.index];
        match (id.purpose, proc.state) {
            (Purpose::Ready, _) if proc.probing_now() => {
                if let Err(e) = &result {
                    debug!("probe of {} failed: {e}", spec.name);
                }
                let Some(ready) = spec.ready.as_ref() else { return };
                if proc.watching() {
                    let change = proc.watch_answered(result, ready, now);
                    Self::watched(spec, ready, change);
                    return;
                }
                // A probe whose command cannot even be started, or a notification
                // descriptor closed without a word, will not pass by waiting: the start
                // does not wait out the timeout for it.
                let final_failure = matches!(result, Err(CheckFailure::NotStarted(_) | CheckFailure::NoNotice(_)));
                if let (Err(e), true) = (&result, final_failure && proc.first_probing()) {
                    let reason = format!("not ready: {}: {e}", ready.probe);
                    proc.probe_answered(result, ready, now);
                    self.not_ready(id.index, &reason, actions);
                    return;
                }
                if let Some((took, attempts)) = proc.probe_answered(result, ready, now) {
                    let took = Show(Duration::from_millis(took.as_millis() as u64));
                    match spec.role {
                        Role::Gate => {
                            info!(subject = spec.name.as_str(); "gate {} passed after {took} ({attempts} probes)", spec.name)
                        }
                        _ => {
                            info!(subject = spec.name.as_str(); "sidecar {} is ready after {took} ({attempts} probes)", spec.name)
                        }
                    }
                    proc.arm_live(spec.live.as_ref(), now);
                }
            }
            (Purpose::Stop, State::Stopping { pid, since, asked, how: How::Hook { running: true }, deadline }) => {
                proc.state = State::Stopping { pid, since, asked, how: How::Hook { running: false }, deadline };
                match result {
                    Ok(()) => debug!("stop hook of {} succeeded; waiting for it to exit", spec.name),
                    Err(e) => {
                        // A hook that failed will not stop the process: the stop signal
                        // goes now, with a whole grace period of its own (when exeunt
                        // keeps a deadline for it at all).
                        warn!(subject = spec.name.as_str(); "stop hook of {} failed ({e}): sending {} now", spec.name, spec.stop_signal);
                        let (signo, group) = (spec.stop_signal, plan.signal_groups);
                        actions.push(match from_outside {
                            true => Action::Signal { pid, signo, group },
                            false => Action::Stop { pid, signo, group },
                        });
                        let deadline = deadline.map(|d| d.max(now + spec.grace_period));
                        let how = How::Signal(spec.stop_signal);
                        proc.state = State::Stopping { pid, since, asked: now, how, deadline };
                    }
                }
            }
            (Purpose::Live, _) => self.live_answered(id.index, result, now, actions),
            (Purpose::Ready | Purpose::Stop, _) => {}
        }
    }

    /// Says what the probing after the start found, when readiness changed: not ready is a
    /// warning with the error, and no restart (readiness is about traffic, as in Kubernetes).
    pub(super) fn watched(spec: &crate::plan::ProcessSpec, ready: &crate::plan::Readiness, change: Option<Watched>) {
        match change {
            Some(Watched::Back) => info!(subject = spec.name.as_str(); "sidecar {} is ready again", spec.name),
            Some(Watched::Lost { failures, error }) => {
                let failed = if failures == 1 {
                    "1 failed attempt".to_string()
                } else {
                    format!("{failures} failed attempts in a row")
                };
                warn!(subject = spec.name.as_str(); "sidecar {} is not ready: {failed}: {}: {error}", spec.name, ready.probe)
            }
            None => {}
        }
    }
}
