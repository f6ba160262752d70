//! Sentence embeddings with Kiln: compiles a Hugging Face folder (all-MiniLM-L6-v2, say) in
//! memory and runs the feature-extraction pipeline on it, which tokenizes with the folder's
//! `tokenizer.json`, pools and normalises as its sentence-transformers files say.
//!
//! ```text
//! cargo run --release --example sentence_embeddings -- MODEL_DIR "a sentence" ["another" ...]
//! ```
//!
//! Prints a JSON array holding one embedding (an array of floats) per sentence.

use anyhow::{bail, Result};
use kiln_pipelines::tasks::FeatureExtraction;
use kiln_pipelines::{Folder, DEFAULT_BATCH_SIZE};
use std::path::PathBuf;

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
    let model = kiln::backend::load_runnable(&dir, &Default::default(), &Default::default())?;
    let pipeline = FeatureExtraction::new(model, &Folder::new(&dir), true)?;
    let run = pipeline.run(&sentences, DEFAULT_BATCH_SIZE)?;
    for note in &run.notes {
        eprintln!("note: {note}");
    }
    println!("{}", serde_json::to_string(&run.results)?);
    Ok(())
}
