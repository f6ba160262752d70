//! Tokens of `.kir` text, byte offsets → line/column, and raw spans for dim expressions.

use super::is_name_char;
use crate::error::{Error, Result};
use std::fmt;

/// The source text with its line starts, for turning byte offsets into 1-based line/column.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    pub text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn loc(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    /// A parse error at a byte offset.
    pub fn err(&self, offset: usize, message: impl Into<String>) -> Error {
        let (line, col) = self.loc(offset);
        Error::Parse {
            line,
            col,
            message: message.into(),
        }
    }
}

/// The name after a `%` or `@` sigil: a number (`%0`) or text (`%x`, `%"a b"`). Numbers and
/// texts never collide: `%0` and `%"0"` are different values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Name {
    Num(u64),
    Text(String),
}

impl Name {
    /// The name as written after its sigil (`%0`, `%x`, `@"q k"`).
    pub fn show(&self, sigil: char) -> String {
        match self {
            Name::Num(n) => format!("{sigil}{n}"),
            Name::Text(t) if super::is_bare_name(t) => format!("{sigil}{t}"),
            Name::Text(t) => format!("{sigil}{}", super::quote(t)),
        }
    }
}

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word: letters, digits and `_`, starting with a letter or `_`.
    Ident(String),
    /// A number-like run (`12`, `-1.5e3`, `3x`); its text is the span, checked where used.
    Number,
    /// A string literal, unescaped.
    Str(String),
    /// `%name`.
    Value(Name),
    /// `@name`.
    Weight(Name),
    /// One of `= , : ( ) [ ] { } -`.
    Punct(char),
    /// End of input.
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Number => f.write_str("a number"),
            Tok::Str(_) => f.write_str("a string"),
            Tok::Value(n) => write!(f, "`{}`", n.show('%')),
            Tok::Weight(n) => write!(f, "`{}`", n.show('@')),
            Tok::Punct(c) => write!(f, "`{c}`"),
            Tok::Eof => f.write_str("the end of the input"),
        }
    }
}

/// A token with its byte span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// An on-demand tokenizer; the parser mixes token reads with raw span reads (dims).
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    pub src: &'a Source<'a>,
    pos: usize,
    peeked: Option<(usize, Token)>,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a Source<'a>) -> Lexer<'a> {
        Lexer {
            src,
            pos: 0,
            peeked: None,
        }
    }

    fn byte(&self, i: usize) -> Option<u8> {
        self.src.text.as_bytes().get(i).copied()
    }

    /// Skips whitespace and `#` comments; returns the new position.
    pub fn skip_trivia(&mut self) -> usize {
        while let Some(b) = self.byte(self.pos) {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if b == b'#' {
                while self.byte(self.pos).is_some_and(|b| b != b'\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
        self.pos
    }

    /// The next token without consuming it.
    pub fn peek(&mut self) -> Result<Token> {
        if let Some((at, t)) = &self.peeked {
            if *at == self.pos {
                return Ok(t.clone());
            }
        }
        let at = self.pos;
        let t = self.lex()?;
        self.pos = at;
        self.peeked = Some((at, t.clone()));
        Ok(t)
    }

    /// Consumes and returns the next token.
    pub fn next(&mut self) -> Result<Token> {
        let t = self.peek()?;
        self.pos = t.end;
        Ok(t)
    }

    /// Consumes the next token if it is the punctuation `c`.
    pub fn eat(&mut self, c: char) -> Result<bool> {
        if self.peek()?.tok == Tok::Punct(c) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Consumes the punctuation `c` or fails with "expected `c` <context>".
    pub fn expect(&mut self, c: char, context: &str) -> Result<Token> {
        let t = self.peek()?;
        if t.tok == Tok::Punct(c) {
            return self.next();
        }
        Err(self.src.err(
            t.start,
            format!("expected `{c}` {context}, found {}", t.tok),
        ))
    }

    /// The text of a span.
    pub fn text(&self, start: usize, end: usize) -> &'a str {
        &self.src.text[start..end]
    }

    fn run(&mut self, ok: impl Fn(u8) -> bool) {
        while self.byte(self.pos).is_some_and(&ok) {
            self.pos += 1;
        }
    }

    fn lex(&mut self) -> Result<Token> {
        let start = self.skip_trivia();
        let Some(b) = self.byte(start) else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let tok = match b {
            b'-' if !self.byte(start + 1).is_some_and(|b| b.is_ascii_digit()) => {
                self.pos += 1;
                Tok::Punct('-')
            }
            b'-' | b'0'..=b'9' => {
                self.pos += 1;
                let mut prev = b;
                while let Some(c) = self.byte(self.pos) {
                    let exp_sign = (c == b'+' || c == b'-') && (prev == b'e' || prev == b'E');
                    if !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign) {
                        break;
                    }
                    prev = c;
                    self.pos += 1;
                }
                Tok::Number
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                self.run(|c| c.is_ascii_alphanumeric() || c == b'_');
                Tok::Ident(self.text(start, self.pos).to_string())
            }
            b'"' => Tok::Str(self.string()?),
            b'%' | b'@' => {
                self.pos += 1;
                let name = self.name(b as char)?;
                if b == b'%' {
                    Tok::Value(name)
                } else {
                    Tok::Weight(name)
                }
            }
            b'=' | b',' | b':' | b'(' | b')' | b'[' | b']' | b'{' | b'}' => {
                self.pos += 1;
                Tok::Punct(b as char)
            }
            _ => {
                let c = self.src.text[start..].chars().next().unwrap_or('?');
                return Err(self.src.err(start, format!("unexpected character {c:?}")));
            }
        };
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    /// The name after a sigil at `self.pos - 1`.
    fn name(&mut self, sigil: char) -> Result<Name> {
        let start = self.pos;
        match self.byte(start) {
            Some(b'"') => Ok(Name::Text(self.string()?)),
            Some(b) if b.is_ascii_alphanumeric() || b == b'_' => {
                self.run(|c| is_name_char(c as char));
                let text = self.text(start, self.pos);
                if !b.is_ascii_digit() {
                    return Ok(Name::Text(text.to_string()));
                }
                if !text.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(self.src.err(
                        start - 1,
                        format!("bad name `{sigil}{text}`: a name starting with a digit must be a number"),
                    ));
                }
                text.parse().map(Name::Num).map_err(|_| {
                    self.src
                        .err(start - 1, format!("number in `{sigil}{text}` is too large"))
                })
            }
            _ => Err(self
                .src
                .err(start - 1, format!("expected a name after `{sigil}`"))),
        }
    }

    /// A string literal starting at `self.pos` (which holds `"`), unescaped.
    fn string(&mut self) -> Result<String> {
        let open = self.pos;
        let text = self.src.text;
        let mut out = String::new();
        let mut chars = text[open + 1..].char_indices();
        let unterminated = || self.src.err(open, "unterminated string");
        loop {
            let Some((i, c)) = chars.next() else {
                return Err(unterminated());
            };
            match c {
                '"' => {
                    self.pos = open + 1 + i + 1;
                    return Ok(out);
                }
                '\n' => return Err(unterminated()),
                '\\' => {
                    let at = open + 1 + i;
                    let bad =
                        |what: &str| self.src.err(at, format!("bad escape in string: {what}"));
                    match chars.next().map(|(_, c)| c) {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some('u') => {
                            let rest = &text[open + 1 + i + 2..];
                            let close = rest
                                .bytes()
                                .take(8)
                                .position(|b| b == b'}')
                                .filter(|_| rest.starts_with('{'));
                            let code = close
                                .and_then(|c| u32::from_str_radix(&rest[1..c], 16).ok())
                                .and_then(char::from_u32);
                            let (Some(close), Some(ch)) = (close, code) else {
                                return Err(bad("expected `\\u{hex}` with a valid code point"));
                            };
                            out.push(ch);
                            for _ in 0..=close {
                                chars.next();
                            }
                        }
                        None => return Err(unterminated()),
                        Some(c) => return Err(bad(&format!("`\\{c}`"))),
                    }
                }
                c => out.push(c),
            }
        }
    }

    /// The next char after trivia, without consuming it.
    pub fn peek_char(&mut self) -> Option<char> {
        let at = self.skip_trivia();
        self.src.text[at..].chars().next()
    }

    /// A raw scalar span (a number, word or dim expression such as `max(seq, 2)*batch - 1`):
    /// the longest run of expression characters on this line, with `,` only inside parentheses.
    /// Returns the trimmed span (possibly empty) and consumes it.
    pub fn raw_scalar(&mut self) -> (usize, usize) {
        let start = self.skip_trivia();
        let operator = |b: u8| matches!(b, b'+' | b'-' | b'*' | b'/' | b'%');
        let mut depth = 0usize;
        let mut prev = b'(';
        while let Some(b) = self.byte(self.pos) {
            let in_parens = depth > 0;
            match b {
                b' ' | b'\t' => {
                    // Blanks may sit beside operators and parentheses, never between operands.
                    let mut next = self.pos;
                    while matches!(self.byte(next), Some(b' ' | b'\t')) {
                        next += 1;
                    }
                    let after = self.byte(next).unwrap_or(b'\n');
                    let joined = operator(prev) || prev == b'(' || (prev == b',' && in_parens);
                    if !(joined || operator(after) || after == b')' || (after == b',' && in_parens))
                    {
                        break;
                    }
                    self.pos = next;
                    continue;
                }
                b'(' => depth += 1,
                b')' | b',' if !in_parens => break,
                b')' => depth -= 1,
                b',' | b'_' | b'.' => {}
                b if operator(b) || b.is_ascii_alphanumeric() => {}
                _ => break,
            }
            prev = b;
            self.pos += 1;
        }
        let mut end = self.pos;
        while end > start && matches!(self.byte(end - 1), Some(b' ' | b'\t')) {
            end -= 1;
        }
        self.pos = end;
        (start, end)
    }
}
