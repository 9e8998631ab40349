//! How lines go out: prefixed, as JSON, as a check's, and cut into pieces.

use super::*;

/// A line as it goes out, the text followed by its newline in the buffer read.
fn formatted(mode: Mode, text: &[u8], continued: bool) -> String {
    formatted_as(mode, text, continued, false)
}

fn formatted_as(mode: Mode, text: &[u8], continued: bool, of_checks: bool) -> String {
    let mut label = Label::new(mode, "web", 5, of_checks);
    label.start_batch();
    let buffer = [text, b"\n"].concat();
    let mut parts = Vec::new();
    label.parts(&mut parts, Stream::Stderr, text, 0, !continued, continued);
    let line: Vec<u8> = parts.iter().flat_map(|&part| label.bytes(part, &buffer).to_vec()).collect();
    String::from_utf8(line).unwrap()
}

#[test]
fn prefixed_lines_carry_the_padded_name_and_mark_a_continued_piece() {
    assert_eq!(formatted(Mode::Prefix, b"hello", false), "web   | hello\n");
    assert_eq!(formatted(Mode::Prefix, b"hel", true), "web   + hel\n");
}

#[test]
fn a_checks_lines_carry_the_process_name_and_say_they_are_a_checks() {
    assert_eq!(formatted_as(Mode::Prefix, b"PONG", false, true), "web   : PONG\n");
    assert_eq!(formatted_as(Mode::Prefix, b"PO", true, true), "web   ; PO\n");
    let line = formatted_as(Mode::Json, b"refused", false, true);
    assert!(
        line.ends_with(",\"process\":\"web\",\"from\":\"check\",\"stream\":\"stderr\",\"message\":\"refused\"}\n"),
        "{line}"
    );
}

#[test]
fn json_lines_name_the_process_and_stream_and_mark_partial_pieces() {
    let line = formatted(Mode::Json, b"a\xff", true);
    assert!(line.starts_with("{\"time\":\"20"), "{line}");
    assert!(
        line.ends_with(
            ",\"process\":\"web\",\"stream\":\"stderr\",\"message\":\"a\\\\xff\",\"escaped\":true,\"partial\":true}\n"
        ),
        "{line}"
    );
}

#[test]
fn a_piece_never_ends_inside_a_utf8_character() {
    assert_eq!(piece_end(b"abc"), 3);
    assert_eq!(piece_end("abé".as_bytes()), 4, "a whole character at the end stays");
    assert_eq!(piece_end(&"abé".as_bytes()[..3]), 2, "half a character goes to the next piece");
    assert_eq!(piece_end(&"a€".as_bytes()[..3]), 1);
    assert_eq!(piece_end(&"a😀".as_bytes()[..4]), 1);
    assert_eq!(piece_end(b"ab\xff"), 3, "a byte that starts nothing is cut as it is");
}
