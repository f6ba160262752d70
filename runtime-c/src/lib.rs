//! The C API of the Kiln runtime: opaque handles over `kiln-runtime`'s `Model`, `Session` and
//! output tensors, status codes with a thread-local error message, and `#[repr(C)]` types for
//! dtypes, load options and input tensors. The header `include/kiln.h` is generated from this
//! crate by cbindgen (`tests/it/header.rs` keeps it in sync); `README.md` has the rules.
//!
//! Every entry point runs inside [`error::guard`]: it clears the thread's last error, catches any
//! panic (which becomes [`KilnStatus::Internal`]) and turns errors into a status plus a message
//! for `kiln_last_error`. Pointers from C are checked for NULL before use; everything else about
//! them (that they point to live objects of the right type) is the caller's contract, stated on
//! each function.

// The output data pointers expose the tensors' native memory as the little-endian bytes the
// API promises, and inputs are decoded as little-endian bytes.
#[cfg(not(target_endian = "little"))]
compile_error!("the Kiln C API assumes a little-endian target");

mod error;
mod model;
mod outputs;
mod session;

pub use error::kiln_last_error;
pub use model::{
    kiln_model_free, kiln_model_input_dim_name, kiln_model_input_dtype, kiln_model_input_name,
    kiln_model_input_shape, kiln_model_load, kiln_model_num_inputs, kiln_model_num_outputs,
    kiln_model_output_dim_name, kiln_model_output_dtype, kiln_model_output_name,
    kiln_model_output_shape, KilnModel,
};
pub use outputs::{
    kiln_outputs_count, kiln_outputs_data, kiln_outputs_dtype, kiln_outputs_find,
    kiln_outputs_free, kiln_outputs_name, kiln_outputs_shape, KilnOutputs,
};
pub use session::{kiln_session_free, kiln_session_new, kiln_session_run, KilnSession};

use kiln_runtime::DType;
use std::ffi::{c_char, c_void};

/// The result of a call. KILN_STATUS_OK is 0; any other value is a failure whose message
/// kiln_last_error() returns.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KilnStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument is NULL.
    NullArgument = 1,
    /// An argument is invalid: a string that is not UTF-8, an index out of range, a value that is
    /// not a KilnDtype, a negative dimension, a data length that does not match the shape and
    /// dtype, an input given twice.
    InvalidArgument = 2,
    /// The artifact cannot be loaded: missing or unreadable, not a `.kiln` file, corrupted,
    /// or built for CPU features this machine lacks.
    LoadFailed = 3,
    /// The inputs do not match the model: an unknown or missing name, a wrong dtype, rank or
    /// dimension, or values outside what the model accepts (token ids beyond the vocabulary).
    InvalidInput = 4,
    /// The run would need more memory than its budget (KilnLoadOptions.max_memory, else the
    /// memory available); nothing was allocated.
    OutOfMemory = 5,
    /// The run failed while executing.
    RunFailed = 6,
    /// The session is running on another thread (a session belongs to one thread at a time).
    SessionBusy = 7,
    /// An internal error: a panic inside the library, caught at the boundary.
    Internal = 8,
}

/// The element type of a tensor. In C this is a uint32_t; values that are not listed here are
/// refused with KILN_STATUS_INVALID_ARGUMENT.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KilnDtype {
    /// IEEE 754 binary32 (`float`).
    F32 = 0,
    /// IEEE 754 binary16, as its 16-bit pattern.
    F16 = 1,
    /// bfloat16 (the upper half of an f32), as its 16-bit pattern.
    Bf16 = 2,
    /// IEEE 754 binary64 (`double`).
    F64 = 3,
    /// `int64_t`.
    I64 = 4,
    /// `int32_t`.
    I32 = 5,
    /// `int8_t`.
    I8 = 6,
    /// `uint8_t`.
    U8 = 7,
    /// One byte per element, 0 or 1.
    Bool = 8,
    /// `int16_t`.
    I16 = 9,
    /// `uint16_t`.
    U16 = 10,
    /// `uint32_t`.
    U32 = 11,
    /// `uint64_t`.
    U64 = 12,
}

impl KilnDtype {
    /// Every dtype, indexed by its value.
    const ALL: [KilnDtype; 13] = [
        KilnDtype::F32,
        KilnDtype::F16,
        KilnDtype::Bf16,
        KilnDtype::F64,
        KilnDtype::I64,
        KilnDtype::I32,
        KilnDtype::I8,
        KilnDtype::U8,
        KilnDtype::Bool,
        KilnDtype::I16,
        KilnDtype::U16,
        KilnDtype::U32,
        KilnDtype::U64,
    ];

    /// The dtype whose C value is `raw`, if any.
    fn from_raw(raw: u32) -> Option<KilnDtype> {
        Self::ALL.get(usize::try_from(raw).ok()?).copied()
    }

    /// The runtime's dtype.
    fn to_runtime(self) -> DType {
        match self {
            KilnDtype::F32 => DType::F32,
            KilnDtype::F16 => DType::F16,
            KilnDtype::Bf16 => DType::BF16,
            KilnDtype::F64 => DType::F64,
            KilnDtype::I64 => DType::I64,
            KilnDtype::I32 => DType::I32,
            KilnDtype::I8 => DType::I8,
            KilnDtype::U8 => DType::U8,
            KilnDtype::Bool => DType::Bool,
            KilnDtype::I16 => DType::I16,
            KilnDtype::U16 => DType::U16,
            KilnDtype::U32 => DType::U32,
            KilnDtype::U64 => DType::U64,
        }
    }

    /// The C dtype of a runtime dtype.
    fn from_runtime(d: DType) -> KilnDtype {
        match d {
            DType::F32 => KilnDtype::F32,
            DType::F16 => KilnDtype::F16,
            DType::BF16 => KilnDtype::Bf16,
            DType::F64 => KilnDtype::F64,
            DType::I64 => KilnDtype::I64,
            DType::I32 => KilnDtype::I32,
            DType::I8 => KilnDtype::I8,
            DType::U8 => KilnDtype::U8,
            DType::Bool => KilnDtype::Bool,
            DType::I16 => KilnDtype::I16,
            DType::U16 => KilnDtype::U16,
            DType::U32 => KilnDtype::U32,
            DType::U64 => KilnDtype::U64,
        }
    }
}

/// How to load a model. Zero in a field means its default; a NULL options pointer means all
/// defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KilnLoadOptions {
    /// Worker threads for the kernels; 0: the KILN_THREADS environment variable, else the
    /// number of CPUs.
    pub threads: usize,
    /// The most bytes one run may allocate; a run that needs more fails with
    /// KILN_STATUS_OUT_OF_MEMORY before allocating. 0: nine tenths of the memory available.
    pub max_memory: u64,
}

/// One named input tensor of kiln_session_run. The library copies the data during the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KilnInput {
    /// The input's name (NUL-terminated UTF-8), one of the model's input names.
    pub name: *const c_char,
    /// The element type of `data` (must equal the model's input dtype).
    pub dtype: KilnDtype,
    /// `rank` dimensions, each >= 0; may be NULL when `rank` is 0 (a scalar).
    pub shape: *const i64,
    /// The number of dimensions.
    pub rank: usize,
    /// The elements, row-major and little-endian (need not be aligned); may be NULL when
    /// `byte_len` is 0.
    pub data: *const c_void,
    /// The length of `data` in bytes: the product of the dimensions times the dtype's size.
    pub byte_len: usize,
}

/// A model, its sessions and its outputs cross threads as the header documents: a model is
/// shared (`Sync`), a session moves between threads (`Send`), outputs are read-only (`Sync`).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<KilnModel>();
    send_sync::<KilnSession>();
    send_sync::<KilnOutputs>();
};
