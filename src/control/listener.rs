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

use super::{CLIENT_TIME, mount_namespace, sockaddr, stream_socket, wire};
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

/// Who exeunt is, for the check of each peer.
struct Me {
    uid: u32,
    mount: u64,
}

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
    /// A socket file to remove at the end.
    path: Option<PathBuf>,
    timer: Timer,
    /// Until when the listener rests, unwatched, for want of descriptors.
    resting: Option<Time>,
    clients: Vec<Client>,
    next_key: u32,
    me: Me,
}

impl Control {
    /// Listens at `socket` and watches the listener. Fails with a line for the log.
    pub fn open(socket: &ControlSocket, source: SourceId, poller: &Poller) -> Result<Control, OpenError> {
        let fail = |what: &str, e: std::io::Error| {
            OpenError::Failed(format!("cannot {what} the control socket {socket}: {e}"))
        };
        let me = Me {
            // SAFETY: geteuid cannot fail and touches no memory.
            uid: unsafe { libc::geteuid() },
            mount: mount_namespace("self").map_err(|e| fail("check peers of", e))?,
        };
        let listener = stream_socket(true).map_err(|e| fail("open", e))?;
        let (addr, length) = sockaddr(socket);
        // SAFETY: addr is a valid sockaddr_un of `length` bytes.
        let bind = || unsafe { libc::bind(listener.as_raw_fd(), (&raw const addr).cast(), length) };
        let mut bound = bind();
        if bound != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EADDRINUSE) {
            match socket {
                ControlSocket::Path(path) if !super::client::answers(socket) => {
                    // A socket file left by an exeunt that is gone: take its place.
                    let _ = std::fs::remove_file(path);
                    bound = bind();
                }
                _ => {
                    return Err(OpenError::Taken(format!(
                        "another exeunt answers at the control socket {socket}: this one listens on none"
                    )));
                }
            }
        }
        if bound != 0 {
            return Err(fail("bind", std::io::Error::last_os_error()));
        }
        let path = match socket {
            ControlSocket::Path(path) => Some(path.clone()),
            _ => None,
        };
        // From here on, the control's Drop removes a socket file that was made.
        let timer = Timer::new().map_err(|e| {
            remove(path.as_ref());
            fail("time", e.into())
        })?;
        let control =
            Control { source, listener, path, timer, resting: None, clients: Vec::new(), next_key: FIRST_CLIENT, me };
        // SAFETY: listen takes plain integers.
        if unsafe { libc::listen(control.listener.as_raw_fd(), MAX_CLIENTS as libc::c_int) } != 0 {
            return Err(fail("listen on", std::io::Error::last_os_error()));
        }
        let watched = poller
            .watch(control.listener.as_fd(), control.token(LISTENER), Interest::Readable)
            .and_then(|()| poller.watch(control.timer.as_fd(), control.token(TIMER), Interest::Readable));
        watched.map_err(|e| fail("watch", e.into()))?;
        info!("listening for exeunt --status and the other requests at {socket}");
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
            if let Err(reason) = self.admit(&fd) {
                warn!("refused a control client: {reason}");
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

    /// Whether the peer may ask: the same uid as exeunt or root, in exeunt's PID and
    /// mount namespaces (the same container). Else why not, for the log.
    fn admit(&self, fd: &OwnedFd) -> Result<(), String> {
        let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
        let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: SO_PEERCRED writes one ucred into `cred`, whose size `size` gives.
        let got = unsafe {
            libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut size)
        };
        if got != 0 {
            return Err(format!("cannot tell who it is: {}", std::io::Error::last_os_error()));
        }
        let (pid, uid) = (cred.pid, cred.uid);
        if pid <= 0 {
            return Err(format!("uid {uid}, from another PID namespace"));
        }
        if uid != self.me.uid && uid != 0 {
            return Err(format!("pid {pid} runs as uid {uid}, and only uid {} or root may ask", self.me.uid));
        }
        match mount_namespace(&pid.to_string()) {
            Ok(mount) if mount == self.me.mount => Ok(()),
            Ok(_) => Err(format!("pid {pid} (uid {uid}) is in another mount namespace: another container")),
            Err(e) => Err(format!("pid {pid} (uid {uid}): cannot read its mount namespace: {e}")),
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
        let deadline = self.clients.iter().map(|c| c.deadline).chain(self.resting).min();
        self.timer.arm(deadline, "the control socket's timer");
    }
}

fn remove(path: Option<&PathBuf>) {
    if let Some(path) = path {
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
