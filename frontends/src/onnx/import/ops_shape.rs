//! ONNX importers for shape ops (Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
//! Expand, Concat), plus the helpers the other shape and index importers share. Shape values
//! fold into symbolic dims, so `Shape → Gather → Concat → Reshape` keeps `batch` and `seq`.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand, SymTensor};
use super::node::NodeView;
use super::Registry;
use kiln_compiler::ir::{DType, Dim, Op, Shape};
use kiln_runtime::Tensor;

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Shape", shape);
    r.add("Size", size);
    r.add("Reshape", reshape_node);
    r.add("Flatten", flatten);
    r.add("Squeeze", squeeze);
    r.add("Unsqueeze", unsqueeze);
    r.add("Transpose", transpose);
    r.add("Expand", expand);
    r.add("Concat", concat);
}

/// Normalises a possibly negative axis against `rank`.
pub(super) fn norm_axis(axis: i64, rank: usize) -> NResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        invalid(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// The operand's dims.
pub(super) fn dims_of(ctx: &Ctx, o: &Operand) -> Vec<Dim> {
    ctx.ty(o).shape.0
}

/// The product of dims.
pub(super) fn product(ds: &[Dim]) -> Dim {
    ds.iter().fold(Dim::known(1), |acc, d| acc.mul(d))
}

/// Integer values known at import time; `what` names them in the error.
pub(super) fn known_ints(ctx: &mut Ctx, o: &Operand, what: &str) -> NResult<Vec<i64>> {
    if !ctx.ty(o).dtype.is_int() {
        return invalid(format!(
            "{what} must be an integer tensor, got {}",
            ctx.ty(o)
        ));
    }
    match ctx.const_i64s(o) {
        Some(v) => Ok(v),
        None => unsupported(format!(
            "{what} computed from tensor data (not known at import time)"
        )),
    }
}

/// Integer values known at import time as dims (symbolic allowed).
pub(super) fn known_dims(ctx: &mut Ctx, o: &Operand, what: &str) -> NResult<Vec<Dim>> {
    if !ctx.ty(o).dtype.is_int() {
        return invalid(format!(
            "{what} must be an integer tensor, got {}",
            ctx.ty(o)
        ));
    }
    match ctx.dims(o) {
        Some(v) => Ok(v),
        None => unsupported(format!(
            "{what} computed from tensor data (not known at import time)"
        )),
    }
}

/// One known integer (a scalar or a one-element tensor).
pub(super) fn known_int(ctx: &mut Ctx, o: &Operand, what: &str) -> NResult<i64> {
    match known_ints(ctx, o, what)?.as_slice() {
        [v] => Ok(*v),
        v => invalid(format!("{what} must hold one value, got {}", v.len())),
    }
}

/// A rank-0 i64 constant.
pub(super) fn int_scalar(ctx: &mut Ctx, v: i64) -> NResult<Operand> {
    Ok(ctx.constant(Tensor::from_i64(vec![], vec![v])?))
}

/// An i64 operand holding `dims` with the given shape (symbolic or constant).
pub(super) fn dims_tensor(ctx: &mut Ctx, dims: Vec<Dim>, shape: Vec<usize>) -> NResult<Operand> {
    ctx.sym(SymTensor {
        shape,
        elems: dims,
        dtype: DType::I64,
    })
}

/// Axes from the `axes` attribute before opset `input_from`, from input `idx` from it on.
pub(super) fn axes_arg(
    ctx: &mut Ctx,
    n: &NodeView,
    idx: usize,
    input_from: i64,
) -> NResult<Option<Vec<i64>>> {
    if n.opset >= input_from {
        match n.opt_input(idx) {
            Some(o) => Ok(Some(known_ints(ctx, o, "axes")?)),
            None => Ok(None),
        }
    } else {
        Ok(n.ints("axes"))
    }
}

/// Emits a reshape of `x` to `dims`.
pub(super) fn reshape(ctx: &mut Ctx, x: &Operand, dims: Vec<Dim>) -> NResult<Operand> {
    ctx.emit1(Op::Reshape { shape: dims }, std::slice::from_ref(x))
}

/// `o` cast to `dtype` (no node when it already has that dtype).
pub(super) fn cast(ctx: &mut Ctx, o: &Operand, dtype: DType) -> NResult<Operand> {
    if ctx.ty(o).dtype == dtype {
        return Ok(o.clone());
    }
    op1(ctx, Op::Cast { to: dtype }, &[o])
}

/// Emits one op with one output.
pub(super) fn op1(ctx: &mut Ctx, op: Op, inputs: &[&Operand]) -> NResult<Operand> {
    let v: Vec<Operand> = inputs.iter().map(|&o| o.clone()).collect();
    ctx.emit1(op, &v)
}

fn shape(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let dims = dims_of(ctx, n.input(0)?);
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v.saturating_add(r) } else { v }).clamp(0, r) as usize;
    let (start, end) = if n.opset >= 15 {
        (
            clamp(n.int("start", 0)),
            clamp(n.attr("end").map_or(r, |a| a.i)),
        )
    } else {
        (0, r as usize)
    };
    let elems = dims[start..end.max(start)].to_vec();
    let len = elems.len();
    Ok(vec![dims_tensor(ctx, elems, vec![len])?])
}

fn size(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let numel = product(&dims_of(ctx, n.input(0)?));
    Ok(vec![dims_tensor(ctx, vec![numel], vec![])?])
}

/// ONNX Reshape's target: `0` copies the input dim (unless `allowzero`), one `-1` is inferred.
pub(super) fn resolve_reshape(input: &[Dim], target: &[Dim], allowzero: bool) -> NResult<Vec<Dim>> {
    let mut out = Vec::with_capacity(target.len());
    let mut inferred = None;
    for (i, d) in target.iter().enumerate() {
        match d.as_known() {
            Some(0) if !allowzero => match input.get(i) {
                Some(x) => out.push(x.clone()),
                None => {
                    return invalid(format!(
                        "shape entry {i} is 0 but the input has rank {}",
                        input.len()
                    ))
                }
            },
            Some(-1) => {
                if inferred.replace(i).is_some() {
                    return invalid("the shape has more than one -1");
                }
                out.push(Dim::known(1));
            }
            Some(v) if v < -1 => return invalid(format!("shape entry {i} is {v}")),
            _ => out.push(d.clone()),
        }
    }
    let have = product(input);
    if let Some(i) = inferred {
        let rest = product(&out);
        if rest.as_known() == Some(0) {
            return invalid("cannot infer the -1 entry when another entry is 0");
        }
        out[i] = have.floor_div(&rest);
    }
    let want = product(&out);
    if want != have {
        let (from, to) = (Shape(input.to_vec()), Shape(out));
        if have.as_known().is_some() && want.as_known().is_some() {
            return invalid(format!(
                "cannot reshape {from} ({have} elements) to {to} ({want} elements)"
            ));
        }
        return unsupported(format!(
            "Reshape from {from} to {to}: Kiln cannot prove the element counts ({have} and {want}) are equal"
        ));
    }
    Ok(out)
}

fn reshape_node(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let target: Vec<Dim> = if n.opset < 5 {
        n.ints("shape")
            .ok_or_else(|| n.missing("shape"))?
            .into_iter()
            .map(Dim::known)
            .collect()
    } else {
        let s = n.input(1)?;
        if !ctx.ty(s).dtype.is_int() {
            return invalid(format!(
                "the shape must be an integer tensor, got {}",
                ctx.ty(s)
            ));
        }
        match ctx.dims(s) {
            Some(d) => d,
            None => return unsupported("Reshape with a shape computed from tensor data"),
        }
    };
    let allowzero = n.opset >= 14 && n.int("allowzero", 0) != 0;
    let out = resolve_reshape(&dims_of(ctx, x), &target, allowzero)?;
    Ok(vec![reshape(ctx, x, out)?])
}

fn flatten(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let dims = dims_of(ctx, x);
    let r = dims.len() as i64;
    let axis = n.int("axis", 1);
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return invalid(format!("axis {axis} is out of range for rank {r}"));
    }
    let (outer, inner) = dims.split_at(a as usize);
    Ok(vec![reshape(ctx, x, vec![product(outer), product(inner)])?])
}

fn squeeze(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let dims = dims_of(ctx, x);
    let mut drop = vec![false; dims.len()];
    match axes_arg(ctx, n, 1, 13)? {
        Some(axes) if !axes.is_empty() => {
            for a in axes {
                let ax = norm_axis(a, dims.len())?;
                match dims[ax].as_known() {
                    Some(1) => drop[ax] = true,
                    Some(d) => return invalid(format!("cannot squeeze axis {a} of size {d}")),
                    None => {
                        return unsupported(format!(
                            "Squeeze of axis {a}, whose size `{}` is symbolic (it must be 1)",
                            dims[ax]
                        ))
                    }
                }
            }
        }
        _ => {
            for (i, d) in dims.iter().enumerate() {
                match d.as_known() {
                    Some(v) => drop[i] = v == 1,
                    None => {
                        return unsupported(format!(
                            "Squeeze without axes of a tensor with symbolic dim `{d}` (the output rank depends on it)"
                        ))
                    }
                }
            }
        }
    }
    let out = dims
        .iter()
        .zip(&drop)
        .filter(|(_, &dr)| !dr)
        .map(|(d, _)| d.clone())
        .collect();
    Ok(vec![reshape(ctx, x, out)?])
}

fn unsqueeze(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let dims = dims_of(ctx, x);
    let axes = axes_arg(ctx, n, 1, 13)?.ok_or_else(|| n.missing("axes"))?;
    let out_rank = dims.len() + axes.len();
    let mut new = vec![false; out_rank];
    for a in axes {
        let ax = norm_axis(a, out_rank)?;
        if std::mem::replace(&mut new[ax], true) {
            return invalid(format!("axis {a} is listed twice"));
        }
    }
    let mut it = dims.into_iter();
    let out = new.iter().map(|&nw| {
        if nw {
            Dim::known(1)
        } else {
            it.next().unwrap_or_else(|| Dim::known(1))
        }
    });
    Ok(vec![reshape(ctx, x, out.collect())?])
}

fn transpose(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let rank = ctx.ty(x).rank() as i64;
    let perm = n.ints("perm").unwrap_or_else(|| (0..rank).rev().collect());
    Ok(vec![op1(ctx, Op::Transpose { perm }, &[x])?])
}

fn expand(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let shape = known_dims(ctx, n.input(1)?, "Expand shape")?;
    Ok(vec![op1(ctx, Op::Expand { shape }, &[n.input(0)?])?])
}

fn concat(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let axis = if n.opset < 4 {
        n.int("axis", 1)
    } else {
        n.req_int("axis")?
    };
    let inputs = n.present_inputs();
    if inputs.is_empty() {
        return invalid("Concat needs at least one input");
    }
    Ok(vec![ctx.emit1(Op::Concat { axis }, &inputs)?])
}
