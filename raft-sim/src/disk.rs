//! `SimDisk`: one node's storage at the level of the core's durability contract.
//!
//! The disk holds a *durable* part (hard state, snapshot, log entries) and an
//! ordered list of *pending* log operations (`Append`, `Truncate`,
//! `InstallSnapshot`). Pending operations become durable by group commit: one
//! fsync at a time covers every operation pending when it started; operations
//! issued meanwhile wait for the next fsync. A completed fsync yields the
//! events the core must see (`LogPersisted` of the durable log's last entry
//! when the batch held an append; `SnapshotInstalled` per install), in order.
//!
//! Hard-state writes are atomic and durable at once (the driver blocks on
//! them), and so are snapshots the node takes itself (write, fsync, rename).
//!
//! A crash keeps a random *prefix* of the pending operations; the rest is lost.
//! The first lost operation may be a torn append, of which a prefix of its
//! entries survives (recovery truncates a torn tail record by record). This one
//! rule covers lost unsynced appends, truncations that never reached the disk
//! (old entries come back) and interrupted snapshot installs.
//!
//! A test can also take the disk in hand ([`control`]): hold its fsyncs,
//! force one now, or rot a byte of a record already synced, which the next
//! start detects and refuses ([`SimDisk::check`]).

use crate::rng::{Ppm, SimRng};
use bytes::Bytes;
use raft_core::{
    Entries, HardState, Instant, LogEntry, LogIndex, RecoveredState, SnapshotMeta, Term,
};
use std::collections::VecDeque;
use std::fmt;

pub mod control;
pub use control::{DiskDamage, RotError};

/// What a crash did to the pending writes: a prefix survived, the first lost
/// append may have been torn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CrashAccount {
    /// Pending operations that survived.
    pub kept: usize,
    /// Pending operations at the crash.
    pub pending: usize,
    /// A torn append: `(entries kept, entries in it)`.
    pub torn: Option<(usize, usize)>,
}

impl fmt::Display for CrashAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk kept {}/{} pending ops", self.kept, self.pending)?;
        match self.torn {
            Some((kept, of)) => write!(f, ", torn append kept {kept}/{of}"),
            None => Ok(()),
        }
    }
}

/// A log entry with its chain digest (`hash(prev digest, entry)`), which the
/// checkers compare across nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskEntry {
    /// The entry.
    pub entry: LogEntry,
    /// The chain digest up to and including this entry.
    pub digest: u64,
}

/// A snapshot on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The serialized state machine.
    pub data: Bytes,
    /// The chain digest of the log at `meta.index`.
    pub digest: u64,
}

/// A log operation waiting for an fsync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// Append entries after the current last one.
    Append(Vec<DiskEntry>),
    /// Remove every entry at `from` and after.
    Truncate {
        /// The first index removed.
        from: LogIndex,
    },
    /// Replace the log's prefix by a snapshot.
    InstallSnapshot(StoredSnapshot),
}

/// What an fsync made durable, for the core to hear about (in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskNotice {
    /// The log up to and including this entry is durable.
    LogPersisted {
        /// The durable log's last index.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
    /// A snapshot install is durable.
    SnapshotInstalled(SnapshotMeta),
}

/// What the disk holds durably at one index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurableAt {
    /// An entry of this term with this chain digest.
    Entry {
        /// Its term.
        term: Term,
        /// Its chain digest.
        digest: u64,
    },
    /// A durable snapshot covers the index.
    Covered,
    /// Nothing durable at that index.
    Missing,
}

/// Disk timing for one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskTiming {
    /// The least fsync latency.
    pub fsync_min_ns: u64,
    /// The mean of the exponential part added to the minimum.
    pub fsync_mean_ns: u64,
    /// A multiplier (1 for a healthy disk, 100 for a sick one).
    pub slowdown: u64,
    /// Chance that the first lost append of a crash is torn (a prefix survives).
    pub torn_append: Ppm,
}

/// An fsync the world must schedule: at `at`, call [`SimDisk::complete_fsync`] with `upto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsyncDue {
    /// When it completes.
    pub at: Instant,
    /// It covers pending operations with sequence numbers below this.
    pub upto: u64,
}

/// One node's simulated disk.
#[derive(Clone, Debug)]
pub struct SimDisk {
    timing: DiskTiming,
    hard_state: HardState,
    snapshot: Option<StoredSnapshot>,
    /// The snapshot before the current one, kept until the node has heard of
    /// the new one (it may still ask to send the old one).
    previous_snapshot: Option<StoredSnapshot>,
    /// Durable entries, contiguous (the first index is the front's).
    log: VecDeque<DiskEntry>,
    pending: VecDeque<(u64, DiskOp)>,
    next_seq: u64,
    fsync_in_flight: Option<u64>,
    /// Fsyncs are held: writes stay pending until released or forced.
    fsync_held: bool,
    /// Records rotted since they were synced (see [`control`]).
    rotten: Vec<DiskDamage>,
    /// Contract violations seen while applying operations (reported by the world).
    violations: Vec<String>,
}

impl SimDisk {
    /// An empty disk.
    pub fn new(timing: DiskTiming) -> SimDisk {
        SimDisk {
            timing,
            hard_state: HardState::default(),
            snapshot: None,
            previous_snapshot: None,
            log: VecDeque::new(),
            pending: VecDeque::new(),
            next_seq: 0,
            fsync_in_flight: None,
            fsync_held: false,
            rotten: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// Changes the timing (the liveness phase heals a sick disk).
    pub fn set_timing(&mut self, timing: DiskTiming) {
        self.timing = timing;
    }

    /// The durable hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The durable snapshot.
    pub fn snapshot(&self) -> Option<&StoredSnapshot> {
        self.snapshot.as_ref()
    }

    /// The stored snapshot with this index and term (current or previous).
    pub fn snapshot_matching(&self, index: LogIndex, term: Term) -> Option<&StoredSnapshot> {
        [&self.snapshot, &self.previous_snapshot]
            .into_iter()
            .flatten()
            .find(|s| s.meta.index == index && s.meta.term == term)
    }

    /// The durable log's last index (the snapshot's if the log is empty).
    pub fn last_index(&self) -> LogIndex {
        match self.log.back() {
            Some(e) => e.entry.index,
            None => self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index),
        }
    }

    /// Number of operations not yet durable.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Whether an append of at least two entries is pending (a crash now may tear it).
    pub fn has_pending_multi_append(&self) -> bool {
        self.pending
            .iter()
            .any(|(_, op)| matches!(op, DiskOp::Append(e) if e.len() >= 2))
    }

    /// Takes the contract violations recorded since the last call.
    pub fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }

    /// What is durable at `index`.
    pub fn durable_at(&self, index: LogIndex) -> DurableAt {
        if let Some(s) = &self.snapshot {
            if index == s.meta.index {
                return DurableAt::Entry {
                    term: s.meta.term,
                    digest: s.digest,
                };
            }
            if index < s.meta.index {
                return DurableAt::Covered;
            }
        }
        let Some(front) = self.log.front() else {
            return if index.0 == 0 {
                DurableAt::Covered
            } else {
                DurableAt::Missing
            };
        };
        if index < front.entry.index {
            return if index.0 == 0 {
                DurableAt::Covered
            } else {
                DurableAt::Missing
            };
        }
        match self.log.get((index.0 - front.entry.index.0) as usize) {
            Some(e) => DurableAt::Entry {
                term: e.entry.term,
                digest: e.digest,
            },
            None => DurableAt::Missing,
        }
    }

    /// Writes the hard state atomically and durably.
    pub fn persist_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Stores a snapshot the node took of its own state machine (durable at
    /// once); keeps the newer of the old and the new.
    pub fn store_snapshot(&mut self, snapshot: StoredSnapshot) {
        if self
            .snapshot
            .as_ref()
            .is_none_or(|s| s.meta.index < snapshot.meta.index)
        {
            self.previous_snapshot = self.snapshot.replace(snapshot);
        }
    }

    /// Drops durable entries up to `through`, which must not pass the durable snapshot.
    pub fn compact(&mut self, through: LogIndex) -> Result<(), String> {
        let covered = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index);
        if through > covered {
            return Err(format!(
                "CompactLog through={through} beyond the durable snapshot at {covered}"
            ));
        }
        while self.log.front().is_some_and(|e| e.entry.index <= through) {
            self.log.pop_front();
        }
        self.forget_rot(|index| index <= through);
        Ok(())
    }

    /// Queues a log operation; if no fsync is running, starts one and returns it.
    pub fn submit(&mut self, op: DiskOp, now: Instant, rng: &mut SimRng) -> Option<FsyncDue> {
        self.pending.push_back((self.next_seq, op));
        self.next_seq += 1;
        if self.fsync_in_flight.is_some() || self.fsync_held {
            return None;
        }
        Some(self.start_fsync(now, rng))
    }

    fn start_fsync(&mut self, now: Instant, rng: &mut SimRng) -> FsyncDue {
        let t = self.timing;
        let latency = (t.fsync_min_ns + rng.exponential_ns(t.fsync_mean_ns))
            .saturating_mul(t.slowdown.max(1));
        self.fsync_in_flight = Some(self.next_seq);
        FsyncDue {
            at: Instant(now.0.saturating_add(latency)),
            upto: self.next_seq,
        }
    }

    /// Completes the fsync covering operations below `upto`: they become
    /// durable. Returns what the core must hear, and the next fsync if more
    /// operations are waiting. A stale completion (after a crash) does nothing.
    pub fn complete_fsync(
        &mut self,
        upto: u64,
        now: Instant,
        rng: &mut SimRng,
    ) -> (Vec<DiskNotice>, Option<FsyncDue>) {
        let mut notices = Vec::new();
        let next = self.complete_fsync_into(upto, now, rng, &mut notices);
        (notices, next)
    }

    /// [`SimDisk::complete_fsync`], the notices written into `notices`
    /// (cleared first): the world completes an fsync every few events and
    /// keeps one buffer.
    pub fn complete_fsync_into(
        &mut self,
        upto: u64,
        now: Instant,
        rng: &mut SimRng,
        notices: &mut Vec<DiskNotice>,
    ) -> Option<FsyncDue> {
        notices.clear();
        if self.fsync_in_flight != Some(upto) {
            return None;
        }
        self.fsync_in_flight = None;
        let mut appended = false;
        while self.pending.front().is_some_and(|(seq, _)| *seq < upto) {
            let (_, op) = self.pending.pop_front().expect("front exists");
            match op {
                DiskOp::InstallSnapshot(s) => {
                    if appended {
                        self.push_persisted(notices);
                        appended = false;
                    }
                    notices.push(DiskNotice::SnapshotInstalled(s.meta.clone()));
                    self.apply_durably(DiskOp::InstallSnapshot(s));
                }
                other => {
                    appended |= matches!(other, DiskOp::Append(_));
                    self.apply_durably(other);
                }
            }
        }
        if appended {
            self.push_persisted(notices);
        }
        if self.pending.is_empty() || self.fsync_held {
            None
        } else {
            Some(self.start_fsync(now, rng))
        }
    }

    fn push_persisted(&self, notices: &mut Vec<DiskNotice>) {
        if let Some(e) = self.log.back() {
            notices.push(DiskNotice::LogPersisted {
                index: e.entry.index,
                term: e.entry.term,
            });
        } else if let Some(s) = &self.snapshot {
            notices.push(DiskNotice::LogPersisted {
                index: s.meta.index,
                term: s.meta.term,
            });
        }
    }

    fn apply_durably(&mut self, op: DiskOp) {
        match op {
            DiskOp::Append(entries) => {
                let covered = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index);
                for e in entries {
                    let expected = match self.log.back() {
                        Some(last) => last.entry.index.next(),
                        None => covered.next(),
                    };
                    if e.entry.index != expected && e.entry.index <= covered {
                        // Already covered by a snapshot taken meanwhile: nothing to keep.
                        continue;
                    }
                    if e.entry.index != expected {
                        self.violations.push(format!(
                            "AppendLog of {} reached the disk whose log ends at {}",
                            e.entry.index,
                            self.last_index()
                        ));
                        return;
                    }
                    self.log.push_back(e);
                }
            }
            DiskOp::Truncate { from } => {
                // A truncation issued before a snapshot was taken may reach the
                // disk after it and cut below the snapshot: harmless, the
                // snapshot covers that range (the in-memory mirror checks that
                // the node never truncates its own snapshot).
                while self.log.back().is_some_and(|e| e.entry.index >= from) {
                    self.log.pop_back();
                }
                self.forget_rot(|index| index >= from);
            }
            DiskOp::InstallSnapshot(s) => {
                let keep_suffix = matches!(self.durable_at(s.meta.index), DurableAt::Entry { term, .. } if term == s.meta.term)
                    && self
                        .log
                        .back()
                        .is_some_and(|e| e.entry.index > s.meta.index);
                if keep_suffix {
                    while self
                        .log
                        .front()
                        .is_some_and(|e| e.entry.index <= s.meta.index)
                    {
                        self.log.pop_front();
                    }
                } else {
                    self.log.clear();
                }
                let front = self
                    .log
                    .front()
                    .map_or(LogIndex(u64::MAX), |e| e.entry.index);
                self.forget_rot(|index| index < front);
                self.previous_snapshot = self.snapshot.replace(s);
            }
        }
    }

    /// The node crashed: a random prefix of the pending operations survives (the
    /// first lost append may be torn, leaving a prefix of its entries); the rest
    /// is lost. Returns what survived.
    pub fn crash(&mut self, rng: &mut SimRng) -> CrashAccount {
        self.fsync_in_flight = None;
        let total = self.pending.len();
        let keep = rng.below(total as u64 + 1) as usize;
        let mut torn = None;
        for _ in 0..keep {
            let (_, op) = self.pending.pop_front().expect("keep <= len");
            self.apply_durably(op);
        }
        if let Some((_, DiskOp::Append(entries))) = self.pending.front() {
            if entries.len() > 1 && rng.chance(self.timing.torn_append) {
                let survive = rng.below(entries.len() as u64) as usize;
                let part: Vec<DiskEntry> = entries[..survive].to_vec();
                torn = Some((survive, entries.len()));
                self.apply_durably(DiskOp::Append(part));
            }
        }
        self.pending.clear();
        CrashAccount {
            kept: keep,
            pending: total,
            torn,
        }
    }

    /// What a restarting node recovers: the durable hard state, snapshot and log.
    pub fn recovered(&self) -> RecoveredState {
        RecoveredState {
            hard_state: self.hard_state.clone(),
            snapshot: self.snapshot.as_ref().map(|s| s.meta.clone()),
            entries: self
                .recovered_entries()
                .into_iter()
                .map(|e| e.entry)
                .collect(),
            stored: None,
        }
    }

    /// Recovery at restart: drops a durable log the snapshot makes useless or
    /// contradicts (see [`SimDisk::recovered_entries`]) from the disk itself, as
    /// a real driver's recovery would, and returns what the node starts from.
    /// The node keeps at most `bytes_max` bytes of the log in memory (its
    /// `log_cache_bytes_max`): the front is handed over as `stored` and read
    /// back from this disk when needed.
    pub fn recover(&mut self, bytes_max: u64) -> RecoveredState {
        if self.recovered_entries().len() != self.log.len() {
            self.log.clear();
            self.rotten.clear();
        }
        self.recovered().split_stored(bytes_max)
    }

    /// The durable log a restarting node gets, with digests. Like a real
    /// driver, recovery drops a log that the snapshot makes useless or
    /// contradicts: one ending before the snapshot (appends that lost the race
    /// with a snapshot taken meanwhile), or one holding another term at the
    /// snapshot's index (a truncation that never reached the disk).
    pub fn recovered_entries(&self) -> Vec<DiskEntry> {
        if let Some(s) = &self.snapshot {
            let consistent = match self.durable_log_at(s.meta.index) {
                Some(e) => e.entry.term == s.meta.term,
                None => self
                    .log
                    .front()
                    .is_some_and(|f| f.entry.index > s.meta.index),
            };
            if !consistent {
                return Vec::new();
            }
        }
        self.log.iter().cloned().collect()
    }

    /// Durable entries from `from` on: at most `count_max`, stopping before
    /// their bytes exceed `bytes_max` but at least one; none when the log no
    /// longer holds `from` (what `Action::ReadLog` asks of a driver).
    pub fn read(&self, from: LogIndex, count_max: usize, bytes_max: u64) -> Entries {
        let Some(front) = self.log.front().map(|e| e.entry.index) else {
            return Entries::new();
        };
        if from < front {
            return Entries::new();
        }
        let mut bytes = 0;
        self.log
            .iter()
            .skip((from.0 - front.0) as usize)
            .take(count_max)
            .enumerate()
            .take_while(|(n, e)| {
                bytes += e.entry.budget_bytes();
                *n == 0 || bytes <= bytes_max
            })
            .map(|(_, e)| e.entry.clone())
            .collect()
    }

    fn durable_log_at(&self, index: LogIndex) -> Option<&DiskEntry> {
        let front = self.log.front()?.entry.index;
        if index < front {
            return None;
        }
        self.log.get((index.0 - front.0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKind;
    use raft_core::{Config, EntryKind};

    fn timing() -> DiskTiming {
        DiskTiming {
            fsync_min_ns: 1_000,
            fsync_mean_ns: 1_000,
            slowdown: 1,
            torn_append: Ppm::ALWAYS,
        }
    }

    fn entries(from: u64, to: u64, term: u64) -> Vec<DiskEntry> {
        (from..=to)
            .map(|i| DiskEntry {
                entry: LogEntry {
                    index: LogIndex(i),
                    term: Term(term),
                    kind: EntryKind::Nop,
                    data: Bytes::new(),
                },
                digest: i * 100 + term,
            })
            .collect()
    }

    #[test]
    fn group_commit_batches_ops_issued_during_an_fsync() {
        let mut rng = SimRng::new(1, StreamKind::Disk);
        let mut d = SimDisk::new(timing());
        let first = d
            .submit(DiskOp::Append(entries(1, 2, 1)), Instant(0), &mut rng)
            .expect("starts an fsync");
        assert!(
            d.submit(DiskOp::Append(entries(3, 3, 1)), Instant(1), &mut rng)
                .is_none()
        );
        assert!(
            d.submit(DiskOp::Append(entries(4, 5, 1)), Instant(2), &mut rng)
                .is_none()
        );
        let (notices, next) = d.complete_fsync(first.upto, first.at, &mut rng);
        assert_eq!(
            notices,
            vec![DiskNotice::LogPersisted {
                index: LogIndex(2),
                term: Term(1)
            }]
        );
        let next = next.expect("the rest waits for a second fsync");
        let (notices, none) = d.complete_fsync(next.upto, next.at, &mut rng);
        assert_eq!(
            notices,
            vec![DiskNotice::LogPersisted {
                index: LogIndex(5),
                term: Term(1)
            }]
        );
        assert!(none.is_none());
        assert_eq!(d.recovered().entries.len(), 5);
    }

    #[test]
    fn crash_keeps_a_prefix_and_can_resurrect_truncated_entries() {
        let mut lost_truncation = false;
        for seed in 0..64 {
            let mut rng = SimRng::new(seed, StreamKind::Disk);
            let mut d = SimDisk::new(timing());
            let f = d
                .submit(DiskOp::Append(entries(1, 4, 1)), Instant(0), &mut rng)
                .unwrap();
            d.complete_fsync(f.upto, f.at, &mut rng);
            d.submit(
                DiskOp::Truncate { from: LogIndex(3) },
                Instant(10),
                &mut rng,
            );
            d.submit(DiskOp::Append(entries(3, 6, 2)), Instant(10), &mut rng);
            d.crash(&mut rng);
            let r = d.recovered();
            let terms: Vec<u64> = r.entries.iter().map(|e| e.term.0).collect();
            // Durable entries are never lost; what survives is a prefix of the ops.
            assert!(
                terms.len() >= 2 && terms[..2] == [1, 1],
                "seed {seed}: {terms:?}"
            );
            if terms == [1, 1, 1, 1] {
                lost_truncation = true;
            }
            for w in r.entries.windows(2) {
                assert_eq!(
                    w[0].index.next(),
                    w[1].index,
                    "seed {seed}: log not contiguous"
                );
            }
        }
        assert!(lost_truncation, "some crash should lose the truncation");
    }

    #[test]
    fn stale_fsync_after_crash_does_nothing() {
        let mut rng = SimRng::new(2, StreamKind::Disk);
        let mut d = SimDisk::new(DiskTiming {
            torn_append: Ppm::NEVER,
            ..timing()
        });
        let f = d
            .submit(DiskOp::Append(entries(1, 1, 1)), Instant(0), &mut rng)
            .unwrap();
        d.crash(&mut rng);
        let (notices, next) = d.complete_fsync(f.upto, f.at, &mut rng);
        assert!(notices.is_empty() && next.is_none());
    }

    #[test]
    fn install_snapshot_replaces_a_conflicting_log_and_reports_in_order() {
        let mut rng = SimRng::new(3, StreamKind::Disk);
        let mut d = SimDisk::new(timing());
        let meta = SnapshotMeta {
            index: LogIndex(10),
            term: Term(3),
            config: Config::default(),
        };
        let snap = StoredSnapshot {
            meta: meta.clone(),
            data: Bytes::new(),
            digest: 7,
        };
        let f = d
            .submit(DiskOp::Append(entries(1, 3, 1)), Instant(0), &mut rng)
            .unwrap();
        d.submit(DiskOp::InstallSnapshot(snap), Instant(0), &mut rng);
        d.submit(DiskOp::Append(entries(11, 11, 3)), Instant(0), &mut rng);
        let (notices, _) = d.complete_fsync(f.upto, f.at, &mut rng);
        assert_eq!(
            notices[0],
            DiskNotice::LogPersisted {
                index: LogIndex(3),
                term: Term(1)
            }
        );
        let f2 = d.submit(DiskOp::Append(entries(12, 12, 3)), Instant(5), &mut rng);
        assert!(f2.is_none(), "an fsync is already running for the rest");
        let r = d.recovered();
        assert_eq!(r.snapshot, None, "not durable yet");
        assert_eq!(
            d.durable_at(LogIndex(2)),
            DurableAt::Entry {
                term: Term(1),
                digest: 201
            }
        );
    }

    #[test]
    fn compaction_may_not_pass_the_snapshot() {
        let mut d = SimDisk::new(timing());
        assert!(d.compact(LogIndex(1)).is_err());
        d.store_snapshot(StoredSnapshot {
            meta: SnapshotMeta {
                index: LogIndex(2),
                term: Term(1),
                config: Config::default(),
            },
            data: Bytes::new(),
            digest: 1,
        });
        assert!(d.compact(LogIndex(2)).is_ok());
        assert_eq!(d.durable_at(LogIndex(1)), DurableAt::Covered);
        assert_eq!(d.durable_at(LogIndex(3)), DurableAt::Missing);
    }
}
