//! `compile_object`: every kernel compiled by Cranelift into one x86-64 ELF relocatable object,
//! one exported function per kernel, ready for `kiln_runtime::code::CodeModule::load`.

use std::collections::HashMap;

use cranelift_codegen::ir::types::{F32, I64};
use cranelift_codegen::ir::{AbiParam, Signature, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use kiln_runtime::{CpuFeature, CpuFeatures};

use super::emit::{Emit, RtFn};
use super::isa::{libcall_name, target_isa};
use super::kernel::{validate_all, GenKernel};
use super::{elementwise, rows};
use crate::error::{Error, Result};

fn codegen_error(kernel: &str, message: String) -> Error {
    Error::Codegen {
        kernel: kernel.to_string(),
        message,
    }
}

/// Compiles `kernels` for an x86-64 CPU with `features` into an ELF relocatable object with one
/// exported function per kernel (named by the kernel), each with the ABI
/// `extern "C" fn(args: *const *mut f32, rows: u64, cols: u64)`.
///
/// Transcendentals the kernels do not inline are calls to the runtime's `kiln_rt_*` functions,
/// imported by name and relocated with `R_X86_64_64` when the object is loaded.
pub fn compile_object(kernels: &[GenKernel], features: CpuFeatures) -> Result<Vec<u8>> {
    validate_all(kernels)?;
    let isa = target_isa(features)?;
    let builder = ObjectBuilder::new(isa, "kiln_kernels", Box::new(libcall_name))
        .map_err(|e| codegen_error("(object)", e.to_string()))?;
    let mut module = ObjectModule::new(builder);
    let pointer = module.target_config().pointer_type();
    let mut kernel_sig = Signature::new(CallConv::SystemV);
    kernel_sig.params = vec![
        AbiParam::new(pointer),
        AbiParam::new(I64),
        AbiParam::new(I64),
    ];
    let mut imported: HashMap<RtFn, FuncId> = HashMap::new();
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let fma = features.contains(CpuFeature::Fma);

    for kernel in kernels {
        let name = kernel.name();
        let err = |e: cranelift_module::ModuleError| codegen_error(name, format!("{e:?}"));
        let id = module
            .declare_function(name, Linkage::Export, &kernel_sig)
            .map_err(err)?;
        let needed = match kernel {
            GenKernel::Elementwise(k) => elementwise::runtime_functions(k),
            GenKernel::Row(k) => rows::runtime_functions(k),
        };
        for f in &needed {
            if !imported.contains_key(f) {
                let mut sig = Signature::new(CallConv::SystemV);
                sig.params = vec![AbiParam::new(F32); f.arity()];
                sig.returns = vec![AbiParam::new(F32)];
                let fid = module
                    .declare_function(f.symbol(), Linkage::Import, &sig)
                    .map_err(err)?;
                imported.insert(*f, fid);
            }
        }
        ctx.func.signature = kernel_sig.clone();
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let rt: HashMap<RtFn, _> = needed
                .iter()
                .map(|f| (*f, module.declare_func_in_func(imported[f], b.func)))
                .collect();
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            b.seal_block(entry);
            let params = b.block_params(entry).to_vec();
            let mut e = Emit {
                b: &mut b,
                rt: &rt,
                fma,
            };
            match kernel {
                GenKernel::Elementwise(k) => {
                    elementwise::build(&mut e, k, params[0], params[1], params[2])
                }
                GenKernel::Row(k) => rows::build(&mut e, k, params[0], params[1], params[2]),
            }
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        module.define_function(id, &mut ctx).map_err(err)?;
        module.clear_context(&mut ctx);
    }
    module
        .finish()
        .emit()
        .map_err(|e| codegen_error("(object)", e.to_string()))
}
