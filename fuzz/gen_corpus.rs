//! Writes the seed corpus of the decoder fuzz targets, `seeds/<target>/<name>`,
//! from real encoded values, so libFuzzer starts from records that pass the
//! version, checksum and length checks and explores the payloads.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```
//!
//! Deterministic: rerun it after a format change and commit the result.

use raft_core::wire::{self, WireUnit};
use raft_core::{
    ClusterId, Config, EntryKind, Frame, LogEntry, LogIndex, Member, MemberRole, Message,
    MessageBody, NodeId, SnapshotMeta, StreamOpen, Term,
};
use raft_io_std::storage::record::{self, Record};
use std::path::Path;

fn config(voters: u64, learners: u64) -> Config {
    let members = (1..=voters + learners)
        .map(|id| Member {
            id: NodeId(id),
            address: format!("10.0.0.{id}:7000"),
            role: if id <= voters {
                MemberRole::Voter
            } else {
                MemberRole::Learner
            },
        })
        .collect();
    Config {
        cluster_id: ClusterId(0x5eed_cafe),
        index: LogIndex(7),
        max_node_id: NodeId(voters + learners + 2),
        members,
    }
}

fn entry(index: u64, term: u64, kind: EntryKind, data: &[u8]) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind,
        data: data.to_vec().into(),
    }
}

fn message(body: MessageBody) -> WireUnit {
    WireUnit::Message(Message {
        cluster_id: ClusterId(0x5eed_cafe),
        from: NodeId(2),
        to: NodeId(1),
        term: Term(5),
        body,
    })
}

fn units() -> Vec<(&'static str, WireUnit)> {
    let meta = SnapshotMeta {
        index: LogIndex(100),
        term: Term(4),
        config: config(3, 1),
    };
    let data = b"key=value;other=thing".to_vec().into();
    let snapshot = raft_core::wire::snapshot_frames(&meta, &data, 8);
    let mut units = vec![
        (
            "msg-prevote",
            message(MessageBody::PreVoteRequest {
                last_index: LogIndex(41),
                last_term: Term(4),
            }),
        ),
        (
            "msg-prevote-resp",
            message(MessageBody::PreVoteResponse { granted: true }),
        ),
        (
            "msg-vote",
            message(MessageBody::VoteRequest {
                last_index: LogIndex(300),
                last_term: Term(5),
                transfer: true,
            }),
        ),
        (
            "msg-vote-resp",
            message(MessageBody::VoteResponse { granted: false }),
        ),
        (
            "msg-heartbeat",
            message(MessageBody::Heartbeat {
                commit: LogIndex(40),
                round: 9,
            }),
        ),
        (
            "msg-heartbeat-resp",
            message(MessageBody::HeartbeatResponse {
                round: 9,
                streaming: true,
            }),
        ),
        ("msg-timeout-now", message(MessageBody::TimeoutNow)),
        (
            "open",
            WireUnit::Open(StreamOpen {
                cluster_id: ClusterId(0x5eed_cafe),
                follower: NodeId(2),
                leader: NodeId(1),
                term: Term(5),
                probe_index: LogIndex(41),
                probe_term: Term(4),
                commit: LogIndex(40),
                resume: None,
            }),
        ),
        (
            "open-resume",
            WireUnit::Open(StreamOpen {
                cluster_id: ClusterId(0x5eed_cafe),
                follower: NodeId(2),
                leader: NodeId(1),
                term: Term(5),
                probe_index: LogIndex(41),
                probe_term: Term(4),
                commit: LogIndex(40),
                resume: Some(raft_core::SnapshotResume {
                    index: LogIndex(60),
                    term: Term(5),
                    received: 4096,
                }),
            }),
        ),
        (
            "frame-chunk-empty",
            WireUnit::Frame(Frame::Chunk {
                term: Term(5),
                prev_index: LogIndex(41),
                prev_term: Term(4),
                leader_commit: LogIndex(41),
                entries: raft_core::Entries::new(),
            }),
        ),
        (
            "frame-chunk-3",
            WireUnit::Frame(Frame::Chunk {
                term: Term(5),
                prev_index: LogIndex(41),
                prev_term: Term(4),
                leader_commit: LogIndex(40),
                entries: vec![
                    entry(42, 5, EntryKind::Nop, b""),
                    entry(43, 5, EntryKind::Command, b"put k v"),
                    entry(44, 5, EntryKind::AddPeer, &config(3, 1).encode()),
                ]
                .into(),
            }),
        ),
        (
            "frame-ack",
            WireUnit::Frame(Frame::Ack {
                durable: LogIndex(44),
            }),
        ),
    ];
    let names = [
        "frame-snapshot-begin",
        "frame-snapshot-chunk",
        "frame-snapshot-chunk-2",
        "frame-snapshot-chunk-3",
    ];
    for (name, frame) in names.into_iter().zip(snapshot.iter().cloned()) {
        units.push((name, WireUnit::Frame(frame)));
    }
    units.push((
        "frame-snapshot-end",
        WireUnit::Frame(snapshot.last().cloned().expect("a transfer has an end")),
    ));
    let resumed = raft_core::wire::snapshot_window_frames(&meta, &data, 8, 8, true, 8);
    units.push(("frame-snapshot-begin-resumed", WireUnit::Frame(resumed[0].clone())));
    units
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create seed dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");

    // wire_decode: one file per unit kind, plus a stream of several back to back.
    let dir = seeds.join("wire_decode");
    let mut stream = Vec::new();
    for (name, unit) in units() {
        let mut bytes = Vec::new();
        wire::encode(&unit, &mut bytes);
        write(&dir, name, &bytes);
        if name.starts_with("open")
            || name.starts_with("frame-chunk")
            || name.starts_with("frame-ack")
        {
            stream.extend_from_slice(&bytes);
        }
    }
    write(&dir, "stream-open-chunks-ack", &stream);

    // wal_record_decode: raft-io-std's WAL records, one of each entry kind and
    // a truncation, back to back as in a segment, and a segment with a torn tail.
    let dir = seeds.join("wal_record_decode");
    let entries = [
        (
            "entry-initialize",
            entry(1, 1, EntryKind::Initialize, &config(1, 0).encode()),
        ),
        ("entry-nop", entry(2, 2, EntryKind::Nop, b"")),
        ("entry-command", entry(3, 2, EntryKind::Command, b"set x=1")),
        (
            "entry-add-peer",
            entry(4, 2, EntryKind::AddPeer, &config(1, 1).encode()),
        ),
        (
            "entry-promote-peer",
            entry(5, 2, EntryKind::PromotePeer, &config(2, 0).encode()),
        ),
        (
            "entry-remove-peer",
            entry(6, 3, EntryKind::RemovePeer, &config(1, 0).encode()),
        ),
    ];
    let mut log = Vec::new();
    for (name, entry) in &entries {
        let mut bytes = Vec::new();
        record::encode_entry(entry, &mut bytes).expect("a seed entry fits a record");
        write(&dir, name, &bytes);
        log.extend_from_slice(&bytes);
    }
    let mut truncate = Vec::new();
    record::encode_record(&Record::Truncate { from: LogIndex(4) }, &mut truncate)
        .expect("a truncation fits a record");
    write(&dir, "truncate", &truncate);
    write(&dir, "log-6-entries", &log);
    let mut rewritten = log.clone();
    rewritten.extend_from_slice(&truncate);
    record::encode_entry(
        &entry(4, 3, EntryKind::Command, b"after truncate"),
        &mut rewritten,
    )
    .expect("a seed entry fits a record");
    write(&dir, "log-truncated-and-rewritten", &rewritten);
    let mut torn = log.clone();
    torn.truncate(log.len() - 3);
    write(&dir, "log-torn-tail", &torn);

    // config_decode: membership payloads.
    let dir = seeds.join("config_decode");
    write(
        &dir,
        "config-empty",
        &wire::encode_config(&Config::default()),
    );
    write(&dir, "config-1-voter", &wire::encode_config(&config(1, 0)));
    write(&dir, "config-3-voters", &wire::encode_config(&config(3, 0)));
    write(
        &dir,
        "config-3-voters-2-learners",
        &wire::encode_config(&config(3, 2)),
    );
    write(&dir, "config-5-voters", &wire::encode_config(&config(5, 0)));

    // wal_recovery: real WAL directories, packed as the target reads them.
    let dir = seeds.join("wal_recovery");
    for (name, image) in wal_images(&entries.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()) {
        write(&dir, name, &image);
    }

    println!("seed corpus written under {}", seeds.display());
}

/// Packs a directory as `[kind u8][index u16][len u16][bytes]` records.
fn pack(dir: &Path) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read wal dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).expect("read segment");
        let (kind, index) = match name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            Some(i) => (0u8, i as u16),
            None => (2u8, 0),
        };
        let len = bytes.len().min(u16::MAX as usize);
        out.push(kind);
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&bytes[..len]);
    }
    out
}

fn wal_images(entries: &[LogEntry]) -> Vec<(&'static str, Vec<u8>)> {
    use raft_io_std::storage::{Wal, WalOptions};
    let mut images = Vec::new();
    let root = std::env::temp_dir().join(format!("raft-fuzz-seeds-{}", std::process::id()));
    for (name, segment_bytes_max, truncate) in [
        ("wal-one-segment", 1 << 20, false),
        ("wal-small-segments", 200, false),
        ("wal-truncated", 1 << 20, true),
    ] {
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (mut wal, _) =
            Wal::open_with(&dir, WalOptions { segment_bytes_max }).expect("open wal");
        wal.append(entries).expect("append");
        if truncate {
            wal.truncate(LogIndex(4)).expect("truncate");
            wal.append(&[entry(4, 3, EntryKind::Command, b"after truncate")])
                .expect("append");
        }
        wal.sync().expect("sync");
        drop(wal);
        images.push((name, pack(&dir)));
    }
    let _ = std::fs::remove_dir_all(&root);
    images
}
