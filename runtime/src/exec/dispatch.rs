//! One step's kernel call: operand shapes read from the run's layout, checked against what the
//! kernel needs, then the library, generated or reference kernel runs.

use super::frame::Frame;
use crate::code::CodeModule;
use crate::kernels::{attention as attn, gemm};
use crate::plan::{
    Access, Activation, AttentionStep, ConvStep, GemmB, GemmStep, GeneratedStep, Kernel, Layout,
    Step,
};
use crate::reference;
use crate::DType;

/// Generated kernels over at least this many elements run in row blocks across the pool.
const PARALLEL_ELEMENTS: usize = 16 * 1024;

/// Runs one step. Errors are messages; the caller adds the step's origin.
pub fn run_step(
    f: &Frame,
    step: &Step,
    isa: gemm::Isa,
    code: Option<&CodeModule>,
) -> Result<(), String> {
    match &step.kernel {
        Kernel::Reference(op) => reference_step(f, step, op),
        Kernel::Gemm(g) => gemm_step(f, step, g, isa),
        Kernel::Attention(a) => attention_step(f, step, a, isa),
        Kernel::GatherRows => gather_rows(f, step),
        Kernel::Conv(c) => conv_step(f, step, c, isa),
        Kernel::Generated(g) => generated_step(f, step, g, code),
    }
}

fn reference_step(f: &Frame, step: &Step, op: &crate::ops::Op) -> Result<(), String> {
    let args = step
        .inputs
        .iter()
        .map(|&v| f.tensor(v))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&crate::Tensor> = args.iter().collect();
    let outs = reference::eval_op(op, &refs, &f.layout.bindings)?;
    if outs.len() != step.outputs.len() {
        return Err(format!(
            "produced {} outputs, expected {}",
            outs.len(),
            step.outputs.len()
        ));
    }
    for (t, &v) in outs.iter().zip(&step.outputs) {
        if t.dtype() != f.dtype(v) || t.shape() != f.shape(v) {
            return Err(format!(
                "produced {}{:?}, but the plan says {}{:?}",
                t.dtype(),
                t.shape(),
                f.dtype(v),
                f.shape(v)
            ));
        }
        let bytes = t.to_le_bytes();
        // SAFETY: `v` is an output of this step; the plan validator guarantees no input of the
        // step shares its slot, and no other slice over it is alive.
        unsafe { f.bytes_mut(v) }.copy_from_slice(&bytes);
    }
    Ok(())
}

fn split_last(shape: &[usize], what: &str) -> Result<(usize, usize), String> {
    match shape.split_last() {
        Some((&last, rest)) => Ok((rest.iter().product(), last)),
        None => Err(format!(
            "{what} is a scalar; a matrix product needs rank ≥ 1"
        )),
    }
}

fn gemm_step(f: &Frame, step: &Step, g: &GemmStep, isa: gemm::Isa) -> Result<(), String> {
    let mut ins = step.inputs.iter().copied();
    let a_id = ins.next().ok_or("missing operand a")?;
    let a_shape = f.shape(a_id);
    let (rows, k) = split_last(a_shape, "a")?;
    let a = f.f32s(a_id, "a")?;
    let out_id = step.outputs[0];
    let b_val = match g.b {
        GemmB::Value { .. } => Some(ins.next().ok_or("missing operand b")?),
        GemmB::Packed { .. } => None,
    };
    let bias = if g.bias {
        Some(f.f32s(ins.next().ok_or("missing bias")?, "bias")?)
    } else {
        None
    };
    let residual = if g.residual {
        Some(f.f32s(ins.next().ok_or("missing residual")?, "residual")?)
    } else {
        None
    };
    let activation = gemm_activation(g.activation);
    let out_shape = f.shape(out_id);
    let (out_rows, n) = split_last(out_shape, "the output")?;
    if let Some(b) = bias {
        if b.len() != n {
            return Err(format!("bias has {} elements, expected n = {n}", b.len()));
        }
    }
    if let Some(r) = residual {
        if r.len() != out_rows * n {
            return Err(format!(
                "residual has {} elements, expected {}",
                r.len(),
                out_rows * n
            ));
        }
    }
    // SAFETY: the output is this step's only output; no input shares its slot (validated).
    let c = unsafe { f.f32s_mut(out_id, "the output")? };
    match (g.b, b_val) {
        (
            GemmB::Packed {
                offset,
                len,
                k: pk,
                n: pn,
            },
            _,
        ) => {
            if pk as usize != k || pn as usize != n || out_rows != rows {
                return Err(format!(
                    "a is {a_shape:?} and the packed weights are {pk}×{pn}, but the output is {out_shape:?}"
                ));
            }
            let packed = packed_weights(f, offset, len)?;
            let ep = gemm::Epilogue {
                bias,
                activation,
                residual,
            };
            let shape = gemm::Shape { m: rows, n, k };
            let a = gemm::Matrix { data: a, stride: k };
            let c = gemm::MatrixMut { data: c, stride: n };
            gemm::gemm_packed(isa, shape, a, packed, c, &ep).map_err(|e| e.to_string())?;
        }
        (GemmB::Value { trans }, Some(b_id)) => {
            let b_shape = f.shape(b_id);
            let b = f.f32s(b_id, "b")?;
            if a_shape.len() < 2 || b_shape.len() < 2 {
                return Err(format!(
                    "batched product of {a_shape:?} and {b_shape:?} needs rank ≥ 2"
                ));
            }
            let m = a_shape[a_shape.len() - 2];
            let (bk, bn) = {
                let (r, c) = (b_shape[b_shape.len() - 2], b_shape[b_shape.len() - 1]);
                if trans {
                    (c, r)
                } else {
                    (r, c)
                }
            };
            let batch = rows / m.max(1);
            let b_batch: usize = b_shape[..b_shape.len() - 2].iter().product();
            if bk != k || bn != n || out_rows != rows || !(b_batch == batch || b_batch == 1) {
                return Err(format!(
                    "a {a_shape:?} and b {b_shape:?} (trans {trans}) do not give {out_shape:?}"
                ));
            }
            let ldb = if trans { k } else { n };
            for i in 0..batch {
                let bi = if b_batch == 1 { 0 } else { i };
                let ep = gemm::Epilogue {
                    bias,
                    activation,
                    residual: residual.map(|r| &r[i * m * n..(i + 1) * m * n]),
                };
                let a = gemm::Matrix {
                    data: &a[i * m * k..(i + 1) * m * k],
                    stride: k,
                };
                let b = gemm::Matrix {
                    data: &b[bi * k * n..(bi + 1) * k * n],
                    stride: ldb,
                };
                let c = gemm::MatrixMut {
                    data: &mut c[i * m * n..(i + 1) * m * n],
                    stride: n,
                };
                gemm::gemm(isa, gemm::Shape { m, n, k }, a, b, trans, c, &ep)
                    .map_err(|e| e.to_string())?;
            }
        }
        (GemmB::Value { .. }, None) => return Err("missing operand b".into()),
    }
    Ok(())
}

fn packed_weights<'a>(f: &'a Frame, offset: u64, len: u64) -> Result<&'a [f32], String> {
    f.weights_f32(offset, len)
}

/// `[B, H, S, D]` of an attention operand stored in `layout`, with its element strides.
fn attn_dims(
    shape: &[usize],
    layout: Layout,
    what: &str,
) -> Result<([usize; 4], [usize; 3]), String> {
    let &[b, x, y, d] = shape else {
        return Err(format!("attention {what} must be rank 4, got {shape:?}"));
    };
    Ok(match layout {
        Layout::Bhsd => ([b, x, y, d], [x * y * d, y * d, d]),
        Layout::Bshd => ([b, y, x, d], [x * y * d, d, y * d]),
    })
}

fn attention_step(f: &Frame, step: &Step, a: &AttentionStep, isa: gemm::Isa) -> Result<(), String> {
    let id = |i: usize| step.inputs[i];
    let (qd, qs) = attn_dims(f.shape(id(0)), a.layouts[0], "q")?;
    let (kd, ks) = attn_dims(f.shape(id(1)), a.layouts[1], "k")?;
    let (vd, vs) = attn_dims(f.shape(id(2)), a.layouts[2], "v")?;
    let (od, os) = attn_dims(f.shape(step.outputs[0]), a.layouts[3], "the output")?;
    let dims = attn::Dims {
        batch: qd[0],
        heads: qd[1],
        kv_heads: kd[1],
        sq: qd[2],
        sk: kd[2],
        d: qd[3],
        dv: vd[3],
    };
    if qd[1] != a.heads as usize
        || kd[1] != a.kv_heads as usize
        || vd[..3] != kd[..3]
        || od != [qd[0], qd[1], qd[2], vd[3]]
        || kd[0] != qd[0]
        || kd[3] != qd[3]
    {
        return Err(format!("operand shapes q {qd:?}, k {kd:?}, v {vd:?}, out {od:?} do not fit {} heads / {} kv heads", a.heads, a.kv_heads));
    }
    let view = |v: u32, s: [usize; 3], what: &str| -> Result<attn::View, String> {
        Ok(attn::View {
            data: f.f32s(v, what)?,
            stride_b: s[0],
            stride_h: s[1],
            stride_s: s[2],
        })
    };
    let mut next = 3;
    let bias = if a.bias {
        let v = id(next);
        next += 1;
        let shape = f.shape(v);
        let full = [dims.batch, dims.heads, dims.sq, dims.sk];
        if shape.len() > 4 {
            return Err(format!("attention bias {shape:?} has rank > 4"));
        }
        let pad = 4 - shape.len();
        let mut st = [0usize; 4];
        let mut acc = 1;
        for i in (0..shape.len()).rev() {
            let want = full[pad + i];
            if shape[i] != want && shape[i] != 1 {
                return Err(format!(
                    "attention bias {shape:?} does not broadcast to {full:?}"
                ));
            }
            st[pad + i] = if shape[i] == 1 { 0 } else { acc };
            acc *= shape[i];
        }
        Some(attn::BiasView {
            data: f.f32s(v, "bias")?,
            stride_b: st[0],
            stride_h: st[1],
            stride_q: st[2],
            stride_k: st[3],
        })
    } else {
        None
    };
    let mask_bytes;
    let mask = if a.mask {
        let v = id(next);
        next += 1;
        if f.shape(v) != [dims.batch, dims.sk] {
            return Err(format!(
                "attention mask is {:?}, expected [{}, {}]",
                f.shape(v),
                dims.batch,
                dims.sk
            ));
        }
        mask_bytes = key_mask(f, v)?;
        Some(mask_bytes.as_slice())
    } else {
        None
    };
    let rot_tables;
    let rotary = if a.rotary {
        let (c, s) = (id(next), id(next + 1));
        rot_tables = rotary_tables(f, c, s, &dims)?;
        let (cos, sin, stride_b, stride_s) = match &rot_tables {
            RotaryTables::InPlace { stride_b, stride_s } => {
                (f.f32s(c, "cos")?, f.f32s(s, "sin")?, *stride_b, *stride_s)
            }
            RotaryTables::Expanded { cos, sin, stride_b } => {
                (cos.as_slice(), sin.as_slice(), *stride_b, dims.d)
            }
        };
        Some(attn::Rotary {
            cos,
            sin,
            stride_b,
            stride_s,
        })
    } else {
        None
    };
    let q = view(id(0), qs, "q")?;
    let k = view(id(1), ks, "k")?;
    let v = view(id(2), vs, "v")?;
    // SAFETY: the output is this step's only output; no input shares its slot (validated).
    let out = unsafe { f.f32s_mut(step.outputs[0], "the output")? };
    let out = attn::ViewMut {
        data: out,
        stride_b: os[0],
        stride_h: os[1],
        stride_s: os[2],
    };
    let p = attn::Params {
        scale: a.scale as f32,
        causal: a.causal,
    };
    let inputs = attn::Inputs {
        q,
        k,
        v,
        bias,
        key_mask: mask,
        rotary,
    };
    attn::attention(isa, &dims, &p, inputs, out).map_err(|e| e.to_string())
}

/// A key mask of any integer or bool dtype as bytes (non-zero = attend).
fn key_mask(f: &Frame, v: u32) -> Result<Vec<u8>, String> {
    let t = f.tensor(v)?;
    Ok(match t.dtype() {
        DType::Bool => t.to_bool_vec().into_iter().map(u8::from).collect(),
        d if !d.is_float() => t
            .to_i64_vec()
            .into_iter()
            .map(|x| u8::from(x != 0))
            .collect(),
        _ => t
            .to_f64_vec()
            .into_iter()
            .map(|x| u8::from(x != 0.0))
            .collect(),
    })
}

fn gather_rows(f: &Frame, step: &Step) -> Result<(), String> {
    let (table, idx, out) = (step.inputs[0], step.inputs[1], step.outputs[0]);
    let shape = f.shape(table);
    let Some((&rows, _)) = shape.split_first() else {
        return Err("gather table is a scalar".into());
    };
    let row_bytes = f.byte_len(table) / rows.max(1);
    let indices = f.tensor(idx)?.to_i64_vec();
    if f.byte_len(out) != indices.len() * row_bytes {
        return Err(format!(
            "gather output {:?} does not hold {} rows of the table {shape:?}",
            f.shape(out),
            indices.len()
        ));
    }
    let src = f.bytes(table);
    // SAFETY: `out` is this step's only output; no input shares its slot (validated).
    let dst = unsafe { f.bytes_mut(out) };
    for (i, &ix) in indices.iter().enumerate() {
        let r = if ix < 0 { ix + rows as i64 } else { ix };
        if r < 0 || r >= rows as i64 {
            return Err(format!("index {ix} is out of range for {rows} rows"));
        }
        let r = r as usize;
        dst[i * row_bytes..(i + 1) * row_bytes]
            .copy_from_slice(&src[r * row_bytes..(r + 1) * row_bytes]);
    }
    Ok(())
}

fn generated_step(
    f: &Frame,
    step: &Step,
    g: &GeneratedStep,
    code: Option<&CodeModule>,
) -> Result<(), String> {
    let func = code
        .and_then(|c| c.function(&g.symbol))
        .ok_or_else(|| format!("the code section has no `{}`", g.symbol))?;
    let out_shape = f.shape(step.outputs[0]);
    let cols = out_shape.last().copied().unwrap_or(1);
    let rows = out_shape
        .iter()
        .product::<usize>()
        .checked_div(cols)
        .unwrap_or(0);
    let mut args: Vec<*mut f32> = Vec::with_capacity(step.inputs.len() + step.outputs.len());
    for (i, (&v, access)) in step.inputs.iter().zip(&g.access).enumerate() {
        let want = match access {
            Access::Full => rows * cols,
            Access::Row => cols,
            Access::Col => rows,
            Access::Scalar => 1,
        };
        let have = f.f32s(v, &format!("input {i}"))?.len();
        if have != want && rows * cols != 0 {
            return Err(format!(
                "input {i} has {have} elements; {access:?} access over {rows}×{cols} needs {want}"
            ));
        }
        args.push(f.addr(v).cast());
    }
    for (i, &v) in step.outputs.iter().enumerate() {
        let have = f.f32s(v, &format!("output {i}"))?.len();
        if have != rows * cols {
            return Err(format!(
                "output {i} has {have} elements, expected {rows}×{cols}"
            ));
        }
        args.push(f.addr(v).cast());
    }
    if rows * cols == 0 {
        return Ok(());
    }
    // Rows are independent for every generated kernel (elementwise or row-wise), so large calls
    // are split into row blocks across the pool: a block's pointers are the call's, advanced by
    // `r0·cols` for full operands and outputs and by `r0` for per-row operands.
    let threads = rayon::current_num_threads();
    let blocks = if rows * cols >= PARALLEL_ELEMENTS && threads > 1 {
        threads.min(rows)
    } else {
        1
    };
    let per = rows.div_ceil(blocks);
    // Addresses as integers so the closure is Send; they are turned back into pointers below.
    let base: Vec<usize> = args.iter().map(|&p| p as usize).collect();
    let call = |r0: usize| {
        if r0 >= rows {
            return;
        }
        let r1 = (r0 + per).min(rows);
        let ptrs: Vec<*mut f32> = base
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let step = match g.access.get(i) {
                    Some(Access::Full) | None => r0 * cols,
                    Some(Access::Col) => r0,
                    Some(Access::Row | Access::Scalar) => 0,
                };
                (a as *mut f32).wrapping_add(step)
            })
            .collect();
        // SAFETY: `func` comes from the loaded code module (validated object, relocated, mapped
        // read+execute) and has the generated-kernel ABI. Every pointer in `args` addresses as
        // many f32 elements as its access pattern reads or writes over rows × cols (checked
        // above), so rows r0..r1 of it lie inside those elements. Outputs occupy slots no input
        // occupies, except a `Full` input the kernel reads element by element before writing it
        // (in-place steps); row blocks are disjoint, and no Rust reference to them is alive.
        unsafe { func(ptrs.as_ptr(), (r1 - r0) as u64, cols as u64) };
    };
    if blocks == 1 {
        call(0);
    } else {
        rayon::scope(|s| {
            for b in 1..blocks {
                let call = &call;
                s.spawn(move |_| call(b * per));
            }
            call(0);
        });
    }
    Ok(())
}

fn conv_step(f: &Frame, step: &Step, c: &ConvStep, isa: gemm::Isa) -> Result<(), String> {
    let x_id = step.inputs[0];
    let p = c.params(f.shape(x_id))?;
    let out_id = step.outputs[0];
    let want = p.out_shape().map_err(|e| e.to_string())?;
    let out_shape = f.shape(out_id);
    let spatial_ok = match out_shape.len() {
        4 => out_shape == want,
        3 => want[2] == 1 && out_shape == [want[0], want[1], want[3]],
        _ => false,
    };
    if !spatial_ok {
        return Err(format!(
            "conv output is {out_shape:?}, the kernel computes {want:?}"
        ));
    }
    let bias = if c.bias {
        Some(f.f32s(step.inputs[1], "bias")?)
    } else {
        None
    };
    let packed = f.weights_f32(c.offset, c.len)?;
    let activation = gemm_activation(c.activation);
    let x = f.f32s(x_id, "x")?;
    // SAFETY: the output is this step's only output; no input shares its slot (validated).
    let out = unsafe { f.f32s_mut(out_id, "the output")? };
    crate::kernels::conv::conv2d(isa, &p, x, packed, bias, activation, out)
        .map_err(|e| e.to_string())
}

fn gemm_activation(a: Activation) -> gemm::Activation {
    match a {
        Activation::None => gemm::Activation::None,
        Activation::Relu => gemm::Activation::Relu,
        Activation::GeluErf => gemm::Activation::GeluErf,
        Activation::GeluTanh => gemm::Activation::GeluTanh,
    }
}

/// Rotary tables as the kernel reads them: the operands themselves with broadcast strides, or
/// (when they broadcast along the head dim) expanded copies of shape `[B or 1, S, D]`.
enum RotaryTables {
    InPlace {
        stride_b: usize,
        stride_s: usize,
    },
    Expanded {
        cos: Vec<f32>,
        sin: Vec<f32>,
        stride_b: usize,
    },
}

/// Checks that `cos`/`sin` broadcast to `[B, 1, S, D]` and says how the kernel reads them.
fn rotary_tables(f: &Frame, c: u32, s: u32, dims: &attn::Dims) -> Result<RotaryTables, String> {
    let shape = f.shape(c);
    let full = [dims.batch, 1, dims.sq, dims.d];
    let fail = || {
        format!(
            "rotary cos/sin are {shape:?}/{:?}, which do not broadcast to {full:?}",
            f.shape(s)
        )
    };
    if shape != f.shape(s) || shape.len() > 4 {
        return Err(fail());
    }
    let mut padded = [1usize; 4];
    padded[4 - shape.len()..].copy_from_slice(shape);
    if padded.iter().zip(&full).any(|(&a, &b)| a != b && a != 1) {
        return Err(fail());
    }
    let (pb, ps, pd) = (padded[0], padded[2], padded[3]);
    if pd == dims.d || dims.d <= 1 {
        let stride_s = if ps == 1 { 0 } else { pd };
        let stride_b = if pb == 1 { 0 } else { ps * pd };
        return Ok(RotaryTables::InPlace { stride_b, stride_s });
    }
    // Broadcast along the head dim: expand to [pb, S, D].
    let expand = |v: u32, what: &str| -> Result<Vec<f32>, String> {
        let src = f.f32s(v, what)?;
        let mut out = Vec::with_capacity(pb * dims.sq * dims.d);
        for b in 0..pb {
            for i in 0..dims.sq {
                let x = src[b * ps + if ps == 1 { 0 } else { i }];
                out.extend(std::iter::repeat_n(x, dims.d));
            }
        }
        Ok(out)
    };
    Ok(RotaryTables::Expanded {
        cos: expand(c, "cos")?,
        sin: expand(s, "sin")?,
        stride_b: if pb == 1 { 0 } else { dims.sq * dims.d },
    })
}
