//! The closed set of IR operations with typed attributes. Semantics are defined once, by the
//! reference interpreter (`crate::interp`); the doc comments here summarise them.
//!
//! Conventions shared by all ops:
//! - Axes may be negative (counted from the end) and are normalised against the input rank.
//! - Elementwise ops broadcast their inputs numpy-style (right-aligned, size-1 dims stretch).
//! - Floating-point results are computed in f64 by the interpreter and rounded to the output dtype.

use super::define::{define_ops, named_enum};
use super::dim::Dim;
pub use super::recurrent::{ActivationFn, RnnActivation, RnnCell, RnnDirection};
pub use super::recurrent_spec::{RecurrentSpec, RnnDims, RnnInput};
use crate::DType;

named_enum! {
    /// Elementwise functions of one input. Output dtype = input dtype, except `IsNan`/`IsInf`
    /// (bool). `Not` takes bool only; `BitNot` integers only; the rest take floats (and `Neg`, `Abs`,
    /// `Sign`, `Relu` also integers).
    pub enum UnaryOp as kind "" "" {
        Neg => "neg",
        Abs => "abs",
        Sign => "sign",
        Exp => "exp",
        Log => "log",
        Sqrt => "sqrt",
        /// `1 / sqrt(x)`.
        Rsqrt => "rsqrt",
        /// `1 / x`.
        Reciprocal => "reciprocal",
        Sin => "sin",
        Cos => "cos",
        Tan => "tan",
        Asin => "asin",
        Acos => "acos",
        Atan => "atan",
        Sinh => "sinh",
        Cosh => "cosh",
        Asinh => "asinh",
        Acosh => "acosh",
        Atanh => "atanh",
        Tanh => "tanh",
        /// `1 / (1 + exp(-x))`.
        Sigmoid => "sigmoid",
        /// `max(x, 0)`.
        Relu => "relu",
        Erf => "erf",
        Floor => "floor",
        Ceil => "ceil",
        /// Round half to even.
        Round => "round",
        /// `ln(1 + exp(x))`.
        Softplus => "softplus",
        /// `x / (1 + |x|)`.
        Softsign => "softsign",
        /// Logical not (bool).
        Not => "not",
        /// Bitwise not (integers).
        BitNot => "bitnot",
        /// NaN test (float → bool).
        IsNan => "isnan",
        /// ±infinity test (float → bool).
        IsInf => "isinf",
    }
}

named_enum! {
    /// Elementwise functions of two broadcast inputs of the same dtype. Comparisons give bool;
    /// `And`/`Or`/`Xor` take bool; `Bit*` and shifts take integers.
    pub enum BinaryOp as kind "" "" {
        Add => "add",
        Sub => "sub",
        Mul => "mul",
        /// Floats: IEEE division. Integers: truncation toward zero; division by zero is an error.
        Div => "div",
        /// `x ^ y` (floats; integer bases with integer exponents ≥ 0 also allowed).
        Pow => "pow",
        /// NaN-propagating maximum.
        Max => "max",
        /// NaN-propagating minimum.
        Min => "min",
        /// Floor modulo: the result has the sign of the divisor (Python `%`, ONNX `Mod fmod=0`).
        Mod => "mod",
        /// Truncated modulo: the result has the sign of the dividend (C `fmod`, ONNX `Mod fmod=1`).
        FMod => "fmod",
        Eq => "eq",
        Lt => "lt",
        Le => "le",
        Gt => "gt",
        Ge => "ge",
        And => "and",
        Or => "or",
        Xor => "xor",
        BitAnd => "bitand",
        BitOr => "bitor",
        BitXor => "bitxor",
        /// `x << y` (integers; shift ≥ width gives 0).
        Shl => "shl",
        /// `x >> y` logical for unsigned, arithmetic for signed (shift ≥ width gives 0 or -1).
        Shr => "shr",
    }
}

named_enum! {
    /// Reductions over a set of axes.
    pub enum ReduceOp as kind "reduce_" "" {
        Sum => "sum",
        Mean => "mean",
        /// NaN-propagating.
        Max => "max",
        /// NaN-propagating.
        Min => "min",
        Prod => "prod",
        /// `sum(|x|)`.
        L1 => "l1",
        /// `sqrt(sum(x²))`.
        L2 => "l2",
        /// `ln(sum(x))`.
        LogSum => "logsum",
        /// `ln(sum(exp(x)))`, computed stably.
        LogSumExp => "logsumexp",
        /// `sum(x²)`.
        SumSquare => "sumsquare",
    }
}

named_enum! {
    /// Which of `ArgReduce`'s extremes to find.
    pub enum ArgOp as kind "" "" {
        ArgMax => "argmax",
        ArgMin => "argmin",
    }
}

named_enum! {
    /// Pooling kinds.
    pub enum PoolKind as kind "" "_pool" {
        Max => "max",
        Avg => "avg",
    }
}

named_enum! {
    /// `Pad` modes (ONNX semantics).
    pub enum PadMode as word {
        Constant => "constant",
        Reflect => "reflect",
        Edge => "edge",
        Wrap => "wrap",
    }
}

named_enum! {
    /// The two GELU formulas.
    pub enum GeluApprox as word {
        /// `0.5·x·(1 + erf(x/√2))`.
        None => "none",
        /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
        Tanh => "tanh",
    }
}

named_enum! {
    /// How a scatter combines an update with `y`: `None` overwrites (the last duplicate wins).
    pub enum ScatterReduction as word {
        None => "none",
        Add => "add",
        Mul => "mul",
        Max => "max",
        Min => "min",
    }
}

define_ops! {
    /// An IR operation. Inputs are listed as `name: constraint`; `[x]` is optional. `Eq` and
    /// `Hash` compare f64 attributes by their bits.
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub enum Op {
        /// `(x) -> y`, elementwise.
        Unary(UnaryOp) => kind,
        /// `(a, b) -> y`, elementwise with broadcasting; a and b have the same dtype.
        Binary(BinaryOp) => kind,
        /// `(cond: bool, x, y) -> cond ? x : y`, all three broadcast; x and y share a dtype.
        Where => "where",
        /// `(x) -> x as to` with numpy `astype` rules (float→int truncates toward zero).
        Cast { to: DType } => "cast",
        /// `(x) -> y`. Reduces over `axes` (empty = all axes); `keepdims` keeps them as size 1.
        /// Sum over an empty set is 0, Prod 1, Max -inf, Min +inf, Mean NaN.
        Reduce {
            op: ReduceOp,
            axes: Vec<i64>,
            keepdims: bool,
        } => kind,
        /// `(x) -> i64 indices` of the first (or, with `select_last`, last) extreme along `axis`.
        ArgReduce {
            op: ArgOp,
            axis: i64,
            keepdims: bool,
            select_last: bool,
        } => kind,
        /// `(a, b) -> y`, numpy `matmul`: rank-1 operands are promoted and the promoted dim removed,
        /// leading (batch) dims broadcast.
        MatMul => "matmul",
        /// `(x) -> exp(x - max) / sum(exp(x - max))` along `axis`.
        Softmax { axis: i64 } => "softmax",
        /// `(x) -> log(softmax(x))` along `axis`.
        LogSoftmax { axis: i64 } => "log_softmax",
        /// `(x: [N, C, D1..Dk], w: [M, C/group, K1..Kk], [b: [M]]) -> [N, M, O1..Ok]`.
        /// `pads` holds k begin pads then k end pads; `strides` and `dilations` have k entries.
        Conv {
            strides: Vec<i64>,
            pads: Vec<i64>,
            dilations: Vec<i64>,
            group: i64,
        } => "conv",
        /// `(x: [N, C, D1..Dk], w: [C, M/group, K1..Kk], [b: [M]]) -> [N, M, O1..Ok]` with
        /// `Oi = strides·(Di-1) + output_padding + ((Ki-1)·dilations + 1) - pad_begin - pad_end`.
        ConvTranspose {
            strides: Vec<i64>,
            pads: Vec<i64>,
            dilations: Vec<i64>,
            group: i64,
            output_padding: Vec<i64>,
        } => "conv_transpose",
        /// `(x: [N, C, D1..Dk]) -> [N, C, O1..Ok]`. Max ignores padding; Avg divides by the window
        /// size including padding when `count_include_pad`, else by the number of real elements.
        /// `ceil_mode` rounds the output size up (a window must start inside the input or left pad).
        Pool {
            kind: PoolKind,
            kernel: Vec<i64>,
            strides: Vec<i64>,
            pads: Vec<i64>,
            dilations: Vec<i64>,
            ceil_mode: bool,
            count_include_pad: bool,
        } => kind,
        /// `(x) -> x` viewed with `shape` (same element count, row-major).
        Reshape { shape: Vec<Dim> } => "reshape",
        /// `(x) -> y` with `y.shape[i] = x.shape[perm[i]]`.
        Transpose { perm: Vec<i64> } => "transpose",
        /// `(x) -> x` broadcast (numpy, bidirectional as ONNX `Expand`) with `shape`.
        Expand { shape: Vec<Dim> } => "expand",
        /// `(x) -> y` slicing with ONNX semantics: for each listed axis, negative starts/ends count
        /// from the end, then clamp to `[0, dim]` (or `[-1, dim-1]` for negative steps).
        Slice {
            axes: Vec<i64>,
            starts: Vec<Dim>,
            ends: Vec<Dim>,
            steps: Vec<i64>,
        } => "slice",
        /// `(x1, x2, ...) -> y` joined along `axis`; at least one input.
        Concat { axis: i64 } => "concat",
        /// `(x) -> (y1, ..., yn)` with `yi.shape[axis] = sizes[i]`; the sizes sum to the dim.
        Split { axis: i64, sizes: Vec<Dim> } => "split",
        /// `(data, indices: i64|i32) -> y`, numpy `take` along `axis`; negative indices count from
        /// the end; out-of-range indices are an error.
        Gather { axis: i64 } => "gather",
        /// `(data, indices) -> y`, `y[i][j][k] = data[i][indices[i][j][k]][k]` for axis 1 (ONNX).
        GatherElements { axis: i64 } => "gather_elements",
        /// `(x) -> y` padded: `pads` holds rank begin pads then rank end pads (negative pads crop).
        Pad {
            pads: Vec<i64>,
            mode: PadMode,
            value: f64,
        } => "pad",
        /// `() -> [max(0, ceil((limit - start) / delta))]` of `dtype`: `start, start+delta, ...`.
        Range {
            start: Dim,
            limit: Dim,
            delta: Dim,
            dtype: DType,
        } => "range",
        /// `() -> i64 [n]`: the values of `values` under the run's symbol bindings (a shape
        /// computation a frontend could not fold into attributes, such as `[batch, seq*12]`).
        Dims { values: Vec<Dim> } => "dims",
        /// `(x) -> y` repeated `repeats[i]` times along each axis.
        Tile { repeats: Vec<i64> } => "tile",
        /// `(x: rank ≥ 2) -> y` keeping the upper (or lower) triangle of the last two dims,
        /// offset by diagonal `k`; other elements become 0.
        Trilu { upper: bool, k: i64 } => "trilu",
        /// `(x) -> y` cumulative sum along `axis`.
        CumSum {
            axis: i64,
            exclusive: bool,
            reverse: bool,
        } => "cumsum",
        /// `(x) -> y` cumulative product along `axis` (exclusive starts from 1).
        CumProd {
            axis: i64,
            exclusive: bool,
            reverse: bool,
        } => "cumprod",
        /// `(x) -> (values, i64 indices)`: the `k` largest (smallest) along `axis`, sorted; NaN is
        /// above every number; ties keep the lower index first. `sorted = false` allows any order.
        TopK {
            k: i64,
            axis: i64,
            largest: bool,
            sorted: bool,
        } => "topk",
        /// `(data, indices: i64|i32, updates) -> y = data` then, per index position p in row-major
        /// order, `y[p with p[axis] = indices[p]] ⊕= updates[p]` (ONNX; bad indices are errors).
        ScatterElements {
            axis: i64,
            reduction: ScatterReduction,
        } => "scatter_elements",
        /// `(data, indices: i64 [.., q], updates) -> y = data` then, per index tuple in row-major
        /// order, `y[tuple] ⊕= updates[..]` (slices of shape `data.shape[q..]`; ONNX ScatterND).
        ScatterND { reduction: ScatterReduction } => "scatter_nd",
        /// `(x) -> i64 [n]`: the dims `start..end` of x's shape (ONNX `Shape`; `end` None = rank).
        ShapeOf { start: i64, end: Option<i64> } => "shape_of",
        /// `(x, gamma, [beta]) -> y`: normalise over the axes `axis..rank` with mean and biased
        /// variance, `(x - mean) / sqrt(var + eps) * gamma + beta`. gamma/beta broadcast.
        LayerNorm { axis: i64, eps: f64 } => "layer_norm",
        /// `(x, gamma) -> x / sqrt(mean(x², last axis) + eps) * gamma`.
        RmsNorm { eps: f64 } => "rms_norm",
        /// `(a, b, bias) -> matmul(a, b) + bias`: [`Op::MatMul`] followed by a broadcasting add of
        /// `bias` (same dtype, floats), which must broadcast to the product's shape without
        /// changing it (typically `[N]`). The sum is computed in f64 and rounded once.
        MatMulBias => "matmul_bias",
        /// `(x, skip, gamma, [beta]) -> (y, sum)`: `sum = x + skip` (skip broadcasts to x's shape)
        /// and `y = layer_norm(sum, gamma, beta) {axis, eps}` as [`Op::LayerNorm`]. Both outputs
        /// have x's type; `y` normalises the unrounded f64 sum, each output rounded once.
        SkipLayerNorm { axis: i64, eps: f64 } => "skip_layer_norm",
        /// `(x) -> gelu(x)` with the chosen formula.
        Gelu { approx: GeluApprox } => "gelu",
        /// Scaled dot-product attention.
        ///
        /// Inputs, in order: `q: [B, heads, Sq, D]`, `k: [B, kv_heads, Sk, D]`,
        /// `v: [B, kv_heads, Sk, Dv]`, then `bias` (when `bias`: additive, broadcast to
        /// `[B, heads, Sq, Sk]`), then `mask` (when `mask`: `[B, Sk]` bool or integer, non-zero =
        /// attend), then `cos, sin` (when `rotary`: broadcast to `[B, 1, S, D]`, requires Sq = Sk).
        /// Output `[B, heads, Sq, Dv]`.
        ///
        /// With rotary, q and k first become `x·cos + rotate_half(x)·sin`, where `rotate_half(x)`
        /// is `concat(-x[..., D/2..], x[..., ..D/2])`. Query head `h` uses key/value head
        /// `h / (heads / kv_heads)`. Scores `q·kᵀ·scale + bias`; masked positions (mask zero, or
        /// with `causal` key index `j > i + Sk - Sq`) are excluded; softmax over keys (a row with
        /// every key excluded gives zeros); output `softmax·v`.
        Attention {
            heads: u32,
            kv_heads: u32,
            scale: f64,
            causal: bool,
            bias: bool,
            mask: bool,
            rotary: bool,
        } => "attention",
        /// A one-layer recurrent network over a whole sequence (ONNX `LSTM`, `GRU`, `RNN`;
        /// [`RecurrentSpec`] is the checked view the kernels read). Inputs: `x, w, r`, then the
        /// optional ones the flags name, in this order: `b` (`bias`), `sequence_lens`
        /// (`seq_lens`), `initial_h`, `initial_c`, `p` (`peepholes`); shapes in [`RnnInput`].
        /// Outputs `y: [seq, dirs, batch, hidden]`, `y_h: [dirs, batch, hidden]` and for LSTM
        /// `y_c` like `y_h` (`batch_first`: `[batch, seq, dirs, hidden]`, `[batch, dirs,
        /// hidden]`).
        ///
        /// Per direction and batch entry `b` of length `len_b` (`seq` without `seq_lens`), the
        /// steps `t = 0..len_b` (reverse: `len_b-1..=0`) compute, with `f, g, h` the direction's
        /// activations, `⊙` elementwise, `clip` applied to every gate pre-activation:
        /// - LSTM (gates `i, o, f, c`): `i = f(x·Wiᵀ + h·Riᵀ + Wbi + Rbi + pi ⊙ c)`, `f` alike
        ///   (or `1 − i` with `input_forget`), `c' = g(..)` without peephole, `c = f ⊙ c + i ⊙
        ///   c'`, `o = f(.. + po ⊙ c)` with the new `c`, `h = o ⊙ h(c)`.
        /// - GRU (gates `z, r, h`): `z, r` as LSTM's `i`; `h' = g(x·Whᵀ + (r ⊙ h)·Rhᵀ + Rbh +
        ///   Wbh)`, or with `linear_before_reset` `g(x·Whᵀ + r ⊙ (h·Rhᵀ + Rbh) + Wbh)`;
        ///   `h = (1 − z) ⊙ h' + z ⊙ h`.
        /// - RNN: `h = f(x·Wᵀ + h·Rᵀ + Wb + Rb)`.
        ///
        /// `y[t]` is the `h` of step `t` (zeros for `t ≥ len_b`); `y_h`, `y_c` are the state
        /// after the last step (the initial state when `len_b = 0`). Computed in f64.
        Recurrent {
            cell: RnnCell,
            direction: RnnDirection,
            hidden_size: u32,
            activations: Vec<RnnActivation>,
            activation_alpha: Vec<f64>,
            activation_beta: Vec<f64>,
            clip: f64,
            input_forget: bool,
            linear_before_reset: bool,
            batch_first: bool,
            bias: bool,
            seq_lens: bool,
            initial_h: bool,
            initial_c: bool,
            peepholes: bool,
        } => kind,
        /// Rotary position embedding of one operand: `(x: [B, H, S, D], cos, sin) -> x·cos +
        /// rotate_half(x)·sin`, with `cos`, `sin` broadcast to `[B, 1, S, D]` and
        /// `rotate_half(x) = concat(-x[..., D/2..], x[..., ..D/2])` (D even), as
        /// [`Op::Attention`]'s `rotary` applies it. Decoders with a key/value cache rotate the
        /// new keys with it before writing them to the cache.
        Rotary => "rotary",
        /// `(cache, new) -> cache'`: `cache` with `new` written at positions `at..at + n` along
        /// `axis`, where `new` has cache's shape except `n` along the axis; the other positions
        /// keep cache's values. `at + n` beyond the axis is an error (the cache is full). When
        /// `cache` is a graph state and the output its update, a compiled plan writes in place.
        CacheWrite { axis: i64, at: Dim } => "cache_write",
    }
}

#[path = "op_meta.rs"]
mod meta;

#[cfg(test)]
#[path = "op_tests.rs"]
mod tests;
