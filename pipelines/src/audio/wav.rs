//! WAV files (RIFF `WAVE`) as mono samples in `[-1, 1)`: PCM 8/16/24/32-bit integer or 32-bit
//! float, plain or `WAVE_FORMAT_EXTENSIBLE`, any number of channels (averaged), any sample rate
//! (reported; [`Audio::to_rate`] resamples).
//!
//! The file is untrusted: at most [`MAX_WAV_BYTES`] are read, at most [`MAX_FRAMES`] frames
//! decoded, and a malformed header, a data chunk longer than the file or an odd format is an
//! [`Error::Audio`] naming the file — never a panic. Parsing is the `hound` crate's, over the
//! bytes already in memory.
//!
//! Integer samples are scaled as soundfile / librosa read them (`x / 2^(bits-1)`, 8-bit
//! unsigned samples centred first), so the features match transformers' on the same file.

use crate::error::Error;
use std::io::Read;
use std::path::Path;

/// The largest WAV file read (128 MiB: over an hour of 16 kHz 16-bit stereo).
pub const MAX_WAV_BYTES: u64 = 128 << 20;

/// The most frames (samples per channel) decoded: about 2.3 hours at 16 kHz.
pub const MAX_FRAMES: usize = 1 << 27;

/// Mono audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples in `[-1, 1)` (floats as stored), channels averaged.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
    /// The channels the file had.
    pub channels: u16,
}

/// Reads and decodes the WAV file at `path`.
pub fn read_wav(path: &Path) -> Result<Audio, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_WAV_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    decode_wav(&bytes, &path.display().to_string())
}

/// Decodes WAV bytes; `name` names the file (or input) in errors.
pub fn decode_wav(bytes: &[u8], name: &str) -> Result<Audio, Error> {
    let bad = |message: String| Error::Audio {
        file: name.to_string(),
        message,
    };
    if bytes.len() as u64 > MAX_WAV_BYTES {
        return Err(bad(format!(
            "is larger than {MAX_WAV_BYTES} bytes, the most Kiln reads as a WAV file"
        )));
    }
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("is not a WAV file Kiln reads: {e}")))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 {
        return Err(bad("declares 0 channels".into()));
    }
    if spec.sample_rate == 0 {
        return Err(bad("declares a sample rate of 0".into()));
    }
    // `len` is what the header declares; the data chunk was already checked to fit in its
    // declared size, not in the file, so allocate only what the bytes can hold.
    let declared = usize::try_from(reader.len()).unwrap_or(usize::MAX);
    if declared / channels > MAX_FRAMES {
        return Err(bad(format!(
            "declares {} frames; Kiln reads at most {MAX_FRAMES}",
            declared / channels
        )));
    }
    let cap = declared.min(bytes.len());
    let values: Vec<f64> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => collect(reader.into_samples::<f32>(), cap, f64::from),
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / f64::from(1u32 << (bits - 1));
            collect(reader.into_samples::<i32>(), cap, |x| f64::from(x) * scale)
        }
        (format, bits) => {
            return Err(bad(format!(
                "has {bits}-bit {} samples; Kiln reads 8, 16, 24 and 32-bit integer PCM and \
                 32-bit float",
                match format {
                    hound::SampleFormat::Float => "float",
                    hound::SampleFormat::Int => "integer",
                }
            )))
        }
    }
    .map_err(|e| bad(format!("has unreadable samples: {e}")))?;
    if !values.len().is_multiple_of(channels) {
        return Err(bad(format!(
            "holds {} samples, not a whole number of {channels}-channel frames",
            values.len()
        )));
    }
    let samples = values
        .chunks_exact(channels)
        .map(|frame| (frame.iter().sum::<f64>() / channels as f64) as f32)
        .collect();
    Ok(Audio {
        samples,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    })
}

/// Collects a sample iterator, converting each to f64; `cap` bounds the first allocation.
fn collect<T, I: Iterator<Item = hound::Result<T>>>(
    it: I,
    cap: usize,
    f: impl Fn(T) -> f64,
) -> hound::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(cap);
    for x in it {
        out.push(f(x?));
    }
    Ok(out)
}

/// The resampling kernel's half width in zero crossings (torchaudio's `lowpass_filter_width`).
const LOWPASS_WIDTH: f64 = 6.0;
/// The cutoff as a fraction of the lower Nyquist frequency (torchaudio's `rolloff`).
const ROLLOFF: f64 = 0.99;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Audio {
    /// The audio at `rate` samples per second: itself when the rate is already `rate`, else
    /// resampled as transformers' speech-recognition pipeline does (torchaudio's
    /// `functional.resample` with its defaults: band-limited sinc interpolation with a Hann
    /// window, 6 zero crossings, rolloff 0.99; `ceil(len · rate / sample_rate)` samples),
    /// computed in f64 with only the kernel's non-zero taps.
    pub fn to_rate(&self, rate: u32) -> Result<Audio, Error> {
        if rate == self.sample_rate {
            return Ok(self.clone());
        }
        if rate == 0 {
            return Err(Error::Option {
                message: "cannot resample to 0 samples per second".into(),
            });
        }
        let g = gcd(u64::from(self.sample_rate), u64::from(rate));
        let (orig, new) = (u64::from(self.sample_rate) / g, u64::from(rate) / g);
        let len = self.samples.len() as u64;
        let out_len = (len as u128 * new as u128).div_ceil(orig as u128);
        let out_len = usize::try_from(out_len)
            .ok()
            .filter(|&n| n <= MAX_FRAMES)
            .ok_or_else(|| Error::Option {
                message: format!(
                    "resampling {len} samples from {} Hz to {rate} Hz gives more than \
                     {MAX_FRAMES} samples",
                    self.sample_rate
                ),
            })?;
        let (orig, new) = (orig as f64, new as f64);
        let base = orig.min(new) * ROLLOFF;
        let scale = base / orig;
        // Tap `k` of output `n` sits at `t = (k/orig − n/new) · base`; it is non-zero for
        // |t| < LOWPASS_WIDTH.
        let reach = LOWPASS_WIDTH * orig / base;
        let x = &self.samples;
        let samples = (0..out_len)
            .map(|n| {
                let centre = n as f64 * orig / new;
                let first = (centre - reach).ceil().max(0.0) as usize;
                let last = ((centre + reach).floor().max(0.0) as usize).min(x.len() - 1);
                let mut acc = 0.0;
                for (k, &v) in x.iter().enumerate().take(last + 1).skip(first) {
                    let t = ((k as f64 / orig - n as f64 / new) * base)
                        .clamp(-LOWPASS_WIDTH, LOWPASS_WIDTH);
                    let w = (t * std::f64::consts::PI / LOWPASS_WIDTH / 2.0)
                        .cos()
                        .powi(2);
                    let t = t * std::f64::consts::PI;
                    let sinc = if t == 0.0 { 1.0 } else { t.sin() / t };
                    acc += f64::from(v) * sinc * w * scale;
                }
                acc as f32
            })
            .collect();
        Ok(Audio {
            samples,
            sample_rate: rate,
            channels: self.channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_a_low_tone_and_its_length() {
        let rate = 48_000;
        let tone: Vec<f32> = (0..4800)
            .map(|i| (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin() as f32)
            .collect();
        let a = Audio {
            samples: tone,
            sample_rate: rate,
            channels: 1,
        };
        let b = a.to_rate(16_000).expect("resamples");
        assert_eq!(b.samples.len(), 1600);
        // Away from the edges, the 440 Hz tone is unchanged (up to the rolloff's tiny gain).
        for (i, &y) in b.samples.iter().enumerate().skip(100).take(1400) {
            let want = (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16_000.0).sin();
            assert!((f64::from(y) - want).abs() < 2e-3, "{i}: {y} vs {want}");
        }
        assert_eq!(a.to_rate(rate).expect("same rate"), a);
    }
}
