//! Decoder graphs with a key/value cache (`load_decoder`): one graph serves the prompt (prefill,
//! `seq` tokens) and every decode step (`seq = 1`). Its inputs are `input_ids`, `position_ids`
//! (`[batch, seq]`) and `attention_mask` (`[batch, past + seq]`, which binds `past`, the number of
//! cached positions); each layer's keys and values are graph states `past.N.key` / `past.N.value`
//! (`[batch, kv_heads, capacity, head_dim]`) whose updates `present.N.*` are `cache_write`s at
//! position `past`, which a compiled plan performs in place. Attention reads the first
//! `past + seq` cached positions. The output `logits` holds the last position only
//! (`[batch, 1, vocab]`), which is all a decode loop reads.

use super::builder::Builder;
use crate::error::Error;
use kiln_compiler::ir::{DType, Dim, Op, ValueId};
use kiln_runtime::Tensor;

/// The symbol of the number of cached positions.
pub const PAST: &str = "past";
/// The symbol of the cache capacity (positions).
pub const CAPACITY: &str = "capacity";

/// The inputs every cached decoder graph declares.
#[derive(Debug, Clone, Copy)]
pub struct DecoderInputs {
    /// `input_ids: i64[batch, seq]`.
    pub ids: ValueId,
    /// `position_ids: i64[batch, seq]`.
    pub positions: ValueId,
    /// `attention_mask: i64[batch, past + seq]`.
    pub mask: ValueId,
}

/// Declares `input_ids`, `position_ids` and `attention_mask`.
pub fn declare_inputs(b: &mut Builder) -> Result<DecoderInputs, Error> {
    let ids = b.input("input_ids", DType::I64, &["batch", "seq"])?;
    let positions = b.input("position_ids", DType::I64, &["batch", "seq"])?;
    let mask = b.input("attention_mask", DType::I64, &["batch", "past+seq"])?;
    Ok(DecoderInputs {
        ids,
        positions,
        mask,
    })
}

/// The rotary `cos`, `sin` tables `[batch, 1, seq, 2·inv_freq.len()]` at `position_ids`:
/// `emb = concat(freqs, freqs)`, `freqs = position · inv_freq` (transformers' rotate-half
/// layout, computed in the graph's dtype as transformers does in f32).
pub fn rotary_tables(
    b: &mut Builder,
    positions: ValueId,
    inv_freq: &[f64],
) -> Result<(ValueId, ValueId), Error> {
    let pos = b.op(Op::Cast { to: b.dtype }, &[positions])?;
    let pos = b.op(
        Op::Reshape {
            shape: vec![
                Dim::sym("batch"),
                Dim::known(1),
                Dim::sym("seq"),
                Dim::known(1),
            ],
        },
        &[pos],
    )?;
    let mut full = inv_freq.to_vec();
    full.extend_from_slice(inv_freq);
    let t = Tensor::from_f64_values(b.dtype, vec![full.len()], &full)
        .map_err(kiln_compiler::Error::from)?;
    let inv = b.constant("rotary.inv_freq", &t);
    let emb = b.bin(kiln_compiler::ir::BinaryOp::Mul, pos, inv)?;
    let cos = b.op(Op::Unary(kiln_compiler::ir::UnaryOp::Cos), &[emb])?;
    let sin = b.op(Op::Unary(kiln_compiler::ir::UnaryOp::Sin), &[emb])?;
    Ok((cos, sin))
}

/// Layer `layer`'s key and value caches: the states `past.{layer}.key|value`, each updated by
/// writing `k` / `v` (`[batch, kv_heads, seq, head_dim]`) at position `past`, then read back
/// as their first `past + seq` positions. Returns the two views for attention.
pub fn cached_kv(
    b: &mut Builder,
    layer: usize,
    k: ValueId,
    v: ValueId,
    kv_heads: usize,
    head_dim: usize,
) -> Result<(ValueId, ValueId), Error> {
    let dims = [
        "batch".to_string(),
        kv_heads.to_string(),
        CAPACITY.to_string(),
        head_dim.to_string(),
    ];
    let dims: Vec<&str> = dims.iter().map(String::as_str).collect();
    let mut views = [k, v];
    for (i, (which, new)) in ["key", "value"].into_iter().zip([k, v]).enumerate() {
        let name = format!("past.{layer}.{which}");
        let cache = b.input(&name, b.dtype, &dims)?;
        let all = b.op(
            Op::CacheWrite {
                axis: 2,
                at: Dim::sym(PAST),
            },
            &[cache, new],
        )?;
        let out = format!("present.{layer}.{which}");
        b.graph.add_output(out.clone(), all);
        b.graph.add_state(name, out);
        views[i] = b.op(
            Op::Slice {
                axes: vec![2],
                starts: vec![Dim::known(0)],
                ends: vec![Dim::sym(PAST).add(&Dim::sym("seq"))],
                steps: vec![1],
            },
            &[all],
        )?;
    }
    Ok((views[0], views[1]))
}

/// The name of decoder layer `layer`'s cross-attention keys (`which = "key"`) or values
/// (`"value"`): an encoder output and a decoder state of every encoder-decoder.
pub fn cross_name(layer: usize, which: &str) -> String {
    format!("cross.{layer}.{which}")
}

/// Layer `layer`'s cross-attention keys and values as read-only states `cross.{layer}.key|value`
/// `[batch, heads, source, head_dim]` (`source`: a symbol, or the fixed length as text): inputs
/// whose update is the input itself (declared as an output of the same value), so no run writes
/// them; the caller fills them once from the encoder's outputs.
pub fn cross_states(
    b: &mut Builder,
    layer: usize,
    heads: usize,
    source: &str,
    head_dim: usize,
) -> Result<(ValueId, ValueId), Error> {
    let dims = [
        "batch".to_string(),
        heads.to_string(),
        source.to_string(),
        head_dim.to_string(),
    ];
    let dims: Vec<&str> = dims.iter().map(String::as_str).collect();
    let mut state = |which: &str| -> Result<ValueId, Error> {
        let name = cross_name(layer, which);
        let v = b.input(&name, b.dtype, &dims)?;
        let update = format!("{name}.kept");
        b.graph.add_output(update.clone(), v);
        b.graph.add_state(name, update);
        Ok(v)
    };
    Ok((state("key")?, state("value")?))
}

/// The last position of `x: [batch, seq, hidden]` as `[batch, 1, hidden]`.
pub fn last_position(b: &mut Builder, x: ValueId) -> Result<ValueId, Error> {
    b.op(
        Op::Slice {
            axes: vec![1],
            starts: vec![Dim::known(-1)],
            ends: vec![Dim::known(i64::MAX)],
            steps: vec![1],
        },
        &[x],
    )
}
