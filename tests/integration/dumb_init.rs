//! exeunt started by the name dumb-init behaves as dumb-init documents: the child
//! leads a session of its own and signals reach its whole process group (unless
//! single-child mode or DUMB_INIT_SETSID=0), Ctrl-Z stops the child and then the init,
//! the init leaves its directory for `/` while the child keeps its own, and the exit
//! status is the child's.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{HANG, Running, SLEEP_FOREVER, SLEEP_FOREVER_NESTED, Scratch, pid1_program, start};

/// A `dumb-init` in the scratch directory: a symlink to exeunt, as an image would have.
fn dumb_init(scratch: &Scratch) -> PathBuf {
    let link = scratch.0.join("dumb-init");
    std::os::unix::fs::symlink(common::exeunt(), &link).expect("symlink dumb-init to exeunt");
    link
}

/// A child that says its pid and session, then starts a grandchild in its group which
/// answers SIGUSR1, and waits. The grandchild's TERM trap kills its `sleep` first: one
/// forked just as the final sweep's SIGTERM comes would swallow it (as in
/// `common::until_term`).
///
/// With `report` (a FIFO), the grandchild's answer also goes there, and the child
/// answers SIGUSR1 by waiting for it before it dies of SIGUSR1 all the same. As
/// dumb-init does, exeunt sends SIGTERM to the group and exits once the child is gone,
/// and as PID 1 its exit kills the rest: on a busy machine the grandchild could be
/// killed before its trap ran.
fn family_script(report: Option<&Path>) -> String {
    let (tell, child_trap) = match report {
        Some(fifo) => {
            let fifo = fifo.display();
            (format!("; echo > {fifo}"), format!("trap 'read line < {fifo}; trap - USR1; kill -USR1 $$' USR1; "))
        }
        None => (String::new(), String::new()),
    };
    format!(
        "{child_trap}echo child $$ session $(cut -d' ' -f6 /proc/$$/stat); \
    sh -c \"trap 'echo grandchild got USR1{tell}' USR1; trap 'kill -9 \\$! 2>/dev/null; exit 0' TERM; \
    echo grandchild ready; {SLEEP_FOREVER_NESTED}\" & wait"
    )
}

fn family(program: &Path, env: &[(&str, &str)], flags: &[&str], report: Option<&Path>) -> Running {
    let script = family_script(report);
    let args: Vec<&str> = flags.iter().copied().chain(["sh", "-c", &script]).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut running = pid1_program(
        program,
        |c| {
            c.envs(env);
        },
        &args,
    );
    running.expect_line("grandchild ready");
    running
}

#[test]
fn as_dumb_init_the_child_leads_a_session_and_a_signal_reaches_its_whole_group() {
    let scratch = Scratch::new("dumb-init-setsid");
    let report = scratch.0.join("report");
    nix::unistd::mkfifo(&report, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let mut running = family(&dumb_init(&scratch), &[], &[], Some(&report));
    running.signal(libc::SIGUSR1);
    running.expect_line("grandchild got USR1");
    let outcome = running.finish();
    let first = outcome.stdout.lines().next().unwrap_or_default().to_string();
    let words: Vec<&str> = first.split_whitespace().collect();
    assert!(matches!(words[..], ["child", pid, "session", sid] if pid == sid), "a session leader: {first}");
    assert_eq!(outcome.code, 128 + libc::SIGUSR1, "the child died of SIGUSR1: {outcome:?}");
}

#[test]
fn as_dumb_init_single_child_mode_and_dumb_init_setsid_0_signal_the_child_alone() {
    let scratch = Scratch::new("dumb-init-single");
    let program = dumb_init(&scratch);
    for (env, flags) in [(&[][..], &["-c"][..]), (&[("DUMB_INIT_SETSID", "0")][..], &[][..])] {
        let running = family(&program, env, flags, None);
        running.signal(libc::SIGUSR1);
        let outcome = running.finish();
        assert_eq!(outcome.code, 128 + libc::SIGUSR1, "{env:?} {flags:?}: {outcome:?}");
        assert!(!outcome.stdout.contains("grandchild got USR1"), "{env:?} {flags:?}: only the child: {outcome:?}");
        let first = outcome.stdout.lines().next().unwrap_or_default().to_string();
        let words: Vec<&str> = first.split_whitespace().collect();
        assert!(matches!(words[..], ["child", pid, "session", sid] if pid != sid), "no session of its own: {first}");
    }
}

#[test]
fn as_dumb_init_the_init_leaves_its_directory_for_the_root_while_the_child_keeps_its_own() {
    let scratch = Scratch::new("dumb-init-cwd");
    let program = dumb_init(&scratch);
    let dir = scratch.0.clone();
    let script = format!("pwd; echo ready; {SLEEP_FOREVER}");
    let mut running = pid1_program(
        &program,
        |c| {
            c.current_dir(&dir);
        },
        &["sh", "-c", &script],
    );
    running.expect_line("ready");
    // The child may say so before exeunt, back from starting it, has moved.
    let cwd = format!("/proc/{}/cwd", running.exeunt_pid());
    let deadline = Instant::now() + HANG;
    while std::fs::read_link(&cwd).expect("the init's cwd") != Path::new("/") {
        assert!(Instant::now() < deadline, "the init stayed in {:?}", std::fs::read_link(&cwd));
        std::thread::sleep(Duration::from_millis(1));
    }
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.stdout.lines().next(), Some(dir.to_str().expect("utf-8")), "{outcome:?}");
}

/// The state letter of /proc/PID/stat.
fn state(pid: i32) -> u8 {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).expect("the process is there");
    exeunt::reaper::parse_stat(&stat).expect("a stat line").state
}

fn wait_for_state(pid: i32, wanted: u8) {
    let deadline = Instant::now() + HANG;
    while state(pid) != wanted {
        assert!(Instant::now() < deadline, "pid {pid} never reached state {}", wanted as char);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn as_dumb_init_sigtstp_stops_the_child_and_then_the_init_and_sigcont_resumes_both() {
    // Not PID 1: a namespace's init cannot be stopped by a signal from inside it.
    let scratch = Scratch::new("dumb-init-tstp");
    let mut command = Command::new(dumb_init(&scratch));
    command.args(["sh", "-c", &format!("echo child $$; {SLEEP_FOREVER}")]);
    let mut running = start(command);
    let line = running.expect_line("child ");
    let child: i32 = line.trim_start_matches("child ").parse().expect("a pid");
    let init = running.exeunt_pid();
    running.signal(libc::SIGTSTP);
    wait_for_state(child, b'T');
    wait_for_state(init, b'T');
    running.signal(libc::SIGCONT);
    wait_for_state(init, b'S');
    wait_for_state(child, b'S');
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 128 + libc::SIGTERM, "{outcome:?}");
}

#[test]
fn as_dumb_init_the_exit_status_is_the_childs() {
    let scratch = Scratch::new("dumb-init-status");
    let program = dumb_init(&scratch);
    for (script, expected) in [("exit 0", 0), ("exit 1", 1), ("exit 255", 255), ("kill -SEGV $$", 139)] {
        let outcome = pid1_program(&program, |_| {}, &["sh", "-c", script]).finish();
        assert_eq!(outcome.code, expected, "{script}: {outcome:?}");
    }
    let outcome = pid1_program(&program, |_| {}, &[]).finish();
    assert_eq!(outcome.code, 1, "a bad command line, as dumb-init: {outcome:?}");
}

#[test]
fn as_dumb_init_leading_a_terminals_session_it_passes_on_no_sighup_when_it_gives_the_terminal_up() {
    // The child takes the terminal exeunt gives up; the kernel's SIGHUP and SIGCONT to
    // exeunt for that are not requests to pass on.
    let scratch = Scratch::new("dumb-init-tty");
    let helper = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/pty_session.py");
    let mut command = Command::new("python3");
    command.arg(helper).arg(dumb_init(&scratch)).args([
        "sh",
        "-c",
        "trap 'echo child got HUP' HUP; echo ready; read answer; echo child read $answer",
    ]);
    let outcome = start(command).finish();
    assert!(outcome.stdout.contains("child read go"), "the child kept its terminal: {outcome:?}");
    assert!(!outcome.stdout.contains("got HUP"), "{outcome:?}");
    assert!(outcome.stdout.contains("exit status 0"), "{outcome:?}");
}

#[test]
fn as_dumb_init_sigterm_reaches_a_grandchild_in_the_childs_group_while_the_child_lives_on() {
    // The child lives on after SIGTERM, so no final sweep has begun: the grandchild can
    // only have got it through the group.
    let scratch = Scratch::new("dumb-init-term-group");
    let script = format!(
        "trap 'echo child got TERM' TERM; trap 'exit 0' USR2; \
        sh -c \"trap 'echo grandchild got TERM; exit 0' TERM; echo grandchild ready; \
        {SLEEP_FOREVER_NESTED}\" & \
        {SLEEP_FOREVER}"
    );
    let mut running = pid1_program(&dumb_init(&scratch), |_| {}, &["sh", "-c", &script]);
    running.expect_line("grandchild ready");
    running.signal(libc::SIGTERM);
    running.expect_line("grandchild got TERM");
    running.expect_line("child got TERM");
    running.signal(libc::SIGUSR2);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
}

/// dumb-init itself (Debian's package), which the tests below hold exeunt to.
fn real_dumb_init() -> PathBuf {
    common::require("/usr/bin/dumb-init", "dumb-init");
    PathBuf::from("/usr/bin/dumb-init")
}

/// The signals a fault raises, as another process may send them with kill.
const FAULTS: [(i32, &str); 7] = [
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGSYS, "SYS"),
];

#[test]
fn as_dumb_init_the_fault_signals_another_process_sends_reach_the_child_as_dumb_init_passes_them() {
    let scratch = Scratch::new("dumb-init-faults");
    let traps: String = FAULTS.iter().map(|(_, name)| format!("trap 'echo got {name}' {name}; ")).collect();
    // No core files: the child's sleep dies of each signal.
    let script = format!("ulimit -c 0; {traps}echo ready; {SLEEP_FOREVER}");
    for program in [real_dumb_init(), dumb_init(&scratch)] {
        let mut command = Command::new(&program);
        command.args(["sh", "-c", &script]).current_dir(&scratch.0);
        let mut running = start(command);
        running.expect_line("ready");
        for (signo, name) in FAULTS {
            running.signal(signo);
            running.expect_line(&format!("got {name}"));
        }
        running.signal(libc::SIGTERM);
        let outcome = running.finish();
        assert_eq!(outcome.code, 143, "{}: {outcome:?}", program.display());
    }
}

#[test]
fn as_dumb_init_it_exits_when_its_child_does_and_without_setsid_leaves_the_background_alone() {
    let scratch = Scratch::new("dumb-init-exit");
    let pidfile = scratch.path("background");
    // The child leaves a process in the background (its group) and exits.
    let script = format!("sleep 30 >/dev/null 2>&1 & echo $! > {pidfile}; exit 0");
    for program in [real_dumb_init(), dumb_init(&scratch)] {
        for setsid in ["0", "1"] {
            let mut command = Command::new(&program);
            command.args(["sh", "-c", &script]).env("DUMB_INIT_SETSID", setsid);
            let outcome = start(command).finish();
            let what = format!("{} with DUMB_INIT_SETSID={setsid}: {outcome:?}", program.display());
            assert_eq!(outcome.code, 0, "{what}");
            assert!(outcome.elapsed < Duration::from_secs(10), "it waited for the background: {what}");
            let background: i32 = std::fs::read_to_string(&pidfile).expect("the pid").trim().parse().expect("a pid");
            if setsid == "0" {
                // Nothing is sent, and nothing adopted: the process runs on.
                assert!(matches!(state(background), b'R' | b'S' | b'D'), "{what}");
                // SAFETY: kill takes plain integers.
                unsafe { libc::kill(background, libc::SIGKILL) };
            } else {
                // The child's group got SIGTERM: gone, or a zombie for init to reap.
                let deadline = Instant::now() + HANG;
                let running = || {
                    let stat = std::fs::read(format!("/proc/{background}/stat")).unwrap_or_default();
                    exeunt::reaper::parse_stat(&stat).is_some_and(|stat| stat.state != b'Z')
                };
                while running() {
                    assert!(Instant::now() < deadline, "the background outlived SIGTERM: {what}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

#[test]
fn as_dumb_init_no_child_ever_sees_the_init_in_the_callers_directory() {
    // dumb-init itself moves to / after its fork, so that a child quick enough can see
    // it still in the caller's directory (1 run in 100 here). exeunt moves before it.
    let scratch = Scratch::new("dumb-init-cwd-race");
    let program = dumb_init(&scratch);
    common::require("/bin/busybox", "busybox-static");
    common::require_pid_namespaces();
    for run in 0..100 {
        // A static program that reads its parent's directory first thing: PID 1's.
        let output = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(&program)
            .args(["/bin/busybox", "sh", "-c", "readlink /proc/1/cwd; pwd"])
            .current_dir(&scratch.0)
            .output()
            .expect("run unshare");
        let out = String::from_utf8_lossy(&output.stdout);
        let expected = format!("/\n{}\n", scratch.0.display());
        assert_eq!(out, expected, "run {run}: the init's directory, then the child's");
    }
}
