//! JSON lines as exeunt writes them, for its own log and for the processes' output:
//! flat objects of strings, written by hand (a serializer would weigh
//! more than everything it is used for here), with times from [`crate::utc`].

use crate::utc::{self, Fraction};

/// One JSON object being written to the end of a buffer.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Starts an object at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        push_string(self.out, key.as_bytes());
        self.out.push(b':');
    }

    /// A string field. Returns whether the bytes had to be escaped (see [`push_string`]).
    pub fn string(&mut self, key: &str, value: &[u8]) -> bool {
        self.key(key);
        push_string(self.out, value)
    }

    /// The time now, as the field `time`.
    pub fn time_now(&mut self) {
        let (seconds, nanos) = utc::now();
        self.string("time", utc::format(seconds, nanos, Fraction::Millis).as_bytes());
    }

    /// Ends the object and its line.
    pub fn end(self) {
        self.out.extend_from_slice(b"}\n");
    }
}

/// Appends `bytes` as a JSON string. Text that is UTF-8 is kept as it is, with only
/// what JSON requires escaped. When some bytes are not UTF-8, each of them becomes
/// the four characters `\xNN`, and each backslash of the text two, so that the
/// original bytes can be told apart and restored; the return value says so.
pub fn push_string(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    out.push(b'"');
    let escaped = push_string_content(out, bytes);
    out.push(b'"');
    escaped
}

/// Whether `bytes` go into a JSON string as they are: UTF-8, with nothing to escape.
/// One pass over eight bytes at a time notes both the bytes to escape and any byte past
/// ASCII; only text with the latter is checked again for UTF-8.
pub fn is_plain(bytes: &[u8]) -> bool {
    let (mut to_escape, mut past_ascii) = (0, 0);
    let mut note = |word: u64| {
        to_escape |= escape_bits(word);
        past_ascii |= word & HIGHS;
    };
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        note(u64::from_le_bytes(word.try_into().expect("eight bytes")));
    }
    // The last bytes fill a word of spaces, which need nothing.
    let mut last = [b' '; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    note(u64::from_le_bytes(last));
    to_escape == 0 && (past_ascii == 0 || std::str::from_utf8(bytes).is_ok())
}

/// [`push_string`] without the quotes.
pub fn push_string_content(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let escaped = std::str::from_utf8(bytes).is_err();
    if escaped {
        for chunk in bytes.utf8_chunks() {
            push_text(out, chunk.valid().as_bytes(), true);
            for &byte in chunk.invalid() {
                out.extend_from_slice(&[b'\\', b'\\', b'x', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
            }
        }
    } else {
        push_text(out, bytes, false);
    }
    escaped
}

const HEX: &[u8; 16] = b"0123456789abcdef";
/// A one in each of a word's eight bytes, and each byte's high bit.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of eight bytes is a control character, a quote or a backslash: the
/// bytes JSON escapes.
fn needs_escape(word: u64) -> bool {
    escape_bits(word) != 0
}

/// The high bit of each of eight bytes that JSON escapes (a control character, a quote
/// or a backslash) set, and perhaps others above such a byte: not zero exactly when
/// one of them needs escaping.
#[inline(always)]
fn escape_bits(word: u64) -> u64 {
    let is_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    below_space | is_zero(word ^ (ONES * u64::from(b'"'))) | is_zero(word ^ (ONES * u64::from(b'\\')))
}

/// Appends UTF-8 text with what JSON requires escaped; the runs between are copied
/// whole, since a process's lines are long and mostly plain.
fn push_text(out: &mut Vec<u8>, text: &[u8], double_backslashes: bool) {
    let mut run = 0;
    let mut at = 0;
    while at < text.len() {
        // Eight bytes with nothing to escape are skipped at once.
        if let Some(word) = text.get(at..at + 8)
            && !needs_escape(u64::from_le_bytes(word.try_into().expect("eight bytes")))
        {
            at += 8;
            continue;
        }
        let byte = text[at];
        at += 1;
        let control;
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' if double_backslashes => b"\\\\\\\\",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 => {
                control = [b'\\', b'u', b'0', b'0', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]];
                &control
            }
            _ => continue,
        };
        out.extend_from_slice(&text[run..at - 1]);
        out.extend_from_slice(escape);
        run = at;
    }
    out.extend_from_slice(&text[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(bytes: &[u8]) -> (String, bool) {
        let mut out = Vec::new();
        let escaped = push_string(&mut out, bytes);
        (String::from_utf8(out).unwrap(), escaped)
    }

    #[test]
    fn text_keeps_its_characters_and_escapes_what_json_requires() {
        assert_eq!(string(b"plain"), ("\"plain\"".to_string(), false));
        assert_eq!(string("a\"b\\c\td\u{1}é".as_bytes()), ("\"a\\\"b\\\\c\\td\\u0001é\"".to_string(), false));
    }

    #[test]
    fn bytes_that_are_not_utf8_become_escapes_that_can_be_told_from_backslashes() {
        assert_eq!(string(b"a\xffb\\"), ("\"a\\\\xffb\\\\\\\\\"".to_string(), true));
    }

    #[test]
    fn a_word_needs_escaping_exactly_when_one_of_its_bytes_does() {
        for special in [0u8, 0x1f, b'"', b'\\', b'\n'] {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = special;
                assert!(needs_escape(u64::from_le_bytes(word)), "{special:#x} at {at}");
            }
        }
        for plain in [*b"abcdefgh", *b" !#[]~\x7f\xff", [0xe2, 0x82, 0xac, 0x20, 0x21, 0x23, 0x7f, 0x80]] {
            assert!(!needs_escape(u64::from_le_bytes(plain)), "{plain:?}");
        }
    }

    #[test]
    fn long_text_is_escaped_where_it_needs_it_and_copied_elsewhere() {
        let text = "0123456789abcdef\"0123456789\n€ and a tab\t, then more plain text";
        let (json, escaped) = string(text.as_bytes());
        assert!(!escaped);
        assert_eq!(json, "\"0123456789abcdef\\\"0123456789\\n€ and a tab\\t, then more plain text\"");
    }

    #[test]
    fn plain_text_is_told_from_text_to_escape() {
        assert!(is_plain(b"a plain line of text, longer than a word or two"));
        assert!(is_plain("€uro".as_bytes()));
        assert!(!is_plain(b"a plain line of text, then a \"quote\""));
        assert!(!is_plain(b"tab\t"));
        assert!(!is_plain(b"not utf-8 \xff and more"));
        // Every length, with the byte that matters in the last, partial word too.
        for length in 1..=24 {
            let plain = vec![b'a'; length];
            assert!(is_plain(&plain), "{length} plain bytes");
            for (byte, is) in [(b'"', false), (b'\x1f', false), (0xff, false), (b'~', true)] {
                let mut text = plain.clone();
                text[length - 1] = byte;
                assert_eq!(is_plain(&text), is, "{byte:#x} last of {length}");
            }
        }
        assert!(is_plain(b""));
    }

    #[test]
    fn objects_are_one_line_of_comma_separated_fields() {
        let mut out = Vec::new();
        let mut object = Object::new(&mut out);
        object.string("process", b"web");
        object.string("level", b"info");
        object.end();
        assert_eq!(out, b"{\"process\":\"web\",\"level\":\"info\"}\n");
    }
}
