//! exeunt's own log: one line per event on stderr, as text (`[exeunt] info: …`) or as
//! JSON objects. A message about one process names it as its `subject`
//! (`info!(subject = name; "…")`), which the JSON form gives a key of its own.
//!
//! env_logger stands in front: it decides which lines are written, by EXEUNT_LOG's
//! filter (`warn,exeunt::checks=debug`), and its format hook writes each line whole
//! into the [`sink`], which never blocks, beside the processes' lines and never inside
//! one.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use log::{Log, Metadata, Record};

use crate::json;
use crate::quoted::Quoted;
use crate::sink;

/// How exeunt writes its own log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `[exeunt] info: message`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// How much exeunt says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    const ALL: [Level; 5] = [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace];

    /// Reads `error`, `warn`, `info`, `debug` or `trace`.
    pub fn parse(name: &str) -> Option<Level> {
        let name = name.trim().to_ascii_lowercase();
        let index = ["error", "warn", "info", "debug", "trace"].iter().position(|n| *n == name)?;
        Some(Level::ALL[index])
    }

    /// tini's TINI_VERBOSITY scale: 1 fatal errors only, 2 warnings, 3 info, 4 debug, 5 trace.
    pub fn from_tini_verbosity(verbosity: u32) -> Level {
        Level::ALL[(verbosity.max(1) as usize - 1).min(4)]
    }

    /// This level raised `steps` times, at most to trace.
    pub fn raised(self, steps: u8) -> Level {
        Level::ALL[(self as usize + steps as usize).min(4)]
    }
}

/// How exeunt's lines are written: 0 for text, 1 for JSON.
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Sets how exeunt's lines are written from now on.
pub fn set_format(format: LogFormat) {
    FORMAT.store(u8::from(format == LogFormat::Json), Ordering::Relaxed);
}

fn format() -> LogFormat {
    if FORMAT.load(Ordering::Relaxed) == 1 { LogFormat::Json } else { LogFormat::Text }
}

/// One of exeunt's lines, newline included: `[exeunt] warn: message`, or as JSON
/// `{"time":…,"level":"warn","process":"exeunt","message":…,"subject":…}`, where the
/// subject is the process the message is about, if it is about one.
pub fn line(level: &str, message: &fmt::Arguments, subject: Option<&dyn fmt::Display>) -> Vec<u8> {
    match format() {
        LogFormat::Text => format!("[exeunt] {level}: {message}\n").into_bytes(),
        LogFormat::Json => {
            let mut out = Vec::with_capacity(160);
            let mut object = json::Object::new(&mut out);
            object.time_now();
            object.string("level", level.as_bytes());
            object.string("process", b"exeunt");
            object.string("message", message.to_string().as_bytes());
            if let Some(subject) = subject {
                object.string("subject", subject.to_string().as_bytes());
            }
            object.end();
            out
        }
    }
}

/// The line said where log lines were dropped while stderr was full.
pub fn drops_note(count: u64) -> Vec<u8> {
    line("warn", &format_args!("{count} log lines dropped while stderr was full"), None)
}

/// An error said before or instead of a run, as the log would say it.
pub fn error_line(message: &str) -> Vec<u8> {
    match format() {
        LogFormat::Text => format!("exeunt: {message}\n").into_bytes(),
        LogFormat::Json => line("error", &format_args!("{message}"), None),
    }
}

/// EXEUNT_LOG, in env_logger's filter syntax: comma-separated directives, each a bare
/// level (`warn`), a module (`exeunt::checks`, all its lines) or a module and its level
/// (`exeunt::checks=debug`), optionally followed by `/TEXT`, which keeps only the
/// lines that contain TEXT. The bare level is kept apart, so that `-v` can raise it and
/// a run can choose it when none is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The level of every module that no directive names.
    pub level: Option<Level>,
    /// The module directives, as written, and the `/TEXT` part.
    rest: String,
}

/// A directive of EXEUNT_LOG that env_logger would not read as meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    directive: String,
    why: &'static str,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "EXEUNT_LOG: {}: {}", Quoted(&self.directive), self.why)
    }
}

impl Filter {
    /// Reads EXEUNT_LOG. env_logger itself skips a directive it cannot read, with a
    /// warning of its own; here each is checked first, so a mistake is one clear line.
    pub fn parse(spec: &str) -> Result<Filter, FilterError> {
        let (directives, text) = match spec.split_once('/') {
            Some((directives, text)) => (directives, Some(text)),
            None => (spec, None),
        };
        let mut filter = Filter::default();
        let mut modules = Vec::new();
        for directive in directives.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let bad = |why| FilterError { directive: directive.to_string(), why };
            let (module, level) = match directive.split_once('=') {
                Some((module, level)) => (module.trim(), Some(level.trim())),
                None if Level::parse(directive).is_some() || directive.eq_ignore_ascii_case("off") => {
                    ("", Some(directive))
                }
                None => (directive, None),
            };
            if let Some(level) = level
                && Level::parse(level).is_none()
                && !level.eq_ignore_ascii_case("off")
            {
                return Err(bad("the level must be error, warn, info, debug, trace or off"));
            }
            if module.is_empty() {
                let level = level
                    .and_then(Level::parse)
                    .ok_or(bad("exeunt always says its errors: the level for every module must be error..trace"))?;
                filter.level = Some(level);
            } else if !module.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                return Err(bad("a module is a path such as exeunt::checks"));
            } else {
                modules.push(directive);
            }
        }
        filter.rest = modules.join(",");
        if let Some(text) = text {
            filter.rest = format!("{}/{text}", filter.rest);
        }
        Ok(filter)
    }

    /// The filter as env_logger reads it, with `level` for the modules no directive names.
    fn spec(&self, level: Level) -> String {
        let name = ["error", "warn", "info", "debug", "trace"][level as usize];
        match self.rest.starts_with('/') || self.rest.is_empty() {
            true => format!("{name}{}", self.rest),
            false => format!("{name},{}", self.rest),
        }
    }
}

/// Writes what env_logger formats into the sink. env_logger hands over each line with
/// one `write_all`, so each goes in whole.
struct SinkWriter;

impl Write for SinkWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        sink::log(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The env_logger in front, replaced when a run chooses its level.
static FRONT: Mutex<Option<env_logger::Logger>> = Mutex::new(None);

/// What the `log` macros reach: the env_logger of the moment.
struct Front;

impl Front {
    fn with<T>(&self, default: T, use_it: impl FnOnce(&env_logger::Logger) -> T) -> T {
        // No panic can happen while the lock is held; if one did, the logger is still whole.
        let front = FRONT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        front.as_ref().map_or(default, use_it)
    }
}

impl Log for Front {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.with(false, |logger| logger.enabled(metadata))
    }

    fn log(&self, record: &Record) {
        self.with((), |logger| logger.log(record));
    }

    fn flush(&self) {}
}

/// env_logger's format hook: the line as exeunt writes it, text or JSON.
fn write_line(out: &mut env_logger::fmt::Formatter, record: &Record) -> std::io::Result<()> {
    let level = match record.level() {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    };
    let subject = record.key_values().get(log::kv::Key::from_str("subject"));
    out.write_all(&line(level, record.args(), subject.as_ref().map(|s| s as &dyn fmt::Display)))
}

/// Installs the logger, or replaces it: `filter` with `level` for the modules it does
/// not name, lines written as `format` says.
pub fn init(filter: &Filter, level: Level, format: LogFormat) {
    let logger = env_logger::Builder::new()
        .parse_filters(&filter.spec(level))
        .format(write_line)
        .target(env_logger::Target::Pipe(Box::new(SinkWriter)))
        .write_style(env_logger::WriteStyle::Never)
        .build();
    let most = logger.filter();
    *FRONT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(logger);
    static LOGGER: Front = Front;
    let _ = log::set_logger(&LOGGER);
    sink::word_drops_with(drops_note);
    log::set_max_level(most);
    set_format(format);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tini_verbosity_maps_onto_levels() {
        assert_eq!(Level::from_tini_verbosity(0), Level::Error);
        assert_eq!(Level::from_tini_verbosity(1), Level::Error);
        assert_eq!(Level::from_tini_verbosity(2), Level::Warn);
        assert_eq!(Level::from_tini_verbosity(3), Level::Info);
        assert_eq!(Level::from_tini_verbosity(9), Level::Trace);
    }

    #[test]
    fn levels_read_by_name_and_raise_up_to_trace() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("loud"), None);
        assert_eq!(Level::Warn.raised(1), Level::Info);
        assert_eq!(Level::Info.raised(200), Level::Trace);
    }

    #[test]
    fn exeunt_log_reads_env_loggers_directives_and_keeps_the_bare_level_apart() {
        let filter = Filter::parse("warn, exeunt::checks=debug").expect("valid");
        assert_eq!(filter.level, Some(Level::Warn));
        assert_eq!(filter.spec(Level::Info), "info,exeunt::checks=debug");
        let filter = Filter::parse("exeunt::checks/probe").expect("valid");
        assert_eq!((filter.level, filter.spec(Level::Warn)), (None, "warn,exeunt::checks/probe".to_string()));
        assert_eq!(Filter::parse("TRACE").expect("valid").spec(Level::Trace), "trace");
        assert_eq!(Filter::parse("/only this").expect("valid").spec(Level::Info), "info/only this");
    }

    #[test]
    fn a_bad_exeunt_log_directive_is_named() {
        let bad = |spec: &str| Filter::parse(spec).expect_err(spec).to_string();
        assert_eq!(
            bad("info,checks=loud"),
            "EXEUNT_LOG: 'checks=loud': the level must be error, warn, info, debug, trace or off"
        );
        let every = "exeunt always says its errors: the level for every module must be error..trace";
        assert_eq!(bad("=off"), format!("EXEUNT_LOG: '=off': {every}"));
        assert_eq!(bad("off"), format!("EXEUNT_LOG: 'off': {every}"));
        assert!(Filter::parse("=debug").is_ok());
        assert_eq!(bad("exeunt checks"), "EXEUNT_LOG: 'exeunt checks': a module is a path such as exeunt::checks");
    }
}
