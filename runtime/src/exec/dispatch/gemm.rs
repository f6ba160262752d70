//! GEMM-based library kernels: matrix products (packed or run-time B, fused bias, activation
//! and residual epilogues) and convolutions over weights packed at compile time.

use crate::exec::frame::Frame;
use crate::kernels::gemm;
use crate::plan::{Activation, ConvStep, GemmB, GemmStep, Step};

fn split_last(shape: &[usize], what: &str) -> Result<(usize, usize), String> {
    match shape.split_last() {
        Some((&last, rest)) => Ok((rest.iter().product(), last)),
        None => Err(format!(
            "{what} is a scalar; a matrix product needs rank ≥ 1"
        )),
    }
}

pub(super) fn gemm_step(
    f: &Frame,
    step: &Step,
    g: &GemmStep,
    isa: gemm::Isa,
) -> Result<(), String> {
    let mut ins = step.inputs.iter().copied();
    let a_id = ins.next().ok_or("missing operand a")?;
    let a_shape = f.shape(a_id);
    let (rows, k) = split_last(a_shape, "a")?;
    let a = f.f32s(a_id, "a")?;
    let out_id = step.outputs[0];
    let b_val = match g.b {
        GemmB::Value { .. } => Some(ins.next().ok_or("missing operand b")?),
        GemmB::Packed { .. } | GemmB::Blocks { .. } => None,
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
                k: wk,
                n: wn,
            }
            | GemmB::Blocks {
                offset,
                len,
                k: wk,
                n: wn,
                ..
            },
            _,
        ) => {
            if wk as usize != k || wn as usize != n || out_rows != rows {
                return Err(format!(
                    "a is {a_shape:?} and the weights are {wk}×{wn}, but the output is {out_shape:?}"
                ));
            }
            let ep = gemm::Epilogue {
                bias,
                activation,
                residual,
            };
            let shape = gemm::Shape { m: rows, n, k };
            let a = gemm::Matrix { data: a, stride: k };
            let c = gemm::MatrixMut { data: c, stride: n };
            match g.b {
                GemmB::Blocks { format, .. } => {
                    let w = f.weights_bytes(offset, len)?;
                    crate::kernels::blocks::gemm_blocks(isa, shape, a, w, format, c, &ep)
                }
                _ => gemm::gemm_packed(isa, shape, a, packed_weights(f, offset, len)?, c, &ep),
            }
            .map_err(|e| e.to_string())?;
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

pub(super) fn conv_step(
    f: &Frame,
    step: &Step,
    c: &ConvStep,
    isa: gemm::Isa,
) -> Result<(), String> {
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
