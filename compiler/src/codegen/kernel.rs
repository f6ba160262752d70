//! Descriptions of the kernels the code generator emits: fused elementwise expressions and
//! row-wise normalisations/softmax, with their argument lists and validation.
//!
//! Every generated function has the C ABI `extern "C" fn(args: *const *mut f32, rows: u64, cols:
//! u64)`: `args` holds one base pointer per argument, inputs first, then outputs; the iteration
//! space is `rows × cols`, row-major, output element `(r, c)` at `r*cols + c`.

use std::collections::HashSet;

use crate::error::{Error, Result};

/// How an elementwise input is indexed at iteration `(r, c)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `r*cols + c`: a full `rows × cols` tensor.
    Full,
    /// `c`: a length-`cols` vector broadcast over rows (a bias).
    Row,
    /// `r`: a length-`rows` vector broadcast over columns.
    Col,
    /// `0`: one value broadcast everywhere.
    Scalar,
}

/// A unary elementwise operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EwUnary {
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `e^x`.
    Exp,
    /// `ln x`.
    Log,
    /// `√x`.
    Sqrt,
    /// `1/√x`.
    Rsqrt,
    /// `1/x`.
    Recip,
    /// `tanh x`.
    Tanh,
    /// The error function.
    Erf,
    /// `1/(1 + e^-x)`.
    Sigmoid,
    /// `max(x, 0)` (NaN stays NaN).
    Relu,
    /// Exact GELU, `x·Φ(x)`.
    GeluErf,
    /// Tanh-approximated GELU.
    GeluTanh,
    /// Round toward −∞.
    Floor,
    /// Round toward +∞.
    Ceil,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
}

/// A binary elementwise operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EwBinary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// The larger operand; NaN if either is NaN.
    Max,
    /// The smaller operand; NaN if either is NaN.
    Min,
    /// `a^b`.
    Pow,
}

/// One node of an elementwise expression; operands index earlier nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EwNode {
    /// Kernel input `i` (read with `ElementwiseKernel::inputs[i]`).
    Input(u32),
    /// A constant.
    Const(f32),
    /// A unary operation of an earlier node.
    Unary(EwUnary, u32),
    /// A binary operation of two earlier nodes.
    Binary(EwBinary, u32, u32),
}

/// A fused elementwise kernel: `outputs` are node ids, each written as a full `rows × cols`
/// tensor. Arguments: the inputs in order, then the outputs in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementwiseKernel {
    /// The exported symbol name.
    pub name: String,
    /// How each input is indexed.
    pub inputs: Vec<Access>,
    /// The expression, in topological order.
    pub nodes: Vec<EwNode>,
    /// The nodes written out, one output argument each.
    pub outputs: Vec<u32>,
}

/// A row-wise operation over each length-`cols` row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowOp {
    /// args: x (Full), [skip (Full or Row)], gamma (Row), [beta (Row)], y (Full), [sum (Full)
    /// when `sum_out`]. `sum = x + skip`; `y = (sum - mean) / sqrt(var + eps) * gamma + beta`
    /// over each row (biased variance).
    LayerNorm {
        /// Added to the variance.
        eps: f32,
        /// How the residual `skip` is indexed (`Full` or `Row`), if there is one.
        skip: Option<Access>,
        /// Whether a `beta` argument is added.
        beta: bool,
        /// Whether `x + skip` is also written out.
        sum_out: bool,
    },
    /// args: x, gamma (Row), y. `y = x / sqrt(mean(x²) + eps) * gamma`.
    RmsNorm {
        /// Added to the mean square.
        eps: f32,
    },
    /// args: x, y. Row-wise softmax (log-softmax when `log`), max-subtracted.
    Softmax {
        /// Whether the log-softmax is computed.
        log: bool,
    },
}

impl RowOp {
    /// How many pointers `args` holds for this operation.
    pub fn num_args(&self) -> usize {
        match *self {
            RowOp::LayerNorm {
                skip,
                beta,
                sum_out,
                ..
            } => 3 + usize::from(skip.is_some()) + usize::from(beta) + usize::from(sum_out),
            RowOp::RmsNorm { .. } => 3,
            RowOp::Softmax { .. } => 2,
        }
    }
}

/// A row-wise kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct RowKernel {
    /// The exported symbol name.
    pub name: String,
    /// The operation.
    pub op: RowOp,
}

/// A kernel the code generator emits.
#[derive(Debug, Clone, PartialEq)]
pub enum GenKernel {
    /// A fused elementwise kernel.
    Elementwise(ElementwiseKernel),
    /// A row-wise kernel.
    Row(RowKernel),
}

impl GenKernel {
    /// The exported symbol name.
    pub fn name(&self) -> &str {
        match self {
            GenKernel::Elementwise(k) => &k.name,
            GenKernel::Row(k) => &k.name,
        }
    }

    /// How many pointers `args` holds (inputs, then outputs).
    pub fn num_args(&self) -> usize {
        match self {
            GenKernel::Elementwise(k) => k.inputs.len() + k.outputs.len(),
            GenKernel::Row(k) => k.op.num_args(),
        }
    }

    /// Checks the description: a valid, non-reserved symbol name; for elementwise kernels,
    /// operands that index earlier nodes, inputs that exist and a non-empty output list; for row
    /// kernels, a finite non-negative `eps` and a `Full` or `Row` skip.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| {
            Err(Error::Codegen {
                kernel: self.name().to_string(),
                message,
            })
        };
        let name = self.name();
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return fail(format!(
                "`{name}` is not a valid symbol name ([A-Za-z_][A-Za-z0-9_]*)"
            ));
        }
        if name.starts_with("kiln_rt_") {
            return fail("names starting with `kiln_rt_` are reserved for the runtime".into());
        }
        match self {
            GenKernel::Elementwise(k) => {
                if k.nodes.is_empty() {
                    return fail("the expression has no nodes".into());
                }
                for (id, node) in k.nodes.iter().enumerate() {
                    let operands: &[u32] = match node {
                        EwNode::Input(i) => {
                            if *i as usize >= k.inputs.len() {
                                return fail(format!(
                                    "node {id} reads input {i}, but the kernel has {} inputs",
                                    k.inputs.len()
                                ));
                            }
                            &[]
                        }
                        EwNode::Const(_) => &[],
                        EwNode::Unary(_, a) => std::slice::from_ref(a),
                        EwNode::Binary(_, a, b) => &[*a, *b],
                    };
                    if let Some(bad) = operands.iter().find(|&&o| o as usize >= id) {
                        return fail(format!(
                            "node {id} uses node {bad}, which does not come before it"
                        ));
                    }
                }
                if k.outputs.is_empty() {
                    return fail("the kernel has no outputs".into());
                }
                if let Some(bad) = k.outputs.iter().find(|&&o| o as usize >= k.nodes.len()) {
                    return fail(format!(
                        "output node {bad} does not exist ({} nodes)",
                        k.nodes.len()
                    ));
                }
            }
            GenKernel::Row(k) => {
                let eps = match k.op {
                    RowOp::LayerNorm { eps, skip, .. } => {
                        if let Some(access @ (Access::Col | Access::Scalar)) = skip {
                            return fail(format!(
                                "the skip input must be Full or Row, not {access:?}"
                            ));
                        }
                        Some(eps)
                    }
                    RowOp::RmsNorm { eps } => Some(eps),
                    RowOp::Softmax { .. } => None,
                };
                if let Some(eps) = eps.filter(|e| !e.is_finite() || *e < 0.0) {
                    return fail(format!("eps must be finite and non-negative, not {eps}"));
                }
            }
        }
        Ok(())
    }
}

/// Validates every kernel and checks that their names are unique.
pub fn validate_all(kernels: &[GenKernel]) -> Result<()> {
    let mut seen = HashSet::new();
    for k in kernels {
        k.validate()?;
        if !seen.insert(k.name()) {
            return Err(Error::Codegen {
                kernel: k.name().to_string(),
                message: "two kernels share this name".into(),
            });
        }
    }
    Ok(())
}
