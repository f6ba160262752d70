//! RoBERTa and XLM-RoBERTa (`model_type` `roberta` / `xlm-roberta`): BERT's embeddings and
//! encoder (`bert.rs`) with RoBERTa's position ids, and the `lm_head` / `classifier` heads.
//!
//! Graph inputs are `input_ids` and `attention_mask` (`i64[batch, seq]`), as RoBERTa tokenizers
//! give them: every token uses row 0 of the token-type table, which is what transformers does
//! when no `token_type_ids` are passed. Position ids follow transformers'
//! `create_position_ids_from_input_ids`: `padding_idx + cumsum(ids != padding_idx) · (ids !=
//! padding_idx)`, so padding tokens sit at `padding_idx` and the others count from
//! `padding_idx + 1`. A sequence may therefore hold at most `max_position_embeddings -
//! pad_token_id - 1` tokens.

use super::bert::{self, activation_of, BertConfig, BertInputs};
use super::builder::Builder;
use super::checkpoint::Checkpoint;
use super::heads::{self, EncoderHeads, Head};
use crate::error::Error;
use kiln_compiler::ir::{BinaryOp, DType, Graph, Op, UnaryOp, ValueId};

/// transformers' `RobertaConfig` defaults where they differ from BERT's (`XLMRobertaConfig`
/// keeps BERT's vocabulary size).
fn defaults(model_type: &str) -> BertConfig {
    BertConfig {
        vocab_size: if model_type == "xlm-roberta" {
            30522
        } else {
            50265
        },
        pad_token_id: Some(1),
        ..BertConfig::default()
    }
}

/// The padding id and the longest sequence the position table allows.
fn limits(c: &BertConfig) -> Result<(i64, usize), String> {
    let pad = c
        .pad_token_id
        .ok_or("`pad_token_id` must be set for RoBERTa")?;
    let longest = usize::try_from(pad)
        .ok()
        .and_then(|p| c.max_position_embeddings.checked_sub(p)?.checked_sub(1))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!(
                "`pad_token_id` {pad} leaves no positions in `max_position_embeddings` {} \
                 (RoBERTa numbers tokens from pad_token_id + 1)",
                c.max_position_embeddings
            )
        })?;
    Ok((pad, longest))
}

/// `padding_idx + cumsum(ids != padding_idx, axis 1) · (ids != padding_idx)`: `i64[batch, seq]`.
pub fn position_ids(b: &mut Builder, ids: ValueId, pad: i64) -> Result<ValueId, Error> {
    let pad = b.const_i64("pad_token_id", vec![], vec![pad])?;
    let is_pad = b.bin(BinaryOp::Eq, ids, pad)?;
    let keep = b.op(Op::Unary(UnaryOp::Not), &[is_pad])?;
    let keep = b.op(Op::Cast { to: DType::I64 }, &[keep])?;
    let count = b.op(
        Op::CumSum {
            axis: 1,
            exclusive: false,
            reverse: false,
        },
        &[keep],
    )?;
    let count = b.bin(BinaryOp::Mul, count, keep)?;
    b.bin(BinaryOp::Add, count, pad)
}

/// Builds `RobertaModel`/`XLMRobertaModel` (output `last_hidden_state`) or one of their heads.
pub fn build(cfg: &serde_json::Value, ck: &Checkpoint, head: Head) -> Result<Graph, Error> {
    let mut b = Builder::new(ck);
    let model_type = cfg
        .get("model_type")
        .and_then(|m| m.as_str())
        .unwrap_or("roberta");
    let c = BertConfig::parse_over(cfg, &defaults(model_type))
        .map_err(|m| b.config_error(format!("RoBERTa config: {m}")))?;
    let (pad, longest) = limits(&c).map_err(|m| b.config_error(m))?;
    let ids = b.input("input_ids", DType::I64, &["batch", "seq"])?;
    let mask = b.input("attention_mask", DType::I64, &["batch", "seq"])?;
    b.limit_ids(
        "input_ids",
        "vocab_size",
        c.vocab_size,
        Some(("max_position_embeddings - pad_token_id - 1", longest)),
    );
    let inputs = BertInputs {
        input_ids: ids,
        attention_mask: mask,
        token_type_ids: None,
        position_ids: Some(position_ids(&mut b, ids, pad)?),
    };
    let enc = bert::load_base(&mut b, &c, &inputs)?;
    // RobertaLMHead applies the exact GELU whatever `hidden_act` says.
    let gelu = activation_of("gelu").map_err(|m| b.config_error(m))?;
    let names = EncoderHeads {
        mlm_transform: "lm_head.dense",
        mlm_act: gelu,
        mlm_norm: "lm_head.layer_norm",
        mlm_eps: c.layer_norm_eps,
        mlm_decoder: "lm_head.decoder",
        mlm_bias: &["lm_head.bias", "lm_head.decoder.bias"],
        cls_dense: "classifier.dense",
        cls_act: Op::Unary(UnaryOp::Tanh),
        cls_out: "classifier.out_proj",
        token_out: "classifier",
    };
    heads::encoder_head(b, cfg, &enc, &names, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_position_limits() {
        let c = BertConfig::parse_over(&serde_json::json!({}), &defaults("roberta")).unwrap();
        assert_eq!((c.vocab_size, c.pad_token_id), (50265, Some(1)));
        assert_eq!(limits(&c), Ok((1, 510)));
        let x = BertConfig::parse_over(&serde_json::json!({}), &defaults("xlm-roberta")).unwrap();
        assert_eq!(x.vocab_size, 30522);
        let cfg = serde_json::json!({"max_position_embeddings": 2, "pad_token_id": 1});
        let c = BertConfig::parse_over(&cfg, &defaults("roberta")).unwrap();
        assert!(limits(&c).unwrap_err().contains("no positions"));
        assert!(BertConfig::parse_over(&serde_json::json!([]), &defaults("roberta")).is_err());
        let cfg = serde_json::json!({"pad_token_id": null});
        let c = BertConfig::parse_over(&cfg, &defaults("roberta")).unwrap();
        assert!(limits(&c).is_err());
    }
}
