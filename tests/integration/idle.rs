//! An idle exeunt makes no wake-ups: it blocks in epoll_wait with no timeout.

use crate::common;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{HANG, pid1, status_field};

fn context_switches(pid: i32) -> u64 {
    status_field(pid, "voluntary_ctxt_switches") + status_field(pid, "nonvoluntary_ctxt_switches")
}

/// Waits until exeunt sleeps in epoll_wait, i.e. has handled everything it was given.
fn wait_until_parked(pid: i32) {
    let deadline = Instant::now() + HANG;
    loop {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.contains("epoll_wait") {
            return;
        }
        assert!(Instant::now() < deadline, "exeunt never blocked in epoll_wait (wchan {wchan:?})");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How often exeunt was scheduled over the next 10 s.
fn wakeups_over_10s(pid: i32) -> u64 {
    let before = context_switches(pid);
    std::thread::sleep(Duration::from_secs(10));
    context_switches(pid) - before
}

/// Once exeunt is parked: its wake-ups over 10 s, then how the run ended after SIGTERM.
fn wakeups_over_10s_then_sigterm(running: common::Running) -> (u64, common::Outcome) {
    let pid = running.exeunt_pid();
    wait_until_parked(pid);
    let wakeups = wakeups_over_10s(pid);
    running.signal(libc::SIGTERM);
    (wakeups, running.finish())
}

#[test]
fn idle_exeunt_with_a_sleeping_child_makes_no_wakeups_over_10s() {
    let mut running = pid1(&["sh", "-c", "echo ready; exec sleep 1000"]);
    running.expect_line("ready");
    let (wakeups, outcome) = wakeups_over_10s_then_sigterm(running);
    assert_eq!(wakeups, 0, "exeunt woke up {wakeups} times in 10s");
    assert_eq!(outcome.code, 143, "sleep died of the forwarded SIGTERM: {outcome:?}");
}

#[test]
fn idle_exeunt_carrying_output_in_prefix_mode_makes_no_wakeups_over_10s_with_its_pipes_open() {
    let scratch = common::Scratch::new("idle-prefix");
    let map = scratch.file(
        "map.toml",
        &format!(
            "output = \"prefix\"\n\n{}{}",
            common::process("side", "sidecar", &common::until_term("side", "echo side up;"), ""),
            common::process("job", "primary", "echo ready; exec sleep 1000", ""),
        ),
    );
    let mut running = pid1(&["-c", &map]);
    running.expect_line("job  | ready");
    running.expect_line("side | side up");
    let pid = running.exeunt_pid();
    wait_until_parked(pid);
    // The read ends of pipes: a descriptor's link is mode r-x when it is open for reading only.
    let feeds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("exeunt's descriptors")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let read_only = std::fs::symlink_metadata(&path).ok()?.permissions().mode() & 0o200 == 0;
            let pipe = std::fs::read_link(&path).ok()?.display().to_string().starts_with("pipe:");
            (pipe && read_only).then_some(())
        })
        .count();
    let wakeups = wakeups_over_10s(pid);
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(wakeups, 0, "exeunt woke up {wakeups} times in 10s");
    assert_eq!(feeds, 4, "exeunt holds the read ends of both processes' stdout and stderr pipes while idle");
    assert!(outcome.stdout.contains("side | side got TERM"), "{outcome:?}");
}

#[test]
fn idle_exeunt_with_its_control_socket_open_makes_no_wakeups_over_10s() {
    let scratch = common::Scratch::new("idle-control");
    let map = scratch.file("map.toml", &common::process("job", "primary", "echo ready; exec sleep 1000", ""));
    let mut running = pid1(&["-c", &map]);
    running.expect_line("ready");
    let pid = running.exeunt_pid();
    // One exchange on the socket first, from inside the container, so that it is open
    // and has answered.
    let live = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-p", common::exeunt(), "--live"])
        .output()
        .expect("run nsenter (util-linux)");
    assert!(live.status.success(), "{live:?}");
    wait_until_parked(pid);
    let wakeups = wakeups_over_10s(pid);
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(wakeups, 0, "exeunt woke up {wakeups} times in 10s");
    assert_eq!(outcome.code, 143, "{outcome:?}");
}

#[test]
fn idle_exeunt_watching_a_graveyard_and_the_directory_above_it_makes_no_wakeups_over_10s() {
    let scratch = common::Scratch::new("idle-graveyard");
    let graveyard = scratch.path("graveyard");
    let map = scratch.file(
        "map.toml",
        &format!(
            "[pod]\nname = \"queue\"\ngraveyard = \"{graveyard}\"\ndeath_deps = [\"job\"]\n\n{}",
            common::process("queue", "primary", "echo ready; exec sleep 1000", ""),
        ),
    );
    let mut running = pid1(&["-c", &map]);
    running.expect_line("ready");
    let (wakeups, outcome) = wakeups_over_10s_then_sigterm(running);
    assert_eq!(wakeups, 0, "exeunt woke up {wakeups} times in 10s");
    assert_eq!(outcome.code, 143, "{outcome:?}");
}
