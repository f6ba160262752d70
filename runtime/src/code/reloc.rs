//! The x86-64 ELF relocation types the loader implements, and how each one's value is computed
//! and written.
//!
//! Supported (`S` symbol address, `A` addend, `P` address of the place, `G` address of the
//! symbol's GOT slot, which the loader allocates inside the mapping):
//!
//! | type | value | width |
//! | --- | --- | --- |
//! | `R_X86_64_NONE` | nothing written | 0 |
//! | `R_X86_64_64` | `S + A` | 64 |
//! | `R_X86_64_32` | `S + A`, must fit unsigned | 32 |
//! | `R_X86_64_32S` | `S + A`, must fit signed | 32 |
//! | `R_X86_64_PC32` | `S + A - P`, must fit signed | 32 |
//! | `R_X86_64_PLT32` | `S + A - P`; when an external function is out of ±2 GiB, `S` is a veneer (`jmp *[rip]` + 64-bit address) inside the mapping | 32 |
//! | `R_X86_64_PC64` | `S + A - P` | 64 |
//! | `R_X86_64_GOTPCREL`, `R_X86_64_GOTPCRELX`, `R_X86_64_REX_GOTPCRELX` | `G + A - P` (the slot holds `S`) | 32 |
//!
//! The code generator itself (non-PIC, imports not colocated) only emits `R_X86_64_64`.

use object::elf;

/// How one relocation type is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelocKind {
    /// `R_X86_64_NONE`.
    None,
    /// `R_X86_64_64`.
    Abs64,
    /// `R_X86_64_32`.
    Abs32,
    /// `R_X86_64_32S`.
    Abs32S,
    /// `R_X86_64_PC32`.
    Pc32,
    /// `R_X86_64_PLT32`.
    Plt32,
    /// `R_X86_64_PC64`.
    Pc64,
    /// `R_X86_64_GOTPCREL` and its relaxable variants.
    GotPc32,
}

impl RelocKind {
    /// The kind of an ELF `r_type`, or `None` when the loader does not implement it.
    pub(crate) fn from_r_type(r_type: u32) -> Option<RelocKind> {
        Some(match elf::RelocationType(r_type) {
            elf::R_X86_64_NONE => RelocKind::None,
            elf::R_X86_64_64 => RelocKind::Abs64,
            elf::R_X86_64_32 => RelocKind::Abs32,
            elf::R_X86_64_32S => RelocKind::Abs32S,
            elf::R_X86_64_PC32 => RelocKind::Pc32,
            elf::R_X86_64_PLT32 => RelocKind::Plt32,
            elf::R_X86_64_PC64 => RelocKind::Pc64,
            elf::R_X86_64_GOTPCREL | elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX => {
                RelocKind::GotPc32
            }
            _ => return None,
        })
    }

    /// How many bytes the relocation writes.
    pub(crate) fn width(self) -> u64 {
        match self {
            RelocKind::None => 0,
            RelocKind::Abs64 | RelocKind::Pc64 => 8,
            _ => 4,
        }
    }

    /// True for kinds that need a GOT slot for their symbol.
    pub(crate) fn uses_got(self) -> bool {
        self == RelocKind::GotPc32
    }
}

/// The conventional name of an x86-64 ELF relocation type (for messages).
pub(crate) fn r_type_name(r_type: u32) -> &'static str {
    match elf::RelocationType(r_type) {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_COPY => "R_X86_64_COPY",
        elf::R_X86_64_GLOB_DAT => "R_X86_64_GLOB_DAT",
        elf::R_X86_64_JUMP_SLOT => "R_X86_64_JUMP_SLOT",
        elf::R_X86_64_RELATIVE => "R_X86_64_RELATIVE",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_TLSGD => "R_X86_64_TLSGD",
        elf::R_X86_64_TLSLD => "R_X86_64_TLSLD",
        elf::R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
        elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
        elf::R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
        elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        _ => "unknown",
    }
}

/// The addresses one relocation is computed from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs {
    /// `S`: the symbol's address.
    pub symbol: u64,
    /// `A`: the addend.
    pub addend: i64,
    /// `P`: the place's address.
    pub place: u64,
    /// `G`: the symbol's GOT slot, when the kind uses one.
    pub got: Option<u64>,
    /// A veneer that jumps to `S`, when the symbol is external and one was allocated.
    pub veneer: Option<u64>,
}

/// Why a value could not be computed: it does not fit in `bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow {
    /// The value that did not fit.
    pub value: i128,
    /// The field's width.
    pub bits: u32,
}

/// Computes the bytes to write at the place (little-endian, `kind.width()` long).
pub(crate) fn encode(kind: RelocKind, inputs: Inputs) -> Result<Vec<u8>, Overflow> {
    let s = i128::from(inputs.symbol);
    let a = i128::from(inputs.addend);
    let p = i128::from(inputs.place);
    match kind {
        RelocKind::None => Ok(Vec::new()),
        // 64-bit fields wrap, as a static linker's do.
        RelocKind::Abs64 => Ok(((s + a) as u64).to_le_bytes().to_vec()),
        RelocKind::Pc64 => Ok(((s + a - p) as u64).to_le_bytes().to_vec()),
        RelocKind::Abs32 => fit_u32(s + a),
        RelocKind::Abs32S | RelocKind::Pc32 => fit_i32(if kind == RelocKind::Pc32 {
            s + a - p
        } else {
            s + a
        }),
        RelocKind::Plt32 => fit_i32(s + a - p).or_else(|overflow| match inputs.veneer {
            Some(veneer) => fit_i32(i128::from(veneer) + a - p),
            None => Err(overflow),
        }),
        RelocKind::GotPc32 => {
            // The loader always allocates a slot for GOT-relative kinds; a missing one is a
            // value that cannot be represented.
            let g = inputs.got.map_or(i128::MAX, i128::from);
            fit_i32(g + a - p)
        }
    }
}

fn fit_i32(value: i128) -> Result<Vec<u8>, Overflow> {
    i32::try_from(value)
        .map(|v| v.to_le_bytes().to_vec())
        .map_err(|_| Overflow { value, bits: 32 })
}

fn fit_u32(value: i128) -> Result<Vec<u8>, Overflow> {
    u32::try_from(value)
        .map(|v| v.to_le_bytes().to_vec())
        .map_err(|_| Overflow { value, bits: 32 })
}

/// The bytes of one veneer: `jmp qword ptr [rip + 0]`, the 64-bit target, two `int3` of padding.
pub(crate) fn veneer_bytes(target: u64) -> [u8; VENEER_SIZE] {
    let mut v = [0xcc; VENEER_SIZE];
    v[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    v[6..14].copy_from_slice(&target.to_le_bytes());
    v
}

/// The size of one veneer in bytes.
pub(crate) const VENEER_SIZE: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(symbol: u64, addend: i64, place: u64) -> Inputs {
        Inputs {
            symbol,
            addend,
            place,
            got: None,
            veneer: None,
        }
    }

    #[test]
    fn values_are_computed_and_range_checked() {
        let abs = encode(RelocKind::Abs64, inputs(0x1122_3344_5566_7788, 8, 0)).unwrap();
        assert_eq!(abs, 0x1122_3344_5566_7790u64.to_le_bytes());
        let pc = encode(RelocKind::Pc32, inputs(0x1000, -4, 0x2000)).unwrap();
        assert_eq!(pc, (-0x1004i32).to_le_bytes());
        let far = encode(RelocKind::Pc32, inputs(1 << 40, 0, 0)).unwrap_err();
        assert_eq!(far.bits, 32);
        assert_eq!(far.value, 1 << 40);
        assert!(encode(RelocKind::Abs32, inputs(1 << 32, 0, 0)).is_err());
        assert!(encode(RelocKind::Abs32S, inputs(0x8000_0000, 0, 0)).is_err());
        assert_eq!(
            encode(RelocKind::Abs32S, inputs(0x10, -0x20, 0)).unwrap(),
            (-0x10i32).to_le_bytes()
        );
        assert_eq!(
            encode(RelocKind::Pc64, inputs(0, 0, 8)).unwrap(),
            (-8i64).to_le_bytes()
        );
        assert!(encode(RelocKind::None, inputs(0, 0, 0)).unwrap().is_empty());
        // A far PLT32 goes through the veneer; a GOT-relative one needs its slot.
        let mut plt = inputs(1 << 40, -4, 0x1000);
        assert!(encode(RelocKind::Plt32, plt).is_err());
        plt.veneer = Some(0x1800);
        assert_eq!(
            encode(RelocKind::Plt32, plt).unwrap(),
            0x7fci32.to_le_bytes()
        );
        let mut got = inputs(1 << 40, -4, 0x1000);
        assert!(encode(RelocKind::GotPc32, got).is_err());
        got.got = Some(0x1100);
        assert_eq!(
            encode(RelocKind::GotPc32, got).unwrap(),
            0xfci32.to_le_bytes()
        );
    }

    #[test]
    fn kinds_and_names_agree() {
        for r_type in 0..64 {
            if let Some(kind) = RelocKind::from_r_type(r_type) {
                assert_ne!(r_type_name(r_type), "unknown", "{r_type}");
                assert!(kind.width() <= 8);
            }
        }
        assert_eq!(RelocKind::from_r_type(elf::R_X86_64_GOTOFF64.0), None);
        assert_eq!(r_type_name(9999), "unknown");
        assert!(RelocKind::GotPc32.uses_got());
        let v = veneer_bytes(0x0102_0304_0506_0708);
        assert_eq!(&v[..2], &[0xff, 0x25]);
        assert_eq!(&v[6..14], &0x0102_0304_0506_0708u64.to_le_bytes());
    }
}
