//! The start order as `after` writes it: what has no path between starts together, and
//! the shutdown runs it backwards.

use super::*;

/// A diamond: `a`; `b` and `c` after `a`; `d` after both; the primary after `d`.
fn diamond() -> Plan {
    let mut plan = plan(&[
        ("a", Role::Sidecar),
        ("b", Role::Sidecar),
        ("c", Role::Sidecar),
        ("d", Role::Sidecar),
        ("job", Role::Primary),
    ]);
    for (name, after) in [("a", vec![]), ("b", vec!["a"]), ("c", vec!["a"]), ("d", vec!["b", "c"]), ("job", vec!["d"])]
    {
        let at = index(&plan, name);
        plan.processes[at].after = after.iter().map(|n| index(&plan, n)).collect();
    }
    plan
}

#[test]
fn a_diamond_starts_both_middle_processes_together_and_the_last_after_both() {
    let plan = diamond();
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), [Action::Spawn(0)]);
    assert_eq!(sup.handle(Event::Spawned { index: 0, pid: 100 }, SEC), [Action::Spawn(1), Action::Spawn(2)]);
    assert_eq!(sup.handle(Event::Spawned { index: 1, pid: 101 }, SEC), [], "d waits for c too");
    assert_eq!(sup.handle(Event::Spawned { index: 2, pid: 102 }, SEC), [Action::Spawn(3)]);
    assert_eq!(sup.handle(Event::Spawned { index: 3, pid: 103 }, SEC), [Action::Spawn(4)]);
}

#[test]
fn a_diamond_stops_backwards_each_once_what_started_after_it_is_gone() {
    let plan = diamond();
    let mut sup = started(&plan);
    assert_eq!(last_primary_exits(&mut sup, exited(104, 0), SEC), [term(103)]);
    assert_eq!(sup.handle(exited(103, 0), SEC), [term(101), term(102)], "b and c together");
    assert_eq!(sup.handle(exited(101, 0), SEC), [], "a waits for c");
    assert_eq!(sup.handle(exited(102, 0), SEC), [term(100)]);
}

#[test]
fn without_after_the_file_order_holds_and_processes_with_no_path_start_at_once() {
    // The file's order: one after another.
    let plan = plan(&[("a", Role::Sidecar), ("b", Role::Sidecar), ("job", Role::Primary)]);
    assert_eq!(plan.processes.iter().map(|p| p.after.clone()).collect::<Vec<_>>(), [vec![], vec![0], vec![0, 1]]);
    // A graph with nothing in it: everything at once.
    let mut plan = plan.clone();
    for process in &mut plan.processes {
        process.after.clear();
    }
    let mut sup = Supervisor::new(&plan, Time::ZERO);
    assert_eq!(sup.start(Time::ZERO), [Action::Spawn(0), Action::Spawn(1), Action::Spawn(2)]);
}
