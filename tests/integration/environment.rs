//! What a process starts with: env files, secrets read from files and directories,
//! `${VAR}` in the role map, resource limits, the umask, and commands looked up before
//! anything runs. Secrets appear in nothing exeunt writes.

use std::process::Command;

use crate::common;
use common::{Scratch, ask_in, exeunt, free_port, pid1_env, process, run_pid1};

#[test]
fn env_files_in_compose_format_reach_the_process_and_later_sources_win() {
    let scratch = Scratch::new("env-file");
    let shared = scratch.file("shared.env", "# for every process\nLEVEL=shared\nFROM_SHARED=yes\n");
    let own = scratch.file(
        "own.env",
        "export LEVEL=own\n\
         QUOTED='single $HOME \\n kept'\n\
         ESCAPED=\"tab\\there\"\n\
         BARE = spaced value # a comment\n\
         CERT=\"-----BEGIN-----\nline two\n-----END-----\"\n",
    );
    // Each variable on its own line, between markers, so that a multi-line value shows.
    let print = "for v in LEVEL FROM_SHARED QUOTED ESCAPED BARE CERT INHERITED FINAL; do \
                 printf '%s=[%s]\\n' \"$v\" \"$(printenv \"$v\")\"; done";
    let map = format!(
        "env_file = [\"{shared}\"]\n\n{}",
        process(
            "job",
            "primary",
            print,
            &format!("env_file = [\"{own}\"]\nenv = {{ FINAL = \"from env\", LEVEL = \"env\" }}")
        )
    );
    let outcome =
        pid1_env(&[("INHERITED", "kept"), ("LEVEL", "inherited")], &["-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let expected = "LEVEL=[env]\nFROM_SHARED=[yes]\nQUOTED=[single $HOME \\n kept]\nESCAPED=[tab\there]\n\
                    BARE=[spaced value]\nCERT=[-----BEGIN-----\nline two\n-----END-----]\nINHERITED=[kept]\nFINAL=[from env]";
    assert_eq!(outcome.stdout, expected);
}

#[test]
fn a_mounted_secret_directory_gives_one_variable_per_key_through_its_data_links() {
    let scratch = Scratch::new("env-dir");
    // The shape of a Kubernetes secret volume: the files in a dated directory, a
    // `..data` link to it, and a link per key into `..data`.
    let dir = scratch.path("secret");
    let dated = format!("{dir}/..2026_12_05_07_00_00.123");
    std::fs::create_dir_all(&dated).unwrap();
    std::fs::write(format!("{dated}/DB_USER"), "app\n").unwrap();
    std::fs::write(format!("{dated}/DB_PASSWORD"), "hunter2-from-the-volume").unwrap();
    std::os::unix::fs::symlink("..2026_12_05_07_00_00.123", format!("{dir}/..data")).unwrap();
    for key in ["DB_USER", "DB_PASSWORD"] {
        std::os::unix::fs::symlink(format!("..data/{key}"), format!("{dir}/{key}")).unwrap();
    }
    let print = "printf '%s|%s|%s\\n' \"$DB_USER\" \"$DB_PASSWORD\" \"$(env | grep -c '^\\.\\.' || true)\"";
    let map = process("job", "primary", print, &format!("env_dir = \"{dir}\""));
    let map = scratch.file("map.toml", &map);
    let outcome = run_pid1(&["-c", &map]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stdout, "app|hunter2-from-the-volume|0", "one trailing newline dropped, no ..data variable");
    let check = Command::new(exeunt()).args(["--check", &map]).output().expect("run exeunt --check");
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(shown.contains(&format!("env DB_PASSWORD=<from {dir}/DB_PASSWORD>")), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn variables_expand_in_commands_with_defaults_and_a_missing_one_is_exit_2_before_anything_runs() {
    let scratch = Scratch::new("expand");
    let started = scratch.path("started");
    let map = format!(
        "{}{}",
        process("side", "sidecar", &format!("touch {started}; {}", common::SLEEP_FOREVER), ""),
        "[[process]]\nname = \"job\"\nrole = \"primary\"\n\
         command = [\"sh\", \"-c\", \"echo port=$1 '$$x'\", \"sh\", \"${PORT:-8080}\"]\n"
    );
    let map = scratch.file("map.toml", &map);
    let unset = run_pid1(&["-c", &map]);
    assert_eq!((unset.code, unset.stdout.as_str()), (0, "port=8080 $x"), "{unset:?}");
    let set = pid1_env(&[("PORT", "9090")], &["-c", &map]).finish();
    assert_eq!((set.code, set.stdout.as_str()), (0, "port=9090 $x"), "{set:?}");
    // The sidecar may or may not have run as far as its touch before the primary ended.
    let _ = std::fs::remove_file(&started);

    let missing =
        scratch.file("missing.toml", &std::fs::read_to_string(&map).unwrap().replace("PORT:-8080", "MISSING"));
    let outcome = run_pid1(&["-c", &missing]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    let line = format!("exeunt: {missing}:10:11: command: ${{MISSING}}: MISSING is not set");
    assert!(outcome.stderr.starts_with(&line), "{}", outcome.stderr);
    assert!(!std::path::Path::new(&started).exists(), "the sidecar was started");
    let check = Command::new(exeunt()).args(["--check", &missing]).output().expect("run exeunt --check");
    assert_eq!(check.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&check.stderr).starts_with(&line));
}

/// A soft and hard limit, as /proc/PID/limits shows it: `Max open files  4096  4096  files`.
fn limit_line<'a>(limits: &'a str, name: &str) -> Vec<&'a str> {
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {limits}"));
    line[name.len()..].split_whitespace().take(2).collect()
}

/// Whether this process has CAP_SYS_RESOURCE, as /proc says.
fn has_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let effective = status.lines().find_map(|l| l.strip_prefix("CapEff:")).expect("a CapEff line").trim();
    u64::from_str_radix(effective, 16).expect("hex") & (1 << 24) != 0
}

/// Runs the role map `map` under an exeunt whose limit of open files is 1024 soft and
/// 2048 hard.
fn with_open_files_2048(map: &str) -> common::Outcome {
    common::pid1_with(
        |command| {
            // SAFETY: one setrlimit in the child before exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(command, || {
                    let limit = libc::rlimit { rlim_cur: 1024, rlim_max: 2048 };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
        &["-c", map],
    )
    .finish()
}

#[test]
fn limits_and_umask_are_set_in_the_process_that_runs_as_its_user() {
    let scratch = Scratch::new("limits");
    let (limits, made) = (scratch.path("limits"), scratch.path("made"));
    let chmod = Command::new("chmod").args(["777", &scratch.path("")]).status().expect("chmod");
    assert!(chmod.success());
    let job = format!("cat /proc/self/limits > {limits}; touch {made}; stat -c %a {made}; id -u");
    let map = |nofile: &str| {
        format!(
            "limits = {{ core = 0 }}\numask = \"0022\"\n\n{}",
            process(
                "job",
                "primary",
                &job,
                &format!("user = \"nobody\"\nlimits = {{ nofile = {nofile} }}\numask = \"0077\"")
            )
        )
    };
    // Under exeunt's own limits (open files: 20000 on this machine): both lowered to 4096.
    let outcome = run_pid1(&["-c", &scratch.file("map.toml", &map("4096"))]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(outcome.stdout, "600\n65534", "umask 0077, and the process ran as nobody");
    let shown = std::fs::read_to_string(&limits).unwrap();
    assert_eq!(limit_line(&shown, "Max open files"), ["4096", "4096"], "{shown}");
    assert_eq!(limit_line(&shown, "Max core file size"), ["0", "0"], "the top level's, {shown}");
    // Under 1024 soft and 2048 hard, a soft limit raised to the hard one: any user may.
    let outcome = with_open_files_2048(&scratch.file("soft.toml", &map("2048")));
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let shown = std::fs::read_to_string(&limits).unwrap();
    assert_eq!(limit_line(&shown, "Max open files"), ["2048", "2048"], "{shown}");
    // A hard limit above exeunt's own: set before the process becomes nobody, where
    // exeunt has CAP_SYS_RESOURCE; refused before anything runs where it has not.
    let raised = scratch.file("raised.toml", &map("4096"));
    let outcome = with_open_files_2048(&raised);
    if has_sys_resource() {
        assert_eq!(outcome.code, 0, "{outcome:?}");
        let shown = std::fs::read_to_string(&limits).unwrap();
        assert_eq!(limit_line(&shown, "Max open files"), ["4096", "4096"], "{shown}");
    } else {
        assert_eq!(outcome.code, 2, "{outcome:?}");
        let line = format!(
            "exeunt: {raised}:9:10: process job: limits.nofile: the hard limit 4096 is above exeunt's own, 2048, \
             and exeunt lacks CAP_SYS_RESOURCE to raise it"
        );
        assert_eq!(outcome.stderr, line);
    }
}

#[test]
fn a_limit_above_what_exeunt_may_set_or_a_soft_limit_above_its_hard_one_is_refused_naming_the_key() {
    let scratch = Scratch::new("limits-refused");
    let map =
        scratch.file("map.toml", &process("job", "primary", "true", "limits = { nofile = \"1024:99999999999\" }"));
    let outcome = run_pid1(&["-c", &map]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    let expected = format!("exeunt: {map}:5:10: process job: limits.nofile: the hard limit 99999999999 is above");
    assert!(outcome.stderr.starts_with(&expected), "{}", outcome.stderr);
    let map = scratch.file("soft.toml", &process("job", "primary", "true", "limits = { nice = \"3:1\", cpu = -1 }"));
    let outcome = run_pid1(&["-c", &map]);
    assert_eq!(outcome.code, 2, "{outcome:?}");
    assert_eq!(
        outcome.stderr,
        format!(
            "exeunt: {map}:5:10: limits.cpu: -1 is below 0\n\
             exeunt: {map}:5:10: limits.nice: the soft limit 3 is above the hard limit 1"
        )
    );
}

#[test]
fn missing_and_unrunnable_commands_are_exit_2_in_check_and_run_naming_process_and_command() {
    let scratch = Scratch::new("commands");
    let started = scratch.path("started");
    let script = scratch.file("script.sh", "#!/bin/sh\nexit 0\n");
    let cases = [
        ("[\"redis-servr\"]", "", "command 'redis-servr' is not found in PATH"),
        (&format!("[\"{script}\"]"), "", "is not executable"),
        ("[\"/etc\"]", "", "command '/etc' is a directory"),
        // `sh` is on exeunt's PATH, not on the PATH the process is given.
        (
            "[\"sh\", \"-c\", \"true\"]",
            "env = { PATH = \"/nonexistent\" }",
            "command 'sh' is not found in PATH /nonexistent",
        ),
    ];
    for (command, extra, expected) in cases {
        let map = format!(
            "{}[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = {command}\n{extra}\n",
            process("side", "sidecar", &format!("touch {started}; {}", common::SLEEP_FOREVER), "")
        );
        let map = scratch.file("map.toml", &map);
        let outcome = run_pid1(&["-c", &map]);
        assert_eq!(outcome.code, 2, "{command}: {outcome:?}");
        let line = outcome.stderr.lines().next().unwrap_or_default().to_string();
        assert!(line.contains(":10:11: process job: ") && line.contains(expected), "{command}: {line}");
        assert!(!std::path::Path::new(&started).exists(), "{command}: the sidecar was started");
        let check = Command::new(exeunt()).args(["--check", &map]).output().expect("run exeunt --check");
        assert_eq!(check.status.code(), Some(2), "{command}");
        assert_eq!(String::from_utf8_lossy(&check.stderr).lines().next(), Some(line.as_str()));
    }
    // A command that a task makes at run time is taken on trust when the map says so.
    let made = scratch.path("made-later");
    let map = format!(
        "{}[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"{made}\"]\ncommand_check = false\n",
        process(
            "side",
            "sidecar",
            &format!(
                "printf '#!/bin/sh\\necho ran\\n' > {made}.new; chmod +x {made}.new; mv {made}.new {made}; {}",
                common::SLEEP_FOREVER
            ),
            &format!("ready = {{ file = \"{made}\" }}")
        )
    );
    let outcome = run_pid1(&["-c", &scratch.file("trust.toml", &map)]);
    assert_eq!((outcome.code, outcome.stdout.as_str()), (0, "ran"), "{outcome:?}");
}

#[test]
fn a_postgresql_password_from_a_file_opens_the_database_and_appears_in_nothing_exeunt_writes() {
    const PASSWORD: &str = "pw-7Qx2-never-shown";
    let scratch = Scratch::new("secret-postgres");
    let (secret, gate) = (scratch.file("db-password", &format!("{PASSWORD}\n")), scratch.path("asked"));
    // The cluster's superuser password is set at initdb from the same file; clients
    // must give it (md5... scram-sha-256 over TCP).
    let (bin, data) = common::postgresql_cluster(&scratch, &["--auth=scram-sha-256", "--pwfile", &secret]);
    let port = free_port();
    let server =
        format!("exec {} -D {data} -k {data} -p {port} -c listen_addresses=127.0.0.1", bin.join("postgres").display());
    let ready = format!(
        "ready = {{ exec = [\"{}\", \"-h\", \"127.0.0.1\", \"-p\", \"{port}\"] }}",
        bin.join("pg_isready").display()
    );
    // The primary connects with the password it was given, waits until the test has
    // asked for the status, and says what the server answered.
    let job = format!(
        "psql -h 127.0.0.1 -p {port} -U postgres -X -tAc 'select 6*7'; until [ -e {gate} ]; do sleep 0.05; done"
    );
    let secret_env = format!("env = {{ PGPASSWORD = {{ file = \"{secret}\" }} }}");
    let map = format!(
        "{}{}",
        process(
            "db",
            "sidecar",
            &server,
            &format!(
                "user = \"postgres\"\ngrace_period = \"20s\"\n{ready}\nenv = {{ POSTGRES_PASSWORD = {{ file = \"{secret}\" }} }}"
            )
        ),
        process("job", "primary", &job, &secret_env),
    );
    let map = scratch.file("map.toml", &map);
    let check = Command::new(exeunt()).args(["--check", &map]).output().expect("run exeunt --check");
    let check_out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check_out.contains(&format!("env PGPASSWORD=<from {secret}>")), "{check_out}");
    let mut running = pid1_env(&[("EXEUNT_LOG", "debug")], &["-c", &map]);
    running.expect_line("42");
    let (code, status, _) = ask_in(running.exeunt_pid(), &["--status", "--json"]);
    assert_eq!(code, 0, "{status}");
    std::fs::write(&gate, "").unwrap();
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    for (what, text) in [
        ("--check", &check_out),
        ("--status --json", &status),
        ("stdout", &outcome.stdout),
        ("stderr", &outcome.stderr),
    ] {
        assert!(!text.contains(PASSWORD), "{what} shows the password: {text}");
    }
}
