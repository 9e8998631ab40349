//! A primary's leftover descendants, stopped before the sidecars they may need.

use super::*;

fn leftover(pid: i32) -> crate::events::Member {
    crate::events::Member { pid, name: "psql".into() }
}

#[test]
fn the_primarys_leftovers_get_sigterm_and_the_sidecars_wait_until_they_are_gone() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[1].stop_signal = Signo(libc::SIGQUIT);
    let mut sup = started(&plan);
    // db=100, job=101. SIGTERM, not the primary's own stop signal: they are other programs.
    let groups = vec![(101, SIGTERM)];
    assert_eq!(sup.handle(exited(101, 0), SEC), [Action::SignalLeftovers { groups }]);
    assert_eq!(sup.handle(Event::Leftovers { members: vec![leftover(300), leftover(301)] }, SEC), []);
    assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE), "the primary's grace period");
    assert_eq!(sup.handle(exited(300, 0), 2 * SEC), [], "one leftover is still there");
    assert_eq!(sup.handle(exited(301, 0), 2 * SEC), [term(100)]);
    assert_eq!(sup.handle(exited(100, 0), 2 * SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(0)]);
}

#[test]
fn leftovers_still_there_after_the_primarys_grace_period_are_killed_and_the_sidecars_go() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[1].grace_period = 3 * SEC;
    let mut sup = started(&plan);
    sup.handle(exited(101, 0), SEC);
    sup.handle(Event::Leftovers { members: vec![leftover(300)] }, SEC);
    assert_eq!(sup.handle(Event::Tick, 4 * SEC - MS), []);
    assert_eq!(sup.handle(Event::Tick, 4 * SEC), [Action::SignalLeftovers { groups: vec![(101, SIGKILL)] }, term(100)]);
}

#[test]
fn a_second_stop_signal_kills_the_leftovers_at_once_when_hurrying_is_asked_for() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.kill_on_second_signal = true;
    let mut sup = started(&plan);
    sup.handle(Event::Signal(SIGTERM), SEC);
    sup.handle(exited(101, 143), SEC);
    sup.handle(Event::Leftovers { members: vec![leftover(300)] }, SEC);
    let actions = sup.handle(Event::Signal(SIGTERM), 2 * SEC);
    assert!(actions.contains(&Action::SignalLeftovers { groups: vec![(101, SIGKILL)] }), "{actions:?}");
    assert!(actions.contains(&kill(100)), "{actions:?}");
}

#[test]
fn without_a_running_sidecar_the_leftovers_are_left_to_the_final_sweep() {
    let plan = plan(&[("job", Role::Primary)]);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(100, 0), SEC), [Action::Reap]);
}
