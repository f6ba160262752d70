//! The graph builder shared by the architecture files: weights by name (with a prefix helper),
//! ops with type inference, and the few composite blocks every transformer uses.

use super::checkpoint::Checkpoint;
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Graph, Op, Shape, TensorType, ValueId, Weight};
use kiln_runtime::Tensor;

/// Builds one architecture's graph from a checkpoint.
#[derive(Debug)]
pub struct Builder<'a> {
    /// The graph being built.
    pub graph: Graph,
    ck: &'a Checkpoint,
    /// The dtype of activations and weights in the graph.
    pub dtype: DType,
}

/// Joins weight-name parts: `p("encoder.layer", 3)` → `"encoder.layer.3"`.
pub fn p(prefix: &str, part: impl std::fmt::Display) -> String {
    if prefix.is_empty() {
        part.to_string()
    } else {
        format!("{prefix}.{part}")
    }
}

impl<'a> Builder<'a> {
    /// A builder over a checkpoint; the graph computes in f32.
    pub fn new(ck: &'a Checkpoint) -> Builder<'a> {
        Builder {
            graph: Graph::new(),
            ck,
            dtype: DType::F32,
        }
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        self.ck
    }

    /// A graph input with symbolic or known dims written as text (`["batch", "seq"]`).
    pub fn input(&mut self, name: &str, dtype: DType, dims: &[&str]) -> Result<ValueId, Error> {
        let dims = dims
            .iter()
            .map(|d| Dim::parse(d).map_err(|e| self.config_error(format!("bad dim `{d}`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .graph
            .add_input(name, TensorType::new(dtype, Shape(dims))))
    }

    /// Declares that input `name` holds ids of an embedding table with `rows` rows (from the
    /// config field `field`), as PyTorch's `nn.Embedding` requires, and — when `positions`
    /// gives a position table's `(field, rows)` — that its axis 1 (the sequence) is at most that
    /// long. Runs check both before allocating anything.
    pub fn limit_ids(
        &mut self,
        name: &str,
        field: &str,
        rows: usize,
        positions: Option<(&str, usize)>,
    ) {
        let limits = kiln_compiler::ir::InputLimits {
            max_dims: positions
                .map(|(pf, n)| kiln_compiler::ir::DimLimit {
                    axis: 1,
                    max: n as i64,
                    why: format!("{pf} in config.json"),
                })
                .into_iter()
                .collect(),
            values: Some(kiln_compiler::ir::ValueRange {
                min: 0,
                max: rows as i64 - 1,
                why: format!("{field} in config.json"),
            }),
        };
        self.graph.set_input_limits(name, limits);
    }

    /// The weight `name` with the expected shape, as the graph's dtype.
    pub fn weight(&mut self, name: &str, shape: &[usize]) -> Result<ValueId, Error> {
        let w = self.ck.weight(name, shape, self.dtype)?;
        Ok(self.graph.add_weight(w))
    }

    /// The weight `name` if the checkpoint has it.
    pub fn opt_weight(&mut self, name: &str, shape: &[usize]) -> Result<Option<ValueId>, Error> {
        if self.ck.has(name) {
            self.weight(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A constant tensor.
    pub fn constant(&mut self, name: &str, t: &Tensor) -> ValueId {
        self.graph.add_weight(Weight::from_tensor(name, t))
    }

    /// A rank-0 constant of the graph's dtype.
    pub fn scalar(&mut self, v: f64) -> Result<ValueId, Error> {
        let t = Tensor::from_f64_values(self.dtype, vec![], &[v])
            .map_err(kiln_compiler::Error::from)?;
        Ok(self.constant("const", &t))
    }

    /// An `i64` constant of shape `shape`.
    pub fn const_i64(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        v: Vec<i64>,
    ) -> Result<ValueId, Error> {
        let t = Tensor::from_i64(shape, v).map_err(kiln_compiler::Error::from)?;
        Ok(self.constant(name, &t))
    }

    /// Adds an op with one output.
    pub fn op(&mut self, op: Op, inputs: &[ValueId]) -> Result<ValueId, Error> {
        Ok(self.graph.add_node(op, inputs)?[0])
    }

    /// The positions `0..len` as a `dtype` vector.
    pub fn positions(&mut self, len: &Dim, dtype: DType) -> Result<ValueId, Error> {
        let range = Op::Range {
            start: Dim::known(0),
            limit: len.clone(),
            delta: Dim::known(1),
            dtype,
        };
        self.op(range, &[])
    }

    /// The rows `0..seq` of a learned position-embedding `table` (`[max_positions, hidden]`).
    pub fn position_embeddings(&mut self, table: ValueId) -> Result<ValueId, Error> {
        let ids = self.positions(&Dim::sym("seq"), DType::I64)?;
        self.op(Op::Gather { axis: 0 }, &[table, ids])
    }

    /// `a <op> b`.
    pub fn bin(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId, Error> {
        self.op(Op::Binary(op), &[a, b])
    }

    /// The type of a value.
    pub fn ty(&self, v: ValueId) -> TensorType {
        self.graph.value(v).ty.clone()
    }

    /// `x @ Wᵀ + b` for a PyTorch `nn.Linear` stored as `{prefix}.weight` `[out, in]` and
    /// `{prefix}.bias` `[out]` (the bias is optional when `bias` is false or absent).
    pub fn linear(
        &mut self,
        x: ValueId,
        prefix: &str,
        inp: usize,
        out: usize,
        bias: bool,
    ) -> Result<ValueId, Error> {
        let w = self.weight(&p(prefix, "weight"), &[out, inp])?;
        let wt = self.op(Op::Transpose { perm: vec![1, 0] }, &[w])?;
        let y = self.op(Op::MatMul, &[x, wt])?;
        if !bias {
            return Ok(y);
        }
        match self.opt_weight(&p(prefix, "bias"), &[out])? {
            Some(b) => self.bin(BinaryOp::Add, y, b),
            None => Ok(y),
        }
    }

    /// `LayerNorm` over the last axis with `{prefix}.weight`/`.bias` (or the old
    /// `gamma`/`beta` names).
    pub fn layer_norm(
        &mut self,
        x: ValueId,
        prefix: &str,
        dim: usize,
        eps: f64,
    ) -> Result<ValueId, Error> {
        let g_name = if self.ck.has(&p(prefix, "gamma")) {
            "gamma"
        } else {
            "weight"
        };
        let b_name = if self.ck.has(&p(prefix, "beta")) {
            "beta"
        } else {
            "bias"
        };
        let g = self.weight(&p(prefix, g_name), &[dim])?;
        let mut inputs = vec![x, g];
        if let Some(b) = self.opt_weight(&p(prefix, b_name), &[dim])? {
            inputs.push(b);
        }
        self.op(Op::LayerNorm { axis: -1, eps }, &inputs)
    }

    /// The first position of `x` (`[B, S, ...]` → `[B, ...]`): the `[CLS]`/`<s>` token that
    /// classification heads read.
    pub fn first_token(&mut self, x: ValueId) -> Result<ValueId, Error> {
        let zero = self.const_i64("first_token", vec![], vec![0])?;
        self.op(Op::Gather { axis: 1 }, &[x, zero])
    }

    /// `[B, S, heads·d]` → `[B, heads, S, d]` (`batch`/`seq` are the dims of `x`).
    pub fn split_heads(&mut self, x: ValueId, heads: usize, d: usize) -> Result<ValueId, Error> {
        let t = self.ty(x);
        let (b, s) = (t.shape.0[0].clone(), t.shape.0[1].clone());
        let r = self.op(
            Op::Reshape {
                shape: vec![b, s, Dim::known(heads as i64), Dim::known(d as i64)],
            },
            &[x],
        )?;
        self.op(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[r],
        )
    }

    /// Multi-head attention of split `q`, `k`, `v` (`[B, heads, S, d / heads]`, as many key
    /// as query heads), scale `(d / heads)^-0.5`, causal or not, with the key padding `mask`
    /// (`[B, Sk]`, non-zero = attend) when given; heads merged, then the biased
    /// `{out_proj}` linear `d → d`.
    pub fn attend_heads(
        &mut self,
        (q, k, v): (ValueId, ValueId, ValueId),
        mask: Option<ValueId>,
        (d, heads): (usize, usize),
        causal: bool,
        out_proj: &str,
    ) -> Result<ValueId, Error> {
        let heads32 = u32::try_from(heads)
            .map_err(|_| self.config_error("too many attention heads".into()))?;
        let op = Op::Attention {
            heads: heads32,
            kv_heads: heads32,
            scale: 1.0 / ((d / heads) as f64).sqrt(),
            causal,
            bias: false,
            mask: mask.is_some(),
            rotary: false,
        };
        let att = match mask {
            Some(m) => self.op(op, &[q, k, v, m])?,
            None => self.op(op, &[q, k, v])?,
        };
        let merged = self.merge_heads(att)?;
        self.linear(merged, out_proj, d, d, true)
    }

    /// `[B, heads, S, d]` → `[B, S, heads·d]`.
    pub fn merge_heads(&mut self, x: ValueId) -> Result<ValueId, Error> {
        let t = self.op(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[x],
        )?;
        let ty = self.ty(t);
        let s = &ty.shape.0;
        let hd = s[2].mul(&s[3]);
        self.op(
            Op::Reshape {
                shape: vec![s[0].clone(), s[1].clone(), hd],
            },
            &[t],
        )
    }

    /// A config error naming the folder's `config.json`.
    pub fn config_error(&self, message: String) -> Error {
        Error::Config {
            path: self.ck.dir().join("config.json"),
            message,
        }
    }

    /// Declares an output and returns the verified graph.
    pub fn finish(mut self, outputs: &[(&str, ValueId)]) -> Result<Graph, Error> {
        for (name, v) in outputs {
            self.graph.add_output(*name, *v);
        }
        kiln_compiler::verify(&self.graph)?;
        Ok(self.graph)
    }
}
