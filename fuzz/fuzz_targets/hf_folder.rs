//! Fuzz target `hf_folder`: a Hugging Face folder (`config.json` + `model.safetensors`) built by
//! `kiln_frontends::hf::load_folder`. The input is `u16 LE n ‖ config.json (n bytes) ‖
//! model.safetensors` (see `kiln_fuzz::split_hf`); both files are written into a folder of this
//! process before each load.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((config, weights)) = kiln_fuzz::split_hf(data) else {
        return;
    };
    let dir = kiln_fuzz::scratch_dir().join("hf");
    std::fs::create_dir_all(&dir).expect("scratch folder");
    std::fs::write(dir.join("config.json"), config).expect("write config.json");
    std::fs::write(dir.join("model.safetensors"), weights).expect("write model.safetensors");
    let _ = kiln_frontends::hf::load_folder(&dir);
});
