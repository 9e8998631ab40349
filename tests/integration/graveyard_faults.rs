//! The graveyard under faults: read-only, full, removed while watched, and tombstones
//! replaced by a directory, a symbolic link or a 1 GB file. A clear error or a bounded
//! read, never a hang or a crash; and where the pod can still end, it does.
//!
//! Read-only and full graveyards are tmpfs mounts in a mount namespace of their own
//! (`unshare --mount`), so nothing of the machine's is touched.

use crate::common;
use std::process::Command;
use std::time::Duration;

use common::{Scratch, exeunt, plain, process, start, status_field, until_term};
use exeunt::pod::graveyard::read_tombstone;

/// A role map for container `name` of a pod, with the given processes.
fn pod_map(name: &str, graveyard: &str, death_deps: &[&str], processes: &[String]) -> String {
    format!(
        "[pod]\nname = \"{name}\"\ngraveyard = \"{graveyard}\"\ndeath_deps = {death_deps:?}\n\n{}",
        processes.concat()
    )
}

/// Runs `script` with sh in a mount namespace of its own, with `$EXEUNT` set.
fn in_mount_namespace(script: &str) -> common::Outcome {
    assert!(std::path::Path::new("/usr/bin/unshare").exists(), "unshare is missing: apt-get install util-linux");
    let mut command = Command::new("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", script]).env("EXEUNT", exeunt());
    start(command).finish()
}

/// Puts a tombstone in place the way exeunt does: a temporary file renamed over it.
fn bury(dir: &std::path::Path, name: &str, text: &str) {
    let temporary = dir.join(format!(".{name}.test.tmp"));
    std::fs::write(&temporary, text).expect("write the tombstone");
    std::fs::rename(&temporary, dir.join(name)).expect("rename it into place");
}

/// Container `queue` of a pod whose graveyard is `graveyard`, stopped when `job` dies,
/// its primary running until SIGTERM: started (role map `map_name`), and up.
fn queue_container(scratch: &Scratch, graveyard: &std::path::Path, map_name: &str) -> common::Running {
    let primary = process("queue", "primary", &until_term("queue", "echo queue up;"), "");
    let map = scratch.file(map_name, &pod_map("queue", &graveyard.to_string_lossy(), &["job"], &[primary]));
    let mut running = plain(&["-c", &map]);
    running.expect_line("queue up");
    running
}

/// Waits until the tombstone at `path` is there and satisfies `done`.
fn wait_for_tombstone(path: &std::path::Path, done: impl Fn(&exeunt::pod::tombstone::Tombstone) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !read_tombstone(path).ok().flatten().is_some_and(|t| done(&t)) {
        assert!(std::time::Instant::now() < deadline, "{} was not written", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

const DIED_6: &str = "Born: \"2026-11-28T00:00:00Z\"\nDied: \"2026-11-28T00:00:01Z\"\nExitCode: 6\n";

#[test]
fn a_read_only_graveyard_is_an_error_before_anything_starts() {
    let scratch = Scratch::new("graveyard-read-only");
    let graveyard = scratch.path("graveyard");
    std::fs::create_dir(&graveyard).expect("mount point");
    let marker = scratch.path("started");
    let map = scratch.file(
        "map.toml",
        &pod_map("app", &graveyard, &[], &[process("job", "primary", &format!("touch {marker}"), "")]),
    );
    let outcome = in_mount_namespace(&format!(
        "mount -t tmpfs -o ro,size=1m tmpfs {graveyard} || exit 100; exec \"$EXEUNT\" -c {map}"
    ));
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert!(
        outcome
            .stderr
            .contains(&format!("graveyard {graveyard}: cannot write tombstones in it: Read-only file system")),
        "{}",
        outcome.stderr
    );
    assert_eq!(outcome.stderr.lines().count(), 1, "one line: {}", outcome.stderr);
    assert!(!std::path::Path::new(&marker).exists(), "nothing may start when the pod could never learn of its end");
}

#[test]
fn a_graveyard_full_before_this_container_wrote_anything_is_an_error_before_anything_starts() {
    let scratch = Scratch::new("graveyard-full-at-start");
    let graveyard = scratch.path("graveyard");
    std::fs::create_dir(&graveyard).expect("mount point");
    let marker = scratch.path("started");
    let map = scratch.file(
        "map.toml",
        &pod_map("app", &graveyard, &[], &[process("job", "primary", &format!("touch {marker}"), "")]),
    );
    let outcome = in_mount_namespace(&format!(
        "mount -t tmpfs -o size=64k tmpfs {graveyard} || exit 100
         dd if=/dev/zero of={graveyard}/fill bs=4096 2>/dev/null
         exec \"$EXEUNT\" -c {map}"
    ));
    assert_eq!(outcome.code, 1, "{outcome:?}");
    let said = format!("graveyard {graveyard}: cannot write tombstones in it: No space left on device");
    assert!(outcome.stderr.contains(&said), "{}", outcome.stderr);
    assert_eq!(outcome.stderr.lines().count(), 1, "one line: {}", outcome.stderr);
    assert!(!std::path::Path::new(&marker).exists(), "nothing may start when the pod could never learn of its end");
}

#[test]
fn a_graveyard_that_fills_up_before_this_container_recorded_anything_still_gets_its_death() {
    // The container waits for a birth dep while the volume fills up: its tombstone
    // has nothing on it yet, and must still take Born, Ready and Died. The other
    // container has written its own first (one that starts on a full disk cannot).
    let scratch = Scratch::new("graveyard-full-early");
    let graveyard = scratch.path("graveyard");
    std::fs::create_dir(&graveyard).expect("mount point");
    let side = scratch.file(
        "side.toml",
        &pod_map("side", &graveyard, &["app"], &[process("proxy", "primary", &until_term("proxy", ""), "")]),
    );
    let app = scratch.file(
        "app.toml",
        &format!(
            "[pod]\nname = \"app\"\ngraveyard = \"{graveyard}\"\nbirth_deps = [\"gate\"]\n\n{}",
            process("job", "primary", "exit 3", "")
        ),
    );
    let log = scratch.path("app.log");
    let outcome = in_mount_namespace(&format!(
        "mount -t tmpfs -o size=64k tmpfs {graveyard} || exit 100
         printf 'Born: \"2026-12-01T00:00:00Z\"\\n' > {graveyard}/gate
         \"$EXEUNT\" -c {side} & side=$!
         \"$EXEUNT\" -c {app} 2>{log} & app=$!
         i=0; until grep -q 'waiting for the birth deps' {log} && [ -s {graveyard}/side ]; do i=$((i+1)); [ $i -lt 1000 ] || exit 101; sleep 0.01; done
         dd if=/dev/zero of={graveyard}/fill bs=4096 2>/dev/null; echo disk full
         printf 'Born: \"2026-12-01T00:00:00Z\"\\nReady: \"2026-12-01T00:00:01Z\"\\n' 1<> {graveyard}/gate
         wait $app; echo app exited $?
         wait $side; echo side exited $?
         cat {graveyard}/app {log}"
    ));
    assert!(outcome.stdout.contains("disk full"), "{outcome:?}");
    assert!(outcome.stdout.contains("rewriting the tombstone in place"), "{outcome:?}");
    assert!(outcome.stdout.contains("app exited 3"), "{outcome:?}");
    assert!(outcome.stdout.contains("side exited 3"), "the other container learnt of the death: {outcome:?}");
    assert!(outcome.stdout.contains("ExitCode: 3"), "{outcome:?}");
}

#[test]
fn a_full_graveyard_still_gets_the_tombstone_of_death_and_the_pod_ends() {
    let scratch = Scratch::new("graveyard-full");
    let graveyard = scratch.path("graveyard");
    std::fs::create_dir(&graveyard).expect("mount point");
    let side = scratch.file(
        "side.toml",
        &pod_map("side", &graveyard, &["app"], &[process("proxy", "primary", &until_term("proxy", ""), "")]),
    );
    // The primary fills the disk once the other container's tombstone is there, then fails.
    let fill = format!(
        "until [ -s {graveyard}/side ]; do sleep 0.01; done; dd if=/dev/zero of={graveyard}/fill bs=4096 2>/dev/null; \
         echo disk full; exit 3"
    );
    let app = scratch.file("app.toml", &pod_map("app", &graveyard, &[], &[process("job", "primary", &fill, "")]));
    let outcome = in_mount_namespace(&format!(
        "mount -t tmpfs -o size=64k tmpfs {graveyard} || exit 100
         \"$EXEUNT\" -c {side} & side=$!
         \"$EXEUNT\" -c {app}; echo app exited $?
         wait $side; echo side exited $?
         cat {graveyard}/app"
    ));
    assert!(outcome.stdout.contains("disk full"), "{outcome:?}");
    assert!(outcome.stderr.contains("the disk is full; rewriting the tombstone in place"), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("app exited 3"), "{outcome:?}");
    assert!(outcome.stdout.contains("side exited 3"), "the other container learnt of the death: {outcome:?}");
    assert!(outcome.stdout.contains("ExitCode: 3"), "{outcome:?}");
}

#[test]
fn a_graveyard_removed_while_watched_is_made_again_and_still_followed() {
    let scratch = Scratch::new("graveyard-removed");
    let graveyard = scratch.0.join("graveyard");
    let mut running = queue_container(&scratch, &graveyard, "map.toml");
    // Ready is the last milestone written before the death dep's.
    wait_for_tombstone(&graveyard.join("queue"), |t| t.ready.is_some());
    std::fs::remove_dir_all(&graveyard).expect("remove the graveyard");
    running.expect_log("was removed: making it again");
    // exeunt wrote its tombstone again: a container starting now still finds it.
    wait_for_tombstone(&graveyard.join("queue"), |t| t.ready.is_some());
    bury(&graveyard, "job", DIED_6);
    let outcome = running.finish();
    assert_eq!(outcome.code, 6, "the death in the new graveyard was seen: {outcome:?}");
    assert!(outcome.stdout.contains("queue got TERM"), "{outcome:?}");
}

#[test]
fn tombstones_that_are_a_directory_a_symlink_or_a_1gb_file_are_refused_and_read_again_when_replaced() {
    let scratch = Scratch::new("graveyard-hostile-tombstones");
    let graveyard = scratch.0.join("graveyard");
    std::fs::create_dir(&graveyard).expect("graveyard");
    std::fs::create_dir(graveyard.join("dir")).expect("a directory");
    let elsewhere = scratch.file("elsewhere", DIED_6);
    std::os::unix::fs::symlink(&elsewhere, graveyard.join("link")).expect("a symlink");
    let huge = std::fs::File::create(graveyard.join("huge")).expect("a file");
    huge.set_len(1 << 30).expect("1 GB, sparse");
    drop(huge);
    // This container's own tombstone place holds a symlink to a file it must not touch.
    let victim = scratch.file("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, graveyard.join("queue")).expect("a symlink");
    let map = scratch.file(
        "map.toml",
        &pod_map(
            "queue",
            &graveyard.to_string_lossy(),
            &["dir", "link", "huge"],
            &[process("queue", "primary", &until_term("queue", "echo queue up;"), "")],
        ),
    );
    let mut running = plain(&["-c", &map]);
    let g = graveyard.display();
    for refusal in [
        format!("tombstone {g}/dir: is not a regular file"),
        format!("tombstone {g}/link: is a symbolic link, which is not followed"),
        format!("tombstone {g}/huge: is larger than 65536 bytes"),
    ] {
        running.expect_log(&refusal);
    }
    running.expect_line("queue up");
    let refused_within = running.elapsed();
    wait_for_tombstone(&graveyard.join("queue"), |t| t.ready.is_some());
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious\n", "written through a symlink");
    let own = std::fs::symlink_metadata(graveyard.join("queue")).expect("own tombstone");
    assert!(own.is_file(), "the symlink was replaced by a regular file: {own:?}");
    let rss_kb = status_field(running.exeunt_pid(), "VmRSS");
    println!("three hostile tombstones refused within {refused_within:?}; exeunt's RSS {rss_kb} kB");
    assert!(rss_kb < 64 * 1024, "the 1 GB file was not read whole: {rss_kb} kB");
    bury(&graveyard, "huge", DIED_6);
    let outcome = running.finish();
    assert_eq!(outcome.code, 6, "the replaced tombstone was read again: {outcome:?}");
}

#[test]
fn a_directory_in_place_of_the_own_tombstone_is_an_error_before_anything_starts() {
    let scratch = Scratch::new("graveyard-own-dir");
    let graveyard = scratch.0.join("graveyard");
    std::fs::create_dir_all(graveyard.join("app")).expect("a directory where the tombstone goes");
    let marker = scratch.path("started");
    let map = scratch.file(
        "map.toml",
        &pod_map(
            "app",
            &graveyard.to_string_lossy(),
            &[],
            &[process("job", "primary", &format!("touch {marker}"), "")],
        ),
    );
    let outcome = plain(&["-c", &map]).finish();
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert!(outcome.stderr.contains("is a directory, where this container's tombstone goes"), "{}", outcome.stderr);
    assert!(!std::path::Path::new(&marker).exists());
}

/// Swaps two names atomically (`renameat2` with `RENAME_EXCHANGE`), as the user `uid`:
/// in a child that takes that uid and makes the call before it runs `true`.
fn exchange(uid: u32, a: &std::path::Path, b: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let cstring = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_bytes()).expect("no NUL");
    let (a_c, b_c) = (cstring(a), cstring(b));
    let mut command = Command::new("true");
    // SAFETY: only raw system calls between fork and exec, on data made before the fork.
    unsafe {
        command.pre_exec(move || {
            let (at, exchange) = (libc::AT_FDCWD, libc::RENAME_EXCHANGE);
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(uid, uid, uid) != 0
                || libc::setresuid(uid, uid, uid) != 0
                || libc::syscall(libc::SYS_renameat2, at, a_c.as_ptr(), at, b_c.as_ptr(), exchange) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status =
        command.status().unwrap_or_else(|e| panic!("exchange {} and {} as uid {uid}: {e}", a.display(), b.display()));
    assert!(status.success());
}

#[test]
fn a_graveyard_swapped_for_a_symlink_by_another_user_is_never_written_through() {
    let scratch = Scratch::new("graveyard-swapped");
    // The graveyard's parent is writable by another user, who swaps the graveyard with
    // a symbolic link to a directory of its choice.
    let parent = scratch.0.join("shared");
    std::fs::create_dir(&parent).expect("parent");
    nix::unistd::chown(&parent, Some(65534.into()), Some(65534.into())).expect("chown");
    let graveyard = parent.join("graveyard");
    let target = scratch.0.join("target");
    std::fs::create_dir(&target).expect("target");
    let link = parent.join("link");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let mut running = queue_container(&scratch, &graveyard, "map.toml");
    wait_for_tombstone(&graveyard.join("queue"), |t| t.ready.is_some());
    exchange(65534, &graveyard, &link);
    running.expect_log("was moved");
    running.expect_log("is a symbolic link, which is not followed: trying again in");
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let written: Vec<_> = std::fs::read_dir(&target).expect("target").map(|e| e.expect("entry").file_name()).collect();
    assert!(written.is_empty(), "exeunt wrote through the symlink: {written:?}");
    // The real graveyard, now at the link's old name, got the death.
    let own = read_tombstone(&link.join("queue")).expect("readable").expect("there");
    assert!(own.died.is_some(), "{own:?}");
}

#[test]
fn a_death_written_while_the_change_queue_overflows_is_still_seen() {
    let scratch = Scratch::new("graveyard-overflow");
    let graveyard = scratch.0.join("graveyard");
    let mut running = queue_container(&scratch, &graveyard, "map.toml");
    let queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .map_or(16384, |v| v.trim().parse().expect("a number"));
    running.signal(libc::SIGSTOP);
    // More changes than the kernel queues, while exeunt cannot read them; the death
    // comes last, after the queue overflowed.
    for n in 0..queued + 1000 {
        std::fs::write(graveyard.join(format!("noise-{n}")), "x").expect("write");
    }
    bury(&graveyard, "job", DIED_6);
    running.signal(libc::SIGCONT);
    running.expect_log("more changes came than were queued: reading every tombstone again");
    let outcome = running.finish();
    assert_eq!(outcome.code, 6, "the death dep's death was seen: {outcome:?}");
}

#[test]
fn a_graveyard_that_is_briefly_a_file_is_tried_again_until_it_can_be_followed() {
    let scratch = Scratch::new("graveyard-briefly-a-file");
    let graveyard = scratch.0.join("graveyard");
    let mut running = queue_container(&scratch, &graveyard, "map.toml");
    wait_for_tombstone(&graveyard.join("queue"), |t| t.ready.is_some());
    let file = scratch.0.join("file");
    std::fs::write(&file, "not a directory").expect("file");
    exchange(0, &graveyard, &file);
    running.expect_log("is not a directory: trying again in");
    std::fs::remove_file(&graveyard).expect("the file goes");
    running.expect_log("can be followed again");
    wait_for_tombstone(&graveyard.join("queue"), |t| t.ready.is_some());
    bury(&graveyard, "job", DIED_6);
    let outcome = running.finish();
    assert_eq!(outcome.code, 6, "{outcome:?}");
}

/// One run under a flood of `text` renamed into the death dep's place: how long from
/// SIGTERM to exeunt's exit, and how many rewrites the flood made.
fn sigterm_under_a_tombstone_flood(scratch: &Scratch, round: u32, text: &str) -> (Duration, u32) {
    let graveyard = scratch.0.join(format!("graveyard-{round}"));
    let running = queue_container(scratch, &graveyard, &format!("map-{round}.toml"));
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (flooding, graveyard, text) = (flooding.clone(), graveyard.clone(), text.to_string());
        std::thread::spawn(move || {
            let mut rewrites = 0u32;
            let until = std::time::Instant::now() + Duration::from_secs(20);
            while flooding.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < until {
                bury(&graveyard, "job", &text);
                rewrites += 1;
            }
            rewrites
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let sent = running.elapsed();
    running.signal(libc::SIGTERM);
    let outcome = running.finish();
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let rewrites = writer.join().expect("the writer");
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert!(outcome.stdout.contains("queue got TERM"), "{outcome:?}");
    (outcome.elapsed - sent, rewrites)
}

#[test]
fn a_flood_of_large_tombstones_does_not_delay_sigterm() {
    let scratch = Scratch::new("graveyard-flood");
    // 65,535 bytes of 13,107 distinct keys, which took time in the square of their count
    // to read: 144 ms a read, and 13.9 s of delay for 100 rewrites.
    let digits: Vec<char> = ('0'..='9').chain('a'..='z').chain('A'..='Z').collect();
    let text: String =
        (0..13_107).map(|n| format!("{}{}{}:\n", digits[n / 3844], digits[n / 62 % 62], digits[n % 62])).collect();
    assert_eq!(text.len(), 65_535);
    let runs: Vec<(Duration, u32)> =
        (0..3).map(|round| sigterm_under_a_tombstone_flood(&scratch, round, &text)).collect();
    let worst = runs.iter().map(|(took, _)| *took).max().expect("three runs");
    println!(
        "SIGTERM to exit under a flood of 13,107-key tombstones, three runs (time, rewrites): {runs:?}; worst {worst:?}"
    );
    assert!(runs.iter().all(|&(_, rewrites)| rewrites > 100), "each flood was a flood: {runs:?}");
    assert!(worst < Duration::from_secs(2), "SIGTERM waited for the flood: {runs:?}");
}
