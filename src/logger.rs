//! Logging to stderr, one line per event, prefixed `[exeunt]`.
//!
//! Each line is formatted first and offered whole to stderr's [`Outlet`], so that
//! lines from exeunt and its children never interleave mid-line, and a full stderr
//! never blocks exeunt: lines wait in a bounded queue, and past it they are dropped
//! and counted, the count said as soon as stderr takes lines again. The queue is
//! written out as stderr has room ([`LogDrain`], a source of the event loop). A closed
//! stderr is ignored: an init must not stop because nobody reads its log.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use log::{LevelFilter, Log, Metadata, Record};

use crate::event_loop::{Events, Interest, Poller, Source, Token};
use crate::outlet::Outlet;

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

/// How many bytes of log lines may wait for a full stderr: about a thousand lines.
const WAITING_LIMIT: usize = 64 * 1024;

/// stderr as the log writes to it. The outlet holds at most the line being written;
/// the lines behind it wait here, where the oldest make room for the newest: the last
/// lines (why exeunt stops, what it exits with) matter most.
struct LogStream {
    outlet: Outlet,
    waiting: VecDeque<Box<[u8]>>,
    waiting_bytes: usize,
    /// Lines dropped since the last one written: the gap is always right behind the
    /// line being written, so the count is said there.
    dropped: u64,
}

impl LogStream {
    fn new() -> LogStream {
        let outlet = Outlet::open(libc::STDERR_FILENO, usize::MAX);
        LogStream { outlet, waiting: VecDeque::new(), waiting_bytes: 0, dropped: 0 }
    }

    fn offer(&mut self, line: &[u8]) {
        if !self.is_waiting() {
            self.outlet.offer(line);
            return;
        }
        self.waiting.push_back(line.into());
        self.waiting_bytes += line.len();
        while self.waiting_bytes > WAITING_LIMIT {
            let oldest = self.waiting.pop_front().expect("bytes wait, so a line does");
            self.waiting_bytes -= oldest.len();
            self.dropped += 1;
        }
        self.flush();
    }

    /// Whether lines wait for stderr (which never holds when nobody reads it).
    fn is_waiting(&self) -> bool {
        !self.outlet.is_broken() && (self.outlet.is_waiting() || !self.waiting.is_empty() || self.dropped > 0)
    }

    /// Writes as much as stderr takes now: the line begun, the count of lines dropped
    /// behind it, then the lines that wait.
    fn flush(&mut self) {
        self.outlet.flush();
        while !self.outlet.is_waiting() && !self.outlet.is_broken() {
            if self.dropped > 0 {
                let note = format!("[exeunt] warn: {} log lines dropped while stderr was full\n", self.dropped);
                self.dropped = 0;
                self.outlet.offer(note.as_bytes());
            } else if let Some(line) = self.waiting.pop_front() {
                self.waiting_bytes -= line.len();
                self.outlet.offer(&line);
            } else {
                return;
            }
        }
    }

    /// Waits up to `limit` for stderr to take every line.
    fn drain(&mut self, limit: Duration) {
        let until = std::time::Instant::now() + limit;
        loop {
            self.flush();
            let left = until.saturating_duration_since(std::time::Instant::now());
            if !self.is_waiting() || left.is_zero() || !self.outlet.wait_for_room(left) {
                return;
            }
        }
    }
}

/// The log's stream, once [`init`] has opened it. One thread uses it; the lock is
/// what the `log` crate's `Sync` bound asks for.
static STREAM: Mutex<Option<LogStream>> = Mutex::new(None);

fn stream() -> MutexGuard<'static, Option<LogStream>> {
    // A panic cannot happen while the lock is held; if it did, the stream is still whole.
    STREAM.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let line = format!("[exeunt] {level}: {}\n", record.args());
        match stream().as_mut() {
            Some(stream) => stream.offer(line.as_bytes()),
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger; later calls only change the level.
pub fn init(level: Level) {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        *stream() = Some(LogStream::new());
    }
    log::set_max_level(level.filter());
}

/// Gives stderr up to `limit` to take the lines that still wait, when exeunt is about
/// to exit: its last lines (why it stopped, what it exits with) matter most.
pub fn drain(limit: Duration) {
    if let Some(stream) = stream().as_mut() {
        stream.drain(limit);
    }
}

/// The event loop's side of the log: stderr is watched for room while lines wait.
pub struct LogDrain {
    token: Token,
    watched: bool,
}

impl LogDrain {
    pub fn new(token: Token) -> LogDrain {
        LogDrain { token, watched: false }
    }

    /// Watches stderr while lines wait for it, and stops once none do: an idle stderr
    /// costs no wake-ups.
    pub fn settle(&mut self, poller: &Poller) {
        let mut guard = stream();
        let Some(stream) = guard.as_mut() else { return };
        let waiting = stream.is_waiting();
        if waiting && !self.watched {
            self.watched = poller.watch(stream.outlet.as_fd(), self.token, Interest::Writable).is_ok();
        } else if !waiting && self.watched {
            poller.unwatch(stream.outlet.as_fd());
            self.watched = false;
        }
    }
}

impl Source for LogDrain {
    fn on_ready(&mut self, _key: u32, poller: &Poller, _events: &mut Events) {
        if let Some(stream) = stream().as_mut() {
            stream.flush();
        }
        self.settle(poller);
    }
}

/// Text from outside (a role map value, a variable, a tombstone line) as a message
/// quotes it: between single quotes, with control characters escaped, so that an
/// error always stays one line and input cannot forge a log line.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("'")
    }
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
    fn quoted_text_stays_on_one_line() {
        assert_eq!(Quoted("it's 10 s").to_string(), "'it's 10 s'");
        assert_eq!(Quoted("a\nb\r\u{1b}[31m").to_string(), "'a\\nb\\r\\u{1b}[31m'");
        assert_eq!(Quoted("µs").to_string(), "'µs'");
    }

    #[test]
    fn levels_read_by_name_and_raise_up_to_trace() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("loud"), None);
        assert_eq!(Level::Warn.raised(1), Level::Info);
        assert_eq!(Level::Info.raised(200), Level::Trace);
    }
}
