//! The client side of the control socket: `exeunt --status` and the other forms
//! connect, send one request, and read the answer to its end, all within
//! [`ANSWER_WAIT`], so that a probe never hangs on an exeunt that cannot answer.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::{ANSWER_WAIT, Container, addresses, sockaddr, stream_socket, wire};
use crate::events::{Answer, Request};
use crate::plan::ControlSocket;

/// The one line a client says when nobody is there to answer.
pub const NOBODY: &str = "no exeunt answers in this container";

/// The most a client reads of an answer.
const ANSWER_LIMIT: u64 = 1 << 20;

/// Connects to `socket`, with [`ANSWER_WAIT`] for the connection itself.
pub fn connect(socket: &ControlSocket) -> std::io::Result<UnixStream> {
    let fd = stream_socket(false)?;
    let stream = UnixStream::from(fd);
    // A connection waits for room in the listener's queue no longer than this.
    stream.set_write_timeout(Some(ANSWER_WAIT))?;
    let (addr, length) = sockaddr(socket);
    // SAFETY: addr is a valid sockaddr_un of `length` bytes.
    if unsafe { libc::connect(stream.as_raw_fd(), (&raw const addr).cast(), length) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stream)
}

/// Connects to the exeunt of this container at `socket`, or at the first of its
/// alternates where it answers. A listener of any other container is passed over,
/// whatever it would say. Else why nobody answers.
pub fn connect_to_own(socket: &ControlSocket) -> Result<UnixStream, String> {
    let container = Container::this().map_err(|e| format!("cannot tell this container's namespaces: {e}"))?;
    let mut why = Vec::new();
    for address in addresses(socket) {
        match connect(&address) {
            Ok(stream) => match container.holds(stream.as_fd()) {
                Ok(()) => return Ok(stream),
                Err(who) => why.push(format!("{address} is held by {who}: not believed")),
            },
            // The first address says why nothing is there; the alternates only when taken.
            Err(e) if why.is_empty() => why.push(format!("{address}: {e}")),
            Err(_) => {}
        }
    }
    Err(why.join("; "))
}

/// Asks `request` at `socket` and returns the answer, or why there is none.
pub fn ask(socket: &ControlSocket, request: &Request) -> Result<Answer, String> {
    let started = Instant::now();
    let nobody = |why: String| format!("{NOBODY} ({socket}: {why})");
    let mut stream = connect_to_own(socket).map_err(|why| format!("{NOBODY} ({why})"))?;
    stream.write_all(wire::request_line(request).as_bytes()).map_err(|e| nobody(e.to_string()))?;
    let mut bytes = Vec::new();
    let mut limited = (&stream).take(ANSWER_LIMIT);
    loop {
        let left = ANSWER_WAIT.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(nobody(format!("no answer within {}", crate::duration::Show(ANSWER_WAIT))));
        }
        limited.get_ref().set_read_timeout(Some(left)).map_err(|e| nobody(e.to_string()))?;
        let mut chunk = [0u8; 4096];
        match limited.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(nobody(format!("no answer within {}", crate::duration::Show(ANSWER_WAIT))));
            }
            Err(e) => return Err(nobody(e.to_string())),
        }
    }
    drop(stream);
    if bytes.is_empty() {
        // exeunt closes on a client it does not admit, without a word.
        return Err(nobody("the connection was closed without an answer".to_string()));
    }
    wire::parse_answer(&bytes).map_err(nobody)
}
