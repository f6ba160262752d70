//! Symbolic dimensions: integer polynomials over named symbols (`batch`, `seq`, `seq+1`,
//! `batch*seq`), with floor division, modulo, `max` and `min` kept as opaque atoms when they do
//! not simplify. Every `Dim` is stored in a canonical form, so structural equality is the
//! equality the simplifier can prove.

mod arith;
mod display;
mod eval;
mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use eval::DimEvalError;
pub use parse::is_symbol_name;

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
    /// The exact sum of two dims whose canonical sum has a coefficient beyond i64 (kept
    /// unreduced, so that no wrapped coefficient ever makes two different dims compare equal).
    WideAdd(Box<Dim>, Box<Dim>),
    /// The exact product of two dims whose canonical product overflows, as [`Atom::WideAdd`].
    WideMul(Box<Dim>, Box<Dim>),
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
                    Atom::Div(x, y)
                    | Atom::Mod(x, y)
                    | Atom::Max(x, y)
                    | Atom::Min(x, y)
                    | Atom::WideAdd(x, y)
                    | Atom::WideMul(x, y) => {
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

    /// Parses the text form (`batch*seq`, `(seq+1)/2`, `max(a,b)`).
    pub fn parse(text: &str) -> Result<Dim, DimParseError> {
        parse::parse(text)
    }
}

pub use parse::DimParseError;

impl From<i64> for Dim {
    fn from(v: i64) -> Dim {
        Dim::known(v)
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
