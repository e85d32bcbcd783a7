//! Counters of the log's work, readable from any thread while it runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a log's work, shared with whoever wants to read them.
#[derive(Debug, Default)]
pub struct WalMetrics {
    pub(crate) fsyncs: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) entries_appended: AtomicU64,
    pub(crate) segments_created: AtomicU64,
    pub(crate) segments_deleted: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) entries_read: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
}

impl WalMetrics {
    /// Every fsync issued, of segment files and of the directory.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
    /// Calls of [`super::Wal::sync`] that had something to make durable (one fsync each).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
    /// Record bytes written.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }
    /// Entries appended.
    pub fn entries_appended(&self) -> u64 {
        self.entries_appended.load(Ordering::Relaxed)
    }
    /// Segment files created.
    pub fn segments_created(&self) -> u64 {
        self.segments_created.load(Ordering::Relaxed)
    }
    /// Segment files deleted (by truncation, compaction or recovery).
    pub fn segments_deleted(&self) -> u64 {
        self.segments_deleted.load(Ordering::Relaxed)
    }
    /// Calls of [`super::Wal::read`] that succeeded (entries read back for a
    /// node that no longer held them in memory).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    /// Entries those reads returned.
    pub fn entries_read(&self) -> u64 {
        self.entries_read.load(Ordering::Relaxed)
    }
    /// The payload (`LogEntry::data`) bytes of those entries.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}
