//! `kiln pipeline TASK MODEL|ARTIFACT INPUT…`: a Hugging Face task run end to end on a compiled
//! model ([`kiln_pipelines`]). A folder is compiled in memory and its settings read from it; an
//! artifact carries the settings it was compiled with. Results print as a table, or with
//! `--json` as transformers' `pipeline(task)` returns them.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use kiln_pipelines::tasks::{Aggregation, Answers, Entity, Features, ImageInput, Label, QaOptions};
use kiln_pipelines::{Files, Folder, InMemory, Inputs, Options, Pipeline, Results, Task};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Arguments of `kiln pipeline`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The task: feature-extraction, sentence-embeddings, fill-mask, text-classification,
    /// token-classification, question-answering or image-classification.
    #[arg(value_parser = task)]
    pub task: Task,
    /// The model: a Hugging Face folder (compiled in memory) or a `.kiln` artifact compiled
    /// from one.
    pub model: PathBuf,
    /// The inputs: texts, contexts (question-answering) or image files (image-classification).
    /// `@FILE` reads one input per line of FILE; `-`, or no input at all, reads standard input,
    /// one per line (empty lines are skipped).
    pub inputs: Vec<String>,
    /// Results per input (fill-mask and image-classification: 5; question-answering: 1;
    /// text-classification: the best label alone unless given).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub top_k: Option<u32>,
    /// Print the results as JSON, shaped as transformers' pipeline returns them.
    #[arg(long)]
    pub json: bool,
    /// Sequences (or images) per model run; inputs are sorted by length first.
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// question-answering: the question.
    #[arg(long, value_name = "Q")]
    pub question: Option<String>,
    /// question-answering: a file whose whole text is one more context.
    #[arg(long, value_name = "FILE")]
    pub context_file: Option<PathBuf>,
    /// token-classification: how word pieces are grouped into entities.
    #[arg(long, value_enum, default_value_t = AggregationArg::Simple)]
    pub aggregation: AggregationArg,
    /// question-answering: window length in tokens (default: the model's, at most 384).
    #[arg(long, value_name = "N")]
    pub max_seq_len: Option<usize>,
    /// question-answering: overlap of consecutive windows in tokens (default: min(max_seq_len/2, 128)).
    #[arg(long, value_name = "N")]
    pub doc_stride: Option<usize>,
    /// question-answering: the longest answer in tokens.
    #[arg(long, value_name = "N", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_answer_len: u32,
    /// question-answering: also offer the empty answer (scored by the CLS token).
    #[arg(long)]
    pub handle_impossible_answer: bool,
    /// Worker threads of the model (default: `KILN_THREADS`, else every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Token classification's `aggregation_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AggregationArg {
    /// One result per token.
    None,
    /// Adjacent tokens of one entity type grouped.
    Simple,
    /// Words labelled by their first piece.
    First,
    /// Words labelled by the mean of their pieces' scores.
    Average,
    /// Words labelled by their best piece.
    Max,
}

/// Parses the task name; an unknown one lists the tasks.
fn task(name: &str) -> Result<Task, String> {
    Task::parse(name).map_err(|e| e.to_string())
}

/// The inputs: arguments, `@FILE` lines, or standard input lines (for `-` or no argument).
fn read_inputs(args: &[String], allow_none: bool) -> anyhow::Result<(Vec<String>, bool)> {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    if args.is_empty() && allow_none {
        return Ok((Vec::new(), false));
    }
    let stdin = || -> anyhow::Result<Vec<String>> {
        let mut v = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.context("cannot read standard input")?;
            if !line.is_empty() {
                v.push(line);
            }
        }
        Ok(v)
    };
    if args.is_empty() {
        return Ok((stdin()?, false));
    }
    let single = args.len() == 1 && args[0] != "-" && !args[0].starts_with('@');
    let mut out = Vec::new();
    for a in args {
        if a == "-" {
            out.extend(stdin()?);
        } else if let Some(file) = a.strip_prefix('@') {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("{file}: cannot read the inputs"))?;
            out.extend(lines(&text));
        } else {
            out.push(a.clone());
        }
    }
    Ok((out, single))
}

/// Loads the model and the files its settings come from.
fn load(args: &PipelineArgs) -> anyhow::Result<(kiln_runtime::Model, Box<dyn Files>)> {
    let kind = kiln::model_kind(&args.model)?;
    let load = kiln_runtime::LoadOptions {
        threads: args.threads,
        ..Default::default()
    };
    let reporter = super::progress::Reporter::for_stderr();
    let opts = kiln::backend::CompileOptions {
        progress: reporter.as_ref().map(|r| r.pipeline()),
        ..Default::default()
    };
    let model = kiln::backend::load_runnable(&args.model, &opts, &load)?;
    let files: Box<dyn Files> = match kind {
        kiln::ModelKind::HfFolder => Box::new(Folder::new(&args.model)),
        kiln::ModelKind::Artifact => Box::new(InMemory::from_assets(
            &model,
            args.model.display().to_string(),
        )),
        _ => bail!(
            "{}: pipelines run Hugging Face folders and artifacts compiled from them (they \
             carry the tokenizer and config), not this kind of model",
            args.model.display()
        ),
    };
    Ok((model, files))
}

/// Runs `kiln pipeline`.
pub fn pipeline(args: &PipelineArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let task = args.task;
    if args.top_k.is_some()
        && matches!(
            task,
            Task::TokenClassification | Task::FeatureExtraction | Task::SentenceEmbeddings
        )
    {
        bail!("--top-k does not apply to {task}");
    }
    let qa = task == Task::QuestionAnswering;
    if !qa && (args.question.is_some() || args.context_file.is_some()) {
        bail!("--question and --context-file are for question-answering, not {task}");
    }
    let (mut inputs, mut single) = read_inputs(&args.inputs, qa && args.context_file.is_some())?;
    let question = match (&args.question, qa) {
        (Some(q), _) => q.clone(),
        (None, true) => bail!("question-answering needs a question: --question Q"),
        (None, false) => String::new(),
    };
    if let Some(file) = &args.context_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}: cannot read the context", file.display()))?;
        single = inputs.is_empty();
        inputs.push(text);
    }
    if inputs.is_empty() {
        bail!("no inputs: give them as arguments, `@FILE` or lines on standard input");
    }
    let (model, files) = load(args)?;
    let p = Pipeline::new(task, model, files.as_ref())?;
    let opts = Options {
        top_k: args.top_k.map(|k| k as usize),
        batch_size: args.batch_size as usize,
        aggregation: match args.aggregation {
            AggregationArg::None => Aggregation::None,
            AggregationArg::Simple => Aggregation::Simple,
            AggregationArg::First => Aggregation::First,
            AggregationArg::Average => Aggregation::Average,
            AggregationArg::Max => Aggregation::Max,
        },
        qa: QaOptions {
            max_seq_len: args.max_seq_len,
            doc_stride: args.doc_stride,
            max_answer_len: args.max_answer_len as usize,
            handle_impossible_answer: args.handle_impossible_answer,
            ..QaOptions::default()
        },
        ..Options::default()
    };
    let images: Vec<(String, Vec<u8>)> = if task == Task::ImageClassification {
        inputs
            .iter()
            .map(|f| {
                Ok((
                    f.clone(),
                    std::fs::read(f).with_context(|| format!("{f}: cannot read the image"))?,
                ))
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        Vec::new()
    };
    let image_inputs: Vec<ImageInput> = images
        .iter()
        .map(|(name, bytes)| ImageInput { name, bytes })
        .collect();
    let run_inputs = match task {
        Task::QuestionAnswering => Inputs::Question {
            question: &question,
            contexts: &inputs,
        },
        Task::ImageClassification => Inputs::Images(&image_inputs),
        _ => Inputs::Texts(&inputs),
    };
    let outcome = p.run(&run_inputs, &opts)?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    let text = if args.json {
        let mut s = serde_json::to_string(&outcome.results.json(single))
            .context("cannot encode the results")?;
        s.push('\n');
        s
    } else {
        table(&outcome.results, &inputs)
    };
    out.write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    Ok(())
}

/// The first characters of an input, on one line.
fn short(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

fn labels_table(s: &mut String, labels: &[Label]) {
    for l in labels {
        s.push_str(&format!("  {:.4}  {}\n", l.score, l.label));
    }
}

/// The results as a table for people.
fn table(results: &Results, inputs: &[String]) -> String {
    let mut s = String::new();
    let head =
        |s: &mut String, i: usize| s.push_str(&format!("input {}: {}\n", i + 1, short(&inputs[i])));
    match results {
        Results::Features(v) => {
            for (i, f) in v.iter().enumerate() {
                head(&mut s, i);
                let (what, first): (String, &[f32]) = match f {
                    Features::Pooled(e) => (format!("embedding of {} values", e.len()), e),
                    Features::Tokens(t) => (
                        format!(
                            "{} tokens × {} values",
                            t.len(),
                            t.first().map_or(0, Vec::len)
                        ),
                        t.first().map_or(&[][..], Vec::as_slice),
                    ),
                };
                let shown: Vec<String> = first.iter().take(6).map(|x| format!("{x:.4}")).collect();
                s.push_str(&format!("  {what}: [{}, …]\n", shown.join(", ")));
            }
        }
        Results::FillMask(v) => {
            for (i, r) in v.iter().enumerate() {
                head(&mut s, i);
                for (m, preds) in r.masks.iter().enumerate() {
                    if r.masks.len() > 1 {
                        s.push_str(&format!(" mask {}:\n", m + 1));
                    }
                    for p in preds {
                        s.push_str(&format!(
                            "  {:.4}  {:<12}  {}\n",
                            p.score, p.token_str, p.sequence
                        ));
                    }
                }
            }
        }
        Results::Labels(v) => {
            for (i, l) in v.iter().enumerate() {
                head(&mut s, i);
                labels_table(&mut s, &l.labels);
            }
        }
        Results::ImageLabels(v) => {
            for (i, l) in v.iter().enumerate() {
                head(&mut s, i);
                labels_table(&mut s, l);
            }
        }
        Results::Entities(v) => {
            for (i, entities) in v.iter().enumerate() {
                head(&mut s, i);
                if entities.is_empty() {
                    s.push_str("  (no entities)\n");
                }
                for e in entities {
                    let (label, score, word, start, end) = match e {
                        Entity::Token {
                            entity,
                            score,
                            word,
                            start,
                            end,
                            ..
                        } => (entity, score, word, start, end),
                        Entity::Group {
                            entity_group,
                            score,
                            word,
                            start,
                            end,
                        } => (entity_group, score, word, start, end),
                    };
                    s.push_str(&format!(
                        "  {score:.4}  {label:<8}  {start}..{end}  {word}\n"
                    ));
                }
            }
        }
        Results::Answers(v) => {
            for (i, Answers { answers }) in v.iter().enumerate() {
                head(&mut s, i);
                for a in answers {
                    s.push_str(&format!(
                        "  {:.4}  {}..{}  {}\n",
                        a.score, a.start, a.end, a.answer
                    ));
                }
            }
        }
    }
    s
}
