//! The bytes of the write-ahead log: segment headers and records.
//!
//! Everything here is a pure function of a byte slice, so a fuzz target can feed
//! arbitrary bytes: decoding returns a typed error and never panics, and it
//! allocates at most the size of the payload it was given (a length field is
//! checked against both [`RECORD_PAYLOAD_BYTES_MAX`] and the bytes present
//! before anything is read).
//!
//! ```text
//! segment  = header record*
//! header   = magic "SRAFTWAL" | version u32 LE (1) | flags u32 LE | first_index u64 LE
//!            | crc32 u32 LE over the 24 bytes before it                  (28 bytes)
//! record   = len u32 LE | crc32 u32 LE over payload | payload (len bytes)
//! payload  = postcard(Record)
//! ```
//!
//! `docs/storage.md` describes the format byte by byte.

use super::error::{HeaderError, RecordError};
use raft_core::{LogEntry, LogIndex};
use serde::{Deserialize, Serialize};

/// Bytes before a record's payload: its length and its checksum.
pub const RECORD_HEADER_BYTES: usize = 8;

/// The largest payload a record may have (64 MiB). An entry that encodes to more
/// cannot be appended; a length field above it is damage.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 64 << 20;

/// The most data bytes ([`LogEntry::data`]) an appended entry may hold: the
/// record limit less room for what its record adds (at most 27 bytes: the
/// variant, two varint `u64`s, the kind and the data's varint length).
/// [`Wal::append`](super::Wal::append) refuses a larger entry before it writes
/// any of its batch.
pub const ENTRY_DATA_BYTES_MAX: usize = RECORD_PAYLOAD_BYTES_MAX - 32;

/// The magic bytes that open every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SRAFTWAL";

/// The segment format version this code writes and reads.
pub const SEGMENT_VERSION: u32 = 1;

/// The size of a segment header.
pub const SEGMENT_HEADER_BYTES: usize = 28;

/// Header flag: this segment starts a new log; every segment before it is an
/// obsolete leftover of a compaction past the end of the log.
pub const SEGMENT_FLAG_RESET: u32 = 1;

/// One edit of the log, in the order it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// Append this entry; its index is one past the log's last.
    Entry(LogEntry),
    /// Remove every entry at `from` and after.
    Truncate {
        /// The first index removed.
        from: LogIndex,
    },
}

/// The same encoding as [`Record`], borrowing the entry (no clone to encode).
/// Variant order must match `Record`; a unit test checks the bytes agree.
#[derive(Serialize)]
enum RecordRef<'a> {
    Entry(&'a LogEntry),
    #[allow(dead_code)] // encoding is via `Record` for truncations; kept for the order
    Truncate {
        from: LogIndex,
    },
}

/// The header at the start of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The index of the first entry this segment may hold; every entry and
    /// truncation in it is at this index or later. Never 0.
    pub first_index: LogIndex,
    /// Whether this segment starts a new log (see [`SEGMENT_FLAG_RESET`]).
    pub reset: bool,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        let flags = if self.reset { SEGMENT_FLAG_RESET } else { 0 };
        out[12..16].copy_from_slice(&flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_index.0.to_le_bytes());
        let crc = crc32fast::hash(&out[0..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the header at the start of `buf` (which may hold more bytes).
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if buf.len() < SEGMENT_HEADER_BYTES {
            return Err(HeaderError::Incomplete {
                needed: SEGMENT_HEADER_BYTES as u64,
                available: buf.len() as u64,
            });
        }
        if buf[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let stored = read_u32(buf, 24);
        let computed = crc32fast::hash(&buf[0..24]);
        if stored != computed {
            return Err(HeaderError::Checksum { stored, computed });
        }
        let version = read_u32(buf, 8);
        if version != SEGMENT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let flags = read_u32(buf, 12);
        if flags & !SEGMENT_FLAG_RESET != 0 {
            return Err(HeaderError::UnknownFlags(flags));
        }
        let first_index = read_u64(buf, 16);
        if first_index == 0 {
            return Err(HeaderError::Invalid("first index 0"));
        }
        Ok(SegmentHeader {
            first_index: LogIndex(first_index),
            reset: flags & SEGMENT_FLAG_RESET != 0,
        })
    }
}

/// Appends the record for `entry` to `out`; returns the record's size in bytes.
///
/// On error `out` is left as it was.
pub fn encode_entry(entry: &LogEntry, out: &mut Vec<u8>) -> Result<usize, RecordError> {
    encode_payload(&RecordRef::Entry(entry), out)
}

/// Appends `record` to `out`; returns the record's size in bytes.
///
/// On error `out` is left as it was.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<usize, RecordError> {
    encode_payload(record, out)
}

fn encode_payload<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<usize, RecordError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    // Serializing our own types into a Vec cannot fail: postcard only errors on
    // sequences of unknown length and on writers that run out of room.
    let mut buf = postcard::to_extend(value, std::mem::take(out))
        .expect("postcard encodes a log record into a Vec");
    let len = buf.len() - start - RECORD_HEADER_BYTES;
    if len > RECORD_PAYLOAD_BYTES_MAX {
        buf.truncate(start);
        *out = buf;
        return Err(RecordError::TooLarge {
            len: len as u64,
            max: RECORD_PAYLOAD_BYTES_MAX as u64,
        });
    }
    let crc = crc32fast::hash(&buf[start + RECORD_HEADER_BYTES..]);
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    *out = buf;
    Ok(len + RECORD_HEADER_BYTES)
}

/// Decodes the record at the start of `buf`; returns it and its size in bytes.
///
/// Checks, in order: a whole header is present; the length is not zero and not
/// above [`RECORD_PAYLOAD_BYTES_MAX`]; the whole payload is present; the checksum
/// matches; the payload is exactly one postcard `Record` with no bytes left over.
pub fn decode_record(buf: &[u8]) -> Result<(Record, usize), RecordError> {
    let (payload, size) = checked_payload(buf)?;
    match postcard::take_from_bytes::<Record>(payload) {
        Ok((record, [])) => Ok((record, size)),
        Ok((_, rest)) => Err(RecordError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        ))),
        Err(e) => Err(RecordError::Malformed(e.to_string())),
    }
}

/// Checks the framing and checksum of the record at the start of `buf` without
/// decoding the payload; returns the payload and the record's size.
pub fn checked_payload(buf: &[u8]) -> Result<(&[u8], usize), RecordError> {
    if buf.len() < RECORD_HEADER_BYTES {
        return Err(RecordError::Incomplete {
            needed: RECORD_HEADER_BYTES as u64,
            available: buf.len() as u64,
        });
    }
    let len = read_u32(buf, 0) as usize;
    if len == 0 {
        return Err(RecordError::ZeroLength);
    }
    if len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(RecordError::TooLarge {
            len: len as u64,
            max: RECORD_PAYLOAD_BYTES_MAX as u64,
        });
    }
    let size = RECORD_HEADER_BYTES + len;
    if buf.len() < size {
        return Err(RecordError::Incomplete {
            needed: size as u64,
            available: buf.len() as u64,
        });
    }
    let payload = &buf[RECORD_HEADER_BYTES..size];
    let stored = read_u32(buf, 4);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    Ok((payload, size))
}

/// The offset (relative to `buf`) of the first whole, checksummed, decodable
/// record starting strictly after position 0 of `buf`, if any.
///
/// Recovery uses it to tell a torn tail (nothing valid after the damage) from
/// damage in the middle (a valid record follows). It tries every offset, so its
/// cost is up to `buf.len()` checksum attempts; it only runs on damaged bytes.
pub fn find_valid_record_after(buf: &[u8]) -> Option<usize> {
    (1..buf.len()).find(|&offset| decode_record(&buf[offset..]).is_ok())
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(bytes)
}

fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use raft_core::{EntryKind, Term};

    #[test]
    fn a_record_of_exactly_the_payload_limit_encodes_and_decodes() {
        // The limit is inclusive on both sides: what the encoder writes, the
        // decoder reads back; one byte more is refused by both.
        let data_len = |payload: usize| {
            let probe = Record::Entry(entry(1, 1, &vec![0; payload]));
            let mut out = Vec::new();
            let size = encode_record(&probe, &mut out).unwrap();
            payload + RECORD_PAYLOAD_BYTES_MAX - (size - RECORD_HEADER_BYTES)
        };
        let exact = data_len(RECORD_PAYLOAD_BYTES_MAX - 64);
        let record = Record::Entry(entry(1, 1, &vec![7; exact]));
        let mut out = Vec::new();
        let size = encode_record(&record, &mut out).unwrap();
        assert_eq!(size, RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_MAX);
        assert_eq!(decode_record(&out).unwrap(), (record, size));
        let over = Record::Entry(entry(1, 1, &vec![7; exact + 1]));
        assert!(matches!(
            encode_record(&over, &mut Vec::new()),
            Err(RecordError::TooLarge { .. })
        ));
    }

    fn entry(index: u64, term: u64, data: &[u8]) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Command,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn entry_record_round_trips() {
        let e = entry(7, 3, b"hello");
        let mut buf = Vec::new();
        let size = encode_entry(&e, &mut buf).unwrap();
        assert_eq!(size, buf.len());
        let (record, used) = decode_record(&buf).unwrap();
        assert_eq!(used, size);
        assert_eq!(record, Record::Entry(e));
    }

    #[test]
    fn truncate_record_round_trips() {
        let r = Record::Truncate { from: LogIndex(42) };
        let mut buf = vec![0xAA];
        let size = encode_record(&r, &mut buf).unwrap();
        assert_eq!(buf.len(), 1 + size);
        assert_eq!(decode_record(&buf[1..]).unwrap(), (r, size));
    }

    #[test]
    fn borrowed_and_owned_encodings_are_identical() {
        let e = entry(1, 1, &[1, 2, 3]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_entry(&e, &mut a).unwrap();
        encode_record(&Record::Entry(e), &mut b).unwrap();
        assert_eq!(a, b);
        let truncate = postcard::to_allocvec(&RecordRef::Truncate { from: LogIndex(9) }).unwrap();
        assert_eq!(
            truncate,
            postcard::to_allocvec(&Record::Truncate { from: LogIndex(9) }).unwrap()
        );
    }

    #[test]
    fn every_strict_prefix_of_a_record_is_incomplete() {
        let mut buf = Vec::new();
        encode_entry(&entry(1, 1, b"abcdef"), &mut buf).unwrap();
        for cut in 0..buf.len() {
            match decode_record(&buf[..cut]) {
                Err(RecordError::Incomplete { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_flipped_payload_bit_fails_the_checksum() {
        let mut buf = Vec::new();
        encode_entry(&entry(1, 1, b"abcdef"), &mut buf).unwrap();
        for i in RECORD_HEADER_BYTES..buf.len() {
            let mut damaged = buf.clone();
            damaged[i] ^= 0x10;
            assert!(
                matches!(decode_record(&damaged), Err(RecordError::Checksum { .. })),
                "byte {i}"
            );
        }
    }

    #[test]
    fn zero_and_oversized_lengths_are_refused() {
        assert_eq!(decode_record(&[0u8; 16]), Err(RecordError::ZeroLength));
        let mut buf = vec![0u8; 16];
        buf[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_record(&buf),
            Err(RecordError::TooLarge { .. })
        ));
        // Nor is one written: an entry whose payload would pass the limit
        // is refused with its size, and what was already encoded is kept.
        let mut out = b"before".to_vec();
        let big = entry(1, 1, &vec![7; RECORD_PAYLOAD_BYTES_MAX]);
        match encode_entry(&big, &mut out) {
            Err(RecordError::TooLarge { len, max }) => assert!(
                len > max && max == RECORD_PAYLOAD_BYTES_MAX as u64,
                "{len} {max}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(out, b"before");
    }

    #[test]
    fn a_checksummed_payload_with_trailing_bytes_is_malformed() {
        let mut payload = postcard::to_allocvec(&Record::Truncate { from: LogIndex(3) }).unwrap();
        payload.push(0);
        let mut buf = Vec::new();
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        buf.extend_from_slice(&payload);
        assert!(matches!(
            decode_record(&buf),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let h = SegmentHeader {
            first_index: LogIndex(1234),
            reset: true,
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        for i in 0..SEGMENT_HEADER_BYTES {
            let mut damaged = bytes;
            damaged[i] ^= 1;
            assert!(SegmentHeader::decode(&damaged).is_err(), "byte {i}");
        }
        assert!(matches!(
            SegmentHeader::decode(&bytes[..27]),
            Err(HeaderError::Incomplete { .. })
        ));
        let zero = SegmentHeader {
            first_index: LogIndex(0),
            reset: false,
        }
        .encode();
        assert_eq!(
            SegmentHeader::decode(&zero),
            Err(HeaderError::Invalid("first index 0"))
        );
    }

    /// The examples in `docs/storage.md`, byte for byte: changing the format
    /// must change the docs (and the version).
    #[test]
    fn golden_bytes_match_the_documented_examples() {
        let header = SegmentHeader {
            first_index: LogIndex(1),
            reset: false,
        }
        .encode();
        assert_eq!(
            hex(&header),
            "53 52 41 46 54 57 41 4c 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 0d 43 18 e4"
        );
        let mut buf = Vec::new();
        encode_entry(&entry(1, 1, b"hi"), &mut buf).unwrap();
        assert_eq!(hex(&buf), "07 00 00 00 56 c9 9e f1 00 01 01 00 02 68 69");
        buf.clear();
        encode_record(&Record::Truncate { from: LogIndex(5) }, &mut buf).unwrap();
        assert_eq!(hex(&buf), "02 00 00 00 31 d7 a8 28 01 05");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_valid_record_is_found_after_garbage() {
        let mut buf = vec![0xFF; 5];
        encode_record(&Record::Truncate { from: LogIndex(2) }, &mut buf).unwrap();
        assert_eq!(find_valid_record_after(&buf), Some(5));
        assert_eq!(find_valid_record_after(&buf[..buf.len() - 1]), None);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_record(&bytes);
            let _ = SegmentHeader::decode(&bytes);
            let _ = find_valid_record_after(&bytes);
        }

        #[test]
        fn entries_round_trip(index in 1u64.., term in any::<u64>(), data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let e = entry(index, term, &data);
            let mut buf = Vec::new();
            let size = encode_entry(&e, &mut buf).unwrap();
            prop_assert_eq!(decode_record(&buf).unwrap(), (Record::Entry(e), size));
        }
    }
}
