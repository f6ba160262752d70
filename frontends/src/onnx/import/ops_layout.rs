//! ONNX importers for ops that cut, repeat or rearrange a tensor's layout: Split, Tile,
//! DepthToSpace, SpaceToDepth and Trilu. Sizes may be symbolic as long as they divide exactly.

use super::ctx::{invalid, unsupported, Ctx, NResult, Operand};
use super::node::NodeView;
use super::ops_generate::iota;
use super::ops_shape::{cast, dims_of, known_dims, known_int, norm_axis, op1, product, reshape};
use super::Registry;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op};

/// Registers this module's importers.
pub fn register(r: &mut Registry) {
    r.add("Split", split);
    r.add("Tile", tile);
    r.add("DepthToSpace", depth_to_space);
    r.add("SpaceToDepth", space_to_depth);
    r.add("Trilu", trilu);
}

/// `d / k` when Kiln can prove it exact (`what` names the quotient in errors).
fn exact_div(d: &Dim, k: i64, what: &str) -> NResult<Dim> {
    if k <= 0 {
        return invalid(format!("{what}: divisor {k} must be positive"));
    }
    let q = d.floor_div(&Dim::known(k));
    if q.mul(&Dim::known(k)) == *d {
        return Ok(q);
    }
    if d.as_known().is_some() {
        invalid(format!("{what}: {d} is not divisible by {k}"))
    } else {
        unsupported(format!(
            "{what}: Kiln cannot prove that `{d}` is divisible by {k}"
        ))
    }
}

/// The sizes of an unspecified split into `count` parts (ONNX ≥ 18 allows a smaller last part).
fn equal_split(d: &Dim, count: usize, uneven_ok: bool) -> NResult<Vec<Dim>> {
    if count == 0 {
        return invalid("Split needs at least one output");
    }
    let c = count as i64;
    match d.as_known() {
        Some(v) if v % c != 0 && uneven_ok => {
            let chunk = v / c + 1;
            let last = v.saturating_sub(chunk.saturating_mul(c - 1));
            if last < 0 {
                return invalid(format!(
                    "cannot split {v} elements into {count} chunks of {chunk}"
                ));
            }
            let mut sizes = vec![Dim::known(chunk); count - 1];
            sizes.push(Dim::known(last));
            Ok(sizes)
        }
        _ => Ok(vec![exact_div(d, c, "Split into equal parts")?; count]),
    }
}

fn split(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let dims = dims_of(ctx, x);
    let axis = n.int("axis", 0);
    let ax = norm_axis(axis, dims.len())?;
    let attr = || {
        n.ints("split")
            .filter(|s| !s.is_empty())
            .map(|s| s.into_iter().map(Dim::known).collect())
    };
    let given: Option<Vec<Dim>> = match n.opt_input(1) {
        Some(s) if n.opset >= 13 || n.opset < 2 => Some(known_dims(ctx, s, "Split sizes")?),
        _ if n.opset < 13 => attr(),
        _ => None,
    };
    let sizes = match given {
        Some(s) => s,
        None => {
            let count = match n.attr("num_outputs") {
                Some(a) if n.opset >= 18 => usize::try_from(a.i)
                    .or_else(|_| invalid(format!("num_outputs {} is negative", a.i)))?,
                _ => n.num_outputs(),
            };
            equal_split(&dims[ax], count, n.opset >= 18)?
        }
    };
    if sizes.len() != n.num_outputs() {
        return invalid(format!(
            "{} split sizes for {} outputs",
            sizes.len(),
            n.num_outputs()
        ));
    }
    ctx.emit(Op::Split { axis, sizes }, std::slice::from_ref(x))
}

fn tile(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let dims = dims_of(ctx, x);
    let repeats: Vec<Dim> = if n.opset < 6 {
        let tiles = known_dims(ctx, n.input(1)?, "Tile tiles")?;
        let [tiles] = tiles.as_slice() else {
            return invalid("Tile tiles must hold one value");
        };
        let ax = norm_axis(known_int(ctx, n.input(2)?, "Tile axis")?, dims.len())?;
        (0..dims.len())
            .map(|i| {
                if i == ax {
                    tiles.clone()
                } else {
                    Dim::known(1)
                }
            })
            .collect()
    } else {
        known_dims(ctx, n.input(1)?, "Tile repeats")?
    };
    if repeats.len() != dims.len() {
        return invalid(format!(
            "{} repeats for a tensor of rank {}",
            repeats.len(),
            dims.len()
        ));
    }
    if let Some(known) = repeats
        .iter()
        .map(Dim::as_known)
        .collect::<Option<Vec<i64>>>()
    {
        return Ok(vec![op1(ctx, Op::Tile { repeats: known }, &[x])?]);
    }
    // Symbolic repeats: [d0, d1] → [1, d0, 1, d1] → expand to [r0, d0, r1, d1] → [r0·d0, r1·d1].
    let mut spread = Vec::with_capacity(2 * dims.len());
    let mut target = Vec::with_capacity(2 * dims.len());
    for (d, r) in dims.iter().zip(&repeats) {
        spread.extend([Dim::known(1), d.clone()]);
        target.extend([r.clone(), Dim::known(1)]);
    }
    let y = reshape(ctx, x, spread)?;
    let y = op1(ctx, Op::Expand { shape: target }, &[&y])?;
    let out = dims.iter().zip(&repeats).map(|(d, r)| r.mul(d)).collect();
    Ok(vec![reshape(ctx, &y, out)?])
}

/// `[N, C, H, W]` of a rank-4 input.
fn nchw(ctx: &Ctx, x: &Operand) -> NResult<[Dim; 4]> {
    match <[Dim; 4]>::try_from(dims_of(ctx, x)) {
        Ok(d) => Ok(d),
        Err(d) => invalid(format!("expected a rank-4 input, got rank {}", d.len())),
    }
}

/// The `mode` attribute: true for DCR, false for CRD.
fn dcr_mode(n: &NodeView) -> NResult<bool> {
    match n.string("mode", "DCR").as_str() {
        "DCR" => Ok(true),
        "CRD" => Ok(false),
        m => invalid(format!("unknown mode `{m}` (expected DCR or CRD)")),
    }
}

fn depth_to_space(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let [b, c, h, w] = nchw(ctx, x)?;
    let bs = n.req_int("blocksize")?;
    let dcr = n.opset < 11 || dcr_mode(n)?;
    let k = Dim::known(bs);
    let c2 = exact_div(&c, bs.saturating_mul(bs), "DepthToSpace channels")?;
    let (split, perm) = if dcr {
        (
            vec![
                b.clone(),
                k.clone(),
                k.clone(),
                c2.clone(),
                h.clone(),
                w.clone(),
            ],
            vec![0, 3, 4, 1, 5, 2],
        )
    } else {
        (
            vec![
                b.clone(),
                c2.clone(),
                k.clone(),
                k.clone(),
                h.clone(),
                w.clone(),
            ],
            vec![0, 1, 4, 2, 5, 3],
        )
    };
    let y = reshape(ctx, x, split)?;
    let y = op1(ctx, Op::Transpose { perm }, &[&y])?;
    Ok(vec![reshape(ctx, &y, vec![b, c2, h.mul(&k), w.mul(&k)])?])
}

fn space_to_depth(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let [b, c, h, w] = nchw(ctx, x)?;
    let bs = n.req_int("blocksize")?;
    let dcr = n.opset < 28 || dcr_mode(n)?;
    let k = Dim::known(bs);
    let (h2, w2) = (
        exact_div(&h, bs, "SpaceToDepth height")?,
        exact_div(&w, bs, "SpaceToDepth width")?,
    );
    let y = reshape(
        ctx,
        x,
        vec![
            b.clone(),
            c.clone(),
            h2.clone(),
            k.clone(),
            w2.clone(),
            k.clone(),
        ],
    )?;
    let perm = if dcr {
        vec![0, 3, 5, 1, 2, 4]
    } else {
        vec![0, 1, 3, 5, 2, 4]
    };
    let y = op1(ctx, Op::Transpose { perm }, &[&y])?;
    let depth = product(&[c, k.clone(), k]);
    Ok(vec![reshape(ctx, &y, vec![b, depth, h2, w2])?])
}

fn trilu(ctx: &mut Ctx, n: &NodeView) -> NResult<Vec<Operand>> {
    let x = n.input(0)?;
    let upper = n.int("upper", 1) != 0;
    let Some(k) = n.opt_input(1) else {
        return Ok(vec![op1(ctx, Op::Trilu { upper, k: 0 }, &[x])?]);
    };
    if let Some(k) = ctx.const_i64s(k) {
        let [k] = k.as_slice() else {
            return invalid("Trilu k must hold one value");
        };
        return Ok(vec![op1(ctx, Op::Trilu { upper, k: *k }, &[x])?]);
    }
    // k from tensor data: keep x where `j - i >= k` (upper) or `j - i <= k` (lower), else 0.
    let dims = dims_of(ctx, x);
    let r = dims.len();
    if r < 2 {
        return invalid(format!("Trilu needs rank ≥ 2, got rank {r}"));
    }
    let i = iota(ctx, &dims[r - 2], 2, 0)?;
    let j = iota(ctx, &dims[r - 1], 2, 1)?;
    let diff = op1(ctx, Op::Binary(BinaryOp::Sub), &[&j, &i])?;
    let k = cast(ctx, k, DType::I64)?;
    let k = reshape(ctx, &k, vec![])?;
    let cmp = if upper { BinaryOp::Ge } else { BinaryOp::Le };
    let keep = op1(ctx, Op::Binary(cmp), &[&diff, &k])?;
    let zero = ctx.scalar(0.0, ctx.ty(x).dtype)?;
    Ok(vec![op1(ctx, Op::Where, &[&keep, x, &zero])?])
}
