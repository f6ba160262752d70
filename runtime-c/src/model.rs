//! `KilnModel`: a loaded artifact (`kiln_runtime::Model`) with its inputs' and outputs' names,
//! dtypes and shapes converted once, at load, into the C strings and arrays the query functions
//! hand out.

use crate::error::{c_str, guard, guard_free, handle, Failure, Out, Result};
use crate::{KilnDtype, KilnLoadOptions, KilnStatus};
use kiln_runtime::plan::Io;
use kiln_runtime::{LoadOptions, Model};
use std::ffi::{c_char, CString};
use std::sync::Arc;

/// A loaded model (opaque). Share it between threads freely; free it with kiln_model_free.
#[derive(Debug)]
pub struct KilnModel {
    pub(crate) inner: Arc<ModelInner>,
}

/// What a model handle and its sessions share.
#[derive(Debug)]
pub(crate) struct ModelInner {
    pub(crate) model: Model,
    inputs: Vec<IoInfo>,
    outputs: Vec<IoInfo>,
}

/// One input or output as C sees it.
#[derive(Debug)]
struct IoInfo {
    name: CString,
    dtype: KilnDtype,
    /// Each dim's size, -1 where it is symbolic.
    dims: Vec<i64>,
    /// Each dim as text: a symbol (`batch`), an expression (`seq*2`) or a number.
    dim_names: Vec<CString>,
}

/// A C string of a name from the artifact (which may not contain NUL).
pub(crate) fn c_name(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| {
        Failure::new(
            KilnStatus::LoadFailed,
            format!("{what} `{}` contains a NUL character", s.escape_debug()),
        )
    })
}

impl IoInfo {
    fn new(model: &Model, io: &Io, what: &str) -> Result<IoInfo> {
        let ty = &model.plan().value(io.value).ty;
        let dims = ty.shape.dims();
        Ok(IoInfo {
            name: c_name(&io.name, what)?,
            dtype: KilnDtype::from_runtime(ty.dtype),
            dims: dims.iter().map(|d| d.as_known().unwrap_or(-1)).collect(),
            dim_names: dims
                .iter()
                .map(|d| c_name(&d.to_string(), "dimension"))
                .collect::<Result<_>>()?,
        })
    }
}

impl ModelInner {
    fn load(path: &str, options: KilnLoadOptions) -> Result<ModelInner> {
        let options = LoadOptions {
            threads: (options.threads != 0).then_some(options.threads),
            max_memory: (options.max_memory != 0).then_some(options.max_memory),
        };
        let model = Model::load_with(path, &options)?;
        let plan = model.plan();
        let infos = |ios: &[Io], what: &str| -> Result<Vec<IoInfo>> {
            ios.iter().map(|io| IoInfo::new(&model, io, what)).collect()
        };
        let (inputs, outputs) = (
            infos(&plan.inputs, "input name")?,
            infos(&plan.outputs, "output name")?,
        );
        Ok(ModelInner {
            model,
            inputs,
            outputs,
        })
    }
}

/// Which list an index refers to.
#[derive(Debug, Clone, Copy)]
enum Side {
    Input,
    Output,
}

/// The input or output `index` of `model`.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load, not freed before `'a` ends.
unsafe fn io<'a>(model: *const KilnModel, side: Side, index: usize) -> Result<&'a IoInfo> {
    // SAFETY: the caller's contract is `handle`'s.
    let m = unsafe { handle(model, "model") }?;
    let (list, what) = match side {
        Side::Input => (&m.inner.inputs, "input"),
        Side::Output => (&m.inner.outputs, "output"),
    };
    list.get(index).ok_or_else(|| {
        Failure::invalid(format!(
            "{what} index {index} is out of range (the model has {} {what}s)",
            list.len()
        ))
    })
}

/// Loads a `.kiln` artifact (as made by `kiln compile`): the file is mapped and validated (every
/// byte checksummed, the CPU features it needs checked), then its code is loaded.
///
/// `path`: NUL-terminated UTF-8. `options`: NULL for the defaults. On success `*out_model` is a
/// new handle to free with kiln_model_free; on failure it is set to NULL (KILN_STATUS_LOAD_FAILED
/// for a file that is missing, not an artifact, corrupted or built for other CPU features).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `options` is NULL or points to a KilnLoadOptions;
/// `out_model` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_load(
    path: *const c_char,
    options: *const KilnLoadOptions,
    out_model: *mut *mut KilnModel,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_model, "out_model")?;
        // SAFETY: the caller passes NULL or a valid, aligned `KilnModel *` slot.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller passes NULL or a NUL-terminated string that lives for this call.
        let path = unsafe { c_str(path, "path") }?;
        // SAFETY: the caller passes NULL or a valid `KilnLoadOptions`; it is copied out at once.
        let options = unsafe { options.as_ref() }.copied().unwrap_or_default();
        let inner = ModelInner::load(path, options)?;
        let model = Box::new(KilnModel {
            inner: Arc::new(inner),
        });
        // SAFETY: checked above; the slot is valid for writes.
        unsafe { out.write(Box::into_raw(model)) };
        Ok(())
    })
}

/// Frees a model handle (NULL is ignored). Sessions made from it stay usable: each keeps the
/// model alive until it is freed. Strings and arrays returned by the model's query functions are
/// invalid afterwards.
///
/// # Safety
/// `model` is NULL or a handle from kiln_model_load that has not been freed and that no other
/// thread is using.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_free(model: *mut KilnModel) {
    guard_free(|| {
        if !model.is_null() {
            // SAFETY: the caller passes a handle from kiln_model_load (a `Box::into_raw`) that
            // has not been freed yet and is not in use by another thread.
            drop(unsafe { Box::from_raw(model) });
        }
    })
}

/// Writes the number of inputs of `model` to `*out_count`.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_count` is NULL or valid for
/// writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_num_inputs(
    model: *const KilnModel,
    out_count: *mut usize,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_count, "out_count")?;
        // SAFETY: the caller passes NULL or a live model handle.
        let m = unsafe { handle(model, "model") }?;
        // SAFETY: checked for NULL; the caller passes a valid `size_t *`.
        unsafe { out.write(m.inner.inputs.len()) };
        Ok(())
    })
}

/// Writes the number of outputs of `model` to `*out_count`.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_count` is NULL or valid for
/// writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_num_outputs(
    model: *const KilnModel,
    out_count: *mut usize,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_count, "out_count")?;
        // SAFETY: the caller passes NULL or a live model handle.
        let m = unsafe { handle(model, "model") }?;
        // SAFETY: checked for NULL; the caller passes a valid `size_t *`.
        unsafe { out.write(m.inner.outputs.len()) };
        Ok(())
    })
}

/// The name (input or output) `index` of a model, as its query functions return it.
///
/// # Safety
/// `model` is NULL or a live model handle; the out-pointers are NULL or valid for writes.
unsafe fn name(
    model: *const KilnModel,
    side: Side,
    index: usize,
    out_name: *mut *const c_char,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_name, "out_name")?;
        // SAFETY: the caller passes NULL or a live model handle.
        let io = unsafe { io(model, side, index) }?;
        // SAFETY: checked for NULL; the caller passes a valid `const char **`.
        unsafe { out.write(io.name.as_ptr()) };
        Ok(())
    })
}

/// The dtype of (input or output) `index` of a model.
///
/// # Safety
/// `model` is NULL or a live model handle; the out-pointers are NULL or valid for writes.
unsafe fn dtype(
    model: *const KilnModel,
    side: Side,
    index: usize,
    out_dtype: *mut KilnDtype,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_dtype, "out_dtype")?;
        // SAFETY: the caller passes NULL or a live model handle.
        let io = unsafe { io(model, side, index) }?;
        // SAFETY: checked for NULL; the caller passes a valid `KilnDtype *`.
        unsafe { out.write(io.dtype) };
        Ok(())
    })
}

/// The declared shape of (input or output) `index` of a model.
///
/// # Safety
/// `model` is NULL or a live model handle; the out-pointers are NULL or valid for writes.
unsafe fn shape(
    model: *const KilnModel,
    side: Side,
    index: usize,
    out_dims: *mut *const i64,
    out_rank: *mut usize,
) -> KilnStatus {
    guard(|| {
        let dims_out = Out::new(out_dims, "out_dims")?;
        let rank_out = Out::new(out_rank, "out_rank")?;
        // SAFETY: the caller passes NULL or a live model handle.
        let io = unsafe { io(model, side, index) }?;
        // SAFETY: both checked for NULL; the caller passes a valid `const int64_t **` and
        // `size_t *`.
        unsafe {
            dims_out.write(io.dims.as_ptr());
            rank_out.write(io.dims.len());
        }
        Ok(())
    })
}

/// The text of dim `axis` of (input or output) `index` of a model.
///
/// # Safety
/// `model` is NULL or a live model handle; the out-pointers are NULL or valid for writes.
unsafe fn dim_name(
    model: *const KilnModel,
    side: Side,
    index: usize,
    axis: usize,
    out_name: *mut *const c_char,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_name, "out_name")?;
        // SAFETY: the caller passes NULL or a live model handle.
        let io = unsafe { io(model, side, index) }?;
        let name = io.dim_names.get(axis).ok_or_else(|| {
            Failure::invalid(format!(
                "axis {axis} is out of range (`{}` has rank {})",
                io.name.to_string_lossy(),
                io.dim_names.len()
            ))
        })?;
        // SAFETY: checked for NULL; the caller passes a valid `const char **`.
        unsafe { out.write(name.as_ptr()) };
        Ok(())
    })
}

/// Writes the name of input `index` (0-based, below kiln_model_num_inputs) to `*out_name`:
/// NUL-terminated UTF-8, owned by the model and valid until kiln_model_free.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_name` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_input_name(
    model: *const KilnModel,
    index: usize,
    out_name: *mut *const c_char,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { name(model, Side::Input, index, out_name) }
}

/// Writes the element type of input `index` to `*out_dtype`.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_dtype` is NULL or valid for
/// writing a KilnDtype.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_input_dtype(
    model: *const KilnModel,
    index: usize,
    out_dtype: *mut KilnDtype,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { dtype(model, Side::Input, index, out_dtype) }
}

/// Writes the declared shape of input `index`: `*out_rank` dims at `*out_dims` (owned by the
/// model, valid until kiln_model_free; not to be read when the rank is 0). A symbolic dim (a
/// size chosen by the caller, such as `batch` or `seq`) is -1; kiln_model_input_dim_name names
/// it.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_dims` and `out_rank` are NULL
/// or valid for writing a pointer and a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_input_shape(
    model: *const KilnModel,
    index: usize,
    out_dims: *mut *const i64,
    out_rank: *mut usize,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { shape(model, Side::Input, index, out_dims, out_rank) }
}

/// Writes the text of dim `axis` of input `index` to `*out_name`: the symbol of a symbolic dim
/// (`batch`, `seq`), an expression over symbols (`seq*2`), or the decimal size of a fixed dim.
/// Owned by the model, valid until kiln_model_free. Inputs that share a symbol must be given the
/// same size.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_name` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_input_dim_name(
    model: *const KilnModel,
    index: usize,
    axis: usize,
    out_name: *mut *const c_char,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { dim_name(model, Side::Input, index, axis, out_name) }
}

/// Writes the name of output `index` (0-based, below kiln_model_num_outputs) to `*out_name`,
/// owned by the model and valid until kiln_model_free. Runs return outputs in this order.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_name` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_output_name(
    model: *const KilnModel,
    index: usize,
    out_name: *mut *const c_char,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { name(model, Side::Output, index, out_name) }
}

/// Writes the element type of output `index` to `*out_dtype`.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_dtype` is NULL or valid for
/// writing a KilnDtype.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_output_dtype(
    model: *const KilnModel,
    index: usize,
    out_dtype: *mut KilnDtype,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { dtype(model, Side::Output, index, out_dtype) }
}

/// Writes the declared shape of output `index`, as kiln_model_input_shape does (-1 for dims
/// that depend on the inputs' symbolic dims; a run's outputs have concrete shapes).
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_dims` and `out_rank` are NULL
/// or valid for writing a pointer and a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_output_shape(
    model: *const KilnModel,
    index: usize,
    out_dims: *mut *const i64,
    out_rank: *mut usize,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { shape(model, Side::Output, index, out_dims, out_rank) }
}

/// Writes the text of dim `axis` of output `index`, as kiln_model_input_dim_name does.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_name` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_output_dim_name(
    model: *const KilnModel,
    index: usize,
    axis: usize,
    out_name: *mut *const c_char,
) -> KilnStatus {
    // SAFETY: the caller's contract is this function's.
    unsafe { dim_name(model, Side::Output, index, axis, out_name) }
}
