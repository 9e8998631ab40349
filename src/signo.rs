//! Signal numbers and their names: `SIGTERM`, `15`, `SIGRTMIN+3`. Plain values that
//! the role map, the command line, the decisions and the I/O all speak.

use std::fmt;

use nix::sys::signal::Signal;

use crate::quoted::Quoted;

/// A signal number, shown and read by name (`SIGTERM`, `SIGRTMIN+3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signo(pub i32);

pub const SIGTERM: Signo = Signo(libc::SIGTERM);
pub const SIGKILL: Signo = Signo(libc::SIGKILL);
pub const SIGCONT: Signo = Signo(libc::SIGCONT);

impl Signo {
    /// Reads `SIGTERM`, `TERM`, `sigterm`, `15`, `SIGRTMIN+2` or `SIGRTMAX-1`.
    pub fn parse(input: &str) -> Result<Signo, UnknownSignal> {
        let bad = || UnknownSignal(input.to_string());
        let upper = input.trim().to_ascii_uppercase();
        if let Ok(number) = upper.parse::<i32>() {
            return if (1..=libc::SIGRTMAX()).contains(&number) { Ok(Signo(number)) } else { Err(bad()) };
        }
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(sig) = Signal::iterator().find(|s| &s.as_str()[3..] == name) {
            return Ok(Signo(sig as i32));
        }
        let (base, offset) = if let Some(rest) = name.strip_prefix("RTMIN") {
            (libc::SIGRTMIN(), rest)
        } else if let Some(rest) = name.strip_prefix("RTMAX") {
            (libc::SIGRTMAX(), rest)
        } else {
            return Err(bad());
        };
        // Digits only, and few enough that the sum cannot overflow.
        let step = |n: &str| match n.bytes().all(|b| b.is_ascii_digit()) {
            true => n.parse::<u8>().map(i32::from).map_err(|_| bad()),
            false => Err(bad()),
        };
        let number = if offset.is_empty() {
            base
        } else if let Some(n) = offset.strip_prefix('+') {
            base + step(n)?
        } else if let Some(n) = offset.strip_prefix('-') {
            base - step(n)?
        } else {
            return Err(bad());
        };
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&number) { Ok(Signo(number)) } else { Err(bad()) }
    }

    /// The stop signals: exeunt shuts down on them instead of forwarding them. SIGQUIT
    /// is not one: tini passes it on as it came, and a JVM or a Go program answers it
    /// with a dump of its threads and lives on (nginx leaves on it, and exeunt then
    /// stops as after any primary's exit).
    pub fn asks_to_stop(self) -> bool {
        matches!(self.0, libc::SIGTERM | libc::SIGINT)
    }

    /// Signals that are exeunt's own business and never forwarded: SIGCHLD is how
    /// exeunt learns of exits; SIGTTIN/SIGTTOU concern exeunt's own terminal access.
    pub fn is_forwarded(self) -> bool {
        !matches!(self.0, libc::SIGCHLD | libc::SIGTTIN | libc::SIGTTOU)
    }
}

impl fmt::Display for Signo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Ok(sig) = Signal::try_from(self.0) {
            return f.write_str(sig.as_str());
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        match self.0 {
            n if n == min => f.write_str("SIGRTMIN"),
            n if n == max => f.write_str("SIGRTMAX"),
            n if n > min && n < max => write!(f, "SIGRTMIN+{}", n - min),
            // Numbers glibc keeps for itself below SIGRTMIN: shown as numbers, which read back.
            n => write!(f, "{n}"),
        }
    }
}

/// A signal name or number that names no signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSignal(pub String);

impl fmt::Display for UnknownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown signal {} (write a name such as SIGTERM, SIGINT or SIGKILL)", Quoted(&self.0))
    }
}

impl std::error::Error for UnknownSignal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_signal_names_with_or_without_prefix() {
        assert_eq!(Signo::parse("SIGTERM"), Ok(Signo(libc::SIGTERM)));
        assert_eq!(Signo::parse("int"), Ok(Signo(libc::SIGINT)));
        assert_eq!(Signo::parse("SIGKILL"), Ok(Signo(libc::SIGKILL)));
        assert_eq!(Signo::parse("9"), Ok(Signo(9)));
        assert_eq!(Signo::parse("SIGRTMIN+2"), Ok(Signo(libc::SIGRTMIN() + 2)));
        assert_eq!(Signo::parse("SIGRTMAX"), Ok(Signo(libc::SIGRTMAX())));
    }

    #[test]
    fn refuses_unknown_signals() {
        for bad in [
            "SIGFOO",
            "",
            "0",
            "65",
            "SIGRTMIN+99",
            "SIGRTMIN+",
            "SIGRTMIN*2",
            "SIG",
            "SIGRTMIN++1",
            "SIGRTMAX-99999999999",
            "SIGRTMIN\u{35a}+",
        ] {
            let err = Signo::parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("unknown signal"), "{err}");
        }
    }

    #[test]
    fn shows_names_that_read_back() {
        for n in 1..=libc::SIGRTMAX() {
            let shown = Signo(n).to_string();
            assert_eq!(Signo::parse(&shown), Ok(Signo(n)), "{shown}");
        }
    }
}
