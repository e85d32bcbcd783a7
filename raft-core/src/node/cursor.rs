//! The leader's end of each follower's stream: a replication cursor.
//!
//! A cursor is in one of two states. *Waiting*: no stream (the follower has
//! not opened one, or it broke); the leader only heartbeats. *Streaming*: the
//! follower opened stream `s` with a handshake; the leader chose the starting
//! point (the probe if our log holds it, else the highest index both logs can
//! still share, never below the follower's commit index, or the snapshot when
//! that point is compacted) and sends chunks back to back while the bytes in
//! flight stay under the budget. Acks of the follower's durable index move the
//! match index, free budget and may advance the commit index.

use super::log_read::fitting;
use super::{Node, RoleState};
use crate::action::{Action, LogReader};
use crate::entries::Entries;
use crate::error::{Refusal, Violation};
use crate::message::{Frame, SnapshotMeta, SnapshotResume, StreamOpen};
use crate::node::FollowerStatus;
use crate::time::{Duration, Instant};
use crate::types::{LogIndex, NodeId, StreamId, Term};
use std::collections::VecDeque;

/// Replication state for one follower.
pub(crate) struct Cursor {
    /// The follower's open stream, if any.
    pub(crate) stream: Option<StreamId>,
    /// The next index to send on the stream.
    pub(crate) next: LogIndex,
    /// The highest index known durable on the follower in this term.
    pub(crate) match_index: LogIndex,
    /// Chunks sent but not acknowledged: (last index, bytes).
    inflight: VecDeque<(LogIndex, u64)>,
    inflight_bytes: u64,
    /// The commit index last sent on the stream.
    sent_commit: LogIndex,
    /// When the follower last answered (heartbeat response or ack).
    pub(crate) last_heard: Instant,
    /// The highest heartbeat round it answered.
    pub(crate) acked_round: u64,
    /// The catch-up round in progress (thesis §4.2.1): it ends when the match
    /// index reaches `target`, the leader's last index when it began.
    round_target: LogIndex,
    round_started: Instant,
    /// How long the last finished catch-up round took.
    last_round: Option<Duration>,
    /// The snapshot being streamed, until the follower has received all of it.
    snapshot: Option<SnapshotSend>,
    /// The index a `ReadLog` for this stream asked for, until its answer:
    /// the entries to send next are no longer in memory.
    reading: Option<LogIndex>,
    /// The follower's offer, at the stream's open, to resume a snapshot
    /// transfer an earlier stream cut short.
    resume: Option<SnapshotResume>,
}

/// A snapshot on its way to a follower. Its bytes count against the stream
/// budget from the moment the driver is told to send them until the
/// follower's `SnapshotAck` says they arrived.
struct SnapshotSend {
    meta: SnapshotMeta,
    /// The byte the transfer starts from on this stream: 0, or where the
    /// follower's resume offer said an earlier stream stopped.
    start: u64,
    /// The driver was told to send the bytes before this offset.
    sent: u64,
    /// The follower acknowledged the bytes before this offset.
    acked: u64,
    /// The size, once the first `SnapshotAck` told it (the leader's driver
    /// holds the bytes; the core learns their count from the follower).
    size: Option<u64>,
}

impl SnapshotSend {
    /// Every byte (and `SnapshotEnd`) has been handed to the driver.
    fn all_sent(&self) -> bool {
        self.size.is_some_and(|size| self.sent >= size)
    }

    fn inflight_bytes(&self) -> u64 {
        self.sent - self.acked
    }
}

impl Cursor {
    pub(crate) fn new(next: LogIndex, now: Instant) -> Cursor {
        Cursor {
            stream: None,
            next,
            match_index: LogIndex(0),
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            sent_commit: LogIndex(0),
            // A grace period: a new leader does not step down before followers
            // had a chance to answer.
            last_heard: now,
            acked_round: 0,
            round_target: next.prev(),
            round_started: now,
            last_round: None,
            snapshot: None,
            reading: None,
            resume: None,
        }
    }

    /// Bytes sent but not acknowledged, entries and snapshot together.
    fn inflight_bytes(&self) -> u64 {
        self.inflight_bytes
            + self
                .snapshot
                .as_ref()
                .map_or(0, SnapshotSend::inflight_bytes)
    }

    /// Ends the catch-up round if the match index reached its target, and
    /// starts the next one towards `last`. A follower already at `last` has
    /// finished that next round in no time: nothing more was appended meanwhile.
    fn note_catch_up(&mut self, now: Instant, last: LogIndex) {
        if self.match_index < self.round_target {
            return;
        }
        self.last_round = Some(now.saturating_since(self.round_started));
        self.round_target = last;
        self.round_started = now;
        if self.match_index >= last {
            self.last_round = Some(Duration::ZERO);
        }
    }

    /// The leader appended through `last`. A follower that had finished its
    /// round (it holds everything the leader held) starts the next one now:
    /// the round measures how long new entries take to reach it, so the time
    /// the log stood idle before does not count, and a follower that falls
    /// silent once the log moves on stops keeping up after `limit`.
    pub(crate) fn note_append(&mut self, now: Instant, last: LogIndex) {
        if self.match_index >= self.round_target {
            self.round_target = last;
            self.round_started = now;
        }
    }

    /// Whether the follower keeps up (thesis §4.2.1): its last catch-up round
    /// finished within `limit`, and the one in progress has not yet run longer.
    pub(crate) fn keeps_up(&self, now: Instant, limit: Duration) -> bool {
        self.last_round.is_some_and(|d| d < limit)
            && (self.match_index >= self.round_target
                || now.saturating_since(self.round_started) < limit)
    }

    /// The highest index this follower has been sent on its stream (or holds).
    pub(crate) fn sent_through(&self) -> LogIndex {
        if self.stream.is_some() {
            self.next.prev().max(self.match_index)
        } else {
            self.match_index
        }
    }

    pub(crate) fn status(&self, id: NodeId) -> FollowerStatus {
        FollowerStatus {
            id,
            match_index: self.match_index,
            next_index: self.next,
            inflight_bytes: self.inflight_bytes(),
            streaming: self.stream.is_some(),
        }
    }

    /// The follower reports how much of the snapshot arrived.
    fn on_snapshot_ack(&mut self, received: u64, size: u64) -> Result<(), Violation> {
        let out_of_place = Violation::SnapshotAckOutOfPlace { received, size };
        let Some(s) = self.snapshot.as_mut() else {
            return Err(out_of_place);
        };
        let size_differs = s.size.is_some_and(|known| known != size) || received > size;
        if size_differs || received > s.sent || received < s.acked {
            return Err(out_of_place);
        }
        // The first window was cut without knowing the size: it ended at the end.
        s.size = Some(size);
        s.sent = s.sent.min(size);
        s.acked = received;
        Ok(())
    }

    fn reset_stream(&mut self, stream: Option<StreamId>) {
        self.stream = stream;
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.sent_commit = LogIndex(0);
        self.snapshot = None;
        self.reading = None;
        self.resume = None;
    }

    /// The chunk that carries `entries` (which continue at `next`) with the
    /// commit index, counted against the budget.
    fn chunk(&mut self, term: Term, commit: LogIndex, prev_term: Term, entries: Entries) -> Frame {
        let through = entries.last().expect("a chunk of entries").index;
        let leader_commit = commit.min(through);
        let frame = Frame::Chunk {
            term,
            prev_index: self.next.prev(),
            prev_term,
            leader_commit,
            entries,
        };
        let bytes = frame.budget_bytes();
        self.inflight.push_back((through, bytes));
        self.inflight_bytes += bytes;
        self.next = through.next();
        self.sent_commit = leader_commit;
        frame
    }
}

impl Node {
    pub(crate) fn on_stream_opened(&mut self, stream: StreamId, open: StreamOpen) {
        let refusal = if self.hs.cluster_id != Some(open.cluster_id) {
            Some(Refusal::ForeignCluster {
                theirs: open.cluster_id,
                ours: self.hs.cluster_id,
            })
        } else if open.leader != self.id() {
            Some(Refusal::Misdirected(open.leader))
        } else if open.term != self.hs.term || !matches!(self.role, RoleState::Leader(_)) {
            Some(Refusal::NotLeaderOfTerm)
        } else if !self.has_cursor(open.follower) {
            Some(Refusal::NotMember(open.follower))
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.refuse(open.follower, reason);
            self.emit(Action::CloseStream {
                stream,
                peer: open.follower,
            });
            return;
        }
        // Where both logs provably agree: the probe if we hold it with the same
        // term (`term_at` knows no index past our last); otherwise skip our
        // entries of terms above the probe's term. Never below the follower's
        // commit index, which matches us by safety.
        let last = self.log.last_index();
        let floor = open.commit.min(last);
        let start = if self.log.term_at(open.probe_index) == Some(open.probe_term) {
            open.probe_index
        } else {
            self.log
                .last_index_with_term_at_most(open.probe_index, open.probe_term, floor)
        }
        .max(floor);
        let now = self.now;
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let Some(c) = l.cursors.get_mut(&open.follower) else {
            return;
        };
        if let Some(old) = c.stream.replace(stream) {
            self.out.push(Action::CloseStream {
                stream: old,
                peer: open.follower,
            });
        }
        c.reset_stream(Some(stream));
        c.resume = open.resume;
        c.last_heard = now;
        c.next = start.next();
        // Durable entries we matched never vanish from a follower in one term,
        // unless its disk was lost: then its old match must not count.
        let lowered = start < c.match_index;
        c.match_index = c.match_index.min(start);
        if lowered {
            self.note_quorum_index_may_drop();
        }
        self.replicate(open.follower, true);
    }

    pub(crate) fn on_leader_stream_closed(&mut self, stream: StreamId) {
        let Some(l) = self.leader_state() else { return };
        for c in l.cursors.values_mut() {
            if c.stream == Some(stream) {
                c.reset_stream(None);
            }
        }
    }

    /// An ack on a leader's stream.
    pub(crate) fn on_leader_frame(&mut self, stream: StreamId, frame: Frame) {
        let now = self.now;
        let last = self.log.last_index();
        let Some(l) = self.leader_state() else { return };
        let Some((&peer, c)) = l.cursors.iter_mut().find(|(_, c)| c.stream == Some(stream)) else {
            return;
        };
        if let Frame::SnapshotAck { received, size } = frame {
            match c.on_snapshot_ack(received, size) {
                Ok(()) => {
                    c.last_heard = now;
                    self.replicate(peer, false);
                }
                Err(why) => {
                    self.refuse(peer, Refusal::Misbehaving(why));
                    self.close_cursor_stream(peer);
                }
            }
            return;
        }
        let Frame::Ack { durable } = frame else {
            self.refuse(peer, Refusal::Misbehaving(Violation::WrongDirection));
            self.close_cursor_stream(peer);
            return;
        };
        if durable >= c.next || durable > last {
            let sent = c.next.prev().min(last);
            self.refuse(
                peer,
                Refusal::Misbehaving(Violation::AckBeyondSent { durable, sent }),
            );
            self.close_cursor_stream(peer);
            return;
        }
        c.last_heard = now;
        if durable > c.match_index {
            c.match_index = durable;
        }
        c.note_catch_up(now, last);
        while c.inflight.front().is_some_and(|&(i, _)| i <= durable) {
            let (_, bytes) = c.inflight.pop_front().expect("checked");
            c.inflight_bytes -= bytes;
        }
        self.maybe_advance_commit();
        self.replicate(peer, false);
        self.maybe_promote_learner();
        self.maybe_send_timeout_now();
    }

    fn close_cursor_stream(&mut self, peer: NodeId) {
        let Some(l) = self.leader_state() else { return };
        let Some(c) = l.cursors.get_mut(&peer) else {
            return;
        };
        if let Some(stream) = c.stream.take() {
            c.reset_stream(None);
            self.emit(Action::CloseStream { stream, peer });
        }
    }

    fn has_cursor(&self, peer: NodeId) -> bool {
        matches!(&self.role, RoleState::Leader(l) if l.cursors.contains_key(&peer))
    }

    pub(crate) fn replicate_all(&mut self) {
        // Walk the cursors by key without holding a borrow across `replicate`
        // (and without collecting them: this runs for every proposal).
        let mut next = self.first_cursor();
        while let Some(peer) = next {
            self.replicate(peer, false);
            next = self.cursor_after(peer);
        }
    }

    fn first_cursor(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(l) => l.cursors.keys().next().copied(),
            _ => None,
        }
    }

    fn cursor_after(&self, peer: NodeId) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(l) => l
                .cursors
                .range((std::ops::Bound::Excluded(peer), std::ops::Bound::Unbounded))
                .next()
                .map(|(&id, _)| id),
            _ => None,
        }
    }

    /// Streams entries to `peer` while its budget allows. `announce` sends a
    /// chunk even without entries, so a new stream learns where it starts
    /// (or an idle follower the commit index); without it, a commit index the
    /// follower has not heard waits for the next chunk, or at most
    /// `commit_notify_delay` (see [`Node::notify_commit`]).
    pub(crate) fn replicate(&mut self, peer: NodeId, mut announce: bool) {
        let notify_at = self.now + self.opts.commit_notify_delay;
        loop {
            let term = self.hs.term;
            let commit = self.commit;
            let budget = self.opts.stream_budget_bytes;
            let (count_max, bytes_max) = (self.opts.batch_entries_max, self.opts.batch_bytes_max);
            let base = self.log.base_index();
            let last = self.log.last_index();
            let cache_start = self.log.cache_start();
            let RoleState::Leader(l) = &mut self.role else {
                return;
            };
            let Some(c) = l.cursors.get_mut(&peer) else {
                return;
            };
            let Some(stream) = c.stream else { return };
            if let Some(s) = c.snapshot.as_ref().filter(|s| s.all_sent()) {
                let index = s.meta.index;
                let arrived = s.acked == s.sent;
                if c.next <= index {
                    // The whole snapshot is on its way: entries follow it.
                    c.next = index.next();
                    c.inflight.push_back((index, 0));
                    c.sent_commit = c.sent_commit.max(commit.min(index));
                    announce = false;
                }
                if arrived {
                    c.snapshot = None;
                }
            }
            let inflight = c.inflight_bytes();
            if inflight >= budget {
                return;
            }
            let prev = c.next.prev();
            let sending_snapshot = c.snapshot.as_ref().is_some_and(|s| !s.all_sent());
            if prev < base || sending_snapshot {
                c.reading = None; // compacted while being read: drop the answer
                // The entries it needs are compacted: send the snapshot, one
                // budget's worth at a time, then continue right after it on
                // the same stream.
                if c.snapshot.is_some() && !sending_snapshot {
                    return; // the last one is still arriving
                }
                let s = c.snapshot.get_or_insert_with(|| {
                    let meta = self
                        .snapshot
                        .clone()
                        .expect("a compacted log has a snapshot");
                    assert!(
                        meta.index >= base,
                        "the snapshot covers the compacted prefix"
                    );
                    // Go on where the follower's bytes end, if they are of
                    // this snapshot (the driver's Begin says where). The
                    // offer is the follower's word: one whose windows would
                    // count past `u64::MAX` names no snapshot, start over.
                    let start = c
                        .resume
                        .take()
                        .filter(|r| r.index == meta.index && r.term == meta.term)
                        .filter(|r| r.received.checked_add(budget).is_some())
                        .map_or(0, |r| r.received);
                    SnapshotSend {
                        meta,
                        start,
                        sent: start,
                        acked: start,
                        size: None,
                    }
                });
                if s.size.is_none() && s.sent > s.start {
                    return; // wait for the first ack to learn the size
                }
                let free = budget - inflight;
                let bytes_max = s.size.map_or(free, |size| free.min(size - s.sent));
                let offset = s.sent;
                let first = offset == s.start;
                s.sent += bytes_max;
                let meta = s.meta.clone();
                let done = s.all_sent();
                self.out.push(Action::SendSnapshot {
                    stream,
                    peer,
                    meta,
                    offset,
                    bytes_max,
                    first,
                });
                if !done {
                    return;
                }
                continue;
            }
            let prev_term = self.log.term_at(prev).expect("prev is in the log");
            if c.next > last {
                if !announce && c.sent_commit < commit.min(prev) {
                    // Nothing new to send: the next chunk, or the notice
                    // when it is due, tells the follower the commit index.
                    l.commit_notify_due = l.commit_notify_due.min(notify_at);
                } else if announce {
                    let leader_commit = commit.min(prev);
                    c.sent_commit = leader_commit;
                    let frame = Frame::Chunk {
                        term,
                        prev_index: prev,
                        prev_term,
                        leader_commit,
                        entries: Entries::new(),
                    };
                    self.out.push(Action::SendFrame {
                        stream,
                        peer,
                        frame,
                    });
                }
                return;
            }
            if c.reading.is_some() {
                return; // the entries to send next are being read back
            }
            if c.next < cache_start {
                // Evicted from memory: ask the driver; `on_stream_log_read`
                // sends them and goes on from there.
                c.reading = Some(c.next);
                // Only the evicted entries: they are durable, and the
                // driver's log may not hold the cached ones yet.
                let evicted = (cache_start.0 - c.next.0) as usize;
                self.out.push(Action::ReadLog {
                    reader: LogReader::Stream { peer, stream },
                    from: c.next,
                    count_max: count_max.min(evicted),
                    bytes_max,
                });
                return;
            }
            let entries = self.log.slice(c.next, count_max, bytes_max);
            let frame = c.chunk(term, commit, prev_term, entries);
            announce = false;
            self.out.push(Action::SendFrame {
                stream,
                peer,
                frame,
            });
        }
    }

    /// The driver's answer to a `ReadLog` for `peer`'s stream: sends the
    /// entries if the stream still wants them, then goes on streaming.
    pub(crate) fn on_stream_log_read(
        &mut self,
        peer: NodeId,
        stream: StreamId,
        from: LogIndex,
        entries: Entries,
    ) {
        let wanted = matches!(&self.role, RoleState::Leader(l) if l.cursors.get(&peer)
            .is_some_and(|c| c.stream == Some(stream) && c.reading == Some(from)));
        if !wanted {
            return; // a stream since closed or reset, or a compaction, dropped it
        }
        let (term, commit) = (self.hs.term, self.commit);
        let (count_max, bytes_max) = (self.opts.batch_entries_max, self.opts.batch_bytes_max);
        let entries = self.checked_read(from, entries, self.log.last_index());
        let prev_term = self.log.term_at(from.prev());
        let Some(l) = self.leader_state() else { return };
        let c = l.cursors.get_mut(&peer).expect("checked above");
        c.reading = None;
        if let Some(prev_term) = prev_term.filter(|_| c.next == from && !entries.is_empty()) {
            let entries = entries.slice(0..fitting(&entries, count_max, bytes_max));
            let frame = c.chunk(term, commit, prev_term, entries);
            self.out.push(Action::SendFrame {
                stream,
                peer,
                frame,
            });
        }
        self.replicate(peer, false);
    }

    /// After the commit index moved: followers with entries to receive get
    /// it with them; the others within `commit_notify_delay`.
    pub(crate) fn send_commit_updates(&mut self) {
        self.replicate_all();
    }

    /// Tells every follower that has not heard the commit index, in a chunk
    /// without entries if it has none to receive: one chunk for however many
    /// times the index moved since its last chunk.
    pub(crate) fn notify_commit(&mut self) {
        let commit = self.commit;
        let Some(l) = self.leader_state() else { return };
        l.commit_notify_due = Instant::NEVER;
        let mut next = self.first_cursor();
        while let Some(peer) = next {
            let behind = matches!(&self.role, RoleState::Leader(l) if l.cursors.get(&peer)
                .is_some_and(|c| c.stream.is_some() && c.sent_commit < commit.min(c.next.prev())));
            if behind {
                self.replicate(peer, true);
            }
            next = self.cursor_after(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cursor whose first window of a snapshot went out: the driver was
    /// told to send up to `window` bytes from byte 0, the size not yet known
    /// (only the follower's first ack tells it).
    fn sending_snapshot(window: u64) -> Cursor {
        let mut c = Cursor::new(LogIndex(1), Instant(0));
        c.snapshot = Some(SnapshotSend {
            meta: SnapshotMeta {
                index: LogIndex(10),
                term: Term(1),
                config: Default::default(),
            },
            start: 0,
            sent: window,
            acked: 0,
            size: None,
        });
        c
    }

    #[test]
    fn a_follower_keeps_up_while_its_rounds_end_within_the_limit() {
        // Thesis §4.2.1: a catch-up round runs until the follower holds what
        // the leader held when it began. The follower keeps up while its
        // last round was shorter than the limit and the one in progress
        // has not yet run longer.
        let limit = Duration::from_millis(100);
        let ms = |n: u64| Instant(n * 1_000_000);
        let mut c = Cursor::new(LogIndex(1), ms(0));
        assert!(!c.keeps_up(ms(0), limit), "no round has ended yet");
        // An empty follower's first round ends at once; the next one runs
        // towards index 10.
        c.note_catch_up(ms(0), LogIndex(10));
        assert!(c.keeps_up(ms(50), limit), "a round in progress, not late");
        assert!(
            !c.keeps_up(ms(150), limit),
            "the round in progress runs longer than the limit"
        );
        // It reaches index 10 after 60 ms, and nothing more is appended: it
        // keeps up however long the log then stays idle.
        c.match_index = LogIndex(10);
        c.note_catch_up(ms(60), LogIndex(10));
        assert!(c.keeps_up(ms(60), limit));
        assert!(c.keeps_up(ms(60_000), limit), "caught up, idle log");
        // A round that took longer than the limit: not until a quick one.
        c.note_catch_up(ms(60_000), LogIndex(20));
        c.match_index = LogIndex(20);
        c.note_catch_up(ms(60_500), LogIndex(30));
        assert!(!c.keeps_up(ms(60_500), limit), "its last round took 500 ms");
    }

    /// A cursor whose follower caught up with index 10, the leader's last,
    /// 60 ms after the leader started: its round took 60 ms.
    fn caught_up_at_60_ms_through_10() -> Cursor {
        let mut c = Cursor::new(LogIndex(1), ms(0));
        c.note_catch_up(ms(0), LogIndex(10));
        c.match_index = LogIndex(10);
        c.note_catch_up(ms(60), LogIndex(10));
        c
    }

    fn ms(n: u64) -> Instant {
        Instant(n * 1_000_000)
    }

    #[test]
    fn a_round_after_an_idle_log_is_measured_from_the_append_not_the_last_ack() {
        // A follower caught up at 60 ms; the log then stands idle for a
        // minute. The entry appended at 60 s reaches it 5 ms later, while
        // writes go on: that round took 5 ms, not the minute of idleness
        // before it.
        let limit = Duration::from_millis(100);
        let mut c = caught_up_at_60_ms_through_10();
        c.note_append(ms(60_000), LogIndex(11));
        c.note_append(ms(60_003), LogIndex(12));
        c.match_index = LogIndex(11);
        c.note_catch_up(ms(60_005), LogIndex(12));
        assert_eq!(c.last_round, Some(Duration::from_millis(5)));
        assert!(c.keeps_up(ms(60_005), limit));
    }

    #[test]
    fn a_caught_up_follower_that_falls_silent_once_the_log_moves_on_stops_keeping_up() {
        let limit = Duration::from_millis(100);
        let mut c = caught_up_at_60_ms_through_10();
        assert!(c.keeps_up(ms(60_000), limit), "caught up, idle log");
        c.note_append(ms(60_000), LogIndex(11));
        // Appends during the round do not move its start or its target.
        c.note_append(ms(60_050), LogIndex(12));
        assert!(
            c.keeps_up(ms(60_090), limit),
            "the new round is not late yet"
        );
        assert!(
            !c.keeps_up(ms(60_100), limit),
            "no ack for index 11 within the limit of its append"
        );
        // Its ack for 11 ends the round (100 ms: not within the limit) and
        // starts the next one towards 12.
        c.match_index = LogIndex(11);
        c.note_catch_up(ms(60_100), LogIndex(12));
        assert_eq!(c.last_round, Some(limit));
        assert!(!c.keeps_up(ms(60_100), limit));
    }

    #[test]
    fn an_empty_snapshot_acked_once_at_its_end_is_accepted_and_fully_sent() {
        // A state machine with no state snapshots to zero bytes: the
        // follower's one ack says it received 0 of 0, which is no repeat of
        // an earlier ack and no step back.
        let mut c = sending_snapshot(800);
        assert_eq!(c.on_snapshot_ack(0, 0), Ok(()));
        let s = c.snapshot.as_ref().unwrap();
        assert!(s.all_sent());
        assert_eq!(c.inflight_bytes(), 0);
    }

    #[test]
    fn a_snapshot_ack_that_changes_the_size_or_passes_it_is_refused() {
        let mut c = sending_snapshot(800);
        assert_eq!(
            c.on_snapshot_ack(300, 200),
            Err(Violation::SnapshotAckOutOfPlace {
                received: 300,
                size: 200
            }),
            "more received than the snapshot holds"
        );
        assert_eq!(c.on_snapshot_ack(200, 1_000), Ok(()));
        assert_eq!(
            c.on_snapshot_ack(400, 1_001),
            Err(Violation::SnapshotAckOutOfPlace {
                received: 400,
                size: 1_001
            }),
            "the size changed mid-transfer"
        );
        assert_eq!(c.on_snapshot_ack(400, 1_000), Ok(()));
        assert_eq!(c.inflight_bytes(), 400);
    }

    #[test]
    fn a_snapshot_ack_of_bytes_not_sent_or_of_fewer_than_acked_is_refused() {
        let mut c = sending_snapshot(800);
        let refused = |received| {
            Err(Violation::SnapshotAckOutOfPlace {
                received,
                size: 1_000,
            })
        };
        assert_eq!(c.on_snapshot_ack(801, 1_000), refused(801), "not sent");
        assert_eq!(c.on_snapshot_ack(800, 1_000), Ok(()), "all that was sent");
        assert_eq!(c.on_snapshot_ack(700, 1_000), refused(700), "a step back");
        assert_eq!(c.inflight_bytes(), 0);
    }
}
