//! The e-graph optimizer on the shared BERT-tiny fixture (legacy TorchScript export): every
//! LayerNorm and GELU is recognised, and the optimized graph still matches PyTorch's output.
//! Prints one summary line; see it with `cargo test --test egraph_fixtures -- --nocapture`.

mod common;

use kiln_compiler::egraph::{optimize, Limits};
use kiln_compiler::interp::run;

#[test]
fn bert_tiny_fuses_layer_norm_and_gelu() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures");
    let g = kiln_frontends::onnx::import::import_file(&dir.join("bert-tiny.onnx")).unwrap();
    let (opt, report) = optimize(&g, &Limits::default()).unwrap();
    println!(
        "fixture bert-tiny: LayerNorm={} Gelu={} nodes {}→{} e-graph {} nodes/{} classes, \
         {} iterations, {:?}, {:?}",
        report.count("LayerNorm"),
        report.count("Gelu"),
        g.num_nodes(),
        opt.num_nodes(),
        report.egraph_nodes,
        report.egraph_classes,
        report.iterations,
        report.stop_reason,
        report.time
    );
    assert_eq!(report.count("LayerNorm"), 5, "{report:?}");
    assert_eq!(report.count("Gelu"), 2, "{report:?}");
    kiln_compiler::verify(&opt).unwrap();

    let mut inputs = kiln::read_npz(&dir.join("bert-tiny.npz")).unwrap();
    let want = inputs.remove("out").unwrap();
    let got = run(&opt, &inputs).unwrap();
    common::allclose(&got[0].1, &want, 1e-3, 1e-4).unwrap();
}

/// GPT-2-tiny (legacy export): 5 LayerNorms and 2 GELUs (`gelu_new`, the tanh form) fuse, and
/// the optimized graph still matches PyTorch's output.
#[test]
fn gpt2_tiny_outputs_unchanged() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures");
    let g = kiln_frontends::onnx::import::import_file(&dir.join("gpt2-tiny.onnx")).unwrap();
    let (opt, report) = optimize(&g, &Limits::default()).unwrap();
    println!(
        "fixture gpt2-tiny: {:?} nodes {}→{}, {:?}, {:?}",
        report.fused,
        g.num_nodes(),
        opt.num_nodes(),
        report.stop_reason,
        report.time
    );
    assert_eq!(report.count("LayerNorm"), 5, "{report:?}");
    assert_eq!(report.count("Gelu"), 2, "{report:?}");
    let tanh = opt.node_ids().filter(|&n| {
        opt.node(n).op
            == kiln_compiler::ir::Op::Gelu {
                approx: kiln_compiler::ir::GeluApprox::Tanh,
            }
    });
    assert_eq!(tanh.count(), 2);
    let mut inputs = kiln::read_npz(&dir.join("gpt2-tiny.npz")).unwrap();
    let want = inputs.remove("out").unwrap();
    let got = run(&opt, &inputs).unwrap();
    common::allclose(&got[0].1, &want, 1e-3, 1e-4).unwrap();
}
