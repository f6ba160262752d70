//! The intermediate representation: graphs, weights, inference, verifier. Dims, types and the op
//! set are defined in `kiln_runtime::ops` (the execution plan shares them) and re-exported here.

pub mod graph;
pub mod infer;
pub mod verify;
pub mod weights;

pub use kiln_runtime::ops::{dim, op, types};

pub use dim::{Bindings, Dim};
pub use graph::{Graph, Node, NodeId, Value, ValueDef, ValueId};
pub use kiln_runtime::ops::is_symbol_name;
pub use kiln_runtime::ops::{DimLimit, InputLimits, ValueRange};
pub use op::*;
pub use types::{DType, Shape, TensorType};
pub use weights::{Weight, WeightData, WeightId, WeightStore};
