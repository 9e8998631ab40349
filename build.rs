//! Tells the build which commit it is (`EXEUNT_COMMIT`, for `--version`), and hands the
//! linker the order of the functions exeunt runs from its start to its idle wait
//! (`link/TARGET.order`, written by scripts/order), so that they sit together and an
//! idle exeunt maps a few stretches of its binary rather than all of it. The order is
//! only for the static x86_64 build, which links with rust-lld; any other build links
//! as it would.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=EXEUNT_COMMIT={}", commit());
    println!("cargo:rerun-if-env-changed=EXEUNT_ORDER_FILE");
    println!("cargo:rerun-if-env-changed=EXEUNT_LINK_MAP");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-musl" {
        return;
    }
    let order = std::env::var("EXEUNT_ORDER_FILE")
        .unwrap_or_else(|_| format!("{}/link/{target}.order", env!("CARGO_MANIFEST_DIR")));
    println!("cargo:rerun-if-changed={order}");
    if std::path::Path::new(&order).exists() {
        println!("cargo:rustc-link-arg-bins=--symbol-ordering-file={order}");
        // Names the build does not have (a function since removed) are left out quietly.
        println!("cargo:rustc-link-arg-bins=--no-warn-symbol-ordering");
    }
    // scripts/order reads where each function went from the linker's map.
    if let Ok(map) = std::env::var("EXEUNT_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Map={map}");
        // As the order file names them.
        println!("cargo:rustc-link-arg-bins=--no-demangle");
    }
}

/// The commit being built: EXEUNT_COMMIT when given (a build from a source tarball),
/// else git's abbreviated HEAD, else `unknown`. Docker reads it from `--version` after
/// `git.`, up to a dot, so it holds none.
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=EXEUNT_COMMIT");
    if let Ok(given) = std::env::var("EXEUNT_COMMIT") {
        return given.replace(['.', ' ', '\n'], "-");
    }
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
    };
    // A new commit moves HEAD, or the branch HEAD names.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{branch}");
        }
        println!("cargo:rerun-if-changed={git_dir}/packed-refs");
    }
    git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|c| c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_string())
}
