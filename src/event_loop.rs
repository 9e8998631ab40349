//! The event loop: the only place that blocks. One epoll wait, with no timeout while
//! nothing is due, over every source's descriptors and one timerfd armed for the
//! supervisor's next deadline. An idle exeunt makes no wake-ups.
//!
//! The loop knows no source by name. A source is a module that owns its descriptors,
//! watches them through the [`Poller`] under tokens of its own, and turns their
//! readiness into events ([`Source`]); the [`World`] holds the sources, routes each
//! ready token to the one it belongs to, and carries the supervisor's actions out.
//!
//! Setup may fail and make exeunt exit; once [`run`] has started a process, nothing
//! may: every error below is logged and the loop goes on, because leaving the
//! children unsupervised is worse than any error.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use log::warn;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::events::{Action, Event, Time};
use crate::timer::Timer;

/// The events that sources and actions produce, handed to the supervisor in order.
pub type Events = VecDeque<Event>;

/// Which source a descriptor belongs to. The loop keeps 0 for its timer. Sources whose
/// descriptors are ready at once are served in the order of their ids, the lowest
/// first: the world gives the lowest to signals and children, so that no flood on
/// another source delays them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceId(pub u32);

const TIMER: SourceId = SourceId(0);

/// What epoll hands back for a ready descriptor: its source, and which of the
/// source's descriptors it is (the source's own numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub source: SourceId,
    pub key: u32,
}

impl Token {
    fn pack(self) -> u64 {
        u64::from(self.source.0) << 32 | u64::from(self.key)
    }

    fn unpack(data: u64) -> Token {
        Token { source: SourceId((data >> 32) as u32), key: data as u32 }
    }
}

/// What a descriptor is watched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Readable,
    Writable,
}

impl Interest {
    fn flags(self) -> EpollFlags {
        match self {
            Interest::Readable => EpollFlags::EPOLLIN,
            Interest::Writable => EpollFlags::EPOLLOUT,
        }
    }
}

/// A source of events: it owns descriptors that the poller watches, and says what
/// their readiness means.
pub trait Source {
    /// The descriptor this source watched under `key` is ready.
    fn on_ready(&mut self, key: u32, poller: &Poller, events: &mut Events);
}

/// Everything the loop serves: the sources, and the means to carry actions out.
pub trait World {
    /// A descriptor is ready: hands it to the source it belongs to.
    fn on_ready(&mut self, token: Token, poller: &Poller, events: &mut Events);
    /// Carries out one action; what it causes at once goes into `events`.
    fn carry_out(&mut self, action: Action, poller: &Poller, events: &mut Events);
    /// The loop is about to block: sources whose wishes changed meanwhile (bytes now
    /// wait to be written) watch or unwatch their descriptors.
    fn before_wait(&mut self, poller: &Poller);
}

/// The one epoll, and the timer the loop arms for the supervisor's next deadline.
pub struct Poller {
    epoll: Epoll,
    timer: Timer,
}

impl Poller {
    /// Opens the epoll instance and the timer.
    pub fn new() -> Result<Poller, Errno> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let timer = Timer::new()?;
        let token = Token { source: TIMER, key: 0 };
        epoll.add(timer.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token.pack()))?;
        Ok(Poller { epoll, timer })
    }

    /// Watches `fd` for `interest`; its readiness comes back as `token`.
    pub fn watch(&self, fd: BorrowedFd, token: Token, interest: Interest) -> Result<(), Errno> {
        assert_ne!(token.source, TIMER, "source 0 is the loop's timer");
        self.epoll.add(fd, EpollEvent::new(interest.flags(), token.pack()))
    }

    /// Watches a descriptor that is watched already for something else.
    pub fn rewatch(&self, fd: BorrowedFd, token: Token, interest: Interest) -> Result<(), Errno> {
        self.epoll.modify(fd, &mut EpollEvent::new(interest.flags(), token.pack()))
    }

    /// Stops watching `fd` (closing it would too).
    pub fn unwatch(&self, fd: BorrowedFd) {
        let _ = self.epoll.delete(fd);
    }

    /// Blocks until a descriptor is ready, and hands each ready one on.
    fn wait(&mut self, world: &mut impl World, events: &mut Events) {
        let mut ready = [EpollEvent::empty(); 16];
        let count = match self.epoll.wait(&mut ready, EpollTimeout::NONE) {
            Ok(count) => count,
            Err(Errno::EINTR) => return,
            Err(e) => {
                warn!("epoll_wait failed: {e}");
                return;
            }
        };
        let ready = &mut ready[..count];
        ready.sort_unstable_by_key(|event| Token::unpack(event.data()).source.0);
        for event in ready.iter() {
            let token = Token::unpack(event.data());
            if token.source == TIMER {
                self.timer.fired();
                events.push_back(Event::Tick);
            } else {
                world.on_ready(token, self, events);
            }
        }
    }
}

/// The monotonic clock, as the supervisor counts time.
pub fn now() -> Time {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(Duration::ZERO, Duration::from)
}

/// What decides: events in, actions out, and the next time it needs the clock. The
/// loop knows nothing more of the supervisor than this.
pub trait Decide {
    /// The first actions, at `now`, before any event.
    fn start(&mut self, now: Time) -> Vec<Action>;
    /// What to do about `event`, which happened at `now`.
    fn handle(&mut self, event: Event, now: Time) -> Vec<Action>;
    /// When the loop must wake up with a [`Event::Tick`] if nothing else comes first.
    fn next_deadline(&self) -> Option<Time>;
}

/// Runs the supervisor to its end and returns exeunt's exit code. `known` is what the
/// world says before anything starts (a death dep that died already): it comes first.
pub fn run(supervisor: &mut impl Decide, world: &mut impl World, poller: &mut Poller, known: Vec<Event>) -> i32 {
    let mut actions = Vec::new();
    for event in known {
        actions.extend(supervisor.handle(event, now()));
    }
    actions.extend(supervisor.start(now()));
    let mut events = Events::new();
    loop {
        for action in actions.drain(..) {
            let exit = match action {
                Action::Exit(code) => Some(code),
                _ => None,
            };
            world.carry_out(action, poller, &mut events);
            if let Some(code) = exit {
                return code;
            }
        }
        if let Some(event) = events.pop_front() {
            actions = supervisor.handle(event, now());
            continue;
        }
        world.before_wait(poller);
        poller.timer.arm(supervisor.next_deadline(), "the timer");
        poller.wait(world, &mut events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_source_and_key_through_epoll_data() {
        for token in [Token { source: SourceId(1), key: 0 }, Token { source: SourceId(7), key: u32::MAX }] {
            assert_eq!(Token::unpack(token.pack()), token);
        }
    }
}
