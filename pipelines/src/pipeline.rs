//! One entry point over every task: [`Task`] names them, [`Pipeline`] holds any of them, and
//! [`Results`] prints what transformers' `pipeline(task)(inputs)` returns as JSON.

use crate::files::Files;
use crate::scores::ScoreFunction;
use crate::tasks::{
    Aggregation, Answers, Entity, FeatureExtraction, Features, FillMask, ImageClassification,
    ImageInput, Label, Labels, MaskPredictions, QaOptions, QuestionAnswering, TextClassification,
    TokenClassification,
};
use crate::{Error, Run};
use kiln_runtime::Model;
use serde_json::Value;

/// The tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Hidden states per token, or pooled embeddings when the folder is a sentence-transformers
    /// model.
    FeatureExtraction,
    /// One embedding per text (mean pooling when the folder says nothing else).
    SentenceEmbeddings,
    /// The likeliest tokens for each mask token.
    FillMask,
    /// A label per text.
    TextClassification,
    /// A label per token, grouped into entities.
    TokenClassification,
    /// The answer to a question in each context.
    QuestionAnswering,
    /// Labels per image.
    ImageClassification,
}

impl Task {
    /// Every task.
    pub const ALL: [Task; 7] = [
        Task::FeatureExtraction,
        Task::SentenceEmbeddings,
        Task::FillMask,
        Task::TextClassification,
        Task::TokenClassification,
        Task::QuestionAnswering,
        Task::ImageClassification,
    ];

    /// The task's name (`fill-mask`).
    pub fn name(self) -> &'static str {
        match self {
            Task::FeatureExtraction => "feature-extraction",
            Task::SentenceEmbeddings => "sentence-embeddings",
            Task::FillMask => "fill-mask",
            Task::TextClassification => "text-classification",
            Task::TokenClassification => "token-classification",
            Task::QuestionAnswering => "question-answering",
            Task::ImageClassification => "image-classification",
        }
    }

    /// Every task's name, comma-separated.
    pub fn names() -> String {
        Task::ALL.map(Task::name).join(", ")
    }

    /// The task of a name, or of transformers' aliases (`sentiment-analysis`, `ner`).
    pub fn parse(name: &str) -> Result<Task, Error> {
        let alias = match name {
            "sentiment-analysis" => "text-classification",
            "ner" => "token-classification",
            other => other,
        };
        Task::ALL
            .into_iter()
            .find(|t| t.name() == alias)
            .ok_or_else(|| Error::UnknownTask {
                name: name.to_string(),
            })
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a run is given.
#[derive(Debug, Clone, Copy)]
pub enum Inputs<'a> {
    /// Texts (every text task).
    Texts(&'a [String]),
    /// A question and the contexts to answer it in.
    Question {
        /// The question.
        question: &'a str,
        /// The contexts.
        contexts: &'a [String],
    },
    /// Encoded images.
    Images(&'a [ImageInput<'a>]),
}

/// Options of a run; each task reads the ones it has.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many results per input (fill-mask 5, image classification 5, question answering 1;
    /// text classification: the best label alone when `None`).
    pub top_k: Option<usize>,
    /// Sequences (or images) per model run.
    pub batch_size: usize,
    /// Token classification's grouping (default `simple`: entities rather than word pieces).
    pub aggregation: Aggregation,
    /// Labels token classification leaves out (transformers: `O`).
    pub ignore_labels: Vec<String>,
    /// Overrides the config's score function (classification).
    pub function: Option<ScoreFunction>,
    /// Question answering's windows and answers (`top_k` above wins over its `top_k`).
    pub qa: QaOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            top_k: None,
            batch_size: crate::DEFAULT_BATCH_SIZE,
            aggregation: Aggregation::Simple,
            ignore_labels: vec!["O".to_string()],
            function: None,
            qa: QaOptions::default(),
        }
    }
}

/// One result per input, typed by task.
#[derive(Debug, Clone, PartialEq)]
pub enum Results {
    /// Feature extraction and sentence embeddings.
    Features(Vec<Features>),
    /// Fill-mask.
    FillMask(Vec<MaskPredictions>),
    /// Text classification.
    Labels(Vec<Labels>),
    /// Token classification.
    Entities(Vec<Vec<Entity>>),
    /// Question answering.
    Answers(Vec<Answers>),
    /// Image classification.
    ImageLabels(Vec<Vec<Label>>),
}

impl Results {
    /// The number of results.
    pub fn len(&self) -> usize {
        match self {
            Results::Features(v) => v.len(),
            Results::FillMask(v) => v.len(),
            Results::Labels(v) => v.len(),
            Results::Entities(v) => v.len(),
            Results::Answers(v) => v.len(),
            Results::ImageLabels(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What transformers returns: for `single`, what `pipe(input)` returns for one input (the
    /// first result; text classification's best label wrapped in a list, as transformers does),
    /// else what `pipe([inputs])` returns (one result per input).
    pub fn json(&self, single: bool) -> Value {
        fn list<T: serde::Serialize>(v: &[T], single: bool) -> Value {
            let value = |x: &T| serde_json::to_value(x).unwrap_or(Value::Null);
            match (single, v.first()) {
                (true, Some(first)) => value(first),
                _ => Value::Array(v.iter().map(value).collect()),
            }
        }
        match self {
            Results::Labels(v) if single && v.first().is_some_and(|l| !l.listed) => {
                Value::Array(vec![list(v, true)])
            }
            Results::Features(v) => list(v, single),
            Results::FillMask(v) => list(v, single),
            Results::Labels(v) => list(v, single),
            Results::Entities(v) => list(v, single),
            Results::Answers(v) => list(v, single),
            Results::ImageLabels(v) => list(v, single),
        }
    }
}

/// What [`Pipeline::run`] returns: the results and the inputs that had to be truncated.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// One result per input.
    pub results: Results,
    /// The inputs cut to the model's longest input.
    pub notes: Vec<crate::Truncation>,
}

/// Any task's pipeline.
#[derive(Debug)]
pub enum Pipeline {
    /// Feature extraction or sentence embeddings.
    Features(Task, FeatureExtraction),
    /// Fill-mask.
    FillMask(FillMask),
    /// Text classification.
    TextClassification(TextClassification),
    /// Token classification.
    TokenClassification(TokenClassification),
    /// Question answering.
    QuestionAnswering(QuestionAnswering),
    /// Image classification.
    ImageClassification(ImageClassification),
}

impl Pipeline {
    /// The pipeline of `task` over `model` with the settings in `files`.
    pub fn new(task: Task, model: Model, files: &dyn Files) -> Result<Pipeline, Error> {
        Ok(match task {
            Task::FeatureExtraction | Task::SentenceEmbeddings => Pipeline::Features(
                task,
                FeatureExtraction::new(model, files, task == Task::SentenceEmbeddings)?,
            ),
            Task::FillMask => Pipeline::FillMask(FillMask::new(model, files)?),
            Task::TextClassification => {
                Pipeline::TextClassification(TextClassification::new(model, files)?)
            }
            Task::TokenClassification => {
                Pipeline::TokenClassification(TokenClassification::new(model, files)?)
            }
            Task::QuestionAnswering => {
                Pipeline::QuestionAnswering(QuestionAnswering::new(model, files)?)
            }
            Task::ImageClassification => {
                Pipeline::ImageClassification(ImageClassification::new(model, files)?)
            }
        })
    }

    /// The task.
    pub fn task(&self) -> Task {
        match self {
            Pipeline::Features(t, _) => *t,
            Pipeline::FillMask(_) => Task::FillMask,
            Pipeline::TextClassification(_) => Task::TextClassification,
            Pipeline::TokenClassification(_) => Task::TokenClassification,
            Pipeline::QuestionAnswering(_) => Task::QuestionAnswering,
            Pipeline::ImageClassification(_) => Task::ImageClassification,
        }
    }

    /// Runs the pipeline; the inputs must be of the task's kind.
    pub fn run(&self, inputs: &Inputs<'_>, opts: &Options) -> Result<Outcome, Error> {
        fn wrap<T>(r: Run<T>, f: impl FnOnce(Vec<T>) -> Results) -> Outcome {
            Outcome {
                results: f(r.results),
                notes: r.notes,
            }
        }
        let b = opts.batch_size;
        match (self, inputs) {
            (Pipeline::Features(_, p), Inputs::Texts(t)) => {
                Ok(wrap(p.run(t, b)?, Results::Features))
            }
            (Pipeline::FillMask(p), Inputs::Texts(t)) => {
                let k = opts.top_k.unwrap_or(crate::tasks::fill_mask::DEFAULT_TOP_K);
                Ok(wrap(p.run(t, k, b)?, Results::FillMask))
            }
            (Pipeline::TextClassification(p), Inputs::Texts(t)) => Ok(wrap(
                p.run(t, opts.top_k, opts.function, b)?,
                Results::Labels,
            )),
            (Pipeline::TokenClassification(p), Inputs::Texts(t)) => Ok(wrap(
                p.run(t, opts.aggregation, &opts.ignore_labels, b)?,
                Results::Entities,
            )),
            (Pipeline::QuestionAnswering(p), Inputs::Question { question, contexts }) => {
                let qa = QaOptions {
                    top_k: opts.top_k.unwrap_or(opts.qa.top_k),
                    ..opts.qa
                };
                Ok(wrap(p.run(question, contexts, &qa, b)?, Results::Answers))
            }
            (Pipeline::ImageClassification(p), Inputs::Images(images)) => {
                let k = opts
                    .top_k
                    .unwrap_or(crate::tasks::image_classification::DEFAULT_TOP_K);
                Ok(wrap(
                    p.run(images, k, opts.function, b)?,
                    Results::ImageLabels,
                ))
            }
            (p, _) => Err(Error::Option {
                message: format!(
                    "{} takes {}",
                    p.task(),
                    match p.task() {
                        Task::QuestionAnswering => "a question and contexts",
                        Task::ImageClassification => "images",
                        _ => "texts",
                    }
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_parse_by_name_and_alias() {
        for t in Task::ALL {
            assert_eq!(Task::parse(t.name()).unwrap(), t);
        }
        assert_eq!(Task::parse("ner").unwrap(), Task::TokenClassification);
        let e = Task::parse("summarize").unwrap_err().to_string();
        assert!(
            e.contains("unknown task `summarize`") && e.contains("fill-mask"),
            "{e}"
        );
    }

    #[test]
    fn one_text_classification_result_is_a_list_as_in_transformers() {
        let l = Labels {
            labels: vec![Label {
                label: "A".into(),
                score: 1.0,
            }],
            listed: false,
        };
        let r = Results::Labels(vec![l.clone(), l]);
        assert_eq!(r.json(true).to_string(), r#"[{"label":"A","score":1.0}]"#);
        assert_eq!(
            r.json(false).to_string(),
            r#"[{"label":"A","score":1.0},{"label":"A","score":1.0}]"#
        );
    }
}
