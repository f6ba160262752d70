//! `kiln transcribe MODEL AUDIO.wav`: speech to text with a Whisper Hugging Face folder. Both
//! graphs (the encoder with the cross-attention keys and values, the cached decoder) are
//! compiled in memory ([`kiln::whisper`]) and driven by
//! [`kiln_pipelines::generation::Whisper`]: greedy decoding with the folder's
//! `generation_config.json`. Prints the text, or with `--json` one object with `ids`, `text`,
//! `encode_ms` and `decode_ms`.

use clap::Args;
use kiln_pipelines::audio::read_wav;
use kiln_pipelines::generation::Whisper;
use kiln_pipelines::Folder;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `kiln transcribe`.
#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// The model: a Whisper Hugging Face folder (compiled in memory).
    pub model: PathBuf,
    /// The speech: a WAV file (PCM or float, any sample rate; the first 30 s are heard).
    pub audio: PathBuf,
    /// Print one JSON object: `ids` (generated, without the end of sequence), `text`,
    /// `encode_ms` (features and encoder) and `decode_ms` (the decode loop).
    #[arg(long)]
    pub json: bool,
    /// Worker threads of the models (default: `KILN_THREADS`, else every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Runs `kiln transcribe`.
pub fn transcribe(args: &TranscribeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // Both checks are cheap: a wrong folder or a bad WAV file fails before compiling.
    kiln::whisper::whisper_config(&args.model)?;
    let audio = read_wav(&args.audio)?;
    let load = kiln_runtime::LoadOptions {
        threads: args.threads,
        ..Default::default()
    };
    let reporter = super::progress::Reporter::for_stderr();
    let opts = kiln::backend::CompileOptions {
        progress: reporter.as_ref().map(|r| r.pipeline()),
        ..Default::default()
    };
    let models = kiln::whisper::load_whisper(&args.model, &opts, &load)?;
    drop(reporter);
    let whisper = Whisper::new(&models.encoder, &models.decoder, &Folder::new(&args.model))?;
    let transcript = whisper.transcribe(&audio)?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&transcript)?)?;
    } else {
        writeln!(out, "{}", transcript.text.trim())?;
    }
    Ok(())
}
