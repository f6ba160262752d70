//! Hostile files and flags: a zip-bomb `.npz`, an absurd `bench --iters`, devices inside a model
//! folder.

use super::{bounded, refused, write_model};
use crate::common::example;

/// Case 3: a zip-bomb `.npz` (the member's header says 408 bytes, it inflates to 4 GiB) was
/// inflated entirely before the size mismatch was reported. Reading stops at the declared size.
#[test]
fn a_zip_bomb_npz_is_refused_without_inflating_it() {
    use flate2::{Compress, Compression, FlushCompress};
    // One 1 MiB block of zeros, ended by a full flush (byte-aligned, dictionary reset), can be
    // repeated; 4096 copies and a final empty block inflate to 4 GiB.
    let block = |input: &[u8], flush| {
        let mut c = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(input.len() + 1024);
        c.compress_vec(input, &mut out, flush).unwrap();
        out
    };
    let chunk = block(&vec![0u8; 1 << 20], FlushCompress::Full);
    let mut data = chunk.repeat(4096);
    data.extend(block(&[], FlushCompress::Finish));
    let name = b"tokens.npy";
    let mut zip = Vec::new();
    let local = |zip: &mut Vec<u8>| {
        zip.extend(0x0403_4b50u32.to_le_bytes());
        zip.extend([20, 0, 0, 0, 8, 0, 0, 0, 0, 0]); // version, flags, deflate, time, date
        zip.extend(0u32.to_le_bytes()); // crc
        zip.extend((data.len() as u32).to_le_bytes());
        zip.extend(408u32.to_le_bytes()); // the declared (uncompressed) size
        zip.extend((name.len() as u16).to_le_bytes());
        zip.extend(0u16.to_le_bytes());
        zip.extend(name);
    };
    local(&mut zip);
    zip.extend(&data);
    let cd = zip.len() as u32;
    zip.extend(0x0201_4b50u32.to_le_bytes());
    zip.extend([20, 0, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
    zip.extend(0u32.to_le_bytes());
    zip.extend((data.len() as u32).to_le_bytes());
    zip.extend(408u32.to_le_bytes());
    zip.extend((name.len() as u16).to_le_bytes());
    zip.extend([0u8; 12]); // extra, comment, disk, internal and external attributes
    zip.extend(0u32.to_le_bytes()); // local header offset
    zip.extend(name);
    let cd_len = zip.len() as u32 - cd;
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend(cd_len.to_le_bytes());
    zip.extend(cd.to_le_bytes());
    zip.extend(0u16.to_le_bytes());

    let dir = tempfile::tempdir().unwrap();
    let bomb = write_model(dir.path(), "bomb.npz", &zip);
    let out = dir.path().join("out.npz");
    // Inflating the member whole would need 4 GiB: under the 1 GiB address-space limit that
    // aborts, so a refusal proves reading stopped at the declared size.
    let o = bounded(&[
        &"run",
        &example("tiny_classifier.kir"),
        &"--inputs",
        &bomb,
        &"--outputs",
        &out,
    ]);
    let err = refused(&o);
    assert!(err.contains("tokens") && err.contains("408"), "{err}");
}

/// Case 8: `kiln bench --iters 4294967295` pre-allocated 34 GB of timings and aborted.
#[test]
fn an_absurd_bench_iteration_count_is_refused() {
    let o = bounded(&[
        &"bench",
        &example("tiny_classifier.kir"),
        &"--inputs",
        &example("tiny_classifier_inputs.npz"),
        &"--iters",
        &"4294967295",
    ]);
    let err = refused(&o);
    assert!(err.contains("--iters"), "{err}");
}

/// Case 9, model folders: a `config.json` or `model.safetensors` that is a link to `/dev/zero`
/// was read until memory ran out. Files of a folder are refused unless regular.
#[test]
fn a_device_inside_a_model_folder_is_refused() {
    for culprit in ["config.json", "model.safetensors"] {
        let dir = tempfile::tempdir().unwrap();
        crate::hf_bert::write_folder(dir.path(), "BertModel", "", &crate::hf_bert::tiny_weights());
        std::fs::remove_file(dir.path().join(culprit)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(culprit)).unwrap();
        let o = bounded(&[&"compile", &dir.path(), &"-o", &dir.path().join("m.kiln")]);
        let err = refused(&o);
        assert!(
            err.contains(culprit) && err.contains("not a regular file"),
            "{culprit}: {err}"
        );
    }
}
