//! What must hold for any input to exeunt's parsers, whatever the bytes: no panic, an
//! error that fits on one line, and what is accepted reads back the same when exeunt
//! shows it. Shared by the fuzz targets and by `tests/integration/fuzz_corpus.rs`, which replays
//! the saved corpus as ordinary tests.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use exeunt::control::wire;
use exeunt::duration::{self, Show};
use exeunt::plan::{Pod, Role};
use exeunt::pod::{kubexit_env, tombstone::Tombstone};
use exeunt::reaper::parse_stat;
use exeunt::rolemap::{self, is_valid_name, read_addr, read_url};
use exeunt::signo::Signo;

/// The rules for one kind of input: panics when one is broken.
pub type Check = fn(&[u8]);

/// Every target, by the name of its corpus directory.
#[allow(dead_code)] // The fuzz targets use one function each; the corpus test uses this.
pub const TARGETS: [(&str, Check); 13] = [
    ("rolemap", rolemap),
    ("duration", duration),
    ("signal_name", signal_name),
    ("tombstone", tombstone),
    ("kubexit_env", kubexit_env),
    ("proc_stat", proc_stat),
    ("command_line", command_line),
    ("http_answer", http_answer),
    ("probe_target", probe_target),
    ("supervisor", supervisor),
    ("output_line", output_line),
    ("control_request", control_request),
    ("dotenv", dotenv),
];

/// A process's line as exeunt carries it, whatever its bytes: as a JSON string, one
/// line that gives the bytes back by the README's rule (`\xNN` for a byte that is not
/// UTF-8, a doubled backslash, when `escaped`); plain text passed as it is; and a
/// piece of a long line that never ends inside a character.
pub fn output_line(data: &[u8]) {
    use exeunt::json;
    let mut out = Vec::new();
    let escaped = json::push_string(&mut out, data);
    let text = std::str::from_utf8(&out).expect("a JSON string is UTF-8");
    assert!(!text.contains(['\n', '\r']), "a JSON line held a line break: {text:?}");
    let decoded = decode_json_string(text);
    let restored = if escaped { restore_escaped(&decoded) } else { decoded.into_bytes() };
    assert_eq!(restored, data, "the JSON string does not give the bytes back: {text:?}");
    assert_eq!(escaped, std::str::from_utf8(data).is_err(), "escaped is set exactly for bytes that are not UTF-8");
    if json::is_plain(data) {
        assert_eq!(&out[1..out.len() - 1], data, "plain text went out changed");
    }
    let cut = exeunt::output::piece_end(data);
    assert!(cut <= data.len() && data.len() - cut <= 3, "a piece of {} bytes ended at {cut}", data.len());
    if cut < data.len() {
        assert!(data[cut] >= 0xc2 && data[cut] <= 0xf4, "a piece ended before a byte that starts no character");
        assert!(cut > 0, "a piece was empty");
    }
}

/// A JSON string, quotes included, decoded by the rules of RFC 8259.
fn decode_json_string(text: &str) -> String {
    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).expect("a quoted string");
    let mut decoded = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        assert!(c != '"' && u32::from(c) >= 0x20, "{c:?} unescaped in {text:?}");
        if c != '\\' {
            decoded.push(c);
            continue;
        }
        match chars.next().expect("an escape") {
            'n' => decoded.push('\n'),
            'r' => decoded.push('\r'),
            't' => decoded.push('\t'),
            'b' => decoded.push('\u{8}'),
            'f' => decoded.push('\u{c}'),
            c @ ('"' | '\\' | '/') => decoded.push(c),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).expect("four hex digits");
                decoded.push(char::from_u32(code).expect("no lone surrogate"));
            }
            other => panic!("\\{other} is no JSON escape, in {text:?}"),
        }
    }
    decoded
}

/// The bytes an escaped message stands for: `\xNN` a byte, `\\` a backslash.
fn restore_escaped(message: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find('\\') {
        bytes.extend_from_slice(&rest.as_bytes()[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("\\\\") {
            bytes.push(b'\\');
            rest = after;
        } else {
            let hex = rest.get(2..4).expect("\\x and two digits");
            assert!(rest.starts_with("\\x"), "a lone backslash in an escaped message: {message:?}");
            bytes.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            rest = &rest[4..];
        }
    }
    bytes.extend_from_slice(rest.as_bytes());
    bytes
}

/// A role map's text, with and without a command line that supplies the primary.
pub fn rolemap(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let command = [OsString::from("true")];
    // Two variables for ${...} to find; any other is unset.
    let env = |name: &str| match name {
        "HOST" => Some(OsString::from("db")),
        "EMPTY" => Some(OsString::new()),
        _ => None,
    };
    for command in [None, Some(&command[..])] {
        match rolemap::parse(text, "fuzz.toml", command, &env) {
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
            }
            // One line per mistake, each naming the file.
            Err(e) => {
                let shown = e.to_string();
                assert!(!shown.is_empty() && !shown.ends_with('\n'), "{shown:?}");
                shown.lines().for_each(|line| assert_one_line(line, "fuzz.toml:"));
            }
        }
    }
}

/// An env file's text: an error names a line of the text and holds nothing of it; what
/// is read has names that can be set, and reads back the same written in double quotes.
pub fn dotenv(data: &[u8]) {
    use exeunt::dotenv;
    let Ok(text) = std::str::from_utf8(data) else { return };
    match dotenv::parse(text) {
        Ok(vars) => {
            let mut again = String::new();
            for (key, value) in &vars {
                assert!(rolemap::is_variable_name(key) && !key.contains([' ', '#', '\n']), "read name {key:?}");
                assert!(!value.contains('\0'), "read a NUL in {key}");
                let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                again.push_str(&format!("{key}=\"{escaped}\"\n"));
            }
            assert_eq!(dotenv::parse(&again).as_ref(), Ok(&vars), "written back as {again:?}");
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.matches('\n').count() + 1, "line {} of {text:?}", e.line);
            assert_one_line(&e.to_string(), &format!("line {}: ", e.line));
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
        Err(e) => assert_one_line(&e.to_string(), "unknown signal"),
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
    // One input in 256 (those starting with 'L') also has its parse timed as it grows.
    if let Some(shape) = text.strip_prefix('L') {
        tombstone_parse_grows_linearly(shape);
    }
}

/// A tombstone of distinct keys shaped by `shape` (its first line gives the key's stem
/// and the value), 8 KiB and then 64 KiB of it, as a neighbour could write one: the
/// larger takes no more than eight times the smaller's time, with slack for a noisy
/// machine. Each key checked against every earlier one took 144 ms for 64 KiB.
fn tombstone_parse_grows_linearly(shape: &str) {
    let line = shape.lines().next().unwrap_or_default();
    let (stem, value) = line.split_once(':').unwrap_or((line, " v"));
    let stem: String = stem.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let value: String = value.chars().filter(|c| !c.is_control()).take(16).collect();
    let text = |size: usize| {
        let mut text = String::new();
        for n in 0.. {
            let line = format!("{stem}{n:x}:{value}\n");
            if text.len() + line.len() > size {
                break;
            }
            text.push_str(&line);
        }
        text
    };
    let (small, large) = (text(8 << 10), text(64 << 10));
    let time = |text: &str| {
        (0..5)
            .map(|_| {
                let started = std::time::Instant::now();
                let _ = std::hint::black_box(Tombstone::parse(std::hint::black_box(text)));
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let (t_small, t_large) = (time(&small), time(&large));
    let bound = t_small * 8 * 3 + std::time::Duration::from_millis(5);
    assert!(t_large <= bound, "64 KiB took {t_large:?}, 8 KiB {t_small:?}: not linear ({line:?})");
}

/// What a client sends on the control socket (when the first byte is even), or what a
/// client reads back as an answer (when it is odd): a request is taken or refused with
/// one line, within the size limit; what is taken is written back as one line that
/// reads as the same request; an answer reads back the same once written.
pub fn control_request(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    if first % 2 == 0 {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        match wire::parse_request(line) {
            Ok(request) => {
                let written = wire::request_line(&request);
                assert!(written.ends_with('\n') && written.matches('\n').count() == 1, "{written:?}");
                assert!(written.len() <= line.len() + 1, "{written:?} is longer than {line:?}");
                let again = wire::parse_request(written.trim_end_matches('\n').as_bytes());
                assert_eq!(again.as_ref(), Ok(&request), "{line:?} written as {written:?}");
            }
            Err(e) => assert!(!e.is_empty() && !e.contains(['\n', '\r']), "{line:?}: {e:?}"),
        }
    } else {
        match wire::parse_answer(rest) {
            Ok(answer) => {
                let bytes = wire::answer_bytes(&answer);
                assert_eq!(wire::parse_answer(&bytes), Ok(answer), "{rest:?} written as {bytes:?}");
            }
            Err(e) => assert!(!e.is_empty() && !e.contains(['\n', '\r']), "{rest:?}: {e:?}"),
        }
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
        ignore_death_dep_code: false,
        run: None,
    });
    let vars = variables(rest);
    let env = |name: &str| lookup(&vars, name);
    match kubexit_env::read(base, &env) {
        Ok(settings) => {
            if let Some(pod) = &settings.pod {
                assert_valid_pod(pod);
            }
        }
        Err(e) => assert_one_line(&e.to_string(), ""),
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
    let env = |name: &str| lookup(&vars, name);
    if let Err(e) = exeunt::cli::parse(&args, &env) {
        assert_one_line(&e.to_string(), "");
    }
}

/// What a sidecar answers to an HTTP probe or stop hook.
pub fn http_answer(data: &[u8]) {
    use exeunt::checks::{Passing, status_of};
    for passing in [Passing::SuccessOrRedirect, Passing::Success] {
        match status_of(data, passing) {
            None => assert!(!data.contains(&b'\n'), "a complete status line was not judged"),
            Some(Ok(())) => assert!(data.starts_with(b"HTTP/1."), "passed without an HTTP/1.x status line"),
            Some(Err(e)) => assert_one_line(&e.to_string(), ""),
        }
    }
    // What passes a stop hook passes a readiness probe.
    if let Some(Ok(())) = status_of(data, Passing::Success) {
        assert_eq!(status_of(data, Passing::SuccessOrRedirect), Some(Ok(())));
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

fn lookup(vars: &[(OsString, OsString)], name: &str) -> Option<OsString> {
    vars.iter().find(|(n, _)| n.as_bytes() == name.as_bytes()).map(|(_, v)| v.clone())
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

/// The supervisor run against a simulated world whose every choice comes from the
/// input: the plan, which process exits when and how, which signals and checks' results
/// arrive, which stray descendants appear. The rules an init lives by:
/// - no panic, and time only moves forward;
/// - a process is started only when it is not running; a check only when it is not
///   under way; a signal goes only to a process not yet reported gone (a reaped pid
///   may already be someone else's);
/// - Exit comes once, last of its batch, with a code from 0 to 255, and only when no
///   process of the world is left;
/// - where only the primaries decide (no signal, pod, probe, match or failed start, and
///   no sidecar leaving unasked), the code is the first failing primary's status, else
///   the last primary's;
/// - once the input is used up, the runtime's SIGTERM, then its SIGKILL to the primaries
///   (as a kubelet's after the grace period it keeps), ends the run in bounded virtual
///   time, even if every process ignores everything but SIGKILL and every check fails.
pub fn supervisor(data: &[u8]) {
    use exeunt::supervisor::Supervisor;
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let plan = world::plan(&mut || next().unwrap_or(0));
    let mut world = world::World::new(&plan);
    let mut supervisor = Supervisor::new(&plan, world.now);
    let actions = supervisor.start(world.now);
    world.carry_out(actions);
    world.settle(&mut supervisor);
    while world.exit.is_none() {
        let Some(byte) = next() else { break };
        let event = world.choose(byte, &mut next, supervisor.next_deadline());
        world.feed(&mut supervisor, event);
    }
    world.end(&mut supervisor);
}

mod world {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::time::Duration;

    use exeunt::events::{Action, CheckFailure, CheckId, Death, Event, ExitStatus, Member, Purpose, Request, Time};
    use exeunt::plan::{
        Check, Liveness, Matcher, OnExit, OnTimeout, Plan, Pod, ProcessSpec, Readiness, Role, ShutdownOrder, Watch,
    };
    use exeunt::signo::Signo;
    use exeunt::supervisor::Supervisor;

    const MS: Duration = Duration::from_millis(1);

    /// A first probing of the command `probe`, as the input times it, with no probing
    /// after it passes; `flags` says whether the start waits for it.
    fn readiness(probe: &str, flags: u8, byte: &mut dyn FnMut() -> u8) -> Readiness {
        Readiness {
            probe: Check::Exec(vec![OsString::from(probe)]),
            interval: MS * (1 + u32::from(byte() % 100)),
            timeout: MS * (1 + u32::from(byte()) * 4),
            attempt_timeout: MS * (1 + u32::from(byte() % 100)),
            on_timeout: if flags & 32 == 32 { OnTimeout::Start } else { OnTimeout::Fail },
            watch: None,
        }
    }

    /// A plan of one to four processes, at least one of them a primary.
    pub fn plan(byte: &mut dyn FnMut() -> u8) -> Plan {
        let count = 1 + usize::from(byte() % 4);
        let mut processes = Vec::new();
        for i in 0..count {
            let flags = byte();
            let primary =
                flags & 1 == 1 || (i == count - 1 && processes.iter().all(|p: &ProcessSpec| p.role != Role::Primary));
            // Of the non-primaries, one in four is a task, one in eight a gate.
            let role = match (primary, byte() % 8) {
                (true, _) => Role::Primary,
                (false, 0 | 1) => Role::Task,
                (false, 2) => Role::Gate,
                (false, _) => Role::Sidecar,
            };
            let mut spec = ProcessSpec::new(&format!("p{i}"), role, vec![OsString::from("x")]);
            if role == Role::Gate {
                spec.command.clear();
                spec.ready = Some(readiness("gate", flags, byte));
                processes.push(spec);
                continue;
            }
            if role == Role::Primary && flags & 4 == 4 {
                // A rewrite table of the signals the world sends.
                let of = |b: u8| {
                    Signo([libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1, libc::SIGHUP][usize::from(b % 5)])
                };
                let (from, to) = (byte(), byte());
                spec.rewrite.push((of(from), (to % 6 != 5).then(|| of(to))));
            }
            spec.grace_period = MS * (1 + u32::from(byte()) * 20);
            if flags & 2 == 2 {
                spec.stop_hook = Some(Check::Exec(vec![OsString::from("stop")]));
            }
            if role == Role::Task {
                spec.retries = u32::from(byte() % 3);
                spec.restart_delay = MS * (1 + u32::from(byte() % 50));
                spec.max_restart_delay = spec.restart_delay * 4;
                spec.timeout = (flags & 8 == 8).then(|| MS * (1 + u32::from(byte()) * 20));
            }
            if role == Role::Sidecar {
                spec.on_exit = [OnExit::Restart, OnExit::Ignore, OnExit::Fail][usize::from(byte() % 3)];
                spec.max_restarts = (flags & 4 == 4).then_some(u32::from(byte() % 3));
                spec.restart_delay = MS * (1 + u32::from(byte() % 50));
                spec.max_restart_delay = spec.restart_delay * 4;
                spec.exit_code = (flags & 8 == 8).then_some(i32::from(byte()));
                if flags & 16 == 16 {
                    let mut ready = readiness("probe", flags, byte);
                    ready.watch = (flags & 128 == 128).then(|| Watch {
                        period: MS * 100 * (1 + u32::from(byte() % 10)),
                        failure_threshold: 1 + u32::from(byte() % 3),
                        success_threshold: 1 + u32::from(byte() % 3),
                    });
                    spec.ready = Some(ready);
                }
                if byte().is_multiple_of(16) {
                    spec.live = Some(Liveness {
                        probe: Check::Exec(vec![OsString::from("alive")]),
                        // Periods of 100 ms and more: shorter ones make a run of
                        // thousands of attempts, and the fuzzer a hundred times slower.
                        period: MS * 100 * (1 + u32::from(byte() % 10)),
                        failure_threshold: 1 + u32::from(byte() % 3),
                        attempt_timeout: MS * 50 * (1 + u32::from(byte() % 10)),
                    });
                }
                if flags & 64 == 64 {
                    spec.matcher = Some(Matcher::comm("other"));
                    spec.on_exit = OnExit::Ignore;
                }
            }
            processes.push(spec);
        }
        let mut plan = Plan::new(processes, MS * (1 + u32::from(byte()) * 20));
        let flags = byte();
        if flags & 4 == 4 {
            // A graph of its own instead of the file's order: each non-primary after
            // any of those before it, as the input picks; the primaries after all.
            let roles: Vec<Role> = plan.processes.iter().map(|p| p.role).collect();
            let served: Vec<usize> = (0..roles.len()).filter(|&i| roles[i] != Role::Primary).collect();
            for (i, process) in plan.processes.iter_mut().enumerate() {
                process.after = match process.role {
                    Role::Primary => served.clone(),
                    _ => {
                        let pick = byte();
                        (0..i).filter(|j| pick & (1 << j) != 0).collect()
                    }
                };
            }
        }
        plan.shutdown = if flags & 1 == 1 { ShutdownOrder::Parallel } else { ShutdownOrder::Ordered };
        plan.forward_stop_signals = flags & 8 == 8;
        plan.kill_on_second_signal = flags & 16 == 16;
        plan.kill_primaries_after = (flags & 32 == 32).then(|| MS * (1 + u32::from(byte()) * 20));
        if flags & 64 == 64 {
            plan.stop_delay = MS * (1 + u32::from(byte()) * 20);
        }
        plan.setsid = flags & 128 == 128;
        plan.job_control = plan.setsid;
        plan.match_timeout = Some(MS * (1 + u32::from(byte()) * 4));
        if flags & 2 == 2 {
            plan.pod = Some(Pod {
                name: "app".into(),
                graveyard: "/graveyard".into(),
                death_deps: vec!["job".into()],
                birth_deps: if flags & 4 == 4 { vec!["db".into()] } else { Vec::new() },
                birth_timeout: MS * (1 + u32::from(byte()) * 4),
                ignore_death_dep_code: false,
                run: None,
            });
        }
        plan
    }

    /// Those the process at `index` starts after, however far back.
    fn before(plan: &Plan, index: usize) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        let mut next = plan.processes[index].after.clone();
        while let Some(i) = next.pop() {
            if !found.contains(&i) {
                found.push(i);
                next.extend(&plan.processes[i].after);
            }
        }
        found
    }

    /// What the world holds: processes not yet reported gone, checks under way.
    pub struct World<'p> {
        plan: &'p Plan,
        pub now: Time,
        /// Live processes: the plan's (with their index), and stray descendants.
        alive: Vec<(i32, Option<usize>)>,
        /// Got SIGKILL: gone at the next reaping.
        killed: Vec<i32>,
        checks: Vec<CheckId>,
        /// Events the actions caused, delivered before anything else happens.
        queue: VecDeque<Event>,
        next_pid: i32,
        pub exit: Option<i32>,
        /// Whether the world's choices are spent: processes then give in to SIGKILL only.
        stubborn: bool,
        /// Whether a stop signal came from outside (the runtime's, or another
        /// container's exeunt's): its sender keeps the primaries' deadline.
        stop_requested: bool,
        spawn_choice: u8,
        /// Processes exeunt signalled: their exit is exeunt's doing.
        asked: Vec<i32>,
        /// The status the primaries alone call for, while nothing else had a say.
        oracle: Option<Oracle>,
        /// Control requests not answered yet.
        unanswered: Vec<u32>,
        next_client: u32,
        /// Per process of the plan: whether it was ever started, and a task's
        /// completion (exit 0 on its own) and failed runs.
        started: Vec<bool>,
        completed: Vec<bool>,
        task_failures: Vec<u32>,
        /// A task failed its last try on its own: the run must not exit 0.
        task_failed: bool,
        /// Per gate: whether its probe passed, and when it gives up, from its first
        /// attempt on.
        passed: Vec<bool>,
        gate_deadline: Vec<Option<Time>>,
        /// When something first happened that may end the run with a code of its own
        /// (a signal, another container's word, a failed start, a process's own exit):
        /// a gate that failed before then failed the run.
        eventful_since: Option<Time>,
        /// Per process, those it starts after, however far back.
        before: Vec<Vec<usize>>,
        /// A sidecar may be stopped to be restarted (liveness, a request): the
        /// ordered-shutdown rule is not checked.
        restarts_possible: bool,
    }

    /// The statuses of the primaries that exited on their own, in order.
    #[derive(Default)]
    struct Oracle {
        first_failure: Option<i32>,
        last: Option<i32>,
    }

    impl<'p> World<'p> {
        pub fn new(plan: &'p Plan) -> World<'p> {
            World {
                plan,
                now: Duration::from_secs(1000),
                alive: Vec::new(),
                killed: Vec::new(),
                checks: Vec::new(),
                queue: VecDeque::new(),
                next_pid: 100,
                exit: None,
                stubborn: false,
                stop_requested: false,
                // The first start succeeds; later ones as the input says.
                spawn_choice: 1,
                asked: Vec::new(),
                oracle: (plan.pod.is_none() && plan.processes.iter().all(|p| p.ready.is_none() && p.matcher.is_none()))
                    .then(Oracle::default),
                unanswered: Vec::new(),
                next_client: 0,
                started: vec![false; plan.processes.len()],
                completed: vec![false; plan.processes.len()],
                task_failures: vec![0; plan.processes.len()],
                task_failed: false,
                passed: vec![false; plan.processes.len()],
                gate_deadline: vec![None; plan.processes.len()],
                eventful_since: None,
                before: (0..plan.processes.len()).map(|i| before(plan, i)).collect(),
                restarts_possible: plan.processes.iter().any(|p| p.live.is_some()),
            }
        }

        /// Something happened that may end the run with a code of its own.
        fn eventful(&mut self) {
            self.eventful_since.get_or_insert(self.now);
        }

        /// Whether a gate that must pass gave up with nothing else under way: the run
        /// failed for it, and must not exit 0.
        fn gate_failed(&self) -> bool {
            (0..self.plan.processes.len()).any(|i| {
                let must_pass = self.plan.processes[i].ready.as_ref().is_some_and(|r| r.on_timeout == OnTimeout::Fail);
                let failed_at = self.gate_deadline[i].filter(|_| must_pass && !self.passed[i]);
                failed_at.is_some_and(|at| self.eventful_since.map_or(at <= self.now, |since| at < since))
            })
        }

        fn new_pid(&mut self) -> i32 {
            self.next_pid += 1;
            self.next_pid
        }

        fn is_alive(&self, pid: i32) -> bool {
            self.alive.iter().any(|(p, _)| *p == pid)
        }

        /// Applies the supervisor's actions to the world, checking each.
        pub fn carry_out(&mut self, actions: Vec<Action>) {
            let count = actions.len();
            for (i, action) in actions.into_iter().enumerate() {
                assert!(self.exit.is_none(), "an action after Exit: {action:?}");
                match action {
                    Action::Spawn(index) => {
                        assert!(index < self.plan.processes.len(), "Spawn({index})");
                        assert!(
                            !self.alive.iter().any(|(_, i)| *i == Some(index)),
                            "{} started while it runs",
                            self.plan.processes[index].name
                        );
                        // Nothing starts before all it is after met its condition: a
                        // task completed, a sidecar started (its readiness is the
                        // supervisor's to judge, from probes this world answers).
                        assert!(
                            self.plan.processes[index].role != Role::Gate,
                            "gate {} spawned",
                            self.plan.processes[index].name
                        );
                        for &before in &self.plan.processes[index].after {
                            let (name, other) = (&self.plan.processes[index].name, &self.plan.processes[before]);
                            let must_pass = other.ready.as_ref().is_some_and(|r| r.on_timeout == OnTimeout::Fail);
                            match other.role {
                                Role::Task => assert!(
                                    self.completed[before],
                                    "{name} started before task {} completed",
                                    other.name
                                ),
                                Role::Gate if must_pass => {
                                    assert!(self.passed[before], "{name} started before gate {} passed", other.name)
                                }
                                Role::Gate => {}
                                _ => assert!(self.started[before], "{name} started before {}", other.name),
                            }
                        }
                        assert!(
                            !self.completed[index],
                            "task {} started again after it completed",
                            self.plan.processes[index].name
                        );
                        self.started[index] = true;
                        let choice = self.spawn_choice;
                        let event = match (&self.plan.processes[index].matcher, choice % 8) {
                            (Some(_), 0 | 1) => Event::NotFound { index },
                            (None, 0) if !self.stubborn => {
                                self.oracle = None;
                                self.eventful();
                                Event::SpawnFailed { index, code: 127, reason: "not found".into() }
                            }
                            _ => {
                                let pid = self.new_pid();
                                self.alive.push((pid, Some(index)));
                                Event::Spawned { index, pid }
                            }
                        };
                        self.queue.push_back(event);
                    }
                    Action::Signal { pid, signo, .. }
                    | Action::Stop { pid, signo, .. }
                    | Action::SignalWithStatus { pid, signo, .. } => {
                        // Its exit may have happened and not been reported yet, as for a
                        // zombie not yet reaped: that is no fault.
                        let unreported =
                            self.queue.iter().any(|e| matches!(e, Event::Exited { pid: p, .. } if *p == pid));
                        assert!(
                            self.is_alive(pid) || unreported,
                            "{signo} sent to pid {pid}, which was reported gone or never lived"
                        );
                        let forwarded = matches!(action, Action::Signal { .. }) && signo.0 != libc::SIGKILL;
                        if !forwarded {
                            self.asked.push(pid);
                        }
                        if !matches!(action, Action::Signal { .. }) {
                            self.stopped_in_order(pid);
                        }
                        if signo.0 == libc::SIGKILL {
                            self.killed.push(pid);
                        }
                    }
                    Action::SignalDescendants(signo) => {
                        if signo.0 == libc::SIGKILL {
                            self.killed.extend(self.alive.iter().map(|(pid, _)| *pid));
                        }
                    }
                    Action::Reap => self.reap(),
                    // The world's strays stand for what the primaries left in their groups.
                    Action::SignalLeftovers { groups } => {
                        assert!(!groups.is_empty(), "SignalLeftovers without a group");
                        let strays: Vec<i32> =
                            self.alive.iter().filter(|(_, i)| i.is_none()).map(|(p, _)| *p).collect();
                        if groups.iter().any(|(_, signo)| signo.0 == libc::SIGKILL) {
                            self.killed.extend(&strays);
                        }
                        let members = strays.into_iter().map(|pid| Member { pid, name: "stray".into() }).collect();
                        self.queue.push_back(Event::Leftovers { members });
                    }
                    // An exited sidecar's group: the world's strays are the primaries',
                    // so it is found empty.
                    Action::ClearGroup { index, .. } => {
                        self.queue.push_back(Event::GroupLeft { index, members: Vec::new() });
                    }
                    // A group, not a pid: it may be gone, and that is no fault. exeunt
                    // stopping itself changes nothing in the world.
                    Action::SignalGroup { .. } | Action::SuspendSelf => {}
                    Action::Record(_) => {}
                    Action::StartCheck(id) => {
                        assert!(id.index < self.plan.processes.len(), "{id:?}");
                        assert!(!self.checks.contains(&id), "{id:?} started while under way");
                        if id.purpose == Purpose::Stop {
                            // A stop hook asks as a signal would.
                            let pids: Vec<i32> =
                                self.alive.iter().filter(|(_, i)| *i == Some(id.index)).map(|(pid, _)| *pid).collect();
                            for pid in pids {
                                self.asked.push(pid);
                                self.stopped_in_order(pid);
                            }
                        }
                        let gate = self.plan.processes[id.index].role == Role::Gate;
                        if let (true, None, Some(ready)) =
                            (gate, self.gate_deadline[id.index], &self.plan.processes[id.index].ready)
                        {
                            self.gate_deadline[id.index] = Some(self.now + ready.timeout);
                        }
                        self.checks.push(id);
                    }
                    Action::CancelCheck(id) => {
                        assert!(self.checks.contains(&id), "{id:?} cancelled but not under way");
                        self.checks.retain(|c| *c != id);
                    }
                    Action::Answer { client, reply } => {
                        assert!(self.unanswered.contains(&client), "an answer to {client}, which asked nothing");
                        self.unanswered.retain(|c| *c != client);
                        let answer = exeunt::control::status::render(reply);
                        assert!(answer.body.ends_with('\n') && answer.body.len() > 1, "{answer:?}");
                    }
                    Action::Exit(code) => {
                        assert_eq!(i + 1, count, "Exit is not the last action of its batch");
                        assert!((0..=255).contains(&code), "exit code {code}");
                        assert!(self.alive.is_empty(), "Exit while {:?} are alive", self.alive);
                        assert!(!(self.task_failed && code == 0), "a failed task led to exit 0");
                        assert!(!(self.gate_failed() && code == 0), "a failed gate led to exit 0");
                        if let Some(Oracle { first_failure, last: Some(last) }) = self.oracle {
                            let expected = first_failure.unwrap_or(last);
                            assert_eq!(code, expected, "the primaries' status is {expected}");
                        }
                        self.exit = Some(code);
                    }
                }
            }
        }

        /// exeunt asks the process `pid` to stop: in an ordered shutdown, nothing that
        /// started after it (however far back) may still run, unless a restart may be
        /// what asks.
        fn stopped_in_order(&self, pid: i32) {
            let Some(index) = self.alive.iter().find(|(p, _)| *p == pid).and_then(|(_, i)| *i) else { return };
            if self.plan.shutdown == ShutdownOrder::Parallel || self.restarts_possible {
                return;
            }
            let after_it = self.alive.iter().filter_map(|(_, j)| *j).find(|&j| self.before[j].contains(&index));
            if let Some(j) = after_it {
                let names = (&self.plan.processes[index].name, &self.plan.processes[j].name);
                panic!("{} was asked to stop while {}, which started after it, runs", names.0, names.1);
            }
        }

        /// What the event loop does after SIGCHLD: reports what died, then whether any
        /// child is left.
        fn reap(&mut self) {
            for pid in std::mem::take(&mut self.killed) {
                if self.is_alive(pid) {
                    self.alive.retain(|(p, _)| *p != pid);
                    self.queue.push_back(Event::Exited { pid, status: ExitStatus::Signal(Signo(libc::SIGKILL)) });
                }
            }
            self.queue.push_back(Event::Reaped { children_left: !self.alive.is_empty() });
        }

        /// A process of the world exits on its own.
        fn exits(&mut self, at: usize, status: ExitStatus) {
            let (pid, index) = self.alive.remove(at);
            let task = index.is_some_and(|i| self.plan.processes[i].role == Role::Task);
            if !task || status.code() != 0 {
                self.eventful();
            }
            if let (Some(index), false) = (index, self.asked.contains(&pid)) {
                let spec = &self.plan.processes[index];
                if spec.role == Role::Task {
                    if status.code() == 0 {
                        self.completed[index] = true;
                    } else {
                        self.task_failures[index] += 1;
                        self.task_failed |= self.task_failures[index] > spec.retries;
                    }
                }
                match (&mut self.oracle, self.plan.processes[index].role) {
                    (_, Role::Task) if status.code() == 0 => {}
                    (Some(oracle), Role::Primary) => {
                        if status.code() != 0 {
                            oracle.first_failure.get_or_insert(status.code());
                        }
                        oracle.last = Some(status.code());
                    }
                    _ => self.oracle = None,
                }
            }
            let matched = index.is_some_and(|i| self.plan.processes[i].matcher.is_some());
            let status = if matched { ExitStatus::Unknown } else { status };
            self.queue.push_back(Event::Exited { pid, status });
            if !matched {
                self.queue.push_back(Event::Reaped { children_left: !self.alive.is_empty() });
            }
        }

        /// The next thing to happen, chosen by the input.
        pub fn choose(&mut self, byte: u8, next: &mut dyn FnMut() -> Option<u8>, deadline: Option<Time>) -> Event {
            let mut more = || next().unwrap_or(0);
            self.spawn_choice = more();
            match byte % 10 {
                0 => {
                    self.now = deadline.map_or(self.now + MS, |d| d.max(self.now));
                    Event::Tick
                }
                1 => {
                    self.now += MS * u32::from(more());
                    Event::Tick
                }
                2 if !self.alive.is_empty() => {
                    let at = usize::from(more()) % self.alive.len();
                    let status = match more() {
                        b if b < 200 => ExitStatus::Code(i32::from(b % 4)),
                        b => ExitStatus::Signal(Signo(i32::from(b % 31) + 1)),
                    };
                    self.exits(at, status);
                    self.queue.pop_front().expect("an exit was queued")
                }
                3 => {
                    self.oracle = None;
                    self.eventful();
                    let signo = [
                        libc::SIGTERM,
                        libc::SIGINT,
                        libc::SIGQUIT,
                        libc::SIGUSR1,
                        libc::SIGHUP,
                        libc::SIGCHLD,
                        libc::SIGTSTP,
                    ][usize::from(more()) % 7];
                    self.stop_requested |= Signo(signo).asks_to_stop();
                    Event::Signal(Signo(signo))
                }
                4 if !self.checks.is_empty() => {
                    let id = self.checks.remove(usize::from(more()) % self.checks.len());
                    let result = if more() % 2 == 0 { Ok(()) } else { Err(CheckFailure::Status(503)) };
                    if result.is_ok() && id.purpose == Purpose::Ready {
                        self.passed[id.index] = true;
                    }
                    Event::CheckDone { id, result }
                }
                5 => {
                    // A stray descendant appears (a daemon, an orphan to be).
                    let pid = self.new_pid();
                    self.alive.push((pid, None));
                    Event::Tick
                }
                6 if self.plan.pod.is_some() => {
                    self.eventful();
                    // A tombstone, read again as often as the input likes: the death dep's,
                    // the birth dep's, or a container's that is neither. (No oracle with a pod.)
                    let container = ["job", "db", "other"][usize::from(more()) % 3];
                    let flags = more();
                    let code = match flags & 6 {
                        0 => None,
                        2 => Some(i32::from(more())),
                        _ => Some(i32::from_le_bytes([more(), more(), more(), more()])),
                    };
                    let died = (flags & 1 == 1).then(|| Death { at: "2026-12-01T00:00:00Z".into(), code });
                    Event::Tombstone { container: container.into(), ready: flags & 8 == 8, died }
                }
                7 => {
                    self.oracle = None;
                    self.eventful();
                    self.stop_requested = true;
                    Event::StopWithStatus { signo: Signo(libc::SIGTERM), status: i32::from(more()), sender: 7 }
                }
                8 => {
                    // A client of the control socket asks something.
                    let name = |b: u8| format!("p{}", b % 5);
                    let request = match more() % 6 {
                        0 => Request::Status { json: more() % 2 == 0 },
                        1 => Request::Ready { names: (0..more() % 3).map(|_| name(more())).collect() },
                        2 => Request::Live,
                        3 => Request::Restart { name: name(more()) },
                        4 => Request::Signal { signo: Signo(libc::SIGHUP), name: name(more()), group: more() % 2 == 0 },
                        _ => Request::Signal { signo: Signo(libc::SIGUSR1), name: name(more()), group: false },
                    };
                    if matches!(request, Request::Restart { .. } | Request::Signal { .. }) {
                        self.oracle = None;
                        self.restarts_possible |= matches!(request, Request::Restart { .. });
                        self.eventful();
                    }
                    self.next_client += 1;
                    self.unanswered.push(self.next_client);
                    Event::Request { client: self.next_client, request }
                }
                _ => {
                    // An orphan that was never seen alive is reaped.
                    let pid = self.new_pid();
                    self.queue.push_back(Event::Reaped { children_left: !self.alive.is_empty() });
                    Event::Exited { pid, status: ExitStatus::Code(0) }
                }
            }
        }

        /// Hands `event` and everything it causes to the supervisor.
        pub fn feed(&mut self, supervisor: &mut Supervisor, event: Event) {
            self.queue.push_back(event);
            self.settle(supervisor);
        }

        /// Hands the supervisor what its actions caused, until nothing more follows.
        pub fn settle(&mut self, supervisor: &mut Supervisor) {
            while let Some(event) = self.queue.pop_front() {
                if self.exit.is_some() {
                    return;
                }
                let tick = event == Event::Tick;
                let request = matches!(event, Event::Request { .. });
                let actions = supervisor.handle(event, self.now);
                self.carry_out(actions);
                assert!(!request || self.unanswered.is_empty(), "a request without an answer in its turn");
                if tick && self.exit.is_none() {
                    // A deadline left in the past would make the event loop's timer fire
                    // again and again: a busy loop.
                    let due = supervisor.next_deadline().filter(|d| *d <= self.now);
                    assert!(due.is_none(), "a deadline passed and was not acted on: {due:?} at {:?}", self.now);
                }
            }
        }

        /// The pids of the primaries that live.
        fn live_primaries(&self) -> Vec<i32> {
            self.alive
                .iter()
                .filter(|(_, i)| i.is_some_and(|i| self.plan.processes[i].role == Role::Primary))
                .map(|(pid, _)| *pid)
                .collect()
        }

        /// SIGTERM once the input is spent; then the run must end: processes give in to
        /// SIGKILL only, checks fail, the clock jumps to each deadline.
        pub fn end(&mut self, supervisor: &mut Supervisor) {
            self.stubborn = true;
            self.spawn_choice = 1;
            let started = self.now;
            let mut patience = started + Duration::from_secs(600);
            let mut patient_steps = 20_000;
            let mut steps = 0;
            while self.exit.is_none() {
                steps += 1;
                assert!(steps < 100_000, "no exit after {steps} steps");
                assert!(self.now - started < Duration::from_secs(3600), "no exit after an hour of virtual time");
                let event = if !self.killed.is_empty() {
                    self.reap();
                    self.queue.pop_front().expect("reaping reports")
                } else if (self.now > patience || steps > patient_steps)
                    && (!self.stop_requested || !self.live_primaries().is_empty())
                {
                    // A sidecar restarted after it was ready is probed until it passes,
                    // without end, as the kubelet probes, so exeunt may never rest: the
                    // runtime's deadlines end that. Its SIGTERM, then, ten minutes later,
                    // its SIGKILL to the primaries still draining (or, for probes a
                    // millisecond apart, 20,000 steps later).
                    patience = self.now + Duration::from_secs(600);
                    patient_steps = steps + 20_000;
                    self.oracle = None;
                    if std::mem::replace(&mut self.stop_requested, true) {
                        let primaries = self.live_primaries();
                        self.killed.extend(primaries);
                        self.reap();
                        self.queue.pop_front().expect("reaping reports")
                    } else {
                        self.eventful();
                        Event::Signal(Signo(libc::SIGTERM))
                    }
                } else if let Some(id) = self.checks.pop() {
                    Event::CheckDone { id, result: Err(CheckFailure::Status(503)) }
                } else if let Some(deadline) = supervisor.next_deadline() {
                    self.now = self.now.max(deadline);
                    Event::Tick
                } else {
                    // Nothing under way and nothing due: exeunt rests. Before any stop
                    // signal from outside that is right only while a primary runs that
                    // exeunt did not ask to stop; after one, while primaries drain, since
                    // the sender keeps that deadline: the runtime's SIGKILL to them is next.
                    let primaries = self.live_primaries();
                    let plan = self.plan;
                    let task = self.alive.iter().position(|(pid, index)| {
                        index.is_some_and(|i| plan.processes[i].role == Role::Task) && !self.asked.contains(pid)
                    });
                    if let Some(at) = task {
                        // A task runs until it is done, and is waited for: it is, now.
                        self.exits(at, ExitStatus::Code(0));
                        let event = self.queue.pop_front().expect("an exit reports");
                        self.feed(supervisor, event);
                        continue;
                    }
                    self.oracle = None;
                    if std::mem::replace(&mut self.stop_requested, true) {
                        assert!(
                            !primaries.is_empty(),
                            "a hang after SIGTERM: no deadline, no exit; alive {:?}",
                            self.alive
                        );
                        self.killed.extend(primaries);
                        self.reap();
                        self.queue.pop_front().expect("reaping reports")
                    } else {
                        let unasked = primaries.iter().any(|pid| !self.asked.contains(pid));
                        assert!(unasked, "a hang: nothing under way, no deadline, no exit; alive {:?}", self.alive);
                        self.eventful();
                        Event::Signal(Signo(libc::SIGTERM))
                    }
                };
                self.feed(supervisor, event);
            }
        }
    }
}
