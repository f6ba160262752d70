//! CPU feature sets: what an artifact was built for, what this machine has, and what is missing.

use std::fmt;

/// One x86-64 CPU feature that generated code or a library kernel may rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CpuFeature {
    /// SSE4.1 (Cranelift's vector lowering uses it for some lane operations).
    Sse41,
    /// AVX2.
    Avx2,
    /// Fused multiply-add (FMA3).
    Fma,
    /// AVX-512 Foundation.
    Avx512f,
    /// AVX-512 byte and word instructions.
    Avx512bw,
    /// AVX-512 doubleword and quadword instructions.
    Avx512dq,
    /// AVX-512 vector length extensions.
    Avx512vl,
    /// AVX-512 vector neural network instructions.
    Avx512vnni,
    /// AVX-512 bfloat16 instructions.
    Avx512bf16,
    /// AVX-512 half-precision arithmetic.
    Avx512fp16,
}

impl CpuFeature {
    /// Every feature, in bit order (bit `i` of a [`CpuFeatures`] set is `ALL[i]`).
    pub const ALL: [CpuFeature; 10] = [
        CpuFeature::Sse41,
        CpuFeature::Avx2,
        CpuFeature::Fma,
        CpuFeature::Avx512f,
        CpuFeature::Avx512bw,
        CpuFeature::Avx512dq,
        CpuFeature::Avx512vl,
        CpuFeature::Avx512vnni,
        CpuFeature::Avx512bf16,
        CpuFeature::Avx512fp16,
    ];

    /// The name used on the command line, in the artifact header and in messages (as
    /// `std::arch::is_x86_feature_detected!` spells it).
    pub fn name(self) -> &'static str {
        match self {
            CpuFeature::Sse41 => "sse4.1",
            CpuFeature::Avx2 => "avx2",
            CpuFeature::Fma => "fma",
            CpuFeature::Avx512f => "avx512f",
            CpuFeature::Avx512bw => "avx512bw",
            CpuFeature::Avx512dq => "avx512dq",
            CpuFeature::Avx512vl => "avx512vl",
            CpuFeature::Avx512vnni => "avx512vnni",
            CpuFeature::Avx512bf16 => "avx512bf16",
            CpuFeature::Avx512fp16 => "avx512fp16",
        }
    }

    /// Parses a name produced by [`CpuFeature::name`].
    pub fn from_name(name: &str) -> Option<CpuFeature> {
        CpuFeature::ALL.into_iter().find(|f| f.name() == name)
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }

    /// True when this machine has the feature.
    pub fn detected(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                CpuFeature::Sse41 => std::arch::is_x86_feature_detected!("sse4.1"),
                CpuFeature::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
                CpuFeature::Fma => std::arch::is_x86_feature_detected!("fma"),
                CpuFeature::Avx512f => std::arch::is_x86_feature_detected!("avx512f"),
                CpuFeature::Avx512bw => std::arch::is_x86_feature_detected!("avx512bw"),
                CpuFeature::Avx512dq => std::arch::is_x86_feature_detected!("avx512dq"),
                CpuFeature::Avx512vl => std::arch::is_x86_feature_detected!("avx512vl"),
                CpuFeature::Avx512vnni => std::arch::is_x86_feature_detected!("avx512vnni"),
                CpuFeature::Avx512bf16 => std::arch::is_x86_feature_detected!("avx512bf16"),
                CpuFeature::Avx512fp16 => std::arch::is_x86_feature_detected!("avx512fp16"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// A set of CPU features, stored as a bit set (the artifact header holds its `bits`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuFeatures {
    bits: u64,
}

impl CpuFeatures {
    /// The empty set (a portable target).
    pub const NONE: CpuFeatures = CpuFeatures { bits: 0 };

    /// The features of the machine this runs on.
    pub fn host() -> CpuFeatures {
        CpuFeature::ALL
            .into_iter()
            .filter(|f| f.detected())
            .collect()
    }

    /// The raw bits (bit `i` is `CpuFeature::ALL[i]`).
    pub fn bits(self) -> u64 {
        self.bits
    }

    /// Rebuilds a set from raw bits; bits that name no known feature are returned as an error
    /// (an artifact from a newer compiler may require a feature this runtime cannot check).
    pub fn from_bits(bits: u64) -> Result<CpuFeatures, u64> {
        let known = CpuFeature::ALL.iter().fold(0u64, |acc, f| acc | f.bit());
        if bits & !known != 0 {
            return Err(bits & !known);
        }
        Ok(CpuFeatures { bits })
    }

    /// True when the set holds `f`.
    pub fn contains(self, f: CpuFeature) -> bool {
        self.bits & f.bit() != 0
    }

    /// The set with `f` added.
    pub fn with(self, f: CpuFeature) -> CpuFeatures {
        CpuFeatures {
            bits: self.bits | f.bit(),
        }
    }

    /// The features in `self` that `have` lacks.
    pub fn missing_from(self, have: CpuFeatures) -> Vec<CpuFeature> {
        self.iter().filter(|f| !have.contains(*f)).collect()
    }

    /// The features in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = CpuFeature> {
        CpuFeature::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }

    /// Parses a comma-separated list of feature names (`avx2,fma,avx512f`); the empty string is
    /// the empty set.
    pub fn parse(list: &str) -> Result<CpuFeatures, String> {
        let mut set = CpuFeatures::NONE;
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let f = CpuFeature::from_name(&name.to_ascii_lowercase()).ok_or_else(|| {
                let known: Vec<&str> = CpuFeature::ALL.iter().map(|f| f.name()).collect();
                format!("unknown CPU feature `{name}` (known: {})", known.join(", "))
            })?;
            set = set.with(f);
        }
        Ok(set)
    }
}

impl FromIterator<CpuFeature> for CpuFeatures {
    fn from_iter<I: IntoIterator<Item = CpuFeature>>(iter: I) -> Self {
        iter.into_iter()
            .fold(CpuFeatures::NONE, |set, f| set.with(f))
    }
}

impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(CpuFeature::name).collect();
        if names.is_empty() {
            write!(f, "(none)")
        } else {
            write!(f, "{}", names.join(","))
        }
    }
}

impl fmt::Debug for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuFeatures({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_checked() {
        for f in CpuFeature::ALL {
            assert_eq!(CpuFeature::from_name(f.name()), Some(f));
        }
        let set = CpuFeatures::parse("avx2, fma,avx512f").unwrap();
        assert_eq!(set.to_string(), "avx2,fma,avx512f");
        assert_eq!(CpuFeatures::from_bits(set.bits()), Ok(set));
        assert_eq!(CpuFeatures::from_bits(1 << 40), Err(1 << 40));
        assert!(CpuFeatures::parse("avx9").unwrap_err().contains("avx9"));
        let host = CpuFeatures::parse("avx2,fma").unwrap();
        assert_eq!(set.missing_from(host), vec![CpuFeature::Avx512f]);
    }
}
