//! The plan as `--check` shows it: what a run will do, in words, one line per
//! process.

use std::fmt;
use std::time::Duration;

use super::{OnExit, OnTimeout, Output, Plan, ProcessSpec, Readiness, Role, ShutdownOrder};
use crate::duration::Show;
use crate::logger::LogFormat;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "grace period for leftover processes: {}", Show(self.grace_period))?;
        let order = match self.shutdown {
            ShutdownOrder::Ordered => "sidecars stop in reverse start order",
            ShutdownOrder::Parallel => "sidecars stop all at once",
        };
        writeln!(f, "shutdown: {order}")?;
        match self.kill_primaries_after {
            Some(after) => {
                writeln!(f, "after a stop signal, primaries still running {} later are killed", Show(after))?
            }
            None => writeln!(f, "after a stop signal, primaries run until they exit (the runtime keeps the deadline)")?,
        }
        if self.stop_delay > Duration::ZERO {
            writeln!(f, "a stop signal is passed on {} after it came (stop_delay)", Show(self.stop_delay))?;
        }
        if self.kill_on_second_signal {
            writeln!(f, "a second stop signal kills what is left at once")?;
        }
        if self.log_format == Some(LogFormat::Json) {
            writeln!(f, "exeunt logs JSON lines")?;
        }
        if let Some(socket) = &self.control_socket {
            writeln!(f, "control socket: {socket}")?;
        }
        if let Some(pod) = &self.pod {
            writeln!(
                f,
                "pod: container {}, graveyard {}, death deps {:?}, birth deps {:?}, birth timeout {}",
                pod.name,
                pod.graveyard.display(),
                pod.death_deps,
                pod.birth_deps,
                Show(pod.birth_timeout)
            )?;
        }
        if self.match_timeout.is_some() || self.pod.is_some() || self.processes.iter().any(|p| p.matcher.is_some()) {
            writeln!(f, "sidecars found by match may take {} to appear", Show(self.match_timeout()))?;
        }
        for (i, p) in self.processes.iter().enumerate() {
            write!(f, "{}. ", i + 1)?;
            show_process(p, f)?;
            writeln!(f)?;
        }
        let levels: Vec<String> = self.start_levels().iter().map(|level| level.join(", ")).collect();
        writeln!(f, "start order: {}", levels.join("; then "))
    }
}

impl Plan {
    /// The processes by the step of the start they come in: those after nothing first,
    /// then each after the step of the last it waits for. Those of one step start
    /// together.
    pub fn start_levels(&self) -> Vec<Vec<&str>> {
        let mut level: Vec<Option<usize>> = vec![None; self.processes.len()];
        // `after` has no cycle (the role map refuses one), so each pass places more.
        for _ in 0..self.processes.len() {
            for i in 0..self.processes.len() {
                let before: Option<Vec<usize>> = self.processes[i].after.iter().map(|&j| level[j]).collect();
                if let Some(before) = before {
                    level[i] = Some(before.into_iter().max().map_or(0, |l| l + 1));
                }
            }
        }
        let mut levels: Vec<Vec<&str>> = Vec::new();
        for (i, at) in level.iter().enumerate() {
            let at = at.unwrap_or(0);
            if levels.len() <= at {
                levels.resize(at + 1, Vec::new());
            }
            levels[at].push(self.processes[i].name.as_str());
        }
        levels
    }
}

/// One process as `--check` shows it, on one line: `primary job: [...]`, then what
/// it is given beyond its command.
fn show_process(p: &ProcessSpec, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if let (Role::Gate, Some(ready)) = (p.role, &p.ready) {
        return show_gate(p, ready, f);
    }
    let command: Vec<_> = p.command.iter().map(|a| a.to_string_lossy()).collect();
    match &p.matcher {
        Some(matcher) => write!(f, "{} {}: found by {matcher}", p.role, p.name)?,
        None => write!(f, "{} {}: {:?}", p.role, p.name, command)?,
    }
    write!(f, ", stop {}, grace {}", p.stop_signal, Show(p.grace_period))?;
    if let Some(hook) = &p.stop_hook {
        write!(f, ", stop hook {hook}")?;
    }
    show_probes(p, f)?;
    show_role(p, f)?;
    show_settings(p, f)
}

/// A gate, which runs nothing: what it waits for.
fn show_gate(p: &ProcessSpec, ready: &Readiness, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let on_timeout = match ready.on_timeout {
        OnTimeout::Fail => "fail the start",
        OnTimeout::Start => "start the rest anyway",
    };
    write!(
        f,
        "gate {}: runs nothing, passes when {} (every {}, attempts {} max, within {}, else {on_timeout})",
        p.name,
        ready.probe,
        Show(ready.interval),
        Show(ready.attempt_timeout),
        Show(ready.timeout)
    )
}

/// How a process is probed: for readiness, then for liveness.
fn show_probes(p: &ProcessSpec, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if let Some(ready) = &p.ready {
        let on_timeout = match ready.on_timeout {
            OnTimeout::Fail => "fail",
            OnTimeout::Start => "start",
        };
        write!(
            f,
            ", ready when {} (every {}, attempts {} max, within {}, else {on_timeout})",
            ready.probe,
            Show(ready.interval),
            Show(ready.attempt_timeout),
            Show(ready.timeout)
        )?;
        if let Some(watch) = ready.watch {
            write!(
                f,
                ", then probed every {}: not ready after {} failures in a row, ready again after {} passes",
                Show(watch.period),
                watch.failure_threshold,
                watch.success_threshold
            )?;
        }
    }
    if let Some(live) = &p.live {
        write!(
            f,
            ", live while {} (every {}, attempts {} max; restarted after {} failures in a row)",
            live.probe,
            Show(live.period),
            Show(live.attempt_timeout),
            live.failure_threshold
        )?;
    }
    Ok(())
}

/// What its role adds: a task's retries, a sidecar's exits.
fn show_role(p: &ProcessSpec, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if p.role == Role::Task {
        f.write_str(", runs to completion")?;
        if let Some(timeout) = p.timeout {
            write!(f, " within {}", Show(timeout))?;
        }
        if p.retries > 0 {
            write!(f, ", {} retries after {} to {}", p.retries, Show(p.restart_delay), Show(p.max_restart_delay))?;
        }
    }
    if p.role == Role::Sidecar {
        write!(f, ", on exit {}", p.on_exit)?;
        if let Some(max) = p.max_restarts {
            write!(f, " (at most {max} restarts)")?;
        }
        if p.on_exit == OnExit::Restart {
            write!(f, " after {} to {}", Show(p.restart_delay), Show(p.max_restart_delay))?;
        }
        if let Some(code) = p.exit_code {
            write!(f, ", fails with {code}")?;
        }
    }
    Ok(())
}

/// What it is given beyond its command: directory, user, output, environment, limits.
fn show_settings(p: &ProcessSpec, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if let Some(dir) = &p.workdir {
        write!(f, ", workdir {}", dir.display())?;
    }
    if let Some(account) = &p.account {
        write!(f, ", runs as {account} and gid {}", account.gid)?;
    }
    if p.output != Output::Inherit {
        write!(f, ", output {}", p.output)?;
    }
    for var in &p.env {
        write!(f, ", env {var}")?;
    }
    for limit in &p.limits {
        write!(f, ", limit {limit}")?;
    }
    if let Some(umask) = p.umask {
        write!(f, ", umask {umask:04o}")?;
    }
    for (from, to) in &p.rewrite {
        match to {
            Some(to) => write!(f, ", {from} as {to}")?,
            None => write!(f, ", {from} ignored")?,
        }
    }
    Ok(())
}
