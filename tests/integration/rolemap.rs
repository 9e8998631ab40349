//! A bad role map is refused with one line that names the file, line and key; exit 2
//! and nothing started. Every example under config/ is valid.

use crate::common;
use common::{Scratch, plain};

/// A valid process whose start would leave a mark.
fn marker(scratch: &Scratch) -> String {
    format!(
        "[[process]]\nname = \"marker\"\nrole = \"sidecar\"\ncommand = [\"touch\", \"{}\"]\n",
        scratch.path("started")
    )
}

#[test]
fn every_bad_role_map_exits_2_naming_the_line_and_starts_nothing() {
    let scratch = Scratch::new("bad-rolemaps");
    let primary = "[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\n";
    let cases = [
        (
            "unknown key",
            format!("{}comand = [\"x\"]\n{primary}", marker(&scratch)),
            ":5:1: unknown field 'comand', expected one of",
        ),
        (
            "duplicate name",
            format!("{}{primary}{primary}", marker(&scratch)),
            ":10:8: name: 'job' is already the name of the process on line 6",
        ),
        ("missing primary", marker(&scratch), ":3:8: role: no process has role = \"primary\""),
        (
            "empty command",
            format!("{}[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = []\n", marker(&scratch)),
            ":8:11: command: must name a program",
        ),
        (
            "bad duration",
            format!("grace_period = \"10 seconds\"\n{}{primary}", marker(&scratch)),
            ":1:16: grace_period: invalid duration '10 seconds'",
        ),
        (
            "single brackets",
            format!("{}{}", marker(&scratch), primary.replace("[[process]]", "[process]")),
            ":5:2: process: write [[process]] with double brackets: each [[process]] table is one entry of a list",
        ),
        (
            "single brackets first",
            primary.replace("[[process]]", "[process]"),
            ":1:1: process: write [[process]] with double brackets: each [[process]] table is one entry of a list",
        ),
        (
            "bad signal",
            format!("{}stop_signal = \"SIGNOPE\"\n{primary}", marker(&scratch)),
            ":5:15: stop_signal: unknown signal 'SIGNOPE'",
        ),
        (
            "bad name",
            format!("{}{}", marker(&scratch), primary.replace("job", "../job")),
            ":6:8: name: '../job' is not a valid name",
        ),
        (
            "bad role",
            format!("{}{}", marker(&scratch), primary.replace("primary", "boss")),
            ":7:8: unknown variant 'boss', expected one of 'primary', 'sidecar', 'task'",
        ),
    ];
    for (what, text, expected) in cases {
        let map = scratch.file("map.toml", &text);
        let outcome = plain(&["-c", &map]).finish();
        assert_eq!(outcome.code, 2, "{what}: {outcome:?}");
        let first = outcome.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("exeunt: {map}{expected}")), "{what}: {first}");
        assert_eq!(outcome.stderr.lines().count(), 1, "{what}: one line: {}", outcome.stderr);
        assert!(!std::path::Path::new(&scratch.path("started")).exists(), "{what}: something was started");
        assert_eq!(plain(&["--check", &map]).finish().code, 2, "{what}: --check refuses it too");
    }
}

#[test]
fn a_missing_role_map_file_is_named() {
    let outcome = plain(&["-c", "/no/such/map.toml"]).finish();
    assert_eq!(outcome.code, 2);
    assert!(outcome.stderr.starts_with("exeunt: /no/such/map.toml: cannot read the role map:"), "{}", outcome.stderr);
}

#[test]
fn a_user_that_does_not_exist_is_refused_before_anything_starts() {
    let scratch = Scratch::new("bad-user");
    let text = format!(
        "{}[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\nuser = \"no-such-user-here\"\n",
        marker(&scratch)
    );
    let map = scratch.file("map.toml", &text);
    let outcome = plain(&["-c", &map]).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(
        outcome.stderr.trim(),
        format!("exeunt: {map}:9:8: process job: user 'no-such-user-here' does not exist in /etc/passwd")
    );
    assert!(!std::path::Path::new(&scratch.path("started")).exists());
}

#[test]
fn every_example_role_map_resolves_and_only_the_programs_it_names_are_missing_here() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let mut maps: Vec<String> = std::fs::read_dir(dir)
        .expect("config/ exists")
        .map(|e| e.expect("entry").path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    maps.sort();
    assert!(maps.len() >= 2, "{maps:?}");
    let args: Vec<&str> = std::iter::once("--check").chain(maps.iter().map(String::as_str)).collect();
    let outcome = plain(&args).finish();
    // The examples run servers and jobs that this machine has not installed: --check
    // looks their programs up, as a run would, and names each that is missing. That
    // must be all it finds.
    let missing = |line: &str| {
        line.starts_with("exeunt: ") && line.ends_with("' does not exist") && line.contains(": command '/")
    };
    for line in outcome.stderr.lines() {
        assert!(missing(line), "not a missing program: {line}");
    }
    let programs: Vec<&str> = outcome.stderr.lines().filter_map(|l| l.split("command '").nth(1)).collect();
    assert!(programs.contains(&"/usr/local/bin/cloud-sql-proxy' does not exist"), "{programs:?}");
    assert_eq!(outcome.code, if outcome.stderr.is_empty() { 0 } else { 2 }, "{outcome:?}");
    for map in &maps {
        let refused = outcome
            .stderr
            .lines()
            .any(|line| line.starts_with(&format!("exeunt: {map}:")) || line.contains(&format!("{map}:")));
        let shown = outcome.stdout.contains(&format!("{map}: ok"));
        assert!(
            shown != refused,
            "{map}: shown as ok {shown}, refused {refused}:\n{}\n{}",
            outcome.stdout,
            outcome.stderr
        );
    }
    assert!(
        outcome.stdout.contains(&format!("{dir}/demo.toml: ok")),
        "the demo's programs are all here: {}",
        outcome.stdout
    );
}

#[test]
fn check_refuses_what_a_run_would_refuse_and_shows_what_a_run_would_use() {
    let scratch = Scratch::new("check-resolves");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo.toml");
    let mut command = std::process::Command::new(common::exeunt());
    command.args(["--check", demo]).env("KUBEXIT_NAME", "../x");
    let outcome = common::start(command).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert!(outcome.stderr.starts_with("exeunt: KUBEXIT_NAME: '../x' is not a valid name"), "{}", outcome.stderr);

    let job = "[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\n";
    let map = scratch.file("user.toml", &format!("{job}user = \"no-such-user-here\"\n"));
    let outcome = plain(&["--check", &map]).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(
        outcome.stderr.trim(),
        format!("exeunt: {map}:5:8: process job: user 'no-such-user-here' does not exist in /etc/passwd")
    );

    let map = scratch.file("match.toml", &format!("match_timeout = \"5s\"\n{job}"));
    let mut command = std::process::Command::new(common::exeunt());
    command.args(["--check", &map]).env("KUBEXIT_NAME", "app").env("KUBEXIT_BIRTH_TIMEOUT", "60s");
    let outcome = common::start(command).finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("birth timeout 1m"), "kubexit's variable reaches the pod: {}", outcome.stdout);
    assert!(outcome.stdout.contains("sidecars found by match may take 5s to appear"), "{}", outcome.stdout);
}

/// `--check` and a run of the same role map, with a stack limit of 1 MiB (exec then
/// takes 256 KiB of arguments and environment): both exit 2 with the same line.
fn check_and_run_refuse(scratch: &Scratch, map: &str, expected: &str) {
    let path = scratch.file("refused.toml", map);
    for args in [vec!["--check", path.as_str()], vec!["-c", path.as_str()]] {
        let mut command = std::process::Command::new("sh");
        command
            .args(["-c", "ulimit -s 1024 && exec \"$EXEUNT\" \"$@\"", "sh"])
            .args(&args)
            .env("EXEUNT", common::exeunt());
        let outcome = common::start(command).finish();
        assert_eq!(outcome.code, 2, "{args:?}: {outcome:?}");
        assert!(outcome.stderr.contains(expected), "{args:?}: {}", outcome.stderr);
        assert!(!std::path::Path::new(&scratch.path("started")).exists(), "{args:?} started something");
    }
}

#[test]
fn check_refuses_what_the_run_would_refuse_uids_setresuid_cannot_take_and_oversized_command_lines() {
    let scratch = Scratch::new("check-as-run");
    let job = |extra: &str| {
        format!("{}[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"{extra}]\n", marker(&scratch))
    };
    for (user, what) in [("4294967295", "uid 4294967295"), ("0:4294967295", "gid 4294967295")] {
        let map = format!("{}user = \"{user}\"\n", job(""));
        check_and_run_refuse(&scratch, &map, &format!("process job: {what} is not one a process can run as"));
    }
    // 30,000 one-letter arguments: 300 kB of strings and pointers, past the 256 KiB.
    let many = ",\"x\"".repeat(30_000);
    check_and_run_refuse(&scratch, &job(&many), "process job: its command (30001 arguments) and environment take");
    let long = format!(", \"{}\"", "y".repeat(200_000));
    check_and_run_refuse(&scratch, &job(&long), "is longer than the 131072 bytes exec takes");
}

#[test]
fn a_start_that_fails_for_want_of_descriptors_says_so() {
    assert!(std::path::Path::new("/usr/bin/prlimit").exists(), "prlimit is missing: apt-get install util-linux");
    let scratch = Scratch::new("no-descriptors");
    let go = scratch.path("go");
    let map = scratch.file(
        "map.toml",
        &format!(
            "output = \"prefix\"\n[[process]]\nname = \"side\"\nrole = \"sidecar\"\ncommand = [\"sleep\", \"30\"]\n\
             ready = {{ file = \"{go}\", interval = \"20ms\" }}\n\
             [[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\n"
        ),
    );
    let mut running = common::pid1(&["-c", &map]);
    running.expect_log("started sidecar side");
    // Its limit is lowered to its lowest free descriptor: it can open none more, as if
    // it had used them all, whatever it holds now.
    let pid = running.exeunt_pid();
    let open: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("its descriptors")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let lowest_free = (0..).find(|fd| !open.contains(fd)).expect("a free number");
    let limit = format!("--nofile={lowest_free}:{lowest_free}");
    let lowered = std::process::Command::new("prlimit").args(["--pid", &pid.to_string(), &limit]).status();
    assert!(lowered.expect("prlimit").success());
    std::fs::write(&go, "").unwrap();
    let outcome = running.finish();
    assert_eq!(outcome.code, 1, "exeunt's own limit, not a command that cannot execute: {outcome:?}");
    let said = format!(
        "cannot start job: command 'true' cannot be started: exeunt has no descriptor left (its limit of open files is {lowest_free})"
    );
    assert!(outcome.stderr.contains(&said), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("started primary job"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("sidecar side exited"), "what was started is stopped: {}", outcome.stderr);
}

#[test]
fn a_role_map_with_three_mistakes_gets_three_lines_naming_each_and_starts_nothing() {
    let scratch = Scratch::new("three-mistakes");
    let text = format!(
        "{}[[process]]\ncolour = \"red\"\nname = \"web\"\nrole = \"primary\"\ncommand = [\"true\"]\ngrace_period = \"ten\"\n\n\
         [[process]]\nrole = \"sidecar\"\nname = \"web\"\ncommand = [\"true\"]\n",
        marker(&scratch)
    );
    let map = scratch.file("map.toml", &text);
    for args in [["-c", map.as_str()], ["--check", map.as_str()]] {
        let outcome = plain(&args).finish();
        assert_eq!(outcome.code, 2, "{args:?}: {outcome:?}");
        let lines: Vec<&str> = outcome.stderr.lines().collect();
        assert_eq!(lines.len(), 3, "{args:?}: {}", outcome.stderr);
        assert!(lines[0].starts_with(&format!("exeunt: {map}:6:1: unknown field 'colour'")), "{}", outcome.stderr);
        assert!(
            lines[1].starts_with(&format!("exeunt: {map}:10:16: grace_period: invalid duration 'ten'")),
            "{}",
            outcome.stderr
        );
        assert_eq!(lines[2], format!("exeunt: {map}:14:8: name: 'web' is already the name of the process on line 7"));
        assert!(!std::path::Path::new(&scratch.path("started")).exists(), "{args:?}: something was started");
    }
}

#[test]
fn every_user_and_workdir_that_cannot_be_had_is_named_with_its_place_at_once() {
    let scratch = Scratch::new("resolve-mistakes");
    let text = format!(
        "{}[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\nuser = \"no-such-user-here\"\n\n\
         [[process]]\nname = \"db\"\nrole = \"sidecar\"\ncommand = [\"true\"]\nworkdir = \"/no/such/dir\"\n",
        marker(&scratch)
    );
    let map = scratch.file("map.toml", &text);
    let outcome = plain(&["-c", &map]).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(
        outcome.stderr.lines().collect::<Vec<_>>(),
        [
            format!("exeunt: {map}:9:8: process job: user 'no-such-user-here' does not exist in /etc/passwd"),
            format!("exeunt: {map}:15:11: process db: workdir '/no/such/dir' is not a directory"),
        ]
    );
    assert!(!std::path::Path::new(&scratch.path("started")).exists(), "something was started");
}
