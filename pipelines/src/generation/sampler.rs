//! Choosing the next token from processed logits: greedy (argmax, first index on ties as
//! `torch.argmax`) or a draw from the softmax with a seeded, platform-independent PRNG
//! (xoshiro256**, seeded through splitmix64).

use super::config::GenerationConfig;
use super::logits::LogitsProcessor;
use crate::Error;

/// xoshiro256** (Blackman and Vigna, 2018) seeded by splitmix64: integer arithmetic only, so a
/// seed gives the same numbers on every platform.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator of a seed: its four words are four splitmix64 outputs from `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut split = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [split(), split(), split(), split()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform number in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The index of the largest score, the first of equal ones (`torch.argmax`); NaN counts as
/// `-inf`. `None` for an empty row or one with no score above `-inf`.
pub fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in row.iter().enumerate() {
        if x.is_nan() || x == f32::NEG_INFINITY {
            continue;
        }
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i)
}

/// A draw from the softmax of `row` with `u` uniform in `[0, 1)`: the first index whose
/// cumulative probability (in `f64`) exceeds `u`; tokens at `-inf` (or NaN) are never drawn,
/// and where some tokens are at `+inf` only those are.
/// `None` for an empty row or one with no score above `-inf`.
pub fn sample(row: &[f32], u: f64) -> Option<usize> {
    let max = row
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return None;
    }
    // Tokens at +inf, if any, share all the probability (torch's softmax would give NaN).
    let weight = |x: f32| {
        if x.is_nan() {
            0.0
        } else if max == f32::INFINITY {
            f64::from(u8::from(x == max))
        } else {
            f64::from(x - max).exp()
        }
    };
    let total: f64 = row.iter().map(|&x| weight(x)).sum();
    let target = u * total;
    let mut cumulative = 0.0;
    let mut last = None;
    for (i, &x) in row.iter().enumerate() {
        let w = weight(x);
        if w > 0.0 {
            cumulative += w;
            last = Some(i);
            if cumulative > target {
                return Some(i);
            }
        }
    }
    // Rounding can leave the target at the very end: the last drawable token.
    last
}

/// Chooses each next token: the [`LogitsProcessor`] of a config, then argmax or a seeded draw.
/// One sampler per generated sequence: its first [`Sampler::next`] is the first generated
/// position (where `begin_suppress_tokens` apply).
#[derive(Debug, Clone)]
pub struct Sampler {
    processor: LogitsProcessor,
    do_sample: bool,
    seed: u64,
    rng: Rng,
    steps: usize,
}

impl Sampler {
    /// The sampler of `config`, validated first. Without a `seed`, one is taken from the clock.
    pub fn new(config: &GenerationConfig) -> Result<Sampler, Error> {
        config.validate()?;
        let seed = config.seed.unwrap_or_else(clock_seed);
        Ok(Sampler {
            processor: LogitsProcessor::new(config),
            do_sample: config.do_sample,
            seed,
            rng: Rng::new(seed),
            steps: 0,
        })
    }

    /// The seed in use (the config's, or the one taken from the clock).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next token from the logits of the last position (processed in place) and the
    /// sequence so far, prompt included. An empty row, or one where every token is `-inf`
    /// or NaN after processing, is an [`Error::Logits`].
    pub fn next(&mut self, logits: &mut [f32], seen: &[u32]) -> Result<u32, Error> {
        if logits.is_empty() {
            return Err(Error::Logits {
                message: "the logits row is empty".to_string(),
            });
        }
        self.processor.process(logits, seen, self.steps == 0);
        self.steps += 1;
        let chosen = if self.do_sample {
            let u = self.rng.next_f64();
            sample(logits, u)
        } else {
            argmax(logits)
        };
        let index = chosen.ok_or_else(|| Error::Logits {
            message: format!(
                "every one of the {} logits is -inf or NaN after processing",
                logits.len()
            ),
        })?;
        u32::try_from(index).map_err(|_| Error::Logits {
            message: format!("token index {index} does not fit a u32 id"),
        })
    }
}

/// A seed from the clock's nanoseconds (0 if the clock is before 1970).
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(seed: u64) -> GenerationConfig {
        GenerationConfig {
            do_sample: true,
            top_k: 0,
            seed: Some(seed),
            ..GenerationConfig::default()
        }
    }

    #[test]
    fn xoshiro_reference_values() {
        // splitmix64(0) first output, from the reference implementation.
        let rng = Rng::new(0);
        assert_eq!(rng.s[0], 0xe220_a839_7b1d_cdaf);
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let u = Rng::new(7).next_f64();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn greedy_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[f32::NAN, 0.0, 0.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY; 2]), None);
        assert_eq!(argmax(&[]), None);
        assert_eq!(sample(&[1.0, f32::INFINITY, 2.0], 0.99), Some(1));
        let mut s = Sampler::new(&GenerationConfig::default()).unwrap();
        assert_eq!(s.next(&mut [0.5, 2.0, 2.0], &[]).unwrap(), 1);
    }

    #[test]
    fn bad_rows_are_errors() {
        for mut s in [
            Sampler::new(&GenerationConfig::default()).unwrap(),
            Sampler::new(&sampling(1)).unwrap(),
        ] {
            assert!(matches!(s.next(&mut [], &[]), Err(Error::Logits { .. })));
            let mut row = [f32::NAN, f32::NEG_INFINITY];
            assert!(matches!(s.next(&mut row, &[]), Err(Error::Logits { .. })));
            // NaN is never chosen.
            assert_eq!(s.next(&mut [f32::NAN, -5.0, f32::NAN], &[]).unwrap(), 1);
        }
    }

    #[test]
    fn invalid_config_is_an_error() {
        let mut c = sampling(1);
        c.temperature = 0.0;
        assert!(matches!(
            Sampler::new(&c),
            Err(Error::Generation { field, .. }) if field == "temperature"
        ));
    }

    fn draws(seed: u64, n: usize, row: &[f32]) -> Vec<u32> {
        let mut s = Sampler::new(&sampling(seed)).unwrap();
        (0..n)
            .map(|_| s.next(&mut row.to_vec(), &[]).unwrap())
            .collect()
    }

    #[test]
    fn same_seed_same_sequence() {
        let row: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let a = draws(1234, 200, &row);
        assert_eq!(a, draws(1234, 200, &row));
        assert_ne!(a, draws(1235, 200, &row));
        assert_eq!(Sampler::new(&sampling(9)).unwrap().seed(), 9);
    }

    #[test]
    fn frequencies_follow_the_softmax() {
        let probs = [0.5, 0.25, 0.15, 0.1, 0.0];
        let row: Vec<f32> = probs.iter().map(|p: &f64| (*p as f32).ln()).collect();
        let n = 100_000;
        let mut counts = [0usize; 5];
        for id in draws(2024, n, &row) {
            counts[id as usize] += 1;
        }
        assert_eq!(counts[4], 0, "a token at -inf was drawn");
        for (c, p) in counts.iter().zip(probs) {
            let freq = *c as f64 / n as f64;
            // 5 standard deviations of a binomial proportion at n = 100000 is < 0.008.
            assert!((freq - p).abs() < 0.008, "{counts:?}");
        }
    }

    #[test]
    fn temperature_and_top_k_shape_the_draws() {
        let row = [0.0f32, 1.0, 2.0, 3.0];
        let mut c = sampling(5);
        c.top_k = 2;
        let mut s = Sampler::new(&c).unwrap();
        for _ in 0..200 {
            assert!(s.next(&mut row.to_vec(), &[]).unwrap() >= 2);
        }
        c.top_k = 0;
        c.temperature = 0.01;
        let mut s = Sampler::new(&c).unwrap();
        for _ in 0..200 {
            assert_eq!(s.next(&mut row.to_vec(), &[]).unwrap(), 3);
        }
    }

    #[test]
    fn begin_suppress_only_at_the_first_step() {
        let c = GenerationConfig {
            begin_suppress_tokens: vec![2],
            ..GenerationConfig::default()
        };
        let mut s = Sampler::new(&c).unwrap();
        let row = [0.0f32, 1.0, 5.0];
        assert_eq!(s.next(&mut row.to_vec(), &[0]).unwrap(), 1);
        assert_eq!(s.next(&mut row.to_vec(), &[0, 1]).unwrap(), 2);
    }
}
