//! The plan as text for people: the summary and step list `kiln inspect --stage kernels` prints
//! and the lowering filetests snapshot.

use super::{Io, Kernel, Plan, Storage, ValueId};
use crate::ops::Dim;
use std::collections::BTreeMap;
use std::fmt::Write;

impl Kernel {
    /// The kernel a step calls as one word: [`Kernel::name`] without a generated kernel's
    /// symbol (`generated`), so that counts group all generated steps.
    pub fn kind_name(&self) -> String {
        match self {
            Kernel::Generated(_) => "generated".into(),
            k => k.name(),
        }
    }
}

impl Plan {
    /// Steps counted by [`Kernel::kind_name`].
    pub fn kernel_counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for s in &self.steps {
            *m.entry(s.kernel.kind_name()).or_insert(0) += 1;
        }
        m
    }

    /// The arena size as a symbolic expression: the sum over slots of the largest value each
    /// holds (without the 64-byte alignment of each slot).
    pub fn arena_size(&self) -> Dim {
        self.slots.iter().fold(Dim::known(0), |acc, slot| {
            let max = slot.sizes.iter().skip(1).fold(
                slot.sizes.first().cloned().unwrap_or(Dim::known(0)),
                |m, d| m.maximum(d),
            );
            acc.add(&max)
        })
    }

    /// One line per step: `step 3: gemm Packed { .. } bias=true activation=Gelu residual=false
    /// (v4) -> v7    # %7 = matmul_bias`.
    pub fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let detail = match &s.kernel {
                    Kernel::Gemm(g) => format!(
                        " {:?} bias={} activation={:?} residual={}",
                        g.b, g.bias, g.activation, g.residual
                    ),
                    Kernel::Attention(a) => format!(
                        " heads={} kv_heads={} causal={} layouts={:?}",
                        a.heads, a.kv_heads, a.causal, a.layouts
                    ),
                    Kernel::Generated(g) => format!(
                        " {} access={:?}{}",
                        g.symbol,
                        g.access,
                        if g.in_place { " in-place" } else { "" }
                    ),
                    _ => String::new(),
                };
                let ids = |v: &[ValueId]| {
                    v.iter()
                        .map(|x| format!("v{x}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "step {i}: {}{detail} ({}) -> {}    # {}",
                    s.kernel.kind_name(),
                    ids(&s.inputs),
                    ids(&s.outputs),
                    s.origin
                )
            })
            .collect()
    }

    /// Inputs, outputs, kernel counts and the arena; then the steps when `with_steps`.
    pub fn summary_text(&self, with_steps: bool) -> String {
        let io = |list: &[Io]| {
            list.iter()
                .map(|io| match self.values.get(io.value.index()) {
                    Some(v) => format!("{}: {}", io.name, v.ty),
                    None => format!("{}: <value {} out of range>", io.name, io.value),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let counts: Vec<String> = self
            .kernel_counts()
            .into_iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "inputs: {}\noutputs: {}\nkernels: {} steps ({})\n\
             arena: {} slots, {} bytes (+ 64-byte alignment per slot)\n",
            io(&self.inputs),
            io(&self.outputs),
            self.steps.len(),
            counts.join(", "),
            self.slots.len(),
            self.arena_size()
        );
        if with_steps {
            for line in self.step_lines() {
                s.push_str(&line);
                s.push('\n');
            }
        }
        s
    }

    /// One line per value held in the arena or the weights: `v3: f32[batch, 5, 8] slot 1`
    /// (`input slot`, `weight`, `alias of vN`).
    pub fn storage_lines(&self) -> Vec<String> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let at = match v.storage {
                    Storage::Input { slot } => format!("input, slot {slot}"),
                    Storage::Weight { offset, len } => format!("weight @{offset}+{len}"),
                    Storage::Slot(s) => format!("slot {s}"),
                    Storage::Alias(a) => format!("alias of v{a}"),
                };
                format!("v{i}: {} {at}", v.ty)
            })
            .collect()
    }
}
