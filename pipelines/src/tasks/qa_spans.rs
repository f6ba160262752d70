//! Answer spans from start and end logits: transformers' `select_starts_ends` (tokens that cannot
//! be in an answer masked to −10000, softmax, the null score from the CLS token, CLS zeroed) and
//! `decode_spans` (`start·end` over spans of at most `max_answer_len` tokens, best first).

/// One candidate span of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// The first token.
    pub start: usize,
    /// The last token (inclusive).
    pub end: usize,
    /// `p(start) · p(end)`.
    pub score: f64,
}

/// What [`select_starts_ends`] finds in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// The best spans (at most `top_k`), best first, only over tokens that can be in an answer.
    pub spans: Vec<Span>,
    /// The smallest null (no-answer) score seen so far.
    pub min_null_score: f64,
}

/// `exp(x - max) / sum`.
fn normalized(x: &[f64]) -> Vec<f64> {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// transformers' `select_starts_ends` for one window: `desired[t]` says whether token `t` may be
/// in an answer (a context token, or the CLS token, and not padding).
pub fn select_starts_ends(
    start: &[f32],
    end: &[f32],
    desired: &[bool],
    min_null_score: f64,
    top_k: usize,
    handle_impossible_answer: bool,
    max_answer_len: usize,
) -> Selected {
    let n = start.len().min(end.len()).min(desired.len());
    let masked = |x: &[f32]| -> Vec<f64> {
        (0..n)
            .map(|t| {
                if desired[t] {
                    f64::from(x[t])
                } else {
                    -10000.0
                }
            })
            .collect()
    };
    let mut s = normalized(&masked(start));
    let mut e = normalized(&masked(end));
    let mut min_null_score = min_null_score;
    if n > 0 {
        if handle_impossible_answer {
            min_null_score = min_null_score.min(s[0] * e[0]);
        }
        s[0] = 0.0;
        e[0] = 0.0;
    }
    Selected {
        spans: decode_spans(&s, &e, top_k, max_answer_len, &desired[..n]),
        min_null_score,
    }
}

/// transformers' `decode_spans`: the `top_k` best spans by `start[s] · end[e]` with
/// `s <= e < s + max_answer_len` (other pairs score 0 and may still be picked, as in numpy),
/// then only those whose start and end are both desired tokens.
pub fn decode_spans(
    start: &[f64],
    end: &[f64],
    top_k: usize,
    max_answer_len: usize,
    desired: &[bool],
) -> Vec<Span> {
    let n = start.len().min(end.len());
    if n == 0 || top_k == 0 {
        return Vec::new();
    }
    let score = |s: usize, e: usize| {
        if e >= s && e - s < max_answer_len {
            start[s] * end[e]
        } else {
            0.0
        }
    };
    let picked: Vec<(usize, usize)> = if top_k == 1 {
        // numpy's argmax: the first largest in row-major order.
        let mut best = (0, 0);
        let mut best_score = score(0, 0);
        for s in 0..n {
            for e in s..n.min(s.saturating_add(max_answer_len)) {
                let v = score(s, e);
                if v > best_score {
                    best_score = v;
                    best = (s, e);
                }
            }
        }
        vec![best]
    } else {
        // Only spans with s <= e < s + max_answer_len can score above 0; the others (all 0)
        // follow in row-major order when fewer than top_k are in the band.
        let band = max_answer_len.min(n);
        let mut all: Vec<(f64, usize, usize)> = Vec::with_capacity(n * band);
        for s in 0..n {
            for e in s..n.min(s.saturating_add(max_answer_len)) {
                all.push((score(s, e), s, e));
            }
        }
        // (numpy sorts all of them only when there are fewer than top_k; the order is the same.)
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        all.truncate(top_k);
        'fill: for s in 0..n {
            for e in 0..n {
                if all.len() >= top_k {
                    break 'fill;
                }
                if !(e >= s && e - s < max_answer_len) {
                    all.push((0.0, s, e));
                }
            }
        }
        all.into_iter().map(|(_, s, e)| (s, e)).collect()
    };
    let ok = |t: usize| desired.get(t).copied().unwrap_or(false);
    picked
        .into_iter()
        .filter(|&(s, e)| ok(s) && ok(e))
        .map(|(s, e)| Span {
            start: s,
            end: e,
            score: score(s, e),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_span_respects_order_and_length() {
        // Token 3 is the likeliest start, token 2 the likeliest end: the span must not run
        // backwards, so it is (3, 4).
        let start = [0.0, 0.1, 0.1, 0.6, 0.2];
        let end = [0.0, 0.1, 0.5, 0.1, 0.25];
        let desired = [true; 5];
        let spans = decode_spans(&start, &end, 1, 15, &desired);
        assert_eq!((spans[0].start, spans[0].end), (3, 4));
        assert!((spans[0].score - 0.15).abs() < 1e-12);
        // With max_answer_len 1 only single tokens count.
        let spans = decode_spans(&start, &end, 1, 1, &desired);
        assert_eq!((spans[0].start, spans[0].end), (3, 3));
        // top_k lists spans best first.
        let spans = decode_spans(&start, &end, 3, 15, &desired);
        assert_eq!(spans.len(), 3);
        assert!(spans[0].score >= spans[1].score && spans[1].score >= spans[2].score);
    }

    #[test]
    fn masked_tokens_never_start_or_end_an_answer() {
        // Token 1 (a question token) has the largest logits but is masked.
        let start = [0.0, 9.0, 1.0, 0.5];
        let end = [0.0, 9.0, 0.2, 1.0];
        let desired = [true, false, true, true];
        let sel = select_starts_ends(&start, &end, &desired, 1e6, 1, true, 15);
        assert_eq!((sel.spans[0].start, sel.spans[0].end), (2, 3));
        // The null score is p(CLS start) · p(CLS end), before CLS is zeroed.
        assert!(sel.min_null_score > 0.0 && sel.min_null_score < 1.0);
        let p: f64 = sel.spans[0].score;
        assert!(p > 0.0 && p < 1.0);
    }

    #[test]
    fn a_window_without_context_only_offers_the_cls_token() {
        let sel = select_starts_ends(&[1.0, 2.0], &[1.0, 2.0], &[true, false], 1e6, 1, false, 15);
        assert_eq!(
            sel.spans,
            vec![Span {
                start: 0,
                end: 0,
                score: 0.0
            }]
        );
    }
}
