//! `kv_states`: turns a decoder exported with its key/value cache as plain inputs and outputs
//! (optimum's `past_key_values.N.key|value: [batch, heads, past, head_dim]` in,
//! `present.N.key|value = concat(past, new, axis 2)` out) into a graph whose cache is graph
//! *states*, as `kiln_frontends::hf::decoder` builds them: each past input becomes a state
//! `[batch, heads, capacity, head_dim]`, its present output `cache_write(state, new){axis 2, at
//! past}` (which a compiled plan performs in place), and every other reader of the concat reads
//! `slice(update, axis 2, 0..past + seq)` instead. The symbols are renamed to the decoder's:
//! `batch`, `past`, `seq`, and the attention mask's length becomes `past + seq`, so a run binds
//! `past` from the mask. A graph without the pattern is refused, saying what is missing.

use crate::error::{Error, Result};
use crate::ir::{Dim, Graph, Op, Shape, TensorType, ValueDef, ValueId};
use std::collections::{BTreeMap, HashMap};

/// The symbol of the number of cached positions.
pub const PAST: &str = "past";
/// The symbol of the number of new positions.
pub const SEQ: &str = "seq";
/// The symbol of the batch size.
pub const BATCH: &str = "batch";
/// The symbol of the cache capacity (positions).
pub const CAPACITY: &str = "capacity";
/// The input whose length binds `past`.
pub const MASK: &str = "attention_mask";

fn refuse(message: String) -> Error {
    Error::Graph {
        rule: "kv-states",
        message,
    }
}

/// `past_key_values.N.key` → `(N, "key")`.
fn past_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("past_key_values.")?;
    let (layer, which) = rest.split_once('.')?;
    (layer.chars().all(|c| c.is_ascii_digit()) && matches!(which, "key" | "value"))
        .then_some((layer, which))
}

/// One cache: the past input, the present output's name, the concat's node and new entries.
struct Cache {
    past: ValueId,
    present: String,
    concat: crate::ir::NodeId,
    new: ValueId,
}

fn one_symbol<'a>(d: &'a Dim, what: &str) -> Result<&'a str> {
    d.as_sym()
        .ok_or_else(|| refuse(format!("{what} is `{d}`, not a symbol")))
}

/// Finds every `past_key_values.N.key|value` input and its `present.N.*` concat.
fn find_caches(g: &Graph) -> Result<Vec<Cache>> {
    let mut caches = Vec::new();
    for &v in g.inputs() {
        let name = g.value(v).name.clone().unwrap_or_default();
        let Some((layer, which)) = past_name(&name) else {
            continue;
        };
        let present = format!("present.{layer}.{which}");
        let out = g
            .outputs()
            .iter()
            .find(|(n, _)| *n == present)
            .map(|&(_, o)| o)
            .ok_or_else(|| refuse(format!("input `{name}` has no output `{present}`")))?;
        let not_concat = || {
            refuse(format!(
                "output `{present}` is not `concat({name}, new entries)` on axis 2"
            ))
        };
        let ValueDef::Node { node, .. } = g.value(out).def else {
            return Err(not_concat());
        };
        let n = g.node(node);
        let rank = g.value(out).ty.rank() as i64;
        let Op::Concat { axis } = n.op else {
            return Err(not_concat());
        };
        if rank != 4 || (axis != 2 && axis != -2) || n.inputs.len() != 2 || n.inputs[0] != v {
            return Err(not_concat());
        }
        let readers = g
            .node_ids()
            .filter(|&m| g.node(m).inputs.contains(&v))
            .count();
        if readers != 1 || g.outputs().iter().any(|&(_, o)| o == v) {
            return Err(refuse(format!(
                "input `{name}` is read by more than the concat of `{present}`"
            )));
        }
        caches.push(Cache {
            past: v,
            present,
            concat: node,
            new: n.inputs[1],
        });
    }
    if caches.is_empty() {
        return Err(refuse(format!(
            "no `past_key_values.N.key|value` inputs: not a decoder exported with its key/value \
             cache (inputs: {})",
            g.inputs()
                .iter()
                .map(|&v| format!("`{}`", g.value(v).name.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(caches)
}

/// The symbol renaming: the export's batch, past and new-length symbols to `batch`, `past`,
/// `seq`, and the mask's length to `past + seq`.
fn symbol_map(g: &Graph, caches: &[Cache]) -> Result<BTreeMap<String, Dim>> {
    let first = &g.value(caches[0].past).ty.shape;
    let batch = one_symbol(&first.dims()[0], "the cache's batch dim")?.to_string();
    let past = one_symbol(&first.dims()[2], "the cache's length")?.to_string();
    let seq = one_symbol(
        &g.value(caches[0].new).ty.shape.dims()[2],
        "the new entries' length",
    )?
    .to_string();
    for c in caches {
        let (p, n) = (&g.value(c.past).ty.shape, &g.value(c.new).ty.shape);
        if p.dims()[0].as_sym() != Some(&batch)
            || p.dims()[2].as_sym() != Some(&past)
            || n.dims()[2].as_sym() != Some(&seq)
        {
            return Err(refuse(format!(
                "the caches disagree on their batch and lengths (`{p}`, new `{n}`)"
            )));
        }
    }
    let mut map = BTreeMap::from([
        (batch.clone(), Dim::sym(BATCH)),
        (past.clone(), Dim::sym(PAST)),
        (seq.clone(), Dim::sym(SEQ)),
    ]);
    let mask = g
        .inputs()
        .iter()
        .find(|&&v| g.value(v).name.as_deref() == Some(MASK))
        .ok_or_else(|| {
            refuse(format!(
                "no input `{MASK}`: nothing binds the number of cached positions"
            ))
        })?;
    let shape = &g.value(*mask).ty.shape;
    let total = Dim::sym(&past).add(&Dim::sym(&seq));
    match shape.dims() {
        [b, len] if b.as_sym() == Some(&batch) => {
            if *len != total {
                let len = one_symbol(len, "the attention mask's length")?;
                if map.contains_key(len) {
                    return Err(refuse(format!(
                        "the attention mask's length `{len}` is not `{past} + {seq}`"
                    )));
                }
                map.insert(len.to_string(), Dim::sym(PAST).add(&Dim::sym(SEQ)));
            }
        }
        _ => {
            return Err(refuse(format!(
                "`{MASK}` is `{shape}`, expected [{batch}, {past} + {seq}]"
            )))
        }
    }
    let taken = g.input_symbols();
    if let Some(s) = [BATCH, PAST, SEQ, CAPACITY]
        .into_iter()
        .find(|s| taken.contains(*s) && !map.contains_key(*s))
    {
        return Err(refuse(format!("the graph already uses the symbol `{s}`")));
    }
    Ok(map)
}

fn rename(ty: &TensorType, map: &BTreeMap<String, Dim>) -> TensorType {
    let dims = ty.shape.dims().iter().map(|d| d.substitute_dims(map));
    TensorType::new(ty.dtype, Shape(dims.collect()))
}

/// The graph with its `past_key_values` caches as states (see the module docs).
pub fn run(g: &Graph) -> Result<Graph> {
    // Canonical first: exporters leave no-ops around the pattern (a one-input concat of the
    // past, as the TorchScript exporter writes for transformers' `DynamicCache`).
    let mut g = g.clone();
    super::canonicalize(&mut g)?;
    let g = &g;
    let caches = find_caches(g)?;
    let map = symbol_map(g, &caches)?;
    let by_concat: HashMap<_, _> = caches.iter().map(|c| (c.concat, c)).collect();
    let mut out = Graph::new();
    let mut vals: HashMap<ValueId, ValueId> = HashMap::new();
    for &v in g.inputs() {
        let value = g.value(v);
        let mut ty = rename(&value.ty, &map);
        if caches.iter().any(|c| c.past == v) {
            ty.shape.0[2] = Dim::sym(CAPACITY);
        }
        let name = value.name.clone().unwrap_or_default();
        vals.insert(v, out.add_input(name, ty));
    }
    let mut updates: HashMap<&str, ValueId> = HashMap::new();
    let total = Dim::sym(PAST).add(&Dim::sym(SEQ));
    for n in g.topo_order()? {
        let node = g.node(n);
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for &v in &node.inputs {
            inputs.push(map_value(g, &mut out, &mut vals, v)?);
        }
        if let Some(c) = by_concat.get(&n) {
            let at = Dim::sym(PAST);
            let update = out.add_node(Op::CacheWrite { axis: 2, at }, &inputs)?[0];
            let view = Op::Slice {
                axes: vec![2],
                starts: vec![Dim::known(0)],
                ends: vec![total.clone()],
                steps: vec![1],
            };
            let view = out.add_node(view, &[update])?[0];
            updates.insert(&c.present, update);
            vals.insert(node.outputs[0], view);
            continue;
        }
        let mut op = node.op.clone();
        for d in op.attr_dims_mut() {
            *d = d.substitute_dims(&map);
        }
        let new = out.add_node(op, &inputs)?;
        for (&o, n) in node.outputs.iter().zip(new) {
            vals.insert(o, n);
        }
    }
    for (name, v) in g.outputs() {
        let v = match updates.get(name.as_str()) {
            Some(&u) => u,
            None => map_value(g, &mut out, &mut vals, *v)?,
        };
        out.add_output(name.clone(), v);
    }
    out.copy_input_limits(g);
    for c in &caches {
        let past = g.value(c.past).name.clone().unwrap_or_default();
        out.add_state(past, c.present.clone());
    }
    crate::verify(&out)?;
    Ok(out)
}

/// The rebuilt graph's value for `v` (weights are copied on first use).
fn map_value(
    g: &Graph,
    out: &mut Graph,
    vals: &mut HashMap<ValueId, ValueId>,
    v: ValueId,
) -> Result<ValueId> {
    if let Some(&m) = vals.get(&v) {
        return Ok(m);
    }
    // Inputs and node outputs are mapped before their readers (topological order).
    let ValueDef::Weight(id) = g.value(v).def else {
        return Err(refuse(format!(
            "value {} is read before it is defined",
            v.0
        )));
    };
    let m = out.add_weight(g.weights().get(id).clone());
    vals.insert(v, m);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::DType;

    fn ty(dims: &[&str]) -> TensorType {
        let dims = dims.iter().map(|d| Dim::parse(d).unwrap()).collect();
        TensorType::new(DType::F32, Shape(dims))
    }

    /// One layer's keys: `present.0.key = concat(past_key_values.0.key, new, axis -2)`, read
    /// again by `y = relu(present)`; the mask `[b, total]`.
    fn exported(mask_len: &str) -> Graph {
        let mut g = Graph::new();
        g.add_input("attention_mask", ty(&["b", mask_len]));
        let past = g.add_input("past_key_values.0.key", ty(&["b", "2", "p", "4"]));
        let new = g.add_input("new", ty(&["b", "2", "s", "4"]));
        let all = g.add_node(Op::Concat { axis: -2 }, &[past, new]).unwrap()[0];
        let y = g
            .add_node(Op::Unary(crate::ir::UnaryOp::Relu), &[all])
            .unwrap()[0];
        g.add_output("present.0.key", all);
        g.add_output("y", y);
        g
    }

    #[test]
    fn concats_become_cache_writes_of_states() {
        let g = run(&exported("total")).unwrap();
        assert_eq!(
            g.states(),
            [("past_key_values.0.key".into(), "present.0.key".into())]
        );
        let types: Vec<TensorType> = g.inputs().iter().map(|&v| g.value(v).ty.clone()).collect();
        assert_eq!(
            types,
            [
                ty(&["batch", "past+seq"]),
                ty(&["batch", "2", "capacity", "4"]),
                ty(&["batch", "2", "seq", "4"])
            ]
        );
        let present = g.outputs()[0].1;
        let ValueDef::Node { node, .. } = g.value(present).def else {
            panic!("present is a node output");
        };
        assert!(matches!(g.node(node).op, Op::CacheWrite { axis: 2, .. }));
        assert_eq!(
            g.value(g.outputs()[1].1).ty,
            ty(&["batch", "2", "past+seq", "4"])
        );
    }

    #[test]
    fn graphs_without_the_pattern_are_refused() {
        let mut g = Graph::new();
        let x = g.add_input("x", ty(&["n"]));
        g.add_output("y", x);
        let msg = run(&g).unwrap_err().to_string();
        assert!(
            msg.contains("no `past_key_values.N.key|value` inputs"),
            "{msg}"
        );
        let mut h = Graph::new();
        let p = h.add_input("past_key_values.0.value", ty(&["b", "2", "p", "4"]));
        h.add_output("present.0.value", p);
        let msg = run(&h).unwrap_err().to_string();
        assert!(
            msg.contains("is not `concat(past_key_values.0.value"),
            "{msg}"
        );
        let msg = run(&exported("p+s+1")).unwrap_err().to_string();
        assert!(msg.contains("attention mask's length"), "{msg}");
    }
}
