//! Hands the linker the order of the functions exeunt runs from its start to its idle
//! wait (`link/TARGET.order`, written by scripts/order), so that they sit together and
//! an idle exeunt maps a few stretches of its binary rather than all of it. Only for the
//! static x86_64 build, which links with rust-lld; any other build links as it would.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
