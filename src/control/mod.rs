//! Where exeunt can be asked what runs and be steered: the control socket.
//!
//! A running exeunt listens on a Unix socket ([`listener`], one more event source);
//! `exeunt --status`, `--ready`, `--live`, `--restart` and `--signal`, run in the same
//! container, are its clients ([`client`]). They speak the small, versioned format of
//! [`wire`]; the supervisor answers.
//!
//! The socket needs no writable filesystem: by default it is an abstract socket named
//! after the mount namespace, which exeunt and a client in the same container both
//! see, and which differs between the containers of a pod even when they share the
//! network namespace (where abstract names live). `control_socket` in the role map, or
//! EXEUNT_CONTROL_SOCKET, names another (`@NAME`), a path, or `off`.
//!
//! Both ends check the other by the credentials the kernel gives ([`Container`]): a
//! client is admitted, and a server believed, only when it is of this container. A
//! name held by a neighbour makes exeunt listen at the next of [`addresses`], and
//! clients try them in the same order.

pub mod client;
pub mod listener;
pub mod status;
pub mod wire;

use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::plan::ControlSocket;
use crate::reaper::{Namespace, namespace, own_namespace};

/// How long a client has, from its connection, to send its request and take the answer.
pub const CLIENT_TIME: Duration = Duration::from_secs(2);

/// How long `exeunt --status` and the other client forms wait for an answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// How many addresses a control socket may have: the one configured, then alternates
/// (`@NAME/2`, `PATH.2`, ...) that exeunt takes when a neighbour holds the ones before,
/// and that clients try in turn.
pub const ADDRESSES: usize = 8;

/// This container, as one end of a control connection tells whether the other end is
/// of it: the same mount and PID namespaces, and the same uid or root.
pub struct Container {
    uid: u32,
    mount: u64,
    pids: u64,
}

impl Container {
    /// The container of this process.
    pub fn this() -> std::io::Result<Container> {
        // SAFETY: geteuid cannot fail and touches no memory.
        let uid = unsafe { libc::geteuid() };
        Ok(Container { uid, mount: own_namespace(Namespace::Mount)?, pids: own_namespace(Namespace::Pid)? })
    }

    /// Whether the process at the other end of the connected socket `fd` is of this
    /// container; else who it is and why not. The kernel says who it is (SO_PEERCRED),
    /// so it cannot lie.
    pub fn holds(&self, fd: BorrowedFd) -> Result<(), Stranger> {
        let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
        let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: SO_PEERCRED writes one ucred into `cred`, whose size `size` gives.
        let got = unsafe {
            libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut size)
        };
        if got != 0 {
            return Err(Stranger::Unknown(std::io::Error::last_os_error()));
        }
        let (pid, uid) = (cred.pid, cred.uid);
        if pid <= 0 {
            return Err(Stranger::OtherPidNamespace { pid: None, uid });
        }
        if uid != self.uid && uid != 0 {
            return Err(Stranger::OtherUid { pid, uid, ours: self.uid });
        }
        match (namespace(pid, Namespace::Mount), namespace(pid, Namespace::Pid)) {
            (Ok(mount), _) if mount != self.mount => Err(Stranger::OtherMountNamespace { pid, uid }),
            (Ok(_), Ok(pids)) if pids != self.pids => Err(Stranger::OtherPidNamespace { pid: Some(pid), uid }),
            (Ok(_), Ok(_)) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(Stranger::Unreadable { pid, uid, error: e }),
        }
    }
}

/// The other end of a control connection, when it is not of this container.
#[derive(Debug)]
pub enum Stranger {
    /// SO_PEERCRED failed.
    Unknown(std::io::Error),
    /// Another uid than this exeunt's, and not root.
    OtherUid { pid: i32, uid: u32, ours: u32 },
    /// In another mount namespace: another container.
    OtherMountNamespace { pid: i32, uid: u32 },
    /// In another PID namespace; the kernel shows no pid for one outside this one's.
    OtherPidNamespace { pid: Option<i32>, uid: u32 },
    /// Its namespaces could not be read (it may be gone already).
    Unreadable { pid: i32, uid: u32, error: std::io::Error },
}

impl std::fmt::Display for Stranger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stranger::Unknown(e) => write!(f, "cannot tell who it is: {e}"),
            Stranger::OtherUid { pid, uid, ours } => {
                write!(f, "pid {pid} runs as uid {uid}, and only uid {ours} or root may ask or answer")
            }
            Stranger::OtherMountNamespace { pid, uid } => {
                write!(f, "pid {pid} (uid {uid}) is in another mount namespace: another container")
            }
            Stranger::OtherPidNamespace { pid: None, uid } => write!(f, "uid {uid}, from another PID namespace"),
            Stranger::OtherPidNamespace { pid: Some(pid), uid } => {
                write!(f, "pid {pid} (uid {uid}) is in another PID namespace")
            }
            Stranger::Unreadable { pid, uid, error } if error.kind() == std::io::ErrorKind::NotFound => {
                write!(f, "pid {pid} (uid {uid}) was gone before its namespaces could be read")
            }
            Stranger::Unreadable { pid, uid, error } => {
                write!(f, "pid {pid} (uid {uid}): cannot read its namespaces: {error}")
            }
        }
    }
}

/// The addresses of `socket` in the order exeunt takes them and clients try them.
pub fn addresses(socket: &ControlSocket) -> Vec<ControlSocket> {
    const ROOM: usize = 107;
    let mut all = vec![socket.clone()];
    for n in 2..=ADDRESSES {
        let next = match socket {
            ControlSocket::Abstract(name) if name.len() + 3 <= ROOM => ControlSocket::Abstract(format!("{name}/{n}")),
            ControlSocket::Path(path) if path.as_os_str().len() + 3 <= ROOM => {
                let mut text = path.as_os_str().to_owned();
                text.push(format!(".{n}"));
                ControlSocket::Path(text.into())
            }
            _ => break,
        };
        all.push(next);
    }
    all
}

/// Where the socket is: as configured, else the default name for this mount namespace.
/// None when it is `off`.
pub fn address(configured: Option<&ControlSocket>) -> Result<Option<ControlSocket>, String> {
    match configured {
        Some(ControlSocket::Off) => Ok(None),
        Some(socket) => Ok(Some(socket.clone())),
        None => match own_namespace(Namespace::Mount) {
            Ok(inode) => Ok(Some(ControlSocket::Abstract(format!("exeunt/mnt:{inode}")))),
            Err(e) => Err(format!("cannot tell this container's mount namespace (/proc/self/ns/mnt): {e}")),
        },
    }
}

/// EXEUNT_CONTROL_SOCKET, read.
pub fn from_env(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Option<ControlSocket>, String> {
    match env("EXEUNT_CONTROL_SOCKET").filter(|v| !v.is_empty()) {
        Some(value) => {
            ControlSocket::parse(&value.to_string_lossy()).map(Some).map_err(|e| format!("EXEUNT_CONTROL_SOCKET: {e}"))
        }
        None => Ok(None),
    }
}

/// The socket address of `socket` (never `Off`), and its length.
fn sockaddr(socket: &ControlSocket) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain bytes; all zeros is a valid, empty address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let (bytes, skip): (&[u8], usize) = match socket {
        // An abstract name starts with a zero byte, and its length is what counts.
        ControlSocket::Abstract(name) => (name.as_bytes(), 1),
        ControlSocket::Path(path) => (path.as_os_str().as_bytes(), 0),
        ControlSocket::Off => (&[], 0),
    };
    // ControlSocket::parse keeps names short enough; a longer one is cut, not overrun.
    let used = bytes.len().min(addr.sun_path.len() - 1 - skip);
    for (slot, &byte) in addr.sun_path[skip..].iter_mut().zip(&bytes[..used]) {
        *slot = byte as libc::c_char;
    }
    // One byte more than the name: the leading zero of an abstract name, or the
    // terminating zero of a path.
    let length = std::mem::offset_of!(libc::sockaddr_un, sun_path) + used + 1;
    (addr, length as libc::socklen_t)
}

/// A new Unix stream socket, close-on-exec, blocking or not.
fn stream_socket(nonblocking: bool) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let flags = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_UNIX, flags, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
