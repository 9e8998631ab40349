//! The command line: tini's flags and environment variables, plus exeunt's own; and,
//! when exeunt is started by the name `dumb-init`, dumb-init's.
//!
//! Parsing has two phases: [`parse`] reads words into [`Options`] without touching
//! the system; [`crate::run`] then turns options and the role map into a plan.

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

pub const USAGE: &str = "\
usage: exeunt [OPTIONS] [--] [COMMAND [ARG]...]
       exeunt --check [ROLEMAP...]
       exeunt --status [--json] | --ready [NAME...] | --live
       exeunt --restart NAME | --signal SIGNAL [-g] NAME
       exeunt install PATH

Runs COMMAND, or the processes of a role map, as an init: reaps zombies, forwards
signals, stops the sidecars when the primaries are done, and exits with the
primaries' status.

options:
  -c, --config FILE   the role map (TOML); also EXEUNT_CONFIG. A COMMAND given
                      with it becomes the primary
      --grace DUR     replace every grace period (500ms, 10s, 2m)
      --stop-delay DUR
                      hold a stop signal back this long, everything running,
                      before passing it on (endpoints leave a load balancer)
      --check         validate the role map(s), print the plan, start nothing
      --sidecar       this container is a sidecar of another container's primary
                      (shared process namespace): exit with the status that the
                      primary's exeunt sends with its stop signal; also EXEUNT_SIDECAR=1
  -s                  register as a child subreaper (done anyway when not PID 1)
  -g                  forward signals to the primaries' process groups
  -e CODE             exit with 0 when the primary exits with CODE (repeatable)
  -p SIGNAL           signal exeunt gets when its parent dies (e.g. SIGKILL)
  -w                  log every reaped zombie at warning level
  -r, --rewrite S:R   the primaries get signal R for signal S (numbers or
                      names, as 15:3; R = 0 ignores S); repeatable
  -v                  more logging (repeatable); also EXEUNT_LOG=LEVEL,MODULE=LEVEL
  -h, --help          show this help
      --version       show the version

asking the exeunt that runs in this container (exit 0 yes or done, 1 no, 2 error):
      --status        every process: role, pid, state, restarts, time in state
      --json          with --status: one JSON document
      --ready         exit 0 when every sidecar passed its probe and every primary
                      runs; names given after it narrow that down to them
      --live          exit 0 when exeunt's loop answers
      --restart NAME  stop sidecar NAME with its stop action, then start it again
      --signal SIGNAL NAME
                      send SIGNAL to process NAME (to its process group with -g)

`exeunt install PATH` copies exeunt to PATH, or PATH/exeunt for a directory (for an
init container that puts exeunt into a shared volume).

environment: EXEUNT_CONFIG, EXEUNT_LOG, EXEUNT_LOG_FORMAT (text or json),
EXEUNT_CONTROL_SOCKET (@NAME, a path, or off), EXEUNT_SIDECAR,
TINI_SUBREAPER, TINI_KILL_PROCESS_GROUP, TINI_VERBOSITY, and kubexit's KUBEXIT_NAME,
KUBEXIT_GRAVEYARD, KUBEXIT_DEATH_DEPS, KUBEXIT_BIRTH_DEPS, KUBEXIT_BIRTH_TIMEOUT,
KUBEXIT_GRACE_PERIOD
";

pub const DUMB_INIT_USAGE: &str = "\
usage: dumb-init [OPTIONS] COMMAND [ARG]...

exeunt, started as dumb-init: runs COMMAND as its one child, passes every signal on
to it, reaps zombies, and exits with the child's status.

options:
  -c, --single-child  the child keeps exeunt's session, and signals go to it alone
                      (also DUMB_INIT_SETSID=0); otherwise it leads a session of
                      its own and signals go to its whole process group
  -r, --rewrite S:R   the child gets signal R for signal S (numbers, as 15:3;
                      R = 0 ignores S); repeatable
  -v, --verbose       say what happens, on stderr (also DUMB_INIT_DEBUG=1)
  -V, --version       show the version
  -h, --help          show this help
";

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

/// A command line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see exeunt --help)", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Reads the words after the program name. `env` looks up an environment variable.
/// Options stop at `--` or at the first word that is not an option, so
/// `exeunt sh -c 'exit 3'` runs `sh` with its own `-c`.
pub fn parse(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Invocation, UsageError> {
    let mut options = Options {
        config: env("EXEUNT_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from),
        signal_groups: env("TINI_KILL_PROCESS_GROUP").is_some(),
        sidecar_container: env("EXEUNT_SIDECAR").is_some_and(|v| !matches!(v.to_str(), Some("" | "0" | "false"))),
        ..Options::default()
    };
    let verbosity: Option<u32> = match env("TINI_VERBOSITY") {
        Some(v) => Some(v.to_str().and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
            UsageError(format!("TINI_VERBOSITY must be a number, got {}", Quoted(&v.to_string_lossy())))
        })?),
        None => None,
    };
    let mut check = false;
    let mut ask = Asking::default();
    let mut words = Words::new(args);
    while let Some(option) = words.next_option() {
        match option {
            Opt::Long { name, inline } => match name {
                "config" => options.config = Some(PathBuf::from(words.long_value(name, inline, "a file")?)),
                "grace" => {
                    options.grace = Some(read_duration("--grace", &words.long_value(name, inline, "a duration")?)?);
                }
                "stop-delay" => {
                    let value = words.long_value(name, inline, "a duration")?;
                    options.stop_delay = Some(read_duration("--stop-delay", &value)?);
                }
                "rewrite" => options.rewrite.push(read_rewrite("--rewrite", &words.long_value(name, inline, "S:R")?)?),
                "check" => check = true,
                "sidecar" => options.sidecar_container = true,
                "status" | "json" | "ready" | "live" => ask.verb(name, None)?,
                "restart" | "signal" => {
                    let what = if name == "signal" { "a signal" } else { "a process name" };
                    let value = words.long_value(name, inline, what)?;
                    ask.verb(name, Some(value))?;
                }
                // dumb-init's: exeunt's children never share its session anyway.
                "single-child" => {}
                "help" => return Ok(Invocation::Help),
                "version" => return Ok(Invocation::Version),
                _ => return Err(unknown(&format!("--{name}"))),
            },
            Opt::Short(flags) => {
                for (i, flag) in flags.char_indices() {
                    let joined = &flags[i + flag.len_utf8()..];
                    match flag {
                        's' => {}
                        'g' => {
                            options.signal_groups = true;
                            ask.group = true;
                        }
                        'w' => options.report_reaped = true,
                        'v' => options.verbose = options.verbose.saturating_add(1),
                        'h' => return Ok(Invocation::Help),
                        'c' => {
                            options.config = Some(PathBuf::from(words.short_value(flag, joined, "a file")?));
                            break;
                        }
                        'e' => {
                            let code = words.short_value(flag, joined, "an exit code")?;
                            let code = code.to_str().and_then(|c| c.parse::<u8>().ok()).ok_or_else(|| {
                                UsageError(format!(
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
                                Signo::parse(&name.to_string_lossy()).map_err(|e| UsageError(format!("-p: {e}")))?;
                            options.parent_death_signal = Some(signo);
                            break;
                        }
                        _ => return Err(unknown(&format!("-{flag}"))),
                    }
                }
            }
        }
    }
    options.command = words.command();
    if let Some(spec) = env("EXEUNT_LOG") {
        options.log = Filter::parse(&spec.to_string_lossy()).map_err(|e| UsageError(e.to_string()))?;
    }
    if options.log.level.is_none() {
        options.log.level = verbosity.map(Level::from_tini_verbosity);
    }
    options.log_format = log_format(env)?;
    options.control_socket = crate::control::from_env(env).map_err(UsageError)?;
    if let Some(request) = ask.request(&options.command)? {
        return Ok(Invocation::Ask(request, options));
    }
    if check {
        return Ok(Invocation::Check(options));
    }
    if options.command.is_empty() && options.config.is_none() {
        return Err(UsageError("nothing to run: give a COMMAND or a role map with -c".to_string()));
    }
    Ok(Invocation::Run(options))
}

/// The options of a client form, as they come.
#[derive(Default)]
struct Asking {
    /// The option that says what to ask, with its value.
    verb: Option<(&'static str, Option<OsString>)>,
    json: bool,
    group: bool,
}

impl Asking {
    fn verb(&mut self, name: &str, value: Option<OsString>) -> Result<(), UsageError> {
        let name = match name {
            "json" => {
                self.json = true;
                return Ok(());
            }
            "status" => "status",
            "ready" => "ready",
            "live" => "live",
            "restart" => "restart",
            _ => "signal",
        };
        if let Some((first, _)) = &self.verb {
            return Err(UsageError(format!("--{first} and --{name} cannot be asked at once")));
        }
        self.verb = Some((name, value));
        Ok(())
    }

    /// The request, once the options have ended; `words` are the words after them.
    fn request(self, words: &[OsString]) -> Result<Option<Request>, UsageError> {
        let text = |word: &OsString| {
            word.to_str()
                .map(str::to_string)
                .ok_or_else(|| UsageError(format!("{} is not UTF-8", Quoted(&word.to_string_lossy()))))
        };
        let Some((verb, value)) = self.verb else {
            if self.json {
                return Err(UsageError("--json goes with --status".to_string()));
            }
            return Ok(None);
        };
        if self.json && verb != "status" {
            return Err(UsageError(format!("--json goes with --status, not --{verb}")));
        }
        let no_words = |request: Request| match words {
            [] => Ok(Some(request)),
            [word, ..] => Err(UsageError(format!("--{verb} takes no {}", Quoted(&word.to_string_lossy())))),
        };
        match (verb, value) {
            ("status", _) => no_words(Request::Status { json: self.json }),
            ("ready", _) => Ok(Some(Request::Ready { names: words.iter().map(text).collect::<Result<_, _>>()? })),
            ("live", _) => no_words(Request::Live),
            ("restart", Some(name)) => no_words(Request::Restart { name: text(&name)? }),
            (_, Some(signal)) => {
                let signo =
                    Signo::parse(&signal.to_string_lossy()).map_err(|e| UsageError(format!("--signal: {e}")))?;
                match words {
                    [name] => Ok(Some(Request::Signal { signo, name: text(name)?, group: self.group })),
                    _ => Err(UsageError("--signal SIGNAL takes one process name after it".to_string())),
                }
            }
            (_, None) => Err(UsageError(format!("--{verb} needs a value"))),
        }
    }
}

/// One option of a command line, as [`Words`] finds it.
enum Opt<'a> {
    /// `--name` or `--name=value`.
    Long { name: &'a str, inline: Option<&'a str> },
    /// `-abc`: one or more short flags, the last of which may take the rest as a value.
    Short(&'a str),
}

/// Walks the options of a command line the way both of exeunt's command lines read
/// them: they end at `--` or at the first word that is not an option; a long option's
/// value follows `=` or is the next word; short flags group (`-vvv`), and one that takes
/// a value takes the rest of its word or the next word (`-e3`, `-e 3`).
struct Words<'a> {
    words: std::slice::Iter<'a, OsString>,
    /// The first word that was not an option, once met.
    first: Option<&'a OsString>,
}

impl<'a> Words<'a> {
    fn new(args: &'a [OsString]) -> Words<'a> {
        Words { words: args.iter(), first: None }
    }

    /// The next option; None once the options have ended.
    fn next_option(&mut self) -> Option<Opt<'a>> {
        let word = self.words.next()?;
        let Some(text) = word.to_str() else {
            self.first = Some(word);
            return None;
        };
        if text == "--" {
            return None;
        }
        if let Some(long) = text.strip_prefix("--") {
            return Some(match long.split_once('=') {
                Some((name, value)) => Opt::Long { name, inline: Some(value) },
                None => Opt::Long { name: long, inline: None },
            });
        }
        match text.strip_prefix('-').filter(|flags| !flags.is_empty()) {
            Some(flags) => Some(Opt::Short(flags)),
            None => {
                self.first = Some(word);
                None
            }
        }
    }

    /// The value of long option `name`: after its `=`, else the next word.
    fn long_value(&mut self, name: &str, inline: Option<&str>, what: &str) -> Result<OsString, UsageError> {
        inline
            .map(OsString::from)
            .or_else(|| self.words.next().cloned())
            .ok_or_else(|| UsageError(format!("--{name} needs {what}")))
    }

    /// The value of short flag `flag`: the rest of its word, else the next word.
    fn short_value(&mut self, flag: char, joined: &str, what: &str) -> Result<OsString, UsageError> {
        if joined.is_empty() {
            self.words.next().cloned().ok_or_else(|| UsageError(format!("-{flag} needs {what}")))
        } else {
            Ok(OsString::from(joined))
        }
    }

    /// What follows the options: COMMAND and its arguments.
    fn command(self) -> Vec<OsString> {
        self.first.into_iter().chain(self.words).cloned().collect()
    }
}

fn unknown(option: &str) -> UsageError {
    UsageError(format!("unknown option {}", Quoted(option)))
}

/// Reads `S:R`, dumb-init's rewrite: two signal numbers (or names); R = 0 ignores S.
fn read_rewrite(option: &str, value: &OsStr) -> Result<(Signo, Option<Signo>), UsageError> {
    let text = value.to_string_lossy();
    let bad =
        || UsageError(format!("{option} takes S:R, two signals as 15:3 (R = 0 ignores S), got {}", Quoted(&text)));
    let (from, to) = text.split_once(':').ok_or_else(bad)?;
    let from = Signo::parse(from).map_err(|_| bad())?;
    let to = match to.trim() {
        "0" => None,
        to => Some(Signo::parse(to).map_err(|_| bad())?),
    };
    Ok((from, to))
}

/// Reads dumb-init's command line (the words after the program name) and its variables
/// `DUMB_INIT_SETSID` and `DUMB_INIT_DEBUG`. Options stop at `--` or at the first word
/// that is not an option.
pub fn parse_dumb_init(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Invocation, UsageError> {
    let mut options = Options::default();
    let mut setsid = env("DUMB_INIT_SETSID").is_none_or(|v| v != "0");
    let mut verbose = env("DUMB_INIT_DEBUG").is_some_and(|v| v == "1");
    let mut words = Words::new(args);
    while let Some(option) = words.next_option() {
        match option {
            Opt::Long { name, inline } => match name {
                "help" => return Ok(Invocation::Help),
                "version" => return Ok(Invocation::Version),
                "single-child" => setsid = false,
                "verbose" => verbose = true,
                "rewrite" => options.rewrite.push(read_rewrite("--rewrite", &words.long_value(name, inline, "S:R")?)?),
                _ => return Err(unknown(&format!("--{name}"))),
            },
            Opt::Short(flags) => {
                for (i, flag) in flags.char_indices() {
                    match flag {
                        'h' => return Ok(Invocation::Help),
                        'V' => return Ok(Invocation::Version),
                        'c' => setsid = false,
                        'v' => verbose = true,
                        'r' => {
                            let joined = &flags[i + flag.len_utf8()..];
                            options.rewrite.push(read_rewrite("-r", &words.short_value(flag, joined, "S:R")?)?);
                            break;
                        }
                        _ => return Err(unknown(&format!("-{flag}"))),
                    }
                }
            }
        }
    }
    let rest = words.command();
    if rest.is_empty() {
        return Err(UsageError("nothing to run: give a COMMAND".to_string()));
    }
    options.command = rest;
    options.log.level = verbose.then_some(Level::Debug);
    options.log_format = log_format(env)?;
    options.signal_groups = setsid;
    options.dumb_init = Some(DumbInit { setsid });
    Ok(Invocation::Run(options))
}

/// EXEUNT_LOG_FORMAT: `text` (or unset) or `json`.
fn log_format(env: &dyn Fn(&str) -> Option<OsString>) -> Result<LogFormat, UsageError> {
    match env("EXEUNT_LOG_FORMAT").filter(|v| !v.is_empty()) {
        None => Ok(LogFormat::Text),
        Some(value) => match value.to_string_lossy().trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UsageError(format!(
                "EXEUNT_LOG_FORMAT must be text or json, got {}",
                Quoted(&value.to_string_lossy())
            ))),
        },
    }
}

fn read_duration(option: &str, value: &OsStr) -> Result<Duration, UsageError> {
    duration::parse(&value.to_string_lossy()).map_err(|e| UsageError(format!("{option}: {e}")))
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
            assert!(err.starts_with(expected), "{err}");
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
