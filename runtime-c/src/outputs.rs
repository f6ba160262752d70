//! `KilnOutputs`: the named output tensors of one run, owned by the library until
//! `kiln_outputs_free`, and the accessors that hand out their names, dtypes, shapes and data
//! (pointers into the tensors themselves: no copy, element-aligned).

use crate::error::{c_str, guard, guard_free, handle, Failure, Out, Result};
use crate::{KilnDtype, KilnStatus};
use kiln_runtime::{Tensor, TensorData};
use std::ffi::{c_char, c_void, CString};

/// The outputs of one run (opaque, read-only): free them with kiln_outputs_free.
#[derive(Debug)]
pub struct KilnOutputs {
    pub(crate) outputs: Vec<OutputTensor>,
}

/// One output as C sees it.
#[derive(Debug)]
pub(crate) struct OutputTensor {
    name: CString,
    dims: Vec<i64>,
    tensor: Tensor,
}

impl OutputTensor {
    pub(crate) fn new(name: CString, tensor: Tensor) -> Result<OutputTensor> {
        let dims = tensor
            .shape()
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Failure::new(
                    KilnStatus::RunFailed,
                    format!(
                        "output `{}` has a dimension beyond int64_t",
                        name.to_string_lossy()
                    ),
                )
            })?;
        Ok(OutputTensor { name, dims, tensor })
    }

    /// The tensor's elements as bytes in place: its typed buffer, so the pointer is aligned for
    /// the element type (bool elements are Rust `bool`s: one byte, 0 or 1).
    fn data(&self) -> (*const c_void, usize) {
        fn raw<T>(v: &[T]) -> (*const c_void, usize) {
            (v.as_ptr().cast(), std::mem::size_of_val(v))
        }
        match self.tensor.data() {
            TensorData::F32(v) => raw(v),
            TensorData::F16(v) => raw(v),
            TensorData::BF16(v) => raw(v),
            TensorData::F64(v) => raw(v),
            TensorData::I64(v) => raw(v),
            TensorData::I32(v) => raw(v),
            TensorData::I8(v) => raw(v),
            TensorData::U8(v) => raw(v),
            TensorData::I16(v) => raw(v),
            TensorData::U16(v) => raw(v),
            TensorData::U32(v) => raw(v),
            TensorData::U64(v) => raw(v),
            TensorData::Bool(v) => raw(v),
        }
    }
}

/// Output `index` of `outputs`.
///
/// # Safety
/// `outputs` is NULL or a live handle from kiln_session_run, not freed before `'a` ends.
unsafe fn output<'a>(outputs: *const KilnOutputs, index: usize) -> Result<&'a OutputTensor> {
    // SAFETY: the caller's contract is `handle`'s.
    let o = unsafe { handle(outputs, "outputs") }?;
    o.outputs.get(index).ok_or_else(|| {
        Failure::invalid(format!(
            "output index {index} is out of range (there are {} outputs)",
            o.outputs.len()
        ))
    })
}

/// Frees the outputs of a run (NULL is ignored); every pointer read from them becomes invalid.
///
/// # Safety
/// `outputs` is NULL or a handle from kiln_session_run that has not been freed and that no other
/// thread is reading.
#[no_mangle]
pub unsafe extern "C" fn kiln_outputs_free(outputs: *mut KilnOutputs) {
    guard_free(|| {
        if !outputs.is_null() {
            // SAFETY: the caller passes a handle from kiln_session_run (a `Box::into_raw`) that
            // has not been freed and that no other thread is reading.
            drop(unsafe { Box::from_raw(outputs) });
        }
    })
}

/// Writes the number of outputs to `*out_count` (the model's number of outputs).
///
/// # Safety
/// `outputs` is NULL or a live handle from kiln_session_run; `out_count` is NULL or valid for
/// writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_outputs_count(
    outputs: *const KilnOutputs,
    out_count: *mut usize,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_count, "out_count")?;
        // SAFETY: the caller passes NULL or a live outputs handle.
        let o = unsafe { handle(outputs, "outputs") }?;
        // SAFETY: checked for NULL; the caller passes a valid `size_t *`.
        unsafe { out.write(o.outputs.len()) };
        Ok(())
    })
}

/// Writes the index of the output named `name` to `*out_index`; an unknown name is
/// KILN_STATUS_INVALID_ARGUMENT.
///
/// # Safety
/// `outputs` is NULL or a live handle from kiln_session_run; `name` is NULL or a NUL-terminated
/// string; `out_index` is NULL or valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_outputs_find(
    outputs: *const KilnOutputs,
    name: *const c_char,
    out_index: *mut usize,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_index, "out_index")?;
        // SAFETY: the caller passes NULL or a live outputs handle.
        let o = unsafe { handle(outputs, "outputs") }?;
        // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
        let name = unsafe { c_str(name, "name") }?;
        let index = o
            .outputs
            .iter()
            .position(|t| t.name.as_bytes() == name.as_bytes())
            .ok_or_else(|| {
                let names: Vec<String> = o
                    .outputs
                    .iter()
                    .map(|t| format!("`{}`", t.name.to_string_lossy()))
                    .collect();
                Failure::invalid(format!(
                    "no output is named `{name}` (the outputs are {})",
                    names.join(", ")
                ))
            })?;
        // SAFETY: checked for NULL; the caller passes a valid `size_t *`.
        unsafe { out.write(index) };
        Ok(())
    })
}

/// Writes the name of output `index` to `*out_name`: NUL-terminated UTF-8, valid until
/// kiln_outputs_free.
///
/// # Safety
/// `outputs` is NULL or a live handle from kiln_session_run; `out_name` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_outputs_name(
    outputs: *const KilnOutputs,
    index: usize,
    out_name: *mut *const c_char,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_name, "out_name")?;
        // SAFETY: the caller passes NULL or a live outputs handle.
        let t = unsafe { output(outputs, index) }?;
        // SAFETY: checked for NULL; the caller passes a valid `const char **`.
        unsafe { out.write(t.name.as_ptr()) };
        Ok(())
    })
}

/// Writes the element type of output `index` to `*out_dtype`.
///
/// # Safety
/// `outputs` is NULL or a live handle from kiln_session_run; `out_dtype` is NULL or valid for
/// writing a KilnDtype.
#[no_mangle]
pub unsafe extern "C" fn kiln_outputs_dtype(
    outputs: *const KilnOutputs,
    index: usize,
    out_dtype: *mut KilnDtype,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_dtype, "out_dtype")?;
        // SAFETY: the caller passes NULL or a live outputs handle.
        let t = unsafe { output(outputs, index) }?;
        // SAFETY: checked for NULL; the caller passes a valid `KilnDtype *`.
        unsafe { out.write(KilnDtype::from_runtime(t.tensor.dtype())) };
        Ok(())
    })
}

/// Writes the shape of output `index`: `*out_rank` dims at `*out_dims`, valid until
/// kiln_outputs_free (not to be read when the rank is 0).
///
/// # Safety
/// `outputs` is NULL or a live handle from kiln_session_run; `out_dims` and `out_rank` are NULL
/// or valid for writing a pointer and a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_outputs_shape(
    outputs: *const KilnOutputs,
    index: usize,
    out_dims: *mut *const i64,
    out_rank: *mut usize,
) -> KilnStatus {
    guard(|| {
        let dims_out = Out::new(out_dims, "out_dims")?;
        let rank_out = Out::new(out_rank, "out_rank")?;
        // SAFETY: the caller passes NULL or a live outputs handle.
        let t = unsafe { output(outputs, index) }?;
        // SAFETY: both checked for NULL; the caller passes a valid `const int64_t **` and
        // `size_t *`.
        unsafe {
            dims_out.write(t.dims.as_ptr());
            rank_out.write(t.dims.len());
        }
        Ok(())
    })
}

/// Writes the elements of output `index`: `*out_byte_len` bytes at `*out_data`, row-major and
/// little-endian, aligned for the element type (cast to `const float *` for f32), valid until
/// kiln_outputs_free. Not to be read when the length is 0.
///
/// # Safety
/// `outputs` is NULL or a live handle from kiln_session_run; `out_data` and `out_byte_len` are
/// NULL or valid for writing a pointer and a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn kiln_outputs_data(
    outputs: *const KilnOutputs,
    index: usize,
    out_data: *mut *const c_void,
    out_byte_len: *mut usize,
) -> KilnStatus {
    guard(|| {
        let data_out = Out::new(out_data, "out_data")?;
        let len_out = Out::new(out_byte_len, "out_byte_len")?;
        // SAFETY: the caller passes NULL or a live outputs handle.
        let t = unsafe { output(outputs, index) }?;
        let (data, len) = t.data();
        // SAFETY: both checked for NULL; the caller passes a valid `const void **` and
        // `size_t *`.
        unsafe {
            data_out.write(data);
            len_out.write(len);
        }
        Ok(())
    })
}
