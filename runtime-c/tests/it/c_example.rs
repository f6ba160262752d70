//! `examples/c/embed.c`, built with the system C compiler against the static library: its
//! outputs equal the Rust API's bit for bit (the shipped tiny model, and all-MiniLM-L6-v2 from
//! the shared folder), it reports errors through `kiln_last_error`, and valgrind finds no memory
//! errors and no leaks in it.

use crate::common::{
    check_c_matches_rust, compile, embed_exe, shared_dir, tiny_artifact, tiny_portable_artifact,
};
use kiln::kiln_compiler::Target;
use std::process::Command;

#[test]
fn tiny_classifier_matches_rust_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = check_c_matches_rust(&tiny_artifact(dir.path()));
    // The inputs come from the model's metadata: `tokens: i64[batch, seq]` with batch 2, seq 5.
    assert!(stdout.contains("input tokens i64 [2, 5]\n"), "{stdout}");
    assert!(
        stdout.contains("output logits f32 [2, 4] first: "),
        "{stdout}"
    );
}

#[test]
fn minilm_matches_rust_bit_for_bit() {
    let Some(shared) = shared_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = shared.join("models/all-MiniLM-L6-v2");
    let artifact = compile(&model, dir.path(), "minilm", Target::host());
    let stdout = check_c_matches_rust(&artifact);
    for line in [
        "input input_ids i64 [2, 5]",
        "input attention_mask i64 [2, 5]",
        "input token_type_ids i64 [2, 5]",
    ] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }
    assert!(stdout.contains(" f32 [2, 5, 384] first: "), "{stdout}");
}

#[test]
fn errors_reach_the_c_program_with_their_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.kiln");
    let o = Command::new(embed_exe()).arg(&missing).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("kiln_model_load") && stderr.contains("missing.kiln"),
        "{stderr}"
    );
}

#[test]
fn valgrind_finds_no_errors_and_no_leaks() {
    let valgrind = "/usr/bin/valgrind";
    let found = Command::new(valgrind).arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        println!("skipped: valgrind not found at {valgrind}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let artifact = tiny_portable_artifact(dir.path());
    let o = Command::new(valgrind)
        .args(["--error-exitcode=1", "--leak-check=full"])
        // Leaks count as errors only when definite: dropping a model ends its rayon workers
        // without joining them, so a worker may still be exiting when the process ends, and
        // valgrind reports its thread-local block (glibc's TLS, ~300 bytes) as "possibly lost".
        .args(["--errors-for-leak-kinds=definite,indirect"])
        .arg(embed_exe())
        .arg(&artifact)
        // Two kernel threads keep the run short under valgrind's serialised threads.
        .env("KILN_THREADS", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "valgrind: {:?}\n{stderr}", o.status);
    let summary = |key: &str| stderr.lines().find(|l| l.contains(key)).map(str::trim);
    let errors = summary("ERROR SUMMARY:").expect("valgrind's error summary");
    println!("{errors}");
    assert!(errors.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
    // With no leak at all valgrind prints "All heap blocks were freed" instead of a summary.
    match summary("definitely lost:") {
        Some(l) => {
            println!("{l}");
            assert!(l.contains("definitely lost: 0 bytes"), "{stderr}");
            let indirect = summary("indirectly lost:").expect("valgrind's leak summary");
            assert!(indirect.contains("indirectly lost: 0 bytes"), "{stderr}");
        }
        None => assert!(stderr.contains("All heap blocks were freed"), "{stderr}"),
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("output logits f32 [2, 4] first: "),
        "{stdout}"
    );
}
