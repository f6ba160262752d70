//! The intermediate representation: dims, types, ops, weights, graphs, inference, verifier.

pub mod dim;
mod dim_parse;
pub mod graph;
pub mod infer;
pub mod op;
mod op_names;
pub mod types;
pub mod verify;
pub mod weights;

pub use dim::{Bindings, Dim};
pub use dim_parse::is_symbol_name;
pub use graph::{Graph, Node, NodeId, Value, ValueDef, ValueId};
pub use op::*;
pub use types::{DType, Shape, TensorType};
pub use weights::{Weight, WeightData, WeightId, WeightStore};
