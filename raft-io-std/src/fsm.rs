//! The user's state machine.

use raft_core::{LogEntry, LogIndex};
use std::io::{self, Read, Write};

/// Writes a snapshot captured by [`Fsm::snapshot_source`], on a thread of its own.
pub type SnapshotSource = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

/// A deterministic state machine that the cluster replicates.
///
/// The node calls it from one thread (its applier), in log order:
/// [`Fsm::apply`] for every committed entry above [`Fsm::index`],
/// [`Fsm::snapshot_source`] (or [`Fsm::snapshot`]) when the core asks for a
/// snapshot, [`Fsm::restore`] when a snapshot replaces its state (at open,
/// or when a leader sends one).
///
/// Heartbeats, votes and replication never wait for the state machine. A
/// snapshot written by [`Fsm::snapshot`] does hold up the applies behind it
/// (and so the clients waiting for them) for as long as it takes; a state
/// machine that can capture its state cheaply should implement
/// [`Fsm::snapshot_source`], whose writer runs on its own thread while
/// applies go on.
///
/// `apply` sees entries of every kind: `Command` entries carry the user's
/// commands; `Nop` and membership entries (`Initialize`, `AddPeer`,
/// `PromotePeer`, `RemovePeer`) are passed too, so `index` can follow the log,
/// and most state machines ignore them.
///
/// ```
/// use raft_io_std::Fsm;
/// use raft_core::{EntryKind, LogEntry, LogIndex};
/// use std::io::{self, Read, Write};
///
/// /// Counts the commands it applied.
/// #[derive(Default)]
/// struct Counter { count: u64, index: LogIndex }
///
/// impl Fsm for Counter {
///     fn apply(&mut self, entry: &LogEntry) {
///         if entry.kind == EntryKind::Command {
///             self.count += 1;
///         }
///         self.index = entry.index;
///     }
///     fn index(&self) -> LogIndex {
///         self.index
///     }
///     fn snapshot(&mut self, w: &mut dyn Write) -> io::Result<()> {
///         w.write_all(&self.count.to_le_bytes())?;
///         w.write_all(&self.index.0.to_le_bytes())
///     }
///     fn restore(&mut self, r: &mut dyn Read) -> io::Result<()> {
///         let mut b = [0u8; 16];
///         r.read_exact(&mut b)?;
///         self.count = u64::from_le_bytes(b[..8].try_into().unwrap());
///         self.index = LogIndex(u64::from_le_bytes(b[8..].try_into().unwrap()));
///         Ok(())
///     }
/// }
/// ```
pub trait Fsm: Send + 'static {
    /// Applies one committed entry.
    fn apply(&mut self, entry: &LogEntry);
    /// The index of the last entry applied (0 for none). Entries at or below
    /// it are not applied again, so a state machine that persists itself can
    /// resume where it stopped.
    fn index(&self) -> LogIndex;
    /// Writes the whole state (as of [`Fsm::index`]) to `w`.
    fn snapshot(&mut self, w: &mut dyn Write) -> io::Result<()>;
    /// Captures the state as of [`Fsm::index`] (a consistent point: a clone,
    /// a copy-on-write handle, an encoding in memory) and returns a writer
    /// that writes that state to the snapshot file later, on another thread,
    /// while the applier goes on applying entries. `None` (the default)
    /// writes the snapshot with [`Fsm::snapshot`] on the applier instead.
    fn snapshot_source(&mut self) -> Option<SnapshotSource> {
        None
    }
    /// Replaces the whole state with a snapshot read from `r`. Afterwards
    /// [`Fsm::index`] must return the snapshot's index.
    fn restore(&mut self, r: &mut dyn Read) -> io::Result<()>;
}
