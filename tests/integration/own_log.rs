//! exeunt's own log never holds supervision up: a stderr that nobody reads costs
//! dropped log lines, counted, and never a late signal or a missed exit.

use crate::common;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use common::{HANG, SLEEP_FOREVER, Scratch, children_of, count, exeunt, require_pid_namespaces};

/// Bytes waiting in a pipe, read through its read end.
fn waiting_in(pipe: &impl AsRawFd) -> usize {
    let mut waiting: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into the variable it is given.
    assert_eq!(unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut waiting) }, 0);
    waiting as usize
}

#[test]
fn a_full_stderr_delays_no_signal_and_the_dropped_lines_are_counted_once_it_drains() {
    require_pid_namespaces();
    let scratch = Scratch::new("full-stderr");
    let map = scratch.file(
        "map.toml",
        &format!(
            "[[process]]\nname = \"flood\"\nrole = \"sidecar\"\ncommand = [\"sh\", \"-c\", \"exec yes flooding-stderr >&2\"]\n\n\
         [[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"sh\", \"-c\", \
         \"trap '' USR1; trap 'kill -9 $! 2>/dev/null; echo job got TERM; exit 3' TERM; echo job started; \
         {SLEEP_FOREVER}\"]\n"
        ),
    );
    // -v: every forwarded signal is a log line, so that the log outgrows what may wait.
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .args([exeunt(), "-v", "-c", &map])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unshare");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, seen) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send((Instant::now(), line));
        }
    });
    let expect = |needle: &str| loop {
        let (at, line) = seen.recv_timeout(HANG).unwrap_or_else(|_| panic!("no stdout line {needle:?}"));
        if line.contains(needle) {
            return at;
        }
    };
    expect("job started");
    let unshare = child.id();
    let pid = *children_of(unshare as i32).first().expect("unshare has started exeunt");
    // The sidecar started first, but its shell may not have become `yes` yet.
    let is_yes = |p: &i32| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "yes");
    let deadline = Instant::now() + HANG;
    let flood = loop {
        if let Some(flood) = children_of(pid).into_iter().find(is_yes) {
            break flood;
        }
        assert!(Instant::now() < deadline, "the flooding sidecar never ran yes");
        std::thread::sleep(Duration::from_millis(5));
    };
    // Full: the sidecar waits in its write.
    let started = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{flood}/wchan")).unwrap_or_default().contains("pipe_write") {
        assert!(started.elapsed() < HANG, "the sidecar never filled stderr");
        std::thread::sleep(Duration::from_millis(5));
    }
    let full = waiting_in(&stderr);
    for _ in 0..3000 {
        // SAFETY: kill takes plain integers.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        std::thread::sleep(Duration::from_micros(200));
    }
    let sent = Instant::now();
    // SAFETY: kill takes plain integers.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let latency = expect("job got TERM").saturating_duration_since(sent);
    println!("SIGTERM reached the primary {latency:?} after it was sent, with stderr full");
    assert!(latency < Duration::from_millis(100), "a full stderr held the SIGTERM up for {latency:?}");
    assert_eq!(waiting_in(&stderr), full, "stderr was still full when the signal went through");

    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let status = child.wait().expect("wait for unshare");
    let log = reader.join().expect("stderr reader");
    assert_eq!(status.code(), Some(3), "the primary's status, after the stop: {}", tail(&log));
    let notes: Vec<&str> = log.lines().filter(|l| l.contains("log lines dropped while stderr was full")).collect();
    println!("{notes:?}");
    // The sidecar's flood races exeunt for the drained pipe, so a line logged after
    // the first count may find the queue full again: a second gap, with its own count.
    assert!(!notes.is_empty(), "a count once stderr drained: {}", tail(&log));
    for note in &notes {
        let dropped: u64 = note.split_whitespace().nth(2).and_then(|n| n.parse().ok()).expect("a count");
        assert!(dropped > 0, "{note}");
    }
    // The oldest lines made room: the last ones, after the gaps, say how the run ended.
    let last_note = log.rfind("log lines dropped while stderr was full").expect("the note");
    let ended = log.find("primary job exited with exit code 3").expect("the primary's end is logged");
    assert!(last_note < ended, "each count stands where its gap is: {}", tail(&log));
    // The children's stderr stayed blocking: the flood ended by the stop, not by EAGAIN.
    assert!(log.contains("sidecar flood exited with SIGTERM"), "{}", tail(&log));
}

/// The end of a long log, for a failure message.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("[exeunt]")).collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A sidecar whose file probe fails until its shell makes the file, and a primary that
/// ends at once: a run with readiness probes, signals, spawns and a shutdown, each of
/// which says something at debug level.
fn probed_run(scratch: &Scratch, log: &str) -> common::Outcome {
    let _ = std::fs::remove_file(scratch.path("ready"));
    let marker = scratch.path("ready");
    let map = scratch.file(
        "map.toml",
        &[
            common::process(
                "db",
                "sidecar",
                &common::until_term("db", &format!("sleep 0.1; touch {marker};")),
                &format!("ready = {{ file = \"{marker}\", interval = \"20ms\" }}"),
            ),
            common::process("job", "primary", "echo job done", ""),
        ]
        .concat(),
    );
    common::pid1_env(&[("EXEUNT_LOG", log)], &["-c", &map]).finish()
}

#[test]
fn exeunt_log_module_directives_show_the_debug_lines_of_that_module_alone() {
    let scratch = Scratch::new("log-filter");
    let outcome = probed_run(&scratch, "warn,exeunt::checks=debug");
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let debug: Vec<&str> = outcome.stderr.lines().filter(|l| l.starts_with("[exeunt] debug: ")).collect();
    let failed = format!("readiness probe of process #1: failed: {} does not exist", scratch.path("ready"));
    assert!(debug.iter().any(|l| l.ends_with(&failed)), "{}", outcome.stderr);
    assert!(debug.iter().any(|l| l.ends_with("readiness probe of process #1: passed")), "{}", outcome.stderr);
    assert!(
        debug.iter().all(|l| l.contains("readiness probe of process #1")),
        "only the probes' debug lines: {}",
        outcome.stderr
    );
    // warn: the info lines a role map's run writes (the start, the exit) are left out.
    assert_eq!(count(&outcome.stderr, "info: "), 0, "{}", outcome.stderr);
    // The same run at plain debug level says more: the supervisor's own debug line on
    // the failed probe, and the info lines.
    let outcome = probed_run(&scratch, "debug");
    assert!(outcome.stderr.contains("[exeunt] debug: probe of db failed: "), "{}", outcome.stderr);
    assert!(outcome.stderr.contains(&failed) && count(&outcome.stderr, "info: ") > 0, "{}", outcome.stderr);
}

#[test]
fn a_bad_exeunt_log_directive_is_one_line_naming_it_and_nothing_runs() {
    let scratch = Scratch::new("log-filter-bad");
    let marker = scratch.path("ran");
    let outcome =
        common::pid1_env(&[("EXEUNT_LOG", "warn,exeunt::checks=loud")], &["sh", "-c", &format!("touch {marker}")])
            .finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(
        outcome.stderr,
        "exeunt: EXEUNT_LOG: 'exeunt::checks=loud': the level must be error, warn, info, debug, trace or off (see exeunt --help)"
    );
    assert!(!std::path::Path::new(&marker).exists());
}
