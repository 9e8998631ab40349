//! Sidecars start one after another as each becomes ready, the primaries once all are;
//! probes never hold up signals; a sidecar not ready in time stops the run or not, as
//! its role map says.

use crate::common;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::{
    HANG, Scratch, count, free_port, http_sidecar, pid1, position, process, run_pid1, status_field, until_term,
};

#[test]
fn sidecars_start_in_order_each_once_the_previous_is_ready_then_the_primary() {
    let scratch = Scratch::new("start-order");
    let marker = scratch.path("db-ready");
    let port = free_port();
    let map = [
        process(
            "db",
            "sidecar",
            &format!("echo db started; sleep 0.3; echo db ready; touch {marker}; exec sleep 1000"),
            &format!("ready = {{ file = \"{marker}\", interval = \"20ms\" }}"),
        ),
        process(
            "web",
            "sidecar",
            &http_sidecar(port, 2),
            &format!("ready = {{ http = \"http://127.0.0.1:{port}/ready\", interval = \"50ms\" }}"),
        ),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let at = |needle| position(&outcome.stdout, needle);
    assert!(at("db ready") < at("http sidecar listening"), "web started after db was ready: {}", outcome.stdout);
    assert_eq!(count(&outcome.stdout, "answered 503"), 2, "{}", outcome.stdout);
    assert!(at("answered 200") < at("job started"), "the primary started after web was ready: {}", outcome.stdout);
    for name in ["db", "web"] {
        assert!(outcome.stderr.contains(&format!("sidecar {name} is ready after")), "{}", outcome.stderr);
    }
    // The sidecars stop in reverse start order.
    let stop = |name: &str| position(&outcome.stderr, &format!("sending SIGTERM to sidecar {name}"));
    assert!(stop("web") < stop("db"), "{}", outcome.stderr);
}

#[test]
fn tcp_probe_passes_only_once_the_port_accepts() {
    // A socket bound but not yet listening refuses connections: the test decides when
    // the "database" starts accepting.
    // SAFETY: plain socket calls on a descriptor this test owns.
    let socket = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0)) };
    let listener = std::net::TcpListener::from(socket);
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_in of `len` bytes.
    assert_eq!(unsafe { libc::bind(listener.as_raw_fd(), (&addr as *const libc::sockaddr_in).cast(), len) }, 0);
    let port = listener.local_addr().expect("bound").port();

    let scratch = Scratch::new("tcp-probe");
    let map = [
        process(
            "db",
            "sidecar",
            "exec sleep 1000",
            &format!("ready = {{ tcp = \"127.0.0.1:{port}\", interval = \"20ms\" }}"),
        ),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let mut running = pid1(&["-vv", "-c", &scratch.file("map.toml", &map)]);
    running.expect_log("probe of db failed");
    running.expect_log("probe of db failed: connect to 127.0.0.1");
    // SAFETY: listen on the bound socket.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 8) }, 0);
    running.expect_line("job started");
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let ready = outcome.time_of(common::Stream::Stderr, "sidecar db is ready");
    let first_failure = outcome.time_of(common::Stream::Stderr, "probe of db failed");
    assert!(first_failure < ready);
}

#[test]
fn exec_probe_passes_when_its_command_exits_zero() {
    let scratch = Scratch::new("exec-probe");
    let marker = scratch.path("up");
    let map = [
        process(
            "db",
            "sidecar",
            &format!("sleep 0.2; touch {marker}; exec sleep 1000"),
            &format!("ready = {{ exec = [\"test\", \"-e\", \"{marker}\"], interval = \"20ms\" }}"),
        ),
        process("job", "primary", &format!("test -e {marker} && echo job saw db up"), ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("job saw db up"), "{outcome:?}");
    assert!(!outcome.stderr.contains("Reaped zombie"), "probe commands are reaped as checks");
}

#[test]
fn sidecar_not_ready_in_time_stops_the_run_naming_the_probe_and_last_error() {
    let scratch = Scratch::new("not-ready");
    let never = scratch.path("never");
    let started = scratch.path("job-started");
    let map = [
        process(
            "db",
            "sidecar",
            &until_term("db", ""),
            &format!("ready = {{ file = \"{never}\", interval = \"20ms\", timeout = \"300ms\" }}"),
        ),
        process("job", "primary", &format!("touch {started}"), ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 1, "{outcome:?}");
    let expected = format!("sidecar db is not ready within 300ms: file {never}: {never} does not exist: stopping");
    assert!(outcome.stderr.contains(&expected), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("db got TERM"), "what was started is stopped: {outcome:?}");
    assert!(!std::path::Path::new(&started).exists(), "the primary never started");
}

#[test]
fn sidecar_not_ready_in_time_with_on_timeout_start_lets_the_primary_run() {
    let scratch = Scratch::new("not-ready-start");
    let map = [
        process(
            "db",
            "sidecar",
            &until_term("db", ""),
            &format!(
                "ready = {{ file = \"{}\", interval = \"20ms\", timeout = \"200ms\", on_timeout = \"start\" }}",
                scratch.path("never")
            ),
        ),
        process("job", "primary", "echo job started; exit 3", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 3, "the primary ran and its status counts: {outcome:?}");
    assert!(outcome.stderr.contains("starting the rest anyway"), "{}", outcome.stderr);
    let started_without = "every process has started; not ready, and started without (on_timeout = \"start\"): db";
    assert!(outcome.stderr.contains(started_without), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("every sidecar is ready"), "{}", outcome.stderr);
}

#[test]
fn a_sidecar_started_without_under_on_timeout_start_is_not_ready_with_its_probes_error() {
    let scratch = Scratch::new("not-ready-why");
    let (never, gate) = (scratch.path("never"), scratch.path("gate"));
    let ready =
        format!("ready = {{ file = \"{never}\", interval = \"20ms\", timeout = \"200ms\", on_timeout = \"start\" }}");
    let map = [
        process("db", "sidecar", &until_term("db", ""), &ready),
        process("job", "primary", &format!("echo job started; until [ -e {gate} ]; do sleep 0.02; done"), ""),
    ]
    .concat();
    let mut running = common::pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_line("job started");
    let (code, out, err) = common::ask_in(running.exeunt_pid(), &["--ready"]);
    std::fs::write(&gate, "").unwrap();
    assert_eq!(code, 1, "{out}{err}");
    let why = format!("not ready: db is starting (not ready within 200ms: file {never}: {never} does not exist)");
    assert_eq!(err.trim_end(), why);
    assert_eq!(running.finish().code, 0);
}

#[test]
fn sidecar_that_exits_before_it_is_ready_fails_the_start_with_its_status() {
    let scratch = Scratch::new("exit-before-ready");
    let map = [
        process("db", "sidecar", "exit 4", &format!("ready = {{ file = \"{}\" }}", scratch.path("never"))),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert!(outcome.stderr.contains("sidecar db is not ready: it exited with exit code 4"), "{}", outcome.stderr);
    assert!(!outcome.stdout.contains("job started"));
}

#[test]
fn sigterm_during_a_hung_http_probe_is_acted_on_at_once() {
    // A server that accepts and never answers.
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let (accepted, on_accept) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in server.incoming().map_while(Result::ok) {
            held.push(stream);
            let _ = accepted.send(());
        }
    });
    let scratch = Scratch::new("hung-probe");
    let map = [
        process(
            "mesh",
            "sidecar",
            &until_term("mesh", "echo mesh up;"),
            &format!(
                "ready = {{ http = \"http://127.0.0.1:{port}/ready\", attempt_timeout = \"60s\", timeout = \"60s\" }}"
            ),
        ),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    on_accept.recv_timeout(HANG).expect("the probe connected");
    running.expect_line("mesh up");
    let sent = running.elapsed();
    running.signal(libc::SIGTERM);
    running.expect_log("received SIGTERM: stopping");
    let outcome = running.finish();
    let acted = outcome.time_of(common::Stream::Stderr, "received SIGTERM: stopping").saturating_sub(sent);
    println!("SIGTERM during a hung probe acted on after {acted:?}");
    assert!(acted < Duration::from_secs(1), "{acted:?}");
    assert_eq!(outcome.code, 143, "stopped before any primary ran: {outcome:?}");
    assert!(outcome.stdout.contains("mesh got TERM") && !outcome.stdout.contains("job started"), "{outcome:?}");
    assert!(outcome.elapsed < Duration::from_secs(10), "{outcome:?}");
}

#[test]
fn a_probe_that_answers_slowly_is_cut_off_by_its_attempt_timeout_and_retried() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    // The first connection gets no answer; the next ones get 200 at once.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (n, stream) in server.incoming().map_while(Result::ok).enumerate() {
            if n == 0 {
                held.push(stream);
            } else {
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        }
    });
    let scratch = Scratch::new("slow-probe");
    let map = [
        process(
            "mesh",
            "sidecar",
            &until_term("mesh", ""),
            &format!(
                "ready = {{ http = \"http://127.0.0.1:{port}/\", attempt_timeout = \"200ms\", interval = \"10ms\" }}"
            ),
        ),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-vv", "-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(
        outcome.stderr.contains("sidecar mesh is ready after") && outcome.stderr.contains("(2 probes)"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn exeunt_waiting_for_readiness_wakes_up_only_for_its_probes() {
    let scratch = Scratch::new("probe-wakeups");
    let map = [
        process(
            "db",
            "sidecar",
            &until_term("db", "echo db started;"),
            &format!("ready = {{ file = \"{}\", interval = \"100ms\", timeout = \"60s\" }}", scratch.path("never")),
        ),
        process("job", "primary", "true", ""),
    ]
    .concat();
    let mut running = pid1(&["-vv", "-c", &scratch.file("map.toml", &map)]);
    running.expect_line("db started");
    running.expect_log("probe of db failed");
    let pid = running.exeunt_pid();
    // Each return from epoll_wait ends one voluntary switch; involuntary ones are
    // preemption by other processes, not wake-ups.
    let switches = || status_field(pid, "voluntary_ctxt_switches");
    let (from, before) = (running.elapsed(), switches());
    std::thread::sleep(Duration::from_secs(2));
    let (to, after) = (running.elapsed(), switches());
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    let probes =
        outcome.lines.iter().filter(|l| l.text.contains("probe of db failed") && l.at >= from && l.at <= to).count()
            as u64;
    println!("{} wake-ups for {probes} probes in 2s", after - before);
    assert!((15..=25).contains(&probes), "a probe every 100ms: {probes}");
    assert!(after - before <= probes + 2, "{} wake-ups for {probes} probes", after - before);
}

/// A run whose sidecar is `plain_http.py HOST PORT ANSWER`, probed with `ready`, and
/// whose primary only says that it ran.
fn probed(test: &str, host: &str, port: u16, answer: &str, ready: &str) -> common::Outcome {
    assert!(std::path::Path::new("/usr/bin/python3").exists(), "python3 is missing: apt-get install python3");
    let scratch = Scratch::new(test);
    let server =
        format!("exec python3 {}/tests/helpers/plain_http.py {host} {port} {answer}", env!("CARGO_MANIFEST_DIR"));
    let ready = format!("ready = {{ {ready}, timeout = \"20s\" }}");
    let map = process("web", "sidecar", &server, &ready) + &process("job", "primary", "echo job ran", "");
    run_pid1(&["-c", &scratch.file("map.toml", &map)])
}

#[test]
fn an_http_answer_whose_lines_end_in_a_bare_newline_counts_as_ready() {
    let port = free_port();
    let outcome =
        probed("bare-newlines", "127.0.0.1", port, "bare-newlines", &format!("http = \"http://127.0.0.1:{port}/\""));
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stderr.contains("sidecar web is ready"), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("job ran"), "{outcome:?}");
}

#[test]
fn a_301_counts_as_ready_as_the_kubelet_counts_200_to_399() {
    let port = free_port();
    let outcome = probed("redirect", "127.0.0.1", port, "redirect", &format!("http = \"http://127.0.0.1:{port}/\""));
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stderr.contains("sidecar web is ready"), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("answered redirect"), "the probe got the 301: {outcome:?}");
}

#[test]
fn localhost_reaches_a_server_that_listens_on_ipv6_loopback_only() {
    for (name, probe) in [("http", "http = \"http://localhost:{port}/\""), ("tcp", "tcp = \"localhost:{port}\"")] {
        let port = free_port();
        let ready = probe.replace("{port}", &port.to_string());
        let outcome = probed(&format!("v6-only-{name}"), "::1", port, "bare-newlines", &ready);
        assert_eq!(outcome.code, 0, "{name}: {outcome:?}");
        assert!(outcome.stderr.contains("sidecar web is ready"), "{name}: {}", outcome.stderr);
        assert!(outcome.stdout.contains("job ran"), "{name}: {outcome:?}");
    }
}

#[test]
fn a_sidecar_that_exits_just_after_its_probe_passed_is_warned_about_the_probe_and_after_3_again() {
    let scratch = Scratch::new("probe-other");
    // Another process holds the port the probe knocks on: the probe passes at once,
    // while the sidecar itself fails shortly after each start.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = other.local_addr().expect("addr").port();
    let map = [
        process("web", "sidecar", "sleep 0.2; exit 1", &format!("ready = {{ tcp = \"127.0.0.1:{port}\" }}")),
        process("job", "primary", "sleep 3", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let err = &outcome.stderr;
    let each = "after its probe passed: the probe may have passed against another process";
    assert!(common::count(err, each) >= 3, "{err}");
    let third = "sidecar web has exited within 1s of passing its probe 3 times in a row";
    assert_eq!(common::count(err, third), 1, "said once: {err}");
    drop(other);
}

#[test]
fn a_probe_whose_program_cannot_start_fails_the_start_at_once_not_at_the_timeout() {
    let scratch = Scratch::new("probe-missing");
    let started = scratch.path("started");
    // The program goes missing after the plan was made; command_check = false stands
    // for that here.
    let map = [
        process(
            "db",
            "sidecar",
            &until_term("db", ""),
            "ready = { exec = [\"/no/such/checker\"] }\ncommand_check = false",
        ),
        process("job", "primary", &format!("touch {started}"), ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 1, "{outcome:?}");
    let expected =
        "sidecar db is not ready: exec [\"/no/such/checker\"]: command '/no/such/checker' not found: stopping";
    assert!(outcome.stderr.contains(expected), "{}", outcome.stderr);
    assert!(outcome.elapsed < std::time::Duration::from_secs(5), "not the 30 s timeout: {:?}", outcome.elapsed);
    assert!(!std::path::Path::new(&started).exists(), "the primary never started");
}

/// Asks `--ready` of the exeunt with host pid `pid` until it exits `code`, for at most
/// 10 s; returns how long that took.
fn ready_turns(pid: i32, code: i32) -> Duration {
    let asked = std::time::Instant::now();
    loop {
        let (answer, out, err) = common::ask_in(pid, &["--ready"]);
        if answer == code {
            return asked.elapsed();
        }
        assert!(asked.elapsed() < Duration::from_secs(10), "--ready still answers {answer}: {out}{err}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid `--status` shows for `name`.
fn status_pid(pid: i32, name: &str) -> String {
    let (_, status, _) = common::ask_in(pid, &["--status"]);
    let line = status.lines().find(|l| l.split_whitespace().next() == Some(name)).expect("a row");
    line.split_whitespace().nth(2).expect("a pid").to_string()
}

#[test]
fn with_a_period_an_http_sidecar_answering_503_turns_not_ready_and_back_and_is_not_restarted() {
    let scratch = Scratch::new("period");
    let (port, gate, done) = (common::free_port(), scratch.path("gate"), scratch.path("done"));
    std::fs::write(&gate, "").unwrap();
    let sidecar = format!("{} {gate}", common::http_sidecar(port, 0));
    let ready = format!(
        "ready = {{ http = \"http://127.0.0.1:{port}/ready\", period = \"200ms\", failure_threshold = 2, attempt_timeout = \"500ms\" }}"
    );
    let map = [
        process("web", "sidecar", &sidecar, &ready),
        process("job", "primary", &format!("until [ -e {done} ]; do sleep 0.05; done"), ""),
    ]
    .concat();
    let mut running = common::pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_log("started sidecar web");
    let pid = running.exeunt_pid();
    ready_turns(pid, 0);
    let web = status_pid(pid, "web");
    std::fs::remove_file(&gate).unwrap();
    let lost = ready_turns(pid, 1);
    std::fs::write(&gate, "").unwrap();
    let back = ready_turns(pid, 0);
    assert_eq!(status_pid(pid, "web"), web, "the sidecar was not restarted");
    std::fs::write(&done, "").unwrap();
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    println!("not ready {lost:?} after the server answered 503 (period 200ms x 2), ready {back:?} after 200");
    // Two periods and an attempt, with room for a loaded machine.
    assert!(lost < Duration::from_secs(3), "{lost:?}");
    let err = &outcome.stderr;
    assert!(err.contains("sidecar web is not ready: 2 failed attempts in a row: http"), "{err}");
    assert!(err.contains("sidecar web is ready again"), "{err}");
}

#[test]
fn a_hung_redis_fails_its_liveness_probe_and_is_restarted_then_ready_again() {
    common::require("/usr/bin/redis-server", "redis-server");
    let scratch = Scratch::new("live-redis");
    let (port, done) = (common::free_port(), scratch.path("done"));
    let ping = format!("exec = [\"redis-cli\", \"-p\", \"{port}\", \"ping\"]");
    let extra = format!(
        "ready = {{ {ping}, period = \"500ms\", failure_threshold = 1 }}\n\
         live = {{ {ping}, period = \"500ms\", failure_threshold = 2 }}"
    );
    let server = format!("exec redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no");
    let map = [
        process("redis", "sidecar", &server, &extra),
        process("job", "primary", &format!("until [ -e {done} ]; do sleep 0.05; done"), ""),
    ]
    .concat();
    let mut running = common::pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_log("sidecar redis is ready");
    let pid = running.exeunt_pid();
    let first = status_pid(pid, "redis");
    // Hung: it takes connections and answers nothing.
    let stopped = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-p", "-m", "kill", "-STOP", &first])
        .status()
        .expect("nsenter");
    assert!(stopped.success());
    let lost = ready_turns(pid, 1);
    let restarted = std::time::Instant::now();
    while status_pid(pid, "redis") == first || common::ask_in(pid, &["--ready"]).0 != 0 {
        assert!(restarted.elapsed() < Duration::from_secs(20), "never restarted and ready again");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("not ready {lost:?} after SIGSTOP, restarted and ready {:?} after that", restarted.elapsed());
    std::fs::write(&done, "").unwrap();
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let err = &outcome.stderr;
    assert!(
        err.contains(&format!("sidecar redis (pid {first}) failed its liveness probe 2 times in a row: exec")),
        "{err}"
    );
    assert!(err.contains("starting it again, since its liveness probe failed"), "{err}");
    assert!(err.contains("sidecar redis is not ready: 1 failed attempt: exec"), "{err}");
}

#[test]
fn a_sidecar_that_writes_a_newline_to_descriptor_3_is_ready_then_and_one_that_never_does_is_not() {
    let scratch = Scratch::new("notice-fd");
    // It says it is ready 300 ms after its start, on descriptor 3, as s6 services do.
    let map = [
        process("web", "sidecar", &until_term("web", "sleep 0.3; echo >&3;"), "ready = { fd = 3 }"),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let ready = outcome.time_of(common::Stream::Stderr, "sidecar web is ready after");
    let started = outcome.time_of(common::Stream::Stdout, "job started");
    // Two streams read apart: each line is only known to come after the notice.
    let notice = Duration::from_millis(300);
    assert!(ready >= notice && started >= notice, "ready at {ready:?}, job at {started:?}");
    assert!(outcome.stderr.contains("(1 probes)"), "one wait, nothing polled: {}", outcome.stderr);
    // Closing it without a word fails the start at once; saying nothing, at the timeout.
    let map = [
        process("web", "sidecar", &until_term("web", "exec 3>&-;"), "ready = { fd = 3, timeout = \"2s\" }"),
        process("job", "primary", "echo job started", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("closed.toml", &map)]);
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert!(outcome.stderr.contains("descriptor 3 was closed without a newline"), "{}", outcome.stderr);
    assert!(outcome.elapsed < Duration::from_secs(2), "not the 2 s timeout: {:?}", outcome.elapsed);
    assert!(!outcome.stdout.contains("job started"), "{outcome:?}");
}

#[test]
fn a_primary_that_fails_its_liveness_probe_is_stopped_and_the_run_ends_with_its_status() {
    let scratch = Scratch::new("live-primary");
    let alive = scratch.path("alive");
    // Alive for 300 ms, then hung as far as its probe can tell; it exits 7 on SIGTERM.
    let job = format!(
        "trap 'echo job stopped; exit 7' TERM; touch {alive}; sleep 0.3; rm {alive}; while :; do sleep 1000 & wait $!; done"
    );
    let live = format!("live = {{ file = \"{alive}\", period = \"100ms\", failure_threshold = 2 }}");
    let map =
        [process("side", "sidecar", &until_term("side", ""), ""), process("job", "primary", &job, &live)].concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 7, "{outcome:?}");
    assert!(outcome.stdout.contains("job stopped"), "{outcome:?}");
    let err = &outcome.stderr;
    assert!(err.contains("failed its liveness probe 2 times in a row: file"), "{err}");
    assert!(err.contains(": stopping it"), "{err}");
    assert!(err.contains("primary job exited with exit code 7 after"), "{err}");
    assert!(err.contains("stopped since its liveness probe failed"), "{err}");
    assert!(!err.contains("starting it again"), "a primary is not restarted: {err}");
}
