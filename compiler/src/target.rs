//! What the compiler generates code for: a backend kind, the instruction-set architecture and the
//! CPU features the generated code and the chosen kernels may rely on.
//!
//! [`Target::host`] is this machine, the default everywhere a target is not given explicitly
//! (`kiln compile` without `--cpu-features`, `kiln run`, `kiln bench`, the conformance runner).
//! Only the CPU backend exists; a CUDA target will be another [`Backend`] variant, and the
//! [`pipeline`](crate::pipeline) dispatches on it.

use kiln_runtime::CpuFeatures;
use std::fmt;

/// The kind of code a target gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Native CPU code: library kernels plus Cranelift-generated fused kernels in an ELF object.
    Cpu,
}

impl Backend {
    /// The name the command line uses (`cpu`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
        }
    }
}

/// A compilation target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The backend.
    pub backend: Backend,
    /// The instruction-set architecture, as `std::env::consts::ARCH` spells it (`x86_64`); it is
    /// written into the artifact header, and the loader refuses other architectures.
    pub arch: String,
    /// CPU features the generated code may use; the loader refuses machines that lack one.
    pub features: CpuFeatures,
}

impl Target {
    /// This machine: the CPU backend, its architecture and every feature it has.
    pub fn host() -> Target {
        Target::cpu(CpuFeatures::host())
    }

    /// The CPU backend on this machine's architecture, restricted to `features` (an artifact
    /// meant for other, possibly older, CPUs of the same architecture).
    pub fn cpu(features: CpuFeatures) -> Target {
        Target {
            backend: Backend::Cpu,
            arch: std::env::consts::ARCH.to_string(),
            features,
        }
    }

    /// The target as an artifact header records it.
    pub fn artifact_target(&self) -> kiln_runtime::artifact::Target {
        kiln_runtime::artifact::Target::new(self.arch.clone(), self.features)
    }
}

impl Default for Target {
    /// [`Target::host`].
    fn default() -> Self {
        Target::host()
    }
}

impl fmt::Display for Target {
    /// `x86_64 sse4.1,avx2,fma`: the architecture and the features, as `kiln compile` reports them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.arch, self.features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_the_cpu_backend_on_this_arch_with_every_host_feature() {
        let t = Target::host();
        assert_eq!(t.backend, Backend::Cpu);
        assert_eq!(t.arch, std::env::consts::ARCH);
        assert_eq!(t.features, CpuFeatures::host());
        assert_eq!(t, Target::default());
        assert_eq!(t.artifact_target(), kiln_runtime::artifact::Target::host());
    }

    #[test]
    fn display_is_arch_then_features() {
        let t = Target::cpu(CpuFeatures::NONE);
        assert_eq!(t.to_string(), format!("{} {}", t.arch, CpuFeatures::NONE));
        assert_eq!(Backend::Cpu.name(), "cpu");
    }
}
