//! The role map's rules, each pinned on a role map's text.

use super::*;
use crate::plan::{
    Check, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_READY_TIMEOUT, Endpoint, OnExit, OnTimeout, UserSpec,
};
use crate::signo::{SIGTERM, Signo};

const FULL: &str = r#"
grace_period = "5s"

[[process]]
name = "forwarder"
role = "primary"
command = ["/app/forwarder", "--once"]

[[process]]
name = "queue"
role = "sidecar"
command = ["/usr/bin/queue"]
stop_signal = "SIGINT"
grace_period = "3s"
env = { QUEUE_URL = "amqp://localhost" }
workdir = "/srv"
user = "1000:1000"
"#;

/// Reads a role map with no variables in the environment.
fn parse(text: &str, origin: &str, command: Option<&[OsString]>) -> Result<RoleMap, RoleMapError> {
    super::parse(text, origin, command, &|_| None)
}

fn error(text: &str) -> String {
    parse(text, "map.toml", None).expect_err("should be refused").to_string()
}

#[test]
fn full_role_map_becomes_a_plan_in_start_order() {
    let plan = parse(FULL, "map.toml", None).expect("valid");
    assert_eq!(plan.grace_period, Duration::from_secs(5));
    let [queue, forwarder] = plan.processes.as_slice() else { panic!("two processes") };
    assert_eq!((queue.name.as_str(), queue.role), ("queue", Role::Sidecar));
    assert_eq!(queue.stop_signal, Signo(libc::SIGINT));
    assert_eq!(queue.grace_period, Duration::from_secs(3));
    assert_eq!(queue.variables.vars, [("QUEUE_URL".to_string(), SaidValue::Text("amqp://localhost".to_string()))]);
    assert_eq!(queue.workdir.as_deref(), Some(Path::new("/srv")));
    assert_eq!(
        queue.user.as_ref().map(|(user, _)| user),
        Some(&UserSpec { user: "1000".into(), group: Some("1000".into()) })
    );
    assert_eq!((forwarder.name.as_str(), forwarder.role), ("forwarder", Role::Primary));
    assert_eq!(forwarder.command, ["/app/forwarder", "--once"]);
    assert_eq!(forwarder.stop_signal, SIGTERM);
    assert_eq!(forwarder.grace_period, Duration::from_secs(5));
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = "[[process]]\nname = \"a\"\nrole = \"primary\"\ncomand = [\"x\"]\n";
    let err = error(text);
    assert!(err.starts_with("map.toml:4:1: unknown field 'comand', expected one of"), "{err}");
}

#[test]
fn duplicate_name_points_at_both_places() {
    let text = "[[process]]\nname = \"a\"\nrole = \"primary\"\ncommand = [\"x\"]\n\n[[process]]\nname = \"a\"\nrole = \"sidecar\"\ncommand = [\"y\"]\n";
    assert_eq!(error(text), "map.toml:7:8: name: 'a' is already the name of the process on line 2");
}

#[test]
fn missing_primary_is_refused_unless_a_command_is_given() {
    let text = "[[process]]\nname = \"q\"\nrole = \"sidecar\"\ncommand = [\"x\"]\n";
    assert!(error(text).starts_with("map.toml:3:8: role: no process has role = \"primary\""));
    let plan = parse(text, "map.toml", Some(&["/bin/job".into()])).expect("command becomes the primary");
    let primary = &plan.processes[1];
    assert_eq!((primary.name.as_str(), primary.role), ("main", Role::Primary));
    assert_eq!(primary.command, ["/bin/job"]);
    assert_eq!(error(""), "map.toml:1:1: process: the role map lists no [[process]]");
}

#[test]
fn command_line_replaces_the_one_primary_command() {
    let plan = parse(FULL, "map.toml", Some(&["sh".into(), "-c".into(), "exit 3".into()])).expect("valid");
    assert_eq!(plan.processes[1].command, ["sh", "-c", "exit 3"]);
    let two = "[[process]]\nname = \"a\"\nrole = \"primary\"\ncommand = [\"x\"]\n[[process]]\nname = \"b\"\nrole = \"primary\"\ncommand = [\"y\"]\n";
    let err = parse(two, "m", Some(&["z".into()])).expect_err("ambiguous").to_string();
    assert!(err.starts_with("m:7:8: role: a command given on the command line"), "{err}");
}

#[test]
fn bad_values_are_named_with_key_and_line() {
    let base = "[[process]]\nname = \"a\"\nrole = \"primary\"\n";
    let cases = [
        ("command = []\n", "map.toml:4:11: command: must name a program"),
        ("command = [\"\"]\n", "map.toml:4:11: command: the program name is empty"),
        ("command = [\"x\"]\ngrace_period = \"ten\"\n", "map.toml:5:16: grace_period: invalid duration 'ten'"),
        ("command = [\"x\"]\nstop_signal = \"SIGFOO\"\n", "map.toml:5:15: stop_signal: unknown signal 'SIGFOO'"),
        ("command = [\"x\"]\nuser = \"a:b:c\"\n", "map.toml:5:8: user: 'a:b:c' is not USER[:GROUP]"),
        ("command = [\"x\"]\nworkdir = \"\"\n", "map.toml:5:11: workdir: must be a non-empty path"),
        ("command = [\"x\"]\nenv = { \"A=B\" = \"c\" }\n", "map.toml:5:7: env: 'A=B' cannot be set"),
        (
            "command = \"x\"\n",
            "map.toml:4:11: command: expected a list such as [\"nginx\", \"-g\", \"daemon off;\"], not string \"x\"",
        ),
    ];
    for (tail, expected) in cases {
        let err = error(&format!("{base}{tail}"));
        assert!(err.starts_with(expected), "expected {expected:?}, got {err:?}");
    }
}

#[test]
fn bad_role_and_name_are_refused() {
    let err = error("[[process]]\nname = \"a\"\nrole = \"boss\"\ncommand = [\"x\"]\n");
    assert!(
        err.starts_with("map.toml:3:8: unknown variant 'boss', expected one of 'primary', 'sidecar', 'task'"),
        "{err}"
    );
    for bad in ["A", "-a", "a-", "a_b", "../etc", "a/b", ""] {
        let err = error(&format!("[[process]]\nname = \"{bad}\"\nrole = \"primary\"\ncommand = [\"x\"]\n"));
        assert!(err.starts_with("map.toml:2:8: name: '"), "{bad}: {err}");
    }
    assert!(is_valid_name(&"a".repeat(63)));
    assert!(!is_valid_name(&"a".repeat(64)));
}

#[test]
fn toml_syntax_errors_keep_their_position() {
    let err = error("grace_period = \n");
    assert!(err.starts_with("map.toml:1:"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn oversized_role_map_is_refused_before_parsing() {
    let dir = std::env::temp_dir().join(format!("exeunt-rolemap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("big.toml");
    std::fs::write(&path, "#".repeat(MAX_SIZE as usize + 1)).expect("write");
    let err = load(&path, None, &|_| None).expect_err("too big").to_string();
    std::fs::remove_dir_all(&dir).ok();
    assert!(err.ends_with("the role map is larger than 1048576 bytes"), "{err}");
}

fn sidecar(extra: &str) -> String {
    format!(
        "[[process]]\nname = \"s\"\nrole = \"sidecar\"\ncommand = [\"x\"]\n{extra}\n[[process]]\nname = \"p\"\nrole = \"primary\"\ncommand = [\"y\"]\n"
    )
}

#[test]
fn readiness_probes_of_every_kind_are_read_with_defaults() {
    let cases = [
        ("ready = { tcp = \"127.0.0.1:5432\" }", Check::Tcp(Endpoint::Addr("127.0.0.1:5432".parse().expect("addr")))),
        ("ready = { tcp = \"localhost:80\" }", Check::Tcp(Endpoint::Localhost(80))),
        (
            "ready = { exec = [\"pg_isready\", \"-h\", \"127.0.0.1\"] }",
            Check::Exec(vec!["pg_isready".into(), "-h".into(), "127.0.0.1".into()]),
        ),
        ("ready = { file = \"/tmp/ready\" }", Check::File("/tmp/ready".into())),
    ];
    for (line, expected) in cases {
        let plan = parse(&sidecar(line), "m", None).expect(line);
        let ready = plan.processes[0].ready.clone().expect("a probe");
        assert_eq!(ready.probe, expected);
        assert_eq!(
            (ready.interval, ready.timeout, ready.attempt_timeout),
            (DEFAULT_INTERVAL, DEFAULT_READY_TIMEOUT, DEFAULT_ATTEMPT_TIMEOUT)
        );
        assert_eq!(ready.on_timeout, OnTimeout::Fail);
    }
    let plan = parse(&sidecar("ready = { http = \"http://[::1]:15021/healthz/ready\", interval = \"250ms\", timeout = \"5s\", on_timeout = \"start\" }"), "m", None).expect("valid");
    let ready = plan.processes[0].ready.clone().expect("a probe");
    let Check::Http { method: "GET", target } = ready.probe else { panic!("an http GET probe") };
    assert_eq!(
        (target.addr, target.host.as_str(), target.path.as_str()),
        (Endpoint::Addr("[::1]:15021".parse().expect("addr")), "[::1]:15021", "/healthz/ready")
    );
    assert_eq!(
        (ready.interval, ready.timeout, ready.on_timeout),
        (Duration::from_millis(250), Duration::from_secs(5), OnTimeout::Start)
    );
}

#[test]
fn stop_actions_exit_policies_and_shutdown_order_are_read() {
    let plan = parse(&format!("shutdown = \"parallel\"\n{}", sidecar("stop = { http = \"http://127.0.0.1:15020/quitquitquit\" }\non_exit = \"fail\"\nexit_code = 7\nmax_restarts = 3")), "m", None).expect("valid");
    assert_eq!(plan.shutdown, ShutdownOrder::Parallel);
    let s = &plan.processes[0];
    assert!(matches!(&s.stop_hook, Some(Check::Http { method: "POST", target }) if target.path == "/quitquitquit"));
    assert_eq!((s.on_exit, s.exit_code, s.max_restarts), (OnExit::Fail, Some(7), Some(3)));
    let plan = parse(&sidecar("stop_signal = 3"), "m", None).expect("a number");
    assert_eq!(plan.processes[0].stop_signal, Signo(libc::SIGQUIT));
    let plan = parse(&sidecar("stop = { signal = \"SIGINT\" }"), "m", None).expect("valid");
    assert_eq!((plan.processes[0].stop_signal, plan.processes[0].stop_hook.clone()), (Signo(libc::SIGINT), None));
    let plan = parse(&sidecar("stop = { exec = [\"nginx\", \"-s\", \"quit\"] }"), "m", None).expect("valid");
    assert_eq!(plan.processes[0].stop_hook, Some(Check::Exec(vec!["nginx".into(), "-s".into(), "quit".into()])));
    assert_eq!(plan.processes[0].on_exit, OnExit::Restart, "the default policy");
    let plan = parse(&sidecar("restart_delay = \"1s\"\nmax_restart_delay = \"1m\""), "m", None).expect("valid");
    let s = &plan.processes[0];
    assert_eq!((s.restart_delay, s.max_restart_delay), (Duration::from_secs(1), Duration::from_secs(60)));
}

#[test]
fn bad_probes_hooks_and_policies_are_named_with_their_line() {
    let cases = [
        ("ready = { tcp = \"db:5432\" }", "m:5:17: ready.tcp: 'db:5432' is not IP:PORT"),
        ("ready = { http = \"https://127.0.0.1/\" }", "m:5:18: ready.http: 'https://127.0.0.1/' is not an http:// URL"),
        (
            "ready = { http = \"http://example.com/\" }",
            "m:5:18: ready.http: 'http://example.com/': the host must be an IP address",
        ),
        ("ready = { tcp = \"127.0.0.1:1\", file = \"/x\" }", "m:5:9: ready: give exactly one probe"),
        ("ready = { }", "m:5:9: ready: give exactly one probe"),
        ("ready = { file = \"/x\", interval = \"0\" }", "m:5:35: ready.interval: must be at least 1ms"),
        (
            "ready = { file = \"/x\", on_timeout = \"wait\" }",
            "m:5:37: unknown variant 'wait', expected 'fail' or 'start'",
        ),
        ("ready = { file = \"/x\", retries = 3 }", "m:5:24: unknown field 'retries'"),
        ("stop = { signal = \"SIGINT\", exec = [\"x\"] }", "m:5:8: stop: give exactly one of signal, http or exec"),
        ("stop_signal = \"SIGINT\"\nstop = { signal = \"SIGHUP\" }", "m:6:19: stop.signal: stop_signal is set too"),
        ("stop = { exec = [] }", "m:5:17: stop.exec: must name a program"),
        ("stop_signal = \"SIGSTOP\"", "m:5:15: stop_signal: SIGSTOP pauses a process and cannot end it"),
        ("rewrite = { SIGTERM = \"SIGQUIT\" }", "m:5:11: rewrite: only primaries get the signals exeunt receives"),
        ("stop = { signal = 19 }", "m:5:19: stop.signal: SIGSTOP pauses a process and cannot end it"),
        ("stop_signal = 0", "m:5:15: stop_signal: unknown signal '0'"),
        (
            "stop_signal = true",
            "m:5:15: stop_signal: expected a signal name such as \"SIGTERM\", or its number, not boolean 'true'",
        ),
        ("on_exit = \"explode\"", "m:5:11: unknown variant 'explode', expected one of 'restart', 'ignore', 'fail'"),
        ("exit_code = 256", "m:5:13: exit_code: 256 is not an exit code from 0 to 255"),
        ("max_restarts = -1", "m:5:16:"),
        ("max_restart_delay = \"50ms\"", "m:5:21: max_restart_delay: 50ms is shorter than restart_delay 100ms"),
    ];
    for (line, expected) in cases {
        let err = parse(&sidecar(line), "m", None).expect_err(line).to_string();
        assert!(err.starts_with(expected), "{line}: expected {expected:?}, got {err:?}");
    }
    let err = parse(&format!("shutdown = \"random\"\n{}", sidecar("")), "m", None).expect_err("bad order").to_string();
    assert!(err.starts_with("m:1:12: unknown variant 'random'"), "{err}");
}

#[test]
fn exit_policies_and_probes_belong_to_sidecars_only() {
    let primary = |extra: &str| format!("[[process]]\nname = \"p\"\nrole = \"primary\"\ncommand = [\"y\"]\n{extra}\n");
    for (line, expected) in [
        ("on_exit = \"ignore\"", "m:5:11: on_exit: only sidecars have an exit policy"),
        ("restart_delay = \"1s\"", "m:5:17: restart_delay: only sidecars have an exit policy"),
        ("exit_code = 3", "m:5:13: exit_code: only sidecars have an exit policy"),
        ("ready = { file = \"/x\" }", "m:5:9: ready: only sidecars have readiness probes"),
    ] {
        let err = parse(&primary(line), "m", None).expect_err(line).to_string();
        assert!(err.starts_with(expected), "{line}: {err}");
    }
}

#[test]
fn a_value_of_the_wrong_type_names_its_key_and_shows_the_right_form() {
    let primary = "[[process]]\nname = \"web\"\nrole = \"primary\"\n";
    assert_eq!(
        error(&format!("{primary}command = \"nginx -g daemon\"\n")),
        "map.toml:4:11: command: expected a list such as [\"nginx\", \"-g\", \"daemon off;\"], not string \"nginx -g daemon\""
    );
    assert_eq!(
        error(&format!("{primary}command = [\"a\"]\nenv = [\"X=1\"]\n")),
        "map.toml:5:7: env: expected a table such as { LOG_LEVEL = \"debug\" }, not list"
    );
    assert!(
        error(&format!("{primary}command = [\"a\"]\nready = {{ exec = \"pg_isready\" }}\n"))
            .contains(": exec: expected a list such as"),
    );
    assert_eq!(
        error(&format!("grace_period = 5\n{primary}command = [\"a\"]\n")),
        "map.toml:1:16: grace_period: expected a string, not integer '5'"
    );
}

#[test]
fn the_top_level_output_is_every_process_default_and_a_process_may_choose_its_own() {
    let text = "output = \"prefix\"\nlog_format = \"json\"\n\n\
                [[process]]\nname = \"proxy\"\nrole = \"sidecar\"\ncommand = [\"proxy\"]\noutput = \"inherit\"\n\n\
                [[process]]\nname = \"shipper\"\nrole = \"sidecar\"\ncommand = [\"ship\"]\noutput = \"json\"\n";
    let plan = parse(text, "m", Some(&["job".into()])).expect("valid");
    let outputs: Vec<_> = plan.processes.iter().map(|p| (p.name.as_str(), p.output)).collect();
    assert_eq!(outputs, [("proxy", Output::Inherit), ("shipper", Output::Json), ("main", Output::Prefix)]);
    assert_eq!(plan.log_format, Some(LogFormat::Json));
    let plain = parse("[[process]]\nname = \"a\"\nrole = \"primary\"\ncommand = [\"a\"]\n", "m", None).unwrap();
    assert_eq!((plain.processes[0].output, plain.log_format), (Output::Inherit, None));
}

#[test]
fn a_sidecar_of_another_container_keeps_the_output_its_container_gave_it() {
    let text = "output = \"prefix\"\n[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"job\"]\n\
                [[process]]\nname = \"proxy\"\nrole = \"sidecar\"\nmatch = { comm = \"envoy\" }\n";
    let plan = parse(text, "m", None).expect("valid");
    assert_eq!(plan.processes[0].output, Output::Inherit, "the default does not reach another container");
    let err = error(&format!("{text}output = \"json\"\n"));
    assert!(err.starts_with("map.toml:10:10: output: a sidecar found by match belongs to another container"), "{err}");
}

#[test]
fn control_socket_is_an_abstract_name_a_path_or_off_and_a_bad_one_is_named_where_it_stands() {
    let primary = "[[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"job\"]\n";
    let socket =
        |value: &str| parse(&format!("control_socket = {value:?}\n{primary}"), "m", None).map(|p| p.control_socket);
    assert_eq!(socket("@app/control"), Ok(Some(ControlSocket::Abstract("app/control".into()))));
    assert_eq!(socket("/run/exeunt.sock"), Ok(Some(ControlSocket::Path("/run/exeunt.sock".into()))));
    assert_eq!(socket("off"), Ok(Some(ControlSocket::Off)));
    assert_eq!(parse(primary, "m", None).map(|p| p.control_socket), Ok(None), "the default is left to exeunt");
    assert_eq!(
        error(&format!("control_socket = \"@\"\n{primary}")),
        "map.toml:1:18: control_socket: an empty control socket: give @NAME, a path, or off"
    );
    let long = format!("/{}", "x".repeat(107));
    let err = error(&format!("control_socket = \"{long}\"\n{primary}"));
    assert!(err.starts_with("map.toml:1:18: control_socket: '/xxx") && err.ends_with("which a socket address holds"));
}

#[test]
fn every_mistake_is_one_line_in_the_order_of_the_text() {
    let text = "grace_period = \"5s\"\n\n[[process]]\ncolour = \"red\"\nname = \"web\"\nrole = \"primary\"\ncommand = [\"true\"]\ngrace_period = \"ten\"\n\n[[process]]\nrole = \"sidecar\"\nname = \"web\"\ncommand = [\"true\"]\n";
    let err = error(text);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("map.toml:4:1: unknown field 'colour', expected one of 'name', "), "{err}");
    assert!(lines[1].starts_with("map.toml:8:16: grace_period: invalid duration 'ten'"), "{err}");
    assert_eq!(lines[2], "map.toml:12:8: name: 'web' is already the name of the process on line 5");
}

#[test]
fn a_key_that_cannot_be_read_brings_no_mistake_that_follows_from_its_absence() {
    // `comand` is likely the command misspelt: no "command: missing" besides.
    let err = error("[[process]]\nname = \"a\"\nrole = \"primary\"\ncomand = [\"x\"]\n");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A role that cannot be read may have been the primary's.
    let err = error("[[process]]\nname = \"a\"\nrole = \"boss\"\ncommand = [\"x\"]\n");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn single_brackets_are_one_mistake_and_the_process_is_still_read() {
    let err = error("[process]\nname = \"A\"\nrole = \"primary\"\ncommand = [\"x\"]\n");
    assert_eq!(
        err,
        "map.toml:1:1: process: write [[process]] with double brackets: each [[process]] table is one entry of a list\n\
         map.toml:2:8: name: 'A' is not a valid name (1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)"
    );
    assert!(
        error("process = 3\n")
            .starts_with("map.toml:1:11: process: expected [[process]] tables, one per process, not an integer")
    );
}

const ENVIRONMENT: &str = r#"
env_file = ["/etc/shared.env"]
limits = { core = 0, nofile = 1024 }
umask = "0022"

[[process]]
name = "web"
role = "sidecar"
command = ["nginx", "-c", "${CONF:-/etc/nginx.conf}"]
env = { HOST = "${HOST}:8080", PASSWORD = { file = "${SECRETS}/web" }, PLAIN = "$${NOT_EXPANDED}" }
env_file = ["/a.env", "/b.env"]
env_dir = "/run/secrets/web"
limits = { nofile = "4096:8192", stack = "unlimited" }
umask = "0077"
ready = { http = "http://${HOST}:8080/health" }

[[process]]
name = "job"
role = "primary"
command = ["/app/job"]
command_check = false
"#;

#[test]
fn environment_keys_are_read_with_their_variables_replaced() {
    let env = |name: &str| match name {
        "HOST" => Some(OsString::from("127.0.0.1")),
        "SECRETS" => Some(OsString::from("/run/secrets")),
        _ => None,
    };
    let map = super::parse(ENVIRONMENT, "map.toml", None, &env).expect("valid");
    assert_eq!(map.env_files, [PathBuf::from("/etc/shared.env")]);
    assert_eq!(map.umask, Some(0o022));
    let shared: Vec<String> = map.limits.iter().map(|(l, _)| l.to_string()).collect();
    assert_eq!(shared, ["core=0", "nofile=1024"]);
    let [web, job] = map.processes.as_slice() else { panic!("two processes") };
    assert_eq!(web.command, ["nginx", "-c", "/etc/nginx.conf"]);
    assert_eq!(
        web.variables.vars,
        [
            ("HOST".to_string(), SaidValue::Text("127.0.0.1:8080".into())),
            ("PASSWORD".to_string(), SaidValue::File("/run/secrets/web".into())),
            ("PLAIN".to_string(), SaidValue::Text("${NOT_EXPANDED}".into())),
        ]
    );
    assert_eq!(web.variables.files, [PathBuf::from("/a.env"), PathBuf::from("/b.env")]);
    assert_eq!(web.variables.dir.as_ref().map(|(d, _)| d.clone()), Some(PathBuf::from("/run/secrets/web")));
    let own: Vec<String> = web.own_limits.iter().map(|(l, _)| l.to_string()).collect();
    assert_eq!(own, ["nofile=4096:8192", "stack=unlimited"]);
    assert_eq!(web.umask, Some(0o077));
    let Some(Check::Http { target, .. }) = web.ready.as_ref().map(|r| &r.probe) else { panic!("an http probe") };
    assert_eq!((target.url.as_str(), target.host.as_str()), ("http://127.0.0.1:8080/health", "127.0.0.1:8080"));
    assert!(web.command_check && !job.command_check);
}

#[test]
fn every_environment_mistake_is_one_line_and_shows_no_variable_value() {
    let text = r#"[[process]]
name = "job"
role = "primary"
command = ["run"]
env = { A = { path = "/x" } }
limits = { files = 10, nofile = "10:5", core = "lots" }
umask = "0999"
workdir = "${UNSET}"
env_dir = "${HOME:?HOME must be set}"
"#;
    let env = |name: &str| (name == "SECRET").then(|| OsString::from("s3cret"));
    let err = super::parse(text, "map.toml", None, &env).expect_err("mistakes").to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 7, "{err}");
    assert_eq!(lines[0], "map.toml:5:13: unknown key \"path\": give { file = \"PATH\" }");
    assert!(lines[1].starts_with("map.toml:6:10: limits.core: 'lots' is not a number"), "{err}");
    assert!(lines[2].starts_with("map.toml:6:10: limits: 'files' is not a resource limit"), "{err}");
    assert_eq!(lines[3], "map.toml:6:10: limits.nofile: the soft limit 10 is above the hard limit 5");
    assert_eq!(lines[4], "map.toml:7:9: umask: '0999' is not an octal mask such as \"0027\"");
    assert!(lines[5].starts_with("map.toml:8:11: workdir: ${UNSET}: UNSET is not set"), "{err}");
    assert_eq!(lines[6], "map.toml:9:11: env_dir: ${HOME}: HOME must be set");
    assert!(!err.contains("s3cret"));
}

#[test]
fn a_notification_descriptor_is_3_to_255_and_takes_no_other_probe_nor_period() {
    let sidecar = |ready: &str| {
        format!(
            "[[process]]\nname = \"a\"\nrole = \"sidecar\"\ncommand = [\"x\"]\nready = {ready}\n{}",
            "[[process]]\nname = \"b\"\nrole = \"primary\"\ncommand = [\"y\"]\n"
        )
    };
    let map = parse(&sidecar("{ fd = 3, timeout = \"5s\" }"), "map.toml", None).expect("valid");
    let ready = map.processes[0].ready.as_ref().expect("a probe");
    assert_eq!(ready.probe, Check::Fd(3));
    assert_eq!(ready.attempt_timeout, Duration::from_secs(5), "one wait, as long as the start waits");
    assert!(error(&sidecar("{ fd = 1 }")).contains("ready.fd: 1 is not a descriptor from 3 to 255"));
    assert!(
        error(&sidecar("{ fd = 3, period = \"1s\" }")).contains("ready.period: a process announces its readiness once")
    );
    assert!(
        error(&sidecar("{ fd = 3, file = \"/x\" }"))
            .contains("give exactly one probe: tcp, http, exec, file, fd or notify")
    );
    let map = parse(&sidecar("{ notify = \"systemd\" }"), "map.toml", None).expect("valid");
    assert_eq!(map.processes[0].ready.as_ref().expect("a probe").probe, Check::Notify);
    assert!(error(&sidecar("{ notify = \"s6\" }")).contains("ready.notify: \"s6\" is not a protocol exeunt speaks"));
    assert!(error(&sidecar("{ notify = \"systemd\", fd = 3 }")).contains("give exactly one probe"));
    assert!(error(&sidecar("{ notify = \"systemd\", period = \"1s\" }")).contains("ready.period"));
}

#[test]
fn a_control_character_in_a_refused_value_is_written_out_so_the_mistake_stays_one_line() {
    let err = error("[[process]]\nname = \"a\"\nrole = \"sidec\\r\"\ncommand = [\"x\"]\n");
    assert_eq!(err, "map.toml:3:8: unknown variant 'sidec\\r', expected one of 'primary', 'sidecar', 'task'");
}

#[test]
fn a_task_takes_timeout_and_retries_and_no_probe_and_other_roles_take_neither() {
    let task = |extra: &str| {
        format!(
            "[[process]]\nname = \"migrate\"\nrole = \"task\"\ncommand = [\"x\"]\n{extra}\n\
             [[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"y\"]\n"
        )
    };
    let map = parse(&task("timeout = \"1m\"\nretries = 2\nrestart_delay = \"1s\""), "map.toml", None).expect("valid");
    let spec = &map.processes[0];
    assert_eq!((spec.role, spec.timeout, spec.retries), (Role::Task, Some(Duration::from_secs(60)), 2));
    assert_eq!(spec.restart_delay, Duration::from_secs(1), "the back-off between tries");
    assert!(error(&task("ready = { file = \"/x\" }")).contains("ready: a task is done when it exits 0"));
    assert!(error(&task("live = { file = \"/x\" }")).contains("live: a task is done when it exits 0"));
    assert!(error(&task("on_exit = \"ignore\"")).contains("on_exit: a task runs until it exits 0"));
    assert!(error(&task("rewrite = { SIGTERM = \"SIGINT\" }")).contains("a task gets its stop action"));
    let sidecar = "[[process]]\nname = \"db\"\nrole = \"sidecar\"\ncommand = [\"x\"]\ntimeout = \"1s\"\n\
                   [[process]]\nname = \"job\"\nrole = \"primary\"\ncommand = [\"y\"]\nretries = 1\n";
    let err = error(sidecar);
    assert!(err.contains("timeout: only tasks (role = \"task\") have it; a sidecar"), "{err}");
    assert!(err.contains("retries: only tasks (role = \"task\") have it; a primary"), "{err}");
}

#[test]
fn after_gives_the_graph_written_and_unknown_names_primaries_and_cycles_are_each_one_mistake() {
    let process = |name: &str, role: &str, after: &str| {
        format!("[[process]]\nname = \"{name}\"\nrole = \"{role}\"\ncommand = [\"x\"]\n{after}\n")
    };
    let text = [
        process("db", "sidecar", ""),
        process("cache", "sidecar", ""),
        process("migrate", "task", "after = [\"db\"]"),
        process("job", "primary", "after = [\"migrate\", \"cache\"]"),
    ]
    .concat();
    let map = parse(&text, "map.toml", None).expect("valid");
    let after: Vec<(&str, Vec<usize>)> = map.processes.iter().map(|p| (p.name.as_str(), p.after.clone())).collect();
    assert_eq!(after, [("db", vec![]), ("cache", vec![]), ("migrate", vec![0]), ("job", vec![2, 1])]);
    let unknown = [process("db", "sidecar", "after = [\"dbb\"]"), process("job", "primary", "")].concat();
    assert!(error(&unknown).contains("after: 'dbb' is not a process of this role map (there are: db, job)"));
    let after_primary = [process("db", "sidecar", "after = [\"job\"]"), process("job", "primary", "")].concat();
    assert!(error(&after_primary).contains("after: 'job' is a primary"));
    let cycle = [
        process("a", "sidecar", "after = [\"c\"]"),
        process("b", "sidecar", "after = [\"a\"]"),
        process("c", "task", "after = [\"b\"]"),
        process("job", "primary", "after = [\"c\"]"),
    ]
    .concat();
    let err = error(&cycle);
    assert!(err.contains("after: a cycle, so none of it could start: a waits for c, c for b, b for a"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_wait_is_a_gate_that_comes_first_takes_a_probe_and_is_named_in_after() {
    let gate = |name: &str, rest: &str| format!("[[wait]]\nname = \"{name}\"\n{rest}\n");
    let process = |name: &str, role: &str, rest: &str| {
        format!("[[process]]\nname = \"{name}\"\nrole = \"{role}\"\ncommand = [\"x\"]\n{rest}\n")
    };
    let text = [
        process("proxy", "sidecar", ""),
        process("job", "primary", ""),
        gate("db", "ready = { tcp = \"127.0.0.1:5432\", timeout = \"60s\" }"),
    ]
    .concat();
    let map = parse(&text, "map.toml", None).expect("valid");
    let order: Vec<(&str, Role, Vec<usize>)> =
        map.processes.iter().map(|p| (p.name.as_str(), p.role, p.after.clone())).collect();
    assert_eq!(
        order,
        [("db", Role::Gate, vec![]), ("proxy", Role::Sidecar, vec![0]), ("job", Role::Primary, vec![0, 1])]
    );
    let db = &map.processes[0];
    assert!(db.command.is_empty());
    assert_eq!(
        db.ready.as_ref().map(|r| (r.probe.to_string(), r.timeout)),
        Some(("tcp 127.0.0.1:5432".into(), Duration::from_secs(60)))
    );
    let named = [gate("db", "ready = { file = \"/ready\" }"), process("job", "primary", "after = [\"db\"]")].concat();
    assert_eq!(parse(&named, "map.toml", None).expect("valid").processes[1].after, [0]);
    let mistakes = [
        gate("db", "command = [\"x\"]\nready = { fd = 3, period = \"1s\" }"),
        gate("db", "ready = { file = \"/ready\" }"),
        process("job", "primary", ""),
    ]
    .concat();
    let err = error(&mistakes);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with("map.toml:3:1: command: a [[wait]] starts nothing"), "{err}");
    assert!(lines[1].starts_with("map.toml:4:16: ready.fd: only a process exeunt runs announces itself"), "{err}");
    assert!(lines[2].starts_with("map.toml:4:28: ready.period:"), "{err}");
    assert!(lines[3].starts_with("map.toml:6:8: name: 'db' is already the name of the gate on line 2"), "{err}");
}
