//! The command line: tini's flags and environment variables, plus exeunt's own; and,
//! when exeunt is started by the name `dumb-init`, dumb-init's.
//!
//! Parsing has two phases: [`parse`] reads words into [`Options`] without touching
//! the system; [`crate::resolve`] then turns options and the role map into a plan.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration;
use crate::events::Request;
use crate::logger::{Filter, Level, LogFormat};
use crate::plan::{ControlSocket, ZeroCodes};
use crate::quoted::Quoted;
use crate::signo::Signo;

mod asking;
mod dumb_init;
mod usage;
mod words;
use asking::Asking;
pub use dumb_init::parse as parse_dumb_init;
pub use usage::{DUMB_INIT_USAGE, USAGE};
use words::{Opt, Words};

/// Started as dumb-init: dumb-init's ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumbInit {
    /// The child leads a session of its own, and signals go to its whole process
    /// group; off with `-c` or `DUMB_INIT_SETSID=0`.
    pub setsid: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Run(Options),
    /// Validate role maps: `-c FILE` and/or the files named as arguments.
    Check(Options),
    /// Ask the exeunt that runs in this container; the options say where it listens.
    Ask(Request, Options),
    Help,
    Version,
}

/// Options read from the command line and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub grace: Option<Duration>,
    /// `--stop-delay`: over the role map's `stop_delay`.
    pub stop_delay: Option<Duration>,
    /// `-r S:R`: the primaries get R (None: nothing) for S, under their own tables.
    pub rewrite: Vec<(Signo, Option<Signo>)>,
    pub signal_groups: bool,
    /// `--sidecar` or EXEUNT_SIDECAR: take the exit status that the primary container's
    /// exeunt sends with its stop signal.
    pub sidecar_container: bool,
    pub zero_codes: ZeroCodes,
    pub parent_death_signal: Option<Signo>,
    pub report_reaped: bool,
    /// What exeunt logs: EXEUNT_LOG's filter, whose level for every module comes from
    /// EXEUNT_LOG or TINI_VERBOSITY; without one, the run chooses it.
    pub log: Filter,
    /// EXEUNT_LOG_FORMAT: how exeunt writes its log, unless the role map says.
    pub log_format: LogFormat,
    /// How many levels `-v` raises logging above that.
    pub verbose: u8,
    /// COMMAND and its arguments; with `--check`, the role maps to check.
    pub command: Vec<OsString>,
    /// Started by the name `dumb-init`.
    pub dumb_init: Option<DumbInit>,
    /// EXEUNT_CONTROL_SOCKET, unless the role map says.
    pub control_socket: Option<ControlSocket>,
}

/// A command line that cannot be used, said with the help to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    message: String,
    /// exeunt, or dumb-init when started by that name.
    program: &'static str,
}

impl UsageError {
    fn new(message: String) -> UsageError {
        UsageError { message, program: "exeunt" }
    }

    /// The same mistake, pointing at dumb-init's help.
    fn for_dumb_init(self) -> UsageError {
        UsageError { program: "dumb-init", ..self }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see {} --help)", self.message, self.program)
    }
}

impl std::error::Error for UsageError {}

/// Reads the words after the program name. `env` looks up an environment variable.
/// Options stop at `--` or at the first word that is not an option, so
/// `exeunt sh -c 'exit 3'` runs `sh` with its own `-c`.
pub fn parse(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Invocation, UsageError> {
    let mut parsing = Parsing {
        options: Options {
            config: env("EXEUNT_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from),
            signal_groups: env("TINI_KILL_PROCESS_GROUP").is_some(),
            sidecar_container: env("EXEUNT_SIDECAR").is_some_and(|v| !matches!(v.to_str(), Some("" | "0" | "false"))),
            ..Options::default()
        },
        check: false,
        ask: Asking::default(),
    };
    let verbosity: Option<u32> = match env("TINI_VERBOSITY") {
        Some(v) => Some(v.to_str().and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
            UsageError::new(format!("TINI_VERBOSITY must be a number, got {}", Quoted(&v.to_string_lossy())))
        })?),
        None => None,
    };
    let mut words = Words::new(args);
    while let Some(option) = words.next_option() {
        let done = match option {
            Opt::Long { name, inline } => parsing.long(name, inline, &mut words)?,
            Opt::Short(flags) => parsing.short(flags, &mut words)?,
        };
        if let Some(invocation) = done {
            return Ok(invocation);
        }
    }
    let Parsing { mut options, check, ask } = parsing;
    options.command = words.command();
    if let Some(spec) = env("EXEUNT_LOG") {
        options.log = Filter::parse(&spec.to_string_lossy()).map_err(|e| UsageError::new(e.to_string()))?;
    }
    if options.log.level.is_none() {
        options.log.level = verbosity.map(Level::from_tini_verbosity);
    }
    options.log_format = log_format(env)?;
    options.control_socket = crate::control::from_env(env).map_err(UsageError::new)?;
    if let Some(request) = ask.request(&options.command)? {
        return Ok(Invocation::Ask(request, options));
    }
    if check {
        return Ok(Invocation::Check(options));
    }
    if options.command.is_empty() && options.config.is_none() {
        return Err(UsageError::new("nothing to run: give a COMMAND or a role map with -c".to_string()));
    }
    Ok(Invocation::Run(options))
}

/// exeunt's command line, read so far.
struct Parsing {
    options: Options,
    /// `--check`.
    check: bool,
    /// The client forms' options.
    ask: Asking,
}

impl Parsing {
    /// Reads `--name` (with its value after `=`, or the next word). Some when the
    /// option is all the command line asks (`--help`, `--version`).
    fn long(&mut self, name: &str, inline: Option<&str>, words: &mut Words) -> Result<Option<Invocation>, UsageError> {
        let options = &mut self.options;
        match name {
            "config" => options.config = Some(PathBuf::from(words.long_value(name, inline, "a file")?)),
            "grace" => options.grace = Some(read_duration("--grace", &words.long_value(name, inline, "a duration")?)?),
            "stop-delay" => {
                let value = words.long_value(name, inline, "a duration")?;
                options.stop_delay = Some(read_duration("--stop-delay", &value)?);
            }
            "rewrite" => options.rewrite.push(read_rewrite("--rewrite", &words.long_value(name, inline, "S:R")?)?),
            "check" => self.check = true,
            "sidecar" => options.sidecar_container = true,
            "status" | "json" | "ready" | "live" => self.ask.verb(name, None)?,
            "restart" | "signal" => {
                let what = if name == "signal" { "a signal" } else { "a process name" };
                let value = words.long_value(name, inline, what)?;
                self.ask.verb(name, Some(value))?;
            }
            // dumb-init's: exeunt's children never share its session anyway.
            "single-child" => {}
            "help" => return Ok(Some(Invocation::Help)),
            "version" => return Ok(Some(Invocation::Version)),
            _ => return Err(unknown(&format!("--{name}"))),
        }
        Ok(None)
    }

    /// Reads a word of short flags (`-vvv`, `-e3`, `-c FILE`). Some when a flag is all
    /// the command line asks (`-h`).
    fn short(&mut self, flags: &str, words: &mut Words) -> Result<Option<Invocation>, UsageError> {
        let options = &mut self.options;
        for (i, flag) in flags.char_indices() {
            let joined = &flags[i + flag.len_utf8()..];
            match flag {
                's' => {}
                'g' => {
                    options.signal_groups = true;
                    self.ask.group = true;
                }
                'w' => options.report_reaped = true,
                'v' => options.verbose = options.verbose.saturating_add(1),
                'h' => return Ok(Some(Invocation::Help)),
                // The flags that take a value take the rest of the word.
                'c' => {
                    options.config = Some(PathBuf::from(words.short_value(flag, joined, "a file")?));
                    break;
                }
                'e' => {
                    let code = words.short_value(flag, joined, "an exit code")?;
                    let code = code.to_str().and_then(|c| c.parse::<u8>().ok()).ok_or_else(|| {
                        UsageError::new(format!(
                            "-e takes an exit code from 0 to 255, got {}",
                            Quoted(&code.to_string_lossy())
                        ))
                    })?;
                    options.zero_codes.add(code);
                    break;
                }
                'r' => {
                    options.rewrite.push(read_rewrite("-r", &words.short_value(flag, joined, "S:R")?)?);
                    break;
                }
                'p' => {
                    let name = words.short_value(flag, joined, "a signal name")?;
                    let signo =
                        Signo::parse(&name.to_string_lossy()).map_err(|e| UsageError::new(format!("-p: {e}")))?;
                    options.parent_death_signal = Some(signo);
                    break;
                }
                _ => return Err(unknown(&format!("-{flag}"))),
            }
        }
        Ok(None)
    }
}

fn unknown(option: &str) -> UsageError {
    UsageError::new(format!("unknown option {}", Quoted(option)))
}

/// Reads `S:R`, dumb-init's rewrite: two signal numbers (or names); R = 0 ignores S.
fn read_rewrite(option: &str, value: &OsStr) -> Result<(Signo, Option<Signo>), UsageError> {
    let text = value.to_string_lossy();
    let bad =
        || UsageError::new(format!("{option} takes S:R, two signals as 15:3 (R = 0 ignores S), got {}", Quoted(&text)));
    let (from, to) = text.split_once(':').ok_or_else(bad)?;
    let from = Signo::parse(from).map_err(|_| bad())?;
    let to = match to.trim() {
        "0" => None,
        to => Some(Signo::parse(to).map_err(|_| bad())?),
    };
    Ok((from, to))
}

/// EXEUNT_LOG_FORMAT: `text` (or unset) or `json`.
fn log_format(env: &dyn Fn(&str) -> Option<OsString>) -> Result<LogFormat, UsageError> {
    match env("EXEUNT_LOG_FORMAT").filter(|v| !v.is_empty()) {
        None => Ok(LogFormat::Text),
        Some(value) => match value.to_string_lossy().trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UsageError::new(format!(
                "EXEUNT_LOG_FORMAT must be text or json, got {}",
                Quoted(&value.to_string_lossy())
            ))),
        },
    }
}

fn read_duration(option: &str, value: &OsStr) -> Result<Duration, UsageError> {
    duration::parse(&value.to_string_lossy()).map_err(|e| UsageError::new(format!("{option}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    fn run(line: &[&str]) -> Options {
        match parse(&words(line), &|_| None) {
            Ok(Invocation::Run(options)) => options,
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn options_stop_at_the_first_command_word() {
        let options = run(&["-g", "sh", "-c", "exit 3"]);
        assert!(options.signal_groups);
        assert_eq!(options.command, words(&["sh", "-c", "exit 3"]));
        assert_eq!(run(&["--", "-v"]).command, words(&["-v"]));
    }

    #[test]
    fn accepts_every_tini_flag() {
        let options = run(&["-r", "15:3", "--rewrite=1:0", "-r2:SIGHUP", "true"]);
        let (term, quit, hup, int) = (Signo(15), Signo(3), Signo(1), Signo(2));
        assert_eq!(options.rewrite, [(term, Some(quit)), (hup, None), (int, Some(hup))]);
        let options = run(&["-s", "-g", "-w", "-vvv", "-e", "3", "-e143", "-p", "SIGKILL", "true"]);
        assert!(options.signal_groups && options.report_reaped);
        assert_eq!(options.verbose, 3);
        assert_eq!(options.zero_codes.apply(3), 0);
        assert_eq!(options.zero_codes.apply(143), 0);
        assert_eq!(options.zero_codes.apply(1), 1);
        assert_eq!(options.parent_death_signal, Some(Signo(libc::SIGKILL)));
        assert_eq!(parse(&words(&["-h"]), &|_| None), Ok(Invocation::Help));
        assert_eq!(parse(&words(&["--version"]), &|_| None), Ok(Invocation::Version));
    }

    #[test]
    fn config_and_grace_take_values_both_ways() {
        let options = run(&["-c", "/etc/exeunt.toml", "--grace=2s", "--", "job"]);
        assert_eq!(options.config, Some(PathBuf::from("/etc/exeunt.toml")));
        assert_eq!(options.grace, Some(Duration::from_secs(2)));
        assert_eq!(run(&["--config", "m.toml", "--grace", "500ms"]).grace, Some(Duration::from_millis(500)));
        assert_eq!(run(&["-cm.toml"]).config, Some(PathBuf::from("m.toml")));
    }

    #[test]
    fn check_takes_role_maps_as_arguments() {
        let Ok(Invocation::Check(options)) = parse(&words(&["--check", "a.toml", "b.toml"]), &|_| None) else {
            panic!("a check")
        };
        assert_eq!(options.command, words(&["a.toml", "b.toml"]));
    }

    #[test]
    fn tini_environment_variables_are_honoured() {
        let env = |name: &str| match name {
            "TINI_KILL_PROCESS_GROUP" => Some(OsString::from("1")),
            "TINI_VERBOSITY" => Some(OsString::from("3")),
            "EXEUNT_CONFIG" => Some(OsString::from("/etc/x.toml")),
            _ => None,
        };
        let Ok(Invocation::Run(options)) = parse(&[], &env) else { panic!("a run") };
        assert!(options.signal_groups);
        assert_eq!(options.log.level, Some(Level::Info));
        assert_eq!(options.config, Some(PathBuf::from("/etc/x.toml")));
    }

    #[test]
    fn exeunt_log_wins_over_verbosity() {
        let env = |name: &str| (name == "EXEUNT_LOG").then(|| OsString::from("debug"));
        let Ok(Invocation::Run(options)) = parse(&words(&["-v", "x"]), &env) else { panic!("a run") };
        assert_eq!(options.log.level, Some(Level::Debug));
    }

    #[test]
    fn dumb_inits_command_line_and_variables_are_read() {
        let parse = |line: &[&str], env: &dyn Fn(&str) -> Option<OsString>| match parse_dumb_init(&words(line), env) {
            Ok(Invocation::Run(options)) => options,
            other => panic!("expected a run, got {other:?}"),
        };
        let none = |_: &str| None;
        let options = parse(&["-r", "15:3", "--rewrite=1:0", "sh", "-c", "exit 3"], &none);
        assert_eq!(options.command, words(&["sh", "-c", "exit 3"]));
        assert_eq!(options.rewrite, [(Signo(15), Some(Signo(3))), (Signo(1), None)]);
        assert_eq!((options.dumb_init, options.signal_groups), (Some(DumbInit { setsid: true }), true));
        let options = parse(&["-cv", "true"], &none);
        assert_eq!((options.dumb_init, options.signal_groups), (Some(DumbInit { setsid: false }), false));
        assert_eq!(options.log.level, Some(Level::Debug));
        let env = |name: &str| match name {
            "DUMB_INIT_SETSID" => Some(OsString::from("0")),
            "DUMB_INIT_DEBUG" => Some(OsString::from("1")),
            _ => None,
        };
        let options = parse(&["--", "-x"], &env);
        assert_eq!((options.dumb_init, options.log.level), (Some(DumbInit { setsid: false }), Some(Level::Debug)));
        assert_eq!(options.command, words(&["-x"]));
        assert_eq!(parse_dumb_init(&words(&["-V"]), &none), Ok(Invocation::Version));
        assert_eq!(parse_dumb_init(&words(&["--help"]), &none), Ok(Invocation::Help));
        for (line, expected) in [(&[][..], "nothing to run"), (&["-x", "true"][..], "unknown option '-x'")] {
            let err = parse_dumb_init(&words(line), &none).expect_err(expected).to_string();
            assert!(err.starts_with(expected) && err.ends_with(" (see dumb-init --help)"), "{err}");
        }
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let cases: [(&[&str], &str); 9] = [
            (&[], "nothing to run"),
            (&["-x", "true"], "unknown option '-x'"),
            (&["--frobnicate"], "unknown option '--frobnicate'"),
            (&["-e", "256", "true"], "-e takes an exit code from 0 to 255, got '256'"),
            (&["-e"], "-e needs an exit code"),
            (&["-p", "SIGNOPE", "true"], "-p: unknown signal 'SIGNOPE'"),
            (&["--grace", "soon", "true"], "--grace: invalid duration 'soon'"),
            (&["-c"], "-c needs a file"),
            (&["-r", "15", "true"], "-r takes S:R, two signals as 15:3 (R = 0 ignores S), got '15'"),
        ];
        for (line, expected) in cases {
            let err = parse(&words(line), &|_| None).expect_err(expected).to_string();
            assert!(err.starts_with(expected), "{line:?}: {err}");
        }
    }

    fn asked(line: &[&str]) -> Request {
        match parse(&words(line), &|_| None) {
            Ok(Invocation::Ask(request, _)) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn client_forms_become_requests_and_never_a_run() {
        assert_eq!(asked(&["--status"]), Request::Status { json: false });
        assert_eq!(asked(&["--status", "--json"]), Request::Status { json: true });
        assert_eq!(asked(&["--json", "--status"]), Request::Status { json: true });
        assert_eq!(asked(&["--ready"]), Request::Ready { names: vec![] });
        assert_eq!(asked(&["--ready", "proxy", "job"]), Request::Ready { names: vec!["proxy".into(), "job".into()] });
        assert_eq!(asked(&["--live"]), Request::Live);
        assert_eq!(asked(&["--restart", "proxy"]), Request::Restart { name: "proxy".into() });
        assert_eq!(asked(&["--restart=proxy"]), Request::Restart { name: "proxy".into() });
        assert_eq!(
            asked(&["--signal", "HUP", "proxy"]),
            Request::Signal { signo: Signo(1), name: "proxy".into(), group: false }
        );
        assert_eq!(
            asked(&["-g", "--signal", "SIGUSR1", "job"]),
            Request::Signal { signo: Signo(10), name: "job".into(), group: true }
        );
        // A role map may say where the socket is, and EXEUNT_CONTROL_SOCKET too.
        let env = |name: &str| (name == "EXEUNT_CONTROL_SOCKET").then(|| OsString::from("@elsewhere"));
        let Ok(Invocation::Ask(_, options)) = parse(&words(&["-c", "m.toml", "--live"]), &env) else { panic!() };
        assert_eq!(options.config, Some(PathBuf::from("m.toml")));
        assert_eq!(options.control_socket, Some(ControlSocket::Abstract("elsewhere".into())));
    }

    #[test]
    fn client_forms_that_cannot_be_asked_are_refused_with_one_line() {
        for (line, expected) in [
            (&["--status", "--ready"][..], "--status and --ready cannot be asked at once"),
            (&["--json"], "--json goes with --status"),
            (&["--ready", "--json"], "--json goes with --status, not --ready"),
            (&["--status", "job"], "--status takes no 'job'"),
            (&["--live", "job"], "--live takes no 'job'"),
            (&["--restart"], "--restart needs a process name"),
            (&["--restart", "a", "b"], "--restart takes no 'b'"),
            (&["--signal", "HUP"], "--signal SIGNAL takes one process name after it"),
            (&["--signal", "SIGNOPE", "job"], "--signal: unknown signal 'SIGNOPE'"),
        ] {
            let err = parse(&words(line), &|_| None).expect_err(expected).to_string();
            assert!(err.starts_with(expected), "{line:?}: {err}");
            assert!(!err.contains('\n'), "{line:?}: {err}");
        }
        let env = |name: &str| (name == "EXEUNT_CONTROL_SOCKET").then(|| OsString::from("@"));
        let err = parse(&words(&["--status"]), &env).expect_err("an empty name").to_string();
        assert!(err.starts_with("EXEUNT_CONTROL_SOCKET: an empty control socket"), "{err}");
    }
}
