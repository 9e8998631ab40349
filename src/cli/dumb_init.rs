//! dumb-init's command line, read when exeunt is started by that name.

use std::ffi::OsString;

use super::words::{Opt, Words};
use super::{DumbInit, Invocation, Options, UsageError, log_format, read_rewrite, unknown};
use crate::logger::Level;

/// Reads dumb-init's command line (the words after the program name) and its variables
/// `DUMB_INIT_SETSID` and `DUMB_INIT_DEBUG`. Options stop at `--` or at the first word
/// that is not an option.
pub fn parse(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Invocation, UsageError> {
    read(args, env).map_err(UsageError::for_dumb_init)
}

fn read(args: &[OsString], env: &dyn Fn(&str) -> Option<OsString>) -> Result<Invocation, UsageError> {
    let mut options = Options::default();
    let mut setsid = env("DUMB_INIT_SETSID").is_none_or(|v| v != "0");
    let mut verbose = env("DUMB_INIT_DEBUG").is_some_and(|v| v == "1");
    let mut words = Words::new(args);
    while let Some(option) = words.next_option() {
        match option {
            Opt::Long { name, inline } => match name {
                "help" => return Ok(Invocation::Help),
                "version" => return Ok(Invocation::Version),
                "single-child" => setsid = false,
                "verbose" => verbose = true,
                "rewrite" => options.rewrite.push(read_rewrite("--rewrite", &words.long_value(name, inline, "S:R")?)?),
                _ => return Err(unknown(&format!("--{name}"))),
            },
            Opt::Short(flags) => {
                for (i, flag) in flags.char_indices() {
                    match flag {
                        'h' => return Ok(Invocation::Help),
                        'V' => return Ok(Invocation::Version),
                        'c' => setsid = false,
                        'v' => verbose = true,
                        'r' => {
                            let joined = &flags[i + flag.len_utf8()..];
                            options.rewrite.push(read_rewrite("-r", &words.short_value(flag, joined, "S:R")?)?);
                            break;
                        }
                        _ => return Err(unknown(&format!("-{flag}"))),
                    }
                }
            }
        }
    }
    let rest = words.command();
    if rest.is_empty() {
        return Err(UsageError::new("nothing to run: give a COMMAND".to_string()));
    }
    options.command = rest;
    options.log.level = verbose.then_some(Level::Debug);
    options.log_format = log_format(env)?;
    options.signal_groups = setsid;
    options.dumb_init = Some(DumbInit { setsid });
    Ok(Invocation::Run(options))
}
