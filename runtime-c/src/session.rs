//! `KilnSession`: a `kiln_runtime::Session` (one arena, reused across runs) that keeps its model
//! alive, behind a mutex so that a second thread running the same session gets an error instead
//! of a data race; and `kiln_session_run`, which converts the C inputs into tensors.

use crate::error::{c_str, guard, guard_free, handle, Failure, Out, Result};
use crate::model::{c_name, KilnModel, ModelInner};
use crate::outputs::{KilnOutputs, OutputTensor};
use crate::{KilnDtype, KilnInput, KilnStatus};
use kiln_runtime::{Session, Tensor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, TryLockError};

/// A session of a model (opaque): the scratch memory of runs. Used by one thread at a time;
/// free it with kiln_session_free.
#[derive(Debug)]
pub struct KilnSession {
    // Declared before `model` so that it is dropped first: it borrows the model that `model`
    // keeps alive.
    session: Mutex<Session<'static>>,
    model: Arc<ModelInner>,
}

impl KilnSession {
    fn new(model: Arc<ModelInner>) -> KilnSession {
        KilnSession {
            session: Mutex::new(Self::session_of(&model)),
            model,
        }
    }

    /// A session of `model` that may live as long as `model`'s allocation.
    fn session_of(model: &Arc<ModelInner>) -> Session<'static> {
        // SAFETY: the `ModelInner` lives in an `Arc` allocation, which never moves and is not
        // freed while a `KilnSession` holds a clone of the `Arc`. Every session made here is
        // stored in the `KilnSession` that holds that clone, is dropped before it (field order),
        // and never leaves it, so the `'static` reference is never used after the model is
        // dropped.
        let m: &'static ModelInner = unsafe { &*Arc::as_ptr(model) };
        m.model.session()
    }
}

/// Creates a session of `model`. On success `*out_session` is a new handle to free with
/// kiln_session_free; on failure it is set to NULL. The session keeps the model alive.
///
/// # Safety
/// `model` is NULL or a live handle from kiln_model_load; `out_session` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_new(
    model: *const KilnModel,
    out_session: *mut *mut KilnSession,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_session, "out_session")?;
        // SAFETY: checked for NULL; the caller passes a valid `KilnSession **`.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller passes NULL or a live model handle.
        let m = unsafe { handle(model, "model") }?;
        let session = Box::new(KilnSession::new(Arc::clone(&m.inner)));
        // SAFETY: as above.
        unsafe { out.write(Box::into_raw(session)) };
        Ok(())
    })
}

/// Frees a session (NULL is ignored), and its model when the model's handle was freed already.
///
/// # Safety
/// `session` is NULL or a handle from kiln_session_new that has not been freed and is not
/// running on another thread.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_free(session: *mut KilnSession) {
    guard_free(|| {
        if !session.is_null() {
            // SAFETY: the caller passes a handle from kiln_session_new (a `Box::into_raw`) that
            // has not been freed and that no other thread is using.
            drop(unsafe { Box::from_raw(session) });
        }
    })
}

/// One C input turned into a named tensor.
///
/// # Safety
/// `input` points to readable memory laid out as a `KilnInput` (its `dtype` may be any `u32`),
/// whose pointers are valid as `KilnInput`'s documentation says.
unsafe fn input_tensor(input: *const KilnInput) -> Result<(String, Tensor)> {
    // SAFETY: `input` points to a readable `KilnInput` layout (caller). The fields are read one by one
    // through the raw pointer; `dtype` is read as the `u32` it is in C (`KilnDtype` is
    // `repr(u32)`), so a value that is no `KilnDtype` is never made into one.
    let (name, raw_dtype, shape, rank, data, byte_len) = unsafe {
        (
            (*input).name,
            (&raw const (*input).dtype).cast::<u32>().read(),
            (*input).shape,
            (*input).rank,
            (*input).data,
            (*input).byte_len,
        )
    };
    // SAFETY: the caller guarantees `name` is NULL or a NUL-terminated string valid for the call.
    let name = unsafe { c_str(name, "name") }?;
    let fail = |f: Failure| f.context(&format!("input `{name}`"));
    let dtype = KilnDtype::from_raw(raw_dtype)
        .ok_or_else(|| fail(Failure::invalid(format!("{raw_dtype} is not a KilnDtype"))))?;
    let dims: &[i64] = if rank == 0 {
        &[]
    } else if shape.is_null() {
        return Err(fail(Failure::null("shape")));
    } else {
        // SAFETY: not NULL, and the caller guarantees `shape` points to `rank` int64_t values
        // (suitably aligned) that stay unchanged during the call.
        unsafe { std::slice::from_raw_parts(shape, rank) }
    };
    let dims = dims
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| fail(Failure::invalid(format!("negative dimension {d}"))))
        })
        .collect::<Result<Vec<usize>>>()?;
    let bytes: &[u8] = if byte_len == 0 {
        &[]
    } else if data.is_null() {
        return Err(fail(Failure::null("data")));
    } else {
        // SAFETY: not NULL, and the caller guarantees `data` points to `byte_len` readable bytes
        // that stay unchanged during the call (bytes need no alignment).
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), byte_len) }
    };
    let tensor =
        Tensor::from_le_bytes(dtype.to_runtime(), dims, bytes).map_err(|e| fail(e.into()))?;
    Ok((name.to_string(), tensor))
}

/// Runs the model on `num_inputs` named inputs (every input of the model, each once, in any
/// order; `inputs` may be NULL when `num_inputs` is 0). Inputs are checked against the model
/// (name, dtype, rank, dims: KILN_STATUS_INVALID_INPUT) and copied; the run's memory is checked
/// against the budget (KILN_STATUS_OUT_OF_MEMORY) before it is allocated.
///
/// On success `*out_outputs` holds every output of the model in kiln_model_output_name order;
/// read them with the kiln_outputs_* functions and free them with kiln_outputs_free. On failure it
/// is set to NULL. Runs on one session reuse its memory while the input shapes stay the same.
///
/// # Safety
/// `session` is NULL or a live handle from kiln_session_new; `inputs` is NULL or points to
/// `num_inputs` valid `KilnInput`s whose pointers are valid as KilnInput says; `out_outputs` is
/// NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_run(
    session: *mut KilnSession,
    inputs: *const KilnInput,
    num_inputs: usize,
    out_outputs: *mut *mut KilnOutputs,
) -> KilnStatus {
    guard(|| {
        let out = Out::new(out_outputs, "out_outputs")?;
        // SAFETY: checked for NULL; the caller passes a valid `KilnOutputs **`.
        unsafe { out.write(std::ptr::null_mut()) };
        // A shared reference: several threads may reach this point with the same session, and
        // the mutex decides which one runs.
        // SAFETY: the caller passes NULL or a live session handle.
        let s = unsafe { handle(session.cast_const(), "session") }?;
        if num_inputs > 0 && inputs.is_null() {
            return Err(Failure::null("inputs"));
        }
        let mut tensors = BTreeMap::new();
        for i in 0..num_inputs {
            // No `&KilnInput` is made: a C caller's `dtype` field may hold a value that is no
            // `KilnDtype`, so the elements are only addressed, and read field by field.
            // SAFETY: not NULL (checked above), and the caller guarantees an array of
            // `num_inputs` `KilnInput`s, so element `i` is inside it.
            let input = unsafe { inputs.add(i) };
            // SAFETY: `input` points to element `i` of the caller's array of valid inputs.
            let (name, t) =
                unsafe { input_tensor(input) }.map_err(|f| f.context(&format!("inputs[{i}]")))?;
            if tensors.insert(name.clone(), t).is_some() {
                return Err(Failure::invalid(format!(
                    "inputs[{i}]: input `{name}` is given more than once"
                )));
            }
        }
        let mut running = match s.session.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => {
                return Err(Failure::new(
                    KilnStatus::SessionBusy,
                    "the session is running on another thread (use one session per thread)",
                ))
            }
            // A run panicked on this session: its arena may be half-written, so start afresh.
            Err(TryLockError::Poisoned(p)) => {
                let mut g = p.into_inner();
                *g = KilnSession::session_of(&s.model);
                s.session.clear_poison();
                g
            }
        };
        let results = running.run(&tensors)?;
        drop(running);
        let outputs = results
            .into_iter()
            .map(|(name, tensor)| OutputTensor::new(c_name(&name, "output name")?, tensor))
            .collect::<Result<Vec<_>>>()?;
        let outputs = Box::new(KilnOutputs { outputs });
        // SAFETY: as above.
        unsafe { out.write(Box::into_raw(outputs)) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kiln_model_load;
    use std::ffi::CString;
    use std::ptr::{null, null_mut};

    #[test]
    fn a_session_running_on_another_thread_is_busy_not_raced() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let artifact = dir.path().join("tiny.kiln");
        kiln::backend::compile_model_to(
            &root.join("examples/tiny_classifier.kir"),
            &artifact,
            &kiln::backend::CompileOptions::default(),
        )
        .unwrap();
        let path = CString::new(artifact.to_str().unwrap()).unwrap();
        let (mut model, mut session, mut out) = (null_mut(), null_mut(), null_mut());
        // SAFETY: valid strings and out-pointers; the handles are used while live and freed once.
        unsafe {
            assert_eq!(
                kiln_model_load(path.as_ptr(), null(), &mut model),
                KilnStatus::Ok
            );
            assert_eq!(kiln_session_new(model, &mut session), KilnStatus::Ok);
            // Hold the session as a run on another thread would.
            let running = (*session).session.lock().unwrap();
            let status = kiln_session_run(session, null(), 0, &mut out);
            drop(running);
            assert_eq!(status, KilnStatus::SessionBusy);
            assert!(out.is_null());
            kiln_session_free(session);
            crate::kiln_model_free(model);
        }
    }
}
