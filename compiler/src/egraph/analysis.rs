//! The e-class analysis: output types (dtype + shape, via `infer_types`) and, for classes that
//! hold a one-element weight, its value as f64 — what rule guards read ("ε is small",
//! "the exponent is 2", "the divisor is √2").

use super::lang::{KEGraph, KNode, Key};
use crate::ir::infer::infer_types;
use crate::ir::{Graph, TensorType, ValueDef};
use egg::{Analysis, DidMerge, Id};
use std::collections::HashMap;

/// What is known about an e-class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    /// The types of the class's outputs (one for ordinary values, several for a multi-output
    /// op's class); empty when unknown (inference failed, or the `Outputs` root).
    pub tys: Vec<TensorType>,
    /// The value when the class is a one-element constant.
    pub scalar: Option<f64>,
}

impl Info {
    /// The single type of a one-output class.
    pub fn ty(&self) -> Option<&TensorType> {
        match self.tys.as_slice() {
            [t] => Some(t),
            _ => None,
        }
    }
}

/// The analysis state: types and scalar values of the leaves, by original value id.
#[derive(Debug, Clone, Default)]
pub struct KAnalysis {
    leaves: HashMap<u32, Info>,
    values: HashMap<u32, Vec<f64>>,
}

/// Weights up to this many elements keep their values for guards (masks, rotary tables).
pub const SMALL_WEIGHT: usize = 1 << 16;

impl KAnalysis {
    /// Records every graph input's and weight's type, and the value of one-element weights.
    pub fn from_graph(g: &Graph) -> KAnalysis {
        let mut leaves = HashMap::new();
        let mut values = HashMap::new();
        for i in 0..g.num_values() {
            let vid = crate::ir::ValueId(i as u32);
            let v = g.value(vid);
            let scalar = match v.def {
                ValueDef::Weight(w) => {
                    let w = g.weights().get(w);
                    if w.numel() <= SMALL_WEIGHT {
                        if let Ok(t) = w.to_tensor() {
                            values.insert(i as u32, t.to_f64_vec());
                        }
                    }
                    if w.numel() == 1 {
                        let v = w
                            .to_tensor()
                            .ok()
                            .and_then(|t| t.to_f64_vec().first().copied());
                        // An f32 constant reads as its shortest decimal (1e-5, not
                        // 9.999999747e-6): the value the exporter wrote, within f32 rounding.
                        v.map(|v| match w.dtype {
                            crate::ir::DType::F32 => shortest_f32(v),
                            _ => v,
                        })
                    } else {
                        None
                    }
                }
                ValueDef::Input => None,
                ValueDef::Node { .. } => continue,
            };
            leaves.insert(
                i as u32,
                Info {
                    tys: vec![v.ty.clone()],
                    scalar,
                },
            );
        }
        KAnalysis { leaves, values }
    }
}

impl Analysis<KNode> for KAnalysis {
    type Data = Info;

    fn make(egraph: &mut KEGraph, enode: &KNode, _id: Id) -> Info {
        match &enode.key {
            Key::Input(v) | Key::Weight(v) => {
                egraph.analysis.leaves.get(v).cloned().unwrap_or_default()
            }
            Key::Proj(i) => {
                let tys = enode
                    .children
                    .first()
                    .and_then(|&c| egraph[c].data.tys.get(*i as usize).cloned());
                Info {
                    tys: tys.into_iter().collect(),
                    scalar: None,
                }
            }
            Key::Outputs => Info::default(),
            Key::Op(k) => {
                let ins: Option<Vec<TensorType>> = enode
                    .children
                    .iter()
                    .map(|&c| egraph[c].data.ty().cloned())
                    .collect();
                let tys = ins
                    .and_then(|ins| infer_types(k, &ins).ok())
                    .unwrap_or_default();
                Info { tys, scalar: None }
            }
        }
    }

    fn merge(&mut self, a: &mut Info, b: Info) -> DidMerge {
        // Sound rules only merge equal types; when one side is unknown, keep the known one.
        let mut changed_a = false;
        if a.tys.is_empty() && !b.tys.is_empty() {
            a.tys = b.tys.clone();
            changed_a = true;
        }
        if a.scalar.is_none() && b.scalar.is_some() {
            a.scalar = b.scalar;
            changed_a = true;
        }
        let changed_b =
            (b.tys.is_empty() && !a.tys.is_empty()) || (b.scalar.is_none() && a.scalar.is_some());
        DidMerge(changed_a, changed_b)
    }
}

/// `v` (an f32 value) as the f64 of its shortest f32 decimal spelling.
fn shortest_f32(v: f64) -> f64 {
    format!("{}", v as f32).parse().unwrap_or(v)
}

/// The one-element constant value of class `id`, if known.
pub fn scalar(eg: &KEGraph, id: Id) -> Option<f64> {
    eg[id].data.scalar
}

/// True when class `id` is a one-element constant within `tol` of `want`.
pub fn is_scalar(eg: &KEGraph, id: Id, want: f64, tol: f64) -> bool {
    scalar(eg, id).is_some_and(|v| (v - want).abs() <= tol)
}

/// The element values of class `id` when it holds a small weight (row-major, as f64).
pub fn weight_values(eg: &KEGraph, id: Id) -> Option<&[f64]> {
    eg[id].nodes.iter().find_map(|n| match n.key {
        Key::Weight(v) => eg.analysis.values.get(&v).map(Vec::as_slice),
        _ => None,
    })
}
