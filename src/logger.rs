//! exeunt's own log: one line per event on stderr, as text (`[exeunt] info: …`) or as
//! JSON objects. A message about one process names it as its `subject`
//! (`info!(subject = name; "…")`), which the JSON form gives a key of its own.
//!
//! Each line is formatted whole and handed to [`output::log`], which writes it without
//! ever blocking, beside the processes' lines and never inside one.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

use crate::json;
use crate::output;
use crate::plan::LogFormat;

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

    fn filter(self) -> LevelFilter {
        match self {
            Level::Error => LevelFilter::Error,
            Level::Warn => LevelFilter::Warn,
            Level::Info => LevelFilter::Info,
            Level::Debug => LevelFilter::Debug,
            Level::Trace => LevelFilter::Trace,
        }
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

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warn",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        let subject = record.key_values().get(log::kv::Key::from_str("subject"));
        output::log(&line(level, record.args(), subject.as_ref().map(|s| s as &dyn fmt::Display)));
    }

    fn flush(&self) {}
}

/// Installs the logger; later calls only change the level and format.
pub fn init(level: Level, format: LogFormat) {
    static LOGGER: StderrLogger = StderrLogger;
    let _ = log::set_logger(&LOGGER);
    output::word_drops_with(drops_note);
    log::set_max_level(level.filter());
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
}
