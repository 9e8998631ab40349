//! The plan's probes: what exeunt does to learn whether a process is ready or alive,
//! or to ask it to stop, and how often and how long it tries.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An HTTP endpoint on a literal address (exeunt resolves no names: a lookup would block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub addr: Endpoint,
    /// The Host header: the URL's host as written.
    pub host: String,
    pub path: String,
    /// The URL as written, for messages.
    pub url: String,
}

/// Where a probe connects: an IP address and port, or `localhost`, which is tried on
/// 127.0.0.1 and ::1 at once (a server may listen on either), and passes on either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Addr(SocketAddr),
    Localhost(u16),
}

impl Endpoint {
    /// The addresses to try.
    pub fn addrs(self) -> Vec<SocketAddr> {
        match self {
            Endpoint::Addr(addr) => vec![addr],
            Endpoint::Localhost(port) => {
                vec![SocketAddr::from(([127, 0, 0, 1], port)), SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))]
            }
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(addr) => write!(f, "{addr}"),
            Endpoint::Localhost(port) => write!(f, "localhost:{port}"),
        }
    }
}

/// Something exeunt does to learn about a process, or to ask it to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Succeeds when a TCP connection is accepted.
    Tcp(Endpoint),
    /// Succeeds on a 2xx or 3xx answer to a readiness GET (as the kubelet judges), on a
    /// 2xx answer to a stop hook's POST.
    Http { method: &'static str, target: HttpTarget },
    /// Succeeds when the command exits with 0.
    Exec(Vec<OsString>),
    /// Succeeds when the path exists.
    File(PathBuf),
    /// Succeeds when the process writes a newline to its descriptor of this number
    /// (s6's notification-fd): readiness it announces itself, with nothing polled.
    Fd(u8),
    /// Succeeds when the process says `READY=1` on the socket named to it in
    /// `NOTIFY_SOCKET` (systemd's protocol), which also carries its `STATUS=` and
    /// `WATCHDOG=1`.
    Notify,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Tcp(addr) => write!(f, "tcp {addr}"),
            Check::Http { method, target } => write!(f, "http {method} {}", target.url),
            Check::Exec(argv) => {
                let words: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
                write!(f, "exec {words:?}")
            }
            Check::File(path) => write!(f, "file {}", path.display()),
            Check::Fd(fd) => write!(f, "a newline on descriptor {fd}"),
            Check::Notify => f.write_str("READY=1 on its NOTIFY_SOCKET"),
        }
    }
}

/// What to do when a readiness probe has not passed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// Stop what was started and exit non-zero.
    Fail,
    /// Warn and start what comes next anyway.
    Start,
}

/// How exeunt learns that a sidecar is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub probe: Check,
    /// Between the end of one attempt and the start of the next.
    pub interval: Duration,
    /// From the start until the sidecar counts as not ready in time.
    pub timeout: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    pub on_timeout: OnTimeout,
    /// Probing that goes on once the sidecar is ready (`period`); None: it stops there.
    pub watch: Option<Watch>,
}

/// Readiness that is probed again once reached, every `period`, as the kubelet probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub period: Duration,
    /// Failed attempts in a row that make a ready sidecar not ready.
    pub failure_threshold: u32,
    /// Passed attempts in a row that make it ready again.
    pub success_threshold: u32,
}

/// A sidecar's liveness probe: once it is ready, `probe` runs every `period`, and
/// `failure_threshold` failures in a row restart the sidecar, as the kubelet restarts a
/// container whose liveness probe fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub probe: Check,
    pub period: Duration,
    pub failure_threshold: u32,
    /// How long one attempt may take; a longer one is a failure.
    pub attempt_timeout: Duration,
}

/// A liveness probe's period when the role map gives none (the kubelet's).
pub const DEFAULT_LIVE_PERIOD: Duration = Duration::from_secs(10);

/// Kubernetes' defaults for a probe's thresholds.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;

pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
