//! The event loop: the only place that blocks. One epoll wait, with no timeout while
//! nothing is due, over the signalfd (signals and SIGCHLD) and one timerfd armed for
//! the supervisor's next deadline. An idle exeunt makes no wake-ups.
//!
//! Setup may fail and make exeunt exit; once [`run`] has started a process, nothing
//! may: every error below is logged and the loop goes on, because leaving the
//! children unsupervised is worse than any error.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::checks::{self, Checks};
use crate::events::{Action, Event, ExitStatus, Milestone, Purpose, Time};
use crate::plan::Plan;
use crate::pod::graveyard::Graveyard;
use crate::pod::shared_pid;
use crate::reaper;
use crate::signals::{self, Arrival, SignalInbox};
use crate::signo::{SIGCONT, SIGKILL, Signo};
use crate::spawn::Launcher;
use crate::supervisor::Supervisor;

const SIGNALS: u64 = 0;
const TIMER: u64 = 1;
const GRAVEYARD: u64 = 2;
/// Tokens from here up are pidfds of other containers' processes: the base plus the pid.
const PIDFDS: u64 = 1 << 40;
const _: () = assert!(checks::FIRST_TOKEN > GRAVEYARD);

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
pub fn run(plan: &Plan, wakers: Wakers, launcher: Launcher, graveyard: Option<Graveyard>) -> i32 {
    let mut supervisor = Supervisor::new(plan, now());
    let mut world = World {
        plan,
        wakers,
        launcher,
        graveyard,
        checks: Checks::default(),
        others: Vec::new(),
        pending: VecDeque::new(),
        armed: None,
        me: std::process::id() as i32,
    };
    // What the graveyard says now comes first: when a death dep has died already,
    // nothing is started at all.
    let mut actions = Vec::new();
    if let Some(graveyard) = &mut world.graveyard {
        if let Err(e) = world.wakers.epoll.add(graveyard.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, GRAVEYARD)) {
            warn!("cannot watch the graveyard: {e}");
        }
        for event in graveyard.scan() {
            actions.extend(supervisor.handle(event, now()));
        }
    }
    actions.extend(supervisor.start());
    loop {
        for action in actions.drain(..) {
            if let Action::Exit(code) = action {
                if let Some(graveyard) = &mut world.graveyard {
                    graveyard.record(Milestone::Died(code));
                }
                return code;
            }
            world.carry_out(action);
        }
        if let Some(event) = world.pending.pop_front() {
            actions = supervisor.handle(event, now());
            continue;
        }
        let deadline = supervisor.next_deadline();
        if deadline != world.armed {
            arm(&world.wakers.timer, deadline);
            world.armed = deadline;
        }
        world.wait();
    }
}

/// Everything the supervisor's actions touch, and the events they produce.
struct World<'p> {
    plan: &'p Plan,
    wakers: Wakers,
    launcher: Launcher,
    graveyard: Option<Graveyard>,
    checks: Checks,
    /// Pidfds of the other containers' processes that are watched, by pid.
    others: Vec<(i32, OwnedFd)>,
    pending: VecDeque<Event>,
    /// The deadline the timer is armed for.
    armed: Option<Time>,
    /// exeunt's own pid (musl asks the kernel each time otherwise).
    me: i32,
}

impl World<'_> {
    fn carry_out(&mut self, action: Action) {
        match action {
            Action::Exit(_) => {}
            Action::Spawn(index) => {
                let event = match &self.plan.processes[index].matcher {
                    Some(matcher) => self.adopt(index, matcher),
                    None => match self.launcher.spawn(self.plan, index) {
                        Ok(pid) => Event::Spawned { index, pid },
                        Err(e) => Event::SpawnFailed { index, code: e.code, reason: e.reason },
                    },
                };
                self.pending.push_back(event);
            }
            Action::Signal { pid, signo, group } => send(pid, signo, group),
            Action::Stop { pid, signo, group } => {
                send(pid, signo, group);
                send(pid, SIGCONT, group);
            }
            Action::SignalWithStatus { pid, signo, status } => {
                let value = libc::sigval { sival_ptr: signals::carry(status) as usize as *mut libc::c_void };
                // SAFETY: sigqueue takes plain values; the pointer is never dereferenced.
                if unsafe { libc::sigqueue(pid, signo.0, value) } != 0 {
                    send(pid, signo, false);
                }
                send(pid, SIGCONT, false);
            }
            Action::Record(milestone) => {
                if let Some(graveyard) = &mut self.graveyard {
                    graveyard.record(milestone);
                }
            }
            Action::SignalDescendants(signo) => {
                reaper::signal_descendants(signo);
                // What has already died is collected now, and the supervisor learns
                // whether anything is left at all.
                self.reap();
            }
            Action::StartCheck(id) => {
                let spec = &self.plan.processes[id.index];
                let check = match id.purpose {
                    Purpose::Ready => spec.ready.as_ref().map(|r| &r.probe),
                    Purpose::Stop => spec.stop_hook.as_ref(),
                };
                let Some(check) = check else { return };
                let (plan, launcher) = (self.plan, &self.launcher);
                let mut run =
                    |argv: &[std::ffi::OsString]| launcher.spawn_check(plan, id.index, argv).map_err(|e| e.reason);
                if let Some(result) = self.checks.start(id, check, &self.wakers.epoll, &mut run) {
                    self.pending.push_back(Event::CheckDone { id, result });
                }
            }
            Action::CancelCheck(id) => self.checks.cancel(id, &self.wakers.epoll),
            Action::Reap => self.reap(),
        }
    }

    /// Looks for the process of another container that a sidecar names, and watches it
    /// through a pidfd when found.
    fn adopt(&mut self, index: usize, matcher: &crate::plan::Matcher) -> Event {
        let Some(pid) = shared_pid::find(matcher) else { return Event::NotFound { index } };
        let pidfd = match shared_pid::pidfd_open(pid) {
            Ok(pidfd) => pidfd,
            Err(e) => {
                debug!("pid {pid} matched {matcher} but cannot be watched: {e}");
                return Event::NotFound { index };
            }
        };
        if let Err(e) = self.wakers.epoll.add(pidfd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, PIDFDS + pid as u64))
        {
            warn!("cannot watch pid {pid}: {e}");
            return Event::NotFound { index };
        }
        self.others.push((pid, pidfd));
        Event::Spawned { index, pid }
    }

    /// Blocks until a signal arrives, the timer fires or a check's socket is ready,
    /// and queues what happened.
    fn wait(&mut self) {
        let mut ready = [EpollEvent::empty(); 16];
        let count = match self.wakers.epoll.wait(&mut ready, EpollTimeout::NONE) {
            Ok(count) => count,
            Err(Errno::EINTR) => return,
            Err(e) => {
                warn!("epoll_wait failed: {e}");
                return;
            }
        };
        for event in &ready[..count] {
            match event.data() {
                SIGNALS => self.read_signals(),
                TIMER => {
                    // Reading resets the timer's readiness; EAGAIN means it was re-armed meanwhile.
                    let _ = self.wakers.timer.wait();
                    self.armed = None;
                    self.pending.push_back(Event::Tick);
                }
                GRAVEYARD => {
                    if let Some(graveyard) = &mut self.graveyard {
                        self.pending.extend(graveyard.on_readable());
                    }
                }
                token if token >= PIDFDS => {
                    let pid = (token - PIDFDS) as i32;
                    if let Some(position) = self.others.iter().position(|(p, _)| *p == pid) {
                        let (_, pidfd) = self.others.swap_remove(position);
                        let _ = self.wakers.epoll.delete(pidfd.as_fd());
                        self.pending.push_back(Event::Exited { pid, status: ExitStatus::Unknown });
                    }
                }
                token => {
                    if let Some((id, result)) = self.checks.on_ready(token, &self.wakers.epoll) {
                        self.pending.push_back(Event::CheckDone { id, result });
                    }
                }
            }
        }
    }

    fn read_signals(&mut self) {
        let mut arrivals = Vec::new();
        if let Err(e) = self.wakers.inbox.drain(&mut arrivals) {
            warn!("reading signals failed: {e}");
        }
        let mut child_exited = false;
        for arrival in arrivals {
            match arrival {
                Arrival { signo, .. } if signo.0 == libc::SIGCHLD => child_exited = true,
                Arrival { sender, signo, .. } if sender == self.me => {
                    // The kernel's answer to something exeunt did (SIGPIPE for a write to a
                    // closed stderr): it is not a request from outside, so it is not forwarded.
                    debug!("ignoring {signo} caused by exeunt itself");
                }
                Arrival { signo, status: Some(status), .. } if signo.asks_to_stop() => {
                    self.pending.push_back(Event::StopWithStatus { signo, status });
                }
                Arrival { signo, .. } => self.pending.push_back(Event::Signal(signo)),
            }
        }
        if child_exited {
            self.reap();
        }
    }

    /// Collects every dead child; a check's command becomes the check's outcome.
    fn reap(&mut self) {
        let mut exits = Vec::new();
        let children_left = reaper::reap(&mut exits);
        for (pid, status) in exits {
            match self.checks.on_exit(pid, status) {
                None => self.pending.push_back(Event::Exited { pid, status }),
                Some(Some((id, result))) => self.pending.push_back(Event::CheckDone { id, result }),
                Some(None) => debug!("reaped cancelled check command pid {pid}"),
            }
        }
        self.pending.push_back(Event::Reaped { children_left });
    }
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
