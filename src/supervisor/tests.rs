//! The supervisor's rules, each pinned without processes: events in, actions out.

use super::shutdown::KILL_RETRY;
use super::*;
use crate::events::{Death, Milestone};
use crate::plan::{Check, DEFAULT_GRACE, ProcessSpec, Readiness, ShutdownOrder};
use crate::signo::SIGTERM;

const SEC: Duration = Duration::from_secs(1);

fn plan(roles: &[(&str, Role)]) -> Plan {
    let specs = roles.iter().map(|(name, role)| ProcessSpec::new(name, *role, vec!["x".into()])).collect();
    Plan::new(specs, DEFAULT_GRACE)
}

fn index(plan: &Plan, name: &str) -> usize {
    plan.processes.iter().position(|p| p.name == name).expect("in the plan")
}

/// Starts every process of the plan, giving process i the pid 100+i.
fn started(plan: &Plan) -> Supervisor<'_> {
    let mut sup = Supervisor::new(plan, Time::ZERO);
    let mut actions = sup.start();
    while let [Action::Spawn(i)] = actions.as_slice() {
        let i = *i;
        actions = sup.handle(Event::Spawned { index: i, pid: 100 + i as i32 }, Time::ZERO);
    }
    assert!(actions.is_empty(), "{actions:?}");
    sup
}

fn term(pid: i32) -> Action {
    Action::Stop { pid, signo: SIGTERM, group: false }
}

fn kill(pid: i32) -> Action {
    Action::Signal { pid, signo: SIGKILL, group: true }
}

fn exited(pid: i32, code: i32) -> Event {
    Event::Exited { pid, status: ExitStatus::Code(code) }
}

const GONE: Event = Event::Reaped { children_left: false };

/// The last primary's exit, then the world's answer that the primaries left nothing in
/// their groups: what the supervisor does about both (the sidecars' stop). Before that
/// answer, no sidecar is asked to stop.
fn last_primary_exits(sup: &mut Supervisor, event: Event, now: Time) -> Vec<Action> {
    let mut actions = sup.handle(event, now);
    let asked = actions.iter().position(|a| matches!(a, Action::SignalLeftovers { .. }));
    actions.remove(asked.expect("the primaries' groups are signalled first"));
    assert!(actions.iter().all(|a| !matches!(a, Action::Stop { .. } | Action::StartCheck(_))), "{actions:?}");
    actions.extend(sup.handle(Event::Leftovers { members: Vec::new() }, now));
    actions
}

#[test]
fn starts_sidecars_one_after_another_then_the_primary() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar), ("log", Role::Sidecar)]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(), [Action::Spawn(index(&plan, "proxy"))]);
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
    assert_eq!(sup.handle(exited(100, 1), SEC), []);
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
    sup.start();
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
    sup.start();
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

const MS: Duration = Duration::from_millis(1);

fn probe(on_timeout: OnTimeout) -> Readiness {
    Readiness {
        probe: Check::File("/ready".into()),
        interval: 100 * MS,
        timeout: 2 * SEC,
        attempt_timeout: SEC,
        on_timeout,
    }
}

fn check(index: usize, purpose: Purpose) -> CheckId {
    CheckId { index, purpose }
}

fn done(index: usize, purpose: Purpose, result: Result<(), &str>) -> Event {
    Event::CheckDone { id: check(index, purpose), result: result.map_err(str::to_string) }
}

#[test]
fn next_sidecar_starts_only_once_the_previous_one_is_ready() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar), ("log", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(), [Action::Spawn(0)]);
    // The first probe goes at once; a failure waits one interval.
    assert_eq!(
        sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO),
        [Action::StartCheck(check(0, Purpose::Ready))]
    );
    assert_eq!(sup.handle(done(0, Purpose::Ready, Err("refused")), 5 * MS), []);
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
    sup.start();
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
    sup.start();
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    sup.handle(done(0, Purpose::Ready, Err("refused")), 10 * MS);
    assert_eq!(sup.handle(Event::Tick, 2 * SEC), [term(10)], "the primary never starts");
    sup.handle(exited(10, 0), 2 * SEC);
    assert_eq!(sup.handle(GONE, 2 * SEC), [Action::Exit(NOT_READY)]);
}

#[test]
fn sidecar_not_ready_in_time_with_on_timeout_start_lets_the_primary_start() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Start));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start();
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    sup.handle(done(0, Purpose::Ready, Err("refused")), 10 * MS);
    assert_eq!(sup.handle(Event::Tick, 2 * SEC), [Action::Spawn(1)]);
}

#[test]
fn sidecar_exiting_before_it_is_ready_is_a_readiness_failure() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start();
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    assert_eq!(sup.handle(exited(10, 2), 50 * MS), [Action::CancelCheck(check(0, Purpose::Ready)), Action::Reap]);
    assert_eq!(sup.handle(GONE, 50 * MS), [Action::Exit(NOT_READY)]);
}

#[test]
fn stop_signal_during_the_readiness_wait_cancels_the_probe_and_stops_the_sidecar() {
    let mut plan = plan(&[("job", Role::Primary), ("db", Role::Sidecar)]);
    plan.processes[0].ready = Some(probe(OnTimeout::Fail));
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start();
    sup.handle(Event::Spawned { index: 0, pid: 10 }, Time::ZERO);
    assert_eq!(sup.handle(Event::Signal(SIGTERM), MS), [Action::CancelCheck(check(0, Purpose::Ready)), term(10)]);
    sup.handle(exited(10, 0), 2 * MS);
    assert_eq!(sup.handle(GONE, 2 * MS), [Action::Exit(143)]);
}

#[test]
fn crashing_sidecar_restarts_with_doubling_back_off_reset_after_a_long_run() {
    let plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    let mut sup = started(&plan);
    let mut now = SEC;
    let mut pid = 100;
    for expected in [100, 200, 400, 800] {
        assert_eq!(sup.handle(exited(pid, 1), now), []);
        assert_eq!(sup.next_deadline(), Some(now + expected * MS));
        now += expected * MS;
        assert_eq!(sup.handle(Event::Tick, now), [Action::Spawn(0)]);
        pid += 10;
        sup.handle(Event::Spawned { index: 0, pid }, now);
    }
    // A run of 10 s forgives the past crashes.
    now += 10 * SEC;
    sup.handle(exited(pid, 1), now);
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
            sup.handle(exited(100, 1), now);
        } else {
            sup.handle(Event::Spawned { index: 0, pid }, now);
            sup.handle(exited(pid, 1), now);
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
        sup.handle(exited(pid, 1), now);
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

#[test]
fn stop_hook_replaces_the_stop_signal_and_a_failed_hook_falls_through_at_once() {
    let mut plan = plan(&[("job", Role::Primary), ("proxy", Role::Sidecar)]);
    plan.processes[0].stop_hook = Some(Check::Exec(vec!["quit".into()]));
    plan.processes[0].grace_period = 5 * SEC;
    let mut sup = started(&plan);
    assert_eq!(last_primary_exits(&mut sup, exited(101, 0), SEC), [Action::StartCheck(check(0, Purpose::Stop))]);
    assert_eq!(sup.next_deadline(), Some(6 * SEC));
    assert_eq!(sup.handle(done(0, Purpose::Stop, Err("refused")), 2 * SEC), [term(100)]);
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
    });
    plan
}

#[test]
fn nothing_starts_before_the_birth_deps_are_ready() {
    let plan = pod_plan(&["db"]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(), []);
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
    sup.start();
    assert_eq!(sup.handle(Event::Tick, 30 * SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, 30 * SEC), [Action::Exit(NOT_READY)]);
}

#[test]
fn a_death_dep_that_died_before_the_start_means_nothing_starts_and_its_code_is_kept() {
    let plan = pod_plan(&["db"]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    let died = died("forwarder", 3);
    assert_eq!(sup.handle(died, Time::ZERO), [Action::Reap]);
    assert_eq!(sup.start(), []);
    assert_eq!(sup.handle(ready("db"), Time::ZERO), []);
    assert_eq!(sup.handle(GONE, Time::ZERO), [Action::Exit(3)]);
}

#[test]
fn a_death_dep_dying_stops_everything_and_its_code_wins_over_the_stopped_primary() {
    let plan = pod_plan(&[]);
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    sup.start();
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
    sup.start();
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
    assert_eq!(sup.start(), [Action::Spawn(0)]);
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
    assert_eq!(sup.start(), [Action::Spawn(0)]);
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
    sup.start();
    sup.handle(Event::NotFound { index: 0 }, Time::ZERO);
    assert_eq!(sup.handle(Event::Tick, SEC), [Action::Spawn(0)]);
    assert_eq!(sup.handle(Event::NotFound { index: 0 }, SEC), [Action::Reap]);
    assert_eq!(sup.handle(GONE, SEC), [Action::Exit(NOT_READY)]);
}

mod forwarding;

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
