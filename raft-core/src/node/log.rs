//! The node's view of its log: the entries after the compaction point, which
//! prefix of them is durable, the term of every entry, and a cache of the
//! most recent entries' payloads, bounded in bytes.
//!
//! The entries in memory are kept as the runs they were appended in (a
//! leader's batch of proposals, a follower's chunk), each an [`Entries`]
//! shared with the actions and frames that carry it, so appending, streaming
//! and applying a batch copies no entry. Once the cache holds more than its
//! budget, the oldest durable runs are evicted: the log keeps only their
//! terms (as runs of one term) and their sizes (as a coarse sum per evicted
//! batch), and the node reads them back through the driver
//! ([`crate::Action::ReadLog`]) when a stream or the apply path needs them.

use crate::entries::Entries;
use crate::entry::LogEntry;
use crate::types::{LogIndex, Term};
use std::collections::VecDeque;

/// Evicted batches are merged into one size record until it reaches this
/// many bytes: the sizes only serve estimates of how far a follower trails
/// (promotion), so they may be coarse, and merging bounds their memory to a
/// record per this many bytes of log (or per batch, if batches are larger).
const EVICTED_RECORD_BYTES: u64 = 64 << 10;

/// Entries `base_index + 1 ..= last_index`, with `base_term` the term of the
/// entry at `base_index` (compacted away, covered by a snapshot, or index 0).
/// Those from `cache_start` on are in memory; those before it are only in
/// the driver's storage.
#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    base_index: LogIndex,
    base_term: Term,
    /// Where each run of one term begins, `(index, term)`, both strictly
    /// increasing: every entry after the base, in memory or not. The first
    /// starts right after the base (none when the log is empty).
    term_starts: VecDeque<(LogIndex, Term)>,
    /// Non-empty runs of consecutive entries, in order, the first starting
    /// at `cache_start`.
    runs: VecDeque<Entries>,
    /// The first entry in memory (`last_index + 1` when none is).
    cache_start: LogIndex,
    /// The bytes of `runs`, as [`LogEntry::budget_bytes`] counts them.
    cached_bytes: u64,
    /// Evict durable runs while `cached_bytes` is above this.
    cache_bytes_max: u64,
    /// The sizes of evicted entries still in the log: `(last index, bytes)`
    /// of consecutive groups, each starting after the one before (the
    /// first at or before the base's successor: compaction may leave it
    /// reaching back into the compacted prefix, an overestimate).
    evicted: VecDeque<(LogIndex, u64)>,
    /// The entry at index 1 while the log holds it, in memory or not: a
    /// repeated bootstrap compares it with its own (it is one small
    /// membership entry).
    first_entry: Option<LogEntry>,
    /// The index of the last entry (the base when there is none).
    last_index: LogIndex,
    /// Every entry up to here is durable (and is the entry in memory or in
    /// the driver's storage).
    durable: LogIndex,
}

impl RaftLog {
    /// A log whose entries start after `(base_index, base_term)`; all durable
    /// and all in memory (until [`RaftLog::with_cache_bytes_max`] says otherwise).
    pub(crate) fn new(base_index: LogIndex, base_term: Term, entries: Vec<LogEntry>) -> RaftLog {
        let mut log = RaftLog {
            base_index,
            base_term,
            term_starts: VecDeque::new(),
            runs: VecDeque::new(),
            cache_start: base_index.next(),
            cached_bytes: 0,
            cache_bytes_max: u64::MAX,
            evicted: VecDeque::new(),
            first_entry: None,
            last_index: base_index,
            durable: base_index,
        };
        log.append(Entries::from(entries));
        log.durable = log.last_index;
        log.check();
        log
    }

    /// A log whose first entries, `stored` (their term starts and last
    /// index), are only in the driver's storage, followed by `entries` in
    /// memory; all durable. The caller checked that they are consistent.
    pub(crate) fn with_stored(
        base_index: LogIndex,
        base_term: Term,
        term_starts: &[(LogIndex, Term)],
        stored_last: LogIndex,
        first_entry: Option<&LogEntry>,
        entries: Vec<LogEntry>,
    ) -> RaftLog {
        let mut log = RaftLog::new(base_index, base_term, Vec::new());
        log.first_entry = first_entry.filter(|e| e.index > base_index).cloned();
        if stored_last > base_index {
            // The run holding the entry after the base starts there.
            let first = term_starts.partition_point(|&(i, _)| i <= base_index.next());
            assert!(first > 0, "stored entries start after the base");
            log.term_starts
                .push_back((base_index.next(), term_starts[first - 1].1));
            log.term_starts.extend(
                term_starts[first..]
                    .iter()
                    .filter(|(i, _)| *i <= stored_last),
            );
            log.last_index = stored_last;
            log.cache_start = stored_last.next();
        }
        // Their sizes are unknown: count them as none (promotion estimates
        // then err on the short side for them until they are compacted).
        log.append(Entries::from(entries));
        log.durable = log.last_index;
        log.check();
        log
    }

    /// Sets the cache's budget, evicting what is above it.
    pub(crate) fn with_cache_bytes_max(mut self, bytes: u64) -> RaftLog {
        self.cache_bytes_max = bytes;
        self.evict();
        self
    }

    pub(crate) fn base_index(&self) -> LogIndex {
        self.base_index
    }
    pub(crate) fn last_index(&self) -> LogIndex {
        self.last_index
    }
    pub(crate) fn last_term(&self) -> Term {
        self.term_starts.back().map_or(self.base_term, |&(_, t)| t)
    }
    pub(crate) fn durable(&self) -> LogIndex {
        self.durable
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.last_index().0 == 0
    }
    /// The first entry held in memory (past the last index when none is):
    /// entries before it must be read back through the driver.
    pub(crate) fn cache_start(&self) -> LogIndex {
        self.cache_start
    }
    /// The bytes of the entries held in memory.
    pub(crate) fn cached_bytes(&self) -> u64 {
        self.cached_bytes
    }

    /// The term at `index`, if the log knows it (the base counts; compacted
    /// entries do not; evicted ones do).
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        if index < self.base_index || index > self.last_index {
            return None;
        }
        // Most lookups are of recent entries: try the last run first.
        let &(start, term) = self.term_starts.back().expect("a non-empty log has terms");
        if start <= index {
            return Some(term);
        }
        let at = self.term_starts.partition_point(|&(i, _)| i <= index);
        Some(self.term_starts[at - 1].1)
    }

    /// The position of the run holding `index` (which the cache must hold).
    fn run_of(&self, index: LogIndex) -> usize {
        debug_assert!(index >= self.cache_start && index <= self.last_index);
        let last = self.runs.len() - 1;
        if self.runs[last][0].index <= index {
            return last;
        }
        self.runs.partition_point(|r| r[0].index <= index) - 1
    }

    /// The entry at `index` if it is in memory (entry 1 always is, while
    /// the log holds it).
    pub(crate) fn get(&self, index: LogIndex) -> Option<&LogEntry> {
        if index < self.cache_start && index > self.base_index && index == LogIndex(1) {
            return self.first_entry.as_ref();
        }
        if index < self.cache_start || index > self.last_index {
            return None;
        }
        let run = &self.runs[self.run_of(index)];
        Some(&run[(index.0 - run[0].index.0) as usize])
    }

    /// Up to `count_max` entries from `from` on, stopping before `bytes_max` is
    /// exceeded (at least one entry if any exists). Within one run they share
    /// its allocation; entries from several runs are gathered into one new one.
    /// `from` must be in memory (or past the last index).
    pub(crate) fn slice(&self, from: LogIndex, count_max: usize, bytes_max: u64) -> Entries {
        assert!(
            from >= self.cache_start && from > self.base_index,
            "slice from {from} but memory holds the log from {} (base {})",
            self.cache_start,
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
        let mut bytes = 0;
        for e in &entries {
            assert_eq!(
                e.index,
                self.last_index.next(),
                "append must continue the log"
            );
            let term = self.last_term();
            assert!(
                e.term >= term,
                "terms in a log never decrease: {} after {term}",
                e.term,
            );
            if e.term > term || self.term_starts.is_empty() {
                self.term_starts.push_back((e.index, e.term));
            }
            self.last_index = e.index;
            bytes += e.budget_bytes();
            if e.index == LogIndex(1) {
                self.first_entry = Some(e.clone());
            }
        }
        if !entries.is_empty() {
            if self.runs.is_empty() {
                self.cache_start = entries[0].index;
            }
            self.runs.push_back(entries);
            self.cached_bytes += bytes;
            self.evict();
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
            if from >= self.cache_start {
                let r = self.run_of(from);
                let keep = (from.0 - self.runs[r][0].index.0) as usize;
                for dropped in self.runs.drain(r + 1..) {
                    self.cached_bytes -= dropped.iter().map(LogEntry::budget_bytes).sum::<u64>();
                }
                let run = self.runs.pop_back().expect("run r exists");
                self.cached_bytes -= run[keep..].iter().map(LogEntry::budget_bytes).sum::<u64>();
                if keep > 0 {
                    self.runs.push_back(run.slice(0..keep));
                }
            } else {
                self.runs.clear();
                self.cached_bytes = 0;
                self.cache_start = from;
                self.truncate_evicted(from);
            }
            while self.term_starts.back().is_some_and(|&(i, _)| i >= from) {
                self.term_starts.pop_back();
            }
            self.last_index = from.prev();
        }
        if self.durable >= from {
            self.durable = from.prev();
        }
        if from == LogIndex(1) {
            self.first_entry = None;
        }
    }

    /// Forgets the sizes of evicted entries at `from` and after (a group
    /// reaching across `from` keeps its whole size: an overestimate).
    fn truncate_evicted(&mut self, from: LogIndex) {
        while let Some(&(last, bytes)) = self.evicted.back() {
            if last < from {
                break;
            }
            self.evicted.pop_back();
            let start = self.evicted.back().map_or(LogIndex(0), |&(l, _)| l).next();
            if start < from {
                self.evicted.push_back((from.prev(), bytes));
                break;
            }
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
                self.cached_bytes -= run.iter().map(LogEntry::budget_bytes).sum::<u64>();
                self.runs.pop_front();
            } else {
                if run[0].index <= through {
                    let cut = (through.0 - run[0].index.0 + 1) as usize;
                    self.cached_bytes -= run[..cut].iter().map(LogEntry::budget_bytes).sum::<u64>();
                    *run = run.slice_from(cut);
                }
                break;
            }
        }
        self.cache_start = self.cache_start.max(through.next());
        while self
            .evicted
            .front()
            .is_some_and(|&(last, _)| last <= through)
        {
            self.evicted.pop_front();
        }
        // The run of one term holding `through + 1` now starts there.
        let keep_from = self
            .term_starts
            .partition_point(|&(i, _)| i <= through.next());
        let start_term = self.term_starts[keep_from.max(1) - 1].1;
        self.term_starts.drain(..keep_from.max(1) - 1);
        if through < self.last_index {
            self.term_starts[0] = (through.next(), start_term);
        } else {
            self.term_starts.clear();
        }
        self.base_index = through;
        self.base_term = term;
        self.durable = self.durable.max(through);
        self.first_entry = None;
    }

    /// Replaces the whole log by a snapshot point.
    pub(crate) fn reset_to(&mut self, index: LogIndex, term: Term) {
        self.runs.clear();
        self.term_starts.clear();
        self.evicted.clear();
        self.first_entry = None;
        self.cached_bytes = 0;
        self.cache_start = index.next();
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
        self.evict();
        true
    }

    /// Drops the oldest runs from memory while the cache is over its budget
    /// and they are durable (the driver can read them back).
    fn evict(&mut self) {
        while self.cached_bytes > self.cache_bytes_max {
            let Some(run) = self.runs.front() else { break };
            let last = run.last().expect("runs are not empty").index;
            if last > self.durable {
                break;
            }
            let bytes = run.iter().map(LogEntry::budget_bytes).sum::<u64>();
            self.runs.pop_front();
            self.cached_bytes -= bytes;
            self.cache_start = last.next();
            match self.evicted.back_mut() {
                Some((l, b)) if *b + bytes <= EVICTED_RECORD_BYTES => (*l, *b) = (last, *b + bytes),
                _ => self.evicted.push_back((last, bytes)),
            }
        }
    }

    /// The bytes of the entries after `index`, counted until they pass
    /// `stop_above` (then some number above it is returned). Evicted entries
    /// count by their group's size, so the sum may be over by one group.
    pub(crate) fn bytes_after(&self, index: LogIndex, stop_above: u64) -> u64 {
        let mut bytes = 0u64;
        let first_group = self.evicted.partition_point(|&(last, _)| last <= index);
        for &(_, b) in self.evicted.range(first_group..) {
            bytes += b;
            if bytes > stop_above {
                return bytes;
            }
        }
        let mut i = index.next().max(self.cache_start);
        while let Some(e) = self.get(i) {
            bytes += e.budget_bytes();
            if bytes > stop_above {
                break;
            }
            i = i.next();
        }
        bytes
    }

    /// The bytes of the entries `after + 1 ..= through`; evicted ones count
    /// by their group's size (so the sum may be over by a group at each end).
    pub(crate) fn bytes_between(&self, after: LogIndex, through: LogIndex) -> u64 {
        let mut bytes = 0;
        let first_group = self.evicted.partition_point(|&(last, _)| last <= after);
        let mut start = match first_group {
            0 => LogIndex(0),
            g => self.evicted[g - 1].0.next(),
        };
        for &(last, b) in self.evicted.range(first_group..) {
            if start > through {
                break;
            }
            bytes += b;
            start = last.next();
        }
        let mut i = after.next().max(self.cache_start);
        while i <= through {
            let Some(e) = self.get(i) else { break };
            bytes += e.budget_bytes();
            i = i.next();
        }
        bytes
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
        if i <= floor {
            return floor;
        }
        if i > self.base_index {
            if self.term_at(i).is_some_and(|t| t <= term) {
                return i;
            }
            // The entry before the first run of a larger term.
            let larger = self.term_starts.partition_point(|&(_, t)| t <= term);
            i = self.term_starts[larger].0.prev();
            if i <= floor {
                return floor;
            }
            if i > self.base_index {
                return i;
            }
        }
        if i < self.base_index {
            return i; // compacted: the caller sends a snapshot
        }
        if self.base_term <= term {
            i
        } else {
            i.prev().max(floor)
        }
    }

    /// The entries in memory.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &LogEntry> {
        self.runs.iter().flat_map(|r| r.iter())
    }

    /// Asserts the log's structure in O(1): its ends agree with the base, the
    /// cache and the durable index. (`append`, `truncate_from` and
    /// `compact_through` assert contiguity as they change the log; `check`
    /// walks all of it.)
    pub(crate) fn check_ends(&self) {
        let first = self.runs.front().and_then(|r| r.first());
        let last = self.runs.back().and_then(|r| r.last());
        if let (Some(first), Some(last)) = (first, last) {
            assert_eq!(
                first.index, self.cache_start,
                "the cache does not start at its start"
            );
            assert_eq!(last.index, self.last_index, "the log's last index is stale");
        } else {
            assert_eq!(
                self.cache_start,
                self.last_index.next(),
                "an empty cache starts past the log"
            );
        }
        assert!(
            self.cache_start > self.base_index,
            "the cache starts at {} inside the compacted prefix {}",
            self.cache_start,
            self.base_index
        );
        match self.term_starts.front() {
            Some(&(first, term)) => {
                assert_eq!(
                    first,
                    self.base_index.next(),
                    "terms do not start after the base"
                );
                assert!(term >= self.base_term, "log terms decrease after the base");
            }
            None => assert_eq!(
                self.last_index, self.base_index,
                "a log without terms is empty"
            ),
        }
        assert!(
            self.durable <= self.last_index(),
            "durable {} past last {}",
            self.durable,
            self.last_index()
        );
        assert!(
            self.cache_start <= self.durable.next(),
            "evicted entries {}.. past the durable index {}",
            self.cache_start,
            self.durable
        );
        // Entry 1 is kept aside for a repeated bootstrap only while the log
        // holds it: once a snapshot covers it, the copy would be memory that
        // nothing reads.
        assert!(
            self.first_entry.is_none() || self.base_index == LogIndex(0),
            "entry 1 kept aside behind a snapshot at {}",
            self.base_index
        );
    }

    /// Asserts the whole log's structure, entry by entry.
    pub(crate) fn check(&self) {
        self.check_ends();
        assert!(
            self.runs.iter().all(|r| !r.is_empty()),
            "an empty run in the log"
        );
        for pair in self.term_starts.iter().collect::<Vec<_>>().windows(2) {
            assert!(
                pair[0].0 < pair[1].0 && pair[0].1 < pair[1].1,
                "term starts {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
        let mut expected = self.cache_start;
        let mut bytes = 0;
        for e in self.iter() {
            assert_eq!(e.index, expected, "log entries are not contiguous");
            assert_eq!(
                Some(e.term),
                self.term_at(e.index),
                "entry {} disagrees with the term runs",
                e.index
            );
            expected = expected.next();
            bytes += e.budget_bytes();
        }
        assert_eq!(bytes, self.cached_bytes, "the cache's size is stale");
        assert_eq!(
            expected.prev(),
            self.last_index,
            "the log's last index is stale"
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
    fn entry_1_evicted_is_kept_aside_until_a_truncation_removes_it() {
        // A repeated bootstrap compares entry 1 even once it left memory:
        // a truncation after it keeps the copy, one from it drops it.
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![e(1, 1)]);
        log.append(run(&[(2, 1), (3, 1), (4, 1)]));
        assert!(log.mark_durable(LogIndex(4), Term(1)));
        let mut log = log.with_cache_bytes_max(e(2, 1).budget_bytes() * 3);
        assert_eq!(log.cache_start(), LogIndex(2), "entry 1 evicted");
        log.truncate_from(LogIndex(3));
        assert_eq!(log.get(LogIndex(1)), Some(&e(1, 1)));
        log.truncate_from(LogIndex(1));
        assert_eq!(log.get(LogIndex(1)), None);
        log.check();
    }

    #[test]
    fn a_log_compacted_to_its_base_answers_below_it_for_a_smaller_term() {
        // A leader whose snapshot covers its whole log, asked where a
        // follower's log of an earlier term may still match: below the base
        // (the follower then gets the snapshot).
        let log = RaftLog::new(LogIndex(10), Term(3), vec![]);
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(12), Term(2), LogIndex(5)),
            LogIndex(9)
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(12), Term(3), LogIndex(5)),
            LogIndex(10)
        );
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

    #[test]
    fn only_durable_runs_are_evicted_and_their_terms_stay_known() {
        let one = e(1, 1).budget_bytes();
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]).with_cache_bytes_max(2 * one);
        log.append(run(&[(1, 1), (2, 1)]));
        log.append(run(&[(3, 2)]));
        log.append(run(&[(4, 3), (5, 3)]));
        assert_eq!(log.cache_start(), LogIndex(1), "nothing durable: all held");
        assert!(log.mark_durable(LogIndex(3), Term(2)));
        assert_eq!(log.cache_start(), LogIndex(4), "runs 1..=3 evicted");
        assert_eq!(log.cached_bytes(), 2 * one);
        assert_eq!(log.get(LogIndex(3)), None);
        assert_eq!(log.term_at(LogIndex(2)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.bytes_after(LogIndex(0), u64::MAX), 5 * one);
        assert!(log.bytes_after(LogIndex(3), u64::MAX) == 2 * one);
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(5), Term(2), LogIndex(0)),
            LogIndex(3)
        );
        log.check();
        // A truncation into the evicted part empties the cache.
        log.truncate_from(LogIndex(3));
        assert_eq!(
            (log.last_index(), log.cache_start()),
            (LogIndex(2), LogIndex(3))
        );
        assert_eq!(log.durable(), LogIndex(2));
        log.append(run(&[(3, 4)]));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(4)));
        assert_eq!(log.last_term(), Term(4));
        log.check();
        // Compaction keeps the term of the run it cuts into.
        log.compact_through(LogIndex(1));
        assert_eq!(log.term_at(LogIndex(2)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(1)), Some(Term(1)), "the base");
        log.check();
    }

    /// An entry of `len` bytes of data.
    fn sized(index: u64, term: u64, len: usize) -> LogEntry {
        LogEntry {
            data: Bytes::from(vec![0; len]),
            ..e(index, term)
        }
    }

    /// The sizes of evicted entries feed the snapshot policy (bytes of log
    /// since the last snapshot) and the promotion bound: they may count a
    /// group over at each end, never short, and never what lies past the range.
    #[test]
    fn sizes_of_evicted_entries_count_the_range_and_never_short() {
        // Entries of 20 kB evicted one run at a time: three fill a group of at
        // most EVICTED_RECORD_BYTES, so the groups are 1..=3, 4..=6, 7..=9.
        let b = sized(1, 1, 20_000).budget_bytes();
        assert!(3 * b <= EVICTED_RECORD_BYTES && 4 * b > EVICTED_RECORD_BYTES);
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]).with_cache_bytes_max(0);
        for i in 1..=9 {
            log.append(Entries::from(vec![sized(i, 1, 20_000)]));
        }
        assert!(log.mark_durable(LogIndex(9), Term(1)));
        assert_eq!(log.cache_start(), LogIndex(10), "all evicted");
        assert_eq!(log.bytes_between(LogIndex(0), LogIndex(9)), 9 * b);
        assert_eq!(
            log.bytes_between(LogIndex(3), LogIndex(6)),
            3 * b,
            "the group of 4..=6 only: nothing after `through`"
        );
        assert_eq!(log.bytes_between(LogIndex(6), LogIndex(9)), 3 * b);
        // A truncation inside a group keeps its whole size: over, not short.
        log.truncate_from(LogIndex(5));
        assert_eq!(log.last_index(), LogIndex(4));
        let held = log.bytes_between(LogIndex(0), LogIndex(4));
        assert!(
            held >= 4 * b,
            "entries 1..=4 hold {} bytes, counted {held}",
            4 * b
        );
        assert!(log.bytes_after(LogIndex(3), u64::MAX) >= b);
        // ... and over by at most the one group cut at the end.
        let all = log.bytes_after(LogIndex(0), u64::MAX);
        assert!(
            all <= 4 * b + EVICTED_RECORD_BYTES,
            "entries 1..=4 hold {} bytes, counted {all}",
            4 * b
        );
        log.check();
    }

    /// Nine entries of `len` bytes, each appended (and evicted) as a run of
    /// its own, all durable and none left in memory.
    fn all_evicted(len: usize) -> RaftLog {
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]).with_cache_bytes_max(0);
        for i in 1..=9 {
            log.append(Entries::from(vec![sized(i, 1, len)]));
        }
        assert!(log.mark_durable(LogIndex(9), Term(1)));
        assert_eq!(log.cache_start(), LogIndex(10), "all evicted");
        log
    }

    /// Runs too large to share a group of at most EVICTED_RECORD_BYTES keep
    /// one each, so a count that cuts through the evicted part is over by at
    /// most one such group (or one run), however many runs were evicted.
    #[test]
    fn evicted_runs_share_a_group_only_within_its_bound() {
        let b = sized(1, 1, 40_000).budget_bytes();
        assert!(b <= EVICTED_RECORD_BYTES && 2 * b > EVICTED_RECORD_BYTES);
        let mut log = all_evicted(40_000);
        assert_eq!(log.bytes_after(LogIndex(0), u64::MAX), 9 * b);
        log.truncate_from(LogIndex(3));
        let all = log.bytes_after(LogIndex(0), u64::MAX);
        assert!(
            (2 * b..=2 * b + EVICTED_RECORD_BYTES).contains(&all),
            "entries 1..=2 hold {} bytes, counted {all}",
            2 * b
        );
        log.check();
    }

    /// The record of evicted sizes is a bound on the node's bookkeeping:
    /// small runs share a group up to EVICTED_RECORD_BYTES, so a thousand
    /// evicted runs take a handful of records, not one each.
    #[test]
    fn small_evicted_runs_share_groups_of_the_record() {
        let b = sized(1, 1, 1_000).budget_bytes();
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]).with_cache_bytes_max(0);
        for i in 1..=1_000 {
            log.append(Entries::from(vec![sized(i, 1, 1_000)]));
            assert!(log.mark_durable(LogIndex(i), Term(1)));
        }
        assert_eq!(log.cache_start(), LogIndex(1_001), "all evicted");
        let groups_max = (1_000 * b).div_ceil(EVICTED_RECORD_BYTES) as usize + 1;
        assert!(
            log.evicted.len() <= groups_max,
            "{} records for {} bytes",
            log.evicted.len(),
            1_000 * b
        );
        assert_eq!(log.bytes_after(LogIndex(0), u64::MAX), 1_000 * b);
        log.check();
    }

    /// A truncation at the last index of an evicted group leaves nothing
    /// counted past the log's new end.
    #[test]
    fn a_truncation_at_the_end_of_an_evicted_group_counts_nothing_past_the_end() {
        // Groups 1..=3, 4..=6, 7..=9 (as above); truncated from 6, entries
        // 1..=5 remain, and the group 4..=6 now ends at 5.
        let b = sized(1, 1, 20_000).budget_bytes();
        let mut log = all_evicted(20_000);
        log.truncate_from(LogIndex(6));
        assert_eq!(log.last_index(), LogIndex(5));
        assert_eq!(log.bytes_after(LogIndex(5), u64::MAX), 0);
        assert!(log.bytes_after(LogIndex(3), u64::MAX) >= 2 * b);
        log.check();
    }

    /// `bytes_after` stops counting once past its limit; a sum that only
    /// reaches the limit goes on, so entries past it are never left out.
    #[test]
    fn bytes_after_exactly_at_the_limit_counts_on() {
        // Groups 1..=3, 4..=6, 7..=9 (as above): the first group alone
        // reaches a limit of its size, and six more entries follow.
        let b = sized(1, 1, 20_000).budget_bytes();
        let log = all_evicted(20_000);
        assert!(log.bytes_after(LogIndex(0), 3 * b) > 3 * b);
        assert!(log.bytes_after(LogIndex(3), 6 * b - 1) > 6 * b - 1);
        assert_eq!(log.bytes_after(LogIndex(3), 6 * b), 6 * b, "all of it");
        // The same for entries in memory.
        let one = e(1, 1).budget_bytes();
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]);
        log.append(run(&[(1, 1), (2, 1), (3, 1), (4, 1)]));
        assert!(log.bytes_after(LogIndex(0), 2 * one) > 2 * one);
        assert_eq!(log.bytes_after(LogIndex(0), 4 * one), 4 * one);
    }

    #[test]
    fn bytes_between_counts_entries_in_memory() {
        let one = e(1, 1).budget_bytes();
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]);
        log.append(run(&[(1, 1), (2, 1), (3, 1), (4, 1)]));
        assert_eq!(log.bytes_between(LogIndex(0), LogIndex(4)), 4 * one);
        assert_eq!(log.bytes_between(LogIndex(1), LogIndex(3)), 2 * one);
        assert_eq!(log.bytes_between(LogIndex(3), LogIndex(3)), 0);
    }

    /// Compacted through its last entry, the log holds no term runs; the
    /// next entry, of a later term, starts one.
    #[test]
    fn a_log_compacted_through_its_last_entry_starts_its_next_term_run_after_it() {
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]);
        log.append(run(&[(1, 1), (2, 1), (3, 1)]));
        log.compact_through(LogIndex(3));
        assert_eq!((log.last_index(), log.last_term()), (LogIndex(3), Term(1)));
        log.check();
        log.append(run(&[(4, 2), (5, 2)]));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(4)), Some(Term(2)));
        assert_eq!(log.last_term(), Term(2));
        log.check();
    }

    /// A truncation at the first index of an evicted group drops the group:
    /// what remains counts exactly.
    #[test]
    fn a_truncation_at_the_start_of_an_evicted_group_counts_the_rest_exactly() {
        let b = sized(1, 1, 20_000).budget_bytes();
        let mut log = all_evicted(20_000);
        log.truncate_from(LogIndex(4));
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.bytes_after(LogIndex(0), u64::MAX), 3 * b);
        assert_eq!(log.bytes_between(LogIndex(0), LogIndex(3)), 3 * b);
        log.check();
    }

    /// A compaction inside the first evicted group keeps the sizes of the
    /// evicted entries after it: counted over (the group's whole size), never
    /// short.
    #[test]
    fn a_compaction_inside_an_evicted_group_keeps_the_sizes_after_it() {
        let b = sized(1, 1, 20_000).budget_bytes();
        let mut log = all_evicted(20_000);
        log.compact_through(LogIndex(2));
        let after = log.bytes_after(LogIndex(2), u64::MAX);
        assert!(
            after >= 7 * b,
            "entries 3..=9 hold {} bytes, counted {after}",
            7 * b
        );
        assert!(log.bytes_between(LogIndex(2), LogIndex(9)) >= 7 * b);
        // Through the end of that group, the rest counts exactly.
        log.compact_through(LogIndex(3));
        assert_eq!(log.bytes_after(LogIndex(3), u64::MAX), 6 * b);
        log.check();
    }

    /// `log_cache_bytes_max` is the most the cache holds: a cache exactly at
    /// it keeps its entries (evicting more only costs reads from storage).
    #[test]
    fn a_cache_exactly_at_its_budget_keeps_what_it_holds() {
        let one = e(1, 1).budget_bytes();
        let mut log = RaftLog::new(LogIndex(0), Term(0), vec![]).with_cache_bytes_max(2 * one);
        log.append(run(&[(1, 1)]));
        log.append(run(&[(2, 1)]));
        assert!(log.mark_durable(LogIndex(2), Term(1)));
        assert_eq!(
            (log.cache_start(), log.cached_bytes()),
            (LogIndex(1), 2 * one),
            "at the budget: nothing evicted"
        );
        log.append(run(&[(3, 1)]));
        assert!(log.mark_durable(LogIndex(3), Term(1)));
        assert_eq!(
            (log.cache_start(), log.cached_bytes()),
            (LogIndex(2), 2 * one),
            "above it: the oldest run only"
        );
    }

    #[test]
    fn conflict_search_never_answers_a_base_of_a_larger_term() {
        // No entry from the base (2, term 3) on has a term at most 2: the
        // answer lies in the compacted prefix (the caller sends a snapshot).
        let log = RaftLog::new(LogIndex(2), Term(3), vec![e(3, 3), e(4, 4)]);
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(4), Term(2), LogIndex(0)),
            LogIndex(1)
        );
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(4), Term(3), LogIndex(0)),
            LogIndex(3)
        );
        // Where the base's term is small enough, the base is the answer.
        let log = RaftLog::new(LogIndex(2), Term(1), vec![e(3, 3), e(4, 4)]);
        assert_eq!(
            log.last_index_with_term_at_most(LogIndex(4), Term(2), LogIndex(0)),
            LogIndex(2)
        );
    }

    #[test]
    fn a_recovered_log_with_a_stored_front_knows_its_terms() {
        let log = RaftLog::with_stored(
            LogIndex(2),
            Term(1),
            &[(LogIndex(1), Term(1)), (LogIndex(4), Term(2))],
            LogIndex(6),
            None,
            vec![e(7, 2), e(8, 3)],
        );
        assert_eq!(log.cache_start(), LogIndex(7));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(6)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(8)), Some(Term(3)));
        assert_eq!(log.durable(), LogIndex(8));
        log.check();
    }

    #[test]
    fn a_recovered_log_does_not_keep_entry_1_behind_its_snapshot() {
        // The driver's storage may still hold entry 1 after a snapshot at
        // index 1 covers it (it prunes lazily): recovery passes it along, and
        // the log must neither answer it nor keep it.
        let log = RaftLog::with_stored(
            LogIndex(1),
            Term(1),
            &[(LogIndex(1), Term(1))],
            LogIndex(3),
            Some(&e(1, 1)),
            vec![e(4, 1)],
        );
        assert_eq!(log.get(LogIndex(1)), None);
        assert!(log.first_entry.is_none());
        log.check();
        // Without a snapshot, entry 1 is kept for a repeated bootstrap.
        let log = RaftLog::with_stored(
            LogIndex(0),
            Term(0),
            &[(LogIndex(1), Term(1))],
            LogIndex(3),
            Some(&e(1, 1)),
            vec![e(4, 1)],
        );
        assert_eq!(log.get(LogIndex(1)), Some(&e(1, 1)));
    }

    #[test]
    fn a_stored_front_the_snapshot_covers_adds_no_terms() {
        // The driver still holds entries 1..=3 that a snapshot at 3 covers,
        // and entries of a later term follow in memory: the log starts at
        // the base, with only the terms of what follows it.
        let log = RaftLog::with_stored(
            LogIndex(3),
            Term(1),
            &[(LogIndex(1), Term(1))],
            LogIndex(3),
            None,
            vec![e(4, 2), e(5, 2)],
        );
        log.check();
        assert_eq!(log.cache_start(), LogIndex(4));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(1)));
        assert_eq!(log.term_at(LogIndex(4)), Some(Term(2)));
        assert_eq!(log.last_term(), Term(2));
    }
}
