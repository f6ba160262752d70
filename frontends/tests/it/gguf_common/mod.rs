//! Helpers of the GGUF tests: a small GGUF writer (so tests build valid and hostile files
//! byte by byte) and where the fetched SmolLM2 GGUF and its references are.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// GGUF value type ids.
pub const U8: u32 = 0;
pub const I8: u32 = 1;
pub const U16: u32 = 2;
pub const I16: u32 = 3;
pub const U32: u32 = 4;
pub const I32: u32 = 5;
pub const F32: u32 = 6;
pub const BOOL: u32 = 7;
pub const STR: u32 = 8;
pub const ARR: u32 = 9;
pub const U64: u32 = 10;
pub const I64: u32 = 11;
pub const F64: u32 = 12;

/// A GGUF string: `u64` length and bytes.
pub fn s(text: &str) -> Vec<u8> {
    let mut v = (text.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(text.as_bytes());
    v
}

/// An array payload: element type, count, the elements' bytes.
pub fn arr(elem: u32, count: u64, elems: &[u8]) -> Vec<u8> {
    let mut v = elem.to_le_bytes().to_vec();
    v.extend_from_slice(&count.to_le_bytes());
    v.extend_from_slice(elems);
    v
}

/// A string array payload.
pub fn strs(items: &[&str]) -> Vec<u8> {
    let body: Vec<u8> = items.iter().flat_map(|t| s(t)).collect();
    arr(STR, items.len() as u64, &body)
}

/// A GGUF file under construction.
#[derive(Clone)]
pub struct Gguf {
    pub version: u32,
    pub kv: Vec<(String, u32, Vec<u8>)>,
    /// Name, dims (innermost first), ggml type, data; the offset is assigned by `bytes`
    /// unless `offsets` overrides it.
    pub tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    pub offsets: Option<Vec<u64>>,
    pub alignment: usize,
}

impl Default for Gguf {
    fn default() -> Gguf {
        Gguf {
            version: 3,
            kv: Vec::new(),
            tensors: Vec::new(),
            offsets: None,
            alignment: 32,
        }
    }
}

impl Gguf {
    pub fn kv(mut self, key: &str, ty: u32, payload: Vec<u8>) -> Gguf {
        self.kv.push((key.to_string(), ty, payload));
        self
    }

    pub fn u32(self, key: &str, v: u32) -> Gguf {
        self.kv(key, U32, v.to_le_bytes().to_vec())
    }

    pub fn f32(self, key: &str, v: f32) -> Gguf {
        self.kv(key, F32, v.to_le_bytes().to_vec())
    }

    pub fn str(self, key: &str, v: &str) -> Gguf {
        self.kv(key, STR, s(v))
    }

    /// An f32 tensor with `dims` (innermost first) and `values`.
    pub fn f32_tensor(mut self, name: &str, dims: &[u64], values: &[f32]) -> Gguf {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensors
            .push((name.to_string(), dims.to_vec(), 0, data));
        self
    }

    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, ty, payload) in &self.kv {
            b.extend_from_slice(&s(k));
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(payload);
        }
        let mut offset = 0u64;
        let mut data = Vec::new();
        for (i, (name, dims, ty, bytes)) in self.tensors.iter().enumerate() {
            while !data.len().is_multiple_of(self.alignment) {
                data.push(0);
            }
            let off = self.offsets.as_ref().map_or(data.len() as u64, |o| o[i]);
            offset = offset.max(off);
            b.extend_from_slice(&s(name));
            b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&off.to_le_bytes());
            data.extend_from_slice(bytes);
        }
        while !b.len().is_multiple_of(self.alignment) {
            b.push(0);
        }
        b.extend_from_slice(&data);
        b
    }

    /// Writes the file into `dir` as `model.gguf`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let p = dir.join("model.gguf");
        std::fs::write(&p, self.bytes()).expect("write the test file");
        p
    }
}

/// The fetched SmolLM2-135M-Instruct Q4_1 GGUF (`$KILN_MODEL_CACHE`, default
/// `~/.cache/kiln-models`, filled by `/work/shared/tools/fetch_models.sh`-style scripts), or
/// `None` (skipped) when absent, unless `KILN_REQUIRE_SHARED=1`.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let cache = match std::env::var_os("KILN_MODEL_CACHE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/kiln-models"),
    };
    let p = cache.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var("KILN_REQUIRE_SHARED").as_deref() != Ok("1"),
        "KILN_REQUIRE_SHARED=1 but {} does not exist (run tools/fetch_models.sh)",
        p.display()
    );
    println!("skipped: {} not found", p.display());
    None
}
