//! Logits processors: what transformers' `_get_logits_processor` does to the next-token logits,
//! with its semantics and in its order, on one row of `f32` logits in place.
//!
//! [`LogitsProcessor::process`] runs: NaN → `-inf`; repetition penalty; suppress tokens;
//! begin-suppress tokens (first generated position only); and, when sampling, temperature,
//! top-k, top-p. Each step is also a public function, matching one transformers class.

use super::config::GenerationConfig;

/// The value a removed token gets (transformers' `filter_value`).
pub const FILTERED: f32 = f32::NEG_INFINITY;

/// transformers' `RepetitionPenaltyLogitsProcessor`: each id in `seen` (the prompt and the
/// tokens generated so far; repeats count once) has its score multiplied by `penalty` when it
/// is negative and divided by it otherwise. Ids outside the row are ignored.
pub fn repetition_penalty(row: &mut [f32], seen: &[u32], penalty: f32) {
    // transformers gathers every score before scattering, so a repeated id is penalised once.
    let mut done = vec![false; row.len()];
    for &id in seen {
        let i = id as usize;
        if let (Some(score), Some(d)) = (row.get_mut(i), done.get_mut(i)) {
            if !*d {
                *d = true;
                *score = if *score < 0.0 {
                    *score * penalty
                } else {
                    *score / penalty
                };
            }
        }
    }
}

/// transformers' `SuppressTokensLogitsProcessor` (and, at the first generated position,
/// `SuppressTokensAtBeginLogitsProcessor`): the scores of `ids` become `-inf`. Ids outside the
/// row are ignored.
pub fn suppress(row: &mut [f32], ids: &[u32]) {
    for &id in ids {
        if let Some(score) = row.get_mut(id as usize) {
            *score = FILTERED;
        }
    }
}

/// transformers' `TemperatureLogitsWarper`: every score divided by `temperature`.
pub fn temperature(row: &mut [f32], temperature: f32) {
    for score in row {
        *score /= temperature;
    }
}

/// transformers' `TopKLogitsWarper` (`min_tokens_to_keep = 1`): scores below the `k`-th largest
/// become `-inf`; ties with the `k`-th are kept, as `scores < topk(scores, k)[..., -1]` keeps
/// them. `k = 0` keeps at least one; `k` ≥ the row's length does nothing.
pub fn top_k(row: &mut [f32], k: usize) {
    let k = k.max(1);
    if k >= row.len() {
        return;
    }
    let mut sorted = row.to_vec();
    // Descending, so the k-th largest lands at k - 1.
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    for score in row {
        if *score < kth {
            *score = FILTERED;
        }
    }
}

/// transformers' `TopPLogitsWarper` (`min_tokens_to_keep = 1`): sorts the scores ascending,
/// takes the cumulative sum of their softmax, and sets to `-inf` the tokens whose cumulative
/// probability is ≤ `1 - top_p`; the most likely token is always kept. Equal scores are
/// sorted by index (a stable sort), so at the cut the lower indices go first; torch's
/// `sort` is not stable and orders them as its implementation happens to.
///
/// As torch does on the CPU: the softmax in `f32`, the cumulative sum accumulated in `f64` and
/// rounded to `f32` at each step, `1 - top_p` computed in `f64` and compared as `f32`.
pub fn top_p(row: &mut [f32], top_p: f64) {
    if row.is_empty() {
        return;
    }
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[a].total_cmp(&row[b]));
    let probs = softmax(&order.iter().map(|&i| row[i]).collect::<Vec<_>>());
    let cut = (1.0 - top_p) as f32;
    let mut cumulative = 0.0f64;
    // The last (largest) token is always kept.
    for (&i, &p) in order.iter().zip(&probs).take(row.len() - 1) {
        cumulative += f64::from(p);
        if (cumulative as f32) <= cut {
            row[i] = FILTERED;
        }
    }
}

/// The softmax of a row in `f32` (max subtracted); a row of only `-inf` gives zeros.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; row.len()];
    }
    let exps: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// The processors a [`GenerationConfig`] asks for, in transformers' order.
#[derive(Debug, Clone)]
pub struct LogitsProcessor {
    repetition_penalty: Option<f32>,
    suppress_tokens: Vec<u32>,
    begin_suppress_tokens: Vec<u32>,
    /// Temperature, top-k and top-p: only when sampling.
    warpers: Option<Warpers>,
}

#[derive(Debug, Clone, Copy)]
struct Warpers {
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f64>,
}

impl LogitsProcessor {
    /// The processors of `config`, each left out where transformers leaves it out (a
    /// repetition penalty or temperature of 1.0, `top_k = 0`, `top_p = 1.0`, greedy decoding
    /// for the three warpers). Expects a validated config.
    pub fn new(config: &GenerationConfig) -> LogitsProcessor {
        LogitsProcessor {
            repetition_penalty: (config.repetition_penalty != 1.0)
                .then_some(config.repetition_penalty as f32),
            suppress_tokens: config.suppress_tokens.clone(),
            begin_suppress_tokens: config.begin_suppress_tokens.clone(),
            warpers: config.do_sample.then_some(Warpers {
                temperature: (config.temperature != 1.0).then_some(config.temperature as f32),
                top_k: (config.top_k != 0).then_some(config.top_k),
                top_p: (config.top_p < 1.0).then_some(config.top_p),
            }),
        }
    }

    /// Processes one row of next-token logits in place. `seen` is the sequence so far, prompt
    /// included; `first_generated` says the row is for the first token after the prompt.
    ///
    /// NaN scores are first set to `-inf` (never chosen): Kiln's documented choice, where
    /// torch's argmax would pick a NaN and its multinomial would fail.
    pub fn process(&self, row: &mut [f32], seen: &[u32], first_generated: bool) {
        for score in row.iter_mut() {
            if score.is_nan() {
                *score = FILTERED;
            }
        }
        if let Some(penalty) = self.repetition_penalty {
            repetition_penalty(row, seen, penalty);
        }
        suppress(row, &self.suppress_tokens);
        if first_generated {
            suppress(row, &self.begin_suppress_tokens);
        }
        if let Some(w) = self.warpers {
            if let Some(t) = w.temperature {
                temperature(row, t);
            }
            if let Some(k) = w.top_k {
                top_k(row, k);
            }
            if let Some(p) = w.top_p {
                top_p(row, p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn repetition_penalty_signs_and_repeats() {
        let mut row = vec![2.0, -2.0, 1.0, 0.0];
        repetition_penalty(&mut row, &[0, 1, 1, 3, 9], 2.0);
        assert_eq!(row, vec![1.0, -4.0, 1.0, 0.0]);
    }

    #[test]
    fn top_k_keeps_ties() {
        let mut row = vec![1.0, 3.0, 2.0, 2.0, 0.0];
        top_k(&mut row, 2);
        assert_eq!(row, vec![NEG, 3.0, 2.0, 2.0, NEG]);
        let mut one = vec![1.0, 3.0];
        top_k(&mut one, 0);
        assert_eq!(one, vec![NEG, 3.0]);
    }

    #[test]
    fn top_p_keeps_at_least_one() {
        let mut row = vec![0.0, 10.0, 0.0];
        top_p(&mut row, 0.01);
        assert_eq!(row, vec![NEG, 10.0, NEG]);
        let mut row = vec![0.0f32.ln(), 0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        // Ascending 0, .2, .3, .5: cumulative 0, .2, .5, 1 — keeps those above 1 - 0.6 = 0.4.
        top_p(&mut row, 0.6);
        assert_eq!(row[1], 0.5f32.ln());
        assert_eq!(row[2], 0.3f32.ln());
        assert_eq!((row[0], row[3]), (NEG, NEG));
    }

    #[test]
    fn empty_and_nan_rows_do_not_panic() {
        let p = LogitsProcessor::new(&GenerationConfig {
            do_sample: true,
            top_k: 2,
            top_p: 0.5,
            temperature: 0.5,
            repetition_penalty: 1.3,
            suppress_tokens: vec![0],
            begin_suppress_tokens: vec![1],
            ..GenerationConfig::default()
        });
        let mut empty: Vec<f32> = Vec::new();
        p.process(&mut empty, &[3, 4], true);
        let mut nan = vec![f32::NAN, 1.0, f32::NAN, 2.0];
        p.process(&mut nan, &[7], true);
        assert_eq!(nan, vec![NEG, NEG, NEG, 4.0]);
        let mut all = vec![f32::NAN; 3];
        p.process(&mut all, &[], false);
        assert!(all.iter().all(|&x| x == NEG));
    }

    #[test]
    fn greedy_skips_the_warpers() {
        let p = LogitsProcessor::new(&GenerationConfig {
            temperature: 0.5,
            top_k: 1,
            ..GenerationConfig::default()
        });
        let mut row = vec![1.0, 2.0, 3.0];
        p.process(&mut row, &[], false);
        assert_eq!(row, vec![1.0, 2.0, 3.0]);
    }

    /// `pipelines/tests/data/sampling_refs.json`, made by `tools/make_sampling_refs.py` with
    /// transformers' own processors.
    fn references() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sampling_refs.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn floats(v: &Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| match x {
                Value::String(s) if s == "-inf" => NEG,
                other => other.as_f64().unwrap() as f32,
            })
            .collect()
    }

    fn ids(v: &Value) -> Vec<u32> {
        v.as_array()
            .map(|a| a.iter().map(|x| x.as_u64().unwrap() as u32).collect())
            .unwrap_or_default()
    }

    fn assert_row(case: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{case}");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            if w == NEG || g == NEG {
                assert_eq!(g, w, "{case}: index {i}");
            } else {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{case}: index {i}: {g} vs transformers' {w}"
                );
            }
        }
    }

    #[test]
    fn matches_transformers_processors() {
        let refs = references();
        let cases = refs["cases"].as_array().unwrap();
        assert!(cases.len() >= 20, "too few cases: {}", cases.len());
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let mut row = floats(&case["input"]);
            let arg = &case["arg"];
            match case["processor"].as_str().unwrap() {
                "repetition_penalty" => {
                    repetition_penalty(&mut row, &ids(&case["ids"]), arg.as_f64().unwrap() as f32)
                }
                "temperature" => temperature(&mut row, arg.as_f64().unwrap() as f32),
                "top_k" => top_k(&mut row, arg.as_u64().unwrap() as usize),
                "top_p" => top_p(&mut row, arg.as_f64().unwrap()),
                "suppress" => suppress(&mut row, &ids(&case["ids"])),
                "begin_suppress" => {
                    if case["first"].as_bool().unwrap() {
                        suppress(&mut row, &ids(&case["ids"]))
                    }
                }
                "pipeline" => {
                    let config: GenerationConfig =
                        serde_json::from_value(case["config"].clone()).unwrap();
                    LogitsProcessor::new(&config).process(
                        &mut row,
                        &ids(&case["ids"]),
                        case["first"].as_bool().unwrap(),
                    )
                }
                other => panic!("{name}: unknown processor {other}"),
            }
            assert_row(name, &row, &floats(&case["output"]));
        }
    }
}
