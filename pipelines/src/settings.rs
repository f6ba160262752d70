//! The model's own settings from `config.json`: labels (`id2label`), which score function
//! classification uses (`problem_type`, `num_labels`, `function_to_apply`) and the longest input
//! the position embeddings allow — read the way transformers' pipelines read them.

use crate::files::Files;
use crate::scores::ScoreFunction;
use crate::Error;
use serde_json::Value;

/// What `config.json` says about the model's outputs and inputs.
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    /// Label names by class index (`id2label`; empty when the config has none).
    labels: Vec<Option<String>>,
    /// `problem_type` (`regression`, `single_label_classification`, `multi_label_classification`).
    problem_type: Option<String>,
    /// `num_labels` when given without `id2label`.
    num_labels: Option<usize>,
    /// `function_to_apply`, a pipeline default some configs carry.
    function_to_apply: Option<ScoreFunction>,
    /// `max_position_embeddings`: the longest sequence the model has positions for.
    pub max_positions: Option<usize>,
}

impl ModelConfig {
    /// Reads `config.json` (a model without one has no labels and no position limit).
    pub fn load(files: &dyn Files) -> Result<ModelConfig, Error> {
        let Some(v) = files.json("config.json")? else {
            return Ok(ModelConfig::default());
        };
        ModelConfig::from_json(&v).map_err(|message| Error::Settings {
            file: files.describe("config.json"),
            message,
        })
    }

    /// Reads the settings from a parsed `config.json`.
    pub fn from_json(v: &Value) -> Result<ModelConfig, String> {
        let mut labels: Vec<Option<String>> = Vec::new();
        if let Some(map) = v.get("id2label").and_then(Value::as_object) {
            for (k, name) in map {
                let i: usize = k
                    .trim()
                    .parse()
                    .map_err(|_| format!("id2label key `{k}` is not a class index"))?;
                if i >= 1 << 20 {
                    return Err(format!("id2label key {i} is not a plausible class index"));
                }
                let name = match name {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if labels.len() <= i {
                    labels.resize(i + 1, None);
                }
                labels[i] = Some(name);
            }
        }
        let usize_of = |key: &str| {
            v.get(key)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        Ok(ModelConfig {
            labels,
            problem_type: v
                .get("problem_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            num_labels: usize_of("num_labels"),
            function_to_apply: v
                .get("function_to_apply")
                .and_then(Value::as_str)
                .and_then(ScoreFunction::parse),
            max_positions: usize_of("max_position_embeddings"),
        })
    }

    /// The number of labels transformers' `config.num_labels` would report (`len(id2label)`),
    /// else `fallback` (the width of the model's logits).
    pub fn num_labels(&self, fallback: usize) -> usize {
        if !self.labels.is_empty() {
            return self.labels.len();
        }
        self.num_labels.unwrap_or(fallback)
    }

    /// The name of class `i` (`LABEL_i` when `id2label` does not name it, as transformers'
    /// default `id2label` does).
    pub fn label(&self, i: usize) -> String {
        match self.labels.get(i) {
            Some(Some(name)) => name.clone(),
            _ => format!("LABEL_{i}"),
        }
    }

    /// The score function transformers' text and image classification pipelines pick by default:
    /// none for regression, sigmoid for multi-label or a single label, softmax otherwise.
    pub fn default_score_function(&self, logits_width: usize) -> ScoreFunction {
        let problem = self.problem_type.as_deref();
        let n = self.num_labels(logits_width);
        if problem == Some("regression") {
            ScoreFunction::None
        } else if problem == Some("multi_label_classification") || n == 1 {
            ScoreFunction::Sigmoid
        } else if problem == Some("single_label_classification") || n > 1 {
            ScoreFunction::Softmax
        } else {
            self.function_to_apply.unwrap_or(ScoreFunction::None)
        }
    }
}

/// A string-valued setting that tokenizer configs write either as `"[MASK]"` or as an added-token
/// object `{"content": "[MASK]", ...}`.
pub fn token_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_come_from_id2label_with_transformers_defaults() {
        let c = ModelConfig::from_json(&json!({"id2label": {"0": "NEG", "2": "POS"}})).unwrap();
        assert_eq!(c.label(0), "NEG");
        assert_eq!(c.label(1), "LABEL_1");
        assert_eq!(c.label(2), "POS");
        assert_eq!(c.num_labels(7), 3);
        assert!(ModelConfig::from_json(&json!({"id2label": {"x": "A"}})).is_err());
    }

    #[test]
    fn the_score_function_follows_problem_type_and_label_count() {
        let f = |v| {
            ModelConfig::from_json(&v)
                .unwrap()
                .default_score_function(2)
        };
        assert_eq!(
            f(json!({"id2label": {"0": "A", "1": "B"}})),
            ScoreFunction::Softmax
        );
        assert_eq!(f(json!({"id2label": {"0": "A"}})), ScoreFunction::Sigmoid);
        assert_eq!(
            f(json!({"problem_type": "regression"})),
            ScoreFunction::None
        );
        assert_eq!(
            f(json!({"problem_type": "multi_label_classification"})),
            ScoreFunction::Sigmoid
        );
    }

    #[test]
    fn token_strings_may_be_added_token_objects() {
        assert_eq!(
            token_string(Some(&json!("[MASK]"))).as_deref(),
            Some("[MASK]")
        );
        assert_eq!(
            token_string(Some(&json!({"content": "<mask>", "lstrip": true}))).as_deref(),
            Some("<mask>")
        );
        assert_eq!(token_string(Some(&json!(3))), None);
    }
}
