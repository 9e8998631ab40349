//! Tasks: run to completion before what follows them, retried, timed out, and a
//! failure that is the run's.

use super::*;

/// A migration task, then a primary, with the sidecar `db` before both.
fn migration(retries: u32, timeout: Option<Duration>) -> Plan {
    let mut plan = plan(&[("db", Role::Sidecar), ("migrate", Role::Task), ("job", Role::Primary)]);
    let task = index(&plan, "migrate");
    plan.processes[task].retries = retries;
    plan.processes[task].timeout = timeout;
    plan.processes[task].restart_delay = 100 * MS;
    plan
}

#[test]
fn a_task_that_exits_0_lets_the_primary_start_and_is_shown_completed() {
    let plan = migration(0, None);
    let mut sup = started(&plan);
    assert!(sup.procs[2].state == State::Waiting, "the primary waits for the task");
    assert_eq!(sup.handle(exited(101, 0), SEC + 200 * MS), [Action::Spawn(2)]);
    sup.handle(Event::Spawned { index: 2, pid: 102 }, SEC + 200 * MS);
    let row = sup.row(1, 2 * SEC);
    assert_eq!((row.role, row.state.as_str(), row.ready), ("task", "completed with exit code 0 after 1.2s", true));
    // At the end it is not stopped again: only the sidecar is.
    assert_eq!(last_primary_exits(&mut sup, exited(102, 0), 3 * SEC), [term(100)]);
    sup.handle(exited(100, 0), 3 * SEC);
    assert_eq!(sup.handle(GONE, 3 * SEC), [Action::Exit(0)]);
}

#[test]
fn a_failed_task_stops_what_was_started_and_its_status_is_the_runs() {
    let plan = migration(0, None);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(101, 3), SEC), [term(100)], "the sidecar is stopped, the primary never starts");
    sup.handle(exited(100, 0), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(3)]);
    assert_eq!(sup.row(1, SEC).state, "failed with exit code 3 after 1.0s");
}

#[test]
fn a_task_killed_by_a_signal_fails_the_run_with_128_plus_it() {
    let plan = migration(0, None);
    let mut sup = started(&plan);
    let killed = Event::Exited { pid: 101, status: ExitStatus::Signal(crate::signo::SIGKILL) };
    assert_eq!(sup.handle(killed, SEC), [term(100)]);
    sup.handle(exited(100, 0), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(137)]);
}

#[test]
fn a_task_that_fails_is_tried_again_after_its_back_off_and_its_second_success_counts() {
    let plan = migration(2, None);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(101, 1), SEC), []);
    assert_eq!(sup.next_deadline(), Some(SEC + 100 * MS));
    assert_eq!(sup.row(1, SEC).state, "trying again in 100ms");
    assert_eq!(sup.handle(Event::Tick, SEC + 100 * MS), [Action::Spawn(1)]);
    sup.handle(Event::Spawned { index: 1, pid: 201 }, SEC + 100 * MS);
    assert_eq!(sup.handle(exited(201, 0), 2 * SEC), [Action::Spawn(2)]);
}

#[test]
fn a_task_that_fails_every_try_fails_the_run_after_its_retries() {
    let plan = migration(1, None);
    let mut sup = started(&plan);
    sup.handle(exited(101, 1), SEC);
    assert_eq!(sup.handle(Event::Tick, SEC + 100 * MS), [Action::Spawn(1)]);
    sup.handle(Event::Spawned { index: 1, pid: 201 }, SEC + 100 * MS);
    assert_eq!(sup.handle(exited(201, 4), 2 * SEC), [term(100)]);
    sup.handle(exited(100, 0), 2 * SEC);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(4)]);
}

#[test]
fn a_task_past_its_timeout_is_stopped_and_fails_the_run_even_if_it_then_exits_0() {
    let plan = migration(3, Some(2 * SEC));
    let mut sup = started(&plan);
    assert_eq!(sup.next_deadline(), Some(2 * SEC), "its start was at 0");
    assert_eq!(sup.handle(Event::Tick, 2 * SEC), [term(101)]);
    assert_eq!(sup.handle(exited(101, 0), 2 * SEC + 100 * MS), [term(100)], "no retry after a timeout");
    sup.handle(exited(100, 0), 3 * SEC);
    assert_eq!(sup.handle(GONE, 3 * SEC), [Action::Exit(1)]);
}

#[test]
fn a_stop_signal_while_a_task_runs_stops_it_then_the_sidecar_and_nothing_else_starts() {
    let plan = migration(0, None);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC), [term(101)]);
    assert_eq!(sup.handle(exited(101, 143), SEC), [term(100)], "stopped in reverse order");
    sup.handle(exited(100, 0), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(143)]);
}
