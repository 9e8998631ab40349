//! exeunt reaps every orphan it adopts, as PID 1 and as a subreaper.

use crate::common;
use common::{count, plain, run_pid1};

const ORPHANS: usize = 5000;

/// A shell loop whose every turn leaves one orphan: the subshell forks `:` and exits.
fn orphan_maker() -> String {
    format!("i=0; while [ $i -lt {ORPHANS} ]; do ( : & ); i=$((i+1)); done; echo made")
}

#[test]
fn five_thousand_orphans_are_all_reaped_as_pid1() {
    let outcome = run_pid1(&["-w", "sh", "-c", &orphan_maker()]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr.lines().last().unwrap_or_default());
    assert!(outcome.stdout.contains("made"));
    // Every orphan was reaped by exeunt itself (each logged once), and exeunt only exits
    // once waitpid says no child is left: no zombie survives it.
    assert_eq!(count(&outcome.stderr, "Reaped zombie process with pid="), ORPHANS);
}

#[test]
fn orphans_are_reaped_by_a_subreaper_exeunt_too() {
    let outcome = plain(&["-w", "sh", "-c", &orphan_maker()]).finish();
    assert_eq!(outcome.code, 0);
    assert_eq!(count(&outcome.stderr, "Reaped zombie process with pid="), ORPHANS);
}
