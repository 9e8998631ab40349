//! The rules for signals from outside: passed on, rewritten, held back, and never
//! followed by a deadline of exeunt's own unless the role map asks.

use super::*;

#[test]
fn a_stop_signal_reaches_each_primary_as_its_stop_signal_and_the_sidecars_only_after() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[1].stop_signal = Signo(libc::SIGQUIT);
    let mut sup = started(&plan);
    let (int, quit) = (Signo(libc::SIGINT), Signo(libc::SIGQUIT));
    assert_eq!(sup.handle(Event::Signal(int), SEC), [Action::Signal { pid: 101, signo: quit, group: false }]);
    assert_eq!(sup.next_deadline(), None, "the runtime keeps the deadline, not exeunt");
    assert_eq!(sup.handle(Event::Tick, 3600 * SEC), [], "no kill, however long the primary drains");
    let exit = Event::Exited { pid: 101, status: ExitStatus::Signal(quit) };
    assert_eq!(last_primary_exits(&mut sup, exit, 3600 * SEC), [term(100)]);
    sup.handle(exited(100, 0), 3600 * SEC);
    assert_eq!(sup.handle(GONE, 3600 * SEC), [Action::Exit(131)]);
}

#[test]
fn with_a_role_map_sigquit_reaches_each_primary_as_sigquit_and_stops_nothing() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    let quit = Signo(libc::SIGQUIT);
    for _ in 0..3 {
        assert_eq!(sup.handle(Event::Signal(quit), SEC), [Action::Signal { pid: 101, signo: quit, group: false }]);
    }
    assert_eq!(sup.next_deadline(), None);
    // No shutdown began: a sidecar that crashes is restarted as ever.
    assert_eq!(sidecar_crashes(&mut sup, 0, 100, 1, SEC), []);
    assert_eq!(sup.handle(Event::Tick, SEC + 100 * MS), [Action::Spawn(0)]);
}

#[test]
fn without_a_role_map_stop_signals_reach_the_primary_as_they_came_each_time() {
    let mut plan = plan(&[("main", Role::Primary)]);
    plan.forward_stop_signals = true;
    let mut sup = started(&plan);
    let quit = Signo(libc::SIGQUIT);
    for _ in 0..3 {
        assert_eq!(sup.handle(Event::Signal(quit), SEC), [Action::Signal { pid: 100, signo: quit, group: false }]);
        assert_eq!(sup.next_deadline(), None);
    }
    assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC), [Action::Signal { pid: 100, signo: SIGTERM, group: false }]);
    assert_eq!(sup.handle(Event::Tick, 3600 * SEC), [], "a JVM that lives on after SIGQUIT is never killed");
    assert_eq!(sup.handle(exited(100, 0), 3600 * SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, 3600 * SEC), [Action::Exit(0)]);
}

#[test]
fn kill_primaries_after_is_the_one_deadline_exeunt_keeps_for_a_primary_asked_from_outside() {
    let mut plan = plan(&[("job", Role::Primary)]);
    plan.kill_primaries_after = Some(25 * SEC);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC), [Action::Signal { pid: 100, signo: SIGTERM, group: false }]);
    assert_eq!(sup.next_deadline(), Some(26 * SEC));
    assert_eq!(
        sup.handle(Event::Signal(SIGTERM), 2 * SEC),
        [Action::Signal { pid: 100, signo: SIGTERM, group: false }]
    );
    assert_eq!(sup.next_deadline(), Some(26 * SEC), "asking again does not move the deadline");
    assert_eq!(sup.handle(Event::Tick, 26 * SEC), [kill(100)]);
}

#[test]
fn a_primarys_stop_hook_runs_for_a_stop_signal_from_outside() {
    let mut plan = plan(&[("job", Role::Primary)]);
    plan.processes[0].stop_hook = Some(Check::Exec(vec!["drain".into()]));
    let mut sup = started(&plan);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC), [Action::StartCheck(check(0, Purpose::Stop))]);
    assert_eq!(sup.next_deadline(), None);
}

#[test]
fn a_primary_stopped_by_exeunts_own_decision_still_gets_its_grace_period() {
    let plan = plan(&[("a", Role::Primary), ("b", Role::Primary)]);
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(100, 1), SEC), [term(101)]);
    assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE));
    assert_eq!(sup.handle(Event::Tick, SEC + DEFAULT_GRACE), [kill(101)]);
}

#[test]
fn a_second_stop_signal_skips_the_grace_periods_when_the_role_map_asks_for_it() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.kill_on_second_signal = true;
    let mut sup = started(&plan);
    sup.handle(Event::Signal(SIGTERM), SEC);
    // Everything alive is killed at once, the sidecar that was still waiting its turn too.
    assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC), [kill(100), kill(101)]);
    assert_eq!(sup.next_deadline(), None);
    assert_eq!(sup.handle(Event::Exited { pid: 101, status: ExitStatus::Signal(SIGKILL) }, SEC), []);
    assert_eq!(sup.handle(Event::Exited { pid: 100, status: ExitStatus::Signal(SIGKILL) }, SEC), [Action::Reap]);
    let leftovers = Event::Reaped { children_left: true };
    assert_eq!(sup.handle(leftovers, SEC), [Action::SignalDescendants(SIGKILL)], "leftovers get no grace either");
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(137)]);
}

#[test]
fn a_stop_signal_is_held_for_the_stop_delay_while_everything_runs_on() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.stop_delay = 5 * SEC;
    let mut sup = started(&plan);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), SEC), [], "nothing is passed on yet");
    assert_eq!(sup.next_deadline(), Some(6 * SEC), "the delay is the timer's");
    assert_eq!(sup.handle(Event::Signal(SIGTERM), 2 * SEC), [], "a second one does not cut the wait short");
    // A sidecar that crashes meanwhile is restarted as ever.
    assert_eq!(sidecar_crashes(&mut sup, 0, 100, 1, 3 * SEC), []);
    assert_eq!(sup.handle(Event::Tick, 3 * SEC + 100 * MS), [Action::Spawn(0)]);
    sup.handle(Event::Spawned { index: 0, pid: 200 }, 3 * SEC + 100 * MS);
    assert_eq!(sup.handle(Event::Tick, 6 * SEC), [Action::Signal { pid: 101, signo: SIGTERM, group: false }]);
    assert_eq!(last_primary_exits(&mut sup, exited(101, 0), 7 * SEC), [term(200)]);
}

#[test]
fn a_stop_signal_before_the_primaries_started_is_not_held() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.stop_delay = 5 * SEC;
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), MS), [Action::CancelCheck(check(0, Purpose::Ready)), term(10)]);
}

#[test]
fn a_primarys_rewrite_table_turns_a_signal_into_another_or_into_nothing() {
    let mut plan = plan(&[("job", Role::Primary)]);
    let (hup, usr1, usr2) = (Signo(libc::SIGHUP), Signo(libc::SIGUSR1), Signo(libc::SIGUSR2));
    plan.processes[0].rewrite = vec![(usr1, Some(usr2)), (hup, None)];
    let mut sup = started(&plan);
    assert_eq!(sup.handle(Event::Signal(usr1), SEC), [Action::Signal { pid: 100, signo: usr2, group: false }]);
    assert_eq!(sup.handle(Event::Signal(hup), SEC), []);
}

#[test]
fn a_stop_signal_that_every_primary_rewrites_is_passed_on_and_stops_nothing() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let quit = Signo(libc::SIGQUIT);
    plan.processes[1].rewrite = vec![(quit, Some(quit))];
    let mut sup = started(&plan);
    assert_eq!(sup.handle(Event::Signal(quit), SEC), [Action::Signal { pid: 101, signo: quit, group: false }]);
    // No shutdown began: a sidecar that crashes is restarted as ever.
    assert_eq!(sidecar_crashes(&mut sup, 0, 100, 1, SEC), []);
    assert_eq!(sup.handle(Event::Tick, SEC + 100 * MS), [Action::Spawn(0)]);
}

#[test]
fn a_rewrite_decides_over_the_primarys_stop_signal() {
    let mut plan = plan(&[("job", Role::Primary), ("other", Role::Primary)]);
    let quit = Signo(libc::SIGQUIT);
    plan.processes[0].rewrite = vec![(SIGTERM, Some(quit))];
    let mut sup = started(&plan);
    assert_eq!(
        sup.handle(Event::Signal(SIGTERM), SEC),
        [
            Action::Signal { pid: 100, signo: quit, group: false },
            Action::Signal { pid: 101, signo: SIGTERM, group: false }
        ]
    );
}
