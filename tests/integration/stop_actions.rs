//! A sidecar is asked to stop with its stop signal or its stop hook (an HTTP POST or a
//! command); sidecars stop in reverse start order, or all at once.

use crate::common;
use std::time::Duration;

use common::{SLEEP_FOREVER, Scratch, free_port, http_sidecar, position, process, run_pid1, until_term};

#[test]
fn stop_signal_from_the_stop_table_is_sent_instead_of_sigterm() {
    let scratch = Scratch::new("stop-signal");
    let up = scratch.fifo("up");
    let sidecar =
        format!("trap 'kill -9 $! 2>/dev/null; echo queue got INT; exit 0' INT; echo > {up}; {SLEEP_FOREVER}");
    let map = [
        process("queue", "sidecar", &sidecar, "stop = { signal = \"SIGINT\" }"),
        process("job", "primary", &format!("read x < {up}"), ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("queue got INT"), "{outcome:?}");
    assert!(outcome.stderr.contains("sending SIGINT to sidecar queue"), "{}", outcome.stderr);
}

#[test]
fn http_stop_hook_posts_to_the_sidecar_which_leaves_without_a_signal() {
    let scratch = Scratch::new("http-hook");
    let port = free_port();
    let map = [
        process(
            "proxy",
            "sidecar",
            &http_sidecar(port, 0),
            &format!(
                "ready = {{ http = \"http://127.0.0.1:{port}/ready\", interval = \"20ms\" }}\n\
                 stop = {{ http = \"http://127.0.0.1:{port}/quitquitquit\" }}\ngrace_period = \"30s\""
            ),
        ),
        process("job", "primary", "echo job done", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("got POST /quitquitquit"), "the server recorded the POST: {outcome:?}");
    assert!(outcome.stderr.contains("stopping sidecar proxy with its stop hook http POST"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("sidecar proxy exited with exit code 0"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("sending SIGTERM to sidecar proxy"), "no signal was needed: {}", outcome.stderr);
    assert!(outcome.elapsed < Duration::from_secs(10), "not the 30s grace: {outcome:?}");
}

#[test]
fn exec_stop_hook_runs_its_command_which_stops_the_sidecar() {
    let scratch = Scratch::new("exec-hook");
    let pidfile = scratch.path("queue.pid");
    let up = scratch.fifo("up");
    let sidecar = format!(
        "trap 'kill -9 $! 2>/dev/null; echo queue got USR1; exit 0' USR1; echo $$ > {pidfile}; echo > {up}; \
         {SLEEP_FOREVER}"
    );
    let hook = format!("kill -USR1 $(cat {pidfile})");
    let map = [
        process("queue", "sidecar", &sidecar, &format!("stop = {{ exec = [\"sh\", \"-c\", {hook:?}] }}")),
        process("job", "primary", &format!("read x < {up}"), ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("queue got USR1"), "{outcome:?}");
    assert!(!outcome.stderr.contains("sending SIGTERM to sidecar queue"), "{}", outcome.stderr);
}

#[test]
fn failed_stop_hook_falls_through_to_the_stop_signal_at_once() {
    let scratch = Scratch::new("failed-hook");
    let up = scratch.fifo("up");
    let refused = free_port();
    let map = [
        process(
            "queue",
            "sidecar",
            &until_term("queue", &format!("echo > {up};")),
            &format!("stop = {{ http = \"http://127.0.0.1:{refused}/quit\" }}\ngrace_period = \"30s\""),
        ),
        process("job", "primary", &format!("read x < {up}"), ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stderr.contains("stop hook of queue failed (connect to 127.0.0.1"), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("queue got TERM"), "{outcome:?}");
    assert!(outcome.elapsed < Duration::from_secs(10), "not the 30s grace: {outcome:?}");
}

fn three_sidecars(scratch: &Scratch, top: &str) -> String {
    let up = scratch.fifo("up");
    let mut map = top.to_string();
    for name in ["a", "b", "c"] {
        // Each sidecar takes a moment to leave, so that an order can be seen.
        let on_term = format!("trap 'kill -9 $! 2>/dev/null; echo {name} got TERM; sleep 0.1; exit 0' TERM");
        let before = if name == "c" { format!("echo > {up};") } else { String::new() };
        map += &process(name, "sidecar", &format!("{on_term}; {before} {SLEEP_FOREVER}"), "");
    }
    map + &process("job", "primary", &format!("read x < {up}"), "")
}

#[test]
fn sidecars_stop_in_reverse_start_order_each_after_the_next_has_exited() {
    let scratch = Scratch::new("ordered-stop");
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &three_sidecars(&scratch, ""))]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let log = &outcome.stderr;
    let at = |needle: &str| position(log, needle);
    assert!(at("sending SIGTERM to sidecar c") < at("sidecar c exited"), "{log}");
    assert!(at("sidecar c exited") < at("sending SIGTERM to sidecar b"), "{log}");
    assert!(at("sidecar b exited") < at("sending SIGTERM to sidecar a"), "{log}");
    let got = |name: &str| outcome.time_of(common::Stream::Stdout, &format!("{name} got TERM"));
    println!("stop times: c {:?}, b {:?}, a {:?}", got("c"), got("b"), got("a"));
    assert!(got("c") < got("b") && got("b") < got("a"));
}

#[test]
fn parallel_shutdown_stops_every_sidecar_at_once() {
    let scratch = Scratch::new("parallel-stop");
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &three_sidecars(&scratch, "shutdown = \"parallel\"\n"))]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let log = &outcome.stderr;
    let last_sent =
        ["a", "b", "c"].map(|n| position(log, &format!("sending SIGTERM to sidecar {n}"))).into_iter().max();
    let first_exit = ["a", "b", "c"].map(|n| position(log, &format!("sidecar {n} exited"))).into_iter().min();
    assert!(last_sent < first_exit, "all were asked before any left: {log}");
}
