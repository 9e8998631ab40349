//! The values a role map writes as text that need more than a type to read: addresses
//! and URLs (literal IPs or `localhost`: exeunt resolves no names, since a lookup would
//! block), process and container names, and users. Shared with kubexit's variables.

use std::net::SocketAddr;

use crate::plan::{Endpoint, HttpTarget, UserSpec};
use crate::quoted::Quoted;

/// Reads `HOST:PORT`, where HOST is an IP address or `localhost` (127.0.0.1 and ::1).
pub fn read_addr(text: &str) -> Result<Endpoint, String> {
    let bad = || format!("{} is not IP:PORT (an IP address or localhost, then a port)", Quoted(text));
    if let Some(port) = text.strip_prefix("localhost:") {
        return port.parse().map(Endpoint::Localhost).map_err(|_| bad());
    }
    text.parse::<SocketAddr>().map(Endpoint::Addr).map_err(|_| bad())
}

/// Reads `http://HOST[:PORT][/PATH]`, HOST an IP address (IPv6 in brackets) or `localhost`.
pub fn read_url(url: &str) -> Result<HttpTarget, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{} is not an http:// URL (https is not supported)", Quoted(url)))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_string()
    };
    let addr = read_addr(&with_port)
        .map_err(|_| format!("{}: the host must be an IP address or localhost, with an optional port", Quoted(url)))?;
    if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("{}: the path holds white space or control characters", Quoted(url)));
    }
    Ok(HttpTarget { addr, host: authority.to_string(), path: path.to_string(), url: url.to_string() })
}

/// Names become file names in a graveyard and labels in logs, so they follow the rule
/// for Kubernetes container names (an RFC 1123 label).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(allowed)
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// The error for a process or container name that [`is_valid_name`] refuses; `what`
/// says where the name was given.
pub fn invalid_name(what: &str, name: &str) -> String {
    format!("{what}: {}", name_problem(name))
}

/// What is wrong with a name that [`is_valid_name`] refuses.
pub fn name_problem(name: &str) -> String {
    format!(
        "{} is not a valid name (1 to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)",
        Quoted(name)
    )
}

pub(super) fn read_user(value: &str) -> Option<UserSpec> {
    let (user, group) = match value.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (value, None),
    };
    let valid =
        |part: &str| !part.is_empty() && !part.contains([':', '\0', '/']) && !part.contains(char::is_whitespace);
    if !valid(user) || group.is_some_and(|g| !valid(g)) {
        return None;
    }
    Some(UserSpec { user: user.to_string(), group: group.map(str::to_string) })
}
