//! The processes' output, carried by exeunt (`output = "prefix"` or `"json"`): every
//! line arrives once, whole, tagged with its process and on its stream; nothing a
//! process wrote is lost when it dies or when exeunt ends; a slow reader holds the
//! writers back instead of filling exeunt's memory, and never holds signals up.

use crate::common;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{HANG, SLEEP_FOREVER, Scratch, count, exeunt, process, require_pid_namespaces, status_field, until_term};

fn helper(name: &str) -> String {
    format!("{}/tests/helpers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A run's whole stdout and stderr as bytes, and its exit code.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Starts exeunt as PID 1 of a new PID namespace, with stdout and stderr piped.
fn spawn(args: &[&str]) -> Child {
    require_pid_namespaces();
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(exeunt())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unshare")
}

/// Reads a pipe to its end in a thread of its own.
fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).expect("read exeunt's output");
        bytes
    })
}

/// Waits for `child` to exit, killing it and failing past `bound`.
fn wait_within(child: &mut Child, bound: Duration) -> i32 {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("exeunt did not end within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs exeunt to its end and collects everything it wrote.
fn run(args: &[&str]) -> Run {
    let mut child = spawn(args);
    let stdout = read_all(child.stdout.take().expect("piped"));
    let stderr = read_all(child.stderr.take().expect("piped"));
    let code = wait_within(&mut child, HANG);
    Run { code, stdout: stdout.join().expect("reader"), stderr: stderr.join().expect("reader") }
}

/// A role map in prefix mode (the top-level default) for these `[[process]]` tables.
fn prefix_map(scratch: &Scratch, processes: &[String]) -> String {
    scratch.file("map.toml", &format!("output = \"prefix\"\n\n{}", processes.concat()))
}

/// A primary that runs a Python script, its output carried in prefix mode by its own key.
fn python_primary(name: &str, script: &str) -> String {
    format!(
        "[[process]]\nname = \"{name}\"\nrole = \"primary\"\noutput = \"prefix\"\ncommand = [\"python3\", \"-c\", {script:?}]\n"
    )
}

/// Runs `script` with python3, `input` on its stdin, and gives its output back.
fn python(script: &str, input: &str) -> std::process::Output {
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is missing: apt-get install python3");
    std::io::Write::write_all(&mut python.stdin.take().expect("stdin"), input.as_bytes()).expect("feed python3");
    python.wait_with_output().expect("python3")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Two primaries write 200,000 lines each at once; the checker joins the pieces and
/// compares every line, per process and stream, with what was written.
fn two_writers_arrive_intact(mode: &str) {
    let scratch = Scratch::new(&format!("two-writers-{mode}"));
    let writer = |name: &str| {
        format!(
            "[[process]]\nname = \"{name}\"\nrole = \"primary\"\ncommand = [\"python3\", \"{}\", \"write\", \"{name}\", \"200000\"]\n\n",
            helper("lines.py")
        )
    };
    // In JSON mode exeunt's own lines are JSON too, so that every line of both streams parses.
    let log_format = if mode == "json" { "log_format = \"json\"\n" } else { "" };
    let map = scratch
        .file("map.toml", &format!("output = \"{mode}\"\n{log_format}\n{}{}", writer("alpha"), writer("beta-writer")));
    let outcome = run(&["-c", &map]);
    assert_eq!(outcome.code, 0, "{}", text(&outcome.stderr));
    let (out, err) = (scratch.path("stdout"), scratch.path("stderr"));
    std::fs::write(&out, &outcome.stdout).unwrap();
    std::fs::write(&err, &outcome.stderr).unwrap();
    let check = Command::new("python3")
        .args([&helper("lines.py"), "check", mode, &out, &err, "200000", "alpha", "beta-writer"])
        .output()
        .expect("run the checker");
    let said = text(&check.stdout) + &text(&check.stderr);
    assert!(check.status.success(), "{mode}: {said}");
    println!("{mode}: {said}");
}

#[test]
fn two_processes_writing_200000_lines_at_once_arrive_prefixed_each_line_once_and_intact() {
    two_writers_arrive_intact("prefix");
}

#[test]
fn two_processes_writing_200000_lines_at_once_arrive_as_json_each_line_once_and_intact() {
    two_writers_arrive_intact("json");
}

#[test]
fn prefixed_names_are_padded_to_one_width_and_each_stream_keeps_its_lines() {
    let scratch = Scratch::new("prefix-width");
    let map = prefix_map(
        &scratch,
        &[
            process("db", "sidecar", &until_term("db", "echo db up; echo db warns >&2;"), ""),
            process("long-name", "primary", "sleep 0.2; echo job out; echo job err >&2", ""),
        ],
    );
    let outcome = run(&["-c", &map]);
    let (stdout, stderr) = (text(&outcome.stdout), text(&outcome.stderr));
    assert_eq!(outcome.code, 0, "{stderr}");
    assert!(stdout.contains("db        | db up\n"), "{stdout}");
    assert!(stdout.contains("long-name | job out\n"), "{stdout}");
    assert!(stderr.contains("db        | db warns\n"), "{stderr}");
    assert!(stderr.contains("long-name | job err\n"), "{stderr}");
    assert!(!stdout.contains("warns") && !stdout.contains("err"), "stderr lines stay on stderr: {stdout}");
}

#[test]
fn everything_written_before_a_sigkill_of_10_mb_is_on_stdout_when_exeunt_exits() {
    let scratch = Scratch::new("sigkill-10mb");
    // 100,000 numbered lines of 100 bytes; SIGKILL the moment the last write returned.
    let script = "import os, sys\n\
                  data = b''.join(b'%07d ' % i + b'k' * 91 + b'\\n' for i in range(100000))\n\
                  sys.stdout.buffer.write(data)\nsys.stdout.flush()\nos.kill(os.getpid(), 9)\n";
    let map = scratch.file("map.toml", &python_primary("big", script));
    let outcome = run(&["-c", &map]);
    assert_eq!(outcome.code, 137, "the primary died of SIGKILL: {}", text(&outcome.stderr));
    let stdout = text(&outcome.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 100_000, "every line written before the SIGKILL arrived");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("big | {i:07} {}", "k".repeat(91)), "line {i}");
    }
}

#[test]
fn a_last_line_without_newline_appears_and_a_1_mib_line_comes_in_64_kib_pieces_that_join_back() {
    let scratch = Scratch::new("long-line");
    let script = "import sys\n\
                  line = bytes(97 + i % 26 for i in range(1 << 20))\n\
                  sys.stdout.buffer.write(line + b'\\n' + b'the end, no newline')\n";
    let map = scratch.file("map.toml", &python_primary("long", script));
    let outcome = run(&["-c", &map]);
    assert_eq!(outcome.code, 0, "{}", text(&outcome.stderr));
    let stdout = text(&outcome.stdout);
    let lines: Vec<&str> = stdout.split_terminator('\n').collect();
    let (last, pieces) = lines.split_last().expect("lines");
    assert_eq!(*last, "long | the end, no newline", "the last line, ended by exeunt");
    assert_eq!(pieces.len(), 16, "1 MiB in 64 KiB pieces");
    let mut joined = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        let marker = if i + 1 < pieces.len() { "long + " } else { "long | " };
        let rest = piece.strip_prefix(marker).unwrap_or_else(|| panic!("piece {i} starts {:?}", &piece[..10]));
        assert!(rest.len() <= 64 * 1024, "piece {i} holds {} bytes", rest.len());
        joined.push_str(rest);
    }
    let original: String = (0..1 << 20).map(|i| char::from(97 + (i % 26) as u8)).collect();
    assert!(joined == original, "the pieces join back to the line");
}

#[test]
fn a_sidecar_printing_1000_lines_in_its_sigterm_handler_after_the_primary_exited_has_them_all_shown() {
    let scratch = Scratch::new("goodbye");
    let goodbye = format!(
        "trap 'i=0; while [ $i -lt 1000 ]; do echo bye $i; i=$((i+1)); done; exit 0' TERM; \
                   echo side up; {SLEEP_FOREVER}"
    );
    let map = prefix_map(
        &scratch,
        &[process("side", "sidecar", &goodbye, ""), process("job", "primary", "sleep 0.2; echo job done", "")],
    );
    let outcome = run(&["-c", &map]);
    let stdout = text(&outcome.stdout);
    assert_eq!(outcome.code, 0, "{}", text(&outcome.stderr));
    for i in 0..1000 {
        let line = format!("side | bye {i}");
        assert_eq!(stdout.lines().filter(|l| *l == line).count(), 1, "goodbye line {i} once: {stdout}");
    }
    assert!(stdout.find("job  | job done").unwrap() < stdout.find("side | bye 0").unwrap(), "{stdout}");
}

#[test]
fn a_grandchild_holding_the_pipe_does_not_hold_exeunt_up() {
    let scratch = Scratch::new("grandchild-pipe");
    // The primary leaves a background sleep behind that keeps its stdout open.
    let map = prefix_map(&scratch, &[process("job", "primary", "sleep 1000 & echo job done", "")]);
    let started = Instant::now();
    let outcome = run(&["-c", &map, "--grace", "1s"]);
    assert_eq!(outcome.code, 0, "{}", text(&outcome.stderr));
    assert!(text(&outcome.stdout).contains("job | job done"), "{}", text(&outcome.stdout));
    assert!(started.elapsed() < Duration::from_secs(30), "exeunt ended with the shutdown, not with the pipe");
}

/// CLOCK_MONOTONIC in seconds, as Python's time.monotonic() reads it.
fn monotonic() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

#[test]
fn a_slow_reader_holds_a_50_mb_writer_back_with_bounded_memory_and_sigterm_still_acts_within_100ms() {
    let scratch = Scratch::new("slow-reader");
    let got_term = scratch.path("got-term");
    let script = format!(
        "import os, signal, sys, time\n\
         def stop(signo, frame):\n    open({got_term:?}, 'w').write(repr(time.monotonic()))\n    os._exit(0)\n\
         signal.signal(signal.SIGTERM, stop)\n\
         chunk = b'x' * 1023 + b'\\n'\n\
         for _ in range(50 * 1024):\n    sys.stdout.buffer.write(chunk)\n"
    );
    let map = scratch.file("map.toml", &python_primary("flood", &script));
    let mut child = spawn(&["-c", &map]);
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = read_all(child.stderr.take().expect("piped"));
    let fast = Arc::new(AtomicBool::new(false));
    let reader = {
        let fast = fast.clone();
        std::thread::spawn(move || {
            let mut buffer = vec![0; 1 << 16];
            let mut total = 0;
            loop {
                let want = if fast.load(Ordering::Relaxed) { buffer.len() } else { 1024 };
                match stdout.read(&mut buffer[..want]) {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
                if !fast.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    // Let the writer run into the slow reader, and watch exeunt's memory meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    let pid = *common::children_of(child.id() as i32).first().expect("exeunt");
    let start_rss = status_field(pid, "VmRSS");
    let mut peak = start_rss;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(status_field(pid, "VmRSS"));
    }
    let sent = monotonic();
    // SAFETY: kill takes plain integers.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + HANG;
    let acted = loop {
        if let Ok(at) = std::fs::read_to_string(&got_term)
            && let Ok(at) = at.parse::<f64>()
        {
            break at;
        }
        assert!(Instant::now() < deadline, "the writer never got SIGTERM");
        std::thread::sleep(Duration::from_millis(5));
    };
    fast.store(true, Ordering::Relaxed);
    let code = wait_within(&mut child, HANG);
    let read = reader.join().expect("reader");
    let stderr = text(&stderr.join().expect("reader"));
    let latency_ms = (acted - sent) * 1000.0;
    println!(
        "slow reader: exeunt's VmRSS {start_rss} kB after 0.5 s, at most {peak} kB over 3 s more (+{} kB); \
         {read} bytes read; SIGTERM reached the writer in {latency_ms:.2} ms",
        peak - start_rss
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(read < 40 << 20, "the writer was held back: {read} bytes of 50 MiB read");
    assert!(peak <= start_rss + 1024, "exeunt's memory grew by {} kB while the reader was slow", peak - start_rss);
    assert!(latency_ms < 100.0, "SIGTERM took {latency_ms:.1} ms to reach the writer");
}

#[test]
fn a_reader_that_closed_stdout_costs_one_warning_and_exeunt_exits_with_the_primarys_status() {
    let scratch = Scratch::new("closed-stdout");
    let map = prefix_map(
        &scratch,
        &[process("job", "primary", "for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done; exit 7", "")],
    );
    let mut child = spawn(&["-c", &map]);
    drop(child.stdout.take());
    let stderr = read_all(child.stderr.take().expect("piped"));
    let code = wait_within(&mut child, HANG);
    let stderr = text(&stderr.join().expect("reader"));
    assert_eq!(code, 7, "{stderr}");
    assert_eq!(count(&stderr, "stdout is closed"), 1, "one warning: {stderr}");
    assert!(stderr.contains("primary job exited with exit code 7"), "{stderr}");
}

#[test]
fn with_log_format_json_every_line_exeunt_writes_through_a_restart_a_failed_probe_and_a_shutdown_is_json() {
    let scratch = Scratch::new("json-log");
    let flag = scratch.path("ready-flag");
    let marker = scratch.path("crashed-once");
    let map = scratch.file(
        "map.toml",
        &format!(
            "log_format = \"json\"\n\n{}{}{}",
            process(
                "flaky",
                "sidecar",
                &format!("[ -e {marker} ] || {{ touch {marker}; exit 1; }}; {}", until_term("flaky", "")),
                "restart_delay = \"50ms\""
            ),
            process(
                "probed",
                "sidecar",
                &until_term("probed", &format!("sleep 0.3; touch {flag};")),
                &format!("ready = {{ file = {flag:?}, interval = \"100ms\" }}")
            ),
            process("job", "primary", "sleep 0.3", ""),
        ),
    );
    let outcome = run(&["-v", "-c", &map]);
    let stderr = text(&outcome.stderr);
    assert_eq!(outcome.code, 0, "{stderr}");
    let checker = "import json, re, sys\n\
                   lines = sys.stdin.read().splitlines()\n\
                   for line in lines:\n\
                   \x20   o = json.loads(line)\n\
                   \x20   assert {'time', 'level', 'process', 'message'} <= o.keys(), line\n\
                   \x20   assert o['process'] == 'exeunt', line\n\
                   \x20   assert re.match(r'^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$', o['time']), line\n\
                   subjects = {o.get('subject') for o in map(json.loads, lines)}\n\
                   print(len(lines), 'lines, subjects', sorted(s for s in subjects if s))\n";
    let checked = python(checker, &stderr);
    let said = text(&checked.stdout) + &text(&checked.stderr);
    assert!(checked.status.success(), "{said}\n{stderr}");
    assert!(said.contains("subjects ['flaky', 'job', 'probed']"), "{said}");
    assert!(stderr.contains("restarted sidecar flaky"), "{stderr}");
    assert!(stderr.contains("\"level\":\"debug\""), "the failed probe attempts are logged: {stderr}");
    println!("json log: {said}");
}

#[test]
fn bad_values_for_output_and_the_log_format_are_one_line_errors() {
    let scratch = Scratch::new("output-errors");
    let map = scratch
        .file("map.toml", "output = \"pipe\"\n[[process]]\nname = \"a\"\nrole = \"primary\"\ncommand = [\"true\"]\n");
    let outcome = run(&["-c", &map]);
    let stderr = text(&outcome.stderr);
    assert_eq!(outcome.code, 2);
    assert!(
        stderr.contains("map.toml:1:10: output: 'pipe' is not one of \"inherit\", \"prefix\", \"json\""),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let mut env_run = Command::new(exeunt());
    let bad = env_run.env("EXEUNT_LOG_FORMAT", "xml").arg("true").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(text(&bad.stderr), "exeunt: EXEUNT_LOG_FORMAT must be text or json, got 'xml' (see exeunt --help)\n");
    let json = Command::new(exeunt()).env("EXEUNT_LOG_FORMAT", "json").args(["-v", "true"]).output().unwrap();
    let stderr = text(&json.stderr);
    assert!(json.status.success(), "{stderr}");
    assert!(stderr.lines().count() > 0 && stderr.lines().all(|l| l.starts_with("{\"time\":\"")), "{stderr}");
}

#[test]
fn with_json_output_and_log_every_line_of_a_chatty_probe_and_a_printing_stop_hook_is_json_naming_the_sidecar() {
    let scratch = Scratch::new("json-checks");
    let (gate, pid) = (scratch.path("gate"), scratch.path("web.pid"));
    // The probe talks on both streams and fails until the sidecar opens its gate; the
    // stop hook says what it does, then stops the sidecar.
    let probe = format!("echo probing web; echo 'Connection refused' >&2; [ -e {gate} ]");
    let hook = format!("echo stopping web; kill $(cat {pid})");
    let extra = format!(
        "ready = {{ exec = [\"sh\", \"-c\", {probe:?}], interval = \"50ms\" }}\nstop = {{ exec = [\"sh\", \"-c\", {hook:?}] }}"
    );
    let web = format!("echo $$ > {pid}; sleep 0.3; touch {gate}; exec sleep 1000");
    let map = format!(
        "output = \"json\"\nlog_format = \"json\"\n\n{}{}",
        process("web", "sidecar", &web, &extra),
        process("job", "primary", "echo job done", "")
    );
    let outcome = run(&["-c", &scratch.file("map.toml", &map)]);
    let (stdout, stderr) = (text(&outcome.stdout), text(&outcome.stderr));
    assert_eq!(outcome.code, 0, "{stderr}");
    let checker = "import json, sys\n\
                   counts = {}\n\
                   for line in sys.stdin.read().splitlines():\n\
                   \x20   o = json.loads(line)\n\
                   \x20   key = (o['process'], o.get('from', ''), o.get('stream', ''), o['message'])\n\
                   \x20   counts[key] = counts.get(key, 0) + 1\n\
                   for key in sorted(counts):\n\
                   \x20   print(counts[key], *key, sep='|')\n";
    let lines: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
    let checked = python(checker, &lines.join("\n"));
    let said = text(&checked.stdout) + &text(&checked.stderr);
    assert!(checked.status.success(), "a line that is not JSON: {said}\n{stdout}\n{stderr}");
    let seen = |key: &str| said.lines().any(|line| line.split_once('|').is_some_and(|(_, rest)| rest == key));
    assert!(seen("web|check|stdout|probing web"), "{said}");
    assert!(seen("web|check|stderr|Connection refused"), "{said}");
    assert!(seen("web|check|stdout|stopping web"), "{said}");
    assert!(seen("job||stdout|job done"), "{said}");
}

#[test]
fn a_failed_probes_message_ends_with_the_last_4_kib_of_what_it_wrote_on_one_line() {
    let scratch = Scratch::new("probe-tail");
    // 200 numbered lines of 49 bytes (9.8 KB), then its error: the message keeps the end.
    let probe = "i=0; while [ $i -lt 200 ]; do i=$((i+1)); printf 'line %03d of what the probe says, padded out\\n' $i; done; \
                 echo 'Connection refused' >&2; exit 1";
    let extra = format!("ready = {{ exec = [\"sh\", \"-c\", {probe:?}], timeout = \"300ms\", interval = \"100ms\" }}");
    let map = format!(
        "output = \"prefix\"\n\n{}{}",
        process("web", "sidecar", SLEEP_FOREVER, &extra),
        process("job", "primary", "echo job done", "")
    );
    let outcome = run(&["-c", &scratch.file("map.toml", &map)]);
    let (stdout, stderr) = (text(&outcome.stdout), text(&outcome.stderr));
    assert_eq!(outcome.code, 1, "{stderr}");
    let line = stderr.lines().find(|l| l.contains("its output ending")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("sidecar web"), "{line}");
    assert!(line.contains("line 200 of what the probe says") && line.contains("Connection refused"), "{line}");
    assert!(line.contains("line 150 ") && !line.contains("line 100 "), "the last 4 KiB, no more: {line}");
    let said = &line[line.find("its output ending").unwrap()..];
    assert!(said.len() < 4096 + 400, "{} bytes: {said}", said.len());
    // Its lines are carried as well, each under the sidecar's name.
    assert!(stdout.contains("line 001 of what the probe says"), "{stdout}");
    assert!(!stdout.contains("job done"), "{stdout}");
}
