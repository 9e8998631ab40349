//! Where the role map is parsed: TOML in, a validated [`Plan`] out, or one error that
//! names the file, the line and the key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::duration::{self, Show};
use crate::logger::LogFormat;
use crate::plan::{
    Check, ControlSocket, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BIRTH_TIMEOUT, DEFAULT_GRACE, DEFAULT_GRAVEYARD,
    DEFAULT_INTERVAL, DEFAULT_READY_TIMEOUT, MatchName, Matcher, OnExit, OnTimeout, Output, Plan, Pod, ProcessSpec,
    Readiness, Role, ShutdownOrder,
};
use crate::quoted::Quoted;
use crate::signo::Signo;

mod values;
use values::read_user;
pub use values::{invalid_name, is_valid_name, name_problem, read_addr, read_url};

/// Role maps larger than this are refused rather than read: a real one is a few KiB.
pub const MAX_SIZE: u64 = 1 << 20;

/// A role map that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapError {
    origin: String,
    /// 1-based line and column, when the problem has a place in the text.
    position: Option<(usize, usize)>,
    message: String,
}

impl fmt::Display for RoleMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{}:{}: {}", self.origin, line, column, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for RoleMapError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoleMap {
    grace_period: Option<Spanned<String>>,
    shutdown: Option<RawShutdown>,
    match_timeout: Option<Spanned<String>>,
    kill_primaries_after: Option<Spanned<String>>,
    kill_on_second_signal: Option<bool>,
    stop_delay: Option<Spanned<String>>,
    output: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
    control_socket: Option<Spanned<String>>,
    pod: Option<RawPod>,
    #[serde(default)]
    process: Vec<RawProcess>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    name: Spanned<String>,
    role: Spanned<RawRole>,
    command: Option<Spanned<Vec<String>>>,
    #[serde(rename = "match")]
    matcher: Option<Spanned<RawMatch>>,
    stop_signal: Option<Spanned<RawSignal>>,
    grace_period: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    stop: Option<Spanned<RawStop>>,
    ready: Option<Spanned<RawReady>>,
    on_exit: Option<Spanned<RawOnExit>>,
    max_restarts: Option<Spanned<u32>>,
    restart_delay: Option<Spanned<String>>,
    max_restart_delay: Option<Spanned<String>>,
    exit_code: Option<Spanned<i64>>,
    rewrite: Option<Spanned<BTreeMap<String, RawSignal>>>,
    output: Option<Spanned<String>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawRole {
    Primary,
    Sidecar,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawShutdown {
    Ordered,
    Parallel,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawOnExit {
    Restart,
    Ignore,
    Fail,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawOnTimeout {
    Fail,
    Start,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPod {
    name: Spanned<String>,
    graveyard: Option<Spanned<String>>,
    death_deps: Option<Vec<Spanned<String>>>,
    birth_deps: Option<Vec<Spanned<String>>>,
    birth_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    comm: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    argv0: Option<Spanned<String>>,
    uid: Option<Spanned<u32>>,
    cgroup: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStop {
    signal: Option<Spanned<RawSignal>>,
    http: Option<Spanned<String>>,
    exec: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReady {
    tcp: Option<Spanned<String>>,
    http: Option<Spanned<String>>,
    exec: Option<Spanned<Vec<String>>>,
    file: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    attempt_timeout: Option<Spanned<String>>,
    on_timeout: Option<RawOnTimeout>,
}

/// Reads the role map at `path`. `command`, when given, becomes the primary: it
/// replaces the command of the role map's one primary, or is added as primary `main`.
pub fn load(path: &Path, command: Option<&[OsString]>) -> Result<Plan, RoleMapError> {
    let origin = path.display().to_string();
    let io_error = |e: std::io::Error| RoleMapError {
        origin: origin.clone(),
        position: None,
        message: format!("cannot read the role map: {e}"),
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(RoleMapError {
            origin,
            position: None,
            message: format!("the role map is larger than {MAX_SIZE} bytes"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| RoleMapError {
        origin: origin.clone(),
        position: None,
        message: format!("the role map is not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
    })?;
    parse(&text, &origin, command)
}

/// Parses and validates a role map's text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str, command: Option<&[OsString]>) -> Result<Plan, RoleMapError> {
    let at = |span: Range<usize>, message: String| RoleMapError {
        origin: origin.to_string(),
        position: Some(line_and_column(text, span.start)),
        message,
    };
    let raw: RawRoleMap = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().replace('`', "'");
        RoleMapError {
            origin: origin.to_string(),
            position: e.span().map(|span| line_and_column(text, span.start)),
            message: e.span().and_then(|span| wrong_type(text, span.start, &message)).unwrap_or(message),
        }
    })?;

    let grace_period = match &raw.grace_period {
        Some(value) => read_duration(value, "grace_period", &at)?,
        None => DEFAULT_GRACE,
    };
    let output = match &raw.output {
        Some(value) => read_output(value, &at)?,
        None => Output::Inherit,
    };
    let mut processes = Vec::with_capacity(raw.process.len() + 1);
    for (index, p) in raw.process.iter().enumerate() {
        check_name(&p.name, &at)?;
        if let Some(first) = raw.process[..index].iter().find(|q| q.name.get_ref() == p.name.get_ref()) {
            let (line, _) = line_and_column(text, first.name.span().start);
            return Err(at(
                p.name.span(),
                format!("name: {} is already the name of the process on line {line}", Quoted(p.name.get_ref())),
            ));
        }
        processes.push(read_process(p, grace_period, output, &at)?);
    }

    let primaries: Vec<&RawProcess> = raw.process.iter().filter(|p| *p.role.get_ref() == RawRole::Primary).collect();
    match (command, primaries.as_slice()) {
        (Some(_), [_, second, ..]) => {
            return Err(at(
                second.role.span(),
                "role: a command given on the command line replaces the one primary, but this role map has several"
                    .to_string(),
            ));
        }
        (Some(command), [only]) => {
            let process = processes.iter_mut().find(|p| p.name == *only.name.get_ref());
            if let Some(process) = process {
                process.command = command.to_vec();
            }
        }
        (Some(command), []) => {
            let name = (1..)
                .map(|n| if n == 1 { "main".to_string() } else { format!("main-{n}") })
                .find(|name| processes.iter().all(|p| p.name != *name))
                .unwrap_or_default();
            let mut primary = ProcessSpec::new(&name, Role::Primary, command.to_vec());
            primary.grace_period = grace_period;
            primary.output = output;
            processes.push(primary);
        }
        (None, []) => {
            return Err(match raw.process.first() {
                Some(first) => at(
                    first.role.span(),
                    "role: no process has role = \"primary\"; mark one, or give the command on the command line"
                        .to_string(),
                ),
                None => RoleMapError {
                    origin: origin.to_string(),
                    position: Some((1, 1)),
                    message: "process: the role map lists no [[process]]".to_string(),
                },
            });
        }
        (None, _) => {}
    }
    let mut plan = Plan::new(processes, grace_period);
    if let Some(RawShutdown::Parallel) = raw.shutdown {
        plan.shutdown = ShutdownOrder::Parallel;
    }
    if let Some(pod) = &raw.pod {
        plan.pod = Some(read_pod(pod, &at)?);
    }
    if let Some(value) = &raw.match_timeout {
        plan.match_timeout = Some(read_duration(value, "match_timeout", &at)?);
    }
    if let Some(value) = &raw.kill_primaries_after {
        plan.kill_primaries_after = Some(read_duration(value, "kill_primaries_after", &at)?);
    }
    plan.kill_on_second_signal = raw.kill_on_second_signal.unwrap_or(false);
    if let Some(value) = &raw.stop_delay {
        plan.stop_delay = read_duration(value, "stop_delay", &at)?;
    }
    if let Some(value) = &raw.log_format {
        plan.log_format =
            Some(read_choice(value, "log_format", &[("text", LogFormat::Text), ("json", LogFormat::Json)], &at)?);
    }
    if let Some(value) = &raw.control_socket {
        let socket =
            ControlSocket::parse(value.get_ref()).map_err(|e| at(value.span(), format!("control_socket: {e}")))?;
        plan.control_socket = Some(socket);
    }
    Ok(plan)
}

type At<'a> = dyn Fn(Range<usize>, String) -> RoleMapError + 'a;

/// Reads one `[[process]]`; `global_grace` and `output` are the role map's defaults.
fn read_process(p: &RawProcess, global_grace: Duration, output: Output, at: &At) -> Result<ProcessSpec, RoleMapError> {
    let role = match p.role.get_ref() {
        RawRole::Primary => Role::Primary,
        RawRole::Sidecar => Role::Sidecar,
    };
    let (command, matcher) = match (&p.command, &p.matcher) {
        (Some(command), None) => (read_command(command, "command", at)?, None),
        (None, Some(matcher)) if role == Role::Sidecar => (Vec::new(), Some(read_match(matcher, at)?)),
        (None, Some(matcher)) => {
            return Err(at(
                matcher.span(),
                "match: only sidecars of other containers are found by match; a primary has a command".to_string(),
            ));
        }
        (Some(_), Some(matcher)) => {
            return Err(at(matcher.span(), "match: give either command or match, not both".to_string()));
        }
        (None, None) => {
            return Err(at(
                p.name.span(),
                "command: missing; give the program to run (or match, for a sidecar of another container)".to_string(),
            ));
        }
    };
    let mut spec = ProcessSpec::new(p.name.get_ref(), role, command);
    if let Some(matcher) = matcher {
        spec.matcher = Some(matcher);
        // exeunt cannot start another container's process again.
        spec.on_exit = OnExit::Ignore;
        let restart = p.on_exit.as_ref().filter(|o| matches!(o.get_ref(), RawOnExit::Restart));
        let not_for_matched = [("on_exit", restart.map(Spanned::span))].into_iter().chain(restart_keys(p)).chain([
            ("user", p.user.as_ref().map(Spanned::span)),
            ("workdir", p.workdir.as_ref().map(Spanned::span)),
            ("env", p.env.as_ref().map(Spanned::span)),
            ("output", p.output.as_ref().map(Spanned::span)),
        ]);
        if let Some((key, Some(span))) = not_for_matched.into_iter().find(|(_, span)| span.is_some()) {
            return Err(at(
                span,
                format!(
                    "{key}: a sidecar found by match belongs to another container, which starts it; exeunt cannot set this"
                ),
            ));
        }
    }
    spec.grace_period = match &p.grace_period {
        Some(value) => read_duration(value, "grace_period", at)?,
        None => global_grace,
    };
    if spec.matcher.is_none() {
        // Another container's process writes where its own container put its output.
        spec.output = match &p.output {
            Some(value) => read_output(value, at)?,
            None => output,
        };
    }
    if let Some(value) = &p.stop_signal {
        spec.stop_signal = read_stop_signal(value, "stop_signal", at)?;
    }
    if let Some(stop) = &p.stop {
        read_stop(stop, p.stop_signal.is_some(), &mut spec, at)?;
    }
    if let Some(ready) = &p.ready {
        if role == Role::Primary {
            return Err(at(
                ready.span(),
                "ready: only sidecars have readiness probes; primaries start once the sidecars are ready".to_string(),
            ));
        }
        spec.ready = Some(read_ready(ready, at)?);
    }
    if role == Role::Primary {
        let sidecar_only = [("on_exit", p.on_exit.as_ref().map(Spanned::span))]
            .into_iter()
            .chain(restart_keys(p))
            .chain([("exit_code", p.exit_code.as_ref().map(Spanned::span))]);
        if let Some((key, Some(span))) = sidecar_only.into_iter().find(|(_, span)| span.is_some()) {
            return Err(at(span, format!("{key}: only sidecars have an exit policy; a primary's exit ends the run")));
        }
    }
    if let Some(on_exit) = &p.on_exit {
        spec.on_exit = match on_exit.get_ref() {
            RawOnExit::Restart => OnExit::Restart,
            RawOnExit::Ignore => OnExit::Ignore,
            RawOnExit::Fail => OnExit::Fail,
        };
    }
    spec.max_restarts = p.max_restarts.as_ref().map(|m| *m.get_ref());
    if let Some(value) = &p.restart_delay {
        spec.restart_delay = read_duration(value, "restart_delay", at)?;
    }
    if let Some(value) = &p.max_restart_delay {
        spec.max_restart_delay = read_duration(value, "max_restart_delay", at)?;
    }
    if spec.max_restart_delay < spec.restart_delay {
        let span = p.max_restart_delay.as_ref().or(p.restart_delay.as_ref()).map_or(p.name.span(), Spanned::span);
        return Err(at(
            span,
            format!(
                "max_restart_delay: {} is shorter than restart_delay {}",
                Show(spec.max_restart_delay),
                Show(spec.restart_delay)
            ),
        ));
    }
    if let Some(code) = &p.exit_code {
        let valid = u8::try_from(*code.get_ref())
            .map_err(|_| at(code.span(), format!("exit_code: {} is not an exit code from 0 to 255", code.get_ref())))?;
        spec.exit_code = Some(i32::from(valid));
    }
    if let Some(env) = &p.env {
        for (key, value) in env.get_ref() {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                return Err(at(
                    env.span(),
                    format!(
                        "env: {} cannot be set: names must be non-empty and hold no '=' or NUL, values no NUL",
                        Quoted(key)
                    ),
                ));
            }
            spec.env.push((key.clone(), value.clone()));
        }
    }
    if let Some(dir) = &p.workdir {
        if dir.get_ref().is_empty() || dir.get_ref().contains('\0') {
            return Err(at(dir.span(), "workdir: must be a non-empty path".to_string()));
        }
        spec.workdir = Some(PathBuf::from(dir.get_ref()));
    }
    if let Some(table) = &p.rewrite {
        if role == Role::Sidecar {
            return Err(at(
                table.span(),
                "rewrite: only primaries get the signals exeunt receives; a sidecar gets its stop action".to_string(),
            ));
        }
        for (from, to) in table.get_ref() {
            let bad = |e: crate::signo::UnknownSignal| at(table.span(), format!("rewrite: {e}"));
            let from = Signo::parse(from).map_err(bad)?;
            let to = match to.0.to_ascii_lowercase().as_str() {
                "ignore" => None,
                _ => Some(Signo::parse(&to.0).map_err(bad)?),
            };
            spec.rewrite.push((from, to));
        }
    }
    if let Some(user) = &p.user {
        spec.user = Some(read_user(user.get_ref()).ok_or_else(|| {
            at(
                user.span(),
                format!(
                    "user: {} is not USER[:GROUP] (a uid or name, then a gid or group name)",
                    Quoted(user.get_ref())
                ),
            )
        })?);
    }
    Ok(spec)
}

/// The keys that say how a sidecar is restarted, each with where it was given: they
/// are refused for primaries and for sidecars found by match.
fn restart_keys(p: &RawProcess) -> [(&'static str, Option<Range<usize>>); 3] {
    [
        ("max_restarts", p.max_restarts.as_ref().map(Spanned::span)),
        ("restart_delay", p.restart_delay.as_ref().map(Spanned::span)),
        ("max_restart_delay", p.max_restart_delay.as_ref().map(Spanned::span)),
    ]
}

/// `[process]` where `[[process]]` is meant, which TOML reports as a table where a list
/// was expected (the first process) or as a duplicate key (after a `[[process]]`): the
/// error points into the header's line.
fn single_brackets(text: &str, at: usize, message: &str) -> Option<String> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?.trim();
    let name = line.strip_prefix('[')?.strip_suffix(']')?.trim();
    let meant = match message {
        "invalid type: map, expected a sequence" => true,
        "duplicate key" => text.contains(&format!("[[{name}]]")),
        _ => false,
    };
    (meant && !name.starts_with('[') && !name.is_empty())
        .then(|| format!("{name}: write [[{name}]] with double brackets: each [[{name}]] table is one entry of a list"))
}

/// A value of the wrong type, said with its key and the form it takes: serde knows
/// neither the key nor an example (`invalid type: string "nginx", expected a sequence`).
fn wrong_type(text: &str, at: usize, message: &str) -> Option<String> {
    if let Some(hint) = single_brackets(text, at, message) {
        return Some(hint);
    }
    let (found, expected) = message.strip_prefix("invalid type: ")?.split_once(", expected ")?;
    // The key is the last `key =` on the value's line before it (inline tables hold several).
    let line = text.get(..at)?.rsplit('\n').next()?;
    let key = line.trim_end().strip_suffix('=')?.trim_end();
    let key = key.rsplit([' ', '{', ',', '\t']).next().filter(|k| !k.is_empty())?;
    let form = match key {
        "command" | "exec" => "a list such as [\"nginx\", \"-g\", \"daemon off;\"]".to_string(),
        "env" => "a table such as { LOG_LEVEL = \"debug\" }".to_string(),
        "birth_deps" | "death_deps" => "a list of names such as [\"db\"]".to_string(),
        "process" => "[[process]] tables, one per process".to_string(),
        _ => expected.replace("a sequence", "a list").replace("a map", "a table"),
    };
    let found = found.replace("sequence", "list").replace("map", "table");
    Some(format!("{key}: expected {form}, not {found}"))
}

/// Reads a command line (`command`, `ready.exec`, `stop.exec`); `key` names it in errors.
fn read_command(command: &Spanned<Vec<String>>, key: &str, at: &At) -> Result<Vec<OsString>, RoleMapError> {
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

fn read_match(matcher: &Spanned<RawMatch>, at: &At) -> Result<Matcher, RoleMapError> {
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

fn read_pod(raw: &RawPod, at: &At) -> Result<Pod, RoleMapError> {
    let name = |value: &Spanned<String>, key: &str| -> Result<String, RoleMapError> {
        if is_valid_name(value.get_ref()) {
            return Ok(value.get_ref().clone());
        }
        Err(at(value.span(), invalid_name(&format!("pod.{key}"), value.get_ref())))
    };
    let names = |values: &Option<Vec<Spanned<String>>>, key: &str| -> Result<Vec<String>, RoleMapError> {
        values.iter().flatten().map(|v| name(v, key)).collect()
    };
    let graveyard = match &raw.graveyard {
        Some(path) if path.get_ref().starts_with('/') && !path.get_ref().contains('\0') => {
            PathBuf::from(path.get_ref())
        }
        Some(path) => return Err(at(path.span(), "pod.graveyard: must be an absolute path".to_string())),
        None => PathBuf::from(DEFAULT_GRAVEYARD),
    };
    Ok(Pod {
        name: name(&raw.name, "name")?,
        graveyard,
        death_deps: names(&raw.death_deps, "death_deps")?,
        birth_deps: names(&raw.birth_deps, "birth_deps")?,
        birth_timeout: match &raw.birth_timeout {
            Some(value) => read_duration(value, "pod.birth_timeout", at)?,
            None => DEFAULT_BIRTH_TIMEOUT,
        },
    })
}

/// A signal as a role map writes it: a name (`"SIGTERM"`) or a number (`15`).
struct RawSignal(String);

impl<'de> Deserialize<'de> for RawSignal {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RawSignal, D::Error> {
        struct Either;
        impl serde::de::Visitor<'_> for Either {
            type Value = RawSignal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signal name such as \"SIGTERM\", or its number")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<RawSignal, E> {
                Ok(RawSignal(name.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<RawSignal, E> {
                Ok(RawSignal(number.to_string()))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// A stop signal: one that can end a process. SIGSTOP only pauses it, and cannot be
/// caught: a process asked to stop with it would wait out its grace period paused.
fn read_stop_signal(value: &Spanned<RawSignal>, key: &str, at: &At) -> Result<Signo, RoleMapError> {
    let signo = Signo::parse(&value.get_ref().0).map_err(|e| at(value.span(), format!("{key}: {e}")))?;
    if signo.0 == libc::SIGSTOP {
        return Err(at(
            value.span(),
            format!("{key}: SIGSTOP pauses a process and cannot end it; name a signal that can"),
        ));
    }
    Ok(signo)
}

fn read_output(value: &Spanned<String>, at: &At) -> Result<Output, RoleMapError> {
    let choices = [("inherit", Output::Inherit), ("prefix", Output::Prefix), ("json", Output::Json)];
    read_choice(value, "output", &choices, at)
}

/// One of a few words. Read from a string rather than derived as an enum: each derived
/// enum costs the static binary kilobytes of deserializer code.
fn read_choice<T: Copy>(value: &Spanned<String>, key: &str, choices: &[(&str, T)], at: &At) -> Result<T, RoleMapError> {
    if let Some((_, choice)) = choices.iter().find(|(name, _)| name == value.get_ref()) {
        return Ok(*choice);
    }
    let names: Vec<String> = choices.iter().map(|(name, _)| format!("\"{name}\"")).collect();
    Err(at(value.span(), format!("{key}: {} is not one of {}", Quoted(value.get_ref()), names.join(", "))))
}

fn read_duration(value: &Spanned<String>, key: &str, at: &At) -> Result<Duration, RoleMapError> {
    duration::parse(value.get_ref()).map_err(|e| at(value.span(), format!("{key}: {e}")))
}

fn read_stop(
    stop: &Spanned<RawStop>,
    has_stop_signal: bool,
    spec: &mut ProcessSpec,
    at: &At,
) -> Result<(), RoleMapError> {
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

fn read_ready(ready: &Spanned<RawReady>, at: &At) -> Result<Readiness, RoleMapError> {
    let raw = ready.get_ref();
    let given = [raw.tcp.is_some(), raw.http.is_some(), raw.exec.is_some(), raw.file.is_some()];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(at(ready.span(), "ready: give exactly one probe: tcp, http, exec or file".to_string()));
    }
    let probe = if let Some(addr) = &raw.tcp {
        Check::Tcp(read_addr(addr.get_ref()).map_err(|e| at(addr.span(), format!("ready.tcp: {e}")))?)
    } else if let Some(url) = &raw.http {
        Check::Http {
            method: "GET",
            target: read_url(url.get_ref()).map_err(|e| at(url.span(), format!("ready.http: {e}")))?,
        }
    } else if let Some(argv) = &raw.exec {
        Check::Exec(read_command(argv, "ready.exec", at)?)
    } else if let Some(path) = raw.file.as_ref().filter(|p| !p.get_ref().is_empty() && !p.get_ref().contains('\0')) {
        Check::File(PathBuf::from(path.get_ref()))
    } else {
        return Err(at(ready.span(), "ready.file: must be a non-empty path".to_string()));
    };
    let duration_or =
        |value: &Option<Spanned<String>>, key: &str, default: Duration| -> Result<Duration, RoleMapError> {
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
        attempt_timeout: duration_or(&raw.attempt_timeout, "ready.attempt_timeout", DEFAULT_ATTEMPT_TIMEOUT)?,
        on_timeout: match raw.on_timeout {
            Some(RawOnTimeout::Start) => OnTimeout::Start,
            Some(RawOnTimeout::Fail) | None => OnTimeout::Fail,
        },
    })
}

fn check_name(name: &Spanned<String>, at: &At) -> Result<(), RoleMapError> {
    if is_valid_name(name.get_ref()) {
        return Ok(());
    }
    Err(at(name.span(), invalid_name("name", name.get_ref())))
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests;
