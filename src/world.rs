//! The operating system as a run sees it: the event sources (signals, children, check
//! sockets, the graveyard, other containers' processes, the processes' output and room
//! for it in stdout and stderr) and the means to carry the
//! supervisor's actions out (start, signal, probe, record). A new source is one more
//! field and one more arm here; the event loop does not change.

use std::os::fd::AsFd;

use log::{debug, info, warn};
use nix::errno::Errno;

use crate::checks::{Channel, Checks};
use crate::control::{self, listener::Control, listener::OpenError};
use crate::event_loop::{self, Events, Interest, Poller, Source, SourceId, Token};
use crate::events::{Action, CheckFailure, CheckId, Event, Milestone, Purpose};
use crate::output::Output;
use crate::plan::Plan;
use crate::pod::graveyard::Graveyard;
use crate::pod::shared_pid::OtherContainers;
use crate::reaper::{self, Reaper};
use crate::signals::SignalInbox;
use crate::signo::{SIGCONT, SIGKILL, Signo};
use crate::spawn::{Announce, Launcher};

const SIGNALS: SourceId = SourceId(1);
const CHILDREN: SourceId = SourceId(2);
const CHECKS: SourceId = SourceId(3);
const GRAVEYARD: SourceId = SourceId(4);
const OTHER_CONTAINERS: SourceId = SourceId(5);
const OUTPUT: SourceId = SourceId(6);
const CONTROL: SourceId = SourceId(7);

/// The sources of one run, and what carries its actions out.
pub struct Os<'p> {
    plan: &'p Plan,
    launcher: Launcher,
    signals: SignalInbox,
    children: Reaper,
    checks: Checks,
    graveyard: Option<Graveyard>,
    others: OtherContainers,
    output: Output,
    control: Option<Control>,
    /// The process groups of the processes started (each leads its own), for a sweep
    /// without /proc; the newest [`MAX_GROUPS`], in room taken once at the start, so
    /// that a crash loop does not grow it.
    groups: std::collections::VecDeque<i32>,
    /// The proofs that exit statuses were sent to other containers' exeunts, held open
    /// until exeunt exits (see [`crate::pod::peer`]).
    proofs: Vec<std::os::fd::OwnedFd>,
    /// The runtime's `NOTIFY_SOCKET`, when exeunt was given one.
    runtime: Option<crate::notify::Runtime>,
}

/// Process groups remembered for a sweep without /proc: every process of a plan of
/// that size, and the latest restarts of the others.
const MAX_GROUPS: usize = 256;

impl<'p> Os<'p> {
    /// Gathers the sources and watches the descriptors they have from the start.
    pub fn new(
        plan: &'p Plan,
        launcher: Launcher,
        signals: SignalInbox,
        children: Reaper,
        graveyard: Option<Graveyard>,
        poller: &Poller,
    ) -> Result<Os<'p>, Errno> {
        poller.watch(signals.as_fd(), Token { source: SIGNALS, key: 0 }, Interest::Readable)?;
        poller.watch(children.as_fd(), Token { source: CHILDREN, key: 0 }, Interest::Readable)?;
        let mut graveyard = graveyard;
        if let Some(graveyard) = &mut graveyard {
            graveyard.watch_on(poller, GRAVEYARD)?;
        }
        let (checks, others) = (Checks::new(CHECKS), OtherContainers::new(OTHER_CONTAINERS));
        let output = Output::new(plan, OUTPUT);
        let control = listen(plan, poller);
        let groups = std::collections::VecDeque::with_capacity(MAX_GROUPS.max(plan.processes.len()));
        let proofs = Vec::new();
        let runtime = plan.notify_socket.as_deref().and_then(|value| {
            crate::notify::Runtime::open(value)
                .map_err(|e| log::warn!("cannot tell the runtime on NOTIFY_SOCKET {value:?}: {e}"))
                .ok()
        });
        Ok(Os {
            plan,
            launcher,
            signals,
            children,
            checks,
            graveyard,
            others,
            output,
            control,
            groups,
            proofs,
            runtime,
        })
    }

    /// What the pod says before anything starts: the deps' tombstones as they are.
    pub fn known(&mut self) -> Vec<Event> {
        self.graveyard.as_mut().map(Graveyard::scan).unwrap_or_default()
    }

    /// Carries, once the run is over, what the processes' pipes still hold, giving the
    /// streams until `until` to take it.
    pub fn finish(&mut self, until: std::time::Instant) {
        self.output.finish(until);
    }

    /// Removes what exeunt made in the file system: the control socket's path.
    pub fn leave(&mut self) {
        self.control = None;
    }

    /// The pipes for the output of the process at `index`, when exeunt carries it. When
    /// they cannot be had, the process writes to exeunt's stdout and stderr itself.
    fn carried_output(
        &mut self,
        index: usize,
        poller: &Poller,
    ) -> Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
        self.output.pipes_for(index, poller).unwrap_or_else(|e| {
            let name = &self.plan.processes[index].name;
            warn!(subject = name.as_str(); "cannot open pipes for the output of {name} ({e}): it writes to exeunt's stdout and stderr itself");
            None
        })
    }

    /// Collects every dead child; a check's command becomes the check's outcome.
    fn reap(&mut self, events: &mut Events, poller: &Poller) {
        let from = events.len();
        self.children.collect(events);
        self.checks.claim(events, from);
        self.add_what_failed_probes_said(events, from, poller);
    }

    /// A probe command that failed takes the end of what it wrote into its failure,
    /// for the events from `from` on.
    fn add_what_failed_probes_said(&mut self, events: &mut Events, from: usize, poller: &Poller) {
        for event in events.range_mut(from.min(events.len())..) {
            let Event::CheckDone { id, result: Err(failure @ CheckFailure::Exited(_)) } = event else { continue };
            let CheckFailure::Exited(status) = *failure else { continue };
            if id.purpose == Purpose::Stop {
                continue;
            }
            let said = self.output.check_tail(id.index, poller);
            if !said.is_empty() {
                *failure = CheckFailure::ExitedSaying(status, said);
            }
        }
    }
}

impl event_loop::World for Os<'_> {
    fn on_ready(&mut self, token: Token, poller: &Poller, events: &mut Events) {
        let from = events.len();
        let source: Option<&mut dyn Source> = match token.source {
            SIGNALS => Some(&mut self.signals),
            CHILDREN => Some(&mut self.children),
            CHECKS => Some(&mut self.checks),
            GRAVEYARD => self.graveyard.as_mut().map(|g| g as &mut dyn Source),
            OTHER_CONTAINERS => Some(&mut self.others),
            OUTPUT => Some(&mut self.output),
            CONTROL => self.control.as_mut().map(|c| c as &mut dyn Source),
            _ => None,
        };
        match source {
            Some(source) => source.on_ready(token.key, poller, events),
            None => debug!("readiness for unknown source {}", token.source.0),
        }
        // A child that exited may have been a check's command.
        self.checks.claim(events, from);
        self.add_what_failed_probes_said(events, from, poller);
    }

    fn carry_out(&mut self, action: Action, poller: &Poller, events: &mut Events) {
        match action {
            Action::Exit(code) => {
                if let Some(graveyard) = &mut self.graveyard {
                    graveyard.record(Milestone::Died(code), events);
                }
                if let Some(runtime) = &self.runtime {
                    runtime.tell(&Milestone::Died(code));
                }
            }
            Action::Spawn(index) => {
                let event = self.spawn(index, poller);
                events.push_back(event);
            }
            Action::Signal { pid, signo, group } => self.send(pid, signo, group),
            Action::SignalGroup { pgid, signo } => {
                // SAFETY: kill takes plain integers; a group that is gone is ESRCH.
                if unsafe { libc::kill(-pgid, signo.0) } != 0 {
                    debug!("sending {signo} to process group {pgid}: {}", std::io::Error::last_os_error());
                }
            }
            Action::SignalLeftovers { groups } => {
                events.push_back(Event::Leftovers { members: reaper::signal_groups(&groups) });
            }
            Action::ClearGroup { index, pgid, signo } => {
                events.push_back(Event::GroupLeft { index, members: reaper::signal_groups(&[(pgid, signo)]) });
            }
            Action::SuspendSelf => {
                // SAFETY: kill takes plain integers. SIGSTOP stops exeunt here, between
                // two actions; SIGCONT lets it go on from this line.
                unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
            }
            Action::Stop { pid, signo, group } => {
                self.send(pid, signo, group);
                self.resume_if_stopped(pid, group);
            }
            Action::SignalWithStatus { pid, signo, status } => self.send_with_status(pid, signo, status),
            Action::Record(milestone) => {
                if let Some(runtime) = &self.runtime {
                    runtime.tell(&milestone);
                }
                if let Some(graveyard) = &mut self.graveyard {
                    graveyard.record(milestone, events);
                }
            }
            Action::SignalDescendants(signo) => {
                if !reaper::signal_descendants(signo, self.groups.make_contiguous()) {
                    events.push_back(Event::LeftoversUnseen);
                }
                // What has already died is collected now, and the supervisor learns
                // whether anything is left at all.
                self.reap(events, poller);
            }
            Action::StartCheck(id) => self.start_check(id, poller, events),
            Action::CancelCheck(id) => self.checks.cancel(id, poller),
            Action::Answer { client, reply } => {
                if let Some(control) = &mut self.control {
                    control.answer(client, &control::status::render(reply), poller);
                }
            }
            Action::Reap => self.reap(events, poller),
        }
    }

    fn before_wait(&mut self, poller: &Poller) {
        self.output.settle(poller);
    }
}

/// Opens the control socket where the plan says. A run goes on without one: being
/// asked is a convenience, and supervising is the job.
fn listen(plan: &Plan, poller: &Poller) -> Option<Control> {
    let opened = control::address(plan.control_socket.as_ref())
        .map_err(OpenError::Failed)
        .and_then(|address| address.map(|a| Control::open(&a, CONTROL, poller)).transpose());
    match opened {
        Ok(control) => control,
        Err(OpenError::Taken(line)) => {
            info!("{line}");
            None
        }
        Err(OpenError::Failed(line)) => {
            warn!("{line}: exeunt cannot be asked how it stands");
            None
        }
    }
}

impl Os<'_> {
    /// Starts process `index` of the plan, or for a sidecar of another container,
    /// starts looking for it.
    fn spawn(&mut self, index: usize, poller: &Poller) -> Event {
        let plan = self.plan;
        let spec = &plan.processes[index];
        if let Some(matcher) = &spec.matcher {
            return self.others.adopt(index, &spec.name, matcher, poller);
        }
        let output = self.carried_output(index, poller);
        // How it announces its readiness: exeunt's end, and the process's.
        let (mut ours, theirs) = match announcing(spec) {
            Ok(Some((ours, theirs))) => (Some(ours), Some(theirs)),
            Ok(None) => (None, None),
            Err(e) => {
                warn!(subject = spec.name.as_str(); "cannot make the notification channel of {}: {e}", spec.name);
                (None, None)
            }
        };
        let spawned = self.launcher.spawn(plan, index, output, theirs);
        if let (Ok(started), Some(mut channel)) = (&spawned, ours.take()) {
            if let Channel::Socket { pid, .. } = &mut channel {
                *pid = *started;
            }
            self.checks.watch_notice(index, channel, poller);
        }
        match spawned {
            Ok(pid) => {
                if self.groups.len() == self.groups.capacity() {
                    self.groups.pop_front();
                }
                self.groups.push_back(pid);
                Event::Spawned { index, pid }
            }
            Err(e) => Event::SpawnFailed { index, code: e.code(), reason: e.to_string() },
        }
    }

    /// Sends another container's exeunt a stop signal that carries an exit status,
    /// with the proof that it comes from this exeunt.
    fn send_with_status(&mut self, pid: i32, signo: Signo, status: i32) {
        // The proof first: the receiver looks for it as soon as the signal arrives.
        match crate::pod::peer::vouch(pid, status) {
            Ok(proof) => self.proofs.push(proof),
            Err(e) => warn!("cannot vouch for the exit status sent to pid {pid}: {e}"),
        }
        match self.others.signal(pid, signo, Some(status)) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                debug!("queueing {signo} with a status to pid {pid}: {e}");
                self.send(pid, signo, false);
            }
            None => debug!("pid {pid} is no process of another container that exeunt watches"),
        }
        self.resume_if_stopped(pid, false);
    }

    /// Starts a readiness probe or a stop hook; one whose outcome is known at once (a
    /// file) is an event now.
    fn start_check(&mut self, id: CheckId, poller: &Poller, events: &mut Events) {
        let spec = &self.plan.processes[id.index];
        let check = match id.purpose {
            Purpose::Ready => spec.ready.as_ref().map(|r| &r.probe),
            Purpose::Stop => spec.stop_hook.as_ref(),
            Purpose::Live => spec.live.as_ref().map(|l| &l.probe),
        };
        let Some(check) = check else { return };
        let (plan, launcher, output) = (self.plan, &self.launcher, &mut self.output);
        let mut run = |argv: &[std::ffi::OsString]| {
            // Its lines go where the process's own go, tagged as a check's.
            let pipes = output.pipes_for_check(id.index, poller).unwrap_or_else(|e| {
                debug!("cannot open pipes for a check of {}: {e}", plan.processes[id.index].name);
                None
            });
            launcher.spawn_check(plan, id.index, argv, pipes).map_err(|e| e.to_string())
        };
        if let Some(result) = self.checks.start(id, check, poller, &mut run) {
            events.push_back(Event::CheckDone { id, result });
        }
    }

    /// Sends a signal to a process, or to its process group. A process of another
    /// container gets it through its pidfd, and only itself. The process itself gets it
    /// too when the group is gone, and always for SIGKILL: it may have moved itself to
    /// another group.
    fn send(&self, pid: i32, signo: Signo, group: bool) {
        if let Some(sent) = self.others.signal(pid, signo, None) {
            if let Err(e) = sent {
                debug!("sending {signo} to pid {pid} through its pidfd: {e}");
            }
            return;
        }
        // SAFETY: kill takes plain integers.
        let group_sent = group && unsafe { libc::kill(-pid, signo.0) } == 0;
        if (!group_sent || signo == SIGKILL) && unsafe { libc::kill(pid, signo.0) } != 0 {
            debug!("sending {signo} to pid {pid}: {}", std::io::Error::last_os_error());
        }
    }

    /// SIGCONT to a process that is stopped (state T), so that it acts on the stop signal
    /// just sent; a process that runs is not sent a signal nobody asked for.
    fn resume_if_stopped(&self, pid: i32, group: bool) {
        if reaper::is_stopped(pid) {
            self.send(pid, SIGCONT, group);
        }
    }
}

/// The two ends of the channel the process at `spec` announces its readiness on, when
/// it does: exeunt's (for a socket, with its pid still to fill in) and the process's.
fn announcing(spec: &crate::plan::ProcessSpec) -> std::io::Result<Option<(Channel, Announce)>> {
    match spec.ready.as_ref().map(|r| &r.probe) {
        Some(crate::plan::Check::Fd(fd)) => {
            // The read end exeunt's, not blocking; both close on exec (the child gets
            // the write end at its number by dup2).
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            nix::fcntl::fcntl(&read, nix::fcntl::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
            Ok(Some((Channel::Pipe { fd: *fd, pipe: read }, Announce::Fd { pipe: write, fd: *fd })))
        }
        Some(crate::plan::Check::Notify) => {
            let (socket, name) = crate::notify::Socket::open()?;
            Ok(Some((Channel::Socket { socket, pid: 0 }, Announce::Socket(name))))
        }
        _ => Ok(None),
    }
}
