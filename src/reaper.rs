//! Reaping and the final sweep: collects every child that exited, exeunt's own or an
//! adopted orphan, and signals whatever descendants are left at the end. SIGCHLD
//! arrives on a signalfd of the reaper's own, a source of the event loop.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd};

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::event_loop::{Events, Poller, Source};
use crate::events::{Event, ExitStatus, Member};
use crate::signo::Signo;

/// SIGCHLD on a descriptor of its own: readable when a child may have exited.
pub struct Reaper {
    sigchld: SignalFd,
}

impl Reaper {
    /// Opens the descriptor. SIGCHLD must be blocked already, as
    /// [`crate::signals::SignalInbox::open`] leaves it.
    pub fn open() -> Result<Reaper, Errno> {
        let mut sigchld = SigSet::empty();
        sigchld.add(Signal::SIGCHLD);
        Ok(Reaper { sigchld: SignalFd::with_flags(&sigchld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)? })
    }

    /// Collects every child that has exited: an `Exited` event each, then `Reaped`,
    /// which says whether any child is still alive.
    pub fn collect(&self, events: &mut Events) {
        let mut exits = Vec::new();
        let children_left = reap(&mut exits);
        events.extend(exits.into_iter().map(|(pid, status)| Event::Exited { pid, status }));
        events.push_back(Event::Reaped { children_left });
    }
}

impl Source for Reaper {
    fn on_ready(&mut self, _key: u32, _poller: &Poller, events: &mut Events) {
        // SIGCHLDs merge while pending, so one read takes what is there: it says "some
        // child changed", and waitpid tells which. One that comes after makes the
        // descriptor readable again, and the loop brings exeunt back here.
        let _ = self.sigchld.read_signal();
        self.collect(events);
    }
}

impl AsFd for Reaper {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sigchld.as_fd()
    }
}

/// Makes exeunt adopt the orphans of its descendants when it is not PID 1 (a container
/// of a pod with a shared process namespace, or a plain shell).
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps every child that has exited, appending `(pid, status)` to `exits`. Returns
/// whether any child is still alive afterwards.
///
/// libc's waitpid is used rather than nix's because nix cannot express a death by a
/// real-time signal, and a child once reaped must never be lost.
pub fn reap(exits: &mut Vec<(i32, ExitStatus)>) -> bool {
    loop {
        let mut raw = 0;
        // SAFETY: `raw` is a valid out-pointer for the duration of the call.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid > 0 {
            let status = if libc::WIFSIGNALED(raw) {
                ExitStatus::Signal(Signo(libc::WTERMSIG(raw)))
            } else {
                ExitStatus::Code(libc::WEXITSTATUS(raw))
            };
            exits.push((pid, status));
            continue;
        }
        if pid == 0 {
            return true;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return false,
            _ => {
                warn!("waitpid failed: {}", std::io::Error::last_os_error());
                return true;
            }
        }
    }
}

/// Sends `signo` to every descendant of exeunt. False when they cannot be seen (not
/// PID 1, and no /proc to walk): then `groups`, the process groups of the processes
/// exeunt started, are signalled instead, and whatever left them is missed.
pub fn signal_descendants(signo: Signo, groups: &[i32]) -> bool {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    if me == 1 {
        // As PID 1, kill(-1) reaches every process of the namespace but exeunt itself.
        // SAFETY: kill takes plain integers.
        unsafe { libc::kill(-1, signo.0) };
        return true;
    }
    let Some(targets) = descendants(me) else {
        for &pgid in groups {
            // SAFETY: kill takes plain integers; a group that is gone is ESRCH.
            unsafe { libc::kill(-pgid, signo.0) };
        }
        return false;
    };
    for &pid in &targets {
        // SAFETY: kill takes plain integers; a pid that exited since the scan is harmless
        // because it is still our descendant's (unreaped) or gone (ESRCH).
        unsafe { libc::kill(pid, signo.0) };
    }
    debug!("sent {signo} to {} leftover descendants", targets.len());
    true
}

/// The pids /proc lists; None when /proc cannot be read, or is not a procfs (an empty
/// directory lists no process, and would say that none is left).
pub fn pids() -> Option<Vec<i32>> {
    fs::symlink_metadata("/proc/self").ok()?;
    let entries = fs::read_dir("/proc").ok()?;
    Some(entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok()).collect())
}

/// Every process below `root`, found through the parent links in /proc; None when
/// /proc cannot be read.
pub fn descendants(root: i32) -> Option<Vec<i32>> {
    let links: Vec<(i32, i32)> =
        pids()?.into_iter().filter_map(|pid| Some((pid, parse_stat(&read_proc(pid, "stat")?)?.ppid))).collect();
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(links.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        next += 1;
    }
    found.remove(0);
    Some(found)
}

/// Sends each process group its signal, where the group has live members, and says
/// who the members were: the leftovers of the primaries that led the groups.
pub fn signal_groups(groups: &[(i32, Signo)]) -> Vec<Member> {
    // Most primaries leave nothing behind: a group without a member costs one kill(2),
    // where listing /proc costs a read of every process's stat.
    let groups: Vec<(i32, Signo)> = groups.iter().copied().filter(|&(pgid, _)| has_members(pgid)).collect();
    if groups.is_empty() {
        return Vec::new();
    }
    let in_groups = |pgids: &[i32]| -> Option<Vec<Member>> {
        let mut members = Vec::new();
        for pid in pids()? {
            let Some(stat) = read_proc(pid, "stat") else { continue };
            let Some(found) = parse_stat(&stat).filter(|s| s.state != b'Z') else { continue };
            if pgids.contains(&found.pgrp) {
                members.push(Member { pid, name: command_name(&stat) });
            }
        }
        Some(members)
    };
    // Listed before they are signalled: a signal that ends them at once would leave
    // them out of the list, and out of the count said.
    let pgids: Vec<i32> = groups.iter().map(|&(pgid, _)| pgid).collect();
    let mut members = in_groups(&pgids).unwrap_or_default();
    for &(pgid, signo) in &groups {
        // SAFETY: kill takes plain integers; a group that emptied since is ESRCH.
        unsafe { libc::kill(-pgid, signo.0) };
    }
    // Who joined a group while it was listed was signalled too, and is waited for.
    if !members.is_empty()
        && let Some(late) = in_groups(&pgids)
    {
        for member in late {
            if !members.iter().any(|m| m.pid == member.pid) {
                members.push(member);
            }
        }
    }
    members
}

/// Whether process group `pgid` has a member (a zombie not yet reaped counts).
fn has_members(pgid: i32) -> bool {
    // SAFETY: kill with signal 0 checks for the group's existence and sends nothing.
    let found = unsafe { libc::kill(-pgid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The command name between the parentheses of a /proc/PID/stat line.
fn command_name(stat: &[u8]) -> String {
    let open = stat.iter().position(|&b| b == b'(').map_or(0, |i| i + 1);
    let close = stat.iter().rposition(|&b| b == b')').unwrap_or(stat.len()).max(open);
    String::from_utf8_lossy(&stat[open..close]).into_owned()
}

/// How much of a /proc file is read: more is never needed, whatever the process did
/// to its command line.
const MAX_PROC_READ: u64 = 4096;

/// The first [`MAX_PROC_READ`] bytes of /proc/PID/FILE.
///
/// Read with bare system calls: this runs for every process on the way to exeunt's
/// exit (each leftover, each stopped sidecar), where std's File adds a stat call and a
/// read that finds the end. /proc hands a small file over whole in the first read when
/// the buffer has room for it, so a read that leaves room is the end.
pub fn read_proc(pid: i32, file: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/{file}")).ok()?;
    // SAFETY: path is a NUL-terminated string; a non-negative result is a descriptor
    // that this function owns and closes below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // A stat line fits in the first kilobyte; a larger buffer would cost the allocator
    // a mapping of its own.
    let mut bytes = Vec::<u8>::with_capacity(1024);
    let whole = loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve_exact(MAX_PROC_READ as usize - bytes.len());
        }
        let room = (MAX_PROC_READ as usize).min(bytes.capacity()) - bytes.len();
        // SAFETY: the read goes into the vector's spare capacity, at most `room` bytes,
        // which its capacity holds.
        let n = unsafe { libc::read(fd, bytes.as_mut_ptr().add(bytes.len()).cast(), room) };
        if n < 0 {
            break false;
        }
        // SAFETY: read initialized these n bytes.
        unsafe { bytes.set_len(bytes.len() + n as usize) };
        if (n as usize) < room || bytes.len() == MAX_PROC_READ as usize {
            break true;
        }
    };
    // SAFETY: fd is open and owned here.
    unsafe { libc::close(fd) };
    whole.then_some(bytes)
}

/// Whether `pid` is the top process of a container: its parent is outside this PID
/// namespace (so /proc shows it as 0), and it has not exited (a zombie).
pub fn is_top_process(pid: i32) -> bool {
    read_proc(pid, "stat").and_then(|stat| parse_stat(&stat)).is_some_and(|stat| stat.ppid == 0 && stat.state != b'Z')
}

/// The real uid on the `Uid:` line of /proc/PID/status.
pub fn real_uid(pid: i32) -> Option<u32> {
    let status = read_proc(pid, "status")?;
    let line = status.split(|&b| b == b'\n').find_map(|l| l.strip_prefix(b"Uid:"))?;
    std::str::from_utf8(line).ok()?.split_whitespace().next()?.parse().ok()
}

/// A kind of namespace that exeunt compares between processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Mount,
    Pid,
}

impl Namespace {
    /// Its name under /proc/PID/ns.
    fn name(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            Namespace::Pid => "pid",
        }
    }

    /// The pidfd request that hands it out (Linux 6.11): PIDFD_GET_MNT_NAMESPACE and
    /// PIDFD_GET_PID_NAMESPACE, `_IO(0xFF, 3)` and `_IO(0xFF, 5)`.
    fn pidfd_request(self) -> u32 {
        match self {
            Namespace::Mount => 0xFF03,
            Namespace::Pid => 0xFF05,
        }
    }
}

/// The inode of process `pid`'s namespace of `kind`, as /proc/PID/ns names it: two
/// processes share the namespace when the inodes are equal.
pub fn namespace(pid: i32, kind: Namespace) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(format!("/proc/{pid}/ns/{}", kind.name())).map(|m| m.ino())
}

/// The inode of exeunt's own namespace of `kind`. The kernel is asked through a pidfd
/// where it can be: a lookup under /proc/self leaves entries that the kernel clears when
/// exeunt's zombie is reaped (measured: about 6 µs more for the runtime to reap it).
/// Older kernels are asked through /proc/self/ns.
pub fn own_namespace(kind: Namespace) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    own_namespace_from_pidfd(kind).or_else(|_| fs::metadata(format!("/proc/self/ns/{}", kind.name())).map(|m| m.ino()))
}

fn own_namespace_from_pidfd(kind: Namespace) -> std::io::Result<u64> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let owned = |fd: libc::c_long| match fd {
        // SAFETY: a descriptor the kernel has just returned, which nothing else owns.
        0.. => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        _ => Err(std::io::Error::last_os_error()),
    };
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let pidfd = owned(unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) })?;
    // SAFETY: the request takes no argument, and returns a new descriptor or -1.
    let ns = owned(unsafe { libc::ioctl(pidfd.as_raw_fd(), kind.pidfd_request() as _, 0) }.into())?;
    // SAFETY: fstat writes into the zeroed stat it is given.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    match unsafe { libc::fstat(ns.as_raw_fd(), &mut stat) } {
        0 => Ok(stat.st_ino),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Whether the process is stopped by a signal.
///
/// For a child of exeunt's the kernel says it in one call: exeunt never waits with
/// WUNTRACED, so a child's stop is never taken, and WNOWAIT leaves a stop or an exit
/// for later too (WEXITED, so that a child that died meanwhile is still found). For
/// another process (a sidecar of another container), /proc/PID/stat says it.
pub fn is_stopped(pid: i32) -> bool {
    // SAFETY: siginfo_t is plain data, valid when zeroed.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WSTOPPED | libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: waitid writes one siginfo_t into `info`, and with WNOWAIT reaps nothing.
    if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } == 0 {
        // SAFETY: a successful waitid filled si_pid, or left it 0 when nothing is to tell.
        return unsafe { info.si_pid() } == pid && info.si_code == libc::CLD_STOPPED;
    }
    read_proc(pid, "stat").and_then(|stat| parse_stat(&stat)).is_some_and(|s| s.state == b'T')
}

/// What exeunt needs of a /proc/PID/stat line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The one-letter state: `R`, `S`, `Z` (a zombie), ...
    pub state: u8,
    /// The parent's pid; 0 when the parent is outside this PID namespace.
    pub ppid: i32,
    /// Its process group.
    pub pgrp: i32,
}

/// Reads the state and the parent pid from the text of /proc/PID/stat. The command
/// name in parentheses may itself hold spaces and parentheses, so the fields are
/// counted from the last ')'.
pub fn parse_stat(stat: &[u8]) -> Option<Stat> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat[close + 1..].split(|&b| b == b' ').filter(|f| !f.is_empty());
    let state = match fields.next()? {
        [state] => *state,
        _ => return None,
    };
    let mut number = || std::str::from_utf8(fields.next()?).ok()?.parse().ok();
    let ppid = number()?;
    let pgrp = number()?;
    Some(Stat { state, ppid, pgrp })
}

/// Whether the running kernel is Linux `major.minor` or later, for tests of what a
/// kernel gained.
#[cfg(test)]
pub fn kernel_is_at_least(major: u32, minor: u32) -> bool {
    let release = nix::sys::utsname::uname().expect("uname").release().to_string_lossy().into_owned();
    let mut numbers = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_asked_of_a_pidfd_are_those_proc_names() {
        use std::os::unix::fs::MetadataExt;
        let has_requests = kernel_is_at_least(6, 11);
        for kind in [Namespace::Mount, Namespace::Pid] {
            let proc = fs::metadata(format!("/proc/self/ns/{}", kind.name())).unwrap().ino();
            assert_eq!(own_namespace(kind).unwrap(), proc, "{kind:?}");
            match own_namespace_from_pidfd(kind) {
                Ok(inode) => assert_eq!(inode, proc, "{kind:?} from the pidfd"),
                Err(e) => assert!(!has_requests, "this kernel should hand out the {kind:?} namespace: {e}"),
            }
        }
    }

    #[test]
    fn state_and_parent_are_read_past_a_command_name_with_parentheses() {
        assert_eq!(parse_stat(b"42 (sh) S 7 40 42 0 -1"), Some(Stat { state: b'S', ppid: 7, pgrp: 40 }));
        assert_eq!(parse_stat(b"42 (a) b) (c) Z 9 1 1"), Some(Stat { state: b'Z', ppid: 9, pgrp: 1 }));
        assert_eq!(parse_stat(b"42 (x"), None);
        assert_eq!(parse_stat(b"42 (x) SS 1 1"), None);
        assert_eq!(parse_stat(b"42 (x) S 1"), None);
        assert_eq!(parse_stat(b""), None);
    }

    #[test]
    fn descendants_include_grandchildren() {
        use std::io::BufRead;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("sh prints its child's pid");
        let grandchild: i32 = line.trim().parse().expect("a pid");
        let found = descendants(std::process::id() as i32).expect("/proc");
        for pid in [grandchild, child.id() as i32] {
            // SAFETY: the test's own descendants.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        child.wait().ok();
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        assert!(found.contains(&grandchild), "{found:?}");
    }
}
