//! Helpers shared by the fuzz targets.
//!
//! Records carry two CRC-32s, so a fuzzer mutating a seed almost always breaks
//! a checksum and never reaches the payload decoder behind it. The decoder
//! targets therefore decode each input twice: as it is (the checksum and
//! length checks) and after [`seal_records`] has rewritten its checksums (the
//! payload decoding).

use raft_core::wire::{HEADER_BYTES, VERSION};

/// CRC-32 (IEEE, reflected, as `crc32fast` computes it), table-driven.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0, bytes)
}

/// Continues a CRC-32 over more bytes; `crc32_update(crc32(a), b) == crc32(a ++ b)`.
pub fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
    let mut crc = !crc;
    for &byte in bytes {
        crc = TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Rewrites `data` as back-to-back records that pass the version, length and
/// checksum checks: each record keeps its kind and payload bytes, its length
/// is cut to the bytes present, and both checksums are recomputed. A tail
/// shorter than a header is kept as it is. A valid encoding is unchanged.
pub fn seal_records(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0;
    while out.len() - at >= HEADER_BYTES {
        let available = out.len() - at - HEADER_BYTES;
        let declared =
            u32::from_le_bytes([out[at + 2], out[at + 3], out[at + 4], out[at + 5]]) as usize;
        let len = declared.min(available);
        let len_bytes = u32::try_from(len)
            .expect("fuzz inputs are small")
            .to_le_bytes();
        out[at] = VERSION;
        out[at + 2..at + 6].copy_from_slice(&len_bytes);
        let payload = &out[at + HEADER_BYTES..at + HEADER_BYTES + len];
        let crc = crc32_update(crc32_update(crc32(&[out[at + 1]]), &len_bytes), payload);
        out[at + 6..at + 10].copy_from_slice(&crc.to_le_bytes());
        let header_crc = crc32(&out[at..at + 10]);
        out[at + 10..at + 14].copy_from_slice(&header_crc.to_le_bytes());
        at += HEADER_BYTES + len;
    }
    out
}

/// Bytes of a write-ahead-log record's header (raft-io-std's
/// `storage::record`): `len u32 LE | crc32 u32 LE over the payload`.
pub const WAL_RECORD_HEADER_BYTES: usize = 8;

/// Rewrites `data` as back-to-back WAL records that pass the length and
/// checksum checks of raft-io-std's `record::decode_record`: each record
/// keeps its payload bytes, a length of zero becomes 1 and a length past the
/// bytes present is cut to them, and the checksum is recomputed. A tail
/// shorter than a header, or with no payload byte, is kept as it is. A valid
/// encoding is unchanged.
pub fn seal_wal_records(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0;
    while out.len() - at > WAL_RECORD_HEADER_BYTES {
        let available = out.len() - at - WAL_RECORD_HEADER_BYTES;
        let declared =
            u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) as usize;
        let len = declared.clamp(1, available);
        out[at..at + 4].copy_from_slice(
            &u32::try_from(len)
                .expect("fuzz inputs are small")
                .to_le_bytes(),
        );
        let payload = &out[at + WAL_RECORD_HEADER_BYTES..at + WAL_RECORD_HEADER_BYTES + len];
        let crc = crc32(payload);
        out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at += WAL_RECORD_HEADER_BYTES + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::wire::{self, WireUnit};
    use raft_core::{Frame, LogIndex};

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_update(crc32(b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn sealing_a_valid_encoding_changes_nothing() {
        let mut bytes = Vec::new();
        for durable in [1, 300, u64::MAX] {
            wire::encode(
                &WireUnit::Frame(Frame::Ack {
                    durable: LogIndex(durable),
                }),
                &mut bytes,
            );
        }
        assert_eq!(seal_records(&bytes), bytes);
    }

    #[test]
    fn sealing_makes_a_corrupted_record_pass_its_checksums() {
        let mut bytes = Vec::new();
        wire::encode(
            &WireUnit::Frame(Frame::Ack {
                durable: LogIndex(7),
            }),
            &mut bytes,
        );
        let last = bytes.len() - 1;
        bytes[last] = 9;
        assert!(wire::decode(&bytes).is_err());
        let sealed = seal_records(&bytes);
        assert_eq!(
            wire::decode(&sealed),
            Ok(Some((
                WireUnit::Frame(Frame::Ack {
                    durable: LogIndex(9)
                }),
                sealed.len()
            )))
        );
    }
}
