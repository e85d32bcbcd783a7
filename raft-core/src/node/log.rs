//! The node's in-memory view of its log: the entries after the compaction
//! point, which prefix of them is durable, and the term of every entry.

use crate::entry::LogEntry;
use crate::types::{LogIndex, Term};
use std::collections::VecDeque;

/// Entries `base_index + 1 ..= last_index`, with `base_term` the term of the
/// entry at `base_index` (compacted away, covered by a snapshot, or index 0).
#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    base_index: LogIndex,
    base_term: Term,
    entries: VecDeque<LogEntry>,
    /// Every entry up to here is durable (and is the entry in memory).
    durable: LogIndex,
}

impl RaftLog {
    /// A log whose entries start after `(base_index, base_term)`; all durable.
    pub(crate) fn new(base_index: LogIndex, base_term: Term, entries: Vec<LogEntry>) -> RaftLog {
        let log = RaftLog {
            base_index,
            base_term,
            entries: entries.into(),
            durable: LogIndex(0),
        };
        let durable = log.last_index();
        let log = RaftLog { durable, ..log };
        log.check();
        log
    }

    pub(crate) fn base_index(&self) -> LogIndex {
        self.base_index
    }
    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.base_index.0 + self.entries.len() as u64)
    }
    pub(crate) fn last_term(&self) -> Term {
        self.entries.back().map_or(self.base_term, |e| e.term)
    }
    pub(crate) fn durable(&self) -> LogIndex {
        self.durable
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.last_index().0 == 0
    }

    /// The term at `index`, if the log knows it (the base counts; compacted entries do not).
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        self.get(index).map(|e| e.term)
    }

    pub(crate) fn get(&self, index: LogIndex) -> Option<&LogEntry> {
        if index <= self.base_index {
            return None;
        }
        self.entries.get((index.0 - self.base_index.0 - 1) as usize)
    }

    /// Up to `count_max` entries from `from` on, stopping before `bytes_max` is
    /// exceeded (at least one entry if any exists).
    pub(crate) fn slice(&self, from: LogIndex, count_max: usize, bytes_max: u64) -> Vec<LogEntry> {
        assert!(
            from > self.base_index,
            "slice from {from} but the log starts after {}",
            self.base_index
        );
        let start = (from.0 - self.base_index.0 - 1) as usize;
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in self.entries.iter().skip(start).take(count_max) {
            bytes += e.budget_bytes();
            if !out.is_empty() && bytes > bytes_max {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Appends entries that continue the log exactly.
    pub(crate) fn append(&mut self, entries: &[LogEntry]) {
        for e in entries {
            assert_eq!(
                e.index,
                self.last_index().next(),
                "append must continue the log"
            );
            assert!(
                e.term >= self.last_term(),
                "terms in a log never decrease: {} after {}",
                e.term,
                self.last_term()
            );
            self.entries.push_back(e.clone());
        }
    }

    /// Drops every entry at `from` and after.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) {
        assert!(
            from > self.base_index,
            "truncating at {from} would cut into the compacted prefix {}",
            self.base_index
        );
        let keep = (from.0 - self.base_index.0 - 1) as usize;
        self.entries.truncate(keep);
        if self.durable >= from {
            self.durable = from.prev();
        }
    }

    /// Forgets entries up to `through` (a snapshot covers them).
    pub(crate) fn compact_through(&mut self, through: LogIndex) {
        if through <= self.base_index {
            return;
        }
        assert!(
            through <= self.last_index(),
            "compacting through {through} past the last index"
        );
        let term = self.term_at(through).expect("entry inside the log");
        let drop = (through.0 - self.base_index.0) as usize;
        self.entries.drain(..drop);
        self.base_index = through;
        self.base_term = term;
        self.durable = self.durable.max(through);
    }

    /// Replaces the whole log by a snapshot point.
    pub(crate) fn reset_to(&mut self, index: LogIndex, term: Term) {
        self.entries.clear();
        self.base_index = index;
        self.base_term = term;
        self.durable = index;
    }

    /// Records that the driver made everything up to `(index, term)` durable.
    /// Returns whether the durable index moved.
    pub(crate) fn mark_durable(&mut self, index: LogIndex, term: Term) -> bool {
        // A report for an entry that a later truncation replaced says nothing
        // about the entry now at that index: ignore it.
        if index <= self.durable || self.term_at(index) != Some(term) {
            return false;
        }
        self.durable = index;
        true
    }

    /// The largest index `i <= at_most` (and `>= floor`) whose term is at most
    /// `term`: no entry with a larger term can match a follower whose entry at
    /// or after `i` has `term`.
    pub(crate) fn last_index_with_term_at_most(
        &self,
        at_most: LogIndex,
        term: Term,
        floor: LogIndex,
    ) -> LogIndex {
        let mut i = at_most.min(self.last_index());
        while i > floor {
            match self.term_at(i) {
                Some(t) if t <= term => return i,
                Some(_) => i = i.prev(),
                None => return i, // compacted: the caller sends a snapshot
            }
        }
        floor
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter()
    }

    /// Asserts the log's structure.
    /// Asserts the log's structure in O(1): its ends agree with the base and
    /// the durable index. (`append`, `truncate_from` and `compact_through`
    /// assert contiguity as they change the log; `check` walks all of it.)
    pub(crate) fn check_ends(&self) {
        if let (Some(first), Some(last)) = (self.entries.front(), self.entries.back()) {
            assert_eq!(
                first.index,
                self.base_index.next(),
                "the log does not start after its base"
            );
            assert!(
                first.term >= self.base_term,
                "log terms decrease after the base"
            );
            assert_eq!(
                last.index.0 - first.index.0 + 1,
                self.entries.len() as u64,
                "log entries are not contiguous"
            );
        }
        assert!(
            self.durable <= self.last_index(),
            "durable {} past last {}",
            self.durable,
            self.last_index()
        );
    }

    /// Asserts the whole log's structure, entry by entry.
    pub(crate) fn check(&self) {
        let mut expected = self.base_index.next();
        let mut term = self.base_term;
        for e in &self.entries {
            assert_eq!(e.index, expected, "log entries are not contiguous");
            assert!(e.term >= term, "log terms decrease at {}", e.index);
            expected = expected.next();
            term = e.term;
        }
        assert!(
            self.durable <= self.last_index(),
            "durable {} past last {}",
            self.durable,
            self.last_index()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;
    use bytes::Bytes;

    fn e(index: u64, term: u64) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Command,
            data: Bytes::new(),
        }
    }

    #[test]
    fn truncation_pulls_durable_back_and_stale_persist_reports_are_ignored() {
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]);
        log.append(&[e(1, 1), e(2, 1), e(3, 1)]);
        log.truncate_from(LogIndex(2));
        log.append(&[e(2, 2)]);
        assert!(!log.mark_durable(LogIndex(3), Term(1)), "entry 3 is gone");
        assert!(
            !log.mark_durable(LogIndex(2), Term(1)),
            "entry 2 was replaced"
        );
        assert!(log.mark_durable(LogIndex(2), Term(2)));
        assert_eq!(log.durable(), LogIndex(2));
    }

    #[test]
    fn compaction_keeps_terms_of_the_base() {
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![e(1, 1), e(2, 2), e(3, 2)]);
        log.compact_through(LogIndex(2));
        assert_eq!(log.term_at(LogIndex(2)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(1)), None);
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.slice(LogIndex(3), 10, 1 << 20).len(), 1);
    }

    #[test]
    fn conflict_search_skips_entries_of_larger_terms() {
        let log = RaftLog::new(
            LogIndex(0),
            Term(0),
            vec![e(1, 1), e(2, 1), e(3, 3), e(4, 3)],
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(4), Term(2), LogIndex(0)),
            LogIndex(2)
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(4), Term(3), LogIndex(0)),
            LogIndex(4)
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(4), Term(0), LogIndex(1)),
            LogIndex(1)
        );
    }
}
