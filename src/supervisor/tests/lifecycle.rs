//! Starting, exit statuses, the final sweep and an idle supervisor.

use super::*;

#[test]
fn starts_sidecars_one_after_another_then_the_primary() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar), ("log", Role::Sidecar)]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), [Action::Spawn(index(&plan, "proxy"))]);
    assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO), [Action::Spawn(index(&plan, "log"))]);
    assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 11 }, Time::ZERO), [Action::Spawn(index(&plan, "job"))]);
    assert_eq!(sup.handle(Event::Spawned { index: 2, pid: 12 }, Time::ZERO), []);
}

#[test]
fn primary_exit_stops_sidecars_and_exit_code_is_the_primarys() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    assert_eq!(last_primary_exits(&mut sup, exited(101, 3), SEC), [term(100)]);
    assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE));
    assert_eq!(sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGTERM) }, 2 * SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(3)]);
}

#[test]
fn a_stopped_sidecar_does_not_change_a_successful_primarys_status() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    sup.handle(exited(101, 0), SEC);
    sup.handle(exited(100, 1), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
}

#[test]
fn sidecar_ignoring_its_stop_signal_is_killed_at_the_grace_deadline() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].grace_period = 3 * SEC;
    let mut sup = started(&plan);
    last_primary_exits(&mut sup, exited(101, 0), SEC);
    assert_eq!(sup.next_deadline(), Some(4 * SEC));
    assert_eq!(sup.handle(Event::Tick, 3 * SEC), []);
    assert_eq!(sup.handle(Event::Tick, 4 * SEC), [kill(100)]);
    assert_eq!(sup.next_deadline(), None);
}

#[test]
fn killed_by_signal_gives_128_plus_n() {
    let plan = plan(&[("job", Role::Primary)]);
    let mut sup = started(&plan);
    sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(Signo(libc::SIGSEGV)) }, SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(139)]);
}

#[test]
fn zero_codes_remap_the_primarys_status() {
    let mut plan = plan(&[("job", Role::Primary)]);
    plan.zero_codes.add(143);
    let mut sup = started(&plan);
    sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGTERM) }, SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
}

#[test]
fn first_failing_primary_stops_the_others_and_sets_the_status() {
    let plan = plan(&[("a", Role::Primary), ("b", Role::Primary), ("side", Role::Sidecar)]);
    let mut sup = started(&plan);
    // side=100, a=101, b=102
    assert_eq!(sup.handle(exited(101, 5), SEC), [term(102)]);
    let last = Event::Exited { pid: 102, status: ExitStatus::Signal(SIGTERM) };
    assert_eq!(last_primary_exits(&mut sup, last, SEC), [term(100)]);
    sup.handle(exited(100, 0), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(5)]);
}

#[test]
fn a_primary_that_succeeds_waits_for_the_others() {
    let plan = plan(&[("a", Role::Primary), ("b", Role::Primary)]);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(100, 0), SEC), []);
    assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), []);
    assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
}

#[test]
fn sidecar_exit_before_the_primary_leaves_the_primary_running() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    assert_eq!(sidecar_crashes(&mut sup, 0, 100, 1, SEC), []);
    assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), []);
    assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
}

#[test]
fn other_signals_are_forwarded_to_running_primaries_only() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.signal_groups = true;
    let mut sup = started(&plan);
    let usr1 = Signo(libc::SIGUSR1);
    assert_eq!(sup.handle(Event::Signal(usr1), SEC), [Action::Signal { pid: 101, signo: usr1, group: true }]);
    assert_eq!(sup.handle(Event::Signal(Signo(libc::SIGCHLD)), SEC), []);
}

#[test]
fn failed_spawn_stops_what_started_and_starts_nothing_more() {
    let plan = plan(&[("job", Role::Primary), ("a", Role::Sidecar), ("b", Role::Sidecar)]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO), [Action::Spawn(1)]);
    let failed = Event::SpawnFailed { index: 1, code: 127, reason: "not found".into() };
    assert_eq!(sup.handle(failed, Time::ZERO), [term(10)]);
    assert_eq!(sup.handle(exited(10, 0), SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(127)]);
}

#[test]
fn leftover_descendants_get_sigterm_then_sigkill_after_grace() {
    let plan = plan(&[("job", Role::Primary)]);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(100, 0), SEC), [Action::Reap]);
    // Only when children are left is it worth looking for them.
    assert_eq!(sup.handle(Event::Reaped { children_left: true }, SEC), [Action::SignalDescendants(SIGTERM)]);
    assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE));
    assert_eq!(sup.handle(Event::Tick, SEC + DEFAULT_GRACE), [Action::SignalDescendants(SIGKILL)]);
    assert_eq!(sup.handle(exited(555, 0), SEC + DEFAULT_GRACE), []);
    assert_eq!(sup.handle(GONE, SEC + DEFAULT_GRACE), [Action::Exit(0)]);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC + DEFAULT_GRACE), []);
}

#[test]
fn a_descendant_that_outlives_the_sigkill_sweep_gets_sigkill_again() {
    // Found by fuzzing: not PID 1, a process forked while the sweep walked /proc was
    // never signalled, and exeunt waited for it with no deadline at all.
    let plan = plan(&[("job", Role::Primary)]);
    let mut sup = started(&plan);
    sup.handle(exited(100, 0), SEC);
    sup.handle(Event::Reaped { children_left: true }, SEC);
    let killed_at = SEC + DEFAULT_GRACE;
    assert_eq!(sup.handle(Event::Tick, killed_at), [Action::SignalDescendants(SIGKILL)]);
    assert_eq!(sup.handle(Event::Reaped { children_left: true }, killed_at), []);
    assert_eq!(sup.next_deadline(), Some(killed_at + KILL_RETRY));
    assert_eq!(sup.handle(Event::Tick, killed_at + KILL_RETRY), [Action::SignalDescendants(SIGKILL)]);
    assert_eq!(sup.handle(GONE, killed_at + KILL_RETRY), [Action::Exit(0)]);
    assert_eq!(sup.next_deadline(), None);
}

#[test]
fn no_leftovers_means_no_search_for_them() {
    let plan = plan(&[("job", Role::Primary)]);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(100, 0), SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
}

#[test]
fn stop_signal_before_any_primary_started_exits_as_killed_by_it() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), Time::ZERO), []);
    assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO), [term(10)]);
    sup.handle(exited(10, 0), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(143)]);
}

#[test]
fn idle_supervisor_asks_for_no_wakeup() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let sup = started(&plan);
    assert_eq!(sup.next_deadline(), None);
}
