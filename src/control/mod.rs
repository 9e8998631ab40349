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

pub mod client;
pub mod listener;
pub mod wire;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::plan::ControlSocket;

/// How long a client has, from its connection, to send its request and take the answer.
pub const CLIENT_TIME: Duration = Duration::from_secs(2);

/// How long `exeunt --status` and the other client forms wait for an answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// The inode of the mount namespace that `/proc/PID/ns/mnt` (or `self`) names.
pub fn mount_namespace(pid: &str) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| m.ino())
}

/// Where the socket is: as configured, else the default name for this mount namespace.
/// None when it is `off`.
pub fn address(configured: Option<&ControlSocket>) -> Result<Option<ControlSocket>, String> {
    match configured {
        Some(ControlSocket::Off) => Ok(None),
        Some(socket) => Ok(Some(socket.clone())),
        None => match mount_namespace("self") {
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
