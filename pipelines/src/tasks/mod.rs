//! The tasks, one file each; `qa_spans` holds question answering's span decoding.

pub mod feature_extraction;
pub mod fill_mask;
pub mod image_classification;
pub mod qa_spans;
pub mod question_answering;
pub mod text_classification;
pub mod token_classification;

pub use feature_extraction::{EmbeddingSettings, FeatureExtraction, Features, Pooling};
pub use fill_mask::{FillMask, MaskPrediction, MaskPredictions};
pub use image_classification::{ImageClassification, ImageInput};
pub use question_answering::{Answer, Answers, QaOptions, QuestionAnswering};
pub use text_classification::{Label, Labels, TextClassification};
pub use token_classification::{Aggregation, Entity, TokenClassification};
