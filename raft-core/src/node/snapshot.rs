//! Snapshots and log compaction. The application snapshots its FSM (asked by
//! `TakeSnapshot` once the [`SnapshotPolicy`](crate::SnapshotPolicy) finds
//! enough log applied since the last one); the core records the
//! snapshot and lets the driver drop the log before it, keeping a trailing
//! window so a briefly disconnected follower resumes from the log. A follower
//! behind the compaction point gets the snapshot on its stream
//! (see `cursor`), and installs it (see `receiver`).

use super::Node;
use crate::action::Action;
use crate::message::SnapshotMeta;
use crate::options::LogSince;
use crate::types::LogIndex;

impl Node {
    pub(crate) fn maybe_request_snapshot(&mut self) {
        if self.snapshot_requested {
            return;
        }
        if self
            .opts
            .snapshot_policy
            .is_due(self.log_since_snapshot, self.snapshot_bytes)
        {
            self.snapshot_requested = true;
            self.emit(Action::TakeSnapshot);
        }
    }

    pub(crate) fn on_snapshot_taken(&mut self, index: LogIndex, bytes: u64) {
        self.snapshot_requested = false;
        let newer = self.snapshot.as_ref().is_none_or(|s| index > s.index);
        // A snapshot must cover only applied (so committed) entries we still hold.
        let Some(term) = self.log.term_at(index) else {
            return;
        };
        if !newer || index > self.applied || index.0 == 0 {
            return;
        }
        let config = self.configs.at(index).clone();
        // Entries applied after `index` are not in this snapshot: they count
        // toward the next one.
        self.log_since_snapshot = LogSince {
            entries: self.applied.0 - index.0,
            bytes: self.log.bytes_between(index, self.applied),
        };
        self.snapshot_bytes = bytes;
        self.snapshot = Some(SnapshotMeta {
            index,
            term,
            config,
        });
        let through = LogIndex(index.0.saturating_sub(self.opts.snapshot_trailing_entries));
        if through > self.log.base_index() {
            self.log.compact_through(through);
            self.configs.compact_through(through);
            self.emit(Action::CompactLog { through });
            // The snapshot is durable, so what it covers is too: an append of
            // those entries may never be reported now that they are gone.
            // (If the durable index did not move, this finds nothing to do.)
            self.on_durable_advanced();
        }
    }
}
