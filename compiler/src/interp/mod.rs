//! The reference interpreter: runs any verified graph on host tensors with the reference kernels
//! (`kiln_runtime::reference`, the one executable definition of every op); every rewrite and
//! backend is tested against it.

use crate::error::{Error, Result};
use crate::ir::{Bindings, Graph, TensorType, ValueDef, ValueId};
pub use kiln_runtime::reference::{eval_op, util};
use kiln_runtime::{MemoryBudget, Tensor};
use std::collections::{BTreeMap, HashMap};

/// Binds the symbols in the graph's input shapes from the given tensors, checking names,
/// dtypes, ranks and known dims. Extra or missing inputs are errors that list the expected ones.
pub fn bind_inputs(g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<Bindings> {
    let names: Vec<String> = g
        .inputs()
        .iter()
        .map(|&v| g.value(v).name.clone().unwrap_or_default())
        .collect();
    let expected: Vec<(&str, &TensorType)> = names
        .iter()
        .zip(g.inputs())
        .map(|(n, &v)| (n.as_str(), &g.value(v).ty))
        .collect();
    kiln_runtime::ops::bind_inputs(&expected, inputs).map_err(|e| Error::Input {
        name: e.name,
        message: e.message,
    })
}

/// Runs a graph on named inputs and returns the named outputs in declaration order, within the
/// memory available now.
pub fn run(g: &Graph, inputs: &BTreeMap<String, Tensor>) -> Result<Vec<(String, Tensor)>> {
    run_within(g, inputs, &MemoryBudget::available())
}

/// [`run`] within a memory budget: the interpreter keeps every value, so before each node runs,
/// the bytes of all values so far plus its outputs are checked against `budget`.
pub fn run_within(
    g: &Graph,
    inputs: &BTreeMap<String, Tensor>,
    budget: &MemoryBudget,
) -> Result<Vec<(String, Tensor)>> {
    let b = bind_inputs(g, inputs)?;
    for (name, t) in inputs {
        g.input_limits(name)
            .check(name, t)
            .map_err(|e| Error::Input {
                name: e.name,
                message: e.message,
            })?;
    }
    let mut held: u64 = inputs
        .values()
        .map(|t| (t.len() * t.dtype().size()) as u64)
        .sum();
    let mut env: HashMap<ValueId, Tensor> = HashMap::new();
    for &v in g.inputs() {
        let name = g.value(v).name.clone().unwrap_or_default();
        if let Some(t) = inputs.get(&name) {
            env.insert(v, t.clone());
        }
    }
    let fetch = |env: &HashMap<ValueId, Tensor>, v: ValueId| -> Result<Tensor> {
        if let Some(t) = env.get(&v) {
            return Ok(t.clone());
        }
        match g.value(v).def {
            ValueDef::Weight(w) => g.weights().get(w).to_tensor(),
            _ => Err(Error::Graph {
                rule: "def-before-use",
                message: format!("value #{} was never computed", v.0),
            }),
        }
    };
    for n in g.topo_order()? {
        let node = g.node(n);
        let args: Vec<Tensor> = node
            .inputs
            .iter()
            .map(|&v| fetch(&env, v))
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = args.iter().collect();
        let fail = |message: String| Error::Eval {
            node: g.node_label(n),
            op: node.op.name(),
            message,
        };
        // The outputs stay; the kernels' f64 working copies (8 bytes per element of every
        // operand) are freed after the node.
        let mut scratch: u64 = refs.iter().map(|t| t.len() as u64 * 8).sum();
        for &v in &node.outputs {
            let ty = &g.value(v).ty;
            let shape = ty.shape.eval(&b).map_err(|e| fail(e.to_string()))?;
            let elements = shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
                .unwrap_or(u64::MAX);
            held = held.saturating_add(elements.saturating_mul(ty.dtype.size() as u64));
            scratch = scratch.saturating_add(elements.saturating_mul(8));
        }
        budget.check(held.saturating_add(scratch), inputs)?;
        let outs = eval_op(&node.op, &refs, &b).map_err(fail)?;
        if outs.len() != node.outputs.len() {
            return Err(fail(format!(
                "produced {} outputs, expected {}",
                outs.len(),
                node.outputs.len()
            )));
        }
        for (t, &v) in outs.into_iter().zip(&node.outputs) {
            let ty = &g.value(v).ty;
            let want = ty.shape.eval(&b).map_err(|e| fail(e.to_string()))?;
            if t.shape() != want.as_slice() || t.dtype() != ty.dtype {
                return Err(fail(format!(
                    "produced {}{:?}, but its type says {} = {}{:?}",
                    t.dtype(),
                    t.shape(),
                    ty,
                    ty.dtype,
                    want
                )));
            }
            env.insert(v, t);
        }
    }
    g.outputs()
        .iter()
        .map(|(name, v)| Ok((name.clone(), fetch(&env, *v)?)))
        .collect()
}
