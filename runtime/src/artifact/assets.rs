//! The `assets` section: named files a compiled model carries besides its plan and weights (the
//! tokenizer, `config.json` with its labels, the image processor's settings), so a `.kiln` file
//! is self-sufficient for the pipelines that run it.
//!
//! # Byte layout (all integers little-endian)
//!
//! | size  | field                                                            |
//! |-------|------------------------------------------------------------------|
//! | 8     | magic [`ASSETS_MAGIC`] = `KASSETS1`                              |
//! | 4     | entry count `n`, u32, at most [`MAX_ASSETS`]                     |
//! | …     | `n` entries: name length u32 (1..=[`MAX_ASSET_NAME_LEN`]), name (UTF-8), data length u64, data |
//!
//! Names are relative paths with `/` separators (`tokenizer.json`, `1_Pooling/config.json`): no
//! empty, `.` or `..` component, no leading `/`, no `\` or NUL, each name once. The entries fill
//! the section exactly; anything else is refused by [`Assets::decode`], which checks every length
//! against the bytes that remain before using it.

use std::ops::Range;

/// The first eight bytes of an assets section.
pub const ASSETS_MAGIC: [u8; 8] = *b"KASSETS1";

/// The most entries an assets section may hold.
pub const MAX_ASSETS: u32 = 256;

/// The longest asset name, in bytes.
pub const MAX_ASSET_NAME_LEN: u32 = 256;

/// Why an assets section (or a name given to [`encode`]) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetsError {
    /// The section does not start with [`ASSETS_MAGIC`].
    #[error("the assets section does not start with `KASSETS1`")]
    BadMagic,
    /// A length field runs past the end of the section.
    #[error("the assets section ends inside {what} (at byte {at} of {len})")]
    Truncated {
        /// What was being read: `the entry count`, ``entry 3's name``.
        what: String,
        /// The byte offset where it starts.
        at: usize,
        /// The section's length.
        len: usize,
    },
    /// More entries than [`MAX_ASSETS`].
    #[error("the assets section declares {count} entries; at most {max} are allowed")]
    TooMany {
        /// The declared count.
        count: u32,
        /// [`MAX_ASSETS`].
        max: u32,
    },
    /// A name that is not a safe relative path.
    #[error("asset name {name:?} is not allowed: {why}")]
    BadName {
        /// The name (lossily decoded).
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The same name twice.
    #[error("asset `{name}` appears more than once")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// Bytes left over after the last entry.
    #[error("the assets section has {extra} bytes after its last entry")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// The decoded table of an assets section: each name and the byte range of its data within the
/// section. The data stay in the artifact; [`Assets::get`] slices them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assets {
    entries: Vec<(String, Range<usize>)>,
}

/// Checks that `name` is a relative path of plain components.
pub fn check_name(name: &str) -> Result<(), AssetsError> {
    let bad = |why| {
        Err(AssetsError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() || name.len() > MAX_ASSET_NAME_LEN as usize {
        return bad("it must be 1 to 256 bytes long");
    }
    if name.contains('\\') || name.contains('\0') {
        return bad("it contains `\\` or NUL");
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("it has an empty, `.` or `..` component (or starts with `/`)");
    }
    Ok(())
}

/// Encodes named files as an assets section, in the order given. Refuses names that
/// [`check_name`] refuses, duplicates, and more than [`MAX_ASSETS`] entries.
pub fn encode(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, AssetsError> {
    let count = u32::try_from(files.len())
        .ok()
        .filter(|&c| c <= MAX_ASSETS)
        .ok_or(AssetsError::TooMany {
            count: u32::try_from(files.len()).unwrap_or(u32::MAX),
            max: MAX_ASSETS,
        })?;
    let mut out = Vec::with_capacity(
        12 + files
            .iter()
            .map(|(n, d)| 12 + n.len() + d.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(&ASSETS_MAGIC);
    out.extend_from_slice(&count.to_le_bytes());
    for (i, (name, data)) in files.iter().enumerate() {
        check_name(name)?;
        if files[..i].iter().any(|(n, _)| n == name) {
            return Err(AssetsError::Duplicate { name: name.clone() });
        }
        // `check_name` bounds the name's length by MAX_ASSET_NAME_LEN, which fits a u32.
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(data);
    }
    Ok(out)
}

/// Reads `N` bytes at `*at`, advancing it.
fn take<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    n: usize,
    what: impl Fn() -> String,
) -> Result<&'a [u8], AssetsError> {
    let end = at.checked_add(n).filter(|&e| e <= bytes.len());
    let Some(end) = end else {
        return Err(AssetsError::Truncated {
            what: what(),
            at: *at,
            len: bytes.len(),
        });
    };
    let s = &bytes[*at..end];
    *at = end;
    Ok(s)
}

impl Assets {
    /// Decodes and validates an assets section.
    pub fn decode(bytes: &[u8]) -> Result<Assets, AssetsError> {
        let mut at = 0usize;
        if take(bytes, &mut at, 8, || "the magic".into())? != ASSETS_MAGIC {
            return Err(AssetsError::BadMagic);
        }
        let count = u32::from_le_bytes(
            take(bytes, &mut at, 4, || "the entry count".into())?
                .try_into()
                .map_err(|_| AssetsError::BadMagic)?,
        );
        if count > MAX_ASSETS {
            return Err(AssetsError::TooMany {
                count,
                max: MAX_ASSETS,
            });
        }
        let mut entries: Vec<(String, Range<usize>)> = Vec::with_capacity(count as usize);
        for i in 0..count {
            let word = take(bytes, &mut at, 4, || format!("entry {i}'s name length"))?;
            let name_len = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            if name_len == 0 || name_len > MAX_ASSET_NAME_LEN {
                return Err(AssetsError::BadName {
                    name: format!("(entry {i}, {name_len} bytes)"),
                    why: "it must be 1 to 256 bytes long",
                });
            }
            let raw = take(bytes, &mut at, name_len as usize, || {
                format!("entry {i}'s name")
            })?;
            let name = std::str::from_utf8(raw).map_err(|_| AssetsError::BadName {
                name: String::from_utf8_lossy(raw).into_owned(),
                why: "it is not UTF-8",
            })?;
            check_name(name)?;
            if entries.iter().any(|(n, _)| n == name) {
                return Err(AssetsError::Duplicate { name: name.into() });
            }
            let word = take(bytes, &mut at, 8, || format!("`{name}`'s data length"))?;
            let mut len = [0u8; 8];
            len.copy_from_slice(word);
            let len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
            let start = at;
            take(bytes, &mut at, len, || format!("`{name}`'s data"))?;
            entries.push((name.to_string(), start..at));
        }
        if at != bytes.len() {
            return Err(AssetsError::TrailingBytes {
                extra: bytes.len() - at,
            });
        }
        Ok(Assets { entries })
    }

    /// The data of asset `name` within `section` (the bytes this table was decoded from).
    pub fn get<'a>(&self, section: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let (_, r) = self.entries.iter().find(|(n, _)| n == name)?;
        section.get(r.clone())
    }

    /// The names, in the order they were written.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// Each name with its data length.
    pub fn sizes(&self) -> impl Iterator<Item = (&str, usize)> {
        self.entries.iter().map(|(n, r)| (n.as_str(), r.len()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("config.json".into(), b"{\"a\": 1}".to_vec()),
            ("1_Pooling/config.json".into(), b"{}".to_vec()),
            ("empty.txt".into(), Vec::new()),
        ]
    }

    #[test]
    fn encoded_assets_decode_to_the_same_files() {
        let bytes = encode(&files()).unwrap();
        let a = Assets::decode(&bytes).unwrap();
        assert_eq!(
            a.names().collect::<Vec<_>>(),
            ["config.json", "1_Pooling/config.json", "empty.txt"]
        );
        for (name, data) in files() {
            assert_eq!(a.get(&bytes, &name), Some(&data[..]), "{name}");
        }
        assert_eq!(a.get(&bytes, "missing.json"), None);
    }

    #[test]
    fn unsafe_names_and_duplicates_are_refused_when_writing() {
        for name in ["", "/etc/passwd", "a/../b", "./x", "a//b", "a\\b", "x\0"] {
            let e = encode(&[(name.to_string(), vec![])]).unwrap_err();
            assert!(matches!(e, AssetsError::BadName { .. }), "{name:?}: {e}");
        }
        let dup = vec![("a".to_string(), vec![]), ("a".to_string(), vec![1])];
        assert!(matches!(encode(&dup), Err(AssetsError::Duplicate { .. })));
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error() {
        let bytes = encode(&files()).unwrap();
        for cut in 0..bytes.len() {
            assert!(Assets::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            Assets::decode(&extra),
            Err(AssetsError::TrailingBytes { extra: 1 })
        );
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Assets::decode(&huge),
            Err(AssetsError::TooMany { .. })
        ));
        // A data length near u64::MAX must not overflow the offset arithmetic.
        let mut long = encode(&[("a".into(), vec![1, 2])]).unwrap();
        let n = long.len();
        long[n - 10..n - 2].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Assets::decode(&long),
            Err(AssetsError::Truncated { .. })
        ));
        let mut dotdot = encode(&[("ab".into(), vec![])]).unwrap();
        dotdot[16..18].copy_from_slice(b"..");
        assert!(matches!(
            Assets::decode(&dotdot),
            Err(AssetsError::BadName { .. })
        ));
    }
}
