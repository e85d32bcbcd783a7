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
    /// `snapshot.index`.
    pub entries: Vec<LogEntry>,
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
    } = recovered;
    if hard_state.term > Term::LIMIT {
        return Err(RecoveryError::TermExhausted(hard_state.term));
    }
    if (snapshot.is_some() || !entries.is_empty()) && hard_state.cluster_id.is_none() {
        return Err(RecoveryError::NoClusterId);
    }
    check_entries(&entries)?;
    if let Some(meta) = &snapshot {
        check_snapshot(meta, &hard_state, &entries)?;
    }
    let (base_index, base_term, entries) = split_at_base(snapshot.as_ref(), entries)?;
    if let Some(first) = entries.first() {
        if first.term < base_term {
            return Err(RecoveryError::TermsDecrease(first.index));
        }
    }
    let last_term = entries.last().map_or(base_term, |e| e.term);
    if last_term > hard_state.term {
        return Err(RecoveryError::TermAboveHardState {
            log: last_term,
            hard_state: hard_state.term,
        });
    }
    for e in entries.iter().filter(|e| e.kind.is_config()) {
        let decoded = Config::decode(&e.data);
        if decoded.map_or(true, |c| Some(c.cluster_id) != hard_state.cluster_id) {
            return Err(RecoveryError::BadConfigEntry(e.index));
        }
    }
    let log = RaftLog::new(base_index, base_term, entries);
    let configs =
        ConfigLog::recover(snapshot.as_ref(), &log).map_err(RecoveryError::BadConfigEntry)?;
    Ok(Recovered {
        hard_state,
        snapshot,
        log,
        configs,
    })
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
/// state, and agrees with the entries around it.
fn check_snapshot(
    meta: &SnapshotMeta,
    hard_state: &HardState,
    entries: &[LogEntry],
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
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(());
    };
    if first.index > meta.index.next() {
        return Err(RecoveryError::GapAfterSnapshot {
            first: first.index,
            snapshot: meta.index,
        });
    }
    if last.index < meta.index {
        return Err(RecoveryError::LogEndsBeforeSnapshot {
            last: last.index,
            snapshot: meta.index,
        });
    }
    if let Some(at) = entries.iter().find(|e| e.index == meta.index) {
        if at.term != meta.term {
            return Err(RecoveryError::SnapshotTermMismatch(meta.index));
        }
    }
    // The snapshot's configuration is the one in force at its index: no
    // membership entry it covers may be newer.
    let newer_config = entries
        .iter()
        .filter(|e| e.kind.is_config() && e.index > meta.config.index && e.index <= meta.index)
        .map(|e| e.index)
        .next();
    if newer_config.is_some() {
        return Err(bad);
    }
    Ok(())
}

/// The log's base `(index, term)` and the entries after it. Without a
/// snapshot the log starts at index 1. With one, entries start right after
/// it, or earlier (a trailing window): unless the window starts at index 1,
/// its first entry then becomes the base, since the term before it is unknown.
fn split_at_base(
    snapshot: Option<&SnapshotMeta>,
    mut entries: Vec<LogEntry>,
) -> Result<(LogIndex, Term, Vec<LogEntry>), RecoveryError> {
    let Some(meta) = snapshot else {
        if let Some(first) = entries.first() {
            if first.index != LogIndex(1) {
                return Err(RecoveryError::GapAfterSnapshot {
                    first: first.index,
                    snapshot: LogIndex(0),
                });
            }
        }
        return Ok((LogIndex(0), Term(0), entries));
    };
    match entries.first() {
        Some(first) if first.index == LogIndex(1) => Ok((LogIndex(0), Term(0), entries)),
        Some(first) if first.index <= meta.index => {
            let first = entries.remove(0);
            Ok((first.index, first.term, entries))
        }
        _ => Ok((meta.index, meta.term, entries)),
    }
}
