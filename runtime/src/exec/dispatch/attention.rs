//! Fused attention steps: operand layouts turned into strides, the optional bias, key mask and
//! rotary tables checked against the query/key dims, then the attention kernel.

use crate::exec::frame::Frame;
use crate::kernels::{attention as attn, gemm};
use crate::plan::{AttentionStep, Layout, Step, ValueId};

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

pub(super) fn attention_step(
    f: &Frame,
    step: &Step,
    a: &AttentionStep,
    isa: gemm::Isa,
) -> Result<(), String> {
    let id = |i: usize| step.inputs[i];
    let (qd, qs) = attn_dims(f.shape(id(0)), a.layouts[0], "q")?;
    let (mut kd, ks) = attn_dims(f.shape(id(1)), a.layouts[1], "k")?;
    let (mut vd, vs) = attn_dims(f.shape(id(2)), a.layouts[2], "v")?;
    // Keys the operands can hold (a cache's capacity): per-call buffers are sized for it once.
    let key_room = kd[2];
    if let Some(len) = &a.kv_len {
        // k and v are caches: only their first `len` positions are keys.
        let n = len
            .eval(&f.layout.bindings)
            .map_err(|e| format!("the key length {len}: {e}"))?;
        match usize::try_from(n) {
            Ok(n) if n <= kd[2] && n <= vd[2] => {
                kd[2] = n;
                vd[2] = n;
            }
            _ => return Err(format!("{n} keys do not fit caches k {kd:?}, v {vd:?}")),
        }
    }
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
    let view = |v: ValueId, s: [usize; 3], what: &str| -> Result<attn::View, String> {
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
    let mut mask_bytes = Vec::new();
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
        mask_bytes = MASK.with(|m| m.take());
        mask_bytes.reserve(dims.batch.saturating_mul(key_room));
        key_mask(f, v, &mut mask_bytes);
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
    let result = attn::attention(isa, &dims, &p, inputs, out).map_err(|e| e.to_string());
    if a.mask {
        // The buffer goes back for the next call (a nested call may have left another).
        MASK.with(|m| *m.borrow_mut() = mask_bytes);
    }
    result
}

/// Sizes the calling thread's key-mask buffer for `batch × keys` keys.
pub(crate) fn warm_thread(batch: usize, keys: usize) {
    MASK.with(|m| {
        let mut m = m.borrow_mut();
        let want = batch.saturating_mul(keys);
        let len = m.len();
        m.reserve(want.saturating_sub(len));
    });
}

thread_local! {
    /// The key-mask bytes of the last attention call on this thread, reused.
    static MASK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A key mask of any dtype as bytes in `out` (non-zero = attend; for floats, anything but
/// ±0), read straight from the frame.
fn key_mask(f: &Frame, v: ValueId, out: &mut Vec<u8>) {
    out.clear();
    let dtype = f.dtype(v);
    let size = dtype.size().max(1);
    let sign = dtype.is_float();
    out.extend(f.bytes(v).chunks_exact(size).map(|e| {
        let (last, rest) = e.split_last().unwrap_or((&0, &[]));
        // Little-endian: a float's sign bit is the top bit of its last byte.
        let top = if sign { last & 0x7f } else { *last };
        u8::from(top != 0 || rest.iter().any(|&b| b != 0))
    }));
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
fn rotary_tables(
    f: &Frame,
    c: ValueId,
    s: ValueId,
    dims: &attn::Dims,
) -> Result<RotaryTables, String> {
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
    let expand = |v: ValueId, what: &str| -> Result<Vec<f32>, String> {
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
