//! Where exeunt's own writes leave it: a stream (stderr, stdout) written without ever
//! blocking, with a bounded queue for what the stream cannot take yet. The event loop
//! watches the stream for room while, and only while, something waits.
//!
//! The stream's descriptor is usually shared with the children, and its flags belong
//! to its open file description: setting O_NONBLOCK on it would make the children's
//! own writes fail with EAGAIN. So exeunt writes through a way that is non-blocking
//! for exeunt alone:
//! - a pipe (and /dev/null) takes `pwritev2` with RWF_NOWAIT, per call, where the
//!   kernel allows it for the file (pipes since Linux 6.6);
//! - a FIFO, a terminal, or a pipe of an older kernel is opened again through
//!   `/proc/self/fd`, which gives exeunt an open file description of its own,
//!   O_NONBLOCK and close-on-exec. That is the second choice because a lookup under
//!   /proc/self leaves entries that the kernel clears when exeunt's zombie is reaped:
//!   measured, about 6 µs more for the runtime to reap exeunt;
//! - a socket (a journald stream, say) takes `send` with MSG_DONTWAIT, per call;
//! - a regular file never blocks for long, and is written as it is.
//!
//! When none of these can be had (no /proc), writes go to the descriptor as it is and
//! may block, as they did before.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// How the bytes reach the stream.
enum Way {
    /// The descriptor as the children have it, written with RWF_NOWAIT; the first
    /// write the kernel refuses so makes it `Private`.
    NoWait(RawFd),
    /// exeunt's own open file description, non-blocking.
    Private(OwnedFd),
    /// A socket, sent to with MSG_DONTWAIT.
    Socket(RawFd),
    /// The descriptor as the children have it: a regular file, or nothing better.
    Shared(RawFd),
}

/// What became of bytes offered to an outlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Written, or queued behind what waits.
    Taken,
    /// The queue has no room for them: nothing of them was written or queued.
    Full,
    /// The stream is gone (its reader closed it); nothing more will be written.
    Broken,
}

/// One stream and what waits to be written to it.
pub struct Outlet {
    way: Way,
    /// Bytes waiting, from `start` on; the bytes before `start` went out.
    queue: Vec<u8>,
    start: usize,
    /// How many bytes may wait at most.
    limit: usize,
    broken: bool,
}

impl Outlet {
    /// An outlet for descriptor `fd` (1 or 2) holding at most `limit` waiting bytes.
    pub fn open(fd: RawFd, limit: usize) -> Outlet {
        Outlet { way: way_to(fd), queue: Vec::new(), start: 0, limit, broken: false }
    }

    /// Whether bytes wait for room in the stream.
    pub fn is_waiting(&self) -> bool {
        self.start < self.queue.len()
    }

    /// Whether the stream is gone.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Writes `bytes` as far as the stream takes them now, and queues the rest behind
    /// anything that waits. Bytes are offered whole (a line): either all of them are
    /// written or queued, or, when the queue has no room for them, none. When nothing
    /// waits, a line is taken whatever its size, so that every line can go out.
    pub fn offer(&mut self, bytes: &[u8]) -> Offer {
        if self.broken {
            return Offer::Broken;
        }
        if self.is_waiting() && self.queue.len() - self.start + bytes.len() > self.limit {
            return Offer::Full;
        }
        let written = if self.is_waiting() { 0 } else { self.write(bytes) };
        if self.broken {
            return Offer::Broken;
        }
        if written < bytes.len() {
            self.queue.extend_from_slice(&bytes[written..]);
        }
        Offer::Taken
    }

    /// Offers whole lines at once, each made of parts: line `i` is the parts up to
    /// `ends[i]`. When nothing waits they are written in one `writev` (a few, past
    /// IOV_MAX parts), straight from where they lie; a line the stream took only part
    /// of is queued whole from there on. The lines behind it are queued while the
    /// queue has room. Returns how many lines were taken, written or queued (all of
    /// them when the stream is gone: nobody will read them).
    ///
    /// # Safety
    /// Each iovec must point to `iov_len` readable bytes, for as long as the call lasts.
    pub unsafe fn offer_lines(&mut self, parts: &[libc::iovec], ends: &[usize]) -> usize {
        let length = |line: &[libc::iovec]| line.iter().map(|part| part.iov_len).sum::<usize>();
        self.flush();
        // Lines before `taken` are written or queued; their parts end at `first`.
        let (mut taken, mut first) = (0, 0);
        while !self.is_waiting() && !self.broken && taken < ends.len() {
            let mut last = taken + 1;
            while last < ends.len() && ends[last] - first <= IOV_MAX {
                last += 1;
            }
            let mut written = self.write_vectored(&parts[first..ends[last - 1]]);
            while taken < last && !self.broken {
                let line = &parts[first..ends[taken]];
                if written < length(line) {
                    if written > 0 {
                        self.queue_from(line, written);
                        (taken, first) = (taken + 1, ends[taken]);
                    }
                    break;
                }
                written -= length(line);
                (taken, first) = (taken + 1, ends[taken]);
            }
            if taken < last {
                break;
            }
        }
        if self.broken {
            return ends.len();
        }
        while taken < ends.len() {
            let line = &parts[first..ends[taken]];
            if self.is_waiting() && self.queue.len() - self.start + length(line) > self.limit {
                break;
            }
            self.queue_from(line, 0);
            (taken, first) = (taken + 1, ends[taken]);
        }
        taken
    }

    /// Queues the bytes of `parts` from `skip` on.
    fn queue_from(&mut self, parts: &[libc::iovec], mut skip: usize) {
        for part in parts {
            // SAFETY: offer_lines' caller promises readable bytes behind every iovec.
            let part = unsafe { std::slice::from_raw_parts(part.iov_base.cast::<u8>(), part.iov_len) };
            self.queue.extend_from_slice(&part[skip.min(part.len())..]);
            skip -= skip.min(part.len());
        }
    }

    /// Writes what waits, as far as the stream takes it now.
    pub fn flush(&mut self) {
        while self.is_waiting() && !self.broken {
            let waiting = std::mem::take(&mut self.queue);
            let written = self.write(&waiting[self.start..]);
            self.queue = waiting;
            if written == 0 {
                break;
            }
            self.start += written;
        }
        if !self.is_waiting() || self.broken {
            self.queue.clear();
            self.start = 0;
        } else if self.start > self.queue.len() / 2 {
            self.queue.drain(..self.start);
            self.start = 0;
        }
    }

    /// Waits up to `limit` for room in the stream, when exeunt is about to exit and
    /// nothing else needs it. False when waiting failed.
    pub fn wait_for_room(&self, limit: Duration) -> bool {
        let mut poll = libc::pollfd { fd: self.as_fd().as_raw_fd(), events: libc::POLLOUT, revents: 0 };
        let millis = i32::try_from(limit.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, for the length given.
        let polled = unsafe { libc::poll(&mut poll, 1, millis) };
        polled >= 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    }

    /// Writes once; returns how much went out (0 when the stream is full). A stream
    /// whose reader is gone is marked broken and forgets what waits.
    fn write(&mut self, bytes: &[u8]) -> usize {
        self.write_vectored(&[libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() }])
    }

    /// Writes the parts once, in order, in one system call. The iovecs must point to
    /// readable bytes (writev only reads through them).
    fn write_vectored(&mut self, parts: &[libc::iovec]) -> usize {
        let (iov, count) = (parts.as_ptr(), parts.len().min(IOV_MAX) as libc::c_int);
        loop {
            // SAFETY: `count` iovecs of valid slices; the descriptor is open.
            let result = unsafe {
                match &self.way {
                    Way::NoWait(fd) => {
                        // The offset -1 is "where the file is", as write(2) has it; on
                        // 64-bit Linux the offset is its low word alone.
                        libc::syscall(libc::SYS_pwritev2, *fd, iov, count, -1 as libc::c_long, 0, RWF_NOWAIT) as isize
                    }
                    Way::Private(fd) => libc::writev(fd.as_raw_fd(), iov, count),
                    Way::Socket(fd) => {
                        let mut message: libc::msghdr = std::mem::zeroed();
                        message.msg_iov = iov.cast_mut();
                        message.msg_iovlen = count as _;
                        libc::sendmsg(*fd, &message, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    }
                    Way::Shared(fd) => libc::writev(*fd, iov, count),
                }
            };
            if result >= 0 {
                return result as usize;
            }
            let error = std::io::Error::last_os_error().raw_os_error();
            if let (Way::NoWait(fd), Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS)) = (&self.way, error) {
                // This file, or this kernel, takes no RWF_NOWAIT: nothing was written.
                self.way = reopened(*fd);
                continue;
            }
            match error {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return 0,
                // EPIPE, a closed descriptor, and the like: nobody reads any more.
                _ => {
                    self.broken = true;
                    return 0;
                }
            }
        }
    }
}

/// The most parts one writev takes (Linux's UIO_MAXIOV).
const IOV_MAX: usize = 1024;

impl AsFd for Outlet {
    /// The descriptor to watch for room.
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.way {
            Way::Private(fd) => fd.as_fd(),
            // SAFETY: descriptors 1 and 2 stay open for as long as exeunt runs.
            Way::NoWait(fd) | Way::Socket(fd) | Way::Shared(fd) => unsafe { BorrowedFd::borrow_raw(*fd) },
        }
    }
}

/// The non-blocking way to write to `fd`, as the module comment tells.
fn way_to(fd: RawFd) -> Way {
    // SAFETY: fstat writes into the zeroed stat it is given.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Way::Shared(fd);
    }
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Way::Socket(fd),
        libc::S_IFIFO | libc::S_IFCHR => Way::NoWait(fd),
        _ => Way::Shared(fd),
    }
}

/// RWF_NOWAIT: this one write does not block (Linux 4.14; for pipes, 6.6).
const RWF_NOWAIT: libc::c_int = 0x8;

/// A description of exeunt's own for `fd`, non-blocking, opened through /proc; the
/// shared descriptor when there is no /proc.
fn reopened(fd: RawFd) -> Way {
    let path = format!("/proc/self/fd/{fd}\0");
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: a NUL-terminated path; the descriptor returned is ours alone.
    match unsafe { libc::open(path.as_ptr().cast(), flags) } {
        own if own >= 0 => Way::Private(unsafe { OwnedFd::from_raw_fd(own) }),
        _ => Way::Shared(fd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    /// A pipe whose read end the test holds, and an outlet on its write end.
    fn pipe_outlet(limit: usize) -> (std::fs::File, OwnedFd, Outlet) {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let outlet = Outlet::open(write.as_raw_fd(), limit);
        (std::fs::File::from(read), write, outlet)
    }

    /// Fills the pipe through an outlet of the test's own, which must never block;
    /// returns how many bytes it took.
    fn fill(fd: &OwnedFd) -> usize {
        let mut own = Outlet::open(fd.as_raw_fd(), 0);
        let mut total = 0;
        while let n @ 1.. = own.write(&[b'x'; 4096]) {
            total += n;
        }
        assert!(!own.broken);
        total
    }

    #[test]
    fn a_pipe_is_written_per_call_without_blocking_and_without_a_description_of_its_own() {
        let (_read, _write, mut outlet) = pipe_outlet(64);
        let mut total = 0;
        while let n @ 1.. = outlet.write(&[b'x'; 4096]) {
            total += n;
        }
        assert!(total >= 4096, "the empty pipe took {total} bytes");
        // Pipes take RWF_NOWAIT from Linux 6.6 on.
        match crate::reaper::kernel_is_at_least(6, 6) {
            true => assert!(matches!(outlet.way, Way::NoWait(_)), "the full pipe said EAGAIN to RWF_NOWAIT"),
            false => assert!(matches!(outlet.way, Way::Private(_)), "an older kernel: a description of its own"),
        }
    }

    #[test]
    fn a_fifo_which_takes_no_rwf_nowait_gets_a_description_of_its_own_and_never_blocks() {
        let dir = std::env::temp_dir().join(format!("exeunt-outlet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let read = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
        let write = OwnedFd::from(std::fs::OpenOptions::new().write(true).open(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        let mut outlet = Outlet::open(write.as_raw_fd(), 64);
        assert!(matches!(outlet.way, Way::NoWait(_)));
        assert_eq!(outlet.offer(b"first line\n"), Offer::Taken);
        assert!(matches!(outlet.way, Way::Private(_)), "refused RWF_NOWAIT, it was opened again");
        let filled = fill(&write);
        assert!(filled > 0);
        assert_eq!(outlet.offer(b"queued\n"), Offer::Taken);
        assert!(outlet.is_waiting(), "the full FIFO made the line wait, and the write did not block");
        drop(read);
    }

    #[test]
    fn the_shared_descriptor_keeps_its_blocking_flags() {
        let (_read, write, _outlet) = pipe_outlet(64);
        let flags = nix::fcntl::fcntl(&write, nix::fcntl::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0, "the children's description is left blocking");
    }

    #[test]
    fn a_full_stream_queues_whole_lines_up_to_the_limit_then_refuses() {
        let (mut read, write, mut outlet) = pipe_outlet(10);
        let filled = fill(&write);
        assert_eq!(outlet.offer(b"one\n"), Offer::Taken);
        assert_eq!(outlet.offer(b"two\n"), Offer::Taken);
        assert_eq!(outlet.offer(b"three\n"), Offer::Full, "4 + 4 + 6 bytes exceed 10");
        assert!(outlet.is_waiting());
        let mut drained = vec![0; filled];
        read.read_exact(&mut drained).unwrap();
        outlet.flush();
        assert!(!outlet.is_waiting());
        drop(write);
        drop(outlet);
        let mut rest = String::new();
        read.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "one\ntwo\n");
    }

    #[test]
    fn a_stream_nobody_reads_any_more_is_broken_not_an_error() {
        let (read, _write, mut outlet) = pipe_outlet(64);
        drop(read);
        assert_eq!(outlet.offer(b"lost\n"), Offer::Broken);
        assert!(outlet.is_broken());
        assert_eq!(outlet.offer(b"lost too\n"), Offer::Broken);
    }
}
