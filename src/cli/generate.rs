//! `kiln generate MODEL|ARTIFACT --prompt TEXT`: text generation with a causal LM compiled with
//! its key/value cache (a Hugging Face folder or `.gguf` file compiled in memory, or an artifact
//! from `kiln compile --decoder`): the prompt in one prefill run, then one token per decode
//! step, the text streamed to stdout as it becomes final. `--json` ends with one JSON object
//! holding the new ids, the text and the timings.

use anyhow::{bail, Context};
use clap::Args;
use kiln_pipelines::generation::{CausalLm, GenerationConfig, Generator, StopReason};
use kiln_pipelines::{Files, Folder, InMemory, TextTokenizer};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `kiln generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The model: a Hugging Face folder of a causal LM (llama, gpt2), a `.gguf` file, or an
    /// artifact compiled from one with `kiln compile --decoder`.
    pub model: PathBuf,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt as a user message with the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// The most tokens to generate (default: the model's generation_config.json, else 20
    /// tokens of total length as transformers).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_new_tokens: Option<u32>,
    /// Sample with this temperature (0: greedy); greedy when no sampling option is given.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    /// Sample from the K most likely tokens.
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Sample from the smallest set of tokens whose probabilities reach P.
    #[arg(long, value_name = "P")]
    pub top_p: Option<f64>,
    /// Repetition penalty (transformers' semantics; 1 is none).
    #[arg(long, value_name = "R")]
    pub repetition_penalty: Option<f64>,
    /// The random seed of sampling (the same seed gives the same text).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Stop when the text reaches this string (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Keep generating past end-of-sequence tokens, up to the token limit (for benchmarks that
    /// need a fixed number of new tokens).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print one JSON object (ids, text, timings) instead of streaming the text.
    #[arg(long)]
    pub json: bool,
    /// Dequantize a `.gguf` file's Q4_0/Q4_1/Q8_0 matrices to f32 instead of keeping them as
    /// their blocks (ignored for other models).
    #[arg(long)]
    pub dequantize: bool,
    /// Worker threads (default: `KILN_THREADS`, else every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Loads the decoder and the files its settings come from.
fn load(args: &GenerateArgs) -> anyhow::Result<(kiln_runtime::Model, Box<dyn Files>)> {
    let kind = kiln::model_kind(&args.model)?;
    let load = kiln_runtime::LoadOptions {
        threads: args.threads,
        ..Default::default()
    };
    let reporter = super::progress::Reporter::for_stderr();
    let opts = kiln::backend::CompileOptions {
        progress: reporter.as_ref().map(|r| r.pipeline()),
        decoder: true,
        dequantize: args.dequantize,
        ..Default::default()
    };
    let model = kiln::backend::load_runnable(&args.model, &opts, &load)?;
    drop(reporter);
    let label = args.model.display().to_string();
    let files: Box<dyn Files> = match kind {
        kiln::ModelKind::HfFolder => Box::new(Folder::new(&args.model)),
        kiln::ModelKind::Artifact => Box::new(InMemory::from_assets(&model, label)),
        kiln::ModelKind::Gguf => Box::new(InMemory {
            label,
            files: kiln::assets::gguf_assets(&args.model)?
                .into_iter()
                .collect(),
        }),
        kiln::ModelKind::Onnx => {
            let dir = match args.model.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            if !dir.join("tokenizer.json").is_file() {
                bail!(
                    "{label}: an ONNX decoder carries no tokenizer: put its `tokenizer.json` \
                     (and `generation_config.json`) in {}",
                    dir.display()
                );
            }
            Box::new(Folder::new(&dir))
        }
        _ => {
            return Err(kiln::Error::NotADecoder {
                path: args.model.clone(),
            }
            .into())
        }
    };
    Ok((model, files))
}

/// The generation settings: the model's, then the command line's.
fn config(args: &GenerateArgs, files: &dyn Files) -> anyhow::Result<GenerationConfig> {
    let mut o = Map::new();
    let sampling =
        args.temperature.is_some_and(|t| t > 0.0) || args.top_k.is_some() || args.top_p.is_some();
    o.insert("do_sample".into(), json!(sampling));
    if let Some(t) = args.temperature.filter(|&t| t > 0.0) {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(k) = args.top_k {
        o.insert("top_k".into(), json!(k));
    }
    if let Some(p) = args.top_p {
        o.insert("top_p".into(), json!(p));
    }
    if let Some(r) = args.repetition_penalty {
        o.insert("repetition_penalty".into(), json!(r));
    }
    if let Some(n) = args.max_new_tokens {
        o.insert("max_new_tokens".into(), json!(n));
    }
    if let Some(s) = args.seed {
        o.insert("seed".into(), json!(s));
    }
    if !args.stop.is_empty() {
        o.insert("stop_strings".into(), json!(args.stop));
    }
    let mut cfg = GenerationConfig::load(files, &o)?;
    if args.ignore_eos {
        cfg.eos_token_id.clear();
    }
    Ok(cfg)
}

/// The prompt as the model reads it: plain, or rendered with the chat template.
fn prompt_text(args: &GenerateArgs, files: &dyn Files) -> anyhow::Result<String> {
    if !args.chat {
        return Ok(args.prompt.clone());
    }
    let name = "tokenizer_config.json";
    let Some(bytes) = files.read(name)? else {
        bail!("--chat needs the chat template in {}", files.describe(name));
    };
    let cfg: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid JSON", files.describe(name)))?;
    let Some(template) = cfg.get("chat_template").and_then(Value::as_str) else {
        bail!("{} has no `chat_template`", files.describe(name));
    };
    let token = |key: &str| match cfg.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    let mut env = minijinja::Environment::new();
    env.add_template("chat", template)
        .with_context(|| format!("{}: the chat template does not parse", files.describe(name)))?;
    let messages = json!([{ "role": "user", "content": args.prompt }]);
    env.get_template("chat")?
        .render(minijinja::context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => token("bos_token"),
            eos_token => token("eos_token"),
        })
        .with_context(|| format!("{}: rendering the chat template", files.describe(name)))
}

/// Runs `kiln generate`.
pub fn generate(args: &GenerateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (model, files) = load(args)?;
    let cfg = config(args, files.as_ref())?;
    let tokenizer = TextTokenizer::load(files.as_ref(), None)?;
    let text = prompt_text(args, files.as_ref())?;
    let enc = tokenizer
        .inner()
        .encode(text.as_str(), !args.chat)
        .map_err(|e| anyhow::anyhow!("cannot tokenize the prompt: {e}"))?;
    let prompt: Vec<u32> = enc.get_ids().to_vec();
    if prompt.is_empty() {
        bail!("the prompt is empty after tokenization");
    }
    let limit = cfg.new_tokens_limit(prompt.len());
    let mut generator = Generator::new(&cfg, tokenizer.inner(), &prompt)?;
    let mut lm = CausalLm::new(&model, 1, prompt.len() + limit.max(1))?;
    let start = Instant::now();
    let mut row = lm
        .prefill(std::slice::from_ref(&prompt))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the decoder returned no logits"))?;
    let prefill = start.elapsed();
    let mut text = String::new();
    let mut steps = 0usize;
    let decode_start = Instant::now();
    while generator.stopped().is_none() {
        let step = generator.step(&mut row)?;
        if !args.json {
            out.write_all(step.text.as_bytes())?;
            out.flush()?;
        }
        text.push_str(&step.text);
        if step.stop.is_some() {
            break;
        }
        // The step runs in place (no allocation in the model); its logits are copied into
        // the same row buffer for the logits processors.
        lm.step_in_place(&[step.id])?;
        row.clear();
        row.extend_from_slice(lm.logits(0)?);
        steps += 1;
    }
    let decode = decode_start.elapsed();
    let stop = match generator.stopped() {
        Some(StopReason::Eos(_)) => "eos",
        Some(StopReason::MaxNewTokens) => "max_new_tokens",
        Some(StopReason::StopString(_)) => "stop_string",
        None => "none",
    };
    let per_s = if steps > 0 {
        steps as f64 / decode.as_secs_f64().max(1e-9)
    } else {
        0.0
    };
    if args.json {
        let summary = json!({
            "ids": generator.generated(),
            "text": text,
            "prompt_tokens": prompt.len(),
            "new_tokens": generator.generated().len(),
            "stop": stop,
            "prefill_ms": prefill.as_secs_f64() * 1e3,
            "decode_tokens_per_s": per_s,
            "kv_cache_bytes": lm.cache_bytes(),
            "seed": generator.seed(),
        });
        writeln!(out, "{summary}")?;
    } else {
        writeln!(out)?;
    }
    Ok(())
}
