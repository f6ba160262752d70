//! Symbolic-dim arithmetic: sums, products, floor division and modulo, `max`/`min`, each
//! returning a dim in canonical form (opaque atoms where the result does not simplify).

use super::{Atom, Dim, Mono};
use std::collections::BTreeMap;

/// `floor(a / b)`; `None` for a zero divisor or `i64::MIN / -1`.
pub(super) fn floor_div(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    if (a.checked_rem(b)? != 0) && ((a < 0) != (b < 0)) {
        Some(q - 1)
    } else {
        Some(q)
    }
}

/// `a - b * floor(a / b)` (the sign of `b`); `None` for a zero divisor.
pub(super) fn floor_mod(a: i64, b: i64) -> Option<i64> {
    let r = a.checked_rem(b).or((b == -1).then_some(0))?;
    Some(if r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    })
}

/// `(a, b)` in canonical order, for atoms of commutative operations.
fn ordered(a: &Dim, b: &Dim) -> (Box<Dim>, Box<Dim>) {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    (Box::new(x.clone()), Box::new(y.clone()))
}

impl Mono {
    pub(super) fn one() -> Mono {
        Mono(Vec::new())
    }

    fn mul(&self, other: &Mono) -> Option<Mono> {
        let mut m: BTreeMap<Atom, u32> = self.0.iter().cloned().collect();
        for (a, p) in &other.0 {
            let e = m.entry(a.clone()).or_insert(0);
            *e = e.checked_add(*p)?;
        }
        Some(Mono(m.into_iter().collect()))
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
    /// `self + other` (an unreduced [`Atom::WideAdd`] when a coefficient would overflow).
    pub fn add(&self, other: &Dim) -> Dim {
        self.checked_add(other).unwrap_or_else(|| {
            let (a, b) = ordered(self, other);
            Dim::atom(Atom::WideAdd(a, b))
        })
    }

    fn checked_add(&self, other: &Dim) -> Option<Dim> {
        let mut terms = self.terms.clone();
        for (m, c) in &other.terms {
            let e = terms.entry(m.clone()).or_insert(0);
            *e = e.checked_add(*c)?;
            if *e == 0 {
                terms.remove(m);
            }
        }
        Some(Dim { terms })
    }

    /// `-self`.
    pub fn neg(&self) -> Dim {
        let terms: Option<BTreeMap<Mono, i64>> = self
            .terms
            .iter()
            .map(|(m, c)| Some((m.clone(), c.checked_neg()?)))
            .collect();
        match terms {
            Some(terms) => Dim { terms },
            None => self.mul(&Dim::known(-1)),
        }
    }

    /// `self - other`.
    pub fn sub(&self, other: &Dim) -> Dim {
        self.add(&other.neg())
    }

    /// `self * other` (an unreduced [`Atom::WideMul`] when a coefficient or power would
    /// overflow).
    pub fn mul(&self, other: &Dim) -> Dim {
        self.checked_mul(other).unwrap_or_else(|| {
            let (a, b) = ordered(self, other);
            Dim::atom(Atom::WideMul(a, b))
        })
    }

    fn checked_mul(&self, other: &Dim) -> Option<Dim> {
        let mut out = Dim::known(0);
        for (m1, c1) in &self.terms {
            for (m2, c2) in &other.terms {
                let mut terms = BTreeMap::new();
                terms.insert(m1.mul(m2)?, c1.checked_mul(*c2)?);
                out = out.checked_add(&Dim { terms })?;
            }
        }
        Some(out)
    }

    /// `self^p`, by repeated squaring.
    pub fn pow(&self, mut p: u32) -> Dim {
        let (mut base, mut out) = (self.clone(), Dim::known(1));
        while p > 0 {
            if p & 1 == 1 {
                out = out.mul(&base);
            }
            p >>= 1;
            if p > 0 {
                base = base.mul(&base);
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
            if c.checked_rem(dc)? != 0 {
                return None;
            }
            terms.insert(m.div(dm)?, c.checked_div(dc)?);
        }
        Some(Dim { terms })
    }

    /// Floor division `self / other`.
    pub fn floor_div(&self, other: &Dim) -> Dim {
        if let (Some(a), Some(b)) = (self.as_known(), other.as_known()) {
            if let Some(q) = floor_div(a, b) {
                return Dim::known(q);
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
            if let Some(r) = floor_mod(a, b) {
                return Dim::known(r);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::dim::{Bindings, DimEvalError};

    /// Regression (issue 12, case 11): coefficients wrapped, so different dims compared equal
    /// (`2^62*x*4` was `0`, `i64::MAX + 1` was `i64::MIN`). Overflowing results stay unreduced:
    /// unequal to anything they do not equal, printed and parsed back as themselves, and an
    /// overflow error when evaluated.
    #[test]
    fn overflowing_arithmetic_never_wraps() {
        let x = Dim::sym("x");
        let big = Dim::known(1 << 62);
        let wrapped = big.mul(&x).mul(&Dim::known(4));
        assert_ne!(wrapped, Dim::known(0));
        assert_eq!(wrapped.to_string(), "wide_mul(4,4611686018427387904*x)");
        let max_plus_one = Dim::known(i64::MAX).add(&Dim::known(1));
        assert_ne!(max_plus_one, Dim::known(i64::MIN));
        assert_ne!(Dim::known(i64::MIN).neg(), Dim::known(i64::MIN));
        for d in [&wrapped, &max_plus_one] {
            assert_eq!(&Dim::parse(&d.to_string()).unwrap(), d);
        }
        let b: Bindings = [("x".to_string(), 1)].into();
        assert_eq!(wrapped.eval(&b), Err(DimEvalError::Overflow));
        assert_eq!(max_plus_one.eval(&b), Err(DimEvalError::Overflow));
        // Exact results that fit are still reduced: (2^62*x*4) / 4 is not, but x*2 - x is x.
        assert_eq!(x.mul(&Dim::known(2)).sub(&x), x);
        assert_eq!(
            Dim::known(i64::MIN).floor_div(&Dim::known(-1)).eval(&b),
            Err(DimEvalError::Overflow)
        );
        assert_eq!(Dim::known(i64::MIN).rem(&Dim::known(-1)), Dim::known(0));
        assert_eq!(Dim::known(-7).rem(&Dim::known(2)), Dim::known(1));
        assert_eq!(Dim::known(-7).floor_div(&Dim::known(2)), Dim::known(-4));
        // Powers are evaluated by squaring, not one multiplication per unit of the exponent.
        assert_eq!(x.pow(3).eval(&[("x".to_string(), 3)].into()), Ok(27));
        assert_eq!(x.pow(u32::MAX).eval(&b), Ok(1));
    }
}
