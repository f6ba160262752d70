//! When generation stops: an end-of-sequence id, the new-token limit, or a stop string in the
//! decoded text. Stop strings are found in the text however the tokens split them, and are not
//! part of the output: text that could be the start of a stop string is held back until the
//! next tokens show whether it is one.

use super::config::GenerationConfig;

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The model generated this end-of-sequence id.
    Eos(u32),
    /// `max_new_tokens` (or `max_length`) tokens were generated.
    MaxNewTokens,
    /// The text reached this stop string.
    StopString(String),
}

/// The text of one step that may be printed, and whether a stop string ended generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checked {
    /// Text now final: it is not, and cannot become, part of a stop string.
    pub text: String,
    /// Set when a stop string was found; `text` then ends where the stop string starts.
    pub stop: Option<StopReason>,
}

/// The stop criteria of one generated sequence.
#[derive(Debug, Clone)]
pub struct StopCriteria {
    eos_token_id: Vec<u32>,
    limit: usize,
    stop_strings: Vec<String>,
    /// Text held back because it ends with the start of a stop string.
    pending: String,
}

impl StopCriteria {
    /// The criteria of `config` for a prompt of `prompt_len` tokens.
    pub fn new(config: &GenerationConfig, prompt_len: usize) -> StopCriteria {
        StopCriteria {
            eos_token_id: config.eos_token_id.clone(),
            limit: config.new_tokens_limit(prompt_len),
            stop_strings: config
                .stop_strings
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            pending: String::new(),
        }
    }

    /// How many new tokens may be generated.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether generation is over before it starts (a limit of 0 new tokens).
    pub fn done_before_start(&self) -> Option<StopReason> {
        (self.limit == 0).then_some(StopReason::MaxNewTokens)
    }

    /// Checks a generated token: `id` is the `generated`-th new token (counting from 1).
    /// An end-of-sequence id wins over the limit.
    pub fn token(&self, id: u32, generated: usize) -> Option<StopReason> {
        if self.eos_token_id.contains(&id) {
            Some(StopReason::Eos(id))
        } else if generated >= self.limit {
            Some(StopReason::MaxNewTokens)
        } else {
            None
        }
    }

    /// Checks newly final text for stop strings (the earliest one wins): returns what may be
    /// printed now, holding back a tail that is the start of a stop string.
    pub fn text(&mut self, new_text: &str) -> Checked {
        self.pending.push_str(new_text);
        if self.stop_strings.is_empty() {
            return Checked {
                text: std::mem::take(&mut self.pending),
                stop: None,
            };
        }
        let found = self
            .stop_strings
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, s)) = found {
            let stop = Some(StopReason::StopString(s.clone()));
            let mut text = std::mem::take(&mut self.pending);
            text.truncate(at);
            return Checked { text, stop };
        }
        let keep = self.held_back_len();
        let tail = self.pending.split_off(self.pending.len() - keep);
        Checked {
            text: std::mem::replace(&mut self.pending, tail),
            stop: None,
        }
    }

    /// The text held back when generation stops for another reason (it was no stop string).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// The length in bytes of the longest tail of `pending` that is a proper prefix of a stop
    /// string (always on a character boundary).
    fn held_back_len(&self) -> usize {
        let p = &self.pending;
        p.char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &p[i..];
                self.stop_strings
                    .iter()
                    .any(|s| s.len() > tail.len() && s.starts_with(tail))
            })
            .map_or(0, |i| p.len() - i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn criteria(stops: &[&str], eos: &[u32], max_new: usize) -> StopCriteria {
        StopCriteria::new(
            &GenerationConfig {
                stop_strings: stops.iter().map(|s| s.to_string()).collect(),
                eos_token_id: eos.to_vec(),
                max_new_tokens: Some(max_new),
                ..GenerationConfig::default()
            },
            3,
        )
    }

    /// Feeds chunks until a stop; returns the printed text and the reason.
    fn run(c: &mut StopCriteria, chunks: &[&str]) -> (String, Option<StopReason>) {
        let mut out = String::new();
        for chunk in chunks {
            let checked = c.text(chunk);
            out.push_str(&checked.text);
            if checked.stop.is_some() {
                return (out, checked.stop);
            }
        }
        out.push_str(&c.finish());
        (out, None)
    }

    #[test]
    fn eos_and_limit() {
        let c = criteria(&[], &[2, 9], 4);
        assert_eq!(c.token(9, 1), Some(StopReason::Eos(9)));
        assert_eq!(c.token(2, 4), Some(StopReason::Eos(2)));
        assert_eq!(c.token(5, 3), None);
        assert_eq!(c.token(5, 4), Some(StopReason::MaxNewTokens));
        assert_eq!(c.done_before_start(), None);
        let zero = StopCriteria::new(
            &GenerationConfig {
                max_length: 3,
                ..GenerationConfig::default()
            },
            5,
        );
        assert_eq!(zero.limit(), 0);
        assert_eq!(zero.done_before_start(), Some(StopReason::MaxNewTokens));
    }

    #[test]
    fn stop_string_spanning_tokens() {
        let mut c = criteria(&["END"], &[], 100);
        let (text, stop) = run(&mut c, &["Hello E", "N", "D and more"]);
        assert_eq!(text, "Hello ");
        assert_eq!(stop, Some(StopReason::StopString("END".into())));
    }

    #[test]
    fn held_back_text_is_printed_when_it_is_no_stop() {
        let mut c = criteria(&["END"], &[], 100);
        let first = c.text("Hello EN");
        assert_eq!(first.text, "Hello ");
        let (rest, stop) = run(&mut c, &["VY", " E"]);
        assert_eq!((rest.as_str(), stop), ("ENVY E", None));
    }

    #[test]
    fn earliest_stop_string_wins_and_unicode_is_safe() {
        let mut c = criteria(&["世界", "\n\n"], &[], 100);
        let (text, stop) = run(&mut c, &["a\n", "\n世", "界"]);
        assert_eq!(text, "a");
        assert_eq!(stop, Some(StopReason::StopString("\n\n".into())));
        let mut c = criteria(&["世界"], &[], 100);
        let (text, stop) = run(&mut c, &["你好世", "界!"]);
        assert_eq!(text, "你好");
        assert_eq!(stop, Some(StopReason::StopString("世界".into())));
    }

    #[test]
    fn no_stop_strings_pass_everything() {
        let mut c = criteria(&[], &[], 100);
        assert_eq!(c.text("abc").text, "abc");
        assert_eq!(c.finish(), "");
    }
}
