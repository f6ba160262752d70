//! Op attributes as text: the printed value of an attribute, the reader a text parser provides,
//! and how each attribute type is written and read (used by the code `define_ops!` generates).

use super::dim::Dim;
use crate::DType;
use std::fmt;

/// An attribute value as printed in `.kir` text.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// An integer.
    Int(i64),
    /// A number, printed by [`fmt_f64`].
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A dtype or enum name (`f16`, `reflect`, `tanh`).
    Ident(&'static str),
    /// An absent optional value.
    None,
    /// A symbolic dim.
    Dim(Dim),
    /// A list of values.
    List(Vec<AttrValue>),
}

/// An f64 in IR text: `nan`, `inf`, `-inf`, or Rust's shortest round-trip `{:?}` form.
pub fn fmt_f64(x: f64) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{x:?}")
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => f.write_str(&fmt_f64(*v)),
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Ident(s) => f.write_str(s),
            AttrValue::None => f.write_str("none"),
            AttrValue::Dim(d) => write!(f, "{d}"),
            AttrValue::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Typed reads of a node's attributes by name, implemented by a text parser. Getters never
/// fail: the reader records problems (with their positions) and returns a placeholder.
pub trait AttrReader {
    /// An integer.
    fn int(&mut self, name: &'static str) -> i64;
    /// A list of integers.
    fn ints(&mut self, name: &'static str) -> Vec<i64>;
    /// An integer in `0..2^32`.
    fn uint32(&mut self, name: &'static str) -> u32;
    /// An integer or `none`.
    fn opt_int(&mut self, name: &'static str) -> Option<i64>;
    /// A number.
    fn float(&mut self, name: &'static str) -> f64;
    /// `true` or `false`.
    fn boolean(&mut self, name: &'static str) -> bool;
    /// A dimension.
    fn dim(&mut self, name: &'static str) -> Dim;
    /// A list of dimensions.
    fn dims(&mut self, name: &'static str) -> Vec<Dim>;
    /// One of `names`, as its index (the placeholder is 0).
    fn word(&mut self, name: &'static str, names: &[&'static str]) -> usize;
    /// A list of numbers.
    fn floats(&mut self, name: &'static str) -> Vec<f64>;
    /// A list of words, each one of `names`, as their indices.
    fn words(&mut self, name: &'static str, names: &[&'static str]) -> Vec<usize>;
}

/// A type an op field can have. A *kind* (`UnaryOp`, `ReduceOp`, `PoolKind`...) is not written
/// as an attribute: it chooses the op's name instead (`exp`, `reduce_sum`, `max_pool`).
pub trait OpAttr: Sized {
    /// What equality and hashing of ops compare for this field: the value itself, or an f64's
    /// bits (so `Op` is `Eq + Hash`; NaN equals itself and `0.0` differs from `-0.0`).
    type Key<'a>: Eq + std::hash::Hash
    where
        Self: 'a;

    /// The field's comparison key.
    fn key(&self) -> Self::Key<'_>;

    /// For a kind: the op name this value gives its op.
    fn op_name(&self) -> Option<&'static str> {
        None
    }

    /// For a kind: whether `op` is one of the op names it gives.
    fn names_op(_op: &str) -> bool {
        false
    }

    /// The printed value; `None` for a kind.
    fn to_attr(&self) -> Option<AttrValue>;

    /// Reads the field called `name` of op `op` (a kind reads the op name instead).
    fn read(name: &'static str, op: &str, r: &mut impl AttrReader) -> Self;
}

impl OpAttr for i64 {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::Int(*self))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.int(name)
    }
}

impl OpAttr for u32 {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::Int(i64::from(*self)))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.uint32(name)
    }
}

impl OpAttr for Option<i64> {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(self.map_or(AttrValue::None, AttrValue::Int))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.opt_int(name)
    }
}

impl OpAttr for Vec<i64> {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::List(
            self.iter().map(|&x| AttrValue::Int(x)).collect(),
        ))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.ints(name)
    }
}

impl OpAttr for f64 {
    type Key<'a> = u64;

    fn key(&self) -> u64 {
        self.to_bits()
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::Float(*self))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.float(name)
    }
}

impl OpAttr for Vec<f64> {
    type Key<'a> = Vec<u64>;

    fn key(&self) -> Vec<u64> {
        self.iter().map(|x| x.to_bits()).collect()
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::List(
            self.iter().map(|&x| AttrValue::Float(x)).collect(),
        ))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.floats(name)
    }
}

impl OpAttr for bool {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::Bool(*self))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.boolean(name)
    }
}

impl OpAttr for Dim {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::Dim(self.clone()))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.dim(name)
    }
}

impl OpAttr for Vec<Dim> {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::List(
            self.iter().cloned().map(AttrValue::Dim).collect(),
        ))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        r.dims(name)
    }
}

impl OpAttr for DType {
    type Key<'a> = &'a Self;

    fn key(&self) -> &Self {
        self
    }

    fn to_attr(&self) -> Option<AttrValue> {
        Some(AttrValue::Ident(self.name()))
    }

    fn read(name: &'static str, _op: &str, r: &mut impl AttrReader) -> Self {
        let names = DType::ALL.map(DType::name);
        DType::ALL[r.word(name, &names)]
    }
}
