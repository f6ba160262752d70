//! How Cranelift-generated kernels are called: each operand's read pattern over the `rows × cols`
//! iteration space and the symbol that names the compiled kernel.

use serde::{Deserialize, Serialize};

/// How a generated kernel reads an operand over its `rows × cols` iteration space: the output's
/// first [`GeneratedStep::split`] dims are the rows, the rest the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// Element `r * cols + c` (same shape as the output).
    Full,
    /// Element `c`: a length-`cols` vector broadcast over rows.
    Row,
    /// Element `r % len`: one value per row, the operand's `len` values repeating over the rows
    /// (`len` divides `rows`; a per-channel operand `[1, C, 1, 1]` of `[N, C, H, W]` split after
    /// `C`).
    Col,
    /// Element 0.
    Scalar,
}

/// A call of a generated kernel (`extern "C" fn(args, rows, cols)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedStep {
    /// Symbol in the code section.
    pub symbol: String,
    /// How each input is read (outputs are always [`Access::Full`]).
    pub access: Vec<Access>,
    /// An output may share its slot with a `Full` input (the kernel reads each element before
    /// writing it).
    pub in_place: bool,
    /// How many leading output dims make the rows (the rest are the columns): the output's rank
    /// minus one for row kernels; elementwise kernels split where their broadcast operands need
    /// it (`[B, S, N] + [1, S, N]` after `B`, `[N, C, H, W] · [1, C, 1, 1]` after `C`).
    pub split: u32,
}

impl GeneratedStep {
    /// The symbol under which the code section exports kernel `base` compiled for inputs read
    /// as `access` and `outputs` outputs: `{base}_{letters}_{outputs}`, one letter per input
    /// (`F`ull, `R`ow, `C`ol, `S`calar), e.g. `kiln_ew0_FR_1`. A kernel reads what it was
    /// compiled for while the executor sizes operands by the step's `access`, so
    /// [`Plan::validate`] refuses a step whose symbol states other operands
    /// ([`GeneratedStep::signature_matches`]).
    pub fn symbol_for(base: &str, access: &[Access], outputs: usize) -> String {
        format!("{base}_{}_{outputs}", access_letters(access))
    }

    /// Whether `symbol` names a kernel compiled for this step's `access` and `outputs` outputs
    /// (see [`GeneratedStep::symbol_for`]).
    pub fn signature_matches(&self, outputs: usize) -> bool {
        let suffix = format!("_{}_{outputs}", access_letters(&self.access));
        self.symbol.len() > suffix.len() && self.symbol.ends_with(&suffix)
    }
}

fn access_letters(access: &[Access]) -> String {
    access
        .iter()
        .map(|a| match a {
            Access::Full => 'F',
            Access::Row => 'R',
            Access::Col => 'C',
            Access::Scalar => 'S',
        })
        .collect()
}
