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
    /// Every run's inputs: the constant ones of [`Self::set_input`], and `input_ids`,
    /// `position_ids`, `attention_mask`, kept from step to step and refilled in place: a decode
    /// step allocates nothing.
    inputs: BTreeMap<String, Tensor>,
    /// The sequence length of the last run (its logits are read at each row's last position).
    last_seq: usize,
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
        let mut session = model.session();
        // Size the arena for the last decode step, so that no step grows it. A model whose
        // shapes need other symbols (an ONNX export) sizes it at its first runs instead.
        all.extend([("seq", 1), ("past", capacity as i64 - 1)]);
        let _ = session.reserve(&all);
        let empty = || Tensor::from_i64(vec![batch, 0], Vec::with_capacity(batch * capacity));
        let mut inputs = BTreeMap::new();
        for name in ["input_ids", "position_ids", "attention_mask"] {
            inputs.insert(
                name.to_string(),
                empty().map_err(|e| option(e.to_string()))?,
            );
        }
        Ok(CausalLm {
            model,
            session,
            state,
            batch,
            capacity,
            mask: (0..batch).map(|_| Vec::with_capacity(capacity)).collect(),
            next_pos: vec![0; batch],
            inputs,
            last_seq: 0,
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
        let mut new_mask = Vec::with_capacity(self.batch * len);
        for (r, p) in prompts.iter().enumerate() {
            let pad = len - p.len();
            // transformers: position_ids = cumsum(mask) - 1, and 1 where the mask is 0.
            pos.extend(std::iter::repeat_n(1i64, pad));
            pos.extend(0..p.len() as i64);
            new_mask.extend(std::iter::repeat_n(0i64, pad));
            new_mask.extend(std::iter::repeat_n(1i64, p.len()));
            ids.extend(std::iter::repeat_n(0i64, pad));
            ids.extend(p.iter().map(|&t| i64::from(t)));
            self.next_pos[r] = p.len() as i64;
        }
        self.run(&ids, &pos, &new_mask, len)?;
        self.rows()
    }

    /// Feeds one token per row (the tokens chosen from the last logits) and returns the next
    /// logits of every row. A full cache is an error saying so; the cache is unchanged then.
    pub fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, Error> {
        self.step_in_place(tokens)?;
        self.rows()
    }

    /// [`Self::step`] without copying the logits out: read them with [`Self::logits`]. Once
    /// the cache holds a token, a step allocates nothing (the inputs are refilled in place and
    /// the session's arena was sized for the last step when the decoder was made).
    pub fn step_in_place(&mut self, tokens: &[u32]) -> Result<(), Error> {
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
        let (batch, past) = (self.batch, self.past());
        if past + 1 > self.capacity {
            return Err(self.full(1));
        }
        let fill = |inputs: &mut BTreeMap<String, Tensor>,
                    name: &str,
                    f: &mut dyn FnMut(&mut Vec<i64>)| {
            inputs
                .get_mut(name)
                .ok_or_else(|| option(format!("no input `{name}`")))?
                .refill_i64(&[batch, 1], f)
                .map_err(|e| option(e.to_string()))
        };
        fill(&mut self.inputs, "input_ids", &mut |v| {
            v.extend(tokens.iter().map(|&t| i64::from(t)))
        })?;
        let next = &self.next_pos;
        fill(&mut self.inputs, "position_ids", &mut |v| {
            v.extend_from_slice(next)
        })?;
        let mask = &self.mask;
        self.inputs
            .get_mut("attention_mask")
            .ok_or_else(|| option("no input `attention_mask`".into()))?
            .refill_i64(&[batch, past + 1], |v| {
                for row in mask {
                    v.extend_from_slice(row);
                    v.push(1);
                }
            })
            .map_err(|e| option(e.to_string()))?;
        self.execute(1)?;
        for row in &mut self.mask {
            row.push(1);
        }
        for p in &mut self.next_pos {
            *p += 1;
        }
        Ok(())
    }

    fn full(&self, seq: usize) -> Error {
        option(format!(
            "the key/value cache is full: {} positions are cached and {seq} more do not fit its \
             capacity of {}",
            self.past(),
            self.capacity
        ))
    }

    /// Runs `seq` new positions per row: ids, positions and their mask (`[batch, seq]` each).
    fn run(&mut self, ids: &[i64], pos: &[i64], new_mask: &[i64], seq: usize) -> Result<(), Error> {
        let (batch, past) = (self.batch, self.past());
        if past + seq > self.capacity {
            return Err(self.full(seq));
        }
        let set = |t: Option<&mut Tensor>, shape: &[usize], src: &mut dyn FnMut(&mut Vec<i64>)| {
            t.ok_or_else(|| option("a decoder input is missing".into()))?
                .refill_i64(shape, src)
                .map_err(|e| option(e.to_string()))
        };
        set(self.inputs.get_mut("input_ids"), &[batch, seq], &mut |v| {
            v.extend_from_slice(ids)
        })?;
        set(
            self.inputs.get_mut("position_ids"),
            &[batch, seq],
            &mut |v| v.extend_from_slice(pos),
        )?;
        let mask = &self.mask;
        set(
            self.inputs.get_mut("attention_mask"),
            &[batch, past + seq],
            &mut |v| {
                for (row, new) in mask.iter().zip(new_mask.chunks(seq.max(1))) {
                    v.extend_from_slice(row);
                    v.extend_from_slice(new);
                }
            },
        )?;
        self.execute(seq)?;
        for (row, new) in self.mask.iter_mut().zip(new_mask.chunks(seq.max(1))) {
            row.extend_from_slice(new);
        }
        Ok(())
    }

    fn execute(&mut self, seq: usize) -> Result<(), Error> {
        self.session
            .run_in_place(&self.inputs, Some(&mut self.state))
            .map_err(run_err)?;
        self.last_seq = seq;
        Ok(())
    }

    /// Row `row`'s logits at its last position of the last run (prefill or step).
    pub fn logits(&self, row: usize) -> Result<&[f32], Error> {
        let (shape, v) = self.session.output_f32("logits").map_err(run_err)?;
        let vocab = shape.last().copied().unwrap_or(0);
        // One row per sequence (Kiln's decoders), or every position of every sequence (ONNX
        // exports): each sequence's last row is the one decoding reads.
        let rows = if v.len() == self.batch * vocab {
            1
        } else if v.len() == self.batch * self.last_seq * vocab {
            self.last_seq
        } else {
            return Err(option(format!(
                "the decoder's logits are {shape:?}, expected one row per sequence"
            )));
        };
        if row >= self.batch {
            return Err(option(format!("row {row} of a batch of {}", self.batch)));
        }
        let end = (row + 1) * rows * vocab;
        Ok(&v[end - vocab..end])
    }

    /// Every row's logits of the last run, copied.
    fn rows(&self) -> Result<Vec<Vec<f32>>, Error> {
        (0..self.batch)
            .map(|r| self.logits(r).map(<[f32]>::to_vec))
            .collect()
    }

    /// The model this decoder runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }
}
