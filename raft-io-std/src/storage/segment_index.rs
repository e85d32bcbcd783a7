//! A sparse index of one segment: where some of its live entries start, so a
//! range read seeks near the entry it wants instead of reading the segment
//! from its header.
//!
//! A *checkpoint* `(index, offset)` says that the live record of entry
//! `index` (the one no later truncation removed) starts at byte `offset`.
//! Checkpoints are kept for
//! * the first entry of the segment;
//! * the first entry appended after a truncation (its record follows dead
//!   records and the truncate record, not the previous live entry);
//! * an entry [`CHECKPOINT_ENTRIES`] after the previous checkpoint, or the
//!   first whose record starts [`CHECKPOINT_BYTES`] or more after it.
//!
//! So between a checkpoint and the next live entry without one, the segment
//! holds exactly the live entries in between, back to back (a truncation
//! between them would have left a checkpoint on its first re-appended entry).
//! A reader seeks to the last checkpoint at or before the entry it wants,
//! then reads forward, jumping to the next checkpoint's offset when the entry
//! it expects next has one. It reads at most `CHECKPOINT_ENTRIES - 1`
//! records, or about `CHECKPOINT_BYTES` plus one record, that it does not
//! return.
//!
//! Cost: 16 bytes per checkpoint, so at most 16 bytes per
//! `CHECKPOINT_ENTRIES` entries (half a byte per entry) for small entries and
//! 16 bytes per `CHECKPOINT_BYTES` of log (or per entry, for entries bigger
//! than that); plus one checkpoint per truncation still in the segment.

use raft_core::LogIndex;

/// The most entries between two checkpoints.
pub(crate) const CHECKPOINT_ENTRIES: u64 = 32;

/// Record bytes after a checkpoint past which the next entry gets one.
pub(crate) const CHECKPOINT_BYTES: u64 = 32 << 10;

/// The sparse index of one segment's live entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    /// `(index, offset)` of some live entries, both strictly increasing.
    checkpoints: Vec<(LogIndex, u64)>,
    /// Whether the next entry follows a truncation.
    after_truncate: bool,
}

impl SegmentIndex {
    /// Records that entry `index`'s record was written at `offset`.
    /// Entries come in the order they were written.
    pub(crate) fn on_entry(&mut self, index: LogIndex, offset: u64) {
        let wanted = match self.checkpoints.last() {
            None => true,
            Some(&(last, last_offset)) => {
                assert!(
                    index > last && offset > last_offset,
                    "entry {index} at byte {offset} after checkpoint {last} at byte {last_offset}"
                );
                self.after_truncate
                    || index.0 - last.0 >= CHECKPOINT_ENTRIES
                    || offset - last_offset >= CHECKPOINT_BYTES
            }
        };
        if wanted {
            self.checkpoints.push((index, offset));
        }
        self.after_truncate = false;
    }

    /// Records a truncation of every entry at `from` and after.
    pub(crate) fn on_truncate(&mut self, from: LogIndex) {
        let keep = self.checkpoints.partition_point(|&(index, _)| index < from);
        self.checkpoints.truncate(keep);
        self.after_truncate = true;
    }

    /// The last checkpoint at or before `index`, if any.
    pub(crate) fn seek(&self, index: LogIndex) -> Option<(LogIndex, u64)> {
        let at = self.checkpoints.partition_point(|&(i, _)| i <= index);
        at.checked_sub(1).map(|at| self.checkpoints[at])
    }

    /// The offset of entry `index`'s record, if it has a checkpoint.
    pub(crate) fn checkpoint(&self, index: LogIndex) -> Option<u64> {
        self.checkpoints
            .binary_search_by_key(&index, |&(i, _)| i)
            .ok()
            .map(|at| self.checkpoints[at].1)
    }

    /// How many checkpoints it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.checkpoints.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_entries_get_one_checkpoint_per_stride() {
        let mut index = SegmentIndex::default();
        // 40 KB of records: the stride holds past the first CHECKPOINT_BYTES
        // of the segment too, so the index stays at half a byte per entry.
        for i in 1..=2000u64 {
            index.on_entry(LogIndex(i), 28 + (i - 1) * 20);
        }
        assert_eq!(index.len(), 63, "1, 33, 65, ..., 1985");
        assert_eq!(index.seek(LogIndex(40)), Some((LogIndex(33), 28 + 32 * 20)));
        assert_eq!(index.seek(LogIndex(0)), None);
        assert_eq!(index.checkpoint(LogIndex(65)), Some(28 + 64 * 20));
        assert_eq!(index.checkpoint(LogIndex(66)), None);
    }

    #[test]
    fn big_entries_get_a_checkpoint_each() {
        let mut index = SegmentIndex::default();
        let big = CHECKPOINT_BYTES + 1;
        for i in 1..=5u64 {
            index.on_entry(LogIndex(i), 28 + (i - 1) * big);
        }
        assert_eq!(index.len(), 5);
    }

    #[test]
    fn the_first_entry_after_a_truncation_gets_a_checkpoint() {
        let mut index = SegmentIndex::default();
        for i in 1..=10u64 {
            index.on_entry(LogIndex(i), i * 10);
        }
        index.on_truncate(LogIndex(5));
        index.on_entry(LogIndex(5), 200);
        index.on_entry(LogIndex(6), 210);
        assert_eq!(index.checkpoint(LogIndex(5)), Some(200));
        assert_eq!(index.checkpoint(LogIndex(6)), None);
        assert_eq!(index.seek(LogIndex(9)), Some((LogIndex(5), 200)));
        index.on_truncate(LogIndex(1));
        assert_eq!(index.len(), 0);
        assert_eq!(index.seek(LogIndex(5)), None);
    }
}
