//! Attention selection: `Op::Attention` as the fused attention step, with `(0, 2, 1, 3)`
//! transposes of q, k, v and the output absorbed as strides and a cache prefix
//! (`slice(cache, 0..len)` of k and v) absorbed as `kv_len`; and `Op::CacheWrite` of a state
//! as the in-place `Kernel::CacheWrite`.

use super::select::{dims, f32, producer, step};
use super::{Choice, Uses};
use crate::ir::{Dim, Graph, NodeId, Op, ValueId};
use kiln_runtime::plan::{AttentionStep, Kernel, Layout};
use std::collections::BTreeMap;

const SWAP_12: [i64; 4] = [0, 2, 1, 3];

pub(super) fn attention(
    g: &Graph,
    n: NodeId,
    uses: &Uses,
    choices: &mut BTreeMap<NodeId, Choice>,
) -> Option<Choice> {
    let node = g.node(n);
    let Op::Attention {
        heads,
        kv_heads,
        scale,
        causal,
        bias,
        mask,
        rotary,
    } = node.op
    else {
        return None;
    };
    if !node.inputs[..3].iter().all(|&v| f32(g, v)) || (bias && !f32(g, node.inputs[3])) {
        return None;
    }
    if rotary {
        let k = 3 + usize::from(bias) + usize::from(mask);
        if !f32(g, node.inputs[k]) || !f32(g, node.inputs[k + 1]) {
            return None;
        }
    }
    let mut inputs = node.inputs.clone();
    let mut layouts = [Layout::Bhsd; 4];
    let kv_len = cache_prefix(g, n, uses, &mut inputs, choices);
    for i in (0..3).filter(|&i| kv_len.is_none() || i == 0) {
        let v = node.inputs[i];
        let Some(p) = producer(g, v) else { continue };
        if let Op::Transpose { perm } = &g.node(p).op {
            let once = node.inputs.iter().filter(|&&x| x == v).count() == 1;
            if perm.as_slice() == SWAP_12 && uses.sole_consumer(v) == Some(n) && once {
                inputs[i] = g.node(p).inputs[0];
                layouts[i] = Layout::Bshd;
                choices.insert(p, Choice::Absorbed);
            }
        }
    }
    let mut out = node.outputs[0];
    if let Some(c) = uses.sole_consumer(out) {
        if let Op::Transpose { perm } = &g.node(c).op {
            if perm.as_slice() == SWAP_12 {
                out = g.node(c).outputs[0];
                layouts[3] = Layout::Bshd;
                choices.insert(c, Choice::Absorbed);
            }
        }
    }
    let a = AttentionStep {
        heads,
        kv_heads,
        scale,
        causal,
        bias,
        mask,
        rotary,
        layouts,
        kv_len,
    };
    step(g, n, Kernel::Attention(a), inputs, vec![out])
}

/// When attention `n`'s k and v are both `slice(cache, axis 2, 0..len)` of rank-4 tensors with
/// the same `len`, read only by `n`: the slices are absorbed (k and v become the caches) and
/// `len` is returned, so the step reads the first `len` positions of each cache in place.
fn cache_prefix(
    g: &Graph,
    n: NodeId,
    uses: &Uses,
    inputs: &mut [ValueId],
    choices: &mut BTreeMap<NodeId, Choice>,
) -> Option<Dim> {
    let node = g.node(n);
    let prefix = |v: ValueId| -> Option<(NodeId, ValueId, Dim)> {
        let p = producer(g, v)?;
        let Op::Slice {
            axes,
            starts,
            ends,
            steps,
        } = &g.node(p).op
        else {
            return None;
        };
        let src = g.node(p).inputs[0];
        let rank4 = dims(g, src).len() == 4;
        let axis_ok = matches!(axes.as_slice(), [2] | [-2]);
        let plain = starts.as_slice() == [Dim::known(0)] && steps.as_slice() == [1];
        let len = ends.first()?.clone();
        // The slice length inference gave (the end itself, for a symbolic end within the axis).
        let same = dims(g, v).get(2) == Some(&len);
        (rank4 && axis_ok && plain && same && uses.sole_consumer(v) == Some(n))
            .then_some((p, src, len))
    };
    let (pk, ck, lk) = prefix(node.inputs[1])?;
    let (pv, cv, lv) = prefix(node.inputs[2])?;
    if lk != lv || node.inputs[1] == node.inputs[2] {
        return None;
    }
    inputs[1] = ck;
    inputs[2] = cv;
    choices.insert(pk, Choice::Absorbed);
    choices.insert(pv, Choice::Absorbed);
    Some(lk)
}

/// `cache_write` of a state input read by nothing else, whose output is that state's update:
/// written in place into the state's buffer (`Kernel::CacheWrite`, which reads only `new`).
pub(super) fn cache_write(g: &Graph, n: NodeId, uses: &Uses) -> Option<Choice> {
    let node = g.node(n);
    let Op::CacheWrite { axis, at } = &node.op else {
        return None;
    };
    let (cache, out) = (node.inputs[0], node.outputs[0]);
    let states = super::state_values(g).ok()?;
    let is_pair = states.iter().any(|s| s.1 == cache && s.2 == out);
    let only_reader = uses
        .consumers
        .get(&cache)
        .is_some_and(|c| c.as_slice() == [n])
        && node.inputs[1] != cache;
    let rank = dims(g, cache).len();
    let axis = u32::try_from(if *axis < 0 {
        *axis + rank as i64
    } else {
        *axis
    })
    .ok()?;
    if !is_pair || !only_reader || axis as usize >= rank {
        return None;
    }
    let kernel = Kernel::CacheWrite {
        axis,
        at: at.clone(),
    };
    step(g, n, kernel, vec![node.inputs[1]], vec![out])
}
