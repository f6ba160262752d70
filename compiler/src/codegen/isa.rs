//! The Cranelift target: x86-64 System V ELF, optimised for speed, non-PIC, with the x86 feature
//! flags of the CPU features an artifact is built for; and the names Cranelift's libcalls get.

use cranelift_codegen::ir::LibCall;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use kiln_runtime::{CpuFeature, CpuFeatures};
use target_lexicon::{Architecture, BinaryFormat, Environment, OperatingSystem, Triple, Vendor};

use crate::error::{Error, Result};

/// The Cranelift x86 flags a feature implies (a CPU with AVX2 also has SSE4.2 and AVX, and so
/// on), so Cranelift may use every instruction the feature set guarantees.
fn x86_flags(feature: CpuFeature) -> &'static [&'static str] {
    const SSE41: &[&str] = &["has_sse3", "has_ssse3", "has_sse41"];
    const AVX2: &[&str] = &[
        "has_sse3",
        "has_ssse3",
        "has_sse41",
        "has_sse42",
        "has_popcnt",
        "has_avx",
        "has_avx2",
    ];
    const FMA: &[&str] = &[
        "has_sse3",
        "has_ssse3",
        "has_sse41",
        "has_sse42",
        "has_popcnt",
        "has_avx",
        "has_fma",
    ];
    match feature {
        CpuFeature::Sse41 => SSE41,
        CpuFeature::Avx2 => AVX2,
        CpuFeature::Fma => FMA,
        CpuFeature::Avx512f => &[
            "has_sse3",
            "has_ssse3",
            "has_sse41",
            "has_sse42",
            "has_popcnt",
            "has_avx",
            "has_avx2",
            "has_avx512f",
        ],
        CpuFeature::Avx512dq => &["has_avx512dq"],
        CpuFeature::Avx512vl => &["has_avx512vl"],
        CpuFeature::Avx512vnni => &["has_avx512vnni"],
        // No Cranelift flag: nothing generated uses them.
        CpuFeature::Avx512bw | CpuFeature::Avx512bf16 | CpuFeature::Avx512fp16 => &[],
    }
}

fn isa_error(message: String) -> Error {
    Error::Codegen {
        kernel: "(target)".to_string(),
        message,
    }
}

/// The x86-64 Linux ELF target for `features`.
///
/// `is_pic` is off and runtime functions are imported without `colocated`, so every call to the
/// runtime is `movabs reg, imm64` + `call reg` with an `R_X86_64_64` relocation, which the loader
/// resolves wherever the runtime happens to be mapped.
pub(crate) fn target_isa(features: CpuFeatures) -> Result<OwnedTargetIsa> {
    let mut shared = settings::builder();
    for (name, value) in [
        ("opt_level", "speed"),
        ("is_pic", "false"),
        ("unwind_info", "false"),
        ("enable_verifier", "true"),
    ] {
        shared
            .set(name, value)
            .map_err(|e| isa_error(format!("setting {name}={value}: {e}")))?;
    }
    let triple = Triple {
        architecture: Architecture::X86_64,
        vendor: Vendor::Unknown,
        operating_system: OperatingSystem::Linux,
        environment: Environment::Gnu,
        binary_format: BinaryFormat::Elf,
    };
    let mut isa = cranelift_codegen::isa::lookup(triple)
        .map_err(|e| isa_error(format!("no x86-64 backend: {e}")))?;
    for feature in features.iter() {
        for flag in x86_flags(feature) {
            isa.enable(flag)
                .map_err(|e| isa_error(format!("enabling {flag}: {e}")))?;
        }
    }
    isa.finish(settings::Flags::new(shared))
        .map_err(|e| isa_error(format!("building the x86-64 target: {e}")))
}

/// The symbol a Cranelift libcall is imported as. The rounding and FMA fallbacks (used when the
/// target lacks SSE4.1 or FMA) are runtime functions; anything else gets a name the runtime does
/// not provide, so loading reports it instead of calling something unexpected.
pub(crate) fn libcall_name(call: LibCall) -> String {
    match call {
        LibCall::FloorF32 => "kiln_rt_floorf".to_string(),
        LibCall::CeilF32 => "kiln_rt_ceilf".to_string(),
        LibCall::TruncF32 => "kiln_rt_truncf".to_string(),
        LibCall::NearestF32 => "kiln_rt_nearestf".to_string(),
        LibCall::FmaF32 => "kiln_rt_fmaf".to_string(),
        other => format!("kiln_rt_unsupported_libcall_{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_set_builds_a_target() {
        for bits in [0u64, 1, 0b111, 0b1111, 0b111_1111, 0b11_1111_1111] {
            let features = CpuFeatures::from_bits(bits).unwrap();
            let isa = target_isa(features).unwrap();
            assert_eq!(isa.triple().architecture, Architecture::X86_64);
        }
        let avx2 = target_isa(CpuFeatures::NONE.with(CpuFeature::Avx2)).unwrap();
        assert!(avx2
            .isa_flags()
            .iter()
            .any(|f| f.name == "has_avx2" && f.as_bool() == Some(true)));
    }

    #[test]
    fn libcalls_map_to_runtime_names() {
        assert_eq!(libcall_name(LibCall::FloorF32), "kiln_rt_floorf");
        assert_eq!(libcall_name(LibCall::FmaF32), "kiln_rt_fmaf");
        for call in [
            LibCall::FloorF32,
            LibCall::CeilF32,
            LibCall::TruncF32,
            LibCall::NearestF32,
        ] {
            assert!(kiln_runtime::code::symbols::lookup(&libcall_name(call)).is_some());
        }
        assert!(libcall_name(LibCall::Memcpy).contains("unsupported"));
        assert!(kiln_runtime::code::symbols::lookup(&libcall_name(LibCall::Memcpy)).is_none());
    }
}
