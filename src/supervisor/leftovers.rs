//! What the primaries leave behind in their process groups (a client started in the
//! background, a worker they forked) is stopped before any sidecar, so that a database
//! or a proxy outlives its clients, as Kubernetes stops main containers before their
//! sidecars. Each group gets SIGTERM, then SIGKILL after its primary's grace period;
//! the sidecars wait until the leftovers are gone or killed. Whatever left its group
//! (`setsid`) is still caught by the final sweep.
//!
//! SIGTERM, not the primary's `stop_signal`: that one is for the primary's own program
//! (nginx's SIGQUIT), and the leftovers are other programs. A shell also starts its
//! background jobs with SIGQUIT and SIGINT ignored, so those would wait out the grace.

use std::time::Duration;

use log::{info, warn};

use super::alarms::Alarms;
use crate::duration::Show;
use crate::events::{Action, Member, Time};
use crate::plan::Plan;
use crate::signo::{SIGKILL, SIGTERM};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// A primary still runs, or nothing was asked yet.
    NotYet,
    /// The groups were signalled; who was in them is not known yet.
    Asked,
    /// These leftovers got their stop signal; SIGKILL goes to their groups at `deadline`.
    Waiting { pids: Vec<i32>, deadline: Time, grace: Duration },
    /// The sidecars may go.
    Done,
}

/// The leftovers' one deadline, and its duty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillLeftovers;

#[derive(Debug)]
pub struct Leftovers {
    /// The process groups of the primaries that exited (each led by its primary),
    /// with the primary's index in the plan.
    groups: Vec<(i32, usize)>,
    phase: Phase,
}

impl Leftovers {
    pub fn new() -> Leftovers {
        Leftovers { groups: Vec::new(), phase: Phase::NotYet }
    }

    /// A primary that exeunt started, in a group of its own, has exited.
    pub fn primary_exited(&mut self, pgid: i32, index: usize) {
        self.groups.push((pgid, index));
    }

    /// Whether the sidecars must wait for the primaries' leftovers. The first time,
    /// the groups are sent SIGTERM, and the world says who was in them
    /// (`Event::Leftovers`).
    pub fn hold_sidecars(&mut self, actions: &mut Vec<Action>) -> bool {
        match self.phase {
            Phase::NotYet if self.groups.is_empty() => {
                self.phase = Phase::Done;
                false
            }
            Phase::NotYet => {
                let groups = self.groups.iter().map(|&(pgid, _)| (pgid, SIGTERM)).collect();
                actions.push(Action::SignalLeftovers { groups });
                self.phase = Phase::Asked;
                true
            }
            Phase::Asked | Phase::Waiting { .. } => true,
            Phase::Done => false,
        }
    }

    /// Who was in the groups when they were signalled.
    pub fn found(&mut self, members: &[Member], plan: &Plan, now: Time) {
        if self.phase != Phase::Asked {
            return;
        }
        if members.is_empty() {
            self.phase = Phase::Done;
            return;
        }
        let grace = self.groups.iter().map(|&(_, i)| plan.processes[i].grace_period).max().unwrap_or_default();
        let owners: Vec<&str> = self.groups.iter().map(|&(_, i)| plan.processes[i].name.as_str()).collect();
        let listed: Vec<String> = members.iter().map(|m| format!("{} ({})", m.pid, m.name)).collect();
        info!(
            "sending SIGTERM to {} left behind by primary {} before the sidecars (grace {}): {}",
            plural(members.len()),
            owners.join(", "),
            Show(grace),
            listed.join(", ")
        );
        let pids = members.iter().map(|m| m.pid).collect();
        self.phase = Phase::Waiting { pids, deadline: now + grace, grace };
    }

    /// A descendant exited; the last leftover lets the sidecars go.
    pub fn exited(&mut self, pid: i32) {
        if let Phase::Waiting { pids, .. } = &mut self.phase {
            pids.retain(|&p| p != pid);
            if pids.is_empty() {
                info!("the primaries' leftovers are gone: stopping the sidecars");
                self.phase = Phase::Done;
            }
        }
    }

    /// Every grace period is skipped: SIGKILL to the groups now, if they were asked.
    pub fn hurry(&mut self, actions: &mut Vec<Action>) {
        if let Phase::Asked | Phase::Waiting { .. } = self.phase {
            self.kill(actions);
        }
        self.phase = Phase::Done;
    }

    fn alarm(&self) -> Option<(Time, KillLeftovers)> {
        match self.phase {
            Phase::Waiting { deadline, .. } => Some((deadline, KillLeftovers)),
            _ => None,
        }
    }

    /// The grace period is over: SIGKILL to the groups, and the sidecars go.
    pub fn ring(&mut self, _: KillLeftovers, actions: &mut Vec<Action>) {
        if let Phase::Waiting { pids, grace, .. } = &self.phase {
            warn!(
                "killing {} left behind by the primaries: still running {} after SIGTERM",
                plural(pids.len()),
                Show(*grace)
            );
        }
        self.kill(actions);
        self.phase = Phase::Done;
    }

    fn kill(&self, actions: &mut Vec<Action>) {
        let groups = self.groups.iter().map(|&(pgid, _)| (pgid, SIGKILL)).collect();
        actions.push(Action::SignalLeftovers { groups });
    }
}

pub(super) fn plural(count: usize) -> String {
    match count {
        1 => "1 process".to_string(),
        n => format!("{n} processes"),
    }
}

impl Alarms for Leftovers {
    type Duty = KillLeftovers;

    /// The leftovers' one deadline.
    fn alarms(&self) -> impl Iterator<Item = (Time, KillLeftovers)> {
        self.alarm().into_iter()
    }
}
