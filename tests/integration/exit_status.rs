//! exeunt exits with the primary's status, the way a shell reports it, as PID 1.

use crate::common;
use common::{SLEEP_FOREVER, Scratch, run_pid1};

#[test]
fn exit_codes_of_the_primary_pass_through() {
    for code in [0, 1, 3, 255] {
        let outcome = run_pid1(&["sh", "-c", &format!("exit {code}")]);
        assert_eq!(outcome.code, code, "{outcome:?}");
    }
}

#[test]
fn a_primary_killed_by_a_signal_gives_128_plus_the_signal() {
    let outcome = run_pid1(&["sh", "-c", "kill -KILL $$"]);
    assert_eq!(outcome.code, 137, "SIGKILL: {outcome:?}");
    let outcome = run_pid1(&["sh", "-c", "kill -SEGV $$"]);
    assert_eq!(outcome.code, 139, "SIGSEGV: {outcome:?}");
}

#[test]
fn remapped_codes_become_zero_and_others_pass() {
    assert_eq!(run_pid1(&["-e", "3", "sh", "-c", "exit 3"]).code, 0);
    assert_eq!(run_pid1(&["-e", "3", "-e", "143", "sh", "-c", "kill -TERM $$"]).code, 0);
    assert_eq!(run_pid1(&["-e", "3", "sh", "-c", "exit 4"]).code, 4);
}

#[test]
fn a_missing_command_exits_127_and_names_it() {
    let outcome = run_pid1(&["/no/such/program", "arg"]);
    assert_eq!(outcome.code, 127, "{outcome:?}");
    assert!(outcome.stderr.contains("command '/no/such/program' not found"), "{}", outcome.stderr);
}

#[test]
fn a_command_that_is_not_executable_exits_126_and_names_it() {
    let scratch = Scratch::new("not-executable");
    let script = scratch.file("script.sh", "#!/bin/sh\nexit 0\n");
    let outcome = run_pid1(&[&script]);
    assert_eq!(outcome.code, 126, "{outcome:?}");
    assert!(outcome.stderr.contains(&format!("command '{script}' cannot be executed")), "{}", outcome.stderr);
}

#[test]
fn with_a_role_map_the_primarys_failure_is_the_exit_status() {
    let scratch = Scratch::new("rolemap-status");
    let map = scratch.file(
        "map.toml",
        &format!(
            r#"
[[process]]
name = "proxy"
role = "sidecar"
command = ["sh", "-c", "trap 'kill -9 $! 2>/dev/null; exit 0' TERM; {SLEEP_FOREVER}"]

[[process]]
name = "job"
role = "primary"
command = ["sh", "-c", "exit 3"]
"#
        ),
    );
    let outcome = run_pid1(&["-c", &map]);
    assert_eq!(outcome.code, 3, "{outcome:?}");
    // The command line's COMMAND replaces the primary's.
    let outcome = run_pid1(&["-c", &map, "--", "sh", "-c", "exit 0"]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
}

#[test]
fn the_first_failing_primary_sets_the_status_and_stops_the_others() {
    let scratch = Scratch::new("fail-fast");
    let map = scratch.file(
        "map.toml",
        &format!(
            r#"
[[process]]
name = "slow"
role = "primary"
command = ["sh", "-c", "trap 'kill -9 $! 2>/dev/null; exit 0' TERM; {SLEEP_FOREVER}"]

[[process]]
name = "broken"
role = "primary"
command = ["sh", "-c", "exit 5"]
"#
        ),
    );
    let outcome = run_pid1(&["-c", &map]);
    assert_eq!(outcome.code, 5, "{outcome:?}");
    assert!(outcome.stderr.contains("primary broken failed: stopping the other primaries"), "{}", outcome.stderr);
    assert!(outcome.elapsed < std::time::Duration::from_secs(5), "fail fast, not after a grace period: {outcome:?}");
}

#[test]
fn a_bad_command_line_exits_2_where_tini_exits_1_and_says_what_is_wrong() {
    let outcome = common::plain(&["--frobnicate", "true"]).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(outcome.stderr.trim(), "exeunt: unknown option '--frobnicate' (see exeunt --help)");
}
