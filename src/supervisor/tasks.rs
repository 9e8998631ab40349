//! Tasks (`role = "task"`): processes that run to completion before what follows them
//! starts. Exit 0 completes one; any other end runs it again while `retries` allow,
//! after a back-off, and else fails the run with its status, which stops what was
//! started. A task that runs past its `timeout` is stopped with its stop action and
//! fails the run, whatever it then exits with.

use log::{error, info, warn};

use super::Supervisor;
use super::process::State;
use crate::duration::Show;
use crate::events::{Action, ExitStatus, Time};

impl Supervisor<'_> {
    /// The task at `index` exited with `status` after running for `ran_for`.
    pub(super) fn task_exited(
        &mut self,
        index: usize,
        status: ExitStatus,
        ran_for: Time,
        now: Time,
        actions: &mut Vec<Action>,
    ) {
        let spec = &self.plan.processes[index];
        let name = spec.name.as_str();
        let ran = Show(std::time::Duration::from_millis(ran_for.as_millis() as u64));
        let proc = &mut self.procs[index];
        proc.task_deadline = None;
        let timed_out = proc.stop_reason.take().is_some();
        if self.shutdown.is_begun() {
            info!(subject = name; "task {name} exited with {status} after {ran}");
            return;
        }
        if status == ExitStatus::Code(0) && !timed_out {
            info!(subject = name; "task {name} completed with {status} after {ran}");
            return;
        }
        if !timed_out && proc.restarts < spec.retries {
            let delay = proc.back_off(spec, ran_for, now);
            let (tried, retries) = (proc.restarts, spec.retries);
            warn!(subject = name; "task {name} failed with {status} after {ran}: running it again in {} (retry {tried} of {retries})", Show(delay));
            return;
        }
        let why = match (timed_out, spec.timeout) {
            (true, Some(timeout)) => format!(", having run past its timeout of {}", Show(timeout)),
            _ if spec.retries > 0 => format!(" on its last try of {}", spec.retries + 1),
            _ => String::new(),
        };
        error!(subject = name; "task {name} failed with {status} after {ran}{why}: stopping");
        self.verdict.task_failed(status);
        self.begin_shutdown(None, actions);
    }

    /// The task at `index` ran past its timeout: it is stopped, and fails the run.
    pub(super) fn task_timed_out(&mut self, index: usize, now: Time, actions: &mut Vec<Action>) {
        let spec = &self.plan.processes[index];
        let proc = &mut self.procs[index];
        let (Some(timeout), State::Running { pid, .. }) = (spec.timeout, proc.state) else { return };
        proc.task_deadline = None;
        warn!(subject = spec.name.as_str(); "task {} (pid {pid}) is still running after its timeout of {}: stopping it", spec.name, Show(timeout));
        self.stop(index, now, actions);
        self.procs[index].stop_reason = Some("since it ran past its timeout");
    }
}
