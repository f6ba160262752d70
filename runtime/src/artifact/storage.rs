//! Where an artifact's bytes live: a read-only memory map of the file, or a page-aligned copy in
//! memory. Both start at an address aligned to [`MAX_ALIGN`], so a section's file offset being a
//! multiple of its alignment makes its address one too.

use std::fs::File;

use memmap2::{Mmap, MmapOptions};

use super::MAX_ALIGN;

/// One page of bytes with page alignment; a `Vec` of these is a page-aligned byte buffer.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; MAX_ALIGN as usize]);

const _: () = assert!(std::mem::size_of::<Page>() == MAX_ALIGN as usize);
const _: () = assert!(std::mem::align_of::<Page>() == MAX_ALIGN as usize);

/// A byte buffer whose first byte is aligned to [`MAX_ALIGN`].
pub(crate) struct AlignedBytes {
    pages: Vec<Page>,
    len: usize,
}

impl AlignedBytes {
    /// A page-aligned copy of `bytes`.
    pub(crate) fn copy_of(bytes: &[u8]) -> AlignedBytes {
        let page = MAX_ALIGN as usize;
        let mut pages = vec![Page([0; MAX_ALIGN as usize]); bytes.len().div_ceil(page)];
        for (dst, src) in pages.iter_mut().zip(bytes.chunks(page)) {
            dst.0[..src.len()].copy_from_slice(src);
        }
        AlignedBytes {
            pages,
            len: bytes.len(),
        }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `Page` is `repr(C)` around a `[u8; 4096]` whose size equals its alignment, so
        // the pages are contiguous initialized bytes with no padding; `copy_of` allocated
        // `len.div_ceil(4096)` pages, so `len <= pages.len() * 4096` bytes are in bounds, and the
        // returned slice borrows `self`, so the allocation outlives it.
        unsafe { std::slice::from_raw_parts(self.pages.as_ptr().cast::<u8>(), self.len) }
    }
}

/// The bytes of a loaded artifact.
pub(crate) enum Storage {
    /// A read-only shared mapping of the file.
    Mapped(Mmap),
    /// A page-aligned in-memory copy.
    Memory(AlignedBytes),
}

impl Storage {
    /// Maps `file` read-only, asking the kernel to fault every page in up front (one system call
    /// instead of one page fault per 64 KiB when the checksum first touches the bytes).
    pub(crate) fn map(file: &File) -> std::io::Result<Storage> {
        // SAFETY: memory-mapping a file is sound as long as no one modifies or truncates the file
        // while the map lives (the bytes would change under a `&[u8]`). Kiln never writes an
        // artifact in place: `ArtifactWriter::write_file` writes a temporary file and renames it
        // over the old path, which leaves the old inode, and so this mapping, unchanged. The
        // mapping is read-only and private to this `Storage`.
        let map = unsafe { MmapOptions::new().populate().map(file)? };
        Ok(Storage::Mapped(map))
    }

    /// All the bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(map) => map,
            Storage::Memory(buf) => buf.as_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_copy_is_exact_and_page_aligned() {
        for len in [0usize, 1, 4095, 4096, 4097, 10_000] {
            let src: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let buf = AlignedBytes::copy_of(&src);
            assert_eq!(buf.as_slice(), &src[..]);
            if len > 0 {
                assert_eq!(buf.as_slice().as_ptr() as usize % MAX_ALIGN as usize, 0);
            }
        }
    }
}
