//! Audio for speech models: WAV files decoded to mono samples ([`wav`]) and Whisper's log-mel
//! features computed as transformers' `WhisperFeatureExtractor` does ([`mel`]).

pub mod mel;
pub mod wav;

pub use mel::WhisperFeatureExtractor;
pub use wav::{decode_wav, read_wav, Audio};
