//! Durable storage for one node: the write-ahead log, the hard state and the
//! snapshots, each in its own part of one directory.
//!
//! ```text
//! <dir>/LOCK                       the holder's pid, under an exclusive lock (lock.rs)
//! <dir>/hard_state                 term, vote, cluster id      (hard_state.rs)
//! <dir>/wal/<first index>.wal      log segments                (wal.rs, record.rs)
//! <dir>/snapshots/<index>-<term>.snap                          (snapshot_store.rs)
//! ```
//!
//! * [`DataDirLock`] keeps a second process off the directory; the node takes
//!   it before it reads any file there.
//! * [`open`] (and [`open_within`]) opens all three, recovers, and reconciles the log with the newest
//!   snapshot into a [`raft_core::RecoveredState`] for `Node::new`.
//! * [`LogWriter`] is the group-commit thread the driver hands `AppendLog`,
//!   `TruncateLog` and `CompactLog` to; its [`LogReport::Persisted`] becomes
//!   `Event::LogPersisted`. It also serves `ReadLog` in order with them
//!   ([`Wal::read`], through a sparse index per segment); its
//!   [`LogReport::Read`] becomes `Event::LogRead`.
//! * [`open_within`] recovers only the tail of the log that fits the node's
//!   cache; the front stays on disk, described by
//!   [`RecoveredState::stored`](raft_core::RecoveredState::stored).
//! * [`HardStateStore::save`] executes `PersistHardState` synchronously (it is
//!   durable when it returns, as the core requires before any later action).
//! * [`SnapshotStore`] takes the FSM's snapshots and receives the leader's.
//!
//! Recovery never drops data silently: a torn tail (an interrupted last write)
//! is cut off; any other damage is a [`StorageError::Corrupt`] naming the file
//! and byte offset. `docs/storage.md` has the formats byte by byte, the
//! recovery rules and the durability contract.
//!
//! For fuzzing, [`recover_from_image`] runs the log's recovery on an in-memory
//! directory image; [`record::decode_record`] and
//! [`decode_hard_state`] decode single records and files.

mod durable;
pub(crate) mod error;
pub(crate) mod hard_state;
pub(crate) mod identity;
pub(crate) mod lock;
pub(crate) mod log_writer;
mod metrics;
pub mod record;
mod record_stream;
mod recovered_log;
pub(crate) mod recovery;
mod segment_index;
mod small_file;
pub(crate) mod snapshot_store;
pub(crate) mod wal;
mod wal_read;

pub use error::{Corruption, HeaderError, RecordError, StorageError};
pub use hard_state::{HardStateStore, decode_hard_state, encode_hard_state};
pub use identity::{Identity, IdentityStore};
pub use lock::DataDirLock;
pub use log_writer::{LogOp, LogReport, LogWriter, LogWriterOptions};
pub use metrics::WalMetrics;
pub use recovery::{Recovered, TornTail, recover_from_image, recover_image_within};
pub use snapshot_store::{SNAPSHOTS_KEPT_DEFAULT, SnapshotReader, SnapshotStore, SnapshotWriter};
pub use wal::{Wal, WalOptions};

use raft_core::RecoveredState;
use std::path::Path;

/// The log's subdirectory.
pub const WAL_DIR: &str = "wal";

/// A file written once the node's write-ahead log first exists: a data
/// directory with this file and no log segment lost its log.
pub const LOG_MARKER_FILE: &str = "log-created";

fn has_segment(wal_dir: &Path) -> Result<bool, StorageError> {
    let entries = match std::fs::read_dir(wal_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StorageError::io("list directory", wal_dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list directory", wal_dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(".wal") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates a node's data directory `dir` (and its missing parents) if
/// missing, with every new directory's entry fsynced in its parent: the hard
/// state and the log inside it are only as durable as the directory itself.
pub(crate) fn create_data_dir(dir: &Path) -> Result<(), StorageError> {
    durable::create_dir(dir, &std::sync::atomic::AtomicU64::new(0))
}

/// The snapshots' subdirectory.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// Tunables of a node's storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    /// The log's options.
    pub wal: WalOptions,
    /// How many snapshots to keep. Default [`SNAPSHOTS_KEPT_DEFAULT`].
    pub snapshots_kept: usize,
}

impl Default for StorageOptions {
    fn default() -> StorageOptions {
        StorageOptions {
            wal: WalOptions::default(),
            snapshots_kept: SNAPSHOTS_KEPT_DEFAULT,
        }
    }
}

/// A node's storage, opened and recovered.
#[derive(Debug)]
pub struct Opened {
    /// The log, ready to hand to a [`LogWriter`].
    pub wal: Wal,
    /// The hard state file.
    pub hard_state: HardStateStore,
    /// The snapshots.
    pub snapshots: SnapshotStore,
    /// What `raft_core::Node::new` needs: the hard state, the newest snapshot's
    /// metadata, and the log entries (a trailing window before it included).
    pub state: RecoveredState,
    /// The torn tail recovery cut off the log, if any (for the operator's log).
    pub torn_tail: Option<TornTail>,
}

/// Opens (creating if missing) the storage in `dir` and recovers it, loading
/// the whole log. See [`open_within`].
pub fn open(dir: impl AsRef<Path>, options: &StorageOptions) -> Result<Opened, StorageError> {
    open_within(dir, options, u64::MAX)
}

/// Opens (creating if missing) the storage in `dir` and recovers it, keeping
/// in memory only the longest tail of the log whose
/// [`LogEntry::budget_bytes`](raft_core::LogEntry::budget_bytes) fit
/// `cache_bytes_max` (a node passes its
/// [`NodeOptions::log_cache_bytes_max`](raft_core::NodeOptions::log_cache_bytes_max));
/// the front stays on disk, described by [`RecoveredState::stored`], and the
/// node reads it back with `Action::ReadLog`.
///
/// Reconciles the log with the newest snapshot `S` (index `s`, term `t`), which
/// settles a crash in the middle of installing a snapshot:
/// * the log must not start after `s + 1` (that would be a hole: an
///   [`StorageError::Inconsistent`] error); without a snapshot it must start at 1;
/// * if the log holds `s` with term `t`, all of it is kept: the entries after
///   `s`, and the trailing window before `s` that compaction has not deleted
///   yet (log matching makes them the committed entries the snapshot covers),
///   so a follower a little behind still catches up from the log after a
///   restart instead of needing the snapshot;
/// * otherwise (it holds `s` with another term, or ends before `s`) the log
///   belongs to a history the snapshot replaced: it is dropped and a new log
///   starts after `s`.
///
/// The returned log (the stored front and the entries, as one) is contiguous
/// and ends at or after `s`; it starts at or before `s + 1`.
pub fn open_within(
    dir: impl AsRef<Path>,
    options: &StorageOptions,
    cache_bytes_max: u64,
) -> Result<Opened, StorageError> {
    let dir = dir.as_ref();
    let (hard_state, hard) = HardStateStore::open(dir)?;
    let snapshots = SnapshotStore::open(dir.join(SNAPSHOT_DIR), options.snapshots_kept)?;
    let snapshot = snapshots.latest()?;
    let wal_dir = dir.join(WAL_DIR);
    let marker = dir.join(LOG_MARKER_FILE);
    // `exists()` would read a marker it cannot check (EIO) as no marker, and
    // the log it guards would silently restart empty.
    let marked = marker
        .try_exists()
        .map_err(|e| StorageError::io("check", &marker, e))?;
    if marked && !has_segment(&wal_dir)? {
        // Wal::open would start an empty log here and every entry this node
        // held, acknowledged ones included, would be silently forgotten.
        return Err(StorageError::Inconsistent {
            path: wal_dir,
            reason: format!(
                "the write-ahead log is missing: {LOG_MARKER_FILE} says this node wrote one, \
                 but no segment is left; restore the directory from a backup, or wipe the \
                 whole data directory and join as a new node"
            ),
        });
    }
    let (mut wal, recovered) = Wal::open_within(&wal_dir, options.wal.clone(), cache_bytes_max)?;
    if !marked {
        // The log exists from now on (Wal::open keeps at least one segment).
        let fsyncs = wal.metrics();
        durable::write_atomically(
            dir,
            LOG_MARKER_FILE,
            b"a write-ahead log exists in wal/\n",
            &fsyncs.fsyncs,
        )?;
    }
    let mut entries = recovered.entries;
    let mut stored = recovered.stored;
    match &snapshot {
        None => {
            if wal.first_index().0 != 1 {
                return Err(StorageError::Inconsistent {
                    path: dir.to_path_buf(),
                    reason: format!(
                        "the log starts at {} but there is no snapshot",
                        wal.first_index()
                    ),
                });
            }
        }
        Some(meta) => {
            let s = meta.index;
            if wal.first_index() > s.next() {
                return Err(StorageError::Inconsistent {
                    path: dir.to_path_buf(),
                    reason: format!(
                        "the log starts at {} but the newest snapshot ends at {s}",
                        wal.first_index()
                    ),
                });
            }
            if wal.term_at(s).is_some_and(|term| term != meta.term) {
                tracing::warn!(%s, "log conflicts with the snapshot at its last index; dropping the log after it");
                wal.truncate(s)?;
            }
            if wal.last_index() < s {
                // Past the log's end: this starts a new, empty log after `s`.
                wal.compact(s)?;
                wal.sync()?;
                entries.clear();
                stored = None;
            }
        }
    }
    Ok(Opened {
        wal,
        hard_state,
        snapshots,
        state: RecoveredState {
            hard_state: hard,
            snapshot,
            entries,
            stored,
        },
        torn_tail: recovered.torn_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::durable::synced_dirs;
    use super::*;
    use raft_core::{EntryKind, HardState, LogEntry, LogIndex, SnapshotMeta, Term};
    use std::io::Write;

    #[test]
    fn reopening_makes_the_directory_entries_a_killed_process_left_unsynced_durable() {
        // A process killed between a rename (a new segment, the hard state,
        // a received snapshot) and the fsync of its directory leaves the new
        // file visible but not durable. The next process reads it and acts on
        // it (reports the entries durable, votes again for the same
        // candidate, resets the log after the snapshot): a power cut then
        // takes it away under those acts. So an open makes the entries it
        // reads durable, as it already does for the last segment's bytes.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut opened = open(dir, &StorageOptions::default()).unwrap();
        let entry = LogEntry {
            index: LogIndex(1),
            term: Term(1),
            kind: EntryKind::Command,
            data: bytes::Bytes::from_static(b"x"),
        };
        opened.wal.append(&[entry]).unwrap();
        opened.wal.sync().unwrap();
        let hard = HardState {
            term: Term(1),
            ..HardState::default()
        };
        opened.hard_state.save(&hard).unwrap();
        let meta = SnapshotMeta {
            index: LogIndex(1),
            term: Term(1),
            config: raft_core::Config::default(),
        };
        let mut writer = opened.snapshots.create(meta).unwrap();
        writer.write_all(b"state").unwrap();
        writer.finish().unwrap();
        let (mut identity, _) = IdentityStore::open(dir).unwrap();
        identity
            .save(&Identity {
                node_id: raft_core::NodeId(1),
                cluster_id: None,
            })
            .unwrap();
        drop(opened);

        synced_dirs::take();
        IdentityStore::open(dir).unwrap();
        let reopened = open(dir, &StorageOptions::default()).unwrap();
        assert_eq!(reopened.state.hard_state, hard);
        let synced = synced_dirs::take();
        for wanted in [dir.to_path_buf(), dir.join(WAL_DIR), dir.join(SNAPSHOT_DIR)] {
            assert!(
                synced.contains(&wanted),
                "{} not fsynced on open; synced: {synced:?}",
                wanted.display()
            );
        }
    }
}
