//! Exit policies: restarts with back-off, `max_restarts`, `fail` and `ignore`.

use super::*;
use crate::plan::OnExit;

#[test]
fn crashing_sidecar_restarts_with_doubling_back_off_reset_after_a_long_run() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    let mut now = SEC;
    let mut pid = 100;
    for expected in [100, 200, 400, 800] {
        assert_eq!(sidecar_crashes(&mut sup, 0, pid, 1, now), []);
        assert_eq!(sup.next_deadline(), Some(now + expected * MS));
        now += expected * MS;
        assert_eq!(sup.handle(Event::Tick, now), [Action::Spawn(0)]);
        pid += 10;
        sup.handle(Event::Spawned { index: 0, pid }, now);
    }
    // A run of 10 s forgives the past crashes.
    now += 10 * SEC;
    sidecar_crashes(&mut sup, 0, pid, 1, now);
    assert_eq!(sup.next_deadline(), Some(now + 100 * MS));
}

#[test]
fn back_off_never_exceeds_30s() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    let mut now = SEC;
    for round in 0..20 {
        let pid = 1000 + round;
        if round == 0 {
            sidecar_crashes(&mut sup, 0, 100, 1, now);
        } else {
            sup.handle(Event::Spawned { index: 0, pid }, now);
            sidecar_crashes(&mut sup, 0, pid, 1, now);
        }
        let delay = sup.next_deadline().expect("a restart is due") - now;
        assert!(delay <= 30 * SEC, "{delay:?}");
        now += delay;
        sup.handle(Event::Tick, now);
    }
}

#[test]
fn back_off_follows_the_sidecars_restart_delays() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].restart_delay = 20 * MS;
    plan.processes[0].max_restart_delay = 50 * MS;
    let mut sup = started(&plan);
    let (mut now, mut pid) = (SEC, 100);
    for expected in [20, 40, 50, 50] {
        sidecar_crashes(&mut sup, 0, pid, 1, now);
        let delay = sup.next_deadline().expect("a restart is due") - now;
        assert_eq!(delay, expected * MS);
        now += delay;
        assert_eq!(sup.handle(Event::Tick, now), [Action::Spawn(0)]);
        pid += 1;
        sup.handle(Event::Spawned { index: 0, pid }, now);
    }
}

#[test]
fn max_restarts_then_the_sidecar_fails_the_run_with_its_exit_code() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].max_restarts = Some(1);
    plan.processes[0].exit_code = Some(42);
    let mut sup = started(&plan);
    sup.handle(exited(100, 1), SEC);
    sup.handle(Event::Tick, SEC + 100 * MS);
    sup.handle(Event::Spawned { index: 0, pid: 200 }, SEC + 100 * MS);
    assert_eq!(sup.handle(exited(200, 1), 2 * SEC), [term(101)]);
    sup.handle(Event::Exited { pid: 101, status: ExitStatus::Signal(SIGTERM) }, 2 * SEC);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(42)]);
}

#[test]
fn sidecar_with_on_exit_fail_stops_the_primary_and_exits_with_its_status() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].on_exit = OnExit::Fail;
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(100, 9), SEC), [term(101)]);
    sup.handle(exited(101, 0), SEC);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(9)]);
}

#[test]
fn sidecar_with_on_exit_ignore_is_left_gone() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].on_exit = OnExit::Ignore;
    let mut sup = started(&plan);
    assert_eq!(sup.handle(exited(100, 9), SEC), []);
    assert_eq!(sup.next_deadline(), None, "no restart is scheduled");
    assert_eq!(sup.handle(exited(101, 0), SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(0)]);
}

/// Members of a process group, as the world reports them.
fn members(pids: &[i32]) -> Vec<crate::events::Member> {
    pids.iter().map(|&pid| crate::events::Member { pid, name: "sleep".into() }).collect()
}

#[test]
fn a_sidecar_starts_again_only_once_what_it_left_in_its_group_is_gone() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    let clear = Action::ClearGroup { index: 0, pgid: 100, signo: SIGTERM };
    assert_eq!(sup.handle(exited(100, 1), SEC), [clear]);
    assert_eq!(sup.handle(Event::GroupLeft { index: 0, members: members(&[150, 151]) }, SEC), []);
    assert_eq!(sup.handle(Event::Tick, SEC + 100 * MS), [], "the back-off is over, a stray is not");
    assert_eq!(sup.handle(exited(150, 0), SEC + 200 * MS), []);
    // The last stray gone, the back-off already over: it starts at once.
    assert_eq!(sup.handle(exited(151, 0), SEC + 300 * MS), [Action::Spawn(0)]);
}

#[test]
fn what_a_sidecar_left_that_outlives_its_grace_period_is_killed_and_the_sidecar_starts_again() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    sup.handle(exited(100, 1), SEC);
    sup.handle(Event::GroupLeft { index: 0, members: members(&[150]) }, SEC);
    assert_eq!(sup.next_deadline(), Some(SEC + DEFAULT_GRACE));
    let killed = Action::SignalGroup { pgid: 100, signo: crate::signo::SIGKILL };
    assert_eq!(sup.handle(Event::Tick, SEC + DEFAULT_GRACE), [killed, Action::Spawn(0)]);
}

#[test]
fn the_shutdown_takes_over_a_group_being_cleared() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    sup.handle(exited(100, 1), SEC);
    sup.handle(Event::GroupLeft { index: 0, members: members(&[150]) }, SEC);
    // The primary ends the run: the sidecar is not started again, and the stray goes
    // with the shutdown's own sweep.
    assert_eq!(sup.handle(exited(101, 0), 2 * SEC), [Action::Reap]);
    let swept = sup.handle(Event::Reaped { children_left: true }, 2 * SEC);
    assert_eq!(swept, [Action::SignalDescendants(SIGTERM)]);
    assert_eq!(sup.next_deadline(), Some(2 * SEC + DEFAULT_GRACE), "the sweep's grace, not the clearing's");
}

#[test]
fn a_sidecar_whose_liveness_probe_fails_its_threshold_in_a_row_is_restarted() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].live = Some(crate::plan::Liveness {
        probe: Check::File("/alive".into()),
        period: SEC,
        failure_threshold: 2,
        attempt_timeout: 500 * MS,
    });
    let mut sup = started(&plan);
    let live = check(0, Purpose::Live);
    assert_eq!(sup.next_deadline(), Some(SEC), "probed a period after it is ready");
    assert_eq!(sup.handle(Event::Tick, SEC), [Action::StartCheck(live)]);
    assert_eq!(sup.handle(done(0, Purpose::Live, Err(500)), SEC + 10 * MS), []);
    assert_eq!(sup.handle(Event::Tick, 2 * SEC + 10 * MS), [Action::StartCheck(live)]);
    assert_eq!(sup.handle(done(0, Purpose::Live, Ok(())), 2 * SEC + 20 * MS), [], "a pass starts the count again");
    assert_eq!(sup.handle(Event::Tick, 3 * SEC + 20 * MS), [Action::StartCheck(live)]);
    assert_eq!(sup.handle(done(0, Purpose::Live, Err(500)), 3 * SEC + 30 * MS), []);
    // An attempt past its timeout is the second failure in a row: the sidecar is stopped.
    assert_eq!(sup.handle(Event::Tick, 4 * SEC + 30 * MS), [Action::StartCheck(live)]);
    assert_eq!(sup.handle(Event::Tick, 4 * SEC + 530 * MS), [Action::CancelCheck(live), term(100)]);
    assert_eq!(sup.handle(exited(100, 0), 4 * SEC + 600 * MS), [Action::Spawn(0)], "started again at once");
    sup.handle(Event::Spawned { index: 0, pid: 200 }, 4 * SEC + 600 * MS);
    assert_eq!(sup.next_deadline(), Some(5 * SEC + 600 * MS), "and probed again a period later");
}

#[test]
fn a_primary_whose_liveness_probe_fails_is_stopped_and_the_run_ends_with_its_status() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let job = index(&plan, "job");
    plan.processes[job].live = Some(crate::plan::Liveness {
        probe: Check::File("/alive".into()),
        period: SEC,
        failure_threshold: 1,
        attempt_timeout: 500 * MS,
    });
    let mut sup = started(&plan);
    let (pid, live) = (100 + job as i32, check(job, Purpose::Live));
    assert_eq!(sup.handle(Event::Tick, SEC), [Action::StartCheck(live)]);
    assert_eq!(sup.handle(done(job, Purpose::Live, Err(500)), SEC), [term(pid)], "stopped, not restarted");
    assert_eq!(last_primary_exits(&mut sup, exited(pid, 143), 2 * SEC), [term(100)]);
    assert_eq!(sup.handle(exited(100, 143), 2 * SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(143)], "the primary's status, as any exit of it");
    assert!(sup.procs[job].stop_reason.is_none(), "its reason was told with its exit");
}

#[test]
fn a_sidecar_that_asked_for_a_watchdog_and_misses_it_is_restarted_and_its_status_text_shows() {
    use crate::events::Note;
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    let note = |note| Event::Notified { index: 0, note };
    assert_eq!(sup.handle(note(Note::Status("serving".to_string())), SEC), []);
    assert_eq!(sup.row(0, SEC).says.as_deref(), Some("serving"));
    assert_eq!(sup.next_deadline(), None, "no watchdog, nothing due");
    assert_eq!(sup.handle(note(Note::WatchdogEvery(SEC)), SEC), []);
    assert_eq!(sup.next_deadline(), Some(2 * SEC));
    assert_eq!(sup.handle(note(Note::Watchdog), 1500 * MS), []);
    assert_eq!(sup.next_deadline(), Some(2500 * MS), "each WATCHDOG=1 puts it off");
    assert_eq!(sup.handle(Event::Tick, 2500 * MS), [term(100)], "missed: stopped to be restarted");
    assert_eq!(sup.handle(exited(100, 0), 2600 * MS), [Action::Spawn(0)], "started again at once");
    sup.handle(Event::Spawned { index: 0, pid: 200 }, 2600 * MS);
    assert_eq!(sup.row(0, 2600 * MS).says, None, "what the last run said is gone");
    assert_eq!(sup.next_deadline(), None, "the new run asked for no watchdog");
    assert_eq!(sup.handle(note(Note::WatchdogTrigger), 3 * SEC), [term(200)], "it may ask to be taken as hung");
}
