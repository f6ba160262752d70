//! Structural checks of an ONNX graph that need no knowledge of ops: every value defined once
//! (SSA), every node input and graph output defined somewhere, no cycles; and a topological
//! order of the nodes (exporters do not always sort them, though the spec requires it).
//!
//! Values used inside subgraphs (`If` branches, `Loop`/`Scan` bodies) but defined in the
//! enclosing graph count as implicit inputs of the node that owns the subgraph.

use super::proto::{GraphProto, NodeProto};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

/// How a value name is defined.
#[derive(Debug, Clone, Copy)]
enum Def {
    Input,
    Initializer,
    SparseInitializer,
    Node(usize),
}

/// `node `name` (Op)`, with `#index` for unnamed nodes.
pub(crate) fn node_label(graph: &GraphProto, i: usize) -> String {
    match graph.node.get(i) {
        Some(n) => format!("node `{}` ({})", node_display_name(n, i), n.op_type),
        None => format!("node #{i}"),
    }
}

/// The node's name, or `#index` when it has none.
pub(crate) fn node_display_name(n: &NodeProto, i: usize) -> String {
    if n.name.is_empty() {
        format!("#{i}")
    } else {
        n.name.clone()
    }
}

fn describe(graph: &GraphProto, d: Def) -> String {
    match d {
        Def::Input => "graph input".to_string(),
        Def::Initializer => "initializer".to_string(),
        Def::SparseInitializer => "sparse initializer".to_string(),
        Def::Node(i) => node_label(graph, i),
    }
}

/// Checks definitions, uses and acyclicity; the message names the offending value or node.
pub(crate) fn check_graph(graph: &GraphProto) -> Result<(), String> {
    let mut defs: HashMap<&str, Def> = HashMap::new();
    let mut inputs = HashSet::new();
    for (i, v) in graph.input.iter().enumerate() {
        if v.name.is_empty() {
            return Err(format!("graph input #{i} has no name"));
        }
        if !inputs.insert(v.name.as_str()) {
            return Err(format!("graph input `{}` is listed twice", v.name));
        }
        defs.insert(&v.name, Def::Input);
    }
    let sparse = graph.sparse_initializer.iter().enumerate().map(|(i, s)| {
        let name = s.values.as_ref().map_or("", |v| v.name.as_str());
        (i, name, Def::SparseInitializer)
    });
    let dense = graph.initializer.iter().enumerate();
    for (i, name, d) in dense
        .map(|(i, t)| (i, t.name.as_str(), Def::Initializer))
        .chain(sparse)
    {
        if name.is_empty() {
            return Err(format!("{} #{i} has no name", describe(graph, d)));
        }
        match defs.insert(name, d) {
            // Old exporters list initializers among the graph inputs (as defaults): fine.
            None | Some(Def::Input) => {}
            Some(prev) => return Err(twice(graph, name, prev, d)),
        }
    }
    for (i, n) in graph.node.iter().enumerate() {
        for out in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some(prev) = defs.insert(out, Def::Node(i)) {
                return Err(twice(graph, out, prev, Def::Node(i)));
            }
        }
    }
    for (i, n) in graph.node.iter().enumerate() {
        for (k, x) in n.input.iter().enumerate() {
            if !x.is_empty() && !defs.contains_key(x.as_str()) {
                return Err(format!(
                    "{} input #{k} `{x}` is not a graph input, an initializer or the output \
                     of any node",
                    node_label(graph, i)
                ));
            }
        }
        if let Some(x) = implicit_inputs(n)
            .into_iter()
            .find(|x| !defs.contains_key(x))
        {
            return Err(format!(
                "{} uses `{x}` in a subgraph, but no graph input, initializer or node defines it",
                node_label(graph, i)
            ));
        }
    }
    let mut outputs = HashSet::new();
    for (i, v) in graph.output.iter().enumerate() {
        if v.name.is_empty() {
            return Err(format!("graph output #{i} has no name"));
        }
        if !outputs.insert(v.name.as_str()) {
            return Err(format!("graph output `{}` is listed twice", v.name));
        }
        if !defs.contains_key(v.name.as_str()) {
            return Err(format!(
                "graph output `{}` is not a graph input, an initializer or the output of any node",
                v.name
            ));
        }
    }
    topo_order(graph).map(|_| ())
}

fn twice(graph: &GraphProto, name: &str, first: Def, second: Def) -> String {
    format!(
        "value `{name}` is defined twice ({} and {})",
        describe(graph, first),
        describe(graph, second)
    )
}

/// The names a node's subgraphs use but do not define themselves.
fn implicit_inputs(n: &NodeProto) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    for a in &n.attribute {
        for g in a.g.iter().chain(&a.graphs) {
            free_names(g, &mut out);
        }
    }
    out
}

/// Adds to `out` the names used in `g` (and its nested subgraphs) that `g` does not define.
/// Recursion depth is bounded by prost's message nesting limit.
fn free_names<'a>(g: &'a GraphProto, out: &mut BTreeSet<&'a str>) {
    let mut local: HashSet<&str> = HashSet::new();
    local.extend(g.input.iter().map(|v| v.name.as_str()));
    local.extend(g.initializer.iter().map(|t| t.name.as_str()));
    local.extend(
        g.sparse_initializer
            .iter()
            .filter_map(|s| s.values.as_ref())
            .map(|v| v.name.as_str()),
    );
    local.extend(
        g.node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str)),
    );
    let mut used = BTreeSet::new();
    for n in &g.node {
        used.extend(n.input.iter().map(String::as_str));
        used.extend(implicit_inputs(n));
    }
    used.extend(g.output.iter().map(|v| v.name.as_str()));
    out.extend(
        used.into_iter()
            .filter(|x| !x.is_empty() && !local.contains(x)),
    );
}

/// A topological order of `graph.node` (indices), as close to the stored order as the data
/// dependencies allow (the stored order when it is already sorted); a message naming the nodes
/// of a cycle when there is one.
pub(crate) fn topo_order(graph: &GraphProto) -> Result<Vec<usize>, String> {
    let n = graph.node.len();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            producer.entry(out).or_insert(i);
        }
    }
    let mut preds: Vec<Vec<usize>> = Vec::with_capacity(n);
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in graph.node.iter().enumerate() {
        let implicit = implicit_inputs(node);
        let names = node.input.iter().map(String::as_str).chain(implicit);
        let mut p: Vec<usize> = names.filter_map(|x| producer.get(x).copied()).collect();
        p.sort_unstable();
        p.dedup();
        for &q in &p {
            succs[q].push(i);
        }
        preds.push(p);
    }
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &succs[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(describe_cycle(graph, &preds, &indeg))
}

/// Walks predecessors among the unsorted nodes (each has one) until a node repeats: that node
/// is on a cycle. Lists the cycle in data-flow order.
fn describe_cycle(graph: &GraphProto, preds: &[Vec<usize>], indeg: &[usize]) -> String {
    let Some(start) = (0..indeg.len()).find(|&i| indeg[i] > 0) else {
        return "the nodes form a cycle".to_string();
    };
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut path = Vec::new();
    let mut cur = start;
    while let Some(next) = (!seen.contains_key(&cur)).then_some(cur) {
        seen.insert(next, path.len());
        path.push(next);
        match preds[next].iter().find(|&&p| indeg[p] > 0) {
            Some(&p) => cur = p,
            None => break,
        }
    }
    let from = seen.get(&cur).copied().unwrap_or(0);
    let mut cycle: Vec<usize> = path.get(from..).unwrap_or_default().to_vec();
    cycle.reverse();
    // Start the listing at the first node in file order, so the message is stable.
    if let Some(first) = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, &n)| n)
        .map(|(k, _)| k)
    {
        cycle.rotate_left(first);
    }
    let mut names: Vec<String> = cycle
        .iter()
        .take(8)
        .map(|&i| node_label(graph, i))
        .collect();
    if cycle.len() > 8 {
        names.push(format!("... ({} nodes in all)", cycle.len()));
    }
    if let Some(&first) = cycle.first() {
        names.push(node_label(graph, first));
    }
    format!("the nodes form a cycle: {}", names.join(" -> "))
}
