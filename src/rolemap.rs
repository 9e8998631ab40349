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

use crate::duration;
use crate::plan::{DEFAULT_GRACE, Plan, ProcessSpec, Role, UserSpec};
use crate::signals::Signo;

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
    #[serde(default)]
    process: Vec<RawProcess>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    name: Spanned<String>,
    role: Spanned<RawRole>,
    command: Spanned<Vec<String>>,
    stop_signal: Option<Spanned<String>>,
    grace_period: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawRole {
    Primary,
    Sidecar,
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
    let raw: RawRoleMap = toml::from_str(text).map_err(|e| RoleMapError {
        origin: origin.to_string(),
        position: e.span().map(|span| line_and_column(text, span.start)),
        message: e.message().trim_end().replace('`', "'"),
    })?;

    let grace_period = match &raw.grace_period {
        Some(value) => read_duration(value, "grace_period", &at)?,
        None => DEFAULT_GRACE,
    };
    let mut processes = Vec::with_capacity(raw.process.len() + 1);
    for (index, p) in raw.process.iter().enumerate() {
        check_name(&p.name, &at)?;
        if let Some(first) = raw.process[..index].iter().find(|q| q.name.get_ref() == p.name.get_ref()) {
            let (line, _) = line_and_column(text, first.name.span().start);
            return Err(at(
                p.name.span(),
                format!("name: '{}' is already the name of the process on line {line}", p.name.get_ref()),
            ));
        }
        processes.push(read_process(p, grace_period, &at)?);
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
    Ok(Plan::new(processes, grace_period))
}

type At<'a> = dyn Fn(Range<usize>, String) -> RoleMapError + 'a;

fn read_process(p: &RawProcess, global_grace: Duration, at: &At) -> Result<ProcessSpec, RoleMapError> {
    let command = p.command.get_ref();
    match command.first() {
        None => return Err(at(p.command.span(), "command: must name a program, it is empty".to_string())),
        Some(program) if program.is_empty() => {
            return Err(at(p.command.span(), "command: the program name is empty".to_string()));
        }
        _ => {}
    }
    if command.iter().any(|arg| arg.contains('\0')) {
        return Err(at(p.command.span(), "command: contains a NUL character".to_string()));
    }
    let role = match p.role.get_ref() {
        RawRole::Primary => Role::Primary,
        RawRole::Sidecar => Role::Sidecar,
    };
    let mut spec = ProcessSpec::new(p.name.get_ref(), role, command.iter().map(OsString::from).collect());
    spec.grace_period = match &p.grace_period {
        Some(value) => read_duration(value, "grace_period", at)?,
        None => global_grace,
    };
    if let Some(value) = &p.stop_signal {
        spec.stop_signal = Signo::parse(value.get_ref()).map_err(|e| at(value.span(), format!("stop_signal: {e}")))?;
    }
    if let Some(env) = &p.env {
        for (key, value) in env.get_ref() {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                return Err(at(
                    env.span(),
                    format!(
                        "env: '{key}' cannot be set: names must be non-empty and hold no '=' or NUL, values no NUL"
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
    if let Some(user) = &p.user {
        spec.user = Some(read_user(user.get_ref()).ok_or_else(|| {
            at(
                user.span(),
                format!("user: '{}' is not USER[:GROUP] (a uid or name, then a gid or group name)", user.get_ref()),
            )
        })?);
    }
    Ok(spec)
}

fn read_duration(value: &Spanned<String>, key: &str, at: &At) -> Result<Duration, RoleMapError> {
    duration::parse(value.get_ref()).map_err(|e| at(value.span(), format!("{key}: {e}")))
}

/// Names become file names in a graveyard and labels in logs, so they follow the rule
/// for Kubernetes container names (an RFC 1123 label).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(allowed)
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

fn check_name(name: &Spanned<String>, at: &At) -> Result<(), RoleMapError> {
    if is_valid_name(name.get_ref()) {
        return Ok(());
    }
    Err(at(
        name.span(),
        format!(
            "name: '{}' is not a valid name (1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)",
            name.get_ref().escape_debug()
        ),
    ))
}

fn read_user(value: &str) -> Option<UserSpec> {
    let (user, group) = match value.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (value, None),
    };
    let valid =
        |part: &str| !part.is_empty() && !part.contains([':', '\0', '/']) && !part.contains(char::is_whitespace);
    if !valid(user) || group.is_some_and(|g| !valid(g)) {
        return None;
    }
    Some(UserSpec { user: user.to_string(), group: group.map(str::to_string) })
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{SIGTERM, Signo};

    const FULL: &str = r#"
grace_period = "5s"

[[process]]
name = "forwarder"
role = "primary"
command = ["/app/forwarder", "--once"]

[[process]]
name = "queue"
role = "sidecar"
command = ["/usr/bin/queue"]
stop_signal = "SIGINT"
grace_period = "3s"
env = { QUEUE_URL = "amqp://localhost" }
workdir = "/srv"
user = "1000:1000"
"#;

    fn error(text: &str) -> String {
        parse(text, "map.toml", None).expect_err("should be refused").to_string()
    }

    #[test]
    fn full_role_map_becomes_a_plan_in_start_order() {
        let plan = parse(FULL, "map.toml", None).expect("valid");
        assert_eq!(plan.grace_period, Duration::from_secs(5));
        let [queue, forwarder] = plan.processes.as_slice() else { panic!("two processes") };
        assert_eq!((queue.name.as_str(), queue.role), ("queue", Role::Sidecar));
        assert_eq!(queue.stop_signal, Signo(libc::SIGINT));
        assert_eq!(queue.grace_period, Duration::from_secs(3));
        assert_eq!(queue.env, [("QUEUE_URL".to_string(), "amqp://localhost".to_string())]);
        assert_eq!(queue.workdir.as_deref(), Some(Path::new("/srv")));
        assert_eq!(queue.user, Some(UserSpec { user: "1000".into(), group: Some("1000".into()) }));
        assert_eq!((forwarder.name.as_str(), forwarder.role), ("forwarder", Role::Primary));
        assert_eq!(forwarder.command, ["/app/forwarder", "--once"]);
        assert_eq!(forwarder.stop_signal, SIGTERM);
        assert_eq!(forwarder.grace_period, Duration::from_secs(5));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "[[process]]\nname = \"a\"\nrole = \"primary\"\ncomand = [\"x\"]\n";
        let err = error(text);
        assert!(err.starts_with("map.toml:4:1: unknown field 'comand', expected one of"), "{err}");
    }

    #[test]
    fn duplicate_name_points_at_both_places() {
        let text = "[[process]]\nname = \"a\"\nrole = \"primary\"\ncommand = [\"x\"]\n\n[[process]]\nname = \"a\"\nrole = \"sidecar\"\ncommand = [\"y\"]\n";
        assert_eq!(error(text), "map.toml:7:8: name: 'a' is already the name of the process on line 2");
    }

    #[test]
    fn missing_primary_is_refused_unless_a_command_is_given() {
        let text = "[[process]]\nname = \"q\"\nrole = \"sidecar\"\ncommand = [\"x\"]\n";
        assert!(error(text).starts_with("map.toml:3:8: role: no process has role = \"primary\""));
        let plan = parse(text, "map.toml", Some(&["/bin/job".into()])).expect("command becomes the primary");
        let primary = &plan.processes[1];
        assert_eq!((primary.name.as_str(), primary.role), ("main", Role::Primary));
        assert_eq!(primary.command, ["/bin/job"]);
        assert_eq!(error(""), "map.toml:1:1: process: the role map lists no [[process]]");
    }

    #[test]
    fn command_line_replaces_the_one_primary_command() {
        let plan = parse(FULL, "map.toml", Some(&["sh".into(), "-c".into(), "exit 3".into()])).expect("valid");
        assert_eq!(plan.processes[1].command, ["sh", "-c", "exit 3"]);
        let two = "[[process]]\nname = \"a\"\nrole = \"primary\"\ncommand = [\"x\"]\n[[process]]\nname = \"b\"\nrole = \"primary\"\ncommand = [\"y\"]\n";
        let err = parse(two, "m", Some(&["z".into()])).expect_err("ambiguous").to_string();
        assert!(err.starts_with("m:7:8: role: a command given on the command line"), "{err}");
    }

    #[test]
    fn bad_values_are_named_with_key_and_line() {
        let base = "[[process]]\nname = \"a\"\nrole = \"primary\"\n";
        let cases = [
            ("command = []\n", "map.toml:4:11: command: must name a program"),
            ("command = [\"\"]\n", "map.toml:4:11: command: the program name is empty"),
            ("command = [\"x\"]\ngrace_period = \"ten\"\n", "map.toml:5:16: grace_period: invalid duration 'ten'"),
            ("command = [\"x\"]\nstop_signal = \"SIGFOO\"\n", "map.toml:5:15: stop_signal: unknown signal 'SIGFOO'"),
            ("command = [\"x\"]\nuser = \"a:b:c\"\n", "map.toml:5:8: user: 'a:b:c' is not USER[:GROUP]"),
            ("command = [\"x\"]\nworkdir = \"\"\n", "map.toml:5:11: workdir: must be a non-empty path"),
            ("command = [\"x\"]\nenv = { \"A=B\" = \"c\" }\n", "map.toml:5:7: env: 'A=B' cannot be set"),
            ("command = \"x\"\n", "map.toml:4:11: invalid type: string \"x\", expected a sequence"),
        ];
        for (tail, expected) in cases {
            let err = error(&format!("{base}{tail}"));
            assert!(err.starts_with(expected), "expected {expected:?}, got {err:?}");
        }
    }

    #[test]
    fn bad_role_and_name_are_refused() {
        let err = error("[[process]]\nname = \"a\"\nrole = \"boss\"\ncommand = [\"x\"]\n");
        assert!(err.starts_with("map.toml:3:8: unknown variant 'boss', expected 'primary' or 'sidecar'"), "{err}");
        for bad in ["A", "-a", "a-", "a_b", "../etc", "a/b", ""] {
            let err = error(&format!("[[process]]\nname = \"{bad}\"\nrole = \"primary\"\ncommand = [\"x\"]\n"));
            assert!(err.starts_with("map.toml:2:8: name: '"), "{bad}: {err}");
        }
        assert!(is_valid_name(&"a".repeat(63)));
        assert!(!is_valid_name(&"a".repeat(64)));
    }

    #[test]
    fn toml_syntax_errors_keep_their_position() {
        let err = error("grace_period = \n");
        assert!(err.starts_with("map.toml:1:"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn oversized_role_map_is_refused_before_parsing() {
        let dir = std::env::temp_dir().join(format!("exeunt-rolemap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("big.toml");
        std::fs::write(&path, "#".repeat(MAX_SIZE as usize + 1)).expect("write");
        let err = load(&path, None).expect_err("too big").to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(err.ends_with("the role map is larger than 1048576 bytes"), "{err}");
    }
}
