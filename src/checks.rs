//! Readiness probes and stop hooks, carried out without ever blocking the loop. TCP
//! connects and HTTP requests run on non-blocking sockets, this source's descriptors;
//! commands run as child processes whose exits the reaper collects and [`Checks::claim`]
//! takes back; a file check is done at once. How long anything may take is the
//! supervisor's business: it cancels.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use log::debug;

use crate::event_loop::{Events, Interest, Poller, Source, SourceId, Token};
use crate::events::{CheckFailure, CheckId, Event, ExitStatus, Purpose, Step};
use crate::plan::{Check, Endpoint, HttpTarget};

/// An HTTP answer's status line must come within this many bytes.
const MAX_STATUS_LINE: usize = 1024;

/// The result of a check: Ok when it passed, else why not.
pub type Outcome = Result<(), CheckFailure>;

/// Says a check's outcome at debug level: `EXEUNT_LOG=warn,exeunt::checks=debug` shows
/// every probe and hook, and nothing else of the debug log.
fn said(id: CheckId, outcome: &Outcome) {
    match outcome {
        Ok(()) => debug!("{id}: passed"),
        Err(why) => debug!("{id}: failed: {why}"),
    }
}

/// A check talking to a socket.
struct Conversation {
    id: CheckId,
    token: Token,
    stream: TcpStream,
    /// The request still to send once connected; None for a bare TCP check.
    request: Option<Vec<u8>>,
    /// What has been read of the answer; Some once the request is sent.
    answer: Option<Vec<u8>>,
    /// The HTTP statuses that pass.
    passing: Passing,
    addr: SocketAddr,
    /// Why the other addresses of the same check failed (`localhost` tries two).
    failures: Vec<CheckFailure>,
}

/// Which HTTP statuses pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passing {
    /// 200 to 399: a readiness probe, as the kubelet judges it.
    SuccessOrRedirect,
    /// 200 to 299: a stop hook, whose request must have been done, not sent elsewhere.
    Success,
}

impl Passing {
    fn passes(self, code: u16) -> bool {
        match self {
            Passing::SuccessOrRedirect => (200..=399).contains(&code),
            Passing::Success => (200..=299).contains(&code),
        }
    }
}

/// How a process announces its readiness, seen from exeunt's side.
pub enum Channel {
    /// `ready = { fd = N }`: the read end of the pipe whose write end it got as
    /// descriptor N.
    Pipe { fd: u8, pipe: OwnedFd },
    /// `ready = { notify = "systemd" }`: its `NOTIFY_SOCKET`, which only it (pid
    /// `pid`) and its descendants are heard on.
    Socket { socket: crate::notify::Socket, pid: i32 },
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Channel::Pipe { pipe, .. } => pipe.as_fd(),
            Channel::Socket { socket, .. } => socket.as_fd(),
        }
    }
}

/// A process's notification channel and what it said.
struct Notice {
    /// The process of the plan it belongs to.
    index: usize,
    channel: Channel,
    key: u32,
    /// The check that waits for it, if one does.
    waiting: Option<CheckId>,
    /// What it said before any check asked.
    said: Option<Outcome>,
    /// Datagrams refused so far: the first is logged as a warning, the rest at debug.
    refused: u32,
}

/// Reads a notification pipe: None while it has said nothing yet, else whether it
/// said a newline before its end.
fn read_pipe(fd: u8, pipe: &OwnedFd) -> Option<Outcome> {
    let mut bytes = [0u8; 64];
    loop {
        // SAFETY: reads into a buffer of the length given; the pipe is open.
        let got = unsafe { libc::read(pipe.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) };
        match got {
            0 => return Some(Err(CheckFailure::NoNotice(fd))),
            n if n > 0 && bytes[..n as usize].contains(&b'\n') => return Some(Ok(())),
            n if n > 0 => continue,
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => return None,
        }
    }
}

/// The checks under way.
pub struct Checks {
    source: SourceId,
    conversations: Vec<Conversation>,
    notices: Vec<Notice>,
    commands: Vec<(i32, CheckId)>,
    /// Command checks that were cancelled: their exits are swallowed when reaped.
    abandoned: Vec<i32>,
    next_key: u32,
}

/// How a command check is started: the event loop's launcher, as a closure so that this
/// module needs to know nothing of spawning.
pub type RunCommand<'a> = dyn FnMut(&[std::ffi::OsString]) -> Result<i32, String> + 'a;

impl Checks {
    /// No checks yet; their sockets will be watched as `source`.
    pub fn new(source: SourceId) -> Checks {
        Checks {
            source,
            conversations: Vec::new(),
            notices: Vec::new(),
            commands: Vec::new(),
            abandoned: Vec::new(),
            next_key: 0,
        }
    }

    /// Watches the notification channel of the process at `index`, just started, in
    /// place of its former one.
    pub fn watch_notice(&mut self, index: usize, channel: Channel, poller: &Poller) {
        self.notices.retain(|n| n.index != index);
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1);
        match poller.watch(channel.as_fd(), Token { source: self.source, key }, Interest::Readable) {
            Ok(()) => self.notices.push(Notice { index, channel, key, waiting: None, said: None, refused: 0 }),
            Err(e) => debug!("cannot watch the notification channel of process #{index}: {e}"),
        }
    }

    /// A notification check: its outcome if the process has spoken, else it waits.
    fn notice(&mut self, id: CheckId) -> Option<Outcome> {
        let Some(notice) = self.notices.iter_mut().find(|n| n.index == id.index) else {
            return Some(Err(CheckFailure::NotStarted("its notification descriptor could not be set up".to_string())));
        };
        match &notice.said {
            Some(outcome) => Some(outcome.clone()),
            None => {
                notice.waiting = Some(id);
                None
            }
        }
    }

    /// Reads a notification channel that is ready. On a pipe, a newline is the notice
    /// and the end of the pipe without one a failure; bytes before the newline are not
    /// kept. On a socket, `READY=1` is the notice, and what else it says is an event.
    fn on_notice(&mut self, position: usize, poller: &Poller, events: &mut Events) {
        let notice = &mut self.notices[position];
        let outcome = match &notice.channel {
            Channel::Pipe { fd, pipe } => {
                let Some(outcome) = read_pipe(*fd, pipe) else { return };
                poller.unwatch(pipe.as_fd());
                outcome
            }
            Channel::Socket { socket, pid } => {
                let mut ready = false;
                for _ in 0..crate::notify::PER_TURN {
                    match socket.receive(*pid) {
                        None => break,
                        Some(Ok(heard)) => {
                            for said in heard {
                                match said {
                                    crate::notify::Heard::Ready => ready = true,
                                    crate::notify::Heard::Note(note) => {
                                        events.push_back(Event::Notified { index: notice.index, note })
                                    }
                                }
                            }
                        }
                        Some(Err(refused)) => {
                            notice.refused = notice.refused.saturating_add(1);
                            let line = format!(
                                "a datagram on the NOTIFY_SOCKET of process #{} was dropped: {refused}",
                                notice.index
                            );
                            if notice.refused == 1 {
                                log::warn!("{line}");
                            } else {
                                debug!("{line}");
                            }
                        }
                    }
                }
                // Said once, it stays said.
                if !ready || notice.said.is_some() {
                    return;
                }
                Ok(())
            }
        };
        match notice.waiting.take() {
            Some(id) => {
                said(id, &outcome);
                events.push_back(Event::CheckDone { id, result: outcome.clone() });
                notice.said = Some(outcome);
            }
            None => notice.said = Some(outcome),
        }
    }

    /// Starts a check. Returns its outcome when it is known at once.
    pub fn start(&mut self, id: CheckId, check: &Check, poller: &Poller, run: &mut RunCommand) -> Option<Outcome> {
        debug!("{id}: {check}");
        let outcome = match check {
            Check::File(path) => Some(if path.exists() { Ok(()) } else { Err(CheckFailure::NoFile(path.clone())) }),
            Check::Exec(argv) => match run(argv) {
                Ok(pid) => {
                    self.commands.push((pid, id));
                    None
                }
                Err(why) => Some(Err(CheckFailure::NotStarted(why))),
            },
            Check::Tcp(addr) => self.converse(id, *addr, None, poller),
            Check::Http { method, target } => self.converse(id, target.addr, Some(request(method, target)), poller),
            Check::Fd(_) | Check::Notify => self.notice(id),
        };
        if let Some(outcome) = &outcome {
            said(id, outcome);
        }
        outcome
    }

    /// Connects to every address of `endpoint` at once: the first to pass passes the
    /// check, and it fails when all have failed.
    fn converse(
        &mut self,
        id: CheckId,
        endpoint: Endpoint,
        request: Option<Vec<u8>>,
        poller: &Poller,
    ) -> Option<Outcome> {
        let passing = match id.purpose {
            Purpose::Ready => Passing::SuccessOrRedirect,
            Purpose::Stop => Passing::Success,
            // As the kubelet judges an HTTP liveness probe: 200 to 399.
            Purpose::Live => Passing::SuccessOrRedirect,
        };
        let mut failures = Vec::new();
        for addr in endpoint.addrs() {
            let stream = match connect(addr) {
                Ok(stream) => stream,
                Err(e) => {
                    failures.push(io_failure(addr, Step::Connect, &e));
                    continue;
                }
            };
            // Keys wrap after four billion checks; by then the few under way are long unique.
            let token = Token { source: self.source, key: self.next_key };
            self.next_key = self.next_key.wrapping_add(1);
            if let Err(e) = poller.watch(stream.as_fd(), token, Interest::Writable) {
                failures.push(CheckFailure::Io { addr, step: Step::Watch, errno: Some(e as i32) });
                continue;
            }
            let request = request.clone();
            let conversation =
                Conversation { id, token, stream, request, answer: None, passing, addr, failures: Vec::new() };
            self.conversations.push(conversation);
        }
        match self.conversations.iter_mut().rfind(|c| c.id == id) {
            Some(last) => {
                last.failures = failures;
                None
            }
            None => Some(Err(CheckFailure::every(failures))),
        }
    }

    /// The exits of check commands among the events from `from` on become their
    /// checks' outcomes; those of cancelled checks are dropped. Every other event stays.
    pub fn claim(&mut self, events: &mut Events, from: usize) {
        let exits = events.range(from.min(events.len())..).any(|e| matches!(e, Event::Exited { .. }));
        if !exits || (self.commands.is_empty() && self.abandoned.is_empty()) {
            return;
        }
        let reaped = events.split_off(from.min(events.len()));
        for event in reaped {
            let Event::Exited { pid, status } = event else {
                events.push_back(event);
                continue;
            };
            match self.on_exit(pid, status) {
                None => events.push_back(event),
                Some(Some((id, result))) => {
                    said(id, &result);
                    events.push_back(Event::CheckDone { id, result });
                }
                Some(None) => debug!("reaped cancelled check command pid {pid}"),
            }
        }
    }

    /// A child was reaped. Returns None when it was not a check's; Some(None) when it
    /// was a cancelled one; else the check's outcome.
    fn on_exit(&mut self, pid: i32, status: ExitStatus) -> Option<Option<(CheckId, Outcome)>> {
        if let Some(position) = self.abandoned.iter().position(|&p| p == pid) {
            self.abandoned.swap_remove(position);
            return Some(None);
        }
        let position = self.commands.iter().position(|&(p, _)| p == pid)?;
        let (_, id) = self.commands.swap_remove(position);
        let outcome = if status == ExitStatus::Code(0) { Ok(()) } else { Err(CheckFailure::Exited(status)) };
        Some(Some((id, outcome)))
    }

    /// Abandons a check: closes its connections, or kills its command's process group.
    pub fn cancel(&mut self, id: CheckId, poller: &Poller) {
        self.end_conversations(id, poller);
        for notice in self.notices.iter_mut().filter(|n| n.waiting == Some(id)) {
            notice.waiting = None;
        }
        if let Some(position) = self.commands.iter().position(|&(_, c)| c == id) {
            let (pid, _) = self.commands.swap_remove(position);
            // SAFETY: kill takes plain integers; the command leads its own process group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            self.abandoned.push(pid);
        }
    }

    /// Closes every connection of check `id`; returns why those that failed did.
    fn end_conversations(&mut self, id: CheckId, poller: &Poller) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        self.conversations.retain_mut(|c| {
            if c.id != id {
                return true;
            }
            poller.unwatch(c.stream.as_fd());
            failures.append(&mut c.failures);
            false
        });
        failures
    }
}

impl Source for Checks {
    /// A check's socket is ready: once the check has its outcome, it is an event. One
    /// address of several that fails hands its reason to another still under way.
    fn on_ready(&mut self, key: u32, poller: &Poller, events: &mut Events) {
        if let Some(position) = self.notices.iter().position(|n| n.key == key) {
            return self.on_notice(position, poller, events);
        }
        let Some(position) = self.conversations.iter().position(|c| c.token.key == key) else { return };
        let Some(result) = self.conversations[position].step(poller) else { return };
        let id = self.conversations[position].id;
        if let Err(reason) = &result
            && let Some(other) = self.conversations.iter().position(|c| c.id == id && c.token.key != key)
        {
            let mut failures = std::mem::take(&mut self.conversations[position].failures);
            failures.push(reason.clone());
            self.conversations[other].failures.append(&mut failures);
            let done = self.conversations.swap_remove(position);
            poller.unwatch(done.stream.as_fd());
            return;
        }
        let mut failures = self.end_conversations(id, poller);
        let result = result.map_err(|reason| {
            failures.push(reason);
            CheckFailure::every(failures)
        });
        said(id, &result);
        events.push_back(Event::CheckDone { id, result });
    }
}

impl Conversation {
    /// Moves the conversation on; Some once it has an outcome.
    fn step(&mut self, poller: &Poller) -> Option<Outcome> {
        let addr = self.addr;
        if self.answer.is_none() {
            if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
                return Some(Err(io_failure(addr, Step::Connect, &e)));
            }
            let Some(request) = self.request.take() else { return Some(Ok(())) };
            // A request of a few hundred bytes fits a new connection's send buffer whole.
            if let Err(e) = self.stream.write_all(&request) {
                return Some(Err(io_failure(addr, Step::Send, &e)));
            }
            if let Err(e) = poller.rewatch(self.stream.as_fd(), self.token, Interest::Readable) {
                return Some(Err(CheckFailure::Io { addr, step: Step::Watch, errno: Some(e as i32) }));
            }
            self.answer = Some(Vec::new());
            return None;
        }
        let answer = self.answer.as_mut()?;
        let mut chunk = [0u8; 512];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Some(status_of(answer, self.passing).unwrap_or(Err(CheckFailure::Closed(addr))));
                }
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    if let Some(outcome) = status_of(answer, self.passing) {
                        return Some(outcome);
                    }
                    if answer.len() > MAX_STATUS_LINE {
                        return Some(Err(CheckFailure::NoStatusLine(addr)));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(io_failure(addr, Step::Read, &e))),
            }
        }
    }
}

/// The outcome of an HTTP answer once its status line is complete. The line may end
/// in a bare `\n`, as curl and Go's net/http (the kubelet's) accept.
pub fn status_of(answer: &[u8], passing: Passing) -> Option<Outcome> {
    let end = answer.iter().position(|&b| b == b'\n')?;
    let line = answer[..end].strip_suffix(b"\r").unwrap_or(&answer[..end]);
    let line = String::from_utf8_lossy(line);
    let mut words = line.split(' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().and_then(|c| c.parse::<u16>().ok()).filter(|_| version.starts_with("HTTP/1."));
    Some(match code {
        Some(code) if passing.passes(code) => Ok(()),
        Some(code) => Err(CheckFailure::Status(code)),
        None => Err(CheckFailure::NotHttp(line.chars().take(80).collect())),
    })
}

fn request(method: &str, target: &HttpTarget) -> Vec<u8> {
    let body = if method == "POST" { "Content-Length: 0\r\n" } else { "" };
    format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: exeunt/{}\r\n{body}Connection: close\r\n\r\n",
        target.path,
        target.host,
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// A failed step of a conversation, with the system's error when it gave one.
fn io_failure(addr: SocketAddr, step: Step, error: &std::io::Error) -> CheckFailure {
    CheckFailure::Io { addr, step, errno: error.raw_os_error() }
}

/// Starts a non-blocking connect; the socket becomes writable when it is settled.
fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket takes plain integers; a non-negative result is a descriptor we own.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: sockaddr_storage is plain data, valid when zeroed.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any address.
            let sin = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: storage holds a valid address of `len` bytes.
    let rc = unsafe {
        libc::connect(stream.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len as libc::socklen_t)
    };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(error);
        }
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_passes_200_to_399_as_the_kubelet_and_a_stop_hook_2xx_only() {
        let ready = Passing::SuccessOrRedirect;
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n", ready), Some(Ok(())));
        assert_eq!(status_of(b"HTTP/1.0 204 No Content\r\nX: y\r\n", ready), Some(Ok(())));
        assert_eq!(status_of(b"HTTP/1.1 301 Moved Permanently\r\n", ready), Some(Ok(())));
        assert_eq!(status_of(b"HTTP/1.1 399 Odd\r\n", ready), Some(Ok(())));
        assert_eq!(status_of(b"HTTP/1.1 400 Bad Request\r\n", ready), Some(Err(CheckFailure::Status(400))));
        assert_eq!(status_of(b"HTTP/1.1 503 Service Unavailable\r\n", ready), Some(Err(CheckFailure::Status(503))));
        assert_eq!(status_of(b"HTTP/1.1 301 Moved\r\n", Passing::Success), Some(Err(CheckFailure::Status(301))));
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n", Passing::Success), Some(Ok(())));
        assert_eq!(status_of(b"HTTP/1.1 200", ready), None, "incomplete line");
        assert!(status_of(b"SSH-2.0-OpenSSH\r\n", ready).is_some_and(|o| o.is_err()));
    }

    #[test]
    fn a_status_line_may_end_in_a_bare_newline() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\n\nok", Passing::SuccessOrRedirect), Some(Ok(())));
        assert_eq!(status_of(b"HTTP/1.0 500 Oops\n", Passing::SuccessOrRedirect), Some(Err(CheckFailure::Status(500))));
    }

    #[test]
    fn requests_name_the_host_and_close() {
        let target = crate::rolemap::read_url("http://127.0.0.1:15020/quitquitquit").expect("valid");
        let text = String::from_utf8(request("POST", &target)).expect("ascii");
        assert!(text.starts_with("POST /quitquitquit HTTP/1.1\r\nHost: 127.0.0.1:15020\r\n"), "{text}");
        assert!(text.contains("Content-Length: 0\r\n") && text.ends_with("Connection: close\r\n\r\n"), "{text}");
    }
}
