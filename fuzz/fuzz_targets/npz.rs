//! Fuzz target `npz`: the `.npz` reader (zip container, `.npy` headers and payloads).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = kiln::npz::read_npz_bytes(data, Path::new("fuzz.npz"));
});
