//! Sentence embeddings with Kiln: tokenizes sentences with a Hugging Face folder's
//! `tokenizer.json`, builds the folder's BERT model with Kiln's HF frontend, runs it on the
//! reference interpreter, mean-pools `last_hidden_state` over the attention mask and
//! L2-normalises — the pooling of sentence-transformers models such as all-MiniLM-L6-v2.
//!
//! ```text
//! cargo run --release --example sentence_embeddings -- MODEL_DIR "a sentence" ["another" ...]
//! ```
//!
//! Prints a JSON array holding one embedding (an array of floats) per sentence.

use anyhow::{bail, Context, Result};
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};

/// The batch as the model's three `i64 [batch, seq]` inputs, padded to the longest sentence.
fn tokenize(dir: &Path, sentences: &[String]) -> Result<BTreeMap<String, Tensor>> {
    let path = dir.join("tokenizer.json");
    let mut tok = Tokenizer::from_file(&path)
        .map_err(|e| anyhow::anyhow!("{}: cannot load the tokenizer: {e}", path.display()))?;
    // Folders often pad to a fixed length (128 for MiniLM); the batch only needs its longest.
    let padding = PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..tok.get_padding().cloned().unwrap_or_default()
    };
    tok.with_padding(Some(padding));
    let enc = tok
        .encode_batch(sentences.to_vec(), true)
        .map_err(|e| anyhow::anyhow!("cannot tokenize: {e}"))?;
    let shape = vec![enc.len(), enc.first().map_or(0, |e| e.len())];
    let field = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
        let v = enc.iter().flat_map(|e| f(e).iter().map(|&x| i64::from(x)));
        Ok(Tensor::from_i64(shape.clone(), v.collect())?)
    };
    Ok(BTreeMap::from([
        ("input_ids".to_string(), field(|e| e.get_ids())?),
        (
            "attention_mask".to_string(),
            field(|e| e.get_attention_mask())?,
        ),
        ("token_type_ids".to_string(), field(|e| e.get_type_ids())?),
    ]))
}

/// Mean of `hidden [b, s, h]` over the positions where `mask [b, s]` is set, L2-normalised.
fn pool(hidden: &Tensor, mask: &Tensor) -> Result<Vec<Vec<f32>>> {
    let &[b, s, h] = hidden.shape() else {
        bail!(
            "last_hidden_state has shape {:?}, expected [batch, seq, hidden]",
            hidden.shape()
        );
    };
    let (x, m) = (hidden.to_f64_vec(), mask.to_i64_vec());
    let embed = |i: usize| {
        let mut sum = vec![0.0f64; h];
        let mut count = 0.0f64;
        for t in (0..s).filter(|&t| m[i * s + t] != 0) {
            count += 1.0;
            let row = &x[(i * s + t) * h..][..h];
            sum.iter_mut().zip(row).for_each(|(a, v)| *a += v);
        }
        let mean: Vec<f64> = sum.iter().map(|v| v / count.max(1e-9)).collect();
        let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        mean.iter().map(|v| (v / norm) as f32).collect()
    };
    Ok((0..b).map(embed).collect())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), sentences) = (args.next().map(PathBuf::from), args.collect::<Vec<_>>()) else {
        bail!("usage: sentence_embeddings MODEL_DIR SENTENCE [SENTENCE ...]");
    };
    if sentences.is_empty() {
        bail!("usage: sentence_embeddings MODEL_DIR SENTENCE [SENTENCE ...]");
    }
    if !kiln_frontends::hf::is_model_folder(&dir) {
        bail!(
            "{} is not a Hugging Face model folder (a directory with config.json, \
             tokenizer.json and model.safetensors)",
            dir.display()
        );
    }
    let graph = kiln_frontends::hf::load_folder(&dir)
        .with_context(|| format!("cannot build the model of {}", dir.display()))?;
    let inputs = tokenize(&dir, &sentences)?;
    let outputs = kiln_compiler::interp::run(&graph, &inputs).context("running the model")?;
    let Some((_, hidden)) = outputs.iter().find(|(n, _)| n == "last_hidden_state") else {
        bail!("the model has no `last_hidden_state` output");
    };
    let embeddings = pool(hidden, &inputs["attention_mask"])?;
    println!("{}", serde_json::to_string(&embeddings)?);
    Ok(())
}
