//! The tokenizer of the SmolLM2 GGUF written as a `tokenizer.json`: it loads with the
//! `tokenizers` crate, encodes the reference prompts to their ids, and encodes and decodes a set
//! of texts (digits, code, whitespace runs, special tokens, non-ASCII) exactly as the model's
//! Hugging Face `tokenizer.json` does; the chat template comes through.

use crate::gguf_common::smollm2_gguf;
use crate::onnx_common::shared_dir;
use kiln_frontends::gguf::reader::GgufFile;
use kiln_frontends::gguf::tokenizer::{chat_template, tokenizer_json};
use tokenizers::Tokenizer;

const TEXTS: &[&str] = &[
    "The capital of France is",
    "In 2018-01-01, 12345 people paid $3.50 each (1,000,000 total).",
    "def fibonacci(n):\n    if n <= 1:\n        return n\n\treturn  fib(n-1)",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "Grüße aus Köln — 日本語のテキスト 🙂 it's we're I'll",
    "   leading and trailing spaces   \n\n\n",
];

#[test]
fn smollm2_tokenizer_matches_hugging_face() {
    let Some(gguf) = smollm2_gguf() else { return };
    let Some(shared) = shared_dir() else { return };
    let refs = shared.join("models/smollm2-135m-instruct");
    let f = GgufFile::open(&gguf).expect("the GGUF opens");
    let json = tokenizer_json(&f).expect("a gpt2 tokenizer");
    let ours = Tokenizer::from_bytes(json.as_bytes()).expect("tokenizers loads the JSON");
    let hf = Tokenizer::from_file(refs.join("tokenizer.json")).expect("the reference tokenizer");
    assert_eq!(ours.get_vocab_size(true), hf.get_vocab_size(true));

    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(refs.join("reference.json")).unwrap())
            .unwrap();
    let cases = reference["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let want: Vec<u32> = case["prompt_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = ours.encode(prompt, true).unwrap();
        assert_eq!(got.get_ids(), &want[..], "prompt {prompt:?}");
        let greedy: Vec<u32> = case["greedy_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            ours.decode(&greedy, true).unwrap(),
            hf.decode(&greedy, true).unwrap()
        );
        assert_eq!(
            ours.decode(&greedy, true).unwrap(),
            case["text"].as_str().unwrap()
        );
    }
    for text in TEXTS {
        let a = ours.encode(*text, true).unwrap();
        let b = hf.encode(*text, true).unwrap();
        assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
        for skip in [true, false] {
            assert_eq!(
                ours.decode(a.get_ids(), skip).unwrap(),
                hf.decode(b.get_ids(), skip).unwrap(),
                "{text:?}"
            );
        }
    }
    let template = chat_template(&f).expect("a chat template");
    assert!(template.contains("<|im_start|>"), "{template}");
}
