//! A node's in-memory disk: what survives a crash, and what does not yet.

use crate::{HardState, LogEntry, LogIndex, SnapshotMeta, Term};
use bytes::Bytes;

/// What a host does with the entries its node appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Durable at once: the `LogPersisted` report is queued right after the
    /// append.
    Immediately,
    /// Held in [`Disk::pending`] until the test calls
    /// [`Cluster::persist`](super::Cluster::persist); a crash loses them.
    Manually,
}

/// One node's disk. The fields are public so that a test can read what a node
/// made durable, or rewrite what a crashed node will restart from.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// The last hard state the node persisted (written synchronously, as the
    /// driver contract requires).
    pub hard_state: HardState,
    /// The durable log, ascending and contiguous; it starts after the
    /// snapshot once the node compacted.
    pub entries: Vec<LogEntry>,
    /// The latest snapshot: its meta and its bytes.
    pub snapshot: Option<(SnapshotMeta, Bytes)>,
    /// Appended but not yet durable (with [`Persist::Manually`]).
    pub pending: Vec<LogEntry>,
    /// The snapshot being received, chunk by chunk.
    pub incoming: Vec<u8>,
}

impl Disk {
    /// A disk holding only `hard_state`.
    pub fn new(hard_state: HardState) -> Disk {
        Disk {
            hard_state,
            ..Disk::default()
        }
    }

    /// The durable entries from index `from` on, at most `count_max` of
    /// them, stopping before their bytes pass `bytes_max` (at least one):
    /// what a driver reads back from its log for
    /// [`Action::ReadLog`](crate::Action::ReadLog).
    pub fn read(&self, from: LogIndex, count_max: usize, bytes_max: u64) -> &[LogEntry] {
        let start = self.entries.partition_point(|e| e.index < from);
        let mut end = self.entries.len().min(start.saturating_add(count_max));
        let mut bytes = 0;
        for (i, e) in self.entries[start..end].iter().enumerate() {
            bytes += e.budget_bytes();
            if i > 0 && bytes > bytes_max {
                end = start + i;
                break;
            }
        }
        &self.entries[start..end]
    }

    /// Makes the pending entries up to index `through` durable; returns the
    /// last one made durable, the position a `LogPersisted` report names.
    pub(super) fn persist_through(&mut self, through: LogIndex) -> Option<(LogIndex, Term)> {
        let count = self
            .pending
            .iter()
            .take_while(|e| e.index <= through)
            .count();
        if count == 0 {
            return None;
        }
        let first = self.pending[0].index;
        // A rewritten suffix replaces what the disk held from its first index.
        self.entries.retain(|e| e.index < first);
        self.entries.extend(self.pending.drain(..count));
        self.entries.last().map(|e| (e.index, e.term))
    }

    /// Forgets the appends from index `from` on, durable or not.
    pub(super) fn truncate(&mut self, from: LogIndex) {
        self.entries.retain(|e| e.index < from);
        self.pending.retain(|e| e.index < from);
    }

    /// Drops what a crash loses: appends not yet durable and a snapshot not
    /// yet installed.
    pub(super) fn lose_unsynced(&mut self) {
        self.pending.clear();
        self.incoming.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntryKind, Term};

    fn entry(index: u64) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(1),
            kind: EntryKind::Command,
            data: Bytes::new(),
        }
    }

    #[test]
    fn read_returns_the_durable_entries_from_an_index_up_to_a_count() {
        let disk = Disk {
            entries: (3..=7).map(entry).collect(),
            ..Disk::default()
        };
        let indexes = |s: &[LogEntry]| s.iter().map(|e| e.index.0).collect::<Vec<_>>();
        assert_eq!(indexes(disk.read(LogIndex(4), 2, u64::MAX)), [4, 5]);
        assert_eq!(
            indexes(disk.read(LogIndex(1), 10, u64::MAX)),
            [3, 4, 5, 6, 7]
        );
        assert_eq!(indexes(disk.read(LogIndex(7), usize::MAX, u64::MAX)), [7]);
        assert!(disk.read(LogIndex(8), 1, u64::MAX).is_empty());
    }

    #[test]
    fn a_truncation_forgets_the_appends_from_its_index_durable_or_not() {
        let mut disk = Disk {
            entries: (1..=4).map(entry).collect(),
            pending: (5..=7).map(entry).collect(),
            ..Disk::default()
        };
        disk.truncate(LogIndex(6));
        assert_eq!(disk.entries, (1..=4).map(entry).collect::<Vec<_>>());
        assert_eq!(disk.pending, vec![entry(5)]);
        disk.truncate(LogIndex(3));
        assert_eq!(disk.entries, vec![entry(1), entry(2)]);
        assert!(disk.pending.is_empty());
    }

    #[test]
    fn persisting_makes_a_prefix_of_the_pending_entries_durable() {
        let mut disk = Disk {
            entries: vec![entry(1), entry(2)],
            pending: vec![entry(2), entry(3), entry(4)],
            ..Disk::default()
        };
        assert_eq!(
            disk.persist_through(LogIndex(3)),
            Some((LogIndex(3), Term(1)))
        );
        assert_eq!(disk.entries.len(), 3, "entry 2 rewritten, 3 added");
        assert_eq!(disk.pending, vec![entry(4)]);
        assert_eq!(
            disk.persist_through(LogIndex(3)),
            None,
            "nothing up to 3 is left"
        );
    }
}
