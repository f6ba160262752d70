//! Feature extraction on all-MiniLM-L6-v2: pooled, normalised embeddings of `sentences.json`
//! match sentence-transformers' (`reference.npz`, cosine ≥ 0.9999) whatever the batch size,
//! long inputs are truncated to `max_seq_length` with a note, and a folder without
//! sentence-transformers' files gives per-token states as transformers does.

mod common;

use kiln_pipelines::tasks::{FeatureExtraction, Features, Pooling};
use kiln_pipelines::{Files, Folder, InMemory};

fn pooled(f: &Features) -> &[f32] {
    match f {
        Features::Pooled(v) => v,
        Features::Tokens(_) => panic!("expected an embedding, got token states"),
    }
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn minilm_embeddings_match_sentence_transformers_at_any_batch_size() {
    let Some(dir) = common::minilm_dir() else {
        return;
    };
    let sentences = common::minilm_sentences(&dir);
    let npz = kiln::read_npz(&dir.join("reference.npz")).expect("reference.npz");
    let want = &npz["sentence_embedding"];
    let &[n, h] = want.shape() else {
        panic!("sentence_embedding has shape {:?}", want.shape())
    };
    assert_eq!(n, sentences.len());
    let want = want.to_f64_vec();
    let p = FeatureExtraction::new(common::compile(&dir), &Folder::new(&dir), false).unwrap();
    let s = p.settings();
    assert_eq!(s.pooling, vec![Pooling::Mean]);
    assert!(s.normalize);
    assert_eq!(s.max_seq_length, Some(256));
    for batch in [1, 2, 32] {
        let run = p.run(&sentences, batch).unwrap();
        assert!(run.notes.is_empty(), "{:?}", run.notes);
        assert_eq!(run.results.len(), n);
        for (i, r) in run.results.iter().enumerate() {
            let got = pooled(r);
            assert_eq!(got.len(), h);
            let c = common::cosine(&to_f64(got), &want[i * h..][..h]);
            assert!(c >= 0.9999, "batch {batch}, sentence {i}: cosine {c}");
        }
    }
}

#[test]
fn long_inputs_are_truncated_to_max_seq_length_with_a_note() {
    let Some(dir) = common::minilm_dir() else {
        return;
    };
    let p = FeatureExtraction::new(common::compile(&dir), &Folder::new(&dir), true).unwrap();
    let long = "word ".repeat(400);
    let texts = vec!["short".to_string(), long.clone()];
    let run = p.run(&texts, 8).unwrap();
    assert_eq!(run.notes.len(), 1);
    let note = run.notes[0];
    assert_eq!((note.input, note.from, note.to), (1, 402, 256));
    assert_eq!(
        note.to_string(),
        "input 2 was truncated from 402 to 256 tokens"
    );
    // The truncated text's embedding is that of its first 254 words.
    let cut = vec!["word ".repeat(254)];
    let again = p.run(&cut, 8).unwrap();
    assert!(again.notes.is_empty());
    let c = common::cosine(
        &to_f64(pooled(&run.results[1])),
        &to_f64(pooled(&again.results[0])),
    );
    assert!(c > 0.999999, "cosine {c}");
}

#[test]
fn without_sentence_transformers_files_features_are_per_token() {
    let Some(dir) = common::minilm_dir() else {
        return;
    };
    let folder = Folder::new(&dir);
    let mut files = InMemory {
        label: "<memory>".into(),
        ..Default::default()
    };
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        let bytes = folder.read(name).unwrap().expect("a MiniLM file");
        files.files.insert(name.to_string(), bytes);
    }
    let p = FeatureExtraction::new(common::compile(&dir), &files, false).unwrap();
    assert!(p.settings().pooling.is_empty());
    let texts = vec![
        "Hello world".to_string(),
        "A longer sentence than that.".to_string(),
    ];
    let run = p.run(&texts, 2).unwrap();
    let Features::Tokens(tokens) = &run.results[0] else {
        panic!("expected token states")
    };
    // [CLS] hello world [SEP]: padding to the longer sentence is not returned.
    assert_eq!(tokens.len(), 4);
    assert!(tokens.iter().all(|t| t.len() == 384));
    let json = serde_json::to_value(&run.results[0]).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(1), "a batch axis of 1");
    assert_eq!(json[0].as_array().map(Vec::len), Some(4));
}
