//! systemd's readiness protocol (`ready = { notify = "systemd" }`): a datagram socket
//! of the process's own, named to it in `NOTIFY_SOCKET`, on which it says `READY=1`,
//! `STATUS=...` and `WATCHDOG=1`, as redis (`--supervised systemd`), PostgreSQL and
//! HAProxy do under systemd.
//!
//! The socket is bound to a name the kernel picks in the abstract namespace: nothing
//! to squat on beforehand, no file a read-only root would refuse, and no permission
//! that the process's user could lack. Abstract names can be reached from the whole
//! network namespace, a pod's other containers included, so every datagram is judged
//! by the credentials the kernel attaches to it (`SO_PASSCRED`): only the process and
//! its descendants are heard. A datagram is at most [`MAX_DATAGRAM`] bytes, and each
//! turn of the loop reads at most [`PER_TURN`] of them, so a flood costs bounded work.
//! Descriptors sent along (systemd's FDSTORE) are closed at once.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use crate::events::Note;

/// The largest datagram read whole; a longer one is dropped (systemd's own limit for
/// a notification is larger, but nothing exeunt reads needs more).
pub const MAX_DATAGRAM: usize = 4096;
/// Datagrams read in one turn of the loop; the rest wait for the next turn.
pub const PER_TURN: usize = 16;
/// How many parents up a sender may be from the process and still be heard.
const MAX_DEPTH: usize = 32;
/// The longest `STATUS=` text kept.
const MAX_STATUS: usize = 256;

/// A process's notification socket.
pub struct Socket {
    fd: OwnedFd,
}

/// What one datagram said, for a process that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// `READY=1`.
    Ready,
    /// Anything else that counts: a status, a watchdog keep-alive or request.
    Note(Note),
}

/// Why a datagram was not heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Its sender is not the process nor one of its descendants.
    Stranger { pid: i32 },
    /// Longer than [`MAX_DATAGRAM`].
    TooLong,
    /// No credentials came with it.
    Anonymous,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Stranger { pid: 0 } => f.write_str("its sender is outside exeunt's PID namespace"),
            Refused::Stranger { pid } => {
                write!(f, "its sender, pid {pid}, is neither the process nor one of its descendants")
            }
            Refused::TooLong => write!(f, "it is longer than {MAX_DATAGRAM} bytes"),
            Refused::Anonymous => f.write_str("it came without credentials"),
        }
    }
}

impl Socket {
    /// A new socket, bound, with the value `NOTIFY_SOCKET` gives it (`@` and the
    /// abstract name).
    pub fn open() -> std::io::Result<(Socket, OsString)> {
        let flags = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: socket takes plain integers; a non-negative result is a new descriptor.
        let raw = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: raw was just returned by socket, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let on: libc::c_int = 1;
        // SAFETY: SO_PASSCRED reads one c_int of the size given.
        let passed = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // An address of the family alone: the kernel binds a fresh abstract name.
        // SAFETY: sockaddr_un is plain data, valid when zeroed.
        let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        address.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let family = size_of::<libc::sa_family_t>() as libc::socklen_t;
        // SAFETY: bind reads `family` bytes of the address.
        if passed != 0 || unsafe { libc::bind(raw, (&raw const address).cast(), family) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut length = size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: getsockname writes at most `length` bytes into the address.
        if unsafe { libc::getsockname(raw, (&raw mut address).cast(), &mut length) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The name follows the family: a NUL, then the bytes the kernel chose.
        let name_length = (length as usize).saturating_sub(family as usize);
        let name = &address.sun_path[..name_length.min(address.sun_path.len())];
        let mut value = vec![b'@'];
        value.extend(name.iter().skip(1).map(|&c| c as u8));
        Ok((Socket { fd }, OsString::from_vec(value)))
    }

    /// Reads the next datagram: None when there is none left. Each is heard, refused,
    /// or a failed read.
    pub fn receive(&self, process: i32) -> Option<Result<Vec<Heard>, Refused>> {
        let mut bytes = [0u8; MAX_DATAGRAM];
        // Room for the credentials and a few descriptors, all closed below.
        let mut control = [0u64; 16];
        let mut iov = libc::iovec { iov_base: bytes.as_mut_ptr().cast(), iov_len: bytes.len() };
        // SAFETY: msghdr is plain data, valid when zeroed.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &raw mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = size_of_val(&control) as _;
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC | libc::MSG_CMSG_CLOEXEC;
        let got = loop {
            // SAFETY: the message points at buffers of the lengths it gives.
            let got = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut message, flags) };
            if got >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break got;
            }
        };
        if got < 0 {
            return None;
        }
        let sender = close_passed_and_find_sender(&message);
        if got as usize > bytes.len() || message.msg_flags & libc::MSG_TRUNC != 0 {
            return Some(Err(Refused::TooLong));
        }
        let Some(pid) = sender else { return Some(Err(Refused::Anonymous)) };
        if !descends_from(pid, process) {
            return Some(Err(Refused::Stranger { pid }));
        }
        Some(Ok(read_datagram(&bytes[..got as usize])))
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Closes every descriptor that came with the message, and returns its sender's pid
/// from its credentials.
fn close_passed_and_find_sender(message: &libc::msghdr) -> Option<i32> {
    let mut sender = None;
    // SAFETY: the CMSG_ macros walk the control buffer recvmsg filled, within the
    // length it set; each header's data is read only within its own length.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(message);
        while !header.is_null() {
            let data = libc::CMSG_DATA(header);
            let length = (*header).cmsg_len as usize - (data as usize - header as usize);
            match ((*header).cmsg_level, (*header).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) if length >= size_of::<libc::ucred>() => {
                    let credentials: libc::ucred = std::ptr::read_unaligned(data.cast());
                    sender = Some(credentials.pid);
                }
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    for i in 0..length / size_of::<libc::c_int>() {
                        let fd: libc::c_int = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                        libc::close(fd);
                    }
                }
                _ => {}
            }
            header = libc::CMSG_NXTHDR(message, header);
        }
    }
    sender
}

/// Whether `pid` is `process` or one of its descendants, as /proc tells the parents.
fn descends_from(pid: i32, process: i32) -> bool {
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if current == process {
            return true;
        }
        if current <= 1 {
            return false;
        }
        let parent = crate::reaper::read_proc(current, "stat").and_then(|stat| crate::reaper::parse_stat(&stat));
        match parent {
            Some(stat) => current = stat.ppid,
            None => return false,
        }
    }
    false
}

/// What a datagram says: one assignment a line, those exeunt does not act on left out.
pub fn read_datagram(bytes: &[u8]) -> Vec<Heard> {
    let mut heard = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        let Some(equals) = line.iter().position(|&b| b == b'=') else { continue };
        let (key, value) = (&line[..equals], &line[equals + 1..]);
        let said = match key {
            b"READY" if value == b"1" => Heard::Ready,
            b"STATUS" => Heard::Note(Note::Status(status_text(value))),
            b"WATCHDOG" if value == b"1" => Heard::Note(Note::Watchdog),
            b"WATCHDOG" if value == b"trigger" => Heard::Note(Note::WatchdogTrigger),
            b"WATCHDOG_USEC" => match std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(usec) => Heard::Note(Note::WatchdogEvery(Duration::from_micros(usec))),
                None => continue,
            },
            _ => continue,
        };
        heard.push(said);
    }
    heard
}

/// A status as `--status` shows it: at most [`MAX_STATUS`] bytes, control characters
/// as spaces.
fn status_text(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(&value[..value.len().min(MAX_STATUS)]);
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The runtime's own `NOTIFY_SOCKET`, told how exeunt stands: systemd's protocol, as
/// `podman run --sdnotify=container` and a unit of `Type=notify` expect it. Sending
/// never blocks: a datagram the runtime has no room for is dropped, with a debug line.
pub struct Runtime {
    socket: std::os::unix::net::UnixDatagram,
    address: std::os::unix::net::SocketAddr,
}

impl Runtime {
    /// A sender to `value` (`/path`, or `@name` for an abstract socket), telling it
    /// exeunt is starting.
    pub fn open(value: &std::ffi::OsStr) -> std::io::Result<Runtime> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        let bytes = value.as_bytes();
        let address = match bytes.split_first() {
            Some((b'@', name)) => std::os::unix::net::SocketAddr::from_abstract_name(name)?,
            Some((b'/', _)) => std::os::unix::net::SocketAddr::from_pathname(value)?,
            _ => {
                let why = "NOTIFY_SOCKET is neither a path nor @ and an abstract name";
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
            }
        };
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        let runtime = Runtime { socket, address };
        runtime.say("STATUS=starting");
        Ok(runtime)
    }

    /// Tells the runtime a milestone of the run.
    pub fn tell(&self, milestone: &crate::events::Milestone) {
        use crate::events::Milestone;
        match milestone {
            Milestone::Born => {}
            Milestone::Ready => self.say("READY=1\nSTATUS=every process has started and every sidecar is ready"),
            Milestone::Stopping => self.say("STOPPING=1\nSTATUS=stopping"),
            Milestone::Died(code) => self.say(&format!("STATUS=exiting with {code}")),
        }
    }

    fn say(&self, text: &str) {
        if let Err(e) = self.socket.send_to_addr(text.as_bytes(), &self.address) {
            log::debug!("telling the runtime {text:?} on NOTIFY_SOCKET: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_says_ready_status_and_watchdog_and_nothing_else_counts() {
        let said = read_datagram(b"READY=1\nSTATUS=Ready to accept connections\nMAINPID=7\nWATCHDOG=1\nbogus");
        assert_eq!(
            said,
            [
                Heard::Ready,
                Heard::Note(Note::Status("Ready to accept connections".to_string())),
                Heard::Note(Note::Watchdog)
            ]
        );
        assert_eq!(read_datagram(b"READY=0\nWATCHDOG_USEC=x"), []);
        assert_eq!(
            read_datagram(b"WATCHDOG_USEC=2000000\nWATCHDOG=trigger"),
            [Heard::Note(Note::WatchdogEvery(Duration::from_secs(2))), Heard::Note(Note::WatchdogTrigger)]
        );
        let long = format!("STATUS={}\x1b[31m", "x".repeat(300));
        let said = read_datagram(long.as_bytes());
        let [Heard::Note(Note::Status(status))] = said.as_slice() else { panic!("one status: {said:?}") };
        assert_eq!(status.len(), MAX_STATUS, "cut to its limit");
    }

    #[test]
    fn the_socket_hears_its_process_and_refuses_strangers_and_closes_what_they_pass() {
        let (socket, name) = Socket::open().expect("a socket");
        let name = name.into_vec();
        assert_eq!(name[0], b'@');
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let mut address = vec![0u8];
        address.extend(&name[1..]);
        use std::os::linux::net::SocketAddrExt;
        let to = std::os::unix::net::SocketAddr::from_abstract_name(&address[1..]).unwrap();
        sender.send_to_addr(b"READY=1\nSTATUS=up", &to).unwrap();
        let me = std::process::id() as i32;
        let heard = socket.receive(me).expect("a datagram").expect("from this process");
        assert_eq!(heard, [Heard::Ready, Heard::Note(Note::Status("up".to_string()))]);
        // The same datagram, judged for a process this one does not descend from.
        sender.send_to_addr(b"READY=1", &to).unwrap();
        assert_eq!(socket.receive(i32::MAX).expect("a datagram"), Err(Refused::Stranger { pid: me }));
        assert!(socket.receive(me).is_none(), "nothing left");
        sender.send_to_addr(&vec![b'x'; MAX_DATAGRAM + 1], &to).unwrap();
        assert_eq!(socket.receive(me).expect("a datagram"), Err(Refused::TooLong));
        // A descriptor sent along is not kept: once this test's own ends of the pipe
        // are closed, no descriptor of the process is left on it.
        let (read, write) = nix::unistd::pipe().unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", read.as_raw_fd())).unwrap();
        sender.connect_addr(&to).unwrap();
        send_with_descriptor(&sender, b"STATUS=with a descriptor", read.as_raw_fd());
        drop((read, write));
        assert!(socket.receive(me).expect("a datagram").is_ok());
        let kept = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .any(|target| target == link);
        assert!(!kept, "the descriptor passed, on {}, was closed", link.display());
    }

    /// Sends `bytes` on the connected socket with a copy of `fd` along.
    fn send_with_descriptor(socket: &std::os::unix::net::UnixDatagram, bytes: &[u8], fd: i32) {
        let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() };
        let mut control = [0u64; 4];
        // SAFETY: the message and its control header point at the buffers above, within
        // their lengths.
        unsafe {
            let mut message: libc::msghdr = std::mem::zeroed();
            message.msg_iov = &raw mut iov;
            message.msg_iovlen = 1;
            message.msg_control = control.as_mut_ptr().cast();
            message.msg_controllen = libc::CMSG_SPACE(size_of::<i32>() as u32) as _;
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(size_of::<i32>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<i32>(), fd);
            assert!(libc::sendmsg(socket.as_raw_fd(), &message, 0) > 0, "{}", std::io::Error::last_os_error());
        }
    }
}
