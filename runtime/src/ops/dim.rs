//! Symbolic dimensions: integer polynomials over named symbols (`batch`, `seq`, `seq+1`,
//! `batch*seq`), with floor division, modulo, `max` and `min` kept as opaque atoms when they do
//! not simplify. Every `Dim` is stored in a canonical form, so structural equality is the
//! equality the simplifier can prove.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// Values bound to symbols when a graph runs (`batch = 8`, `seq = 128`).
pub type Bindings = BTreeMap<String, i64>;

/// A dimension: a canonical integer polynomial over [`Atom`]s.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dim {
    /// Monomial → coefficient; never holds a zero coefficient. The empty monomial is the constant.
    terms: BTreeMap<Mono, i64>,
}

/// A product of atoms with positive powers, sorted by atom.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Mono(Vec<(Atom, u32)>);

/// An indivisible factor of a monomial.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    /// A named symbol.
    Sym(Arc<str>),
    /// Floor division that did not simplify.
    Div(Box<Dim>, Box<Dim>),
    /// Floor modulo (sign of the divisor) that did not simplify.
    Mod(Box<Dim>, Box<Dim>),
    /// Maximum of two dims whose difference is not a constant.
    Max(Box<Dim>, Box<Dim>),
    /// Minimum of two dims whose difference is not a constant.
    Min(Box<Dim>, Box<Dim>),
}

/// Why a dim could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimEvalError {
    /// A symbol has no binding.
    Unbound(String),
    /// Division or modulo by zero.
    DivByZero,
    /// The value does not fit in an i64.
    Overflow,
}

impl fmt::Display for DimEvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimEvalError::Unbound(s) => write!(f, "symbol `{s}` has no value"),
            DimEvalError::DivByZero => f.write_str("division by zero in a dimension"),
            DimEvalError::Overflow => f.write_str("dimension overflows i64"),
        }
    }
}

fn floor_div(a: i64, b: i64) -> i64 {
    let q = a.wrapping_div(b);
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

fn floor_mod(a: i64, b: i64) -> i64 {
    a.wrapping_sub(floor_div(a, b).wrapping_mul(b))
}

impl Mono {
    fn one() -> Mono {
        Mono(Vec::new())
    }

    fn mul(&self, other: &Mono) -> Mono {
        let mut m: BTreeMap<Atom, u32> = self.0.iter().cloned().collect();
        for (a, p) in &other.0 {
            *m.entry(a.clone()).or_insert(0) += p;
        }
        Mono(m.into_iter().collect())
    }

    /// `self / other` when `other` divides `self` exactly.
    fn div(&self, other: &Mono) -> Option<Mono> {
        let mut m: BTreeMap<Atom, u32> = self.0.iter().cloned().collect();
        for (a, p) in &other.0 {
            let have = m.get_mut(a)?;
            if *have < *p {
                return None;
            }
            *have -= p;
            if *have == 0 {
                m.remove(a);
            }
        }
        Some(Mono(m.into_iter().collect()))
    }
}

impl Dim {
    /// A known dimension.
    pub fn known(v: i64) -> Dim {
        let mut terms = BTreeMap::new();
        if v != 0 {
            terms.insert(Mono::one(), v);
        }
        Dim { terms }
    }

    /// A named symbol.
    pub fn sym(name: &str) -> Dim {
        Dim::atom(Atom::Sym(Arc::from(name)))
    }

    fn atom(a: Atom) -> Dim {
        let mut terms = BTreeMap::new();
        terms.insert(Mono(vec![(a, 1)]), 1);
        Dim { terms }
    }

    /// Number of terms of the canonical polynomial.
    pub fn num_terms(&self) -> usize {
        self.terms.len()
    }

    /// The value when the dim is a known integer.
    pub fn as_known(&self) -> Option<i64> {
        match self.terms.len() {
            0 => Some(0),
            1 => self.terms.get(&Mono::one()).copied(),
            _ => None,
        }
    }

    /// The symbol's name when the dim is exactly one symbol.
    pub fn as_sym(&self) -> Option<&str> {
        let (m, &c) = self.terms.iter().next()?;
        match (self.terms.len(), c, m.0.as_slice()) {
            (1, 1, [(Atom::Sym(s), 1)]) => Some(s),
            _ => None,
        }
    }

    /// Every symbol the dim mentions.
    pub fn symbols(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_symbols(&mut out);
        out
    }

    fn collect_symbols(&self, out: &mut BTreeSet<String>) {
        for m in self.terms.keys() {
            for (a, _) in &m.0 {
                match a {
                    Atom::Sym(s) => {
                        out.insert(s.to_string());
                    }
                    Atom::Div(x, y) | Atom::Mod(x, y) | Atom::Max(x, y) | Atom::Min(x, y) => {
                        x.collect_symbols(out);
                        y.collect_symbols(out);
                    }
                }
            }
        }
    }

    fn single_term(&self) -> Option<(&Mono, i64)> {
        if self.terms.len() == 1 {
            self.terms.iter().next().map(|(m, &c)| (m, c))
        } else {
            None
        }
    }

    /// `self + other`.
    pub fn add(&self, other: &Dim) -> Dim {
        let mut terms = self.terms.clone();
        for (m, c) in &other.terms {
            let e = terms.entry(m.clone()).or_insert(0);
            *e = e.wrapping_add(*c);
            if *e == 0 {
                terms.remove(m);
            }
        }
        Dim { terms }
    }

    /// `-self`.
    pub fn neg(&self) -> Dim {
        Dim {
            terms: self
                .terms
                .iter()
                .map(|(m, c)| (m.clone(), c.wrapping_neg()))
                .collect(),
        }
    }

    /// `self - other`.
    pub fn sub(&self, other: &Dim) -> Dim {
        self.add(&other.neg())
    }

    /// `self * other`.
    pub fn mul(&self, other: &Dim) -> Dim {
        let mut out = Dim::known(0);
        for (m1, c1) in &self.terms {
            for (m2, c2) in &other.terms {
                let mut terms = BTreeMap::new();
                let c = c1.wrapping_mul(*c2);
                if c != 0 {
                    terms.insert(m1.mul(m2), c);
                }
                out = out.add(&Dim { terms });
            }
        }
        out
    }

    /// Exact division by a single term, when every term is divisible by it.
    fn div_exact(&self, other: &Dim) -> Option<Dim> {
        let (dm, dc) = other.single_term()?;
        if dc == 0 {
            return None;
        }
        let mut terms = BTreeMap::new();
        for (m, c) in &self.terms {
            if c % dc != 0 {
                return None;
            }
            terms.insert(m.div(dm)?, c / dc);
        }
        Some(Dim { terms })
    }

    /// Floor division `self / other`.
    pub fn floor_div(&self, other: &Dim) -> Dim {
        if let (Some(a), Some(b)) = (self.as_known(), other.as_known()) {
            if b != 0 {
                return Dim::known(floor_div(a, b));
            }
        }
        if other.as_known() != Some(0) {
            if let Some(q) = self.div_exact(other) {
                return q;
            }
            if self == other {
                return Dim::known(1);
            }
        }
        Dim::atom(Atom::Div(Box::new(self.clone()), Box::new(other.clone())))
    }

    /// Ceiling division `(self + other - 1) / other`, for non-negative operands.
    pub fn ceil_div(&self, other: &Dim) -> Dim {
        self.add(other).sub(&Dim::known(1)).floor_div(other)
    }

    /// Floor modulo `self % other` (the result has the sign of `other`).
    pub fn rem(&self, other: &Dim) -> Dim {
        if let (Some(a), Some(b)) = (self.as_known(), other.as_known()) {
            if b != 0 {
                return Dim::known(floor_mod(a, b));
            }
        }
        if other.as_known() != Some(0) && (self.div_exact(other).is_some() || self == other) {
            return Dim::known(0);
        }
        Dim::atom(Atom::Mod(Box::new(self.clone()), Box::new(other.clone())))
    }

    /// `max(self, other)`.
    pub fn maximum(&self, other: &Dim) -> Dim {
        match self.sub(other).as_known() {
            Some(d) if d >= 0 => self.clone(),
            Some(_) => other.clone(),
            None => {
                let (a, b) = if self <= other {
                    (self, other)
                } else {
                    (other, self)
                };
                Dim::atom(Atom::Max(Box::new(a.clone()), Box::new(b.clone())))
            }
        }
    }

    /// `min(self, other)`.
    pub fn minimum(&self, other: &Dim) -> Dim {
        match self.sub(other).as_known() {
            Some(d) if d <= 0 => self.clone(),
            Some(_) => other.clone(),
            None => {
                let (a, b) = if self <= other {
                    (self, other)
                } else {
                    (other, self)
                };
                Dim::atom(Atom::Min(Box::new(a.clone()), Box::new(b.clone())))
            }
        }
    }

    /// Replaces symbols that have a binding by their value (others stay symbolic).
    pub fn substitute(&self, b: &Bindings) -> Dim {
        let mut out = Dim::known(0);
        for (m, c) in &self.terms {
            let mut term = Dim::known(*c);
            for (a, p) in &m.0 {
                let v = match a {
                    Atom::Sym(s) => b
                        .get(&**s)
                        .map(|&v| Dim::known(v))
                        .unwrap_or_else(|| Dim::sym(s)),
                    Atom::Div(x, y) => x.substitute(b).floor_div(&y.substitute(b)),
                    Atom::Mod(x, y) => x.substitute(b).rem(&y.substitute(b)),
                    Atom::Max(x, y) => x.substitute(b).maximum(&y.substitute(b)),
                    Atom::Min(x, y) => x.substitute(b).minimum(&y.substitute(b)),
                };
                for _ in 0..*p {
                    term = term.mul(&v);
                }
            }
            out = out.add(&term);
        }
        out
    }

    /// Evaluates against bindings; every symbol must be bound.
    pub fn eval(&self, b: &Bindings) -> Result<i64, DimEvalError> {
        let mut total: i64 = 0;
        for (m, c) in &self.terms {
            let mut term = *c;
            for (a, p) in &m.0 {
                let v = eval_atom(a, b)?;
                for _ in 0..*p {
                    term = term.checked_mul(v).ok_or(DimEvalError::Overflow)?;
                }
            }
            total = total.checked_add(term).ok_or(DimEvalError::Overflow)?;
        }
        Ok(total)
    }

    /// Parses the text form (`batch*seq`, `(seq+1)/2`, `max(a,b)`).
    pub fn parse(text: &str) -> Result<Dim, DimParseError> {
        super::dim_parse::parse(text)
    }

    /// Whether the printed form needs parentheses as an operand of `*`, `/` or `%`.
    fn is_primary(&self) -> bool {
        match self.single_term() {
            None => self.terms.is_empty(),
            Some((m, c)) => {
                (m.0.is_empty() && c >= 0)
                    || (c == 1
                        && m.0.len() == 1
                        && m.0[0].1 == 1
                        && !matches!(m.0[0].0, Atom::Div(..) | Atom::Mod(..)))
            }
        }
    }
}

fn eval_atom(a: &Atom, b: &Bindings) -> Result<i64, DimEvalError> {
    Ok(match a {
        Atom::Sym(s) => *b
            .get(&**s)
            .ok_or_else(|| DimEvalError::Unbound(s.to_string()))?,
        Atom::Div(x, y) | Atom::Mod(x, y) => {
            let (x, y) = (x.eval(b)?, y.eval(b)?);
            if y == 0 {
                return Err(DimEvalError::DivByZero);
            }
            if matches!(a, Atom::Div(..)) {
                floor_div(x, y)
            } else {
                floor_mod(x, y)
            }
        }
        Atom::Max(x, y) => x.eval(b)?.max(y.eval(b)?),
        Atom::Min(x, y) => x.eval(b)?.min(y.eval(b)?),
    })
}

pub use super::dim_parse::DimParseError;

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::known(v)
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, d: &Dim) -> fmt::Result {
    if d.is_primary() {
        write!(f, "{d}")
    } else {
        write!(f, "({d})")
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Sym(s) => f.write_str(s),
            Atom::Div(x, y) | Atom::Mod(x, y) => {
                write_operand(f, x)?;
                f.write_str(if matches!(self, Atom::Div(..)) {
                    "/"
                } else {
                    "%"
                })?;
                write_operand(f, y)
            }
            Atom::Max(x, y) => write!(f, "max({x},{y})"),
            Atom::Min(x, y) => write!(f, "min({x},{y})"),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("0");
        }
        let constant = self.terms.get(&Mono::one()).map(|&c| (&[][..], c));
        let others = self
            .terms
            .iter()
            .filter(|(m, _)| !m.0.is_empty())
            .map(|(m, &c)| (m.0.as_slice(), c));
        for (i, (m, c)) in others.chain(constant).enumerate() {
            let mag = c.unsigned_abs();
            match (i, c < 0) {
                (_, true) => f.write_str("-")?,
                (0, false) => {}
                (_, false) => f.write_str("+")?,
            }
            let factors: Vec<&Atom> = m
                .iter()
                .flat_map(|(a, p)| std::iter::repeat_n(a, *p as usize))
                .collect();
            if factors.is_empty() {
                write!(f, "{mag}")?;
                continue;
            }
            // A leading unary minus binds tighter than `/` when parsed, so `-(a/b)` keeps its parentheses.
            let alone = factors.len() == 1 && mag == 1 && !(i == 0 && c < 0);
            if mag != 1 {
                write!(f, "{mag}*")?;
            }
            for (j, a) in factors.iter().enumerate() {
                if j > 0 {
                    f.write_str("*")?;
                }
                if !alone && matches!(a, Atom::Div(..) | Atom::Mod(..)) {
                    write!(f, "({a})")?;
                } else {
                    write!(f, "{a}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dim({self})")
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Debug for Mono {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// Dims travel in the execution plan as their text form, parsed back on load (so the plan's
/// encoding does not depend on the polynomial's internal representation).
impl serde::Serialize for Dim {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Dim {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dim, D::Error> {
        let text = String::deserialize(d)?;
        Dim::parse(&text).map_err(|e| serde::de::Error::custom(format!("dim `{text}`: {e}")))
    }
}
