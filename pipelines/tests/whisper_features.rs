//! Whisper's audio features: `speech_16k.wav` of whisper-tiny.en decoded and turned into log-mel
//! features that match transformers' `WhisperFeatureExtractor` (`reference.npz`
//! `input_features`, within 1e-4); WAV decoding of every sample format against hand-built
//! files; resampling against torchaudio's `resample` (`data/resample_golden.txt`, from
//! `data/make_resample_golden.py`); hostile WAV files (truncated headers, absurd chunk sizes, odd formats) are errors
//! naming the file, never panics.

mod common;

use kiln_pipelines::audio::{decode_wav, read_wav, Audio, WhisperFeatureExtractor};
use kiln_pipelines::{Error, Folder};

#[test]
fn speech_features_match_transformers() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("models").join("whisper-tiny.en");
    let audio = read_wav(&dir.join("speech_16k.wav")).expect("the WAV file decodes");
    assert_eq!((audio.sample_rate, audio.channels), (16000, 1));
    let fe = WhisperFeatureExtractor::load(&Folder::new(&dir)).expect("preprocessor_config.json");
    let got = fe.features(&audio).expect("features");
    let npz = kiln::read_npz(&dir.join("reference.npz")).expect("reference.npz");
    let want = &npz["input_features"];
    assert_eq!(got.shape(), want.shape());
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let (mut max, mut at) = (0.0f64, 0);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        if (a - b).abs() > max {
            (max, at) = ((a - b).abs(), i);
        }
    }
    println!(
        "whisper input_features: max |diff| {max:.3e} at mel {} frame {}",
        at / 3000,
        at % 3000
    );
    assert!(
        max <= 1e-4,
        "max |diff| {max:e} at {at}: {} vs {}",
        g[at],
        w[at]
    );
}

/// A WAV file: `fmt ` with `tag`, then `data`.
fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    // Wrapping: hostile headers may declare sizes that overflow the derived fields.
    let block = channels.wrapping_mul(bits.div_ceil(8));
    let mut fmt = Vec::new();
    fmt.extend(tag.to_le_bytes());
    fmt.extend(channels.to_le_bytes());
    fmt.extend(rate.to_le_bytes());
    fmt.extend(rate.wrapping_mul(u32::from(block)).to_le_bytes());
    fmt.extend(block.to_le_bytes());
    fmt.extend(bits.to_le_bytes());
    let mut out = b"RIFF".to_vec();
    out.extend((4 + 8 + fmt.len() as u32 + 8 + data.len() as u32).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend((fmt.len() as u32).to_le_bytes());
    out.extend(&fmt);
    out.extend(b"data");
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    out
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn every_sample_format_decodes_to_the_same_scale() {
    // 16-bit mono.
    let data: Vec<u8> = [0i16, 16384, -32768]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let a = decode_wav(&wav(1, 1, 16000, 16, &data), "a.wav").expect("16-bit");
    close(&a.samples, &[0.0, 0.5, -1.0]);
    // 8-bit (unsigned, centred at 128).
    let a = decode_wav(&wav(1, 1, 8000, 8, &[128, 192, 0]), "b.wav").expect("8-bit");
    close(&a.samples, &[0.0, 0.5, -1.0]);
    assert_eq!(a.sample_rate, 8000);
    // 24-bit.
    let data: Vec<u8> = [0i32, 1 << 22, -(1 << 23)]
        .iter()
        .flat_map(|x| x.to_le_bytes()[..3].to_vec())
        .collect();
    let a = decode_wav(&wav(1, 1, 16000, 24, &data), "c.wav").expect("24-bit");
    close(&a.samples, &[0.0, 0.5, -1.0]);
    // 32-bit integer.
    let data: Vec<u8> = [0i32, 1 << 30, i32::MIN]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let a = decode_wav(&wav(1, 1, 16000, 32, &data), "d.wav").expect("32-bit");
    close(&a.samples, &[0.0, 0.5, -1.0]);
    // 32-bit float, stereo: channels averaged.
    let data: Vec<u8> = [0.25f32, 0.75, -1.0, 0.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let a = decode_wav(&wav(3, 2, 44100, 32, &data), "e.wav").expect("float stereo");
    close(&a.samples, &[0.5, -0.5]);
    assert_eq!((a.sample_rate, a.channels), (44100, 2));
    // Another rate is resampled to the extractor's when features are computed.
    let fe: WhisperFeatureExtractor = serde_json::from_str("{}").expect("defaults");
    let f = fe.features(&a).expect("resampled features");
    assert_eq!(f.shape(), &[1, 80, 3000]);
}

/// Asserts `bytes` is refused as a WAV file naming `x.wav`.
fn refused(bytes: &[u8], what: &str) {
    match decode_wav(bytes, "x.wav") {
        Err(e @ Error::Audio { .. }) => {
            assert!(e.to_string().starts_with("x.wav: "), "{what}: {e}");
        }
        other => panic!("{what}: expected an audio error, got {other:?}"),
    }
}

#[test]
fn hostile_wav_files_are_errors() {
    let data: Vec<u8> = (0..64u8).collect();
    let good = wav(1, 2, 16000, 16, &data);
    decode_wav(&good, "x.wav").expect("the untouched file decodes");
    // Every truncation: the header cut anywhere, the data cut mid-frame.
    for len in 0..good.len() {
        if decode_wav(&good[..len], "x.wav").is_ok() {
            panic!("a file cut to {len} bytes decoded");
        }
    }
    // Absurd chunk sizes: a data chunk, a fmt chunk and the RIFF chunk far beyond the file.
    let mut big_data = good.clone();
    big_data[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(&big_data, "data chunk of 4 GiB");
    let mut big_fmt = good.clone();
    big_fmt[16..20].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    refused(&big_fmt, "fmt chunk of 4 GiB");
    let mut big_riff = good.clone();
    big_riff[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let _ = decode_wav(&big_riff, "x.wav"); // decodes or not; must not panic
                                            // Odd formats.
    refused(&wav(1, 0, 16000, 16, &data), "no channels");
    refused(&wav(1, 1, 0, 16, &data), "rate 0");
    refused(&wav(1, 1, 16000, 0, &data), "0-bit samples");
    refused(&wav(1, 1, 16000, 12, &data), "12-bit samples");
    refused(&wav(3, 1, 16000, 64, &data), "64-bit float");
    refused(&wav(2, 1, 16000, 16, &data), "ADPCM");
    refused(&wav(1, 65535, 16000, 32, &data), "65535 channels");
    refused(b"RIFF\x04\x00\x00\x00WAVE", "no chunks");
    refused(b"not a wav file at all", "not RIFF");
    // A missing file is a read error naming it.
    let e = read_wav(std::path::Path::new("/nonexistent/x.wav")).expect_err("missing");
    assert!(e.to_string().contains("/nonexistent/x.wav"), "{e}");
}

#[test]
fn bad_preprocessor_settings_are_refused() {
    let fe: WhisperFeatureExtractor = serde_json::from_str(r#"{"dither": 0.5}"#).expect("parses");
    assert!(fe.validate().expect_err("dither").contains("dither"));
    let fe: WhisperFeatureExtractor =
        serde_json::from_str(r#"{"chunk_length": 0}"#).expect("parses");
    assert!(fe.validate().is_err());
    let fe: WhisperFeatureExtractor = serde_json::from_str(r#"{"hop_length": 0}"#).expect("parses");
    assert!(fe.validate().is_err());
    let fe: WhisperFeatureExtractor =
        serde_json::from_str(r#"{"chunk_length": 18446744073709551615}"#).expect("parses");
    assert!(fe.validate().is_err());
}

/// The golden's three-tone signal at `rate`, as numpy computes it (f64, then f32).
fn three_tones(rate: u32, n: usize) -> Vec<f32> {
    let tau = 2.0 * std::f64::consts::PI;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (0.5 * (tau * 440.0 * t).sin()
                + 0.3 * (tau * 3000.0 * t).sin()
                + 0.1 * (tau * 3900.0 * t).sin()) as f32
        })
        .collect()
}

#[test]
fn resampling_matches_torchaudio() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/resample_golden.txt");
    let text = std::fs::read_to_string(&path).expect("the golden file");
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let mut cases = 0;
    while let (Some(head), Some(values)) = (lines.next(), lines.next()) {
        let h: Vec<usize> = head
            .split(' ')
            .map(|x| x.parse().expect("a number"))
            .collect();
        let want: Vec<f64> = values
            .split(' ')
            .map(|x| x.parse().expect("a value"))
            .collect();
        let (from, to) = (h[0] as u32, h[1] as u32);
        let audio = Audio {
            samples: three_tones(from, h[2]),
            sample_rate: from,
            channels: 1,
        };
        let got = audio.to_rate(to).expect("resamples");
        assert_eq!((got.samples.len(), got.sample_rate), (h[3], to), "{head}");
        let max = got
            .samples
            .iter()
            .zip(&want)
            .map(|(&g, w)| (f64::from(g) - w).abs())
            .fold(0.0, f64::max);
        println!("resample {from} -> {to} Hz: max |diff| {max:.3e}");
        assert!(max < 1e-6, "{from} -> {to}: max |diff| {max:e}");
        cases += 1;
    }
    assert_eq!(cases, 3);
}
