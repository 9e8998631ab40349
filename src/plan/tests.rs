//! The plan's own rules: the start order of its processes, and which codes `-e` makes 0.

use super::*;

fn spec(name: &str, role: Role) -> ProcessSpec {
    ProcessSpec::new(name, role, vec!["true".into()])
}

#[test]
fn start_order_is_sidecars_in_file_order_then_primaries() {
    let plan = Plan::new(
        vec![spec("a", Role::Primary), spec("b", Role::Sidecar), spec("c", Role::Primary), spec("d", Role::Sidecar)],
        DEFAULT_GRACE,
    );
    let names: Vec<_> = plan.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["b", "d", "a", "c"]);
}

#[test]
fn zero_codes_map_only_listed_codes() {
    let mut codes = ZeroCodes::default();
    codes.add(3);
    codes.add(143);
    assert_eq!(codes.apply(3), 0);
    assert_eq!(codes.apply(143), 0);
    assert_eq!(codes.apply(1), 1);
    assert_eq!(codes.apply(300), 300);
}
