//! The segmented write-ahead log.
//!
//! A directory of segment files, each named by the first index it may hold
//! (`00000000000000000001.wal`) and holding a header and a sequence of records
//! (see [`super::record`]). Appends go to the last segment; when it reaches
//! [`WalOptions::segment_bytes_max`] it is fsynced and a new one is started.
//!
//! Invariants, which recovery checks:
//! * segment `i` starts where the log ended when it was created, so the live
//!   entries of segment `i` are exactly `first_index(i)..first_index(i + 1)`;
//! * every record in a segment is at or after its first index (a truncation
//!   reaching before the last segment deletes that segment first);
//! * a segment exists either with a whole, fsynced header or not at all
//!   (created as `*.tmp` and renamed).
//!
//! Durability: [`Wal::append`] and [`Wal::truncate`] only write; [`Wal::sync`]
//! makes everything written since the previous sync durable with one fsync.
//! Deleting segments (truncation across segments, compaction) is made durable
//! before the call returns, one directory fsync per deleted segment, so a crash
//! can never leave a hole in the middle of the log.

use super::durable;
use super::error::StorageError;
use super::metrics::WalMetrics;
use super::record::{self, ENTRY_DATA_BYTES_MAX, Record, SEGMENT_HEADER_BYTES, SegmentHeader};
use super::recovery::{self, Recovered, SegmentFile, SegmentSource};
use super::segment_index::SegmentIndex;
use super::wal_read;
use raft_core::{LogEntry, LogIndex, Term};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Tunables of a [`Wal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Start a new segment once the current one holds this many bytes. Default 64 MiB.
    pub segment_bytes_max: u64,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_bytes_max: 64 << 20,
        }
    }
}

/// A segmented write-ahead log of [`LogEntry`]s.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    /// The live segments, oldest first; never empty.
    segments: Vec<SegmentFile>,
    /// The last segment, open for writing at its end.
    file: File,
    /// The index the next appended entry must have.
    next: LogIndex,
    /// `(first index, term)` of each run of equal terms in `first_index()..next`.
    terms: Vec<(LogIndex, Term)>,
    /// Whether bytes were written since the last fsync of `file`.
    unsynced: bool,
    /// Set after a failed write or fsync: the files' state is unknown.
    poisoned: bool,
    /// Scratch space for encoding records.
    buf: Vec<u8>,
    metrics: Arc<WalMetrics>,
}

struct DirSource;

impl SegmentSource for DirSource {
    fn header(&mut self, path: &Path) -> Result<Vec<u8>, StorageError> {
        let file = File::open(path).map_err(|e| StorageError::io("open", path, e))?;
        let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
        file.take(SEGMENT_HEADER_BYTES as u64)
            .read_to_end(&mut header)
            .map_err(|e| StorageError::io("read", path, e))?;
        Ok(header)
    }
    fn open(&mut self, path: &Path) -> Result<Box<dyn Read + '_>, StorageError> {
        let file = File::open(path).map_err(|e| StorageError::io("open", path, e))?;
        Ok(Box::new(file))
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir` with default options. See [`Wal::open_with`].
    pub fn open(dir: impl AsRef<Path>) -> Result<(Wal, Recovered), StorageError> {
        Wal::open_with(dir, WalOptions::default())
    }

    /// Opens (or creates) the log in `dir` and recovers its entries. See
    /// [`Wal::open_within`]; this loads every entry.
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: WalOptions,
    ) -> Result<(Wal, Recovered), StorageError> {
        Wal::open_within(dir, options, u64::MAX)
    }

    /// Opens (or creates) the log in `dir` and recovers its entries, keeping
    /// in memory only the longest tail whose [`LogEntry::budget_bytes`] fit
    /// `cache_bytes_max`; the entries before it stay on disk, described by
    /// [`Recovered::stored`] and readable with [`Wal::read`].
    ///
    /// Applies the recovery rules of [`recover_from_image`](super::recover_from_image): a torn tail of the last
    /// segment is cut off (ftruncate + fsync), obsolete segments and unfinished
    /// temporary files are deleted, and any other damage is a
    /// [`StorageError::Corrupt`] naming the file and byte offset, with nothing
    /// changed on disk. An empty (or missing) directory is an empty log whose
    /// first entry will be index 1.
    ///
    /// The recovered entries are durable when this returns (the last segment is
    /// fsynced: a previous process may have written without syncing).
    ///
    /// Memory: the tail kept, the description of the rest (a few words per
    /// run of one term, and the membership entries), the sparse index of
    /// [`Wal::read`], and a read buffer of 1 MiB or one record while the
    /// segments are scanned.
    pub fn open_within(
        dir: impl AsRef<Path>,
        options: WalOptions,
        cache_bytes_max: u64,
    ) -> Result<(Wal, Recovered), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let metrics = Arc::new(WalMetrics::default());
        durable::create_dir(&dir, &metrics.fsyncs)?;
        let mut names = Vec::new();
        for item in fs::read_dir(&dir).map_err(|e| StorageError::io("read directory", &dir, e))? {
            let item = item.map_err(|e| StorageError::io("read directory", &dir, e))?;
            if let Ok(name) = item.file_name().into_string() {
                names.push(name);
            }
        }
        let scan = recovery::scan(&dir, &names, &mut DirSource, cache_bytes_max)?;
        let recovered = scan.recovered;

        // Everything below only completes what recovery decided.
        for temp in &recovered.temp_files {
            durable::remove_file_lazily(temp)?;
        }
        for obsolete in &recovered.obsolete_segments {
            durable::remove_file_lazily(obsolete)?;
            metrics.segments_deleted.fetch_add(1, Ordering::Relaxed);
        }
        // Also whenever there is a log: a previous process killed between
        // renaming a new segment into place and fsyncing the directory left
        // it visible but not durable, and its entries are about to be handed
        // out as durable.
        if !scan.segments.is_empty()
            || !recovered.temp_files.is_empty()
            || !recovered.obsolete_segments.is_empty()
        {
            durable::sync_dir(&dir, &metrics.fsyncs)?;
        }
        if let Some(torn) = &recovered.torn_tail {
            tracing::warn!(
                path = %torn.path.display(),
                offset = torn.offset,
                bytes = torn.bytes,
                reason = %torn.reason,
                "cutting off the torn tail of the log"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(&torn.path)
                .map_err(|e| StorageError::io("open", &torn.path, e))?;
            file.set_len(torn.offset)
                .map_err(|e| StorageError::io("truncate", &torn.path, e))?;
            metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
            file.sync_all()
                .map_err(|e| StorageError::io("fsync", &torn.path, e))?;
        }

        let mut segments = scan.segments;
        let file = match segments.last() {
            Some(last) => {
                // The previous process may have written records it never synced
                // (they are still in the page cache). Recovery hands them out as
                // durable, so make them so. Earlier segments were fsynced before
                // the next one was started.
                let file = open_for_append(&last.path)?;
                metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
                file.sync_all()
                    .map_err(|e| StorageError::io("fsync", &last.path, e))?;
                file
            }
            None => {
                let header = SegmentHeader {
                    first_index: recovered.first_index,
                    reset: false,
                };
                let (file, segment) = create_segment(&dir, header, &metrics)?;
                segments.push(segment);
                file
            }
        };
        let mut terms: Vec<(LogIndex, Term)> = recovered
            .stored
            .as_ref()
            .map_or_else(Vec::new, |stored| stored.term_starts.clone());
        for entry in &recovered.entries {
            push_term(&mut terms, entry.index, entry.term);
        }
        let wal = Wal {
            dir,
            options,
            segments,
            file,
            next: LogIndex(recovered.last_index().0 + 1),
            terms,
            unsynced: false,
            poisoned: false,
            buf: Vec::new(),
            metrics,
        };
        Ok((wal, recovered))
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The counters of this log.
    pub fn metrics(&self) -> Arc<WalMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The index of the first entry the log holds (or of the next one, if empty).
    /// Compaction deletes whole segments only, so this may be well before the
    /// index compacted through.
    pub fn first_index(&self) -> LogIndex {
        self.segments[0].first_index
    }

    /// The index of the last entry (`first_index() - 1` when empty).
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.next.0 - 1)
    }

    /// The term of the last entry, if the log holds any.
    pub fn last_term(&self) -> Option<Term> {
        self.term_at(self.last_index())
    }

    /// The term of the entry at `index`, if the log holds it.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index < self.first_index() || index >= self.next {
            return None;
        }
        let run = self.terms.partition_point(|&(start, _)| start <= index);
        self.terms.get(run.checked_sub(1)?).map(|&(_, term)| term)
    }

    /// Reads entries `from..` back: at most `count_max`, stopping before
    /// their [`LogEntry::budget_bytes`] exceed `bytes_max` but at least one
    /// (when `count_max` is not 0); none if the log does not hold `from`.
    ///
    /// Sees every append and truncation made so far, synced or not. Seeks
    /// with a sparse index (see `segment_index.rs`), so it reads at most a
    /// few dozen records, or about 32 KiB, that it does not return. A record
    /// that is not what was written (a checksum mismatch, another index) is
    /// [`StorageError::Corrupt`]. Refused after a failed write, like writes.
    pub fn read(
        &self,
        from: LogIndex,
        count_max: usize,
        bytes_max: u64,
    ) -> Result<Vec<LogEntry>, StorageError> {
        self.check_usable()?;
        let limits = wal_read::Limits {
            from,
            count_max,
            bytes_max,
        };
        let entries = wal_read::read(&self.segments, self.next, limits)?;
        let bytes: usize = entries.iter().map(|e| e.data.len()).sum();
        self.metrics.reads.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .entries_read
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        self.metrics
            .bytes_read
            .fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(entries)
    }

    /// The number of live segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The paths of the live segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Appends `entries`, which must be contiguous and start at `last_index() + 1`.
    ///
    /// Writes them (starting new segments as needed) but does not fsync: call
    /// [`Wal::sync`]. Validates the whole batch before writing any of it.
    pub fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.check_usable()?;
        for (i, entry) in entries.iter().enumerate() {
            let expected = LogIndex(self.next.0.saturating_add(i as u64));
            if entry.index != expected || entry.index.0 == u64::MAX {
                return Err(StorageError::NotContiguous {
                    expected,
                    found: entry.index,
                });
            }
            // Checked here, for the whole batch, so that nothing is written.
            // (An entry's record then fits: see `ENTRY_DATA_BYTES_MAX`.)
            if entry.data.len() > ENTRY_DATA_BYTES_MAX {
                return Err(StorageError::EntryTooLarge {
                    index: entry.index,
                    bytes: entry.data.len() as u64,
                    bytes_max: ENTRY_DATA_BYTES_MAX as u64,
                });
            }
        }
        let result = self.append_checked(entries);
        self.poison_on_error(result)
    }

    fn append_checked(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.buf.clear();
        for entry in entries {
            if self.segment_bytes() + self.buf.len() as u64 >= self.options.segment_bytes_max
                && self.segment_bytes() + self.buf.len() as u64 > SEGMENT_HEADER_BYTES as u64
            {
                self.flush_buf()?;
                self.rotate()?;
            }
            let offset = self.segment_bytes() + self.buf.len() as u64;
            record::encode_entry(entry, &mut self.buf).map_err(|_| {
                StorageError::EntryTooLarge {
                    index: entry.index,
                    bytes: entry.data.len() as u64,
                    bytes_max: ENTRY_DATA_BYTES_MAX as u64,
                }
            })?;
            let n = self.segments.len();
            self.segments[n - 1].index.on_entry(entry.index, offset);
            push_term(&mut self.terms, entry.index, entry.term);
            self.next = entry.index.next();
        }
        self.flush_buf()?;
        self.metrics
            .entries_appended
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Removes every entry at `from` and after. `from` must be within
    /// `first_index()..=last_index() + 1` (the latter removes nothing).
    ///
    /// Segments that hold only removed entries are deleted durably, newest
    /// first; then a truncate record is written (not fsynced) to the segment
    /// that held `from`.
    pub fn truncate(&mut self, from: LogIndex) -> Result<(), StorageError> {
        self.check_usable()?;
        if from < self.first_index() || from > self.next {
            return Err(StorageError::TruncateOutOfRange {
                from,
                first: self.first_index(),
                last: self.last_index(),
            });
        }
        if from == self.next {
            return Ok(());
        }
        let result = self.truncate_checked(from);
        self.poison_on_error(result)
    }

    fn truncate_checked(&mut self, from: LogIndex) -> Result<(), StorageError> {
        let mut reopen = false;
        while self.segments.len() > 1 && self.segments[self.segments.len() - 1].first_index >= from
        {
            let doomed = self.segments.pop().expect("more than one segment");
            durable::remove_file(&doomed.path, &self.metrics.fsyncs)?;
            self.metrics
                .segments_deleted
                .fetch_add(1, Ordering::Relaxed);
            reopen = true;
        }
        if reopen {
            // The now-last segment was fsynced when the next one was started.
            self.file = open_for_append(&self.segments[self.segments.len() - 1].path)?;
            self.unsynced = false;
        }
        self.buf.clear();
        record::encode_record(&Record::Truncate { from }, &mut self.buf)
            .expect("a truncate record is a few bytes");
        self.flush_buf()?;
        let n = self.segments.len();
        self.segments[n - 1].index.on_truncate(from);
        self.next = from;
        let keep = self.terms.partition_point(|&(start, _)| start < from);
        self.terms.truncate(keep);
        Ok(())
    }

    /// Drops the log's prefix through `through`, in whole segments: deletes
    /// every segment whose entries are all at or before `through`, keeping the
    /// segment that holds `through + 1`. When `through` is past the log's last
    /// entry (a snapshot from the leader that is ahead of this log), the whole
    /// log is dropped and the next append must be `through + 1`.
    ///
    /// Deletions are durable when this returns.
    pub fn compact(&mut self, through: LogIndex) -> Result<(), StorageError> {
        self.check_usable()?;
        if through.0 == u64::MAX {
            return Err(StorageError::TruncateOutOfRange {
                from: through,
                first: self.first_index(),
                last: self.last_index(),
            });
        }
        let result = if through >= self.next {
            self.reset(through.next())
        } else {
            self.compact_checked(through)
        };
        self.poison_on_error(result)
    }

    fn compact_checked(&mut self, through: LogIndex) -> Result<(), StorageError> {
        let keep_from = self
            .segments
            .partition_point(|s| s.first_index <= through.next())
            .saturating_sub(1);
        for doomed in self.segments.drain(..keep_from) {
            durable::remove_file(&doomed.path, &self.metrics.fsyncs)?;
            self.metrics
                .segments_deleted
                .fetch_add(1, Ordering::Relaxed);
        }
        let first = self.first_index();
        let run = self
            .terms
            .partition_point(|&(start, _)| start <= first)
            .saturating_sub(1);
        self.terms.drain(..run);
        if let Some(head) = self.terms.first_mut() {
            head.0 = head.0.max(first);
        }
        Ok(())
    }

    /// Starts a new, empty log at `first` (a reset segment), then deletes every
    /// older segment.
    fn reset(&mut self, first: LogIndex) -> Result<(), StorageError> {
        let (file, segment) = create_segment(
            &self.dir,
            SegmentHeader {
                first_index: first,
                reset: true,
            },
            &self.metrics,
        )?;
        let old = std::mem::replace(&mut self.segments, vec![segment]);
        self.file = file;
        self.unsynced = false;
        self.next = first;
        self.terms.clear();
        for doomed in old {
            durable::remove_file_lazily(&doomed.path)?;
            self.metrics
                .segments_deleted
                .fetch_add(1, Ordering::Relaxed);
        }
        durable::sync_dir(&self.dir, &self.metrics.fsyncs)
    }

    /// Makes everything written since the last sync durable, with one fsync.
    /// Does nothing if nothing was written.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        if !self.unsynced {
            return Ok(());
        }
        let result = self.fsync_current();
        if result.is_ok() {
            self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.poison_on_error(result)
    }

    fn fsync_current(&mut self) -> Result<(), StorageError> {
        self.metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
        let path = &self.segments[self.segments.len() - 1].path;
        self.file
            .sync_data()
            .map_err(|e| StorageError::io("fsync", path, e))?;
        self.unsynced = false;
        Ok(())
    }

    /// Starts a new segment at `next`, after making the current one durable (a
    /// non-last segment is never a torn tail, so it must be whole on disk).
    fn rotate(&mut self) -> Result<(), StorageError> {
        if self.unsynced {
            self.fsync_current()?;
        }
        let last = &self.segments[self.segments.len() - 1];
        // If the current segment holds no live entry (everything in it was
        // truncated), the new one has the same first index: it replaces it
        // (atomically, by rename). No reset flag is needed: any segment a reset
        // made obsolete was deleted durably before the reset returned.
        let header = SegmentHeader {
            first_index: self.next,
            reset: false,
        };
        let (file, segment) = create_segment(&self.dir, header, &self.metrics)?;
        if last.first_index == self.next {
            let n = self.segments.len();
            self.segments[n - 1] = segment;
        } else {
            self.segments.push(segment);
        }
        self.file = file;
        Ok(())
    }

    fn segment_bytes(&self) -> u64 {
        self.segments[self.segments.len() - 1].bytes
    }

    fn flush_buf(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let n = self.segments.len();
        let segment = &mut self.segments[n - 1];
        self.file
            .write_all(&self.buf)
            .map_err(|e| StorageError::io("write", &segment.path, e))?;
        segment.bytes += self.buf.len() as u64;
        self.metrics
            .bytes_written
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn poison_on_error<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &result {
            tracing::error!(dir = %self.dir.display(), error = %e, "write-ahead log failed; refusing further writes");
            self.poisoned = true;
        }
        result
    }
}

fn push_term(terms: &mut Vec<(LogIndex, Term)>, index: LogIndex, term: Term) {
    if terms.last().is_none_or(|&(_, last)| last != term) {
        terms.push((index, term));
    }
}

fn open_for_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))
}

fn create_segment(
    dir: &Path,
    header: SegmentHeader,
    metrics: &WalMetrics,
) -> Result<(File, SegmentFile), StorageError> {
    let name = recovery::segment_file_name(header.first_index);
    let (file, path) = durable::write_atomically(dir, &name, &header.encode(), &metrics.fsyncs)?;
    metrics.segments_created.fetch_add(1, Ordering::Relaxed);
    Ok((
        file,
        SegmentFile {
            first_index: header.first_index,
            path,
            bytes: SEGMENT_HEADER_BYTES as u64,
            index: SegmentIndex::default(),
        },
    ))
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
