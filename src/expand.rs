//! Variables in a role map's strings, from exeunt's own environment: `${VAR}`,
//! `${VAR:-default}` (the default when VAR is unset or empty), `${VAR-default}` (when
//! unset), `${VAR:?message}` and `${VAR?message}` (an error with that message), and `$$`
//! for a `$`. Nothing else a shell does: no `$VAR` without braces (a `$` before anything
//! but `{` or `$` stays as it is), no command substitution, no globbing, no splitting.
//!
//! An error names the variable, never a value.

use std::ffi::OsString;
use std::fmt;

/// Why a string cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `${VAR}` with VAR unset, and no default.
    Unset(String),
    /// `${VAR:?message}` with VAR unset or empty.
    Required { var: String, message: String },
    /// VAR's value is not UTF-8.
    NotText(String),
    /// `${` without its `}`, or a name that is not one.
    Syntax(&'static str),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Unset(var) => {
                write!(
                    f,
                    "${{{var}}}: {var} is not set; give it a default with ${{{var}:-default}}, or write $$ for a $"
                )
            }
            ExpandError::Required { var, message } if message.is_empty() => write!(f, "${{{var}}}: {var} is not set"),
            ExpandError::Required { var, message } => write!(f, "${{{var}}}: {message}"),
            ExpandError::NotText(var) => write!(f, "${{{var}}}: the value of {var} is not UTF-8"),
            ExpandError::Syntax(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ExpandError {}

/// `text` with its variables replaced from `env`.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<OsString>) -> Result<String, ExpandError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let rest = expand_into(text, env, &mut out, false)?;
    debug_assert!(rest.is_empty());
    Ok(out)
}

/// Expands `text` into `out` up to its end, or, `inside` a `${...}`, up to the `}` that
/// closes it; returns what follows.
fn expand_into<'t>(
    mut text: &'t str,
    env: &dyn Fn(&str) -> Option<OsString>,
    out: &mut String,
    inside: bool,
) -> Result<&'t str, ExpandError> {
    loop {
        let stop = text.find(|c| c == '$' || (inside && c == '}')).unwrap_or(text.len());
        out.push_str(&text[..stop]);
        text = &text[stop..];
        if text.is_empty() {
            return match inside {
                true => Err(ExpandError::Syntax("a ${ is never closed with }")),
                false => Ok(text),
            };
        }
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        if let Some(rest) = text.strip_prefix("$$") {
            out.push('$');
            text = rest;
        } else if let Some(rest) = text.strip_prefix("${") {
            text = variable(rest, env, out)?;
        } else {
            out.push('$');
            text = &text[1..];
        }
    }
}

/// One `${...}`, from just after `${`; returns what follows its `}`.
fn variable<'t>(
    text: &'t str,
    env: &dyn Fn(&str) -> Option<OsString>,
    out: &mut String,
) -> Result<&'t str, ExpandError> {
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    let name = &text[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(ExpandError::Syntax("${ must be followed by a variable name (letters, digits and '_')"));
    }
    let value = match env(name) {
        Some(value) => Some(value.into_string().map_err(|_| ExpandError::NotText(name.to_string()))?),
        None => None,
    };
    let rest = &text[end..];
    let (operator, rest) = match rest.as_bytes() {
        [b'}', ..] => ("", &rest[1..]),
        [b':', b'-' | b'?', ..] => (&rest[..2], &rest[2..]),
        [b'-' | b'?', ..] => (&rest[..1], &rest[1..]),
        [] => return Err(ExpandError::Syntax("a ${ is never closed with }")),
        _ => return Err(ExpandError::Syntax("after ${NAME comes }, :-default, -default, :?message or ?message")),
    };
    // The colon forms treat an empty value as unset.
    let set = match operator.starts_with(':') {
        true => value.filter(|v| !v.is_empty()),
        false => value,
    };
    match (operator, set) {
        ("", Some(value)) => {
            out.push_str(&value);
            Ok(rest)
        }
        ("", None) => Err(ExpandError::Unset(name.to_string())),
        (_, Some(value)) => {
            out.push_str(&value);
            // The default or message is not used, but must be well formed.
            expand_into(rest, &|_| Some(OsString::from("-")), &mut String::new(), true)
        }
        (":-" | "-", None) => expand_into(rest, env, out, true),
        (_, None) => {
            let mut message = String::new();
            expand_into(rest, env, &mut message, true)?;
            Err(ExpandError::Required { var: name.to_string(), message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<OsString> {
        match name {
            "PORT" => Some("9090".into()),
            "EMPTY" => Some(OsString::new()),
            "HOST" => Some("db".into()),
            _ => None,
        }
    }

    fn ok(text: &str) -> String {
        expand(text, &env).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn variables_defaults_and_dollars() {
        assert_eq!(ok("--port=${PORT}"), "--port=9090");
        assert_eq!(ok("${MISSING:-8080}"), "8080");
        assert_eq!(ok("${PORT:-8080}"), "9090");
        assert_eq!(ok("${EMPTY:-x}|${EMPTY-x}|${MISSING-x}"), "x||x");
        assert_eq!(ok("${MISSING:-${HOST}:${PORT}}"), "db:9090", "a default may hold variables");
        assert_eq!(ok("$$HOME $${PORT} $HOME 100$ a$b"), "$HOME ${PORT} $HOME 100$ a$b");
        assert_eq!(ok("no variables"), "no variables");
    }

    #[test]
    fn an_unset_variable_or_a_required_one_is_an_error_naming_it() {
        assert_eq!(expand("${MISSING}", &env), Err(ExpandError::Unset("MISSING".into())));
        assert_eq!(
            expand("${EMPTY:?give the ${HOST} password}", &env),
            Err(ExpandError::Required { var: "EMPTY".into(), message: "give the db password".into() })
        );
        assert_eq!(ok("${EMPTY?unused}"), "", "without the colon, set-but-empty counts as set");
        assert!(expand("${PORT:?${MISSING}}", &env).is_ok(), "a message that is not needed is not expanded");
    }

    #[test]
    fn malformed_references_are_errors_that_show_no_value() {
        for text in ["${PORT", "${", "${}", "${1X}", "${PORT:+x}", "${PORT:-x", "${PORT x}"] {
            let error = expand(text, &env).unwrap_err();
            assert!(matches!(error, ExpandError::Syntax(_)), "{text}: {error:?}");
            assert!(!error.to_string().contains("9090"), "{error}");
        }
    }
}
