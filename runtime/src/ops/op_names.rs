//! Names of ops and of their enum-valued attributes, as written in IR text and JSON.

use super::op::*;

macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The name in IR text.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }

            /// The variant with this name.
            pub fn from_name(name: &str) -> Option<$ty> {
                match name { $($name => Some($ty::$variant),)* _ => None }
            }
        }
    };
}

named_enum!(UnaryOp {
    Neg => "neg", Abs => "abs", Sign => "sign", Exp => "exp", Log => "log", Sqrt => "sqrt",
    Rsqrt => "rsqrt", Reciprocal => "reciprocal", Sin => "sin", Cos => "cos", Tan => "tan",
    Asin => "asin", Acos => "acos", Atan => "atan", Sinh => "sinh", Cosh => "cosh",
    Asinh => "asinh", Acosh => "acosh", Atanh => "atanh", Tanh => "tanh", Sigmoid => "sigmoid",
    Relu => "relu", Erf => "erf", Floor => "floor", Ceil => "ceil", Round => "round",
    Softplus => "softplus", Softsign => "softsign", Not => "not", BitNot => "bitnot",
    IsNan => "isnan", IsInf => "isinf",
});

named_enum!(BinaryOp {
    Add => "add", Sub => "sub", Mul => "mul", Div => "div", Pow => "pow", Max => "max",
    Min => "min", Mod => "mod", FMod => "fmod", Eq => "eq", Lt => "lt", Le => "le", Gt => "gt",
    Ge => "ge", And => "and", Or => "or", Xor => "xor", BitAnd => "bitand", BitOr => "bitor",
    BitXor => "bitxor", Shl => "shl", Shr => "shr",
});

named_enum!(ReduceOp {
    Sum => "sum", Mean => "mean", Max => "max", Min => "min", Prod => "prod", L1 => "l1",
    L2 => "l2", LogSum => "logsum", LogSumExp => "logsumexp", SumSquare => "sumsquare",
});

named_enum!(ArgOp { ArgMax => "argmax", ArgMin => "argmin" });
named_enum!(PoolKind { Max => "max", Avg => "avg" });
named_enum!(PadMode { Constant => "constant", Reflect => "reflect", Edge => "edge", Wrap => "wrap" });
named_enum!(ScatterReduction {
    None => "none", Add => "add", Mul => "mul", Max => "max", Min => "min",
});
named_enum!(GeluApprox { None => "none", Tanh => "tanh" });

/// The op's name in IR text. Unary and binary ops use their own names (`exp`, `add`);
/// reductions are `reduce_<op>`; argmax/argmin their own.
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Unary(u) => u.name(),
        Op::Binary(b) => b.name(),
        Op::Where => "where",
        Op::Cast { .. } => "cast",
        Op::Reduce { op, .. } => match op {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Mean => "reduce_mean",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
            ReduceOp::Prod => "reduce_prod",
            ReduceOp::L1 => "reduce_l1",
            ReduceOp::L2 => "reduce_l2",
            ReduceOp::LogSum => "reduce_logsum",
            ReduceOp::LogSumExp => "reduce_logsumexp",
            ReduceOp::SumSquare => "reduce_sumsquare",
        },
        Op::ArgReduce { op, .. } => op.name(),
        Op::MatMul => "matmul",
        Op::Softmax { .. } => "softmax",
        Op::LogSoftmax { .. } => "log_softmax",
        Op::Conv { .. } => "conv",
        Op::ConvTranspose { .. } => "conv_transpose",
        Op::Pool {
            kind: PoolKind::Max,
            ..
        } => "max_pool",
        Op::Pool {
            kind: PoolKind::Avg,
            ..
        } => "avg_pool",
        Op::Reshape { .. } => "reshape",
        Op::Transpose { .. } => "transpose",
        Op::Expand { .. } => "expand",
        Op::Slice { .. } => "slice",
        Op::Concat { .. } => "concat",
        Op::Split { .. } => "split",
        Op::Gather { .. } => "gather",
        Op::GatherElements { .. } => "gather_elements",
        Op::Pad { .. } => "pad",
        Op::Range { .. } => "range",
        Op::Dims { .. } => "dims",
        Op::Tile { .. } => "tile",
        Op::Trilu { .. } => "trilu",
        Op::CumSum { .. } => "cumsum",
        Op::CumProd { .. } => "cumprod",
        Op::TopK { .. } => "topk",
        Op::ScatterElements { .. } => "scatter_elements",
        Op::ScatterND { .. } => "scatter_nd",
        Op::ShapeOf { .. } => "shape_of",
        Op::LayerNorm { .. } => "layer_norm",
        Op::RmsNorm { .. } => "rms_norm",
        Op::MatMulBias => "matmul_bias",
        Op::SkipLayerNorm { .. } => "skip_layer_norm",
        Op::Gelu { .. } => "gelu",
        Op::Attention { .. } => "attention",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_round_trip() {
        for u in UnaryOp::ALL {
            assert_eq!(UnaryOp::from_name(u.name()), Some(*u));
        }
        for b in BinaryOp::ALL {
            assert_eq!(BinaryOp::from_name(b.name()), Some(*b));
        }
        for r in ReduceOp::ALL {
            assert_eq!(ReduceOp::from_name(r.name()), Some(*r));
        }
    }
}
