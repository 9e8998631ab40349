//! Gates (`[[wait]]`): a probe of something exeunt does not run, here a Redis server
//! that the test starts outside exeunt, as another container of the pod would.

use crate::common;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Scratch, Stream, ask_in, free_port, process};

/// A Redis server on `port`, started by the test `delay` from now: the server exeunt
/// waits for and does not run. It is killed when dropped.
struct LateServer(Child);

impl LateServer {
    fn start(port: u16, delay: &str) -> LateServer {
        common::require("/usr/bin/redis-server", "redis-server");
        let script =
            format!("sleep {delay}; exec redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no");
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh");
        LateServer(child)
    }
}

impl Drop for LateServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A gate on the server's port, and a primary that asks the server once (redis-cli
/// does not try again): it answers only if the port was open when the primary ran.
fn gated_job(scratch: &Scratch, port: u16, timeout: &str) -> String {
    let gate =
        format!("[[wait]]\nname = \"cache\"\nready = {{ tcp = \"127.0.0.1:{port}\", timeout = \"{timeout}\" }}\n\n");
    let job = process("job", "primary", &format!("redis-cli -p {port} ping"), "");
    scratch.file("map.toml", &(gate + &job))
}

#[test]
fn the_primary_starts_after_a_gate_on_a_port_that_opens_2_s_later_and_not_before() {
    let scratch = Scratch::new("gate-late-port");
    let port = free_port();
    let _server = LateServer::start(port, "2");
    let mut running = common::pid1(&["-c", &gated_job(&scratch, port, "30s")]);
    running.expect_log("waiting for gate cache");
    // While it waits, --status says what the probe met.
    let (code, status, _) = ask_in(running.exeunt_pid(), &["--status"]);
    assert_eq!(code, 0, "{status}");
    let row = status.lines().find(|l| l.starts_with("cache")).unwrap_or_else(|| panic!("{status}"));
    assert!(row.contains("gate") && row.contains("waiting: ") && row.contains("Connection refused"), "{status}");
    assert!(status.lines().any(|l| l.starts_with("job") && l.contains("waiting")), "{status}");
    let (code, answer, _) = ask_in(running.exeunt_pid(), &["--ready"]);
    assert_eq!(code, 1, "--ready waits for the gate: {answer}");
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stdout.trim(), "PONG", "the server answered the primary: {outcome:?}");
    let passed = outcome.time_of(Stream::Stderr, "gate cache passed after");
    let started = outcome.time_of(Stream::Stderr, "started primary job");
    assert!(passed >= Duration::from_millis(1800) && started >= passed, "{outcome:?}");
}

#[test]
fn a_gate_that_does_not_pass_in_time_fails_the_start_with_its_last_error_and_stops_what_runs() {
    let scratch = Scratch::new("gate-timeout");
    let port = free_port();
    // A sidecar with no `after` starts at once, beside the gate; the primary waits for both.
    let sidecar = process("proxy", "sidecar", &common::until_term("proxy", ""), "after = []");
    let gate = format!("[[wait]]\nname = \"cache\"\nready = {{ tcp = \"127.0.0.1:{port}\", timeout = \"1s\" }}\n\n");
    let job = process("job", "primary", "echo job ran", "after = [\"cache\", \"proxy\"]");
    let map = scratch.file("map.toml", &[sidecar, gate, job].concat());
    let outcome = common::run_pid1(&["-c", &map]);
    let err = &outcome.stderr;
    assert_eq!(outcome.code, 1, "{outcome:?}");
    let line = err.lines().find(|l| l.contains("gate cache is not ready within 1s")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("tcp 127.0.0.1:") && line.contains("Connection refused") && line.ends_with("stopping"),
        "{err}"
    );
    assert!(outcome.stdout.contains("proxy got TERM") && !outcome.stdout.contains("job ran"), "{outcome:?}");
}

#[test]
fn gates_and_their_mistakes_are_shown_by_check_as_a_run_reads_them() {
    let scratch = Scratch::new("gate-check");
    let port = free_port();
    let map = gated_job(&scratch, port, "60s");
    let outcome = common::plain(&["--check", "-c", &map]).finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(
        outcome.stdout.contains(&format!("gate cache: runs nothing, passes when tcp 127.0.0.1:{port}")),
        "{outcome:?}"
    );
    assert!(outcome.stdout.contains("start order: cache; then job"), "{outcome:?}");
    let bad = scratch.file(
        "bad.toml",
        "[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\n\n\
         [[wait]]\nname = \"db\"\ncommand = [\"pg_isready\"]\nready = { notify = \"systemd\" }\n\n\
         [[wait]]\nname = \"cache\"\n",
    );
    let outcome = common::plain(&["--check", "-c", &bad]).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{outcome:?}");
    assert!(lines[0].contains("bad.toml:8:1: command: a [[wait]] starts nothing"), "{outcome:?}");
    assert!(
        lines[1].contains("bad.toml:9:20: ready.notify: only a process exeunt runs announces itself"),
        "{outcome:?}"
    );
    assert!(lines[2].contains("bad.toml:12:8: ready: missing; a [[wait]] is its probe"), "{outcome:?}");
}
