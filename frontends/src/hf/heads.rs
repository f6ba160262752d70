//! Task heads on top of the base models: masked-LM, sequence classification, token
//! classification and question answering for the text encoders (BERT, RoBERTa, DistilBERT, each
//! naming its weights in an [`EncoderHeads`]), and image classification for ViT. Which head a
//! folder gets is decided by the `architectures` entry of its `config.json` (see `mod.rs`).
//!
//! Output names: `logits` (`[batch, seq, vocab]` masked-LM, `[batch, num_labels]` sequence and
//! image classification, `[batch, seq, num_labels]` token classification), `start_logits` and
//! `end_logits` (`[batch, seq]`) for question answering, `last_hidden_state` for a base model.

use super::bert::{activate, Activation};
use super::builder::{p, Builder};
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, Dim, Graph, Op, ValueId};

/// What a graph computes on top of its family's base model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The base model: `last_hidden_state`.
    Base,
    /// Masked-LM logits over the vocabulary at every position.
    MaskedLm,
    /// One row of class logits per sequence, from its first token.
    SequenceClassification,
    /// Class logits at every position.
    TokenClassification,
    /// Answer-span start and end logits at every position.
    QuestionAnswering,
    /// One row of class logits per image, from the class token.
    ImageClassification,
    /// Next-token logits at every position.
    CausalLm,
}

/// The most labels a classification head may have (`id2label`/`num_labels`).
const MAX_LABELS: usize = 1 << 24;

/// A text encoder's output and what its heads reuse.
#[derive(Debug, Clone, Copy)]
pub struct Encoded {
    /// `last_hidden_state: [batch, seq, width]`.
    pub hidden: ValueId,
    /// The word-embedding table `[vocab, width]` (the tied masked-LM decoder).
    pub word: ValueId,
    /// The hidden width.
    pub width: usize,
    /// The vocabulary size.
    pub vocab: usize,
}

/// The weight names (and activations) of one encoder family's heads.
#[derive(Debug, Clone)]
pub struct EncoderHeads<'a> {
    /// Masked-LM: the transform `nn.Linear` `[width, width]`.
    pub mlm_transform: &'a str,
    /// Masked-LM: the activation after the transform.
    pub mlm_act: Activation,
    /// Masked-LM: the LayerNorm after the activation.
    pub mlm_norm: &'a str,
    /// Masked-LM: that LayerNorm's epsilon.
    pub mlm_eps: f64,
    /// Masked-LM: the decoder `nn.Linear` `[vocab, width]`; when its weight is absent (as
    /// `save_pretrained` leaves tied weights out) the word embeddings are the decoder.
    pub mlm_decoder: &'a str,
    /// Masked-LM: the names the decoder's `[vocab]` bias may be stored under, in order.
    pub mlm_bias: &'a [&'a str],
    /// Sequence classification: the dense layer on the first token (BERT's pooler).
    pub cls_dense: &'a str,
    /// Sequence classification: the activation after it (tanh, or DistilBERT's ReLU).
    pub cls_act: Op,
    /// Sequence classification: the output layer `[num_labels, width]`.
    pub cls_out: &'a str,
    /// Token classification: the output layer `[num_labels, width]`.
    pub token_out: &'a str,
}

/// The number of labels of a classification head: the size of `id2label`, else `num_labels`,
/// else transformers' default of 2.
pub fn num_labels(b: &Builder, cfg: &serde_json::Value) -> Result<usize, Error> {
    let n = match cfg.get("id2label") {
        Some(serde_json::Value::Object(m)) if !m.is_empty() => m.len(),
        Some(serde_json::Value::Object(_) | serde_json::Value::Null) | None => {
            match cfg.get("num_labels") {
                None | Some(serde_json::Value::Null) => 2,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        b.config_error(format!("`num_labels` {v} is not a positive integer"))
                    })?,
            }
        }
        Some(other) => {
            return Err(b.config_error(format!(
                "`id2label` must be an object of label names, found {other}"
            )))
        }
    };
    if n == 0 || n > MAX_LABELS {
        return Err(b.config_error(format!(
            "the classification head has {n} labels (`id2label`/`num_labels`); it needs 1 to \
             {MAX_LABELS}"
        )));
    }
    Ok(n)
}

/// The error for a head the family's builder was asked for but does not build (the
/// architecture table never asks for one).
pub fn not_built(b: &Builder, family: &str, head: Head) -> Error {
    b.config_error(format!("Kiln builds no {head:?} head for {family}"))
}

/// Finishes a text encoder's graph with `head` (`Base`, `MaskedLm`, `SequenceClassification`,
/// `TokenClassification` or `QuestionAnswering`).
pub fn encoder_head(
    mut b: Builder,
    cfg: &serde_json::Value,
    enc: &Encoded,
    names: &EncoderHeads,
    head: Head,
) -> Result<Graph, Error> {
    let w = enc.width;
    match head {
        Head::Base => b.finish(&[("last_hidden_state", enc.hidden)]),
        Head::MaskedLm => {
            let logits = masked_lm(&mut b, enc, names)?;
            b.finish(&[("logits", logits)])
        }
        Head::SequenceClassification => {
            let n = num_labels(&b, cfg)?;
            let first = b.first_token(enc.hidden)?;
            let x = b.linear(first, names.cls_dense, w, w, true)?;
            let x = b.op(names.cls_act.clone(), &[x])?;
            let logits = b.linear(x, names.cls_out, w, n, true)?;
            b.finish(&[("logits", logits)])
        }
        Head::TokenClassification => {
            let n = num_labels(&b, cfg)?;
            let logits = b.linear(enc.hidden, names.token_out, w, n, true)?;
            b.finish(&[("logits", logits)])
        }
        Head::QuestionAnswering => {
            let (start, end) = question_answering(&mut b, enc.hidden, w)?;
            b.finish(&[("start_logits", start), ("end_logits", end)])
        }
        Head::ImageClassification | Head::CausalLm => Err(not_built(&b, "a text encoder", head)),
    }
}

/// Transform, activation, LayerNorm, then the decoder (stored, or the tied word embeddings)
/// and its bias: `[batch, seq, vocab]`.
fn masked_lm(b: &mut Builder, enc: &Encoded, names: &EncoderHeads) -> Result<ValueId, Error> {
    let w = enc.width;
    let x = b.linear(enc.hidden, names.mlm_transform, w, w, true)?;
    let x = activate(b, x, names.mlm_act)?;
    let x = b.layer_norm(x, names.mlm_norm, w, names.mlm_eps)?;
    let decoder = b
        .opt_weight(&p(names.mlm_decoder, "weight"), &[enc.vocab, w])?
        .unwrap_or(enc.word);
    let dt = b.op(Op::Transpose { perm: vec![1, 0] }, &[decoder])?;
    let y = b.op(Op::MatMul, &[x, dt])?;
    // The bias is a parameter of every masked-LM head: absent under all its names, the first
    // name is reported missing.
    let stored = names
        .mlm_bias
        .iter()
        .find(|n| b.checkpoint().has(n))
        .or(names.mlm_bias.first());
    match stored {
        Some(name) => {
            let bias = b.weight(name, &[enc.vocab])?;
            b.bin(BinaryOp::Add, y, bias)
        }
        None => Ok(y),
    }
}

/// `qa_outputs` (`[2, width]`) split into `start_logits` and `end_logits`, each `[batch, seq]`.
pub fn question_answering(
    b: &mut Builder,
    hidden: ValueId,
    width: usize,
) -> Result<(ValueId, ValueId), Error> {
    let logits = b.linear(hidden, "qa_outputs", width, 2, true)?;
    let one = Dim::known(1);
    let parts = b.graph.add_node(
        Op::Split {
            axis: -1,
            sizes: vec![one.clone(), one],
        },
        &[logits],
    )?;
    let [start, end] = parts[..] else {
        return Err(b.config_error("qa_outputs did not split into start and end".into()));
    };
    let shape = b.ty(hidden).shape.0;
    let bs = vec![shape[0].clone(), shape[1].clone()];
    let start = b.op(Op::Reshape { shape: bs.clone() }, &[start])?;
    let end = b.op(Op::Reshape { shape: bs }, &[end])?;
    Ok((start, end))
}

/// `classifier` (`[num_labels, width]`) on the first (class) token of `hidden`:
/// `[batch, num_labels]`.
pub fn image_classification(
    b: &mut Builder,
    cfg: &serde_json::Value,
    hidden: ValueId,
    width: usize,
) -> Result<ValueId, Error> {
    let n = num_labels(b, cfg)?;
    let first = b.first_token(hidden)?;
    b.linear(first, "classifier", width, n, true)
}
