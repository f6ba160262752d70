//! Reading a relocatable x86-64 ELF object into a load layout: where each allocatable section goes
//! in the mapping, every relocation with its resolved target and checked place, the GOT slots and
//! veneers the relocations need, and the exported functions.
//!
//! Nothing here touches executable memory: the layout is complete (and every offset validated)
//! before the loader allocates anything.

use std::collections::BTreeMap;

use object::elf::{self, FileHeader64, SectionHeader64};
use object::read::elf::{FileHeader, SectionHeader, SectionTable, SymbolTable};
use object::{LittleEndian as LE, SectionIndex};

use super::error::CodeError;
use super::reloc::{RelocKind, VENEER_SIZE};

/// The largest object the loader maps: PC-relative fields reach ±2 GiB, so everything inside the
/// mapping must stay well within that.
const MAX_LEN: u64 = 1 << 30;
/// The largest section alignment honoured (the mapping itself is page-aligned).
const MAX_ALIGN: u64 = 4096;

/// Where a relocation's symbol lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    /// At this offset inside the mapping.
    Mapped(u64),
    /// At this absolute address (a runtime function, or an absolute symbol).
    Address(u64),
}

impl Target {
    /// The target's address once the mapping starts at `base`.
    pub(crate) fn resolve(self, base: u64) -> u64 {
        match self {
            Target::Mapped(offset) => base.wrapping_add(offset),
            Target::Address(addr) => addr,
        }
    }
}

/// One allocatable section's place in the mapping.
#[derive(Debug)]
pub(crate) struct PlacedSection<'data> {
    /// Offset of its first byte in the mapping.
    pub offset: u64,
    /// Its bytes (`None` for `SHT_NOBITS`, which stays zero-filled).
    pub data: Option<&'data [u8]>,
}

/// One relocation, resolved and bounds-checked.
#[derive(Debug)]
pub(crate) struct PlacedReloc {
    /// How to compute it.
    pub kind: RelocKind,
    /// Its ELF type (for messages).
    pub r_type: u32,
    /// The section holding the place (for messages).
    pub section: String,
    /// The place's offset in that section (for messages).
    pub offset: u64,
    /// The place's offset in the mapping; `place + kind.width()` lies inside its section.
    pub place: u64,
    /// The target symbol's name (for messages).
    pub symbol: String,
    /// Where the symbol lives.
    pub target: Target,
    /// The addend.
    pub addend: i64,
    /// Offset in the mapping of the symbol's GOT slot (GOT-relative kinds only).
    pub got: Option<u64>,
    /// Offset in the mapping of a veneer jumping to the symbol (PLT32 to external symbols).
    pub veneer: Option<u64>,
}

/// Everything the loader needs, computed from the object alone.
#[derive(Debug)]
pub(crate) struct LoadLayout<'data> {
    /// The mapping's length in bytes.
    pub len: u64,
    /// The allocatable sections.
    pub sections: Vec<PlacedSection<'data>>,
    /// The relocations to apply.
    pub relocs: Vec<PlacedReloc>,
    /// GOT slots: offset in the mapping and the target whose address it holds.
    pub got: Vec<(u64, Target)>,
    /// Veneers: offset in the mapping and the absolute address they jump to.
    pub veneers: Vec<(u64, u64)>,
    /// Exported functions: name and offset in the mapping, sorted by name.
    pub functions: Vec<(String, u64)>,
}

/// The parsed object and the placement of its sections.
pub(super) struct Reader<'data> {
    pub(super) data: &'data [u8],
    pub(super) endian: LE,
    pub(super) sections: SectionTable<'data, FileHeader64<LE>>,
    pub(super) symbols: SymbolTable<'data, FileHeader64<LE>>,
    /// For each section index, its offset in the mapping when it is loaded.
    pub(super) placed: Vec<Option<u64>>,
}

impl<'data> LoadLayout<'data> {
    /// Parses and validates `data` and lays out the mapping.
    pub(crate) fn build(data: &'data [u8]) -> Result<LoadLayout<'data>, CodeError> {
        let header = FileHeader64::<LE>::parse(data)?;
        let endian = header.endian()?;
        let machine = header.e_machine(endian);
        if machine != elf::EM_X86_64 {
            return Err(CodeError::Format {
                message: format!("machine type {machine}, expected x86-64 (EM_X86_64 = 62)"),
            });
        }
        let kind = header.e_type(endian);
        if kind != elf::ET_REL {
            return Err(CodeError::Format {
                message: format!("ELF type {kind}, expected a relocatable object (ET_REL = 1)"),
            });
        }
        let sections = header.sections(endian, data)?;
        let symbols = sections.symbols(endian, data, elf::SHT_SYMTAB)?;
        let mut reader = Reader {
            data,
            endian,
            sections,
            symbols,
            placed: Vec::new(),
        };
        let (mut len, placed_sections) = reader.place_sections()?;
        let mut relocs = reader.relocations()?;
        let functions = reader.functions()?;

        // GOT slots, then veneers, after the sections.
        let mut got_slots: BTreeMap<(Target, String), u64> = BTreeMap::new();
        let mut veneer_slots: BTreeMap<u64, u64> = BTreeMap::new();
        len = align_up(len, 8);
        for r in relocs.iter().filter(|r| r.kind.uses_got()) {
            let next = len + 8 * got_slots.len() as u64;
            got_slots
                .entry((r.target, r.symbol.clone()))
                .or_insert(next);
        }
        len += 8 * got_slots.len() as u64;
        len = align_up(len, VENEER_SIZE as u64);
        for r in &relocs {
            if let (RelocKind::Plt32, Target::Address(addr)) = (r.kind, r.target) {
                let next = len + (VENEER_SIZE * veneer_slots.len()) as u64;
                veneer_slots.entry(addr).or_insert(next);
            }
        }
        len += (VENEER_SIZE * veneer_slots.len()) as u64;
        if len > MAX_LEN {
            return Err(CodeError::Format {
                message: format!("the object needs {len} bytes of code memory (at most {MAX_LEN})"),
            });
        }
        for r in &mut relocs {
            if r.kind.uses_got() {
                r.got = got_slots.get(&(r.target, r.symbol.clone())).copied();
            }
            if let (RelocKind::Plt32, Target::Address(addr)) = (r.kind, r.target) {
                r.veneer = veneer_slots.get(&addr).copied();
            }
        }
        Ok(LoadLayout {
            len,
            sections: placed_sections,
            relocs,
            got: got_slots
                .into_iter()
                .map(|((t, _), off)| (off, t))
                .collect(),
            veneers: veneer_slots.into_iter().map(|(a, off)| (off, a)).collect(),
            functions,
        })
    }
}

impl<'data> Reader<'data> {
    pub(super) fn section_name(&self, index: SectionIndex, sh: &SectionHeader64<LE>) -> String {
        match self.sections.section_name(self.endian, sh) {
            Ok(name) if !name.is_empty() => String::from_utf8_lossy(name).into_owned(),
            _ => format!("#{}", index.0),
        }
    }

    pub(super) fn section_error(&self, index: SectionIndex, message: String) -> CodeError {
        let name = match self.sections.section(index) {
            Ok(sh) => self.section_name(index, sh),
            Err(_) => format!("#{}", index.0),
        };
        CodeError::Section {
            section: name,
            message,
        }
    }

    /// Assigns every allocatable section an offset; returns the end and the placed sections.
    fn place_sections(&mut self) -> Result<(u64, Vec<PlacedSection<'data>>), CodeError> {
        let endian = self.endian;
        let mut placed = vec![None; self.sections.len()];
        let mut out = Vec::new();
        let mut cursor = 0u64;
        for (index, sh) in self.sections.enumerate() {
            if index.0 == 0 || sh.sh_flags(endian).0 & elf::SHF_ALLOC.0 == 0 {
                continue;
            }
            let ty = sh.sh_type(endian);
            if !matches!(
                ty,
                elf::SHT_PROGBITS | elf::SHT_NOBITS | elf::SHT_X86_64_UNWIND
            ) {
                return Err(self.section_error(
                    index,
                    format!("allocatable section of unsupported type {ty:#x}"),
                ));
            }
            let align = sh.sh_addralign(endian).max(1);
            if !align.is_power_of_two() || align > MAX_ALIGN {
                return Err(self.section_error(
                    index,
                    format!("alignment {align} is not a power of two up to {MAX_ALIGN}"),
                ));
            }
            let size = sh.sh_size(endian);
            let start = align_up(cursor, align);
            cursor = match start.checked_add(size) {
                Some(end) if end <= MAX_LEN => end,
                _ => {
                    return Err(self.section_error(
                        index,
                        format!("size {size} makes the object larger than {MAX_LEN} bytes"),
                    ))
                }
            };
            let data = if ty == elf::SHT_NOBITS {
                None
            } else {
                let bytes = sh.data(endian, self.data).map_err(|_| {
                    self.section_error(
                        index,
                        format!(
                            "its {size} bytes at file offset {:#x} lie past the end of the \
                             {}-byte file",
                            sh.sh_offset(endian),
                            self.data.len()
                        ),
                    )
                })?;
                Some(bytes)
            };
            placed[index.0] = Some(start);
            out.push(PlacedSection {
                offset: start,
                data,
            });
        }
        self.placed = placed;
        Ok((cursor, out))
    }
}

fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}
