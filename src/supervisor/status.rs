//! The supervisor's answers to the control socket's requests: what runs and how it
//! stands, whether it is ready, and the restarts and signals asked for by name.
//! Pure, like the rest of the supervisor: a request in, an answer and actions out.

use std::fmt::Write as _;
use std::time::Duration;

use log::info;

use super::Supervisor;
use super::process::{Ready, Shown, State};
use crate::duration::Show;
use crate::events::{Action, Answer, CheckId, Outcome, Purpose, Request, Time};
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

/// One process as `--status` shows it.
struct Row {
    name: String,
    role: Role,
    pid: Option<i32>,
    /// The state's word, for JSON.
    word: &'static str,
    /// The state in a few words, for people.
    state: String,
    ready: bool,
    restarts: u32,
    /// Time in this state.
    held: Duration,
    /// Seconds until a restart that waits out a back-off.
    restart_in: Option<Duration>,
    exit_code: Option<i32>,
    /// Why a sidecar is not ready yet, as its probe last said.
    probe: Option<String>,
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
    pub(super) fn answer(&mut self, request: Request, now: Time, actions: &mut Vec<Action>) -> Answer {
        match request {
            Request::Status { json } => {
                let rows: Vec<Row> = (0..self.procs.len()).map(|i| self.row(i, now)).collect();
                let body = if json { self.status_json(&rows, now) } else { self.status_text(&rows, now) };
                Answer { outcome: Outcome::Ok, body }
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
        }
    }

    fn index_of(&self, name: &str) -> Result<usize, Answer> {
        self.plan.processes.iter().position(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.plan.processes.iter().map(|p| p.name.as_str()).collect();
            Answer::new(Outcome::Error, format!("no process is named {name:?} (there are: {})", names.join(", ")))
        })
    }

    fn row(&self, index: usize, now: Time) -> Row {
        let (spec, proc) = (&self.plan.processes[index], &self.procs[index]);
        let shown = match (proc.showing(), spec.role) {
            // A primary has no probe: it runs, or not.
            (Shown::Ready, Role::Primary) => Shown::Running,
            (shown, _) => shown,
        };
        let restart_in = match proc.state {
            State::Backoff { until } => Some(until.saturating_sub(now)),
            _ => None,
        };
        let probe = match &proc.ready {
            Ready::Probing { last_error, .. } => Some(last_error.to_string()),
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
        let state = match (shown, restart_in, proc.exit) {
            (Shown::Restarting, Some(left), _) => format!("restarting in {}", Rounded(left)),
            (Shown::Exited, _, Some(status)) => format!("exited with {status}"),
            (Shown::NotStarted, ..) => "not started".to_string(),
            _ => word.to_string(),
        };
        let ready = match spec.role {
            Role::Sidecar => proc.is_ready(),
            Role::Primary => matches!(proc.state, State::Running { .. }),
        };
        Row {
            name: spec.name.clone(),
            role: spec.role,
            pid: proc.state.pid(),
            word,
            state,
            ready,
            restarts: proc.restarts + proc.asked_restarts,
            held: now.saturating_sub(proc.shown.1),
            restart_in,
            exit_code: (shown == Shown::Exited).then(|| proc.exit.map(|s| s.code())).flatten(),
            probe,
        }
    }

    fn status_text(&self, rows: &[Row], now: Time) -> String {
        let (phase, since) = self.phase;
        let mut text = format!("exeunt: {} for {}\n", phase.word(), Rounded(now.saturating_sub(since)));
        let header = ["NAME", "ROLE", "PID", "STATE", "RESTARTS", "FOR"];
        let cells: Vec<[String; 6]> = rows
            .iter()
            .map(|row| {
                let state = match &row.probe {
                    Some(probe) if !row.ready => format!("{} ({probe})", row.state),
                    _ => row.state.clone(),
                };
                let pid = row.pid.map_or("-".to_string(), |pid| pid.to_string());
                [
                    row.name.clone(),
                    row.role.to_string(),
                    pid,
                    state,
                    row.restarts.to_string(),
                    Rounded(row.held).to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let lines = std::iter::once(header.map(String::from)).chain(cells);
        for line in lines {
            let last = line.len() - 1;
            for (column, cell) in line.iter().enumerate() {
                if column == last {
                    text += cell;
                } else {
                    let _ = write!(text, "{cell:<width$}  ", width = widths[column]);
                }
            }
            text.push('\n');
        }
        text
    }

    fn status_json(&self, rows: &[Row], now: Time) -> String {
        let (phase, since) = self.phase;
        let mut out = format!(
            "{{\"version\":{},\"phase\":\"{}\",\"phase_seconds\":{},\"ready\":{},\"processes\":[",
            crate::events::CONTROL_VERSION,
            phase.word(),
            Seconds(now.saturating_sub(since)),
            self.unready_reasons(rows).is_empty(),
        );
        for (i, row) in rows.iter().enumerate() {
            let pid = row.pid.map_or("null".to_string(), |pid| pid.to_string());
            let _ = write!(
                out,
                "{}{{\"name\":{},\"role\":\"{}\",\"pid\":{pid},\"state\":\"{}\",\"ready\":{},\"restarts\":{},\"state_seconds\":{}",
                if i > 0 { "," } else { "" },
                JsonString(&row.name),
                row.role,
                row.word,
                row.ready,
                row.restarts,
                Seconds(row.held)
            );
            if let Some(left) = row.restart_in {
                let _ = write!(out, ",\"restart_in_seconds\":{}", Seconds(left));
            }
            if let Some(code) = row.exit_code {
                let _ = write!(out, ",\"exit_code\":{code}");
            }
            if let Some(probe) = &row.probe {
                let _ = write!(out, ",\"probe\":{}", JsonString(probe));
            }
            out.push('}');
        }
        out += "]}\n";
        out
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
        let rows: Vec<Row> = asked.iter().map(|&i| self.row(i, now)).collect();
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
    fn unready_reasons(&self, rows: &[Row]) -> Vec<String> {
        let mut reasons: Vec<String> = rows
            .iter()
            .filter(|r| !r.ready)
            .map(|r| match &r.probe {
                Some(probe) => format!("{} is {} ({probe})", r.name, r.state),
                None => format!("{} is {}", r.name, r.state),
            })
            .collect();
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
        if spec.role == Role::Primary {
            return no("it is a primary, and the run ends when the primaries do".to_string());
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
            _ => {
                let state = self.row(index, now).state;
                no(format!("it is {state}"))
            }
        }
    }
}

/// Text as a JSON string.
struct JsonString<'a>(&'a str);

impl std::fmt::Display for JsonString<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::with_capacity(self.0.len() + 2);
        crate::json::push_string(&mut out, self.0.as_bytes());
        // Escaped UTF-8 is UTF-8.
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// A time in state, rounded for people: 850ms, 12.3s, 5m12s, 2h5m.
struct Rounded(Duration);

impl std::fmt::Display for Rounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ms, s) = (self.0.as_millis(), self.0.as_secs());
        match s {
            0 => write!(f, "{ms}ms"),
            1..60 => write!(f, "{}.{}s", s, (ms % 1000) / 100),
            60..3600 => write!(f, "{}m{}s", s / 60, s % 60),
            _ => write!(f, "{}h{}m", s / 3600, (s % 3600) / 60),
        }
    }
}

/// Seconds with milliseconds, for JSON.
struct Seconds(Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0.as_secs(), self.0.subsec_millis())
    }
}
