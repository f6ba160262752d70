//! Tests for the inference in `fused.rs` of attention (heads, grouped KV, bias, mask, rotary),
//! matmul_bias and skip_layer_norm.

use super::super::op::Op;
use super::testing::{err, ok};

fn attn(heads: u32, kv_heads: u32, bias: bool, mask: bool, rotary: bool) -> Op {
    Op::Attention {
        heads,
        kv_heads,
        scale: 0.125,
        causal: true,
        bias,
        mask,
        rotary,
    }
}

const Q: &str = "f32[batch, 8, seq, 64]";
const K: &str = "f32[batch, 2, past+seq, 64]";
const V: &str = "f32[batch, 2, past+seq, 32]";

#[test]
fn attention_plain_and_grouped() {
    let op = attn(8, 2, false, false, false);
    assert_eq!(ok(&op, &[Q, K, V]), "f32[batch, 8, seq, 32]");
    let mha = attn(4, 4, false, false, false);
    let x = "f16[b, 4, s, 16]";
    assert_eq!(ok(&mha, &[x, x, x]), "f16[b, 4, s, 16]");
}

#[test]
fn attention_bias_and_mask() {
    let op = attn(8, 2, true, true, false);
    assert_eq!(
        ok(
            &op,
            &[Q, K, V, "f32[1, 8, 1, past+seq]", "bool[batch, past+seq]"]
        ),
        "f32[batch, 8, seq, 32]"
    );
    assert_eq!(
        ok(&op, &[Q, K, V, "f32[past+seq]", "i64[batch, past+seq]"]),
        "f32[batch, 8, seq, 32]"
    );
    assert_eq!(
        err(&op, &[Q, K, V, "f32[4, 1, 1]", "bool[batch, past+seq]"]),
        "attention: input 3 (bias) [4, 1, 1] does not broadcast to [B, heads, Sq, Sk] = \
         [batch, 8, seq, past+seq]"
    );
    assert_eq!(
        err(&op, &[Q, K, V, "f32[1]", "bool[batch, seq]"]),
        "attention: input 4 (mask) has shape [batch, seq], expected [B, Sk] = [batch, past+seq]"
    );
    assert_eq!(
        err(&op, &[Q, K, V, "f32[1]", "f32[batch, past+seq]"]),
        "attention: input 4 has dtype f32, expected a bool or integer mask"
    );
    assert!(err(&op, &[Q, K, V, "f16[1]", "bool[batch, past+seq]"]).contains("input 3 has dtype"));
}

#[test]
fn attention_rotary() {
    let op = attn(8, 2, false, false, true);
    let (k, v) = ("f32[batch, 2, seq, 64]", "f32[batch, 2, seq, 64]");
    let cs = "f32[1, 1, seq, 64]";
    assert_eq!(ok(&op, &[Q, k, v, cs, cs]), "f32[batch, 8, seq, 64]");
    assert_eq!(
        err(&op, &[Q, K, V, cs, cs]),
        "attention: the sequence lengths (rotary needs Sq = Sk) of q (seq) and k (past+seq) differ"
    );
    assert_eq!(
        err(&op, &[Q, k, v, cs, "f32[seq, 32]"]),
        "attention: input 4 (sin) [seq, 32] does not broadcast to [B, 1, S, D] = \
         [batch, 1, seq, 64]"
    );
    let odd = "f32[b, 8, s, 5]";
    let odd_kv = "f32[b, 2, s, 5]";
    assert_eq!(
        err(&op, &[odd, odd_kv, odd_kv, "f32[5]", "f32[5]"]),
        "attention: rotary needs an even head size, got 5"
    );
    assert!(err(&op, &[Q, k, v, "f16[64]", "f16[64]"]).contains("input 3 has dtype f16"));
}

#[test]
fn attention_head_and_shape_errors() {
    assert_eq!(
        err(&attn(8, 3, false, false, false), &[Q, K, V]),
        "attention: heads (8) is not divisible by kv_heads (3)"
    );
    assert_eq!(
        err(&attn(0, 0, false, false, false), &[Q, K, V]),
        "attention: heads (0) and kv_heads (0) must be at least 1"
    );
    assert_eq!(
        err(&attn(8, 4, false, false, false), &[Q, K, V]),
        "attention: input 1 (k) has 2 heads in dim 1, expected 4"
    );
    assert_eq!(
        err(&attn(4, 2, false, false, false), &[Q, K, V]),
        "attention: input 0 (q) has 8 heads in dim 1, expected 4"
    );
    assert_eq!(
        err(
            &attn(8, 2, false, false, false),
            &["f32[b, h, s, 64]", K, V]
        ),
        "attention: input 0 (q) has a symbolic head count h in dim 1, expected 8"
    );
    assert_eq!(
        err(
            &attn(8, 2, false, false, false),
            &[Q, "f32[batch, 2, past+seq, 32]", V]
        ),
        "attention: the head sizes of q (64) and k (32) differ"
    );
    assert_eq!(
        err(
            &attn(8, 2, false, false, false),
            &[Q, K, "f32[batch, 2, seq, 32]"]
        ),
        "attention: the sequence lengths of k (past+seq) and v (seq) differ"
    );
    assert_eq!(
        err(
            &attn(8, 2, false, false, false),
            &[Q, "f32[n, 2, past+seq, 64]", V]
        ),
        "attention: the batch sizes of q (batch) and k (n) differ"
    );
    assert_eq!(
        err(
            &attn(8, 2, false, false, false),
            &["f32[batch, 8, 64]", K, V]
        ),
        "attention: input 0 has rank 3 ([batch, 8, 64]), expected 4 (q: [B, heads, Sq, D])"
    );
    assert_eq!(
        err(
            &attn(8, 2, false, false, false),
            &[Q, K, "f16[batch, 2, past+seq, 32]"]
        ),
        "attention: input 2 has dtype f16, expected the dtype of input 0 (f32)"
    );
    assert!(err(&attn(8, 2, false, false, false), &["i32[1, 8, 1, 4]"; 3]).contains("float"));
    assert_eq!(
        err(&attn(8, 2, true, false, false), &[Q, K, V]),
        "attention: takes 4 inputs, got 3"
    );
}

#[test]
fn matmul_bias_types() {
    let op = Op::MatMulBias;
    let (x, w) = ("f32[batch, seq, 384]", "f32[384, 1536]");
    assert_eq!(ok(&op, &[x, w, "f32[1536]"]), "f32[batch, seq, 1536]");
    assert_eq!(ok(&op, &[x, w, "f32[seq, 1]"]), "f32[batch, seq, 1536]");
    assert_eq!(ok(&op, &[x, w, "f32[]"]), "f32[batch, seq, 1536]");
    assert_eq!(ok(&op, &["f16[k]", "f16[k, n]", "f16[n]"]), "f16[n]");
    assert_eq!(
        err(&op, &[x, w, "f32[384]"]),
        "matmul_bias: input 2 (bias) [384] does not broadcast to the product \
         [batch, seq, 1536]"
    );
    assert_eq!(
        err(&op, &[x, w, "f32[2, 1, 1, 1536]"]),
        "matmul_bias: input 2 (bias) [2, 1, 1, 1536] has more dims than the product \
         [batch, seq, 1536]"
    );
    assert_eq!(
        err(&op, &[x, w, "f16[1536]"]),
        "matmul_bias: input 2 has dtype f16, expected the dtype of input 0 (f32)"
    );
    assert_eq!(
        err(&op, &["f32[2, 3]", "f32[4, 5]", "f32[5]"]),
        "matmul_bias: cannot multiply [2, 3] by [4, 5]: contracted dims 3 and 4 differ"
    );
    assert!(err(&op, &["i32[2, 2]"; 3]).contains("expected a float dtype"));
    assert_eq!(err(&op, &[x, w]), "matmul_bias: takes 3 inputs, got 2");
}

#[test]
fn skip_layer_norm_types() {
    let sln = |axis| Op::SkipLayerNorm { axis, eps: 1e-12 };
    let x = "f32[batch, seq, 384]";
    let both = "f32[batch, seq, 384]; f32[batch, seq, 384]";
    assert_eq!(ok(&sln(-1), &[x, x, "f32[384]", "f32[384]"]), both);
    assert_eq!(ok(&sln(-1), &[x, x, "f32[384]"]), both);
    assert_eq!(ok(&sln(1), &[x, "f32[384]", "f32[seq, 384]"]), both);
    assert_eq!(
        err(&sln(-1), &[x, "f32[2, batch, seq, 384]", "f32[384]"]),
        "skip_layer_norm: input 1 (skip) [2, batch, seq, 384] has more dims than the shape of \
         x [batch, seq, 384]"
    );
    assert_eq!(
        err(&sln(-1), &[x, "f32[seq, 256]", "f32[384]"]),
        "skip_layer_norm: input 1 (skip) [seq, 256] does not broadcast to the shape of x \
         [batch, seq, 384]"
    );
    assert_eq!(
        err(&sln(-1), &[x, x, "f32[seq, 384]"]),
        "skip_layer_norm: input 2 (gamma) [seq, 384] has more dims than the normalized dims \
         [384]"
    );
    assert_eq!(
        err(&sln(-1), &[x, x, "f32[384]", "f32[256]"]),
        "skip_layer_norm: input 3 (beta) [256] does not broadcast to the normalized dims [384]"
    );
    assert_eq!(
        err(&sln(-1), &[x, "f16[384]", "f32[384]"]),
        "skip_layer_norm: input 1 has dtype f16, expected the dtype of input 0 (f32)"
    );
    assert!(err(&sln(3), &[x, x, "f32[384]"]).contains("axis 3 is out of range for rank 3"));
    assert!(err(&sln(0), &["i32[4]"; 3]).contains("expected a float dtype"));
    assert_eq!(
        err(&sln(-1), &[x, x]),
        "skip_layer_norm: takes 3 to 4 inputs, got 2"
    );
}
