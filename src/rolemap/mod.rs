//! Where the role map is read: TOML in, a [`RoleMap`] out, which says what the role map
//! says, checked for syntax and values. Every mistake is found in one reading and told
//! as one line each, `file:line:column: key: what is wrong`, as a compiler tells them;
//! only text that is not TOML stops at its first mistake, which hides the rest.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::duration;
use crate::logger::LogFormat;
use crate::plan::{
    ControlSocket, DEFAULT_BIRTH_TIMEOUT, DEFAULT_GRACE, DEFAULT_GRAVEYARD, Limit, Output, Pod, ProcessSpec, Role,
    ShutdownOrder, UserSpec,
};
use crate::quoted::Quoted;

mod environment;
mod expansion;
mod order;
mod process;
mod raw;
mod values;
pub use environment::{SaidEnv, SaidValue, is_variable_name};
pub use expansion::Env;
use process::{Defaults, read_process};
use raw::{RawPod, RawProcess, RawRole, RawRoleMap, RawShutdown};
pub use values::{invalid_name, is_valid_name, name_problem, read_addr, read_url};

/// Role maps larger than this are refused rather than read: a real one is a few KiB.
pub const MAX_SIZE: u64 = 1 << 20;

/// One mistake of a role map, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    /// 1-based line and column, when the mistake has a place in the text.
    position: Option<(usize, usize)>,
    message: String,
}

impl Mistake {
    fn at(text: &str, span: Range<usize>, message: String) -> Mistake {
        Mistake { position: Some(line_and_column(text, span.start)), message }
    }
}

/// The mistakes found so far; reading goes on past each.
#[derive(Default)]
pub struct Mistakes(Vec<Mistake>);

impl Mistakes {
    fn push(&mut self, mistake: Mistake) {
        self.0.push(mistake);
    }

    /// The value read, or None with the mistake noted.
    fn note<T>(&mut self, read: Result<T, Mistake>) -> Option<T> {
        read.map_err(|mistake| self.push(mistake)).ok()
    }
}

/// A role map that cannot be used: every mistake found, in the order of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapError {
    origin: String,
    mistakes: Vec<Mistake>,
}

impl RoleMapError {
    fn new(origin: &str, mut mistakes: Vec<Mistake>) -> RoleMapError {
        mistakes.sort_by_key(|m| m.position);
        RoleMapError { origin: origin.to_string(), mistakes }
    }

    fn whole(origin: &str, message: String) -> RoleMapError {
        RoleMapError::new(origin, vec![Mistake { position: None, message }])
    }
}

/// One line per mistake.
impl fmt::Display for RoleMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, mistake) in self.mistakes.iter().enumerate() {
            let newline = if i > 0 { "\n" } else { "" };
            match mistake.position {
                Some((line, column)) => write!(f, "{newline}{}:{line}:{column}: {}", self.origin, mistake.message)?,
                None => write!(f, "{newline}{}: {}", self.origin, mistake.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for RoleMapError {}

/// What a role map says, read and checked for syntax and values, its variables
/// (`${VAR}`) replaced from exeunt's environment. Nothing is looked up yet: no user in
/// /etc/passwd, no directory or file on disk.
/// [`crate::resolve`] makes the plan of a run of it.
#[derive(Debug)]
pub struct RoleMap {
    /// Where it was read from, and its text: the resolver's mistakes name their place.
    pub origin: String,
    text: String,
    /// In start order: gates, then sidecars and tasks, each in the role map's order, then the primaries.
    pub processes: Vec<SaidProcess>,
    pub grace_period: Duration,
    pub shutdown: ShutdownOrder,
    pub pod: Option<Pod>,
    pub match_timeout: Option<Duration>,
    pub kill_primaries_after: Option<Duration>,
    pub kill_on_second_signal: bool,
    pub stop_delay: Duration,
    pub log_format: Option<LogFormat>,
    pub control_socket: Option<ControlSocket>,
    /// The top level's `env_file`, read for every process, and where it is.
    pub env_files: Vec<PathBuf>,
    pub env_files_at: Option<Range<usize>>,
    /// The top level's `limits` and `umask`, for processes that do not set their own.
    pub limits: Vec<(Limit, Range<usize>)>,
    pub umask: Option<u32>,
}

impl RoleMap {
    /// `origin:line:column`, for a place in the text.
    pub fn place(&self, span: &Range<usize>) -> String {
        let (line, column) = line_and_column(&self.text, span.start);
        format!("{}:{line}:{column}", self.origin)
    }
}

/// One `[[process]]` as the role map says it: the process, and what the resolver still
/// has to look up for it.
#[derive(Debug)]
pub struct SaidProcess {
    /// Everything but the account, which the resolver looks `user` up for.
    pub spec: ProcessSpec,
    /// `user`, as written, and where.
    pub user: Option<(UserSpec, Range<usize>)>,
    /// Where `workdir` is written, which the resolver checks on disk.
    pub workdir_at: Option<Range<usize>>,
    /// Its variables, with the files the resolver reads for them.
    pub variables: SaidEnv,
    /// Its own `limits`, which the resolver checks against what exeunt may set.
    pub own_limits: Vec<(Limit, Range<usize>)>,
    /// Whether the resolver looks its commands up (`command_check`), and where the
    /// command is written.
    pub command_check: bool,
    pub command_at: Option<Range<usize>>,
}

impl SaidProcess {
    /// A process the role map does not describe: the command line's alone.
    pub fn bare(spec: ProcessSpec) -> SaidProcess {
        SaidProcess {
            spec,
            user: None,
            workdir_at: None,
            variables: SaidEnv::default(),
            own_limits: Vec::new(),
            command_check: true,
            command_at: None,
        }
    }
}

impl Deref for SaidProcess {
    type Target = ProcessSpec;
    fn deref(&self) -> &ProcessSpec {
        &self.spec
    }
}

/// Reads the role map at `path`. `command`, when given, becomes the primary: it
/// replaces the command of the role map's one primary, or is added as primary `main`.
/// `env` gives the variables that `${VAR}` names.
pub fn load(path: &Path, command: Option<&[OsString]>, env: &Env) -> Result<RoleMap, RoleMapError> {
    let origin = path.display().to_string();
    let io_error = |e: std::io::Error| RoleMapError::whole(&origin, format!("cannot read the role map: {e}"));
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(RoleMapError::whole(&origin, format!("the role map is larger than {MAX_SIZE} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        RoleMapError::whole(&origin, format!("the role map is not UTF-8 (byte {})", e.utf8_error().valid_up_to()))
    })?;
    parse(&text, &origin, command, env)
}

type At<'a> = dyn Fn(Range<usize>, String) -> Mistake + 'a;

/// Reads a role map's text; `origin` names it in mistakes, `env` gives the variables.
pub fn parse(text: &str, origin: &str, command: Option<&[OsString]>, env: &Env) -> Result<RoleMap, RoleMapError> {
    let at = |span: Range<usize>, message: String| Mistake::at(text, span, message);
    let mut m = Mistakes::default();
    let mut raw = raw::read_document(text, &mut m).map_err(|mistake| RoleMapError::new(origin, vec![mistake]))?;
    expansion::expand_document(&mut raw, text, env, &mut m);
    let mut map = read_settings(&raw, &at, &mut m);
    (map.origin, map.text) = (origin.to_string(), text.to_string());
    let defaults = Defaults {
        grace_period: map.grace_period,
        output: raw.output.as_ref().and_then(|v| m.note(read_output(v, &at))).unwrap_or(Output::Inherit),
    };
    map.processes = read_processes(&raw.process, defaults, &at, &mut m);
    place_command(&mut map, &raw, command, defaults, &at, &mut m);
    // A stable sort keeps the role map's order within each role.
    map.processes.sort_by_key(|p| p.role.rank());
    order::read_order(&mut map.processes, &raw.process, &at, &mut m);
    if !m.0.is_empty() {
        return Err(RoleMapError::new(origin, m.0));
    }
    Ok(map)
}

/// The role map's top-level keys and its `[pod]`.
fn read_settings(raw: &RawRoleMap, at: &At, m: &mut Mistakes) -> RoleMap {
    let mut duration = |value: &Option<Spanned<String>>, key: &str| {
        value.as_ref().and_then(|value| m.note(read_duration(value, key, at)))
    };
    let grace_period = duration(&raw.grace_period, "grace_period").unwrap_or(DEFAULT_GRACE);
    let match_timeout = duration(&raw.match_timeout, "match_timeout");
    let kill_primaries_after = duration(&raw.kill_primaries_after, "kill_primaries_after");
    let stop_delay = duration(&raw.stop_delay, "stop_delay").unwrap_or(Duration::ZERO);
    let log_formats = [("text", LogFormat::Text), ("json", LogFormat::Json)];
    let log_format = raw.log_format.as_ref().and_then(|v| m.note(read_choice(v, "log_format", &log_formats, at)));
    let control_socket = raw.control_socket.as_ref().and_then(|value| {
        m.note(ControlSocket::parse(value.get_ref()).map_err(|e| at(value.span(), format!("control_socket: {e}"))))
    });
    let env = environment::read_env(None, raw.env_file.as_ref(), None, at, m);
    let limits = raw.limits.as_ref().map(|t| environment::read_limits(t, at, m)).unwrap_or_default();
    let umask = raw.umask.as_ref().and_then(|v| m.note(environment::read_umask(v, at)));
    RoleMap {
        origin: String::new(),
        text: String::new(),
        processes: Vec::new(),
        grace_period,
        shutdown: match raw.shutdown {
            Some(RawShutdown::Parallel) => ShutdownOrder::Parallel,
            Some(RawShutdown::Ordered) | None => ShutdownOrder::Ordered,
        },
        pod: raw.pod.as_ref().and_then(|pod| read_pod(pod, at, m)),
        match_timeout,
        kill_primaries_after,
        kill_on_second_signal: raw.kill_on_second_signal.unwrap_or(false),
        stop_delay,
        log_format,
        control_socket,
        env_files: env.files,
        env_files_at: env.files_at,
        limits,
        umask,
    }
}

/// Every `[[process]]`, in the role map's order: names checked and unique.
fn read_processes(raw: &[RawProcess], defaults: Defaults, at: &At, m: &mut Mistakes) -> Vec<SaidProcess> {
    let mut processes = Vec::with_capacity(raw.len() + 1);
    for (index, p) in raw.iter().enumerate() {
        let Some(name) = &p.name else {
            if p.refused.is_empty() {
                let kind = if p.gate { "wait" } else { "process" };
                m.push(at(p.at.clone(), format!("name: missing; every [[{kind}]] has a name")));
            }
            continue;
        };
        if p.role.is_none() && p.refused.is_empty() && !p.gate {
            let why = "role: missing; say role = \"primary\" or role = \"sidecar\"";
            m.push(at(name.span(), why.to_string()));
        }
        if !is_valid_name(name.get_ref()) {
            m.push(at(name.span(), invalid_name("name", name.get_ref())));
        } else if let Some(q) = raw[..index].iter().find(|q| q.name.as_ref() == Some(name)) {
            let first = q.name.as_ref().map_or(0..0, Spanned::span);
            let line = at(first, String::new()).position.map_or(0, |(line, _)| line);
            let what = if q.gate { "gate" } else { "process" };
            let why = format!("name: {} is already the name of the {what} on line {line}", Quoted(name.get_ref()));
            m.push(at(name.span(), why));
        }
        processes.extend(read_process(p, defaults, at, m));
    }
    processes
}

/// Puts the command line's COMMAND in as the primary: it replaces the command of the
/// role map's one primary, or is added as primary `main`. Without one, the role map
/// must have a primary.
fn place_command(
    map: &mut RoleMap,
    raw_map: &RawRoleMap,
    command: Option<&[OsString]>,
    defaults: Defaults,
    at: &At,
    m: &mut Mistakes,
) {
    let raw = raw_map.process.as_slice();
    let primaries: Vec<&RawProcess> =
        raw.iter().filter(|p| p.role.as_ref().is_some_and(|r| *r.get_ref() == RawRole::Primary)).collect();
    match (command, primaries.as_slice()) {
        (Some(_), [_, second, ..]) => {
            let why =
                "role: a command given on the command line replaces the one primary, but this role map has several";
            m.push(at(second.role.as_ref().map_or(second.at.clone(), Spanned::span), why.to_string()));
        }
        (Some(command), [only]) => {
            let name = only.name.as_ref().map(|n| n.get_ref());
            if let Some(process) = map.processes.iter_mut().find(|p| Some(&p.spec.name) == name) {
                process.spec.command = command.to_vec();
            }
        }
        (Some(command), []) => {
            let name = (1..)
                .map(|n| if n == 1 { "main".to_string() } else { format!("main-{n}") })
                .find(|name| map.processes.iter().all(|p| p.name != *name))
                .unwrap_or_default();
            let mut primary = ProcessSpec::new(&name, Role::Primary, command.to_vec());
            primary.grace_period = defaults.grace_period;
            primary.output = defaults.output;
            map.processes.push(SaidProcess::bare(primary));
        }
        // A role that could not be read is a mistake already, and may have been the primary.
        (None, []) if raw_map.process_refused || raw.iter().any(|p| !p.refused.is_empty() || p.name.is_none()) => {}
        (None, []) => m.push(match raw.iter().find_map(|p| p.role.as_ref()) {
            Some(role) => at(
                role.span(),
                "role: no process has role = \"primary\"; mark one, or give the command on the command line"
                    .to_string(),
            ),
            None => {
                Mistake { position: Some((1, 1)), message: "process: the role map lists no [[process]]".to_string() }
            }
        }),
        (None, _) => {}
    }
}

fn read_pod(raw: &RawPod, at: &At, m: &mut Mistakes) -> Option<Pod> {
    let mut name = |value: &Spanned<String>, key: &str| -> Option<String> {
        if is_valid_name(value.get_ref()) {
            return Some(value.get_ref().clone());
        }
        m.push(at(value.span(), invalid_name(&format!("pod.{key}"), value.get_ref())));
        None
    };
    let pod_name = name(&raw.name, "name");
    let mut names = |values: &Option<Vec<Spanned<String>>>, key: &str| -> Vec<String> {
        values.iter().flatten().filter_map(|v| name(v, key)).collect()
    };
    let death_deps = names(&raw.death_deps, "death_deps");
    let birth_deps = names(&raw.birth_deps, "birth_deps");
    let graveyard = match &raw.graveyard {
        Some(path) if path.get_ref().starts_with('/') && !path.get_ref().contains('\0') => {
            PathBuf::from(path.get_ref())
        }
        Some(path) => {
            m.push(at(path.span(), "pod.graveyard: must be an absolute path".to_string()));
            PathBuf::from(DEFAULT_GRAVEYARD)
        }
        None => PathBuf::from(DEFAULT_GRAVEYARD),
    };
    let birth_timeout = match &raw.birth_timeout {
        Some(value) => m.note(read_duration(value, "pod.birth_timeout", at)).unwrap_or(DEFAULT_BIRTH_TIMEOUT),
        None => DEFAULT_BIRTH_TIMEOUT,
    };
    let ignore_death_dep_code = raw.ignore_death_dep_code.unwrap_or(false);
    let pod =
        Pod { name: pod_name?, graveyard, death_deps, birth_deps, birth_timeout, ignore_death_dep_code, run: None };
    Some(pod)
}

fn read_output(value: &Spanned<String>, at: &At) -> Result<Output, Mistake> {
    let choices = [("inherit", Output::Inherit), ("prefix", Output::Prefix), ("json", Output::Json)];
    read_choice(value, "output", &choices, at)
}

/// One of a few words. Read from a string rather than derived as an enum: each derived
/// enum costs the static binary kilobytes of deserializer code.
fn read_choice<T: Copy>(value: &Spanned<String>, key: &str, choices: &[(&str, T)], at: &At) -> Result<T, Mistake> {
    if let Some((_, choice)) = choices.iter().find(|(name, _)| name == value.get_ref()) {
        return Ok(*choice);
    }
    let names: Vec<String> = choices.iter().map(|(name, _)| format!("\"{name}\"")).collect();
    Err(at(value.span(), format!("{key}: {} is not one of {}", Quoted(value.get_ref()), names.join(", "))))
}

fn read_duration(value: &Spanned<String>, key: &str, at: &At) -> Result<Duration, Mistake> {
    duration::parse(value.get_ref()).map_err(|e| at(value.span(), format!("{key}: {e}")))
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests;
