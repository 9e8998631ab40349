//! The supervisor's answers to the control socket's requests: what runs and how it
//! stands (as data, which the control socket renders), whether it is ready, and the
//! restarts and signals asked for by name. Pure, like the rest of the supervisor: a
//! request in, a reply and actions out.

use log::info;

use super::Supervisor;
use super::process::{Ready, Shown, State};
use crate::duration::{Rounded, Show};
use crate::events::{Action, Answer, CheckId, Outcome, ProcessStatus, Purpose, Reply, Request, Status, Time};
use crate::plan::Role;

/// Where the container as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Processes are starting, or sidecars are not ready yet.
    Starting,
    /// Everything has started and every sidecar was ready.
    Running,
    /// The shutdown has begun.
    Stopping,
}

impl Phase {
    fn word(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
        }
    }
}

impl Supervisor<'_> {
    /// Where the container stands now.
    pub(super) fn phase(&self) -> Phase {
        if self.shutdown.is_begun() {
            Phase::Stopping
        } else if self.pod.is_ready() {
            Phase::Running
        } else {
            Phase::Starting
        }
    }

    /// Notes the time of every change that `--status` shows.
    pub(super) fn observe(&mut self, now: Time) {
        for proc in &mut self.procs {
            proc.observe(now);
        }
        let phase = self.phase();
        if phase != self.phase.0 {
            self.phase = (phase, now);
        }
    }

    /// The answer to one request; what it asks to be done goes into `actions`.
    pub(super) fn answer(&mut self, request: Request, now: Time, actions: &mut Vec<Action>) -> Reply {
        let answer = match request {
            Request::Status { json } => {
                let processes: Vec<ProcessStatus> = (0..self.procs.len()).map(|i| self.row(i, now)).collect();
                let (phase, since) = self.phase;
                let ready = self.unready_reasons(&processes).is_empty();
                let status = Status { phase: phase.word(), phase_for: now.saturating_sub(since), ready, processes };
                return Reply::Status { status, json };
            }
            Request::Ready { names } => self.ready_answer(&names, now),
            Request::Live => Answer::new(Outcome::Ok, format!("exeunt is {}", self.phase().word())),
            Request::Restart { name } => match self.index_of(&name) {
                Ok(index) => self.restart(index, now, actions),
                Err(answer) => answer,
            },
            Request::Signal { signo, name, group } => match self.index_of(&name) {
                Ok(index) => match self.procs[index].state.pid() {
                    Some(pid) => {
                        info!(subject = name.as_str(); "sending {signo} to {name} (pid {pid}), as asked on the control socket");
                        actions.push(Action::Signal { pid, signo, group });
                        let whom = if group { format!("the process group of {name}") } else { name };
                        Answer::new(Outcome::Ok, format!("sent {signo} to {whom} (pid {pid})"))
                    }
                    None => Answer::new(Outcome::No, format!("{name} is not running: {}", self.row(index, now).state)),
                },
                Err(answer) => answer,
            },
        };
        Reply::Said(answer)
    }

    fn index_of(&self, name: &str) -> Result<usize, Answer> {
        self.plan.processes.iter().position(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.plan.processes.iter().map(|p| p.name.as_str()).collect();
            Answer::new(Outcome::Error, format!("no process is named {name:?} (there are: {})", names.join(", ")))
        })
    }

    pub(super) fn row(&self, index: usize, now: Time) -> ProcessStatus {
        let (spec, proc) = (&self.plan.processes[index], &self.procs[index]);
        let shown = match (proc.showing(), spec.role) {
            // A primary has no probe: it runs, or not.
            (Shown::Ready, Role::Primary | Role::Task) => Shown::Running,
            (shown, _) => shown,
        };
        let restart_in = match proc.state {
            State::Backoff { until } | State::Clearing { until, .. } => Some(until.saturating_sub(now)),
            _ => None,
        };
        let probe = match &proc.ready {
            Ready::Probing { last_error, .. } => Some(last_error.to_string()),
            Ready::GaveUp(Some(why)) => Some(why.clone()),
            Ready::Watching { ready: false, last_error, .. } => Some(last_error.to_string()),
            _ => None,
        };
        let word = match shown {
            Shown::Waiting => "waiting",
            Shown::Starting => "starting",
            Shown::Ready => "ready",
            Shown::Running => "running",
            Shown::Restarting => "restarting",
            Shown::Stopping => "stopping",
            Shown::Exited => "exited",
            Shown::NotStarted => "not-started",
        };
        let (word, state) = match (shown, restart_in, proc.exit) {
            _ if spec.role == Role::Gate => Self::gate_row(proc, word),
            (Shown::Exited, _, Some(status)) if spec.role == Role::Task => {
                let ran = proc.ran.map(|ran| format!(" after {}", Rounded(ran))).unwrap_or_default();
                let word = if proc.completed() { "completed" } else { "failed" };
                (word, format!("{word} with {status}{ran}"))
            }
            (Shown::Restarting, Some(left), _) if spec.role == Role::Task => {
                (word, format!("trying again in {}", Rounded(left)))
            }
            (Shown::Restarting, Some(left), _) => (word, format!("restarting in {}", Rounded(left))),
            (Shown::Exited, _, Some(status)) => (word, format!("exited with {status}")),
            (Shown::NotStarted, ..) => (word, "not started".to_string()),
            _ => (word, word.to_string()),
        };
        let ready = match spec.role {
            Role::Sidecar => proc.is_ready(),
            Role::Primary => matches!(proc.state, State::Running { .. }),
            Role::Task => proc.completed(),
            Role::Gate => proc.ready == Ready::Yes,
        };
        ProcessStatus {
            name: spec.name.clone(),
            role: match spec.role {
                Role::Primary => "primary",
                Role::Sidecar => "sidecar",
                Role::Task => "task",
                Role::Gate => "gate",
            },
            pid: proc.state.pid(),
            word,
            state,
            ready,
            restarts: proc.restarts + proc.asked_restarts,
            held: now.saturating_sub(proc.shown.1),
            restart_in,
            exit_code: (shown == Shown::Exited).then(|| proc.exit.map(|s| s.code())).flatten(),
            probe,
            live: proc.live.as_ref().and_then(|live| match &live.last {
                Some(Ok(())) => Some("passed".to_string()),
                Some(Err(error)) => Some(format!("failed {} in a row: {error}", live.failures)),
                None => None,
            }),
            says: proc.says.clone().filter(|_| matches!(proc.state, State::Running { .. })),
        }
    }

    /// A gate's word and state: waiting (with what its probe last met), passed, or
    /// failed; `word` is what a process would show.
    fn gate_row(proc: &super::process::Proc, word: &'static str) -> (&'static str, String) {
        match (&proc.state, &proc.ready) {
            (State::Gate, Ready::Probing { last_error, .. }) => ("waiting", format!("waiting: {last_error}")),
            (State::Gate, Ready::Yes) => {
                let after = proc.ready_after.map(|t| format!(" after {}", Rounded(t))).unwrap_or_default();
                ("passed", format!("passed{after}"))
            }
            (State::Gate, Ready::GaveUp(Some(why))) => ("failed", format!("failed: {why}")),
            (State::Gate, _) => ("not-passed", "not passed: the run stopped first".to_string()),
            (State::Gone, _) => ("not-started", "not started".to_string()),
            _ => (word, word.to_string()),
        }
    }

    /// `--ready`: every process, or the named ones. A sidecar is ready when it runs and
    /// has passed its probe since it started; a primary, when it runs.
    fn ready_answer(&self, names: &[String], now: Time) -> Answer {
        let mut asked = Vec::with_capacity(names.len());
        for name in names {
            match self.index_of(name) {
                Ok(index) => asked.push(index),
                Err(answer) => return answer,
            }
        }
        if asked.is_empty() {
            asked.extend(0..self.procs.len());
        }
        let rows: Vec<ProcessStatus> = asked.iter().map(|&i| self.row(i, now)).collect();
        let not_ready = self.unready_reasons(&rows);
        if not_ready.is_empty() {
            let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
            Answer::new(Outcome::Ok, format!("ready: {}", names.join(", ")))
        } else {
            Answer::new(Outcome::No, format!("not ready: {}", not_ready.join("; ")))
        }
    }

    /// Why `rows` are not ready, one reason each; none when they are. Nothing is ready
    /// once the shutdown has begun, whatever still runs.
    fn unready_reasons(&self, rows: &[ProcessStatus]) -> Vec<String> {
        let mut reasons: Vec<String> =
            rows.iter().filter(|r| !r.ready).map(|r| format!("{} is {}", r.name, r.state_and_probe())).collect();
        if reasons.is_empty() && self.phase() == Phase::Stopping {
            reasons.push("exeunt is stopping".to_string());
        }
        reasons
    }

    /// `--restart`: a sidecar stops with its stop action and grace period, and starts
    /// again once it has exited; one waiting out a back-off, or one that exited and was
    /// let go, starts at once.
    fn restart(&mut self, index: usize, now: Time, actions: &mut Vec<Action>) -> Answer {
        let spec = &self.plan.processes[index];
        let name = spec.name.clone();
        let no = |why: String| Answer::new(Outcome::No, format!("{name} cannot be restarted: {why}"));
        match spec.role {
            Role::Primary => return no("it is a primary, and the run ends when the primaries do".to_string()),
            Role::Task => return no("it is a task, which runs once to completion".to_string()),
            Role::Gate => return no("it is a gate, which runs nothing".to_string()),
            Role::Sidecar => {}
        }
        if spec.matcher.is_some() {
            return no("it runs in another container, whose exeunt can restart it".to_string());
        }
        if self.shutdown.is_begun() {
            return no("exeunt is stopping".to_string());
        }
        if self.procs[index].first_probing() {
            return no("it has not been ready yet, and what follows it waits for that".to_string());
        }
        let proc = &mut self.procs[index];
        if proc.probing_now() {
            actions.push(Action::CancelCheck(CheckId { index, purpose: Purpose::Ready }));
        }
        match proc.state {
            State::Running { pid, .. } => {
                proc.ready = Ready::Lost;
                info!(subject = name.as_str(); "restarting sidecar {name} (pid {pid}), as asked on the control socket");
                self.stop(index, now, actions);
                self.procs[index].restart_asked = true;
                let how = match &spec.stop_hook {
                    Some(hook) => format!("its stop hook {hook}"),
                    None => spec.stop_signal.to_string(),
                };
                Answer::new(
                    Outcome::Ok,
                    format!("restarting {name}: stopping pid {pid} with {how} (grace {})", Show(spec.grace_period)),
                )
            }
            State::Backoff { .. } | State::Gone => {
                proc.ready = Ready::Lost;
                proc.asked_restarts += 1;
                proc.state = State::Starting;
                info!(subject = name.as_str(); "starting sidecar {name} again, as asked on the control socket");
                actions.push(Action::Spawn(index));
                Answer::new(Outcome::Ok, format!("starting {name} again now"))
            }
            State::Stopping { .. } | State::Killed { .. } if proc.restart_asked => {
                Answer::new(Outcome::Ok, format!("{name} is restarting already"))
            }
            State::Clearing { .. } => Answer::new(Outcome::Ok, format!("{name} is restarting already")),
            _ => {
                let state = self.row(index, now).state;
                no(format!("it is {state}"))
            }
        }
    }
}
