//! The op set and the shape types shared by the compiler's IR and the runtime's execution plan:
//! symbolic dims, tensor types and every op with its attributes. The compiler re-exports these
//! as `kiln_compiler::ir`; the runtime's reference kernels and executor interpret them.

pub mod attr;
mod bind;
mod define;
pub mod dim;
mod limits;
pub mod op;
mod recurrent;
mod recurrent_spec;
pub mod types;

pub use attr::{fmt_f64, AttrReader, AttrValue, OpAttr};
pub use bind::{bind_inputs, Binder, InputError};
pub use dim::is_symbol_name;
pub use dim::{Bindings, Dim};
pub use limits::{DimLimit, InputLimits, ValueRange};
pub use op::*;
pub use types::{Shape, TensorType};
