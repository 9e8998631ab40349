//! exeunt's stdout and stderr, written without ever blocking. Two writers share them:
//! exeunt's own log (written from anywhere, through [`log`]) and the processes' lines
//! that the output carrier brings. Neither writer is known here: the log hands in whole
//! lines, and the carrier offers its lines to a stream's [`Outlet`] itself.
//!
//! exeunt's own log lines wait in a bounded queue of their own when stderr is full.
//! There the oldest give way, counted and said, because the last lines (why exeunt
//! stops, what it exits with) matter most.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::outlet::Outlet;

/// How many bytes of the processes' lines may wait for room in a stream beyond the
/// line being written.
const STREAM_LIMIT: usize = 64 * 1024;
/// How many bytes of exeunt's own log lines may wait for a full stderr: about a
/// thousand lines.
const LOG_LIMIT: usize = 64 * 1024;

/// One of exeunt's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    pub const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// exeunt's log lines that wait for stderr.
struct LogQueue {
    lines: VecDeque<Box<[u8]>>,
    bytes: usize,
    /// Lines dropped since the last one written: the gap is always right behind the
    /// lines written, so the count is said there.
    dropped: u64,
    /// How the log words that count (see [`word_drops_with`]).
    drops_note: DropsNote,
}

/// The line that says how many log lines were dropped, in the log's own format.
pub type DropsNote = fn(dropped: u64) -> Vec<u8>;

/// Until the log says how, the count is a plain line.
fn plain_drops_note(dropped: u64) -> Vec<u8> {
    format!("[exeunt] warn: {dropped} log lines dropped while stderr was full\n").into_bytes()
}

impl LogQueue {
    fn is_waiting(&self) -> bool {
        !self.lines.is_empty() || self.dropped > 0
    }

    fn push(&mut self, line: &[u8]) {
        self.lines.push_back(line.into());
        self.bytes += line.len();
        while self.bytes > LOG_LIMIT {
            let oldest = self.lines.pop_front().expect("bytes wait, so a line does");
            self.bytes -= oldest.len();
            self.dropped += 1;
        }
    }

    /// Moves lines to stderr while it takes them whole: the count of lines dropped
    /// first, then the lines in order.
    fn flush(&mut self, stderr: &mut Outlet) {
        while !stderr.is_waiting() && !stderr.is_broken() {
            if self.dropped > 0 {
                let note = (self.drops_note)(self.dropped);
                self.dropped = 0;
                stderr.offer(&note);
            } else if let Some(line) = self.lines.pop_front() {
                self.bytes -= line.len();
                stderr.offer(&line);
            } else {
                return;
            }
        }
    }
}

/// exeunt's stdout and stderr, shared by the log (which is written from anywhere) and
/// the processes' lines. One thread uses them; the lock is what a static asks for.
pub struct Streams {
    outlets: [Outlet; 2],
    log: LogQueue,
}

impl Streams {
    fn open() -> Streams {
        Streams {
            outlets: [Outlet::open(libc::STDOUT_FILENO, STREAM_LIMIT), Outlet::open(libc::STDERR_FILENO, STREAM_LIMIT)],
            log: LogQueue { lines: VecDeque::new(), bytes: 0, dropped: 0, drops_note: plain_drops_note },
        }
    }

    pub fn outlet(&mut self, stream: Stream) -> &mut Outlet {
        &mut self.outlets[stream as usize]
    }

    /// Writes what waits for `stream`, as far as it takes it now.
    pub fn flush(&mut self, stream: Stream) {
        self.outlets[stream as usize].flush();
        if stream == Stream::Stderr {
            self.log.flush(&mut self.outlets[1]);
        }
    }

    /// Whether bytes wait for room in `stream` (never when nobody reads it).
    pub fn is_waiting(&self, stream: Stream) -> bool {
        let outlet = &self.outlets[stream as usize];
        !outlet.is_broken() && (outlet.is_waiting() || (stream == Stream::Stderr && self.log.is_waiting()))
    }

    /// Waits until `until` at most for `stream` to take what waits; false when
    /// waiting failed or time ran out.
    pub fn wait_for_room(&mut self, stream: Stream, until: Instant) -> bool {
        self.flush(stream);
        while self.is_waiting(stream) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.outlets[stream as usize].wait_for_room(left) {
                return false;
            }
            self.flush(stream);
        }
        true
    }
}

static STREAMS: Mutex<Option<Streams>> = Mutex::new(None);

/// The streams, opened on first use.
pub fn streams() -> StreamsGuard {
    // No panic can happen while the lock is held; if one did, the streams are still whole.
    let mut guard = STREAMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.get_or_insert_with(Streams::open);
    StreamsGuard(guard)
}

/// The lock on the streams, which are open.
pub struct StreamsGuard(MutexGuard<'static, Option<Streams>>);

impl std::ops::Deref for StreamsGuard {
    type Target = Streams;
    fn deref(&self) -> &Streams {
        self.0.as_ref().expect("streams() opens them")
    }
}

impl std::ops::DerefMut for StreamsGuard {
    fn deref_mut(&mut self) -> &mut Streams {
        self.0.as_mut().expect("streams() opens them")
    }
}

/// Writes one of exeunt's own log lines to stderr, or queues it while stderr is full.
/// Never call it with the streams locked: the log must not be written from here.
pub fn log(line: &[u8]) {
    let mut streams = streams();
    let streams = &mut *streams;
    if streams.log.is_waiting() || streams.outlets[1].is_waiting() {
        streams.log.push(line);
        streams.flush(Stream::Stderr);
    } else {
        streams.outlets[1].offer(line);
    }
}

/// The log words the count of its dropped lines with `note`, so that the count reads as
/// the log's other lines do, text or JSON.
pub fn word_drops_with(note: DropsNote) {
    streams().log.drops_note = note;
}

/// Gives stdout and stderr until `until` to take what still waits, when exeunt is
/// about to exit: a stream that takes nothing in that time does not keep the
/// container from ending.
pub fn drain(until: Instant) {
    let mut streams = streams();
    for stream in Stream::BOTH {
        streams.wait_for_room(stream, until);
    }
}
