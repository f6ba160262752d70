//! `Generator`: one generated sequence from the logits of each step to printable text — the
//! sampler, the stop criteria and the streaming detokenizer wired together as transformers'
//! `generate` + `TextStreamer` use them. The model (and its KV cache) stays with the caller.

use super::config::GenerationConfig;
use super::sampler::Sampler;
use super::stop::{StopCriteria, StopReason};
use super::stream::TextStream;
use crate::Error;
use tokenizers::Tokenizer;

/// What one step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The chosen token (already appended to [`Generator::ids`]; feed it to the model next).
    pub id: u32,
    /// Text now final, to print (often empty while a character or stop string is incomplete).
    pub text: String,
    /// Set when this step ended generation.
    pub stop: Option<StopReason>,
}

/// One sequence being generated after a prompt.
///
/// ```no_run
/// # fn main() -> Result<(), kiln_pipelines::Error> {
/// use kiln_pipelines::generation::{GenerationConfig, Generator};
/// # let tokenizer = tokenizers::Tokenizer::from_file("tokenizer.json").unwrap();
/// # let prompt: Vec<u32> = vec![1, 2, 3];
/// # let mut next_logits = |_ids: &[u32]| vec![0.0f32; 49152];
/// let config = GenerationConfig::default();
/// let mut generator = Generator::new(&config, &tokenizer, &prompt)?;
/// while generator.stopped().is_none() {
///     let mut logits = next_logits(generator.ids()); // the model's last-position row
///     let step = generator.step(&mut logits)?;
///     print!("{}", step.text);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Generator<'t> {
    sampler: Sampler,
    stop: StopCriteria,
    stream: TextStream<'t>,
    ids: Vec<u32>,
    prompt_len: usize,
    stopped: Option<StopReason>,
}

impl<'t> Generator<'t> {
    /// A generator of the tokens after `prompt` (ids, special tokens included), decoding with
    /// `tokenizer` (special tokens skipped). The config is validated.
    pub fn new(
        config: &GenerationConfig,
        tokenizer: &'t Tokenizer,
        prompt: &[u32],
    ) -> Result<Generator<'t>, Error> {
        let sampler = Sampler::new(config)?;
        let stop = StopCriteria::new(config, prompt.len());
        let stopped = stop.done_before_start();
        Ok(Generator {
            sampler,
            stop,
            stream: TextStream::new(tokenizer),
            ids: prompt.to_vec(),
            prompt_len: prompt.len(),
            stopped,
        })
    }

    /// The prompt and the tokens generated so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The tokens generated so far (an end-of-sequence id included).
    pub fn generated(&self) -> &[u32] {
        &self.ids[self.prompt_len..]
    }

    /// Why generation stopped; `None` while it goes on (check before each model step: a limit
    /// of 0 new tokens stops before the first).
    pub fn stopped(&self) -> Option<&StopReason> {
        self.stopped.as_ref()
    }

    /// The sampler's seed.
    pub fn seed(&self) -> u64 {
        self.sampler.seed()
    }

    /// Chooses the next token from the logits of the last position (processed in place), and
    /// returns it with the text that became final. On the last step the held-back text is
    /// flushed, except a stop string and what follows it. An end-of-sequence id is not
    /// decoded. A step after the stop is an [`Error::Logits`].
    pub fn step(&mut self, logits: &mut [f32]) -> Result<Step, Error> {
        if let Some(reason) = &self.stopped {
            return Err(Error::Logits {
                message: format!("generation has already stopped ({reason:?})"),
            });
        }
        let id = self.sampler.next(logits, &self.ids)?;
        self.ids.push(id);
        let token_stop = self.stop.token(id, self.ids.len() - self.prompt_len);
        let mut chunk = String::new();
        if !matches!(token_stop, Some(StopReason::Eos(_))) {
            chunk = self.stream.push(id)?;
        }
        if token_stop.is_some() {
            chunk.push_str(&self.stream.finish()?);
        }
        let checked = self.stop.text(&chunk);
        let mut text = checked.text;
        let stop = match checked.stop {
            Some(reason) => Some(reason),
            None => {
                if token_stop.is_some() {
                    text.push_str(&self.stop.finish());
                }
                token_stop
            }
        };
        self.stopped.clone_from(&stop);
        Ok(Step { id, text, stop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn tokenizer() -> Option<Tokenizer> {
        let dir = match std::env::var_os("KILN_SHARED") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
        };
        let path = dir.join("models/smollm2-135m-instruct/tokenizer.json");
        if !path.is_file() {
            assert!(
                std::env::var("KILN_REQUIRE_SHARED").as_deref() != Ok("1"),
                "KILN_REQUIRE_SHARED=1 but {} is missing",
                path.display()
            );
            return None;
        }
        Some(Tokenizer::from_file(&path).unwrap())
    }

    /// A fake model that always puts the next id of `script` first.
    fn run(config: &GenerationConfig, t: &Tokenizer, script: &[u32]) -> (String, Step, Vec<u32>) {
        let vocab = t.get_vocab_size(true);
        let mut g = Generator::new(config, t, &[1, 2]).unwrap();
        let mut text = String::new();
        let mut last = None;
        for &want in script {
            if g.stopped().is_some() {
                break;
            }
            let mut row = vec![0.0f32; vocab];
            row[want as usize] = 10.0;
            let step = g.step(&mut row).unwrap();
            text.push_str(&step.text);
            last = Some(step);
        }
        assert!(g.step(&mut [0.0, 1.0]).is_err(), "stepped after the stop");
        (text, last.unwrap(), g.generated().to_vec())
    }

    fn encode(t: &Tokenizer, text: &str) -> Vec<u32> {
        t.encode(text, false).unwrap().get_ids().to_vec()
    }

    #[test]
    fn eos_stops_and_is_not_printed() {
        let Some(t) = tokenizer() else { return };
        let eos = t.token_to_id("<|im_end|>").unwrap();
        let mut script = encode(&t, "Hi 👋 there");
        script.push(eos);
        script.extend(encode(&t, " never"));
        let config = GenerationConfig {
            eos_token_id: vec![eos],
            max_new_tokens: Some(100),
            ..GenerationConfig::default()
        };
        let (text, last, generated) = run(&config, &t, &script);
        assert_eq!(text, "Hi 👋 there");
        assert_eq!(last.stop, Some(StopReason::Eos(eos)));
        assert_eq!(generated.last(), Some(&eos));
    }

    #[test]
    fn stop_string_across_tokens_is_cut() {
        let Some(t) = tokenizer() else { return };
        let script = encode(&t, "One. Two.\nUser: more text");
        let config = GenerationConfig {
            stop_strings: vec!["\nUser:".to_string()],
            max_new_tokens: Some(100),
            ..GenerationConfig::default()
        };
        let (text, last, _) = run(&config, &t, &script);
        assert_eq!(text, "One. Two.");
        assert_eq!(last.stop, Some(StopReason::StopString("\nUser:".into())));
    }

    #[test]
    fn limit_flushes_held_back_text() {
        let Some(t) = tokenizer() else { return };
        let script = encode(&t, "ab 日本 cd");
        let config = GenerationConfig {
            stop_strings: vec!["日本語".to_string()],
            max_new_tokens: Some(script.len()),
            ..GenerationConfig::default()
        };
        let (text, last, _) = run(&config, &t, &script);
        assert_eq!(text, t.decode(&script, true).unwrap());
        assert_eq!(last.stop, Some(StopReason::MaxNewTokens));
        // A limit of 0 stops before the first step.
        let zero = GenerationConfig {
            max_length: 2,
            ..GenerationConfig::default()
        };
        let g = Generator::new(&zero, &t, &[1, 2]).unwrap();
        assert_eq!(g.stopped(), Some(&StopReason::MaxNewTokens));
    }
}
