//! `question-answering`: the answer to a question in each context, as transformers'
//! `QuestionAnsweringPipeline` finds it: question and context tokenized as a pair with
//! `truncation="only_second"`, contexts longer than `max_seq_len` split into windows overlapping
//! by `doc_stride` tokens, the best spans of every window widened to whole words, the scores of
//! spans giving the same answer added up, and the answers of all windows ranked together (the
//! `QuestionAnsweringPipeline` of transformers 4.57; transformers 5 has none).

use super::qa_spans::select_starts_ends;
use crate::batch::TextModel;
use crate::batch::{require_outputs, Sequence};
use crate::files::Files;
use crate::tokenize::char_slice;
use crate::{Error, Run};
use kiln_runtime::Model;
use serde::{Serialize, Serializer};
use tokenizers::{Encoding, TruncationStrategy};

/// transformers' question-answering parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QaOptions {
    /// How many answers per context (default 1).
    pub top_k: usize,
    /// Window length in tokens, question and special tokens included (default: the model's
    /// longest input, at most 384).
    pub max_seq_len: Option<usize>,
    /// Tokens of overlap between windows (default: `min(max_seq_len / 2, 128)`).
    pub doc_stride: Option<usize>,
    /// The longest answer in tokens (default 15).
    pub max_answer_len: usize,
    /// Also offer the empty answer, scored by the CLS token (default off).
    pub handle_impossible_answer: bool,
    /// Widen answers to whole words (default on).
    pub align_to_words: bool,
}

impl Default for QaOptions {
    fn default() -> Self {
        QaOptions {
            top_k: 1,
            max_seq_len: None,
            doc_stride: None,
            max_answer_len: 15,
            handle_impossible_answer: false,
            align_to_words: true,
        }
    }
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// `p(start) · p(end)`.
    pub score: f64,
    /// First character of the answer in the context.
    pub start: usize,
    /// One past its last character.
    pub end: usize,
    /// The answer: `context[start..end]` in characters.
    pub answer: String,
}

/// The answers for one context, best first. Serialized as transformers returns them: the answer
/// alone when there is one, else the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    /// The answers, best first.
    pub answers: Vec<Answer>,
}

impl Serialize for Answers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.answers.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

/// One window of one context.
struct Window {
    context: usize,
    encoding: Encoding,
    desired: Vec<bool>,
}

/// The question-answering pipeline.
#[derive(Debug)]
pub struct QuestionAnswering {
    text: TextModel,
}

impl QuestionAnswering {
    /// The pipeline over `model` (which must have `start_logits` and `end_logits` outputs) with
    /// the settings in `files`.
    pub fn new(model: Model, files: &dyn Files) -> Result<QuestionAnswering, Error> {
        require_outputs(
            &model,
            "question-answering",
            &["start_logits", "end_logits"],
        )?;
        Ok(QuestionAnswering {
            text: TextModel::new(model, files, "question-answering")?,
        })
    }

    /// The answers to `question` in each context.
    pub fn run(
        &self,
        question: &str,
        contexts: &[String],
        opts: &QaOptions,
        batch_size: usize,
    ) -> Result<Run<Answers>, Error> {
        if question.trim().is_empty() {
            return Err(Error::EmptyQuestion);
        }
        if let Some(i) = contexts.iter().position(|c| c.trim().is_empty()) {
            return Err(Error::EmptyInput { input: i });
        }
        let tok = &self.text.tokenizer;
        let max_seq_len = opts
            .max_seq_len
            .unwrap_or(tok.max_len.unwrap_or(384).min(384));
        let doc_stride = opts.doc_stride.unwrap_or((max_seq_len / 2).min(128));
        if doc_stride >= max_seq_len {
            return Err(Error::Option {
                message: format!(
                    "doc_stride ({doc_stride}) must be less than max_seq_len ({max_seq_len})"
                ),
            });
        }
        if let Some(limit) = tok.max_len.filter(|&l| max_seq_len > l) {
            return Err(Error::Option {
                message: format!(
                    "max_seq_len ({max_seq_len}) is longer than the model's longest input ({limit})"
                ),
            });
        }
        let question_first = !tok.pads_left;
        let windows = self.windows(question, contexts, question_first, max_seq_len, doc_stride)?;
        let seqs: Vec<Sequence> = windows
            .iter()
            .map(|w| Sequence::from(&w.encoding))
            .collect();
        let selected = self.text.run(&seqs, batch_size, |i, out, row| {
            let (start, _) = out.row("start_logits", row)?;
            let (end, _) = out.row("end_logits", row)?;
            let len = seqs[i].ids.len();
            if start.len() < len || end.len() < len {
                return Err(Error::OutputShape {
                    output: "start_logits".into(),
                    shape: vec![start.len()],
                    expected: format!("[batch, tokens] with at least {len} tokens"),
                });
            }
            // 4.57 keeps 2·top_k + 10 spans per window when widening answers to words, so
            // that spans widening to the same words can add up.
            let pre_top_k = if opts.align_to_words {
                opts.top_k.saturating_mul(2).saturating_add(10)
            } else {
                opts.top_k
            };
            Ok(select_starts_ends(
                &start[..len],
                &end[..len],
                &windows[i].desired,
                1e6,
                pre_top_k,
                opts.handle_impossible_answer,
                opts.max_answer_len,
            ))
        })?;
        let sequence_index = usize::from(question_first);
        let mut results = Vec::with_capacity(contexts.len());
        for (c, context) in contexts.iter().enumerate() {
            let mut answers = Vec::new();
            let mut min_null = 1e6f64;
            for (w, sel) in windows
                .iter()
                .zip(&selected)
                .filter(|(w, _)| w.context == c)
            {
                min_null = min_null.min(sel.min_null_score);
                for span in &sel.spans {
                    let (start, end) = char_span(
                        &w.encoding,
                        span.start,
                        span.end,
                        sequence_index,
                        opts.align_to_words,
                    );
                    let text = char_slice(context, start, end);
                    // An answer already found (same text, any case; in this window or an
                    // earlier one) gains the span's score, as in transformers 4.57.
                    let lower = text.to_lowercase();
                    match answers
                        .iter_mut()
                        .find(|a: &&mut Answer| a.answer.to_lowercase() == lower)
                    {
                        Some(found) => found.score += span.score,
                        None => answers.push(Answer {
                            score: span.score,
                            start,
                            end,
                            answer: text.to_string(),
                        }),
                    }
                }
            }
            if !opts.handle_impossible_answer
                && answers
                    .iter()
                    .all(|a| a.answer.is_empty() && a.score == 0.0)
            {
                return Err(Error::NoAnswer { input: c });
            }
            if opts.handle_impossible_answer {
                answers.push(Answer {
                    score: min_null,
                    start: 0,
                    end: 0,
                    answer: String::new(),
                });
            }
            // Python's sort is stable: equal scores keep window order.
            answers.sort_by(|a, b| b.score.total_cmp(&a.score));
            answers.truncate(opts.top_k);
            results.push(Answers { answers });
        }
        Ok(Run {
            results,
            notes: Vec::new(),
        })
    }

    /// Every window of every context, with the tokens that may be in an answer.
    fn windows(
        &self,
        question: &str,
        contexts: &[String],
        question_first: bool,
        max_seq_len: usize,
        doc_stride: usize,
    ) -> Result<Vec<Window>, Error> {
        let tok = &self.text.tokenizer;
        let strategy = if question_first {
            TruncationStrategy::OnlySecond
        } else {
            TruncationStrategy::OnlyFirst
        };
        let cutter = tok.truncating(max_seq_len, doc_stride, strategy)?;
        let plain = tok.inner();
        let tokenize_err = |e: tokenizers::Error| Error::Tokenize {
            message: e.to_string(),
        };
        // The room a window leaves for the context; the tokenizer panics when the stride does
        // not fit in it, so that is refused first.
        let question_len = plain
            .encode_char_offsets(question, false)
            .map_err(tokenize_err)?
            .len();
        let added = plain
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, true));
        let room = max_seq_len.saturating_sub(question_len + added);
        let mut windows = Vec::new();
        for (c, context) in contexts.iter().enumerate() {
            let context_len = plain
                .encode_char_offsets(context.as_str(), false)
                .map_err(tokenize_err)?
                .len();
            if context_len > room && doc_stride >= room {
                return Err(Error::QuestionTooLong {
                    tokens: question_len,
                    room,
                    max_seq_len,
                    doc_stride,
                });
            }
            let pair = if question_first {
                (question, context.as_str())
            } else {
                (context.as_str(), question)
            };
            let mut first = cutter
                .encode_char_offsets(pair, true)
                .map_err(tokenize_err)?;
            let rest = first.take_overflowing();
            for encoding in std::iter::once(first).chain(rest) {
                let ids = encoding.get_ids();
                // p_mask: only context tokens (and the CLS token) may be in an answer.
                let desired = encoding
                    .get_sequence_ids()
                    .iter()
                    .enumerate()
                    .map(|(t, seq)| {
                        let context_token = !question_first || *seq == Some(1);
                        context_token || Some(ids[t]) == tok.cls_id
                    })
                    .collect();
                windows.push(Window {
                    context: c,
                    encoding,
                    desired,
                });
            }
        }
        Ok(windows)
    }
}

/// transformers' `get_indices`: the characters from the first word of token `s` to the last word
/// of token `e` (or the tokens' own offsets when they belong to no word).
fn char_span(
    enc: &Encoding,
    s: usize,
    e: usize,
    sequence_index: usize,
    align: bool,
) -> (usize, usize) {
    let offsets = |t: usize| enc.get_offsets().get(t).copied().unwrap_or((0, 0));
    if align {
        let word = |t| enc.token_to_word(t).map(|(_, w)| w);
        if let (Some(sw), Some(ew)) = (word(s), word(e)) {
            if let (Some(a), Some(b)) = (
                enc.word_to_chars(sw, sequence_index),
                enc.word_to_chars(ew, sequence_index),
            ) {
                return (a.0, b.1);
            }
        }
    }
    (offsets(s).0, offsets(e).1)
}
