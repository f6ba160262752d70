//! [`CausalLm`]: a compiled decoder with a key/value cache (a plan with states, as
//! `kiln_frontends::hf::decoder` builds it) driven one step at a time: the prompt of every row
//! in one prefill run, then one token per row per decode step, each run reading and writing the
//! cache in place. Rows of different lengths are left-padded exactly as transformers'
//! `generate` does it: pads are masked out of attention and positions count real tokens only
//! (`cumsum(mask) - 1`), so each row's logits equal those of the row run alone.
//!
//! An encoder-decoder's decoder takes more than the three decoder inputs: [`CausalLm::set_input`]
//! gives it constant ones (the source's `encoder_attention_mask`), kept for every run without
//! a copy per step, and [`CausalLm::with_symbols`] sizes states over other symbols (the
//! cross-attention keys' `source`).

use crate::Error;
use kiln_runtime::{Model, Session, State, Tensor};
use std::collections::BTreeMap;

/// One batch of sequences being decoded.
#[derive(Debug)]
pub struct CausalLm<'m> {
    model: &'m Model,
    session: Session<'m>,
    state: State,
    batch: usize,
    capacity: usize,
    /// Per row: the attention mask of every cached position (0 for left padding).
    mask: Vec<Vec<i64>>,
    /// Per row: the position id of the next token.
    next_pos: Vec<i64>,
    /// Every run's inputs: the constant ones of [`Self::set_input`], and the three decoder
    /// inputs, replaced per run.
    inputs: BTreeMap<String, Tensor>,
}

fn option(message: String) -> Error {
    Error::Option { message }
}

fn run_err(source: kiln_runtime::Error) -> Error {
    Error::Run { source }
}

impl<'m> CausalLm<'m> {
    /// A decoder over `model` for `batch` rows and a cache of `capacity` positions (prompt plus
    /// new tokens). The model must keep its cache as states and take `input_ids`,
    /// `position_ids` and `attention_mask`.
    pub fn new(model: &'m Model, batch: usize, capacity: usize) -> Result<CausalLm<'m>, Error> {
        Self::with_symbols(model, batch, capacity, &[])
    }

    /// [`Self::new`] for a model whose states have dims over more symbols than `batch` and
    /// `capacity` (such as the `source` length of cross-attention keys): `symbols` gives them.
    pub fn with_symbols(
        model: &'m Model,
        batch: usize,
        capacity: usize,
        symbols: &[(&str, i64)],
    ) -> Result<CausalLm<'m>, Error> {
        let plan = model.plan();
        if plan.states.is_empty() {
            return Err(option(
                "this model has no key/value cache (compile it for text generation)".into(),
            ));
        }
        for want in ["input_ids", "position_ids", "attention_mask"] {
            if !plan.inputs.iter().any(|io| io.name == want) {
                return Err(option(format!(
                    "this decoder has no input `{want}` (its inputs are {})",
                    plan.inputs
                        .iter()
                        .map(|io| format!("`{}`", io.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if batch == 0 || capacity == 0 {
            return Err(option(
                "the batch and the cache capacity must be positive".into(),
            ));
        }
        let mut all = vec![("batch", batch as i64), ("capacity", capacity as i64)];
        all.extend_from_slice(symbols);
        let state = model.new_state(&all).map_err(run_err)?;
        Ok(CausalLm {
            model,
            session: model.session(),
            state,
            batch,
            capacity,
            mask: vec![Vec::new(); batch],
            next_pos: vec![0; batch],
            inputs: BTreeMap::new(),
        })
    }

    /// Gives every following run the input `name` (a constant input beside the three decoder
    /// inputs, such as an encoder-decoder's `encoder_attention_mask`); [`Self::reset`] keeps it.
    pub fn set_input(&mut self, name: &str, t: Tensor) -> Result<(), Error> {
        if ["input_ids", "position_ids", "attention_mask"].contains(&name) {
            return Err(option(format!(
                "`{name}` is set by every run, not a constant input"
            )));
        }
        if !self.model.plan().inputs.iter().any(|io| io.name == name) {
            return Err(option(format!("this decoder has no input `{name}`")));
        }
        self.inputs.insert(name.to_string(), t);
        Ok(())
    }

    /// Positions cached so far (the same for every row: left padding included).
    pub fn past(&self) -> usize {
        self.mask.first().map_or(0, Vec::len)
    }

    /// The rows decoded together.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The cache capacity in positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The bytes the key/value cache takes.
    pub fn cache_bytes(&self) -> usize {
        self.state.bytes()
    }

    /// Fills state `name` with `t` — a state no step writes, such as a Whisper decoder's
    /// cross-attention keys and values computed once by its encoder. [`Self::reset`] keeps it.
    pub fn write_state(&mut self, name: &str, t: &Tensor) -> Result<(), Error> {
        self.state
            .write(self.model.plan(), name, t)
            .map_err(run_err)
    }

    /// Starts over with an empty cache (the buffers are kept).
    pub fn reset(&mut self) {
        self.mask.iter_mut().for_each(Vec::clear);
        self.next_pos.iter_mut().for_each(|p| *p = 0);
    }

    /// Runs the prompts (one per row, any lengths ≥ 1, left-padded to the longest) into an
    /// empty cache; returns each row's logits at its last prompt token.
    pub fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, Error> {
        if prompts.len() != self.batch {
            return Err(option(format!(
                "{} prompts for a decoder made for a batch of {}",
                prompts.len(),
                self.batch
            )));
        }
        if let Some(i) = prompts.iter().position(Vec::is_empty) {
            return Err(Error::EmptyInput { input: i });
        }
        self.reset();
        let len = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(self.batch * len);
        let mut pos = Vec::with_capacity(self.batch * len);
        let mut new_mask = Vec::with_capacity(self.batch);
        for (r, p) in prompts.iter().enumerate() {
            let pad = len - p.len();
            let mut m = vec![0i64; pad];
            m.resize(len, 1);
            // transformers: position_ids = cumsum(mask) - 1, and 1 where the mask is 0.
            let mut count = 0i64;
            for &mi in &m {
                count += mi;
                pos.push(if mi == 0 { 1 } else { count - 1 });
            }
            ids.extend(std::iter::repeat_n(0i64, pad));
            ids.extend(p.iter().map(|&t| i64::from(t)));
            self.next_pos[r] = count;
            new_mask.push(m);
        }
        self.run(ids, pos, new_mask, len)
    }

    /// Feeds one token per row (the tokens chosen from the last logits) and returns the next
    /// logits of every row. A full cache is an error saying so; the cache is unchanged then.
    pub fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, Error> {
        if tokens.len() != self.batch {
            return Err(option(format!(
                "{} tokens for a batch of {}",
                tokens.len(),
                self.batch
            )));
        }
        if self.past() == 0 {
            return Err(option("decode step before the prompt was run".into()));
        }
        let ids = tokens.iter().map(|&t| i64::from(t)).collect();
        let pos = self.next_pos.clone();
        for p in &mut self.next_pos {
            *p += 1;
        }
        self.run(ids, pos, vec![vec![1]; self.batch], 1)
    }

    fn run(
        &mut self,
        ids: Vec<i64>,
        pos: Vec<i64>,
        new_mask: Vec<Vec<i64>>,
        seq: usize,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let past = self.past();
        if past + seq > self.capacity {
            return Err(option(format!(
                "the key/value cache is full: {past} positions are cached and {seq} more do not \
                 fit its capacity of {}",
                self.capacity
            )));
        }
        let total = past + seq;
        let mut mask = Vec::with_capacity(self.batch * total);
        for (row, new) in self.mask.iter().zip(&new_mask) {
            mask.extend_from_slice(row);
            mask.extend_from_slice(new);
        }
        let t = |shape: Vec<usize>, v: Vec<i64>| {
            Tensor::from_i64(shape, v).map_err(|e| option(e.to_string()))
        };
        for (name, value) in [
            ("input_ids", t(vec![self.batch, seq], ids)?),
            ("position_ids", t(vec![self.batch, seq], pos)?),
            ("attention_mask", t(vec![self.batch, total], mask)?),
        ] {
            self.inputs.insert(name.to_string(), value);
        }
        let outs = self
            .session
            .run_with_state(&self.inputs, &mut self.state)
            .map_err(run_err)?;
        for (row, new) in self.mask.iter_mut().zip(new_mask) {
            row.extend(new);
        }
        let logits = outs
            .into_iter()
            .find(|(n, _)| n == "logits")
            .map(|(_, t)| t)
            .ok_or_else(|| option("the decoder has no `logits` output".into()))?;
        let vocab = logits.shape().last().copied().unwrap_or(0);
        // One row per sequence (Kiln's decoders), or every position of every sequence (ONNX
        // exports): each sequence's last row is the one decoding reads.
        let rows = if logits.len() == self.batch * vocab {
            1
        } else if logits.len() == self.batch * seq * vocab {
            seq
        } else {
            return Err(option(format!(
                "the decoder's logits are {:?}, expected one row per sequence",
                logits.shape()
            )));
        };
        let kiln_runtime::TensorData::F32(v) = logits.into_data() else {
            return Err(option("the decoder's logits are not f32".into()));
        };
        Ok(v.chunks(rows * vocab.max(1))
            .map(|r| r[r.len() - vocab..].to_vec())
            .collect())
    }

    /// The model this decoder runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }
}
