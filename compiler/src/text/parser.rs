//! The parser: statements in order (def-before-use), each node type-checked against shape
//! inference as it is read, then the whole graph verified; every error carries line:col.

use super::attrs::{parse_block, Fields};
use super::lexer::{Lexer, Name, Source, Tok, Token};
use super::values::parse_literal;
use super::FORMAT_VERSION;
use crate::error::{Error, Result};
use crate::ir::infer::infer_types;
use crate::ir::{DType, Dim, Graph, NodeId, Op, Shape, TensorType, ValueDef, ValueId, Weight};
use std::collections::{HashMap, HashSet};

/// Parses and verifies a whole document.
pub(crate) fn parse_graph(text: &str) -> Result<Graph> {
    let src = Source::new(text);
    let mut p = Parser {
        lx: Lexer::new(&src),
        src: &src,
        g: Graph::new(),
        values: HashMap::new(),
        weights: HashMap::new(),
        node_at: HashMap::new(),
        output_names: HashSet::new(),
    };
    p.header()?;
    let close = p.statements()?;
    let rest = p.lx.skip_trivia();
    if rest < text.len() {
        return Err(src.err(rest, "unexpected text after the closing `}` of the graph"));
    }
    match crate::verify(&p.g) {
        Ok(()) => Ok(p.g),
        Err(e) => {
            let at = match &e {
                Error::Verify { node, .. } => node
                    .strip_prefix('#')
                    .and_then(|n| n.parse().ok())
                    .and_then(|n: u32| p.node_at.get(&n).copied())
                    .unwrap_or(close),
                _ => close,
            };
            Err(src.err(at, e.to_string()))
        }
    }
}

/// A type as written, with the offsets of the type and of each dim.
struct TypeAt {
    ty: TensorType,
    at: usize,
    dims_at: Vec<usize>,
}

struct Parser<'a> {
    lx: Lexer<'a>,
    src: &'a Source<'a>,
    g: Graph,
    /// `%` names (graph inputs and node results) → value and defining offset.
    values: HashMap<Name, (ValueId, usize)>,
    /// `@` names → value and defining offset.
    weights: HashMap<Name, (ValueId, usize)>,
    /// Node id → offset of its line's first token, for verifier errors.
    node_at: HashMap<u32, usize>,
    output_names: HashSet<String>,
}

impl Parser<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> Error {
        self.src.err(at, message)
    }

    fn unexpected(&self, t: &Token, wanted: &str) -> Error {
        self.err(t.start, format!("expected {wanted}, found {}", t.tok))
    }

    fn keyword(&mut self, word: &str, wanted: &str) -> Result<()> {
        let t = self.lx.next()?;
        match &t.tok {
            Tok::Ident(w) if w == word => Ok(()),
            _ => Err(self.unexpected(&t, wanted)),
        }
    }

    fn header(&mut self) -> Result<()> {
        self.keyword("kir", "the header `kir 1`")?;
        let t = self.lx.next()?;
        let text = self.lx.text(t.start, t.end);
        if t.tok != Tok::Number {
            return Err(self.unexpected(&t, "the format version after `kir`"));
        }
        if text.parse::<u32>().ok() != Some(FORMAT_VERSION) {
            let msg = format!("unsupported format version `{text}` (expected {FORMAT_VERSION})");
            return Err(self.err(t.start, msg));
        }
        self.keyword("graph", "`graph` after the header")?;
        self.lx.expect('{', "after `graph`")?;
        Ok(())
    }

    /// Every statement up to the closing `}`; returns the offset of that `}`.
    fn statements(&mut self) -> Result<usize> {
        loop {
            let t = self.lx.peek()?;
            match &t.tok {
                Tok::Punct('}') => {
                    self.lx.next()?;
                    return Ok(t.start);
                }
                Tok::Ident(w) if w == "input" => self.input()?,
                Tok::Ident(w) if w == "weight" => self.weight()?,
                Tok::Ident(w) if w == "output" => self.output()?,
                Tok::Value(_) => self.node()?,
                _ => {
                    let wanted = "`input`, `weight`, `output`, a node (`%0 = ...`) or `}`";
                    return Err(self.unexpected(&t, wanted));
                }
            }
        }
    }

    fn check_fresh(&self, name: &Name, sigil: char, at: usize) -> Result<()> {
        let map = if sigil == '%' {
            &self.values
        } else {
            &self.weights
        };
        if let Some(&(_, first)) = map.get(name) {
            let line = self.src.loc(first).0;
            let msg = format!(
                "redefinition of `{}` (first defined on line {line})",
                name.show(sigil)
            );
            return Err(self.err(at, msg));
        }
        Ok(())
    }

    /// `dtype[dim, ...]`.
    fn ty(&mut self) -> Result<TypeAt> {
        let t = self.lx.next()?;
        let Tok::Ident(name) = &t.tok else {
            return Err(self.unexpected(&t, "a type such as `f32[batch, 4]`"));
        };
        let dtype = DType::from_name(name).map_err(|e| self.err(t.start, e.to_string()))?;
        self.lx.expect('[', &format!("after the dtype `{name}`"))?;
        let (mut dims, mut dims_at) = (Vec::new(), Vec::new());
        if !self.lx.eat(']')? {
            loop {
                let (s, e) = self.lx.raw_scalar();
                if s == e {
                    let found = self.lx.peek()?;
                    return Err(self.unexpected(&found, "a dimension"));
                }
                let text = self.lx.text(s, e);
                let d = Dim::parse(text).map_err(|de| {
                    let msg = format!("bad dimension `{text}`: {}", de.message);
                    self.err(s + de.offset, msg)
                })?;
                dims.push(d);
                dims_at.push(s);
                if self.lx.eat(']')? {
                    break;
                }
                self.lx.expect(',', "or `]` between dimensions")?;
            }
        }
        Ok(TypeAt {
            ty: TensorType::new(dtype, Shape(dims)),
            at: t.start,
            dims_at,
        })
    }

    /// `input %name: type`.
    fn input(&mut self) -> Result<()> {
        self.lx.next()?;
        let t = self.lx.next()?;
        let Tok::Value(name) = t.tok else {
            return Err(self.unexpected(&t, "`%name` after `input`"));
        };
        self.check_fresh(&name, '%', t.start)?;
        self.lx
            .expect(':', &format!("after input `{}`", name.show('%')))?;
        let ty = self.ty()?.ty;
        let text = match &name {
            Name::Num(n) => n.to_string(),
            Name::Text(s) => s.clone(),
        };
        let v = self.g.add_input(text, ty);
        self.values.insert(name, (v, t.start));
        Ok(())
    }

    /// `weight @N "name": type = [values] | opaque`.
    fn weight(&mut self) -> Result<()> {
        self.lx.next()?;
        let t = self.lx.next()?;
        let Tok::Weight(name) = t.tok else {
            return Err(self.unexpected(&t, "`@N` after `weight`"));
        };
        self.check_fresh(&name, '@', t.start)?;
        let s = self.lx.next()?;
        let Tok::Str(wname) = s.tok else {
            return Err(self.unexpected(&s, "the weight's name as a string"));
        };
        self.lx.expect(':', "after the weight's name")?;
        let ty = self.ty()?;
        let mut shape = Vec::new();
        for (d, &at) in ty.ty.shape.0.iter().zip(&ty.dims_at) {
            match d.as_known().and_then(|k| usize::try_from(k).ok()) {
                Some(k) => shape.push(k),
                None => {
                    let msg =
                        format!("a weight's dims must be known non-negative integers, found `{d}`");
                    return Err(self.err(at, msg));
                }
            }
        }
        let dtype = ty.ty.dtype;
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|n| n.checked_mul(dtype.size()).is_some())
            .ok_or_else(|| self.err(ty.at, format!("weight type {} is too large", ty.ty)))?;
        self.lx.expect('=', "after the weight's type")?;
        let next = self.lx.peek()?;
        let w = if matches!(&next.tok, Tok::Ident(w) if w == "opaque") {
            self.lx.next()?;
            Weight::opaque(wname, dtype, shape)
        } else {
            let bytes = parse_literal(&mut self.lx, dtype, numel, &ty.ty.to_string())?;
            Weight::from_bytes(wname, dtype, shape, bytes.into())
                .map_err(|e| self.err(next.start, e.to_string()))?
        };
        let v = self.g.add_weight(w);
        self.weights.insert(name, (v, t.start));
        Ok(())
    }

    /// `output "name" = operand`.
    fn output(&mut self) -> Result<()> {
        self.lx.next()?;
        let t = self.lx.next()?;
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(&t, "the output's name as a string after `output`"));
        };
        if !self.output_names.insert(name.clone()) {
            let msg = format!("output {} is declared twice", super::quote(&name));
            return Err(self.err(t.start, msg));
        }
        self.lx.expect('=', "after the output's name")?;
        let (v, _) = self.operand()?;
        self.g.add_output(name, v);
        Ok(())
    }

    /// `%name` or `@N`, which must already be defined.
    fn operand(&mut self) -> Result<(ValueId, usize)> {
        let t = self.lx.next()?;
        let (map, name, sigil) = match &t.tok {
            Tok::Value(n) => (&self.values, n, '%'),
            Tok::Weight(n) => (&self.weights, n, '@'),
            _ => return Err(self.unexpected(&t, "an operand (`%name` or `@N`)")),
        };
        match map.get(name) {
            Some(&(v, _)) => Ok((v, t.start)),
            None => {
                let msg = format!("use of undefined value `{}`", name.show(sigil));
                Err(self.err(t.start, msg))
            }
        }
    }

    /// `%a[, %b...] = op(operands) {attrs} : type[, type...]`.
    fn node(&mut self) -> Result<()> {
        let first = self.lx.peek()?.start;
        let mut results: Vec<(Name, usize)> = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let t = self.lx.next()?;
            let Tok::Value(name) = t.tok else {
                return Err(self.unexpected(&t, "a result name (`%N`)"));
            };
            self.check_fresh(&name, '%', t.start)?;
            if !seen.insert(name.clone()) {
                let msg = format!("redefinition of `{}` on the same line", name.show('%'));
                return Err(self.err(t.start, msg));
            }
            results.push((name, t.start));
            if !self.lx.eat(',')? {
                break;
            }
        }
        self.lx.expect('=', "after the result names")?;
        let t = self.lx.next()?;
        let Tok::Ident(opname) = t.tok else {
            return Err(self.unexpected(&t, "an op name after `=`"));
        };
        let op_at = t.start;
        self.lx.expect('(', &format!("after op name `{opname}`"))?;
        let mut operands = Vec::new();
        if !self.lx.eat(')')? {
            loop {
                operands.push(self.operand()?.0);
                if self.lx.eat(')')? {
                    break;
                }
                self.lx.expect(',', "or `)` between operands")?;
            }
        }
        let attrs = if self.lx.peek()?.tok == Tok::Punct('{') {
            parse_block(&mut self.lx, &opname)?
        } else {
            Vec::new()
        };
        self.lx.expect(':', "before the result types")?;
        let mut types = vec![self.ty()?];
        while self.lx.eat(',')? {
            types.push(self.ty()?);
        }

        let mut fields = Fields::new(self.src, &opname, op_at, attrs);
        let op = Op::from_text(&opname, &mut fields)
            .ok_or_else(|| self.err(op_at, format!("unknown op `{opname}`")))?;
        fields.finish()?;
        if results.len() != op.num_outputs() {
            let msg = format!(
                "op `{opname}` gives {} result(s), but {} name(s) are given",
                op.num_outputs(),
                results.len()
            );
            return Err(self.err(first, msg));
        }
        if types.len() != results.len() {
            let msg = format!(
                "{} result name(s) but {} type(s)",
                results.len(),
                types.len()
            );
            return Err(self.err(types[0].at, msg));
        }
        let (min, max) = op.arity();
        let n = operands.len();
        if n < min || max.is_some_and(|m| n > m) {
            let want = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            let msg = format!("op `{opname}` takes {want} operand(s), found {n}");
            return Err(self.err(op_at, msg));
        }
        let input_types: Vec<TensorType> = operands
            .iter()
            .map(|&v| self.g.value(v).ty.clone())
            .collect();
        let inferred = infer_types(&op, &input_types).map_err(|e| {
            let msg = match e {
                Error::Type { .. } => e.to_string(),
                other => format!("{opname}: {other}"),
            };
            self.err(op_at, msg)
        })?;
        for (i, decl) in types.iter().enumerate() {
            match inferred.get(i) {
                Some(want) if *want == decl.ty => {}
                Some(want) => {
                    let msg = format!("declared {} but {opname} gives {want}", decl.ty);
                    return Err(self.err(decl.at, msg));
                }
                None => {
                    let msg = format!("{opname} gives {} result(s)", inferred.len());
                    return Err(self.err(decl.at, msg));
                }
            }
        }
        let tys = types.into_iter().map(|t| t.ty).collect();
        let outs = self.g.add_node_typed(op, &operands, tys, None);
        if let Some(ValueDef::Node {
            node: NodeId(id), ..
        }) = outs.first().map(|&v| self.g.value(v).def)
        {
            self.node_at.insert(id, first);
        }
        for ((name, at), v) in results.into_iter().zip(outs) {
            self.values.insert(name, (v, at));
        }
        Ok(())
    }
}
