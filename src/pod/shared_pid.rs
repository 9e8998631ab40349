//! Sidecars of other containers in a pod with a shared process namespace: found in
//! /proc as their container's top process, watched through a pidfd (no polling), and
//! signalled through that pidfd, so that a pid reused meanwhile is never hit (same
//! user, or CAP_KILL).
//!
//! Any process of the pod can take a name. A match may also ask for the process's uid
//! and its cgroup; two processes that match are a warning and no choice, until one of
//! them is ruled out; and a process found is matched again once its pidfd is open.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use log::{debug, warn};

use crate::event_loop::{Events, Interest, Poller, Source, SourceId, Token};
use crate::events::{Event, ExitStatus};
use crate::plan::{MatchName, Matcher};
use crate::reaper::{is_top_process, pids, read_proc, real_uid};
use crate::signo::Signo;

/// The processes of other containers that sidecars name, each watched through a pidfd
/// (readable once the process has exited, whoever its parent is).
pub struct OtherContainers {
    source: SourceId,
    watched: Vec<(i32, OwnedFd)>,
    /// The candidates last warned about, per sidecar: the warning is not repeated at
    /// every search while they stay the same.
    ambiguous: Vec<(usize, Vec<i32>)>,
}

impl OtherContainers {
    /// Nothing watched yet; pidfds will be watched as `source`.
    pub fn new(source: SourceId) -> OtherContainers {
        OtherContainers { source, watched: Vec::new(), ambiguous: Vec::new() }
    }

    /// Looks for the process that the sidecar at `index` names, and watches it when
    /// exactly one is found: `Spawned` as if it were started, else `NotFound`.
    pub fn adopt(&mut self, index: usize, name: &str, matcher: &Matcher, poller: &Poller) -> Event {
        let found = find(matcher);
        let warned = self.ambiguous.iter().position(|(i, _)| *i == index);
        let pid = match found.as_slice() {
            [] => return Event::NotFound { index },
            [pid] => *pid,
            several => {
                if warned.is_none_or(|at| self.ambiguous[at].1 != several) {
                    let list: Vec<String> = several.iter().map(|&pid| describe(pid)).collect();
                    warn!(subject = name; "sidecar {name}: {} processes match {matcher}: {}; none is taken until only one does (match by uid or cgroup as well)", several.len(), list.join(", "));
                    self.ambiguous.retain(|(i, _)| *i != index);
                    self.ambiguous.push((index, several.to_vec()));
                }
                return Event::NotFound { index };
            }
        };
        let pidfd = match pidfd_open(pid) {
            Ok(pidfd) => pidfd,
            Err(e) => {
                debug!("pid {pid} matched {matcher} but cannot be watched: {e}");
                return Event::NotFound { index };
            }
        };
        // The pid may have been reused between the search and the pidfd: the process
        // the pidfd holds must match too.
        if !(is_top_process(pid) && matches(pid, matcher)) {
            debug!("pid {pid} no longer matches {matcher} once held");
            return Event::NotFound { index };
        }
        let token = Token { source: self.source, key: pid as u32 };
        if let Err(e) = poller.watch(pidfd.as_fd(), token, Interest::Readable) {
            warn!("cannot watch pid {pid}: {e}");
            return Event::NotFound { index };
        }
        self.ambiguous.retain(|(i, _)| *i != index);
        self.watched.push((pid, pidfd));
        Event::Spawned { index, pid }
    }

    /// Sends `signo` to `pid` through its pidfd, carrying an exit status when one is
    /// given. None when `pid` is not a process of another container that is watched;
    /// else whether it was sent.
    pub fn signal(&self, pid: i32, signo: Signo, carried: Option<i32>) -> Option<std::io::Result<()>> {
        let (_, pidfd) = self.watched.iter().find(|(p, _)| *p == pid)?;
        Some(pidfd_send_signal(pidfd, signo, carried))
    }
}

impl Source for OtherContainers {
    /// A watched process exited; how, only its own parent knows.
    fn on_ready(&mut self, key: u32, poller: &Poller, events: &mut Events) {
        let pid = key as i32;
        if let Some(position) = self.watched.iter().position(|(p, _)| *p == pid) {
            let (_, pidfd) = self.watched.swap_remove(position);
            poller.unwatch(pidfd.as_fd());
            events.push_back(Event::Exited { pid, status: ExitStatus::Unknown });
        }
    }
}

/// The top processes of other containers that `matcher` matches, lowest pid first: their
/// parent is outside this PID namespace (so /proc shows it as 0). PID 1 (the pod's pause
/// process) and exeunt itself are never matched.
pub fn find(matcher: &Matcher) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = pids().unwrap_or_default();
    pids.sort_unstable();
    pids.into_iter().filter(|&pid| pid != 1 && pid != me && is_top_process(pid) && matches(pid, matcher)).collect()
}

/// `pid 12 (uid 0)`, for a warning.
fn describe(pid: i32) -> String {
    match real_uid(pid) {
        Some(uid) => format!("pid {pid} (uid {uid})"),
        None => format!("pid {pid}"),
    }
}

/// Whether the process's comm, exe or first argument is the one asked for, and its uid
/// and cgroup are as asked.
pub fn matches(pid: i32, matcher: &Matcher) -> bool {
    let named = match &matcher.name {
        MatchName::Comm(comm) => {
            read_proc(pid, "comm").is_some_and(|c| c.strip_suffix(b"\n").unwrap_or(&c) == comm.as_bytes())
        }
        MatchName::Exe(exe) => fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|link| link == *exe),
        MatchName::Argv0(argv0) => {
            read_proc(pid, "cmdline").is_some_and(|line| line.split(|&b| b == 0).next() == Some(argv0.as_bytes()))
        }
    };
    named
        && matcher.uid.is_none_or(|uid| real_uid(pid) == Some(uid))
        && matcher.cgroup.as_ref().is_none_or(|wanted| {
            // Lines are `ID:CONTROLLERS:PATH`; the path is what names the container.
            read_proc(pid, "cgroup").is_some_and(|text| {
                String::from_utf8_lossy(&text)
                    .lines()
                    .any(|l| l.splitn(3, ':').nth(2).is_some_and(|p| p.contains(wanted.as_str())))
            })
        })
}

/// A pidfd for `pid`: readable once the process has exited, whoever its parent is.
fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The start of a `siginfo_t` for a queued signal, as Linux lays it out on 64-bit
/// machines, padded to the kernel's 128 bytes.
#[repr(C)]
struct QueuedInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    value: usize,
    _rest: [u8; 96],
}

/// Sends `signo` through `pidfd`; with `carried`, as a queued signal whose value carries
/// that exit status (see [`crate::signals::carry`]).
fn pidfd_send_signal(pidfd: &OwnedFd, signo: Signo, carried: Option<i32>) -> std::io::Result<()> {
    const _: () = assert!(std::mem::size_of::<QueuedInfo>() == 128);
    let info = carried.map(|status| QueuedInfo {
        signo: signo.0,
        errno: 0,
        code: libc::SI_QUEUE,
        _pad: 0,
        // SAFETY: getpid and getuid cannot fail.
        pid: unsafe { libc::getpid() },
        uid: unsafe { libc::getuid() },
        value: crate::signals::carry(status) as u32 as usize,
        _rest: [0; 96],
    });
    let info_ptr = info.as_ref().map_or(std::ptr::null(), |i| i as *const QueuedInfo);
    // SAFETY: a pidfd we own, and a siginfo of the kernel's size or null.
    let sent = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signo.0, info_ptr, 0) };
    if sent != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_matches_by_comm_exe_and_argv0() {
        let me = std::process::id() as i32;
        let comm = String::from_utf8(read_proc(me, "comm").expect("own comm")).expect("utf-8");
        let exe = fs::read_link("/proc/self/exe").expect("own exe");
        let argv0 = std::env::args().next().expect("argv0");
        let by = |name| Matcher { name, uid: None, cgroup: None };
        assert!(matches(me, &by(MatchName::Comm(comm.trim_end().to_string()))));
        assert!(matches(me, &by(MatchName::Exe(exe))));
        assert!(matches(me, &by(MatchName::Argv0(argv0))));
        assert!(!matches(me, &Matcher::comm("no-such-comm")));
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let own = Matcher { uid: Some(uid), ..Matcher::comm(comm.trim_end()) };
        assert!(matches(me, &own));
        assert!(!matches(me, &Matcher { uid: Some(uid + 1), ..own.clone() }));
        assert!(!matches(me, &Matcher { cgroup: Some("no-such-cgroup".into()), ..own }));
    }

    #[test]
    fn processes_with_a_parent_in_this_namespace_are_not_top_processes() {
        assert!(!is_top_process(std::process::id() as i32));
    }
}
