//! Env files, in the dotenv format that docker compose reads: `KEY=VALUE` lines, an
//! optional `export ` before the key, `#` comments, values bare, in single quotes
//! (taken as written) or in double quotes (with `\n`, `\t`, `\"` and the like), and
//! quoted values over several lines.
//!
//! A value may be a secret: nothing here ever puts one into an error, which names the
//! line and what is wrong with it.

use std::fmt;

/// A line of an env file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    /// The line, from 1; for a quote never closed, the line it opened on.
    pub line: usize,
    pub problem: &'static str,
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

impl std::error::Error for DotenvError {}

/// The variables of an env file's text, in their order (a later one of the same name
/// wins where they are applied). A line with a name alone (`KEY`) gives nothing: the
/// process inherits exeunt's own `KEY` anyway, as docker compose passes it on.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, DotenvError> {
    let mut reader = Reader { rest: text, line: 1 };
    let mut variables = Vec::new();
    while let Some(variable) = reader.next_variable()? {
        variables.extend(variable);
    }
    Ok(variables)
}

struct Reader<'a> {
    rest: &'a str,
    /// The line `rest` starts on.
    line: usize,
}

impl Reader<'_> {
    /// The next line that says something: Some(None) for a name alone, None at the end.
    fn next_variable(&mut self) -> Result<Option<Option<(String, String)>>, DotenvError> {
        loop {
            if self.rest.is_empty() {
                return Ok(None);
            }
            self.skip_blanks();
            if self.rest.starts_with('#') || self.rest.starts_with('\n') || self.rest.is_empty() {
                self.skip_line();
                continue;
            }
            return self.variable().map(Some);
        }
    }

    fn variable(&mut self) -> Result<Option<(String, String)>, DotenvError> {
        let line = self.line;
        let bad = |problem| Err(DotenvError { line, problem });
        if let Some(after) = self.rest.strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            self.rest = after;
            self.skip_blanks();
        }
        let name_end = self.rest.find(|c: char| !is_name_char(c)).unwrap_or(self.rest.len());
        let name = &self.rest[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return bad("expected a variable name (letters, digits, '_', '.' or '-', not first a digit)");
        }
        self.rest = &self.rest[name_end..];
        self.skip_blanks();
        if self.rest.is_empty() || self.rest.starts_with(['\n', '#']) {
            self.skip_line();
            return Ok(None);
        }
        let Some(after) = self.rest.strip_prefix('=') else {
            return bad("expected '=' after the variable name");
        };
        self.rest = after;
        self.skip_blanks();
        let value = match self.rest.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                let value = self.quoted(quote, line)?;
                self.skip_blanks();
                if !(self.rest.is_empty() || self.rest.starts_with(['\n', '#'])) {
                    return bad("unexpected text after the closing quote");
                }
                value
            }
            _ => self.bare(),
        };
        self.skip_line();
        if value.contains('\0') {
            return bad("the value holds a NUL byte, which no environment can carry");
        }
        Ok(Some((name.to_string(), value)))
    }

    /// A value without quotes: to the end of the line or a ` #` comment, trimmed.
    fn bare(&mut self) -> String {
        let end = self.rest.find('\n').unwrap_or(self.rest.len());
        let mut value = &self.rest[..end];
        if let Some(comment) = value.find(" #").or_else(|| value.find("\t#")) {
            value = &value[..comment];
        }
        self.rest = &self.rest[end..];
        value.trim().to_string()
    }

    /// A value in quotes, which may run over several lines; double quotes take escapes.
    fn quoted(&mut self, quote: char, opened: usize) -> Result<String, DotenvError> {
        let mut value = String::new();
        let mut chars = self.rest[1..].char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.rest = &self.rest[1 + at + 1..];
                    return Ok(value);
                }
                '\\' if quote == '"' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some('\n') => self.line += 1,
                    Some(other @ ('\\' | '"' | '$' | '\'')) => value.push(other),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => break,
                },
                c => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    value.push(c);
                }
            }
        }
        Err(DotenvError { line: opened, problem: "a quote is opened and never closed" })
    }

    fn skip_blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r']);
    }

    /// Past the end of the current line.
    fn skip_line(&mut self) {
        match self.rest.find('\n') {
            Some(end) => {
                self.rest = &self.rest[end + 1..];
                self.line += 1;
            }
            None => self.rest = "",
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn bare_values_are_trimmed_and_stop_at_a_comment() {
        let text = "# a comment\n\nA=1\n  B = two words  \nC=x#y\nD=kept # dropped\nexport E=5\nF=\n";
        assert_eq!(
            pairs(text),
            [
                pair("A", "1"),
                pair("B", "two words"),
                pair("C", "x#y"),
                pair("D", "kept"),
                pair("E", "5"),
                pair("F", "")
            ]
        );
    }

    #[test]
    fn single_quotes_keep_what_they_hold_and_double_quotes_read_escapes() {
        let text = "A='$x \\n # not a comment'\nB=\"tab\\there\\nnext \\\"q\\\" \\\\ \\$\"\n";
        assert_eq!(pairs(text), [pair("A", "$x \\n # not a comment"), pair("B", "tab\there\nnext \"q\" \\ $")]);
    }

    #[test]
    fn quoted_values_run_over_lines_and_the_line_count_follows() {
        let text = "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nNEXT='a\nb' # c\nBAD\"";
        let error = parse(text).unwrap_err();
        assert_eq!(error.line, 6, "the quote opened on line 6 is never closed");
        let text = "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nNEXT='a\nb' # c\n";
        assert_eq!(pairs(text), [pair("KEY", "-----BEGIN KEY-----\nabc\n-----END KEY-----"), pair("NEXT", "a\nb")]);
    }

    #[test]
    fn a_name_alone_gives_nothing_and_crlf_lines_read_as_lf() {
        assert_eq!(pairs("PATH\r\nA=1\r\nexport B\n"), [pair("A", "1")]);
    }

    #[test]
    fn mistakes_name_the_line_and_never_the_value() {
        for (text, line) in [
            ("A=1\n=secret\n", 2),
            ("A=1\nB secret\n", 2),
            ("1A=secret\n", 1),
            ("A=\"secret\" tail\n", 1),
            ("\n\nA='secret\n", 3),
            ("A=\"sec\0ret\"\n", 1),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
    }
}
