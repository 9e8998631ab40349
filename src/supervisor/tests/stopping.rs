//! Stop hooks and the order in which sidecars are stopped.

use super::*;
use crate::plan::ShutdownOrder;

#[test]
fn stop_hook_replaces_the_stop_signal_and_a_failed_hook_falls_through_at_once() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].stop_hook = Some(Check::Exec(vec!["quit".into()]));
    plan.processes[0].grace_period = 5 * SEC;
    let mut sup = started(&plan);
    assert_eq!(last_primary_exits(&mut sup, exited(101, 0), SEC), [Action::StartCheck(check(0, Purpose::Stop))]);
    assert_eq!(sup.next_deadline(), Some(6 * SEC));
    assert_eq!(sup.handle(done(0, Purpose::Stop, Err(503)), 2 * SEC), [term(100)]);
    assert_eq!(sup.next_deadline(), Some(7 * SEC), "the stop signal gets a whole grace period");
}

#[test]
fn process_that_exits_during_its_stop_hook_cancels_the_hook() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].stop_hook = Some(Check::Exec(vec!["quit".into()]));
    let mut sup = started(&plan);
    last_primary_exits(&mut sup, exited(101, 0), SEC);
    assert_eq!(sup.handle(exited(100, 0), SEC), [Action::CancelCheck(check(0, Purpose::Stop)), Action::Reap]);
}

#[test]
fn sidecars_stop_in_reverse_start_order_each_after_the_next_exited() {
    let plan = plan(&[("job", Role::Primary), ("a", Role::Sidecar), ("b", Role::Sidecar), ("c", Role::Sidecar)]);
    let mut sup = started(&plan);
    // a=100, b=101, c=102, job=103
    assert_eq!(last_primary_exits(&mut sup, exited(103, 0), SEC), [term(102)]);
    assert_eq!(sup.handle(exited(102, 0), SEC), [term(101)]);
    assert_eq!(sup.handle(exited(101, 0), SEC), [term(100)]);
}

#[test]
fn parallel_shutdown_stops_every_sidecar_at_once() {
    let mut plan = plan(&[("job", Role::Primary), ("a", Role::Sidecar), ("b", Role::Sidecar)]);
    plan.shutdown = ShutdownOrder::Parallel;
    let mut sup = started(&plan);
    assert_eq!(last_primary_exits(&mut sup, exited(102, 0), SEC), [term(100), term(101)]);
}

#[test]
fn a_sidecar_restarting_when_the_primary_exits_is_not_started_again() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    sup.handle(exited(100, 1), SEC);
    assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
    assert_eq!(sup.handle(Event::Tick, 2 * SEC), []);
}
