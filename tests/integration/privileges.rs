//! `user = "..."`: the process runs with that user's ids and none of exeunt's
//! supplementary groups; a change exeunt cannot make is refused before anything runs.

use crate::common;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{Scratch, exeunt, process, start};

/// Runs exeunt with `args`, started with supplementary groups 4 and 27 (as root).
fn with_groups(args: &[&str]) -> common::Outcome {
    let mut command = Command::new(exeunt());
    command.args(args);
    // SAFETY: setgroups between fork and exec, on a constant list.
    unsafe {
        command.pre_exec(|| {
            let groups: [libc::gid_t; 2] = [4, 27];
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    start(command).finish()
}

/// The Uid, Gid and Groups lines of /proc/self/status, printed by a process `name`.
fn ids(name: &str) -> String {
    format!("grep -E '^(Uid|Gid|Groups):' /proc/self/status | sed 's/^/{name} /'")
}

fn line<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    let line = stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in {stdout}"));
    line[prefix.len()..].split_whitespace().collect()
}

#[test]
fn user_sets_gid_and_uid_and_drops_supplementary_groups() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test changes users: run it as root (CI does)");
    let scratch = Scratch::new("user-drop");
    let printed = scratch.path("printed");
    let map = [
        // Ready once it has printed: the primaries are quick, and its stop would come
        // before its lines otherwise.
        process(
            "as-root",
            "sidecar",
            &format!("{}; touch {printed}; exec sleep 1000", ids("root")),
            &format!("ready = {{ file = \"{printed}\" }}"),
        ),
        process("as-nobody", "primary", &ids("nobody"), "user = \"nobody\""),
        process("as-daemon-adm", "primary", &ids("daemon"), "user = \"daemon:4\""),
    ]
    .concat();
    let outcome = with_groups(&["-c", &scratch.file("map.toml", &map)]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let out = &outcome.stdout;
    // Real, effective, saved and filesystem ids: all four changed.
    assert_eq!(line(out, "nobody Uid:"), ["65534"; 4]);
    assert_eq!(line(out, "nobody Gid:"), ["65534"; 4], "the user's own group from /etc/passwd");
    assert!(line(out, "nobody Groups:").is_empty(), "exeunt's groups 4 and 27 are dropped: {out}");
    assert_eq!(line(out, "daemon Uid:"), ["1"; 4]);
    assert_eq!(line(out, "daemon Gid:"), ["4"; 4], "the group given after the colon");
    assert!(line(out, "daemon Groups:").is_empty(), "{out}");
    // Without `user`, a process keeps exeunt's ids and groups.
    assert_eq!(line(out, "root Uid:"), ["0"; 4]);
    assert_eq!(line(out, "root Groups:"), ["4", "27"]);
}

#[test]
fn user_change_is_refused_when_exeunt_is_not_root() {
    let scratch = Scratch::new("user-not-root");
    let map = scratch.file("map.toml", &process("job", "primary", "echo started", "user = \"daemon\""));
    let mut command = Command::new(exeunt());
    command.args(["-c", &map]).uid(65534).gid(65534);
    let outcome = start(command).finish();
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(
        outcome.stderr.trim(),
        format!("exeunt: {map}:5:8: process job: user = \"daemon\" needs exeunt to run as root (it runs as uid 65534)")
    );
    assert!(!outcome.stdout.contains("started"), "nothing runs: {outcome:?}");
}

#[test]
fn user_sets_home_user_and_logname_from_the_passwd_entry_unless_env_sets_them() {
    let scratch = Scratch::new("user-home");
    let say = |name: &str| format!("echo {name} $HOME $USER $LOGNAME");
    let map = [
        process("nobody", "primary", &say("nobody"), "user = \"nobody\""),
        process("given", "primary", &say("given"), "user = \"nobody\"\nenv = { HOME = \"/srv\", USER = \"svc\" }"),
        process("numeric", "primary", &say("numeric"), "user = \"4242\""),
    ]
    .concat();
    let mut command = Command::new(exeunt());
    command
        .args(["-c", &scratch.file("map.toml", &map)])
        .env("HOME", "/root")
        .env("USER", "root")
        .env("LOGNAME", "root");
    let outcome = start(command).finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let out = &outcome.stdout;
    assert_eq!(line(out, "nobody "), ["/nonexistent", "nobody", "nobody"], "{out}");
    assert_eq!(line(out, "given "), ["/srv", "svc", "nobody"], "the role map's env wins: {out}");
    assert_eq!(line(out, "numeric "), ["/root", "root", "root"], "no passwd entry: exeunt's own: {out}");
}

#[test]
fn a_workdir_the_user_cannot_enter_is_a_workdir_error_naming_the_dir_and_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = common::Scratch::new("denied-workdir");
    let private = scratch.path("private");
    std::fs::create_dir(&private).expect("mkdir");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let map = scratch.file(
        "map.toml",
        &format!("[[process]]\nname = \"web\"\nrole = \"primary\"\ncommand = [\"/bin/echo\", \"hi\"]\nuser = \"nobody\"\nworkdir = \"{private}\"\n"),
    );
    let expected =
        format!("exeunt: {map}:6:11: process web: workdir '{private}' cannot be entered by user nobody (uid 65534)");
    for args in [vec!["--check", map.as_str()], vec!["-c", map.as_str()]] {
        let outcome = common::run_pid1(&args);
        assert_eq!(outcome.code, 2, "{args:?}: {outcome:?}");
        assert_eq!(outcome.stderr.trim(), expected, "{args:?}");
        assert!(!outcome.stdout.contains("hi"), "nothing ran: {outcome:?}");
    }
}
