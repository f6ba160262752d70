//! Validation errors, objects built directly with Cranelift for every call relocation the loader
//! handles, loader errors on bad objects, and the read+execute mapping.

use kiln_runtime::code::{CodeError, CodeModule, GenFn};
use kiln_runtime::CpuFeatures;

use super::super::{compile_object, Access, RowOp};
use super::rows::{layer_norm, row, row_kernels};
use super::*;

#[test]
fn invalid_descriptions_are_codegen_errors() {
    let cases = [
        (ew("k", "F", "x0 add(0,2) x0", "1"), "does not come before"),
        (ew("k", "F", "x0 exp(1)", "1"), "does not come before"),
        (ew("k", "F", "x3", "0"), "reads input 3"),
        (ew("k", "F", "x0", ""), "no outputs"),
        (ew("k", "F", "x0", "4"), "output node 4"),
        (ew("k", "F", "", "0"), "no nodes"),
        (ew("1k", "F", "x0", "0"), "not a valid symbol"),
        (ew("a-b", "F", "x0", "0"), "not a valid symbol"),
        (ew("", "F", "x0", "0"), "not a valid symbol"),
        (ew("kiln_rt_expf", "F", "x0", "0"), "reserved"),
        (row("k", RowOp::RmsNorm { eps: -1.0 }), "eps"),
        (
            row(
                "k",
                RowOp::LayerNorm {
                    eps: f32::NAN,
                    skip: None,
                    beta: false,
                    sum_out: false,
                },
            ),
            "eps",
        ),
        (
            row("k", layer_norm(Some(Access::Scalar), false, false)),
            "Full or Row",
        ),
    ];
    for (kernel, needle) in cases {
        let err = compile_object(std::slice::from_ref(&kernel), CpuFeatures::NONE).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, crate::Error::Codegen { .. }) && msg.contains(needle),
            "{msg}"
        );
        assert!(msg.contains(&format!("`{}`", kernel.name())), "{msg}");
    }
    let twice = [
        row("same", RowOp::Softmax { log: false }),
        row("same", RowOp::RmsNorm { eps: 0.0 }),
    ];
    let msg = compile_object(&twice, CpuFeatures::NONE)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`same`") && msg.contains("share this name"),
        "{msg}"
    );
    // num_args counts inputs then outputs.
    assert_eq!(twice[1].num_args(), 3);
    assert_eq!(
        row("ln", layer_norm(Some(Access::Row), true, true)).num_args(),
        6
    );
    assert_eq!(
        ew("m", "F R C S F", "x0 x1 add(0,1)", "2 1 0").num_args(),
        8
    );
    // No kernels at all is a valid (empty) object.
    assert_eq!(load(&[], CpuFeatures::NONE).symbols().count(), 0);
}

/// An object built directly with Cranelift: `f(x) = callee(x)` for an imported `callee`,
/// non-PIC (R_X86_64_64), PIC (GOTPCREL) or colocated (a PC-relative call through a veneer).
fn object_calling(callee: &str, pic: bool, colocated: bool) -> Vec<u8> {
    use cranelift_codegen::ir::{types::F32, AbiParam, InstBuilder, Signature, UserFuncName};
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
    use cranelift_module::{Linkage, Module};
    use cranelift_object::{ObjectBuilder, ObjectModule};

    let mut flags = settings::builder();
    flags
        .set("is_pic", if pic { "true" } else { "false" })
        .unwrap();
    let isa = cranelift_codegen::isa::lookup_by_name("x86_64-unknown-linux-gnu").unwrap();
    let isa = isa.finish(settings::Flags::new(flags)).unwrap();
    let builder = ObjectBuilder::new(isa, "t", cranelift_module::default_libcall_names()).unwrap();
    let mut module = ObjectModule::new(builder);
    let mut sig = Signature::new(cranelift_codegen::isa::CallConv::SystemV);
    sig.params.push(AbiParam::new(F32));
    sig.returns.push(AbiParam::new(F32));
    let callee = module
        .declare_function(callee, Linkage::Import, &sig)
        .unwrap();
    let f = module.declare_function("f", Linkage::Export, &sig).unwrap();
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, f.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let fref = module.declare_func_in_func(callee, b.func);
    b.func.dfg.ext_funcs[fref].colocated = colocated;
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let x = b.block_params(entry)[0];
    let call = b.ins().call(fref, &[x]);
    let r = b.inst_results(call)[0];
    b.ins().return_(&[r]);
    b.seal_all_blocks();
    b.finalize(module.target_config());
    module.define_function(f, &mut ctx).unwrap();
    module.finish().emit().unwrap()
}

#[test]
fn cranelift_objects_with_every_call_relocation_load() {
    for (pic, colocated) in [(false, false), (true, false), (false, true)] {
        let what = format!("pic={pic} colocated={colocated}");
        let module = CodeModule::load(&object_calling("kiln_rt_expf", pic, colocated))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let f = module.function("f").unwrap();
        // SAFETY: `f` was generated as extern "C" fn(f32) -> f32 (System V), and the module
        // outlives the call.
        let f = unsafe { std::mem::transmute::<GenFn, extern "C" fn(f32) -> f32>(f) };
        assert_eq!(f(1.0), 1f32.exp(), "{what}");
    }
}

#[test]
fn loader_reports_bad_objects() {
    let err = CodeModule::load(&object_calling("no_such_function", false, false)).unwrap_err();
    let unknown =
        matches!(err, CodeError::UnknownSymbol { ref symbol, .. } if symbol == "no_such_function");
    assert!(
        unknown && err.to_string().contains("no_such_function"),
        "{err}"
    );
    assert!(matches!(
        CodeModule::load(b"definitely not ELF"),
        Err(CodeError::Parse { .. })
    ));
    let object = compile_object(&row_kernels(), CpuFeatures::host()).unwrap();
    for len in (0..object.len()).step_by(97) {
        assert!(
            CodeModule::load(&object[..len]).is_err(),
            "truncated to {len}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn generated_code_is_mapped_read_execute() {
    let module = load(&row_kernels(), CpuFeatures::host());
    let addr = module.function("softmax").unwrap() as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let perms = maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (lo, hi) = fields.next()?.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        (lo <= addr && addr < hi).then(|| fields.next().map(str::to_string))?
    });
    assert_eq!(perms.as_deref(), Some("r-xp"));
}
