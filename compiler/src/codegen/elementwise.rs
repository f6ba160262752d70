//! The body of a fused elementwise kernel: loop over rows (or over all `rows·cols` elements at once
//! when no input is indexed by row or column), a 4-lane vector loop over columns and a scalar
//! tail, evaluating the expression's live nodes and storing each output.

use cranelift_codegen::ir::types::{F32, I64};
use cranelift_codegen::ir::{InstBuilder, Type, Value};

use super::emit::{Emit, RtFn};
use super::kernel::{Access, ElementwiseKernel, EwBinary, EwNode, EwUnary};

/// Which nodes the outputs depend on.
fn live_nodes(k: &ElementwiseKernel) -> Vec<bool> {
    let mut live = vec![false; k.nodes.len()];
    for &o in &k.outputs {
        live[o as usize] = true;
    }
    for id in (0..k.nodes.len()).rev() {
        if !live[id] {
            continue;
        }
        match k.nodes[id] {
            EwNode::Unary(_, a) => live[a as usize] = true,
            EwNode::Binary(_, a, b) => {
                live[a as usize] = true;
                live[b as usize] = true;
            }
            EwNode::Input(_) | EwNode::Const(_) => {}
        }
    }
    live
}

/// The runtime function a unary operation calls, if it is not inlined.
fn unary_runtime(op: EwUnary) -> Option<RtFn> {
    match op {
        EwUnary::Log => Some(RtFn::Log),
        EwUnary::Tanh => Some(RtFn::Tanh),
        EwUnary::Erf => Some(RtFn::Erf),
        EwUnary::Sin => Some(RtFn::Sin),
        EwUnary::Cos => Some(RtFn::Cos),
        _ => None,
    }
}

/// The runtime functions the kernel's live nodes call.
pub(crate) fn runtime_functions(k: &ElementwiseKernel) -> Vec<RtFn> {
    let live = live_nodes(k);
    let mut out: Vec<RtFn> = k
        .nodes
        .iter()
        .zip(&live)
        .filter(|(_, &l)| l)
        .filter_map(|(node, _)| match *node {
            EwNode::Unary(op, _) => unary_runtime(op),
            EwNode::Binary(EwBinary::Pow, _, _) => Some(RtFn::Pow),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Where input `i` comes from inside the column loop.
#[derive(Clone, Copy)]
enum Source {
    /// A row of a full tensor starting at this address.
    Full(Value),
    /// A length-`cols` vector at this address.
    Row(Value),
    /// One f32 value, the same for the whole row (Col) or the whole call (Scalar).
    Splat(Value),
    /// An input no live node reads (never loaded).
    Unused,
}

/// Emits the kernel body; the current block is the entry block, with the three ABI parameters.
pub(crate) fn build(e: &mut Emit, k: &ElementwiseKernel, args: Value, rows: Value, cols: Value) {
    let ptrs = load_pointers(e, args, k.inputs.len() + k.outputs.len());
    let (inputs, outputs) = ptrs.split_at(k.inputs.len());
    let live = live_nodes(k);
    let used: Vec<bool> = (0..k.inputs.len())
        .map(|i| {
            k.nodes
                .iter()
                .zip(&live)
                .any(|(n, &l)| l && *n == EwNode::Input(i as u32))
        })
        .collect();
    // Scalar inputs are read once; nothing is read when there are no elements.
    skip_if_empty(e, rows, cols);
    let scalars: Vec<Option<Value>> = k
        .inputs
        .iter()
        .zip(inputs)
        .zip(&used)
        .map(|((a, &p), &u)| {
            (u && *a == Access::Scalar).then(|| e.b.ins().load(F32, flags(), p, 0))
        })
        .collect();
    let flat = !k
        .inputs
        .iter()
        .any(|a| matches!(a, Access::Row | Access::Col));
    if flat {
        // No input depends on the row: one pass over all rows·cols elements.
        let n = e.b.ins().imul(rows, cols);
        let sources = sources(e, k, inputs, &used, &scalars, None);
        columns(e, k, &live, &sources, outputs, n);
    } else {
        let zero = e.b.ins().iconst(I64, 0);
        e.counted_loop(zero, rows, 1, |e, r| {
            let first = e.b.ins().imul(r, cols);
            let row_offset = e.f32_offset(first);
            let col_offset = e.f32_offset(r);
            let sources = sources(
                e,
                k,
                inputs,
                &used,
                &scalars,
                Some((row_offset, col_offset)),
            );
            let outs: Vec<Value> = outputs
                .iter()
                .map(|&p| e.b.ins().iadd(p, row_offset))
                .collect();
            columns(e, k, &live, &sources, &outs, cols);
        });
    }
    e.b.ins().return_(&[]);
}

fn flags() -> cranelift_codegen::ir::MemFlagsData {
    cranelift_codegen::ir::MemFlagsData::new().with_notrap()
}

/// Loads the `n` base pointers from `args`.
pub(crate) fn load_pointers(e: &mut Emit, args: Value, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| e.b.ins().load(I64, flags(), args, (8 * i) as i32))
        .collect()
}

/// Returns early (from the current block) when `rows` or `cols` is zero.
pub(crate) fn skip_if_empty(e: &mut Emit, rows: Value, cols: Value) {
    let n = e.b.ins().imul(rows, cols);
    let empty = e.b.create_block();
    let work = e.b.create_block();
    e.b.ins().brif(n, work, &[], empty, &[]);
    e.b.switch_to_block(empty);
    e.b.seal_block(empty);
    e.b.ins().return_(&[]);
    e.b.switch_to_block(work);
    e.b.seal_block(work);
}

/// The inputs' sources for one row (`row` holds the row's byte offset into full tensors and the
/// row index's byte offset into Col vectors), or for the flat loop (`None`).
fn sources(
    e: &mut Emit,
    k: &ElementwiseKernel,
    inputs: &[Value],
    used: &[bool],
    scalars: &[Option<Value>],
    row: Option<(Value, Value)>,
) -> Vec<Source> {
    let mut out = Vec::with_capacity(k.inputs.len());
    for (i, access) in k.inputs.iter().enumerate() {
        let p = inputs[i];
        out.push(match (used[i], access, row, scalars[i]) {
            (false, ..) => Source::Unused,
            (true, Access::Full, None, _) => Source::Full(p),
            (true, Access::Full, Some((offset, _)), _) => Source::Full(e.b.ins().iadd(p, offset)),
            (true, Access::Row, ..) => Source::Row(p),
            (true, Access::Col, Some((_, index)), _) => Source::Splat(e.load(F32, p, index)),
            (true, Access::Scalar, _, Some(value)) => Source::Splat(value),
            (true, Access::Col, None, _) | (true, Access::Scalar, _, None) => {
                unreachable!("the flat loop has no Col input; used Scalar inputs are loaded")
            }
        });
    }
    out
}

/// The column loops: evaluate the live nodes and store the outputs at each column.
fn columns(
    e: &mut Emit,
    k: &ElementwiseKernel,
    live: &[bool],
    sources: &[Source],
    outputs: &[Value],
    n: Value,
) {
    e.vector_then_scalar(n, |e, ty, c| {
        let offset = e.f32_offset(c);
        let mut vals: Vec<Option<Value>> = vec![None; k.nodes.len()];
        for (id, node) in k.nodes.iter().enumerate() {
            if !live[id] {
                continue;
            }
            let get = |vals: &[Option<Value>], i: u32| {
                vals[i as usize].unwrap_or_else(|| unreachable!("operands of live nodes are live"))
            };
            let v = match *node {
                EwNode::Input(i) => match sources[i as usize] {
                    Source::Full(base) | Source::Row(base) => e.load(ty, base, offset),
                    Source::Splat(s) => e.splat(ty, s),
                    Source::Unused => unreachable!("inputs of live nodes are used"),
                },
                EwNode::Const(c) => e.fconst(ty, c),
                EwNode::Unary(op, a) => unary(e, ty, op, get(&vals, a)),
                EwNode::Binary(op, a, b) => binary(e, ty, op, get(&vals, a), get(&vals, b)),
            };
            vals[id] = Some(v);
        }
        for (&node, &base) in k.outputs.iter().zip(outputs) {
            let v = vals[node as usize].unwrap_or_else(|| unreachable!("outputs are live"));
            e.store(v, base, offset);
        }
    });
}

/// One unary operation on a `ty` value.
pub(crate) fn unary(e: &mut Emit, ty: Type, op: EwUnary, x: Value) -> Value {
    if let Some(f) = unary_runtime(op) {
        return e.call(ty, f, &[x]);
    }
    match op {
        EwUnary::Neg => e.b.ins().fneg(x),
        EwUnary::Abs => e.b.ins().fabs(x),
        EwUnary::Exp => e.exp(ty, x),
        EwUnary::Sqrt => e.b.ins().sqrt(x),
        EwUnary::Rsqrt => {
            let s = e.b.ins().sqrt(x);
            let one = e.fconst(ty, 1.0);
            e.b.ins().fdiv(one, s)
        }
        EwUnary::Recip => {
            let one = e.fconst(ty, 1.0);
            e.b.ins().fdiv(one, x)
        }
        EwUnary::Sigmoid => e.sigmoid(ty, x),
        EwUnary::GeluErf => e.gelu_erf(ty, x),
        EwUnary::GeluTanh => e.gelu_tanh(ty, x),
        EwUnary::Relu => {
            // x < 0 ? 0 : x — NaN stays NaN (one `maxps` for vectors).
            let zero = e.fconst(ty, 0.0);
            e.select_lt(ty, x, zero, zero, x)
        }
        EwUnary::Floor => e.b.ins().floor(x),
        EwUnary::Ceil => e.b.ins().ceil(x),
        EwUnary::Log | EwUnary::Tanh | EwUnary::Erf | EwUnary::Sin | EwUnary::Cos => {
            unreachable!("runtime calls are handled above")
        }
    }
}

/// One binary operation on `ty` values.
fn binary(e: &mut Emit, ty: Type, op: EwBinary, a: Value, b: Value) -> Value {
    match op {
        EwBinary::Add => e.b.ins().fadd(a, b),
        EwBinary::Sub => e.b.ins().fsub(a, b),
        EwBinary::Mul => e.b.ins().fmul(a, b),
        EwBinary::Div => e.b.ins().fdiv(a, b),
        EwBinary::Max => e.b.ins().fmax(a, b),
        EwBinary::Min => e.b.ins().fmin(a, b),
        EwBinary::Pow => e.call(ty, RtFn::Pow, &[a, b]),
    }
}
