//! Helpers of the C API tests: the shared test data (`KILN_SHARED`), compiling models to
//! artifacts with the `kiln` facade, building `examples/c/embed.c` against the static library,
//! and running the same inputs through the Rust API.

use kiln::backend::{compile_model_to, CompileOptions};
use kiln::kiln_compiler::Target;
use kiln_runtime::{CpuFeatures, DType, Model, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime-c is inside the workspace")
        .to_path_buf()
}

/// The shared test-data folder: `KILN_SHARED`, else `../shared` beside the workspace root.
/// When it is missing: with `KILN_REQUIRE_SHARED=1` (as in CI) this panics; otherwise it prints
/// `skipped: ../shared not found` and returns `None`, and the calling test returns early.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("KILN_SHARED") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => workspace().join("../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("KILN_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!(
            "the shared test data is required (KILN_REQUIRE_SHARED=1) but {} is not a directory; \
             set KILN_SHARED to the shared folder",
            dir.display()
        );
    }
    println!(
        "skipped: ../shared not found (looked for {})",
        dir.display()
    );
    None
}

/// Compiles `model` (any kind Kiln imports) into `dir/name.kiln` for `target`.
pub fn compile(model: &Path, dir: &Path, name: &str, target: Target) -> PathBuf {
    let out = dir.join(format!("{name}.kiln"));
    let opts = CompileOptions {
        target,
        ..CompileOptions::default()
    };
    compile_model_to(model, &out, &opts)
        .unwrap_or_else(|e| panic!("compiling {}: {e}", model.display()));
    out
}

/// The shipped example model compiled for this machine into `dir`.
pub fn tiny_artifact(dir: &Path) -> PathBuf {
    compile(
        &workspace().join("examples/tiny_classifier.kir"),
        dir,
        "tiny",
        Target::host(),
    )
}

/// The shipped example model compiled for no CPU features beyond the baseline (code valgrind
/// can run: it does not emulate AVX-512).
pub fn tiny_portable_artifact(dir: &Path) -> PathBuf {
    compile(
        &workspace().join("examples/tiny_classifier.kir"),
        dir,
        "tiny-portable",
        Target::cpu(CpuFeatures::NONE),
    )
}

/// `examples/c/embed.c` built once per test run with the system C compiler (`cc`, warnings as
/// errors) against the crate's static library, which cargo built beside this test binary.
pub fn embed_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let deps = std::env::current_exe()
            .expect("the test binary's path")
            .parent()
            .expect("the test binary is in target/<profile>/deps")
            .to_path_buf();
        let lib = deps.join("libkiln_runtime_c.a");
        assert!(lib.is_file(), "{} was not built", lib.display());
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-c-embed");
        let root = workspace();
        let o = Command::new("cc")
            .args([
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-pedantic",
                "-Werror",
                "-g",
                "-I",
            ])
            .arg(root.join("runtime-c/include"))
            .arg(root.join("examples/c/embed.c"))
            .arg(&lib)
            // What `rustc --print native-static-libs` lists for a staticlib on Linux.
            .args([
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
                "-lc",
                "-o",
            ])
            .arg(&out)
            .output()
            .expect("the system C compiler `cc` runs");
        assert!(
            o.status.success(),
            "cc failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

/// Runs the C example on `artifact`, dumping raw tensors into `dump`; it must succeed.
pub fn run_embed(artifact: &Path, dump: &Path) -> String {
    let o = Command::new(embed_exe())
        .arg(artifact)
        .arg(dump)
        .output()
        .expect("the C example runs");
    stdout_ok(&o)
}

/// Standard output of a run that must have succeeded.
pub fn stdout_ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One `input|output NAME DTYPE [d0, d1, ...] ...` line of the C example.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// The C example's lines of `kind` (`input` or `output`), in order.
pub fn lines(stdout: &str, kind: &str) -> Vec<Line> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(kind)?.strip_prefix(' '))
        .map(|l| {
            let (name, rest) = l.split_once(' ').expect("NAME DTYPE [dims]");
            let (dtype, rest) = rest.split_once(" [").expect("DTYPE [dims]");
            let dims = &rest[..rest.find(']').expect("a closing `]`")];
            Line {
                name: name.to_string(),
                dtype: DType::from_name(dtype).expect("a dtype name"),
                shape: dims
                    .split(", ")
                    .filter(|d| !d.is_empty())
                    .map(|d| d.parse().expect("a dim"))
                    .collect(),
            }
        })
        .collect()
}

/// Runs the C example on `artifact` and the Rust API on the inputs it made (read back from its
/// dump), and checks that every output agrees bit for bit: name, dtype, shape and bytes.
/// Returns the C example's standard output.
pub fn check_c_matches_rust(artifact: &Path) -> String {
    let dump = tempfile::tempdir().expect("a temporary folder");
    let stdout = run_embed(artifact, dump.path());
    let mut inputs = BTreeMap::new();
    for (i, l) in lines(&stdout, "input").into_iter().enumerate() {
        let bytes = std::fs::read(dump.path().join(format!("input_{i}.bin"))).expect("input dump");
        let t = Tensor::from_le_bytes(l.dtype, l.shape, &bytes).expect("a dumped input");
        inputs.insert(l.name, t);
    }
    let model = Model::load(artifact).expect("the artifact loads in Rust");
    assert_eq!(inputs.len(), model.plan().inputs.len(), "{stdout}");
    let want = model.session().run(&inputs).expect("the Rust run");
    let got = lines(&stdout, "output");
    assert_eq!(got.len(), want.len(), "{stdout}");
    for (i, (l, (name, t))) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            (&l.name, l.dtype, l.shape.as_slice()),
            (name, t.dtype(), t.shape()),
            "output {i}"
        );
        let bytes =
            std::fs::read(dump.path().join(format!("output_{i}.bin"))).expect("output dump");
        assert!(
            bytes == t.to_le_bytes(),
            "output `{name}`: the C API's bytes differ from the Rust API's"
        );
    }
    stdout
}
