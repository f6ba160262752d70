//! Parser for the text form of symbolic dimensions (`seq+1`, `batch*seq`, `(s+1)/2`, `max(a,b)`).

use super::Dim;
use std::fmt;

/// A dim expression that did not parse; `offset` is a byte offset into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimParseError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for DimParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

/// Parses a whole string as one dim expression.
pub fn parse(text: &str) -> Result<Dim, DimParseError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let d = p.expr()?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.err("unexpected character in dimension"));
    }
    Ok(d)
}

/// The names of dim functions, which cannot be symbols.
const FUNCTIONS: [&str; 4] = ["max", "min", "wide_add", "wide_mul"];

/// Whether `name` can be written as a bare symbol.
pub fn is_symbol_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !FUNCTIONS.contains(&name)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;
/// Most terms a parsed product may expand to.
const MAX_TERMS: usize = 256;

impl Parser<'_> {
    fn err(&self, message: &str) -> DimParseError {
        DimParseError {
            offset: self.pos,
            message: message.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), DimParseError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", c as char)))
        }
    }

    fn expr(&mut self) -> Result<Dim, DimParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("dimension expression nested too deeply"));
        }
        let mut acc = self.term()?;
        loop {
            match self.peek() {
                Some(b'+') => {
                    self.pos += 1;
                    acc = acc.add(&self.term()?);
                }
                Some(b'-') => {
                    self.pos += 1;
                    acc = acc.sub(&self.term()?);
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(acc)
    }

    fn term(&mut self) -> Result<Dim, DimParseError> {
        let mut acc = self.factor()?;
        loop {
            match self.peek() {
                Some(b'*') => {
                    self.pos += 1;
                    let rhs = self.factor()?;
                    // Products of sums expand multiplicatively; refuse before the work explodes.
                    if acc.num_terms().saturating_mul(rhs.num_terms()) > MAX_TERMS {
                        return Err(self.err("dimension expression too complex"));
                    }
                    acc = acc.mul(&rhs);
                }
                Some(b'/') => {
                    self.pos += 1;
                    acc = acc.floor_div(&self.factor()?);
                }
                Some(b'%') => {
                    self.pos += 1;
                    acc = acc.rem(&self.factor()?);
                }
                _ => break,
            }
        }
        Ok(acc)
    }

    fn factor(&mut self) -> Result<Dim, DimParseError> {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err("dimension expression nested too deeply"));
                }
                let d = self.factor()?.neg();
                self.depth -= 1;
                Ok(d)
            }
            Some(b'(') => {
                self.pos += 1;
                let d = self.expr()?;
                self.expect(b')')?;
                Ok(d)
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                text.parse::<i64>()
                    .map(Dim::known)
                    .map_err(|_| DimParseError {
                        offset: start,
                        message: "integer does not fit in i64".to_string(),
                    })
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                let name = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                if FUNCTIONS.contains(&name) {
                    self.expect(b'(')?;
                    let a = self.expr()?;
                    self.expect(b',')?;
                    let b = self.expr()?;
                    self.expect(b')')?;
                    // The wide forms reduce again when the operands do not overflow.
                    Ok(match name {
                        "max" => a.maximum(&b),
                        "min" => a.minimum(&b),
                        "wide_add" => a.add(&b),
                        _ => a.mul(&b),
                    })
                } else {
                    Ok(Dim::sym(name))
                }
            }
            Some(_) => Err(self.err("expected a number, a symbol or `(`")),
            None => Err(self.err("unexpected end of dimension")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::dim::Bindings;

    fn p(s: &str) -> Dim {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn canonical_forms_print_stably() {
        for (input, printed) in [
            ("seq + 1", "seq+1"),
            ("1 + seq", "seq+1"),
            ("seq*batch", "batch*seq"),
            ("batch*seq*384/12", "32*batch*seq"),
            ("batch*seq*384/seq", "384*batch"),
            ("(seq+1)/2", "(seq+1)/2"),
            ("seq - seq", "0"),
            ("2*(seq+1) - 2", "2*seq"),
            ("-seq + 3", "-seq+3"),
            ("max(seq, seq+1)", "seq+1"),
            ("max(b, a)", "max(a,b)"),
            ("min(4, 7)", "4"),
            ("7 % 3", "1"),
            ("-7 / 2", "-4"),
            ("batch*((seq+1)/2)", "batch*((seq+1)/2)"),
            ("seq*seq", "seq*seq"),
            ("-(batch/2)+6", "-(batch/2)+6"),
            ("6-batch/2", "-(batch/2)+6"),
            ("(2*seq)%seq", "0"),
        ] {
            let d = p(input);
            assert_eq!(d.to_string(), printed, "{input}");
            assert_eq!(p(printed), d, "reparse of {printed}");
        }
    }

    #[test]
    fn evaluates_against_bindings() {
        let b: Bindings = [("batch".to_string(), 3), ("seq".to_string(), 7)]
            .into_iter()
            .collect();
        assert_eq!(p("batch*seq+1").eval(&b), Ok(22));
        assert_eq!(p("(seq+1)/2").eval(&b), Ok(4));
        assert_eq!(p("seq % 4").eval(&b), Ok(3));
        assert_eq!(p("max(seq, batch*3)").eval(&b), Ok(9));
        assert!(p("other").eval(&b).is_err());
        assert!(p("seq / (batch - 3)").eval(&b).is_err());
        assert_eq!(p("(seq+1)/2").substitute(&b), Dim::known(4));
    }

    #[test]
    fn rejects_malformed_text_with_offsets() {
        for (bad, off) in [
            ("", 0),
            ("seq+", 4),
            ("(seq", 4),
            ("seq $", 4),
            ("max(a)", 5),
            ("99999999999999999999", 0),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.offset, off, "{bad}: {e}");
        }
        assert!(parse(&"(".repeat(1000)).is_err());
        assert!(parse(&"-".repeat(1000)).is_err());
        let blowup: Vec<String> = (0..14).map(|i| format!("(a{i}+b{i})")).collect();
        assert!(parse(&blowup.join("*"))
            .unwrap_err()
            .message
            .contains("too complex"));
    }
    fn arb_dim() -> impl proptest::strategy::Strategy<Value = Dim> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            (-20i64..20).prop_map(Dim::known),
            prop::sample::select(vec!["batch", "seq", "s0"]).prop_map(Dim::sym),
        ];
        leaf.prop_recursive(4, 24, 2, |inner| {
            (inner.clone(), inner, 0u8..7).prop_map(|(a, b, op)| match op {
                0 => a.add(&b),
                1 => a.sub(&b),
                2 => a.mul(&b),
                3 => a.floor_div(&b),
                4 => a.rem(&b),
                5 => a.maximum(&b),
                _ => a.minimum(&b).neg(),
            })
        })
    }

    proptest::proptest! {
        #[test]
        fn printed_dims_parse_back_to_themselves(d in arb_dim()) {
            let text = d.to_string();
            let back = parse(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
            proptest::prop_assert_eq!(back, d, "{}", text);
        }

        #[test]
        fn evaluation_agrees_with_the_printed_form(d in arb_dim(), b in 1i64..9, s in 1i64..9) {
            let bind: Bindings = [("batch".to_string(), b), ("seq".to_string(), s), ("s0".to_string(), 3)].into_iter().collect();
            let text = d.to_string();
            let back = parse(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(back.eval(&bind), d.eval(&bind));
        }
    }
}
