//! A parser for the `.npy` header: a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
//!
//! It accepts exactly the subset numpy writes (strings, `True`/`False`, integers, tuples and
//! lists) and insists on the three keys numpy requires, so every other input is an error message
//! rather than a guess.

/// The three fields of a `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// The dtype string (`<f4`); for a structured dtype, the source text of its list.
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The dims.
    pub shape: Vec<usize>,
}

/// A Python literal value.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(i128),
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
    None,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.rest().chars().next()
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {} of the header", self.pos))
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Lit, String> {
        self.depth += 1;
        if self.depth > 32 {
            return self.err("nesting too deep");
        }
        let v = match self.peek() {
            Some(q @ ('\'' | '"')) => self.string(q),
            Some(open @ ('(' | '[')) => {
                self.pos += 1;
                let close = if open == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.value()?);
                    if !self.eat(',') && self.peek() != Some(close) {
                        return self.err(&format!("expected `,` or `{close}`"));
                    }
                }
                Ok(Lit::Seq(items))
            }
            Some('{') => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.eat('}') {
                    let k = self.value()?;
                    if !self.eat(':') {
                        return self.err("expected `:`");
                    }
                    items.push((k, self.value()?));
                    if !self.eat(',') && self.peek() != Some('}') {
                        return self.err("expected `,` or `}`");
                    }
                }
                Ok(Lit::Dict(items))
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let r = self.rest();
                let len = 1 + r[1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(r.len() - 1);
                let text = &r[..len];
                self.pos += len;
                // A trailing `L` is how Python 2 wrote long integers.
                self.eat('L');
                text.parse()
                    .map(Lit::Int)
                    .or_else(|_| self.err(&format!("bad integer `{text}`")))
            }
            Some(_) => {
                let r = self.rest();
                let len = r
                    .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .unwrap_or(r.len());
                let word = &r[..len];
                self.pos += len;
                match word {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    "" => self.err("unexpected character"),
                    _ => self.err(&format!("unexpected `{word}`")),
                }
            }
            None => self.err("unexpected end"),
        };
        self.depth -= 1;
        v
    }

    fn string(&mut self, quote: char) -> Result<Lit, String> {
        self.pos += 1;
        let r = self.rest();
        match r.find(quote) {
            Some(end) if !r[..end].contains('\\') => {
                self.pos += end + 1;
                Ok(Lit::Str(r[..end].to_string()))
            }
            Some(_) => self.err("escape sequences in strings are not supported"),
            None => self.err("unterminated string"),
        }
    }
}

/// Parses a header dict (the text after the length field, trailing spaces and newline included).
pub(crate) fn parse(src: &str) -> Result<Header, String> {
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    if p.peek() != Some('{') {
        return p.err("expected a dict (`{`)");
    }
    let start = p.pos;
    let Lit::Dict(items) = p.value()? else {
        return p.err("expected a dict");
    };
    if p.peek().is_some() {
        return p.err("unexpected text after the dict");
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in items {
        let Lit::Str(k) = k else {
            return Err("a header key is not a string".to_string());
        };
        let slot = match k.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            _ => {
                return Err(format!(
                    "unexpected key `{k}` (expected descr, fortran_order, shape)"
                ))
            }
        };
        if slot.replace(v).is_some() {
            return Err(format!("key `{k}` appears twice"));
        }
    }
    let descr = match descr {
        Some(Lit::Str(s)) => s,
        // A structured dtype (a list of fields): report its text as the unsupported descr.
        Some(Lit::Seq(_)) => src[start..].trim_end().to_string(),
        Some(_) => return Err("`descr` is not a string".to_string()),
        None => return Err("missing key `descr`".to_string()),
    };
    let fortran_order = match fortran {
        Some(Lit::Bool(b)) => b,
        Some(_) => return Err("`fortran_order` is not True or False".to_string()),
        None => return Err("missing key `fortran_order`".to_string()),
    };
    let shape = match shape {
        Some(Lit::Seq(dims)) => dims
            .into_iter()
            .map(|d| match d {
                Lit::Int(i) => usize::try_from(i).map_err(|_| format!("bad dim {i} in `shape`")),
                _ => Err("`shape` holds something that is not an integer".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("`shape` is not a tuple".to_string()),
        None => return Err("missing key `shape`".to_string()),
    };
    Ok(Header {
        descr,
        fortran_order,
        shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_numpy_writes() {
        let h = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }   \n").unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f4".into(),
                fortran_order: false,
                shape: vec![2, 3]
            }
        );
        let h = parse("{\"descr\":\"|b1\",\"fortran_order\":True,\"shape\":()}").unwrap();
        assert_eq!(h.shape, Vec::<usize>::new());
        assert!(h.fortran_order);
        assert_eq!(
            parse("{'descr':'<i8','fortran_order':False,'shape':(7L,)}")
                .unwrap()
                .shape,
            vec![7]
        );
    }

    #[test]
    fn structured_dtypes_keep_their_text() {
        let h = parse("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}").unwrap();
        assert!(h.descr.contains("('a', '<f4')"));
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "[]",
            "{'descr': '<f4'}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': ()}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 'x')}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': ()} junk",
            "{'descr: '<f4'",
            "{'descr': '<f4' 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': Nope, 'shape': ()}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999,)}",
            &"[".repeat(100),
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
