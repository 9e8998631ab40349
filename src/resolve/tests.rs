use std::path::PathBuf;
use std::time::Duration;

use super::*;

const SEC: Duration = Duration::from_secs(1);

/// A role map written to a scratch file, and options that run it.
struct Map(PathBuf);

impl Map {
    fn new(test: &str, text: &str) -> Map {
        let path = std::env::temp_dir().join(format!("exeunt-resolve-{test}-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the role map");
        Map(path)
    }

    fn options(&self) -> Options {
        Options { config: Some(self.0.clone()), ..Options::default() }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
    move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
}

const JOB: &str = "[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"true\"]\n";

#[test]
fn an_explicit_match_timeout_wins_over_kubexit_birth_timeout() {
    let map = Map::new("match", &format!("match_timeout = \"5s\"\n{JOB}"));
    let vars = env(&[("KUBEXIT_NAME", "app"), ("KUBEXIT_BIRTH_TIMEOUT", "60s")]);
    let plan = resolve(&map.options(), &vars).expect("valid").plan;
    assert_eq!(plan.match_timeout(), 5 * SEC);
    assert_eq!(plan.pod.as_ref().map(|p| p.birth_timeout), Some(60 * SEC), "the birth deps still get 60 s");
}

#[test]
fn without_match_timeout_the_pods_birth_timeout_applies_kubexits_first() {
    let map = Map::new("birth", &format!("[pod]\nname = \"app\"\nbirth_timeout = \"10s\"\n{JOB}"));
    assert_eq!(resolve(&map.options(), &env(&[])).expect("valid").plan.match_timeout(), 10 * SEC);
    let vars = env(&[("KUBEXIT_BIRTH_TIMEOUT", "60s")]);
    assert_eq!(resolve(&map.options(), &vars).expect("valid").plan.match_timeout(), 60 * SEC);
    let plain = Map::new("plain", JOB);
    assert_eq!(resolve(&plain.options(), &env(&[])).expect("valid").plan.match_timeout(), 30 * SEC);
}

#[test]
fn grace_comes_from_the_command_line_then_kubexit_then_the_role_map() {
    let map = Map::new("grace", &format!("grace_period = \"3s\"\n{JOB}"));
    let grace = |options: &Options, vars: &dyn Fn(&str) -> Option<OsString>| {
        let plan = resolve(options, vars).expect("valid").plan;
        (plan.grace_period, plan.processes[0].grace_period)
    };
    assert_eq!(grace(&map.options(), &env(&[])), (3 * SEC, 3 * SEC));
    assert_eq!(grace(&map.options(), &env(&[("KUBEXIT_GRACE_PERIOD", "7s")])), (7 * SEC, 7 * SEC));
    let flag = Options { grace: Some(SEC), ..map.options() };
    assert_eq!(grace(&flag, &env(&[("KUBEXIT_GRACE_PERIOD", "7s")])), (SEC, SEC));
    let kubexit_only = Options { command: vec!["true".into()], ..Options::default() };
    assert_eq!(grace(&kubexit_only, &env(&[("KUBEXIT_NAME", "app")])), (30 * SEC, 30 * SEC), "kubexit's default");
    assert_eq!(grace(&kubexit_only, &env(&[])), (DEFAULT_GRACE, DEFAULT_GRACE));
}

#[test]
fn kubexit_variables_unknown_users_and_missing_workdirs_are_refused() {
    let map = Map::new("refused", JOB);
    let err = resolve(&map.options(), &env(&[("KUBEXIT_NAME", "../x")])).expect_err("a path").to_string();
    assert!(err.starts_with("KUBEXIT_NAME: '../x' is not a valid name"), "{err}");
    let user = Map::new("user", &format!("{JOB}user = \"no-such-user-here\"\n"));
    let err = resolve(&user.options(), &env(&[])).expect_err("no such user").to_string();
    let place = user.0.display();
    assert_eq!(err, format!("{place}:5:8: process job: user 'no-such-user-here' does not exist in /etc/passwd"));
    let dir = Map::new("workdir", &format!("{JOB}workdir = \"/no/such/dir\"\n"));
    let err = resolve(&dir.options(), &env(&[])).expect_err("no such dir").to_string();
    assert_eq!(err, format!("{}:5:11: process job: workdir '/no/such/dir' is not a directory", dir.0.display()));
}

#[test]
fn a_user_change_needs_root() {
    let user = UserSpec { user: "4242".into(), group: None };
    let err = account(&user, 65534).expect_err("not root");
    assert_eq!(err, Problem::NeedsRoot { user: "4242".into(), uid: 65534 });
    let problem = ProcessError { place: Some("m:5:8".into()), process: Some("job".into()), problem: err };
    assert_eq!(
        problem.to_string(),
        "m:5:8: process job: user = \"4242\" needs exeunt to run as root (it runs as uid 65534)"
    );
    let account = account(&user, 0).expect("root may");
    assert_eq!((account.uid, account.gid), (4242, 4242));
}

#[test]
fn every_process_that_cannot_run_is_told_at_once_with_its_place() {
    let text = format!(
        "{JOB}user = \"no-such-user-here\"\n\n[[process]]\nname = \"db\"\nrole = \"sidecar\"\ncommand = [\"true\"]\nworkdir = \"/no/such/dir\"\n"
    );
    let map = Map::new("every", &text);
    let err = resolve(&map.options(), &env(&[])).expect_err("two problems").to_string();
    let path = map.0.display();
    assert_eq!(
        err,
        format!(
            "{path}:5:8: process job: user 'no-such-user-here' does not exist in /etc/passwd\n\
             {path}:11:11: process db: workdir '/no/such/dir' is not a directory"
        )
    );
}

#[test]
fn users_resolve_by_number_or_name() {
    let user = |user: &str, group: Option<&str>| look_up(&UserSpec { user: user.into(), group: group.map(Into::into) });
    let root = Account { uid: 0, gid: 0, name: Some("root".into()), home: Some("/root".into()) };
    assert_eq!(user("root", None), Ok(root));
    assert_eq!(user("4242", Some("4343")), Ok(Account { uid: 4242, gid: 4343, name: None, home: None }));
    assert_eq!(user("no-such-user-here", None), Err("user 'no-such-user-here' does not exist in /etc/passwd".into()));
    assert_eq!(
        user("0", Some("no-such-group-here")),
        Err("group 'no-such-group-here' does not exist in /etc/group".into())
    );
}

/// A scratch directory for the resolver's file tests.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exeunt-resolve-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("make a scratch directory");
    dir
}

#[test]
fn secrets_lose_one_trailing_newline_and_files_that_are_not_regular_or_too_large_are_named() {
    let dir = scratch("secrets");
    std::fs::write(dir.join("two-lines"), "a\nb\n\n").unwrap();
    assert_eq!(environment::read_secret(&dir.join("two-lines")), Ok("a\nb\n".to_string()));
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(environment::read_secret(&fifo), Err("is not a regular file".to_string()), "and it did not block");
    std::fs::write(dir.join("big"), vec![b'x'; environment::MAX_FILE as usize + 1]).unwrap();
    assert_eq!(environment::read_secret(&dir.join("big")), Err("is larger than 1048576 bytes".to_string()));
    std::fs::write(dir.join("nul"), "a\0b").unwrap();
    assert!(environment::read_secret(&dir.join("nul")).unwrap_err().contains("NUL"));
    let mut vars = Vec::new();
    let err = environment::read_env_dir(&dir, &mut vars).unwrap_err();
    assert_eq!(err, format!("env_dir {0}: {0}/big is larger than 1048576 bytes", dir.display()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn commands_are_looked_up_in_the_processs_own_path_from_its_workdir() {
    let dir = scratch("commands");
    let tool = dir.join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    let mut spec = ProcessSpec::new("job", Role::Primary, vec![]);
    let look = |spec: &ProcessSpec, program: &str| {
        command::look_up(spec, OsString::from(program).as_os_str(), Some(OsString::from("/usr/bin:/bin").as_os_str()))
    };
    assert!(look(&spec, "sh").is_ok(), "found on the inherited PATH");
    assert_eq!(look(&spec, "tool"), Err("command 'tool' is not found in PATH /usr/bin:/bin".to_string()));
    spec.env.push(EnvVar { key: "PATH".into(), value: dir.display().to_string(), from: None });
    let err = look(&spec, "tool").unwrap_err();
    assert_eq!(err, format!("command 'tool' ({}) is not executable", tool.display()));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(look(&spec, "tool"), Ok(tool.clone()));
    assert!(look(&spec, "sh").is_err(), "the process's own PATH replaces exeunt's");
    spec.workdir = Some(dir.clone());
    assert_eq!(look(&spec, "./tool"), Ok(dir.join("./tool")), "a relative path from the workdir");
    // Executable by its owner alone: not by another user.
    spec.account = Some(Account { uid: 4242, gid: 4242, name: None, home: None });
    assert_eq!(look(&spec, "./tool"), Err("command './tool' is not executable by uid 4242".to_string()));
    std::fs::remove_dir_all(&dir).unwrap();
}
