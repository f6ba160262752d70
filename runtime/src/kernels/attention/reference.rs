//! Test support: strided test tensors of the shared test Rng's values, a straightforward f64
//! attention written from the op's definition, and a comparison that treats NaN as a value.

use super::{BiasView, Dims, Inputs, Isa, Params, Rotary, View};
pub(super) use crate::test_util::Rng;

/// A `[B, H, S, D]` tensor stored with arbitrary strides (the last dim contiguous).
#[derive(Clone, Debug)]
pub(super) struct T4 {
    pub data: Vec<f32>,
    pub strides: [usize; 3],
}

impl T4 {
    /// Random contiguous `[b, h, s, d]`.
    pub(super) fn random(rng: &mut Rng, [b, h, s, d]: [usize; 4]) -> Self {
        T4 {
            data: rng.values_f32(b * h * s * d, -1.0, 1.0),
            strides: [h * s * d, s * d, d],
        }
    }
    /// Random `[b, h, s, d]` stored as the `[b, s, h·d]` output of a projection.
    pub(super) fn random_bshd(rng: &mut Rng, [b, h, s, d]: [usize; 4]) -> Self {
        T4 {
            data: rng.values_f32(b * h * s * d, -1.0, 1.0),
            strides: [s * h * d, d, h * d],
        }
    }
    pub(super) fn view(&self) -> View<'_> {
        View {
            data: &self.data,
            stride_b: self.strides[0],
            stride_h: self.strides[1],
            stride_s: self.strides[2],
        }
    }
    pub(super) fn at(&self, b: usize, h: usize, s: usize, x: usize) -> f64 {
        let [sb, sh, ss] = self.strides;
        self.data[b * sb + h * sh + s * ss + x] as f64
    }
}

/// One attention call's inputs.
#[derive(Clone, Debug)]
pub(super) struct Case {
    pub dims: Dims,
    pub params: Params,
    pub q: T4,
    pub k: T4,
    pub v: T4,
    /// Bias data and its `[b, h, q, k]` strides.
    pub bias: Option<(Vec<f32>, [usize; 4])>,
    pub mask: Option<Vec<u8>>,
    /// cos, sin, stride_b, stride_s.
    pub rotary: Option<(Vec<f32>, Vec<f32>, usize, usize)>,
}

impl Case {
    /// Random contiguous q, k, v for `dims`, scale `1/√D`.
    pub(super) fn random(seed: u64, dims: Dims, causal: bool) -> Self {
        let mut rng = Rng(seed);
        let Dims {
            batch: b,
            heads: h,
            kv_heads: hk,
            sq,
            sk,
            d,
            dv,
        } = dims;
        Case {
            dims,
            params: Params {
                scale: 1.0 / (d.max(1) as f32).sqrt(),
                causal,
            },
            q: T4::random(&mut rng, [b, h, sq, d]),
            k: T4::random(&mut rng, [b, hk, sk, d]),
            v: T4::random(&mut rng, [b, hk, sk, dv]),
            bias: None,
            mask: None,
            rotary: None,
        }
    }

    fn bias_at(&self, b: usize, h: usize, i: usize, j: usize) -> f64 {
        self.bias.as_ref().map_or(0.0, |(data, [sb, sh, sq, sk])| {
            data[b * sb + h * sh + i * sq + j * sk] as f64
        })
    }

    /// Row `s` of `t` (batch `b`, head `h`), rotated when the case has rotary.
    fn row(&self, t: &T4, b: usize, h: usize, s: usize) -> Vec<f64> {
        let d = self.dims.d;
        let x: Vec<f64> = (0..d).map(|i| t.at(b, h, s, i)).collect();
        match &self.rotary {
            None => x,
            Some((cos, sin, sb, ss)) => (0..d)
                .map(|i| {
                    let half = d / 2;
                    let rot = if i < half { -x[i + half] } else { x[i - half] };
                    let at = b * sb + s * ss + i;
                    x[i] * cos[at] as f64 + rot * sin[at] as f64
                })
                .collect(),
        }
    }

    /// The definition, in f64: output `[B, H, Sq, Dv]` contiguous.
    pub(super) fn reference(&self) -> Vec<f64> {
        let Dims {
            batch,
            heads,
            kv_heads,
            sq,
            sk,
            dv,
            ..
        } = self.dims;
        let mut out = Vec::with_capacity(batch * heads * sq * dv);
        for b in 0..batch {
            for h in 0..heads {
                let kh = h / (heads / kv_heads);
                for i in 0..sq {
                    let qi = self.row(&self.q, b, h, i);
                    let scores: Vec<Option<f64>> = (0..sk)
                        .map(|j| {
                            let masked = self.mask.as_ref().is_some_and(|m| m[b * sk + j] == 0);
                            let causal_out =
                                self.params.causal && j as i64 > i as i64 + sk as i64 - sq as i64;
                            if masked || causal_out {
                                return None;
                            }
                            let kj = self.row(&self.k, b, kh, j);
                            let dot: f64 = qi.iter().zip(&kj).map(|(a, b)| a * b).sum();
                            Some(dot * self.params.scale as f64 + self.bias_at(b, h, i, j))
                        })
                        .collect();
                    let max = scores.iter().flatten().fold(f64::NEG_INFINITY, |a, &b| {
                        if a.is_nan() || a > b {
                            a
                        } else {
                            b
                        }
                    });
                    let w: Vec<Option<f64>> =
                        scores.iter().map(|s| s.map(|s| (s - max).exp())).collect();
                    let total: f64 = w.iter().flatten().sum();
                    for e in 0..dv {
                        let mut acc = 0.0;
                        for (j, w) in w.iter().enumerate() {
                            if let Some(w) = w {
                                acc += w / total * self.v.at(b, kh, j, e);
                            }
                        }
                        out.push(acc);
                    }
                }
            }
        }
        out
    }

    /// Runs the kernel into a contiguous output (pre-filled with a sentinel).
    pub(super) fn run(&self, isa: Isa) -> Vec<f32> {
        let Dims {
            batch,
            heads,
            sq,
            dv,
            ..
        } = self.dims;
        let mut out = vec![f32::from_bits(0x7fc0_dead); batch * heads * sq * dv];
        self.run_into(isa, &mut out, [heads * sq * dv, sq * dv, dv])
            .expect("valid call");
        out
    }

    /// Runs the kernel into `out` with output strides `[b, h, s]`.
    pub(super) fn run_into(
        &self,
        isa: Isa,
        out: &mut [f32],
        strides: [usize; 3],
    ) -> Result<(), super::AttentionError> {
        let bias = self.bias.as_ref().map(|(data, s)| BiasView {
            data,
            stride_b: s[0],
            stride_h: s[1],
            stride_q: s[2],
            stride_k: s[3],
        });
        let rotary = self.rotary.as_ref().map(|(cos, sin, sb, ss)| Rotary {
            cos,
            sin,
            stride_b: *sb,
            stride_s: *ss,
        });
        let out = super::ViewMut {
            data: out,
            stride_b: strides[0],
            stride_h: strides[1],
            stride_s: strides[2],
        };
        let inputs = Inputs {
            q: self.q.view(),
            k: self.k.view(),
            v: self.v.view(),
            bias,
            key_mask: self.mask.as_deref(),
            rotary,
        };
        super::attention(isa, &self.dims, &self.params, inputs, out)
    }
}

/// Every ISA this machine can run.
pub(super) fn isas() -> Vec<Isa> {
    [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
        .into_iter()
        .filter(|i| i.available())
        .collect()
}

/// Asserts `got ≈ want` elementwise (|Δ| ≤ 2e-5·max(1, |want|), NaN only against NaN).
pub(super) fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() || g.is_nan() {
            assert!(
                w.is_nan() && g.is_nan(),
                "{what}: element {i}: got {g}, want {w}"
            );
            continue;
        }
        let tol = 2e-5 * w.abs().max(1.0);
        assert!(
            (g as f64 - w).abs() <= tol,
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

/// Runs `case` with every available ISA against the reference.
pub(super) fn check(case: &Case, what: &str) {
    let want = case.reference();
    for isa in isas() {
        assert_close(&case.run(isa), &want, &format!("{what} [{isa:?}]"));
    }
}
