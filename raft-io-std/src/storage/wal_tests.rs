//! Unit tests of [`super::Wal`]: appends, rotation, truncation and compaction
//! across reopens.

use super::*;
use bytes::Bytes;
use raft_core::EntryKind;

fn entry(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Command,
        data: Bytes::from(format!("entry {index} of term {term}")),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<LogEntry> {
    range.map(|i| entry(i, term)).collect()
}

fn small() -> WalOptions {
    WalOptions {
        segment_bytes_max: 256,
    }
}

/// A log in `dir` with small segments holding entries `1..=last` of term 1,
/// appended one at a time (so they span several segments), not synced.
fn small_log(dir: &Path, last: u64) -> Wal {
    let (mut wal, _) = Wal::open_with(dir, small()).unwrap();
    for i in 1..=last {
        wal.append(&[entry(i, 1)]).unwrap();
    }
    wal
}

fn reopen(wal: Wal) -> (Wal, Recovered) {
    let (dir, options) = (wal.dir.clone(), wal.options.clone());
    drop(wal);
    Wal::open_with(dir, options).unwrap()
}

#[test]
fn appended_entries_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, recovered) = Wal::open(tmp.path()).unwrap();
    assert_eq!(recovered.entries, vec![]);
    wal.append(&entries(1..=3, 1)).unwrap();
    wal.sync().unwrap();
    let (wal, recovered) = reopen(wal);
    assert_eq!(recovered.entries, entries(1..=3, 1));
    assert_eq!(
        (wal.last_index(), wal.last_term()),
        (LogIndex(3), Some(Term(1)))
    );
}

#[test]
fn a_full_segment_rotates_and_entries_span_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open_with(tmp.path(), small()).unwrap();
    for i in 1..=40 {
        wal.append(&[entry(i, 1 + i / 10)]).unwrap();
    }
    wal.sync().unwrap();
    assert!(wal.segment_count() > 3, "{} segments", wal.segment_count());
    let (wal, recovered) = reopen(wal);
    let expected: Vec<LogEntry> = (1..=40).map(|i| entry(i, 1 + i / 10)).collect();
    assert_eq!(recovered.entries, expected);
    assert_eq!(wal.term_at(LogIndex(10)), Some(Term(2)));
    assert_eq!(wal.term_at(LogIndex(9)), Some(Term(1)));
    assert_eq!(wal.term_at(LogIndex(41)), None);
}

#[test]
fn an_append_that_does_not_follow_the_last_entry_is_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    wal.append(&entries(1..=2, 1)).unwrap();
    let err = wal.append(&[entry(3, 1), entry(5, 1)]).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotContiguous {
                expected: LogIndex(4),
                found: LogIndex(5)
            }
        ),
        "{err}"
    );
    assert_eq!(wal.last_index(), LogIndex(2));
    wal.append(&entries(3..=3, 1)).unwrap();
}

#[test]
fn truncate_then_append_replays_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    wal.append(&entries(1..=5, 1)).unwrap();
    wal.truncate(LogIndex(3)).unwrap();
    assert_eq!(
        (wal.last_index(), wal.last_term()),
        (LogIndex(2), Some(Term(1)))
    );
    wal.append(&entries(3..=4, 2)).unwrap();
    wal.sync().unwrap();
    let (_, recovered) = reopen(wal);
    let mut expected = entries(1..=2, 1);
    expected.extend(entries(3..=4, 2));
    assert_eq!(recovered.entries, expected);
}

#[test]
fn a_truncation_across_segments_deletes_the_later_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 30);
    let before = wal.segment_count();
    wal.truncate(LogIndex(4)).unwrap();
    assert!(wal.segment_count() < before);
    wal.append(&entries(4..=6, 3)).unwrap();
    wal.sync().unwrap();
    let (wal, recovered) = reopen(wal);
    let mut expected = entries(1..=3, 1);
    expected.extend(entries(4..=6, 3));
    assert_eq!(recovered.entries, expected);
    assert_eq!(wal.last_term(), Some(Term(3)));
}

#[test]
fn truncating_everything_leaves_an_empty_log_at_the_same_position() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 20);
    wal.truncate(LogIndex(1)).unwrap();
    assert_eq!(wal.last_term(), None);
    assert_eq!(wal.segment_count(), 1);
    let (mut wal, recovered) = reopen(wal);
    assert_eq!(
        (recovered.entries.len(), recovered.first_index),
        (0, LogIndex(1))
    );
    wal.append(&entries(1..=1, 2)).unwrap();
    assert!(matches!(
        wal.truncate(LogIndex(3)),
        Err(StorageError::TruncateOutOfRange { .. })
    ));
}

#[test]
fn compaction_deletes_whole_segments_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 40);
    wal.sync().unwrap();
    let firsts: Vec<LogIndex> = wal.segments.iter().map(|s| s.first_index).collect();
    let through = LogIndex(firsts[2].0 + 1); // inside the third segment
    wal.compact(through).unwrap();
    assert_eq!(wal.first_index(), firsts[2]);
    assert_eq!(wal.segment_count(), firsts.len() - 2);
    assert_eq!(wal.term_at(firsts[2]), Some(Term(1)));
    let (_, recovered) = reopen(wal);
    assert_eq!(recovered.first_index, firsts[2]);
    assert_eq!(recovered.entries, entries(firsts[2].0..=40, 1));
}

#[test]
fn compaction_keeps_the_terms_of_the_entries_it_keeps() {
    // Runs of seven entries per term, in segments of a few entries: each
    // compaction drops whole runs, or cuts one, at another place.
    let term = |i: u64| 1 + i / 7;
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open_with(tmp.path(), small()).unwrap();
    for i in 1..=60 {
        wal.append(&[entry(i, term(i))]).unwrap();
    }
    for through in [3, 12, 13, 29, 45] {
        wal.compact(LogIndex(through)).unwrap();
        let first = wal.first_index().0;
        assert_eq!(wal.term_at(LogIndex(first - 1)), None, "through {through}");
        for i in first..=60 {
            assert_eq!(
                wal.term_at(LogIndex(i)),
                Some(Term(term(i))),
                "entry {i} after compacting through {through}"
            );
        }
    }
}

#[test]
fn compaction_at_a_segment_boundary_keeps_the_segment_holding_the_next_index() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 40);
    let second = wal.segments[1].first_index;
    wal.compact(second.prev()).unwrap();
    assert_eq!(wal.first_index(), second);
    wal.compact(LogIndex(40)).unwrap();
    assert_eq!(wal.segment_count(), 1);
    assert_eq!(wal.last_index(), LogIndex(40));
}

#[test]
fn compaction_past_the_end_starts_an_empty_log_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 20);
    wal.compact(LogIndex(100)).unwrap();
    assert_eq!(
        (wal.first_index(), wal.last_index(), wal.segment_count()),
        (LogIndex(101), LogIndex(100), 1)
    );
    assert!(matches!(
        wal.append(&[entry(21, 1)]),
        Err(StorageError::NotContiguous { .. })
    ));
    wal.append(&entries(101..=102, 4)).unwrap();
    wal.sync().unwrap();
    let (_, recovered) = reopen(wal);
    assert_eq!(recovered.entries, entries(101..=102, 4));
    assert!(recovered.obsolete_segments.is_empty());
}

#[test]
fn rotation_after_truncating_a_whole_segment_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 30);
    let last_first = wal.segments[wal.segments.len() - 1].first_index;
    // Fill the last segment past the limit, then truncate back to its start.
    wal.truncate(last_first).unwrap();
    for _ in 0..3 {
        wal.append(&entries(last_first.0..=last_first.0 + 5, 2))
            .unwrap();
        wal.truncate(last_first).unwrap();
    }
    wal.append(&entries(last_first.0..=last_first.0 + 5, 3))
        .unwrap();
    wal.sync().unwrap();
    let (_, recovered) = reopen(wal);
    let mut expected = entries(1..=last_first.0 - 1, 1);
    expected.extend(entries(last_first.0..=last_first.0 + 5, 3));
    assert_eq!(recovered.entries, expected);
}

#[test]
fn sync_fsyncs_once_and_only_when_something_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    let metrics = wal.metrics();
    let before = metrics.fsyncs();
    wal.sync().unwrap();
    assert_eq!(metrics.fsyncs(), before);
    wal.append(&entries(1..=100, 1)).unwrap();
    wal.truncate(LogIndex(50)).unwrap();
    wal.sync().unwrap();
    assert_eq!((metrics.fsyncs(), metrics.syncs()), (before + 1, 1));
    assert_eq!(metrics.entries_appended(), 100);
}

#[test]
fn a_segment_longer_than_one_read_is_recovered_whole() {
    // Recovery reads a segment in chunks of a MiB: a read that fills its
    // chunk exactly is not the end of the file.
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    let big: Vec<LogEntry> = (1..=40)
        .map(|i| LogEntry {
            index: LogIndex(i),
            term: Term(1),
            kind: EntryKind::Command,
            data: Bytes::from(vec![i as u8; 64 << 10]),
        })
        .collect();
    wal.append(&big).unwrap();
    wal.sync().unwrap();
    let (_, recovered) = reopen(wal);
    assert_eq!(recovered.entries.len(), big.len());
    assert!(recovered.entries.iter().eq(big.iter()));

    // A record whose header ends exactly where the first read does: its
    // payload is in the next read.
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    let sized = |index: u64, bytes: usize| LogEntry {
        data: Bytes::from(vec![index as u8; bytes]),
        ..entry(index, 1)
    };
    let record_bytes = |e: &LogEntry| record::encode_entry(e, &mut Vec::new()).unwrap();
    let (chunk, guess) = (1usize << 20, 1000usize << 10);
    let first_bytes =
        chunk - record::RECORD_HEADER_BYTES - SEGMENT_HEADER_BYTES - record_bytes(&sized(1, guess))
            + guess;
    let log = [sized(1, first_bytes), sized(2, 100)];
    assert_eq!(
        SEGMENT_HEADER_BYTES + record_bytes(&log[0]) + record::RECORD_HEADER_BYTES,
        chunk
    );
    wal.append(&log).unwrap();
    wal.sync().unwrap();
    let (_, recovered) = reopen(wal);
    assert!(recovered.entries == log, "both entries recovered");
    assert_eq!(recovered.torn_tail, None);
}

#[test]
fn the_metrics_count_the_segment_files_and_record_bytes_written() {
    // What an operator graphs of the log's writes: the record bytes (not
    // the segment headers) and the segment files started, the first one
    // (made by the open) included.
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 40);
    let metrics = wal.metrics();
    wal.sync().unwrap();
    let paths = wal.segment_paths();
    assert!(paths.len() > 3, "{} segments", paths.len());
    let record_bytes: u64 = paths
        .iter()
        .map(|p| fs::metadata(p).unwrap().len() - SEGMENT_HEADER_BYTES as u64)
        .sum();
    assert_eq!(
        (metrics.segments_created(), metrics.bytes_written()),
        (paths.len() as u64, record_bytes)
    );
    // A sync counts when it had something to make durable.
    let syncs = metrics.syncs();
    wal.sync().unwrap();
    assert_eq!(metrics.syncs(), syncs, "nothing new to sync");
    let next = wal.last_index().0 + 1;
    wal.append(&[entry(next, 1)]).unwrap();
    wal.sync().unwrap();
    assert_eq!(metrics.syncs(), syncs + 1);
}

#[test]
fn an_open_deletes_the_leftovers_of_a_compaction_past_the_end_durably() {
    // A crash after a compaction past the end wrote its reset segment but
    // before the older segments were deleted leaves them behind. The next
    // open deletes them and syncs the directory once, so they cannot come
    // back; an open with nothing to delete syncs the directory too (a
    // segment renamed into place just before a kill may not be durable yet)
    // and the last segment.
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 20);
    wal.sync().unwrap();
    let leftovers: Vec<(PathBuf, Vec<u8>)> = wal
        .segment_paths()
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(leftovers.len() > 1, "{} segments", leftovers.len());
    wal.compact(LogIndex(100)).unwrap();
    let (wal, _) = reopen(wal);
    assert_eq!(wal.metrics().fsyncs(), 2, "nothing to delete");

    for (path, bytes) in &leftovers {
        fs::write(path, bytes).unwrap();
    }
    let (wal, recovered) = reopen(wal);
    let paths: Vec<PathBuf> = leftovers.into_iter().map(|(p, _)| p).collect();
    assert_eq!(recovered.obsolete_segments, paths);
    assert!(paths.iter().all(|p| !p.exists()), "leftovers deleted");
    let metrics = wal.metrics();
    assert_eq!(
        (metrics.segments_deleted(), metrics.fsyncs()),
        (paths.len() as u64, 2),
        "the directory once for every deletion, and the last segment"
    );
    assert_eq!(recovered.first_index, LogIndex(101));
}

#[test]
fn the_largest_entry_is_kept_and_one_byte_more_is_refused_with_nothing_written() {
    // The record limit less the most a record adds to an entry's data.
    let largest_data = record::RECORD_PAYLOAD_BYTES_MAX - 32;
    let tmp = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(tmp.path()).unwrap();
    let sized = |index: u64, bytes: usize| LogEntry {
        data: Bytes::from(vec![index as u8; bytes]),
        ..entry(index, 1)
    };
    let err = wal
        .append(&[entry(1, 1), sized(2, largest_data + 1)])
        .unwrap_err();
    match err {
        StorageError::EntryTooLarge {
            index,
            bytes,
            bytes_max,
        } => assert_eq!(
            (index, bytes, bytes_max),
            (LogIndex(2), largest_data as u64 + 1, largest_data as u64)
        ),
        other => panic!("{other}"),
    }
    assert_eq!(wal.last_index(), LogIndex(0), "nothing of the batch");
    let largest = [entry(1, 1), sized(2, largest_data)];
    wal.append(&largest).unwrap();
    wal.sync().unwrap();
    let (_, recovered) = reopen(wal);
    // Compared without printing 64 MiB on a failure.
    assert!(recovered.entries == largest, "the largest entry recovered");
}

#[test]
fn after_a_failed_write_the_log_refuses_every_later_one() {
    // A failed write or fsync leaves a file in an unknown state: the log
    // must not write after it, even once the cause is gone.
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = small_log(tmp.path(), 3);
    wal.sync().unwrap();
    let dir = wal.dir().to_path_buf();
    fs::remove_dir_all(&dir).unwrap();
    // Enough entries to need a new segment file, which cannot be created.
    let failed = (4..=40).try_for_each(|i| wal.append(&[entry(i, 1)]).and_then(|()| wal.sync()));
    assert!(
        failed.is_err(),
        "the writes into a deleted directory failed"
    );
    fs::create_dir_all(&dir).unwrap();
    let next = wal.last_index().0 + 1;
    assert!(matches!(
        wal.append(&[entry(next, 1)]),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(wal.sync(), Err(StorageError::Poisoned { .. })));
}
