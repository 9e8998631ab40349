//! When the primaries are done, or exeunt is told to stop, the sidecars are stopped
//! and nothing is left running; signals reach the primaries.

use crate::common;
use std::time::Duration;

use common::{SLEEP_FOREVER, SLEEP_FOREVER_NESTED, Scratch, Stream, exists, pid1, plain, run_pid1};

/// A shell that runs until a signal it traps; `on_term` is the TERM trap, empty to
/// ignore SIGTERM. A cooperative one kills its `sleep` first: a child forked just then
/// still holds the shell's TERM handler until it execs, and would swallow a SIGTERM.
fn looping(on_term: &str, before: &str) -> String {
    let trap = match on_term {
        "" => "trap '' TERM".to_string(),
        _ => format!("trap 'kill -9 $! 2>/dev/null; {on_term}' TERM"),
    };
    format!("{trap}; {before} {SLEEP_FOREVER}")
}

fn role_map(grace: &str, sidecar: &str, primary: &str) -> String {
    format!(
        "grace_period = \"{grace}\"\n\n[[process]]\nname = \"queue\"\nrole = \"sidecar\"\ncommand = [\"sh\", \"-c\", {sidecar:?}]\n\n\
         [[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"sh\", \"-c\", {primary:?}]\n"
    )
}

#[test]
fn sidecar_that_traps_sigterm_is_stopped_in_milliseconds_not_the_grace_period() {
    let scratch = Scratch::new("cooperative-sidecar");
    let ready = scratch.fifo("ready");
    let sidecar = looping("echo queue got TERM; exit 0", &format!("echo > {ready};"));
    let map = scratch.file("map.toml", &role_map("10s", &sidecar, &format!("read x < {ready}; exit 0")));
    let outcome = run_pid1(&["-c", &map]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("queue got TERM"), "{outcome:?}");
    let stop = outcome.time_of(Stream::Stderr, "sending SIGTERM to sidecar queue");
    let shutdown = outcome.elapsed.saturating_sub(stop);
    println!("shutdown after the primary's exit: {shutdown:?}");
    assert!(shutdown < Duration::from_secs(3), "far within the 10s grace: {shutdown:?} {outcome:?}");
}

#[test]
fn sidecar_ignoring_sigterm_is_killed_soon_after_its_grace_period() {
    let scratch = Scratch::new("stubborn-sidecar");
    let ready = scratch.fifo("ready");
    let sidecar = looping("", &format!("echo > {ready};"));
    let map = scratch.file("map.toml", &role_map("1s", &sidecar, &format!("read x < {ready}; exit 0")));
    let outcome = run_pid1(&["-c", &map]);
    assert_eq!(outcome.code, 0, "the primary succeeded: {outcome:?}");
    let stop = outcome.time_of(Stream::Stderr, "sending SIGTERM to sidecar queue (grace 1s)");
    let kill = outcome.time_of(Stream::Stderr, "killing queue: still running 1s after SIGTERM");
    let waited = kill.saturating_sub(stop);
    println!("SIGKILL came {waited:?} after SIGTERM (grace 1s); exeunt ended {:?} after that", outcome.elapsed - kill);
    assert!(waited >= Duration::from_millis(950), "not before the grace period: {waited:?}");
    assert!(waited < Duration::from_secs(3), "soon after the grace period: {waited:?}");
    assert!(outcome.stderr.contains("sidecar queue exited with SIGKILL (status 137)"), "{}", outcome.stderr);
}

#[test]
fn grandchild_left_behind_by_a_sidecar_is_stopped_as_pid1() {
    let scratch = Scratch::new("grandchild-pid1");
    let ready = scratch.fifo("ready");
    let sidecar = format!("sleep 1000 & echo grandchild $!; echo > {ready}; exec sleep 1000");
    let map = scratch.file("map.toml", &role_map("10s", &sidecar, &format!("read x < {ready}; exit 4")));
    let outcome = run_pid1(&["-w", "-c", &map]);
    assert_eq!(outcome.code, 4, "{outcome:?}");
    let grandchild = outcome.stdout.lines().find_map(|l| l.strip_prefix("grandchild ")).expect("pid printed");
    assert!(
        outcome.stderr.contains(&format!("Reaped zombie process with pid={grandchild}")),
        "the grandchild was stopped and reaped by exeunt: {}",
        outcome.stderr
    );
    assert!(outcome.elapsed < Duration::from_secs(5), "SIGTERM, not the grace period: {outcome:?}");
    assert!(
        outcome.stderr.contains(
            "info: processes the plan's processes left behind are still running: sending them SIGTERM (grace 10s)"
        ),
        "the sweep is said at info: {}",
        outcome.stderr
    );
}

#[test]
fn grandchild_that_escaped_with_setsid_is_stopped_when_not_pid1() {
    let scratch = Scratch::new("grandchild-plain");
    let ready = scratch.fifo("ready");
    let sidecar = format!("setsid sleep 1000 & echo grandchild $!; echo > {ready}; exec sleep 1000");
    let map = scratch.file("map.toml", &role_map("10s", &sidecar, &format!("read x < {ready}; exit 0")));
    let mut running = plain(&["-c", &map]);
    let line = running.expect_line("grandchild ");
    let grandchild: i32 = line.trim_start_matches("grandchild ").parse().expect("a pid");
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(!exists(grandchild), "pid {grandchild} outlived exeunt: {outcome:?}");
}

#[test]
fn sigterm_to_exeunt_stops_the_primary_then_the_sidecars_and_keeps_the_primarys_status() {
    let scratch = Scratch::new("sigterm");
    // The primary says it is ready once the sidecar has set its trap: a SIGTERM before
    // that would kill the sidecar's shell outright.
    let trapped = scratch.fifo("trapped");
    let sidecar = looping("echo queue got TERM; exit 0", &format!("echo > {trapped};"));
    let primary = looping("echo job got TERM; exit 7", &format!("read x < {trapped}; echo job ready;"));
    let map = scratch.file("map.toml", &role_map("10s", &sidecar, &primary));
    let mut running = pid1(&["-c", &map]);
    running.expect_line("job ready");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 7, "{outcome:?}");
    assert!(outcome.time_of(Stream::Stdout, "job got TERM") <= outcome.time_of(Stream::Stdout, "queue got TERM"));
    assert!(outcome.elapsed < Duration::from_secs(5), "{outcome:?}");
}

#[test]
fn sigusr1_to_exeunt_reaches_the_primary_and_not_the_sidecar() {
    let scratch = Scratch::new("sigusr1");
    let sidecar = format!("trap 'echo queue got USR1' USR1; {}", looping("exit 0", ""));
    let primary = format!("trap 'echo job got USR1' USR1; {}", looping("exit 0", "echo job ready;"));
    let map = scratch.file("map.toml", &role_map("10s", &sidecar, &primary));
    let mut running = pid1(&["-c", &map]);
    running.expect_line("job ready");
    running.signal(libc::SIGUSR1);
    running.expect_line("job got USR1");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(!outcome.stdout.contains("queue got USR1"), "{outcome:?}");
}

#[test]
fn with_kill_on_second_signal_a_second_sigterm_kills_at_once_instead_of_waiting_out_the_grace() {
    let scratch = Scratch::new("second-sigterm");
    let sidecar = looping("", "");
    let primary = looping("", "echo job ready;");
    let map = format!("kill_on_second_signal = true\n{}", role_map("30s", &sidecar, &primary));
    let map = scratch.file("map.toml", &map);
    let mut running = pid1(&["-c", &map]);
    running.expect_line("job ready");
    running.signal(libc::SIGTERM);
    running.expect_log("received SIGTERM: stopping");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 137, "the primary was killed: {outcome:?}");
    assert!(outcome.elapsed < Duration::from_secs(10), "not the 30s grace: {outcome:?}");
}

#[test]
fn process_group_flag_forwards_signals_to_the_whole_group() {
    // The primary's child traps USR1 too; with -g it gets the signal as well. The
    // primary traps USR1 before it starts the child (so "child ready" means both traps
    // are set), and waits for the child after its own trap ran, so that the end of the
    // run cannot cut the child's trap short.
    let mut running = pid1(&[
        "-g",
        "sh",
        "-c",
        &format!(
            "trap 'echo parent got USR1' USR1; \
             sh -c \"trap 'echo child got USR1; exit 0' USR1; echo child ready; {SLEEP_FOREVER_NESTED}\" & \
             wait $!; wait $!"
        ),
    ]);
    running.expect_line("child ready");
    running.signal(libc::SIGUSR1);
    running.expect_line("child got USR1");
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("parent got USR1"), "{outcome:?}");
}
