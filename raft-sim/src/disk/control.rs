//! A test's hand on one disk: hold fsyncs (writes stay pending), force an
//! fsync now, and bit rot of a record already synced.
//!
//! **Bit rot and recovery.** raft-io-std checksums every record: on open, a
//! torn *tail* is truncated (it was never synced, so never acknowledged) and
//! any other corruption stops the node with an error naming where it is.
//! In this model every durable record was synced (a torn append leaves
//! whole records, see [`SimDisk::crash`]), so a record failing its check can
//! only be rot of synced data, which the node may have acknowledged and
//! which may be committed. Truncating it would silently un-acknowledge an
//! entry: the node could then vote for a candidate missing it, or help elect
//! one, and a committed entry could be lost. So the rule is: **recovery
//! refuses a disk with any rotten record** ([`SimDisk::check`]), wherever it
//! lies, tail included; the node stays down, and the world reports it
//! ([`crate::world::World::start_refusal`]). Raft masks the loss of that
//! node as it masks a crash: the others go on.
//!
//! The model keeps no per-record checksums; it remembers which records it
//! rotted, which is what a checksum would tell recovery. The byte is really
//! changed in the record's payload, so nothing that reads the rotten entry
//! could take it for the original.

use super::SimDisk;
use crate::rng::SimRng;
use bytes::Bytes;
use raft_core::{Instant, LogIndex, Term};
use std::fmt;

/// What recovery found wrong with a disk: why the node refuses to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiskDamage {
    /// A synced log record fails its checksum.
    CorruptRecord {
        /// The record's index.
        index: LogIndex,
        /// The record's term.
        term: Term,
        /// The rotten byte, from the start of the entry's payload.
        offset: usize,
    },
}

impl fmt::Display for DiskDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskDamage::CorruptRecord {
                index,
                term,
                offset,
            } => write!(
                f,
                "log record {index}/{term} fails its checksum (byte {offset} of its payload)"
            ),
        }
    }
}

/// Why a byte could not be rotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotError {
    /// No synced record at that index (never written, not yet synced,
    /// compacted into the snapshot, or truncated).
    NotDurable(LogIndex),
    /// The record's payload is shorter than the offset.
    OffsetOutOfRange {
        /// The record's index.
        index: LogIndex,
        /// The offset asked for.
        offset: usize,
        /// Its payload's length.
        len: usize,
    },
}

impl fmt::Display for RotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotError::NotDurable(index) => write!(f, "no synced log record at {index}"),
            RotError::OffsetOutOfRange { index, offset, len } => {
                write!(
                    f,
                    "record {index} has {len} payload bytes, no byte {offset}"
                )
            }
        }
    }
}

impl std::error::Error for RotError {}

impl SimDisk {
    /// Holds (`true`) or releases (`false`) the disk's fsyncs. While held, no
    /// fsync starts and one in flight never completes: writes stay pending
    /// (a crash then keeps a random prefix of them, as ever). Returns whether
    /// an fsync was in flight (cancelled). Releasing does not start an fsync
    /// by itself: see [`SimDisk::start_pending_fsync`].
    pub fn hold_fsyncs(&mut self, held: bool) -> bool {
        self.fsync_held = held;
        let cancelled = held && self.fsync_in_flight.take().is_some();
        if cancelled {
            // A fresh token for the next fsync, so the cancelled one's
            // completion, still queued in the world, can never match it.
            self.next_seq += 1;
        }
        cancelled
    }

    /// Whether fsyncs are held.
    pub fn fsyncs_held(&self) -> bool {
        self.fsync_held
    }

    /// Starts an fsync of the pending writes if none runs, fsyncs are not
    /// held and something is pending (after a release).
    pub fn start_pending_fsync(
        &mut self,
        now: Instant,
        rng: &mut SimRng,
    ) -> Option<super::FsyncDue> {
        let idle = self.fsync_in_flight.is_none() && !self.fsync_held;
        (idle && !self.pending.is_empty()).then(|| self.start_fsync(now, rng))
    }

    /// Makes an fsync of every pending write due now, held or not: returns
    /// the token to hand to [`SimDisk::complete_fsync`] at once, or `None`
    /// with nothing pending. An fsync in flight is superseded (its own
    /// completion becomes stale).
    pub fn force_fsync(&mut self) -> Option<u64> {
        if self.pending.is_empty() {
            return None;
        }
        self.fsync_in_flight = Some(self.next_seq);
        Some(self.next_seq)
    }

    /// Bit rot: changes byte `offset` of the payload of the synced log
    /// record at `index`. The next start refuses the disk ([`SimDisk::check`]).
    pub fn rot_synced_byte(&mut self, index: LogIndex, offset: usize) -> Result<(), RotError> {
        let front = self.log.front().map(|e| e.entry.index);
        let at = front
            .filter(|f| index >= *f)
            .map(|f| (index.0 - f.0) as usize);
        let Some(record) = at.and_then(|k| self.log.get_mut(k)) else {
            return Err(RotError::NotDurable(index));
        };
        let len = record.entry.data.len();
        if offset >= len {
            return Err(RotError::OffsetOutOfRange { index, offset, len });
        }
        let mut data = record.entry.data.to_vec();
        data[offset] = !data[offset];
        record.entry.data = Bytes::from(data);
        self.rotten.push(DiskDamage::CorruptRecord {
            index,
            term: record.entry.term,
            offset,
        });
        Ok(())
    }

    /// Recovery's integrity check, run before every start: the first rotten
    /// record still on the disk, if any (see the module doc for why the
    /// node refuses rather than truncates).
    pub fn check(&self) -> Result<(), DiskDamage> {
        match self.rotten.iter().min_by_key(|d| match d {
            DiskDamage::CorruptRecord { index, .. } => *index,
        }) {
            Some(d) => Err(*d),
            None => Ok(()),
        }
    }

    /// Forgets the rot of records that left the log (truncated, compacted,
    /// replaced by a snapshot): their bytes are no longer read.
    pub(super) fn forget_rot(&mut self, gone: impl Fn(LogIndex) -> bool) {
        if !self.rotten.is_empty() {
            self.rotten.retain(|d| match d {
                DiskDamage::CorruptRecord { index, .. } => !gone(*index),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{DiskEntry, DiskOp, DiskTiming};
    use crate::rng::{Ppm, StreamKind};
    use raft_core::{EntryKind, LogEntry};

    fn disk() -> SimDisk {
        SimDisk::new(DiskTiming {
            fsync_min_ns: 1_000,
            fsync_mean_ns: 1_000,
            slowdown: 1,
            torn_append: Ppm::NEVER,
        })
    }

    fn command(index: u64) -> DiskEntry {
        DiskEntry {
            entry: LogEntry {
                index: LogIndex(index),
                term: Term(1),
                kind: EntryKind::Command,
                data: Bytes::from_static(b"payload"),
            },
            digest: index,
        }
    }

    fn synced(count: u64) -> SimDisk {
        let mut rng = SimRng::new(1, StreamKind::Disk);
        let mut d = disk();
        let entries = (1..=count).map(command).collect();
        let f = d
            .submit(DiskOp::Append(entries), Instant(0), &mut rng)
            .expect("an fsync starts");
        d.complete_fsync(f.upto, f.at, &mut rng);
        d
    }

    #[test]
    fn a_rotten_synced_record_is_refused_wherever_it_lies() {
        for index in [1, 3] {
            let mut d = synced(3);
            assert_eq!(d.check(), Ok(()));
            d.rot_synced_byte(LogIndex(index), 2).expect("synced");
            let damage = DiskDamage::CorruptRecord {
                index: LogIndex(index),
                term: Term(1),
                offset: 2,
            };
            assert_eq!(d.check(), Err(damage));
            let data = &d.log[(index - 1) as usize].entry.data;
            assert_eq!(data[2], !b'y', "the byte really changed");
        }
    }

    #[test]
    fn only_synced_bytes_can_rot() {
        let mut rng = SimRng::new(2, StreamKind::Disk);
        let mut d = synced(2);
        d.submit(DiskOp::Append(vec![command(3)]), Instant(5), &mut rng);
        assert_eq!(
            d.rot_synced_byte(LogIndex(3), 0),
            Err(RotError::NotDurable(LogIndex(3)))
        );
        assert_eq!(
            d.rot_synced_byte(LogIndex(1), 7),
            Err(RotError::OffsetOutOfRange {
                index: LogIndex(1),
                offset: 7,
                len: 7
            })
        );
        assert_eq!(d.check(), Ok(()));
    }

    #[test]
    fn a_rotten_record_truncated_away_is_no_longer_damage() {
        let mut rng = SimRng::new(3, StreamKind::Disk);
        let mut d = synced(3);
        d.rot_synced_byte(LogIndex(3), 0).expect("synced");
        let f = d
            .submit(DiskOp::Truncate { from: LogIndex(3) }, Instant(5), &mut rng)
            .expect("an fsync starts");
        d.complete_fsync(f.upto, f.at, &mut rng);
        assert_eq!(d.check(), Ok(()));
    }

    #[test]
    fn held_fsyncs_keep_writes_pending_until_forced() {
        let mut rng = SimRng::new(4, StreamKind::Disk);
        let mut d = disk();
        let f = d.submit(DiskOp::Append(vec![command(1)]), Instant(0), &mut rng);
        assert!(d.hold_fsyncs(true), "the fsync in flight is cancelled");
        let f = f.expect("an fsync had started");
        let (notices, _) = d.complete_fsync(f.upto, f.at, &mut rng);
        assert!(notices.is_empty(), "a cancelled fsync completes nothing");
        assert!(
            d.submit(DiskOp::Append(vec![command(2)]), Instant(1), &mut rng)
                .is_none()
        );
        assert_eq!(d.pending_count(), 2);
        assert!(d.start_pending_fsync(Instant(2), &mut rng).is_none());
        let upto = d.force_fsync().expect("writes pending");
        let (notices, next) = d.complete_fsync(upto, Instant(2), &mut rng);
        assert_eq!(notices.len(), 1);
        assert!(next.is_none());
        assert_eq!(d.last_index(), LogIndex(2));
        assert_eq!(d.pending_count(), 0);
    }
}
