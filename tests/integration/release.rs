//! What a release ships, as `scripts/release` packs it: both static binaries with their
//! checksums, and a Debian package that installs, runs and goes away again.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `scripts/release --no-build` into a folder of its own, with the binaries the
/// suite built (scripts/test builds both).
fn release(name: &str) -> PathBuf {
    common::static_binary();
    common::aarch64_binary();
    let dist = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/release"))
        .arg("--no-build")
        .arg(&dist)
        .output()
        .expect("run bash");
    assert!(output.status.success(), "scripts/release: {}", String::from_utf8_lossy(&output.stderr));
    dist
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}): apt-get install dpkg coreutils"));
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn release_holds_both_static_binaries_and_their_checksums() {
    let dist = release("dist-binaries");
    for (file, built) in [
        (format!("exeunt-{VERSION}-x86_64-linux-musl"), common::static_binary()),
        (format!("exeunt-{VERSION}-aarch64-linux-musl"), common::aarch64_binary().1),
        ("image/exeunt-amd64".to_string(), common::static_binary()),
        ("image/exeunt-arm64".to_string(), common::aarch64_binary().1),
    ] {
        let shipped = std::fs::read(dist.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(shipped == std::fs::read(&built).expect("the build"), "{file} is the build of {}", built.display());
    }
    let checked = run("sha256sum", &["-c", "SHA256SUMS"], &dist);
    assert_eq!(checked.lines().filter(|l| l.ends_with(": OK")).count(), 7, "every file is summed: {checked}");
    // A changed byte is caught.
    let binary = dist.join(format!("exeunt-{VERSION}-aarch64-linux-musl"));
    let mut bytes = std::fs::read(&binary).expect("binary");
    bytes[100] ^= 1;
    std::fs::write(&binary, bytes).expect("write");
    let tampered = Command::new("sha256sum").args(["-c", "--quiet", "SHA256SUMS"]).current_dir(&dist).output();
    assert!(!tampered.expect("sha256sum").status.success(), "a changed binary fails its checksum");
}

#[test]
fn debian_package_installs_exeunt_and_its_documentation_then_removes_cleanly() {
    let dist = release("dist-deb");
    let deb = dist.join(format!("exeunt_{VERSION}_amd64.deb"));
    let deb = deb.to_string_lossy();
    let field = |deb: &str, name: &str| run("dpkg-deb", &["--field", deb, name], &dist).trim().to_string();
    assert_eq!(field(&deb, "Package"), "exeunt");
    assert_eq!(field(&deb, "Version"), VERSION);
    assert_eq!(field(&deb, "Architecture"), "amd64");
    let arm = dist.join(format!("exeunt_{VERSION}_arm64.deb")).to_string_lossy().into_owned();
    assert_eq!(field(&arm, "Architecture"), "arm64");
    assert!(run("dpkg-deb", &["--contents", &arm], &dist).contains("./usr/bin/exeunt"));

    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "dpkg -i needs root (scripts/test runs as root)");
    run("dpkg", &["-i", &deb], &dist);
    let version = Command::new("/usr/bin/exeunt").arg("--version").output().expect("the installed exeunt runs");
    let doc = Path::new("/usr/share/doc/exeunt/README.md").exists();
    let status = run("dpkg-query", &["--show", "--showformat=${Status} ${Version}", "exeunt"], &dist);
    run("dpkg", &["-r", "exeunt"], &dist);
    assert_eq!(String::from_utf8_lossy(&version.stdout), exeunt::VERSION);
    assert!(doc, "the README is installed as documentation");
    assert_eq!(status, format!("install ok installed {VERSION}"));
    assert!(!Path::new("/usr/bin/exeunt").exists(), "dpkg -r took /usr/bin/exeunt away");
    assert!(!Path::new("/usr/share/doc/exeunt").exists(), "and its documentation");
}
