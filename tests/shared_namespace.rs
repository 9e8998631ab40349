//! A pod with a shared process namespace: only the primary's container runs exeunt; the
//! sidecars of other containers are found in /proc, watched and stopped. The pod is
//! built as a container runtime builds it: a namespace whose PID 1 is a pause process,
//! and "containers" that enter it with nsenter, so that their parent is outside.

mod common;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    Running, Scratch, exeunt, free_port, http_sidecar, list_fds, process, require_pid_namespaces, start, until_term,
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
    let mut sidecar = pod.container(&[&mesh, "-v", "sh", "-c", &until_term("mesh", "echo mesh up;")]);
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
