//! What a process's exit means: the primary's status and the shutdown it may begin, a
//! sidecar's restart, or the failure it makes of the run, as its `on_exit` says.

use std::time::Duration;

use log::{debug, error, info, warn};

use super::Supervisor;
use super::process::{How, Ready, State};
use crate::duration::Show;
use crate::events::{Action, CheckId, ExitStatus, Purpose, Time};
use crate::plan::{OnExit, Role};

impl Supervisor<'_> {
    /// A child exited: one of the plan's processes, or an orphan exeunt reaped.
    pub(super) fn on_exit(&mut self, pid: i32, status: ExitStatus, now: Time, actions: &mut Vec<Action>) {
        let Some(index) = self.procs.iter().position(|p| p.state.pid() == Some(pid)) else {
            self.leftovers.exited(pid);
            for proc in &mut self.procs {
                proc.stray_gone(pid);
            }
            if self.plan.report_reaped {
                warn!("Reaped zombie process with pid={pid}");
            } else {
                debug!("reaped orphan pid {pid} ({status})");
            }
            return;
        };
        let (since, hook_running) = match self.procs[index].state {
            State::Running { since, .. } | State::Killed { since, .. } => (since, false),
            State::Stopping { since, how, .. } => (since, how == How::Hook { running: true }),
            _ => (now, false),
        };
        if hook_running {
            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Stop }));
        }
        self.procs[index].end_live(index, actions);
        self.procs[index].state = State::Gone;
        self.procs[index].exit = Some(status);
        let ran_for = now.saturating_sub(since);
        self.procs[index].ran = Some(ran_for);
        match self.plan.processes[index].role {
            Role::Primary => self.primary_exited(index, pid, status, ran_for, actions),
            Role::Sidecar => self.sidecar_exited(index, pid, status, ran_for, now, actions),
            Role::Task => self.task_exited(index, status, ran_for, now, actions),
            // It runs nothing, so no exit is ever its.
            Role::Gate => {}
        }
    }

    /// The primary's status counts; its failure, or the last primary's exit, begins the
    /// shutdown.
    fn primary_exited(&mut self, index: usize, pid: i32, status: ExitStatus, ran_for: Time, actions: &mut Vec<Action>) {
        let plan = self.plan;
        let spec = &plan.processes[index];
        let (name, ran) = (&spec.name, ran(ran_for));
        match self.procs[index].stop_reason.take() {
            Some(why) => {
                info!(subject = name.as_str(); "primary {name} exited with {status} after {ran}, stopped {why}")
            }
            None => info!(subject = name.as_str(); "primary {name} exited with {status} after {ran}"),
        }
        if spec.matcher.is_none() {
            // It led a process group of its own; what it left there goes before the sidecars.
            self.leftovers.primary_exited(pid, index);
        }
        if plan.setsid
            && let Some(signo) = self.as_rewritten(index, crate::signo::SIGTERM)
        {
            // dumb-init's setsid mode: what is left of its session's group goes too.
            actions.push(Action::SignalGroup { pgid: pid, signo });
        }
        self.verdict.primary_exited(status);
        if plan.exit_with_primary {
            // dumb-init's way: out at once, with what the primary left still running.
            let code = self.verdict.code(&plan.zero_codes);
            info!("exiting with {code} at once, as dumb-init does, without waiting for what is left");
            self.shutdown.finish();
            actions.push(Action::Exit(code));
            return;
        }
        let primaries_left = self.primary_alive();
        if status.code() != 0 && primaries_left && !self.shutdown.is_begun() {
            warn!(subject = name.as_str(); "primary {name} failed: stopping the other primaries");
        }
        if status.code() != 0 || !primaries_left {
            self.begin_shutdown(None, actions);
        }
    }

    /// A sidecar that exits during the shutdown is done; before it, it is started
    /// again, left gone, or fails the run, as its `on_exit` says.
    fn sidecar_exited(
        &mut self,
        index: usize,
        pid: i32,
        status: ExitStatus,
        ran_for: Time,
        now: Time,
        actions: &mut Vec<Action>,
    ) {
        let plan = self.plan;
        let spec = &plan.processes[index];
        let (name, ran) = (&spec.name, ran(ran_for));
        if self.shutdown.is_begun() {
            info!(subject = name.as_str(); "sidecar {name} exited with {status} after {ran}");
            return;
        }
        if self.procs[index].probing_now() {
            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Ready }));
        }
        if std::mem::take(&mut self.procs[index].restart_asked) {
            let why = self.procs[index].stop_reason.take().unwrap_or("as asked");
            info!(subject = name.as_str(); "sidecar {name} exited with {status} after {ran}: starting it again, {why}");
            let proc = &mut self.procs[index];
            proc.asked_restarts += 1;
            proc.state = State::Starting;
            actions.push(Action::Spawn(index));
            return;
        }
        if self.procs[index].first_probing() {
            self.not_ready(index, &format!("not ready: it exited with {status} after {ran}"), actions);
            return;
        }
        let proc = &mut self.procs[index];
        // A probe that passed a moment before the exit may have answered for another
        // process (one that holds the same port, say).
        match proc.probe_passed_at.take() {
            Some(passed) if now.saturating_sub(passed) < Duration::from_secs(1) => {
                proc.exits_after_passing += 1;
                let after = Show(now.saturating_sub(passed));
                warn!(subject = name.as_str(); "sidecar {name} exited {after} after its probe passed: the probe may have passed against another process");
                if proc.exits_after_passing == 3 {
                    warn!(subject = name.as_str(); "sidecar {name} has exited within 1s of passing its probe 3 times in a row: its probe likely answers for another process");
                }
            }
            _ => proc.exits_after_passing = 0,
        }
        // Its probe runs again once it has started again.
        proc.ready = Ready::Lost;
        match spec.on_exit {
            OnExit::Restart if proc.may_restart(spec) => {
                let delay = proc.back_off(spec, ran_for, now);
                warn!(subject = name.as_str(); "sidecar {name} exited with {status} after {ran}: restarting it in {}", Show(delay));
                if spec.matcher.is_none() {
                    // What it left in its process group (a child holding its port, say)
                    // goes first, as the shutdown's sweep would do it.
                    let State::Backoff { until } = proc.state else { return };
                    proc.state = State::Clearing { pgid: pid, until, deadline: now + spec.grace_period };
                    actions.push(Action::ClearGroup { index, pgid: pid, signo: spec.stop_signal });
                }
            }
            OnExit::Ignore => {
                warn!(subject = name.as_str(); "sidecar {name} exited with {status} after {ran}: ignored, the primaries run on")
            }
            OnExit::Restart | OnExit::Fail => {
                let after = if spec.on_exit == OnExit::Restart {
                    format!(" and {} restarts", proc.restarts)
                } else {
                    String::new()
                };
                error!(subject = name.as_str(); "sidecar {name} exited with {status} after {ran}{after}: stopping everything");
                self.verdict.sidecar_failed(status, spec.exit_code);
                self.begin_shutdown(None, actions);
            }
        }
    }
}

impl Supervisor<'_> {
    /// Who an exited sidecar left in its process group, now signalled: it starts again
    /// once they are gone (or killed at the end of its grace period).
    pub(super) fn group_left(&mut self, index: usize, members: &[crate::events::Member]) {
        let spec = &self.plan.processes[index];
        let proc = &mut self.procs[index];
        let State::Clearing { until, .. } = proc.state else { return };
        if members.is_empty() {
            proc.state = State::Backoff { until };
            return;
        }
        let listed: Vec<String> = members.iter().map(|m| format!("{} ({})", m.pid, m.name)).collect();
        let grace = Show(spec.grace_period);
        warn!(
            subject = spec.name.as_str();
            "sidecar {} left {} in its process group: sending them {} (grace {grace}) before it starts again: {}",
            spec.name,
            super::leftovers::plural(members.len()),
            spec.stop_signal,
            listed.join(", ")
        );
        proc.strays = members.iter().map(|m| m.pid).collect();
    }
}

/// How long a process ran, as the log says it.
fn ran(ran_for: Time) -> Show {
    Show(Duration::from_millis(ran_for.as_millis() as u64))
}
