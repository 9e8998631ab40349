//! Signals as the programs under exeunt expect them: a stop signal from outside is
//! passed on, and exeunt keeps no deadline of its own for the primaries, as tini keeps
//! none for its child; the runtime that sent the signal keeps the deadline. A program
//! that lives on after SIGQUIT (a JVM's thread dump) lives on; a server that drains for
//! 20 s gets its 20 s; no SIGCONT follows a signal passed on.

use crate::common;
use std::time::{Duration, Instant};

use common::{SLEEP_FOREVER, Scratch, Stream, pid1, process, until_term};

/// A shell that answers each trapped signal by a line, `on_term` the TERM trap (`:` to
/// live on: an ignored SIGTERM would be inherited by its `sleep`), and exits 0 on
/// SIGUSR2 (how the tests end it).
fn answering(signals: &[&str], on_term: &str) -> String {
    let traps: String = signals.iter().map(|s| format!("trap 'echo got {s}' {s}; ")).collect();
    format!("{traps}trap '{on_term}' TERM; trap 'exit 0' USR2; echo ready; {SLEEP_FOREVER}")
}

/// SIGQUIT three times over 15 s, past the 10 s after which exeunt used to kill.
fn three_sigquits_over_15s(running: &mut common::Running) {
    for round in 1..=3 {
        running.signal(libc::SIGQUIT);
        running.expect_line(&format!("got QUIT {round}"));
        if round < 3 {
            std::thread::sleep(Duration::from_millis(7500));
        }
    }
}

/// A primary that counts its SIGQUITs and lives on after each.
fn quit_counter() -> String {
    format!(
        "n=0; trap 'n=$((n+1)); echo got QUIT $n' QUIT; trap 'exit 0' USR2; \
                            echo ready; {SLEEP_FOREVER}"
    )
}

#[test]
fn without_a_role_map_a_primary_that_survives_sigquit_gets_every_one_and_lives_on() {
    let mut running = pid1(&["sh", "-c", &quit_counter()]);
    running.expect_line("ready");
    three_sigquits_over_15s(&mut running);
    running.signal(libc::SIGUSR2);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "it lived on until asked to leave: {outcome:?}");
    assert!(!outcome.stderr.contains("killing"), "{}", outcome.stderr);
}

#[test]
fn without_a_role_map_a_primary_that_drains_for_20s_after_sigterm_is_not_killed() {
    let drain = "echo draining; sleep 20; echo drained; exit 0";
    let mut running = pid1(&["sh", "-c", &answering(&[], drain)]);
    running.expect_line("ready");
    running.signal(libc::SIGTERM);
    let asked = running.elapsed();
    running.expect_line("draining");
    let outcome = running.finish();
    let drained = outcome.time_of(Stream::Stdout, "drained") - asked;
    println!("drained {drained:?} after SIGTERM; exeunt exited {:?} after it", outcome.elapsed - asked);
    assert_eq!(outcome.code, 0, "its own status, not SIGKILL's: {outcome:?}");
    assert!(drained >= Duration::from_secs(20), "{drained:?}");
}

#[test]
fn a_signal_passed_on_to_the_primary_is_not_followed_by_sigcont() {
    let mut running = pid1(&["sh", "-c", &answering(&["CONT"], "echo got TERM")]);
    running.expect_line("ready");
    running.signal(libc::SIGTERM);
    running.expect_line("got TERM");
    running.signal(libc::SIGUSR2);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(!outcome.stdout.contains("got CONT"), "a SIGCONT nobody sent: {outcome:?}");
}

/// A role map of a sidecar that says when it got SIGTERM, and a primary.
fn with_sidecar(scratch: &Scratch, primary: &str, primary_extra: &str) -> String {
    let map =
        [process("side", "sidecar", &until_term("side", ""), ""), process("job", "primary", primary, primary_extra)]
            .concat();
    scratch.file("map.toml", &map)
}

#[test]
fn with_a_role_map_a_jvm_gets_sigquit_as_sigquit_prints_its_thread_dump_and_lives_on() {
    common::require("/usr/bin/java", "default-jre-headless");
    let scratch = Scratch::new("jvm-sigquit");
    let source = scratch.file(
        "Main.java",
        "public class Main {\n    public static void main(String[] args) throws Exception {\n        \
         System.out.println(\"jvm ready\");\n        System.out.flush();\n        Thread.sleep(Long.MAX_VALUE);\n    }\n}\n",
    );
    let mut running = pid1(&["-c", &with_sidecar(&scratch, &format!("exec java {source}"), "")]);
    running.expect_line("jvm ready");
    running.signal(libc::SIGQUIT);
    running.expect_line("Full thread dump");
    // The JVM and its sidecar live on: the dump is all SIGQUIT asks of it.
    std::thread::sleep(Duration::from_millis(500));
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 143, "the JVM ended by SIGTERM, not by SIGQUIT: {outcome:?}");
    let err = &outcome.stderr;
    assert!(!err.contains("received SIGQUIT: stopping"), "{err}");
    assert!(err.contains("received SIGTERM: stopping"), "{err}");
    let dumped = outcome.time_of(Stream::Stdout, "Full thread dump");
    assert!(outcome.time_of(Stream::Stdout, "side got TERM") > dumped + Duration::from_millis(500), "{outcome:?}");
}

#[test]
fn with_a_role_map_a_primary_that_drains_for_20s_is_not_killed_and_the_sidecar_stops_after_it() {
    let scratch = Scratch::new("drain-20s");
    let drain = "echo draining; sleep 20; echo drained; exit 0";
    let mut running = pid1(&["-c", &with_sidecar(&scratch, &answering(&[], drain), "")]);
    running.expect_line("ready");
    running.signal(libc::SIGTERM);
    let asked = running.elapsed();
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let drained = outcome.time_of(Stream::Stdout, "drained");
    assert!(drained - asked >= Duration::from_secs(20), "{outcome:?}");
    assert!(outcome.time_of(Stream::Stdout, "side got TERM") > drained, "the sidecar outlived the drain: {outcome:?}");
}

#[test]
fn with_a_role_map_a_primary_whose_stop_signal_is_sigquit_survives_three_and_the_sidecar_runs_on() {
    let scratch = Scratch::new("three-sigquits");
    let mut running = pid1(&["-c", &with_sidecar(&scratch, &quit_counter(), "stop_signal = \"SIGQUIT\"")]);
    running.expect_line("ready");
    three_sigquits_over_15s(&mut running);
    running.signal(libc::SIGUSR2);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let left = outcome.time_of(Stream::Stdout, "got QUIT 3");
    assert!(outcome.time_of(Stream::Stdout, "side got TERM") > left, "the sidecar ran on meanwhile: {outcome:?}");
    assert!(!outcome.stderr.contains("killing"), "{}", outcome.stderr);
}

#[test]
fn with_a_role_map_sigterm_reaches_a_primary_as_its_stop_signal_sigquit() {
    let scratch = Scratch::new("term-as-quit");
    let primary = format!("trap 'echo got TERM' TERM; trap 'echo got QUIT; exit 0' QUIT; echo ready; {SLEEP_FOREVER}");
    let mut running = pid1(&["-c", &with_sidecar(&scratch, &primary, "stop_signal = \"SIGQUIT\"")]);
    running.expect_line("ready");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert!(lines.contains(&"got QUIT") && !lines.contains(&"got TERM"), "{outcome:?}");
}

#[test]
fn with_a_role_map_sigterm_runs_a_primarys_exec_stop_hook() {
    let scratch = Scratch::new("primary-hook");
    let pid_file = scratch.path("job.pid");
    let primary = format!(
        "trap 'echo got TERM' TERM; trap 'exit 0' USR2; echo $$ > {pid_file}; echo ready; \
         {SLEEP_FOREVER}"
    );
    // The hook's only way to stop the primary is SIGUSR2, on which it exits 0.
    let hook = format!("stop = {{ exec = [\"sh\", \"-c\", \"kill -USR2 $(cat {pid_file})\"] }}");
    let mut running = pid1(&["-c", &with_sidecar(&scratch, &primary, &hook)]);
    running.expect_line("ready");
    let started = Instant::now();
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(!outcome.stdout.lines().any(|l| l == "got TERM"), "the hook ran instead of SIGTERM: {outcome:?}");
    assert!(outcome.stderr.contains("SIGTERM: stopping primary job with its stop hook"), "{}", outcome.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "the hook stopped it, not a deadline: {outcome:?}");
}

#[test]
fn kill_primaries_after_kills_a_primary_that_outlives_it_and_says_after_what() {
    let scratch = Scratch::new("kill-primaries-after");
    let map = format!("kill_primaries_after = \"1s\"\n{}", process("job", "primary", &answering(&[], ":"), ""));
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_line("ready");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 137, "{outcome:?}");
    assert!(outcome.stderr.contains("killing job: still running 1s after SIGTERM"), "{}", outcome.stderr);
}

/// One GET on loopback; the status line of the answer.
fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the server listens");
    stream.set_read_timeout(Some(common::HANG)).expect("a timeout");
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer.lines().next().unwrap_or_default().to_string()
}

#[test]
fn the_stop_delay_holds_sigterm_back_while_a_real_server_still_answers() {
    let scratch = Scratch::new("stop-delay");
    let port = common::free_port();
    let map = format!("stop_delay = \"2s\"\n{}", process("web", "primary", &common::http_sidecar(port, 0), ""));
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_line(&format!("http sidecar listening on {port}"));
    // Taken before the signal: exeunt may act on it before this thread runs again.
    let asked = running.elapsed();
    running.signal(libc::SIGTERM);
    running.expect_log("received SIGTERM: passing it on in 2s (stop_delay)");
    let answer = get(port, "/ready");
    let answered = running.elapsed() - asked;
    let outcome = running.finish();
    let passed_on = outcome.time_of(Stream::Stderr, "SIGTERM: sending SIGTERM to primary web") - asked;
    println!("a request answered {answered:?} after SIGTERM; SIGTERM passed on after {passed_on:?}");
    assert!(answer.contains(" 200 "), "the server still answered during the delay: {answer:?}");
    assert!(passed_on >= Duration::from_secs(2) && passed_on < Duration::from_secs(10), "{passed_on:?}");
    assert!(answered < passed_on, "the request came during the delay");
    assert_eq!(outcome.code, 143, "the server died of the SIGTERM passed on: {outcome:?}");
}

#[test]
fn rewrite_15_to_3_delivers_sigquit_for_sigterm_and_says_so_at_debug_level() {
    let primary = format!("trap 'echo got TERM' TERM; trap 'echo got QUIT; exit 0' QUIT; echo ready; {SLEEP_FOREVER}");
    let mut running = pid1(&["-vv", "-r", "15:3", "sh", "-c", &primary]);
    running.expect_line("ready");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert!(lines.contains(&"got QUIT") && !lines.contains(&"got TERM"), "{outcome:?}");
    assert!(outcome.stderr.contains("debug: SIGTERM rewritten to SIGQUIT for main"), "{}", outcome.stderr);
}

#[test]
fn a_role_map_rewrite_to_ignore_delivers_nothing() {
    let scratch = Scratch::new("rewrite-ignore");
    let primary = process("job", "primary", &answering(&["HUP", "USR1"], ":"), "rewrite = { SIGHUP = \"ignore\" }");
    let mut running = pid1(&["-c", &scratch.file("map.toml", &primary)]);
    running.expect_line("ready");
    running.signal(libc::SIGHUP);
    running.signal(libc::SIGUSR1);
    running.expect_line("got USR1");
    running.signal(libc::SIGUSR2);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(!outcome.stdout.contains("got HUP"), "SIGHUP was rewritten to nothing: {outcome:?}");
}
