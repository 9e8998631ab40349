//! Where the processes' output is carried: the lines of the processes whose `output`
//! is `prefix` or `json`, which write into pipes that exeunt reads. Each line goes out
//! tagged with its process, on the stream of exeunt's it was written to.
//!
//! Every line is offered whole to its stream's [`crate::outlet::Outlet`], so no line is ever torn by
//! another, and nothing here blocks:
//! A pipe is read only while its lines have room in the stream (the [`crate::sink`]).
//! When the stream is full, the pipe waits unread and its process blocks on its own
//! writes, as it would writing straight to a slow stdout. Memory stays at one buffer
//! per pipe.
//!
//! A line longer than [`PIECE`] goes out in pieces of at most that size; every piece
//! but the last is marked as continued. When exeunt is done, [`Output::finish`] carries
//! what the pipes still hold, a last line without a newline included, and does not
//! wait for a pipe that a leftover process keeps open.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use log::warn;
use nix::errno::Errno;

use crate::event_loop::{Events, Interest, Poller, Source, SourceId, Token};
use crate::json;
use crate::plan::{Output as Mode, Plan};
use crate::sink::{Stream, Streams, streams};
use crate::utc::MillisClock;

/// The longest line carried in one piece; each pipe's buffer holds one byte more.
pub const PIECE: usize = 64 * 1024;

/// How one process's lines are tagged. What is the same for many lines is written
/// once, here, and each line goes out as parts that point where its bytes lie: a
/// process may write millions of lines, and copying each one costs more than the
/// rest of carrying it.
struct Label {
    mode: Mode,
    name: String,
    /// In prefix mode, what comes before a line: the name padded to the width of the
    /// role map's longest, then ` | `, or for a continued piece ` + `. In JSON mode,
    /// for stdout and stderr, what comes before a message: the object's start, the
    /// time (of the read that brought the line), the process and the stream.
    heads: [Vec<u8>; 2],
    clock: MillisClock,
    /// The time the JSON heads hold.
    time: String,
    /// Messages that had to be escaped, for the parts to point into.
    escaped: Vec<u8>,
    /// It tags the lines of the process's probes and stop hooks.
    of_checks: bool,
}

/// Where one part of an outgoing line lies.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// In the feed's buffer.
    Read(usize, usize),
    /// In the label's escaped messages.
    Escaped(usize, usize),
    Head(usize),
    Fixed(&'static [u8]),
}

/// How a JSON line ends: the message's closing quote, the flags, the brace.
const JSON_ENDS: [&[u8]; 4] =
    [b"\"}\n", b"\",\"partial\":true}\n", b"\",\"escaped\":true}\n", b"\",\"escaped\":true,\"partial\":true}\n"];

impl Label {
    /// The label of a process's own lines, or with `of_checks` of its probes' and
    /// hooks' lines: ` : ` and ` ; ` in prefix mode where its own have ` | ` and ` + `,
    /// and `"from":"check"` in JSON.
    fn new(mode: Mode, name: &str, width: usize, of_checks: bool) -> Label {
        let separators = if of_checks { [" : ", " ; "] } else { [" | ", " + "] };
        let heads = match mode {
            Mode::Json => [Vec::new(), Vec::new()],
            Mode::Prefix | Mode::Inherit => {
                separators.map(|separator| format!("{name:width$}{separator}").into_bytes())
            }
        };
        let (clock, time, escaped) = (MillisClock::default(), String::new(), Vec::new());
        Label { mode, name: name.to_string(), heads, clock, time, escaped, of_checks }
    }

    /// Starts a batch of lines read at one moment: the JSON heads take its time.
    fn start_batch(&mut self) {
        self.escaped.clear();
        if self.mode != Mode::Json || self.clock.now() == self.time {
            return;
        }
        self.time = self.clock.now().to_string();
        for stream in Stream::BOTH {
            let head = &mut self.heads[stream as usize];
            head.clear();
            head.extend_from_slice(b"{\"time\":\"");
            head.extend_from_slice(self.time.as_bytes());
            head.extend_from_slice(b"\",\"process\":");
            json::push_string(head, self.name.as_bytes());
            if self.of_checks {
                head.extend_from_slice(b",\"from\":\"check\"");
            }
            head.extend_from_slice(format!(",\"stream\":\"{}\",\"message\":\"", stream.name()).as_bytes());
        }
    }

    /// The parts of one line going out: `text` (at `at` in the feed's buffer, followed
    /// there by its newline when `newline`), a line or a piece of one, `continued`
    /// when the next piece carries on with the same line.
    fn parts(&mut self, parts: &mut Vec<Part>, stream: Stream, text: &[u8], at: usize, newline: bool, continued: bool) {
        match self.mode {
            Mode::Json => {
                parts.push(Part::Head(stream as usize));
                let escaped = if json::is_plain(text) {
                    parts.push(Part::Read(at, at + text.len()));
                    false
                } else {
                    let from = self.escaped.len();
                    let escaped = json::push_string_content(&mut self.escaped, text);
                    parts.push(Part::Escaped(from, self.escaped.len()));
                    escaped
                };
                parts.push(Part::Fixed(JSON_ENDS[usize::from(escaped) * 2 + usize::from(continued)]));
            }
            Mode::Prefix | Mode::Inherit => {
                parts.push(Part::Head(usize::from(continued)));
                if newline {
                    parts.push(Part::Read(at, at + text.len() + 1));
                } else {
                    parts.push(Part::Read(at, at + text.len()));
                    parts.push(Part::Fixed(b"\n"));
                }
            }
        }
    }

    /// Where a part's bytes lie.
    fn bytes<'a>(&'a self, part: Part, buffer: &'a [u8]) -> &'a [u8] {
        match part {
            Part::Read(from, to) => &buffer[from..to],
            Part::Escaped(from, to) => &self.escaped[from..to],
            Part::Head(index) => &self.heads[index],
            Part::Fixed(bytes) => bytes,
        }
    }
}

/// One pipe that a process writes its stdout or stderr into, and what of it has been
/// read but not yet written out.
struct Feed {
    pipe: OwnedFd,
    /// Its label: the process of the plan it belongs to, or past them, its checks.
    index: usize,
    stream: Stream,
    buffer: Box<[u8]>,
    /// The bytes read and not yet written out are `buffer[start..end]`.
    start: usize,
    end: usize,
    /// Nothing more will come: what is left is the last line.
    ended: bool,
    /// The pipe is watched (it is not waiting for room in its stream).
    watched: bool,
}

impl Feed {
    /// Reads once, as much as the buffer holds: how many bytes came, which end the
    /// buffer; 0 when the pipe is empty, or at its end, which `ended` then says.
    fn read(&mut self) -> usize {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = &mut self.buffer[self.end..];
        loop {
            // SAFETY: the pointer and length are one valid slice; the pipe is open.
            let got = unsafe { libc::read(self.pipe.as_raw_fd(), room.as_mut_ptr().cast(), room.len()) };
            if got > 0 {
                self.end += got as usize;
                return got as usize;
            }
            match (got, Errno::last()) {
                (_, Errno::EINTR) if got < 0 => continue,
                (_, Errno::EAGAIN) if got < 0 => return 0,
                // The end of the pipe, or an error that ends it as surely.
                _ => {
                    self.ended = true;
                    return 0;
                }
            }
        }
    }

    /// Writes out the lines read, and at its end the last one without a newline, in
    /// batches of a few writes each. False when the stream had no room for the next
    /// line, which then waits here.
    fn emit(&mut self, label: &mut Label, batch: &mut Batch, streams: &mut Streams) -> bool {
        let outlet = streams.outlet(self.stream);
        loop {
            batch.clear();
            label.start_batch();
            let mut at = self.start;
            while batch.ends.len() < BATCH {
                let data = &self.buffer[at..self.end];
                let (length, used, continued) = match find_newline(data) {
                    Some(newline) => (newline, newline + 1, false),
                    // A full buffer without a newline: one byte more than a piece, so
                    // that a line of exactly PIECE bytes is still one line.
                    None if data.len() == self.buffer.len() => {
                        let cut = piece_end(&data[..PIECE]);
                        (cut, cut, true)
                    }
                    None if self.ended && !data.is_empty() => (data.len(), data.len(), false),
                    None => break,
                };
                label.parts(&mut batch.parts, self.stream, &data[..length], at, used > length, continued);
                at += used;
                batch.ends.push(batch.parts.len());
                batch.consumed.push(at);
            }
            if batch.ends.is_empty() {
                outlet.flush();
                return true;
            }
            batch.iovecs.extend(batch.parts.iter().map(|&part| {
                let bytes = label.bytes(part, &self.buffer);
                libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() }
            }));
            // SAFETY: every iovec points into the buffer, the label or a constant, none
            // of which changes before the call returns.
            let taken = unsafe { outlet.offer_lines(&batch.iovecs, &batch.ends) };
            if taken > 0 {
                self.start = batch.consumed[taken - 1];
            }
            if taken < batch.ends.len() {
                return false;
            }
        }
    }
}

/// The lines of one batch as they go out: their parts, where each line's parts end,
/// where each line ends in the feed's buffer, and the parts as iovecs. Kept from batch
/// to batch, so that carrying output allocates nothing once it runs.
#[derive(Default)]
struct Batch {
    parts: Vec<Part>,
    ends: Vec<usize>,
    consumed: Vec<usize>,
    iovecs: Vec<libc::iovec>,
}

impl Batch {
    fn clear(&mut self) {
        self.parts.clear();
        self.ends.clear();
        self.consumed.clear();
        self.iovecs.clear();
    }
}

/// How many lines go out in one batch, at most.
const BATCH: usize = 1024;

/// Where the first newline is.
fn find_newline(data: &[u8]) -> Option<usize> {
    // SAFETY: memchr reads the `data.len()` bytes of one valid slice.
    let found = unsafe { libc::memchr(data.as_ptr().cast(), i32::from(b'\n'), data.len()) };
    (!found.is_null()).then(|| found as usize - data.as_ptr() as usize)
}

/// Where a piece of a long line ends: at its full length, unless that would cut a
/// UTF-8 character in two; then before that character, which starts the next piece.
pub fn piece_end(data: &[u8]) -> usize {
    for back in 1..=3.min(data.len()) {
        let at = data.len() - back;
        let byte = data[at];
        if matches!(byte, 0xC2..=0xF4) {
            let length = if byte >= 0xF0 {
                4
            } else if byte >= 0xE0 {
                3
            } else {
                2
            };
            return if length > back && at > 0 { at } else { data.len() };
        }
        if byte & 0xC0 != 0x80 {
            break;
        }
    }
    data.len()
}

/// Key 0 and 1 are stdout's and stderr's room; a feed in slot N has key N + 2.
const FIRST_FEED: u32 = 2;

/// The event loop's side of the output: the processes' pipes, read while their lines
/// have room, and the two streams, watched for room while something waits for them.
pub struct Output {
    source: SourceId,
    /// Per process of the plan: how its lines are tagged, None for `inherit`.
    labels: Vec<Option<Label>>,
    feeds: Vec<Option<Feed>>,
    /// The feeds whose next line waits for room in stdout, and in stderr, in the order
    /// they came to wait.
    blocked: [VecDeque<usize>; 2],
    /// Whether stdout, and stderr, are watched for room.
    watched: [bool; 2],
    /// Whether a stream that nobody reads any more was reported.
    told_broken: [bool; 2],
    batch: Batch,
    /// Per process of the plan: the last [`TAIL`] bytes its check running now wrote,
    /// both streams, for the message of a failed probe.
    tails: Vec<Vec<u8>>,
}

/// How much of a check's output its failure message keeps: the end of it.
pub const TAIL: usize = 4096;

impl Output {
    /// The output of `plan`'s processes, watched under `source`.
    pub fn new(plan: &Plan, source: SourceId) -> Output {
        let carried = |mode: Mode| mode != Mode::Inherit;
        let width = plan.processes.iter().filter(|p| p.output == Mode::Prefix).map(|p| p.name.chars().count()).max();
        // A label for each process's own lines, then one for its checks' lines.
        let labels = [false, true]
            .into_iter()
            .flat_map(|of_checks| {
                plan.processes.iter().map(move |p| {
                    carried(p.output).then(|| Label::new(p.output, &p.name, width.unwrap_or(0), of_checks))
                })
            })
            .collect();
        Output {
            source,
            labels,
            feeds: Vec::new(),
            blocked: [VecDeque::new(), VecDeque::new()],
            watched: [false; 2],
            told_broken: [false; 2],
            batch: Batch::default(),
            tails: vec![Vec::new(); plan.processes.len()],
        }
    }

    /// The stdout and stderr for the process at `index` about to start: the write ends
    /// of two pipes whose read ends are watched from now on, or None when its output
    /// is inherited. A process that fails to start closes them, which ends the feeds.
    pub fn pipes_for(&mut self, index: usize, poller: &Poller) -> Result<Option<(OwnedFd, OwnedFd)>, Errno> {
        self.pipes_labelled(index, poller)
    }

    /// The stdout and stderr for a probe or stop hook of the process at `index`, as
    /// [`Output::pipes_for`] gives the process's own, its lines tagged as a check's.
    pub fn pipes_for_check(&mut self, index: usize, poller: &Poller) -> Result<Option<(OwnedFd, OwnedFd)>, Errno> {
        if let Some(tail) = self.tails.get_mut(index) {
            tail.clear();
        }
        self.pipes_labelled(self.labels.len() / 2 + index, poller)
    }

    /// The end of what the check of the process at `index` wrote (at most [`TAIL`]
    /// bytes), once what its pipes hold now has been read: its command has exited, so
    /// all it wrote is there, unless something it started keeps writing.
    pub fn check_tail(&mut self, index: usize, poller: &Poller) -> String {
        let label = self.labels.len() / 2 + index;
        let mut streams = streams();
        for slot in 0..self.feeds.len() {
            // A few reads at most: two take a full pipe.
            for _ in 0..4 {
                let Some(feed) = self.feeds[slot].as_mut().filter(|f| f.index == label && f.watched) else { break };
                if feed.start == 0 && feed.end == feed.buffer.len() {
                    break;
                }
                let got = feed.read();
                self.keep_tail(slot, got);
                if got == 0 {
                    break;
                }
                if !self.pump(slot, &mut streams, poller) {
                    let stream = self.feeds[slot].as_ref().map_or(Stream::Stdout, |f| f.stream);
                    self.blocked[stream as usize].push_back(slot);
                    break;
                }
            }
        }
        self.tails.get(index).map(|tail| String::from_utf8_lossy(tail).trim_end().to_string()).unwrap_or_default()
    }

    /// Keeps the last [`TAIL`] bytes of what the feed in `slot` just read, `got` bytes,
    /// when it carries a check's output.
    fn keep_tail(&mut self, slot: usize, got: usize) {
        let half = self.labels.len() / 2;
        let Some(feed) = self.feeds[slot].as_ref().filter(|f| f.index >= half && got > 0) else { return };
        let Some(tail) = self.tails.get_mut(feed.index - half) else { return };
        let fresh = &feed.buffer[feed.end - got..feed.end];
        tail.extend_from_slice(&fresh[fresh.len().saturating_sub(TAIL)..]);
        let over = tail.len().saturating_sub(TAIL);
        tail.drain(..over);
    }

    fn pipes_labelled(&mut self, index: usize, poller: &Poller) -> Result<Option<(OwnedFd, OwnedFd)>, Errno> {
        if self.labels.get(index).is_none_or(Option::is_none) {
            return Ok(None);
        }
        let (stdout, stderr) = (pipe()?, pipe()?);
        let mut ends = Vec::with_capacity(2);
        for (stream, (read, write)) in Stream::BOTH.into_iter().zip([stdout, stderr]) {
            let slot = self.feeds.iter().position(Option::is_none).unwrap_or_else(|| {
                self.feeds.push(None);
                self.feeds.len() - 1
            });
            let token = Token { source: self.source, key: slot as u32 + FIRST_FEED };
            poller.watch(read.as_fd(), token, Interest::Readable)?;
            let buffer = vec![0; PIECE + 1].into_boxed_slice();
            let feed = Feed { pipe: read, index, stream, buffer, start: 0, end: 0, ended: false, watched: true };
            self.feeds[slot] = Some(feed);
            ends.push(write);
        }
        let stderr = ends.pop().expect("two pipes");
        Ok(Some((ends.pop().expect("two pipes"), stderr)))
    }

    /// Watches each stream for room while, and only while, something waits for it:
    /// an idle stream costs no wake-ups. The loop calls it before it blocks.
    pub fn settle(&mut self, poller: &Poller) {
        let mut streams = streams();
        for stream in Stream::BOTH {
            let waiting = streams.is_waiting(stream) || !self.blocked[stream as usize].is_empty();
            let outlet = streams.outlet(stream);
            let watched = &mut self.watched[stream as usize];
            if waiting && !*watched {
                let token = Token { source: self.source, key: stream as u32 };
                *watched = poller.watch(outlet.as_fd(), token, Interest::Writable).is_ok();
            } else if !waiting && *watched {
                poller.unwatch(outlet.as_fd());
                *watched = false;
            }
        }
    }

    /// Carries the lines of the feed in `slot`; a feed whose stream is full stops
    /// being read until the stream has room, and an ended one is closed.
    fn pump(&mut self, slot: usize, streams: &mut Streams, poller: &Poller) -> bool {
        let Some(feed) = self.feeds[slot].as_mut() else { return true };
        let Some(label) = self.labels[feed.index].as_mut() else { return true };
        let done = feed.emit(label, &mut self.batch, streams);
        if !done {
            if feed.watched {
                poller.unwatch(feed.pipe.as_fd());
                feed.watched = false;
            }
        } else if feed.ended {
            // Dropping the feed closes its pipe, which epoll forgets with it.
            self.feeds[slot] = None;
        } else if !feed.watched {
            let token = Token { source: self.source, key: slot as u32 + FIRST_FEED };
            feed.watched = poller.watch(feed.pipe.as_fd(), token, Interest::Readable).is_ok();
        }
        done
    }

    /// Says, once per stream, that nobody reads it any more.
    fn tell_broken(&mut self, broken: [bool; 2]) {
        for stream in Stream::BOTH {
            if broken[stream as usize] && !self.told_broken[stream as usize] {
                self.told_broken[stream as usize] = true;
                warn!("exeunt's {} is closed: the processes' lines for it are dropped from now on", stream.name());
            }
        }
    }

    /// Carries, when exeunt is done, what the pipes hold now, each pipe's last line
    /// included, giving the streams until `until` to take it. A pipe that a leftover
    /// process keeps open is read as far as it holds bytes now, not waited for.
    pub fn finish(&mut self, until: Instant) {
        let mut streams = streams();
        for slot in 0..self.feeds.len() {
            let Some(mut feed) = self.feeds[slot].take() else { continue };
            let Some(label) = self.labels[feed.index].as_mut() else { continue };
            // A leftover that writes on and on is read until `until`, not for ever.
            while Instant::now() < until {
                if !feed.emit(label, &mut self.batch, &mut streams) {
                    if !streams.wait_for_room(feed.stream, until) {
                        break;
                    }
                    continue;
                }
                if feed.ended {
                    break;
                }
                if feed.read() == 0 {
                    // Empty now: what the buffer holds is the last of it.
                    feed.ended = true;
                }
            }
        }
    }
}

impl Source for Output {
    fn on_ready(&mut self, key: u32, poller: &Poller, _events: &mut Events) {
        let mut streams = streams();
        if key < FIRST_FEED {
            // Room in stdout or stderr: what waits goes first, then the feeds in turn.
            let stream = if key == 0 { Stream::Stdout } else { Stream::Stderr };
            streams.flush(stream);
            while let Some(&slot) = self.blocked[stream as usize].front() {
                if !self.pump(slot, &mut streams, poller) {
                    break;
                }
                self.blocked[stream as usize].pop_front();
            }
        } else {
            let slot = (key - FIRST_FEED) as usize;
            // A readiness from before the feed came to wait for room is stale.
            let Some(feed) = self.feeds.get_mut(slot).and_then(Option::as_mut).filter(|f| f.watched) else { return };
            // One read per readiness: a busy pipe does not starve the other sources.
            let got = feed.read();
            self.keep_tail(slot, got);
            let stream = self.feeds[slot].as_ref().map_or(Stream::Stdout, |f| f.stream);
            if !self.pump(slot, &mut streams, poller) {
                self.blocked[stream as usize].push_back(slot);
            }
        }
        let broken = Stream::BOTH.map(|s| streams.outlet(s).is_broken());
        drop(streams);
        self.tell_broken(broken);
    }
}

/// A pipe whose ends are close-on-exec (the child gets its end as stdout or stderr,
/// which keeps it open across exec); exeunt's read end is non-blocking.
fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut ends = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Errno::last());
    }
    // SAFETY: both descriptors are new and ours alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(Errno::last());
    }
    Ok((read, write))
}

/// How long exeunt, done, gives its streams to take the last lines, the processes'
/// and its own.
pub const LAST_LINES_WAIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
