//! The exit-code verdict: what exeunt exits with, from the primaries' statuses, the
//! failures that outrank them, and a stop signal that came before any primary ran.

use crate::events::ExitStatus;
use crate::plan::ZeroCodes;
use crate::signo::Signo;

/// What the run has said so far about exeunt's exit code.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The first failing primary's code, else the last primary's.
    primary: Option<i32>,
    /// A failure that decides over the primaries (a process could not be started, a
    /// sidecar was not ready, a sidecar failed the run, a death dep died): the first.
    failure: Option<i32>,
    /// A stop signal that came before any primary ran: exit as if killed by it.
    signal: Option<i32>,
}

impl Verdict {
    /// A primary exited: its status counts unless an earlier primary failed.
    pub fn primary_exited(&mut self, status: ExitStatus) {
        if self.primary.is_none_or(|code| code == 0) {
            self.primary = Some(status.code());
        }
    }

    /// The run failed with `code`, whatever the primaries do; the first failure counts.
    pub fn fail(&mut self, code: i32) {
        self.failure.get_or_insert(code);
    }

    /// A sidecar failed the run (`on_exit = "fail"`, or past `max_restarts`): its
    /// `exit_code`, else its status; never 0, since exeunt called the run failed. A
    /// sidecar that exits 0 and fails the run makes it 1.
    pub fn sidecar_failed(&mut self, status: ExitStatus, exit_code: Option<i32>) {
        let code = exit_code.unwrap_or(status.code());
        self.fail(if code == 0 { 1 } else { code });
    }

    /// A task failed the run: its status, never 0 (one that exited 0 after it ran past
    /// its timeout makes it 1).
    pub fn task_failed(&mut self, status: ExitStatus) {
        self.sidecar_failed(status, None);
    }

    /// A stop signal ended the run before any primary started.
    pub fn stopped_before_start(&mut self, signo: Signo) {
        self.signal = Some(128 + signo.0);
    }

    /// The code exeunt exits with, as far as it is decided now: a failure, else the
    /// primaries' status (remapped by `-e`), else the signal's, else 0.
    pub fn code(&self, zero_codes: &ZeroCodes) -> i32 {
        let primary = self.primary.map(|code| zero_codes.apply(code));
        self.failure.or(primary).or(self.signal).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failing_primary_decides_else_the_last_one() {
        let mut verdict = Verdict::default();
        verdict.primary_exited(ExitStatus::Code(0));
        verdict.primary_exited(ExitStatus::Code(5));
        verdict.primary_exited(ExitStatus::Code(0));
        verdict.primary_exited(ExitStatus::Code(7));
        assert_eq!(verdict.code(&ZeroCodes::default()), 5);
        let mut verdict = Verdict::default();
        verdict.primary_exited(ExitStatus::Code(0));
        verdict.primary_exited(ExitStatus::Signal(Signo(libc::SIGSEGV)));
        assert_eq!(verdict.code(&ZeroCodes::default()), 139);
    }

    #[test]
    fn a_failure_outranks_the_primaries_and_the_first_failure_counts() {
        let mut verdict = Verdict::default();
        verdict.primary_exited(ExitStatus::Code(3));
        verdict.fail(4);
        verdict.fail(9);
        assert_eq!(verdict.code(&ZeroCodes::default()), 4);
    }

    #[test]
    fn a_run_failed_by_a_sidecar_never_exits_0() {
        let code = |status, exit_code| {
            let mut verdict = Verdict::default();
            verdict.primary_exited(ExitStatus::Code(0));
            verdict.sidecar_failed(status, exit_code);
            verdict.code(&ZeroCodes::default())
        };
        assert_eq!(code(ExitStatus::Code(0), None), 1);
        assert_eq!(code(ExitStatus::Code(9), None), 9);
        assert_eq!(code(ExitStatus::Code(0), Some(7)), 7);
        assert_eq!(code(ExitStatus::Signal(Signo(libc::SIGKILL)), None), 137);
    }

    #[test]
    fn zero_codes_remap_only_the_primaries_status() {
        let mut zero = ZeroCodes::default();
        zero.add(143);
        let mut verdict = Verdict::default();
        verdict.primary_exited(ExitStatus::Signal(Signo(libc::SIGTERM)));
        assert_eq!(verdict.code(&zero), 0);
        verdict.fail(143);
        assert_eq!(verdict.code(&zero), 143, "a failure is not remapped");
    }

    #[test]
    fn a_signal_before_any_primary_counts_only_without_one() {
        let mut verdict = Verdict::default();
        assert_eq!(verdict.code(&ZeroCodes::default()), 0);
        verdict.stopped_before_start(Signo(libc::SIGTERM));
        assert_eq!(verdict.code(&ZeroCodes::default()), 143);
        verdict.primary_exited(ExitStatus::Code(0));
        assert_eq!(verdict.code(&ZeroCodes::default()), 0);
    }
}
