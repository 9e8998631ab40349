//! The aarch64 build, run on this x86_64 machine by qemu-user as PID 1 of a new PID
//! namespace: a core of what exeunt promises, on the binary that arm64 nodes run.
//! Under qemu-user, PR_SET_CHILD_SUBREAPER fails (EINVAL), so exeunt is PID 1 here, as
//! it is in a container; its children are this machine's own programs.

use crate::common;
use common::{Running, Scratch, aarch64_binary, count, process, until_term};

/// exeunt for aarch64 with `args`, as PID 1 of a new PID namespace.
fn pid1(args: &[&str]) -> Running {
    let (qemu, binary) = aarch64_binary();
    let binary = binary.to_string_lossy().into_owned();
    let args: Vec<&str> = std::iter::once(binary.as_str()).chain(args.iter().copied()).collect();
    common::pid1_program(&qemu, |_| {}, &args)
}

#[test]
fn aarch64_exit_status_is_the_childs_code_or_128_plus_its_signal() {
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -TERM $$", 143)] {
        let outcome = pid1(&["sh", "-c", script]).finish();
        assert_eq!(outcome.code, code, "{script}: {outcome:?}");
    }
    let missing = pid1(&["/nonexistent/program"]).finish();
    assert_eq!(missing.code, 127, "{missing:?}");
}

#[test]
fn aarch64_sigterm_reaches_the_child_and_its_status_is_exeunts() {
    let mut running =
        pid1(&["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo up; while :; do sleep 1 & wait $!; done"]);
    running.expect_line("up");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 7, "{outcome:?}");
    assert!(outcome.stdout.contains("got TERM"), "{outcome:?}");
}

#[test]
fn aarch64_role_map_stops_the_sidecar_once_the_primary_exits_and_exits_with_its_status() {
    let scratch = Scratch::new("aarch64-rolemap");
    let map = [
        process("side", "sidecar", &until_term("side", "echo side up;"), ""),
        process("job", "primary", "echo job ran; exit 4", ""),
    ]
    .concat();
    let outcome = pid1(&["-c", &scratch.file("map.toml", &map)]).finish();
    assert_eq!(outcome.code, 4, "{outcome:?}");
    assert_eq!(count(&outcome.stdout, "side got TERM"), 1, "{outcome:?}");
    assert!(outcome.stderr.contains("primary job exited with exit code 4"), "{outcome:?}");
}

#[test]
fn aarch64_orphans_are_reaped() {
    // Fifty orphans exit while the child runs; it then counts the zombies in the
    // namespace, which exeunt (PID 1) must have collected.
    let script = "for i in $(seq 50); do (sleep 0.05 &); done; sleep 1; \
                  echo zombies $(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l)";
    let outcome = pid1(&["sh", "-c", script]).finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("zombies 0"), "{outcome:?}");
}
