//! The artifact checksum: xxh3-64 over every byte but the checksum field, hashed in 1 MiB pieces
//! on all cores and combined (the exact scheme is in the module documentation).

use rayon::prelude::*;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::{CHECKSUM_CHUNK, CHECKSUM_OFFSET};

/// Below this many bytes the pieces are hashed on the calling thread (the result is the same;
/// only the scheduling differs).
const PARALLEL_THRESHOLD: usize = 4 * CHECKSUM_CHUNK;

/// The checksum of a whole artifact file, ignoring the 8 checksum bytes at offset 16.
///
/// Defined for any input (a file shorter than 24 bytes hashes the bytes it has):
/// `xxh3_64(le64(len) ‖ le64(xxh3_64(bytes[0..16])) ‖ le64(xxh3_64(piece_0)) ‖ …)`, where the
/// pieces are `bytes[24..]` cut into [`CHECKSUM_CHUNK`]-byte pieces. Pieces are hashed in
/// parallel with rayon when the file is large.
pub fn payload_checksum(bytes: &[u8]) -> u64 {
    let prefix = &bytes[..bytes.len().min(CHECKSUM_OFFSET)];
    let rest = bytes.get(CHECKSUM_OFFSET + 8..).unwrap_or(&[]);
    let pieces: Vec<u64> = if rest.len() >= PARALLEL_THRESHOLD {
        rest.par_chunks(CHECKSUM_CHUNK).map(xxh3_64).collect()
    } else {
        rest.chunks(CHECKSUM_CHUNK).map(xxh3_64).collect()
    };
    let mut combined = Xxh3::new();
    combined.update(&(bytes.len() as u64).to_le_bytes());
    combined.update(&xxh3_64(prefix).to_le_bytes());
    for piece in pieces {
        combined.update(&piece.to_le_bytes());
    }
    combined.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheme written out sequentially, as the module documentation states it.
    fn reference(bytes: &[u8]) -> u64 {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        buf.extend_from_slice(&xxh3_64(&bytes[..bytes.len().min(16)]).to_le_bytes());
        if bytes.len() > 24 {
            for piece in bytes[24..].chunks(CHECKSUM_CHUNK) {
                buf.extend_from_slice(&xxh3_64(piece).to_le_bytes());
            }
        }
        xxh3_64(&buf)
    }

    #[test]
    #[cfg_attr(miri, ignore = "hashes 5 MiB a dozen times: too slow under Miri")]
    fn matches_the_documented_scheme_and_ignores_only_the_checksum_field() {
        let mut bytes: Vec<u8> = (0..(5 * CHECKSUM_CHUNK + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for len in [
            0,
            1,
            15,
            16,
            17,
            23,
            24,
            25,
            100,
            CHECKSUM_CHUNK + 24,
            bytes.len(),
        ] {
            assert_eq!(
                payload_checksum(&bytes[..len]),
                reference(&bytes[..len]),
                "{len}"
            );
        }
        let sum = payload_checksum(&bytes);
        bytes[16..24].copy_from_slice(&[0xff; 8]);
        assert_eq!(payload_checksum(&bytes), sum);
        for at in [
            0,
            15,
            24,
            CHECKSUM_CHUNK + 23,
            CHECKSUM_CHUNK + 24,
            bytes.len() - 1,
        ] {
            bytes[at] ^= 1;
            assert_ne!(payload_checksum(&bytes), sum, "flip at {at}");
            bytes[at] ^= 1;
        }
        // Appending zeros changes the length and so the checksum.
        bytes.push(0);
        assert_ne!(payload_checksum(&bytes), sum);
    }
}
