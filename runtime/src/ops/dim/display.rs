//! The text form of symbolic dims (`batch*seq`, `(seq+1)/2`, `max(a,b)`), which the parser
//! reads back; `Debug` wraps it.

use super::{Atom, Dim, Mono};
use std::fmt;

impl Dim {
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
            Atom::WideAdd(x, y) => write!(f, "wide_add({x},{y})"),
            Atom::WideMul(x, y) => write!(f, "wide_mul({x},{y})"),
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
