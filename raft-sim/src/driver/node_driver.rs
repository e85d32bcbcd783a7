//! The driver of one node: executes the actions of one step, each kind in a
//! method of its own, against the world the node lives in.

use crate::checkers::{Failure, durability, election};
use crate::disk::{DiskEntry, DiskOp, StoredSnapshot};
use crate::scenario::Mutant;
use crate::trace::{DropReason, Fact};
use crate::world::{SimEvent, World, index_of};
use bytes::Bytes;
use raft_core::{
    Action, Config, Entries, Event, Frame, HardState, Instant, LogIndex, LogReader, Message,
    NodeId, Refusal, Role, SnapshotMeta, StreamId, StreamOpen, Term,
};

use super::SNAPSHOT_CHUNK_BYTES;

/// Node `i` of a world, executing what its last step asked for.
pub(crate) struct NodeDriver<'w, S: crate::service::Service> {
    w: &'w mut World<S>,
    i: usize,
}

impl<'w, S: crate::service::Service> NodeDriver<'w, S> {
    /// The driver of node `i`.
    pub(crate) fn new(w: &'w mut World<S>, i: usize) -> NodeDriver<'w, S> {
        NodeDriver { w, i }
    }

    /// Executes one action (traced first, except the chatty ones, which
    /// trace themselves with what became of them).
    pub(crate) fn execute(&mut self, action: Action) -> Result<(), Failure> {
        match &action {
            Action::Send(_) | Action::SendFrame { .. } | Action::Apply(_) => {}
            other => {
                let text = self.w.trace.text(format_args!("-> {other}"));
                self.w
                    .trace
                    .record(self.w.now, Some(self.i), Fact::of_action(other), text)
            }
        }
        match action {
            Action::Send(msg) => self.send(msg),
            Action::OpenStream {
                stream,
                leader,
                open,
            } => self.open_stream(stream, leader, open),
            Action::SendFrame { stream, frame, .. } => self.send_frame(stream, frame),
            Action::SendSnapshot {
                stream,
                meta,
                offset,
                bytes_max,
                first,
                ..
            } => self.send_snapshot(stream, meta, (offset, bytes_max), first),
            Action::CloseStream { stream, .. } => {
                self.close_stream(stream);
                Ok(())
            }
            Action::PersistHardState(hs) => self.persist_hard_state(hs),
            Action::AppendLog(entries) => self.append_log(entries),
            Action::TruncateLog { from } => self.truncate_log(from),
            Action::CompactLog { through } => self.compact_log(through),
            Action::Apply(entries) => self.apply(entries),
            Action::ReadLog {
                reader,
                from,
                count_max,
                bytes_max,
            } => {
                self.read_log(reader, from, count_max, bytes_max);
                Ok(())
            }
            Action::TakeSnapshot => self.take_snapshot(),
            Action::ReceiveSnapshotChunk { meta, offset, data } => {
                self.receive_snapshot_chunk(meta, offset, data)
            }
            Action::InstallSnapshot { meta } => self.install_snapshot(meta),
            Action::CompleteRequest { id, result } => self.w.on_complete(self.i, id, result),
            Action::RoleChanged { role, term, .. } => self.role_changed(role, term),
            Action::Refused { reason, .. } => {
                self.refused(reason);
                Ok(())
            }
            Action::ConfigChanged(config) => {
                self.config_changed(&config);
                Ok(())
            }
            // The simulator is built with this raft-core: an action it does
            // not execute is a simulator bug, and skipping it would hide one.
            other => panic!("node {}: the simulator does not execute {other}", self.i),
        }
    }

    /// Puts a frame on a stream (checked against the durable state first).
    fn send_frame(&mut self, stream: StreamId, frame: Frame) -> Result<(), Failure> {
        durability::check_frame(self.i, &frame, &self.w.hosts[self.i].disk)?;
        self.w.send_frame_of(self.i, stream, frame);
        Ok(())
    }

    /// Closes a stream from this node's side.
    fn close_stream(&mut self, stream: StreamId) {
        let follow = self.w.net.close(stream, self.i);
        self.w.schedule_net(follow);
    }

    /// Makes the hard state durable at once (the driver blocks on it).
    fn persist_hard_state(&mut self, hs: HardState) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        election::check_hard_state(i, w.hosts[i].disk.hard_state(), &hs)?;
        if w.scenario.knobs.mutant != Mutant::SkipHardState {
            w.hosts[i].disk.persist_hard_state(hs);
        }
        Ok(())
    }

    /// Drops the log prefix through `through` (covered by a snapshot).
    fn compact_log(&mut self, through: LogIndex) -> Result<(), Failure> {
        let i = self.i;
        let host = &mut self.w.hosts[i];
        host.disk
            .compact(through)
            .map_err(|e| Failure::safety("driver-contract", format!("n{}: {e}", i + 1)))?;
        host.mirror.compact(through);
        Ok(())
    }

    /// Counts a refusal by its reason.
    fn refused(&mut self, reason: Refusal) {
        self.w.cover(match reason {
            Refusal::LeaderAlive(_) => "vote refused: leader alive",
            Refusal::StaleTerm { .. } => "refused: stale term",
            Refusal::OutOfDateLog => "vote refused: log out of date",
            Refusal::AlreadyVoted(_) => "vote refused: already voted",
            Refusal::NotLeaderOfTerm => "stream refused: not leader of term",
            Refusal::ForeignCluster { .. } => crate::coverage::FOREIGN_CLUSTER_REFUSED,
            _ => "refused: other",
        })
    }

    /// Follows the node's configuration (membership bookkeeping).
    fn config_changed(&mut self, config: &Config) {
        self.w.on_config_changed(config)
    }

    /// Sends a datagram (checked against the durable state first).
    fn send(&mut self, msg: Message) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let now = w.now;
        let n = w.hosts.len();
        durability::check_send(i, &msg, &w.hosts[i].disk)?;
        let Some(to) = index_of(msg.to, n) else {
            let fact = Fact::dropped(i, &msg, DropReason::NoSuchNode);
            let text = w.trace.text(format_args!("-> drop (no such node) {msg}"));
            w.trace.record(now, Some(i), fact, text);
            return Ok(());
        };
        match w.net.send_datagram(i, to, now, &mut w.net_rng) {
            Ok(times) => {
                let fact = Fact::MessageSent {
                    from: i,
                    to,
                    term: msg.term,
                    body: msg.body.clone(),
                    duplicated: times.len() > 1,
                };
                let text = w.trace.text(format_args!(
                    "-> Send {msg}{}",
                    if times.len() > 1 { " (dup)" } else { "" }
                ));
                w.trace.record(now, Some(i), fact, text);
                for at in times {
                    w.schedule(
                        at,
                        SimEvent::Message {
                            from: i,
                            to,
                            msg: msg.clone(),
                        },
                    );
                }
            }
            Err(why) => {
                let fact = Fact::dropped(i, &msg, DropReason::of_send(why));
                let text = w.trace.text(format_args!("-> drop ({why}) {msg}"));
                w.trace.record(now, Some(i), fact, text);
            }
        }
        w.hostile_datagram(i, &msg);
        Ok(())
    }

    /// Opens a replication stream to the leader `leader`.
    fn open_stream(
        &mut self,
        stream: StreamId,
        leader: NodeId,
        open: StreamOpen,
    ) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let now = w.now;
        let n = w.hosts.len();
        durability::check_open(i, &open, &w.hosts[i].disk)?;
        if open.probe_index < w.hosts[i].mirror.last_index() {
            w.cover("stream reopened below the last index (after a mismatch)");
        }
        let Some(l) = index_of(leader, n) else {
            return Ok(());
        };
        let inc = w.hosts[i].incarnation;
        let leader_inc = w.up_incarnation(l);
        let follow = w
            .net
            .open_stream(stream, (i, inc), (l, leader_inc), now)
            .map_err(|e| Failure::safety("stream-id", format!("n{}: {e}", i + 1)))?;
        w.opens.insert(stream, open);
        w.schedule_net(follow);
        Ok(())
    }

    /// Streams one budget window of the stored snapshot `meta` on `stream`.
    fn send_snapshot(
        &mut self,
        stream: StreamId,
        meta: SnapshotMeta,
        (offset, bytes_max): (u64, u64),
        first: bool,
    ) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let now = w.now;
        if offset == 0 {
            w.cover("snapshot sent on a stream");
        } else if first {
            w.cover(crate::coverage::SNAPSHOT_RESUMED);
        } else {
            w.cover("snapshot sent in several budget windows");
        }
        let stored = w.hosts[i]
            .disk
            .snapshot_matching(meta.index, meta.term)
            .cloned();
        let Some(s) = stored else {
            // Replaced by newer snapshots while it streamed: the
            // contract says close the stream, the transfer starts over.
            w.cover("snapshot replaced during its transfer");
            let follow = w.net.close(stream, i);
            w.schedule_net(follow);
            return Ok(());
        };
        let frames = raft_core::wire::snapshot_window_frames(
            &s.meta,
            &s.data,
            offset,
            bytes_max,
            first,
            SNAPSHOT_CHUNK_BYTES,
        );
        for frame in frames {
            match w.net.send_frame(stream, i, frame, now, &mut w.net_rng) {
                Ok(follow) => w.schedule_net(follow),
                Err(_) => break,
            }
        }
        w.hostile_snapshot_sent(i, stream, &s.meta);
        Ok(())
    }

    /// Appends entries in memory and submits them to the disk.
    fn append_log(&mut self, entries: Entries) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let now = w.now;
        if w.hostile.is_some() && crate::hostile::holds_forged(&entries) {
            return Err(Failure::safety(
                "hostile-data-accepted",
                format!("n{} appends an entry the hostile member forged", i + 1),
            ));
        }
        w.check_membership_rules(i, &entries)?;
        let host = &mut w.hosts[i];
        let mut digests = std::mem::take(&mut w.digests_scratch);
        host.mirror
            .append_into(&entries, &mut digests)
            .map_err(|e| Failure::safety("driver-contract", format!("n{}: {e}", i + 1)))?;
        if !w.is_foreign(i) {
            w.global.on_append(i, &entries, &digests)?;
        }
        if w.scenario.knobs.mutant == Mutant::EarlyLogPersisted {
            if let Some(last) = entries.last() {
                let (index, term, incarnation) = (last.index, last.term, w.hosts[i].incarnation);
                let event = Event::LogPersisted { index, term };
                w.schedule(
                    now,
                    SimEvent::Deliver {
                        node: i,
                        incarnation,
                        event,
                    },
                );
            }
        }
        // Sized up front: collecting the zip grew the vector step by step.
        let mut disk_entries = Vec::with_capacity(digests.len());
        disk_entries.extend(
            entries
                .into_iter()
                .zip(digests.iter().copied())
                .map(|(entry, digest)| DiskEntry { entry, digest }),
        );
        w.digests_scratch = digests;
        w.submit(i, DiskOp::Append(disk_entries));
        Ok(())
    }

    /// Truncates the log suffix from `from` (never a committed entry).
    fn truncate_log(&mut self, from: LogIndex) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        w.cover("log truncated (conflicting suffix)");
        let committed = w.global.committed_len();
        if from <= committed {
            let mine = w.hosts[i].mirror.at(from).map(|(_, d)| d);
            if mine.is_some() && mine == w.global.committed_at(from) {
                return Err(Failure::safety(
                    "truncate-committed",
                    format!(
                        "n{} truncates from {from}, a committed entry (committed through {committed})",
                        i + 1
                    ),
                ));
            }
        }
        w.hosts[i]
            .mirror
            .truncate(from)
            .map_err(|e| Failure::safety("driver-contract", format!("n{}: {e}", i + 1)))?;
        w.submit(i, DiskOp::Truncate { from });
        Ok(())
    }

    /// Applies committed entries to the state machine.
    fn apply(&mut self, entries: Entries) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let now = w.now;
        if let (Some(a), Some(b)) = (entries.first(), entries.last()) {
            let fact = Fact::Applied {
                first: a.index,
                last: b.index,
            };
            let text = w
                .trace
                .text(format_args!("-> Apply [{}..={}]", a.index, b.index));
            w.trace.record(now, Some(i), fact, text);
        }
        let host = &mut w.hosts[i];
        for e in &entries {
            if !host.mirror.holds(e) {
                return Err(Failure::safety(
                    "state-machine-safety",
                    format!("n{} applies {e} which is not in its log", i + 1),
                ));
            }
            let digest = host.mirror.at(e.index).map_or(0, |(_, d)| d);
            host.fsm
                .apply(e)
                .map_err(|m| Failure::safety("state-machine-safety", format!("n{}: {m}", i + 1)))?;
            host.step_applies.push((e.index, digest));
        }
        host.last_apply_at = now;
        w.serve_waiters(i);
        Ok(())
    }

    /// Stores a snapshot of the applied state and reports it taken after an fsync.
    fn take_snapshot(&mut self) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let now = w.now;
        w.cover("snapshot taken");
        let index = w.hosts[i].fsm.applied();
        let applied_digest = w.global_applied(i, index);
        let host = &mut w.hosts[i];
        let (Some(config), Some((_, digest))) = (host.fsm.config().cloned(), applied_digest) else {
            // Never report a snapshot that was not stored.
            return Err(Failure::safety(
                "driver-contract",
                format!(
                    "n{} asked for a snapshot at applied {index} with no configuration or digest known",
                    i + 1
                ),
            ));
        };
        let meta = SnapshotMeta {
            index,
            term: host.fsm.applied_term(),
            config,
        };
        // Captured here, at the applied point; written (and durable)
        // `snapshot_duration_ms` later, while the node runs on.
        let data = host.fsm.snapshot_bytes();
        let bytes = data.len() as u64;
        let snapshot = StoredSnapshot { meta, data, digest };
        let duration_ns = w.scenario.knobs.snapshot_duration_ms * 1_000_000;
        if duration_ns == 0 {
            host.disk.store_snapshot(snapshot);
        } else {
            host.snapshot_writing = Some(snapshot);
        }
        let inc = host.incarnation;
        let at = Instant(now.0 + w.scenario.knobs.fsync_min_ns + duration_ns);
        w.schedule(
            at,
            SimEvent::Deliver {
                node: i,
                incarnation: inc,
                event: Event::SnapshotTaken { index, bytes },
            },
        );
        Ok(())
    }

    /// Reads entries back from the durable log and answers a read latency
    /// later (the disk's least fsync latency), as a driver's reader thread
    /// would, while the node runs on.
    fn read_log(&mut self, reader: LogReader, from: LogIndex, count_max: usize, bytes_max: u64) {
        let (w, i) = (&mut *self.w, self.i);
        w.cover(match reader {
            LogReader::Apply => crate::coverage::LOG_READ_FOR_APPLY,
            _ => crate::coverage::LOG_READ_FOR_STREAM,
        });
        let entries = w.hosts[i].disk.read(from, count_max, bytes_max);
        let at = Instant(w.now.0 + w.scenario.knobs.fsync_min_ns);
        let incarnation = w.hosts[i].incarnation;
        w.schedule(
            at,
            SimEvent::Deliver {
                node: i,
                incarnation,
                event: Event::LogRead {
                    reader,
                    from,
                    entries,
                },
            },
        );
    }

    /// Buffers a chunk of a snapshot being received.
    fn receive_snapshot_chunk(
        &mut self,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
    ) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let host = &mut w.hosts[i];
        if offset == 0 {
            host.incoming = Some((meta.clone(), Vec::new()));
        }
        match &mut host.incoming {
            Some((m, buf)) if *m == meta && buf.len() as u64 == offset => {
                buf.extend_from_slice(&data)
            }
            _ => {
                return Err(Failure::safety(
                    "driver-contract",
                    format!(
                        "n{} snapshot chunk @{offset} of {meta} does not follow what was received",
                        i + 1
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Installs the snapshot whose chunks were received.
    fn install_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let Some((m, data)) = w.hosts[i].incoming.take().filter(|(m, _)| *m == meta) else {
            return Err(Failure::safety(
                "driver-contract",
                format!("n{} installs {meta} without its chunks", i + 1),
            ));
        };
        if data.as_slice() == crate::hostile::FORGED {
            return Err(Failure::safety(
                "hostile-data-accepted",
                format!(
                    "n{} installs {meta}, a snapshot the hostile member forged",
                    i + 1
                ),
            ));
        }
        let Some(digest) = w.global.digest_of(m.index, m.term) else {
            return Err(Failure::safety(
                "snapshot",
                format!("n{} installs {meta}, an entry no node ever appended", i + 1),
            ));
        };
        if w.global.committed_at(m.index).is_some_and(|c| c != digest) {
            return Err(Failure::safety(
                "state-machine-safety",
                format!(
                    "n{} installs {meta} which is not the committed entry",
                    i + 1
                ),
            ));
        }
        w.hosts[i].mirror.install(m.index, m.term, digest);
        w.submit(
            i,
            DiskOp::InstallSnapshot(StoredSnapshot {
                meta: m,
                data: Bytes::from(data),
                digest,
            }),
        );
        Ok(())
    }

    /// Records a role change and runs the election checkers on a new leader.
    fn role_changed(&mut self, role: Role, term: Term) -> Result<(), Failure> {
        let (w, i) = (&mut *self.w, self.i);
        let now = w.now;
        let host = &mut w.hosts[i];
        host.role = role;
        host.term = term;
        // A removed node that keeps campaigning is not the cluster's instability.
        if w.is_member(i) {
            w.last_role_change = now;
        }
        if role == Role::Leader && !w.is_foreign(i) {
            w.cover("leader elected");
            w.election.on_leader(i, term)?;
            w.global.on_leader(i, term, &w.hosts[i].mirror)?;
            w.on_leader_elected(i);
        }
        Ok(())
    }
}
