//! The control socket: `exeunt --status`, `--ready`, `--live`, `--restart` and
//! `--signal`, asked of a real exeunt that runs as PID 1 of its own PID and mount
//! namespaces, by clients that enter them as `kubectl exec` would, and by clients that
//! may not ask: another uid, another mount namespace, another PID namespace.

use crate::common;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{HANG, SLEEP_FOREVER, Scratch, count, exeunt, free_port, pid1, process, status_field, until_term};

/// What a client run printed, and its exit code.
#[derive(Debug)]
struct Asked {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `exeunt ARGS` in the PID and mount namespaces of the exeunt with host pid `pid`,
/// as `kubectl exec` runs a command in a container; `wrap` comes between nsenter and
/// exeunt (setpriv, unshare, env).
fn ask_as(pid: i32, enter: &[&str], wrap: &[&str], args: &[&str]) -> Asked {
    let output = Command::new("timeout")
        .args(["20", "nsenter", "-t", &pid.to_string()])
        .args(enter)
        .args(wrap)
        .arg(exeunt())
        .args(args)
        .output()
        .expect("run nsenter (util-linux) and timeout (coreutils)");
    let code = output.status.code().expect("the client exited");
    assert_ne!(code, 124, "the client hung: exeunt {args:?}");
    Asked {
        code,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A client in the same container as exeunt.
fn ask(pid: i32, args: &[&str]) -> Asked {
    ask_as(pid, &["-m", "-p"], &[], args)
}

/// The line of a `--status` table that starts with `name`.
fn row<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{status}"))
}

/// A `--status --json` document, parsed by Python's json module and handed back as
/// `key=value` lines for the fields the tests look at.
fn json_fields(document: &str) -> String {
    let script = "import json,sys\n\
        d=json.load(sys.stdin)\n\
        print('version=%s' % d['version'])\n\
        print('phase=%s' % d['phase'])\n\
        print('ready=%s' % d['ready'])\n\
        for p in d['processes']:\n\
        \x20   print('%s=%s/%s/%s/%s/%s' % (p['name'], p['role'], p['state'], p['ready'], p['restarts'], p['pid']))\n";
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is missing: apt-get install python3");
    python.stdin.take().expect("stdin").write_all(document.as_bytes()).expect("feed python");
    let output = python.wait_with_output().expect("python3");
    assert!(output.status.success(), "not JSON: {document}\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The pid of process `name`, as `--status` shows it.
fn pid_of(pid1: i32, name: &str) -> i32 {
    let status = ask(pid1, &["--status"]);
    assert_eq!(status.code, 0, "{status:?}");
    row(&status.stdout, name).split_whitespace().nth(2).and_then(|p| p.parse().ok()).unwrap_or_else(|| {
        panic!("no pid for {name} in:\n{}", status.stdout);
    })
}

/// An HTTP sidecar whose probe fails until the file `gate` exists.
fn gated_http(port: u16, gate: &str) -> String {
    let sidecar = common::http_sidecar(port, 0);
    format!("{sidecar} {gate}")
}

/// An HTTP-probed sidecar `web` (stopped by SIGUSR1) whose probe answers 503 until
/// `gate` exists, and a primary `job` that drains on SIGTERM until `drained` is
/// written: the run the status, readiness and restart tests ask about.
struct WebAndJob {
    /// Dropped first: exeunt is killed before its scratch directory goes.
    running: common::Running,
    pid: i32,
    gate: String,
    drained: String,
    scratch: Scratch,
}

impl WebAndJob {
    /// Started, with the sidecar's probe failing.
    fn start(name: &str) -> WebAndJob {
        let scratch = Scratch::new(name);
        let gate = scratch.path("web-may-answer");
        let drained = scratch.fifo("job-drained");
        let port = free_port();
        let ready = format!("ready = {{ http = \"http://127.0.0.1:{port}/ready\", interval = \"50ms\" }}");
        let map = [
            process("web", "sidecar", &gated_http(port, &gate), &format!("{ready}\nstop_signal = \"SIGUSR1\"")),
            process(
                "job",
                "primary",
                &format!(
                    "trap 'kill -9 $! 2>/dev/null; echo job draining; read x < {drained}; echo job drained; exit 0' TERM; \
                     echo job started; {SLEEP_FOREVER}"
                ),
                "",
            ),
        ]
        .concat();
        let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
        running.expect_line("answered 503");
        let pid = running.exeunt_pid();
        WebAndJob { running, pid, gate, drained, scratch }
    }

    /// Lets the probe pass, and waits for the primary's start.
    fn ready(mut self) -> WebAndJob {
        std::fs::write(&self.gate, "").expect("open the gate");
        self.running.expect_line("job started");
        self
    }

    /// Lets the draining primary end, and the run with it.
    fn drain(self) -> common::Outcome {
        let mut fifo = std::fs::OpenOptions::new().write(true).open(&self.drained).expect("open the fifo");
        fifo.write_all(b"\n").expect("drain");
        let outcome = self.running.finish();
        drop(self.scratch);
        outcome
    }
}

#[test]
fn during_the_readiness_wait_status_says_starting_and_nothing_is_ready() {
    let run = WebAndJob::start("control-starting");
    let pid = run.pid;
    let status = ask(pid, &["--status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.starts_with("exeunt: starting for "), "{}", status.stdout);
    assert!(row(&status.stdout, "NAME").contains("RESTARTS"), "{}", status.stdout);
    let web = row(&status.stdout, "web");
    assert!(web.contains(" sidecar ") && web.contains(" starting (") && web.contains("503"), "{web}");
    let job = row(&status.stdout, "job");
    assert!(job.contains(" primary ") && job.contains(" - ") && job.contains(" waiting "), "{job}");
    let fields = json_fields(&ask(pid, &["--status", "--json"]).stdout);
    assert!(fields.contains("version=1\nphase=starting\nready=False\n"), "{fields}");
    assert!(fields.contains("web=sidecar/starting/False/0/") && fields.contains("job=primary/waiting/False/0/None"));
    let ready = ask(pid, &["--ready"]);
    assert_eq!(ready.code, 1, "{ready:?}");
    assert!(ready.stderr.starts_with("not ready: web is starting (") && ready.stderr.contains("job is waiting"));
    assert_eq!(ask(pid, &["--ready", "web"]).code, 1);
    let live = ask(pid, &["--live"]);
    assert_eq!((live.code, live.stdout.as_str()), (0, "exeunt is starting\n"), "{live:?}");
}

#[test]
fn once_the_probe_passes_status_says_running_and_everything_is_ready() {
    let run = WebAndJob::start("control-running").ready();
    let pid = run.pid;
    let ready = ask(pid, &["--ready"]);
    assert_eq!((ready.code, ready.stdout.as_str()), (0, "ready: web, job\n"), "{ready:?}");
    assert_eq!(ask(pid, &["--ready", "web"]).stdout, "ready: web\n");
    let status = ask(pid, &["--status"]);
    assert!(status.stdout.starts_with("exeunt: running for "), "{}", status.stdout);
    assert!(row(&status.stdout, "web").contains(" ready "), "{}", status.stdout);
    assert!(row(&status.stdout, "job").contains(" running "), "{}", status.stdout);
    let fields = json_fields(&ask(pid, &["--status", "--json"]).stdout);
    assert!(fields.contains("phase=running\nready=True\n"), "{fields}");
    assert!(fields.contains("web=sidecar/ready/True/0/") && fields.contains("job=primary/running/True/0/"));
}

#[test]
fn a_restart_stops_the_sidecar_with_its_stop_signal_and_readiness_waits_for_the_new_ones_probe() {
    let mut run = WebAndJob::start("control-restart").ready();
    let pid = run.pid;
    let (old_web, job_pid) = (pid_of(pid, "web"), pid_of(pid, "job"));
    std::fs::remove_file(&run.gate).expect("close the gate");
    let restart = ask(pid, &["--restart", "web"]);
    assert_eq!(restart.code, 0, "{restart:?}");
    assert!(restart.stdout.starts_with("restarting web: stopping pid "), "{}", restart.stdout);
    assert!(restart.stdout.contains("with SIGUSR1"), "{}", restart.stdout);
    let ready = ask(pid, &["--ready"]);
    assert_eq!(ready.code, 1, "not ready while web restarts: {ready:?}");
    assert!(ready.stderr.starts_with("not ready: web is "), "{ready:?}");
    run.running.expect_log("sidecar web exited with SIGUSR1");
    run.running.expect_log("starting it again, as asked");
    let deadline = Instant::now() + HANG;
    let new_web = loop {
        let web = pid_of(pid, "web");
        if web != old_web && web != 0 {
            break web;
        }
        assert!(Instant::now() < deadline, "web was not started again within {HANG:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let ready = ask(pid, &["--ready", "web"]);
    assert_eq!(ready.code, 1, "the new web has not passed its probe: {ready:?}");
    let status = ask(pid, &["--status"]);
    let web = row(&status.stdout, "web");
    // The state holds the probe's words; RESTARTS and FOR are the last two columns.
    assert!(web.contains(" starting (") && web.split_whitespace().rev().nth(1) == Some("1"), "{web}");
    std::fs::write(&run.gate, "").expect("open the gate again");
    while ask(pid, &["--ready"]).code != 0 {
        assert!(Instant::now() < deadline, "the new web's probe did not pass within {HANG:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pid_of(pid, "job"), job_pid, "the primary ran on");
    assert_ne!(new_web, old_web);
    run.running.signal(libc::SIGTERM);
    let outcome = run.drain();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(count(&outcome.stdout, "job started"), 1, "the primary started once: {}", outcome.stdout);
    assert_eq!(count(&outcome.stdout, "http sidecar listening"), 2, "{}", outcome.stdout);
}

#[test]
fn a_primary_or_an_unknown_name_is_not_restarted() {
    let run = WebAndJob::start("control-refused").ready();
    let refused = ask(run.pid, &["--restart", "job"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("job cannot be restarted: it is a primary"), "{refused:?}");
    let unknown = ask(run.pid, &["--restart", "nobody"]);
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("no process is named \"nobody\" (there are: web, job)"), "{unknown:?}");
}

#[test]
fn while_the_primary_drains_status_says_stopping_and_nothing_is_ready_not_even_a_running_sidecar() {
    let mut run = WebAndJob::start("control-stopping").ready();
    let pid = run.pid;
    run.running.signal(libc::SIGTERM);
    run.running.expect_line("job draining");
    let status = ask(pid, &["--status"]);
    assert!(status.stdout.starts_with("exeunt: stopping for "), "{}", status.stdout);
    assert!(row(&status.stdout, "job").contains(" stopping "), "{}", status.stdout);
    assert!(json_fields(&ask(pid, &["--status", "--json"]).stdout).contains("phase=stopping\nready=False\n"));
    assert_eq!(ask(pid, &["--ready"]).code, 1);
    assert!(row(&ask(pid, &["--status"]).stdout, "web").contains(" ready "));
    let web = ask(pid, &["--ready", "web"]);
    assert_eq!((web.code, web.stderr.as_str()), (1, "not ready: exeunt is stopping\n"), "{web:?}");
    assert_eq!(ask(pid, &["--live"]).stdout, "exeunt is stopping\n");
    let outcome = run.drain();
    assert_eq!(outcome.code, 0, "{outcome:?}");
}

#[test]
fn signal_by_name_reaches_only_that_process() {
    let scratch = Scratch::new("control-signal");
    let hup = |name: &str| format!("trap 'echo {name} got HUP' HUP; {}", until_term(name, &format!("echo {name} up;")));
    let map = [
        process("side", "sidecar", &hup("side"), ""),
        process("other", "sidecar", &hup("other"), ""),
        process("job", "primary", &hup("job"), ""),
    ]
    .concat();
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_line("job up");
    let pid = running.exeunt_pid();
    let sent = ask(pid, &["--signal", "SIGHUP", "side"]);
    assert_eq!(sent.code, 0, "{sent:?}");
    assert!(sent.stdout.starts_with("sent SIGHUP to side (pid "), "{sent:?}");
    running.expect_line("side got HUP");
    let sent = ask(pid, &["--signal", "HUP", "-g", "job"]);
    assert!(sent.stdout.starts_with("sent SIGHUP to the process group of job (pid "), "{sent:?}");
    running.expect_line("job got HUP");
    let bad = ask(pid, &["--signal", "SIGNOPE", "side"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(count(&outcome.stdout, "got HUP"), 2, "one HUP each for side and job: {}", outcome.stdout);
    assert_eq!(count(&outcome.stdout, "other got HUP"), 0, "{}", outcome.stdout);
}

/// A plain client: connects to the abstract name `argv[1]`, asks, and exits with the
/// length of the answer once exeunt closes the connection (0: closed unanswered).
const CONNECT: &str = "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0' + sys.argv[1])\n\
                       try:\n    s.sendall(b'exeunt/1 status\\n')\n    sys.exit(len(s.recv(100)))\n\
                       except OSError:\n    sys.exit(0)\n";

#[test]
fn clients_of_another_uid_mount_namespace_or_pid_namespace_get_no_answer_and_one_warning_each() {
    let scratch = Scratch::new("control-peers");
    let map = [
        process("side", "sidecar", &until_term("side", "echo side up;"), ""),
        process("job", "primary", &until_term("job", "echo job up;"), ""),
    ]
    .concat();
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_line("job up");
    let pid = running.exeunt_pid();
    assert_eq!(ask(pid, &["--live"]).code, 0, "the same container is answered");
    let nobody = "no exeunt answers in this container";

    let other_uid =
        ask_as(pid, &["-m", "-p"], &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], &["--status"]);
    assert_eq!(other_uid.code, 1, "{other_uid:?}");
    assert!(other_uid.stderr.contains(nobody) && other_uid.stdout.is_empty(), "{other_uid:?}");
    running.expect_log("refused a control client: pid ");
    running.expect_log("runs as uid 65534, and only uid 0 or root may ask");
    // Refusals are logged at most once a second: the next comes after one.
    std::thread::sleep(Duration::from_millis(1100));

    // Another container: a mount namespace of its own, told the address of this one. An
    // exeunt client there does not believe this exeunt, and hangs up at once; a plain
    // connection waits until exeunt closes it, so that exeunt sees who it was.
    let address = format!("EXEUNT_CONTROL_SOCKET=@exeunt/mnt:{}", mount_namespace(pid));
    let other_mount = ask_as(pid, &["-m", "-p"], &["unshare", "--mount", "env", &address], &["--status"]);
    assert_eq!(other_mount.code, 1, "{other_mount:?}");
    assert!(other_mount.stderr.contains(nobody) && other_mount.stderr.contains("not believed"), "{other_mount:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let name = format!("exeunt/mnt:{}", mount_namespace(pid));
    let plain = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-p", "unshare", "--mount", "python3", "-c", CONNECT, &name])
        .status()
        .expect("nsenter, unshare and python3");
    assert_eq!(plain.code(), Some(0), "closed without an answer");
    running.expect_log("is in another mount namespace: another container");
    std::thread::sleep(Duration::from_millis(1100));

    // Another PID namespace in the same network namespace: the host's, here. An exeunt
    // client there cannot read its own namespaces in this container's /proc, and says
    // so without asking; a plain connection is refused by exeunt.
    let other_pid_ns = ask_as(pid, &["-m"], &["env", &address], &["--status"]);
    assert_eq!(other_pid_ns.code, 1, "{other_pid_ns:?}");
    assert!(other_pid_ns.stderr.contains(nobody), "{other_pid_ns:?}");
    let plain = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "python3", "-c", CONNECT, &name])
        .status()
        .expect("nsenter and python3");
    assert_eq!(plain.code(), Some(0), "closed without an answer");
    running.expect_log("refused a control client: uid 0, from another PID namespace");

    // Without the container's namespaces, the default address is another one, where
    // nothing listens.
    let outside = Command::new(exeunt()).arg("--status").output().expect("run exeunt");
    assert_eq!(outside.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&outside.stderr).contains(nobody));

    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    // One each: the other uid, the exeunt client and the plain connection of another
    // mount namespace, and the plain connection of another PID namespace (the exeunt
    // client there asked nobody).
    assert_eq!(count(&outcome.stderr, "refused a control client"), 4, "one warning each: {}", outcome.stderr);
}

#[test]
fn a_client_in_a_pid_namespace_nested_in_the_container_is_refused() {
    let scratch = Scratch::new("control-nested");
    let map = process("job", "primary", &until_term("job", "echo job up;"), "");
    let mut running = pid1(&["-c", &scratch.file("map.toml", &map)]);
    running.expect_line("job up");
    let pid = running.exeunt_pid();
    // The client sees itself in the container's /proc, as a process of a namespace
    // made inside the container would.
    let nested = ask_as(pid, &["-m", "-p"], &["unshare", "--pid", "--fork"], &["--status"]);
    assert_eq!(nested.code, 1, "{nested:?}");
    assert!(nested.stderr.contains("no exeunt answers in this container"), "{nested:?}");
    // That client hung up at once, not believing exeunt; a plain connection waits for
    // exeunt to close it, so that exeunt sees who it was.
    std::thread::sleep(Duration::from_millis(1100));
    let name = format!("exeunt/mnt:{}", mount_namespace(pid));
    let plain = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-p", "unshare", "--pid", "--fork", "python3", "-c", CONNECT, &name])
        .status()
        .expect("nsenter, unshare and python3");
    assert_eq!(plain.code(), Some(0), "closed without an answer");
    running.expect_log("is in another PID namespace");
    running.signal(libc::SIGTERM);
    assert_eq!(running.finish().code, 0);
}

/// The inode of `pid`'s mount namespace, which the default control socket is named after.
fn mount_namespace(pid: i32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt")).expect("exeunt's mount namespace").ino()
}

/// The number of descriptors `pid` has open.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/PID/fd").count()
}

/// Opens 1,000 connections that send nothing, and 100 that send garbage and read what
/// comes back, from inside the container; prints one line of counts when done.
const FLOOD: &str = r#"
import random, resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
address = "\0" + sys.argv[1]
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The kernel may answer EAGAIN while the listen backlog is full: exeunt takes 64
    # clients a turn, so room comes soon.
    for _ in range(1000):
        try:
            s.connect(address)
            return s
        except BlockingIOError:
            time.sleep(0.005)
    raise SystemExit("the control socket's backlog stayed full for 5 s")
idle = [connect() for _ in range(1000)]
errors = closes = 0
rng = random.Random(7)
for i in range(100):
    s = connect()
    s.settimeout(10)
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
    if i % 3 == 0:
        junk = b"exeunt/1 " + junk[:200].replace(b"\n", b" ") + b"\n"
    try:
        s.sendall(junk)
    except OSError:
        pass
    got = b""
    try:
        while True:
            part = s.recv(4096)
            if not part:
                break
            got += part
    except OSError:
        pass
    if got.startswith(b"exeunt/1 error\n"):
        errors += 1
    elif got == b"":
        closes += 1
    else:
        print("unexpected answer: %r" % got[:200], flush=True)
        sys.exit(1)
    s.close()
for s in idle:
    s.close()
print("flood done: %d errors, %d closes" % (errors, closes), flush=True)
"#;

#[test]
fn a_flood_of_idle_and_garbage_clients_during_a_crash_loop_leaves_memory_and_descriptors_as_they_were() {
    let scratch = Scratch::new("control-flood");
    let map = [
        process(
            "flaky",
            "sidecar",
            "exit 3",
            "on_exit = \"restart\"\nrestart_delay = \"20ms\"\nmax_restart_delay = \"20ms\"",
        ),
        process("job", "primary", &until_term("job", "echo job up;"), ""),
    ]
    .concat();
    let flood_script = scratch.file("flood.py", FLOOD);
    // The static release build, as it ships: its memory is what a container pays.
    let map = scratch.file("map.toml", &map);
    let mut running = common::pid1_program(&common::static_binary(), |_| {}, &["-c", &map]);
    running.expect_line("job up");
    running.expect_log("(pid ");
    running.expect_log("restart 20)");
    let pid = running.exeunt_pid();
    assert_eq!(ask(pid, &["--live"]).code, 0);
    let fds_before = open_fds(pid);
    let address = format!("exeunt/mnt:{}", mount_namespace(pid));
    let flood = |round: u32| {
        let output = Command::new("timeout")
            .args(["120", "nsenter", "-t", &pid.to_string(), "-m", "-p", "python3", &flood_script, &address])
            .output()
            .expect("run the flood");
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
        let errors: u32 = said.split_whitespace().nth(2).and_then(|n| n.parse().ok()).expect("counts");
        assert!(errors >= 34, "every request in the protocol's frame got an error answer: {said}");
        // The idle clients are dropped after their time: the descriptors return.
        // The count that ended the wait is the one asserted: a second look could fall
        // inside a restart of the crash-looping sidecar, while exec's error pipe is open.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut fds = open_fds(pid);
        while fds != fds_before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            fds = open_fds(pid);
        }
        let (rss, anon) = (status_field(pid, "VmRSS"), status_field(pid, "RssAnon"));
        println!("flood {round}: {}; exeunt after it: {rss} kB ({anon} kB anonymous), {fds} fds", said.trim());
        assert_eq!(fds, fds_before, "descriptors back to their starting count after flood {round}");
        (rss, anon)
    };
    let (rss_before, anon_before) = (status_field(pid, "VmRSS"), status_field(pid, "RssAnon"));
    let after: Vec<(u64, u64)> = (1..=3).map(flood).collect();
    println!("exeunt's RSS: {rss_before} kB ({anon_before} kB anonymous) at the start, {after:?} after each flood");
    // The first flood brings the heap to what 32 clients at once take, and the allocator
    // keeps those pages; from then on a flood leaves exeunt's memory (heap and stack) as
    // it found it. The rest of the RSS is the binary's own pages, which the flood's code
    // paths map in once, the first time they run.
    let (rss_warm, anon_warm) = after[0];
    assert!(anon_warm <= anon_before + 16, "the clients' memory is bounded: {anon_before} -> {anon_warm} kB");
    assert!(rss_warm <= rss_before + 32, "RSS {rss_before} -> {rss_warm} kB");
    for (round, &(rss, anon)) in after.iter().enumerate().skip(1) {
        // A page of slack: the allocator's groups need not fall in the same pages.
        assert!(anon <= anon_warm + 4, "flood {}: anonymous RSS {anon_warm} -> {anon} kB", round + 1);
        assert!(rss <= rss_warm + 4, "flood {}: RSS {rss_warm} -> {rss} kB", round + 1);
    }
    assert_eq!(ask(pid, &["--live"]).code, 0, "still answers");

    // A second flood, with a SIGTERM in the middle of it: acted on at once.
    let mut flood_again = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-p", "python3", &flood_script, &address])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the flood");
    // In the middle of it: once exeunt holds clients of this flood.
    let deadline = Instant::now() + HANG;
    while open_fds(pid) <= fds_before {
        assert!(Instant::now() < deadline, "the second flood never reached exeunt");
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = running.elapsed();
    running.signal(libc::SIGTERM);
    running.expect_log("received SIGTERM");
    let outcome = running.finish();
    let _ = flood_again.kill();
    let _ = flood_again.wait();
    let acted = outcome.time_of(common::Stream::Stderr, "received SIGTERM").saturating_sub(sent);
    println!("SIGTERM during a flood of control clients acted on after {acted:?}");
    assert!(acted < Duration::from_millis(100), "SIGTERM waited {acted:?}");
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(count(&outcome.stderr, "sidecar flaky exited with exit code 3") >= 2, "it crash-looped meanwhile");
}

#[test]
fn a_client_without_a_running_exeunt_fails_at_once_with_one_line() {
    let started = Instant::now();
    let output = Command::new("unshare")
        .args(["--mount", "--"])
        .arg(exeunt())
        .arg("--ready")
        .output()
        .expect("run unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no exeunt answers in this container (@exeunt/mnt:"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(3), "no wait for an answer that cannot come");
    let off = Command::new(exeunt()).arg("--status").env("EXEUNT_CONTROL_SOCKET", "off").output().expect("run exeunt");
    assert_eq!(off.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&off.stderr).contains("the control socket is off"));
}

#[test]
fn a_control_socket_at_a_path_replaces_a_stale_one_and_is_gone_when_exeunt_exits() {
    let scratch = Scratch::new("control-path");
    let socket = scratch.path("control.sock");
    // A socket file left by an exeunt that was killed: nothing listens on it.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind a stale socket"));
    let map =
        format!("control_socket = {socket:?}\n{}", process("job", "primary", &until_term("job", "echo job up;"), ""));
    let map = scratch.file("map.toml", &map);
    let mut running = pid1(&["-c", &map]);
    running.expect_line("job up");
    running.expect_log(&format!("listening for exeunt --status and the other requests at {socket}"));
    let pid = running.exeunt_pid();
    // The client finds the path in the role map, or in EXEUNT_CONTROL_SOCKET.
    let status = ask(pid, &["-c", &map, "--status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(row(&status.stdout, "job").contains(" running "), "{}", status.stdout);
    let by_variable = format!("EXEUNT_CONTROL_SOCKET={socket}");
    assert_eq!(ask_as(pid, &["-m", "-p"], &["env", &by_variable], &["--live"]).code, 0);
    assert_eq!(ask(pid, &["--live"]).code, 1, "the default address is not where it listens");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(!std::path::Path::new(&socket).exists(), "the socket file was removed");
}

/// A listener that answers everyone `ready: spoofed`, until it is dropped: then the name
/// is free again (mount-namespace inodes are reused, so a name left held would be
/// another test's exeunt's).
struct Squatter {
    listener: std::os::unix::net::UnixListener,
    answering: Option<std::thread::JoinHandle<()>>,
}

impl Squatter {
    fn new(listener: std::os::unix::net::UnixListener) -> Squatter {
        let accepting = listener.try_clone().expect("a second descriptor");
        let answering = std::thread::spawn(move || {
            for mut client in accepting.incoming().map_while(Result::ok) {
                let _ = client.write_all(b"exeunt/1 ok\nready: spoofed\n");
            }
        });
        Squatter { listener, answering: Some(answering) }
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: shutdown on a descriptor this test owns; accept then fails, and the
        // thread ends and closes its copy.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(answering) = self.answering.take() {
            let _ = answering.join();
        }
    }
}

/// A process killed when the test is done with it, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process of uid `uid` (running `sleep`) that holds a listening socket bound at the
/// path `path`, never accepting: a neighbour squatting exeunt's address.
fn squat_path(path: &str, uid: u32) -> KillOnDrop {
    use std::os::unix::process::CommandExt;
    let c_path = std::ffi::CString::new(path).expect("no NUL");
    let mut command = Command::new("sleep");
    command.arg("1000");
    // SAFETY: only raw system calls between fork and exec, on data made before the fork.
    unsafe {
        command.pre_exec(move || {
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (slot, &byte) in addr.sun_path.iter_mut().zip(c_path.as_bytes()) {
                *slot = byte as libc::c_char;
            }
            let size = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::setresgid(uid, uid, uid) != 0 || libc::setresuid(uid, uid, uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Not close-on-exec: sleep holds it.
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 || libc::bind(fd, (&raw const addr).cast(), size) != 0 || libc::listen(fd, 8) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    KillOnDrop(command.spawn().expect("the squatter"))
}

/// A mount namespace of its own (a "container" before its exeunt starts), held by a
/// sleeping process; killed on drop.
struct MountNamespace(std::process::Child);

impl MountNamespace {
    fn new() -> MountNamespace {
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "1000"])
            .spawn()
            .expect("unshare (util-linux)");
        let deadline = Instant::now() + HANG;
        while mount_namespace(child.id() as i32) == mount_namespace(std::process::id() as i32) {
            assert!(Instant::now() < deadline, "unshare made no mount namespace");
            std::thread::sleep(Duration::from_millis(5));
        }
        MountNamespace(child)
    }

    /// `args` run in the namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command.args(["-t", &self.0.id().to_string(), "-m", "--"]).args(args);
        command
    }
}

impl Drop for MountNamespace {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_squatted_default_name_is_not_believed_and_exeunt_still_serves_its_container() {
    use std::os::linux::net::SocketAddrExt;
    let scratch = Scratch::new("control-squatted");
    let container = MountNamespace::new();
    let name = format!("exeunt/mnt:{}", mount_namespace(container.0.id() as i32));
    // Another container (the test's own mount namespace) takes the name first, and
    // answers anyone who asks that all is ready.
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("an abstract name");
    let _squatter = Squatter::new(std::os::unix::net::UnixListener::bind_addr(&address).expect("squat the name"));
    let map = [
        process("side", "sidecar", &until_term("side", ""), "ready = { file = \"/nonexistent\", timeout = \"60s\" }"),
        process("job", "primary", &until_term("job", ""), ""),
    ]
    .concat();
    let map = scratch.file("map.toml", &map);
    let mut running = common::start(container.command(&[exeunt(), "-c", &map]));
    running.expect_log(&format!(
        "control socket @{name} is held by pid {} (uid 0) is in another mount namespace: another container: exeunt listens at @{name}/2 instead",
        std::process::id()
    ));
    let ready = container.command(&[exeunt(), "--ready"]).output().expect("the client");
    let said = String::from_utf8_lossy(&ready.stdout).into_owned() + &String::from_utf8_lossy(&ready.stderr);
    assert_eq!(ready.status.code(), Some(1), "the sidecar is not ready, whatever the squatter says: {said}");
    assert!(!said.contains("spoofed"), "{said}");
    assert!(said.contains("side"), "exeunt's own answer names its sidecar: {said}");
    running.signal(libc::SIGTERM);
    assert_eq!(running.finish().code, 143, "stopped before the primary could start");
}

#[test]
fn a_path_held_by_another_user_or_a_regular_file_is_left_alone_and_exeunt_listens_at_the_next() {
    let scratch = Scratch::new("control-path-held");
    std::fs::set_permissions(&scratch.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let map = scratch.file("map.toml", &process("job", "primary", &until_term("job", "echo job up;"), ""));
    for (case, holder) in [("socket", "is held by uid 65534"), ("file", "is a regular file, which exeunt leaves alone")]
    {
        let path = scratch.path(&format!("{case}.sock"));
        let mut squatter = None;
        match case {
            "socket" => squatter = Some(squat_path(&path, 65534)),
            _ => std::fs::write(&path, "precious data\n").expect("a file"),
        }
        let deadline = Instant::now() + HANG;
        while !std::path::Path::new(&path).exists() {
            assert!(Instant::now() < deadline, "the squatter did not bind");
            std::thread::sleep(Duration::from_millis(5));
        }
        let env = [("EXEUNT_CONTROL_SOCKET", path.as_str())];
        let mut running = common::pid1_env(&env, &["-c", &map]);
        running.expect_line("job up");
        running.expect_log(&format!("control socket {path} {holder}"));
        running.expect_log(&format!("exeunt listens at {path}.2 instead"));
        let pid = running.exeunt_pid();
        let status = Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-m",
                "-p",
                "env",
                &format!("EXEUNT_CONTROL_SOCKET={path}"),
                exeunt(),
                "--status",
            ])
            .output()
            .expect("the client");
        assert_eq!(status.status.code(), Some(0), "{case}: {status:?}");
        assert!(String::from_utf8_lossy(&status.stdout).contains("job"), "{case}: {status:?}");
        running.signal(libc::SIGTERM);
        assert_eq!(running.finish().code, 0);
        assert!(!std::path::Path::new(&format!("{path}.2")).exists(), "exeunt's own socket file is removed");
        match squatter {
            Some(squatter) => {
                assert!(std::fs::symlink_metadata(&path).is_ok(), "the other user's socket is left alone");
                drop(squatter);
            }
            None => assert_eq!(std::fs::read_to_string(&path).expect("the file"), "precious data\n"),
        }
    }
}

#[test]
fn refused_clients_are_logged_at_most_once_a_second_with_a_count() {
    let scratch = Scratch::new("control-refusal-flood");
    let map = scratch.file("map.toml", &process("job", "primary", &until_term("job", "echo job up;"), ""));
    let mut running = pid1(&["-c", &map]);
    running.expect_line("job up");
    let pid = running.exeunt_pid();
    let name = format!("exeunt/mnt:{}", mount_namespace(pid));
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let fields: Vec<u64> = stat[stat.rfind(')').expect(")") + 2..]
            .split(' ')
            .skip(11)
            .take(2)
            .map(|f| f.parse().expect("a number"))
            .collect();
        fields.iter().sum::<u64>()
    };
    // Two processes of another mount namespace connect as fast as they can for 3 s.
    let flood = "import socket, sys, time\nend = time.time() + 3\nn = 0\nwhile time.time() < end:\n    s = socket.socket(socket.AF_UNIX)\n    try:\n        s.connect('\\0' + sys.argv[1])\n        n += 1\n    except OSError:\n        pass\n    s.close()\nprint(n)\n";
    let before = cpu();
    let started = Instant::now();
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            Command::new("unshare")
                .args(["--mount", "python3", "-c", flood, &name])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("unshare and python3")
        })
        .collect();
    let connections: u64 = flooders
        .into_iter()
        .map(|f| {
            String::from_utf8_lossy(&f.wait_with_output().expect("flood").stdout)
                .trim()
                .parse::<u64>()
                .expect("a count")
        })
        .sum();
    let took = started.elapsed();
    let ticks = cpu() - before;
    running.expect_log("more control clients in the last second; the latest: ");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    let lines = count(&outcome.stderr, "refused");
    println!("{connections} refused connections in {took:?}: {lines} log lines, {} ms of exeunt's CPU", ticks * 10);
    assert!(connections > 1000, "a flood: {connections} connections");
    assert!(lines <= took.as_secs() as usize * 2 + 4, "at most one line, and one count, a second: {lines} lines");
    assert_eq!(outcome.code, 0);
}
