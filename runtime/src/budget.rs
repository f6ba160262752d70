//! The memory budget of a run: the bytes a run may allocate (its arena, input copies and
//! outputs), set by the user or taken from the memory this process can still get, checked
//! before anything is allocated, with an error that names the input dims that made it large.

use crate::Tensor;
use std::collections::BTreeMap;

/// How many bytes one run may allocate, and where that number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// The limit in bytes.
    pub bytes: u64,
    /// Where the limit came from (for the error message).
    pub origin: BudgetOrigin,
}

/// Where a [`MemoryBudget`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetOrigin {
    /// Set explicitly (`--max-memory`, [`crate::LoadOptions::max_memory`]).
    Set,
    /// The memory available to this process when the run was planned.
    Available,
}

/// A run that would need more memory than its budget allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "running on {inputs} needs {} of memory, more than the budget of {} ({}){}",
    human(*needed),
    human(*limit),
    match origin {
        BudgetOrigin::Set => "set with --max-memory",
        BudgetOrigin::Available => "the memory available now",
    },
    match origin {
        BudgetOrigin::Set => "",
        BudgetOrigin::Available => "; use smaller inputs, or set --max-memory if more will be free",
    }
)]
pub struct BudgetError {
    /// Bytes the run needs.
    pub needed: u64,
    /// The budget.
    pub limit: u64,
    /// Where the budget came from.
    pub origin: BudgetOrigin,
    /// The inputs and their dims, as `` `name` [d0, d1] ``.
    pub inputs: String,
}

impl MemoryBudget {
    /// An explicit limit.
    pub fn set(bytes: u64) -> MemoryBudget {
        MemoryBudget {
            bytes,
            origin: BudgetOrigin::Set,
        }
    }

    /// `max_memory` when given, else the memory available now ([`MemoryBudget::available`]).
    pub fn from_option(max_memory: Option<u64>) -> MemoryBudget {
        max_memory.map_or_else(MemoryBudget::available, MemoryBudget::set)
    }

    /// Nine tenths of the memory this process can still get (the rest is headroom for what a
    /// run's estimate does not count, such as allocator overhead): the smaller of the system's
    /// available memory (`MemAvailable`) and what is left of the address-space limit (`ulimit
    /// -v`), both read from `/proc`; unlimited where neither can be read.
    pub fn available() -> MemoryBudget {
        let mem = proc_field("/proc/meminfo", "MemAvailable:");
        let address_space = address_space_limit().map(|limit| {
            limit.saturating_sub(proc_field("/proc/self/status", "VmSize:").unwrap_or(0))
        });
        let bytes = [mem, address_space]
            .into_iter()
            .flatten()
            .min()
            .map_or(u64::MAX, |b| b / 10 * 9);
        MemoryBudget {
            bytes,
            origin: BudgetOrigin::Available,
        }
    }

    /// Refuses `needed` bytes beyond the budget, naming `inputs` and their dims.
    pub fn check(&self, needed: u64, inputs: &BTreeMap<String, Tensor>) -> Result<(), BudgetError> {
        if needed <= self.bytes {
            return Ok(());
        }
        let listed: Vec<String> = inputs
            .iter()
            .map(|(name, t)| format!("`{name}` {:?}", t.shape()))
            .collect();
        Err(BudgetError {
            needed,
            limit: self.bytes,
            origin: self.origin,
            inputs: if listed.is_empty() {
                "no inputs".to_string()
            } else {
                listed.join(", ")
            },
        })
    }
}

/// A `/proc` field given in kB (`MemAvailable:   123456 kB`), in bytes.
fn proc_field(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// The soft address-space limit (`Max address space` of `/proc/self/limits`), if any.
fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Bytes for people: `1.4 GB`, `512.0 MB`, `300 bytes` (powers of 1000, as `--max-memory`'s
/// `GB`).
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    for (unit, scale) in UNITS {
        if bytes as f64 >= scale {
            return format!("{:.1} {unit}", bytes as f64 / scale);
        }
    }
    format!("{bytes} bytes")
}

/// Parses a size such as `512MB`, `2GiB`, `1.5G`, `100000` (bytes); `k/M/G/T` and `kB/MB/GB/TB`
/// are powers of 1000, `KiB/MiB/GiB/TiB` powers of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "K" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use bytes or kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 512MB, 2GiB)"))?;
    let bytes = n * scale;
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(format!("`{text}` is not a size between 1 byte and 18 EB"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["lots", "", "1XB", "0", "-5MB", "1e30", "99999999999TB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_available_budget_is_positive_and_the_check_names_the_inputs() {
        assert!(MemoryBudget::available().bytes > 0);
        let inputs: BTreeMap<String, Tensor> = [(
            "ids".to_string(),
            Tensor::from_i64(vec![2, 3], vec![0; 6]).unwrap(),
        )]
        .into();
        let b = MemoryBudget::set(1000);
        assert!(b.check(1000, &inputs).is_ok());
        let e = b.check(2_500_000, &inputs).unwrap_err().to_string();
        assert!(
            e.contains("`ids` [2, 3]") && e.contains("2.5 MB") && e.contains("1.0 kB"),
            "{e}"
        );
    }
}
