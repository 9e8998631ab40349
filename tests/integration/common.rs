//! What the integration tests share: exeunt run as a real PID 1 in a new PID
//! namespace, its output read line by line, and bounds that turn a hang into a failure.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a test's shell waits for signals: `wait` on a background `sleep` returns as soon
/// as a trapped signal comes, where a foreground `sleep` would hold the trap until it ends.
pub const SLEEP_FOREVER: &str = "while :; do sleep 1000 & wait $!; done";

/// [`SLEEP_FOREVER`] for a shell nested in another's double quotes.
pub const SLEEP_FOREVER_NESTED: &str = r"while :; do sleep 1000 & wait \$!; done";

/// Past this, a run that should take milliseconds or seconds has hung.
pub const HANG: Duration = Duration::from_secs(60);

pub fn exeunt() -> &'static str {
    env!("CARGO_BIN_EXE_exeunt")
}

/// The static release build (`bash scripts/build`, which scripts/test runs first),
/// refused when it is missing or older than the sources.
pub fn static_binary() -> PathBuf {
    release_build("x86_64-unknown-linux-musl")
}

/// The static aarch64 build (`bash scripts/build`, which scripts/test runs first), and
/// the qemu that runs it on this machine.
pub fn aarch64_binary() -> (PathBuf, PathBuf) {
    let binary = release_build("aarch64-unknown-linux-musl");
    let qemu = PathBuf::from("/usr/bin/qemu-aarch64-static");
    assert!(qemu.exists(), "{} is missing: apt-get install qemu-user-static", qemu.display());
    (qemu, binary)
}

/// The release build for `target`, refused when it is missing or older than the sources.
fn release_build(target: &str) -> PathBuf {
    let build = "bash scripts/build (scripts/test does)";
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir");
    let binary = dir.join(target).join("release/exeunt");
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {build}", binary.display()));
    let newest_source = newest_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(built >= newest_source, "{} is older than the sources: {build}", binary.display());
    binary
}

/// When the newest file below `dir` was modified.
fn newest_file(dir: &Path) -> std::time::SystemTime {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| match e.file_type().ok()?.is_dir() {
            true => Some(newest_file(&e.path())),
            false => e.metadata().ok()?.modified().ok(),
        })
        .max()
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}

/// Fails, rather than skips, when the machine cannot run the tests.
pub fn require_pid_namespaces() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests run exeunt as PID 1 in a new PID namespace: run them as root (CI does)"
    );
    assert!(Path::new("/usr/bin/unshare").exists(), "unshare is missing: apt-get install util-linux");
}

/// A temporary directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("exeunt-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Writes `text` to `name` in the directory and returns its path as a string.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path.to_string_lossy().into_owned()
    }

    /// Makes a FIFO: a process that writes to it waits for one that reads, so two
    /// processes can meet without polling.
    pub fn fifo(&self, name: &str) -> String {
        let path = self.path(name);
        let c_path = std::ffi::CString::new(path.clone()).expect("no NUL");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo {path}");
        path
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A line of output and when the test saw it, counted from the start of the run.
#[derive(Debug, Clone)]
pub struct Line {
    pub stream: Stream,
    pub at: Duration,
    pub text: String,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub lines: Vec<Line>,
    pub elapsed: Duration,
}

impl Outcome {
    /// When the first line of `stream` containing `needle` was seen.
    pub fn time_of(&self, stream: Stream, needle: &str) -> Duration {
        self.lines
            .iter()
            .find(|l| l.stream == stream && l.text.contains(needle))
            .map(|l| l.at)
            .unwrap_or_else(|| panic!("no {stream:?} line with {needle:?}: {self:?}"))
    }
}

/// A running exeunt (or other program) whose output is being read.
pub struct Running {
    child: Child,
    lines: Receiver<Line>,
    seen: Vec<Line>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
    /// Started by unshare, whose one child is exeunt.
    under_unshare: bool,
}

/// Runs exeunt with `args` as PID 1 of a new PID namespace.
pub fn pid1(args: &[&str]) -> Running {
    require_pid_namespaces();
    let mut command = Command::new("unshare");
    command.args(["--pid", "--fork", "--mount-proc", "--kill-child"]).arg(exeunt()).args(args);
    under_unshare(start(command))
}

/// Runs exeunt as PID 1 of a new PID namespace, with extra environment variables.
pub fn pid1_env(env: &[(&str, &str)], args: &[&str]) -> Running {
    require_pid_namespaces();
    let mut command = Command::new("unshare");
    command.args(["--pid", "--fork", "--mount-proc", "--kill-child"]).arg(exeunt()).args(args);
    command.envs(env.iter().copied());
    under_unshare(start(command))
}

/// Runs exeunt as PID 1 of a new PID namespace, after `setup` has had its say on the
/// command (descriptors to inherit, say).
pub fn pid1_with(setup: impl FnOnce(&mut Command), args: &[&str]) -> Running {
    require_pid_namespaces();
    let mut command = Command::new("unshare");
    command.args(["--pid", "--fork", "--mount-proc", "--kill-child"]).arg(exeunt()).args(args);
    setup(&mut command);
    under_unshare(start(command))
}

/// `running`, started by unshare, whose one child is exeunt.
fn under_unshare(mut running: Running) -> Running {
    running.under_unshare = true;
    running
}

/// Runs `program` (exeunt under another name: a symlink to it) with `args` as PID 1 of a
/// new PID namespace, after `setup` has had its say on the command.
pub fn pid1_program(program: &Path, setup: impl FnOnce(&mut Command), args: &[&str]) -> Running {
    require_pid_namespaces();
    let mut command = Command::new("unshare");
    command.args(["--pid", "--fork", "--mount-proc", "--kill-child"]).arg(program).args(args);
    setup(&mut command);
    under_unshare(start(command))
}

/// Runs exeunt with `args` as an ordinary process (not PID 1).
pub fn plain(args: &[&str]) -> Running {
    let mut command = Command::new(exeunt());
    command.args(args);
    start(command)
}

/// Starts `command` with stdout and stderr read line by line in the background.
pub fn start(mut command: Command) -> Running {
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the command");
    let started = Instant::now();
    let (sender, lines) = channel();
    let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped stdout"));
    let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped stderr"));
    let readers = [(Stream::Stdout, stdout), (Stream::Stderr, stderr)]
        .into_iter()
        .map(|(stream, pipe)| {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for text in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if sender.send(Line { stream, at: started.elapsed(), text }).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    Running { child, lines, seen: Vec::new(), readers, started, under_unshare: false }
}

impl Running {
    /// Waits for a line of stdout that contains `needle` and returns it.
    pub fn expect_line(&mut self, needle: &str) -> String {
        self.expect(Stream::Stdout, needle)
    }

    /// Waits for a line of exeunt's log (stderr) that contains `needle`.
    pub fn expect_log(&mut self, needle: &str) -> String {
        self.expect(Stream::Stderr, needle)
    }

    fn expect(&mut self, stream: Stream, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.stream == stream && l.text.contains(needle)) {
            return line.text.clone();
        }
        let deadline = self.started + HANG;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.stream == stream && line.text.contains(needle) {
                        return line.text;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    panic!("no {stream:?} line with {needle:?} within {HANG:?}; saw {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let outcome = self.wait_inner(HANG);
                    panic!("output closed before a {stream:?} line with {needle:?}: {outcome:?}")
                }
            }
        }
    }

    /// The pid of exeunt as this test sees it: under unshare, unshare's one child.
    pub fn exeunt_pid(&self) -> i32 {
        let me = self.child.id();
        if !self.under_unshare {
            return me as i32;
        }
        *children_of(me as i32).first().expect("unshare has started exeunt")
    }

    /// Time since the run started, on the clock of the lines' `at`.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn signal(&self, signo: i32) {
        let pid = self.exeunt_pid();
        // SAFETY: kill takes plain integers.
        assert_eq!(unsafe { libc::kill(pid, signo) }, 0, "signal {signo} to exeunt (pid {pid})");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the end of the run, failing the test if it takes longer than `HANG`.
    pub fn finish(self) -> Outcome {
        self.finish_within(HANG)
    }

    /// Waits for the end of a run meant to last long, failing the test if it takes
    /// longer than `bound` from its start.
    pub fn finish_within(mut self, bound: Duration) -> Outcome {
        self.wait_inner(bound)
    }

    fn wait_inner(&mut self, bound: Duration) -> Outcome {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: pidfd_open takes a pid and flags; the result is an owned descriptor.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        assert!(pidfd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        let mut poll = libc::pollfd { fd: pidfd, events: libc::POLLIN, revents: 0 };
        let remaining = bound.saturating_sub(self.started.elapsed());
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, remaining.as_millis() as i32) };
        // SAFETY: the descriptor is ours.
        unsafe { libc::close(pidfd) };
        if ready != 1 {
            self.kill();
            panic!("the run did not end within {bound:?}; saw {:?}", self.seen);
        }
        let status = self.child.wait().expect("wait for the run");
        let elapsed = self.started.elapsed();
        // The output ends when the last process holding it is gone: a process left
        // behind would hold it open, and is a failure rather than a hang.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the run ended but a process left behind still holds its output; saw {:?}", self.seen)
                }
            }
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let join = |stream| {
            let lines: Vec<&str> = self.seen.iter().filter(|l| l.stream == stream).map(|l| l.text.as_str()).collect();
            lines.join("\n")
        };
        let (stdout, stderr) = (join(Stream::Stdout), join(Stream::Stderr));
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        Outcome { code, stdout, stderr, lines: std::mem::take(&mut self.seen), elapsed }
    }
}

impl Drop for Running {
    /// A test that fails half-way leaves nothing running: a leftover exeunt would hold
    /// names and ports that later tests reuse (mount-namespace inodes are reused).
    /// Under unshare, killing unshare kills its namespace (`--kill-child`).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// A role map's `[[process]]` running `script` with sh, plus `extra` lines. The script
/// reaches sh as it is written: each `$` is doubled, since the role map reads `$$` as
/// one `$` and `${VAR}` as exeunt's variable.
pub fn process(name: &str, role: &str, script: &str, extra: &str) -> String {
    let script = script.replace('$', "$$");
    format!("[[process]]\nname = \"{name}\"\nrole = \"{role}\"\ncommand = [\"sh\", \"-c\", {script:?}]\n{extra}\n\n")
}

/// A shell that runs until SIGTERM, then echoes `name got TERM` and exits 0. It kills
/// its `sleep` first: a child forked just then still holds the shell's TERM handler
/// until it execs, and would swallow the final sweep's SIGTERM.
pub fn until_term(name: &str, before: &str) -> String {
    format!("trap 'kill -9 $! 2>/dev/null; echo {name} got TERM; exit 0' TERM; {before} {SLEEP_FOREVER}")
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The test HTTP sidecar's command line.
pub fn http_sidecar(port: u16, not_ready: u32) -> String {
    assert!(
        Path::new("/usr/bin/python3").exists() || which("python3"),
        "python3 is missing: apt-get install python3 (the HTTP sidecar of the tests is a Python script)"
    );
    format!("exec python3 {}/tests/helpers/http_sidecar.py {port} {not_ready}", env!("CARGO_MANIFEST_DIR"))
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs exeunt as PID 1 to its end.
pub fn run_pid1(args: &[&str]) -> Outcome {
    pid1(args).finish()
}

/// The index of the first line of `text` that contains `needle`.
pub fn position(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in {text}"))
}

/// Counts the lines of `text` that contain `needle`.
pub fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// A number from a line `name: N` of /proc/PID/status (`VmRSS` in kB, a count of
/// context switches).
pub fn status_field(pid: i32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e} (the process is gone)"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no number for {name} in /proc/{pid}/status"))
}

/// The pids of `pid`'s children, as /proc lists them (none when it is gone).
pub fn children_of(pid: i32) -> Vec<i32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children.split_whitespace().map(|p| p.parse().expect("a pid")).collect()
}

/// Whether a process with this pid exists (zombies included) in this namespace.
pub fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The descriptors a child of the shell inherits, as `ls /proc/self/fd` lists them (with
/// the one ls opens to read the directory, the same everywhere). Not the shell's own:
/// dash moves descriptors around while it sets up redirections and pipelines.
pub fn list_fds(into: &str) -> String {
    format!("ls /proc/self/fd > {into}.raw; sort -n {into}.raw | tr '\\n' ' ' > {into}")
}

/// The directory of PostgreSQL's server programs (Debian's postgresql package).
pub fn postgresql_bin() -> std::path::PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok().into_iter().flatten().filter_map(|e| e.ok());
    versions
        .map(|e| e.path().join("bin"))
        .find(|bin| bin.join("postgres").exists())
        .expect("PostgreSQL is missing: apt-get install postgresql (scripts/test does)")
}

/// A new PostgreSQL cluster in `scratch`'s directory `data`, made by initdb as the
/// postgres user (who owns the scratch directory, as Debian has it), with superuser
/// `postgres` and `auth` (initdb's own options): the server programs' directory, and
/// the data directory.
pub fn postgresql_cluster(scratch: &Scratch, auth: &[&str]) -> (std::path::PathBuf, String) {
    let bin = postgresql_bin();
    let data = scratch.path("data");
    let chown = Command::new("chown").args(["-R", "postgres:postgres", &scratch.path("")]).status();
    assert!(chown.expect("chown").success());
    let initdb = Command::new("setpriv")
        .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
        .arg(bin.join("initdb"))
        .args(["-D", &data, "-U", "postgres"])
        .args(auth)
        .output()
        .expect("run initdb");
    assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
    (bin, data)
}

/// `exeunt ARGS` in the PID and mount namespaces of the exeunt with host pid `pid`, as
/// `kubectl exec` runs it: its exit code, stdout and stderr.
pub fn ask_in(pid: i32, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new("timeout")
        .args(["20", "nsenter", "-t", &pid.to_string(), "-m", "-p"])
        .arg(exeunt())
        .args(args)
        .output()
        .expect("run nsenter (util-linux) and timeout (coreutils)");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().expect("the client exited"), text(&output.stdout), text(&output.stderr))
}

/// Fails the test, saying what to install, when `program` is missing.
pub fn require(program: &str, package: &str) {
    assert!(Path::new(program).exists(), "{program} is missing: apt-get install {package} (scripts/test does)");
}
