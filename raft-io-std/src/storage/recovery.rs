//! Reading a write-ahead log back: which segments are live, which bytes are a
//! torn tail, and which are damage.
//!
//! The rules (also in `docs/storage.md`):
//!
//! 1. Files named `<20-digit first index>.wal` are segments; `*.tmp` files are
//!    unfinished creations and are deleted; any other `*.wal` name is damage;
//!    other files are ignored.
//! 2. Segments are ordered by first index. The newest segment whose header has
//!    the reset flag starts the log; segments before it are obsolete leftovers
//!    of a compaction past the log's end and are deleted.
//! 3. Every live segment must have a valid header whose first index matches its
//!    name, and must start exactly where the log before it ends.
//! 4. Records are replayed in order: an entry must have the next index; a
//!    truncation must lie between its segment's first index and the next index.
//! 5. A record that does not decode is a **torn tail** only if it is in the last
//!    segment, looks like an interrupted write (incomplete, zero length, or a
//!    checksum mismatch; never a checksummed but malformed payload), and no
//!    valid record starts anywhere after its first byte. The torn tail is cut
//!    off. Any other damage is an error naming the file and byte offset.
//!
//! [`recover_from_image`] applies the same rules to an in-memory image of the
//! directory; it is the entry point for fuzzing.

use super::error::{Corruption, StorageError};
use super::record::{self, Record, SEGMENT_HEADER_BYTES, SegmentHeader};
use super::record_stream::RecordStream;
use super::recovered_log::Replay;
use super::segment_index::SegmentIndex;
use raft_core::{LogEntry, LogIndex, StoredEntries};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What recovery found in a log directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The log's entries, contiguous: from `first_index`, or the tail after
    /// `stored` when recovery kept only what fits its memory budget. They may
    /// start before the newest snapshot (compaction deletes whole segments
    /// only); callers that combine the log with a snapshot skip the covered
    /// prefix ([`crate::storage::open`] does).
    pub entries: Vec<LogEntry>,
    /// The front of the log, from `first_index`, left on disk because the
    /// whole log did not fit the budget ([`Wal::open_within`](super::Wal::open_within)):
    /// described without payloads, read back with [`Wal::read`](super::Wal::read).
    /// `None`: `entries` is the whole log.
    pub stored: Option<StoredEntries>,
    /// The index of the log's first entry (or, if there are none, of the next
    /// entry to append).
    pub first_index: LogIndex,
    /// The torn tail that was cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// Segments before a reset segment, deleted as leftovers of a compaction.
    pub obsolete_segments: Vec<PathBuf>,
    /// Unfinished segment creations (`*.tmp`), deleted.
    pub temp_files: Vec<PathBuf>,
}

impl Recovered {
    /// The index of the last entry (`first_index - 1` when there are none).
    pub fn last_index(&self) -> LogIndex {
        match (self.entries.last(), &self.stored) {
            (Some(e), _) => e.index,
            (None, Some(stored)) => stored.last,
            (None, None) => LogIndex(self.first_index.0.saturating_sub(1)),
        }
    }
}

/// An interrupted write at the end of the log, removed by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub path: PathBuf,
    /// Where the torn record started; the file is cut to this length.
    pub offset: u64,
    /// How many bytes were cut off.
    pub bytes: u64,
    /// What the torn record looked like.
    pub reason: Corruption,
}

/// A live segment as recovery left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    /// The first index it may hold.
    pub first_index: LogIndex,
    /// Its path.
    pub path: PathBuf,
    /// Its length in bytes (after any torn tail is cut).
    pub bytes: u64,
    /// Where its live entries are.
    pub index: SegmentIndex,
}

/// The full result of a scan: what the caller sees plus what the WAL needs to
/// continue appending.
#[derive(Debug)]
pub(crate) struct Scan {
    pub recovered: Recovered,
    pub segments: Vec<SegmentFile>,
}

/// Where a scan reads segment bytes from.
pub(crate) trait SegmentSource {
    /// The first bytes of the file (at most [`SEGMENT_HEADER_BYTES`]).
    fn header(&mut self, path: &Path) -> Result<Vec<u8>, StorageError>;
    /// The file, to read from its start.
    fn open(&mut self, path: &Path) -> Result<Box<dyn Read + '_>, StorageError>;
}

/// What a file in a log directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A segment whose name gives its first index.
    Segment(u64),
    /// An unfinished creation.
    Temp,
    /// Not ours: ignored.
    Other,
    /// Looks like a segment name but does not parse.
    BadSegmentName,
}

const SEGMENT_SUFFIX: &str = ".wal";
const TEMP_SUFFIX: &str = ".tmp";
const INDEX_DIGITS: usize = 20;

/// The file name of the segment whose first index is `first`.
pub(crate) fn segment_file_name(first: LogIndex) -> String {
    format!("{:020}{SEGMENT_SUFFIX}", first.0)
}

pub(crate) fn classify(name: &str) -> FileKind {
    if name.ends_with(TEMP_SUFFIX) {
        return FileKind::Temp;
    }
    let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else {
        return FileKind::Other;
    };
    if stem.len() != INDEX_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return FileKind::BadSegmentName;
    }
    match stem.parse::<u64>() {
        Ok(index) => FileKind::Segment(index),
        Err(_) => FileKind::BadSegmentName,
    }
}

/// Recovers a log from an in-memory image of its directory: `(file name, bytes)`
/// pairs. Applies exactly the rules [`crate::storage::Wal::open`] applies to a
/// directory (it is the same code), but changes nothing: the torn tail, the
/// obsolete segments and the temporary files are reported, not removed. Error
/// paths are the bare file names.
///
/// This is the entry point for fuzzing recovery: it must return `Ok` or a typed
/// error for every input, never panic, and never allocate much more than the
/// image's size.
pub fn recover_from_image(files: &[(String, Vec<u8>)]) -> Result<Recovered, StorageError> {
    recover_image_within(files, u64::MAX)
}

/// [`recover_from_image`] keeping in `entries` only the tail that fits
/// `cache_bytes_max` and describing the rest as `stored` (what
/// [`Wal::open_within`](super::Wal::open_within) does): for fuzzing that
/// both describe the same log.
pub fn recover_image_within(
    files: &[(String, Vec<u8>)],
    cache_bytes_max: u64,
) -> Result<Recovered, StorageError> {
    struct Image<'a>(&'a [(String, Vec<u8>)]);
    impl Image<'_> {
        fn find(&self, path: &Path) -> &[u8] {
            self.0
                .iter()
                .find(|(name, _)| Path::new(name) == path)
                .map(|(_, bytes)| bytes.as_slice())
                .unwrap_or(&[])
        }
    }
    impl SegmentSource for Image<'_> {
        fn header(&mut self, path: &Path) -> Result<Vec<u8>, StorageError> {
            let bytes = self.find(path);
            Ok(bytes[..bytes.len().min(SEGMENT_HEADER_BYTES)].to_vec())
        }
        fn open(&mut self, path: &Path) -> Result<Box<dyn Read + '_>, StorageError> {
            Ok(Box::new(self.find(path)))
        }
    }
    let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
    Ok(scan(Path::new(""), &names, &mut Image(files), cache_bytes_max)?.recovered)
}

/// Scans the log whose directory holds `names`, reading through `source`,
/// keeping in memory the longest tail of entries whose
/// [`LogEntry::budget_bytes`] fit `cache_bytes_max` and describing the rest
/// as [`StoredEntries`].
pub(crate) fn scan(
    dir: &Path,
    names: &[String],
    source: &mut impl SegmentSource,
    cache_bytes_max: u64,
) -> Result<Scan, StorageError> {
    let mut recovered = Recovered {
        first_index: LogIndex(1),
        ..Recovered::default()
    };
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for name in names {
        let path = dir.join(name);
        match classify(name) {
            FileKind::Segment(index) => segments.push((index, path)),
            FileKind::Temp => recovered.temp_files.push(path),
            FileKind::Other => {}
            FileKind::BadSegmentName => {
                return Err(StorageError::Corrupt {
                    path,
                    offset: 0,
                    reason: Corruption::BadFileName,
                });
            }
        }
    }
    segments.sort();
    segments.dedup_by(|a, b| a.0 == b.0); // only a malformed image can repeat a name
    recovered.temp_files.sort();

    // Rule 2: find the newest reset segment, reading headers newest first.
    let mut live_from = 0;
    for (i, (_, path)) in segments.iter().enumerate().rev() {
        let header = decode_header(path, &source.header(path)?)?;
        if header.reset {
            live_from = i;
            break;
        }
    }
    recovered.obsolete_segments = segments[..live_from]
        .iter()
        .map(|(_, path)| path.clone())
        .collect();
    let live = &segments[live_from..];

    let mut files = Vec::with_capacity(live.len());
    let mut log = Replay::new(cache_bytes_max);
    for (i, (name_index, path)) in live.iter().enumerate() {
        let mut stream = RecordStream::new(path, source.open(path)?);
        stream.fill(SEGMENT_HEADER_BYTES)?;
        let header = decode_header(path, stream.peek())?;
        stream.consume(SEGMENT_HEADER_BYTES);
        if header.first_index.0 != *name_index {
            return Err(StorageError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: Corruption::NameMismatch {
                    name_index: *name_index,
                    header_index: header.first_index.0,
                },
            });
        }
        if i == 0 {
            recovered.first_index = header.first_index;
            log.first_index = header.first_index;
        } else {
            let expected = log.next_index();
            if header.first_index != expected {
                return Err(StorageError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    reason: Corruption::SegmentGap {
                        expected,
                        found: header.first_index,
                    },
                });
            }
        }
        let is_last = i + 1 == live.len();
        let mut index = SegmentIndex::default();
        let (end, torn_tail) = replay_segment(
            &mut log,
            &mut index,
            &mut stream,
            header.first_index,
            is_last,
        )?;
        recovered.torn_tail = torn_tail;
        files.push(SegmentFile {
            first_index: header.first_index,
            path: path.clone(),
            bytes: end,
            index,
        });
    }
    recovered.entries = log.tail.into();
    recovered.stored = log.stored;
    Ok(Scan {
        recovered,
        segments: files,
    })
}

fn decode_header(path: &Path, bytes: &[u8]) -> Result<SegmentHeader, StorageError> {
    SegmentHeader::decode(bytes).map_err(|e| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: Corruption::Header(e),
    })
}

/// Replays the records of one segment onto `log`, reading them from
/// `stream` (positioned after the header) and recording where its live
/// entries are in `index`; returns the length of its valid prefix and the
/// torn tail after it, if any.
fn replay_segment(
    log: &mut Replay,
    index: &mut SegmentIndex,
    stream: &mut RecordStream<'_, impl Read>,
    first: LogIndex,
    is_last: bool,
) -> Result<(u64, Option<TornTail>), StorageError> {
    let path = stream.path();
    let corrupt = |offset: u64, reason: Corruption| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    loop {
        stream.fill_record()?;
        if stream.peek().is_empty() {
            return Ok((stream.offset(), None));
        }
        let offset = stream.offset();
        let (record, size) = match record::decode_record(stream.peek()) {
            Ok(decoded) => decoded,
            Err(e) => {
                if is_last && e.may_be_torn() {
                    // Only damage reads the rest of the file at once.
                    stream.fill_all()?;
                    let rest = stream.peek();
                    if record::find_valid_record_after(rest).is_none() {
                        let torn = TornTail {
                            path: path.to_path_buf(),
                            offset,
                            bytes: rest.len() as u64,
                            reason: Corruption::Record(e),
                        };
                        return Ok((offset, Some(torn)));
                    }
                }
                return Err(corrupt(offset, Corruption::Record(e)));
            }
        };
        let next = log.next_index();
        match record {
            Record::Entry(entry) => {
                if entry.index != next || entry.index.0 == u64::MAX {
                    return Err(corrupt(
                        offset,
                        Corruption::IndexGap {
                            expected: next,
                            found: entry.index,
                        },
                    ));
                }
                index.on_entry(entry.index, offset);
                log.push(entry);
            }
            Record::Truncate { from } => {
                if from < first || from > next {
                    return Err(corrupt(
                        offset,
                        Corruption::TruncateOutOfRange { from, first, next },
                    ));
                }
                index.on_truncate(from);
                log.truncate(from);
            }
        }
        stream.consume(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::error::{HeaderError, RecordError};
    use bytes::Bytes;
    use raft_core::{EntryKind, Term};

    fn entry(index: u64, term: u64) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Command,
            data: Bytes::from(vec![index as u8; 3]),
        }
    }

    fn segment(first: u64, reset: bool, records: &[Record]) -> (String, Vec<u8>) {
        let mut bytes = SegmentHeader {
            first_index: LogIndex(first),
            reset,
        }
        .encode()
        .to_vec();
        for r in records {
            record::encode_record(r, &mut bytes).unwrap();
        }
        (segment_file_name(LogIndex(first)), bytes)
    }

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Record> {
        range.map(|i| Record::Entry(entry(i, 1))).collect()
    }

    fn valid_image() -> Vec<(String, Vec<u8>)> {
        let mut first = entries(1..=4);
        first.push(Record::Truncate { from: LogIndex(3) });
        first.extend(entries(3..=5));
        vec![
            segment(1, false, &first),
            segment(6, false, &entries(6..=9)),
        ]
    }

    proptest::proptest! {
        /// Damage of any shape to a valid image: recovery returns a prefix of
        /// the log or an error, and never panics.
        #[test]
        fn a_damaged_image_recovers_a_prefix_or_fails_cleanly(
            file in 0usize..2,
            at in proptest::prelude::any::<proptest::sample::Index>(),
            mask in 1u8..,
            cut in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let good = recover_from_image(&valid_image()).unwrap().entries;
            let mut image = valid_image();
            let bytes = &mut image[file].1;
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
            if let Some(cut) = cut {
                let keep = cut.index(bytes.len());
                bytes.truncate(keep);
            }
            if let Ok(r) = recover_from_image(&image) {
                // Only the last segment may lose a tail; damage that survives
                // in the first one must have been cut away with its file's end.
                proptest::prop_assert!(good.starts_with(&r.entries));
                if file == 0 {
                    proptest::prop_assert_eq!(&r.entries, &good);
                }
            }
        }

        #[test]
        fn arbitrary_segment_bytes_never_panic(
            first in 0u64..4,
            reset in proptest::bool::ANY,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let mut bytes = SegmentHeader { first_index: LogIndex(first.max(1)), reset }.encode().to_vec();
            bytes.extend_from_slice(&body);
            let _ = recover_from_image(&[(segment_file_name(LogIndex(first.max(1))), bytes.clone())]);
            let _ = recover_from_image(&[("00000000000000000001.wal".to_string(), body)]);
        }
    }

    #[test]
    fn an_empty_directory_is_an_empty_log_at_index_1() {
        let r = recover_from_image(&[]).unwrap();
        assert_eq!(
            (r.first_index, r.last_index(), r.entries.len()),
            (LogIndex(1), LogIndex(0), 0)
        );
    }

    #[test]
    fn entries_replay_across_segments_with_truncations() {
        let mut first = entries(1..=5);
        first.push(Record::Truncate { from: LogIndex(4) });
        first.extend(entries(4..=6).into_iter().map(|r| match r {
            Record::Entry(mut e) => {
                e.term = Term(2);
                Record::Entry(e)
            }
            r => r,
        }));
        let image = vec![
            segment(1, false, &first),
            segment(7, false, &entries(7..=8)),
        ];
        let r = recover_from_image(&image).unwrap();
        let got: Vec<(u64, u64)> = r.entries.iter().map(|e| (e.index.0, e.term.0)).collect();
        assert_eq!(
            got,
            vec![
                (1, 1),
                (2, 1),
                (3, 1),
                (4, 2),
                (5, 2),
                (6, 2),
                (7, 1),
                (8, 1)
            ]
        );
        assert_eq!(r.torn_tail, None);
    }

    #[test]
    fn a_gap_between_segments_is_an_error_naming_the_later_segment() {
        let image = vec![
            segment(1, false, &entries(1..=3)),
            segment(5, false, &entries(5..=6)),
        ];
        match recover_from_image(&image) {
            Err(StorageError::Corrupt {
                path,
                offset: 0,
                reason: Corruption::SegmentGap { .. },
            }) => {
                assert_eq!(path, Path::new(&segment_file_name(LogIndex(5))));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn segments_before_the_newest_reset_are_obsolete() {
        let mut garbage_header = segment(1, false, &entries(1..=3));
        garbage_header.1[0] ^= 0xFF; // even a damaged obsolete segment is not read
        let image = vec![
            garbage_header,
            segment(10, true, &entries(10..=11)),
            segment(12, false, &entries(12..=12)),
        ];
        let r = recover_from_image(&image).unwrap();
        assert_eq!(r.first_index, LogIndex(10));
        assert_eq!(r.last_index(), LogIndex(12));
        assert_eq!(
            r.obsolete_segments,
            vec![PathBuf::from(segment_file_name(LogIndex(1)))]
        );
    }

    fn config_entry(index: u64, term: u64) -> LogEntry {
        LogEntry {
            kind: EntryKind::AddPeer,
            ..entry(index, term)
        }
    }

    /// Rebuilds the whole log from what a budgeted recovery kept: the
    /// indexes and terms of the stored front, then the tail.
    fn indexes_and_terms(r: &Recovered) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if let Some(stored) = &r.stored {
            for (i, &(start, term)) in stored.term_starts.iter().enumerate() {
                let end = stored
                    .term_starts
                    .get(i + 1)
                    .map_or(stored.last.0 + 1, |&(next, _)| next.0);
                out.extend((start.0..end).map(|index| (index, term.0)));
            }
        }
        out.extend(r.entries.iter().map(|e| (e.index.0, e.term.0)));
        out
    }

    #[test]
    fn a_budget_keeps_the_tail_that_fits_and_describes_the_front() {
        // Entries 1..=9 in terms 1, 2 and 3 with a membership entry at 4,
        // and a truncation that replaced 6..=7 of term 2 with term 3.
        let first: Vec<Record> = vec![
            Record::Entry(entry(1, 1)),
            Record::Entry(entry(2, 1)),
            Record::Entry(entry(3, 2)),
            Record::Entry(config_entry(4, 2)),
            Record::Entry(entry(5, 2)),
            Record::Entry(entry(6, 2)),
            Record::Entry(entry(7, 2)),
            Record::Truncate { from: LogIndex(6) },
        ];
        let second: Vec<Record> = (6..=9).map(|i| Record::Entry(entry(i, 3))).collect();
        let image = vec![segment(1, false, &first), segment(6, false, &second)];
        let whole = recover_from_image(&image).unwrap();
        assert_eq!(whole.stored, None);
        let one = entry(1, 1).budget_bytes();
        let r = recover_image_within(&image, 3 * one).unwrap();
        assert_eq!(r.entries, whole.entries[6..]);
        let stored = r.stored.clone().unwrap();
        assert_eq!(
            stored.term_starts,
            vec![
                (LogIndex(1), Term(1)),
                (LogIndex(3), Term(2)),
                (LogIndex(6), Term(3))
            ]
        );
        assert_eq!(stored.last, LogIndex(6));
        assert_eq!(stored.config_entries, vec![config_entry(4, 2)]);
        assert_eq!(indexes_and_terms(&r), indexes_and_terms(&whole));
        assert_eq!(r.last_index(), LogIndex(9));

        let nothing = recover_image_within(&image, 0).unwrap();
        assert_eq!(nothing.entries, vec![]);
        assert_eq!(nothing.stored.as_ref().unwrap().last, LogIndex(9));
        assert_eq!(indexes_and_terms(&nothing), indexes_and_terms(&whole));
    }

    #[test]
    fn a_truncation_into_the_stored_front_shortens_it() {
        let mut records = entries(1..=6);
        records.insert(2, Record::Entry(config_entry(3, 1)));
        records.remove(3); // entry 3 is the membership entry
        records.push(Record::Truncate { from: LogIndex(3) });
        records.push(Record::Entry(entry(3, 2)));
        let image = vec![segment(1, false, &records)];
        let one = entry(1, 1).budget_bytes();
        // Entries 1..=4 were stored when the truncation came: 3 and its
        // membership entry are gone, and 3 of term 2 is the whole tail.
        let r = recover_image_within(&image, 2 * one).unwrap();
        let stored = r.stored.clone().unwrap();
        assert_eq!(stored.last, LogIndex(2));
        assert_eq!(stored.config_entries, vec![]);
        assert_eq!(r.entries, vec![entry(3, 2)]);
        assert_eq!(indexes_and_terms(&r), vec![(1, 1), (2, 1), (3, 2)]);
        // Membership entries before the truncation stay described, those
        // at or after it go with it.
        let records = vec![
            Record::Entry(entry(1, 1)),
            Record::Entry(config_entry(2, 1)),
            Record::Entry(entry(3, 1)),
            Record::Entry(config_entry(4, 1)),
            Record::Entry(entry(5, 1)),
            Record::Truncate { from: LogIndex(3) },
            Record::Entry(entry(3, 2)),
        ];
        let r = recover_image_within(&[segment(1, false, &records)], 2 * one).unwrap();
        let stored = r.stored.clone().unwrap();
        assert_eq!(stored.last, LogIndex(2));
        assert_eq!(stored.config_entries, vec![config_entry(2, 1)]);
        // A truncation of the whole stored front leaves none.
        let mut records = entries(1..=4);
        records.push(Record::Truncate { from: LogIndex(1) });
        let r = recover_image_within(&[segment(1, false, &records)], one).unwrap();
        assert_eq!(
            (&r.stored, r.entries.len(), r.last_index()),
            (&None, 0, LogIndex(0))
        );
    }

    #[test]
    fn a_bad_header_is_an_error_at_offset_0() {
        let mut seg = segment(1, false, &entries(1..=2));
        seg.1[9] ^= 1;
        let err = recover_from_image(&[seg]).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Corrupt {
                    offset: 0,
                    reason: Corruption::Header(HeaderError::Checksum { .. }),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_name_that_disagrees_with_the_header_is_an_error() {
        let (_, bytes) = segment(1, false, &entries(1..=2));
        let err = recover_from_image(&[(segment_file_name(LogIndex(2)), bytes)]).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Corrupt {
                    reason: Corruption::NameMismatch { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn temp_files_are_reported_and_foreign_files_ignored() {
        let image = vec![
            segment(1, false, &entries(1..=2)),
            ("00000000000000000003.wal.tmp".to_string(), vec![1, 2, 3]),
            ("README".to_string(), vec![]),
        ];
        let r = recover_from_image(&image).unwrap();
        assert_eq!(
            r.temp_files,
            vec![PathBuf::from("00000000000000000003.wal.tmp")]
        );
        assert_eq!(r.last_index(), LogIndex(2));
        let bad = vec![("12.wal".to_string(), vec![])];
        assert!(matches!(
            recover_from_image(&bad),
            Err(StorageError::Corrupt {
                reason: Corruption::BadFileName,
                ..
            })
        ));
    }

    #[test]
    fn an_entry_out_of_sequence_is_an_index_gap() {
        let image = vec![segment(
            1,
            false,
            &[Record::Entry(entry(1, 1)), Record::Entry(entry(3, 1))],
        )];
        let err = recover_from_image(&image).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Corrupt {
                    reason: Corruption::IndexGap { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_truncate_before_its_segment_is_an_error() {
        let mut second = entries(4..=5);
        second.push(Record::Truncate { from: LogIndex(3) });
        let image = vec![
            segment(1, false, &entries(1..=3)),
            segment(4, false, &second),
        ];
        let err = recover_from_image(&image).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Corrupt {
                    reason: Corruption::TruncateOutOfRange { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_torn_last_record_is_reported_with_its_offset() {
        let (name, mut bytes) = segment(1, false, &entries(1..=3));
        let full = bytes.len();
        bytes.truncate(full - 2);
        let r = recover_from_image(&[(name, bytes)]).unwrap();
        assert_eq!(r.last_index(), LogIndex(2));
        let torn = r.torn_tail.unwrap();
        let mut one = Vec::new();
        record::encode_record(&Record::Entry(entry(3, 1)), &mut one).unwrap();
        assert_eq!(torn.offset as usize, full - one.len());
        assert!(matches!(
            torn.reason,
            Corruption::Record(RecordError::Incomplete { .. })
        ));
    }

    #[test]
    fn damage_before_megabytes_of_valid_records_is_corruption_not_a_torn_tail() {
        // A flipped byte early in the last segment, with more than two read
        // chunks (1 MiB each) of valid records after it. Recovery must look
        // at all of them: treating the damage as a torn tail would cut off
        // entries that were acknowledged as durable.
        let big = |index: u64| {
            Record::Entry(LogEntry {
                data: Bytes::from(vec![index as u8; 64 << 10]),
                ..entry(index, 1)
            })
        };
        let records: Vec<Record> = (1..=48).map(big).collect();
        let (name, mut bytes) = segment(1, false, &records);
        let mut first = Vec::new();
        record::encode_record(&records[0], &mut first).unwrap();
        let header = bytes.len() - 48 * first.len();
        // The second record's payload.
        bytes[header + first.len() + 100] ^= 0xff;
        match recover_from_image(&[(name, bytes)]) {
            Err(StorageError::Corrupt { offset, .. }) => {
                assert_eq!(offset as usize, header + first.len());
            }
            other => panic!("expected corruption at the second record, got {other:?}"),
        }
    }

    #[test]
    fn damage_in_a_non_last_segment_is_never_a_torn_tail() {
        let (name, mut bytes) = segment(1, false, &entries(1..=3));
        bytes.truncate(bytes.len() - 1);
        let image = vec![(name, bytes), segment(4, false, &entries(4..=4))];
        assert!(matches!(
            recover_from_image(&image),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn an_index_near_u64_max_does_not_overflow() {
        let image = vec![segment(
            u64::MAX,
            false,
            &[Record::Entry(entry(u64::MAX, 1))],
        )];
        assert!(matches!(
            recover_from_image(&image),
            Err(StorageError::Corrupt { .. })
        ));
        let image = vec![segment(
            u64::MAX,
            false,
            &[Record::Truncate {
                from: LogIndex(u64::MAX),
            }],
        )];
        assert_eq!(recover_from_image(&image).unwrap().entries, vec![]);
    }
}
