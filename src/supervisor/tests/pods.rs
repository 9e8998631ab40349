//! Pods: birth and death deps through the graveyard, carried statuses, and sidecars
//! of other containers found by match.

use super::*;

/// The tombstone of a dep that is ready.
fn ready(container: &str) -> Event {
    Event::Tombstone { container: container.into(), ready: true, died: None }
}

/// The tombstone of a dep that died with `code`.
fn died(container: &str, code: i32) -> Event {
    let died = Some(Death { at: "2026-12-01T21:00:00Z".into(), code: Some(code) });
    Event::Tombstone { container: container.into(), ready: false, died }
}

fn pod_plan(birth_deps: &[&str]) -> Plan {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.pod = Some(crate::plan::Pod {
        name: "queue".into(),
        graveyard: "/graveyard".into(),
        death_deps: vec!["forwarder".into()],
        birth_deps: birth_deps.iter().map(|d| d.to_string()).collect(),
        birth_timeout: 30 * SEC,
        ignore_death_dep_code: false,
        run: None,
    });
    plan
}

#[test]
fn nothing_starts_before_the_birth_deps_are_ready() {
    let plan = pod_plan(&["db"]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), []);
    assert_eq!(sup.next_deadline(), Some(30 * SEC));
    assert_eq!(sup.handle(ready("db"), SEC), [Action::Spawn(0)]);
    assert_eq!(
        sup.handle(Event::Spawned { index: 0, pid: 10 }, SEC),
        [Action::Record(Milestone::Born), Action::Spawn(1)]
    );
    assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 11 }, SEC), [Action::Record(Milestone::Ready)]);
}

#[test]
fn birth_deps_not_ready_in_time_end_the_run_before_anything_starts() {
    let plan = pod_plan(&["db"]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    assert_eq!(sup.handle(Event::Tick, 30 * SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, 30 * SEC), [Action::Exit(NOT_READY)]);
}

#[test]
fn a_death_dep_that_died_before_the_start_means_nothing_starts_and_its_code_is_kept() {
    let plan = pod_plan(&["db"]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    let died = died("forwarder", 3);
    assert_eq!(sup.handle(died, Time::ZERO), [Action::Reap]);
    assert_eq!(sup.start(Time::ZERO), []);
    assert_eq!(sup.handle(ready("db"), Time::ZERO), []);
    assert_eq!(sup.handle(GONE, Time::ZERO), [Action::Exit(3)]);
}

#[test]
fn a_death_dep_dying_stops_everything_and_its_code_wins_over_the_stopped_primary() {
    let plan = pod_plan(&[]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 100 }, Time::ZERO);
    sup.handle(Event::Spawned { index: 1, pid: 101 }, Time::ZERO);
    let died = died("forwarder", 0);
    assert_eq!(sup.handle(died, SEC), [term(101)]);
    sup.handle(Event::Exited { pid: 101, status: ExitStatus::Signal(SIGTERM) }, SEC);
    sup.handle(exited(100, 0), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)], "the forwarder succeeded, so the pod succeeds");
}

#[test]
fn a_birth_dep_that_died_before_it_was_ready_ends_the_wait() {
    let plan = pod_plan(&["db"]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(died("db", 2), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(NOT_READY)]);
}

#[test]
fn stop_signal_carrying_a_status_makes_exeunt_exit_with_it() {
    let plan = plan(&[("job", Role::Primary)]);
    let mut sup = started(&plan);
    let forwarded = Action::Signal { pid: 100, signo: SIGTERM, group: false };
    assert_eq!(sup.handle(Event::StopWithStatus { signo: SIGTERM, status: 4, sender: 7 }, SEC), [forwarded]);
    sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGTERM) }, SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(4)]);
}

fn matched_plan() -> Plan {
    let mut plan = plan(&[("job", Role::Primary), ("mesh", Role::Sidecar)]);
    plan.processes[0].matcher = Some(crate::plan::Matcher::comm("envoy"));
    plan.processes[0].command.clear();
    plan.match_timeout = Some(SEC);
    plan
}

#[test]
fn a_sidecar_of_another_container_is_looked_for_until_it_appears() {
    let plan = matched_plan();
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), [Action::Spawn(0)]);
    assert_eq!(sup.handle(Event::NotFound { index: 0 }, Time::ZERO), []);
    assert_eq!(sup.next_deadline(), Some(100 * MS));
    assert_eq!(sup.handle(Event::Tick, 100 * MS), [Action::Spawn(0)]);
    assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 50 }, 100 * MS), [Action::Spawn(1)]);
    // Once the primary is done, the stop signal carries its status to that container.
    sup.handle(Event::Spawned { index: 1, pid: 51 }, 100 * MS);
    assert_eq!(
        last_primary_exits(&mut sup, exited(51, 3), SEC),
        [Action::SignalWithStatus { pid: 50, signo: SIGTERM, status: 3 }]
    );
    assert_eq!(sup.handle(Event::Exited { pid: 50, status: ExitStatus::Unknown }, SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(3)]);
}

#[test]
fn a_search_that_ends_after_the_shutdown_began_is_not_resumed() {
    // Found by fuzzing: the search went on with a deadline no Tick acted on, so the
    // timer fired again and again and exeunt never exited.
    let mut plan = plan(&[("mesh", Role::Sidecar), ("job", Role::Primary)]);
    plan.processes[0].matcher = Some(crate::plan::Matcher::comm("mesh"));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), [Action::Spawn(0)]);
    sup.handle(Event::NotFound { index: 0 }, Time::ZERO);
    assert_eq!(sup.handle(Event::Tick, 100 * MS), [Action::Spawn(0)]);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), 100 * MS), []);
    assert_eq!(sup.handle(Event::NotFound { index: 0 }, 100 * MS), [Action::Reap]);
    assert_eq!(sup.next_deadline(), None);
    assert_eq!(sup.handle(GONE, 100 * MS), [Action::Exit(128 + libc::SIGTERM)]);
}

#[test]
fn a_sidecar_of_another_container_that_never_appears_fails_the_start() {
    let plan = matched_plan();
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::NotFound { index: 0 }, Time::ZERO);
    assert_eq!(sup.handle(Event::Tick, SEC), [Action::Spawn(0)]);
    assert_eq!(sup.handle(Event::NotFound { index: 0 }, SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(NOT_READY)]);
}
