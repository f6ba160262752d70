//! An application that embeds only `kiln-runtime`: it loads a compiled `.kiln` artifact, builds
//! inputs from the plan's declared input types, runs the model from several threads that share
//! one `Model` (each with its own `Session`), and prints the outputs.
//!
//! The example belongs to the `kiln-runtime` crate, so building it compiles none of the compiler,
//! optimizer, code generator or frontends:
//!
//! ```sh
//! cargo run --release -- compile examples/tiny_classifier.kir -o /tmp/tiny.kiln
//! cargo run --release -p kiln-runtime --example embed_runtime -- /tmp/tiny.kiln batch=2 seq=5
//! ```

use kiln_runtime::ops::Bindings;
use kiln_runtime::{DType, Model, Tensor};
use std::collections::BTreeMap;

fn main() {
    // Errors print as the CLI prints them: one readable line, exit status 1.
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: embed_runtime ARTIFACT.kiln [symbol=value ...]")?;
    // Values for the symbolic dims of the inputs (`batch=2 seq=5`); unnamed symbols default to 1.
    let mut bindings = Bindings::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("`{a}` is not symbol=value"))?;
        bindings.insert(k.to_string(), v.parse()?);
    }
    let model = Model::load(&path)?;
    let plan = model.plan();
    let mut inputs = BTreeMap::new();
    for io in &plan.inputs {
        let ty = &plan.value(io.value).ty;
        for d in ty.shape.dims() {
            for s in d.symbols() {
                bindings.entry(s).or_insert(1);
            }
        }
        let shape = ty
            .shape
            .eval(&bindings)
            .map_err(|e| format!("input `{}`: {e}", io.name))?;
        let n: usize = shape.iter().product();
        // Small deterministic values: integer inputs cycle through the first values of the range
        // the model declares for them (token ids inside the vocabulary, token type ids 0 and 1),
        // or are all 1 (attention masks) when it declares none; floats are a ramp.
        let t = match ty.dtype {
            DType::I64 | DType::I32 => {
                let values: Vec<i64> = match &io.limits.values {
                    Some(r) => {
                        let span = (r.max - r.min).clamp(0, 6) + 1;
                        (0..n as i64).map(|i| r.min + i % span).collect()
                    }
                    None => vec![1; n],
                };
                Tensor::from_i64_values(ty.dtype, shape, &values)?
            }
            d => Tensor::from_f64_values(
                d,
                shape,
                &(0..n).map(|i| (i % 11) as f64 / 11.0).collect::<Vec<_>>(),
            )?,
        };
        println!("input {}: {} {:?}", io.name, t.dtype(), t.shape());
        inputs.insert(io.name.clone(), t);
    }
    // One model, four threads, a session each: the results must agree.
    let results: Vec<Vec<(String, Tensor)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| model.session().run(&inputs)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker panicked"))
            .collect::<Result<_, _>>()
    })?;
    for (name, t) in &results[0] {
        let head: Vec<String> = t
            .to_f64_vec()
            .iter()
            .take(6)
            .map(|x| format!("{x:.5}"))
            .collect();
        println!(
            "output {name}: {} {:?} [{} ...]",
            t.dtype(),
            t.shape(),
            head.join(", ")
        );
    }
    let same = results.iter().all(|r| {
        r.iter()
            .zip(&results[0])
            .all(|((_, a), (_, b))| a.to_le_bytes() == b.to_le_bytes())
    });
    println!("4 threads agree: {same}");
    Ok(())
}
