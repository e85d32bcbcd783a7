//! Snapshots and log compaction. The application snapshots its FSM (asked by
//! `TakeSnapshot` once enough entries were applied); the core records the
//! snapshot and lets the driver drop the log before it, keeping a trailing
//! window so a briefly disconnected follower resumes from the log. A follower
//! behind the compaction point gets the snapshot on its stream
//! (see `cursor`), and installs it (see `receiver`).

use super::Node;
use crate::action::Action;
use crate::message::SnapshotMeta;
use crate::types::LogIndex;

impl Node {
    pub(crate) fn maybe_request_snapshot(&mut self) {
        let threshold = self.opts.snapshot_threshold;
        if threshold == 0 || self.snapshot_requested {
            return;
        }
        let since = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.index);
        if self.applied.0.saturating_sub(since.0) >= threshold {
            self.snapshot_requested = true;
            self.emit(Action::TakeSnapshot);
        }
    }

    pub(crate) fn on_snapshot_taken(&mut self, index: LogIndex) {
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
