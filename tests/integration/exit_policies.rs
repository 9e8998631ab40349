//! A sidecar that exits while the primaries run is restarted with back-off, ignored,
//! or fails the run, as its `on_exit` says.

use crate::common;
use std::time::Duration;

use common::{Scratch, Stream, pid1, process, run_pid1, until_term};

#[test]
fn crashing_sidecar_is_restarted_with_doubling_back_off_then_fails_after_max_restarts() {
    let scratch = Scratch::new("backoff");
    let map = [
        process("flaky", "sidecar", "echo flaky started; exit 1", "max_restarts = 4"),
        process("job", "primary", &until_term("job", ""), ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 1, "the sidecar's status: {outcome:?}");
    assert!(outcome.stdout.contains("job got TERM"), "the primary was stopped: {outcome:?}");
    assert!(
        outcome.stderr.contains("sidecar flaky exited with exit code 1")
            && outcome.stderr.contains("and 4 restarts: stopping everything"),
        "{}",
        outcome.stderr
    );
    let starts: Vec<Duration> = outcome
        .lines
        .iter()
        .filter(|l| l.stream == Stream::Stdout && l.text == "flaky started")
        .map(|l| l.at)
        .collect();
    assert_eq!(starts.len(), 5, "{outcome:?}");
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    println!("restart gaps: {gaps:?}");
    for (gap, expected_ms) in gaps.iter().zip([100, 200, 400, 800]) {
        let expected = Duration::from_millis(expected_ms);
        assert!(*gap >= expected.mul_f32(0.9), "gap {gap:?} shorter than the {expected:?} back-off");
        assert!(*gap < expected + Duration::from_millis(500), "gap {gap:?} far past the {expected:?} back-off");
    }
}

/// CPU time (user + system) of a process and of its reaped children, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("alive");
    let after_name = &stat[stat.rfind(')').expect("stat") + 2..];
    // Fields 14 to 17 of stat: utime, stime, cutime, cstime; after the name, 12 to 15.
    after_name.split_whitespace().skip(11).take(4).filter_map(|f| f.parse::<u64>().ok()).sum()
}

#[test]
fn crash_looping_sidecar_costs_under_one_percent_of_a_core() {
    let scratch = Scratch::new("crash-loop");
    let map = [
        process("flaky", "sidecar", "exit 1", ""),
        process("job", "primary", &until_term("job", "echo job started;"), ""),
    ]
    .concat();
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_line("job started");
    let pid = running.exeunt_pid();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(10));
    let after = cpu_ticks(pid);
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    // SAFETY: sysconf takes a plain integer.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let restarts = common::count(&outcome.stderr, "restarted sidecar flaky");
    println!("crash loop: {} ticks of {per_second}/s in 10s, {restarts} restarts", after - before);
    assert!(after - before <= per_second / 10, "more than 1% of a core: {} ticks", after - before);
    assert!((4..=10).contains(&restarts), "back-off, not a spin: {restarts} restarts in 10s");
    assert_eq!(outcome.code, 0, "{outcome:?}");
}

#[test]
fn sidecar_with_on_exit_ignore_lets_the_primary_finish_with_its_own_status() {
    let scratch = Scratch::new("ignore");
    let go = scratch.fifo("go");
    let map = [
        process("flaky", "sidecar", "exit 9", "on_exit = \"ignore\""),
        process("job", "primary", &format!("read x < {go}; echo job went on; exit 0"), ""),
    ]
    .concat();
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_log("ignored, the primaries run on");
    std::fs::write(&go, "go\n").expect("the primary reads the fifo");
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("job went on"));
    assert_eq!(common::count(&outcome.stderr, "started sidecar flaky"), 1, "not restarted: {}", outcome.stderr);
}

#[test]
fn sidecar_with_on_exit_fail_stops_the_primary_and_sets_the_exit_status() {
    let scratch = Scratch::new("fail");
    let up = scratch.fifo("job-up");
    for (extra, expected) in [("", 9), ("exit_code = 42", 42)] {
        let map = [
            // The sidecar fails once the primary is up and traps SIGTERM.
            process("flaky", "sidecar", &format!("read x < {up}; exit 9"), &format!("on_exit = \"fail\"\n{extra}")),
            process("job", "primary", &until_term("job", &format!("echo > {up};")), ""),
        ]
        .concat();
        let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
        assert_eq!(outcome.code, expected, "{extra}: {outcome:?}");
        assert!(outcome.stdout.contains("job got TERM"), "{outcome:?}");
        assert!(outcome.stderr.contains("sidecar flaky exited with exit code 9 after"), "{}", outcome.stderr);
    }
}

#[test]
fn a_run_that_a_sidecar_fails_never_exits_0() {
    let scratch = Scratch::new("failed-run");
    // The sidecar leaves once the primary has set its TERM trap.
    let ready = scratch.path("job-ready");
    let job = process("job", "primary", &until_term("job", &format!("touch {ready};")), "");
    let dies = format!("while [ ! -e {ready} ]; do sleep 0.01; done; exit 0");
    let cases = [
        ("on_exit fail, exit 0", "on_exit = \"fail\"", 1),
        ("on_exit fail, exit 0, exit_code 7", "on_exit = \"fail\"\nexit_code = 7", 7),
        ("past max_restarts, exit 0", "max_restarts = 1\nrestart_delay = \"10ms\"", 1),
    ];
    for (what, policy, expected) in cases {
        let _ = std::fs::remove_file(&ready);
        let map = [process("dies", "sidecar", &dies, policy), job.clone()].concat();
        let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
        assert_eq!(outcome.code, expected, "{what}: {outcome:?}");
        assert!(outcome.stdout.contains("job got TERM"), "{what}: the primary was stopped: {outcome:?}");
        assert!(outcome.stderr.contains("sidecar dies exited with exit code 0"), "{what}: {}", outcome.stderr);
    }
}

#[test]
fn a_sidecar_whose_child_holds_its_port_starts_again_cleanly_because_the_child_is_stopped_first() {
    let scratch = Scratch::new("clean-restart");
    let (log, port) = (scratch.path("binds"), common::free_port());
    // It binds the port, leaves a child holding the socket, and fails 0.3 s later.
    let sidecar = scratch.file(
        "sidecar.py",
        "import os, socket, sys, time\n\
         s = socket.socket()\n\
         try:\n    s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n\
         except OSError:\n    open(sys.argv[2], 'a').write('in use\\n'); sys.exit(2)\n\
         open(sys.argv[2], 'a').write('bound\\n')\n\
         if os.fork() == 0:\n    time.sleep(1000); os._exit(0)\n\
         time.sleep(0.3); sys.exit(1)\n",
    );
    let job = format!(
        "until [ \"$(grep -c bound {log} 2>/dev/null)\" -ge 5 ]; do sleep 0.05; done; \
         echo holders $(grep -l '^python3' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)"
    );
    let map = [
        process("web", "sidecar", &format!("exec python3 {sidecar} {port} {log}"), ""),
        process("job", "primary", &job, ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let binds = std::fs::read_to_string(&log).unwrap();
    assert!(!binds.contains("in use"), "a restart found the port held: {binds}");
    assert!(binds.matches("bound").count() >= 5, "{binds}");
    let holders: usize = outcome.stdout.trim().strip_prefix("holders ").and_then(|n| n.parse().ok()).expect("a count");
    assert!(holders <= 2, "after 4 restarts, only the running sidecar and its child: {}", outcome.stdout);
    let left =
        "sidecar web left 1 process in its process group: sending them SIGTERM (grace 10s) before it starts again";
    assert!(common::count(&outcome.stderr, left) >= 4, "{}", outcome.stderr);
}
