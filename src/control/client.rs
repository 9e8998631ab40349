//! The client side of the control socket: `exeunt --status` and the other forms
//! connect, send one request, and read the answer to its end, all within
//! [`ANSWER_WAIT`], so that a probe never hangs on an exeunt that cannot answer.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::{ANSWER_WAIT, sockaddr, stream_socket, wire};
use crate::events::{Answer, Request};
use crate::plan::ControlSocket;

/// The one line a client says when nobody is there to answer.
pub const NOBODY: &str = "no exeunt answers in this container";

/// The most a client reads of an answer.
const ANSWER_LIMIT: u64 = 1 << 20;

/// Connects to `socket`, with [`ANSWER_WAIT`] for the connection itself.
fn connect(socket: &ControlSocket) -> std::io::Result<UnixStream> {
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

/// Whether something listens at `socket` (a socket file left behind does not).
pub fn answers(socket: &ControlSocket) -> bool {
    connect(socket).is_ok()
}

/// Asks `request` at `socket` and returns the answer, or why there is none.
pub fn ask(socket: &ControlSocket, request: &Request) -> Result<Answer, String> {
    let started = Instant::now();
    let nobody = |why: String| format!("{NOBODY} ({socket}: {why})");
    let mut stream = connect(socket).map_err(|e| nobody(e.to_string()))?;
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
