//! The ONNX frontend: protobuf messages, tensor decoding, model loading and graph import.
//!
//! - [`proto`]: the ONNX protobuf messages (hand-written `prost` structs, proto3 semantics).
//! - [`tensor`]: `TensorProto` → [`kiln_compiler::ir::Weight`] / [`kiln_runtime::Tensor`], for
//!   every storage form (raw bytes, typed fields, external files memory-mapped in place).
//! - [`model`]: [`model::OnnxModel::load`]: decoding, opset imports and structural validation
//!   (duplicate definitions, dangling inputs, cycles) that needs no knowledge of ops.
//! - [`import`]: the importer from an [`model::OnnxModel`] to the Kiln IR.
//! - [`decoder`]: decoders exported with `past_key_values` (optimum's with-past and merged
//!   exports) as graphs with their key/value cache as states.

pub mod decoder;
mod external;
pub mod import;
pub mod model;
pub mod proto;
mod structure;
pub mod tensor;

pub use model::OnnxModel;
pub use tensor::{decode_tensor, decode_tensor_value, read_tensor_file, TensorSource};
