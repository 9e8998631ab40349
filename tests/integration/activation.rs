//! Socket activation: listening sockets passed to exeunt as systemd and podman pass
//! them (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`, descriptors from 3) reach the
//! first primary alone, with `LISTEN_PID` its own pid, and no sidecar sees them.

use crate::common;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{Scratch, process};

/// A sidecar that says whether it sees the variables or descriptor 3, and a primary
/// that serves one connection on the socket passed.
fn role_map(scratch: &Scratch) -> String {
    let server = format!("exec python3 {}/tests/helpers/activated_server.py", env!("CARGO_MANIFEST_DIR"));
    let side = "echo side sees ${LISTEN_FDS:-no LISTEN_FDS} ${LISTEN_PID:-no LISTEN_PID}; \
        [ -e /proc/self/fd/3 ] && echo side has descriptor 3 || echo side has no descriptor 3; \
        while :; do sleep 1000 & wait $!; done";
    let map = [process("side", "sidecar", side, ""), process("web", "primary", &server, "")].concat();
    scratch.file("map.toml", &map)
}

/// Connects to `port` (again while nothing listens there yet) and reads the answer.
fn ask(port: u16) -> String {
    let deadline = std::time::Instant::now() + common::HANG;
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) if std::time::Instant::now() < deadline => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("nothing listened on port {port}: {e}"),
        }
    };
    stream.set_read_timeout(Some(common::HANG)).expect("a timeout");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
}

fn check(outcome: &common::Outcome, answer: &str, names: Option<&str>) {
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(answer, "hello from the activated server\n", "{outcome:?}");
    let names = names.map_or("None".to_string(), |n| format!("'{n}'"));
    let given = outcome.stdout.lines().find(|l| l.starts_with("server pid")).unwrap_or_else(|| panic!("{outcome:?}"));
    let pid = given.split_whitespace().nth(2).expect("the server's pid");
    assert!(
        given.ends_with(&format!("{{'LISTEN_PID': '{pid}', 'LISTEN_FDS': '1', 'LISTEN_FDNAMES': {names}}}")),
        "{outcome:?}"
    );
    assert!(outcome.stdout.contains("side sees no LISTEN_FDS no LISTEN_PID"), "{outcome:?}");
    assert!(outcome.stdout.contains("side has no descriptor 3"), "{outcome:?}");
}

#[test]
fn systemd_socket_activate_hands_its_socket_through_exeunt_to_the_primary_alone() {
    common::require("/usr/bin/systemd-socket-activate", "systemd");
    let scratch = Scratch::new("activation-systemd");
    let port = common::free_port();
    let address = format!("127.0.0.1:{port}");
    let mut command = Command::new("/usr/bin/systemd-socket-activate");
    command.args(["-l", &address, "--fdname=web"]).arg(common::exeunt()).args(["-c", &role_map(&scratch)]);
    let running = common::start(command);
    // It listens, and starts exeunt on the first connection.
    let answer = ask(port);
    let outcome = running.finish();
    check(&outcome, &answer, Some("web"));
}

#[test]
fn podmans_listen_pid_1_reaches_the_primary_as_its_own_pid_behind_exeunt_as_pid_1() {
    let scratch = Scratch::new("activation-podman");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let socket = std::os::fd::AsRawFd::as_raw_fd(&listener);
    common::require_pid_namespaces();
    // As podman passes them: the socket at 3, and LISTEN_PID=1, the container's init.
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(common::exeunt())
        .args(["-c", &role_map(&scratch)])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1");
    // SAFETY: dup2 and fcntl only, on a descriptor that stays open until the fork.
    unsafe {
        command.pre_exec(move || {
            // At 3 already, it only has to stay open across exec.
            let placed = if socket == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(socket, 3) - 3 };
            match placed {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let running = common::start(command);
    drop(listener);
    let answer = ask(port);
    let outcome = running.finish();
    check(&outcome, &answer, None);
}
