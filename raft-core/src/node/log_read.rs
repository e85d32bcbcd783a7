//! Entries read back from the driver's storage: the log keeps at most
//! `log_cache_bytes_max` bytes of durable entries in memory, and a stream or
//! the apply path that needs older ones asks with `Action::ReadLog`. Each
//! asker has at most one read outstanding; an answer that arrives after the
//! asker moved on (a stream closed, a compaction, a snapshot installed) is
//! dropped, and the asker asks again if it still needs entries.

use super::Node;
use crate::action::{Action, LogReader};
use crate::entries::Entries;
use crate::entry::LogEntry;
use crate::types::LogIndex;

/// How many of `entries`, from the first, fit `count_max` and `bytes_max`
/// (at least one, as [`super::RaftLog::slice`] counts).
pub(crate) fn fitting(entries: &Entries, count_max: usize, bytes_max: u64) -> usize {
    let mut bytes = 0;
    let mut count = 0;
    for e in entries.iter().take(count_max) {
        bytes += e.budget_bytes();
        if count > 0 && bytes > bytes_max {
            break;
        }
        count += 1;
    }
    count
}

impl Node {
    pub(crate) fn on_log_read(&mut self, reader: LogReader, from: LogIndex, entries: Entries) {
        match reader {
            LogReader::Stream { peer, stream } => {
                self.on_stream_log_read(peer, stream, from, entries)
            }
            LogReader::Apply => self.on_apply_log_read(from, entries),
        }
    }

    /// The entries of a read answer up to `through` and before the cache
    /// (the rest is in memory, and may be newer than the driver's durable
    /// log: a truncation and its replacement can still be on their way to
    /// the disk). An answer from `from` on that the log no longer holds is
    /// empty. The driver's storage holding other entries than the log it
    /// reported durable is a broken driver: the node cannot go on safely.
    pub(crate) fn checked_read(
        &self,
        from: LogIndex,
        entries: Entries,
        through: LogIndex,
    ) -> Entries {
        let through = through.min(self.log.cache_start().prev());
        if from <= self.log.base_index() || from > through {
            return Entries::new();
        }
        let mut expected = from;
        let mut count = 0;
        for e in entries.iter() {
            if e.index > through {
                break;
            }
            assert!(
                e.index == expected && Some(e.term) == self.log.term_at(e.index),
                "node {}: ReadLog from {from} answered with entry {}/{} where the log \
                 has {expected}/{:?}: the driver's storage disagrees with what it reported durable",
                self.id(),
                e.index,
                e.term,
                self.log.term_at(expected),
            );
            expected = expected.next();
            count += 1;
        }
        if count == entries.len() {
            entries
        } else {
            entries.slice(0..count)
        }
    }

    /// The next committed entries to apply are not in memory: ask for them,
    /// unless a read is already on its way.
    pub(crate) fn read_for_apply(&mut self, from: LogIndex) {
        if self.apply_reading.is_some() {
            return;
        }
        self.apply_reading = Some(from);
        // Only the evicted entries: they are durable, and the driver's log
        // may not hold the cached ones yet.
        let through = self.commit.min(self.log.cache_start().prev());
        let count = (through.0 + 1 - from.0) as usize;
        self.emit(Action::ReadLog {
            reader: LogReader::Apply,
            from,
            count_max: count.min(self.opts.batch_entries_max),
            bytes_max: self.opts.batch_bytes_max,
        });
    }

    fn on_apply_log_read(&mut self, from: LogIndex, entries: Entries) {
        if self.apply_reading != Some(from) {
            return; // a snapshot installed meanwhile replaced it
        }
        self.apply_reading = None;
        if self.installing.is_none() && from == self.applied.next() {
            let entries = self.checked_read(from, entries, self.commit);
            if !entries.is_empty() {
                self.apply_batch(entries);
            }
        }
        self.apply_committed();
    }

    /// Hands `batch`, the entries right after the applied index, to the driver.
    pub(crate) fn apply_batch(&mut self, batch: Entries) {
        self.applied = batch.last().expect("non-empty batch").index;
        self.log_since_snapshot.entries += batch.len() as u64;
        self.log_since_snapshot.bytes += batch.iter().map(LogEntry::budget_bytes).sum::<u64>();
        self.emit(Action::Apply(batch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;
    use crate::node::RaftLog;
    use crate::types::Term;
    use bytes::Bytes;

    /// A chunk of entries read back from storage is cut as a chunk from the
    /// cache would be: the batch limits do not depend on where entries were.
    #[test]
    fn a_read_answer_is_cut_to_the_batch_limits_as_a_slice_of_the_cache() {
        let entries: Vec<LogEntry> = (1..=4)
            .map(|i| LogEntry {
                index: LogIndex(i),
                term: Term(1),
                kind: EntryKind::Command,
                data: Bytes::from(vec![0; i as usize]),
            })
            .collect();
        let log = RaftLog::new(LogIndex(0), Term(0), entries.clone());
        let read = Entries::from(entries);
        let total: u64 = read.iter().map(LogEntry::budget_bytes).sum();
        for count_max in 1..=5 {
            for bytes_max in 0..=total + 1 {
                assert_eq!(
                    fitting(&read, count_max, bytes_max),
                    log.slice(LogIndex(1), count_max, bytes_max).len(),
                    "{count_max} entries, {bytes_max} bytes"
                );
            }
        }
        assert_eq!(fitting(&read, 10, 0), 1, "at least one entry");
        assert_eq!(fitting(&read, 10, u64::MAX), 4);
    }
}
