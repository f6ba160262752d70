//! Whisper's log-mel features, as transformers' `WhisperFeatureExtractor` computes them: the
//! audio padded with zeros (or cut) to `chunk_length · sampling_rate` samples, a centred STFT
//! (reflect padding, periodic Hann window of `n_fft`, hop `hop_length`), the power spectrum,
//! the Slaney mel filter bank (`feature_size` filters over 0–8000 Hz, Slaney scale and area
//! normalisation, as `audio_utils.mel_filter_bank` builds it), the last frame dropped,
//! `log10(max(x, 1e-10))`, clamped from below to `max − 8`, then `(x + 4) / 4`.
//!
//! Computed in f64 throughout (transformers' torch path works in f32, its numpy path in f64);
//! the output is f32 `[1, feature_size, frames]`.

use super::wav::{Audio, MAX_FRAMES};
use crate::error::Error;
use crate::files::Files;
use kiln_runtime::Tensor;
use serde::Deserialize;

/// The settings of `preprocessor_config.json` the features depend on, with transformers'
/// defaults (`n_samples` and `nb_max_frames` are derived, as transformers derives them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WhisperFeatureExtractor {
    /// Mel filters (rows of the output).
    #[serde(default = "default_feature_size")]
    pub feature_size: usize,
    /// The rate the audio must have.
    #[serde(default = "default_sampling_rate")]
    pub sampling_rate: u32,
    /// STFT hop in samples.
    #[serde(default = "default_hop")]
    pub hop_length: usize,
    /// Seconds per window of audio.
    #[serde(default = "default_chunk")]
    pub chunk_length: usize,
    /// STFT window and FFT length.
    #[serde(default = "default_n_fft")]
    pub n_fft: usize,
    /// The value audio is padded with.
    #[serde(default)]
    pub padding_value: f64,
    /// Random noise added before the STFT (only 0 is supported: features are deterministic).
    #[serde(default)]
    pub dither: f64,
}

fn default_feature_size() -> usize {
    80
}
fn default_sampling_rate() -> u32 {
    16000
}
fn default_hop() -> usize {
    160
}
fn default_chunk() -> usize {
    30
}
fn default_n_fft() -> usize {
    400
}

/// The highest mel filter's upper frequency (transformers fixes it at 8 kHz).
const MAX_FREQUENCY: f64 = 8000.0;

impl WhisperFeatureExtractor {
    /// The settings from `preprocessor_config.json` of `files`, checked.
    pub fn load(files: &dyn Files) -> Result<WhisperFeatureExtractor, Error> {
        let name = "preprocessor_config.json";
        let Some(value) = files.json(name)? else {
            return Err(Error::Missing {
                file: files.describe(name),
                why: "Whisper's audio features".into(),
            });
        };
        let bad = |message: String| Error::Settings {
            file: files.describe(name),
            message,
        };
        let s: WhisperFeatureExtractor = serde_json::from_value(value)
            .map_err(|e| bad(format!("is not a Whisper feature extractor config: {e}")))?;
        s.validate().map_err(bad)?;
        Ok(s)
    }

    /// Checks the sizes; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1024).contains(&self.feature_size) {
            return Err(format!(
                "`feature_size` {} is not in 1..=1024",
                self.feature_size
            ));
        }
        if !(2..=1 << 16).contains(&self.n_fft) {
            return Err(format!("`n_fft` {} is not in 2..=65536", self.n_fft));
        }
        if !(1..=self.n_fft).contains(&self.hop_length) {
            return Err(format!(
                "`hop_length` {} is not in 1..=n_fft ({})",
                self.hop_length, self.n_fft
            ));
        }
        if !(1..=1_000_000).contains(&self.sampling_rate) {
            return Err(format!(
                "`sampling_rate` {} is not in 1..=1000000",
                self.sampling_rate
            ));
        }
        let n = self.n_samples().filter(|&n| n <= MAX_FRAMES);
        if n.is_none_or(|n| n <= self.n_fft / 2) {
            return Err(format!(
                "`chunk_length` {} s at {} Hz is not between n_fft/2 and {MAX_FRAMES} samples",
                self.chunk_length, self.sampling_rate
            ));
        }
        if self.frames().saturating_mul(self.feature_size) > 1 << 28 {
            return Err("the features would have more than 2^28 values".into());
        }
        if self.dither != 0.0 {
            return Err(format!(
                "`dither` {} adds random noise; Kiln computes features without it (0.0)",
                self.dither
            ));
        }
        if !self.padding_value.is_finite() {
            return Err("`padding_value` must be a finite number".into());
        }
        Ok(())
    }

    /// The samples of one window: `chunk_length · sampling_rate`.
    pub fn n_samples(&self) -> Option<usize> {
        self.chunk_length
            .checked_mul(usize::try_from(self.sampling_rate).ok()?)
    }

    /// Frames of the output: `n_samples / hop_length`.
    pub fn frames(&self) -> usize {
        self.n_samples().unwrap_or(0) / self.hop_length.max(1)
    }

    /// The features of `audio` (resampled first if its rate is not `sampling_rate`):
    /// f32 `[1, feature_size, frames]`.
    pub fn features(&self, audio: &Audio) -> Result<Tensor, Error> {
        self.validate()
            .map_err(|message| Error::Option { message })?;
        let audio = audio.to_rate(self.sampling_rate)?;
        let values = self.log_mel(&audio.samples);
        Tensor::from_f32(vec![1, self.feature_size, self.frames()], values).map_err(|e| {
            Error::Option {
                message: format!("cannot build the features tensor: {e}"),
            }
        })
    }

    /// The normalised log-mel spectrogram of `samples` (at `sampling_rate`), row-major
    /// `[feature_size, frames]`. The settings must be valid.
    pub fn log_mel(&self, samples: &[f32]) -> Vec<f32> {
        let n = self.n_samples().unwrap_or(0);
        let (n_fft, hop, mels) = (self.n_fft, self.hop_length, self.feature_size);
        let frames = self.frames();
        let bins = n_fft / 2 + 1;
        // Pad or truncate, then reflect-pad n_fft/2 on both sides (torch.stft's `center`).
        let mut wave: Vec<f64> = samples.iter().take(n).map(|&x| f64::from(x)).collect();
        wave.resize(n, self.padding_value);
        let half = n_fft / 2;
        let padded: Vec<f64> = (0..n + 2 * half)
            .map(|i| {
                let j = if i < half {
                    half - i
                } else if i - half >= n {
                    2 * (n - 1) - (i - half)
                } else {
                    i - half
                };
                wave[j]
            })
            .collect();
        let window: Vec<f64> = (0..n_fft)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos())
            .collect();
        let filters = mel_filter_bank(
            bins,
            mels,
            0.0,
            MAX_FREQUENCY,
            f64::from(self.sampling_rate),
        );
        // Each filter's non-zero bins, so the product skips the zeros.
        let spans: Vec<(usize, usize)> = (0..mels)
            .map(|m| {
                let nz = |b: &usize| filters[b * mels + m] != 0.0;
                let first = (0..bins).find(nz).unwrap_or(0);
                let last = (0..bins).rev().find(nz).map_or(0, |b| b + 1);
                (first, last.max(first))
            })
            .collect();
        let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(n_fft);
        let mut input = fft.make_input_vec();
        let mut spectrum = fft.make_output_vec();
        let mut power = vec![0.0f64; bins];
        let mut log_spec = vec![0.0f64; mels * frames];
        for t in 0..frames {
            let frame = &padded[t * hop..t * hop + n_fft];
            for ((x, &s), &w) in input.iter_mut().zip(frame).zip(&window) {
                *x = s * w;
            }
            // Lengths come from the plan itself, so this cannot fail; keep zeros if it did.
            if fft.process(&mut input, &mut spectrum).is_err() {
                spectrum.iter_mut().for_each(|c| *c = Default::default());
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, &(first, last)) in spans.iter().enumerate() {
                let e: f64 = (first..last)
                    .map(|b| filters[b * mels + m] * power[b])
                    .sum();
                log_spec[m * frames + t] = e.max(1e-10).log10();
            }
        }
        let max = log_spec.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        log_spec
            .iter()
            .map(|&x| ((x.max(max - 8.0) + 4.0) / 4.0) as f32)
            .collect()
    }
}

/// Hertz to mels on the Slaney scale (linear below 1 kHz, logarithmic above).
pub fn hertz_to_mel(freq: f64) -> f64 {
    let (min_log_hertz, min_log_mel) = (1000.0, 15.0);
    let logstep = 27.0 / 6.4f64.ln();
    if freq >= min_log_hertz {
        min_log_mel + (freq / min_log_hertz).ln() * logstep
    } else {
        3.0 * freq / 200.0
    }
}

/// Mels to hertz on the Slaney scale.
pub fn mel_to_hertz(mel: f64) -> f64 {
    let (min_log_hertz, min_log_mel) = (1000.0, 15.0);
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hertz * (logstep * (mel - min_log_mel)).exp()
    } else {
        200.0 * mel / 3.0
    }
}

/// numpy's `linspace(start, stop, n)`.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (stop - start) / (n - 1) as f64;
    (0..n)
        .map(|i| {
            if i + 1 == n {
                stop
            } else {
                start + i as f64 * step
            }
        })
        .collect()
}

/// transformers' `mel_filter_bank(num_frequency_bins, num_mel_filters, min_frequency,
/// max_frequency, sampling_rate, norm="slaney", mel_scale="slaney")`: triangular filters on
/// the FFT bins `linspace(0, sampling_rate // 2, bins)`, each scaled by `2 / (upper − lower)`;
/// row-major `[bins, mels]`.
pub fn mel_filter_bank(
    bins: usize,
    mels: usize,
    min_frequency: f64,
    max_frequency: f64,
    sampling_rate: f64,
) -> Vec<f64> {
    let mel_freqs = linspace(
        hertz_to_mel(min_frequency),
        hertz_to_mel(max_frequency),
        mels + 2,
    );
    let filter_freqs: Vec<f64> = mel_freqs.iter().map(|&m| mel_to_hertz(m)).collect();
    let fft_freqs = linspace(0.0, (sampling_rate / 2.0).floor(), bins);
    let diff: Vec<f64> = filter_freqs.windows(2).map(|w| w[1] - w[0]).collect();
    let mut out = vec![0.0; bins * mels];
    for (b, &f) in fft_freqs.iter().enumerate() {
        for m in 0..mels {
            let down = -(filter_freqs[m] - f) / diff[m];
            let up = (filter_freqs[m + 2] - f) / diff[m + 1];
            let enorm = 2.0 / (filter_freqs[m + 2] - filter_freqs[m]);
            out[b * mels + m] = 0.0f64.max(down.min(up)) * enorm;
        }
    }
    out
}
