//! Where signals arrive: every catchable signal is blocked, and all but SIGCHLD (the
//! reaper's) are read from one signalfd, a source of the event loop. Also what
//! children get back of the signal state exeunt was started with.
//!
//! Why signalfd rather than signal-hook: exeunt is one thread that must never miss a
//! SIGCHLD and must know who sent a signal (to ignore the SIGPIPE the kernel raises for
//! exeunt's own writes). A signalfd gives both, with the sender's pid, straight from the
//! kernel; signal-hook would install handlers and a self-pipe, and handlers would also
//! change the dispositions that children inherit.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, sigaction};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::event_loop::{Events, Poller, Source};
use crate::events::Event;
use crate::signo::Signo;

/// Signals the kernel raises for a fault. They stay unblocked, as tini leaves them,
/// unless another process's are to be passed on (dumb-init's way): a fault of exeunt's
/// own ends it either way, since the kernel unblocks and resets the signal it forces.
const SYNCHRONOUS: [Signal; 7] =
    [Signal::SIGFPE, Signal::SIGILL, Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGABRT, Signal::SIGTRAP, Signal::SIGSYS];

/// What a child must get back before exec: the signal mask and the ignored signals
/// exeunt was started with. Plain data, so that it can be used after fork without
/// allocating.
#[derive(Clone, Copy)]
pub struct Inherited {
    mask: libc::sigset_t,
    sigchld_ignored: bool,
    sigpipe_ignored: bool,
}

impl Inherited {
    /// Restores the original mask and ignored dispositions. Async-signal-safe: only
    /// `sigaction` and `sigprocmask`, on data copied before fork.
    pub fn restore_in_child(&self) -> std::io::Result<()> {
        // SAFETY: plain syscalls on valid, stack-owned arguments; both are
        // async-signal-safe, so they may run between fork and exec.
        unsafe {
            // The standard library resets SIGPIPE to default in the child; exeunt
            // never installs a handler, so every other disposition is still the original.
            for (ignored, signo) in [(self.sigchld_ignored, libc::SIGCHLD), (self.sigpipe_ignored, libc::SIGPIPE)] {
                if ignored && libc::signal(signo, libc::SIG_IGN) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::sigprocmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// A signal as read from the signalfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub signo: Signo,
    /// The sender's pid in exeunt's namespace, 0 for the kernel or another namespace.
    /// The sender chooses it when it queues the signal: it says who to ask, not who sent.
    pub sender: i32,
    /// The sender's real uid, as the sender says.
    pub uid: u32,
    /// The exit status another exeunt sent along with the signal (see [`carry`]).
    pub status: Option<i32>,
}

/// Marks a sigqueue value as an exit status sent by exeunt: "EX" in the high bytes,
/// the status in the lowest, so that a value queued by anything else is not taken
/// for one.
const CARRY_TAG: i32 = 0x4558_0000;

/// The sigqueue value that carries exit status `status` (0 to 255).
pub fn carry(status: i32) -> i32 {
    CARRY_TAG | (status & 0xff)
}

/// The exit status a sigqueue value carries, if exeunt made it.
pub fn carried(value: i32) -> Option<i32> {
    (value & !0xff == CARRY_TAG).then_some(value & 0xff)
}

/// Every catchable signal but SIGCHLD, blocked and readable from one descriptor.
pub struct SignalInbox {
    fd: SignalFd,
    /// exeunt's own pid (musl asks the kernel each time otherwise).
    me: i32,
    /// Whether a stop signal's carried exit status may be taken at all (`--sidecar`),
    /// and from whom: the check of the sender, given the pid and uid the signal names
    /// and the status it carries.
    takes_status: Option<SenderCheck>,
}

/// Whether the sender a signal names may hand exeunt this exit status; else why not.
pub type SenderCheck = fn(sender: i32, uid: u32, status: i32) -> Result<(), String>;

impl SignalInbox {
    /// Blocks every catchable signal (but the synchronous ones, unless `faults`) and
    /// opens the signalfd for all of them but SIGCHLD, which the reaper reads on a
    /// signalfd of its own. Returns what children must get back. Call before any child
    /// is started.
    pub fn open(faults: bool) -> Result<(SignalInbox, Inherited), Errno> {
        let mut blocked = SigSet::all();
        for sig in SYNCHRONOUS.into_iter().filter(|_| !faults) {
            blocked.remove(sig);
        }
        let mut original = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut original))?;
        let sigchld_ignored = take_back_ignored(Signal::SIGCHLD)?;
        let sigpipe_ignored = is_ignored(Signal::SIGPIPE)?;
        let mut inbox = blocked;
        inbox.remove(Signal::SIGCHLD);
        let fd = SignalFd::with_flags(&inbox, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        let inherited = Inherited { mask: *original.as_ref(), sigchld_ignored, sigpipe_ignored };
        Ok((SignalInbox { fd, me: std::process::id() as i32, takes_status: None }, inherited))
    }

    /// Takes the exit status a stop signal carries, from a sender that `check` accepts
    /// (the primary container's exeunt: see `pod::peer`).
    pub fn take_carried_status(&mut self, check: SenderCheck) {
        self.takes_status = Some(check);
    }

    /// Appends every pending signal to `arrivals`. Reads several at a time, and stops
    /// after a short read: the signalfd had no more, so no read is spent on EAGAIN.
    pub fn drain(&self, arrivals: &mut Vec<Arrival>) -> Result<(), Errno> {
        const BATCH: usize = 16;
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // Not zeroed first (2 KiB per read): only the records the kernel wrote are read.
        let mut batch = [const { std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit() }; BATCH];
        loop {
            // SAFETY: the buffer is valid for BATCH records; the kernel writes whole records.
            let read = unsafe { libc::read(self.fd.as_raw_fd(), batch.as_mut_ptr().cast(), size * BATCH) };
            if read < 0 {
                return match Errno::last() {
                    Errno::EAGAIN => Ok(()),
                    Errno::EINTR => continue,
                    e => Err(e),
                };
            }
            let count = read as usize / size;
            // SAFETY: the kernel wrote `count` whole records at the start of the buffer.
            let written = unsafe { std::slice::from_raw_parts(batch.as_ptr().cast::<libc::signalfd_siginfo>(), count) };
            arrivals.extend(written.iter().map(|info| Arrival {
                signo: Signo(info.ssi_signo as i32),
                sender: info.ssi_pid as i32,
                uid: info.ssi_uid,
                status: (info.ssi_code == libc::SI_QUEUE).then(|| carried(info.ssi_int)).flatten(),
            }));
            if count < BATCH {
                return Ok(());
            }
        }
    }
}

impl AsFd for SignalInbox {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Source for SignalInbox {
    fn on_ready(&mut self, _key: u32, _poller: &Poller, events: &mut Events) {
        let mut arrivals = Vec::new();
        if let Err(e) = self.drain(&mut arrivals) {
            warn!("reading signals failed: {e}");
        }
        for arrival in arrivals {
            match arrival {
                Arrival { sender, signo, .. } if sender == self.me => {
                    // The kernel's answer to something exeunt did (SIGPIPE for a write to a
                    // closed stderr): it is not a request from outside, so it is not forwarded.
                    debug!("ignoring {signo} caused by exeunt itself");
                }
                Arrival { signo, sender, uid, status: Some(status) } if signo.asks_to_stop() => {
                    let checked = match self.takes_status {
                        Some(check) => check(sender, uid, status),
                        None => Err("this exeunt's own primaries decide its status (see --sidecar)".to_string()),
                    };
                    match checked {
                        Ok(()) => events.push_back(Event::StopWithStatus { signo, status, sender }),
                        Err(why) => {
                            warn!(
                                "{signo} from pid {sender} (uid {uid}) claims exit status {status}, which is not taken: {why}"
                            );
                            events.push_back(Event::Signal(signo));
                        }
                    }
                }
                Arrival { signo, .. } => events.push_back(Event::Signal(signo)),
            }
        }
    }
}

/// Gives up the controlling terminal, so that a child in a session of its own can take
/// it. Without one, nothing happens.
pub fn leave_terminal() {
    // SAFETY: TIOCNOTTY takes no argument and touches no memory of ours.
    unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCNOTTY) };
}

fn is_ignored(sig: Signal) -> Result<bool, Errno> {
    // SAFETY: reading a disposition installs nothing: the old one is put straight back.
    let old = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl)? };
    unsafe { nix::sys::signal::signal(sig, old)? };
    Ok(matches!(old, SigHandler::SigIgn))
}

/// An ignored SIGCHLD makes the kernel reap children unasked, and exeunt would never
/// learn their exit status. Exeunt takes the default back and reports whether it was
/// ignored, so that children can get it as they would have.
fn take_back_ignored(sig: Signal) -> Result<bool, Errno> {
    let ignored = is_ignored(sig)?;
    if ignored {
        let default =
            nix::sys::signal::SigAction::new(SigHandler::SigDfl, nix::sys::signal::SaFlags::empty(), SigSet::empty());
        // SAFETY: installing the default disposition runs no code of ours in a handler.
        unsafe { sigaction(sig, &default)? };
    }
    Ok(ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_values_made_by_carry_carry_a_status() {
        for status in [0, 3, 143, 255] {
            assert_eq!(carried(carry(status)), Some(status));
        }
        assert_eq!(carried(0), None);
        assert_eq!(carried(7), None);
        assert_eq!(carried(0x4559_0003), None);
    }
}
