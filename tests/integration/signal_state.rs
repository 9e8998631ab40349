//! Children start with the signal mask and ignored signals exeunt was started with,
//! not exeunt's own (it blocks nearly every signal to read them from a signalfd).

use crate::common;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{exeunt, require_pid_namespaces, start};

const UNSHARE: [&str; 5] = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// The SigBlk and SigIgn lines that `grep` prints about itself when started through
/// `prefix`, from a parent that blocked SIGUSR1 and SIGWINCH and ignored SIGUSR2,
/// SIGHUP, SIGPIPE and SIGCHLD.
fn signal_state(prefix: &[&str]) -> (String, String) {
    let mut command = Command::new(prefix[0]);
    command.args(&prefix[1..]).args(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    // SAFETY: only sigprocmask and signal, async-signal-safe, on stack values.
    unsafe {
        command.pre_exec(|| {
            let mut blocked: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut blocked);
            libc::sigaddset(&mut blocked, libc::SIGUSR1);
            libc::sigaddset(&mut blocked, libc::SIGWINCH);
            libc::sigprocmask(libc::SIG_SETMASK, &blocked, std::ptr::null_mut());
            for ignored in [libc::SIGUSR2, libc::SIGHUP, libc::SIGPIPE, libc::SIGCHLD] {
                libc::signal(ignored, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let outcome = start(command).finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let line = |key: &str| outcome.stdout.lines().find(|l| l.starts_with(key)).expect(key).to_string();
    (line("SigBlk"), line("SigIgn"))
}

fn has(mask_line: &str, signo: i32) -> bool {
    let hex = mask_line.split_whitespace().nth(1).expect("a mask");
    u64::from_str_radix(hex, 16).expect("hex") & (1 << (signo - 1)) != 0
}

#[test]
fn child_of_pid1_exeunt_sees_the_mask_and_ignored_signals_exeunt_was_started_with() {
    require_pid_namespaces();
    let through_exeunt = signal_state(&[&UNSHARE[..], &[exeunt(), "--"]].concat());
    let (blocked, ignored) = through_exeunt.clone();
    assert_eq!(through_exeunt, signal_state(&UNSHARE), "the same as without exeunt");
    assert!(has(&blocked, libc::SIGUSR1) && has(&blocked, libc::SIGWINCH), "{blocked}");
    assert!(!has(&blocked, libc::SIGTERM), "exeunt's own mask leaked: {blocked}");
    // unshare itself takes SIGCHLD back to default; the next test covers it.
    for signo in [libc::SIGUSR2, libc::SIGHUP, libc::SIGPIPE] {
        assert!(has(&ignored, signo), "signal {signo} should stay ignored: {ignored}");
    }
}

#[test]
fn ignored_sigpipe_and_sigchld_stay_ignored_for_the_child() {
    let through_exeunt = signal_state(&[exeunt(), "--"]);
    let (blocked, ignored) = through_exeunt.clone();
    assert_eq!(through_exeunt, signal_state(&["env"]), "the same as without exeunt");
    assert!(!has(&blocked, libc::SIGTERM), "exeunt's own mask leaked: {blocked}");
    for signo in [libc::SIGPIPE, libc::SIGCHLD, libc::SIGUSR2] {
        assert!(has(&ignored, signo), "signal {signo} should stay ignored: {ignored}");
    }
}
