//! The node's in-memory view of its log: the entries after the compaction
//! point, which prefix of them is durable, and the term of every entry.
//!
//! The entries are kept as the runs they were appended in (a leader's batch
//! of proposals, a follower's chunk), each an [`Entries`] shared with the
//! actions and frames that carry it, so appending, streaming and applying a
//! batch copies no entry.

use crate::entries::Entries;
use crate::entry::LogEntry;
use crate::types::{LogIndex, Term};
use std::collections::VecDeque;

/// Entries `base_index + 1 ..= last_index`, with `base_term` the term of the
/// entry at `base_index` (compacted away, covered by a snapshot, or index 0).
#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    base_index: LogIndex,
    base_term: Term,
    /// Non-empty runs of consecutive entries, in order, the first starting
    /// right after the base.
    runs: VecDeque<Entries>,
    /// The index of the last entry (the base when there is none).
    last_index: LogIndex,
    /// Every entry up to here is durable (and is the entry in memory).
    durable: LogIndex,
}

impl RaftLog {
    /// A log whose entries start after `(base_index, base_term)`; all durable.
    pub(crate) fn new(base_index: LogIndex, base_term: Term, entries: Vec<LogEntry>) -> RaftLog {
        let last_index = LogIndex(base_index.0 + entries.len() as u64);
        let entries = Entries::from(entries);
        let log = RaftLog {
            base_index,
            base_term,
            runs: (!entries.is_empty())
                .then_some(entries)
                .into_iter()
                .collect(),
            last_index,
            durable: last_index,
        };
        log.check();
        log
    }

    pub(crate) fn base_index(&self) -> LogIndex {
        self.base_index
    }
    pub(crate) fn last_index(&self) -> LogIndex {
        self.last_index
    }
    pub(crate) fn last_term(&self) -> Term {
        self.runs
            .back()
            .and_then(|r| r.last())
            .map_or(self.base_term, |e| e.term)
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

    /// The position of the run holding `index` (which the log must hold).
    fn run_of(&self, index: LogIndex) -> usize {
        debug_assert!(index > self.base_index && index <= self.last_index);
        // Most lookups are of recent entries: try the last run first.
        let last = self.runs.len() - 1;
        if self.runs[last][0].index <= index {
            return last;
        }
        self.runs.partition_point(|r| r[0].index <= index) - 1
    }

    pub(crate) fn get(&self, index: LogIndex) -> Option<&LogEntry> {
        if index <= self.base_index || index > self.last_index {
            return None;
        }
        let run = &self.runs[self.run_of(index)];
        Some(&run[(index.0 - run[0].index.0) as usize])
    }

    /// Up to `count_max` entries from `from` on, stopping before `bytes_max` is
    /// exceeded (at least one entry if any exists). Within one run they share
    /// its allocation; entries from several runs are gathered into one new one.
    pub(crate) fn slice(&self, from: LogIndex, count_max: usize, bytes_max: u64) -> Entries {
        assert!(
            from > self.base_index,
            "slice from {from} but the log starts after {}",
            self.base_index
        );
        if from > self.last_index || count_max == 0 {
            return Entries::new();
        }
        let first_run = self.run_of(from);
        let skip = (from.0 - self.runs[first_run][0].index.0) as usize;
        // Count what fits, run by run.
        let mut count = 0;
        let mut bytes = 0;
        'runs: for run in self.runs.range(first_run..) {
            let start = if count == 0 { skip } else { 0 };
            for e in &run[start..] {
                bytes += e.budget_bytes();
                if count == count_max || (count > 0 && bytes > bytes_max) {
                    break 'runs;
                }
                count += 1;
            }
        }
        let run = &self.runs[first_run];
        if skip + count <= run.len() {
            return run.slice(skip..skip + count);
        }
        // `(0..count).map(..)` knows its length: one allocation.
        let (mut r, mut i) = (first_run, skip);
        (0..count)
            .map(|_| {
                if i == self.runs[r].len() {
                    (r, i) = (r + 1, 0);
                }
                i += 1;
                self.runs[r][i - 1].clone()
            })
            .collect()
    }

    /// Appends entries that continue the log exactly, keeping them as one run.
    pub(crate) fn append(&mut self, entries: Entries) {
        let mut term = self.last_term();
        for e in &entries {
            assert_eq!(
                e.index,
                self.last_index.next(),
                "append must continue the log"
            );
            assert!(
                e.term >= term,
                "terms in a log never decrease: {} after {term}",
                e.term,
            );
            term = e.term;
            self.last_index = e.index;
        }
        if !entries.is_empty() {
            self.runs.push_back(entries);
        }
    }

    /// Drops every entry at `from` and after.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) {
        assert!(
            from > self.base_index,
            "truncating at {from} would cut into the compacted prefix {}",
            self.base_index
        );
        if from <= self.last_index {
            let r = self.run_of(from);
            let keep = (from.0 - self.runs[r][0].index.0) as usize;
            self.runs.truncate(r + 1);
            if keep == 0 {
                self.runs.pop_back();
            } else {
                self.runs[r] = self.runs[r].slice(0..keep);
            }
            self.last_index = from.prev();
        }
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
        while let Some(run) = self.runs.front_mut() {
            let last = run.last().expect("runs are not empty").index;
            if last <= through {
                self.runs.pop_front();
            } else {
                if run[0].index <= through {
                    *run = run.slice_from((through.0 - run[0].index.0 + 1) as usize);
                }
                break;
            }
        }
        self.base_index = through;
        self.base_term = term;
        self.durable = self.durable.max(through);
    }

    /// Replaces the whole log by a snapshot point.
    pub(crate) fn reset_to(&mut self, index: LogIndex, term: Term) {
        self.runs.clear();
        self.base_index = index;
        self.base_term = term;
        self.last_index = index;
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
        self.runs.iter().flat_map(|r| r.iter())
    }

    /// Asserts the log's structure in O(1): its ends agree with the base and
    /// the durable index. (`append`, `truncate_from` and `compact_through`
    /// assert contiguity as they change the log; `check` walks all of it.)
    pub(crate) fn check_ends(&self) {
        let first = self.runs.front().and_then(|r| r.first());
        let last = self.runs.back().and_then(|r| r.last());
        if let (Some(first), Some(last)) = (first, last) {
            assert_eq!(
                first.index,
                self.base_index.next(),
                "the log does not start after its base"
            );
            assert!(
                first.term >= self.base_term,
                "log terms decrease after the base"
            );
            assert_eq!(last.index, self.last_index, "the log's last index is stale");
        } else {
            assert_eq!(
                self.last_index, self.base_index,
                "an empty log ends at its base"
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
        assert!(
            self.runs.iter().all(|r| !r.is_empty()),
            "an empty run in the log"
        );
        for e in self.iter() {
            assert_eq!(e.index, expected, "log entries are not contiguous");
            assert!(e.term >= term, "log terms decrease at {}", e.index);
            expected = expected.next();
            term = e.term;
        }
        assert_eq!(
            expected.prev(),
            self.last_index,
            "the log's last index is stale"
        );
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

    fn run(entries: &[(u64, u64)]) -> Entries {
        entries
            .iter()
            .map(|&(index, term)| e(index, term))
            .collect()
    }

    fn indexes(entries: &Entries) -> Vec<u64> {
        entries.iter().map(|e| e.index.0).collect()
    }

    #[test]
    fn a_slice_within_one_run_shares_it_and_one_across_runs_gathers_them() {
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]);
        let first = run(&[(1, 1), (2, 1), (3, 1)]);
        log.append(first.clone());
        log.append(run(&[(4, 1)]));
        log.append(run(&[(5, 2), (6, 2)]));
        let within = log.slice(LogIndex(2), 2, u64::MAX);
        assert_eq!(indexes(&within), [2, 3]);
        assert!(
            std::ptr::eq(&within[0], &first[1]),
            "a slice within a run copied it"
        );
        assert_eq!(
            indexes(&log.slice(LogIndex(2), 10, u64::MAX)),
            [2, 3, 4, 5, 6]
        );
        assert_eq!(indexes(&log.slice(LogIndex(3), 3, u64::MAX)), [3, 4, 5]);
        // The byte limit stops at a run's edge as well as inside one.
        let one = e(1, 1).budget_bytes();
        assert_eq!(indexes(&log.slice(LogIndex(3), 10, 2 * one)), [3, 4]);
        assert_eq!(indexes(&log.slice(LogIndex(1), 10, one)), [1]);
        assert_eq!(
            indexes(&log.slice(LogIndex(6), 10, 0)),
            [6],
            "at least one entry"
        );
        assert!(log.slice(LogIndex(7), 10, u64::MAX).is_empty());
        for i in 1..=6 {
            assert_eq!(log.get(LogIndex(i)).map(|e| e.index), Some(LogIndex(i)));
        }
        assert_eq!(log.get(LogIndex(7)), None);
        log.check();
    }

    #[test]
    fn truncating_or_compacting_inside_a_run_keeps_its_other_part() {
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]);
        log.append(run(&[(1, 1), (2, 1), (3, 1)]));
        log.append(run(&[(4, 1), (5, 1), (6, 1)]));
        log.truncate_from(LogIndex(5));
        assert_eq!(log.last_index(), LogIndex(4));
        log.append(run(&[(5, 2)]));
        log.compact_through(LogIndex(2));
        assert_eq!(log.iter().map(|e| e.index.0).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(log.term_at(LogIndex(5)), Some(Term(2)));
        log.truncate_from(LogIndex(4));
        log.compact_through(LogIndex(3));
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.iter().count(), 0);
        log.check();
        log.check_ends();
    }

    #[test]
    fn truncation_pulls_durable_back_and_stale_persist_reports_are_ignored() {
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]);
        log.append(run(&[(1, 1), (2, 1), (3, 1)]));
        log.truncate_from(LogIndex(2));
        log.append(run(&[(2, 2)]));
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
