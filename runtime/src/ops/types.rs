//! Value types: a dtype plus a shape of (possibly symbolic) dims.

use super::dim::{Bindings, Dim, DimEvalError};
pub use crate::DType;
use std::fmt;

/// A tensor shape; each dim is known or symbolic.
#[derive(
    Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// A shape of known dims.
    pub fn known(dims: &[i64]) -> Shape {
        Shape(dims.iter().map(|&d| Dim::known(d)).collect())
    }

    /// A scalar (rank 0) shape.
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dims.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// Every dim as a known integer, if all are known.
    pub fn as_known(&self) -> Option<Vec<i64>> {
        self.0.iter().map(Dim::as_known).collect()
    }

    /// The product of all dims (symbolic).
    pub fn numel(&self) -> Dim {
        self.0.iter().fold(Dim::known(1), |acc, d| acc.mul(d))
    }

    /// Evaluates every dim against bindings.
    pub fn eval(&self, b: &Bindings) -> Result<Vec<usize>, DimEvalError> {
        self.0
            .iter()
            .map(|d| {
                let v = d.eval(b)?;
                usize::try_from(v).map_err(|_| DimEvalError::Overflow)
            })
            .collect()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The type of a value: element type and shape.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
}

impl TensorType {
    /// Builds a type.
    pub fn new(dtype: DType, shape: Shape) -> TensorType {
        TensorType { dtype, shape }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

impl fmt::Debug for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}
