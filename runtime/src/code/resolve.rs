//! Reading an object's relocations and symbols for the load layout: every RELA entry of a loaded
//! section with its symbol resolved (a section of the object, or the runtime symbol table) and
//! its place bounds-checked, and the exported functions.

use std::collections::HashMap;

use object::elf::{self, Rela64};
use object::read::elf::{SectionHeader, Sym};
use object::{LittleEndian as LE, SectionIndex, SymbolIndex};

use super::error::CodeError;
use super::layout::{PlacedReloc, Reader, Target};
use super::reloc::{r_type_name, RelocKind};
use super::symbols;

impl Reader<'_> {
    /// Reads every relocation section that applies to a loaded section.
    pub(super) fn relocations(&self) -> Result<Vec<PlacedReloc>, CodeError> {
        let endian = self.endian;
        let mut out = Vec::new();
        let mut resolved: HashMap<u32, (String, Target)> = HashMap::new();
        for (index, sh) in self.sections.enumerate() {
            let ty = sh.sh_type(endian);
            if !matches!(ty, elf::SHT_RELA | elf::SHT_REL | elf::SHT_CREL) {
                continue;
            }
            let target = SectionIndex(sh.sh_info(endian) as usize);
            let Some(Some(base)) = self.placed.get(target.0).copied() else {
                if target.0 >= self.sections.len() {
                    return Err(self.section_error(
                        index,
                        format!("applies to section #{}, which does not exist", target.0),
                    ));
                }
                continue; // relocations of a section that is not loaded (debug info)
            };
            if ty != elf::SHT_RELA {
                return Err(self.section_error(
                    index,
                    "only RELA relocation sections are supported (x86-64 uses RELA)".to_string(),
                ));
            }
            let target_sh = self.sections.section(target)?;
            let target_name = self.section_name(target, target_sh);
            let target_size = target_sh.sh_size(endian);
            let entries: &[Rela64<LE>] = sh.data_as_array(endian, self.data).map_err(|_| {
                self.section_error(
                    index,
                    "its relocation entries lie past the end of the file".to_string(),
                )
            })?;
            for rela in entries {
                let offset = rela.r_offset.get(endian);
                let r_type = rela.r_type(endian, false).0;
                let r_sym = rela.r_sym(endian, false);
                let (symbol, target) = match resolved.get(&r_sym) {
                    Some(hit) => hit.clone(),
                    None => {
                        let hit = self.resolve_symbol(r_sym, &target_name, offset)?;
                        resolved.insert(r_sym, hit.clone());
                        hit
                    }
                };
                let kind = RelocKind::from_r_type(r_type).ok_or_else(|| {
                    CodeError::UnsupportedRelocation {
                        r_type,
                        name: r_type_name(r_type),
                        section: target_name.clone(),
                        offset,
                        symbol: symbol.clone(),
                    }
                })?;
                let width = kind.width();
                if offset
                    .checked_add(width)
                    .is_none_or(|end| end > target_size)
                {
                    return Err(CodeError::RelocationOffset {
                        section: target_name.clone(),
                        offset,
                        size: width,
                        section_size: target_size,
                    });
                }
                out.push(PlacedReloc {
                    kind,
                    r_type,
                    section: target_name.clone(),
                    offset,
                    place: base + offset,
                    symbol,
                    target,
                    addend: rela.r_addend.get(endian),
                    got: None,
                    veneer: None,
                });
            }
        }
        Ok(out)
    }

    /// The name and location of symbol `index`, referenced from `section`+`offset`.
    fn resolve_symbol(
        &self,
        index: u32,
        section: &str,
        offset: u64,
    ) -> Result<(String, Target), CodeError> {
        if index == 0 {
            return Ok(("<none>".to_string(), Target::Address(0)));
        }
        let endian = self.endian;
        let sym_index = SymbolIndex(index as usize);
        let sym_error = |message: String| CodeError::Symbol {
            symbol: format!("#{index}"),
            message,
        };
        let sym = self.symbols.symbol(sym_index).map_err(|_| {
            sym_error(format!(
                "referenced by the relocation at `{section}`+{offset:#x}, but the symbol table \
                 has {} entries",
                self.symbols.len()
            ))
        })?;
        let name = self
            .symbols
            .symbol_name(endian, sym)
            .map_err(|_| sym_error("its name lies outside the string table".to_string()))?;
        let mut name = String::from_utf8_lossy(name).into_owned();
        let shndx = sym.st_shndx(endian);
        if shndx == elf::SHN_UNDEF {
            return match symbols::lookup(&name) {
                Some(addr) => Ok((name, Target::Address(addr as u64))),
                None => Err(CodeError::UnknownSymbol {
                    symbol: name,
                    section: section.to_string(),
                    offset,
                }),
            };
        }
        if shndx == elf::SHN_ABS {
            return Ok((name, Target::Address(sym.st_value(endian))));
        }
        let Some(defined_in) = self.symbols.symbol_section(endian, sym, sym_index)? else {
            return Err(CodeError::Symbol {
                symbol: name,
                message: format!("section index {shndx:#x} (common or reserved) is not supported"),
            });
        };
        let sh = self
            .sections
            .section(defined_in)
            .map_err(|_| CodeError::Symbol {
                symbol: name.clone(),
                message: format!("defined in section #{}, which does not exist", defined_in.0),
            })?;
        let sec_name = self.section_name(defined_in, sh);
        if name.is_empty() {
            name = sec_name.clone();
        }
        let Some(Some(base)) = self.placed.get(defined_in.0).copied() else {
            return Err(CodeError::Symbol {
                symbol: name,
                message: format!("defined in section `{sec_name}`, which is not loaded"),
            });
        };
        let value = sym.st_value(endian);
        if value > sh.sh_size(endian) {
            return Err(CodeError::Symbol {
                symbol: name,
                message: format!(
                    "offset {value:#x} lies past the end of section `{sec_name}` ({} bytes)",
                    sh.sh_size(endian)
                ),
            });
        }
        Ok((name, Target::Mapped(base + value)))
    }

    /// The global function symbols defined in loaded executable sections, sorted by name.
    pub(super) fn functions(&self) -> Result<Vec<(String, u64)>, CodeError> {
        let endian = self.endian;
        let mut out: Vec<(String, u64)> = Vec::new();
        for (index, sym) in self.symbols.enumerate() {
            let bind = sym.st_bind();
            if sym.st_type() != elf::STT_FUNC || !matches!(bind, elf::STB_GLOBAL | elf::STB_WEAK) {
                continue;
            }
            let Some(section) = self.symbols.symbol_section(endian, sym, index)? else {
                continue;
            };
            let Some(Some(base)) = self.placed.get(section.0).copied() else {
                continue;
            };
            let sh = self.sections.section(section)?;
            if sh.sh_flags(endian).0 & elf::SHF_EXECINSTR.0 == 0 {
                continue;
            }
            let name = self
                .symbols
                .symbol_name(endian, sym)
                .map_err(|_| CodeError::Symbol {
                    symbol: format!("#{}", index.0),
                    message: "its name lies outside the string table".to_string(),
                })?;
            let name = String::from_utf8_lossy(name).into_owned();
            let (value, size) = (sym.st_value(endian), sym.st_size(endian));
            if value
                .checked_add(size.max(1))
                .is_none_or(|end| end > sh.sh_size(endian))
            {
                return Err(CodeError::Symbol {
                    symbol: name,
                    message: format!(
                        "function at {value:#x} ({size} bytes) extends past the end of section \
                         `{}` ({} bytes)",
                        self.section_name(section, sh),
                        sh.sh_size(endian)
                    ),
                });
            }
            out.push((name, base + value));
        }
        out.sort();
        if let Some(pair) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(CodeError::Symbol {
                symbol: pair[0].0.clone(),
                message: "defined twice".to_string(),
            });
        }
        Ok(out)
    }
}
