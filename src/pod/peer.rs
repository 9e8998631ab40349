//! The exit status one exeunt hands another in a pod with a shared process namespace:
//! the primary's container stops a sidecar container's exeunt with a stop signal that
//! carries the status to exit with.
//!
//! A signal proves nothing about its sender: `rt_sigqueueinfo` lets any process that may
//! signal exeunt choose the pid and uid the signalfd reports. So the signal only says
//! "look": before it sends, the sending exeunt opens a memfd whose name holds the
//! receiver's pid and the status ([`vouch`]), and keeps it open. Only a process itself
//! can put a descriptor into its own table. The receiver ([`check`]) takes the status
//! only when the named sender is another exeunt (the same program), in the same PID
//! namespace, the top process of its container, and holds that memfd. Otherwise the
//! signal is an ordinary one.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::reaper::{Namespace, is_top_process, namespace, own_namespace, real_uid};

/// The largest program compared byte by byte with exeunt's own (a debug build is tens
/// of MiB; the release build is under one).
const MAX_PROGRAM: u64 = 256 << 20;

/// Descriptors of the sender looked at, at most: an exeunt holds a few dozen.
const MAX_DESCRIPTORS: usize = 4096;

/// The name of the memfd that says "exeunt `receiver` is to exit with `status`".
fn proof_name(receiver: i32, status: i32) -> String {
    format!("exeunt-status:for={receiver}:{status}")
}

/// Opens the proof that this exeunt sends `status` to `receiver`. Keep it open until
/// exeunt exits: the receiver looks for it when the signal arrives.
pub fn vouch(receiver: i32, status: i32) -> std::io::Result<OwnedFd> {
    let name = CString::new(proof_name(receiver, status)).map_err(|_| std::io::Error::other("a NUL in the name"))?;
    // SAFETY: a valid NUL-terminated name; memfd_create returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `sender` (the pid the signal names, which may be forged) is the exeunt of
/// another container of the pod that sends this exeunt `status`. Else why not.
pub fn check(sender: i32, uid: u32, status: i32) -> Result<(), String> {
    let me = std::process::id() as i32;
    if sender <= 0 {
        return Err("the sender is not in this PID namespace".to_string());
    }
    if sender == me {
        return Err("it names exeunt itself as its sender".to_string());
    }
    if !is_top_process(sender) {
        return Err(format!("pid {sender} is not the top process of a container"));
    }
    if real_uid(sender) != Some(uid) {
        return Err(format!("pid {sender} does not run as uid {uid}"));
    }
    match (namespace(sender, Namespace::Pid), own_namespace(Namespace::Pid)) {
        (Ok(theirs), Ok(ours)) if theirs == ours => {}
        (Ok(_), Ok(_)) => return Err(format!("pid {sender} is in another PID namespace")),
        (Err(e), _) | (_, Err(e)) => return Err(format!("pid {sender}: cannot read its PID namespace: {e}")),
    }
    if !holds_proof(sender, &proof_name(me, status))? {
        return Err(format!("pid {sender} holds no proof that it sent exit status {status}"));
    }
    if !same_program(sender)? {
        return Err(format!("pid {sender} does not run exeunt"));
    }
    Ok(())
}

/// Whether one of `pid`'s descriptors is the memfd named `name`.
fn holds_proof(pid: i32, name: &str) -> Result<bool, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&dir).map_err(|e| format!("pid {pid}: cannot list its descriptors: {e}"))?;
    let wanted = format!("/memfd:{name} (deleted)");
    Ok(entries
        .take(MAX_DESCRIPTORS)
        .filter_map(Result::ok)
        .any(|entry| fs::read_link(entry.path()).is_ok_and(|link| link.as_os_str() == wanted.as_str())))
}

/// Whether `pid` runs the program exeunt runs: the same file, or a copy of it. Only a
/// sender that holds a proof gets this far, and a copy is compared a block at a time.
fn same_program(pid: i32) -> Result<bool, String> {
    let open = |path: String| fs::File::open(&path).map_err(|e| format!("{path}: {e}"));
    let (mut theirs, mut ours) = (open(format!("/proc/{pid}/exe"))?, open("/proc/self/exe".to_string())?);
    let (a, b) = match (theirs.metadata(), ours.metadata()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(format!("pid {pid}: cannot inspect its program")),
    };
    if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
        return Ok(true);
    }
    if a.len() != b.len() || a.len() > MAX_PROGRAM {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let got = theirs.read(&mut x).map_err(|e| format!("pid {pid}: cannot read its program: {e}"))?;
        if got == 0 {
            return Ok(true);
        }
        let mine = &mut y[..got];
        ours.read_exact(mine).map_err(|e| format!("cannot read exeunt's own program: {e}"))?;
        if x[..got] != *mine {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_found_in_the_senders_descriptors_and_only_with_its_status() {
        let me = std::process::id() as i32;
        let _proof = vouch(4242, 3).expect("memfd_create");
        assert_eq!(holds_proof(me, &proof_name(4242, 3)), Ok(true));
        assert_eq!(holds_proof(me, &proof_name(4242, 0)), Ok(false));
        assert_eq!(holds_proof(me, &proof_name(4243, 3)), Ok(false));
    }

    #[test]
    fn a_signal_naming_no_visible_sender_or_exeunt_itself_is_refused() {
        assert!(check(0, 0, 0).is_err());
        assert!(check(std::process::id() as i32, 0, 0).is_err());
    }
}
