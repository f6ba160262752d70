//! Why a generated-code object could not be loaded: every variant names the section, symbol or
//! offset at fault.

/// An error loading a relocatable object produced by the code generator.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The bytes are not a well-formed ELF file (bad magic, truncated header or tables).
    #[error("generated code is not a valid ELF object: {message}")]
    Parse {
        /// What the ELF parser reported.
        message: String,
    },
    /// A valid ELF file of the wrong kind (not x86-64, not relocatable, ...).
    #[error("generated code has the wrong format: {message}")]
    Format {
        /// What is wrong.
        message: String,
    },
    /// A section that cannot be loaded (truncated data, unsupported alignment or type).
    #[error("section `{section}`: {message}")]
    Section {
        /// The section's name (or `#index` when the name cannot be read).
        section: String,
        /// What is wrong.
        message: String,
    },
    /// A symbol that cannot be read or that points outside its section.
    #[error("symbol `{symbol}`: {message}")]
    Symbol {
        /// The symbol's name (or `#index`).
        symbol: String,
        /// What is wrong.
        message: String,
    },
    /// A relocation against a symbol that is neither defined in the object nor provided by the
    /// runtime.
    #[error(
        "relocation at `{section}`+{offset:#x} refers to unknown symbol `{symbol}` (neither \
         defined in the object nor provided by the runtime)"
    )]
    UnknownSymbol {
        /// The undefined symbol.
        symbol: String,
        /// The section holding the relocation's place.
        section: String,
        /// The place's offset in that section.
        offset: u64,
    },
    /// A relocation type this loader does not implement.
    #[error(
        "relocation at `{section}`+{offset:#x} against `{symbol}` has unsupported type {r_type} \
         ({name})"
    )]
    UnsupportedRelocation {
        /// The ELF `r_type`.
        r_type: u32,
        /// Its conventional name (`R_X86_64_...`), or `unknown`.
        name: &'static str,
        /// The section holding the place.
        section: String,
        /// The place's offset.
        offset: u64,
        /// The target symbol.
        symbol: String,
    },
    /// A relocation whose place lies outside its section.
    #[error(
        "relocation at `{section}`+{offset:#x} writes {size} bytes past the end of the section \
         ({section_size} bytes)"
    )]
    RelocationOffset {
        /// The section.
        section: String,
        /// The place's offset.
        offset: u64,
        /// The width of the write in bytes.
        size: u64,
        /// The section's size.
        section_size: u64,
    },
    /// A relocation whose computed value does not fit its field.
    #[error(
        "relocation {name} at `{section}`+{offset:#x} against `{symbol}`: value {value:#x} does \
         not fit in {bits} bits"
    )]
    RelocationOverflow {
        /// The relocation's name.
        name: &'static str,
        /// The section.
        section: String,
        /// The place's offset.
        offset: u64,
        /// The target symbol.
        symbol: String,
        /// The value that did not fit.
        value: i128,
        /// The field's width.
        bits: u32,
    },
    /// Allocating the mapping or making it executable failed.
    #[error("cannot {action} {len} bytes of code memory: {source}")]
    Map {
        /// `allocate` or `make executable`.
        action: &'static str,
        /// The mapping's length.
        len: usize,
        /// The OS error.
        source: std::io::Error,
    },
}

impl From<object::read::Error> for CodeError {
    fn from(e: object::read::Error) -> Self {
        CodeError::Parse {
            message: e.to_string(),
        }
    }
}
