//! Python bindings of Kiln: the `kiln._kiln` extension module that the `kiln` package re-exports.
//! `compile` / `load` give a [`PyModel`] (a loaded `kiln_runtime::Model`); `Model.run` takes
//! numpy arrays, runs with the GIL released and returns numpy arrays that own the output buffers
//! (no copy); `inspect` returns the JSON `kiln inspect --format json` prints. Errors are
//! `kiln.KilnError` (input problems `kiln.InputError`) carrying the command line's one-line
//! message.
//!
//! Everything here is glue: what to compile, run or print comes from the facade crate `kiln`,
//! the same code the `kiln` command line calls.

use kiln::backend::{self, CompileOptions};
use kiln_runtime::{bf16, f16, DType, LoadOptions, Model, Tensor, TensorData};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    Element, PyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

create_exception!(
    kiln,
    KilnError,
    PyException,
    "An error reported by Kiln; the message is the one line the `kiln` command prints after `error: `."
);
create_exception!(
    kiln,
    InputError,
    KilnError,
    "Inputs that do not fit the model: an unknown or missing name, a wrong dtype or shape, a dtype Kiln has no type for, or values outside what the model accepts."
);

/// What a run's inputs are called in messages, where the command line names the `.npz` file.
const INPUTS: &str = "<inputs>";

/// A facade error as a Python exception with the command line's one-line message.
fn kiln_err(e: kiln::Error) -> PyErr {
    let line = kiln::error_line(&e);
    match e {
        kiln::Error::Input { .. } | kiln::Error::UnknownInput { .. } => InputError::new_err(line),
        _ => KilnError::new_err(line),
    }
}

/// `max_memory` as bytes: an int, or a size text such as `"512MB"` (as `--max-memory`).
fn max_memory(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(v) = value else { return Ok(None) };
    if let Ok(text) = v.extract::<String>() {
        return kiln_runtime::budget::parse_size(&text)
            .map(Some)
            .map_err(|e| KilnError::new_err(format!("max_memory {e}")));
    }
    match v.extract::<u64>() {
        Ok(0) | Err(_) => Err(PyValueError::new_err(
            "max_memory must be a positive number of bytes or a size such as \"512MB\"",
        )),
        Ok(n) => Ok(Some(n)),
    }
}

fn load_options(threads: Option<usize>, max_memory: Option<u64>) -> PyResult<LoadOptions> {
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    Ok(LoadOptions {
        threads,
        max_memory,
    })
}

/// The numpy dtype name of a Kiln dtype (bf16 is ml_dtypes' `bfloat16`).
fn numpy_dtype(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F64 => "float64",
        DType::I64 => "int64",
        DType::I32 => "int32",
        DType::I8 => "int8",
        DType::U8 => "uint8",
        DType::I16 => "int16",
        DType::U16 => "uint16",
        DType::U32 => "uint32",
        DType::U64 => "uint64",
        DType::Bool => "bool",
    }
}

/// The `kiln.TensorInfo` named tuple type (`name`, `dtype`, `shape`), made once.
fn tensor_info_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    TYPE.get_or_try_init(py, || {
        let fields = PyTuple::new(py, ["name", "dtype", "shape"])?;
        let t = py
            .import("collections")?
            .getattr("namedtuple")?
            .call1(("TensorInfo", fields))?;
        t.setattr("__module__", "kiln")?;
        t.setattr(
            "__doc__",
            "A model input or output: its name, numpy dtype name and shape (ints for known \
             dims, strings for symbolic ones such as 'batch').",
        )?;
        Ok(t.unbind())
    })
    .map(|t| t.bind(py))
}

/// A compiled model, ready to run. Share one `Model` between threads: each call runs in its own
/// session, with the GIL released.
#[pyclass(frozen, name = "Model", module = "kiln")]
#[derive(Debug)]
struct PyModel {
    model: Model,
    /// The file the model came from (the source model, or the artifact loaded); errors name it.
    path: PathBuf,
}

impl PyModel {
    fn io_infos<'py>(
        &self,
        py: Python<'py>,
        list: &[kiln_runtime::plan::Io],
    ) -> PyResult<Bound<'py, PyList>> {
        let plan = self.model.plan();
        let info = tensor_info_type(py)?;
        let items = list
            .iter()
            .map(|io| {
                let ty = &plan.value(io.value).ty;
                let shape = PyList::empty(py);
                for d in ty.shape.dims() {
                    match d.as_known() {
                        Some(n) => shape.append(n)?,
                        None => shape.append(d.to_string())?,
                    }
                }
                info.call1((io.name.as_str(), numpy_dtype(ty.dtype), shape))
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn run_inputs<'py>(
        &self,
        py: Python<'py>,
        items: Vec<(String, Bound<'py, PyAny>)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut inputs = BTreeMap::new();
        for (name, value) in items {
            let t = input_tensor(py, &name, &value)?;
            inputs.insert(name, t);
        }
        let outputs = py
            .detach(|| backend::run_model(&self.model, &self.path, &inputs, Path::new(INPUTS)))
            .map_err(kiln_err)?;
        let dict = PyDict::new(py);
        for (name, t) in outputs {
            if dict.contains(&name)? {
                return Err(KilnError::new_err(format!(
                    "{}: the graph declares output `{name}` twice",
                    self.path.display()
                )));
            }
            dict.set_item(name, output_array(py, t)?)?;
        }
        Ok(dict)
    }
}

#[pymethods]
impl PyModel {
    /// The model's inputs, in declaration order: a list of `TensorInfo(name, dtype, shape)`.
    #[getter]
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.io_infos(py, &self.model.plan().inputs)
    }

    /// The model's outputs, in declaration order: a list of `TensorInfo(name, dtype, shape)`.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.io_infos(py, &self.model.plan().outputs)
    }

    /// The file the model came from: the compiled model, or the artifact loaded.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Runs the model on a mapping of input name to numpy array (each of the input's dtype;
    /// other array-likes go through `numpy.asarray`) and returns a dict of output name to numpy
    /// array, in declaration order. The GIL is released while the model runs. Raises
    /// `InputError` for inputs that do not fit, `KilnError` for other failures.
    fn run<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        if !inputs.hasattr("items")? {
            return Err(PyTypeError::new_err(format!(
                "inputs must be a mapping of input name to array, not {}",
                inputs.get_type().name()?
            )));
        }
        let mut items = Vec::new();
        for item in inputs.call_method0("items")?.try_iter()? {
            items.push(item?.extract::<(String, Bound<'py, PyAny>)>()?);
        }
        self.run_inputs(py, items)
    }

    /// `model(input_ids=..., attention_mask=...)` is `model.run({...})`.
    #[pyo3(signature = (**inputs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        inputs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let items = match inputs {
            Some(d) => d
                .iter()
                .map(|(k, v)| Ok((k.extract::<String>()?, v)))
                .collect::<PyResult<Vec<_>>>()?,
            None => Vec::new(),
        };
        self.run_inputs(py, items)
    }

    fn __repr__(&self) -> String {
        let names = |list: &[kiln_runtime::plan::Io]| {
            list.iter()
                .map(|io| io.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let plan = self.model.plan();
        format!(
            "<kiln.Model {:?} inputs=[{}] outputs=[{}]>",
            self.path.display().to_string(),
            names(&plan.inputs),
            names(&plan.outputs)
        )
    }
}

/// `value` as a Kiln tensor: numpy arrays of Kiln's dtypes are read in place (one copy into the
/// tensor; a non-contiguous array is gathered in C order), byte-swapped first when not in native
/// order; `uint16` and ml_dtypes' `bfloat16` are bf16 bits (as in `.npz` files).
fn input_tensor(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let mut arr = match value.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => py
            .import("numpy")?
            .call_method1("asarray", (value,))?
            .cast_into::<PyUntypedArray>()?,
    };
    let dtype = arr.dtype();
    if dtype.is_native_byteorder() == Some(false) {
        let native = dtype.call_method1("newbyteorder", ("=",))?;
        arr = arr.call_method1("astype", (native,))?.cast_into()?;
    }
    let shape = arr.shape().to_vec();
    if arr.dtype().getattr("name")?.extract::<String>()? == "bfloat16" {
        let bits = arr.call_method1("view", ("uint16",))?;
        if let Ok(a) = bits.cast::<PyArrayDyn<u16>>() {
            let v = elements(a)?.into_iter().map(bf16::from_bits).collect();
            return tensor(shape, TensorData::BF16(v));
        }
    }
    macro_rules! take {
        ($t:ty, $variant:ident) => {
            if let Ok(a) = arr.cast::<PyArrayDyn<$t>>() {
                return tensor(shape, TensorData::$variant(elements(a)?));
            }
        };
    }
    take!(f32, F32);
    take!(i64, I64);
    take!(i32, I32);
    take!(f64, F64);
    take!(f16, F16);
    take!(i8, I8);
    take!(u8, U8);
    take!(bool, Bool);
    take!(i16, I16);
    take!(u16, U16);
    take!(u32, U32);
    take!(u64, U64);
    let descr: String = arr.dtype().getattr("str")?.extract()?;
    Err(InputError::new_err(format!(
        "{INPUTS}: array `{name}`: unsupported dtype `{descr}` (supported: <f4 <f2 <f8 <i8 <i4 \
         <i2 <u2 <u4 <u8 |i1 |u1 |b1, and ml_dtypes' bfloat16)"
    )))
}

/// The elements of an array in C order: one copy of a C-contiguous buffer, else a gather.
fn elements<T: Element + Copy>(a: &Bound<'_, PyArrayDyn<T>>) -> PyResult<Vec<T>> {
    let ro = a
        .try_readonly()
        .map_err(|e| InputError::new_err(format!("{INPUTS}: {e}")))?;
    if a.is_c_contiguous() {
        if let Ok(s) = ro.as_slice() {
            return Ok(s.to_vec());
        }
    }
    Ok(ro.as_array().iter().copied().collect())
}

fn tensor(shape: Vec<usize>, data: TensorData) -> PyResult<Tensor> {
    Tensor::new(shape, data).map_err(|e| InputError::new_err(format!("{INPUTS}: {e}")))
}

/// An output tensor as a numpy array that takes over its buffer (bf16 as `uint16` bits).
fn output_array(py: Python<'_>, t: Tensor) -> PyResult<Bound<'_, PyAny>> {
    fn array<'py, T: Element>(
        py: Python<'py>,
        shape: &[usize],
        v: Vec<T>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = ArrayD::from_shape_vec(IxDyn(shape), v)
            .map_err(|e| KilnError::new_err(format!("output of shape {shape:?}: {e}")))?;
        Ok(PyArray::from_owned_array(py, a).into_any())
    }
    let shape = t.shape().to_vec();
    match t.into_data() {
        TensorData::F32(v) => array(py, &shape, v),
        TensorData::F16(v) => array(py, &shape, v),
        TensorData::BF16(v) => array(py, &shape, v.into_iter().map(bf16::to_bits).collect()),
        TensorData::F64(v) => array(py, &shape, v),
        TensorData::I64(v) => array(py, &shape, v),
        TensorData::I32(v) => array(py, &shape, v),
        TensorData::I8(v) => array(py, &shape, v),
        TensorData::U8(v) => array(py, &shape, v),
        TensorData::I16(v) => array(py, &shape, v),
        TensorData::U16(v) => array(py, &shape, v),
        TensorData::U32(v) => array(py, &shape, v),
        TensorData::U64(v) => array(py, &shape, v),
        TensorData::Bool(v) => array(py, &shape, v),
    }
}

/// Compiles a model (a `.kir` file, an `.onnx` file or a Hugging Face folder) for this machine's
/// CPU and returns it loaded. With `out`, the `.kiln` artifact is also written there
/// (atomically, as `kiln compile -o` does) and the model is loaded from it. `optimize=False` is
/// `-O0`. `threads` and `max_memory` (bytes, or a size such as `"512MB"`) are as in `load`.
#[pyfunction]
#[pyo3(signature = (model_path, out=None, target="cpu", optimize=true, *, threads=None, max_memory=None))]
fn compile(
    py: Python<'_>,
    model_path: PathBuf,
    out: Option<PathBuf>,
    target: &str,
    optimize: bool,
    threads: Option<usize>,
    max_memory: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyModel> {
    match target {
        "cpu" => {}
        "cuda" => {
            return Err(KilnError::new_err(format!(
                "{}: target `cuda` is not available yet (issue: CUDA backend); use target=\"cpu\"",
                model_path.display()
            )))
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown target `{other}` (expected \"cpu\" or \"cuda\")"
            )))
        }
    }
    let load = load_options(threads, self::max_memory(max_memory)?)?;
    let opts = CompileOptions {
        optimize,
        ..Default::default()
    };
    py.detach(|| {
        let runtime_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| kiln::Error::Runtime { path, source }
        };
        match out {
            Some(out) => {
                backend::check_output(&out, &[&model_path])?;
                backend::compile_model_to(&model_path, &out, &opts)?;
                let model = Model::load_with(&out, &load).map_err(runtime_err(&out))?;
                Ok(PyModel { model, path: out })
            }
            None => {
                let bytes = backend::compile_model(&model_path, &opts)?;
                let model = Model::from_bytes(bytes, &load).map_err(runtime_err(&model_path))?;
                Ok(PyModel {
                    model,
                    path: model_path,
                })
            }
        }
    })
    .map_err(kiln_err)
}

/// Loads a `.kiln` artifact (validated: checksum, format, this CPU's features) and returns the
/// model; any other model kind is compiled in memory first, as `kiln run` does. `threads`: the
/// model's worker threads (default: `KILN_THREADS`, else every core). `max_memory`: the most a
/// run may allocate, in bytes or as a size such as `"512MB"` (default: the memory available).
#[pyfunction]
#[pyo3(signature = (artifact_path, threads=None, max_memory=None))]
fn load(
    py: Python<'_>,
    artifact_path: PathBuf,
    threads: Option<usize>,
    max_memory: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyModel> {
    let load = load_options(threads, self::max_memory(max_memory)?)?;
    py.detach(|| {
        let model = backend::load_runnable(&artifact_path, &CompileOptions::default(), &load)?;
        Ok(PyModel {
            model,
            path: artifact_path,
        })
    })
    .map_err(kiln_err)
}

/// What `kiln inspect PATH [--stage STAGE] --format json` prints, as a dict: an artifact's
/// header, sections and plan (a `.kiln` file and no stage), or the model at `stage` —
/// `"imported"` (the default for models), `"optimized"` or `"kernels"`.
#[pyfunction]
#[pyo3(signature = (path, stage=None))]
fn inspect<'py>(
    py: Python<'py>,
    path: PathBuf,
    stage: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let stage = stage
        .map(|s| {
            kiln::inspect::Stage::from_name(s).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "unknown stage `{s}` (expected \"imported\", \"optimized\" or \"kernels\")"
                ))
            })
        })
        .transpose()?;
    let text = py
        .detach(|| {
            let v = kiln::inspect::inspect_json(&path, stage)?;
            serde_json::to_string(&v).map_err(|source| kiln::Error::Encode {
                path: path.clone(),
                source,
            })
        })
        .map_err(kiln_err)?;
    py.import("json")?.call_method1("loads", (text,))
}

/// The `kiln._kiln` module.
#[pymodule(name = "_kiln")]
fn kiln_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_class::<PyModel>()?;
    m.add("KilnError", py.get_type::<KilnError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("TensorInfo", tensor_info_type(py)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
