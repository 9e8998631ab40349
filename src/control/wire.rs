//! What travels on the control socket, version 1: one request line from the client,
//! one answer from exeunt, then exeunt closes the connection.
//!
//! ```text
//! request:  exeunt/1 VERB [WORD]...\n          at most REQUEST_LIMIT bytes
//!           status | status json | ready [NAME]... | live | restart NAME
//!           | signal SIGNO NAME | signal-group SIGNO NAME
//! answer:   exeunt/1 ok|no|error\n             then the body: UTF-8 lines, to EOF
//! ```
//!
//! Words are separated by one space; names are process names of the role map and
//! signals are numbers. A client that speaks another version gets an `error` answer
//! that names the version exeunt speaks.

use std::fmt::Write as _;

use crate::events::{Answer, Outcome, Request};
use crate::quoted::Quoted;
use crate::signo::Signo;

/// The version of the wire format this exeunt speaks, which `--status --json` also names.
pub const VERSION: u32 = 1;

/// The longest request line, newline included.
pub const REQUEST_LIMIT: usize = 1024;

const MAGIC: &str = "exeunt/";

/// Reads one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let line = std::str::from_utf8(line).map_err(|_| "the request is not UTF-8 text".to_string())?;
    let mut words = line.split(' ');
    let head = words.next().unwrap_or_default();
    let version = head.strip_prefix(MAGIC).ok_or_else(|| format!("a request starts with {MAGIC}{VERSION}"))?;
    if version != VERSION.to_string() {
        return Err(format!("this exeunt speaks version {VERSION} of the control protocol, not {}", cut(version, 16)));
    }
    let verb = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    let name = |rest: &[&str]| match rest {
        [name] if !name.is_empty() => Ok(name.to_string()),
        _ => Err(format!("{verb} takes one process name")),
    };
    match (verb, rest.as_slice()) {
        ("status", []) => Ok(Request::Status { json: false }),
        ("status", ["json"]) => Ok(Request::Status { json: true }),
        ("ready", names) if names.iter().all(|n| !n.is_empty()) => {
            Ok(Request::Ready { names: names.iter().map(|n| n.to_string()).collect() })
        }
        ("live", []) => Ok(Request::Live),
        ("restart", rest) => Ok(Request::Restart { name: name(rest)? }),
        ("signal" | "signal-group", [signo, rest @ ..]) => {
            let signo = signo
                .parse::<i32>()
                .ok()
                .filter(|&n| (1..=libc::SIGRTMAX()).contains(&n))
                .ok_or_else(|| format!("{verb} takes a signal number, not {}", cut(signo, 16)))?;
            Ok(Request::Signal { signo: Signo(signo), name: name(rest)?, group: verb == "signal-group" })
        }
        _ => Err(format!("not a request: {}", cut(line, 64))),
    }
}

/// The request line, newline included.
pub fn request_line(request: &Request) -> String {
    let mut line = format!("{MAGIC}{VERSION} ");
    match request {
        Request::Status { json: false } => line += "status",
        Request::Status { json: true } => line += "status json",
        Request::Ready { names } => {
            line += "ready";
            for name in names {
                line.push(' ');
                line += name;
            }
        }
        Request::Live => line += "live",
        Request::Restart { name } => {
            let _ = write!(line, "restart {name}");
        }
        Request::Signal { signo, name, group } => {
            let verb = if *group { "signal-group" } else { "signal" };
            let _ = write!(line, "{verb} {} {name}", signo.0);
        }
    }
    line.push('\n');
    line
}

/// The first `chars` characters of text from a client, quoted so that an error stays
/// one line.
fn cut(text: &str, chars: usize) -> String {
    let start: String = text.chars().take(chars).collect();
    Quoted(&start).to_string()
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::No => "no",
        Outcome::Error => "error",
    }
}

/// The whole answer as it goes out.
pub fn answer_bytes(answer: &Answer) -> Vec<u8> {
    format!("{MAGIC}{VERSION} {}\n{}", outcome_word(answer.outcome), answer.body).into_bytes()
}

/// Reads a whole answer, as the client got it up to EOF.
pub fn parse_answer(bytes: &[u8]) -> Result<Answer, String> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once('\n').ok_or("the answer ended before its first line")?;
    let outcome = head
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.split_once(' '))
        .filter(|(version, _)| *version == VERSION.to_string())
        .and_then(|(_, word)| [Outcome::Ok, Outcome::No, Outcome::Error].into_iter().find(|&o| outcome_word(o) == word))
        .ok_or_else(|| format!("not an answer of version {VERSION}: {}", cut(head, 64)))?;
    Ok(Answer { outcome, body: body.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Request> {
        vec![
            Request::Status { json: false },
            Request::Status { json: true },
            Request::Ready { names: vec![] },
            Request::Ready { names: vec!["proxy".into(), "job".into()] },
            Request::Live,
            Request::Restart { name: "proxy".into() },
            Request::Signal { signo: Signo(1), name: "proxy".into(), group: false },
            Request::Signal { signo: Signo(15), name: "job".into(), group: true },
        ]
    }

    #[test]
    fn every_request_reads_back_as_it_was_written() {
        for request in every_kind() {
            let line = request_line(&request);
            assert!(line.len() <= REQUEST_LIMIT && line.ends_with('\n'), "{line:?}");
            assert_eq!(parse_request(line.trim_end().as_bytes()), Ok(request), "{line:?}");
        }
    }

    #[test]
    fn answers_read_back_with_their_outcome_and_body() {
        for outcome in [Outcome::Ok, Outcome::No, Outcome::Error] {
            let answer = Answer { outcome, body: "a\nb\n".into() };
            assert_eq!(parse_answer(&answer_bytes(&answer)), Ok(answer));
        }
        assert!(parse_answer(b"exeunt/2 ok\n").is_err());
        assert!(parse_answer(b"exeunt/1 ok").is_err(), "no first line");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let cases: [(&[u8], &str); 9] = [
            (b"GET / HTTP/1.1", "a request starts with exeunt/1"),
            (b"exeunt/2 status", "speaks version 1 of the control protocol, not '2'"),
            (b"exeunt/1 reboot", "not a request: 'exeunt/1 reboot'"),
            (b"exeunt/1 restart", "restart takes one process name"),
            (b"exeunt/1 restart a b", "restart takes one process name"),
            (b"exeunt/1 signal HUP proxy", "signal takes a signal number, not 'HUP'"),
            (b"exeunt/1 signal 99999 proxy", "signal takes a signal number"),
            (b"exeunt/1 status \xff", "not UTF-8"),
            (b"exeunt/1 status\r", "not a request: 'exeunt/1 status\\r'"),
        ];
        for (line, expected) in cases {
            let err = parse_request(line).expect_err(expected);
            assert!(err.contains(expected), "{line:?}: {err}");
        }
        assert!(parse_request(b"exeunt/1 ready  job").is_err(), "an empty name");
    }
}
