//! One process's readiness probing, without a supervisor around it.

use super::*;
use crate::events::Purpose;
use crate::plan::{Check, OnTimeout};

const MS: Duration = Duration::from_millis(1);

fn readiness() -> Readiness {
    Readiness {
        probe: Check::File("/ready".into()),
        interval: 100 * MS,
        timeout: 2000 * MS,
        attempt_timeout: 1000 * MS,
        on_timeout: OnTimeout::Fail,
        watch: None,
    }
}

#[test]
fn every_deadline_listed_is_a_duty_that_falls_due_at_it() {
    let mut proc = Proc::new();
    assert_eq!((proc.deadline(), proc.due(Time::MAX)), (None, None));
    let how = How::Signal(crate::signo::SIGTERM);
    proc.state = State::Stopping { pid: 1, since: Time::ZERO, asked: Time::ZERO, how, deadline: Some(5 * MS) };
    assert_eq!((proc.deadline(), proc.due(4 * MS), proc.due(5 * MS)), (Some(5 * MS), None, Some(Duty::Kill)));
    proc.state = State::Stopping { pid: 1, since: Time::ZERO, asked: Time::ZERO, how, deadline: None };
    assert_eq!((proc.deadline(), proc.due(Time::MAX)), (None, None), "asked from outside: no clock of exeunt's");
    proc.state = State::Searching { retry: 7 * MS };
    assert_eq!((proc.deadline(), proc.due(7 * MS)), (Some(7 * MS), Some(Duty::Start)));
}

#[test]
fn a_probe_attempts_at_once_then_waits_for_its_answer_or_its_attempt_timeout() {
    let (ready, id) = (readiness(), CheckId { index: 0, purpose: Purpose::Ready });
    let mut proc = Proc::new();
    proc.start_probing(Some(&ready), true, Time::ZERO);
    assert_eq!(proc.due(Time::ZERO), Some(Duty::Attempt));
    let mut actions = Vec::new();
    proc.attempt(&ready, id, Time::ZERO, &mut actions);
    assert_eq!(actions, [Action::StartCheck(id)]);
    assert_eq!((proc.deadline(), proc.due(999 * MS)), (Some(1000 * MS), None));
    assert_eq!(proc.due(1000 * MS), Some(Duty::AbandonAttempt));
    proc.abandon_attempt(&ready, id, 1000 * MS, &mut actions);
    assert_eq!(proc.deadline(), Some(1100 * MS), "the next attempt, an interval later");
    assert_eq!(proc.due(2000 * MS), Some(Duty::GiveUp), "giving up comes before a new attempt");
}

#[test]
fn an_answer_after_the_attempt_was_abandoned_changes_nothing() {
    let (ready, id) = (readiness(), CheckId { index: 0, purpose: Purpose::Ready });
    let mut proc = Proc::new();
    proc.start_probing(Some(&ready), true, Time::ZERO);
    proc.attempt(&ready, id, Time::ZERO, &mut Vec::new());
    proc.abandon_attempt(&ready, id, 1000 * MS, &mut Vec::new());
    assert_eq!(proc.probe_answered(Ok(()), &ready, 1001 * MS), None);
    assert!(matches!(proc.ready, Ready::Probing { .. }));
}
