//! Docker Engine, as most users run exeunt: `docker run --init` with exeunt as dockerd's
//! `--init-path`, an image whose ENTRYPOINT is exeunt with a role map and a
//! HEALTHCHECK, docker compose, and kubexit's pod as two containers sharing a volume.
//! scripts/test starts the engine (scripts/dockerd) and hands it over in DOCKER_HOST;
//! images are built FROM scratch with busybox-static, and run with --network none.

use crate::common;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::Scratch;

/// The docker.io client, which matches the engine (another client may be first in PATH).
const DOCKER: &str = "/usr/bin/docker";

/// The engine's socket, which scripts/test starts.
fn docker_host() -> String {
    std::env::var("DOCKER_HOST").ok().filter(|h| h.starts_with("unix://")).unwrap_or_else(|| {
        panic!(
            "no Docker Engine: DOCKER_HOST is unset. bash scripts/test starts one \
             (apt-get install docker.io; scripts/dockerd start DIR target/x86_64-unknown-linux-musl/release/exeunt)"
        )
    })
}

fn docker(args: &[&str]) -> Output {
    common::require(DOCKER, "docker.io");
    Command::new(DOCKER).args(args).env("DOCKER_HOST", docker_host()).output().expect("run docker")
}

/// `docker ARGS`, which must succeed: its stdout.
fn docker_ok(args: &[&str]) -> String {
    let output = docker(args);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(output.status.success(), "docker {args:?}: {}{}", text(&output.stdout), text(&output.stderr));
    text(&output.stdout)
}

/// A name no other test run uses.
fn unique(name: &str) -> String {
    format!("exeunt-test-{name}-{}", std::process::id())
}

/// An image built for one test, removed when dropped.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// A container, removed (killed first) when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

/// An image FROM scratch with busybox-static at /bin (every applet linked), `files`
/// (path in the image, content) and exeunt at /exeunt, then `dockerfile` lines.
fn image(scratch: &Scratch, name: &str, files: &[(&str, &str)], dockerfile: &str) -> Image {
    common::require("/bin/busybox", "busybox-static");
    let context = Path::new(&scratch.path("context")).to_path_buf();
    let bin = context.join("bin");
    std::fs::create_dir_all(&bin).expect("make the context");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
    let applets = Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&applets.stdout).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("link an applet");
    }
    std::fs::copy(common::static_binary(), context.join("exeunt")).expect("copy exeunt");
    let mut copies = String::new();
    for (path, content) in files {
        let at = context.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().expect("a directory")).expect("make its directory");
        std::fs::write(&at, content).expect("write a file of the image");
        copies += &format!("COPY {0} {0}\n", path.trim_start_matches('/'));
    }
    let text = format!("FROM scratch\nCOPY bin /bin\nCOPY exeunt /exeunt\n{copies}ENV PATH=/bin\n{dockerfile}\n");
    std::fs::write(context.join("Dockerfile"), text).expect("write the Dockerfile");
    let tag = unique(name);
    docker_ok(&["build", "-q", "-t", &tag, &context.to_string_lossy()]);
    Image(tag)
}

/// The plain busybox image, for `docker run --init`.
fn busybox(scratch: &Scratch) -> Image {
    image(scratch, "busybox", &[], "")
}

/// `docker run --init` of `script` in the busybox image: its exit code and output.
fn run_init(image: &Image, script: &str) -> (i32, String) {
    let output = docker(&["run", "--rm", "--init", "--network", "none", &image.0, "sh", "-c", script]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().expect("docker run exited"), text)
}

/// Waits up to 60 s for `docker logs NAME` to hold `needle`.
fn wait_for_log(name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = docker(&["logs", name]);
        let logs = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        if logs.contains(needle) {
            return logs;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in the logs of {name} within 60 s: {logs}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A shell that says `up`, then waits; `trap` says what it does on which signal.
fn waiting_app(trap: &str) -> String {
    format!("{trap}; echo up; while :; do sleep 1000 & wait $!; done")
}

/// A container of `image` under `docker run -d --init`, running [`waiting_app`] with
/// `trap`, once it has said it is up.
fn run_waiting_app(image: &Image, name: &str, trap: &str) -> Container {
    let container = Container(unique(name));
    let app = waiting_app(trap);
    let name = container.0.as_str();
    docker_ok(&["run", "-d", "--init", "--network", "none", "--name", name, &image.0, "sh", "-c", &app]);
    wait_for_log(name, "up");
    container
}

#[test]
fn docker_run_init_is_exeunt_as_pid_1_and_passes_exit_codes_0_3_137_and_143_through() {
    let scratch = Scratch::new("docker-init-codes");
    let image = busybox(&scratch);
    let (code, out) = run_init(&image, "readlink /proc/1/exe; cat /proc/1/cmdline | tr '\\0' ' '");
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("/sbin/docker-init\n/sbin/docker-init -- sh -c"), "exeunt runs as Docker's init: {out}");
    for (script, expected) in [("exit 0", 0), ("exit 3", 3), ("kill -KILL $$", 137), ("kill -TERM $$", 143)] {
        let (code, out) = run_init(&image, script);
        assert_eq!(code, expected, "{script}: {out}");
    }
}

#[test]
fn docker_stop_gives_an_app_that_drains_for_5_s_its_5_s_and_its_exit_0() {
    let scratch = Scratch::new("docker-init-stop");
    let image = busybox(&scratch);
    let container = run_waiting_app(&image, "drain", "trap 'echo draining; sleep 5; echo drained; exit 0' TERM");
    let name = container.0.as_str();
    let started = Instant::now();
    docker_ok(&["stop", "-t", "30", name]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(5) && took < Duration::from_secs(25), "docker stop took {took:?}");
    let logs = wait_for_log(name, "drained");
    assert!(logs.contains("draining"), "{logs}");
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", name]).trim(), "0");
}

#[test]
fn docker_kill_with_quit_reaches_the_app_which_lives_on() {
    let scratch = Scratch::new("docker-init-quit");
    let image = busybox(&scratch);
    let container = run_waiting_app(&image, "quit", "trap 'echo got QUIT' QUIT");
    let name = container.0.as_str();
    docker_ok(&["kill", "-s", "QUIT", name]);
    wait_for_log(name, "got QUIT");
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.Running}}", name]).trim(), "true");
}

#[test]
fn orphans_under_docker_run_init_are_reaped() {
    let scratch = Scratch::new("docker-init-orphans");
    let image = busybox(&scratch);
    // 50 short-lived processes whose parent exits at once: PID 1 inherits and must reap them.
    let script = "i=0; while [ $i -lt 50 ]; do sh -c 'sleep 0.2 &'; i=$((i+1)); done; sleep 2; ps -o stat,ppid,comm";
    let (code, out) = run_init(&image, script);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("STAT"), "{out}");
    let zombies: Vec<&str> = out.lines().filter(|l| l.starts_with('Z')).collect();
    assert!(zombies.is_empty(), "zombies left: {out}");
    assert!(!out.contains("sleep"), "the orphans ended: {out}");
}

#[test]
fn docker_info_shows_exeunts_commit_and_dockerd_logs_no_parse_warning_for_it() {
    let commit = exeunt::VERSION.trim().rsplit("git.").next().expect("a commit");
    let git = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .expect("run git");
    assert_eq!(commit, String::from_utf8_lossy(&git.stdout).trim(), "the build's commit is the checkout's");
    let info = docker_ok(&["info", "-f", "{{.InitBinary}} {{.InitCommit.ID}}"]);
    assert!(info.trim().ends_with(&format!(" {commit}")), "docker info: {info}");
    let socket = docker_host();
    let log = Path::new(socket.trim_start_matches("unix://")).with_file_name("dockerd.log");
    let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(log.contains("API listen on"), "{log}");
    assert!(!log.contains("failed to parse"), "dockerd could not read exeunt's --version: {log}");
}

#[test]
fn a_healthcheck_of_exeunt_ready_goes_from_starting_to_healthy_and_to_unhealthy_while_a_sidecar_is_down() {
    let scratch = Scratch::new("docker-healthcheck");
    // The sidecar is ready 3 s after it starts, and exits when its file is removed; it is
    // started again only 60 s later, so that it stays down.
    let map = r#"
[[process]]
name = "cache"
role = "sidecar"
command = ["sh", "-c", "sleep 3; touch /tmp/up; while [ -e /tmp/up ]; do sleep 0.2; done; exit 1"]
ready = { file = "/tmp/up" }
restart_delay = "60s"
max_restart_delay = "60s"

[[process]]
name = "app"
role = "primary"
command = ["sh", "-c", "while :; do sleep 1000 & wait $$!; done"]
"#;
    let dockerfile = "ENTRYPOINT [\"/exeunt\", \"-c\", \"/etc/exeunt.toml\"]\n\
        HEALTHCHECK --interval=1s --timeout=3s --start-period=60s --retries=1 CMD [\"/exeunt\", \"--ready\"]";
    let image = image(&scratch, "health", &[("/etc/exeunt.toml", map), ("/tmp/.keep", "")], dockerfile);
    let name = unique("health");
    let _container = Container(name.clone());
    docker_ok(&["run", "-d", "--network", "none", "--name", &name, &image.0]);
    let health = || docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", &name]).trim().to_string();
    let wait_for = |wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let now = health();
            if seen.last() != Some(&now) {
                seen.push(now.clone());
            }
            if now == wanted {
                return seen;
            }
            assert!(Instant::now() < deadline, "not {wanted} within 60 s: {seen:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(wait_for("healthy"), ["starting", "healthy"]);
    docker_ok(&["exec", &name, "rm", "/tmp/up"]);
    assert_eq!(wait_for("unhealthy"), ["healthy", "unhealthy"]);
    let checks = docker_ok(&["inspect", "-f", "{{range .State.Health.Log}}{{.Output}}{{end}}", &name]);
    assert!(checks.contains("not ready: cache is restarting"), "{checks}");
}

/// docker-compose (Debian's, 1.29) on `file` in project `project`: its exit code and output.
fn compose(project: &str, file: &str, args: &[&str]) -> (i32, String) {
    common::require("/usr/bin/docker-compose", "docker-compose");
    let output = Command::new("/usr/bin/docker-compose")
        .args(["--no-ansi", "-p", project, "-f", file])
        .args(args)
        .env("DOCKER_HOST", docker_host())
        .output()
        .expect("run docker-compose");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().expect("docker-compose exited"), text)
}

/// Takes a compose project down, volumes too, when dropped.
struct Project<'a>(&'a str, &'a str);

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = compose(self.0, self.1, &["down", "-v", "-t", "1"]);
    }
}

#[test]
fn docker_compose_up_and_down_with_exeunt_in_both_services_honours_stop_grace_period() {
    let scratch = Scratch::new("docker-compose");
    // The entrypoint service: a sidecar and a primary that drains for 12 s, more than
    // Docker's default 10 s; its stop_grace_period of 30 s lets it finish.
    let map = [
        common::process("proxy", "sidecar", &common::until_term("proxy", ""), ""),
        common::process(
            "app",
            "primary",
            &waiting_app("trap 'echo draining; sleep 12; echo drained; exit 0' TERM"),
            "",
        ),
    ]
    .concat();
    let image = image(&scratch, "compose", &[("/etc/exeunt.toml", &map)], "");
    // The --init service ignores SIGTERM: its stop_grace_period of 1 s ends in SIGKILL.
    let stubborn = waiting_app("trap 'echo ignoring TERM' TERM");
    let file = scratch.file(
        "docker-compose.yml",
        &format!(
            "version: \"2.4\"\nservices:\n  app:\n    image: {0}\n    network_mode: none\n    \
             entrypoint: [\"/exeunt\", \"-c\", \"/etc/exeunt.toml\"]\n    stop_grace_period: 30s\n  \
             helper:\n    image: {0}\n    network_mode: none\n    init: true\n    \
             command: [\"sh\", \"-c\", {1:?}]\n    stop_grace_period: 1s\n",
            image.0,
            stubborn.replace('$', "$$")
        ),
    );
    let project = unique("compose").replace('-', "");
    let _down = Project(&project, &file);
    let (code, out) = compose(&project, &file, &["up", "-d"]);
    assert_eq!(code, 0, "{out}");
    let (app, helper) = (format!("{project}_app_1"), format!("{project}_helper_1"));
    wait_for_log(&app, "up");
    wait_for_log(&helper, "up");
    let started = Instant::now();
    let (code, out) = compose(&project, &file, &["stop"]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}");
    assert!(took >= Duration::from_secs(12) && took < Duration::from_secs(28), "docker-compose stop took {took:?}");
    let logs = wait_for_log(&app, "drained");
    assert!(logs.contains("proxy got TERM"), "the sidecar was stopped after the app: {logs}");
    assert!(common::position(&logs, "drained") < common::position(&logs, "proxy got TERM"), "{logs}");
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &app]).trim(), "0");
    wait_for_log(&helper, "ignoring TERM");
    assert_eq!(docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &helper]).trim(), "137");
    let (code, out) = compose(&project, &file, &["down", "-v"]);
    assert_eq!(code, 0, "{out}");
    assert!(docker_ok(&["ps", "-aq", "--filter", &format!("name={project}")]).trim().is_empty());
}

#[test]
fn kubexits_pod_as_two_docker_containers_sharing_a_volume_ends_the_sidecar_with_the_jobs_status() {
    let scratch = Scratch::new("docker-pod");
    let pod = |name: &str, deaths: &str, process: String| {
        format!("[pod]\nname = \"{name}\"\ngraveyard = \"/graveyard\"\ndeath_deps = [{deaths}]\n\n{process}")
    };
    let job = pod("job", "", common::process("job", "primary", "sleep 1; echo job done; exit 3", ""));
    let sidecar = pod("sidecar", "\"job\"", common::process("proxy", "primary", &common::until_term("proxy", ""), ""));
    let files = [("/etc/job.toml", job.as_str()), ("/etc/sidecar.toml", sidecar.as_str())];
    let image = image(&scratch, "pod", &files, "");
    let volume = unique("graveyard");
    docker_ok(&["volume", "create", &volume]);
    let (job_name, sidecar_name) = (unique("job"), unique("sidecar"));
    let containers = [Container(sidecar_name.clone()), Container(job_name.clone())];
    for (name, map) in [(&sidecar_name, "/etc/sidecar.toml"), (&job_name, "/etc/job.toml")] {
        let mount = format!("{volume}:/graveyard");
        docker_ok(&["run", "-d", "--network", "none", "-v", &mount, "--name", name, &image.0, "/exeunt", "-c", map]);
    }
    let waited = docker_ok(&["wait", &job_name, &sidecar_name]);
    assert_eq!(waited.split_whitespace().collect::<Vec<_>>(), ["3", "3"], "the job's status on both");
    let logs = wait_for_log(&sidecar_name, "proxy got TERM");
    assert!(logs.contains("death dep job died with exit code 3"), "{logs}");
    drop(containers);
    docker_ok(&["volume", "rm", &volume]);
}
