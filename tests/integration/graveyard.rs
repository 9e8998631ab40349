//! Containers of a pod coordinate through tombstones in a shared graveyard, configured
//! by kubexit's own variables. Each exeunt here is PID 1 of its own namespace, as in
//! its own container; the graveyard is a directory they share, as an emptyDir.

use crate::common;
use std::time::Duration;

use common::{SLEEP_FOREVER, Scratch, pid1_env, until_term};
use exeunt::pod::graveyard::read_tombstone;

fn tombstone(scratch: &Scratch, name: &str) -> exeunt::pod::tombstone::Tombstone {
    read_tombstone(&scratch.0.join(name)).expect("readable").expect("written")
}

#[test]
fn sidecar_container_stops_when_the_primary_container_dies_and_exits_with_its_status() {
    let scratch = Scratch::new("graveyard-death");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let go = scratch.fifo("go");
    let mut queue = pid1_env(
        &[("KUBEXIT_NAME", "queue"), ("KUBEXIT_GRAVEYARD", &graveyard), ("KUBEXIT_DEATH_DEPS", "forwarder")],
        &["sh", "-c", &until_term("queue", "echo queue up;")],
    );
    queue.expect_line("queue up");
    let forwarder = pid1_env(
        &[("KUBEXIT_NAME", "forwarder"), ("KUBEXIT_GRAVEYARD", &graveyard)],
        &["sh", "-c", &format!("read x < {go}; exit 3")],
    );
    std::fs::write(&go, "go\n").expect("the forwarder reads");
    let forwarder = forwarder.finish();
    assert_eq!(forwarder.code, 3, "{forwarder:?}");
    let queue = queue.finish();
    assert_eq!(queue.code, 3, "the queue container reports the forwarder's failure: {queue:?}");
    assert!(queue.stdout.contains("queue got TERM"), "{queue:?}");
    assert!(queue.stderr.contains("death dep forwarder died with exit code 3"), "{}", queue.stderr);
    let forwarder_stone = tombstone(&scratch, "forwarder");
    assert!(forwarder_stone.born.is_some() && forwarder_stone.ready.is_some() && forwarder_stone.died.is_some());
    assert_eq!(forwarder_stone.exit_code, Some(3));
    assert_eq!(tombstone(&scratch, "queue").exit_code, Some(3));
    let leftovers: Vec<_> =
        std::fs::read_dir(&scratch.0).expect("dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(leftovers.len(), 3, "two tombstones and the fifo, no temporary files: {leftovers:?}");
}

#[test]
fn a_successful_primary_makes_the_stopped_sidecar_container_succeed() {
    let scratch = Scratch::new("graveyard-success");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let mut queue = pid1_env(
        &[("KUBEXIT_NAME", "queue"), ("KUBEXIT_GRAVEYARD", &graveyard), ("KUBEXIT_DEATH_DEPS", "forwarder")],
        // The sidecar fails when stopped: that must not fail the Job.
        &["sh", "-c", &format!("trap 'kill -9 $! 2>/dev/null; exit 1' TERM; echo queue up; {SLEEP_FOREVER}")],
    );
    queue.expect_line("queue up");
    let forwarder =
        pid1_env(&[("KUBEXIT_NAME", "forwarder"), ("KUBEXIT_GRAVEYARD", &graveyard)], &["sh", "-c", "exit 0"]).finish();
    assert_eq!(forwarder.code, 0);
    let queue = queue.finish();
    assert_eq!(queue.code, 0, "{queue:?}");
    assert!(queue.elapsed < Duration::from_secs(10), "{queue:?}");
}

#[test]
fn a_primary_that_died_before_the_sidecar_container_started_means_nothing_starts() {
    let scratch = Scratch::new("graveyard-early-death");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let forwarder =
        pid1_env(&[("KUBEXIT_NAME", "forwarder"), ("KUBEXIT_GRAVEYARD", &graveyard)], &["sh", "-c", "kill -KILL $$"])
            .finish();
    assert_eq!(forwarder.code, 137);
    assert_eq!(tombstone(&scratch, "forwarder").exit_code, Some(137), "a signal death is recorded as 128+N");
    let marker = scratch.path("queue-started");
    let queue = pid1_env(
        &[("KUBEXIT_NAME", "queue"), ("KUBEXIT_GRAVEYARD", &graveyard), ("KUBEXIT_DEATH_DEPS", "forwarder")],
        &["touch", &marker],
    )
    .finish();
    assert_eq!(queue.code, 137, "{queue:?}");
    assert!(!std::path::Path::new(&marker).exists(), "the queue's process never started");
    let stone = tombstone(&scratch, "queue");
    assert_eq!((stone.born, stone.exit_code), (None, Some(137)));
}

#[test]
fn birth_deps_hold_the_start_until_their_tombstone_says_ready() {
    let scratch = Scratch::new("graveyard-birth");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let mut client = pid1_env(
        &[
            ("KUBEXIT_NAME", "client"),
            ("KUBEXIT_GRAVEYARD", &graveyard),
            ("KUBEXIT_BIRTH_DEPS", "server"),
            ("KUBEXIT_POD_NAME", "example-pod"),
            ("KUBEXIT_NAMESPACE", "default"),
        ],
        &["sh", "-c", "echo client started"],
    );
    client.expect_log("waiting for the birth deps server to be ready");
    // The tombstone is there from the start (it holds its space on the volume), with
    // nothing on it.
    let before = read_tombstone(&scratch.0.join("client")).expect("readable").unwrap_or_default();
    assert_eq!(before, exeunt::pod::tombstone::Tombstone::default(), "nothing born yet");
    let mut server = pid1_env(
        &[("KUBEXIT_NAME", "server"), ("KUBEXIT_GRAVEYARD", &graveyard), ("KUBEXIT_DEATH_DEPS", "client")],
        &["sh", "-c", &until_term("server", "echo server up;")],
    );
    server.expect_line("server up");
    client.expect_line("client started");
    let client = client.finish();
    assert_eq!(client.code, 0, "{client:?}");
    assert!(client.stderr.contains("readiness comes from the graveyard"), "{}", client.stderr);
    let server = server.finish();
    assert_eq!(server.code, 0, "the server stops once the client has died: {server:?}");
}

#[test]
fn a_birth_dep_that_never_becomes_ready_times_out_with_a_clear_message() {
    let scratch = Scratch::new("graveyard-birth-timeout");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let marker = scratch.path("started");
    let outcome = pid1_env(
        &[
            ("KUBEXIT_NAME", "client"),
            ("KUBEXIT_GRAVEYARD", &graveyard),
            ("KUBEXIT_BIRTH_DEPS", "db-proxy"),
            ("KUBEXIT_BIRTH_TIMEOUT", "300ms"),
        ],
        &["touch", &marker],
    )
    .finish();
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert!(
        outcome.stderr.contains("birth deps not ready within 300ms (waiting for db-proxy): stopping"),
        "{}",
        outcome.stderr
    );
    assert!(!std::path::Path::new(&marker).exists());
}

#[test]
fn a_corrupt_tombstone_is_reported_by_name_and_read_again_when_it_changes() {
    let scratch = Scratch::new("graveyard-corrupt");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let stone = scratch.file("forwarder", "this is not a tombstone\n");
    let mut queue = pid1_env(
        &[("KUBEXIT_NAME", "queue"), ("KUBEXIT_GRAVEYARD", &graveyard), ("KUBEXIT_DEATH_DEPS", "forwarder")],
        &["sh", "-c", &until_term("queue", "echo queue up;")],
    );
    queue.expect_log(&format!("tombstone {stone}: line 1: expected 'Key: value'; it is read again when it changes"));
    queue.expect_line("queue up");
    let temporary = scratch.file(".forwarder.tmp", "Died: \"2026-11-27T22:00:00Z\"\nExitCode: 5\n");
    std::fs::rename(&temporary, &stone).expect("rename into place");
    let queue = queue.finish();
    assert_eq!(queue.code, 5, "{queue:?}");
}

#[test]
fn hostile_names_are_refused_before_anything_is_written() {
    let scratch = Scratch::new("graveyard-hostile");
    let graveyard = scratch.0.join("g").to_string_lossy().into_owned();
    let outcome =
        pid1_env(&[("KUBEXIT_NAME", "../../etc/passwd"), ("KUBEXIT_GRAVEYARD", &graveyard)], &["true"]).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert!(outcome.stderr.contains("KUBEXIT_NAME: '../../etc/passwd' is not a valid name"), "{}", outcome.stderr);
    assert!(!std::path::Path::new(&graveyard).exists(), "nothing was created");
}

#[test]
fn the_kubexit_forks_ignore_code_on_death_deps_makes_the_stopped_container_exit_0_whatever_it_returned() {
    let scratch = Scratch::new("graveyard-ignore-code");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let mut queue = pid1_env(
        &[
            ("KUBEXIT_NAME", "queue"),
            ("KUBEXIT_GRAVEYARD", &graveyard),
            ("KUBEXIT_DEATH_DEPS", "forwarder"),
            ("KUBEXIT_IGNORE_CODE_ON_DEATH_DEPS", "true"),
        ],
        // Stopped, the queue fails; the forwarder failed too: the queue's container still succeeds.
        &["sh", "-c", &format!("trap 'kill -9 $! 2>/dev/null; exit 1' TERM; echo queue up; {SLEEP_FOREVER}")],
    );
    queue.expect_line("queue up");
    let forwarder =
        pid1_env(&[("KUBEXIT_NAME", "forwarder"), ("KUBEXIT_GRAVEYARD", &graveyard)], &["sh", "-c", "exit 3"]).finish();
    assert_eq!(forwarder.code, 3);
    let queue = queue.finish();
    assert_eq!(queue.code, 0, "{queue:?}");
    assert!(queue.stderr.contains("death dep forwarder died with exit code 3: stopping, to exit with 0"), "{queue:?}");
    let refused = pid1_env(
        &[("KUBEXIT_NAME", "queue"), ("KUBEXIT_GRAVEYARD", &graveyard), ("KUBEXIT_IGNORE_CODE_ON_DEATH_DEPS", "yes")],
        &["true"],
    )
    .finish();
    assert_eq!(refused.code, 2, "{refused:?}");
    assert_eq!(refused.stderr.trim(), "exeunt: KUBEXIT_IGNORE_CODE_ON_DEATH_DEPS: 'yes' is neither true nor false");
}

#[test]
fn a_tombstone_kubexit_wrote_for_a_death_by_a_signal_exit_code_minus_1_stops_the_container_with_1() {
    let scratch = Scratch::new("graveyard-minus-one");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let mut queue = pid1_env(
        &[("KUBEXIT_NAME", "queue"), ("KUBEXIT_GRAVEYARD", &graveyard), ("KUBEXIT_DEATH_DEPS", "forwarder")],
        &["sh", "-c", &until_term("queue", "echo queue up;")],
    );
    queue.expect_line("queue up");
    // As kubexit writes it for a child killed by a signal (Go's exit code -1), renamed
    // into place as kubexit's writes are not: the test needs it whole.
    let stone = "Born: \"2026-12-05T10:00:00Z\"\nDied: \"2026-12-05T10:00:01Z\"\nExitCode: -1\n";
    std::fs::write(scratch.0.join(".forwarder.tmp"), stone).expect("write the tombstone");
    std::fs::rename(scratch.0.join(".forwarder.tmp"), scratch.0.join("forwarder")).expect("put it in place");
    let queue = queue.finish();
    assert_eq!(queue.code, 1, "a failure, never 255 or 0: {queue:?}");
    assert!(queue.stdout.contains("queue got TERM"), "{queue:?}");
    assert!(queue.stderr.contains("has ExitCode -1, kubexit's for a death by a signal: counting it as 1"), "{queue:?}");
}

#[test]
fn tombstones_of_an_earlier_run_of_the_pod_are_not_believed_by_the_next_one() {
    // One graveyard kept from one pod to the next, as podman's kube play keeps an
    // emptyDir and Kubernetes keeps one across container restarts.
    let scratch = Scratch::new("graveyard-stale");
    let graveyard = scratch.0.to_string_lossy().into_owned();
    let queue_env = |run: &'static str| {
        [
            ("KUBEXIT_NAME", "queue"),
            ("KUBEXIT_GRAVEYARD", graveyard.as_str()),
            ("KUBEXIT_DEATH_DEPS", "forwarder"),
            ("EXEUNT_POD_UID", run),
        ]
    };
    let forwarder_env = |run: &'static str| {
        [
            ("KUBEXIT_NAME", "forwarder"),
            ("KUBEXIT_GRAVEYARD", graveyard.as_str()),
            ("KUBEXIT_BIRTH_DEPS", "queue"),
            ("EXEUNT_POD_UID", run),
        ]
    };
    // The first pod: the forwarder fails with 3, and the queue with it.
    let mut queue = pid1_env(&queue_env("run-1"), &["sh", "-c", &until_term("queue", "echo queue up;")]);
    queue.expect_line("queue up");
    let forwarder = pid1_env(&forwarder_env("run-1"), &["sh", "-c", "exit 3"]).finish();
    assert_eq!((forwarder.code, queue.finish().code), (3, 3));
    assert_eq!(tombstone(&scratch, "forwarder").pod.as_deref(), Some("run-1"));
    // The next pod, its forwarder first: the queue's tombstone of the first pod says it
    // died before it was ready, which must not fail this run.
    let mut forwarder = pid1_env(&forwarder_env("run-2"), &["sh", "-c", "echo forwarder runs; exit 0"]);
    forwarder.expect_log("is from an earlier run of the pod (run-1, not run-2)");
    let mut queue = pid1_env(&queue_env("run-2"), &["sh", "-c", &until_term("queue", "echo queue up;")]);
    queue.expect_line("queue up");
    let forwarder = forwarder.finish();
    let queue = queue.finish();
    assert_eq!((forwarder.code, queue.code), (0, 0), "{forwarder:?}\n{queue:?}");
    assert!(forwarder.stdout.contains("forwarder runs"), "{forwarder:?}");
    assert!(forwarder.stderr.contains("is from an earlier run of the pod (run-1, not run-2)"), "{forwarder:?}");
    assert!(queue.stdout.contains("queue got TERM"), "{queue:?}");
    assert!(queue.stderr.contains("death dep forwarder died with exit code 0"), "{queue:?}");
    assert_eq!(tombstone(&scratch, "queue").pod.as_deref(), Some("run-2"));
}
