//! Socket activation: listening sockets that systemd or podman passed to exeunt
//! (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`; descriptors from 3 on) go on to the
//! first primary alone, with `LISTEN_PID` set to the primary's own pid, which the
//! protocol asks of whoever takes them. Behind an init the primary would otherwise read
//! the init's pid there and leave its sockets alone (podman passes `LISTEN_PID=1`).
//!
//! The primary's pid is known only after the fork, and exec must see it in the
//! environment: so the primary is exec'd from an environment built before the fork,
//! whose `LISTEN_PID` digits are written in the child, with no allocation.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The first descriptor passed, as the protocol fixes it.
pub const FIRST_FD: i32 = 3;

/// The variables of the protocol, which no other process gets.
pub const VARIABLES: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// Room for a pid's digits in `LISTEN_PID=`.
const PID_DIGITS: usize = 10;

/// What the runtime passed to exeunt: how many descriptors, and their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub count: i32,
    pub names: Option<OsString>,
}

impl Activation {
    /// The activation `env` describes, when it is for exeunt (`LISTEN_PID` is exeunt's
    /// pid, `me`); None when there is none, or it is another process's.
    pub fn from_env(env: &dyn Fn(&str) -> Option<OsString>, me: u32) -> Option<Activation> {
        let number = |name: &str| env(name)?.to_str()?.parse::<u32>().ok();
        if number("LISTEN_PID")? != me {
            return None;
        }
        // A count past what a process can hold is no activation.
        let count = i32::try_from(number("LISTEN_FDS")?).ok().filter(|n| (1..=65_536).contains(n))?;
        Some(Activation { count, names: env("LISTEN_FDNAMES") })
    }

    /// Marks the passed descriptors close-on-exec, so that no process but the one
    /// [`Activation::hand_to`] prepares inherits them. Returns those that are not open.
    pub fn keep_from_children(&self) -> Vec<i32> {
        let mut missing = Vec::new();
        for fd in FIRST_FD..FIRST_FD + self.count {
            // SAFETY: F_SETFD on a descriptor number touches no memory.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
                missing.push(fd);
            }
        }
        missing
    }

    /// Makes `command` the one that takes the sockets: they stay open across its exec,
    /// and it is exec'd with the protocol's variables, `LISTEN_PID` its own pid.
    pub fn hand_to(&self, command: &mut Command) -> std::io::Result<()> {
        let count = self.count.to_string();
        let mut extra: Vec<(&OsStr, &OsStr)> = vec![(OsStr::new("LISTEN_FDS"), OsStr::new(&count))];
        if let Some(names) = &self.names {
            extra.push((OsStr::new("LISTEN_FDNAMES"), names));
        }
        let exec = Exec::new(command, &extra)?;
        let (first, count) = (FIRST_FD, self.count);
        // SAFETY: between fork and exec only fcntl, getpid, writes into memory made
        // before the fork, and execvp.
        unsafe {
            command.pre_exec(move || {
                for fd in first..first + count {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                exec.run()
            });
        }
        Ok(())
    }
}

/// The program, arguments and whole environment of a command, laid out before the
/// fork, with room for `LISTEN_PID`'s digits.
struct Exec {
    program: CString,
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    _vars: Vec<CString>,
    envp: Vec<*const libc::c_char>,
    /// Where the digits of `LISTEN_PID=` go: a string of `vars`, its digits zeros now.
    pid_at: *mut u8,
}

// SAFETY: the pointers point into the strings the value owns, which never move (their
// heap buffers stay where they are when the value does), and they are read or written
// only in the forked child, which has one thread.
unsafe impl Send for Exec {}
unsafe impl Sync for Exec {}

impl Exec {
    fn new(command: &Command, extra: &[(&OsStr, &OsStr)]) -> std::io::Result<Exec> {
        let nul =
            |bytes: &[u8]| CString::new(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e));
        let program = nul(command.get_program().as_bytes())?;
        let args: Vec<CString> = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| nul(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        // The environment std would give it: exeunt's, with the command's changes.
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        for (key, value) in command.get_envs() {
            env.retain(|(k, _)| k != key);
            if let Some(value) = value {
                env.push((key.to_owned(), value.to_owned()));
            }
        }
        env.retain(|(k, _)| !VARIABLES.iter().any(|v| k == v));
        let mut vars: Vec<CString> = Vec::with_capacity(env.len() + extra.len() + 1);
        for (key, value) in env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())).chain(extra.iter().copied()) {
            vars.push(nul(&[key.as_bytes(), b"=", value.as_bytes()].concat())?);
        }
        vars.push(nul(format!("LISTEN_PID={}", "0".repeat(PID_DIGITS)).as_bytes())?);
        let pid_at = vars.last().map_or(std::ptr::null_mut(), |v| v.as_ptr().cast_mut().cast::<u8>());
        // SAFETY: the string is "LISTEN_PID=" and PID_DIGITS digits.
        let pid_at = unsafe { pid_at.add("LISTEN_PID=".len()) };
        let argv = args.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
        let envp = vars.iter().map(|v| v.as_ptr()).chain([std::ptr::null()]).collect();
        Ok(Exec { program, _args: args, argv, _vars: vars, envp, pid_at })
    }

    /// In the child: writes its pid into `LISTEN_PID`, and execs. Returns only an error.
    fn run(&self) -> std::io::Result<()> {
        // SAFETY: getpid cannot fail; `pid_at` has PID_DIGITS bytes of the child's own
        // copy of the string, then its NUL, and a pid has at most PID_DIGITS digits.
        unsafe {
            let mut pid = libc::getpid() as u32;
            let mut digits = [0u8; PID_DIGITS];
            let mut length = 0;
            loop {
                digits[length] = b'0' + (pid % 10) as u8;
                length += 1;
                pid /= 10;
                if pid == 0 {
                    break;
                }
            }
            for i in 0..length {
                *self.pid_at.add(i) = digits[length - 1 - i];
            }
            *self.pid_at.add(length) = 0;
            // As std does: the program is looked up in the PATH of the new environment.
            unsafe extern "C" {
                static mut environ: *const *const libc::c_char;
            }
            environ = self.envp.as_ptr();
            libc::execvp(self.program.as_ptr(), self.argv.as_ptr());
        }
        Err(std::io::Error::last_os_error())
    }
}
