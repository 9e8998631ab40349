//! A pod with a shared process namespace: only the primary's container runs exeunt; the
//! sidecars of other containers are found in /proc, watched and stopped. The pod is
//! built as a container runtime builds it: a namespace whose PID 1 is a pause process,
//! and "containers" that enter it with nsenter, so that their parent is outside.

use crate::common;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    Running, SLEEP_FOREVER, Scratch, children_of, exeunt, exists, free_port, http_sidecar, list_fds, pid1, process,
    require_pid_namespaces, start, until_term,
};

/// A PID namespace with a pause process as PID 1, removed with everything in it on drop.
struct Pod {
    pause: Child,
    init: i32,
}

impl Pod {
    fn new() -> Pod {
        require_pid_namespaces();
        assert!(std::path::Path::new("/usr/bin/nsenter").exists(), "nsenter is missing: apt-get install util-linux");
        let mut pause = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", "echo up; exec sleep 1000"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(pause.stdout.take().expect("piped")).read_line(&mut line).expect("the pause process is up");
        let me = pause.id();
        let children = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).expect("children");
        let init = children.split_whitespace().next().expect("the pause process").parse().expect("a pid");
        Pod { pause, init }
    }

    /// Starts a "container" whose first process runs `args` inside the pod.
    fn container(&self, args: &[&str]) -> Running {
        let mut command = Command::new("nsenter");
        command.args(["--target", &self.init.to_string(), "--pid", "--mount", "--"]).args(args);
        start(command)
    }
}

impl Pod {
    /// Queues `signo` from a process of the pod to `to` (a pid of the pod) with a value
    /// that claims exit status 0, naming `claimed` as the sender. From inside the
    /// namespace, the kernel passes the named sender on as it is given.
    fn forge_status(&self, to: i32, signo: i32, claimed: i32) {
        let script = "import ctypes, os, struct, sys\n\
            to, signo, claimed = (int(a) for a in sys.argv[1:4])\n\
            number = {'x86_64': 129, 'aarch64': 240}[os.uname().machine]\n\
            info = struct.pack('iiiiiIQ', signo, 0, -1, 0, claimed, 0, 0x45580000) + bytes(96)\n\
            libc = ctypes.CDLL(None, use_errno=True)\n\
            if libc.syscall(number, to, signo, ctypes.c_char_p(info)) != 0:\n    sys.exit(os.strerror(ctypes.get_errno()))\n";
        let status = Command::new("nsenter")
            .args(["--target", &self.init.to_string(), "--pid", "--", "python3", "-c", script])
            .args([to.to_string(), signo.to_string(), claimed.to_string()])
            .status()
            .expect("nsenter and python3 (apt-get install util-linux python3)");
        assert!(status.success(), "the forged signal was queued");
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.pause.kill();
        let _ = self.pause.wait();
    }
}

/// A copy of `program` under another name, so that its command name is distinct.
fn renamed(scratch: &Scratch, program: &str, name: &str) -> String {
    let path = scratch.path(name);
    std::fs::copy(program, &path).expect("copy the program");
    path
}

#[test]
fn sidecar_container_running_exeunt_exits_with_the_primarys_status_without_a_graveyard() {
    let pod = Pod::new();
    let scratch = Scratch::new("shared-status");
    let mesh = renamed(&scratch, exeunt(), "mesh-agent");
    let mut sidecar = pod.container(&[&mesh, "--sidecar", "-v", "sh", "-c", &until_term("mesh", "echo mesh up;")]);
    sidecar.expect_line("mesh up");
    let map = [
        process("mesh", "sidecar", "", "")
            .replace("command = [\"sh\", \"-c\", \"\"]", "match = { comm = \"mesh-agent\" }"),
        process("job", "primary", "exit 3", ""),
    ]
    .concat();
    let primary = pod.container(&[exeunt(), "-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(primary.code, 3, "{primary:?}");
    assert!(primary.stderr.contains("found sidecar mesh of another container"), "{}", primary.stderr);
    let sidecar = sidecar.finish();
    assert!(sidecar.stdout.contains("mesh got TERM"), "{sidecar:?}");
    assert_eq!(sidecar.code, 3, "the sidecar container reports the primary's status: {sidecar:?}");
    assert!(sidecar.stderr.contains("carrying exit status 3"), "{}", sidecar.stderr);
}

#[test]
fn non_wrapped_sidecar_is_found_and_stopped_through_its_http_stop_hook() {
    let pod = Pod::new();
    let scratch = Scratch::new("shared-hook");
    let port = free_port();
    let mut sidecar = pod.container(&["sh", "-c", &http_sidecar(port, 1)]);
    sidecar.expect_line("http sidecar listening");
    let map = [
        process(
            "proxy",
            "sidecar",
            "",
            &format!(
                "ready = {{ http = \"http://127.0.0.1:{port}/ready\", interval = \"20ms\" }}\n\
             stop = {{ http = \"http://127.0.0.1:{port}/quitquitquit\" }}\ngrace_period = \"30s\""
            ),
        )
        .replace("command = [\"sh\", \"-c\", \"\"]", "match = { comm = \"python3\" }"),
        process("job", "primary", "echo job done", ""),
    ]
    .concat();
    let primary = pod.container(&[exeunt(), "-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(primary.code, 0, "{primary:?}");
    assert!(primary.stderr.contains("stopping sidecar proxy with its stop hook http POST"), "{}", primary.stderr);
    assert!(!primary.stderr.contains("sending SIGTERM to sidecar proxy"), "{}", primary.stderr);
    assert!(primary.elapsed < Duration::from_secs(10), "not the 30s grace: {primary:?}");
    let sidecar = sidecar.finish();
    assert!(sidecar.stdout.contains("answered 503") && sidecar.stdout.contains("answered 200"), "{sidecar:?}");
    assert!(sidecar.stdout.contains("got POST /quitquitquit"), "{sidecar:?}");
    assert_eq!(sidecar.code, 0, "{sidecar:?}");
}

#[test]
fn non_wrapped_sidecar_ignoring_sigterm_is_killed_after_its_grace_period() {
    let pod = Pod::new();
    let scratch = Scratch::new("shared-stubborn");
    let stubborn = renamed(&scratch, "/bin/sleep", "stubborn");
    let mut sidecar = pod.container(&["sh", "-c", &format!("trap '' TERM; echo stubborn up; exec {stubborn} 1000")]);
    sidecar.expect_line("stubborn up");
    // The primary starts while exeunt holds a pidfd of the sidecar: it must not see it.
    let map = [
        process("stubborn", "sidecar", "", "grace_period = \"500ms\"")
            .replace("command = [\"sh\", \"-c\", \"\"]", "match = { comm = \"stubborn\" }"),
        process("job", "primary", &list_fds(&scratch.path("job-fds")), ""),
    ]
    .concat();
    let primary = pod.container(&[exeunt(), "-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(primary.code, 0, "{primary:?}");
    assert!(primary.stderr.contains("killing stubborn: still running 500ms after SIGTERM"), "{}", primary.stderr);
    assert_eq!(sidecar.finish().code, 137, "killed");
    let baseline = pod.container(&["sh", "-c", &list_fds(&scratch.path("baseline-fds"))]).finish();
    assert_eq!(baseline.code, 0, "{baseline:?}");
    let read = |name: &str| std::fs::read_to_string(scratch.path(name)).expect("a list of descriptors");
    assert_eq!(read("job-fds"), read("baseline-fds"), "a child of exeunt sees what a child of the runtime sees");
}

#[test]
fn a_sidecar_that_never_appears_fails_the_start_within_the_match_timeout() {
    let pod = Pod::new();
    let scratch = Scratch::new("shared-missing");
    let started = scratch.path("started");
    let map = format!(
        "match_timeout = \"300ms\"\n\n{}{}",
        process("ghost", "sidecar", "", "")
            .replace("command = [\"sh\", \"-c\", \"\"]", "match = { comm = \"no-such-proc\" }"),
        process("job", "primary", &format!("touch {started}"), "")
    );
    let primary = pod.container(&[exeunt(), "-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(primary.code, 1, "{primary:?}");
    assert!(
        primary
            .stderr
            .contains("sidecar ghost is not there: no process with comm = \"no-such-proc\" appeared within 300ms"),
        "{}",
        primary.stderr
    );
    assert!(!std::path::Path::new(&started).exists());
}

/// Queues `signo` to host pid `to` with a value that claims exit status 0, naming
/// `claimed` as its sender: `rt_sigqueueinfo` lets any sender choose both.
fn forge_status(to: i32, signo: i32, claimed: i32) {
    #[repr(C)]
    struct Info {
        signo: i32,
        errno: i32,
        code: i32,
        pad: i32,
        pid: i32,
        uid: u32,
        value: usize,
        rest: [u8; 96],
    }
    let info =
        Info { signo, errno: 0, code: libc::SI_QUEUE, pad: 0, pid: claimed, uid: 0, value: 0x4558_0000, rest: [0; 96] };
    // SAFETY: a siginfo of the kernel's size, read by the kernel only.
    let sent = unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, to, signo, &raw const info) };
    assert_eq!(sent, 0, "rt_sigqueueinfo: {}", std::io::Error::last_os_error());
}

/// The one child of a container's `nsenter`: its first process, as the host sees it.
fn first_process(container: &Running) -> i32 {
    *children_of(container.exeunt_pid()).first().expect("nsenter has started the container's process")
}

/// The pid of host pid `pid` inside the pod's namespace (the last `NSpid` field).
fn pid_in_pod(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:")).expect("NSpid");
    line.split_whitespace().last().expect("a pid").parse().expect("a number")
}

#[test]
fn a_forged_status_on_a_stop_signal_never_replaces_the_primarys_own() {
    let scratch = Scratch::new("forged-status");
    let job = format!("trap 'kill -9 $! 2>/dev/null; exit 7' TERM; echo job up; {SLEEP_FOREVER}");
    let map = scratch.file("map.toml", &process("job", "primary", &job, ""));
    let mut running = pid1(&["-c", &map]);
    running.expect_line("job up");
    forge_status(running.exeunt_pid(), libc::SIGTERM, 0);
    let outcome = running.finish();
    assert_eq!(outcome.code, 7, "the primary's status, not the forged 0: {outcome:?}");
    assert!(
        outcome.stderr.contains("SIGTERM from pid 0 (uid 0) claims exit status 0, which is not taken: this exeunt's own primaries decide its status"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn a_sidecar_container_takes_no_status_whose_named_sender_holds_no_proof() {
    let pod = Pod::new();
    let scratch = Scratch::new("shared-forged");
    let mesh = renamed(&scratch, exeunt(), "mesh-agent");
    let on_term =
        format!("trap 'kill -9 $! 2>/dev/null; echo mesh got TERM; exit 5' TERM; echo mesh up; {SLEEP_FOREVER}");
    let mut sidecar = pod.container(&[&mesh, "--sidecar", "-v", "sh", "-c", &on_term]);
    sidecar.expect_line("mesh up");
    let go = scratch.fifo("go");
    let map = [
        process("mesh", "sidecar", "", "")
            .replace("command = [\"sh\", \"-c\", \"\"]", "match = { comm = \"mesh-agent\" }"),
        process("job", "primary", &format!("read x < {go}; exit 3"), ""),
    ]
    .concat();
    let mut primary = pod.container(&[exeunt(), "-c", &scratch.file("map.toml", &map)]);
    primary.expect_log("found sidecar mesh of another container");
    // A process of the pod queues the signal, naming the real primary exeunt (which
    // sent nothing) as its sender.
    let claimed = pid_in_pod(first_process(&primary));
    pod.forge_status(pid_in_pod(first_process(&sidecar)), libc::SIGTERM, claimed);
    let sidecar = sidecar.finish();
    assert_eq!(sidecar.code, 5, "its own process's status, not the forged 0: {sidecar:?}");
    let refusal =
        format!("claims exit status 0, which is not taken: pid {claimed} holds no proof that it sent exit status 0");
    assert!(sidecar.stderr.contains(&refusal), "{}", sidecar.stderr);
    std::fs::write(&go, "go\n").expect("the job reads");
    assert_eq!(primary.finish().code, 3);
}

/// Starts a "container" of `pod` whose top process is a copy of sleep named
/// `pilot-agent`, run as `uid`.
fn pilot_agent(pod: &Pod, scratch: &Scratch, uid: u32) -> Running {
    let program = scratch.path("pilot-agent");
    if !std::path::Path::new(&program).exists() {
        std::fs::copy("/bin/sleep", &program).expect("copy sleep");
    }
    let uid = uid.to_string();
    pod.container(&["setpriv", "--reuid", &uid, "--regid", &uid, "--clear-groups", &program, "1000"])
}

/// Waits until the container's top process runs `pilot-agent`.
fn wait_until_running_as_pilot_agent(container: &Running) -> i32 {
    let deadline = std::time::Instant::now() + common::HANG;
    loop {
        if let Some(&pid) = children_of(container.exeunt_pid()).first()
            && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "pilot-agent")
        {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "pilot-agent did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two "containers" whose top processes are both named `pilot-agent`: the first runs as
/// uid 65534, the second as root. Each with its pid, once it runs.
fn two_pilot_agents(pod: &Pod, scratch: &Scratch) -> [(Running, i32); 2] {
    [65534, 0].map(|uid| {
        let container = pilot_agent(pod, scratch, uid);
        let pid = wait_until_running_as_pilot_agent(&container);
        (container, pid)
    })
}

#[test]
fn an_impostor_with_the_sidecars_name_but_another_uid_is_not_matched() {
    let pod = Pod::new();
    let scratch = Scratch::new("shared-impostor");
    // The impostor comes first: it has the lower pid.
    let [(_impostor, impostor_pid), (real, real_pid)] = two_pilot_agents(&pod, &scratch);
    let (real_in_pod, impostor_in_pod) = (pid_in_pod(real_pid), pid_in_pod(impostor_pid));
    let map = [
        process("istio", "sidecar", "", "")
            .replace("command = [\"sh\", \"-c\", \"\"]", "match = { comm = \"pilot-agent\", uid = 0 }"),
        process("job", "primary", "echo job done", ""),
    ]
    .concat();
    let primary = pod.container(&[exeunt(), "-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(primary.code, 0, "{primary:?}");
    let found = format!("found sidecar istio of another container: pid {real_in_pod}, comm = \"pilot-agent\", uid = 0");
    assert!(primary.stderr.contains(&found), "{}", primary.stderr);
    assert_eq!(real.finish().code, 128 + libc::SIGTERM, "the real sidecar was stopped");
    assert!(exists(impostor_pid), "the impostor was left alone");
    let stderr = primary.stderr;
    assert!(!stderr.contains(&format!("pid {impostor_in_pod}")), "{stderr}");
}

#[test]
fn two_processes_matching_a_name_are_a_warning_and_neither_is_taken() {
    let pod = Pod::new();
    let scratch = Scratch::new("shared-ambiguous");
    let [(_first, first_pid), (_second, second_pid)] = two_pilot_agents(&pod, &scratch);
    let map = format!(
        "match_timeout = \"500ms\"\n\n{}{}",
        process("istio", "sidecar", "", "")
            .replace("command = [\"sh\", \"-c\", \"\"]", "match = { comm = \"pilot-agent\" }"),
        process("job", "primary", "echo job done", "")
    );
    let primary = pod.container(&[exeunt(), "-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(primary.code, 1, "{primary:?}");
    let (a, b) = (pid_in_pod(first_pid), pid_in_pod(second_pid));
    let warning = format!(
        "sidecar istio: 2 processes match comm = \"pilot-agent\": pid {a} (uid 65534), pid {b} (uid 0); none is taken until only one does"
    );
    assert_eq!(common::count(&primary.stderr, &warning), 1, "warned once: {}", primary.stderr);
    assert!(!primary.stdout.contains("job done"), "{primary:?}");
    assert!(exists(first_pid) && exists(second_pid), "neither was signalled");
}
