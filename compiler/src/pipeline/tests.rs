//! The pipeline runs every stage in order, skips the optimizer when told to, and gives the same
//! artifact as running the stage functions one after another.

use super::*;
use kiln_runtime::CpuFeatures;

const SRC: &str = r#"kir 1
graph {
  input %x: f32[batch, 8]
  weight @0 "w": f32[8, 4] = [0.5, -0.25, 0.125, 1.0, 0.5, -0.25, 0.125, 1.0, 0.5, -0.25, 0.125, 1.0, 0.5, -0.25, 0.125, 1.0, 0.5, -0.25, 0.125, 1.0, 0.5, -0.25, 0.125, 1.0, 0.5, -0.25, 0.125, 1.0, 0.5, -0.25, 0.125, 1.0]
  weight @1 "b": f32[4] = [0.1, 0.2, 0.3, 0.4]
  %0 = matmul(%x, @0) : f32[batch, 4]
  %1 = add(%0, @1) : f32[batch, 4]
  %2 = tanh(%1) : f32[batch, 4]
  output "y" = %2
}
"#;

fn graph() -> Graph {
    crate::text::parse(SRC).unwrap()
}

#[test]
fn compile_equals_the_stages_run_by_hand() {
    let target = Target::host();
    let opts = Options::default();
    let compiled = compile(&graph(), &target, &opts).unwrap();
    assert!(compiled.optimizer.is_some());

    let mut g = graph();
    optimize(&mut g, &opts).unwrap();
    let lowered = lower(&g, &target).unwrap();
    let code = codegen(&lowered, &target).unwrap();
    let by_hand = assemble(lowered, code, &target).unwrap();
    assert_eq!(compiled.to_bytes(), by_hand.to_bytes());
}

#[test]
fn o0_skips_the_optimizer_and_leaves_the_input_graph_alone() {
    let g = graph();
    let before = crate::text::print(&g).unwrap();
    let compiled = compile(&g, &Target::host(), &Options::unoptimized()).unwrap();
    assert!(compiled.optimizer.is_none());
    assert_eq!(compiled.timings.optimize, Duration::ZERO);
    assert_eq!(crate::text::print(&g).unwrap(), before);
    let t = compiled.timings;
    assert_eq!(t.total(), t.optimize + t.lower + t.codegen + t.write);
}

#[test]
fn the_header_names_the_targets_arch_and_features() {
    let target = Target::cpu(CpuFeatures::NONE);
    let bytes = compile(&graph(), &target, &Options::default())
        .unwrap()
        .to_bytes();
    let art = kiln_runtime::artifact::Artifact::from_bytes(bytes, CpuFeatures::host()).unwrap();
    assert_eq!(art.header().target, target.artifact_target());
}

#[test]
fn write_file_leaves_the_artifact_at_the_path() {
    let dir = std::env::temp_dir().join(format!("kiln-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.kiln");
    let compiled = compile(&graph(), &Target::host(), &Options::default()).unwrap();
    compiled.write_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), compiled.to_bytes());
    std::fs::remove_dir_all(&dir).unwrap();
}
