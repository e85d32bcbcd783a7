//! The follower's end of a replication stream.
//!
//! A follower opens one stream to the leader it heard from, saying where its
//! log stands (a probe `(index, term)` and its commit index). Everything on the
//! stream is input from a peer, checked before it changes anything: a chunk
//! must be of the stream's term and continue the previous frame, its entries
//! must be consecutive with terms that never decrease and never exceed the
//! stream's term, its commit claim must not pass its own last entry, and its
//! `prev` must lie in our log with the same term. A term that contradicts our
//! committed prefix (or what this stream already validated) is a violation; a
//! mismatch above it truncates the conflicting uncommitted suffix, or, at
//! `prev`, makes the follower reopen the stream with a lower probe. Snapshot
//! frames come whole, in order, never behind the stream, and agree with our
//! committed prefix. A violation closes the stream with a typed
//! [`Violation`]; nothing a peer sends panics the node. What the stream has
//! validated bounds both the acks (durable index) and the commit index the
//! follower will use, so it never applies an entry the current leader has not
//! vouched for.

use super::{Node, RoleState};
use crate::action::Action;
use crate::config::Config;
use crate::entries::Entries;
use crate::entry::LogEntry;
use crate::error::{Refusal, Violation};
use crate::message::{Frame, MessageBody, SnapshotMeta, SnapshotResume, StreamOpen};
use crate::options::LogSince;
use crate::time::{Duration, Instant};
use crate::types::{LogIndex, NodeId, StreamId, Term};
use rand_core::RngCore;
use std::collections::VecDeque;

/// A follower's (or learner's) state in one term.
pub(crate) struct FollowerState {
    /// The term this state belongs to.
    pub(crate) term: Term,
    /// The leader of `term`, once heard from.
    pub(crate) leader: Option<NodeId>,
    /// When the leader was last heard from.
    pub(crate) last_heard: Option<Instant>,
    /// The stream to the leader, if open.
    pub(crate) stream: Option<Receiver>,
    /// Not before this instant may a closed stream be reopened.
    pub(crate) reopen_at: Option<Instant>,
    /// The probe to open the next stream with, after a mismatch.
    pub(crate) next_probe: Option<(LogIndex, Term)>,
    /// Streams opened since the leader last sent a frame on one: each open it
    /// refused (or that never connected) doubles the wait before the next.
    pub(crate) unanswered_opens: u32,
}

impl FollowerState {
    pub(crate) fn new(term: Term, leader: Option<NodeId>) -> FollowerState {
        FollowerState {
            term,
            leader,
            last_heard: None,
            stream: None,
            reopen_at: None,
            next_probe: None,
            unanswered_opens: 0,
        }
    }
}

/// One open stream, seen from the follower.
pub(crate) struct Receiver {
    pub(crate) id: StreamId,
    /// The leader it was opened to (the follower's leader may change first).
    leader: NodeId,
    /// Where the next chunk must start (`prev_index`); `None` before the first.
    expect_prev: Option<LogIndex>,
    /// Highest index this stream has shown to match the leader's log.
    pub(crate) validated: LogIndex,
    /// Highest durable index acknowledged on this stream.
    acked: LogIndex,
    /// Chunks that arrived while a snapshot was being installed.
    held: VecDeque<Frame>,
    held_bytes: u64,
}

/// A snapshot on its way in ([`Node::incoming`]).
pub(crate) struct IncomingSnapshot {
    /// The stream it arrives on (or arrived on, until it broke).
    stream: StreamId,
    /// The leader sending it.
    leader: NodeId,
    meta: SnapshotMeta,
    size: u64,
    received: u64,
    crc: crc32fast::Hasher,
    /// We already hold everything it covers: let it pass.
    skip: bool,
}

impl IncomingSnapshot {
    /// What this follower can offer to resume on a new stream to `leader`:
    /// a transfer from the same leader, cut short, that would still be
    /// installed (the driver stored its bytes: not skipped, not yet past).
    fn resume_offer(&self, leader: NodeId, commit: LogIndex) -> Option<SnapshotResume> {
        let cut_short = 0 < self.received && self.received < self.size;
        let offer = SnapshotResume {
            index: self.meta.index,
            term: self.meta.term,
            received: self.received,
        };
        (self.leader == leader && !self.skip && cut_short && self.meta.index > commit)
            .then_some(offer)
    }
}

/// How long to wait before reopening a stream after `unanswered` opens in a
/// row went without a frame from the leader: `reconnect_delay` after a stream
/// the leader had accepted (or after the first refusal), doubling with each
/// further refusal up to `reconnect_delay_max`. A removed member, or a
/// follower of a stale leader, is refused every time; without the backoff it
/// would reconnect a hundred times a second for ever.
fn reopen_delay(opts: &crate::options::NodeOptions, unanswered: u32) -> Duration {
    let doublings = unanswered.saturating_sub(1).min(32);
    let delay = opts.reconnect_delay.saturating_mul(1 << doublings);
    delay
        .min(opts.reconnect_delay_max)
        .max(opts.reconnect_delay)
}

impl Node {
    pub(crate) fn on_heartbeat(&mut self, from: NodeId, term: Term, commit: LogIndex, round: u64) {
        if term < self.hs.term {
            self.refuse(
                from,
                Refusal::StaleTerm {
                    theirs: term,
                    ours: self.hs.term,
                },
            );
            // Tell the stale leader about the newer term so it steps down, in
            // round 0, which no leader sends: if it leads our term, its number
            // may name a later round of it, which this answer must not confirm.
            self.send(
                from,
                MessageBody::HeartbeatResponse {
                    round: 0,
                    streaming: false,
                },
            );
            return;
        }
        if matches!(self.role, RoleState::Leader(_)) && term == self.hs.term {
            // Two leaders in one term cannot happen while votes are durable and
            // single; refuse rather than trust it.
            self.refuse(from, Refusal::NotLeaderOfTerm);
            return;
        }
        if let RoleState::Follower(f) = &self.role {
            if term == self.hs.term && f.leader.is_some_and(|l| l != from) {
                self.refuse(from, Refusal::NotLeaderOfTerm);
                return;
            }
        }
        self.step_down_to(term, Some(from));
        self.reset_election_deadline();
        let now = self.now;
        let RoleState::Follower(f) = &mut self.role else {
            unreachable!("just became follower")
        };
        f.last_heard = Some(now);
        if f.stream.is_none() {
            // Only a leader that counts us among its followers heartbeats us:
            // a stream now would be accepted, so skip what is left of a backoff.
            f.reopen_at = f.reopen_at.map(|t| t.min(now));
        }
        let validated = f.stream.as_ref().map(|s| s.validated);
        let streaming = f.stream.is_some();
        if let Some(validated) = validated {
            self.advance_commit_to(commit.min(validated));
        }
        self.send(from, MessageBody::HeartbeatResponse { round, streaming });
        self.maybe_open_stream();
    }

    /// Opens a stream to the known leader if none is open and the reconnect
    /// delay has passed.
    pub(crate) fn maybe_open_stream(&mut self) {
        if self.installing.is_some() {
            return;
        }
        let now = self.now;
        let (last_index, last_term, commit) =
            (self.log.last_index(), self.log.last_term(), self.commit);
        let Some(cluster_id) = self.hs.cluster_id else {
            return;
        };
        let follower = self.id();
        let term = self.hs.term;
        let stream_id = StreamId(self.rng.next_u64());
        let RoleState::Follower(f) = &mut self.role else {
            return;
        };
        let Some(leader) = f.leader else { return };
        if f.stream.is_some() || f.reopen_at.is_some_and(|t| now < t) {
            return;
        }
        let (probe_index, probe_term) = f.next_probe.take().unwrap_or((last_index, last_term));
        f.stream = Some(Receiver {
            id: stream_id,
            leader,
            expect_prev: None,
            validated: LogIndex(0),
            acked: LogIndex(0),
            held: VecDeque::new(),
            held_bytes: 0,
        });
        // A transfer the last stream cut short: offer its bytes, or forget it.
        let resume = self
            .incoming
            .as_ref()
            .and_then(|inc| inc.resume_offer(leader, commit));
        if resume.is_none() {
            self.incoming = None;
        }
        f.reopen_at = None;
        f.unanswered_opens = f.unanswered_opens.saturating_add(1);
        let open = StreamOpen {
            cluster_id,
            follower,
            leader,
            term,
            probe_index,
            probe_term,
            commit,
            resume,
        };
        self.emit(Action::OpenStream {
            stream: stream_id,
            leader,
            open,
        });
    }

    pub(crate) fn close_follower_stream(&mut self) {
        if let RoleState::Follower(f) = &mut self.role {
            if let Some(s) = f.stream.take() {
                self.out.push(Action::CloseStream {
                    stream: s.id,
                    peer: s.leader,
                });
            }
        }
    }

    /// Closes the stream after a mismatch or a violation; it reopens after the
    /// reconnect delay (immediately with a new probe after a mismatch).
    fn reset_follower_stream(&mut self, probe: Option<(LogIndex, Term)>) {
        self.close_follower_stream();
        let now = self.now;
        let delay = self.opts.reconnect_delay;
        if let RoleState::Follower(f) = &mut self.role {
            f.next_probe = probe;
            f.reopen_at = Some(if probe.is_some() { now } else { now + delay });
        }
    }

    pub(crate) fn on_follower_stream_closed(&mut self, stream: StreamId) {
        let now = self.now;
        let opts = &self.opts;
        if let RoleState::Follower(f) = &mut self.role {
            if f.stream.as_ref().is_some_and(|s| s.id == stream) {
                f.stream = None;
                f.reopen_at = Some(now + reopen_delay(opts, f.unanswered_opens));
            }
        }
    }

    /// A frame on the follower's stream.
    pub(crate) fn on_follower_frame(&mut self, stream: StreamId, frame: Frame) {
        let term = self.hs.term;
        let now = self.now;
        let installing = self.installing.is_some();
        let RoleState::Follower(f) = &mut self.role else {
            return;
        };
        let Some(s) = f.stream.as_mut().filter(|s| s.id == stream) else {
            return; // a frame of an older stream: it proves nothing now
        };
        if f.term != term {
            return;
        }
        f.last_heard = Some(now);
        f.unanswered_opens = 0;
        if installing {
            // The log is about to be replaced: judge these frames against the
            // installed snapshot, after it lands.
            s.held_bytes += frame.budget_bytes();
            s.held.push_back(frame);
            let limit = 2 * self.opts.stream_budget_bytes + self.opts.batch_bytes_max;
            if s.held_bytes > limit {
                self.reset_follower_stream(None);
            }
            return;
        }
        self.reset_election_deadline();
        let result = match frame {
            Frame::Chunk {
                term: chunk_term,
                prev_index,
                prev_term,
                leader_commit,
                entries,
            } => self.on_chunk(chunk_term, (prev_index, prev_term), leader_commit, entries),
            Frame::SnapshotBegin { meta, size, offset } => {
                self.on_snapshot_begin(stream, meta, size, offset)
            }
            Frame::SnapshotChunk { offset, data, crc } => {
                self.on_snapshot_chunk(stream, offset, data, crc)
            }
            Frame::SnapshotEnd { crc } => self.on_snapshot_end(stream, crc),
            Frame::Ack { .. } | Frame::SnapshotAck { .. } => Err(Violation::WrongDirection),
        };
        if let Err(violation) = result {
            let leader = self.leader().unwrap_or(self.id());
            self.refuse(leader, Refusal::Misbehaving(violation));
            self.reset_follower_stream(None);
        }
    }

    fn receiver(&mut self) -> &mut Receiver {
        match &mut self.role {
            RoleState::Follower(FollowerState {
                stream: Some(s), ..
            }) => s,
            _ => unreachable!("a receiver exists while handling its frame"),
        }
    }

    /// A chunk: checked whole before anything is appended, so a refused chunk
    /// changes nothing.
    fn on_chunk(
        &mut self,
        chunk_term: Term,
        (prev_index, prev_term): (LogIndex, Term),
        leader_commit: LogIndex,
        entries: Entries,
    ) -> Result<(), Violation> {
        let stream = self.receiver().id;
        if let Some(inc) = &self.incoming {
            if inc.stream == stream {
                // A driver writes a snapshot's frames back to back.
                return Err(Violation::ChunkInsideSnapshot);
            }
            // The leader went on with entries rather than resume the
            // transfer the last stream cut short: it is not needed.
            self.incoming = None;
        }
        let chunk_last = self.check_chunk_shape(chunk_term, (prev_index, prev_term), &entries)?;
        if leader_commit > chunk_last {
            return Err(Violation::CommitBeyondChunk {
                commit: leader_commit,
                last: chunk_last,
            });
        }
        let r = self.receiver();
        let (expect_prev, validated) = (r.expect_prev, r.validated);
        if expect_prev.is_some_and(|p| p != prev_index) {
            return Err(Violation::ChunkOutOfOrder {
                expected: expect_prev.unwrap_or_default(),
                prev: prev_index,
            });
        }
        let last = self.log.last_index();
        if prev_index > last {
            return Err(Violation::PrevBeyondLog {
                prev: prev_index,
                last,
            });
        }
        // `prev` must be in our log with the same term. Below the compaction
        // point its term is unknown, but it is committed and so matches.
        match self.log.term_at(prev_index) {
            Some(t) if t != prev_term && prev_index <= self.commit => {
                return Err(Violation::ContradictsCommitted(prev_index));
            }
            Some(t) if t != prev_term && expect_prev.is_some() => {
                return Err(Violation::ContradictsValidated(prev_index));
            }
            Some(t) if t != prev_term => {
                let probe = self.lower_probe(prev_index, prev_term);
                self.reset_follower_stream(Some(probe));
                return Ok(());
            }
            _ => {}
        }
        let from = self.first_new_entry(&entries, validated)?;
        // The new entries share the chunk's allocation from here to the log.
        let appended = match from {
            Some(i) => entries.slice_from(i),
            None => Entries::new(),
        };
        if let Some(first) = appended.first() {
            if first.index <= last {
                assert!(
                    first.index > self.commit,
                    "node {}: truncating committed entry {}",
                    self.id(),
                    first.index
                );
                self.log.truncate_from(first.index);
                self.configs.truncate_from(first.index);
                self.emit(Action::TruncateLog { from: first.index });
            }
            self.log.append(appended.clone());
            for e in appended.iter().filter(|e| e.kind.is_config()) {
                let config = Config::decode(&e.data).expect("validated above");
                self.configs.push(e.index, config);
            }
            self.emit(Action::AppendLog(appended));
        }
        let r = self.receiver();
        r.expect_prev = Some(chunk_last);
        r.validated = r.validated.max(chunk_last);
        let validated = r.validated;
        self.advance_commit_to(leader_commit.min(validated));
        self.maybe_ack();
        Ok(())
    }

    /// The rules a chunk must obey on its own: the stream's term, consecutive
    /// entries after `prev`, terms that never decrease and never exceed the
    /// stream's, membership entries that decode to a configuration of this
    /// cluster. Returns the chunk's last index (`prev` when empty).
    fn check_chunk_shape(
        &self,
        chunk_term: Term,
        (prev_index, prev_term): (LogIndex, Term),
        entries: &[LogEntry],
    ) -> Result<LogIndex, Violation> {
        let term = self.hs.term;
        if chunk_term != term {
            return Err(Violation::ChunkOfAnotherTerm {
                chunk: chunk_term,
                stream: term,
            });
        }
        if prev_term > term {
            return Err(Violation::TermAboveStream {
                index: prev_index,
                term: prev_term,
            });
        }
        let mut last = (prev_index, prev_term);
        for e in entries {
            if last.0.0.checked_add(1) != Some(e.index.0) {
                return Err(Violation::EntriesNotContiguous(e.index));
            }
            if e.term < last.1 {
                return Err(Violation::TermsDecrease(e.index));
            }
            if e.term > term {
                return Err(Violation::TermAboveStream {
                    index: e.index,
                    term: e.term,
                });
            }
            if e.kind.is_config()
                && Config::decode(&e.data)
                    .map_or(true, |c| Some(c.cluster_id) != self.hs.cluster_id)
            {
                return Err(Violation::BadConfigEntry(e.index));
            }
            last = (e.index, e.term);
        }
        Ok(last.0)
    }

    /// The position in `entries` of the first entry our log lacks or holds
    /// with another term (where the append starts, truncating from there), or
    /// `None` if we hold them all. Entries we hold with another term must lie
    /// above both our commit index and what this stream validated.
    fn first_new_entry(
        &self,
        entries: &[LogEntry],
        validated: LogIndex,
    ) -> Result<Option<usize>, Violation> {
        for (i, e) in entries.iter().enumerate() {
            match self.log.term_at(e.index) {
                // Compacted: committed, covered by our snapshot.
                None if e.index < self.log.base_index() => {}
                None => return Ok(Some(i)),
                Some(t) if t == e.term => {}
                Some(_) if e.index <= self.commit => {
                    return Err(Violation::ContradictsCommitted(e.index));
                }
                Some(_) if e.index <= validated => {
                    return Err(Violation::ContradictsValidated(e.index));
                }
                Some(_) => return Ok(Some(i)),
            }
        }
        Ok(None)
    }

    /// After a mismatch at `prev`: the highest index below it that could still
    /// match, skipping our entries whose term exceeds the leader's `prev_term`.
    fn lower_probe(&self, prev_index: LogIndex, prev_term: Term) -> (LogIndex, Term) {
        let below = prev_index.prev().min(self.log.last_index());
        let index = self
            .log
            .last_index_with_term_at_most(below, prev_term, self.commit);
        // The probe is at or above the commit index, which is at or above the
        // log's base (the snapshot's index): the log knows its term.
        let term = self.log.term_at(index).unwrap_or_else(|| {
            panic!(
                "node {}: probe {index} below the log base {} (commit {})",
                self.id(),
                self.log.base_index(),
                self.commit
            )
        });
        (index, term)
    }

    /// Sends an ack if the durable, validated prefix grew.
    pub(crate) fn maybe_ack(&mut self) {
        let durable = self.log.durable();
        let RoleState::Follower(FollowerState {
            stream: Some(s), ..
        }) = &mut self.role
        else {
            return;
        };
        let ack = durable.min(s.validated);
        if ack > s.acked {
            s.acked = ack;
            let (stream, peer) = (s.id, s.leader);
            self.emit(Action::SendFrame {
                stream,
                peer,
                frame: Frame::Ack { durable: ack },
            });
        }
    }

    fn on_snapshot_begin(
        &mut self,
        stream: StreamId,
        meta: SnapshotMeta,
        size: u64,
        offset: u64,
    ) -> Result<(), Violation> {
        if self
            .incoming
            .as_ref()
            .is_some_and(|inc| inc.stream == stream)
        {
            return Err(Violation::SnapshotInsideSnapshot);
        }
        // What the last stream left, if anything: the transfer this one may
        // resume, else forgotten.
        let held = self.incoming.take();
        let r = self.receiver();
        let stream_at = r.validated.max(r.expect_prev.unwrap_or_default());
        let leader = r.leader;
        if meta.term > self.hs.term {
            return Err(Violation::SnapshotTermAboveStream(meta.term));
        }
        if meta.index > LogIndex::LIMIT {
            return Err(Violation::SnapshotIndexAboveLimit(meta.index));
        }
        if Some(meta.config.cluster_id) != self.hs.cluster_id {
            return Err(Violation::SnapshotOfAnotherCluster);
        }
        if meta.config.validate().is_err() || meta.config.index > meta.index {
            return Err(Violation::SnapshotConfigInvalid);
        }
        // A leader sends a snapshot only when the stream needs entries it
        // compacted: never one behind what the stream already delivered.
        if meta.index < stream_at {
            return Err(Violation::SnapshotRewindsStream {
                snapshot: meta.index,
                stream: stream_at,
            });
        }
        // The leader's log holds our committed prefix: a snapshot inside it
        // has its term there, one beyond it a term no lower than its end.
        let skip = meta.index <= self.commit;
        let contradicts = if skip {
            self.log.term_at(meta.index).is_some_and(|t| t != meta.term)
        } else {
            self.log.term_at(self.commit).is_some_and(|t| meta.term < t)
        };
        if contradicts {
            return Err(Violation::ContradictsCommitted(meta.index.min(self.commit)));
        }
        if offset > 0 {
            // A resumed transfer goes on exactly where ours stopped, with the
            // same snapshot: only then are the driver's stored bytes its prefix.
            let held_bytes = held.as_ref().map_or(0, |h| h.received);
            let resumable = held.filter(|h| {
                h.meta == meta && h.size == size && h.received == offset && h.leader == leader
            });
            let Some(mut inc) = resumable.filter(|_| !skip) else {
                return Err(Violation::SnapshotResumeMismatch {
                    offset,
                    held: held_bytes,
                });
            };
            inc.stream = stream;
            self.incoming = Some(inc);
            return Ok(());
        }
        self.incoming = Some(IncomingSnapshot {
            stream,
            leader,
            meta,
            size,
            received: 0,
            crc: crc32fast::Hasher::new(),
            skip,
        });
        Ok(())
    }

    /// The transfer in progress on `stream`, if any.
    fn incoming_on(&mut self, stream: StreamId) -> Option<&mut IncomingSnapshot> {
        self.incoming.as_mut().filter(|inc| inc.stream == stream)
    }

    fn on_snapshot_chunk(
        &mut self,
        stream: StreamId,
        offset: u64,
        data: bytes::Bytes,
        crc: u32,
    ) -> Result<(), Violation> {
        let Some(inc) = self.incoming_on(stream) else {
            return Err(Violation::SnapshotDataOutsideSnapshot);
        };
        let end = inc.received.checked_add(data.len() as u64);
        if offset != inc.received || end.is_none_or(|end| end > inc.size) {
            return Err(Violation::SnapshotChunkOutOfPlace {
                offset,
                expected: inc.received,
            });
        }
        if crc32fast::hash(&data) != crc {
            return Err(Violation::SnapshotCorrupt);
        }
        inc.crc.update(&data);
        inc.received += data.len() as u64;
        let (received, size) = (inc.received, inc.size);
        if inc.skip {
            // We hold everything it covers; the ack still frees the leader's budget.
            self.ack_snapshot(received, size);
            return Ok(());
        }
        let meta = inc.meta.clone();
        self.emit(Action::ReceiveSnapshotChunk { meta, offset, data });
        self.ack_snapshot(received, size);
        Ok(())
    }

    /// Tells the leader how much of the snapshot arrived, freeing its budget.
    fn ack_snapshot(&mut self, received: u64, size: u64) {
        let (stream, peer) = (self.receiver().id, self.receiver().leader);
        self.emit(Action::SendFrame {
            stream,
            peer,
            frame: Frame::SnapshotAck { received, size },
        });
    }

    fn on_snapshot_end(&mut self, stream: StreamId, crc: u32) -> Result<(), Violation> {
        if self.incoming_on(stream).is_none() {
            return Err(Violation::SnapshotDataOutsideSnapshot);
        }
        let inc = self.incoming.take().expect("on this stream");
        if inc.received != inc.size || inc.crc.finalize() != crc {
            return Err(Violation::SnapshotCorrupt);
        }
        self.receiver().expect_prev = Some(inc.meta.index);
        // The last chunk's ack already said the whole snapshot arrived, and
        // the leader has moved on to entries: a second one would be out of
        // place. Only an empty snapshot, which has no chunks, is acked here.
        if inc.size == 0 {
            self.ack_snapshot(0, 0);
        }
        // Commit may have moved past the snapshot while it streamed in.
        if inc.skip || inc.meta.index <= self.commit {
            return Ok(());
        }
        // An install always lands (nothing else runs until it does).
        self.snapshot_bytes = inc.size;
        self.installing = Some(inc.meta.clone());
        self.emit(Action::InstallSnapshot { meta: inc.meta });
        Ok(())
    }

    /// The driver installed the snapshot: the log restarts after it.
    pub(crate) fn on_snapshot_installed(&mut self, meta: SnapshotMeta) {
        if self.installing.as_ref() != Some(&meta) {
            return; // not the snapshot we asked to install: a driver bug or a stale report
        }
        self.installing = None;
        assert!(
            meta.index > self.applied,
            "node {}: installing a snapshot would roll back the FSM",
            self.id()
        );
        self.log.reset_to(meta.index, meta.term);
        self.configs.reset_to(meta.config.clone());
        self.commit = self.commit.max(meta.index);
        self.applied = meta.index;
        self.apply_reading = None;
        self.log_since_snapshot = LogSince::default();
        self.snapshot = Some(meta.clone());
        let held = match &mut self.role {
            RoleState::Follower(FollowerState {
                stream: Some(s), ..
            }) => {
                s.validated = s.validated.max(meta.index);
                s.held_bytes = 0;
                std::mem::take(&mut s.held)
            }
            _ => VecDeque::new(),
        };
        self.maybe_ack();
        if let Some(stream) = self.follower_stream_id() {
            for frame in held {
                self.on_follower_frame(stream, frame);
            }
        }
        self.apply_committed();
    }

    fn follower_stream_id(&self) -> Option<StreamId> {
        match &self.role {
            RoleState::Follower(FollowerState {
                stream: Some(s), ..
            }) => Some(s.id),
            _ => None,
        }
    }
}
