//! Sidecars of other containers in a pod with a shared process namespace: found in
//! /proc as their container's top process, watched through a pidfd (no polling), and
//! signalled like any other process (same user, or CAP_KILL).

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use log::{debug, warn};

use crate::event_loop::{Events, Interest, Poller, Source, SourceId, Token};
use crate::events::{Event, ExitStatus};
use crate::plan::Matcher;
use crate::reaper::{parse_stat, pids};

/// How much of a /proc file is read: more is never needed to match.
const MAX_PROC_READ: u64 = 4096;

/// The processes of other containers that sidecars name, each watched through a pidfd
/// (readable once the process has exited, whoever its parent is).
pub struct OtherContainers {
    source: SourceId,
    watched: Vec<(i32, OwnedFd)>,
}

impl OtherContainers {
    /// Nothing watched yet; pidfds will be watched as `source`.
    pub fn new(source: SourceId) -> OtherContainers {
        OtherContainers { source, watched: Vec::new() }
    }

    /// Looks for the process that the sidecar at `index` names, and watches it when
    /// found: `Spawned` as if it were started, else `NotFound`.
    pub fn adopt(&mut self, index: usize, matcher: &Matcher, poller: &Poller) -> Event {
        let Some(pid) = find(matcher) else { return Event::NotFound { index } };
        let pidfd = match pidfd_open(pid) {
            Ok(pidfd) => pidfd,
            Err(e) => {
                debug!("pid {pid} matched {matcher} but cannot be watched: {e}");
                return Event::NotFound { index };
            }
        };
        let token = Token { source: self.source, key: pid as u32 };
        if let Err(e) = poller.watch(pidfd.as_fd(), token, Interest::Readable) {
            warn!("cannot watch pid {pid}: {e}");
            return Event::NotFound { index };
        }
        self.watched.push((pid, pidfd));
        Event::Spawned { index, pid }
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

/// The top process of another container that `matcher` matches: its parent is outside
/// this PID namespace (so /proc shows its parent as 0). PID 1 (the pod's pause process)
/// and exeunt itself are never matched.
pub fn find(matcher: &Matcher) -> Option<i32> {
    let me = std::process::id() as i32;
    let mut pids = pids();
    pids.sort_unstable();
    pids.into_iter().find(|&pid| pid != 1 && pid != me && is_top_process(pid) && matches(pid, matcher))
}

fn read_proc(pid: i32, file: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(format!("/proc/{pid}/{file}")).ok()?.take(MAX_PROC_READ).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn is_top_process(pid: i32) -> bool {
    // A zombie has exited already.
    read_proc(pid, "stat").and_then(|stat| parse_stat(&stat)).is_some_and(|stat| stat.ppid == 0 && stat.state != b'Z')
}

/// Whether the process's comm, exe or first argument is the one asked for.
pub fn matches(pid: i32, matcher: &Matcher) -> bool {
    match matcher {
        Matcher::Comm(comm) => {
            read_proc(pid, "comm").is_some_and(|c| c.strip_suffix(b"\n").unwrap_or(&c) == comm.as_bytes())
        }
        Matcher::Exe(exe) => fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|link| link == *exe),
        Matcher::Argv0(argv0) => {
            read_proc(pid, "cmdline").is_some_and(|line| line.split(|&b| b == 0).next() == Some(argv0.as_bytes()))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_matches_by_comm_exe_and_argv0() {
        let me = std::process::id() as i32;
        let comm = String::from_utf8(read_proc(me, "comm").expect("own comm")).expect("utf-8");
        let exe = fs::read_link("/proc/self/exe").expect("own exe");
        let argv0 = std::env::args().next().expect("argv0");
        assert!(matches(me, &Matcher::Comm(comm.trim_end().to_string())));
        assert!(matches(me, &Matcher::Exe(exe)));
        assert!(matches(me, &Matcher::Argv0(argv0)));
        assert!(!matches(me, &Matcher::Comm("no-such-comm".into())));
    }

    #[test]
    fn processes_with_a_parent_in_this_namespace_are_not_top_processes() {
        assert!(!is_top_process(std::process::id() as i32));
    }
}
