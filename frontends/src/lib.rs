//! Kiln frontends: ONNX import and Hugging Face safetensors folders (arriving with their issues).
