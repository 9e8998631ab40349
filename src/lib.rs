//! exeunt: an init for containers and pods that run one primary process next to
//! sidecars. It starts them in order, reaps zombies, forwards signals, stops the
//! sidecars once the primaries are done, and exits with the primaries' status.
//!
//! The modules follow a run from start to end: [`cli`] reads the command line and
//! [`rolemap`] the role map; [`resolve`] makes them, with kubexit's variables and the
//! user database, into a [`plan::Plan`]. [`signals`] blocks the signals and opens
//! their inbox; [`supervisor`] decides, in the words of [`events`]; [`event_loop`]
//! waits on the sources that [`world`] holds (signals, the [`reaper`]'s children,
//! [`checks`], the [`pod`]) and carries the decisions out, [`spawn`] starting processes.

pub mod activation;
pub mod checks;
pub mod cli;
pub mod control;
pub mod dotenv;
pub mod duration;
pub mod event_loop;
pub mod events;
pub mod expand;
pub mod json;
pub mod logger;
pub mod notify;
pub mod outlet;
pub mod output;
pub mod plan;
pub mod pod;
pub mod quoted;
pub mod reaper;
pub mod resolve;
pub mod rolemap;
pub mod signals;
pub mod signo;
pub mod sink;
pub mod spawn;
pub mod supervisor;
pub mod timer;
pub mod utc;
pub mod world;

use std::ffi::OsString;
use std::io::Write;

use log::{debug, info};

use cli::{Invocation, Options};
use logger::Level;

/// Exit code for a bad command line or role map.
pub const USAGE_ERROR: i32 = 2;
/// Exit code when exeunt cannot set itself up.
pub const SETUP_ERROR: i32 = 1;

/// What `--version` says under every name exeunt is started by, in the form Docker
/// reads from its init (`NAME VERSION - git.COMMIT`): `docker info` shows the commit.
/// The commit is `unknown` when the build could not tell it.
pub const VERSION: &str = concat!("exeunt ", env!("CARGO_PKG_VERSION"), " - git.", env!("EXEUNT_COMMIT"), "\n");

/// Runs exeunt with `args` (the program name first) and returns its exit code.
pub fn main(args: &[OsString]) -> i32 {
    // `exeunt install PATH`, and only that shape: `exeunt install -m 755 a b` still runs
    // coreutils' install as the primary, as tini would.
    if let [_, verb, dir] = args
        && verb == "install"
    {
        return install(std::path::Path::new(dir));
    }
    let env = |name: &str| std::env::var_os(name);
    let words = args.get(1..).unwrap_or_default();
    // Started by the name dumb-init (a symlink or a copy), exeunt takes its command line.
    let name = args.first().and_then(|a| std::path::Path::new(a).file_name());
    if name.is_some_and(|n| n == "dumb-init") {
        return match cli::parse_dumb_init(words, &env) {
            Ok(Invocation::Run(options)) => run(options, &env),
            Ok(Invocation::Version) => say(VERSION),
            Ok(Invocation::Help | Invocation::Check(_) | Invocation::Ask(..)) => say(cli::DUMB_INIT_USAGE),
            // dumb-init's own code for a bad command line.
            Err(e) => complain(SETUP_ERROR, &e.to_string()),
        };
    }
    match cli::parse(words, &env) {
        Ok(Invocation::Help) => say(cli::USAGE),
        Ok(Invocation::Version) => say(VERSION),
        Ok(Invocation::Check(options)) => check(&options, &env),
        Ok(Invocation::Ask(request, options)) => ask(&request, &options),
        Ok(Invocation::Run(options)) => run(options, &env),
        Err(e) => complain(USAGE_ERROR, &e.to_string()),
    }
}

fn run(options: Options, env: &dyn Fn(&str) -> Option<OsString>) -> i32 {
    // Without a role map or a pod, exeunt stands in for tini, which is quiet unless asked.
    let level = |default: Level| options.log.level.unwrap_or(default).raised(options.verbose);
    logger::init(
        &options.log,
        level(if options.config.is_some() { Level::Info } else { Level::Warn }),
        options.log_format,
    );
    let resolve::Resolved { plan, kubexit_api_variables } = match resolve::resolve(&options, env) {
        Ok(resolved) => resolved,
        Err(e) => return complain(USAGE_ERROR, &e.to_string()),
    };
    let log_format = plan.log_format.unwrap_or(options.log_format);
    if plan.pod.is_some() {
        // A container of a pod says what it waits for and why it stops, as kubexit did.
        logger::init(&options.log, level(Level::Info), log_format);
    }
    logger::set_format(log_format);
    if kubexit_api_variables {
        info!("KUBEXIT_POD_NAME and KUBEXIT_NAMESPACE are not needed: readiness comes from the graveyard");
    }
    let is_pid1 = std::process::id() == 1;
    let (inbox, inherited) = match take_over(&plan, &options, is_pid1) {
        Ok(taken) => taken,
        Err(code) => return code,
    };
    let (mut poller, children) = match (event_loop::Poller::new(), reaper::Reaper::open()) {
        (Ok(poller), Ok(children)) => (poller, children),
        (Err(e), _) | (_, Err(e)) => return complain(SETUP_ERROR, &format!("cannot set up the event loop: {e}")),
    };
    let launcher = spawn::Launcher::new(&plan, inherited, is_pid1);
    let graveyard = match &plan.pod {
        Some(pod) => match pod::graveyard::Graveyard::open(pod) {
            Ok(graveyard) => Some(graveyard),
            Err(e) => return complain(SETUP_ERROR, &e.to_string()),
        },
        None => None,
    };
    let mut world = match world::Os::new(&plan, launcher, inbox, children, graveyard, &poller) {
        Ok(world) => world,
        Err(e) => return complain(SETUP_ERROR, &format!("cannot set up the event loop: {e}")),
    };
    // Nothing above started a process; from here on, nothing may make exeunt give up.
    let known = world.known();
    let mut supervisor = supervisor::Supervisor::new(&plan, event_loop::now());
    let code = event_loop::run(&mut supervisor, &mut world, &mut poller, known);
    // The processes' last lines, and exeunt's own, which say why it stopped; streams
    // that take none of them in this time do not keep the container from ending.
    let until = std::time::Instant::now() + output::LAST_LINES_WAIT;
    world.finish(until);
    sink::drain(until);
    world.leave();
    // The kernel takes back descriptors and memory at exit in one go, sooner than
    // dropping the world, the plan and the poller piece by piece would: the container
    // ends that much earlier.
    std::process::exit(code)
}

/// What exeunt sets up for itself before it starts anything: the parent-death signal,
/// the subreaper, its signals, the descriptors of socket activation and the terminal.
/// An error is told here, and its exit code returned.
fn take_over(
    plan: &plan::Plan,
    options: &Options,
    is_pid1: bool,
) -> Result<(signals::SignalInbox, signals::Inherited), i32> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Err(complain(SETUP_ERROR, &format!("{what}: {e}")));
    if let Some(signo) = options.parent_death_signal {
        // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signo.0, 0, 0, 0) } != 0 {
            return fail("cannot set the parent-death signal", &std::io::Error::last_os_error());
        }
    }
    // dumb-init adopts nothing when it is not PID 1: a script's background processes
    // are not its to wait for.
    if !is_pid1 && !plan.exit_with_primary {
        match reaper::become_subreaper() {
            Ok(()) => debug!("not PID 1: registered as child subreaper"),
            Err(e) => return fail("cannot register as child subreaper", &e),
        }
    }
    let (mut inbox, inherited) = match signals::SignalInbox::open(plan.forward_faults) {
        Ok(opened) => opened,
        Err(e) => return fail("cannot set up signal handling", &e),
    };
    if plan.sidecar_container {
        inbox.take_carried_status(pod::peer::check);
    }
    if let Some(activation) = &plan.activation {
        let missing = activation.keep_from_children();
        if !missing.is_empty() {
            log::warn!(
                "socket activation: LISTEN_FDS says {} descriptors, but {missing:?} are not open",
                activation.count
            );
        }
        info!("socket activation: descriptors 3 to {} go to the first primary alone", 2 + activation.count);
    }
    if plan.setsid {
        // The child's new session takes the terminal. The SIGHUP and SIGCONT the kernel
        // sends the old session for this count as sent by exeunt itself, and are not
        // passed on.
        signals::leave_terminal();
    }
    Ok((inbox, inherited))
}

/// The event loop drives the supervisor through the loop's own small interface; the
/// supervisor knows nothing of the loop, nor the loop of the supervisor.
impl event_loop::Decide for supervisor::Supervisor<'_> {
    fn start(&mut self, now: events::Time) -> Vec<events::Action> {
        supervisor::Supervisor::start(self, now)
    }

    fn handle(&mut self, event: events::Event, now: events::Time) -> Vec<events::Action> {
        supervisor::Supervisor::handle(self, event, now)
    }

    fn next_deadline(&self) -> Option<events::Time> {
        supervisor::Supervisor::next_deadline(self)
    }
}

/// `--check`: resolves the role map of `-c` (with COMMAND as its primary), or each role
/// map named on the command line, as a run would, and prints the plans.
fn check(options: &Options, env: &dyn Fn(&str) -> Option<OsString>) -> i32 {
    let runs: Vec<Options> = match &options.config {
        Some(_) => vec![options.clone()],
        None => options
            .command
            .iter()
            .map(|file| Options { config: Some(file.into()), command: Vec::new(), ..options.clone() })
            .collect(),
    };
    if runs.is_empty() {
        return complain(USAGE_ERROR, "--check needs a role map: -c FILE or files as arguments (see exeunt --help)");
    }
    let mut code = 0;
    for run in runs {
        let path = run.config.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
        match resolve::resolve(&run, env) {
            Ok(resolved) => {
                say(&format!("{path}: ok\n{}", resolved.plan));
            }
            Err(e) => code = complain(USAGE_ERROR, &e.to_string()),
        }
    }
    code
}

/// `--status` and the other client forms: asks the exeunt of this container, prints its
/// answer, and exits 0 for yes or done, 1 for no, 2 for a request it did not take.
fn ask(request: &events::Request, options: &Options) -> i32 {
    // Where it listens: as the role map says, when one is given (-c or EXEUNT_CONFIG),
    // else as EXEUNT_CONTROL_SOCKET says, else at the default for this container.
    let configured = match &options.config {
        Some(path) => match rolemap::load(path, None, &|key| std::env::var_os(key)).or_else(|e| {
            rolemap::load(path, Some(&[OsString::from("true")]), &|key| std::env::var_os(key)).map_err(|_| e)
        }) {
            Ok(plan) => plan.control_socket.or_else(|| options.control_socket.clone()),
            Err(e) => return complain(USAGE_ERROR, &e.to_string()),
        },
        None => options.control_socket.clone(),
    };
    let address = match control::address(configured.as_ref()) {
        Ok(Some(address)) => address,
        Ok(None) => return complain(SETUP_ERROR, &format!("{}: the control socket is off", control::client::NOBODY)),
        Err(e) => return complain(SETUP_ERROR, &format!("{}: {e}", control::client::NOBODY)),
    };
    match control::client::ask(&address, request) {
        Ok(answer) => {
            let code = match answer.outcome {
                events::Outcome::Ok => 0,
                events::Outcome::No => 1,
                events::Outcome::Error => USAGE_ERROR,
            };
            if code == 0 {
                say(&answer.body);
            } else {
                let _ = std::io::stderr().write_all(answer.body.as_bytes());
            }
            code
        }
        Err(e) => complain(SETUP_ERROR, &e),
    }
}

/// `exeunt install PATH`: copies the running binary to PATH/exeunt when PATH is a
/// directory, else to PATH itself (`exeunt install /kubexit/kubexit` takes kubexit's
/// place). For an init container that puts exeunt into a shared volume: sidecar images
/// often have no shell or cp. The copy is written beside its place and renamed into it,
/// so that a container starting meanwhile never runs half a binary.
fn install(path: &std::path::Path) -> i32 {
    use std::os::unix::fs::PermissionsExt;
    let target = if path.is_dir() { path.join("exeunt") } else { path.to_path_buf() };
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let temporary = dir.join(format!(".exeunt.{}.tmp", std::process::id()));
    let copied = std::fs::copy("/proc/self/exe", &temporary)
        .and_then(|_| std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755)))
        .and_then(|()| std::fs::rename(&temporary, &target));
    match copied {
        Ok(()) => say(&format!("installed exeunt at {}\n", target.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            complain(SETUP_ERROR, &format!("install: cannot copy exeunt to {}: {e}", target.display()))
        }
    }
}

/// Prints to stdout; a closed stdout is not worth a crash.
fn say(text: &str) -> i32 {
    let _ = std::io::stdout().write_all(text.as_bytes());
    0
}

/// Prints `exeunt: message` to stderr (a JSON line when the log is JSON) and returns
/// `code`.
/// Says `message` as exeunt's errors are said, one line (or JSON object) for each of
/// its lines, and returns `code`.
fn complain(code: i32, message: &str) -> i32 {
    let lines: Vec<u8> = message.lines().flat_map(logger::error_line).collect();
    let _ = std::io::stderr().write_all(&lines);
    code
}
