//! Names for symbolic dims: ONNX `dim_param`s become IR symbols (sanitised, distinct names kept
//! distinct), and missing or negative dims, and placeholder names without a letter or digit
//! (`?`, as some exporters write for every unknown dim), get fresh symbols: two dims that are
//! merely unknown are not the same dim.

use super::ctx::Ctx;
use crate::onnx::proto::tensor_shape_proto::{dimension, Dimension};
use kiln_compiler::ir::{is_symbol_name, Dim};
use std::collections::HashMap;

/// Maps `dim_param` strings to IR symbols for one graph.
#[derive(Default)]
pub struct SymbolNamer {
    by_param: HashMap<String, Dim>,
    taken: HashMap<String, String>,
}

impl SymbolNamer {
    /// The IR dim for one ONNX dimension.
    pub fn dim(&mut self, d: &Dimension, ctx: &mut Ctx) -> Dim {
        match &d.value {
            Some(dimension::Value::DimValue(v)) if *v >= 0 => Dim::known(*v),
            Some(dimension::Value::DimParam(p)) if p.chars().any(|c| c.is_alphanumeric()) => {
                self.param(p, ctx)
            }
            _ => ctx.fresh_symbol(),
        }
    }

    fn param(&mut self, p: &str, ctx: &mut Ctx) -> Dim {
        if let Some(d) = self.by_param.get(p) {
            return d.clone();
        }
        let mut name: String = p
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if !is_symbol_name(&name) {
            name = format!("d_{name}");
        }
        let d = match self.taken.get(&name) {
            Some(owner) if owner != p => ctx.fresh_symbol(),
            _ if !is_symbol_name(&name) => ctx.fresh_symbol(),
            _ => {
                self.taken.insert(name.clone(), p.to_string());
                Dim::sym(&name)
            }
        };
        self.by_param.insert(p.to_string(), d.clone());
        d
    }
}
