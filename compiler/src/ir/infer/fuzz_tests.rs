//! Robustness tests for `infer_types`: random ops with extreme attributes applied to random
//! input types must give a result or a type error, never a panic, and results must have one
//! type per output and no negative known dims.

use super::super::dim::Dim;
use super::super::op::*;
use super::super::types::{DType, Shape, TensorType};
use super::infer_types;
use crate::error::Error;
use kiln_runtime::test_util::Rng;

/// The shared test random source with the generators of this test's ops and types.
struct Gen(Rng);

impl std::ops::Deref for Gen {
    type Target = Rng;
    fn deref(&self) -> &Rng {
        &self.0
    }
}

impl std::ops::DerefMut for Gen {
    fn deref_mut(&mut self) -> &mut Rng {
        &mut self.0
    }
}

impl Gen {
    fn int(&mut self) -> i64 {
        const EXTREMES: [i64; 12] = [
            i64::MIN,
            -(1 << 31),
            -5,
            -3,
            -1,
            0,
            1,
            2,
            3,
            4,
            1 << 31,
            i64::MAX,
        ];
        if self.below(3) == 0 {
            self.pick(&EXTREMES)
        } else {
            self.below(5) as i64 - 1
        }
    }

    fn ints(&mut self) -> Vec<i64> {
        let n = self.below(6);
        (0..n).map(|_| self.int()).collect()
    }

    fn dim(&mut self) -> Dim {
        match self.below(8) {
            0 => Dim::sym("a"),
            1 => Dim::sym("b"),
            2 => Dim::sym("a").add(&Dim::known(1)),
            3 => Dim::sym("a").mul(&Dim::sym("b")),
            4 => Dim::known(self.int()),
            _ => Dim::known(self.below(5) as i64),
        }
    }

    fn dims(&mut self) -> Vec<Dim> {
        let n = self.below(6);
        (0..n).map(|_| self.dim()).collect()
    }

    fn ty(&mut self) -> TensorType {
        let rank = self.below(6);
        let dims = (0..rank)
            .map(|_| match self.below(6) {
                0 => Dim::sym("a"),
                1 => Dim::sym("b").add(&Dim::known(1)),
                2 if self.below(4) == 0 => Dim::known(i64::MAX),
                _ => Dim::known(self.below(5) as i64),
            })
            .collect();
        TensorType::new(self.pick(&DType::ALL), Shape(dims))
    }

    fn op(&mut self) -> Op {
        let b = |r: &mut Gen| r.below(2) == 0;
        match self.below(34) {
            0 => Op::Unary(self.pick(UnaryOp::ALL)),
            1 => Op::Binary(self.pick(BinaryOp::ALL)),
            2 => Op::Where,
            3 => Op::Cast {
                to: self.pick(&DType::ALL),
            },
            4 => Op::Reduce {
                op: self.pick(ReduceOp::ALL),
                axes: self.ints(),
                keepdims: b(self),
            },
            5 => Op::ArgReduce {
                op: ArgOp::ArgMin,
                axis: self.int(),
                keepdims: b(self),
                select_last: b(self),
            },
            6 => Op::MatMul,
            7 => Op::Softmax { axis: self.int() },
            8 => Op::Conv {
                strides: self.ints(),
                pads: self.ints(),
                dilations: self.ints(),
                group: self.int(),
            },
            9 => Op::ConvTranspose {
                strides: self.ints(),
                pads: self.ints(),
                dilations: self.ints(),
                group: self.int(),
                output_padding: self.ints(),
            },
            10 => Op::Pool {
                kind: self.pick(&[PoolKind::Max, PoolKind::Avg]),
                kernel: self.ints(),
                strides: self.ints(),
                pads: self.ints(),
                dilations: self.ints(),
                ceil_mode: b(self),
                count_include_pad: b(self),
            },
            11 => Op::Reshape { shape: self.dims() },
            12 => Op::Transpose { perm: self.ints() },
            13 => Op::Expand { shape: self.dims() },
            14 => {
                let n = self.below(4);
                Op::Slice {
                    axes: (0..n).map(|_| self.int()).collect(),
                    starts: (0..n).map(|_| self.dim()).collect(),
                    ends: (0..n + self.below(2)).map(|_| self.dim()).collect(),
                    steps: (0..n).map(|_| self.int()).collect(),
                }
            }
            15 => Op::Concat { axis: self.int() },
            16 => Op::Split {
                axis: self.int(),
                sizes: self.dims(),
            },
            17 => Op::Gather { axis: self.int() },
            18 => Op::GatherElements { axis: self.int() },
            19 => Op::Pad {
                pads: self.ints(),
                mode: PadMode::Reflect,
                value: 0.0,
            },
            20 => Op::Range {
                start: self.dim(),
                limit: self.dim(),
                delta: self.dim(),
                dtype: self.pick(&DType::ALL),
            },
            21 => Op::Tile {
                repeats: self.ints(),
            },
            22 => Op::Trilu {
                upper: b(self),
                k: self.int(),
            },
            23 => Op::ShapeOf {
                start: self.int(),
                end: Some(self.int()).filter(|_| b(self)),
            },
            24 => Op::LayerNorm {
                axis: self.int(),
                eps: 1e-5,
            },
            25 => Op::CumSum {
                axis: self.int(),
                exclusive: b(self),
                reverse: b(self),
            },
            26 => Op::CumProd {
                axis: self.int(),
                exclusive: b(self),
                reverse: b(self),
            },
            27 => Op::TopK {
                k: self.int(),
                axis: self.int(),
                largest: b(self),
                sorted: b(self),
            },
            28 => Op::ScatterElements {
                axis: self.int(),
                reduction: self.pick(ScatterReduction::ALL),
            },
            29 => Op::ScatterND {
                reduction: self.pick(ScatterReduction::ALL),
            },
            30 => Op::MatMulBias,
            31 => Op::SkipLayerNorm {
                axis: self.int(),
                eps: 1e-5,
            },
            32 => {
                let cell = self.pick(RnnCell::ALL);
                let n = self.below(7);
                Op::Recurrent {
                    cell,
                    direction: self.pick(RnnDirection::ALL),
                    hidden_size: self.pick(&[0, 1, 3, 16, u32::MAX]),
                    activations: (0..n).map(|_| self.pick(RnnActivation::ALL)).collect(),
                    activation_alpha: vec![0.5; n],
                    activation_beta: vec![0.5; self.pick(&[n, n + 1])],
                    clip: self.pick(&[f64::INFINITY, 1.0, 0.0, f64::NAN]),
                    input_forget: b(self),
                    linear_before_reset: b(self),
                    batch_first: b(self),
                    bias: b(self),
                    seq_lens: b(self),
                    initial_h: b(self),
                    initial_c: b(self),
                    peepholes: b(self),
                }
            }
            _ => Op::Attention {
                heads: self.pick(&[0, 1, 2, 4, u32::MAX]),
                kv_heads: self.pick(&[0, 1, 2, 3]),
                scale: 1.0,
                causal: b(self),
                bias: b(self),
                mask: b(self),
                rotary: b(self),
            },
        }
    }
}

#[test]
fn random_ops_never_panic() {
    let mut rng = Gen(Rng(0x9E37_79B9_7F4A_7C15));
    let (mut oks, mut errs) = (0, 0);
    for _ in 0..60_000 {
        let op = rng.op();
        let n = match (rng.below(3), op.arity()) {
            (0, _) => rng.below(7),
            (_, (min, max)) => max.unwrap_or(min + rng.below(3)),
        };
        let inputs: Vec<TensorType> = (0..n).map(|_| rng.ty()).collect();
        match infer_types(&op, &inputs) {
            Ok(out) => {
                oks += 1;
                assert_eq!(out.len(), op.num_outputs(), "{op:?} on {inputs:?}");
                for t in &out {
                    let neg = t
                        .shape
                        .0
                        .iter()
                        .any(|d| d.as_known().is_some_and(|v| v < 0));
                    assert!(!neg, "{op:?} on {inputs:?} gave {t}");
                }
            }
            Err(Error::Type { op: name, message }) => {
                errs += 1;
                assert_eq!(name, op.name());
                assert!(!message.is_empty());
            }
            Err(e) => panic!("unexpected error kind {e:?}"),
        }
    }
    assert!(oks > 1000 && errs > 1000, "{oks} ok, {errs} errors");
}
