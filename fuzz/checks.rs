//! What must hold for any input to exeunt's parsers, whatever the bytes: no panic, an
//! error that fits on one line, and what is accepted reads back the same when exeunt
//! shows it. Shared by the fuzz targets and by `tests/fuzz_corpus.rs`, which replays
//! the saved corpus as ordinary tests.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use exeunt::duration::{self, Show};
use exeunt::plan::{Pod, Role};
use exeunt::pod::{kubexit_env, tombstone::Tombstone};
use exeunt::reaper::parse_stat;
use exeunt::rolemap::{self, is_valid_name, read_addr, read_url};
use exeunt::signals::Signo;

/// The rules for one kind of input: panics when one is broken.
pub type Check = fn(&[u8]);

/// Every target, by the name of its corpus directory.
#[allow(dead_code)] // The fuzz targets use one function each; the corpus test uses this.
pub const TARGETS: [(&str, Check); 9] = [
    ("rolemap", rolemap),
    ("duration", duration),
    ("signal_name", signal_name),
    ("tombstone", tombstone),
    ("kubexit_env", kubexit_env),
    ("proc_stat", proc_stat),
    ("command_line", command_line),
    ("http_answer", http_answer),
    ("probe_target", probe_target),
];

/// A role map's text, with and without a command line that supplies the primary.
pub fn rolemap(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let command = [OsString::from("true")];
    for command in [None, Some(&command[..])] {
        match rolemap::parse(text, "fuzz.toml", command) {
            Ok(plan) => {
                let names: Vec<&str> = plan.processes.iter().map(|p| p.name.as_str()).collect();
                for (i, name) in names.iter().enumerate() {
                    assert!(is_valid_name(name), "accepted process name {name:?}");
                    assert!(!names[..i].contains(name), "accepted process name {name:?} twice");
                }
                assert!(plan.processes.iter().any(|p| p.role == Role::Primary), "accepted a plan without a primary");
                if let Some(pod) = &plan.pod {
                    assert_valid_pod(pod);
                }
                let shown = plan.to_string();
                assert!(shown.lines().count() > plan.processes.len(), "{shown}");
            }
            Err(e) => assert_one_line(&e.to_string(), "fuzz.toml:"),
        }
    }
}

/// A duration, as in `grace_period = "10s"` or KUBEXIT_GRACE_PERIOD.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match duration::parse(text) {
        Ok(d) => assert_eq!(duration::parse(&Show(d).to_string()), Ok(d), "{text:?} shown as {}", Show(d)),
        Err(e) => assert_one_line(&e.to_string(), "invalid duration"),
    }
}

/// A signal name or number, as in `stop_signal` or `-p`.
pub fn signal_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Signo::parse(text) {
        Ok(signo) => {
            assert!((1..=libc::SIGRTMAX()).contains(&signo.0), "{text:?} read as {}", signo.0);
            assert_eq!(Signo::parse(&signo.to_string()), Ok(signo), "{text:?} shown as {signo}");
        }
        Err(e) => assert_one_line(&e, "unknown signal"),
    }
}

/// A tombstone written by another container (exeunt's or kubexit's).
pub fn tombstone(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Tombstone::parse(text) {
        Ok(tombstone) => {
            let rendered = tombstone.render();
            assert_eq!(Tombstone::parse(&rendered), Ok(tombstone), "{text:?} rendered as {rendered:?}");
        }
        Err(e) => assert_one_line(&e, "line "),
    }
}

/// kubexit's variables, one `NAME=VALUE` per line (values may be any bytes), over no
/// role map when the first byte is even and over a role map's `[pod]` when it is odd.
pub fn kubexit_env(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let base = (first % 2 == 1).then(|| Pod {
        name: "app".into(),
        graveyard: "/graveyard".into(),
        death_deps: vec!["job".into()],
        birth_deps: Vec::new(),
        birth_timeout: std::time::Duration::from_secs(30),
    });
    let vars = variables(rest);
    let env = |name: &str| vars.iter().find(|(n, _)| n.as_bytes() == name.as_bytes()).map(|(_, v)| v.clone());
    match kubexit_env::read(base, &env) {
        Ok(settings) => {
            if let Some(pod) = &settings.pod {
                assert_valid_pod(pod);
            }
        }
        Err(e) => assert_one_line(&e, ""),
    }
}

/// A line of /proc/PID/stat, whose command name may hold any bytes.
pub fn proc_stat(data: &[u8]) {
    if let Some(stat) = parse_stat(data) {
        let close = data.iter().rposition(|&b| b == b')').expect("a parsed stat has a ')'");
        let after = &data[close + 1..];
        assert!(after.contains(&stat.state), "state {} is not after the name", stat.state);
        let ppid = stat.ppid.unsigned_abs().to_string();
        assert!(after.windows(ppid.len()).any(|w| w == ppid.as_bytes()), "ppid {} is not after the name", stat.ppid);
    }
}

/// A command line (arguments separated by NUL bytes), then after an empty argument the
/// environment, one `NAME=VALUE` per line.
pub fn command_line(data: &[u8]) {
    let (args, env) = match data.windows(2).position(|w| w == b"\0\0") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &b""[..]),
    };
    let args: Vec<OsString> = args.split(|&b| b == 0).map(|a| OsStr::from_bytes(a).to_owned()).collect();
    let vars = variables(env);
    let env = |name: &str| vars.iter().find(|(n, _)| n.as_bytes() == name.as_bytes()).map(|(_, v)| v.clone());
    if let Err(e) = exeunt::cli::parse(&args, &env) {
        assert_one_line(&e.to_string(), "");
    }
}

/// What a sidecar answers to an HTTP probe or stop hook.
pub fn http_answer(data: &[u8]) {
    match exeunt::checks::status_of(data) {
        None => assert!(!data.windows(2).any(|w| w == b"\r\n"), "a complete status line was not judged"),
        Some(Ok(())) => assert!(data.starts_with(b"HTTP/1."), "passed without an HTTP/1.x status line"),
        Some(Err(e)) => assert_one_line(&e, ""),
    }
}

/// A probe's `tcp` address or `http` URL: what is accepted goes into a request line
/// and a Host header, so it may hold no white space or control character.
pub fn probe_target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match read_addr(text) {
        Ok(addr) => assert_eq!(read_addr(&addr.to_string()), Ok(addr), "{text:?}"),
        Err(e) => assert_one_line(&e, "'"),
    }
    match read_url(text) {
        Ok(target) => {
            let clean = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
            assert!(clean(&target.host) && clean(&target.path), "{text:?} read as {target:?}");
            assert!(target.path.starts_with('/'), "{text:?} read as {target:?}");
        }
        Err(e) => assert_one_line(&e, "'"),
    }
}

fn variables(data: &[u8]) -> Vec<(OsString, OsString)> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| {
            let at = line.iter().position(|&b| b == b'=')?;
            Some((OsStr::from_bytes(&line[..at]).to_owned(), OsStr::from_bytes(&line[at + 1..]).to_owned()))
        })
        .collect()
}

fn assert_valid_pod(pod: &Pod) {
    assert!(is_valid_name(&pod.name), "accepted container name {:?}", pod.name);
    for dep in pod.death_deps.iter().chain(&pod.birth_deps) {
        assert!(is_valid_name(dep), "accepted dep name {dep:?}");
    }
}

/// Errors are printed as one line: a newline taken from the input would let it forge
/// log lines, and would split the message from where it happened.
fn assert_one_line(message: &str, prefix: &str) {
    assert!(message.starts_with(prefix), "{message:?} does not start with {prefix:?}");
    assert!(message.len() > prefix.len(), "an error that says nothing: {message:?}");
    assert!(!message.contains(['\n', '\r']), "an error of more than one line: {message:?}");
}
