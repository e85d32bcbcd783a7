//! Recovery of the durable storage from real files: torn tails, damage,
//! compaction, snapshots, and random operation sequences against a model with
//! clean reopens and simulated crashes in between.

use bytes::Bytes;
use proptest::prelude::*;
use raft_core::{
    ClusterId, Config, EntryKind, HardState, LogEntry, LogIndex, Member, MemberRole, NodeId,
    SnapshotMeta, Term,
};
use raft_io_std::storage::record::{self, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use raft_io_std::storage::{
    self, Corruption, HardStateStore, RecordError, StorageError, StorageOptions, Wal, WalOptions,
};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

fn entry(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Command,
        data: Bytes::from(format!("command {index} in term {term}")),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<LogEntry> {
    range.map(|i| entry(i, term)).collect()
}

fn record_size(e: &LogEntry) -> usize {
    let mut buf = Vec::new();
    record::encode_entry(e, &mut buf).unwrap()
}

/// A single-segment log of entries 1..=n, synced; returns the segment's path.
fn write_log(dir: &Path, n: u64) -> PathBuf {
    let (mut wal, _) = Wal::open(dir).unwrap();
    wal.append(&entries(1..=n, 1)).unwrap();
    wal.sync().unwrap();
    let paths = wal.segment_paths();
    assert_eq!(paths.len(), 1);
    paths[0].clone()
}

/// The byte offset of entry `index` in a segment written by `write_log`.
fn offset_of(index: u64) -> usize {
    SEGMENT_HEADER_BYTES + (1..index).map(|i| record_size(&entry(i, 1))).sum::<usize>()
}

/// A log of entries 1..=n, appended one at a time into 200-byte segments
/// (several files), synced.
fn write_segmented_log(dir: &Path, n: u64) -> Wal {
    let options = WalOptions {
        segment_bytes_max: 200,
    };
    let (mut wal, _) = Wal::open_with(dir, options).unwrap();
    for i in 1..=n {
        wal.append(&[entry(i, 1)]).unwrap();
    }
    wal.sync().unwrap();
    wal
}

#[test]
fn a_log_cut_at_every_byte_of_its_last_record_recovers_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let original = fs::read(write_log(tmp.path(), 5)).unwrap();
    let last_start = offset_of(5);
    assert_eq!(original.len(), last_start + record_size(&entry(5, 1)));
    for cut in last_start..original.len() {
        let dir = tmp.path().join(format!("cut-{cut}"));
        fs::create_dir(&dir).unwrap();
        let path = dir.join("00000000000000000001.wal");
        fs::write(&path, &original[..cut]).unwrap();

        let (mut wal, recovered) = Wal::open(&dir).unwrap();
        assert_eq!(recovered.entries, entries(1..=4, 1), "cut at {cut}");
        match &recovered.torn_tail {
            Some(torn) if cut > last_start => {
                assert_eq!(
                    (torn.path.as_path(), torn.offset, torn.bytes),
                    (path.as_path(), last_start as u64, (cut - last_start) as u64)
                );
                // What the warning says is missing: the record's header
                // while it is cut, then the record its length announces.
                let available = (cut - last_start) as u64;
                let needed = if cut < last_start + RECORD_HEADER_BYTES {
                    RECORD_HEADER_BYTES
                } else {
                    record_size(&entry(5, 1))
                };
                assert_eq!(
                    torn.reason,
                    Corruption::Record(RecordError::Incomplete {
                        needed: needed as u64,
                        available
                    }),
                    "cut at {cut}"
                );
            }
            None if cut == last_start => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            last_start as u64,
            "the tail is cut off on disk"
        );
        // The log goes on from the prefix.
        wal.append(&entries(5..=6, 2)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, again) = Wal::open(&dir).unwrap();
        let mut expected = entries(1..=4, 1);
        expected.extend(entries(5..=6, 2));
        assert_eq!(again.entries, expected);
        assert_eq!(again.torn_tail, None);
    }
}

#[test]
fn a_flipped_byte_in_a_middle_record_is_an_error_naming_the_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_log(tmp.path(), 5);
    let original = fs::read(&path).unwrap();
    let (start, end) = (offset_of(3), offset_of(4));
    for at in start..end {
        for bit in [0x01u8, 0x80] {
            let mut damaged = original.clone();
            damaged[at] ^= bit;
            fs::write(&path, &damaged).unwrap();
            match Wal::open(tmp.path()) {
                Err(StorageError::Corrupt {
                    path: p,
                    offset,
                    reason: Corruption::Record(_),
                }) => {
                    assert_eq!(
                        (p.as_path(), offset),
                        (path.as_path(), start as u64),
                        "flip {bit:#x} at {at}"
                    );
                }
                other => panic!("flip {bit:#x} at {at}: {other:?}"),
            }
            assert_eq!(
                fs::read(&path).unwrap(),
                damaged,
                "a damaged log is left as it was"
            );
        }
    }
    let err = {
        let mut damaged = original.clone();
        damaged[start + 9] ^= 0x01;
        fs::write(&path, &damaged).unwrap();
        Wal::open(tmp.path()).unwrap_err()
    };
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains(&start.to_string()),
        "{message}"
    );
}

#[test]
fn a_flipped_byte_in_the_last_record_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_log(tmp.path(), 5);
    let mut damaged = fs::read(&path).unwrap();
    let at = damaged.len() - 3;
    damaged[at] ^= 0x20;
    fs::write(&path, &damaged).unwrap();
    let (_, recovered) = Wal::open(tmp.path()).unwrap();
    assert_eq!(recovered.entries, entries(1..=4, 1));
    assert!(matches!(
        recovered.torn_tail.map(|t| t.reason),
        Some(Corruption::Record(RecordError::Checksum { .. }))
    ));
}

#[test]
fn a_whole_record_that_does_not_decode_at_the_end_of_the_log_is_an_error_not_a_torn_tail() {
    // Its checksum matches, so it was written whole, not cut short by a
    // crash: a record of a kind this version does not know (a newer one
    // wrote it). Cutting it off as a torn tail would drop what that
    // version acknowledged as durable; the log is left as it is.
    let tmp = tempfile::tempdir().unwrap();
    let path = write_log(tmp.path(), 3);
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() as u64;
    let payload = [7u8, 0]; // `Record` has two variants, 0 and 1
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    fs::write(&path, &bytes).unwrap();
    match Wal::open(tmp.path()) {
        Err(StorageError::Corrupt {
            path: p,
            offset,
            reason: Corruption::Record(RecordError::Malformed(_)),
        }) => assert_eq!((p, offset), (path.clone(), at)),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), bytes, "nothing is cut off");
}

#[test]
fn a_zero_filled_tail_is_torn() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_log(tmp.path(), 3);
    let len = fs::metadata(&path).unwrap().len();
    // A crash after the file grew but before its data reached the disk.
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0u8; 100])
        .unwrap();
    let (_, recovered) = Wal::open(tmp.path()).unwrap();
    assert_eq!(recovered.entries, entries(1..=3, 1));
    assert_eq!(
        recovered.torn_tail.map(|t| (t.offset, t.reason)),
        Some((len, Corruption::Record(RecordError::ZeroLength)))
    );
}

#[test]
fn a_damaged_record_followed_by_a_valid_one_in_the_last_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_log(tmp.path(), 3);
    let mut bytes = fs::read(&path).unwrap();
    let torn_at = bytes.len();
    bytes.extend_from_slice(&[0xFF; 7]);
    record::encode_entry(&entry(4, 1), &mut bytes).unwrap();
    fs::write(&path, &bytes).unwrap();
    match Wal::open(tmp.path()) {
        Err(StorageError::Corrupt { offset, .. }) => assert_eq!(offset, torn_at as u64),
        other => panic!("{other:?}"),
    }
}

#[test]
fn damage_at_the_end_of_a_non_last_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = write_segmented_log(tmp.path(), 20).segment_paths();
    assert!(paths.len() >= 3);
    let victim = &paths[1];
    let len = fs::metadata(victim).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    match Wal::open(tmp.path()) {
        Err(StorageError::Corrupt {
            path,
            reason: Corruption::Record(RecordError::Incomplete { .. }),
            ..
        }) => {
            assert_eq!(&path, victim)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_middle_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = write_segmented_log(tmp.path(), 20).segment_paths();
    fs::remove_file(&paths[1]).unwrap();
    match Wal::open(tmp.path()) {
        Err(StorageError::Corrupt {
            path,
            offset: 0,
            reason: Corruption::SegmentGap { .. },
        }) => assert_eq!(path, paths[2]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn recovery_replays_truncations_and_appends_over_many_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_bytes_max: 300,
    };
    let mut expected: Vec<LogEntry> = Vec::new();
    for round in 1..=6u64 {
        let (mut wal, recovered) = Wal::open_with(tmp.path(), options.clone()).unwrap();
        assert_eq!(recovered.entries, expected, "round {round}");
        let keep = expected.len() as u64 * 2 / 3;
        wal.truncate(LogIndex(keep + 1)).unwrap();
        expected.truncate(keep as usize);
        let more = entries(keep + 1..=keep + 7, round);
        wal.append(&more).unwrap();
        expected.extend(more);
        wal.sync().unwrap();
    }
}

#[test]
fn compaction_deletes_whole_segment_files_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = write_segmented_log(tmp.path(), 30);
    let before = wal.segment_paths();
    let third_first = wal.first_index(); // 1
    assert_eq!(third_first, LogIndex(1));
    wal.compact(LogIndex(12)).unwrap();
    let after = wal.segment_paths();
    // Whatever was kept is untouched and a suffix of the old list.
    assert!(after.len() < before.len());
    assert_eq!(&before[before.len() - after.len()..], &after[..]);
    for path in &before[..before.len() - after.len()] {
        assert!(!path.exists(), "{} deleted", path.display());
    }
    assert!(wal.first_index() <= LogIndex(13));
    drop(wal);
    let (_, recovered) = Wal::open(tmp.path()).unwrap();
    assert!(recovered.first_index <= LogIndex(13));
    assert_eq!(recovered.entries, entries(recovered.first_index.0..=30, 1));
}

fn meta(index: u64, term: u64) -> SnapshotMeta {
    let config = Config {
        cluster_id: ClusterId(1),
        index: LogIndex(1),
        max_node_id: NodeId(1),
        members: vec![Member {
            id: NodeId(1),
            address: "127.0.0.1:1".into(),
            role: MemberRole::Voter,
        }],
    };
    SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
        config,
    }
}

fn store_snapshot(dir: &Path, m: SnapshotMeta) {
    let store = storage::SnapshotStore::open(dir.join(storage::SNAPSHOT_DIR), 2).unwrap();
    let mut writer = store.create(m).unwrap();
    writer.write_all(b"state machine").unwrap();
    writer.finish().unwrap();
}

#[test]
fn open_returns_the_hard_state_snapshot_and_the_log_with_its_trailing_window() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state, raft_core::RecoveredState::default());
    let (mut wal, mut hard) = (opened.wal, opened.hard_state);
    wal.append(&entries(1..=20, 2)).unwrap();
    wal.sync().unwrap();
    let state = HardState {
        cluster_id: Some(ClusterId(1)),
        term: Term(2),
        vote: Some(NodeId(1)),
    };
    hard.save(&state).unwrap();
    store_snapshot(tmp.path(), meta(15, 2));
    drop((wal, hard));

    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state.hard_state, state);
    assert_eq!(opened.state.snapshot, Some(meta(15, 2)));
    // 1..=15 are behind the snapshot and still in the log: a follower
    // behind by a few entries catches up from them, without the snapshot.
    assert_eq!(opened.state.entries, entries(1..=20, 2));
    drop(opened);
    // The same when the snapshot ends exactly where the log does.
    store_snapshot(tmp.path(), meta(20, 2));
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state.snapshot, Some(meta(20, 2)));
    assert_eq!(opened.state.entries, entries(1..=20, 2));
    assert_eq!(opened.wal.first_index(), LogIndex(1));
}

#[test]
fn open_drops_a_log_that_ends_before_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    let mut wal = opened.wal;
    wal.append(&entries(1..=5, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    // A snapshot from the leader, far ahead; the crash came before the log was reset.
    store_snapshot(tmp.path(), meta(100, 3));
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state.entries, vec![]);
    let mut wal = opened.wal;
    assert_eq!(wal.first_index(), LogIndex(101));
    wal.append(&entries(101..=102, 3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state.entries, entries(101..=102, 3));
}

#[test]
fn open_drops_entries_after_a_snapshot_whose_last_term_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    let mut wal = opened.wal;
    wal.append(&entries(1..=10, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    store_snapshot(tmp.path(), meta(8, 2));
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state.entries, vec![]);
    assert_eq!(opened.wal.last_index(), LogIndex(8));
    drop(opened);
    // And it stays settled: the next open agrees.
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(
        (opened.state.entries.len(), opened.wal.first_index()),
        (0, LogIndex(9))
    );
}

#[test]
fn open_within_a_budget_keeps_the_tail_and_stores_the_front_behind_and_after_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    let mut wal = opened.wal;
    wal.append(&entries(1..=10, 1)).unwrap();
    wal.append(&entries(11..=20, 2)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    store_snapshot(tmp.path(), meta(15, 2));
    let five: u64 = entries(16..=20, 2).iter().map(LogEntry::budget_bytes).sum();
    let opened = storage::open_within(tmp.path(), &StorageOptions::default(), five).unwrap();
    assert_eq!(opened.state.snapshot, Some(meta(15, 2)));
    assert_eq!(opened.state.entries, entries(16..=20, 2));
    let stored = opened
        .state
        .stored
        .clone()
        .expect("entries 1..=15 stay on disk");
    assert_eq!(
        stored.term_starts,
        vec![(LogIndex(1), Term(1)), (LogIndex(11), Term(2))]
    );
    assert_eq!(stored.last, LogIndex(15));
    // The stored front reads back from the log the node is handed.
    let wal = opened.wal;
    assert_eq!(
        wal.read(LogIndex(9), 4, u64::MAX).unwrap(),
        [entries(9..=10, 1), entries(11..=12, 2)].concat()
    );
    drop(wal);
    // The whole log loads without a budget, as before.
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state.stored, None);
    assert_eq!(opened.state.entries.len(), 20);
}

#[test]
fn open_within_a_budget_drops_the_stored_front_with_a_log_the_snapshot_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    let mut wal = opened.wal;
    wal.append(&entries(1..=10, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    store_snapshot(tmp.path(), meta(8, 2)); // term 2 at 8: the log is another history
    let opened = storage::open_within(tmp.path(), &StorageOptions::default(), 0).unwrap();
    assert_eq!(
        (&opened.state.stored, opened.state.entries.len()),
        (&None, 0)
    );
    assert_eq!(opened.wal.first_index(), LogIndex(9));
}

#[test]
fn open_refuses_a_log_that_starts_after_the_snapshot_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    let mut wal = opened.wal;
    wal.compact(LogIndex(49)).unwrap(); // the log now starts at 50
    wal.append(&entries(50..=52, 4)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let err = storage::open(tmp.path(), &StorageOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
    store_snapshot(tmp.path(), meta(40, 3));
    let err = storage::open(tmp.path(), &StorageOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
    store_snapshot(tmp.path(), meta(49, 3));
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state.entries, entries(50..=52, 4));
}

#[test]
fn a_damaged_hard_state_stops_open_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut hard, _) = HardStateStore::open(tmp.path()).unwrap();
    hard.save(&HardState {
        cluster_id: None,
        term: Term(5),
        vote: None,
    })
    .unwrap();
    let path = hard.path().to_path_buf();
    let good = fs::read(&path).unwrap();
    let mut bytes = good.clone();
    bytes[0] ^= 1;
    fs::write(&path, &bytes).unwrap();
    match storage::open(tmp.path(), &StorageOptions::default()) {
        Err(StorageError::Corrupt {
            path: p, offset: 0, ..
        }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
    // A file cut short says how long it should be and how long it is.
    fs::write(&path, &good[..good.len() - 1]).unwrap();
    match storage::open(tmp.path(), &StorageOptions::default()) {
        Err(StorageError::Corrupt {
            path: p,
            offset: 12,
            reason: Corruption::Record(RecordError::Incomplete { needed, available }),
        }) => assert_eq!(
            (p, needed, available),
            (path.clone(), good.len() as u64, good.len() as u64 - 1)
        ),
        other => panic!("{other:?}"),
    }
    // A damaged length field (bytes 12..16) is named as a length above any
    // hard state's, not as a file cut short.
    let mut bytes = good;
    bytes[15] ^= 1;
    let damaged = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    fs::write(&path, &bytes).unwrap();
    match storage::open(tmp.path(), &StorageOptions::default()) {
        Err(StorageError::Corrupt {
            path: p,
            offset: 12,
            reason: Corruption::Record(RecordError::TooLarge { len, .. }),
        }) => assert_eq!((p, len), (path, u64::from(damaged))),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The model test.

#[derive(Clone, Debug)]
enum Op {
    Append {
        count: u64,
        new_term: bool,
        data_bytes: usize,
    },
    Truncate {
        back: u64,
    },
    Compact {
        back: u64,
        past_end: u64,
    },
    Sync,
    /// A clean reopen, keeping in memory only the entries that fit
    /// `cache_bytes` (all of them when `None`).
    Reopen {
        cache_bytes: Option<u64>,
    },
    Crash {
        cut_per_mille: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..6, proptest::bool::weighted(0.2), 0usize..60)
            .prop_map(|(count, new_term, data_bytes)| Op::Append { count, new_term, data_bytes }),
        2 => (0u64..12).prop_map(|back| Op::Truncate { back }),
        1 => (0u64..30, prop_oneof![6 => Just(0u64), 1 => 1u64..5]).prop_map(|(back, past_end)| Op::Compact { back, past_end }),
        3 => Just(Op::Sync),
        1 => proptest::option::of(0u64..400).prop_map(|cache_bytes| Op::Reopen { cache_bytes }),
        1 => (0u64..=1000).prop_map(|cut_per_mille| Op::Crash { cut_per_mille }),
    ]
}

/// The log as the model sees it: `entries[i]` has index `base + i`; every entry
/// after `compacted` must survive; entries at or before it may be gone.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    base: u64,
    entries: Vec<LogEntry>,
    compacted: u64,
}

impl Model {
    fn next(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Whether a recovered log (`first`, `entries`) is this model's log.
    fn accepts(&self, first: LogIndex, recovered: &[LogEntry]) -> bool {
        let last = first.0 + recovered.len() as u64 - 1;
        last + 1 == self.next()
            && first.0 <= self.compacted + 1
            && recovered.iter().all(|e| {
                e.index.0 >= self.base
                    && self.entries.get((e.index.0 - self.base) as usize) == Some(e)
            })
    }
}

fn make_entry(index: u64, term: u64, data_bytes: usize) -> LogEntry {
    let mut data = format!("{index}/{term}:").into_bytes();
    data.resize(data.len() + data_bytes, (index % 251) as u8);
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Command,
        data: Bytes::from(data),
    }
}

/// What the harness knows about durability since the last sync.
struct Durability {
    /// The last segment and its length when last known durable.
    synced_path: PathBuf,
    synced_len: u64,
    /// Every segment that existed then.
    synced_segments: Vec<PathBuf>,
    /// Every state the log may be found in after a crash.
    candidates: Vec<Model>,
}

fn durable_now(wal: &Wal, model: &Model) -> Durability {
    let segments = wal.segment_paths();
    let last = segments.last().unwrap().clone();
    Durability {
        synced_len: fs::metadata(&last).unwrap().len(),
        synced_path: last,
        synced_segments: segments,
        candidates: vec![model.clone()],
    }
}

/// The whole log a budgeted recovery describes: its stored front read back
/// from the log (and checked against the description), then the tail it
/// kept in memory (checked against the budget).
fn whole_log(
    wal: &Wal,
    recovered: &storage::Recovered,
    cache_bytes: u64,
) -> Result<Vec<LogEntry>, TestCaseError> {
    let tail_bytes: u64 = recovered.entries.iter().map(LogEntry::budget_bytes).sum();
    prop_assert!(tail_bytes <= cache_bytes, "{} bytes kept", tail_bytes);
    let Some(stored) = &recovered.stored else {
        return Ok(recovered.entries.clone());
    };
    let count = (stored.last.0 + 1 - recovered.first_index.0) as usize;
    let mut whole = wal.read(recovered.first_index, count, u64::MAX).unwrap();
    prop_assert_eq!(whole.len(), count);
    let mut term_starts = Vec::new();
    for e in &whole {
        if term_starts.last().is_none_or(|&(_, t)| t != e.term) {
            term_starts.push((e.index, e.term));
        }
    }
    prop_assert_eq!(&term_starts, &stored.term_starts);
    let configs: Vec<LogEntry> = whole
        .iter()
        .filter(|e| e.kind.is_config())
        .cloned()
        .collect();
    prop_assert_eq!(&configs, &stored.config_entries);
    whole.extend(recovered.entries.iter().cloned());
    Ok(whole)
}

fn run_model(ops: Vec<Op>, segment_bytes_max: u64) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let options = WalOptions { segment_bytes_max };
    let (mut wal, _) = Wal::open_with(tmp.path(), options.clone()).unwrap();
    let mut model = Model {
        base: 1,
        entries: Vec::new(),
        compacted: 0,
    };
    let mut term = 1;
    let mut durable = durable_now(&wal, &model);
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append {
                count,
                new_term,
                data_bytes,
            } => {
                if new_term {
                    term += 1;
                }
                let batch: Vec<LogEntry> = (model.next()..model.next() + count)
                    .map(|i| make_entry(i, term, data_bytes))
                    .collect();
                wal.append(&batch).unwrap();
                for e in batch {
                    model.entries.push(e);
                    durable.candidates.push(model.clone());
                }
            }
            Op::Truncate { back } => {
                let from = model.next().saturating_sub(back).max(wal.first_index().0);
                wal.truncate(LogIndex(from)).unwrap();
                // Until synced, a crash may leave the old log cut anywhere from `from` on.
                let old = model.clone();
                model.entries.truncate((from - model.base) as usize);
                for cut in from..=old.next() {
                    let mut partial = old.clone();
                    partial.entries.truncate((cut - old.base) as usize);
                    durable.candidates.push(partial);
                }
                durable.candidates.push(model.clone());
            }
            Op::Compact { back, past_end } => {
                let through = if past_end > 0 {
                    model.next() - 1 + past_end
                } else {
                    model.next().saturating_sub(1 + back)
                };
                wal.compact(LogIndex(through)).unwrap();
                if through >= model.next() {
                    model = Model {
                        base: through + 1,
                        entries: Vec::new(),
                        compacted: through,
                    };
                    durable = durable_now(&wal, &model);
                } else {
                    model.compacted = model.compacted.max(through);
                    for candidate in &mut durable.candidates {
                        candidate.compacted = candidate.compacted.max(through);
                    }
                }
                durable.candidates.push(model.clone());
            }
            Op::Sync => {
                wal.sync().unwrap();
                durable = durable_now(&wal, &model);
            }
            Op::Reopen { cache_bytes } => {
                drop(wal);
                let cache_bytes = cache_bytes.unwrap_or(u64::MAX);
                let (reopened, recovered) =
                    Wal::open_within(tmp.path(), options.clone(), cache_bytes).unwrap();
                wal = reopened;
                prop_assert!(recovered.torn_tail.is_none());
                let whole = whole_log(&wal, &recovered, cache_bytes)?;
                prop_assert!(
                    model.accepts(recovered.first_index, &whole),
                    "step {step}: reopen recovered {}..={} for {model:?}",
                    recovered.first_index,
                    recovered.last_index()
                );
                durable = durable_now(&wal, &model);
            }
            Op::Crash { cut_per_mille } => {
                let last = wal.segment_paths().last().unwrap().clone();
                drop(wal);
                // Lose part of what was written since the last sync: only the
                // last segment has unsynced bytes.
                let len = fs::metadata(&last).unwrap().len();
                let lower = if last == durable.synced_path {
                    Some(durable.synced_len.min(len))
                } else if durable.synced_segments.contains(&last) {
                    None // an older segment exposed again by a truncation: its synced length is unknown
                } else {
                    Some(SEGMENT_HEADER_BYTES as u64)
                };
                if let Some(lower) = lower {
                    let cut = lower + (len - lower) * cut_per_mille / 1000;
                    OpenOptions::new()
                        .write(true)
                        .open(&last)
                        .unwrap()
                        .set_len(cut)
                        .unwrap();
                }
                let (reopened, recovered) = Wal::open_with(tmp.path(), options.clone()).unwrap();
                wal = reopened;
                let found = durable
                    .candidates
                    .iter()
                    .find(|c| c.accepts(recovered.first_index, &recovered.entries));
                prop_assert!(
                    found.is_some(),
                    "step {step}: crash recovered {}..={}, not a state since the last sync",
                    recovered.first_index,
                    recovered.last_index()
                );
                model = found.unwrap().clone();
                durable = durable_now(&wal, &model);
            }
        }
        prop_assert_eq!(wal.last_index().0 + 1, model.next(), "step {}", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_recover_to_the_model(ops in proptest::collection::vec(op(), 1..40), small in proptest::bool::ANY) {
        run_model(ops, if small { 160 } else { 2048 })?;
    }
}

/// Found by the multi-process tests' author: with every segment deleted, the
/// node used to restart as a member with an empty log, silently forgetting
/// acknowledged entries. A node that once had a log must find it again.
#[test]
fn a_data_directory_whose_log_was_deleted_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    let mut wal = opened.wal;
    wal.append(&entries(1..=5, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    for f in fs::read_dir(tmp.path().join(storage::WAL_DIR)).unwrap() {
        fs::remove_file(f.unwrap().path()).unwrap();
    }
    let err = storage::open(tmp.path(), &StorageOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("write-ahead log is missing"),
        "{err}"
    );
    assert!(err.is_corruption());
    let wal_dir = tmp.path().join(storage::WAL_DIR);
    fs::remove_dir_all(&wal_dir).unwrap();
    let err = storage::open(tmp.path(), &StorageOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("write-ahead log is missing"),
        "a deleted wal/ too: {err}"
    );
    // A wal/ that cannot be listed (here a file in its place) is the
    // environment's fault: an error naming it, not a missing log, whose
    // message tells the operator to restore or wipe the directory.
    fs::write(&wal_dir, b"").unwrap();
    match storage::open(tmp.path(), &StorageOptions::default()) {
        Err(err @ StorageError::Io { .. }) => {
            assert!(!err.is_corruption(), "{err}");
            assert!(
                err.to_string().contains(&wal_dir.display().to_string()),
                "{err}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The log marker is what tells a lost log from a new one: a marker that
/// cannot be checked (here a symbolic link to itself, ELOOP; on a failing disk
/// EIO) must stop the open, never count as "no marker", which would start an
/// empty log and forget every acknowledged entry.
#[cfg(unix)]
#[test]
fn a_log_marker_that_cannot_be_checked_stops_the_open() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = storage::open(tmp.path(), &StorageOptions::default())
        .unwrap()
        .wal;
    wal.append(&entries(1..=5, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    for f in fs::read_dir(tmp.path().join(storage::WAL_DIR)).unwrap() {
        fs::remove_file(f.unwrap().path()).unwrap();
    }
    let marker = tmp.path().join(storage::LOG_MARKER_FILE);
    fs::remove_file(&marker).unwrap();
    std::os::unix::fs::symlink(&marker, &marker).unwrap();
    match storage::open(tmp.path(), &StorageOptions::default()) {
        Err(err @ StorageError::Io { .. }) => {
            assert!(err.to_string().contains(storage::LOG_MARKER_FILE), "{err}")
        }
        Ok(opened) => panic!(
            "opened with an empty log from {} to {}",
            opened.wal.first_index(),
            opened.wal.last_index()
        ),
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn a_fresh_data_directory_opens_twice() {
    let tmp = tempfile::tempdir().unwrap();
    drop(storage::open(tmp.path(), &StorageOptions::default()).unwrap());
    let opened = storage::open(tmp.path(), &StorageOptions::default()).unwrap();
    assert_eq!(opened.state, raft_core::RecoveredState::default());
}

/// Set in the child process of the relative-path test.
const IN_A_TEMPORARY_WORKING_DIR: &str = "RAFT_IO_STD_TEST_IN_A_TEMPORARY_WORKING_DIR";

#[test]
fn a_data_directory_given_as_a_relative_path_is_created_and_opens() {
    // `--data-dir data/node-1` on a first start: the missing directories
    // are created durably up to the working directory, which is synced as
    // the parent of the first one. The working directory belongs to the
    // whole process (proptest finds its regression files from it while the
    // other tests run), so this test runs again, alone, in a child process
    // started in a temporary directory.
    let dir = Path::new("data").join("node-1");
    if std::env::var_os(IN_A_TEMPORARY_WORKING_DIR).is_some() {
        let opened = storage::open(&dir, &StorageOptions::default()).unwrap();
        let mut wal = opened.wal;
        wal.append(&entries(1..=2, 1)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let opened = storage::open(&dir, &StorageOptions::default()).unwrap();
        assert_eq!(opened.state.entries, entries(1..=2, 1));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_data_directory_given_as_a_relative_path_is_created_and_opens",
        ])
        .env(IN_A_TEMPORARY_WORKING_DIR, "1")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    // The child did run the test (a filter matching nothing also succeeds).
    assert!(tmp.path().join(&dir).join(storage::WAL_DIR).is_dir());
}
