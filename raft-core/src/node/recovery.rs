//! What a driver hands [`Node::new`](super::Node::new) at startup, and the
//! checks that it is consistent. The driver's storage may be damaged, stale
//! or someone else's: every inconsistency is a typed [`RecoveryError`], never
//! a panic, and a state that passes these checks satisfies every invariant
//! the node asserts.

use super::RaftLog;
use super::membership::ConfigLog;
use crate::config::Config;
use crate::entry::LogEntry;
use crate::message::SnapshotMeta;
use crate::options::{InvalidOptions, NodeOptions};
use crate::state::HardState;
use crate::types::{LogIndex, Term};
use thiserror::Error;

/// What the driver recovered from durable storage at startup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The last installed or taken snapshot, if any. The driver has restored the
    /// FSM from it (or from nothing when `None`).
    pub snapshot: Option<SnapshotMeta>,
    /// The durable log entries, contiguous. Without a snapshot they start at
    /// index 1; with one they start at or before `snapshot.index + 1` (a
    /// trailing window kept behind the snapshot) and end at or after
    /// `snapshot.index`. With `stored`, these are the log's tail: they
    /// continue right after `stored.last` (and may be empty).
    pub entries: Vec<LogEntry>,
    /// The front of the durable log, left in storage instead of loaded into
    /// `entries` so that recovery stays within the node's memory budget
    /// ([`NodeOptions::log_cache_bytes_max`]); the node reads them back with
    /// [`Action::ReadLog`](crate::Action::ReadLog) when it needs them. The
    /// rules above apply to `stored` and `entries` together, as one log.
    /// `None`: `entries` is the whole log.
    pub stored: Option<StoredEntries>,
}

/// Durable log entries a driver left in storage at recovery, described
/// without their payloads: their indexes, terms and membership entries.
///
/// ```
/// use raft_core::{LogIndex, StoredEntries, Term};
/// // Entries 1..=4 of term 1 and 5..=9 of term 3 stay on disk.
/// let stored = StoredEntries {
///     term_starts: vec![(LogIndex(1), Term(1)), (LogIndex(5), Term(3))],
///     last: LogIndex(9),
///     config_entries: Vec::new(),
/// };
/// # let _ = stored;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredEntries {
    /// Where each run of one term begins, as `(index, term)`, both strictly
    /// increasing; the first is the first stored entry.
    pub term_starts: Vec<(LogIndex, Term)>,
    /// The last stored entry's index.
    pub last: LogIndex,
    /// The membership entries among them, with their payloads, in index
    /// order: the node must know every configuration its log holds.
    pub config_entries: Vec<LogEntry>,
}

/// Recovered state (or options) that cannot be right: the driver's storage is
/// damaged or belongs to something else, or the options are unusable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The options break a rule of [`NodeOptions`].
    #[error("invalid options: {0}")]
    InvalidOptions(#[from] InvalidOptions),
    /// The entries are not consecutive (or one sits at index 0).
    #[error("recovered log is not contiguous at index {0}")]
    NotContiguous(LogIndex),
    /// An entry's term is below the one before it (or below the snapshot's),
    /// or is 0.
    #[error("recovered log terms decrease (or are 0) at index {0}")]
    TermsDecrease(LogIndex),
    /// The entries leave a gap after the snapshot (or, without one, do not
    /// start at index 1).
    #[error("recovered log starts at {first} but the snapshot ends at {snapshot}")]
    GapAfterSnapshot {
        /// The first entry's index.
        first: LogIndex,
        /// The snapshot's index (0 without a snapshot).
        snapshot: LogIndex,
    },
    /// The entries end before the snapshot's index: they are a stale log the
    /// snapshot replaced, not its trailing window.
    #[error("recovered log ends at {last}, before the snapshot at {snapshot}")]
    LogEndsBeforeSnapshot {
        /// The last entry's index.
        last: LogIndex,
        /// The snapshot's index.
        snapshot: LogIndex,
    },
    /// The entry at the snapshot's index has another term than the snapshot.
    #[error("entry at snapshot index {0} has a different term than the snapshot")]
    SnapshotTermMismatch(LogIndex),
    /// The log (or the snapshot) holds a term above the hard state's term.
    #[error("log holds term {log} above the hard state's term {hard_state}")]
    TermAboveHardState {
        /// The log's (or snapshot's) last term.
        log: Term,
        /// The hard state's term.
        hard_state: Term,
    },
    /// The hard state's term is above [`Term::LIMIT`], too close to running
    /// out of terms to campaign in.
    #[error("hard state term {0} leaves no room for a later term")]
    TermExhausted(Term),
    /// A membership entry whose payload does not decode, or names another cluster.
    #[error("membership entry at {0} is not a configuration of this cluster")]
    BadConfigEntry(LogIndex),
    /// A snapshot at index 0, or whose configuration is invalid, of another
    /// cluster, newer than the snapshot, or older than a membership entry the
    /// snapshot covers.
    #[error("snapshot at {0} is malformed or its configuration disagrees with it")]
    BadSnapshot(LogIndex),
    /// A log or snapshot without a cluster id in the hard state.
    #[error("the log or snapshot is not empty but the hard state names no cluster")]
    NoClusterId,
}

/// A recovered state that passed every check, in the node's own terms.
pub(crate) struct Recovered {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotMeta>,
    pub(crate) log: RaftLog,
    pub(crate) configs: ConfigLog,
}

/// Checks `options` and `recovered` and builds the node's log and configurations.
pub(crate) fn recover(
    options: &NodeOptions,
    recovered: RecoveredState,
) -> Result<Recovered, RecoveryError> {
    options.validate()?;
    let RecoveredState {
        hard_state,
        snapshot,
        entries,
        stored,
    } = recovered;
    if hard_state.term > Term::LIMIT {
        return Err(RecoveryError::TermExhausted(hard_state.term));
    }
    if let Some(stored) = &stored {
        check_stored(stored, &entries)?;
    }
    check_entries(&entries)?;
    let view = LogView {
        stored: stored.as_ref(),
        entries: &entries,
    };
    if (snapshot.is_some() || view.last().is_some()) && hard_state.cluster_id.is_none() {
        return Err(RecoveryError::NoClusterId);
    }
    if let Some(meta) = &snapshot {
        check_snapshot(meta, &hard_state, &view)?;
    }
    let (base_index, base_term) = base(snapshot.as_ref(), &view)?;
    if let Some(term) = view.term_at(base_index.next()) {
        if term < base_term {
            return Err(RecoveryError::TermsDecrease(base_index.next()));
        }
    }
    let last_term = view
        .last()
        .and_then(|last| view.term_at(last))
        .map_or(base_term, |t| t.max(base_term));
    if last_term > hard_state.term {
        return Err(RecoveryError::TermAboveHardState {
            log: last_term,
            hard_state: hard_state.term,
        });
    }
    let configs: Vec<&LogEntry> = view.configs().filter(|e| e.index > base_index).collect();
    for e in &configs {
        let decoded = Config::decode(&e.data);
        if decoded.map_or(true, |c| Some(c.cluster_id) != hard_state.cluster_id) {
            return Err(RecoveryError::BadConfigEntry(e.index));
        }
    }
    let configs = ConfigLog::recover(snapshot.as_ref(), configs.into_iter())
        .map_err(RecoveryError::BadConfigEntry)?;
    let entries: Vec<LogEntry> = entries
        .into_iter()
        .filter(|e| e.index > base_index)
        .collect();
    let log = match &stored {
        Some(stored) => RaftLog::with_stored(
            base_index,
            base_term,
            &stored.term_starts,
            stored.last,
            entries,
        ),
        None => RaftLog::new(base_index, base_term, entries),
    }
    .with_cache_bytes_max(options.log_cache_bytes_max);
    Ok(Recovered {
        hard_state,
        snapshot,
        log,
        configs,
    })
}

/// The recovered log as one: the stored front (terms and membership
/// entries only) and the entries in memory after it.
struct LogView<'a> {
    stored: Option<&'a StoredEntries>,
    entries: &'a [LogEntry],
}

impl LogView<'_> {
    fn first(&self) -> Option<LogIndex> {
        match self.stored {
            Some(s) => s.term_starts.first().map(|&(i, _)| i),
            None => self.entries.first().map(|e| e.index),
        }
    }

    fn last(&self) -> Option<LogIndex> {
        match self.entries.last() {
            Some(e) => Some(e.index),
            None => self.stored.map(|s| s.last),
        }
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        let (first, last) = (self.first()?, self.last()?);
        if index < first || index > last {
            return None;
        }
        match self.stored.filter(|s| index <= s.last) {
            Some(s) => {
                let at = s.term_starts.partition_point(|&(i, _)| i <= index);
                Some(s.term_starts[at - 1].1)
            }
            None => {
                let first_entry = self.entries[0].index;
                Some(self.entries[(index.0 - first_entry.0) as usize].term)
            }
        }
    }

    /// Every membership entry, in index order.
    fn configs(&self) -> impl Iterator<Item = &LogEntry> {
        self.stored
            .into_iter()
            .flat_map(|s| s.config_entries.iter())
            .chain(self.entries.iter().filter(|e| e.kind.is_config()))
    }
}

/// The stored front is well formed and the entries continue it.
fn check_stored(stored: &StoredEntries, entries: &[LogEntry]) -> Result<(), RecoveryError> {
    let Some(&(first, first_term)) = stored.term_starts.first() else {
        return Err(RecoveryError::NotContiguous(stored.last));
    };
    if first.0 == 0 {
        return Err(RecoveryError::NotContiguous(first));
    }
    if first_term.0 == 0 {
        return Err(RecoveryError::TermsDecrease(first));
    }
    for pair in stored.term_starts.windows(2) {
        if pair[1].0 <= pair[0].0 {
            return Err(RecoveryError::NotContiguous(pair[1].0));
        }
        if pair[1].1 <= pair[0].1 {
            return Err(RecoveryError::TermsDecrease(pair[1].0));
        }
    }
    let &(last_start, last_term) = stored.term_starts.last().expect("not empty");
    if stored.last < last_start {
        return Err(RecoveryError::NotContiguous(last_start));
    }
    let view = LogView {
        stored: Some(stored),
        entries: &[],
    };
    let mut after = LogIndex(0);
    for e in &stored.config_entries {
        if e.index <= after || !e.kind.is_config() || view.term_at(e.index) != Some(e.term) {
            return Err(RecoveryError::BadConfigEntry(e.index));
        }
        after = e.index;
    }
    if let Some(e) = entries.first() {
        if e.index != stored.last.next() {
            return Err(RecoveryError::NotContiguous(e.index));
        }
        if e.term < last_term {
            return Err(RecoveryError::TermsDecrease(e.index));
        }
    }
    Ok(())
}

/// Consecutive indexes from 1 on, terms from 1 on that never decrease.
fn check_entries(entries: &[LogEntry]) -> Result<(), RecoveryError> {
    if let Some(first) = entries.first() {
        if first.index.0 == 0 {
            return Err(RecoveryError::NotContiguous(first.index));
        }
        if first.term.0 == 0 {
            return Err(RecoveryError::TermsDecrease(first.index));
        }
    }
    for pair in entries.windows(2) {
        if pair[0].index.0.checked_add(1) != Some(pair[1].index.0) {
            return Err(RecoveryError::NotContiguous(pair[1].index));
        }
        if pair[1].term < pair[0].term {
            return Err(RecoveryError::TermsDecrease(pair[1].index));
        }
    }
    Ok(())
}

/// The snapshot is well formed, of this cluster, no newer than the hard
/// state, and agrees with the log around it.
fn check_snapshot(
    meta: &SnapshotMeta,
    hard_state: &HardState,
    log: &LogView<'_>,
) -> Result<(), RecoveryError> {
    let bad = RecoveryError::BadSnapshot(meta.index);
    if meta.index.0 == 0
        || meta.term.0 == 0
        || meta.config.validate().is_err()
        || Some(meta.config.cluster_id) != hard_state.cluster_id
        || meta.config.index > meta.index
    {
        return Err(bad);
    }
    if meta.term > hard_state.term {
        return Err(RecoveryError::TermAboveHardState {
            log: meta.term,
            hard_state: hard_state.term,
        });
    }
    let (Some(first), Some(last)) = (log.first(), log.last()) else {
        return Ok(());
    };
    if first > meta.index.next() {
        return Err(RecoveryError::GapAfterSnapshot {
            first,
            snapshot: meta.index,
        });
    }
    if last < meta.index {
        return Err(RecoveryError::LogEndsBeforeSnapshot {
            last,
            snapshot: meta.index,
        });
    }
    if log.term_at(meta.index).is_some_and(|t| t != meta.term) {
        return Err(RecoveryError::SnapshotTermMismatch(meta.index));
    }
    // The snapshot's configuration is the one in force at its index: no
    // membership entry it covers may be newer.
    if log
        .configs()
        .any(|e| e.index > meta.config.index && e.index <= meta.index)
    {
        return Err(bad);
    }
    Ok(())
}

/// The log's base `(index, term)`. Without a snapshot the log starts at
/// index 1. With one, entries start right after it, or earlier (a trailing
/// window): unless the window starts at index 1, its first entry then
/// becomes the base, since the term before it is unknown.
fn base(
    snapshot: Option<&SnapshotMeta>,
    log: &LogView<'_>,
) -> Result<(LogIndex, Term), RecoveryError> {
    let first = log.first();
    let Some(meta) = snapshot else {
        if let Some(first) = first {
            if first != LogIndex(1) {
                return Err(RecoveryError::GapAfterSnapshot {
                    first,
                    snapshot: LogIndex(0),
                });
            }
        }
        return Ok((LogIndex(0), Term(0)));
    };
    match first {
        Some(first) if first == LogIndex(1) => Ok((LogIndex(0), Term(0))),
        Some(first) if first <= meta.index => {
            Ok((first, log.term_at(first).expect("the first entry")))
        }
        _ => Ok((meta.index, meta.term)),
    }
}
