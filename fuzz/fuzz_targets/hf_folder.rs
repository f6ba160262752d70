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
    // A full disk is the machine's problem, not a finding: such an input is skipped.
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("config.json"), config))
        .and_then(|()| std::fs::write(dir.join("model.safetensors"), weights));
    if written.is_ok() {
        let _ = kiln_frontends::hf::load_folder(&dir);
    }
});
