//! The wire codec: how values travel on a connection.
//!
//! Pure: it turns values into bytes and bytes into values, and does no I/O.
//! Everything is a *record*: a small fixed header followed by the
//! [postcard](https://docs.rs/postcard) encoding of one value.
//!
//! ```text
//! offset  bytes  field
//!  0      1      version     = 2 (VERSION)
//!  1      1      kind        1 Message, 2 StreamOpen, 3 Frame (4 and 5 retired)
//!  2      4      len         payload bytes, u32 little-endian, at most FRAME_BYTES_MAX
//!  6      4      crc         CRC-32 (IEEE) of kind, len and payload, u32 little-endian
//! 10      4      header_crc  CRC-32 (IEEE) of bytes 0..10, u32 little-endian
//! 14      len    payload     postcard encoding of the value
//! ```
//!
//! The header carries its own checksum so a corrupted length is caught as soon
//! as the header has arrived: a connection does not wait for megabytes that
//! will never come.
//!
//! The kinds are [`WireUnit`]s, what travels on a connection ([`encode`],
//! [`decode`]). Kinds 4 and 5 once framed log entries and the hard state;
//! nothing wrote them (the driver owns its on-disk formats: raft-io-std's
//! write-ahead log has its own records), so they are retired and refused.
//! Membership configurations inside log entries are bare postcard
//! ([`encode_config`], [`decode_config`]): the record around them (a chunk
//! here, a WAL record on disk) is checksummed.
//!
//! Snapshots travel as frames: [`snapshot_frames`] cuts one into
//! `SnapshotBegin`, `SnapshotChunk`s and `SnapshotEnd`, and a
//! [`SnapshotAssembler`] checks them on the receiving side.
//!
//! Decoding never panics, whatever the bytes, and its memory is bounded by the
//! input: a record longer than [`FRAME_BYTES_MAX`] is refused from its header
//! alone, postcard checks every inner length against the bytes left before
//! reading, and serde reserves at most 1 MiB ahead for a sequence whose
//! declared length the bytes do not back (released as soon as they run out).

mod snapshot;

pub use snapshot::{
    SNAPSHOT_CHUNK_BYTES_MAX, SnapshotAssembler, SnapshotError, SnapshotProgress, snapshot_frames,
    snapshot_window_frames,
};

use crate::config::Config;
use crate::error::DecodeError;
use crate::message::{Frame, Message, StreamOpen};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// The format version this build writes and reads.
pub const VERSION: u8 = 2;

/// Bytes of the record header that precedes every payload.
pub const HEADER_BYTES: usize = 14;

/// The largest payload a record may carry, in bytes (64 MiB). A header that
/// declares more is refused with [`DecodeError::TooLarge`] before any payload
/// is read, and [`encode`] refuses (panics) to write one.
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// What travels on a connection: datagram messages on the message connection,
/// and on a stream connection one [`StreamOpen`] followed by [`Frame`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireUnit {
    /// A datagram: vote, heartbeat, `TimeoutNow`.
    Message(Message),
    /// The handshake that opens a replication stream.
    Open(StreamOpen),
    /// One unit on an open stream.
    Frame(Frame),
}

impl From<Message> for WireUnit {
    fn from(message: Message) -> WireUnit {
        WireUnit::Message(message)
    }
}

impl From<StreamOpen> for WireUnit {
    fn from(open: StreamOpen) -> WireUnit {
        WireUnit::Open(open)
    }
}

impl From<Frame> for WireUnit {
    fn from(frame: Frame) -> WireUnit {
        WireUnit::Frame(frame)
    }
}

impl fmt::Display for WireUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireUnit::Message(m) => write!(f, "{m}"),
            WireUnit::Open(o) => write!(f, "{o}"),
            WireUnit::Frame(frame) => write!(f, "{frame}"),
        }
    }
}

/// The record kinds. The numbers are part of the format: never reuse one
/// (4 and 5, once a log entry and a hard state, are retired).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Message = 1,
    Open = 2,
    Frame = 3,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Message),
            2 => Some(Kind::Open),
            3 => Some(Kind::Frame),
            _ => None,
        }
    }
}

/// Appends the record of one [`WireUnit`] to `out`.
///
/// # Panics
///
/// If the encoded value exceeds [`FRAME_BYTES_MAX`]: a caller bug, since the
/// node bounds chunks by `batch_bytes_max` and [`snapshot_frames`] bounds
/// snapshot chunks. Nothing is appended in that case.
///
/// # Example
///
/// ```
/// use raft_core::wire::{self, WireUnit};
/// use raft_core::{Frame, LogIndex};
///
/// let ack = WireUnit::Frame(Frame::Ack { durable: LogIndex(42) });
/// let mut out = Vec::new();
/// wire::encode(&ack, &mut out);
/// assert_eq!(out[0], wire::VERSION);
/// assert_eq!(wire::decode(&out), Ok(Some((ack, out.len()))));
/// ```
pub fn encode(unit: &WireUnit, out: &mut Vec<u8>) {
    match unit {
        WireUnit::Message(m) => write_record(Kind::Message, m, out),
        WireUnit::Open(o) => write_record(Kind::Open, o, out),
        WireUnit::Frame(f) => write_record(Kind::Frame, f, out),
    }
}

/// Decodes the first [`WireUnit`] in `buf`.
///
/// Returns `Ok(None)` when `buf` holds only the beginning of a record (read
/// more bytes and call again with all of them), `Ok(Some((unit, consumed)))`
/// when the first `consumed` bytes are one complete record, and an error when
/// the bytes can never become a valid record: the connection is then useless
/// and should be closed. Never panics, whatever the bytes.
///
/// A unit that decodes is also checked for the structural rules of its type:
/// a chunk's entries are consecutive from `prev_index + 1`, a snapshot's
/// configuration is valid ([`Config::validate`]).
///
/// # Example
///
/// A reader that receives bytes in arbitrary pieces, as from a TCP socket:
///
/// ```
/// use raft_core::wire::{self, WireUnit};
/// use raft_core::{Frame, LogIndex};
///
/// let mut sent = Vec::new();
/// for durable in 1..=3 {
///     wire::encode(&WireUnit::Frame(Frame::Ack { durable: LogIndex(durable) }), &mut sent);
/// }
///
/// let mut pending: Vec<u8> = Vec::new();
/// let mut received = Vec::new();
/// for piece in sent.chunks(5) {
///     pending.extend_from_slice(piece);
///     while let Some((unit, consumed)) = wire::decode(&pending)? {
///         received.push(unit);
///         pending.drain(..consumed);
///     }
/// }
/// assert_eq!(received.len(), 3);
/// assert!(pending.is_empty());
/// # Ok::<(), raft_core::DecodeError>(())
/// ```
pub fn decode(buf: &[u8]) -> Result<Option<(WireUnit, usize)>, DecodeError> {
    let record = match read_record(buf) {
        Ok(record) => record,
        Err(DecodeError::Truncated { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let unit = match record.kind {
        Kind::Message => WireUnit::Message(decode_payload(record.payload)?),
        Kind::Open => WireUnit::Open(decode_payload(record.payload)?),
        Kind::Frame => {
            let frame = decode_payload(record.payload)?;
            validate_frame(&frame)?;
            WireUnit::Frame(frame)
        }
    };
    Ok(Some((unit, record.consumed)))
}

/// Encodes a membership configuration as the payload of a membership entry
/// (`Initialize`, `AddPeer`, `PromotePeer`, `RemovePeer`). Same bytes as
/// [`Config::encode`].
pub fn encode_config(config: &Config) -> bytes::Bytes {
    config.encode()
}

/// Decodes a membership entry's payload: [`Config::decode`], which validates
/// the configuration, and in addition refuses bytes after the value.
pub fn decode_config(bytes: &[u8]) -> Result<Config, DecodeError> {
    let config: Config = decode_payload(bytes)?;
    config.validate()?;
    Ok(config)
}

/// One record found by [`read_record`].
struct Record<'a> {
    kind: Kind,
    payload: &'a [u8],
    consumed: usize,
}

fn write_record<T: Serialize>(kind: Kind, value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    // postcard appends through `Extend`, which `&mut Vec` lacks: lend it the Vec.
    *out = postcard::to_extend(value, std::mem::take(out)).expect("wire values always serialize");
    let len = out.len() - start - HEADER_BYTES;
    if len > FRAME_BYTES_MAX {
        out.truncate(start);
        panic!("{kind:?} record of {len} bytes exceeds FRAME_BYTES_MAX ({FRAME_BYTES_MAX})");
    }
    let len = u32::try_from(len)
        .expect("FRAME_BYTES_MAX fits in u32")
        .to_le_bytes();
    let crc = payload_crc(kind as u8, len, &out[start + HEADER_BYTES..]).to_le_bytes();
    let header = &mut out[start..start + HEADER_BYTES];
    header[0] = VERSION;
    header[1] = kind as u8;
    header[2..6].copy_from_slice(&len);
    header[6..10].copy_from_slice(&crc);
    let header_crc = crc32fast::hash(&header[..10]).to_le_bytes();
    header[10..14].copy_from_slice(&header_crc);
}

fn payload_crc(kind: u8, len: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(&len);
    hasher.update(payload);
    hasher.finalize()
}

/// Finds the record at the start of `buf`, checking version, header checksum,
/// kind, length limit and payload checksum, in that order. Incomplete input is
/// [`DecodeError::Truncated`] (and nothing else is).
fn read_record(buf: &[u8]) -> Result<Record<'_>, DecodeError> {
    let have = buf.len();
    let truncated = |needed| DecodeError::Truncated { needed, have };
    match buf.first() {
        None => return Err(truncated(HEADER_BYTES)),
        Some(&version) if version != VERSION => return Err(DecodeError::Version(version)),
        Some(_) => {}
    }
    let Some(header) = buf.first_chunk::<HEADER_BYTES>() else {
        return Err(truncated(HEADER_BYTES));
    };
    let [_, kind, l0, l1, l2, l3, c0, c1, c2, c3, h0, h1, h2, h3] = *header;
    let stored = u32::from_le_bytes([h0, h1, h2, h3]);
    let computed = crc32fast::hash(&header[..10]);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    let kind_byte = kind;
    let Some(kind) = Kind::from_byte(kind_byte) else {
        return Err(DecodeError::Malformed(format!(
            "unknown record kind {kind_byte}"
        )));
    };
    let len_bytes = [l0, l1, l2, l3];
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(DecodeError::TooLarge {
            len,
            limit: FRAME_BYTES_MAX,
        });
    }
    let end = HEADER_BYTES + len;
    let Some(payload) = buf.get(HEADER_BYTES..end) else {
        return Err(truncated(end));
    };
    let stored = u32::from_le_bytes([c0, c1, c2, c3]);
    let computed = payload_crc(kind_byte, len_bytes, payload);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    Ok(Record {
        kind,
        payload,
        consumed: end,
    })
}

/// Decodes exactly one postcard value filling all of `payload`. postcard checks
/// every length against the bytes left before reading, and serde caps the
/// capacity it reserves ahead, so memory stays proportional to `payload`.
fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) =
        postcard::take_from_bytes(payload).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// The structural rules of a frame that the codec can check alone.
fn validate_frame(frame: &Frame) -> Result<(), DecodeError> {
    match frame {
        Frame::Chunk {
            prev_index,
            entries,
            ..
        } => {
            let mut expected = prev_index.0;
            for entry in entries {
                expected = expected.checked_add(1).ok_or(DecodeError::Invalid(
                    "chunk entries run past the largest index",
                ))?;
                if entry.index.0 != expected {
                    return Err(DecodeError::Invalid(
                        "chunk entries not consecutive from prev_index + 1",
                    ));
                }
            }
            Ok(())
        }
        Frame::SnapshotBegin { size, offset, .. } if offset > size => Err(DecodeError::Invalid(
            "snapshot begins past the snapshot's size",
        )),
        Frame::SnapshotBegin { meta, .. } => meta.config.validate(),
        Frame::SnapshotAck { received, size } if received > size => Err(DecodeError::Invalid(
            "snapshot ack past the snapshot's size",
        )),
        Frame::SnapshotChunk { .. }
        | Frame::SnapshotEnd { .. }
        | Frame::Ack { .. }
        | Frame::SnapshotAck { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Member, MemberRole};
    use crate::entries::Entries;
    use crate::entry::{EntryKind, LogEntry};
    use crate::message::{MessageBody, SnapshotMeta, SnapshotResume};
    use crate::types::{ClusterId, LogIndex, NodeId, Term};
    use bytes::Bytes;

    fn config() -> Config {
        Config {
            cluster_id: ClusterId(7),
            index: LogIndex(1),
            max_node_id: NodeId(2),
            members: vec![
                Member {
                    id: NodeId(1),
                    address: "a:1".into(),
                    role: MemberRole::Voter,
                },
                Member {
                    id: NodeId(2),
                    address: "b:2".into(),
                    role: MemberRole::Learner,
                },
            ],
        }
    }

    fn entry(index: u64) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(3),
            kind: EntryKind::Command,
            data: Bytes::from_static(b"set x"),
        }
    }

    fn units() -> Vec<WireUnit> {
        vec![
            WireUnit::Message(Message {
                cluster_id: ClusterId(7),
                from: NodeId(1),
                to: NodeId(2),
                term: Term(3),
                body: MessageBody::VoteRequest {
                    last_index: LogIndex(9),
                    last_term: Term(2),
                    transfer: true,
                },
            }),
            WireUnit::Open(StreamOpen {
                cluster_id: ClusterId(7),
                follower: NodeId(2),
                leader: NodeId(1),
                term: Term(3),
                probe_index: LogIndex(9),
                probe_term: Term(2),
                commit: LogIndex(8),
                resume: None,
            }),
            WireUnit::Open(StreamOpen {
                cluster_id: ClusterId(7),
                follower: NodeId(2),
                leader: NodeId(1),
                term: Term(3),
                probe_index: LogIndex(9),
                probe_term: Term(2),
                commit: LogIndex(8),
                resume: Some(SnapshotResume {
                    index: LogIndex(5),
                    term: Term(1),
                    received: 2,
                }),
            }),
            WireUnit::Frame(Frame::Chunk {
                term: Term(3),
                prev_index: LogIndex(9),
                prev_term: Term(2),
                leader_commit: LogIndex(8),
                entries: vec![entry(10), entry(11)].into(),
            }),
            WireUnit::Frame(Frame::SnapshotBegin {
                meta: SnapshotMeta {
                    index: LogIndex(5),
                    term: Term(1),
                    config: config(),
                },
                size: 3,
                offset: 0,
            }),
            WireUnit::Frame(Frame::SnapshotBegin {
                meta: SnapshotMeta {
                    index: LogIndex(5),
                    term: Term(1),
                    config: config(),
                },
                size: 3,
                offset: 2,
            }),
            WireUnit::Frame(Frame::SnapshotChunk {
                offset: 0,
                data: Bytes::from_static(b"abc"),
                crc: 1,
            }),
            WireUnit::Frame(Frame::SnapshotEnd { crc: 2 }),
            WireUnit::Frame(Frame::Ack {
                durable: LogIndex(11),
            }),
        ]
    }

    fn encoded(unit: &WireUnit) -> Vec<u8> {
        let mut out = Vec::new();
        encode(unit, &mut out);
        out
    }

    /// Rewrites both checksums after a test edits a record, so the edit itself is what is tested.
    fn reseal(record: &mut [u8]) {
        let len = [record[2], record[3], record[4], record[5]];
        let crc = payload_crc(record[1], len, &record[HEADER_BYTES..]).to_le_bytes();
        record[6..10].copy_from_slice(&crc);
        let header_crc = crc32fast::hash(&record[..10]).to_le_bytes();
        record[10..14].copy_from_slice(&header_crc);
    }

    #[test]
    fn every_unit_round_trips() {
        for unit in units() {
            let bytes = encoded(&unit);
            assert_eq!(
                decode(&bytes),
                Ok(Some((unit.clone(), bytes.len()))),
                "{unit}"
            );
        }
    }

    #[test]
    fn ack_record_has_the_documented_layout() {
        // Golden bytes: a change here is a format change and needs a new VERSION.
        let bytes = encoded(&WireUnit::Frame(Frame::Ack {
            durable: LogIndex(300),
        }));
        let payload = [4, 0xac, 0x02]; // variant 4 (Ack), varint 300
        assert_eq!(bytes.len(), HEADER_BYTES + payload.len());
        assert_eq!(&bytes[..6], &[2, 3, 3, 0, 0, 0]);
        assert_eq!(&bytes[HEADER_BYTES..], &payload);
        let crc = u32::from_le_bytes(bytes[6..10].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&[3, 3, 0, 0, 0, 4, 0xac, 0x02]));
        let header_crc = u32::from_le_bytes(bytes[10..14].try_into().unwrap());
        assert_eq!(header_crc, crc32fast::hash(&bytes[..10]));
    }

    #[test]
    fn encode_appends_after_existing_bytes() {
        let mut out = vec![0xee];
        let unit = units().remove(0);
        encode(&unit, &mut out);
        assert_eq!(out[0], 0xee);
        assert_eq!(decode(&out[1..]), Ok(Some((unit, out.len() - 1))));
    }

    #[test]
    fn every_strict_prefix_needs_more_bytes() {
        for unit in units() {
            let bytes = encoded(&unit);
            for cut in 0..bytes.len() {
                assert_eq!(decode(&bytes[..cut]), Ok(None), "{unit} cut at {cut}");
            }
        }
    }

    #[test]
    fn unknown_version_is_refused_from_the_first_byte() {
        assert_eq!(decode(&[3]), Err(DecodeError::Version(3)));
        assert_eq!(decode(&[0; 20]), Err(DecodeError::Version(0)));
    }

    #[test]
    fn corrupted_length_is_a_checksum_error_not_a_wait() {
        let mut bytes = encoded(&units()[0]);
        bytes[5] ^= 0x01; // len + 16 MiB: without the header crc this would wait forever
        assert!(matches!(decode(&bytes), Err(DecodeError::Checksum { .. })));
    }

    #[test]
    fn oversized_length_is_refused_from_the_header() {
        let mut header = [
            VERSION,
            Kind::Frame as u8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        header[2..6].copy_from_slice(&(FRAME_BYTES_MAX as u32 + 1).to_le_bytes());
        let header_crc = crc32fast::hash(&header[..10]).to_le_bytes();
        header[10..14].copy_from_slice(&header_crc);
        assert_eq!(
            decode(&header),
            Err(DecodeError::TooLarge {
                len: FRAME_BYTES_MAX + 1,
                limit: FRAME_BYTES_MAX
            })
        );
    }

    #[test]
    fn corrupted_payload_is_a_checksum_error() {
        let mut bytes = encoded(&units()[2]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        assert!(matches!(decode(&bytes), Err(DecodeError::Checksum { .. })));
    }

    #[test]
    fn unknown_kind_is_malformed() {
        let mut bytes = encoded(&units()[0]);
        bytes[1] = 99;
        reseal(&mut bytes);
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::Malformed("unknown record kind 99".into()))
        );
    }

    #[test]
    fn bytes_after_the_value_are_malformed() {
        let mut bytes = encoded(&WireUnit::Frame(Frame::Ack {
            durable: LogIndex(1),
        }));
        bytes.push(0);
        bytes[2] += 1;
        reseal(&mut bytes);
        assert!(matches!(decode(&bytes), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn garbage_payload_is_malformed() {
        let mut bytes = encoded(&WireUnit::Frame(Frame::Ack {
            durable: LogIndex(1),
        }));
        bytes[HEADER_BYTES] = 200; // no such Frame variant
        reseal(&mut bytes);
        assert!(matches!(decode(&bytes), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn chunk_with_a_gap_is_invalid() {
        let chunk = Frame::Chunk {
            term: Term(3),
            prev_index: LogIndex(9),
            prev_term: Term(2),
            leader_commit: LogIndex(8),
            entries: vec![entry(10), entry(12)].into(),
        };
        let bytes = encoded(&WireUnit::Frame(chunk));
        assert!(matches!(decode(&bytes), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn chunk_running_past_the_largest_index_is_invalid() {
        let chunk = Frame::Chunk {
            term: Term(3),
            prev_index: LogIndex(u64::MAX),
            prev_term: Term(2),
            leader_commit: LogIndex(8),
            entries: vec![entry(0)].into(),
        };
        let bytes = encoded(&WireUnit::Frame(chunk));
        assert!(matches!(decode(&bytes), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn snapshot_begin_with_an_invalid_config_or_past_its_size_is_invalid() {
        let begin = |config, size, offset| Frame::SnapshotBegin {
            meta: SnapshotMeta {
                index: LogIndex(5),
                term: Term(1),
                config,
            },
            size,
            offset,
        };
        let mut reversed = config();
        reversed.members.reverse();
        for frame in [begin(reversed, 0, 0), begin(config(), 3, 4)] {
            assert!(matches!(
                decode(&encoded(&WireUnit::Frame(frame))),
                Err(DecodeError::Invalid(_))
            ));
        }
    }

    #[test]
    fn retired_record_kinds_are_refused() {
        for retired in [4, 5] {
            let mut bytes = encoded(&units()[0]);
            bytes[1] = retired;
            reseal(&mut bytes);
            assert_eq!(
                decode(&bytes),
                Err(DecodeError::Malformed(format!(
                    "unknown record kind {retired}"
                )))
            );
        }
    }

    #[test]
    fn config_round_trips_and_is_validated() {
        assert_eq!(decode_config(&encode_config(&config())), Ok(config()));
        let mut bad = config();
        bad.members[1].address = "a:1".into();
        assert!(matches!(
            decode_config(&bad.encode()),
            Err(DecodeError::Invalid(_))
        ));
        let mut trailing = encode_config(&config()).to_vec();
        trailing.push(0);
        assert!(matches!(
            decode_config(&trailing),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn huge_declared_vec_length_does_not_allocate_up_front() {
        // A Chunk claiming 2^60 entries in a 20-byte payload: refused, not allocated.
        let mut bytes = encoded(&WireUnit::Frame(Frame::Chunk {
            term: Term(1),
            prev_index: LogIndex(0),
            prev_term: Term(0),
            leader_commit: LogIndex(0),
            entries: Entries::new(),
        }));
        bytes.pop(); // the entries length (0)
        bytes.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
        let len = (bytes.len() - HEADER_BYTES) as u32;
        bytes[2..6].copy_from_slice(&len.to_le_bytes());
        reseal(&mut bytes);
        assert!(matches!(decode(&bytes), Err(DecodeError::Malformed(_))));
    }
}
