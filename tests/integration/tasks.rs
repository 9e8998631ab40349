//! Tasks (`role = "task"`): a migration run to completion between a database sidecar
//! and the primary that needs it, with real PostgreSQL; a failed, a retried and a
//! timed-out task.

use crate::common;
use std::time::Duration;

use common::{Scratch, free_port, process, run_pid1};

/// A role map of a PostgreSQL sidecar (stopped with SIGINT, its fast shutdown), a
/// migration task that runs the SQL `migration` through psql, and a primary that reads
/// what it made. The data directory is made with initdb.
fn database_job(scratch: &Scratch, migration: &str) -> String {
    let (bin, data) = common::postgresql_cluster(scratch, &["--auth=trust"]);
    let port = free_port();
    let server =
        format!("exec {} -D {data} -k {data} -p {port} -c listen_addresses=127.0.0.1", bin.join("postgres").display());
    let ready = format!(
        "user = \"postgres\"\nstop_signal = \"SIGINT\"\ngrace_period = \"20s\"\n\
         ready = {{ exec = [\"{}\", \"-h\", \"127.0.0.1\", \"-p\", \"{port}\"] }}",
        bin.join("pg_isready").display()
    );
    let psql = format!("psql -h 127.0.0.1 -p {port} -U postgres -X -v ON_ERROR_STOP=1");
    // Run from a file, psql exits 3 when a statement fails.
    let sql = scratch.file("migration.sql", migration);
    [
        process("db", "sidecar", &server, &ready),
        process("migrate", "task", &format!("{psql} -f {sql} && echo migrate done"), ""),
        process("job", "primary", &format!("{psql} -tAc 'select count(*) from jobs'"), ""),
    ]
    .concat()
}

#[test]
fn a_migration_task_runs_between_the_database_and_the_primary_which_reads_what_it_made() {
    let scratch = Scratch::new("task-migration");
    let map = database_job(&scratch, "create table jobs (id int); insert into jobs values (1), (2), (3)");
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    let err = &outcome.stderr;
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("migrate done"), "{outcome:?}");
    assert_eq!(outcome.stdout.lines().last(), Some("3"), "the primary read the migrated table: {outcome:?}");
    assert!(err.contains("task migrate completed with exit code 0 after"), "{err}");
    assert!(common::position(err, "task migrate completed") < common::position(err, "started primary job"), "{err}");
    assert!(err.contains("received fast shutdown request"), "PostgreSQL's log: {err}");
    assert!(err.contains("database system is shut down"), "{err}");
    assert!(!err.contains("SIGKILL") && !err.contains("killing"), "{err}");
}

#[test]
fn a_failed_migration_fails_the_run_with_its_status_and_the_primary_never_starts() {
    let scratch = Scratch::new("task-migration-fails");
    let map = database_job(&scratch, "select * from no_such_table");
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    let err = &outcome.stderr;
    assert_eq!(outcome.code, 3, "{outcome:?}");
    assert!(err.contains("task migrate failed with exit code 3 after"), "{err}");
    assert!(!err.contains("started primary job"), "{err}");
    assert!(err.contains("received fast shutdown request") && err.contains("database system is shut down"), "{err}");
    assert!(!err.contains("SIGKILL") && !err.contains("killing"), "{err}");
}

#[test]
fn a_task_that_fails_once_succeeds_on_its_second_try_and_the_primary_runs() {
    let scratch = Scratch::new("task-retry");
    let tried = scratch.path("tried");
    let task = format!("if [ -e {tried} ]; then echo second try; else touch {tried}; echo first try; exit 1; fi");
    let map = [
        process("setup", "task", &task, "retries = 2\nrestart_delay = \"50ms\""),
        process("job", "primary", "echo job ran", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let out = &outcome.stdout;
    assert!(common::position(out, "first try") < common::position(out, "second try"), "{out}");
    assert!(common::position(out, "second try") < common::position(out, "job ran"), "{out}");
    let err = &outcome.stderr;
    assert!(err.contains("task setup failed with exit code 1 after") && err.contains("(retry 1 of 2)"), "{err}");
    assert!(err.contains("task setup completed with exit code 0"), "{err}");
}

#[test]
fn a_task_past_its_timeout_is_stopped_and_the_run_fails_without_starting_the_primary() {
    let scratch = Scratch::new("task-timeout");
    let task = "trap 'echo setup stopped; exit 0' TERM; while :; do sleep 1000 & wait $!; done";
    let map = [
        process("setup", "task", task, "timeout = \"300ms\"\nretries = 3"),
        process("job", "primary", "echo job ran", ""),
    ]
    .concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 1, "a task that ran past its timeout fails the run, though it exited 0: {outcome:?}");
    assert!(outcome.stdout.contains("setup stopped") && !outcome.stdout.contains("job ran"), "{outcome:?}");
    let err = &outcome.stderr;
    assert!(err.contains("task setup (pid") && err.contains("is still running after its timeout of 300ms"), "{err}");
    assert!(err.contains("having run past its timeout of 300ms: stopping"), "{err}");
    assert!(!err.contains("retry"), "no retry after a timeout: {err}");
    assert!(outcome.elapsed < Duration::from_secs(5), "{:?}", outcome.elapsed);
}

#[test]
fn a_diamond_of_after_starts_both_middles_together_the_last_after_both_and_stops_backwards() {
    let scratch = Scratch::new("after-diamond");
    // Each sidecar is ready a while after its start: b after 200 ms, c after 500 ms.
    let sidecar = |name: &str, delay: &str, after: &str| {
        let flag = scratch.path(&format!("{name}-ready"));
        process(
            name,
            "sidecar",
            &common::until_term(name, &format!("sleep {delay}; touch {flag};")),
            &format!("ready = {{ file = \"{flag}\", interval = \"20ms\" }}\n{after}"),
        )
    };
    let map = [
        sidecar("a", "0", ""),
        sidecar("b", "0.2", "after = [\"a\"]"),
        sidecar("c", "0.5", "after = [\"a\"]"),
        sidecar("d", "0", "after = [\"b\", \"c\"]"),
        process("job", "primary", "echo job ran", "after = [\"d\"]"),
    ]
    .concat();
    let path = scratch.file("map.toml", &map);
    let check = common::plain(&["--check", &path]).finish();
    assert!(check.stdout.contains("start order: a; then b, c; then d; then job"), "{check:?}");
    let outcome = run_pid1(&["-c", &path]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let at = |needle: &str| outcome.time_of(common::Stream::Stderr, needle);
    let (b, c) = (at("started sidecar b"), at("started sidecar c"));
    let apart = b.abs_diff(c);
    assert!(apart < Duration::from_millis(100), "b and c start together: {b:?} and {c:?}");
    assert!(at("sidecar c is ready") <= at("started sidecar d"), "d after the later of them");
    assert!(at("sidecar b is ready") < at("sidecar c is ready"));
    let err = &outcome.stderr;
    let line = |needle: &str| common::position(err, needle);
    assert!(line("sending SIGTERM to sidecar d") < line("sending SIGTERM to sidecar b"), "{err}");
    assert!(line("sending SIGTERM to sidecar d") < line("sending SIGTERM to sidecar c"), "{err}");
    assert!(line("sidecar b exited") < line("sending SIGTERM to sidecar a"), "{err}");
    assert!(line("sidecar c exited") < line("sending SIGTERM to sidecar a"), "{err}");
}

#[test]
fn a_cycle_and_an_unknown_name_in_after_are_one_line_each_exit_2_and_nothing_starts() {
    let scratch = Scratch::new("after-mistakes");
    let marker = scratch.path("started");
    let map = [
        process("a", "sidecar", &format!("touch {marker}"), "after = [\"b\"]"),
        process("b", "sidecar", &format!("touch {marker}"), "after = [\"a\"]"),
        process("c", "task", &format!("touch {marker}"), "after = [\"nosuch\"]"),
        process("job", "primary", &format!("touch {marker}"), "after = [\"c\"]"),
    ]
    .concat();
    let path = scratch.file("map.toml", &map);
    for args in [["-c", path.as_str()], ["--check", path.as_str()]] {
        let outcome = common::plain(&args).finish();
        assert_eq!(outcome.code, 2, "{outcome:?}");
        let err = &outcome.stderr;
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(err.contains("after: a cycle, so none of it could start: a waits for b, b for a"), "{err}");
        assert!(err.contains("after: 'nosuch' is not a process of this role map (there are: a, b, c, job)"), "{err}");
    }
    assert!(!std::path::Path::new(&marker).exists(), "nothing started");
}
