//! The plan as text for people: the summary and step list `kiln inspect --stage kernels` prints
//! and the lowering filetests snapshot.

use super::{
    Access, Activation, GemmB, GemmStep, Io, Kernel, Layout as AttnLayout, Plan, Storage, ValueId,
};
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

/// A step's kernel parameters in words (`k=8 n=16 packed@704+1024 +bias gelu_erf`).
fn kernel_detail(k: &Kernel) -> String {
    let flag = |on: bool, word: &str| {
        if on {
            format!(" {word}")
        } else {
            String::new()
        }
    };
    let act = |a: Activation| match a {
        Activation::None => String::new(),
        Activation::Relu => " relu".into(),
        Activation::GeluErf => " gelu_erf".into(),
        Activation::GeluTanh => " gelu_tanh".into(),
    };
    let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    match k {
        Kernel::Gemm(g) => {
            let b = match g.b {
                GemmB::Packed { offset, len, k, n } => {
                    format!(" k={k} n={n} packed@{offset}+{len}")
                }
                GemmB::Blocks {
                    offset,
                    len,
                    k,
                    n,
                    format,
                } => format!(" k={k} n={n} {}@{offset}+{len}", format.name()),
                GemmB::Value { trans } => format!(" b=value{}", flag(trans, "transposed")),
            };
            format!(
                "{b}{}{}{}",
                flag(g.bias, "+bias"),
                act(g.activation),
                flag(g.residual, "+residual")
            )
        }
        Kernel::Attention(a) => {
            let l = |x: AttnLayout| match x {
                AttnLayout::Bhsd => "bhsd",
                AttnLayout::Bshd => "bshd",
            };
            let kv_len = a
                .kv_len
                .as_ref()
                .map(|d| format!(" kv_len={d}"))
                .unwrap_or_default();
            format!(
                " heads={} kv_heads={} scale={}{}{}{}{} q,k,v,out={},{},{},{}{kv_len}",
                a.heads,
                a.kv_heads,
                crate::ops::fmt_f64(a.scale),
                flag(a.causal, "causal"),
                flag(a.bias, "+bias"),
                flag(a.mask, "+mask"),
                flag(a.rotary, "rotary"),
                l(a.layouts[0]),
                l(a.layouts[1]),
                l(a.layouts[2]),
                l(a.layouts[3])
            )
        }
        Kernel::Generated(g) => {
            let access: Vec<&str> = g
                .access
                .iter()
                .map(|a| match a {
                    Access::Full => "full",
                    Access::Row => "row",
                    Access::Col => "col",
                    Access::Scalar => "scalar",
                })
                .collect();
            format!(
                " {} reads={} split={}{}",
                g.symbol,
                access.join(","),
                g.split,
                flag(g.in_place, "in-place")
            )
        }
        Kernel::Conv(c) => format!(
            " w={:?} strides={} pads={} dilations={} group={} packed@{}+{}{}{}",
            c.w_shape,
            list(&c.strides),
            list(&c.pads),
            list(&c.dilations),
            c.group,
            c.offset,
            c.len,
            flag(c.bias, "+bias"),
            act(c.activation)
        ),
        Kernel::Recurrent(step) => {
            let r = &step.spec;
            let acts: Vec<&str> = r.activations.iter().map(|a| a.kind.name()).collect();
            let inputs = ["b", "seq_lens", "initial_h", "initial_c", "p"];
            let present: String = inputs
                .iter()
                .zip(r.present)
                .filter(|(_, p)| *p)
                .map(|(name, _)| format!(" +{name}"))
                .collect();
            format!(
                " {} hidden={} acts={}{}{}{}{}{}",
                r.direction.name(),
                r.hidden_size,
                acts.join(","),
                if r.clips() {
                    format!(" clip={}", crate::ops::fmt_f64(r.clip))
                } else {
                    String::new()
                },
                flag(r.input_forget, "input_forget"),
                flag(r.linear_before_reset, "linear_before_reset"),
                flag(r.batch_first, "batch_first"),
                present
            ) + &step
                .packed
                .map(|p| format!(" input={} packed@{}+{}", p.input, p.offset, p.len))
                .unwrap_or_default()
        }
        Kernel::CacheWrite { axis, at } => format!(" axis={axis} at={at}"),
        Kernel::Reference(_) | Kernel::GatherRows | Kernel::Native(_) => String::new(),
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

    /// One line per step: `step 3: gemm k=8 n=16 packed@704+1024 +bias gelu_erf (v4) -> v7
    /// # %7 = matmul_bias`.
    pub fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let detail = kernel_detail(&s.kernel);
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
        let blocks: Vec<String> = self
            .block_weights()
            .into_iter()
            .map(|(f, n, bytes)| format!("{f} {n} ({:.1} MB)", bytes as f64 / 1e6))
            .collect();
        let blocks = if blocks.is_empty() {
            String::new()
        } else {
            format!(
                "block-quantized GEMM weights (f32 arithmetic): {}\n",
                blocks.join(", ")
            )
        };
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "inputs: {}\noutputs: {}\n{}kernels: {} steps ({})\n{blocks}\
             arena: {} slots, {} bytes (+ 64-byte alignment per slot){}\n",
            io(&self.inputs),
            io(&self.outputs),
            self.states_line(),
            self.steps.len(),
            counts.join(", "),
            self.slots.len(),
            self.arena_size(),
            self.arena_examples()
        );
        if with_steps {
            for line in self.step_lines() {
                s.push_str(&line);
                s.push('\n');
            }
        }
        s
    }

    /// The GEMM weights kept block-quantized, per format (ggml's name): how many matrices and
    /// their bytes, in format order.
    pub fn block_weights(&self) -> Vec<(&'static str, usize, u64)> {
        let mut out: Vec<(&'static str, usize, u64)> = Vec::new();
        for step in &self.steps {
            if let Kernel::Gemm(GemmStep {
                b: GemmB::Blocks { len, format, .. },
                ..
            }) = &step.kernel
            {
                match out.iter_mut().find(|e| e.0 == format.name()) {
                    Some(e) => {
                        e.1 += 1;
                        e.2 = e.2.saturating_add(*len);
                    }
                    None => out.push((format.name(), 1, *len)),
                }
            }
        }
        out.sort_by_key(|e| e.0);
        out
    }

    /// `states: past.0.key: f32[batch, 3, capacity, 64], ...` and the bytes they take per
    /// position of every symbol, or nothing for a plan without states.
    fn states_line(&self) -> String {
        if self.states.is_empty() {
            return String::new();
        }
        let list: Vec<String> = self
            .states
            .iter()
            .map(|st| match self.values.get(st.value.index()) {
                Some(v) => format!("{}: {}", st.name, v.ty),
                None => format!("{}: <value {} out of range>", st.name, st.value),
            })
            .collect();
        format!("states: {} ({})\n", list.join(", "), self.state_size())
    }

    /// The total size of the states as a symbolic expression (`cache bytes`).
    pub fn state_size(&self) -> Dim {
        self.states.iter().fold(Dim::known(0), |acc, st| {
            match self.values.get(st.value.index()) {
                Some(v) => acc.add(
                    &v.ty
                        .shape
                        .numel()
                        .mul(&Dim::known(v.ty.dtype.size() as i64)),
                ),
                None => acc,
            }
        })
    }

    /// The arena size evaluated with every symbol 1 and every symbol 128 (`; at every symbol =
    /// 1: 832 bytes, = 128: 98.6 kB`), or nothing when the size is known.
    fn arena_examples(&self) -> String {
        let size = self.arena_size();
        let symbols = size.symbols();
        if symbols.is_empty() {
            return String::new();
        }
        let at = |v: i64| {
            let b: crate::ops::Bindings = symbols.iter().map(|s| (s.clone(), v)).collect();
            match size.eval(&b) {
                Ok(n) => crate::budget::human(n.max(0) as u64),
                Err(e) => e.to_string(),
            }
        };
        format!("; with every symbol = 1: {}, = 128: {}", at(1), at(128))
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
                    Storage::State(i) => format!("state {i}"),
                };
                format!("v{i}: {} {at}", v.ty)
            })
            .collect()
    }
}
