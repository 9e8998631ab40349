//! Where the control socket listens: one more event source on the loop. It accepts
//! clients of this container only, reads one bounded request from each, hands it to
//! the supervisor as an event, and writes the answer back without ever blocking.
//!
//! A client holds a buffer only while its request comes in pieces, never more than
//! [`wire::REQUEST_LIMIT`] bytes, and at most [`MAX_CLIENTS`] are kept: a new one past
//! that pushes the oldest out. A client has [`CLIENT_TIME`] from its
//! connection for the whole exchange; the source's own timer, armed only while
//! clients are connected, drops the ones that run over. Idle, the source is one
//! listening descriptor and a disarmed timer: no wake-ups.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use log::{debug, info, warn};

use super::{CLIENT_TIME, Container, Stranger, addresses, sockaddr, stream_socket, wire};
use crate::event_loop::{self, Events, Interest, Poller, Source, SourceId, Token};
use crate::events::{Answer, Event, Outcome, Time};
use crate::plan::ControlSocket;
use crate::timer::Timer;

/// Clients kept at once; one more pushes the oldest out.
pub const MAX_CLIENTS: usize = 32;

/// Connections taken per readiness of the listener, so that a flood of them leaves
/// room for the other sources in between.
const ACCEPTS_PER_TURN: usize = 64;

/// How long the listener rests when exeunt has no descriptor left for a client.
const REST: std::time::Duration = std::time::Duration::from_secs(1);

const LISTENER: u32 = 0;
const TIMER: u32 = 1;
const FIRST_CLIENT: u32 = 2;

enum Phase {
    /// The request so far.
    Reading(Vec<u8>),
    /// The supervisor has the request.
    Asked,
    Writing {
        bytes: Vec<u8>,
        sent: usize,
    },
}

struct Client {
    key: u32,
    fd: OwnedFd,
    deadline: Time,
    phase: Phase,
}

/// Why no control socket listens.
#[derive(Debug)]
pub enum OpenError {
    /// Another exeunt listens at the address already (one that runs this one, say).
    Taken(String),
    Failed(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Taken(line) | OpenError::Failed(line) => f.write_str(line),
        }
    }
}

/// The control socket and its clients.
pub struct Control {
    source: SourceId,
    listener: OwnedFd,
    /// A socket file to remove at the end, with the identity it had once bound: a file
    /// that took its place since is not exeunt's to remove.
    path: Option<SocketFile>,
    timer: Timer,
    /// Until when the listener rests, unwatched, for want of descriptors.
    resting: Option<Time>,
    clients: Vec<Client>,
    next_key: u32,
    container: Container,
    refusals: Refusals,
}

/// Refused clients, logged at most once a [`REFUSALS_LOGGED_EVERY`] with a count.
#[derive(Default)]
struct Refusals {
    /// When a refusal was last logged.
    logged_at: Option<Time>,
    /// Refusals not logged since, and the latest reason.
    since: u32,
    latest: Option<Stranger>,
}

/// How often refused clients are logged at most.
const REFUSALS_LOGGED_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A socket file exeunt made, and the identity (device, inode) it had once bound.
type SocketFile = (PathBuf, (u64, u64));

/// Why one address could not be bound.
enum Bind {
    /// Another exeunt of this container listens there.
    Ours(String),
    /// Something else holds it: who, or what is there.
    Held(String),
    Failed(std::io::Error),
}

impl Control {
    /// Listens at `socket`, or at the first of its alternates that nothing of another
    /// container holds, and watches the listener. Fails with a line for the log.
    pub fn open(socket: &ControlSocket, source: SourceId, poller: &Poller) -> Result<Control, OpenError> {
        let fail = |what: &str, e: std::io::Error| {
            OpenError::Failed(format!("cannot {what} the control socket {socket}: {e}"))
        };
        let container = Container::this().map_err(|e| fail("check peers of", e))?;
        let mut held = Vec::new();
        let mut bound = None;
        for address in addresses(socket) {
            match bind(&address, &container) {
                Ok((listener, path)) => {
                    bound = Some((address, listener, path));
                    break;
                }
                Err(Bind::Ours(line)) => return Err(OpenError::Taken(line)),
                Err(Bind::Held(why)) => held.push(format!("{address} {why}")),
                Err(Bind::Failed(e)) => return Err(fail("bind", e)),
            }
        }
        let Some((address, listener, path)) = bound else {
            return Err(OpenError::Failed(format!(
                "the control socket and its alternates are held by others: {}",
                held.join("; ")
            )));
        };
        for line in &held {
            warn!("control socket {line}: exeunt listens at {address} instead, where its clients look next");
        }
        // From here on, the control's Drop removes a socket file that was made.
        let timer = Timer::new().map_err(|e| {
            remove(path.as_ref());
            fail("time", e.into())
        })?;
        let control = Control {
            source,
            listener,
            path,
            timer,
            resting: None,
            clients: Vec::new(),
            next_key: FIRST_CLIENT,
            container,
            refusals: Refusals::default(),
        };
        // SAFETY: listen takes plain integers.
        if unsafe { libc::listen(control.listener.as_raw_fd(), MAX_CLIENTS as libc::c_int) } != 0 {
            return Err(fail("listen on", std::io::Error::last_os_error()));
        }
        let watched = poller
            .watch(control.listener.as_fd(), control.token(LISTENER), Interest::Readable)
            .and_then(|()| poller.watch(control.timer.as_fd(), control.token(TIMER), Interest::Readable));
        watched.map_err(|e| fail("watch", e.into()))?;
        info!("listening for exeunt --status and the other requests at {address}");
        Ok(control)
    }

    fn token(&self, key: u32) -> Token {
        Token { source: self.source, key }
    }

    /// The supervisor's answer for `client`, written as far as the socket takes it now.
    pub fn answer(&mut self, client: u32, answer: &Answer, poller: &Poller) {
        let Some(at) = self.clients.iter().position(|c| c.key == client) else {
            return debug!("a control client left before its answer");
        };
        self.clients[at].phase = Phase::Writing { bytes: wire::answer_bytes(answer), sent: 0 };
        self.write(at, poller);
        self.rearm();
    }

    /// Accepts what waits, up to [`ACCEPTS_PER_TURN`].
    fn accept(&mut self, poller: &Poller) {
        for _ in 0..ACCEPTS_PER_TURN {
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            // SAFETY: accept4 with null address pointers only returns a descriptor.
            let fd =
                unsafe { libc::accept4(self.listener.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), flags) };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR | libc::ECONNABORTED) => continue,
                    Some(libc::EMFILE | libc::ENFILE) if !self.clients.is_empty() => {
                        self.drop_client(0, "to make room: exeunt has no descriptor left");
                        continue;
                    }
                    Some(libc::EMFILE | libc::ENFILE) => {
                        warn!("cannot take a control client: {e}; the control socket rests for a second");
                        poller.unwatch(self.listener.as_fd());
                        self.resting = Some(event_loop::now() + REST);
                    }
                    Some(libc::EAGAIN) => {}
                    _ => debug!("accepting a control client: {e}"),
                }
                return;
            }
            // SAFETY: accept4 returned a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if let Err(reason) = self.container.holds(fd.as_fd()) {
                self.refused(reason);
                continue;
            }
            if self.clients.len() >= MAX_CLIENTS {
                self.drop_client(0, &format!("to make room: {MAX_CLIENTS} clients are connected"));
            }
            let key = self.next_key;
            self.next_key = self.next_key.checked_add(1).unwrap_or(FIRST_CLIENT);
            if let Err(e) = poller.watch(fd.as_fd(), self.token(key), Interest::Readable) {
                debug!("cannot watch a control client: {e}");
                continue;
            }
            // No buffer until a request comes in pieces: an idle client holds no memory.
            let phase = Phase::Reading(Vec::new());
            self.clients.push(Client { key, fd, deadline: event_loop::now() + CLIENT_TIME, phase });
        }
    }

    /// A client was refused: logged at once, unless one was in the last second; then
    /// counted, and the count logged when the second is over.
    fn refused(&mut self, reason: Stranger) {
        let now = event_loop::now();
        // A count whose second is over comes before what follows it.
        self.log_refusals(now);
        let refusals = &mut self.refusals;
        if refusals.logged_at.is_some_and(|at| now < at + REFUSALS_LOGGED_EVERY) {
            refusals.since += 1;
            refusals.latest = Some(reason);
            return;
        }
        warn!("refused a control client: {reason}");
        refusals.logged_at = Some(now);
    }

    /// Logs the refusals counted in the second that is over.
    fn log_refusals(&mut self, now: Time) {
        let refusals = &mut self.refusals;
        if refusals.since > 0
            && refusals.logged_at.is_some_and(|at| at + REFUSALS_LOGGED_EVERY <= now)
            && let Some(latest) = refusals.latest.take()
        {
            warn!("refused {} more control clients in the last second; the latest: {latest}", refusals.since);
            (refusals.since, refusals.logged_at) = (0, Some(now));
        }
    }

    /// Reads what a client sent; a whole line is its request.
    fn read(&mut self, at: usize, poller: &Poller, events: &mut Events) {
        let client = &mut self.clients[at];
        let Phase::Reading(request) = &mut client.phase else { return };
        let mut buffer = [0u8; wire::REQUEST_LIMIT];
        let room = wire::REQUEST_LIMIT - request.len();
        // SAFETY: the buffer holds at least `room` bytes.
        let got = unsafe { libc::read(client.fd.as_raw_fd(), buffer.as_mut_ptr().cast(), room) };
        let got = match got {
            n if n > 0 => n as usize,
            0 => return self.drop_client(at, "it left before a whole request"),
            _ => {
                let e = std::io::Error::last_os_error();
                if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                    return;
                }
                return self.drop_client(at, &format!("reading its request: {e}"));
            }
        };
        let start = request.len();
        request.extend_from_slice(&buffer[..got]);
        let parsed = match request[start..].iter().position(|&b| b == b'\n') {
            Some(end) => wire::parse_request(&request[..start + end]),
            None if request.len() >= wire::REQUEST_LIMIT => {
                Err(format!("a request is one line of at most {} bytes", wire::REQUEST_LIMIT))
            }
            None => return,
        };
        // Whatever else it sends is not read: one request per connection.
        poller.unwatch(client.fd.as_fd());
        client.phase = Phase::Asked;
        let key = client.key;
        match parsed {
            Ok(request) => events.push_back(Event::Request { client: key, request }),
            Err(e) => self.answer(key, &Answer::new(Outcome::Error, e), poller),
        }
    }

    /// Writes what the answer still holds; once it is out, the client goes.
    fn write(&mut self, at: usize, poller: &Poller) {
        let client = &mut self.clients[at];
        let Phase::Writing { bytes, sent } = &mut client.phase else { return };
        while *sent < bytes.len() {
            let rest = &bytes[*sent..];
            // SAFETY: rest is valid for its length; MSG_NOSIGNAL keeps a gone reader from
            // raising SIGPIPE, which exeunt would otherwise pass on to its children.
            let put =
                unsafe { libc::send(client.fd.as_raw_fd(), rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
            if put < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => {
                        // Watched for room from here on; EEXIST once it is watched already.
                        let token = Token { source: self.source, key: client.key };
                        let _ = poller.watch(client.fd.as_fd(), token, Interest::Writable);
                        return;
                    }
                    _ => return self.drop_client(at, &format!("writing its answer: {e}")),
                }
            }
            *sent += put as usize;
        }
        self.clients.remove(at);
    }

    fn drop_client(&mut self, at: usize, why: &str) {
        self.clients.remove(at);
        debug!("dropped a control client: {why}");
    }

    /// Drops the clients whose time is up, and ends the listener's rest when it is over.
    fn expire(&mut self, poller: &Poller) {
        let now = event_loop::now();
        self.log_refusals(now);
        while let Some(at) = self.clients.iter().position(|c| c.deadline <= now) {
            self.drop_client(at, &format!("no whole exchange within {}", crate::duration::Show(CLIENT_TIME)));
        }
        if self.resting.is_some_and(|until| until <= now) {
            self.resting = None;
            if let Err(e) = poller.watch(self.listener.as_fd(), self.token(LISTENER), Interest::Readable) {
                warn!("the control socket cannot be watched again: {e}");
            }
        }
    }

    /// Arms the timer for the earliest deadline, or disarms it.
    fn rearm(&mut self) {
        let refusals = (self.refusals.since > 0).then_some(self.refusals.logged_at).flatten();
        let refusals = refusals.map(|at| at + REFUSALS_LOGGED_EVERY);
        let deadline = self.clients.iter().map(|c| c.deadline).chain(self.resting).chain(refusals).min();
        self.timer.arm(deadline, "the control socket's timer");
    }
}

/// Binds a new listening socket at `address`. A stale socket file (nothing listens) is
/// replaced; anything else there is left alone.
fn bind(address: &ControlSocket, container: &Container) -> Result<(OwnedFd, Option<SocketFile>), Bind> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let listener = stream_socket(true).map_err(Bind::Failed)?;
    let (addr, length) = sockaddr(address);
    let path = match address {
        ControlSocket::Path(path) => Some(path),
        _ => None,
    };
    // Bound: the socket, and the identity of its file (a path's) once made.
    let bound = |listener: OwnedFd| {
        let file = path.and_then(|p| std::fs::symlink_metadata(p).map(|m| (p.clone(), (m.dev(), m.ino()))).ok());
        Ok((listener, file))
    };
    // SAFETY: addr is a valid sockaddr_un of `length` bytes.
    let bind = || unsafe { libc::bind(listener.as_raw_fd(), (&raw const addr).cast(), length) };
    if bind() == 0 {
        return bound(listener);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EADDRINUSE) {
        return Err(Bind::Failed(e));
    }
    if let Some(m) = path.and_then(|p| std::fs::symlink_metadata(p).ok())
        && !m.file_type().is_socket()
    {
        let kind = if m.is_file() {
            "a regular file"
        } else if m.is_dir() {
            "a directory"
        } else {
            "not a socket"
        };
        return Err(Bind::Held(format!("is {kind}, which exeunt leaves alone")));
    }
    match (super::client::connect(address), path) {
        (Ok(stream), _) => match container.holds(stream.as_fd()) {
            Ok(()) => Err(Bind::Ours(format!(
                "another exeunt answers at the control socket {address}: this one listens on none"
            ))),
            Err(who) => Err(Bind::Held(format!("is held by {who}"))),
        },
        (Err(_), Some(path)) => {
            // A socket file left by an exeunt that is gone: take its place.
            let _ = std::fs::remove_file(path);
            match bind() {
                0 => bound(listener),
                _ => Err(Bind::Failed(std::io::Error::last_os_error())),
            }
        }
        (Err(e), None) => Err(Bind::Held(format!("is bound, and nothing answers there ({e})"))),
    }
}

/// Removes the socket file exeunt made, if the file at its path is still that one.
fn remove(path: Option<&SocketFile>) {
    use std::os::unix::fs::MetadataExt;
    if let Some((path, identity)) = path
        && std::fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == *identity)
    {
        let _ = std::fs::remove_file(path);
    }
}

impl Source for Control {
    fn on_ready(&mut self, key: u32, poller: &Poller, events: &mut Events) {
        match key {
            LISTENER => self.accept(poller),
            TIMER => {
                self.timer.fired();
                self.expire(poller);
            }
            key => {
                if let Some(at) = self.clients.iter().position(|c| c.key == key) {
                    match self.clients[at].phase {
                        Phase::Reading(_) => self.read(at, poller, events),
                        Phase::Writing { .. } => self.write(at, poller),
                        Phase::Asked => {}
                    }
                }
            }
        }
        self.rearm();
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        remove(self.path.as_ref());
    }
}
