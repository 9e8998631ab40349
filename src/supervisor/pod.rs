//! This container's place in its pod, as decisions see it: the wait for the birth
//! deps (with its deadline), what another container's tombstone means for this one,
//! and the milestones the other containers learn of.

use std::collections::BTreeSet;

use log::{info, warn};

use super::alarms::Alarms;
use crate::duration::Show;
use crate::events::{Action, Death, Milestone, Time};
use crate::plan::Pod;

/// What a tombstone means for this container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum News {
    /// Every birth dep is ready: the start may begin.
    BirthDepsReady,
    /// A birth dep died before it was ready.
    BirthDepDied { name: String, code: i32 },
    /// A death dep died with this exit code.
    DeathDepDied { name: String, code: i32 },
}

/// What falls due at the pod's one deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// The birth deps were not ready in time.
    BirthTimeout,
}

#[derive(Debug)]
pub struct PodGate<'p> {
    pod: Option<&'p Pod>,
    /// Until when the birth deps may take to be ready; None once the wait is over (or
    /// when there is none).
    birth_deadline: Option<Time>,
    ready_deps: BTreeSet<String>,
    /// Deps whose death has been taken in, so that it counts once.
    dead_deps: BTreeSet<String>,
    born: bool,
    ready: bool,
    /// Whether the milestones are recorded without a pod: the runtime is told them.
    told: bool,
}

impl<'p> PodGate<'p> {
    /// The pod of a plan (or none), from `now`: the birth deps' wait starts then.
    /// `told`: the milestones are recorded even without a pod, for the runtime.
    pub fn new(pod: Option<&'p Pod>, told: bool, now: Time) -> PodGate<'p> {
        let birth_deadline = pod.filter(|p| !p.birth_deps.is_empty()).map(|p| now + p.birth_timeout);
        PodGate {
            pod,
            birth_deadline,
            ready_deps: BTreeSet::new(),
            dead_deps: BTreeSet::new(),
            born: false,
            ready: false,
            told,
        }
    }

    /// Says what the start waits for, if anything.
    pub fn announce(&self) {
        if let (Some(_), Some(pod)) = (self.birth_deadline, self.pod) {
            let within = Show(pod.birth_timeout);
            info!("waiting for the birth deps {} to be ready (at most {within})", pod.birth_deps.join(", "));
        }
    }

    /// Whether the start still waits for the birth deps.
    pub fn waiting(&self) -> bool {
        self.birth_deadline.is_some()
    }

    /// Ends the wait for the birth deps; false when it was over already.
    pub fn end_wait(&mut self) -> bool {
        self.birth_deadline.take().is_some()
    }

    /// What another container's tombstone means here: a dep's death counts once; the
    /// birth deps' readiness and deaths count while the start waits for them.
    pub fn tombstone(&mut self, container: &str, ready: bool, died: Option<&Death>) -> Option<News> {
        let pod = self.pod?;
        let is_death_dep = pod.death_deps.iter().any(|d| d == container);
        let is_birth_dep = pod.birth_deps.iter().any(|d| d == container);
        if let Some(death) = died {
            if !(is_death_dep || is_birth_dep) || !self.dead_deps.insert(container.to_string()) {
                return None;
            }
            let path = pod.graveyard.join(container);
            let code = match death.code {
                Some(code @ 0..=255) => code,
                // Exited with 256 reads as 0 to whoever waits for exeunt: a failure
                // would pass for a success.
                // kubexit writes -1 for a process a signal killed (Go's word for it),
                // without saying which.
                Some(-1) => {
                    info!(
                        "tombstone {} has ExitCode -1, kubexit's for a death by a signal: counting it as 1",
                        path.display()
                    );
                    1
                }
                Some(code) => {
                    warn!(
                        "tombstone {} has ExitCode {code}, which no process exits with: counting it as 1",
                        path.display()
                    );
                    1
                }
                None => {
                    warn!("tombstone {} has Died but no ExitCode: counting it as 1", path.display());
                    1
                }
            };
            info!("{container} died at {} with exit code {code}", death.at);
            if is_death_dep {
                return Some(News::DeathDepDied { name: container.to_string(), code });
            }
            return self.waiting().then(|| News::BirthDepDied { name: container.to_string(), code });
        }
        if ready && is_birth_dep && self.ready_deps.insert(container.to_string()) {
            info!("birth dep {container} is ready");
            if self.waiting() && pod.birth_deps.iter().all(|d| self.ready_deps.contains(d)) {
                return Some(News::BirthDepsReady);
            }
        }
        None
    }

    /// The pod's one deadline with its duty; [`Alarms::deadline`] and [`Alarms::due`]
    /// both read it.
    fn alarm(&self) -> Option<(Time, Duty)> {
        self.birth_deadline.map(|at| (at, Duty::BirthTimeout))
    }

    /// [`Duty::BirthTimeout`]: ends the wait and says what was waited for, and how long.
    pub fn time_out(&mut self) -> String {
        self.birth_deadline = None;
        let deps = self.pod.map(|p| p.birth_deps.join(", ")).unwrap_or_default();
        let waited = self.pod.map(|p| Show(p.birth_timeout).to_string()).unwrap_or_default();
        format!("birth deps not ready within {waited} (waiting for {deps})")
    }

    /// The first process has started: the pod learns this container was born.
    pub fn born(&mut self, actions: &mut Vec<Action>) {
        if !std::mem::replace(&mut self.born, true) && (self.pod.is_some() || self.told) {
            actions.push(Action::Record(Milestone::Born));
        }
    }

    /// Whether readiness has been recorded already.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Every process has started and every sidecar is ready, but for those `given_up`
    /// (`on_timeout = "start"`): the pod learns it once.
    pub fn ready(&mut self, given_up: &[&str], actions: &mut Vec<Action>) {
        if !std::mem::replace(&mut self.ready, true) {
            match given_up {
                [] => info!("every process has started and every sidecar is ready"),
                _ => warn!(
                    "every process has started; not ready, and started without (on_timeout = \"start\"): {}",
                    given_up.join(", ")
                ),
            }
            if self.pod.is_some() || self.told {
                actions.push(Action::Record(Milestone::Ready));
            }
        }
    }
}

impl Alarms for PodGate<'_> {
    type Duty = Duty;

    /// The pod's one deadline: the end of the birth wait.
    fn alarms(&self) -> impl Iterator<Item = (Time, Duty)> {
        self.alarm().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn pod(death_deps: &[&str], birth_deps: &[&str]) -> Pod {
        Pod {
            name: "queue".into(),
            graveyard: "/graveyard".into(),
            death_deps: death_deps.iter().map(|d| d.to_string()).collect(),
            birth_deps: birth_deps.iter().map(|d| d.to_string()).collect(),
            birth_timeout: 30 * SEC,
            ignore_death_dep_code: false,
            run: None,
        }
    }

    fn died(code: Option<i32>) -> Death {
        Death { at: "2026-12-01T21:00:00Z".into(), code }
    }

    #[test]
    fn a_death_deps_death_counts_once_with_its_exit_code() {
        let pod = pod(&["job"], &[]);
        let mut gate = PodGate::new(Some(&pod), false, Time::ZERO);
        let news = gate.tombstone("job", true, Some(&died(Some(3))));
        assert_eq!(news, Some(News::DeathDepDied { name: "job".into(), code: 3 }));
        assert_eq!(gate.tombstone("job", true, Some(&died(Some(3)))), None, "read again, it is old news");
    }

    #[test]
    fn a_death_without_an_exit_code_counts_as_1() {
        let pod = pod(&["job"], &[]);
        let mut gate = PodGate::new(Some(&pod), false, Time::ZERO);
        assert_eq!(
            gate.tombstone("job", false, Some(&died(None))),
            Some(News::DeathDepDied { name: "job".into(), code: 1 })
        );
    }

    #[test]
    fn an_exit_code_no_process_can_have_counts_as_1_never_as_its_value_mod_256() {
        let pod = pod(&["job", "batch"], &[]);
        let mut gate = PodGate::new(Some(&pod), false, Time::ZERO);
        assert_eq!(
            gate.tombstone("job", false, Some(&died(Some(256)))),
            Some(News::DeathDepDied { name: "job".into(), code: 1 })
        );
        assert_eq!(
            gate.tombstone("batch", false, Some(&died(Some(-1)))),
            Some(News::DeathDepDied { name: "batch".into(), code: 1 })
        );
    }

    #[test]
    fn the_start_waits_until_every_birth_dep_is_ready() {
        let pod = pod(&[], &["db", "cache"]);
        let mut gate = PodGate::new(Some(&pod), false, Time::ZERO);
        assert!(gate.waiting());
        assert_eq!(gate.tombstone("db", false, None), None, "born, not ready");
        assert_eq!(gate.tombstone("db", true, None), None, "one of two");
        assert_eq!(gate.tombstone("db", true, None), None, "the same one again");
        assert_eq!(gate.tombstone("cache", true, None), Some(News::BirthDepsReady));
    }

    #[test]
    fn a_birth_dep_that_dies_first_ends_the_wait_but_not_once_the_wait_is_over() {
        let pod = pod(&[], &["db", "cache"]);
        let mut gate = PodGate::new(Some(&pod), false, Time::ZERO);
        assert_eq!(
            gate.tombstone("db", false, Some(&died(Some(2)))),
            Some(News::BirthDepDied { name: "db".into(), code: 2 })
        );
        assert!(gate.end_wait());
        assert_eq!(gate.tombstone("cache", false, Some(&died(Some(2)))), None);
    }

    #[test]
    fn a_dep_that_is_both_counts_as_a_death_dep() {
        let pod = pod(&["db"], &["db"]);
        let mut gate = PodGate::new(Some(&pod), false, Time::ZERO);
        assert_eq!(
            gate.tombstone("db", false, Some(&died(Some(4)))),
            Some(News::DeathDepDied { name: "db".into(), code: 4 })
        );
    }

    #[test]
    fn tombstones_of_containers_that_are_no_dep_mean_nothing() {
        let pod = pod(&["job"], &["db"]);
        let mut gate = PodGate::new(Some(&pod), false, Time::ZERO);
        assert_eq!(gate.tombstone("other", true, Some(&died(Some(9)))), None);
        assert_eq!(gate.tombstone("other", true, None), None);
        assert!(gate.waiting());
    }

    #[test]
    fn the_birth_wait_has_one_deadline_and_it_ends_the_wait() {
        let pod = pod(&[], &["db"]);
        let mut gate = PodGate::new(Some(&pod), false, SEC);
        assert_eq!((gate.deadline(), gate.due(30 * SEC)), (Some(31 * SEC), None));
        assert_eq!(gate.due(31 * SEC), Some(Duty::BirthTimeout));
        assert_eq!(gate.time_out(), "birth deps not ready within 30s (waiting for db)");
        assert_eq!((gate.deadline(), gate.waiting()), (None, false));
        assert_eq!(gate.tombstone("db", true, None), None, "too late");
    }
}
