//! Properties of the wire codec: every value round-trips, every prefix of a
//! record asks for more bytes, every corrupted record is refused, records
//! decode back to back however the bytes are split, and no input panics.

use bytes::Bytes;
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use raft_core::wire::{self, SnapshotAssembler, SnapshotError, SnapshotProgress, WireUnit};
use raft_core::{
    ClusterId, Config, DecodeError, EntryKind, Frame, LogEntry, LogIndex, Member, MemberRole,
    Message, MessageBody, NodeId, SnapshotMeta, SnapshotResume, StreamOpen, Term,
};

// ---------------------------------------------------------------- strategies

/// Numbers that hit varint boundaries and extremes as well as small values.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..300,
        2 => any::<u64>(),
        1 => Just(u64::MAX),
        1 => (0u32..64).prop_map(|shift| 1u64 << shift),
    ]
}

fn term() -> impl Strategy<Value = Term> {
    number().prop_map(Term)
}

fn index() -> impl Strategy<Value = LogIndex> {
    number().prop_map(LogIndex)
}

fn node_id() -> impl Strategy<Value = NodeId> {
    number().prop_map(NodeId)
}

fn cluster_id() -> impl Strategy<Value = ClusterId> {
    number().prop_map(ClusterId)
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..64),
        1 => vec(any::<u8>(), 0..2048),
    ]
    .prop_map(Bytes::from)
}

fn entry_kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![
        Just(EntryKind::Command),
        Just(EntryKind::Nop),
        Just(EntryKind::Initialize),
        Just(EntryKind::AddPeer),
        Just(EntryKind::PromotePeer),
        Just(EntryKind::RemovePeer),
    ]
}

fn entry_at(index: LogIndex) -> impl Strategy<Value = LogEntry> {
    (term(), entry_kind(), payload()).prop_map(move |(term, kind, data)| LogEntry {
        index,
        term,
        kind,
        data,
    })
}

/// A configuration that passes `Config::validate`: ids sorted, unique, non-zero
/// and at most `max_node_id`; addresses non-empty and unique.
fn config() -> impl Strategy<Value = Config> {
    (
        cluster_id(),
        index(),
        btree_set(1u64..1_000, 0..6),
        "[a-z0-9.:-]{0,12}",
        vec(any::<bool>(), 6),
        0u64..1_000,
    )
        .prop_map(|(cluster_id, index, ids, prefix, learner, extra)| {
            let members: Vec<Member> = ids
                .iter()
                .zip(&learner)
                .map(|(&id, &learner)| Member {
                    id: NodeId(id),
                    address: format!("{prefix}{id}"),
                    role: if learner {
                        MemberRole::Learner
                    } else {
                        MemberRole::Voter
                    },
                })
                .collect();
            let max_id = ids.last().copied().unwrap_or(0);
            Config {
                cluster_id,
                index,
                max_node_id: NodeId(max_id + extra),
                members,
            }
        })
}

fn snapshot_meta() -> impl Strategy<Value = SnapshotMeta> {
    (index(), term(), config()).prop_map(|(index, term, config)| SnapshotMeta {
        index,
        term,
        config,
    })
}

fn message_body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (index(), term()).prop_map(|(last_index, last_term)| MessageBody::PreVoteRequest {
            last_index,
            last_term
        }),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteResponse { granted }),
        (index(), term(), any::<bool>()).prop_map(|(last_index, last_term, transfer)| {
            MessageBody::VoteRequest {
                last_index,
                last_term,
                transfer,
            }
        }),
        any::<bool>().prop_map(|granted| MessageBody::VoteResponse { granted }),
        (index(), number()).prop_map(|(commit, round)| MessageBody::Heartbeat { commit, round }),
        (number(), any::<bool>())
            .prop_map(|(round, streaming)| MessageBody::HeartbeatResponse { round, streaming }),
        Just(MessageBody::TimeoutNow),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (cluster_id(), node_id(), node_id(), term(), message_body()).prop_map(
        |(cluster_id, from, to, term, body)| Message {
            cluster_id,
            from,
            to,
            term,
            body,
        },
    )
}

fn stream_open() -> impl Strategy<Value = StreamOpen> {
    (
        cluster_id(),
        node_id(),
        node_id(),
        term(),
        index(),
        term(),
        index(),
        proptest::option::of((index(), term(), number())),
    )
        .prop_map(
            |(cluster_id, follower, leader, term, probe_index, probe_term, commit, resume)| {
                StreamOpen {
                    cluster_id,
                    follower,
                    leader,
                    term,
                    probe_index,
                    probe_term,
                    commit,
                    resume: resume.map(|(index, term, received)| SnapshotResume {
                        index,
                        term,
                        received,
                    }),
                }
            },
        )
}

/// A chunk whose entries are consecutive from `prev_index + 1`, as the codec requires.
fn chunk() -> impl Strategy<Value = Frame> {
    (term(), 0..u64::MAX - 16, term(), index(), 0usize..8).prop_flat_map(
        |(term, prev_index, prev_term, leader_commit, count)| {
            let entries: Vec<_> = (1..=count as u64)
                .map(|i| entry_at(LogIndex(prev_index + i)))
                .collect();
            entries.prop_map(move |entries| Frame::Chunk {
                term,
                prev_index: LogIndex(prev_index),
                prev_term,
                leader_commit,
                entries: entries.into(),
            })
        },
    )
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        3 => chunk(),
        1 => (snapshot_meta(), number(), number()).prop_map(|(meta, a, b)| Frame::SnapshotBegin {
            meta,
            size: a.max(b),
            offset: a.min(b),
        }),
        1 => (number(), payload(), any::<u32>()).prop_map(|(offset, data, crc)| Frame::SnapshotChunk {
            offset,
            data,
            crc
        }),
        1 => any::<u32>().prop_map(|crc| Frame::SnapshotEnd { crc }),
        1 => index().prop_map(|durable| Frame::Ack { durable }),
        1 => (number(), number()).prop_map(|(a, b)| Frame::SnapshotAck {
            received: a.min(b),
            size: a.max(b),
        }),
    ]
}

/// Boxed: the unboxed strategy's nested types make a value tree so large
/// that generating one overflows a test thread's stack in debug builds.
fn unit() -> BoxedStrategy<WireUnit> {
    prop_oneof![
        message().prop_map(WireUnit::Message),
        stream_open().prop_map(WireUnit::Open),
        frame().prop_map(WireUnit::Frame),
    ]
    .boxed()
}

fn encoded(unit: &WireUnit) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(unit, &mut out);
    out
}

/// Decodes every record in `buf`, as a connection reader would, until the
/// bytes run out or an error.
fn decode_all(buf: &[u8]) -> (Vec<WireUnit>, usize, Option<DecodeError>) {
    let mut units = Vec::new();
    let mut at = 0;
    loop {
        match wire::decode(&buf[at..]) {
            Ok(Some((unit, used))) => {
                assert!(
                    used > 0 && at + used <= buf.len(),
                    "consumed {used} at {at} of {}",
                    buf.len()
                );
                units.push(unit);
                at += used;
            }
            Ok(None) => return (units, at, None),
            Err(e) => return (units, at, Some(e)),
        }
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_unit_round_trips(unit in unit()) {
        let bytes = encoded(&unit);
        prop_assert!(bytes.len() <= wire::HEADER_BYTES + wire::FRAME_BYTES_MAX);
        prop_assert_eq!(wire::decode(&bytes), Ok(Some((unit, bytes.len()))));
    }

    #[test]
    fn messages_round_trip(message in message()) {
        let unit = WireUnit::Message(message);
        prop_assert_eq!(wire::decode(&encoded(&unit)).map(|d| d.map(|(u, _)| u)), Ok(Some(unit)));
    }

    #[test]
    fn stream_opens_round_trip(open in stream_open()) {
        let unit = WireUnit::Open(open);
        prop_assert_eq!(wire::decode(&encoded(&unit)).map(|d| d.map(|(u, _)| u)), Ok(Some(unit)));
    }

    #[test]
    fn frames_round_trip(frame in frame()) {
        let unit = WireUnit::Frame(frame);
        prop_assert_eq!(wire::decode(&encoded(&unit)).map(|d| d.map(|(u, _)| u)), Ok(Some(unit)));
    }

    #[test]
    fn strict_prefixes_need_more_bytes(unit in unit(), cut in any::<prop::sample::Index>()) {
        let bytes = encoded(&unit);
        let cut = cut.index(bytes.len());
        prop_assert_eq!(wire::decode(&bytes[..cut]), Ok(None));
    }

    #[test]
    fn any_single_corrupted_byte_is_refused(
        unit in unit(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        // CRC-32 catches every error burst of up to 32 bits, so one changed byte
        // anywhere is an error, never a different value and never a wait.
        let mut bytes = encoded(&unit);
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        let result = wire::decode(&bytes);
        prop_assert!(result.is_err(), "byte {} ^ {:#04x} decoded as {:?}", at, flip, result);
    }

    #[test]
    fn scattered_corruption_never_panics(
        unit in unit(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = encoded(&unit);
        for (at, value) in &edits {
            let at = at.index(bytes.len());
            bytes[at] = *value;
        }
        // Any outcome but a panic; a value that does come out is a well-formed one.
        if let Ok(Some((decoded, used))) = wire::decode(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(wire::decode(&encoded(&decoded)).map(|d| d.map(|(u, _)| u)), Ok(Some(decoded)));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256), valid_header in any::<bool>()) {
        let mut bytes = bytes;
        if valid_header && !bytes.is_empty() {
            bytes[0] = wire::VERSION;
        }
        let _ = wire::decode(&bytes);
        let _ = wire::decode_config(&bytes);
    }

    #[test]
    fn concatenated_units_decode_in_order(units in vec(unit(), 0..8)) {
        let mut bytes = Vec::new();
        for unit in &units {
            wire::encode(unit, &mut bytes);
        }
        let (decoded, consumed, error) = decode_all(&bytes);
        prop_assert_eq!(error, None);
        prop_assert_eq!(consumed, bytes.len());
        prop_assert_eq!(decoded, units);
    }

    #[test]
    fn units_decode_the_same_however_the_bytes_arrive(
        units in vec(unit(), 1..6),
        pieces in vec(1usize..64, 1..64),
    ) {
        let mut sent = Vec::new();
        for unit in &units {
            wire::encode(unit, &mut sent);
        }
        let mut pending = Vec::new();
        let mut received = Vec::new();
        let mut at = 0;
        for piece in pieces.iter().cycle() {
            if at == sent.len() {
                break;
            }
            let end = sent.len().min(at + piece);
            pending.extend_from_slice(&sent[at..end]);
            at = end;
            while let Some((unit, used)) = wire::decode(&pending).expect("a clean stream never errors") {
                received.push(unit);
                pending.drain(..used);
            }
        }
        prop_assert!(pending.is_empty());
        prop_assert_eq!(received, units);
    }

    #[test]
    fn configs_round_trip(config in config()) {
        prop_assert_eq!(wire::decode_config(&wire::encode_config(&config)), Ok(config));
    }

    #[test]
    fn snapshots_reassemble_exactly(
        meta in snapshot_meta(),
        data in vec(any::<u8>(), 0..4096),
        chunk_bytes in 1usize..1500,
    ) {
        let data = Bytes::from(data);
        let frames = raft_core::wire::snapshot_frames(&meta, &data, chunk_bytes);
        let mut assembler = SnapshotAssembler::new();
        let mut received = Vec::new();
        let mut completed = None;
        for frame in &frames {
            // Each frame also survives the wire.
            let unit = WireUnit::Frame(frame.clone());
            prop_assert_eq!(wire::decode(&encoded(&unit)).map(|d| d.map(|(u, _)| u)), Ok(Some(unit)));
            match assembler.feed(frame) {
                Ok(SnapshotProgress::Started) => {}
                Ok(SnapshotProgress::Chunk { offset, data }) => {
                    prop_assert_eq!(offset, received.len() as u64);
                    prop_assert!(!data.is_empty() && data.len() <= chunk_bytes);
                    received.extend_from_slice(&data);
                }
                Ok(SnapshotProgress::Complete { meta }) => completed = Some(meta),
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            }
        }
        prop_assert_eq!(completed, Some(meta));
        prop_assert_eq!(Bytes::from(received), data);
    }

    #[test]
    fn a_corrupted_snapshot_chunk_is_refused(
        data in vec(any::<u8>(), 1..2048),
        chunk_bytes in 1usize..512,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let meta = SnapshotMeta { index: LogIndex(1), term: Term(1), config: Config::default() };
        let data = Bytes::from(data);
        let mut frames = raft_core::wire::snapshot_frames(&meta, &data, chunk_bytes);
        let at = at.index(data.len());
        let target = 1 + at / chunk_bytes;
        if let Frame::SnapshotChunk { data: chunk, .. } = &mut frames[target] {
            let mut bytes = chunk.to_vec();
            bytes[at % chunk_bytes] ^= flip;
            *chunk = Bytes::from(bytes);
        }
        let mut assembler = SnapshotAssembler::new();
        let mut error = None;
        for frame in &frames {
            if let Err(e) = assembler.feed(frame) {
                error = Some(e);
                break;
            }
        }
        let error_matches = matches!(error, Some(SnapshotError::ChunkChecksum { .. }));
        prop_assert!(error_matches, "{:?}", error);
        prop_assert!(!assembler.is_receiving());
    }
}

/// A sender may ask for chunks as large as it likes: they are clamped to
/// what a frame can carry, so a snapshot larger than one frame still
/// travels (a chunk at the limit, with its offset and CRC, fits a record).
#[test]
fn the_largest_snapshot_chunks_fit_in_a_frame() {
    let meta = SnapshotMeta {
        index: LogIndex(9),
        term: Term(2),
        config: Config {
            cluster_id: ClusterId(7),
            index: LogIndex(1),
            max_node_id: NodeId(1),
            members: vec![Member {
                id: NodeId(1),
                address: "a".into(),
                role: MemberRole::Voter,
            }],
        },
    };
    let data = Bytes::from(vec![3u8; wire::FRAME_BYTES_MAX + 1]);
    let frames = wire::snapshot_frames(&meta, &data, usize::MAX);
    let chunks: Vec<usize> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::SnapshotChunk { data, .. } => Some(data.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        chunks.len(),
        2,
        "two chunks carry one frame's worth and more"
    );
    assert_eq!(chunks.iter().sum::<usize>(), data.len());
    let mut out = Vec::new();
    for frame in frames {
        out.clear();
        // Panics (refuses to write) above the frame limit.
        wire::encode(&WireUnit::Frame(frame), &mut out);
        assert!(out.len() <= wire::HEADER_BYTES + wire::FRAME_BYTES_MAX);
    }
}

/// `encode` refuses a payload over the frame limit (a peer would refuse to
/// read it): a driver bug, so it panics rather than send what no node reads.
#[test]
#[should_panic(expected = "FRAME_BYTES_MAX")]
fn encoding_a_record_over_the_frame_limit_panics() {
    let frame = Frame::SnapshotChunk {
        offset: 0,
        data: Bytes::from(vec![0u8; wire::FRAME_BYTES_MAX + 1]),
        crc: 0,
    };
    wire::encode(&WireUnit::Frame(frame), &mut Vec::new());
}

/// The frame limit is inclusive: a record of exactly `FRAME_BYTES_MAX`
/// payload bytes is written, and read back whole, so a sender that fills a
/// frame to the limit talks to a peer that accepts it.
#[test]
fn a_record_of_exactly_the_frame_limit_is_written_and_read_back() {
    let chunk = |len: usize| {
        WireUnit::Frame(Frame::SnapshotChunk {
            offset: 0,
            data: Bytes::from(vec![5u8; len]),
            crc: 0,
        })
    };
    // The record's own fields around the data: measured, not assumed.
    let probe_len = wire::FRAME_BYTES_MAX - 64;
    let mut out = Vec::new();
    wire::encode(&chunk(probe_len), &mut out);
    let overhead = out.len() - wire::HEADER_BYTES - probe_len;
    let unit = chunk(wire::FRAME_BYTES_MAX - overhead);
    out.clear();
    wire::encode(&unit, &mut out);
    assert_eq!(out.len(), wire::HEADER_BYTES + wire::FRAME_BYTES_MAX);
    assert_eq!(wire::decode(&out), Ok(Some((unit, out.len()))));
}

#[test]
fn a_snapshot_ack_decodes_up_to_the_snapshots_size_and_no_further() {
    let encode = |received, size| {
        let mut out = Vec::new();
        wire::encode(
            &WireUnit::Frame(Frame::SnapshotAck { received, size }),
            &mut out,
        );
        out
    };
    for (received, size) in [(0, 0), (8, 8), (3, 8)] {
        let bytes = encode(received, size);
        assert_eq!(
            wire::decode(&bytes),
            Ok(Some((
                WireUnit::Frame(Frame::SnapshotAck { received, size }),
                bytes.len()
            )))
        );
    }
    assert!(matches!(
        wire::decode(&encode(9, 8)),
        Err(DecodeError::Invalid(_))
    ));
}
