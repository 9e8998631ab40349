//! Gates: probes of what exeunt does not run, which what is after them waits for.

use super::*;

/// A gate `db` (a TCP port of another container), a sidecar after it, a primary after
/// both: the file's order.
fn gated() -> Plan {
    let mut plan = plan(&[("proxy", Role::Sidecar), ("db", Role::Gate), ("job", Role::Primary)]);
    let db = index(&plan, "db");
    plan.processes[db].command.clear();
    plan.processes[db].ready = Some(probe(OnTimeout::Fail));
    plan
}

#[test]
fn without_after_every_gate_comes_first_and_the_primaries_wait_for_it() {
    let plan = gated();
    let names: Vec<&str> = plan.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["db", "proxy", "job"]);
    let after: Vec<Vec<usize>> = plan.processes.iter().map(|p| p.after.clone()).collect();
    assert_eq!(after, [vec![], vec![0], vec![0, 1]]);
}

#[test]
fn a_gate_is_probed_at_once_nothing_after_it_starts_before_it_passes_and_it_is_never_spawned() {
    let plan = gated();
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), [Action::StartCheck(check(0, Purpose::Ready))]);
    let refused = Event::CheckDone { id: check(0, Purpose::Ready), result: Err(CheckFailure::Status(503)) };
    assert_eq!(sup.handle(refused, 10 * MS), []);
    assert_eq!(sup.row(0, 10 * MS).state, "waiting: HTTP status 503");
    assert_eq!(sup.next_deadline(), Some(110 * MS), "the next attempt, an interval later");
    assert_eq!(sup.handle(Event::Tick, 110 * MS), [Action::StartCheck(check(0, Purpose::Ready))]);
    assert_eq!(sup.handle(done(0, Purpose::Ready, Ok(())), 3 * SEC / 2), [Action::Spawn(1)]);
    let row = sup.row(0, 2 * SEC);
    assert_eq!(
        (row.role, row.word, row.state.as_str(), row.pid, row.ready),
        ("gate", "passed", "passed after 1.5s", None, true)
    );
    sup.handle(Event::Spawned { index: 1, pid: 101 }, 2 * SEC);
    assert_eq!(sup.handle(Event::Spawned { index: 2, pid: 102 }, 2 * SEC), []);
    // At the end, nothing of the gate is stopped or waited for.
    assert_eq!(last_primary_exits(&mut sup, exited(102, 0), 3 * SEC), [term(101)]);
    sup.handle(exited(101, 0), 3 * SEC);
    assert_eq!(sup.handle(GONE, 3 * SEC), [Action::Exit(0)]);
}

#[test]
fn a_gate_that_does_not_pass_in_time_fails_the_start_with_its_last_error() {
    let plan = gated();
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    let refused = Event::CheckDone { id: check(0, Purpose::Ready), result: Err(CheckFailure::Status(503)) };
    sup.handle(refused, 10 * MS);
    let mut now = 10 * MS;
    while let Some(at) = sup.next_deadline().filter(|at| *at < 2 * SEC) {
        now = at;
        sup.handle(Event::Tick, now);
        let refused = Event::CheckDone { id: check(0, Purpose::Ready), result: Err(CheckFailure::Status(503)) };
        sup.handle(refused, now);
    }
    assert!(sup.procs[1].state == State::Waiting && now < 2 * SEC, "nothing started while it failed");
    assert_eq!(sup.handle(Event::Tick, 2 * SEC), [Action::Reap], "nothing runs to be stopped");
    let row = sup.row(0, 2 * SEC);
    assert_eq!(row.word, "failed");
    assert!(row.state.ends_with("file /ready: HTTP status 503"), "{}", row.state);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(NOT_READY)]);
}

#[test]
fn a_stop_signal_while_a_gate_is_probed_ends_the_run_without_waiting_for_it() {
    let plan = gated();
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    let actions = sup.handle(Event::Signal(SIGTERM), SEC);
    assert!(actions.contains(&Action::CancelCheck(check(0, Purpose::Ready))), "{actions:?}");
    assert_eq!(sup.row(0, SEC).word, "not-passed");
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(143)]);
}

#[test]
fn the_pods_ready_tombstone_waits_for_every_gate_and_every_task() {
    let mut plan = plan(&[("db", Role::Gate), ("migrate", Role::Task), ("job", Role::Primary)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    plan.pod = Some(crate::plan::Pod {
        name: "queue".into(),
        graveyard: "/graveyard".into(),
        death_deps: Vec::new(),
        birth_deps: Vec::new(),
        birth_timeout: 30 * SEC,
        ignore_death_dep_code: false,
        run: None,
    });
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    assert_eq!(sup.handle(done(0, Purpose::Ready, Ok(())), SEC), [Action::Spawn(1)]);
    assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 101 }, SEC), [Action::Record(Milestone::Born)]);
    let ready = Action::Record(Milestone::Ready);
    assert_eq!(sup.handle(exited(101, 0), 2 * SEC), [Action::Spawn(2)], "not ready before the primary runs");
    assert_eq!(sup.handle(Event::Spawned { index: 2, pid: 102 }, 2 * SEC), [ready]);
}
