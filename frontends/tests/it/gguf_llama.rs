//! The `llama` architecture of a GGUF file: a tiny file built here opens into a Hugging Face
//! config and checkpoint and builds a graph; the q/k row permutation is llama.cpp's undone;
//! other architectures, unsupported tensor types, unknown tensor names and SentencePiece
//! tokenizers are errors naming what is at fault.

use crate::gguf_common::*;
use kiln_frontends::gguf::{self, llama, Head};
use kiln_frontends::Error;

const HIDDEN: u64 = 8;
const HEADS: u32 = 2;
const KV: u32 = 1;
const FF: u64 = 16;
const VOCAB: u64 = 4;

fn ramp(n: u64) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37).sin() * 0.1).collect()
}

/// A one-layer Llama with hidden 8, 2 query heads and 1 key/value head, head dim 4.
fn tiny() -> Gguf {
    let hd = HIDDEN / u64::from(HEADS);
    let kv_width = hd * u64::from(KV);
    let mut g = Gguf::default()
        .str("general.architecture", "llama")
        .str("general.name", "tiny")
        .u32("llama.embedding_length", HIDDEN as u32)
        .u32("llama.feed_forward_length", FF as u32)
        .u32("llama.block_count", 1)
        .u32("llama.attention.head_count", HEADS)
        .u32("llama.attention.head_count_kv", KV)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .f32("llama.rope.freq_base", 500000.0)
        .u32("llama.context_length", 64)
        .str("tokenizer.ggml.model", "gpt2")
        .kv("tokenizer.ggml.tokens", ARR, strs(&["a", "b", "ab", "<s>"]))
        .kv("tokenizer.ggml.merges", ARR, strs(&["a b"]))
        .kv(
            "tokenizer.ggml.token_type",
            ARR,
            arr(I32, 4, &[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]),
        )
        .u32("tokenizer.ggml.bos_token_id", 3)
        .u32("tokenizer.ggml.eos_token_id", 3);
    let ts: [(&str, Vec<u64>); 11] = [
        ("token_embd.weight", vec![HIDDEN, VOCAB]),
        ("output_norm.weight", vec![HIDDEN]),
        ("blk.0.attn_norm.weight", vec![HIDDEN]),
        ("blk.0.ffn_norm.weight", vec![HIDDEN]),
        ("blk.0.attn_q.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.attn_k.weight", vec![HIDDEN, kv_width]),
        ("blk.0.attn_v.weight", vec![HIDDEN, kv_width]),
        ("blk.0.attn_output.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.ffn_gate.weight", vec![HIDDEN, FF]),
        ("blk.0.ffn_up.weight", vec![HIDDEN, FF]),
        ("blk.0.ffn_down.weight", vec![FF, HIDDEN]),
    ];
    for (name, dims) in ts {
        g = g.f32_tensor(name, &dims, &ramp(dims.iter().product()));
    }
    g
}

#[test]
fn a_tiny_llama_opens_and_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tiny().write(tmp.path());
    let m = gguf::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let c = &m.config;
    assert_eq!(c["hidden_size"], 8);
    assert_eq!(c["num_attention_heads"], 2);
    assert_eq!(c["num_key_value_heads"], 1);
    assert_eq!(c["head_dim"], 4);
    assert_eq!(c["vocab_size"], 4);
    assert_eq!(c["rope_parameters"]["rope_theta"], 500000.0);
    assert_eq!(c["tie_word_embeddings"], true);
    assert_eq!(c["bos_token_id"], 3);
    assert_eq!(c["max_position_embeddings"], 64);
    assert_eq!(
        (m.architecture.as_str(), m.name.as_deref()),
        ("llama", Some("tiny"))
    );
    assert_eq!(m.tensor_types, [("F32", 11)]);
    assert_eq!(
        m.checkpoint.shape("model.layers.0.self_attn.k_proj.weight"),
        Some(vec![4, 8])
    );
    assert_eq!(
        m.checkpoint.shape("model.layers.0.mlp.down_proj.weight"),
        Some(vec![8, 16])
    );
    m.build(Head::CausalLm).unwrap_or_else(|e| panic!("{e}"));
    m.build(Head::Base).unwrap_or_else(|e| panic!("{e}"));
    let tok = tokenizers::Tokenizer::from_bytes(m.tokenizer_json.as_ref().unwrap().as_bytes())
        .expect("the tokenizer loads");
    assert_eq!(tok.encode("ab<s>", false).unwrap().get_ids(), [2, 3]);
    assert_eq!(m.chat_template, None);
    assert!(
        format!("{m:?}").contains("Owned(256 bytes)"),
        "the bytes are not printed"
    );
    // `add_bos_token` becomes a post-processor adding it.
    let tmp = tempfile::tempdir().unwrap();
    let g = tiny().kv("tokenizer.ggml.add_bos_token", BOOL, vec![1]);
    let m = gguf::open(&g.write(tmp.path())).unwrap();
    let tok = tokenizers::Tokenizer::from_bytes(m.tokenizer_json.unwrap().as_bytes()).unwrap();
    assert_eq!(tok.encode("ab", true).unwrap().get_ids(), [3, 2]);
    assert_eq!(
        tok.encode(("a", "b"), true).unwrap().get_ids(),
        [3, 0, 3, 1]
    );
}

/// llama.cpp's converter: rows viewed as `[n_head, 2, d/2]`, the last two axes swapped.
fn llama_cpp_permute(w: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let d = rows / n_head;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_head {
        for t in 0..2 {
            for j in 0..d / 2 {
                let hf = (h * d + t * d / 2 + j) * cols;
                let gg = (h * d + 2 * j + t) * cols;
                out[gg..gg + cols].copy_from_slice(&w[hf..hf + cols]);
            }
        }
    }
    out
}

#[test]
fn the_rotary_permutation_is_undone() {
    let (rows, cols, heads) = (12, 3, 2);
    let hf: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
    let stored = llama_cpp_permute(&hf, rows, cols, heads);
    assert_ne!(stored, hf);
    assert_eq!(
        llama::unpermute_rows(&stored, rows, cols, heads).unwrap(),
        hf
    );
    // Head 0 of 6 rows: GGUF stores HF rows 0, 3, 1, 4, 2, 5.
    let rows_of = |v: &[f32]| {
        v.chunks(cols)
            .map(|r| r[0] as usize / cols)
            .collect::<Vec<_>>()
    };
    assert_eq!(&rows_of(&stored)[..6], [0, 3, 1, 4, 2, 5]);
    assert!(llama::unpermute_rows(&hf, 12, 3, 5).is_err());
    assert!(llama::unpermute_rows(&hf, 12, 4, 2).is_err());
}

#[track_caller]
fn open_err(g: &Gguf) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = g.write(tmp.path());
    let e = gguf::open(&path).expect_err("refused");
    let msg = e.to_string();
    assert!(msg.contains("model.gguf"), "{msg}");
    if let Error::UnsupportedArchitecture { .. } = e {
        return format!("arch: {msg}");
    }
    msg
}

#[test]
fn what_kiln_cannot_build_is_refused_by_name() {
    let mut g = tiny();
    g.kv[0] = ("general.architecture".into(), STR, s("mamba"));
    let msg = open_err(&g);
    assert!(
        msg.starts_with("arch: ") && msg.contains("`mamba`") && msg.contains("llama"),
        "{msg}"
    );
    // A tensor type without a dequantizer: the tensor and the type are named.
    let mut g = tiny();
    g.tensors[1] = ("output_norm.weight".into(), vec![256], 16, vec![0; 66]);
    let msg = open_err(&g);
    assert!(
        msg.contains("tensor `output_norm.weight`") && msg.contains("IQ2_XXS"),
        "{msg}"
    );
    let g = tiny().f32_tensor("blk.0.mystery.weight", &[2], &[0.0, 1.0]);
    assert!(open_err(&g).contains("tensor `blk.0.mystery.weight`: is not a tensor of the llama"));
    let msg = open_err(&tiny().u32("llama.rope.dimension_count", 2));
    assert!(msg.contains("partial rotary"), "{msg}");
    let msg = open_err(&tiny().str("llama.rope.scaling.type", "yarn"));
    assert!(msg.contains("yarn"), "{msg}");
    let mut g = tiny();
    g.kv.retain(|kv| kv.0 != "llama.block_count");
    assert!(open_err(&g).contains("key `llama.block_count`: is missing"));
    // A SentencePiece tokenizer: the model still opens, the tokenizer says why it is absent.
    let mut g = tiny();
    g.kv[10] = ("tokenizer.ggml.model".into(), STR, s("llama"));
    let tmp = tempfile::tempdir().unwrap();
    let m = gguf::open(&g.write(tmp.path())).unwrap();
    let msg = m.tokenizer_json.unwrap_err().to_string();
    assert!(msg.contains("`llama` is not supported yet"), "{msg}");
}
