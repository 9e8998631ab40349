//! What a primary leaves running in its process group is stopped before any sidecar,
//! so that a database or a proxy outlives its clients.

use crate::common;
use common::{Scratch, Stream, free_port, position, process, run_pid1};

/// A primary that starts a client of the server on `port` in the background and exits
/// once the client is connected (it says so through the FIFO `connected`); the client
/// holds its connection until it is signalled.
fn client_left_behind(port: u16, connected: &str) -> String {
    format!(
        "python3 -c 'import socket,time; s=socket.create_connection((\"127.0.0.1\", {port})); \
         open(\"{connected}\", \"w\").write(\"x\\n\"); time.sleep(1000)' & read x < {connected}; echo job done"
    )
}

/// exeunt's log says that primary `job`'s one leftover, the program `leftover`, got
/// SIGTERM with the primary's grace period, and was gone before sidecar `db` was asked
/// to stop; nothing, leftover or sidecar, needed SIGKILL.
fn went_first(err: &str, leftover: &str, grace: &str) {
    let asked =
        format!("sending SIGTERM to 1 process left behind by primary job before the sidecars (grace {grace}): ");
    assert!(err.contains(&asked), "{err}");
    assert!(err.contains(&format!("({leftover})")), "the leftover is named: {err}");
    let gone = position(err, "the primaries' leftovers are gone: stopping the sidecars");
    assert!(gone < position(err, "sending SIGTERM to sidecar db"), "{err}");
    assert!(!err.contains("killing"), "nothing needed SIGKILL: {err}");
}

fn python3() -> &'static str {
    assert!(std::path::Path::new("/usr/bin/python3").exists(), "python3 is missing: apt-get install python3");
    "/usr/bin/python3"
}

#[test]
fn a_client_the_primary_left_goes_first_and_the_server_it_holds_up_stops_cleanly() {
    let scratch = Scratch::new("leftover-client");
    let port = free_port();
    let connected = scratch.fifo("connected");
    let server = format!("exec {} {}/tests/helpers/draining_server.py {port}", python3(), env!("CARGO_MANIFEST_DIR"));
    let map = format!(
        "grace_period = \"5s\"\n\n{}{}",
        process("db", "sidecar", &server, &format!("ready = {{ tcp = \"127.0.0.1:{port}\" }}")),
        process("job", "primary", &client_left_behind(port, &connected), ""),
    );
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let err = &outcome.stderr;
    went_first(err, "python3", "5s");
    assert!(outcome.stdout.contains("db: SIGTERM, waiting for 0 clients"), "the client had gone: {outcome:?}");
    assert!(outcome.stdout.contains("db: clean shutdown"), "{outcome:?}");
    let stopped = outcome.time_of(Stream::Stderr, "sending SIGTERM to sidecar db");
    println!("the server stopped {:?} after its SIGTERM", outcome.elapsed.saturating_sub(stopped));
}

#[test]
fn postgresql_outlives_the_psql_its_primary_left_and_shuts_down_cleanly() {
    let scratch = Scratch::new("leftover-psql");
    let (bin, data) = common::postgresql_cluster(&scratch, &["--auth=trust"]);
    let port = free_port();
    let (postgres, pg_isready) = (bin.join("postgres"), bin.join("pg_isready"));
    // A backend busy in pg_sleep learns that its client died only by checking the
    // connection: client_connection_check_interval makes it check, as a server that
    // must not run orphaned queries is set up.
    let server = format!(
        "exec {} -D {data} -k {data} -p {port} -c listen_addresses=127.0.0.1 -c client_connection_check_interval=100ms",
        postgres.display()
    );
    let psql = format!("psql -h 127.0.0.1 -p {port} -U postgres -X");
    // The primary leaves a long query running and exits once the server has it.
    let job = format!(
        "{psql} -c 'select pg_sleep(100)' >/dev/null 2>&1 &\n\
         until {psql} -tAc \"select count(*) from pg_stat_activity where query like 'select pg_sleep(100)%'\" | grep -qx 1; \
         do sleep 0.1; done; echo job done"
    );
    let ready =
        format!("ready = {{ exec = [\"{}\", \"-h\", \"127.0.0.1\", \"-p\", \"{port}\"] }}", pg_isready.display());
    let map = format!(
        "{}{}",
        process("db", "sidecar", &server, &format!("user = \"postgres\"\ngrace_period = \"20s\"\n{ready}")),
        process("job", "primary", &job, "grace_period = \"10s\""),
    );
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    let err = &outcome.stderr;
    assert_eq!(outcome.code, 0, "{err}");
    assert!(outcome.stdout.contains("job done"), "{outcome:?}");
    went_first(err, "psql", "10s");
    assert!(err.contains("received smart shutdown request"), "PostgreSQL's log: {err}");
    assert!(err.contains("database system is shut down"), "a clean shutdown in PostgreSQL's log: {err}");
    assert!(err.contains("sidecar db exited with exit code 0"), "{err}");
    let stopped = outcome.time_of(Stream::Stderr, "sending SIGTERM to sidecar db");
    println!("PostgreSQL shut down {:?} after its SIGTERM", outcome.elapsed.saturating_sub(stopped));
}

#[test]
fn without_proc_and_not_pid_1_the_sweep_signals_the_groups_started_and_ends_after_the_grace_period() {
    assert!(std::path::Path::new("/usr/bin/unshare").exists(), "unshare is missing: apt-get install util-linux");
    let scratch = Scratch::new("leftover-no-proc");
    let (in_group, escaped) = (scratch.path("in-group"), scratch.path("escaped"));
    // One leftover stays in the primary's process group; the other leaves it.
    let job = format!(
        "sleep 1000 & echo $! > {in_group}; setsid sh -c 'echo $$ > {escaped}.new; mv {escaped}.new {escaped}; exec sleep 1000' >/dev/null 2>&1 & \
         until [ -s {escaped} ]; do sleep 0.01; done; echo job done"
    );
    let map = scratch.file("map.toml", &format!("grace_period = \"500ms\"\n\n{}", process("job", "primary", &job, "")));
    let mut command = std::process::Command::new("unshare");
    // /proc hidden under an empty tmpfs, in a mount namespace of the test's own.
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs none /proc && exec \"$EXEUNT\" -c \"$MAP\"",
        ])
        .env("EXEUNT", common::exeunt())
        .env("MAP", &map);
    let outcome = common::start(command).finish_within(std::time::Duration::from_secs(20));
    let pid = |file: &str| std::fs::read_to_string(file).expect("a pid").trim().parse::<i32>().expect("a pid");
    let (in_group, escaped) = (pid(&in_group), pid(&escaped));
    let escaped_alive = common::exists(escaped);
    // SAFETY: kill takes plain integers; the escaped sleep is this test's to end.
    unsafe { libc::kill(escaped, libc::SIGKILL) };
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(
        common::count(&outcome.stderr, "/proc cannot be read: the processes left behind cannot be seen"),
        1,
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains("sending it again"), "no loop: {}", outcome.stderr);
    assert!(
        outcome.stderr.contains("exiting without knowing whether all processes left behind are gone"),
        "{}",
        outcome.stderr
    );
    assert!(!common::exists(in_group), "the leftover in the primary's group was stopped");
    assert!(escaped_alive, "a process that left every group exeunt started is out of its sight without /proc");
    println!("without /proc: exeunt ended {:?} after it started (grace 500ms)", outcome.elapsed);
}

#[test]
fn a_thousand_leftovers_are_counted_as_a_thousand_and_all_gone_before_the_sidecar_stops() {
    let scratch = Scratch::new("leftover-thousand");
    // Each sleep dies of its SIGTERM at once: counted after the signal, most were missed.
    let job = "i=0; while [ $i -lt 1000 ]; do sleep 1000 & i=$((i+1)); done; echo forked";
    let map =
        [process("db", "sidecar", &common::until_term("db", ""), ""), process("job", "primary", job, "")].concat();
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let err = &outcome.stderr;
    assert!(err.contains("sending SIGTERM to 1000 processes left behind by primary job before the sidecars"), "{err}");
    let gone = position(err, "the primaries' leftovers are gone: stopping the sidecars");
    assert!(gone < position(err, "sending SIGTERM to sidecar db"), "{err}");
    assert!(!err.contains("killing"), "{err}");
}
