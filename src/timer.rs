//! A one-shot timer on the monotonic clock, as a descriptor that epoll watches: the
//! event loop's, and those of sources that keep deadlines of their own (the control
//! socket's clients, the graveyard's retries). Armed only while something is due, so
//! an idle exeunt is never woken by it.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use log::warn;
use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// A point on the monotonic clock (time since boot).
pub type Time = Duration;

pub struct Timer {
    fd: TimerFd,
    /// The deadline it is armed for.
    armed: Option<Time>,
}

impl Timer {
    pub fn new() -> Result<Timer, Errno> {
        let fd = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        Ok(Timer { fd, armed: None })
    }

    /// Arms the timer for `deadline`, or disarms it; nothing is asked of the kernel when
    /// the deadline has not changed. `what` names the timer in a warning.
    pub fn arm(&mut self, deadline: Option<Time>, what: &str) {
        if deadline == self.armed {
            return;
        }
        let result = match deadline {
            // A zero expiration would disarm the timer: a deadline is at least 1 ns.
            Some(at) => self.fd.set(
                Expiration::OneShot(TimeSpec::from(at.max(Duration::from_nanos(1)))),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            ),
            None => self.fd.unset(),
        };
        match result {
            Ok(()) => self.armed = deadline,
            Err(e) => warn!("cannot arm {what}: {e}"),
        }
    }

    /// The timer fired: its readiness is reset, and it is disarmed.
    pub fn fired(&mut self) {
        // EAGAIN means it was re-armed meanwhile: nothing to reset.
        let _ = self.fd.wait();
        self.armed = None;
    }
}

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
