//! Developer tool: runs the ONNX backend node tests under a folder on the reference interpreter.
//! `cargo run --release -p kiln-frontends --example conformance -- DIR [FILTER] [-v]`

use kiln_frontends::onnx::conformance::{run_suite, Outcome};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "-v").collect();
    let dir = rest
        .first()
        .map(|s| s.as_str())
        .unwrap_or("../shared/onnx-node-tests/node");
    let filter = rest.get(1).map(|s| s.as_str());
    let (mut p, mut f, mut s) = (0, 0, 0);
    for r in run_suite(std::path::Path::new(dir), filter)? {
        match &r.outcome {
            Outcome::Pass => {
                p += 1;
                if verbose {
                    println!("PASS {}", r.name);
                }
            }
            Outcome::Fail(m) => {
                f += 1;
                println!("FAIL {}: {m}", r.name);
            }
            Outcome::Skip(m) => {
                s += 1;
                println!("SKIP {}: {m}", r.name);
            }
        }
    }
    println!("{p} passed, {f} failed, {s} skipped");
    Ok(())
}
