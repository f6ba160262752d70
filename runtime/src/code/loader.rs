//! [`CodeModule`]: generated code copied into a fresh anonymous mapping, relocated, then made
//! read+execute (never writable and executable at once).

use std::fmt;

use memmap2::{Mmap, MmapMut};

use super::error::CodeError;
use super::layout::LoadLayout;
use super::reloc::{encode, veneer_bytes, Inputs};

/// The signature every generated kernel shares: `args` holds one base pointer per argument
/// (inputs first, then outputs); the iteration space is `rows × cols`, row-major.
pub type GenFn = unsafe extern "C" fn(args: *const *mut f32, rows: u64, cols: u64);

/// A loaded, relocated, read+execute copy of a generated-code object.
///
/// Function pointers from [`CodeModule::function`] point into the module's mapping: they are
/// valid only while the module is alive.
pub struct CodeModule {
    /// The read+execute mapping holding every allocatable section, the GOT and the veneers.
    map: Mmap,
    /// Exported functions: name and offset in `map` (validated to lie inside it), by name.
    functions: Vec<(String, usize)>,
}

impl CodeModule {
    /// The functions a relocatable object exports, after validating it completely (sections,
    /// symbols, every relocation) without mapping anything: what the executor may call.
    pub fn exported_functions(object: &[u8]) -> Result<Vec<String>, CodeError> {
        Ok(LoadLayout::build(object)?
            .functions
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Loads a relocatable x86-64 ELF object: validates it, copies its allocatable sections into
    /// a fresh anonymous mapping, applies every relocation (symbols defined in the object, and the
    /// runtime table in [`symbols`](super::symbols)), then makes the mapping read+execute.
    pub fn load(object: &[u8]) -> Result<CodeModule, CodeError> {
        let layout = LoadLayout::build(object)?;
        // `LoadLayout::build` bounds the length by 1 GiB, so it fits in usize.
        let len = usize::try_from(layout.len).unwrap_or(usize::MAX).max(1);
        let mut map = MmapMut::map_anon(len).map_err(|source| CodeError::Map {
            action: "allocate",
            len,
            source,
        })?;
        // Every offset below was validated by the layout to lie inside `layout.len` bytes; slice
        // indexing would still catch a mistake with a panic rather than a wild write.
        for section in &layout.sections {
            if let Some(data) = section.data {
                let start = section.offset as usize;
                map[start..start + data.len()].copy_from_slice(data);
            }
        }
        let base = map.as_ptr() as u64;
        for &(slot, target) in &layout.got {
            let slot = slot as usize;
            map[slot..slot + 8].copy_from_slice(&target.resolve(base).to_le_bytes());
        }
        for &(offset, addr) in &layout.veneers {
            let bytes = veneer_bytes(addr);
            let offset = offset as usize;
            map[offset..offset + bytes.len()].copy_from_slice(&bytes);
        }
        for r in &layout.relocs {
            let inputs = Inputs {
                symbol: r.target.resolve(base),
                addend: r.addend,
                place: base + r.place,
                got: r.got.map(|g| base + g),
                veneer: r.veneer.map(|v| base + v),
            };
            let bytes = encode(r.kind, inputs).map_err(|o| CodeError::RelocationOverflow {
                name: super::reloc::r_type_name(r.r_type),
                section: r.section.clone(),
                offset: r.offset,
                symbol: r.symbol.clone(),
                value: o.value,
                bits: o.bits,
            })?;
            let place = r.place as usize;
            map[place..place + bytes.len()].copy_from_slice(&bytes);
        }
        let map = map.make_exec().map_err(|source| CodeError::Map {
            action: "make executable",
            len,
            source,
        })?;
        let functions = layout
            .functions
            .into_iter()
            .map(|(name, offset)| (name, offset as usize))
            .collect();
        Ok(CodeModule { map, functions })
    }

    /// The exported function called `name`, if the object defines one.
    ///
    /// Calling it is `unsafe`: its arguments must match what the kernel was generated for, and
    /// the module must outlive every call.
    pub fn function(&self, name: &str) -> Option<GenFn> {
        let i = self
            .functions
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        let offset = self.functions[i].1;
        if offset >= self.map.len() {
            return None;
        }
        let ptr = self.map.as_ptr().wrapping_add(offset);
        // SAFETY: `ptr` lies inside the read+execute mapping this module owns (checked just
        // above), at the start of a function symbol the object defines in an executable
        // section; the loader applied every relocation of that section. Producing the pointer is
        // sound; calling it stays `unsafe` for the caller (see `GenFn`).
        Some(unsafe { std::mem::transmute::<*const u8, GenFn>(ptr) })
    }

    /// The names of the exported functions, sorted.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.functions.iter().map(|(name, _)| name.as_str())
    }

    /// The size of the executable mapping in bytes.
    pub fn code_size(&self) -> usize {
        self.map.len()
    }
}

impl fmt::Debug for CodeModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeModule")
            .field("code_size", &self.map.len())
            .field("functions", &self.functions)
            .finish()
    }
}
