//! One `[[process]]`: its raw values read into a [`ProcessSpec`], each mistake noted
//! with its place, and the reading carried on past it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::environment::{read_env, read_limits, read_umask};
use super::raw::{RawMatch, RawOnExit, RawOnTimeout, RawProcess, RawReady, RawRole, RawSignal, RawStop};
use super::values::{read_addr, read_url, read_user};
use super::{At, Mistake, Mistakes, SaidProcess, read_duration, read_output};
use crate::duration::Show;
use crate::plan::{
    Check, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_FAILURE_THRESHOLD, DEFAULT_INTERVAL, DEFAULT_LIVE_PERIOD,
    DEFAULT_READY_TIMEOUT, DEFAULT_SUCCESS_THRESHOLD, Liveness, MatchName, Matcher, OnExit, OnTimeout, Output,
    ProcessSpec, Readiness, Role, Watch,
};
use crate::quoted::Quoted;
use crate::signo::Signo;

/// What a process takes from the role map's top level when it says nothing itself.
#[derive(Clone, Copy)]
pub struct Defaults {
    pub grace_period: Duration,
    pub output: Output,
}

/// Reads one `[[process]]` whose name and role were read. None when a mistake leaves
/// nothing to build on (no command); every mistake is noted in `m`.
pub fn read_process(p: &RawProcess, defaults: Defaults, at: &At, m: &mut Mistakes) -> Option<SaidProcess> {
    if p.gate {
        return read_gate(p, at, m);
    }
    let (name, role) = (p.name.as_ref()?, p.role.as_ref()?);
    let role = match role.get_ref() {
        RawRole::Primary => Role::Primary,
        RawRole::Sidecar => Role::Sidecar,
        RawRole::Task => Role::Task,
    };
    let (command, matcher) = read_launch(p, role, at, m)?;
    let mut spec = ProcessSpec::new(name.get_ref(), role, command);
    let grace_period = p.grace_period.as_ref().and_then(|v| m.note(read_duration(v, "grace_period", at)));
    spec.grace_period = grace_period.unwrap_or(defaults.grace_period);
    if let Some(matcher) = matcher {
        spec.matcher = Some(matcher);
        // exeunt cannot start another container's process again.
        spec.on_exit = OnExit::Ignore;
        refuse_for_matched(p, at, m);
    } else {
        // Another container's process writes where its own container put its output.
        spec.output = p.output.as_ref().and_then(|v| m.note(read_output(v, at))).unwrap_or(defaults.output);
    }
    read_stop_keys(p, &mut spec, at, m);
    if let Some(ready) = &p.ready {
        match role {
            Role::Primary => {
                let why = "ready: only sidecars have readiness probes; primaries start once the sidecars are ready";
                m.push(at(ready.span(), why.to_string()));
            }
            Role::Task => m.push(at(ready.span(), format!("ready: {TASK_DONE}"))),
            Role::Sidecar | Role::Gate => spec.ready = m.note(read_ready(ready, at)),
        }
    }
    if let Some(live) = &p.live {
        match role {
            Role::Task => m.push(at(live.span(), format!("live: {TASK_DONE}"))),
            _ => spec.live = m.note(read_live(live, at)),
        }
    }
    read_task_keys(p, &mut spec, at, m);
    read_exit_policy(p, &mut spec, at, m);
    read_workdir(p, &mut spec, at, m);
    let env = read_env(p.env.as_ref(), p.env_file.as_ref(), p.env_dir.as_ref(), at, m);
    let limits = p.limits.as_ref().map(|table| read_limits(table, at, m)).unwrap_or_default();
    spec.umask = p.umask.as_ref().and_then(|v| m.note(read_umask(v, at)));
    read_rewrite(p, &mut spec, at, m);
    let user = p.user.as_ref().and_then(|user| {
        let spec = read_user(user.get_ref());
        if spec.is_none() {
            let why = format!(
                "user: {} is not USER[:GROUP] (a uid or name, then a gid or group name)",
                Quoted(user.get_ref())
            );
            m.push(at(user.span(), why));
        }
        spec.map(|spec| (spec, user.span()))
    });
    Some(SaidProcess {
        spec,
        user,
        workdir_at: p.workdir.as_ref().map(Spanned::span),
        variables: env,
        own_limits: limits,
        command_check: p.command_check.unwrap_or(true),
        command_at: p.command.as_ref().map(Spanned::span),
    })
}

/// One `[[wait]]`, whose keys were sorted out as it was read: a gate, which starts
/// nothing and passes when its probe does.
fn read_gate(p: &RawProcess, at: &At, m: &mut Mistakes) -> Option<SaidProcess> {
    let name = p.name.as_ref()?;
    let Some(ready) = &p.ready else {
        if !p.refused.iter().any(|key| key == "ready") {
            let why = "ready: missing; a [[wait]] is its probe, such as ready = { tcp = \"127.0.0.1:5432\" }";
            m.push(at(name.span(), why.to_string()));
        }
        return None;
    };
    let raw = ready.get_ref();
    let refused = [
        ("fd", raw.fd.as_ref().map(Spanned::span), "announces itself"),
        ("notify", raw.notify.as_ref().map(Spanned::span), "announces itself"),
        ("period", raw.period.as_ref().map(Spanned::span), "is probed again once ready"),
        ("failure_threshold", raw.failure_threshold.as_ref().map(Spanned::span), "is probed again once ready"),
        ("success_threshold", raw.success_threshold.as_ref().map(Spanned::span), "is probed again once ready"),
    ];
    let mut clean = true;
    for (key, span, what) in refused {
        if let Some(span) = span {
            let why = format!("ready.{key}: only a process exeunt runs {what}; a gate is probed until it passes");
            m.push(at(span, why));
            clean = false;
        }
    }
    let mut spec = ProcessSpec::new(name.get_ref(), Role::Gate, Vec::new());
    spec.on_exit = OnExit::Ignore;
    spec.ready = if clean { Some(m.note(read_ready(ready, at))?) } else { None };
    Some(SaidProcess::bare(spec))
}

/// What starts the process: its command, or for a sidecar of another container, how
/// it is found.
fn read_launch(p: &RawProcess, role: Role, at: &At, m: &mut Mistakes) -> Option<(Vec<OsString>, Option<Matcher>)> {
    let name = p.name.as_ref()?;
    let launch = match (&p.command, &p.matcher) {
        (Some(command), None) => read_command(command, "command", at).map(|command| (command, None)),
        (None, Some(matcher)) if role == Role::Sidecar => read_match(matcher, at).map(|m| (Vec::new(), Some(m))),
        (None, Some(matcher)) => Err(at(
            matcher.span(),
            "match: only sidecars of other containers are found by match; a primary has a command".to_string(),
        )),
        (Some(_), Some(matcher)) => {
            Err(at(matcher.span(), "match: give either command or match, not both".to_string()))
        }
        // A key that could not be read is a mistake already, and may be the command
        // misspelt.
        (None, None) if !p.refused.is_empty() => return None,
        (None, None) => Err(at(
            name.span(),
            "command: missing; give the program to run (or match, for a sidecar of another container)".to_string(),
        )),
    };
    m.note(launch)
}

/// A sidecar found by match belongs to another container: the keys that say how to
/// start it are each a mistake.
fn refuse_for_matched(p: &RawProcess, at: &At, m: &mut Mistakes) {
    let restart = p.on_exit.as_ref().filter(|o| matches!(o.get_ref(), RawOnExit::Restart));
    let not_for_matched = [("on_exit", restart.map(Spanned::span))].into_iter().chain(restart_keys(p)).chain([
        ("user", p.user.as_ref().map(Spanned::span)),
        ("workdir", p.workdir.as_ref().map(Spanned::span)),
        ("env", p.env.as_ref().map(Spanned::span)),
        ("live", p.live.as_ref().map(Spanned::span)),
        ("env_file", p.env_file.as_ref().map(Spanned::span)),
        ("env_dir", p.env_dir.as_ref().map(Spanned::span)),
        ("limits", p.limits.as_ref().map(Spanned::span)),
        ("umask", p.umask.as_ref().map(Spanned::span)),
        ("output", p.output.as_ref().map(Spanned::span)),
    ]);
    for (key, span) in not_for_matched {
        if let Some(span) = span {
            let why = "a sidecar found by match belongs to another container, which starts it; exeunt cannot set this";
            m.push(at(span, format!("{key}: {why}")));
        }
    }
}

/// `stop_signal` and `[stop]`.
fn read_stop_keys(p: &RawProcess, spec: &mut ProcessSpec, at: &At, m: &mut Mistakes) {
    if let Some(value) = &p.stop_signal
        && let Some(signo) = m.note(read_stop_signal(value, "stop_signal", at))
    {
        spec.stop_signal = signo;
    }
    if let Some(stop) = &p.stop {
        m.note(read_stop(stop, p.stop_signal.is_some(), spec, at));
    }
}

/// Why a task takes no probe: what it is for is its exit.
const TASK_DONE: &str = "a task is done when it exits 0; what comes after it waits for that, not for a probe";

/// `timeout` and `retries`: a task's alone.
fn read_task_keys(p: &RawProcess, spec: &mut ProcessSpec, at: &At, m: &mut Mistakes) {
    let keys = [("timeout", p.timeout.as_ref().map(Spanned::span)), ("retries", p.retries.as_ref().map(Spanned::span))];
    if spec.role != Role::Task {
        for (key, span) in keys {
            if let Some(span) = span {
                m.push(at(
                    span,
                    format!("{key}: only tasks (role = \"task\") have it; a {} runs until it is stopped", spec.role),
                ));
            }
        }
        return;
    }
    if let Some(value) = &p.timeout {
        spec.timeout = m.note(read_duration(value, "timeout", at));
    }
    spec.retries = p.retries.as_ref().map_or(0, |n| *n.get_ref());
}

/// `on_exit`, the restart keys and `exit_code`: a sidecar's alone (a task takes the
/// restart delays, for the back-off between its tries).
fn read_exit_policy(p: &RawProcess, spec: &mut ProcessSpec, at: &At, m: &mut Mistakes) {
    if spec.role == Role::Task {
        let not_for_tasks = [
            ("on_exit", p.on_exit.as_ref().map(Spanned::span)),
            ("max_restarts", p.max_restarts.as_ref().map(Spanned::span)),
            ("exit_code", p.exit_code.as_ref().map(Spanned::span)),
        ];
        for (key, span) in not_for_tasks {
            if let Some(span) = span {
                let why =
                    "a task runs until it exits 0, at most 1 + retries times, and its failure's status is the run's";
                m.push(at(span, format!("{key}: {why}")));
            }
        }
    }
    if spec.role == Role::Primary {
        let sidecar_only = [("on_exit", p.on_exit.as_ref().map(Spanned::span))]
            .into_iter()
            .chain(restart_keys(p))
            .chain([("exit_code", p.exit_code.as_ref().map(Spanned::span))]);
        for (key, span) in sidecar_only {
            if let Some(span) = span {
                m.push(at(span, format!("{key}: only sidecars have an exit policy; a primary's exit ends the run")));
            }
        }
        return;
    }
    if let Some(on_exit) = &p.on_exit {
        spec.on_exit = match on_exit.get_ref() {
            RawOnExit::Restart => OnExit::Restart,
            RawOnExit::Ignore => OnExit::Ignore,
            RawOnExit::Fail => OnExit::Fail,
        };
    }
    spec.max_restarts = p.max_restarts.as_ref().map(|m| *m.get_ref());
    let restart_delay = p.restart_delay.as_ref().map(|v| m.note(read_duration(v, "restart_delay", at)));
    let max_restart_delay = p.max_restart_delay.as_ref().map(|v| m.note(read_duration(v, "max_restart_delay", at)));
    let both_read = !matches!((&restart_delay, &max_restart_delay), (Some(None), _) | (_, Some(None)));
    spec.restart_delay = restart_delay.flatten().unwrap_or(spec.restart_delay);
    spec.max_restart_delay = max_restart_delay.flatten().unwrap_or(spec.max_restart_delay);
    if both_read && spec.max_restart_delay < spec.restart_delay {
        let span = p.max_restart_delay.as_ref().or(p.restart_delay.as_ref()).map_or(p.at.clone(), Spanned::span);
        let (max, min) = (Show(spec.max_restart_delay), Show(spec.restart_delay));
        m.push(at(span, format!("max_restart_delay: {max} is shorter than restart_delay {min}")));
    }
    if let Some(code) = &p.exit_code {
        match u8::try_from(*code.get_ref()) {
            Ok(valid) => spec.exit_code = Some(i32::from(valid)),
            Err(_) => {
                m.push(at(code.span(), format!("exit_code: {} is not an exit code from 0 to 255", code.get_ref())))
            }
        }
    }
}

/// `workdir`.
fn read_workdir(p: &RawProcess, spec: &mut ProcessSpec, at: &At, m: &mut Mistakes) {
    if let Some(dir) = &p.workdir {
        if dir.get_ref().is_empty() || dir.get_ref().contains('\0') {
            m.push(at(dir.span(), "workdir: must be a non-empty path".to_string()));
        } else {
            spec.workdir = Some(PathBuf::from(dir.get_ref()));
        }
    }
}

/// `rewrite`: a primary's table of signals.
fn read_rewrite(p: &RawProcess, spec: &mut ProcessSpec, at: &At, m: &mut Mistakes) {
    let Some(table) = &p.rewrite else { return };
    if spec.role != Role::Primary {
        let why =
            format!("rewrite: only primaries get the signals exeunt receives; a {} gets its stop action", spec.role);
        return m.push(at(table.span(), why));
    }
    for (from, to) in table.get_ref() {
        let bad = |e: crate::signo::UnknownSignal| at(table.span(), format!("rewrite: {e}"));
        let from = Signo::parse(from).map_err(bad);
        let to = match to.0.to_ascii_lowercase().as_str() {
            "ignore" => Ok(None),
            _ => Signo::parse(&to.0).map(Some).map_err(bad),
        };
        if let (Some(from), Some(to)) = (m.note(from), m.note(to)) {
            spec.rewrite.push((from, to));
        }
    }
}

/// The keys that say how a sidecar is restarted, each with where it was given: they
/// are refused for primaries and for sidecars found by match.
fn restart_keys(p: &RawProcess) -> [(&'static str, Option<std::ops::Range<usize>>); 3] {
    [
        ("max_restarts", p.max_restarts.as_ref().map(Spanned::span)),
        ("restart_delay", p.restart_delay.as_ref().map(Spanned::span)),
        ("max_restart_delay", p.max_restart_delay.as_ref().map(Spanned::span)),
    ]
}

/// Reads a command line (`command`, `ready.exec`, `stop.exec`); `key` names it in errors.
fn read_command(command: &Spanned<Vec<String>>, key: &str, at: &At) -> Result<Vec<OsString>, Mistake> {
    let words = command.get_ref();
    match words.first() {
        None => return Err(at(command.span(), format!("{key}: must name a program, it is empty"))),
        Some(program) if program.is_empty() => {
            return Err(at(command.span(), format!("{key}: the program name is empty")));
        }
        _ => {}
    }
    if words.iter().any(|arg| arg.contains('\0')) {
        return Err(at(command.span(), format!("{key}: contains a NUL character")));
    }
    Ok(words.iter().map(OsString::from).collect())
}

fn read_match(matcher: &Spanned<RawMatch>, at: &At) -> Result<Matcher, Mistake> {
    let raw = matcher.get_ref();
    let given = [&raw.comm, &raw.exe, &raw.argv0];
    let Some(value) =
        given.iter().copied().flatten().next().filter(|_| given.iter().filter(|g| g.is_some()).count() == 1)
    else {
        return Err(at(matcher.span(), "match: give exactly one of comm, exe or argv0".to_string()));
    };
    let text = value.get_ref();
    if text.is_empty() || text.contains('\0') {
        return Err(at(value.span(), "match: the value must be non-empty".to_string()));
    }
    let name = match (&raw.comm, &raw.exe) {
        (Some(comm), _) if comm.get_ref().len() > 15 => {
            return Err(at(
                comm.span(),
                format!(
                    "match.comm: {} is longer than the 15 bytes the kernel keeps of a command name; match by exe or argv0",
                    Quoted(comm.get_ref())
                ),
            ));
        }
        (Some(_), _) => MatchName::Comm(text.clone()),
        (None, Some(_)) => MatchName::Exe(PathBuf::from(text)),
        (None, None) => MatchName::Argv0(text.clone()),
    };
    if let Some(cgroup) = &raw.cgroup
        && (cgroup.get_ref().is_empty() || cgroup.get_ref().contains(['\0', '\n']))
    {
        return Err(at(cgroup.span(), "match.cgroup: the value must be non-empty, on one line".to_string()));
    }
    if let Some(uid) = &raw.uid
        && *uid.get_ref() == u32::MAX
    {
        return Err(at(uid.span(), "match.uid: 4294967295 is no process's uid".to_string()));
    }
    let uid = raw.uid.as_ref().map(|u| *u.get_ref());
    Ok(Matcher { name, uid, cgroup: raw.cgroup.as_ref().map(|c| c.get_ref().clone()) })
}

/// A stop signal: one that can end a process. SIGSTOP only pauses it, and cannot be
/// caught: a process asked to stop with it would wait out its grace period paused.
fn read_stop_signal(value: &Spanned<RawSignal>, key: &str, at: &At) -> Result<Signo, Mistake> {
    let signo = Signo::parse(&value.get_ref().0).map_err(|e| at(value.span(), format!("{key}: {e}")))?;
    if signo.0 == libc::SIGSTOP {
        return Err(at(
            value.span(),
            format!("{key}: SIGSTOP pauses a process and cannot end it; name a signal that can"),
        ));
    }
    Ok(signo)
}

fn read_stop(stop: &Spanned<RawStop>, has_stop_signal: bool, spec: &mut ProcessSpec, at: &At) -> Result<(), Mistake> {
    let raw = stop.get_ref();
    let given = [raw.signal.is_some(), raw.http.is_some(), raw.exec.is_some()];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(at(stop.span(), "stop: give exactly one of signal, http or exec".to_string()));
    }
    if let Some(signal) = &raw.signal {
        if has_stop_signal {
            return Err(at(signal.span(), "stop.signal: stop_signal is set too; keep one of them".to_string()));
        }
        spec.stop_signal = read_stop_signal(signal, "stop.signal", at)?;
    }
    if let Some(url) = &raw.http {
        let target = read_url(url.get_ref()).map_err(|e| at(url.span(), format!("stop.http: {e}")))?;
        spec.stop_hook = Some(Check::Http { method: "POST", target });
    }
    if let Some(argv) = &raw.exec {
        spec.stop_hook = Some(Check::Exec(read_command(argv, "stop.exec", at)?));
    }
    Ok(())
}

fn read_ready(ready: &Spanned<RawReady>, at: &At) -> Result<Readiness, Mistake> {
    let raw = ready.get_ref();
    let announced = raw.fd.is_some() || raw.notify.is_some();
    let probe = match announced {
        true => read_notice(raw, at)?,
        false => read_probe([&raw.tcp, &raw.http, &raw.file], &raw.exec, "ready", ready.span(), at)?,
    };
    let duration_or = |value: &Option<Spanned<String>>, key: &str, default: Duration| -> Result<Duration, Mistake> {
        match value {
            Some(value) => {
                let parsed = read_duration(value, key, at)?;
                if parsed < Duration::from_millis(1) {
                    return Err(at(value.span(), format!("{key}: must be at least 1ms")));
                }
                Ok(parsed)
            }
            None => Ok(default),
        }
    };
    Ok(Readiness {
        probe,
        interval: duration_or(&raw.interval, "ready.interval", DEFAULT_INTERVAL)?,
        timeout: duration_or(&raw.timeout, "ready.timeout", DEFAULT_READY_TIMEOUT)?,
        // A notice is waited for as one attempt, for as long as the start waits.
        attempt_timeout: match announced {
            true => duration_or(&raw.timeout, "ready.timeout", DEFAULT_READY_TIMEOUT)?,
            false => duration_or(&raw.attempt_timeout, "ready.attempt_timeout", DEFAULT_ATTEMPT_TIMEOUT)?,
        },
        on_timeout: match raw.on_timeout {
            Some(RawOnTimeout::Start) => OnTimeout::Start,
            Some(RawOnTimeout::Fail) | None => OnTimeout::Fail,
        },
        watch: read_watch(raw, at)?,
    })
}

/// `ready.period` and its thresholds: the probing that goes on once it is ready.
fn read_watch(raw: &RawReady, at: &At) -> Result<Option<Watch>, Mistake> {
    let threshold = |value: &Option<Spanned<u32>>, key: &str, default: u32| match value {
        Some(n) if *n.get_ref() == 0 => Err(at(n.span(), format!("{key}: must be at least 1"))),
        Some(n) => Ok(*n.get_ref()),
        None => Ok(default),
    };
    let failure_threshold = threshold(&raw.failure_threshold, "ready.failure_threshold", DEFAULT_FAILURE_THRESHOLD)?;
    let success_threshold = threshold(&raw.success_threshold, "ready.success_threshold", DEFAULT_SUCCESS_THRESHOLD)?;
    let Some(period) = &raw.period else {
        if let Some(span) = raw.failure_threshold.as_ref().or(raw.success_threshold.as_ref()).map(Spanned::span) {
            let why = "ready: the thresholds count the attempts made every period; give period too";
            return Err(at(span, why.to_string()));
        }
        return Ok(None);
    };
    let period_value = read_duration(period, "ready.period", at)?;
    if period_value < Duration::from_millis(1) {
        return Err(at(period.span(), "ready.period: must be at least 1ms".to_string()));
    }
    Ok(Some(Watch { period: period_value, failure_threshold, success_threshold }))
}

/// The one probe of `ready` or `live`: `tcp`, `http`, `file` (`strings`, in that order)
/// or `exec`.
fn read_probe(
    strings: [&Option<Spanned<String>>; 3],
    exec: &Option<Spanned<Vec<String>>>,
    key: &str,
    span: std::ops::Range<usize>,
    at: &At,
) -> Result<Check, Mistake> {
    let [tcp, http, file] = strings;
    let given = [tcp.is_some(), http.is_some(), exec.is_some(), file.is_some()];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(at(span, format!("{key}: give exactly one probe: tcp, http, exec or file")));
    }
    if let Some(addr) = tcp {
        return Ok(Check::Tcp(read_addr(addr.get_ref()).map_err(|e| at(addr.span(), format!("{key}.tcp: {e}")))?));
    }
    if let Some(url) = http {
        let target = read_url(url.get_ref()).map_err(|e| at(url.span(), format!("{key}.http: {e}")))?;
        return Ok(Check::Http { method: "GET", target });
    }
    if let Some(argv) = exec {
        return Ok(Check::Exec(read_command(argv, &format!("{key}.exec"), at)?));
    }
    match file.as_ref().filter(|p| !p.get_ref().is_empty() && !p.get_ref().contains('\0')) {
        Some(path) => Ok(Check::File(PathBuf::from(path.get_ref()))),
        None => Err(at(span, format!("{key}.file: must be a non-empty path"))),
    }
}

/// `live`: a liveness probe, a sidecar's or a primary's.
fn read_live(live: &Spanned<RawReady>, at: &At) -> Result<Liveness, Mistake> {
    let raw = live.get_ref();
    let not_live = [
        ("interval", raw.interval.as_ref().map(Spanned::span)),
        ("timeout", raw.timeout.as_ref().map(Spanned::span)),
        ("success_threshold", raw.success_threshold.as_ref().map(Spanned::span)),
    ];
    if let Some((key, span)) = not_live.into_iter().find_map(|(key, span)| span.map(|s| (key, s))) {
        let why = "is a readiness probe's; a liveness probe takes period, failure_threshold and attempt_timeout";
        return Err(at(span, format!("live.{key}: {why}")));
    }
    if raw.on_timeout.is_some() {
        return Err(at(live.span(), "live.on_timeout: is a readiness probe's; a liveness probe restarts".to_string()));
    }
    if let Some(fd) = &raw.fd {
        let why = "live.fd: a notice comes once; a liveness probe must be asked again and again";
        return Err(at(fd.span(), why.to_string()));
    }
    if let Some(notify) = &raw.notify {
        let why = "live.notify: give it in ready; a process that asks for a watchdog (WATCHDOG_USEC) is held to it";
        return Err(at(notify.span(), why.to_string()));
    }
    let probe = read_probe([&raw.tcp, &raw.http, &raw.file], &raw.exec, "live", live.span(), at)?;
    let duration_or = |value: &Option<Spanned<String>>, key: &str, default: Duration| -> Result<Duration, Mistake> {
        let Some(value) = value else { return Ok(default) };
        let parsed = read_duration(value, key, at)?;
        if parsed < Duration::from_millis(1) {
            return Err(at(value.span(), format!("{key}: must be at least 1ms")));
        }
        Ok(parsed)
    };
    let failure_threshold = match &raw.failure_threshold {
        Some(n) if *n.get_ref() == 0 => {
            return Err(at(n.span(), "live.failure_threshold: must be at least 1".to_string()));
        }
        Some(n) => *n.get_ref(),
        None => DEFAULT_FAILURE_THRESHOLD,
    };
    Ok(Liveness {
        probe,
        period: duration_or(&raw.period, "live.period", DEFAULT_LIVE_PERIOD)?,
        failure_threshold,
        attempt_timeout: duration_or(&raw.attempt_timeout, "live.attempt_timeout", DEFAULT_ATTEMPT_TIMEOUT)?,
    })
}

/// `ready = { fd = N }` or `ready = { notify = "systemd" }`: readiness the process
/// announces, with a newline on descriptor N (s6's notification-fd) or `READY=1` on its
/// `NOTIFY_SOCKET`. It comes once, so it takes no other probe and no period.
fn read_notice(raw: &RawReady, at: &At) -> Result<Check, Mistake> {
    let given = [raw.tcp.is_some(), raw.http.is_some(), raw.exec.is_some(), raw.file.is_some(), raw.fd.is_some()];
    let span = raw.notify.as_ref().map(Spanned::span).or(raw.fd.as_ref().map(Spanned::span)).unwrap_or_default();
    if given.iter().filter(|&&g| g).count() + usize::from(raw.notify.is_some()) != 1 {
        return Err(at(span, "ready: give exactly one probe: tcp, http, exec, file, fd or notify".to_string()));
    }
    if let Some(period) = &raw.period {
        let why = "ready.period: a process announces its readiness once; it cannot be asked again every period";
        return Err(at(period.span(), why.to_string()));
    }
    if let Some(notify) = &raw.notify {
        return match notify.get_ref().as_str() {
            "systemd" => Ok(Check::Notify),
            other => Err(at(
                notify.span(),
                format!("ready.notify: {other:?} is not a protocol exeunt speaks; it speaks \"systemd\""),
            )),
        };
    }
    let Some(fd) = &raw.fd else { return Err(at(span, "ready: no notice given".to_string())) };
    match u8::try_from(*fd.get_ref()) {
        Ok(n @ 3..) => Ok(Check::Fd(n)),
        _ => Err(at(
            fd.span(),
            format!(
                "ready.fd: {} is not a descriptor from 3 to 255 (0 to 2 are stdin, stdout and stderr)",
                fd.get_ref()
            ),
        )),
    }
}
