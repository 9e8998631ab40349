//! The supervisor's rules, each pinned without processes: events in, actions out, one
//! file per topic, beside the helpers they share.

use super::shutdown::KILL_RETRY;
use super::*;
use crate::events::{CheckFailure, Death, ExitStatus, Milestone};
use crate::plan::{Check, DEFAULT_GRACE, OnTimeout, ProcessSpec, Readiness};
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
    let mut actions = sup.start(Time::ZERO);
    // Those started together each say they are.
    while !actions.is_empty() && actions.iter().all(|a| matches!(a, Action::Spawn(_))) {
        let started: Vec<usize> =
            actions.iter().filter_map(|a| if let Action::Spawn(i) = a { Some(*i) } else { None }).collect();
        actions = started
            .into_iter()
            .flat_map(|i| sup.handle(Event::Spawned { index: i, pid: 100 + i as i32 }, Time::ZERO))
            .collect();
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

const MS: Duration = Duration::from_millis(1);

fn probe(on_timeout: OnTimeout) -> Readiness {
    Readiness {
        probe: Check::File("/ready".into()),
        interval: 100 * MS,
        timeout: 2 * SEC,
        attempt_timeout: SEC,
        on_timeout,
        watch: None,
    }
}

fn check(index: usize, purpose: Purpose) -> CheckId {
    CheckId { index, purpose }
}

/// A check's outcome: passed, or failed with an HTTP status.
fn done(index: usize, purpose: Purpose, result: Result<(), u16>) -> Event {
    Event::CheckDone { id: check(index, purpose), result: result.map_err(CheckFailure::Status) }
}

mod forwarding;
mod gates;
mod leftovers;
mod lifecycle;
mod order;
mod pods;
mod readiness;
mod restarts;
mod stopping;
mod tasks;

/// The sidecar at `index` (pid `pid`) exits with `code` while the primaries run, and is
/// to be restarted: its process group is cleared first, and the world finds it empty.
/// Returns what follows the exit.
fn sidecar_crashes(sup: &mut Supervisor, index: usize, pid: i32, code: i32, now: Time) -> Vec<Action> {
    let actions = sup.handle(exited(pid, code), now);
    let clear = Action::ClearGroup { index, pgid: pid, signo: SIGTERM };
    assert_eq!(actions.first(), Some(&clear), "{actions:?}");
    let mut rest = actions[1..].to_vec();
    rest.extend(sup.handle(Event::GroupLeft { index, members: Vec::new() }, now));
    rest
}
