//! The event loop: the only place that blocks. One epoll wait, with no timeout while
//! nothing is due, over the signalfd (signals and SIGCHLD) and one timerfd armed for
//! the supervisor's next deadline. An idle exeunt makes no wake-ups.
//!
//! Setup may fail and make exeunt exit; once [`run`] has started a process, nothing
//! may: every error below is logged and the loop goes on, because leaving the
//! children unsupervised is worse than any error.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::Duration;

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::plan::Plan;
use crate::reaper;
use crate::signals::{SIGKILL, SignalInbox, Signo};
use crate::spawn::Launcher;
use crate::supervisor::{Action, Event, Supervisor, Time};

const SIGNALS: u64 = 0;
const TIMER: u64 = 1;

/// The monotonic clock, as the supervisor counts time.
pub fn now() -> Time {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(Duration::ZERO, Duration::from)
}

/// The file descriptors the loop waits on.
pub struct Wakers {
    epoll: Epoll,
    timer: TimerFd,
    inbox: SignalInbox,
}

impl Wakers {
    /// Opens the epoll instance and the timer, and registers the signal inbox.
    pub fn new(inbox: SignalInbox) -> Result<Wakers, Errno> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        epoll.add(inbox.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS))?;
        epoll.add(timer.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, TIMER))?;
        Ok(Wakers { epoll, timer, inbox })
    }
}

/// Runs the plan to its end and returns exeunt's exit code.
pub fn run(plan: &Plan, wakers: Wakers, launcher: Launcher) -> i32 {
    let mut supervisor = Supervisor::new(plan);
    let mut pending: VecDeque<Event> = VecDeque::new();
    let mut armed: Option<Time> = None;
    let mut actions = supervisor.start();
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Exit(code) => return code,
                Action::Spawn(index) => pending.push_back(match launcher.spawn(plan, index) {
                    Ok(pid) => Event::Spawned { index, pid },
                    Err(e) => Event::SpawnFailed { index, code: e.code, reason: e.reason },
                }),
                Action::Signal { pid, signo, group } => send(pid, signo, group),
                Action::SignalDescendants(signo) => {
                    reaper::signal_descendants(signo);
                    // What has already died is collected now, and the supervisor learns
                    // whether anything is left at all.
                    reap_into(&mut pending);
                }
            }
        }
        if let Some(event) = pending.pop_front() {
            actions = supervisor.handle(event, now());
            continue;
        }
        let deadline = supervisor.next_deadline();
        if deadline != armed {
            arm(&wakers.timer, deadline);
            armed = deadline;
        }
        wait(&wakers, &mut pending, &mut armed);
    }
}

/// Blocks until a signal arrives or the timer fires, and queues what happened.
fn wait(wakers: &Wakers, pending: &mut VecDeque<Event>, armed: &mut Option<Time>) {
    let mut ready = [EpollEvent::empty(); 2];
    let count = match wakers.epoll.wait(&mut ready, EpollTimeout::NONE) {
        Ok(count) => count,
        Err(Errno::EINTR) => return,
        Err(e) => {
            warn!("epoll_wait failed: {e}");
            return;
        }
    };
    for event in &ready[..count] {
        match event.data() {
            SIGNALS => read_signals(&wakers.inbox, pending),
            TIMER => {
                // Reading resets the timer's readiness; EAGAIN means it was re-armed meanwhile.
                let _ = wakers.timer.wait();
                *armed = None;
                pending.push_back(Event::Tick);
            }
            _ => {}
        }
    }
}

fn read_signals(inbox: &SignalInbox, pending: &mut VecDeque<Event>) {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let mut child_exited = false;
    loop {
        match inbox.next() {
            Ok(Some(arrival)) if arrival.signo.0 == libc::SIGCHLD => child_exited = true,
            Ok(Some(arrival)) if arrival.sender == me => {
                // The kernel's answer to something exeunt did (SIGPIPE for a write to a
                // closed stderr): it is not a request from outside, so it is not forwarded.
                debug!("ignoring {} caused by exeunt itself", arrival.signo);
            }
            Ok(Some(arrival)) => pending.push_back(Event::Signal(arrival.signo)),
            Ok(None) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                warn!("reading signals failed: {e}");
                break;
            }
        }
    }
    if child_exited {
        reap_into(pending);
    }
}

fn reap_into(pending: &mut VecDeque<Event>) {
    let mut exits = Vec::new();
    let children_left = reaper::reap(&mut exits);
    pending.extend(exits.into_iter().map(|(pid, status)| Event::Exited { pid, status }));
    pending.push_back(Event::Reaped { children_left });
}

fn arm(timer: &TimerFd, deadline: Option<Time>) {
    let result = match deadline {
        // A zero expiration would disarm the timer: a deadline is at least 1 ns.
        Some(at) => timer.set(
            Expiration::OneShot(TimeSpec::from(at.max(Duration::from_nanos(1)))),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        ),
        None => timer.unset(),
    };
    if let Err(e) = result {
        warn!("cannot arm the timer: {e}");
    }
}

/// Sends a signal to a process, or to its process group. The process itself gets it
/// too when the group is gone, and always for SIGKILL: it may have moved itself to
/// another group.
fn send(pid: i32, signo: Signo, group: bool) {
    // SAFETY: kill takes plain integers.
    let group_sent = group && unsafe { libc::kill(-pid, signo.0) } == 0;
    if (!group_sent || signo == SIGKILL) && unsafe { libc::kill(pid, signo.0) } != 0 {
        debug!("sending {signo} to pid {pid}: {}", std::io::Error::last_os_error());
    }
}
