//! Log-level oracles over chain digests: log matching, leader completeness,
//! state-machine safety and the global committed prefix.
//!
//! The world mirrors every node's in-memory log as a chain of digests
//! (`digest_i = mix(digest_{i-1}, term_i, payload hash)`) from the
//! `AppendLog`/`TruncateLog`/snapshot actions it executes. Equal chain digests
//! at an index imply equal prefixes, so each property costs O(1) per entry.

use super::Failure;
use crate::digest::{hash_bytes, mix};
use raft_core::{LogEntry, LogIndex, Term};
use std::collections::{BTreeMap, VecDeque};

/// The chain digest of `entry` after `prev`.
pub fn chain(prev: u64, entry: &LogEntry) -> u64 {
    mix(
        mix(mix(prev, entry.index.0), entry.term.0),
        mix(entry.kind as u64, hash_bytes(&entry.data)),
    )
}

/// One node's in-memory log, as digests.
#[derive(Clone, Debug, Default)]
pub struct LogMirror {
    /// Index of the snapshot base (0: none); entries follow it.
    base_index: u64,
    base_term: Term,
    base_digest: u64,
    /// (term, chain digest, payload hash) of base+1, base+2, ...
    entries: VecDeque<(Term, u64, u64)>,
}

impl LogMirror {
    /// The last index.
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.base_index + self.entries.len() as u64)
    }

    /// The snapshot base index.
    pub fn base_index(&self) -> LogIndex {
        LogIndex(self.base_index)
    }

    /// The term and chain digest at `index`, if the mirror holds it (the base
    /// counts; indexes inside the snapshot do not).
    pub fn at(&self, index: LogIndex) -> Option<(Term, u64)> {
        if index.0 == self.base_index {
            return Some((self.base_term, self.base_digest));
        }
        if index.0 < self.base_index {
            return None;
        }
        self.entries
            .get((index.0 - self.base_index - 1) as usize)
            .map(|(t, d, _)| (*t, *d))
    }

    /// The payload hash of the entry at `index` (not the base).
    pub fn payload_hash_at(&self, index: LogIndex) -> Option<u64> {
        if index.0 <= self.base_index {
            return None;
        }
        self.entries
            .get((index.0 - self.base_index - 1) as usize)
            .map(|(_, _, h)| *h)
    }

    /// Appends entries (which must follow the last one) and returns their chain digests.
    pub fn append(&mut self, entries: &[LogEntry]) -> Result<Vec<u64>, String> {
        let mut out = Vec::with_capacity(entries.len());
        self.append_into(entries, &mut out)?;
        Ok(out)
    }

    /// [`LogMirror::append`], the digests written into `out` (cleared
    /// first): the driver appends on every `AppendLog` and keeps one buffer.
    pub fn append_into(&mut self, entries: &[LogEntry], out: &mut Vec<u64>) -> Result<(), String> {
        out.clear();
        for e in entries {
            if e.index != self.last_index().next() {
                return Err(format!(
                    "AppendLog of {} when the log ends at {}",
                    e.index,
                    self.last_index()
                ));
            }
            let prev = self.entries.back().map_or(self.base_digest, |(_, d, _)| *d);
            let d = chain(prev, e);
            self.entries.push_back((e.term, d, hash_bytes(&e.data)));
            out.push(d);
        }
        Ok(())
    }

    /// Removes entries at `from` and after (never the base).
    pub fn truncate(&mut self, from: LogIndex) -> Result<(), String> {
        if from.0 <= self.base_index {
            return Err(format!(
                "TruncateLog from={from} reaches into the snapshot at {}",
                self.base_index
            ));
        }
        let keep = (from.0 - self.base_index - 1) as usize;
        self.entries.truncate(keep);
        Ok(())
    }

    /// Replaces the prefix up to `index` by a snapshot whose chain digest is `digest`;
    /// keeps the suffix if the mirror holds the same entry at `index`.
    pub fn install(&mut self, index: LogIndex, term: Term, digest: u64) {
        let keep = self.at(index).is_some_and(|(_, d)| d == digest) && index >= self.base_index();
        if keep {
            let drop = (index.0 - self.base_index) as usize;
            self.entries.drain(..drop.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        self.base_index = index.0;
        self.base_term = term;
        self.base_digest = digest;
    }

    /// Drops entries up to `through` from memory (compaction), keeping digests
    /// available at the new base.
    pub fn compact(&mut self, through: LogIndex) {
        while through.0 > self.base_index {
            match self.entries.pop_front() {
                Some((t, d, _)) => {
                    self.base_index += 1;
                    self.base_term = t;
                    self.base_digest = d;
                }
                None => break,
            }
        }
    }

    /// Whether the mirror holds `entry` at its index (same term and payload).
    pub fn holds(&self, entry: &LogEntry) -> bool {
        if entry.index.0 <= self.base_index {
            return entry.index.0 == self.base_index && entry.term == self.base_term;
        }
        self.entries
            .get((entry.index.0 - self.base_index - 1) as usize)
            .is_some_and(|(t, _, h)| *t == entry.term && *h == hash_bytes(&entry.data))
    }
}

/// Cluster-wide log knowledge.
#[derive(Clone, Debug, Default)]
pub struct GlobalLog {
    /// Every (index, term) ever appended anywhere, with its chain digest.
    digests: ByIndexTerm,
    /// The committed prefix's chain digests by index (dense where known).
    committed: ByIndex,
    committed_len: u64,
    /// The highest commit index reported by a node in each term. A reporter's
    /// term is at least the term in which that index was committed (the
    /// leader reports first, at its term), so this never overstates what a
    /// leader of a later term must hold.
    commit_by_term: BTreeMap<u64, u64>,
    /// The digest each index was first applied with, anywhere.
    applied: ByIndex,
}

/// Digests by log index, in a `Vec` indexed by it: the indexes known are a
/// prefix of the log with few gaps, and every commit and apply of every
/// node looks one up (a `BTreeMap` here was about 4% of a sweep).
#[derive(Clone, Debug, Default)]
struct ByIndex(Vec<Option<u64>>);

impl ByIndex {
    fn get(&self, index: &u64) -> Option<&u64> {
        self.0.get(usize::try_from(*index).ok()?)?.as_ref()
    }

    fn insert(&mut self, index: u64, digest: u64) {
        let i = usize::try_from(index).expect("a log index held in memory fits a usize");
        if i >= self.0.len() {
            self.0.resize(i + 1, None);
        }
        self.0[i] = Some(digest);
    }
}

/// Chain digests by `(index, term)`: the first term appended at an index
/// in a `Vec` by index (every append of every node looks one up; a
/// `BTreeMap` of all of them was 2% of a sweep), any later term at that
/// index (a rewritten suffix) in a map.
#[derive(Clone, Debug, Default)]
struct ByIndexTerm {
    first: Vec<Option<(u64, u64)>>,
    others: BTreeMap<(u64, u64), u64>,
}

impl ByIndexTerm {
    /// How far past the known indexes the `Vec` grows to hold one; an index
    /// further out (none a node appends) goes to the map.
    const GROWTH_MAX: usize = 1 << 20;

    fn get(&self, index: u64, term: u64) -> Option<u64> {
        match usize::try_from(index).ok().and_then(|i| self.first.get(i)) {
            Some(&Some((t, d))) if t == term => Some(d),
            _ => self.others.get(&(index, term)).copied(),
        }
    }

    /// Records the digest of `(index, term)`, not yet known.
    fn insert(&mut self, index: u64, term: u64, digest: u64) {
        let dense = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.first.len() + Self::GROWTH_MAX);
        match dense {
            Some(i) if self.first.get(i).is_none_or(Option::is_none) => {
                if i >= self.first.len() {
                    self.first.resize(i + 1, None);
                }
                self.first[i] = Some((term, digest));
            }
            _ => {
                self.others.insert((index, term), digest);
            }
        }
    }
}

impl GlobalLog {
    /// The longest committed index any node reported.
    pub fn committed_len(&self) -> LogIndex {
        LogIndex(self.committed_len)
    }

    /// The committed chain digest at `index`, if known.
    pub fn committed_at(&self, index: LogIndex) -> Option<u64> {
        self.committed.get(&index.0).copied()
    }

    /// Log matching: an entry at (index, term) must have one chain digest everywhere.
    pub fn on_append(
        &mut self,
        node: usize,
        entries: &[LogEntry],
        digests: &[u64],
    ) -> Result<(), Failure> {
        for (e, d) in entries.iter().zip(digests) {
            match self.digests.get(e.index.0, e.term.0) {
                Some(known) if known != *d => {
                    return Err(Failure::safety(
                        "log-matching",
                        format!(
                            "n{} appended {}/{} whose prefix differs from another node's entry at {}/{}",
                            node + 1,
                            e.index,
                            e.term,
                            e.index,
                            e.term
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    self.digests.insert(e.index.0, e.term.0, *d);
                }
            }
        }
        Ok(())
    }

    /// The chain digest known for (index, term), if any node appended it.
    pub fn digest_of(&self, index: LogIndex, term: Term) -> Option<u64> {
        self.digests.get(index.0, term.0)
    }

    /// A node in `term` reports commit index `commit` (up from `previous`): its log must
    /// agree with the committed prefix, which it may extend. Only the newly
    /// committed range is visited, so the cost is amortized O(1) per entry.
    pub fn on_commit(
        &mut self,
        node: usize,
        term: Term,
        previous: LogIndex,
        commit: LogIndex,
        mirror: &LogMirror,
    ) -> Result<(), Failure> {
        if commit.0 == 0 {
            return Ok(());
        }
        if commit > mirror.last_index() {
            return Err(Failure::safety(
                "commit-bound",
                format!(
                    "n{} commit {} is beyond its last index {}",
                    node + 1,
                    commit,
                    mirror.last_index()
                ),
            ));
        }
        let from = mirror.base_index().0.max(previous.0 + 1).max(1);
        for i in from..=commit.0 {
            let Some((_, d)) = mirror.at(LogIndex(i)) else {
                continue;
            };
            match self.committed.get(&i) {
                Some(&known) if known != d => {
                    return Err(Failure::safety(
                        "state-machine-safety",
                        format!(
                            "n{} reports {} committed with a different entry than the committed prefix",
                            node + 1,
                            i
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(i, d);
                }
            }
        }
        self.committed_len = self.committed_len.max(commit.0);
        let at_term = self.commit_by_term.entry(term.0).or_default();
        *at_term = (*at_term).max(commit.0);
        Ok(())
    }

    /// Leader completeness (Raft §5.4.3): a leader of `term` holds every entry
    /// committed in an earlier term. (A stale leader of an old term, say one
    /// that wins with a vote delivered late after a pause, need not hold what
    /// a later term committed; it can commit nothing.)
    pub fn on_leader(&self, node: usize, term: Term, mirror: &LogMirror) -> Result<(), Failure> {
        let c = LogIndex(
            self.commit_by_term
                .range(..term.0)
                .map(|(_, c)| *c)
                .max()
                .unwrap_or(0),
        );
        if c.0 == 0 || c < mirror.base_index() {
            return Ok(());
        }
        let fail = |why: String| {
            Err(Failure::safety(
                "leader-completeness",
                format!("n{} leader of {}: {}", node + 1, term, why),
            ))
        };
        match (mirror.at(c), self.committed.get(&c.0)) {
            (None, _) => fail(format!(
                "log ends at {} but {} is committed",
                mirror.last_index(),
                c
            )),
            (Some((_, d)), Some(&want)) if d != want => {
                fail(format!("its entry at committed index {c} differs"))
            }
            _ => Ok(()),
        }
    }

    /// State-machine safety: every node applies the same entry at each index,
    /// and only committed entries.
    pub fn on_apply(&mut self, node: usize, index: LogIndex, digest: u64) -> Result<(), Failure> {
        match self.applied.get(&index.0) {
            Some(&known) if known != digest => {
                return Err(Failure::safety(
                    "state-machine-safety",
                    format!(
                        "n{} applied a different entry at {} than another node",
                        node + 1,
                        index
                    ),
                ));
            }
            Some(_) => {}
            None => {
                self.applied.insert(index.0, digest);
            }
        }
        match self.committed.get(&index.0) {
            Some(&c) if c != digest => Err(Failure::safety(
                "state-machine-safety",
                format!(
                    "n{} applied {} which is not the committed entry",
                    node + 1,
                    index
                ),
            )),
            None if index.0 > self.committed_len => Err(Failure::safety(
                "state-machine-safety",
                format!(
                    "n{} applied {} beyond every known commit index {}",
                    node + 1,
                    index,
                    self.committed_len
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use raft_core::EntryKind;

    fn e(index: u64, term: u64, data: &'static [u8]) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Command,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn log_matching_fails_when_same_index_and_term_have_different_prefixes() {
        let mut g = GlobalLog::default();
        let (mut a, mut b) = (LogMirror::default(), LogMirror::default());
        let ea = [e(1, 1, b"x"), e(2, 2, b"y")];
        let eb = [e(1, 1, b"DIFFERENT"), e(2, 2, b"y")];
        let da = a.append(&ea).unwrap();
        g.on_append(0, &ea, &da).unwrap();
        let db = b.append(&eb).unwrap();
        let err = g.on_append(1, &eb, &db).unwrap_err();
        assert_eq!(err.checker, "log-matching");
    }

    #[test]
    fn leader_completeness_fails_for_a_later_term_leader_missing_a_committed_entry() {
        let mut g = GlobalLog::default();
        let mut a = LogMirror::default();
        a.append(&[e(1, 1, b"x"), e(2, 1, b"y")]).unwrap();
        g.on_commit(0, Term(1), LogIndex(0), LogIndex(2), &a)
            .unwrap();
        let mut b = LogMirror::default();
        b.append(&[e(1, 1, b"x")]).unwrap();
        assert_eq!(
            g.on_leader(1, Term(2), &b).unwrap_err().checker,
            "leader-completeness"
        );
        assert!(g.on_leader(0, Term(2), &a).is_ok());
        assert!(
            g.on_leader(1, Term(1), &b).is_ok(),
            "a stale leader of the commit's own term (or earlier) is not bound by it"
        );
    }

    #[test]
    fn state_machine_safety_fails_on_conflicting_commits_and_uncommitted_applies() {
        let mut g = GlobalLog::default();
        let mut a = LogMirror::default();
        let mut b = LogMirror::default();
        a.append(&[e(1, 1, b"x")]).unwrap();
        b.append(&[e(1, 2, b"z")]).unwrap();
        g.on_commit(0, Term(1), LogIndex(0), LogIndex(1), &a)
            .unwrap();
        assert_eq!(
            g.on_commit(1, Term(1), LogIndex(0), LogIndex(1), &b)
                .unwrap_err()
                .checker,
            "state-machine-safety"
        );
        let (_, da) = a.at(LogIndex(1)).unwrap();
        g.on_apply(0, LogIndex(1), da).unwrap();
        let (_, db) = b.at(LogIndex(1)).unwrap();
        assert!(g.on_apply(1, LogIndex(1), db).is_err());
        assert!(
            g.on_apply(0, LogIndex(2), 42).is_err(),
            "index 2 was never committed"
        );
    }

    #[test]
    fn commit_beyond_the_log_is_a_failure() {
        let mut g = GlobalLog::default();
        let a = LogMirror::default();
        assert_eq!(
            g.on_commit(0, Term(1), LogIndex(0), LogIndex(1), &a)
                .unwrap_err()
                .checker,
            "commit-bound"
        );
    }

    #[test]
    fn mirror_truncates_installs_and_compacts() {
        let mut m = LogMirror::default();
        let d = m
            .append(&[e(1, 1, b"a"), e(2, 1, b"b"), e(3, 1, b"c")])
            .unwrap();
        m.truncate(LogIndex(3)).unwrap();
        assert_eq!(m.last_index(), LogIndex(2));
        m.install(LogIndex(2), Term(1), d[1]);
        assert_eq!(m.base_index(), LogIndex(2));
        assert!(m.truncate(LogIndex(2)).is_err());
        m.append(&[e(3, 2, b"d"), e(4, 2, b"e")]).unwrap();
        m.compact(LogIndex(3));
        assert_eq!(m.base_index(), LogIndex(3));
        assert!(m.holds(&e(4, 2, b"e")));
        assert!(!m.holds(&e(4, 2, b"X")));
        m.install(LogIndex(10), Term(3), 99);
        assert_eq!(m.last_index(), LogIndex(10));
    }

    /// An index appended in several terms keeps a digest per term, wherever
    /// the index lies; an unknown pair has none.
    #[test]
    fn digests_are_kept_per_index_and_term() {
        let mut d = ByIndexTerm::default();
        assert_eq!(d.get(5, 1), None);
        d.insert(5, 1, 51);
        d.insert(5, 2, 52);
        d.insert(3, 2, 32);
        let far = u64::MAX - 1;
        d.insert(far, 7, 77);
        assert_eq!(d.get(5, 1), Some(51));
        assert_eq!(d.get(5, 2), Some(52));
        assert_eq!(d.get(3, 2), Some(32));
        assert_eq!(d.get(3, 1), None);
        assert_eq!(d.get(4, 1), None);
        assert_eq!(d.get(far, 7), Some(77));
        assert_eq!(d.get(far, 6), None);
        assert!(d.first.len() <= 6, "a far index does not grow the vector");
    }
}
