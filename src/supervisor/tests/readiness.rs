//! Readiness probes: the start order they hold, their timeouts, and a stop signal
//! during the wait.

use super::*;

#[test]
fn next_sidecar_starts_only_once_the_previous_one_is_ready() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar), ("log", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), [Action::Spawn(0)]);
    // The first probe goes at once; a failure waits one interval.
    assert_eq!(
        sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO),
        [Action::StartCheck(check(0, Purpose::Ready))]
    );
    assert_eq!(sup.handle(done(0, Purpose::Ready, Err(503)), 5 * MS), []);
    assert_eq!(sup.next_deadline(), Some(105 * MS));
    assert_eq!(sup.handle(Event::Tick, 105 * MS), [Action::StartCheck(check(0, Purpose::Ready))]);
    assert_eq!(sup.handle(done(0, Purpose::Ready, Ok(())), 110 * MS), [Action::Spawn(1)]);
    assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 11 }, 110 * MS), [Action::Spawn(2)]);
    assert_eq!(sup.next_deadline(), None, "nothing to wake up for once ready");
}

#[test]
fn probe_attempt_without_answer_is_cancelled_at_its_attempt_timeout() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    assert_eq!(sup.next_deadline(), Some(SEC));
    assert_eq!(sup.handle(Event::Tick, SEC), [Action::CancelCheck(check(0, Purpose::Ready))]);
    assert_eq!(sup.handle(Event::Tick, SEC + 100 * MS), [Action::StartCheck(check(0, Purpose::Ready))]);
}

#[test]
fn sidecar_not_ready_in_time_stops_everything_and_exits_not_ready() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    sup.handle(done(0, Purpose::Ready, Err(503)), 10 * MS);
    assert_eq!(sup.handle(Event::Tick, 2 * SEC), [term(10)], "the primary never starts");
    sup.handle(exited(10, 0), 2 * SEC);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(NOT_READY)]);
}

#[test]
fn sidecar_not_ready_in_time_with_on_timeout_start_lets_the_primary_start() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Start));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    sup.handle(done(0, Purpose::Ready, Err(503)), 10 * MS);
    assert_eq!(sup.handle(Event::Tick, 2 * SEC), [Action::Spawn(1)]);
}

#[test]
fn sidecar_exiting_before_it_is_ready_is_a_readiness_failure() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    assert_eq!(sup.handle(exited(10, 2), 50 * MS), [Action::CancelCheck(check(0, Purpose::Ready)), Action::Reap]);
    assert_eq!(sup.handle(GONE, 50 * MS), [Action::Exit(NOT_READY)]);
}

#[test]
fn stop_signal_during_the_readiness_wait_cancels_the_probe_and_stops_the_sidecar() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), MS), [Action::CancelCheck(check(0, Purpose::Ready)), term(10)]);
    sup.handle(exited(10, 0), 2 * MS);
    assert_eq!(sup.handle(GONE, 2 * MS), [Action::Exit(143)]);
}

#[test]
fn with_a_period_readiness_is_probed_on_lost_after_the_failure_threshold_and_regained_without_a_restart() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    let mut ready = probe(OnTimeout::Fail);
    ready.watch = Some(crate::plan::Watch { period: SEC, failure_threshold: 2, success_threshold: 2 });
    plan.processes[0].ready = Some(ready);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    assert_eq!(sup.handle(done(0, Purpose::Ready, Ok(())), 5 * MS), [Action::Spawn(1)]);
    sup.handle(Event::Spawned { index: 1, pid: 11 }, 5 * MS);
    let is_ready = |sup: &Supervisor| sup.procs[0].is_ready();
    let attempt = [Action::StartCheck(check(0, Purpose::Ready))];
    assert_eq!(sup.next_deadline(), Some(SEC + 5 * MS), "probed again a period later");
    let mut now = SEC + 5 * MS;
    // One failure is below the threshold; the second makes it not ready.
    for (result, expected) in [(Err(503), true), (Err(503), false), (Ok(()), false), (Ok(()), true)] {
        assert_eq!(sup.handle(Event::Tick, now), attempt);
        assert_eq!(sup.handle(done(0, Purpose::Ready, result), now + 10 * MS), [], "never a restart");
        assert_eq!(is_ready(&sup), expected, "after {result:?}");
        now += 10 * MS + SEC;
        assert_eq!(sup.next_deadline(), Some(now));
    }
    // An attempt that takes too long counts as a failure.
    assert_eq!(sup.handle(Event::Tick, now), attempt);
    assert_eq!(sup.handle(Event::Tick, now + SEC), [Action::CancelCheck(check(0, Purpose::Ready))]);
    assert_eq!(sup.next_deadline(), Some(now + 2 * SEC));
}

#[test]
fn without_a_period_nothing_is_probed_once_ready() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start(Time::ZERO);
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    sup.handle(done(0, Purpose::Ready, Ok(())), 5 * MS);
    sup.handle(Event::Spawned { index: 1, pid: 11 }, 5 * MS);
    assert_eq!(sup.next_deadline(), None, "an idle exeunt has nothing to wake up for");
}
