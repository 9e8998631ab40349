//! Readiness a process announces itself over systemd's protocol
//! (`ready = { notify = "systemd" }`): real servers that speak it, a watchdog a process
//! asks for, and datagrams from strangers that must not count.

use crate::common;
use std::time::Duration;

use common::{Scratch, free_port, process, run_pid1};

/// A python3 program that speaks the protocol as libsystemd does: `say(text)` sends one
/// datagram to `NOTIFY_SOCKET`, abstract names (`@...`) included.
fn notifier(body: &str) -> String {
    format!(
        "import os, socket, sys, time\n\
         address = os.environ['NOTIFY_SOCKET']\n\
         address = '\\0' + address[1:] if address.startswith('@') else address\n\
         channel = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         def say(text): channel.sendto(text.encode(), address)\n\
         {body}\n"
    )
}

fn require_python() {
    common::require("/usr/bin/python3", "python3");
}

#[test]
fn redis_supervised_by_systemd_is_ready_on_its_own_ready_1_with_nothing_polled() {
    common::require("/usr/bin/redis-server", "redis-server");
    let scratch = Scratch::new("notify-redis");
    let port = free_port();
    let server =
        format!("exec redis-server --port {port} --bind 127.0.0.1 --supervised systemd --save '' --appendonly no");
    let job = format!("redis-cli -p {port} ping; \"$EXEUNT\" --status");
    let map = [
        process("redis", "sidecar", &server, "ready = { notify = \"systemd\", timeout = \"10s\" }"),
        process("job", "primary", &job, ""),
    ]
    .concat();
    let outcome = common::pid1_env(&[("EXEUNT", common::exeunt())], &["-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("PONG"), "{outcome:?}");
    assert!(outcome.stderr.contains("sidecar redis is ready after"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("(1 probes)"), "one wait, nothing polled: {}", outcome.stderr);
    // What it said of itself along with READY=1.
    let row = outcome.stdout.lines().find(|l| l.starts_with("redis ")).expect("a status row");
    assert!(row.contains("ready, says \"Ready to accept connections\""), "{row}");
}

#[test]
fn postgresql_built_with_systemd_is_ready_on_its_own_ready_1() {
    let scratch = Scratch::new("notify-postgresql");
    let (bin, data) = common::postgresql_cluster(&scratch, &["--auth=trust"]);
    let port = free_port();
    let server =
        format!("exec {} -D {data} -k {data} -p {port} -c listen_addresses=127.0.0.1", bin.join("postgres").display());
    let job = format!("psql -h 127.0.0.1 -p {port} -U postgres -X -tAc 'select 6 * 7'");
    let db = "user = \"postgres\"\ngrace_period = \"20s\"\nready = { notify = \"systemd\", timeout = \"30s\" }";
    let map = [process("db", "sidecar", &server, db), process("job", "primary", &job, "")].concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    let err = &outcome.stderr;
    assert_eq!(outcome.code, 0, "{outcome:?}");
    // Debian builds PostgreSQL with systemd support: it sends READY=1 itself once it
    // takes connections, so the first query, made at once, is answered.
    assert!(outcome.stdout.contains("42"), "{outcome:?}");
    assert!(err.contains("sidecar db is ready after") && err.contains("(1 probes)"), "{err}");
    assert!(err.contains("database system is ready to accept connections"), "{err}");
    assert!(err.contains("database system is shut down"), "a clean shutdown in PostgreSQL's log: {err}");
}

#[test]
fn a_ready_1_from_outside_the_process_is_dropped_and_its_own_counts() {
    require_python();
    let scratch = Scratch::new("notify-stranger");
    let (name_file, go) = (scratch.path("socket-name"), scratch.path("go"));
    // It says READY=1 once told to, and not before.
    let program = notifier(&format!(
        "while not os.path.exists('{go}'): time.sleep(0.02)\n\
         say('READY=1')\n\
         time.sleep(1000)"
    ));
    let script = scratch.file("notifier.py", &program);
    let side =
        format!("echo \"$NOTIFY_SOCKET\" > {name_file}.new; mv {name_file}.new {name_file}; exec python3 {script}");
    let map = [
        process("side", "sidecar", &side, "ready = { notify = \"systemd\", timeout = \"20s\" }"),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let mut running = common::pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_log("started sidecar side");
    while !std::path::Path::new(&name_file).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let name = std::fs::read_to_string(&name_file).unwrap().trim().to_string();
    let stranger = notifier("say('READY=1\\nSTATUS=forged')");
    // This test's process, outside exeunt's PID namespace; then one inside it that is
    // not the sidecar's descendant.
    let sent = std::process::Command::new("python3").args(["-c", &stranger]).env("NOTIFY_SOCKET", &name).status();
    assert!(sent.expect("python3").success());
    running.expect_log("was dropped: its sender is outside exeunt's PID namespace");
    let pid = running.exeunt_pid().to_string();
    let inside = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-p", "-m", "python3", "-c", &stranger])
        .env("NOTIFY_SOCKET", &name)
        .status();
    assert!(inside.expect("nsenter").success());
    std::thread::sleep(Duration::from_millis(300));
    let (code, answer, _) = common::ask_in(running.exeunt_pid(), &["--ready"]);
    assert_eq!(code, 1, "the forged READY=1 did not count: {answer}");
    let (_, status, _) = common::ask_in(running.exeunt_pid(), &["--status"]);
    assert!(!status.contains("forged"), "{status}");
    std::fs::write(&go, "").unwrap();
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("job started"), "{outcome:?}");
    assert!(outcome.stderr.contains("sidecar side is ready after"), "{}", outcome.stderr);
}

#[test]
fn a_sidecar_that_asked_for_a_watchdog_and_stops_feeding_it_is_restarted() {
    require_python();
    let scratch = Scratch::new("notify-watchdog");
    let (first, second) = (scratch.path("first-run"), scratch.path("second-run"));
    // The first run asks for a 300 ms watchdog, feeds it 5 times, then hangs; the
    // second feeds it for good.
    let program = notifier(&format!(
        "again = os.path.exists('{first}')\n\
         open('{second}' if again else '{first}', 'w').close()\n\
         say('READY=1\\nWATCHDOG_USEC=300000')\n\
         for i in range(1000 if again else 5):\n    time.sleep(0.1)\n    say('WATCHDOG=1')\n\
         time.sleep(1000)"
    ));
    let script = scratch.file("notifier.py", &program);
    let job = format!("until [ -e {second} ]; do sleep 0.05; done; echo job done");
    let map = [
        process("side", "sidecar", &format!("exec python3 {script}"), "ready = { notify = \"systemd\" }"),
        process("job", "primary", &job, ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("job done"), "{outcome:?}");
    let err = &outcome.stderr;
    assert!(err.contains("sent no WATCHDOG=1 within 300ms: restarting it"), "{err}");
    assert!(err.contains("starting it again, since it missed its watchdog"), "{err}");
    assert_eq!(common::count(err, "sent no WATCHDOG=1"), 1, "the fed second run was left alone: {err}");
}

#[test]
fn the_runtimes_notify_socket_hears_ready_only_after_the_sidecars_probe_passed_then_stopping_and_no_child_gets_it() {
    let scratch = Scratch::new("notify-runtime");
    let socket_path = scratch.path("notify.sock");
    let runtime = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind the runtime's socket");
    runtime.set_read_timeout(Some(common::HANG)).expect("a read timeout");
    let up = scratch.path("up");
    // The sidecar is ready a second after it starts, when its file appears.
    let map = [
        common::process(
            "cache",
            "sidecar",
            &format!("sleep 1; touch {up}; exec sleep 100"),
            &format!("ready = {{ file = \"{up}\" }}"),
        ),
        common::process("job", "primary", "echo job sees ${NOTIFY_SOCKET:-no NOTIFY_SOCKET}; sleep 0.5", ""),
    ]
    .concat();
    let started = std::time::Instant::now();
    let running = common::pid1_env(&[("NOTIFY_SOCKET", &socket_path)], &["-c", &scratch.file("map.toml", &map)]);
    let mut heard = Vec::new();
    let mut buffer = [0u8; 4096];
    while !heard.iter().any(|(_, text): &(std::time::Duration, String)| text.starts_with("STATUS=exiting")) {
        let size = runtime.recv(&mut buffer).expect("a datagram from exeunt");
        heard.push((started.elapsed(), String::from_utf8_lossy(&buffer[..size]).into_owned()));
    }
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("job sees no NOTIFY_SOCKET"), "not passed on: {outcome:?}");
    let texts: Vec<&str> = heard.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert_eq!(texts[0], "STATUS=starting");
    assert!(texts[1].starts_with("READY=1\n") && texts[2].starts_with("STOPPING=1\n"), "{texts:?}");
    assert_eq!(texts[3], "STATUS=exiting with 0");
    assert!(heard[1].0 >= std::time::Duration::from_millis(900), "READY=1 before the probe passed: {heard:?}");
    assert!(
        common::position(&outcome.stderr, "sidecar cache is ready")
            < common::position(&outcome.stderr, "every process has started")
    );
}
