//! The `exeunt` binary. Its own `main` is the C entry point, not Rust's: the Rust
//! runtime would set SIGPIPE to ignored before any code of ours ran, and exeunt could
//! no longer tell its children which signals it was started with ignored.

#![no_main]

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStrExt;

#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let args: Vec<OsString> = (0..usize::try_from(argc).unwrap_or(0))
        // SAFETY: the C runtime passes argc valid, NUL-terminated strings in argv.
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) })
        .map(|arg| std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string())
        .collect();
    exeunt::main(&args)
}
