//! Fuzz target `onnx`: ONNX protobuf decoding, structural validation and import into the Kiln IR.
//! Any input must give a graph or an error, never a panic, hang or unbounded allocation.

#![no_main]

use kiln_frontends::onnx::{import::import_model, OnnxModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // External data is looked for beside `model.onnx`, in an empty folder of this process.
    let path = kiln_fuzz::scratch_dir().join("model.onnx");
    if let Ok(model) = OnnxModel::from_bytes(&path, data) {
        let _ = import_model(&model);
    }
});
