//! Op attributes in text: the parsed `{...}` block (raw spans), and typed extraction of fields
//! (the runtime's `AttrReader`) with errors at the attribute's position.

use super::lexer::{Lexer, Source, Tok};
use super::values::{parse_f64, parse_i64};
use crate::error::{Error, Result};
use crate::ir::Dim;
use kiln_runtime::ops::AttrReader;
use std::collections::HashSet;

/// A parsed value: the raw span of a scalar (interpreted by the field's type), or a list.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    Scalar(usize, usize),
    List(usize, Vec<Parsed>),
}

/// One `name = value` of a block, with the byte offset of the name.
#[derive(Debug, Clone)]
pub(crate) struct RawAttr {
    pub name: String,
    pub at: usize,
    pub value: Parsed,
}

/// How deeply attribute lists may nest (ops use one level).
const MAX_LIST_DEPTH: usize = 8;

fn parse_value(lx: &mut Lexer<'_>, depth: usize) -> Result<Parsed> {
    if lx.peek_char() == Some('[') {
        let open = lx.next()?.start;
        if depth >= MAX_LIST_DEPTH {
            return Err(lx.src.err(open, "attribute value nested too deeply"));
        }
        let mut items = Vec::new();
        if !lx.eat(']')? {
            loop {
                items.push(parse_value(lx, depth + 1)?);
                if lx.eat(']')? {
                    break;
                }
                lx.expect(',', "or `]` between list items")?;
            }
        }
        return Ok(Parsed::List(open, items));
    }
    let (start, end) = lx.raw_scalar();
    if start == end {
        let found = lx.peek()?.tok;
        let msg = format!("expected an attribute value, found {found}");
        return Err(lx.src.err(start, msg));
    }
    Ok(Parsed::Scalar(start, end))
}

/// Parses `{ name = value, ... }` (the `{` not yet consumed); duplicate names are errors.
pub(crate) fn parse_block(lx: &mut Lexer<'_>, op: &str) -> Result<Vec<RawAttr>> {
    lx.expect('{', "to open the attributes")?;
    let mut attrs: Vec<RawAttr> = Vec::new();
    let mut seen = HashSet::new();
    if lx.eat('}')? {
        return Ok(attrs);
    }
    loop {
        let t = lx.next()?;
        let Tok::Ident(name) = t.tok else {
            let msg = format!("expected an attribute name, found {}", t.tok);
            return Err(lx.src.err(t.start, msg));
        };
        if !seen.insert(name.clone()) {
            let msg = format!("duplicate attribute `{name}` for op `{op}`");
            return Err(lx.src.err(t.start, msg));
        }
        lx.expect('=', &format!("after attribute name `{name}`"))?;
        let value = parse_value(lx, 0)?;
        attrs.push(RawAttr {
            name: name.clone(),
            at: t.start,
            value,
        });
        if lx.eat('}')? {
            return Ok(attrs);
        }
        lx.expect(',', &format!("or `}}` after the value of `{name}`"))?;
    }
}

/// What a field conversion reports: `None` for "wrong kind", or an offset into the scalar's
/// text with a message (a dim expression's own error).
type ConvError = Option<(usize, String)>;

/// Typed access to a node's attributes. Getters never fail: they record the first problem
/// and return a placeholder; [`Fields::finish`] reports unknown attributes first, then that.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    src: &'a Source<'a>,
    op: &'a str,
    op_at: usize,
    attrs: Vec<RawAttr>,
    used: Vec<bool>,
    wanted: Vec<&'static str>,
    error: Option<Error>,
}

impl<'a> Fields<'a> {
    pub fn new(src: &'a Source<'a>, op: &'a str, op_at: usize, attrs: Vec<RawAttr>) -> Self {
        let used = vec![false; attrs.len()];
        Fields {
            src,
            op,
            op_at,
            attrs,
            used,
            wanted: Vec::new(),
            error: None,
        }
    }

    fn fail(&mut self, at: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(self.src.err(at, message));
        }
    }

    fn take(&mut self, name: &'static str) -> Option<Parsed> {
        self.wanted.push(name);
        match self.attrs.iter().position(|a| a.name == name) {
            Some(i) => {
                self.used[i] = true;
                Some(self.attrs[i].value.clone())
            }
            None => {
                let msg = format!("op `{}` is missing attribute `{name}`", self.op);
                self.fail(self.op_at, msg);
                None
            }
        }
    }

    fn convert<T>(
        &mut self,
        p: &Parsed,
        name: &str,
        what: &str,
        conv: &dyn Fn(&str) -> Result<T, ConvError>,
    ) -> Option<T> {
        let (start, end) = match p {
            Parsed::Scalar(s, e) => (*s, *e),
            Parsed::List(at, _) => {
                let msg = format!(
                    "attribute `{name}` of op `{}` must be {what}, found a list",
                    self.op
                );
                self.fail(*at, msg);
                return None;
            }
        };
        let text = &self.src.text[start..end];
        match conv(text) {
            Ok(v) => Some(v),
            Err(None) => {
                let msg = format!(
                    "attribute `{name}` of op `{}` must be {what}, found `{text}`",
                    self.op
                );
                self.fail(start, msg);
                None
            }
            Err(Some((off, m))) => {
                let msg = format!(
                    "bad dimension `{text}` in attribute `{name}` of op `{}`: {m}",
                    self.op
                );
                self.fail(start + off, msg);
                None
            }
        }
    }

    fn one<T>(
        &mut self,
        name: &'static str,
        what: &str,
        conv: &dyn Fn(&str) -> Result<T, ConvError>,
    ) -> Option<T> {
        let p = self.take(name)?;
        self.convert(&p, name, what, conv)
    }

    fn list<T>(
        &mut self,
        name: &'static str,
        what: &str,
        conv: &dyn Fn(&str) -> Result<T, ConvError>,
    ) -> Vec<T> {
        match self.take(name) {
            None => Vec::new(),
            Some(Parsed::Scalar(at, _)) => {
                let msg = format!(
                    "attribute `{name}` of op `{}` must be a list of {what}",
                    self.op
                );
                self.fail(at, msg);
                Vec::new()
            }
            Some(Parsed::List(_, items)) => items
                .iter()
                .filter_map(|p| self.convert(p, name, what, conv))
                .collect(),
        }
    }

    /// Fails on the first attribute the op does not take, else on the first recorded problem.
    pub fn finish(self) -> Result<()> {
        if let Some(i) = self.used.iter().position(|u| !u) {
            let a = &self.attrs[i];
            let takes = if self.wanted.is_empty() {
                "it takes none".to_string()
            } else {
                format!("it takes {}", self.wanted.join(", "))
            };
            let msg = format!(
                "unknown attribute `{}` for op `{}` ({takes})",
                a.name, self.op
            );
            return Err(self.src.err(a.at, msg));
        }
        self.error.map_or(Ok(()), Err)
    }
}

impl AttrReader for Fields<'_> {
    fn int(&mut self, name: &'static str) -> i64 {
        self.one(name, "an integer", &|t| parse_i64(t).ok_or(None))
            .unwrap_or_default()
    }

    fn ints(&mut self, name: &'static str) -> Vec<i64> {
        self.list(name, "integers", &|t| parse_i64(t).ok_or(None))
    }

    fn uint32(&mut self, name: &'static str) -> u32 {
        self.one(name, "an integer in 0..2^32", &|t| {
            parse_i64(t).and_then(|v| u32::try_from(v).ok()).ok_or(None)
        })
        .unwrap_or_default()
    }

    fn opt_int(&mut self, name: &'static str) -> Option<i64> {
        self.one(name, "an integer or `none`", &|t| match t {
            "none" => Ok(None),
            _ => parse_i64(t).map(Some).ok_or(None),
        })
        .flatten()
    }

    fn float(&mut self, name: &'static str) -> f64 {
        self.one(name, "a number", &|t| parse_f64(t).ok_or(None))
            .unwrap_or_default()
    }

    fn boolean(&mut self, name: &'static str) -> bool {
        self.one(name, "`true` or `false`", &|t| match t {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(None),
        })
        .unwrap_or_default()
    }

    fn dim(&mut self, name: &'static str) -> Dim {
        self.one(name, "a dimension", &dim_conv)
            .unwrap_or_else(|| Dim::known(0))
    }

    fn dims(&mut self, name: &'static str) -> Vec<Dim> {
        self.list(name, "dimensions", &dim_conv)
    }

    fn word(&mut self, name: &'static str, names: &[&'static str]) -> usize {
        let what = format!("one of {}", names.join(", "));
        let conv = |t: &str| names.iter().position(|&n| n == t).ok_or(None);
        self.one(name, &what, &conv).unwrap_or(0)
    }

    fn floats(&mut self, name: &'static str) -> Vec<f64> {
        self.list(name, "numbers", &|t| parse_f64(t).ok_or(None))
    }

    fn words(&mut self, name: &'static str, names: &[&'static str]) -> Vec<usize> {
        let what = format!("names among {}", names.join(", "));
        let conv = |t: &str| names.iter().position(|&n| n == t).ok_or(None);
        self.list(name, &what, &conv)
    }
}

fn dim_conv(t: &str) -> Result<Dim, ConvError> {
    Dim::parse(t).map_err(|e| Some((e.offset, e.message)))
}
