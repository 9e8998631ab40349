//! The one way a part of the supervisor owns deadlines: it lists each deadline beside
//! the duty that falls due then, and both questions the supervisor asks of it, "when
//! do you next need the clock?" and "what is due now?", read that one list. A
//! deadline cannot be waited for without its duty, nor a duty done without its
//! deadline.

use crate::events::Time;

pub trait Alarms {
    /// What falls due at one of the part's deadlines.
    type Duty;

    /// Every deadline with its duty, in the order the duties are done when several
    /// have passed.
    fn alarms(&self) -> impl Iterator<Item = (Time, Self::Duty)>;

    /// When the part next needs the clock.
    fn deadline(&self) -> Option<Time> {
        self.alarms().map(|(at, _)| at).min()
    }

    /// The first duty whose deadline has passed at `now`.
    fn due(&self, now: Time) -> Option<Self::Duty> {
        self.alarms().find(|(at, _)| *at <= now).map(|(_, duty)| duty)
    }
}
