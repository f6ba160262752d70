//! Symbolic-dim arithmetic: sums, products, floor division and modulo, `max`/`min`, each
//! returning a dim in canonical form (opaque atoms where the result does not simplify).

use super::{Atom, Dim, Mono};
use std::collections::BTreeMap;

pub(super) fn floor_div(a: i64, b: i64) -> i64 {
    let q = a.wrapping_div(b);
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

pub(super) fn floor_mod(a: i64, b: i64) -> i64 {
    a.wrapping_sub(floor_div(a, b).wrapping_mul(b))
}

impl Mono {
    pub(super) fn one() -> Mono {
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
        self.extreme(other, |d| d >= 0, Atom::Max)
    }

    /// `min(self, other)`.
    pub fn minimum(&self, other: &Dim) -> Dim {
        self.extreme(other, |d| d <= 0, Atom::Min)
    }

    /// `self` when `keep_self(self - other)` holds for a known difference, `other` for any other
    /// known one, else the atom `make(lesser, greater)` (operands ordered so it is canonical).
    fn extreme(
        &self,
        other: &Dim,
        keep_self: fn(i64) -> bool,
        make: fn(Box<Dim>, Box<Dim>) -> Atom,
    ) -> Dim {
        match self.sub(other).as_known() {
            Some(d) if keep_self(d) => self.clone(),
            Some(_) => other.clone(),
            None => {
                let (a, b) = if self <= other {
                    (self, other)
                } else {
                    (other, self)
                };
                Dim::atom(make(Box::new(a.clone()), Box::new(b.clone())))
            }
        }
    }
}
