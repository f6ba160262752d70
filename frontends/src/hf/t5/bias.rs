//! T5's relative position bias: each (query, key) pair adds `emb[bucket(key − query)]` (one
//! value per head) to its attention score, with `emb` the first layer's
//! `SelfAttention.relative_attention_bias.weight` `[buckets, heads]`, shared by every layer of
//! that stack.
//!
//! [`bucket`] is transformers' `_relative_position_bucket` with its f32 arithmetic: exact
//! buckets for small distances, logarithmic ones up to `max_distance`, the last bucket from
//! there on. The encoder's buckets are bidirectional (half of them for keys after the query),
//! the decoder's only look back (a key after the query is bucket 0). Because the function is
//! constant past `max_distance` (which `config.rs` requires to exceed `num_buckets / 2`), a
//! table over the distance clamped to `±max_distance` is exact for any length: the graph
//! clamps `key − query`, looks the bucket up in that constant table and gathers the bias rows.

use super::config::T5Config;
use crate::error::Error;
use crate::hf::builder::Builder;
use kiln_compiler::ir::{BinaryOp, DType, Dim, Op, ValueId};

/// transformers' `T5Attention._relative_position_bucket(relative, bidirectional, num_buckets,
/// max_distance)` for one `relative = key − query`, in its arithmetic (the logarithm in f32).
pub fn bucket(relative: i64, bidirectional: bool, num_buckets: usize, max_distance: usize) -> i64 {
    let mut buckets = num_buckets as i64;
    let mut base = 0;
    let n = if bidirectional {
        buckets /= 2;
        if relative > 0 {
            base = buckets;
        }
        relative.saturating_abs()
    } else {
        relative.saturating_neg().max(0)
    };
    let max_exact = buckets / 2;
    if n < max_exact {
        return base + n;
    }
    let span = (max_distance as f64 / max_exact as f64).ln() as f32;
    let scaled = (n as f32 / max_exact as f32).ln() / span * (buckets - max_exact) as f32;
    base + (max_exact + scaled as i64).min(buckets - 1)
}

/// The buckets of `relative = -max_distance..=max_distance` (index `relative + max_distance`).
pub fn bucket_table(bidirectional: bool, num_buckets: usize, max_distance: usize) -> Vec<i64> {
    let m = max_distance as i64;
    (-m..=m)
        .map(|r| bucket(r, bidirectional, num_buckets, max_distance))
        .collect()
}

/// The bias `[Q, heads, Sq, keys]` of queries at `query_pos` (`i64 [Q, Sq]`, `Q` the batch or
/// 1) over the keys `0..keys`, from `{stack}.block.0.layer.0.SelfAttention.relative_attention_bias`.
pub fn position_bias(
    b: &mut Builder,
    c: &T5Config,
    stack: &str,
    bidirectional: bool,
    query_pos: ValueId,
    keys: Dim,
) -> Result<ValueId, Error> {
    let (nb, md) = (
        c.relative_attention_num_buckets,
        c.relative_attention_max_distance,
    );
    let emb = b.weight(
        &format!("{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
        &[nb, c.num_heads],
    )?;
    let table = bucket_table(bidirectional, nb, md);
    let table = b.const_i64("t5.relative_buckets", vec![table.len()], table)?;
    let qt = b.ty(query_pos);
    let (rows, sq) = (qt.shape.0[0].clone(), qt.shape.0[1].clone());
    let q = b.op(
        Op::Reshape {
            shape: vec![rows, sq, Dim::known(1)],
        },
        &[query_pos],
    )?;
    let k = b.positions(&keys, DType::I64)?;
    let rel = b.bin(BinaryOp::Sub, k, q)?;
    let m = i64::try_from(md).map_err(|_| b.config_error("max_distance too large".into()))?;
    let lo = b.const_i64("t5.min_distance", vec![], vec![-m])?;
    let hi = b.const_i64("t5.max_distance", vec![], vec![m])?;
    let rel = b.bin(BinaryOp::Max, rel, lo)?;
    let rel = b.bin(BinaryOp::Min, rel, hi)?;
    let idx = b.bin(BinaryOp::Add, rel, hi)?;
    let buckets = b.op(Op::Gather { axis: 0 }, &[table, idx])?;
    let bias = b.op(Op::Gather { axis: 0 }, &[emb, buckets])?;
    b.op(
        Op::Transpose {
            perm: vec![0, 3, 1, 2],
        },
        &[bias],
    )
}

/// The query positions `0..len` as `i64 [1, len]`.
pub fn first_positions(b: &mut Builder, len: Dim) -> Result<ValueId, Error> {
    let r = b.positions(&len, DType::I64)?;
    b.op(
        Op::Reshape {
            shape: vec![Dim::known(1), len],
        },
        &[r],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_then_logarithmic_then_saturate() {
        // Decoder (unidirectional), 32 buckets, max distance 128 as in t5-small: distances
        // below 16 are their own bucket, keys after the query are bucket 0.
        for d in 0..16 {
            assert_eq!(bucket(-d, false, 32, 128), d);
        }
        assert_eq!(bucket(5, false, 32, 128), 0);
        let far: Vec<i64> = (16..400).map(|d| bucket(-d, false, 32, 128)).collect();
        assert!(far.windows(2).all(|w| w[0] <= w[1]), "monotone");
        assert!(far.iter().all(|&x| (16..32).contains(&x)));
        assert_eq!(bucket(-128, false, 32, 128), 31);
        assert_eq!(bucket(-i64::MAX, false, 32, 128), 31);
        // Encoder: keys after the query use the upper half.
        assert_eq!(bucket(3, true, 32, 128), 16 + 3);
        assert_eq!(bucket(-3, true, 32, 128), 3);
        assert_eq!(bucket(1000, true, 32, 128), 31);
        assert_eq!(bucket(-1000, true, 32, 128), 15);
        let t = bucket_table(true, 8, 16);
        assert_eq!(t.len(), 33);
        assert_eq!((t[0], t[16], t[32]), (3, 0, 7));
    }
}
