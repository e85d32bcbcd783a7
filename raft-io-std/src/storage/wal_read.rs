//! Range reads from the segment files: the entries a node no longer holds
//! in memory, read back for a follower's stream or the apply path.
//!
//! A read finds the segment holding its first index, seeks to the last
//! checkpoint of that segment's [`SegmentIndex`](super::segment_index) at or
//! before it, and reads records forward, jumping to a checkpoint's offset
//! where the next live entry has one (its record follows a truncation), and
//! on to the next segment at the index where that one starts. Every record
//! read is checked (length, checksum, decoding, index): the bytes must be
//! what the writer wrote, so any difference is [`StorageError::Corrupt`].

use super::error::{Corruption, RecordError, StorageError};
use super::record::{self, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, Record};
use super::recovery::SegmentFile;
use raft_core::{LogEntry, LogIndex};
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};

/// The most bytes an entry record's payload adds to its data (variant, two
/// varint u64s, kind, varint length): a lower bound on an entry's data size
/// from its record's length, to stop before reading an entry that cannot fit.
const ENTRY_FRAMING_BYTES_MAX: u64 = 32;

/// [`LogEntry::budget_bytes`] counts this on top of the data.
const BUDGET_OVERHEAD_BYTES: u64 = 24;

/// The read buffer: several small records per `read` call.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// What a read asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The first index wanted.
    pub from: LogIndex,
    /// The most entries.
    pub count_max: usize,
    /// The most [`LogEntry::budget_bytes`], unless the first entry alone is more.
    pub bytes_max: u64,
}

/// Reads entries `limits.from..` from `segments`, a log whose next index is
/// `next`. Empty if the log does not hold `from` or `count_max` is 0.
pub(crate) fn read(
    segments: &[SegmentFile],
    next: LogIndex,
    limits: Limits,
) -> Result<Vec<LogEntry>, StorageError> {
    let mut out = Vec::new();
    let Some(first) = segments.first() else {
        return Ok(out);
    };
    if limits.count_max == 0 || limits.from < first.first_index || limits.from >= next {
        return Ok(out);
    }
    let mut bytes = 0u64;
    let mut want = limits.from;
    let mut at = segments.partition_point(|s| s.first_index <= want) - 1;
    while want < next {
        let segment = &segments[at];
        // The live entries of a segment end where the next one starts.
        let end = segments.get(at + 1).map_or(next, |s| s.first_index);
        at += 1;
        if want >= end {
            continue;
        }
        let (mut index, offset) = segment.index.seek(want).unwrap_or_else(|| {
            panic!(
                "no checkpoint at or before {want} in {} (first index {}, live until {end})",
                segment.path.display(),
                segment.first_index
            )
        });
        let mut reader = SegmentReader::open(segment)?;
        reader.seek(offset)?;
        while index < end {
            if let Some(offset) = segment.index.checkpoint(index) {
                if offset != reader.pos {
                    reader.seek(offset)?;
                }
            }
            let len = reader.record_len()?;
            if index >= want {
                let room = limits.bytes_max.saturating_sub(bytes);
                let least =
                    (len as u64).saturating_sub(ENTRY_FRAMING_BYTES_MAX) + BUDGET_OVERHEAD_BYTES;
                if out.len() == limits.count_max || (!out.is_empty() && least > room) {
                    return Ok(out);
                }
            }
            let entry = reader.entry(index, len)?;
            if index >= want {
                let cost = entry.budget_bytes();
                if !out.is_empty() && bytes + cost > limits.bytes_max {
                    return Ok(out);
                }
                bytes += cost;
                out.push(entry);
            }
            index = index.next();
        }
        want = end;
    }
    Ok(out)
}

/// Reads the records of one segment in order from a checked position.
struct SegmentReader<'a> {
    segment: &'a SegmentFile,
    file: BufReader<File>,
    /// The offset of the next byte `file` yields.
    pos: u64,
    /// The current record's header, read by [`SegmentReader::record_len`].
    header: [u8; RECORD_HEADER_BYTES],
}

impl<'a> SegmentReader<'a> {
    fn open(segment: &'a SegmentFile) -> Result<SegmentReader<'a>, StorageError> {
        let file =
            File::open(&segment.path).map_err(|e| StorageError::io("open", &segment.path, e))?;
        Ok(SegmentReader {
            segment,
            file: BufReader::with_capacity(READ_BUFFER_BYTES, file),
            pos: 0,
            header: [0; RECORD_HEADER_BYTES],
        })
    }

    fn seek(&mut self, offset: u64) -> Result<(), StorageError> {
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| StorageError::io("seek", &self.segment.path, e))?;
        self.pos = offset;
        Ok(())
    }

    fn corrupt(&self, offset: u64, reason: Corruption) -> StorageError {
        StorageError::Corrupt {
            path: self.segment.path.clone(),
            offset,
            reason,
        }
    }

    /// Reads exactly `buf.len()` bytes of the segment's written part.
    fn read_exact(&mut self, buf: &mut [u8], record_offset: u64) -> Result<(), StorageError> {
        let needed = self.pos - record_offset + buf.len() as u64;
        let incomplete = |available: u64| {
            Corruption::Record(RecordError::Incomplete {
                needed,
                available: available.saturating_sub(record_offset),
            })
        };
        if self.pos + buf.len() as u64 > self.segment.bytes {
            return Err(self.corrupt(record_offset, incomplete(self.segment.bytes)));
        }
        match self.file.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            // Shorter than the writer left it: someone cut the file. The
            // error says how much of the record is left in it.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                let file_len = self
                    .file
                    .get_ref()
                    .metadata()
                    .map_err(|e| StorageError::io("stat", &self.segment.path, e))?
                    .len();
                Err(self.corrupt(record_offset, incomplete(file_len)))
            }
            Err(e) => Err(StorageError::io("read", &self.segment.path, e)),
        }
    }

    /// Reads the next record's header; returns its payload length.
    fn record_len(&mut self) -> Result<usize, StorageError> {
        let offset = self.pos;
        let mut header = [0; RECORD_HEADER_BYTES];
        self.read_exact(&mut header, offset)?;
        self.header = header;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len == 0 {
            return Err(self.corrupt(offset, Corruption::Record(RecordError::ZeroLength)));
        }
        if len > RECORD_PAYLOAD_BYTES_MAX {
            let reason = RecordError::TooLarge {
                len: len as u64,
                max: RECORD_PAYLOAD_BYTES_MAX as u64,
            };
            return Err(self.corrupt(offset, Corruption::Record(reason)));
        }
        Ok(len)
    }

    /// Reads the payload of the record whose header [`SegmentReader::record_len`]
    /// read; it must be entry `expected`.
    fn entry(&mut self, expected: LogIndex, len: usize) -> Result<LogEntry, StorageError> {
        let offset = self.pos - RECORD_HEADER_BYTES as u64;
        let mut buf = vec![0; RECORD_HEADER_BYTES + len];
        buf[..RECORD_HEADER_BYTES].copy_from_slice(&self.header);
        self.read_exact(&mut buf[RECORD_HEADER_BYTES..], offset)?;
        match record::decode_record(&buf) {
            Ok((Record::Entry(entry), _)) if entry.index == expected => Ok(entry),
            Ok((Record::Entry(entry), _)) => Err(self.corrupt(
                offset,
                Corruption::IndexGap {
                    expected,
                    found: entry.index,
                },
            )),
            Ok((Record::Truncate { from }, _)) => Err(self.corrupt(
                offset,
                Corruption::Record(RecordError::Malformed(format!(
                    "a truncation from {from} where entry {expected} was written"
                ))),
            )),
            Err(e) => Err(self.corrupt(offset, Corruption::Record(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{Corruption, RecordError, StorageError, Wal, WalOptions};
    use bytes::Bytes;
    use proptest::prelude::*;
    use raft_core::{EntryKind, LogEntry, LogIndex, Term};
    use std::path::Path;

    fn entry(index: u64, term: u64, bytes: usize) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Command,
            data: Bytes::from(vec![(index % 251) as u8; bytes]),
        }
    }

    fn small() -> WalOptions {
        WalOptions {
            segment_bytes_max: 512,
        }
    }

    /// What a read must return, from a model of the log.
    fn expected(log: &[LogEntry], from: u64, count_max: usize, bytes_max: u64) -> Vec<LogEntry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in log.iter().filter(|e| e.index.0 >= from) {
            if out.len() == count_max || (!out.is_empty() && bytes + e.budget_bytes() > bytes_max) {
                break;
            }
            bytes += e.budget_bytes();
            out.push(e.clone());
        }
        out
    }

    /// Checks a read from every index the log holds (and one past each end).
    fn check_all_reads(wal: &Wal, log: &[LogEntry]) {
        check_reads(wal, log, 0);
    }

    /// Checks a read from each of the last `back` indexes of the log and
    /// one past its end (every index if `back` is 0).
    fn check_reads(wal: &Wal, log: &[LogEntry], back: u64) {
        let first = wal.first_index().0;
        let live: Vec<LogEntry> = log.iter().filter(|e| e.index.0 >= first).cloned().collect();
        let end = wal.last_index().0 + 1;
        let start = match back {
            0 => first.saturating_sub(1),
            _ => end.saturating_sub(back).max(first.saturating_sub(1)),
        };
        for from in start..=end {
            for (count_max, bytes_max) in [(1, u64::MAX), (3, u64::MAX), (1000, 200), (1000, 0)] {
                let got = wal.read(LogIndex(from), count_max, bytes_max).unwrap();
                let want = if from < first {
                    Vec::new()
                } else {
                    expected(&live, from, count_max, bytes_max)
                };
                assert_eq!(got, want, "from {from} x{count_max} {bytes_max}B");
            }
        }
    }

    #[test]
    fn reads_span_segments_and_respect_both_limits() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(tmp.path(), small()).unwrap();
        let log: Vec<LogEntry> = (1..=120)
            .map(|i| entry(i, 1 + i / 50, (i % 7 * 13) as usize))
            .collect();
        for e in &log {
            wal.append(std::slice::from_ref(e)).unwrap();
        }
        assert!(wal.segment_count() > 5, "{} segments", wal.segment_count());
        check_all_reads(&wal, &log);
        let all = wal.read(LogIndex(1), usize::MAX, u64::MAX).unwrap();
        assert_eq!(all, log, "one read crosses every segment");
    }

    #[test]
    fn an_entry_bigger_than_bytes_max_is_read_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(tmp.path()).unwrap();
        let log = vec![entry(1, 1, 5000), entry(2, 1, 10), entry(3, 1, 10)];
        wal.append(&log).unwrap();
        assert_eq!(wal.read(LogIndex(1), 10, 100).unwrap(), log[..1]);
        assert_eq!(wal.read(LogIndex(2), 10, 100).unwrap(), log[1..]);
        assert_eq!(wal.read(LogIndex(2), 0, 100).unwrap(), vec![]);
    }

    #[test]
    fn reads_see_truncations_and_the_entries_written_after_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(tmp.path(), small()).unwrap();
        let mut log: Vec<LogEntry> = (1..=60).map(|i| entry(i, 1, 20)).collect();
        wal.append(&log).unwrap();
        // Within the last segment, then across segments, then at the start of one.
        for (from, term) in [(58, 2), (30, 3), (31, 4)] {
            wal.truncate(LogIndex(from)).unwrap();
            log.truncate(from as usize - 1);
            let more: Vec<LogEntry> = (from..from + 5).map(|i| entry(i, term, 30)).collect();
            wal.append(&more).unwrap();
            log.extend(more);
            check_all_reads(&wal, &log);
        }
        wal.sync().unwrap();
        let dir = wal.dir().to_path_buf();
        drop(wal);
        let (wal, _) = Wal::open_with(&dir, small()).unwrap();
        check_all_reads(&wal, &log);
    }

    #[test]
    fn reads_after_compaction_start_at_the_first_segment_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open_with(tmp.path(), small()).unwrap();
        let log: Vec<LogEntry> = (1..=80).map(|i| entry(i, 1, 20)).collect();
        wal.append(&log).unwrap();
        wal.compact(LogIndex(40)).unwrap();
        assert!(wal.first_index() > LogIndex(1));
        assert_eq!(wal.read(LogIndex(1), 10, u64::MAX).unwrap(), vec![]);
        check_all_reads(&wal, &log);
        wal.compact(LogIndex(200)).unwrap();
        assert_eq!(wal.read(LogIndex(80), 10, u64::MAX).unwrap(), vec![]);
        assert_eq!(wal.read(LogIndex(201), 10, u64::MAX).unwrap(), vec![]);
    }

    #[test]
    fn unsynced_appends_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(tmp.path()).unwrap();
        let log: Vec<LogEntry> = (1..=3).map(|i| entry(i, 1, 8)).collect();
        wal.append(&log).unwrap();
        assert_eq!(wal.read(LogIndex(2), 10, u64::MAX).unwrap(), log[1..]);
    }

    /// A log in `dir` holding entries 1..=3 (8 bytes of data each), synced
    /// to its one segment: the log, its entries and the segment's path.
    fn three_entries_synced(dir: &Path) -> (Wal, Vec<LogEntry>, std::path::PathBuf) {
        let (mut wal, _) = Wal::open(dir).unwrap();
        let log: Vec<LogEntry> = (1..=3).map(|i| entry(i, 1, 8)).collect();
        wal.append(&log).unwrap();
        wal.sync().unwrap();
        let path = wal.segment_paths()[0].clone();
        (wal, log, path)
    }

    fn flip_byte(path: &Path, at: u64) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at as usize] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_damaged_record_is_corruption_naming_file_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, log, path) = three_entries_synced(tmp.path());
        let len = std::fs::metadata(&path).unwrap().len();
        // The last byte of entry 3's data: entries 1 and 2 still read.
        flip_byte(&path, len - 1);
        assert_eq!(wal.read(LogIndex(1), 2, u64::MAX).unwrap(), log[..2]);
        let err = wal.read(LogIndex(2), 10, u64::MAX).unwrap_err();
        let record_bytes = (len - 28) / 3;
        match err {
            StorageError::Corrupt {
                path: p, offset, ..
            } => {
                assert_eq!((p, offset), (path.clone(), len - record_bytes))
            }
            other => panic!("{other}"),
        }
        // A file cut short is corruption too, not an empty answer, and says
        // how much of the record is missing.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 4)
            .unwrap();
        match wal.read(LogIndex(3), 10, u64::MAX) {
            Err(StorageError::Corrupt {
                offset,
                reason: Corruption::Record(RecordError::Incomplete { needed, available }),
                ..
            }) => assert_eq!(
                (offset, needed, available),
                (len - record_bytes, record_bytes, record_bytes - 4)
            ),
            other => panic!("{other:?}"),
        }
        // A damaged length field is named as such, before anything of the
        // length it claims is allocated or read.
        flip_byte(&path, 28 + 3);
        match wal.read(LogIndex(1), 10, u64::MAX) {
            Err(StorageError::Corrupt {
                offset: 28,
                reason: Corruption::Record(RecordError::TooLarge { len, .. }),
                ..
            }) => assert_eq!(len, record_bytes - 8 + (0x40 << 24)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_segment_that_cannot_be_read_is_an_io_error_not_corruption() {
        // Only a file that ends early is damage; any other failure to read
        // it (here a directory in its place) is the environment's.
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(tmp.path()).unwrap();
        wal.append(&[entry(1, 1, 8)]).unwrap();
        wal.sync().unwrap();
        let path = wal.segment_paths()[0].clone();
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        match wal.read(LogIndex(1), 10, u64::MAX) {
            Err(err @ StorageError::Io { .. }) => assert!(!err.is_corruption(), "{err}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_valid_record_of_another_entry_in_place_is_corruption() {
        // Bytes with a valid checksum but written for another index (a file
        // copied from elsewhere, a misplaced write) must not be served as
        // the entry asked for.
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, path) = three_entries_synced(tmp.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let mut other = Vec::new();
        let size = crate::storage::record::encode_entry(&entry(7, 1, 8), &mut other).unwrap();
        let second = 28 + size;
        bytes[second..second + size].copy_from_slice(&other);
        std::fs::write(&path, bytes).unwrap();
        match wal.read(LogIndex(1), 10, u64::MAX) {
            Err(StorageError::Corrupt {
                offset,
                reason: Corruption::IndexGap { expected, found },
                ..
            }) => assert_eq!(
                (offset, expected, found),
                (second as u64, LogIndex(2), LogIndex(7))
            ),
            other => panic!("{other:?}"),
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Append { count: u64, bytes: usize },
        Truncate { back: u64 },
        Compact { back: u64 },
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u64..12, 0usize..120).prop_map(|(count, bytes)| Op::Append { count, bytes }),
            2 => (0u64..20).prop_map(|back| Op::Truncate { back }),
            1 => (0u64..30).prop_map(|back| Op::Compact { back }),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any history of appends, truncations, compactions and reopens:
        /// every read returns what a model of the log says.
        #[test]
        fn reads_match_a_model_of_the_log(ops in proptest::collection::vec(op(), 1..40)) {
            let tmp = tempfile::tempdir().unwrap();
            // Segments of a few entries each (not one: every rotation costs fsyncs).
            let options = WalOptions { segment_bytes_max: 1024 };
            let (mut wal, _) = Wal::open_with(tmp.path(), options.clone()).unwrap();
            let mut log: Vec<LogEntry> = Vec::new();
            let mut term = 1;
            for op in ops {
                let next = wal.last_index().0 + 1;
                match op {
                    Op::Append { count, bytes } => {
                        let more: Vec<LogEntry> = (next..next + count).map(|i| entry(i, term, bytes)).collect();
                        wal.append(&more).unwrap();
                        log.extend(more);
                    }
                    Op::Truncate { back } => {
                        let from = next.saturating_sub(back).max(wal.first_index().0);
                        wal.truncate(LogIndex(from)).unwrap();
                        log.retain(|e| e.index.0 < from);
                        term += 1;
                    }
                    Op::Compact { back } => {
                        wal.compact(LogIndex(next.saturating_sub(back + 1))).unwrap();
                        let first = wal.first_index().0;
                        log.retain(|e| e.index.0 >= first);
                    }
                    Op::Reopen => {
                        wal.sync().unwrap();
                        let dir = wal.dir().to_path_buf();
                        drop(wal);
                        wal = Wal::open_with(&dir, options.clone()).unwrap().0;
                        check_all_reads(&wal, &log);
                    }
                }
                // Where the last operation wrote, and everything at the end.
                check_reads(&wal, &log, 24);
            }
            check_all_reads(&wal, &log);
        }
    }
}
