//! The error paths of the C API, called from Rust as C would call them: NULL pointers, strings
//! that are not UTF-8, bad artifact paths, out-of-range indices, inputs that do not match the
//! model, bad dtype values, a too-small memory budget. Each returns its status with a readable
//! message from `kiln_last_error`, and never crashes.

use crate::common::tiny_artifact;
use kiln_runtime_c::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::ptr::{null, null_mut};

/// This thread's last error message.
fn last_error() -> String {
    // SAFETY: `kiln_last_error` never returns NULL, and the string stays valid until this
    // thread's next call into the library; it is copied at once.
    unsafe { CStr::from_ptr(kiln_last_error()) }
        .to_str()
        .expect("UTF-8")
        .to_string()
}

/// Asserts that a call failed with `status` and a message containing every one of `parts`.
#[track_caller]
fn assert_fails(got: KilnStatus, status: KilnStatus, parts: &[&str]) {
    let msg = last_error();
    assert_eq!(got, status, "message: {msg}");
    for p in parts {
        assert!(msg.contains(p), "`{p}` not in the message: {msg}");
    }
}

fn c_path(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// Loads an artifact through the C API.
fn load(path: &Path, options: Option<KilnLoadOptions>) -> *mut KilnModel {
    let path = c_path(path);
    let mut model = null_mut();
    let opts = options.as_ref().map_or(null(), |o| o as *const _);
    // SAFETY: a valid C string, options pointer (or NULL) and out-pointer.
    let s = unsafe { kiln_model_load(path.as_ptr(), opts, &mut model) };
    assert_eq!(s, KilnStatus::Ok, "{}", last_error());
    assert_eq!(last_error(), "", "a successful call clears the last error");
    model
}

/// A session of `model`.
fn session(model: *const KilnModel) -> *mut KilnSession {
    let mut s = null_mut();
    // SAFETY: a live model handle and a valid out-pointer.
    let st = unsafe { kiln_session_new(model, &mut s) };
    assert_eq!(st, KilnStatus::Ok, "{}", last_error());
    s
}

/// A valid input of the tiny classifier: `tokens: i64[batch, seq]`, here [2, 3].
struct Tokens {
    name: CString,
    shape: [i64; 2],
    data: Vec<i64>,
}

impl Tokens {
    fn new() -> Tokens {
        Tokens {
            name: CString::new("tokens").unwrap(),
            shape: [2, 3],
            data: vec![1, 2, 3, 4, 5, 6],
        }
    }

    fn input(&self) -> KilnInput {
        KilnInput {
            name: self.name.as_ptr(),
            dtype: KilnDtype::I64,
            shape: self.shape.as_ptr(),
            rank: 2,
            data: self.data.as_ptr().cast(),
            byte_len: self.data.len() * 8,
        }
    }
}

/// Runs `inputs` on `session`; on failure checks that the out-pointer was set to NULL.
fn run(session: *mut KilnSession, inputs: &[KilnInput]) -> (KilnStatus, *mut KilnOutputs) {
    let mut out = std::ptr::dangling_mut::<KilnOutputs>(); // not NULL: a failed run resets it
                                                           // SAFETY: a live session, `inputs.len()` valid inputs, a valid out-pointer.
    let s = unsafe { kiln_session_run(session, inputs.as_ptr(), inputs.len(), &mut out) };
    if s != KilnStatus::Ok {
        assert!(out.is_null(), "a failed run sets *out_outputs to NULL");
    }
    (s, out)
}

#[test]
fn null_pointers_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&tiny_artifact(dir.path()), None);
    let mut out_model = null_mut();
    let mut n = 0usize;
    let mut name: *const c_char = null();
    // SAFETY: for every call below, every pointer is NULL or valid; NULLs are what is tested.
    unsafe {
        assert_fails(
            kiln_model_load(null(), null(), &mut out_model),
            KilnStatus::NullArgument,
            &["`path` is NULL"],
        );
        assert!(out_model.is_null());
        let p = c_path(dir.path());
        assert_fails(
            kiln_model_load(p.as_ptr(), null(), null_mut()),
            KilnStatus::NullArgument,
            &["`out_model` is NULL"],
        );
        assert_fails(
            kiln_model_num_inputs(null(), &mut n),
            KilnStatus::NullArgument,
            &["`model` is NULL"],
        );
        assert_fails(
            kiln_model_num_outputs(model, null_mut()),
            KilnStatus::NullArgument,
            &["`out_count` is NULL"],
        );
        assert_fails(
            kiln_model_input_name(null(), 0, &mut name),
            KilnStatus::NullArgument,
            &["`model`"],
        );
        let mut dims: *const i64 = null();
        assert_fails(
            kiln_model_input_shape(model, 0, &mut dims, null_mut()),
            KilnStatus::NullArgument,
            &["`out_rank`"],
        );
        let mut sess = null_mut();
        assert_fails(
            kiln_session_new(null(), &mut sess),
            KilnStatus::NullArgument,
            &["`model`"],
        );
        assert!(sess.is_null());
        let mut outputs = null_mut();
        assert_fails(
            kiln_session_run(null_mut(), null(), 0, &mut outputs),
            KilnStatus::NullArgument,
            &["`session`"],
        );
        let s = session(model);
        assert_fails(
            kiln_session_run(s, null(), 1, &mut outputs),
            KilnStatus::NullArgument,
            &["`inputs`"],
        );
        let t = Tokens::new();
        assert_fails(
            kiln_session_run(s, &t.input(), 1, null_mut()),
            KilnStatus::NullArgument,
            &["`out_outputs`"],
        );
        let mut input = t.input();
        input.name = null();
        assert_fails(
            run(s, &[input]).0,
            KilnStatus::NullArgument,
            &["inputs[0]", "`name` is NULL"],
        );
        let mut input = t.input();
        input.shape = null();
        assert_fails(
            run(s, &[input]).0,
            KilnStatus::NullArgument,
            &["input `tokens`", "`shape` is NULL"],
        );
        let mut input = t.input();
        input.data = null();
        assert_fails(
            run(s, &[input]).0,
            KilnStatus::NullArgument,
            &["`data` is NULL"],
        );
        assert_fails(
            kiln_outputs_count(null(), &mut n),
            KilnStatus::NullArgument,
            &["`outputs`"],
        );
        let mut data: *const c_void = null();
        assert_fails(
            kiln_outputs_data(null(), 0, &mut data, &mut n),
            KilnStatus::NullArgument,
            &["`outputs`"],
        );
        // The free functions accept NULL.
        kiln_outputs_free(null_mut());
        kiln_session_free(null_mut());
        kiln_model_free(null_mut());
        kiln_session_free(s);
        kiln_model_free(model);
    }
}

#[test]
fn bad_artifact_paths_fail_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = null_mut();
    let missing = c_path(&dir.path().join("missing.kiln"));
    let garbage = dir.path().join("garbage.kiln");
    std::fs::write(&garbage, b"this is not an artifact").unwrap();
    let garbage = c_path(&garbage);
    let not_utf8 = CString::new(b"/tmp/\xff\xfe.kiln".to_vec()).unwrap();
    // SAFETY: for every call below, valid C strings and out-pointers.
    unsafe {
        assert_fails(
            kiln_model_load(missing.as_ptr(), null(), &mut model),
            KilnStatus::LoadFailed,
            &["missing.kiln"],
        );
        assert!(model.is_null());
        assert_fails(
            kiln_model_load(garbage.as_ptr(), null(), &mut model),
            KilnStatus::LoadFailed,
            &["garbage.kiln"],
        );
        let d = c_path(dir.path());
        assert_fails(
            kiln_model_load(d.as_ptr(), null(), &mut model),
            KilnStatus::LoadFailed,
            &[],
        );
        assert_fails(
            kiln_model_load(not_utf8.as_ptr(), null(), &mut model),
            KilnStatus::InvalidArgument,
            &["`path` is not valid UTF-8"],
        );
        assert!(model.is_null());
    }
}

#[test]
fn metadata_queries_and_out_of_range_indices() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&tiny_artifact(dir.path()), None);
    let mut n = 0usize;
    let mut name: *const c_char = null();
    let mut dtype = KilnDtype::Bool;
    let mut dims: *const i64 = null();
    let mut rank = 0usize;
    // SAFETY: for every call below, a live model and valid out-pointers; the returned strings and
    // arrays are read while the model lives.
    unsafe {
        assert_eq!(kiln_model_num_inputs(model, &mut n), KilnStatus::Ok);
        assert_eq!(n, 1);
        assert_eq!(kiln_model_input_name(model, 0, &mut name), KilnStatus::Ok);
        assert_eq!(CStr::from_ptr(name).to_str(), Ok("tokens"));
        assert_eq!(kiln_model_input_dtype(model, 0, &mut dtype), KilnStatus::Ok);
        assert_eq!(dtype, KilnDtype::I64);
        assert_eq!(
            kiln_model_input_shape(model, 0, &mut dims, &mut rank),
            KilnStatus::Ok
        );
        assert_eq!(std::slice::from_raw_parts(dims, rank), &[-1, -1]);
        for (axis, want) in [(0, "batch"), (1, "seq")] {
            assert_eq!(
                kiln_model_input_dim_name(model, 0, axis, &mut name),
                KilnStatus::Ok
            );
            assert_eq!(CStr::from_ptr(name).to_str(), Ok(want));
        }
        assert_eq!(kiln_model_num_outputs(model, &mut n), KilnStatus::Ok);
        assert_eq!(n, 1);
        assert_eq!(kiln_model_output_name(model, 0, &mut name), KilnStatus::Ok);
        assert_eq!(CStr::from_ptr(name).to_str(), Ok("logits"));
        assert_eq!(
            kiln_model_output_dtype(model, 0, &mut dtype),
            KilnStatus::Ok
        );
        assert_eq!(dtype, KilnDtype::F32);
        assert_eq!(
            kiln_model_output_shape(model, 0, &mut dims, &mut rank),
            KilnStatus::Ok
        );
        assert_eq!(std::slice::from_raw_parts(dims, rank), &[-1, 4]);
        assert_eq!(
            kiln_model_output_dim_name(model, 0, 1, &mut name),
            KilnStatus::Ok
        );
        assert_eq!(CStr::from_ptr(name).to_str(), Ok("4"));

        assert_fails(
            kiln_model_input_name(model, 1, &mut name),
            KilnStatus::InvalidArgument,
            &["input index 1 is out of range", "1 input"],
        );
        assert_fails(
            kiln_model_output_dtype(model, 7, &mut dtype),
            KilnStatus::InvalidArgument,
            &["output index 7 is out of range"],
        );
        assert_fails(
            kiln_model_input_dim_name(model, 0, 2, &mut name),
            KilnStatus::InvalidArgument,
            &["axis 2 is out of range", "`tokens` has rank 2"],
        );
        kiln_model_free(model);
    }
}

#[test]
fn inputs_that_do_not_match_the_model_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&tiny_artifact(dir.path()), None);
    let s = session(model);
    let t = Tokens::new();

    let unknown = CString::new("input_ids").unwrap();
    let mut input = t.input();
    input.name = unknown.as_ptr();
    assert_fails(
        run(s, &[input]).0,
        KilnStatus::InvalidInput,
        &["input_ids", "`tokens`"],
    );

    // The right byte length for f32 elements, but the model wants i64.
    let floats = [0f32; 6];
    let mut input = t.input();
    input.dtype = KilnDtype::F32;
    input.data = floats.as_ptr().cast();
    input.byte_len = 24;
    assert_fails(
        run(s, &[input]).0,
        KilnStatus::InvalidInput,
        &["tokens", "i64", "f32"],
    );

    let mut input = t.input();
    input.byte_len -= 1;
    assert_fails(
        run(s, &[input]).0,
        KilnStatus::InvalidArgument,
        &["input `tokens`", "48 bytes", "got 47"],
    );

    let negative = [2i64, -3];
    let mut input = t.input();
    input.shape = negative.as_ptr();
    assert_fails(
        run(s, &[input]).0,
        KilnStatus::InvalidArgument,
        &["negative dimension -3"],
    );

    let mut input = t.input();
    input.rank = 3;
    let shape3 = [2i64, 3, 1];
    input.shape = shape3.as_ptr();
    assert_fails(run(s, &[input]).0, KilnStatus::InvalidInput, &["tokens"]);

    assert_fails(
        run(s, &[t.input(), t.input()]).0,
        KilnStatus::InvalidArgument,
        &["inputs[1]", "more than once"],
    );

    assert_fails(run(s, &[]).0, KilnStatus::InvalidInput, &["tokens"]);

    // Token ids beyond the embedding table: refused, not read out of bounds.
    let big = Tokens {
        data: vec![1, 2, 3, 4, 5, 1_000_000],
        ..Tokens::new()
    };
    let (st, out) = run(s, &[big.input()]);
    if st == KilnStatus::Ok {
        // SAFETY: a live outputs handle from a successful run.
        unsafe { kiln_outputs_free(out) };
        panic!("an out-of-range id was accepted");
    }
    assert!(!last_error().is_empty());

    // After all that, the session still runs.
    let (st, out) = run(s, &[t.input()]);
    assert_eq!(st, KilnStatus::Ok, "{}", last_error());
    // SAFETY: live handles, freed once.
    unsafe {
        kiln_outputs_free(out);
        kiln_session_free(s);
        kiln_model_free(model);
    }
}

/// `KilnInput` with `dtype` as the `uint32_t` C sees, to pass a value that is no `KilnDtype`.
#[repr(C)]
struct RawInput {
    name: *const c_char,
    dtype: u32,
    shape: *const i64,
    rank: usize,
    data: *const c_void,
    byte_len: usize,
}

#[test]
fn a_dtype_value_that_is_no_dtype_is_an_error() {
    assert_eq!(size_of::<RawInput>(), size_of::<KilnInput>());
    let dir = tempfile::tempdir().unwrap();
    let model = load(&tiny_artifact(dir.path()), None);
    let s = session(model);
    let t = Tokens::new();
    let raw = RawInput {
        name: t.name.as_ptr(),
        dtype: 99,
        shape: t.shape.as_ptr(),
        rank: 2,
        data: t.data.as_ptr().cast(),
        byte_len: 48,
    };
    let mut out = null_mut();
    // SAFETY: `RawInput` has `KilnInput`'s layout (`KilnDtype` is `repr(u32)`), and the library
    // reads `dtype` as a `u32`, as a C caller's value would be.
    let st = unsafe { kiln_session_run(s, (&raw const raw).cast(), 1, &mut out) };
    assert_fails(
        st,
        KilnStatus::InvalidArgument,
        &["input `tokens`", "99 is not a KilnDtype"],
    );
    // SAFETY: live handles, freed once.
    unsafe {
        kiln_session_free(s);
        kiln_model_free(model);
    }
}

#[test]
fn a_run_beyond_the_memory_budget_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = KilnLoadOptions {
        threads: 1,
        max_memory: 64,
    };
    let model = load(&tiny_artifact(dir.path()), Some(options));
    let s = session(model);
    assert_fails(
        run(s, &[Tokens::new().input()]).0,
        KilnStatus::OutOfMemory,
        &[],
    );
    // SAFETY: live handles, freed once.
    unsafe {
        kiln_session_free(s);
        kiln_model_free(model);
    }
}

#[test]
fn outputs_accessors_and_a_session_that_outlives_its_model_handle() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&tiny_artifact(dir.path()), None);
    let s = session(model);
    // SAFETY: a live handle, freed once; the session keeps the model alive.
    unsafe { kiln_model_free(model) };
    let (st, out) = run(s, &[Tokens::new().input()]);
    assert_eq!(st, KilnStatus::Ok, "{}", last_error());
    let mut n = 0usize;
    let mut index = 9usize;
    let mut name: *const c_char = null();
    let mut dims: *const i64 = null();
    let mut rank = 0usize;
    let mut data: *const c_void = null();
    let logits = CString::new("logits").unwrap();
    let other = CString::new("probs").unwrap();
    // SAFETY: for every call below, a live outputs handle and valid out-pointers; what they return
    // is read before the handle is freed.
    unsafe {
        assert_eq!(kiln_outputs_count(out, &mut n), KilnStatus::Ok);
        assert_eq!(n, 1);
        assert_eq!(
            kiln_outputs_find(out, logits.as_ptr(), &mut index),
            KilnStatus::Ok
        );
        assert_eq!(index, 0);
        assert_fails(
            kiln_outputs_find(out, other.as_ptr(), &mut index),
            KilnStatus::InvalidArgument,
            &["no output is named `probs`", "`logits`"],
        );
        assert_eq!(kiln_outputs_name(out, 0, &mut name), KilnStatus::Ok);
        assert_eq!(CStr::from_ptr(name).to_str(), Ok("logits"));
        assert_eq!(
            kiln_outputs_shape(out, 0, &mut dims, &mut rank),
            KilnStatus::Ok
        );
        assert_eq!(std::slice::from_raw_parts(dims, rank), &[2, 4]);
        assert_eq!(kiln_outputs_data(out, 0, &mut data, &mut n), KilnStatus::Ok);
        assert_eq!(n, 2 * 4 * 4);
        assert_eq!(data as usize % align_of::<f32>(), 0, "aligned for f32");
        let values = std::slice::from_raw_parts(data.cast::<f32>(), n / 4);
        assert!(values.iter().all(|v| v.is_finite()));
        assert_fails(
            kiln_outputs_name(out, 1, &mut name),
            KilnStatus::InvalidArgument,
            &["output index 1 is out of range"],
        );
        kiln_outputs_free(out);
        kiln_session_free(s);
    }
}

#[test]
fn the_last_error_is_per_thread() {
    let mut model = null_mut();
    // SAFETY: a NULL path is what is tested; the out-pointer is valid.
    let st = unsafe { kiln_model_load(null(), null(), &mut model) };
    assert_eq!(st, KilnStatus::NullArgument);
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "", "another thread has its own (empty) last error");
    assert!(last_error().contains("`path` is NULL"));
}
