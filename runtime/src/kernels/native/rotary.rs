//! The rotary embedding of one f32 operand (`Op::Rotary`): `x·cos + rotate_half(x)·sin` over
//! `x: [B, H, S, D]` with `cos`, `sin` read through broadcast strides over `[B, 1, S, D]`.

/// `out = x·cos + rotate_half(x)·sin`. `trig_strides` are the element strides of `cos` and
/// `sin` (the same shape) over `[B, 1, S, D]` (0 on broadcast axes).
pub fn rotary(
    x: &[f32],
    shape: [usize; 4],
    cos: &[f32],
    sin: &[f32],
    trig_strides: [usize; 4],
    out: &mut [f32],
) -> Result<(), String> {
    let [nb, nh, ns, nd] = shape;
    let n = super::numel(&shape)?;
    if x.len() != n || out.len() != n {
        return Err(format!(
            "rotary: x holds {} and the output {} elements, expected {n} for {shape:?}",
            x.len(),
            out.len()
        ));
    }
    if nd % 2 != 0 {
        return Err(format!("rotary needs an even head dim, got {nd}"));
    }
    if n == 0 {
        return Ok(());
    }
    let [sb, _, ss, sd] = trig_strides;
    let reach = (nb - 1) * sb + (ns - 1) * ss + (nd - 1) * sd + 1;
    if cos.len() < reach || sin.len() < reach {
        return Err(format!(
            "rotary: cos/sin hold {}/{} elements, fewer than the {reach} their strides reach",
            cos.len(),
            sin.len()
        ));
    }
    let half = nd / 2;
    for b in 0..nb {
        for h in 0..nh {
            for s in 0..ns {
                let row = ((b * nh + h) * ns + s) * nd;
                let t = b * sb + s * ss;
                let xr = &x[row..row + nd];
                let or = &mut out[row..row + nd];
                for d in 0..half {
                    let (c, si) = (cos[t + d * sd], sin[t + d * sd]);
                    or[d] = xr[d] * c - xr[d + half] * si;
                }
                for d in half..nd {
                    let (c, si) = (cos[t + d * sd], sin[t + d * sd]);
                    or[d] = xr[d] * c + xr[d - half] * si;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rotary;

    #[test]
    fn rotates_with_broadcast_tables_and_checks_lengths() {
        // x [1, 2, 1, 4]; cos/sin [4] broadcast over everything but D.
        let x = [1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 2.0, 1.0];
        let cos = [0.5, 1.0, 0.0, 2.0];
        let sin = [1.0, 0.0, 2.0, 1.0];
        let mut out = [0.0f32; 8];
        rotary(&x, [1, 2, 1, 4], &cos, &sin, [0, 0, 0, 1], &mut out).unwrap();
        // d < 2: x[d]·c - x[d+2]·s; d ≥ 2: x[d]·c + x[d-2]·s.
        let want = [
            0.5 - 3.0,
            2.0,
            0.0 + 2.0,
            8.0 + 2.0,
            -0.5 - 2.0,
            0.5,
            0.0 - 2.0,
            2.0 + 0.5,
        ];
        assert_eq!(out, want);
        assert!(rotary(&x, [1, 2, 1, 4], &cos[..3], &sin, [0, 0, 0, 1], &mut out).is_err());
        assert!(rotary(&x[..4], [1, 2, 1, 4], &cos, &sin, [0, 0, 0, 1], &mut out).is_err());
        assert!(rotary(
            &x[..6],
            [1, 2, 1, 3],
            &cos,
            &sin,
            [0, 0, 0, 1],
            &mut out[..6]
        )
        .is_err());
    }
}
