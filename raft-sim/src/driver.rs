//! The simulator as the core's driver: stepping a node and executing its
//! actions strictly in order, obeying (and checking) the driver contract.
//!
//! * `PersistHardState` is durable at once (the driver blocks on it).
//! * `AppendLog`/`TruncateLog`/`InstallSnapshot` go to the disk's pending
//!   list; a completed fsync reports `LogPersisted` (and `SnapshotInstalled`).
//! * Sends, stream opens and frames are checked against the durable state at
//!   the moment they leave the node.
//! * `Apply` feeds the node's key-value state machine; clients waiting for an
//!   index are answered once it is applied.

use crate::checkers::{Failure, durability, election};
use crate::digest::hash_bytes;
use crate::disk::{DiskEntry, DiskNotice, DiskOp, StoredSnapshot};
use crate::kv::KvCommand;
use crate::scenario::Mutant;
use crate::workload::End;
use crate::world::{ApplyWaiter, SimEvent, World, index_of};
use bytes::Bytes;
use raft_core::{
    Action, Completion, EntryKind, Event, Frame, Instant, LogIndex, RequestError, RequestId, Role,
    SnapshotMeta,
};

/// Up to this many entries in a node's log, its invariants are checked after every step.
pub const INVARIANTS_FULL_LOG_ENTRIES: u64 = 512;
/// Beyond that, every this many steps of the node.
pub const INVARIANTS_SAMPLE_STEPS: u64 = 16;

/// Bounds are checked every this many steps of a node.
pub const BOUNDS_SAMPLE_STEPS: u64 = 16;

/// Bytes per `SnapshotChunk` frame the simulated leader driver writes.
pub const SNAPSHOT_CHUNK_BYTES: usize = 16 * 1024;

impl World {
    /// Puts `frame` from node `i` on `stream` (traced; dropped if the stream is gone).
    pub(crate) fn send_frame_now(&mut self, i: usize, stream: raft_core::StreamId, frame: Frame) {
        let text = format!("-> SendFrame {stream} {frame}");
        match self
            .net
            .send_frame(stream, i, frame, self.now, &mut self.net_rng)
        {
            Ok(follow) => {
                self.trace.record(self.now, Some(i), text);
                self.schedule_net(follow);
            }
            Err(why) => self
                .trace
                .record(self.now, Some(i), format!("{text} dropped ({why})")),
        }
    }

    /// A leader appends a configuration change only once it has committed an
    /// entry of its term, and never while another change is uncommitted
    /// (SIMULATION §2.11 rule 10). Judged on its state after the step, whose
    /// commit index can only be higher than when it appended.
    fn check_membership_rules(
        &self,
        i: usize,
        entries: &[raft_core::LogEntry],
    ) -> Result<(), Failure> {
        let Some(node) = self.hosts[i]
            .node
            .as_ref()
            .filter(|n| n.role() == Role::Leader)
        else {
            return Ok(());
        };
        let change =
            |e: &raft_core::LogEntry| e.kind.is_config() && e.kind != EntryKind::Initialize;
        let Some(first) = entries.iter().find(|e| change(e)) else {
            return Ok(());
        };
        let commit = node.commit_index();
        if node.term_at(commit) != Some(node.term()) {
            return Err(Failure::safety(
                "membership",
                format!(
                    "n{} leader of {} appended a change at {} before committing an entry of its term (commit {commit})",
                    i + 1,
                    node.term(),
                    first.index
                ),
            ));
        }
        let uncommitted: Vec<LogIndex> = node
            .log_entries()
            .filter(|e| e.index > commit && change(e))
            .map(|e| e.index)
            .collect();
        if uncommitted.len() > 1 {
            return Err(Failure::safety(
                "membership",
                format!(
                    "n{} leader of {} has configuration changes at {uncommitted:?} uncommitted at once (commit {commit})",
                    i + 1,
                    node.term()
                ),
            ));
        }
        Ok(())
    }

    /// Steps node `i` with `event` at its local time and executes the actions.
    pub(crate) fn step(&mut self, i: usize, event: Event) {
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        let local = host.clock.local(self.now);
        let text = format!("{} <- {event}", role_glyph(node.role(), node.term()));
        let read = match &event {
            Event::ReadRequested { id } if node.config().voter_count() > 1 => Some(*id),
            _ => None,
        };
        // A leader may commit and then append a configuration in one step
        // (a promotion): the commit was decided under the voters before it.
        let voters_before: Vec<raft_core::NodeId> = if node.role() == Role::Leader {
            node.config().voters().collect()
        } else {
            Vec::new()
        };
        let actions = node.step(local, event);
        // With other voters, a read answered within the step that asked it
        // did not wait for a heartbeat round: the lease served it.
        let lease_read = read.is_some_and(|id| {
            actions.iter().any(|a| {
                matches!(a, Action::CompleteRequest { id: x, result: Ok(Completion::Read { .. }) } if *x == id)
            })
        });
        // The core's invariant check walks its whole log; on long logs run it
        // every `INVARIANTS_SAMPLE_STEPS` steps of the node instead of every step.
        host.steps += 1;
        let since_snapshot = node.last_index().0
            - node
                .snapshot()
                .map_or(0, |s| s.index.0.min(node.last_index().0));
        let long_log = since_snapshot > INVARIANTS_FULL_LOG_ENTRIES;
        if !long_log || host.steps % INVARIANTS_SAMPLE_STEPS == 0 {
            node.check_invariants();
        }
        self.trace.record(self.now, Some(i), text);
        if lease_read {
            self.cover(crate::sweep::LEASE_READ);
        }
        for action in actions {
            if let Err(f) = self.execute(i, action) {
                return self.fail(f);
            }
            if self.hosts[i].node.is_none() {
                return;
            }
        }
        self.flush_hostile(i);
        if let Err(f) = self.after_step(i, &voters_before) {
            return self.fail(f);
        }
        if self.crash_armed.contains(&i) && self.hosts[i].disk.has_pending_multi_append() {
            self.crash_armed.remove(&i);
            self.cover("crash with a multi-entry append pending");
            return self.crash(i);
        }
        // Timers due at `now` fire within the step, so the next deadline must
        // not lie in the past; one that does would make a driver spin. (Equal
        // to `now` means "step me again at once", which the wake handles.)
        let deadline = self.hosts[i]
            .node
            .as_ref()
            .map_or(Instant::NEVER, |n| n.next_deadline());
        if deadline < local {
            let f = Failure::liveness(
                "deadline-in-past",
                format!(
                    "n{} next_deadline {deadline} is before its now {local}: a driver would spin",
                    i + 1
                ),
            );
            return self.fail(f);
        }
        self.rearm(i);
    }

    fn execute(&mut self, i: usize, action: Action) -> Result<(), Failure> {
        let n = self.hosts.len();
        let now = self.now;
        match &action {
            Action::Send(_) | Action::SendFrame { .. } | Action::Apply(_) => {}
            other => self.trace.record(now, Some(i), format!("-> {other}")),
        }
        match action {
            Action::Send(msg) => {
                durability::check_send(i, &msg, &self.hosts[i].disk)?;
                let Some(to) = index_of(msg.to, n) else {
                    self.trace
                        .record(now, Some(i), format!("-> drop (no such node) {msg}"));
                    return Ok(());
                };
                match self.net.send_datagram(i, to, now, &mut self.net_rng) {
                    Ok(times) => {
                        self.trace.record(
                            now,
                            Some(i),
                            format!(
                                "-> Send {msg}{}",
                                if times.len() > 1 { " (dup)" } else { "" }
                            ),
                        );
                        for at in times {
                            self.schedule(
                                at,
                                SimEvent::Message {
                                    from: i,
                                    to,
                                    msg: msg.clone(),
                                },
                            );
                        }
                    }
                    Err(why) => self
                        .trace
                        .record(now, Some(i), format!("-> drop ({why}) {msg}")),
                }
                self.hostile_datagram(i, &msg);
            }
            Action::OpenStream {
                stream,
                leader,
                open,
            } => {
                durability::check_open(i, &open, &self.hosts[i].disk)?;
                if open.probe_index < self.hosts[i].mirror.last_index() {
                    self.cover("stream reopened below the last index (after a mismatch)");
                }
                let Some(l) = index_of(leader, n) else {
                    return Ok(());
                };
                let inc = self.hosts[i].incarnation;
                let leader_inc = self.up_incarnation(l);
                let follow = self
                    .net
                    .open_stream(stream, (i, inc), (l, leader_inc), now)
                    .map_err(|e| Failure::safety("stream-id", format!("n{}: {e}", i + 1)))?;
                self.opens.insert(stream, open);
                self.schedule_net(follow);
            }
            Action::SendFrame { stream, frame } => {
                durability::check_frame(i, &frame, &self.hosts[i].disk)?;
                self.send_frame_of(i, stream, frame);
            }
            Action::SendSnapshot {
                stream,
                meta,
                offset,
                bytes_max,
            } => {
                if offset == 0 {
                    self.cover("snapshot sent on a stream");
                } else {
                    self.cover("snapshot sent in several budget windows");
                }
                let stored = self.hosts[i]
                    .disk
                    .snapshot_matching(meta.index, meta.term)
                    .cloned();
                let Some(s) = stored else {
                    // Replaced by newer snapshots while it streamed: the
                    // contract says close the stream, the transfer starts over.
                    self.cover("snapshot replaced during its transfer");
                    let follow = self.net.close(stream, i);
                    self.schedule_net(follow);
                    return Ok(());
                };
                let frames = raft_core::wire::snapshot_window_frames(
                    &s.meta,
                    &s.data,
                    offset,
                    bytes_max,
                    SNAPSHOT_CHUNK_BYTES,
                );
                for frame in frames {
                    match self
                        .net
                        .send_frame(stream, i, frame, now, &mut self.net_rng)
                    {
                        Ok(follow) => self.schedule_net(follow),
                        Err(_) => break,
                    }
                }
                self.hostile_snapshot_sent(i, stream, &s.meta);
            }
            Action::CloseStream { stream } => {
                let follow = self.net.close(stream, i);
                self.schedule_net(follow);
            }
            Action::PersistHardState(hs) => {
                election::check_hard_state(i, self.hosts[i].disk.hard_state(), &hs)?;
                if self.scenario.knobs.mutant != Mutant::SkipHardState {
                    self.hosts[i].disk.persist_hard_state(hs);
                }
            }
            Action::AppendLog(entries) => {
                if self.hostile.is_some() && crate::hostile::holds_forged(&entries) {
                    return Err(Failure::safety(
                        "hostile-data-accepted",
                        format!("n{} appends an entry the hostile member forged", i + 1),
                    ));
                }
                self.check_membership_rules(i, &entries)?;
                let host = &mut self.hosts[i];
                let digests = host
                    .mirror
                    .append(&entries)
                    .map_err(|e| Failure::safety("driver-contract", format!("n{}: {e}", i + 1)))?;
                self.global.on_append(i, &entries, &digests)?;
                if self.scenario.knobs.mutant == Mutant::EarlyLogPersisted {
                    if let Some(last) = entries.last() {
                        let (index, term, incarnation) =
                            (last.index, last.term, self.hosts[i].incarnation);
                        let event = Event::LogPersisted { index, term };
                        self.schedule(
                            now,
                            SimEvent::Deliver {
                                node: i,
                                incarnation,
                                event,
                            },
                        );
                    }
                }
                let disk_entries = entries
                    .into_iter()
                    .zip(digests)
                    .map(|(entry, digest)| DiskEntry { entry, digest })
                    .collect();
                self.submit(i, DiskOp::Append(disk_entries));
            }
            Action::TruncateLog { from } => {
                self.cover("log truncated (conflicting suffix)");
                let committed = self.global.committed_len();
                if from <= committed {
                    let mine = self.hosts[i].mirror.at(from).map(|(_, d)| d);
                    if mine.is_some() && mine == self.global.committed_at(from) {
                        return Err(Failure::safety(
                            "truncate-committed",
                            format!(
                                "n{} truncates from {from}, a committed entry (committed through {committed})",
                                i + 1
                            ),
                        ));
                    }
                }
                self.hosts[i]
                    .mirror
                    .truncate(from)
                    .map_err(|e| Failure::safety("driver-contract", format!("n{}: {e}", i + 1)))?;
                self.submit(i, DiskOp::Truncate { from });
            }
            Action::CompactLog { through } => {
                let host = &mut self.hosts[i];
                host.disk
                    .compact(through)
                    .map_err(|e| Failure::safety("driver-contract", format!("n{}: {e}", i + 1)))?;
                host.mirror.compact(through);
            }
            Action::Apply(entries) => {
                if let (Some(a), Some(b)) = (entries.first(), entries.last()) {
                    self.trace.record(
                        now,
                        Some(i),
                        format!("-> Apply [{}..={}]", a.index, b.index),
                    );
                }
                let host = &mut self.hosts[i];
                for e in &entries {
                    if !host.mirror.holds(e) {
                        return Err(Failure::safety(
                            "state-machine-safety",
                            format!("n{} applies {e} which is not in its log", i + 1),
                        ));
                    }
                    let digest = host.mirror.at(e.index).map_or(0, |(_, d)| d);
                    host.kv.apply(e).map_err(|m| {
                        Failure::safety("state-machine-safety", format!("n{}: {m}", i + 1))
                    })?;
                    host.step_applies.push((e.index, digest));
                }
                host.last_apply_at = now;
                self.serve_waiters(i);
            }
            Action::TakeSnapshot => {
                self.cover("snapshot taken");
                let index = self.hosts[i].kv.applied();
                let applied_digest = self.global_applied(i, index);
                let host = &mut self.hosts[i];
                let (Some(config), Some((_, digest))) = (host.kv.config().cloned(), applied_digest)
                else {
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
                    term: host.kv.applied_term(),
                    config,
                };
                // Captured here, at the applied point; written (and durable)
                // `snapshot_duration_ms` later, while the node runs on.
                let data = host.kv.snapshot_bytes();
                let bytes = data.len() as u64;
                let snapshot = StoredSnapshot { meta, data, digest };
                let duration_ns = self.scenario.knobs.snapshot_duration_ms * 1_000_000;
                if duration_ns == 0 {
                    host.disk.store_snapshot(snapshot);
                } else {
                    host.snapshot_writing = Some(snapshot);
                }
                let inc = host.incarnation;
                let at = Instant(now.0 + self.scenario.knobs.fsync_min_ns + duration_ns);
                self.schedule(
                    at,
                    SimEvent::Deliver {
                        node: i,
                        incarnation: inc,
                        event: Event::SnapshotTaken { index, bytes },
                    },
                );
            }
            Action::ReceiveSnapshotChunk { meta, offset, data } => {
                let host = &mut self.hosts[i];
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
            }
            Action::InstallSnapshot { meta } => {
                let Some((m, data)) = self.hosts[i].incoming.take().filter(|(m, _)| *m == meta)
                else {
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
                let Some(digest) = self.global.digest_of(m.index, m.term) else {
                    return Err(Failure::safety(
                        "snapshot",
                        format!("n{} installs {meta}, an entry no node ever appended", i + 1),
                    ));
                };
                if self
                    .global
                    .committed_at(m.index)
                    .is_some_and(|c| c != digest)
                {
                    return Err(Failure::safety(
                        "state-machine-safety",
                        format!(
                            "n{} installs {meta} which is not the committed entry",
                            i + 1
                        ),
                    ));
                }
                self.hosts[i].mirror.install(m.index, m.term, digest);
                self.submit(
                    i,
                    DiskOp::InstallSnapshot(StoredSnapshot {
                        meta: m,
                        data: Bytes::from(data),
                        digest,
                    }),
                );
            }
            Action::CompleteRequest { id, result } => self.on_complete(i, id, result)?,
            Action::RoleChanged { role, term, .. } => {
                let host = &mut self.hosts[i];
                host.role = role;
                host.term = term;
                // A removed node that keeps campaigning is not the cluster's instability.
                if self.is_member(i) {
                    self.last_role_change = now;
                }
                if role == Role::Leader {
                    self.cover("leader elected");
                    self.election.on_leader(i, term)?;
                    self.global.on_leader(i, term, &self.hosts[i].mirror)?;
                    self.on_leader_elected(i);
                }
            }
            Action::Refused { reason, .. } => self.cover(match reason {
                raft_core::Refusal::LeaderAlive(_) => "vote refused: leader alive",
                raft_core::Refusal::StaleTerm { .. } => "refused: stale term",
                raft_core::Refusal::OutOfDateLog => "vote refused: log out of date",
                raft_core::Refusal::AlreadyVoted(_) => "vote refused: already voted",
                raft_core::Refusal::NotLeaderOfTerm => "stream refused: not leader of term",
                _ => "refused: other",
            }),
            Action::ConfigChanged(config) => self.on_config_changed(&config),
            // The simulator is built with this raft-core: an action it does
            // not execute is a simulator bug, and skipping it would hide one.
            other => panic!("node {i}: the simulator does not execute {other}"),
        }
        Ok(())
    }

    /// The digest with which index `index` was applied, for a snapshot.
    fn global_applied(&self, i: usize, index: LogIndex) -> Option<(LogIndex, u64)> {
        let mirror = self.hosts[i].mirror.at(index).map(|(_, d)| d);
        mirror
            .or_else(|| self.global.committed_at(index))
            .map(|d| (index, d))
    }

    fn submit(&mut self, i: usize, op: DiskOp) {
        let host = &mut self.hosts[i];
        if let Some(due) = host.disk.submit(op, self.now, &mut self.disk_rng) {
            let incarnation = host.incarnation;
            self.schedule(
                due.at,
                SimEvent::Fsync {
                    node: i,
                    incarnation,
                    upto: due.upto,
                },
            );
        }
    }

    /// An fsync of node `i` completed: report what became durable.
    pub(crate) fn complete_fsync(&mut self, i: usize, upto: u64) {
        let host = &mut self.hosts[i];
        let (notices, next) = host.disk.complete_fsync(upto, self.now, &mut self.disk_rng);
        if let Some(v) = host.disk.take_violations().into_iter().next() {
            return self.fail(Failure::safety(
                "driver-contract",
                format!("n{}: {v}", i + 1),
            ));
        }
        if let Some(due) = next {
            let incarnation = host.incarnation;
            self.schedule(
                due.at,
                SimEvent::Fsync {
                    node: i,
                    incarnation,
                    upto: due.upto,
                },
            );
        }
        for notice in notices {
            if self.hosts[i].node.is_none() || self.failure().is_some() {
                return;
            }
            match notice {
                DiskNotice::LogPersisted { index, term } => {
                    self.step(i, Event::LogPersisted { index, term })
                }
                DiskNotice::SnapshotInstalled(meta) => {
                    self.cover("snapshot installed");
                    let host = &mut self.hosts[i];
                    let data = host
                        .disk
                        .snapshot()
                        .map(|s| s.data.clone())
                        .unwrap_or_default();
                    match crate::kv::KvFsm::restore(&data, meta.config.clone()) {
                        Ok(kv) => host.kv = kv,
                        Err(e) => {
                            return self
                                .fail(Failure::safety("snapshot", format!("n{}: {e}", i + 1)));
                        }
                    }
                    self.step(i, Event::SnapshotInstalled { meta });
                }
            }
        }
    }

    /// After a step: observe the commit index (monotone; consistent with the
    /// committed prefix; a leader's advance obeys the commit rule and a
    /// durable quorum) and check this step's applies against it.
    fn after_step(
        &mut self,
        i: usize,
        voters_before: &[raft_core::NodeId],
    ) -> Result<(), crate::checkers::Failure> {
        let host = &self.hosts[i];
        let Some(node) = &host.node else {
            return Ok(());
        };
        let commit = node.commit_index();
        let old = host.commit;
        election::check_commit(i, old, commit)?;
        if commit > old {
            self.global
                .on_commit(i, node.term(), old, commit, &host.mirror)?;
            if node.role() == Role::Leader {
                let n = self.hosts.len();
                let disks: Vec<&crate::disk::SimDisk> =
                    self.hosts.iter().map(|h| &h.disk).collect();
                let check = |voters: &mut dyn Iterator<Item = raft_core::NodeId>| {
                    let voters: Vec<usize> = voters.filter_map(|v| index_of(v, n)).collect();
                    durability::check_leader_commit(
                        i,
                        node.term(),
                        commit,
                        &host.mirror,
                        &voters,
                        &disks,
                    )
                };
                let after = check(&mut node.config().voters());
                if after.is_err() && !voters_before.is_empty() {
                    // Single-server changes: a quorum of either configuration
                    // overlaps every quorum of the other.
                    check(&mut voters_before.iter().copied())?;
                } else {
                    after?;
                }
            }
            self.hosts[i].commit = commit;
        }
        if self.hosts[i].steps % BOUNDS_SAMPLE_STEPS == 0 {
            self.check_bounds(i)?;
        }
        for (index, digest) in std::mem::take(&mut self.hosts[i].step_applies) {
            self.global.on_apply(i, index, digest)?;
        }
        Ok(())
    }

    /// Bounds: a leader's bytes in flight per follower stay within the stream
    /// budget (plus one batch, which may overshoot it); the network tracks a
    /// bounded number of streams.
    fn check_bounds(&self, i: usize) -> Result<(), Failure> {
        let Some(node) = &self.hosts[i].node else {
            return Ok(());
        };
        if node.role() == Role::Leader {
            let opts = node.options();
            let limit = opts.stream_budget_bytes + opts.batch_bytes_max + 64;
            for f in node.status().followers {
                if f.inflight_bytes > limit {
                    return Err(Failure::safety(
                        "bounds",
                        format!(
                            "n{} has {} bytes in flight to {} (budget {})",
                            i + 1,
                            f.inflight_bytes,
                            f.id,
                            opts.stream_budget_bytes
                        ),
                    ));
                }
            }
        }
        let n = self.hosts.len();
        let streams = self.net.stream_count();
        if streams > 4 * n * n + 64 {
            return Err(Failure::safety(
                "bounds",
                format!(
                    "the network tracks {streams} streams among {n} nodes: {}",
                    self.net.census()
                ),
            ));
        }
        Ok(())
    }

    /// Routes a completion to the client that asked.
    fn on_complete(
        &mut self,
        i: usize,
        id: RequestId,
        result: Result<Completion, RequestError>,
    ) -> Result<(), Failure> {
        if self.nemesis_complete(i, id, &result) {
            return Ok(());
        }
        let Some((_, op)) = self.workload.lookup(id) else {
            return Ok(());
        };
        let op = *op;
        match result {
            Ok(Completion::Written { index }) => {
                let host = &self.hosts[i];
                let Some(cmd_hash) = self.command_hash(op.id) else {
                    return Ok(());
                };
                let ours = host.mirror.payload_hash_at(index) == Some(cmd_hash);
                if !ours {
                    return Err(Failure::safety(
                        "completion",
                        format!(
                            "n{} reported op{} written at {index}, which holds another entry",
                            i + 1,
                            op.id
                        ),
                    ));
                }
                let digest = host.mirror.at(index).map_or(0, |(_, d)| d);
                self.acked.on_ack(index, op.id, digest)?;
                if let crate::history::OpKind::Put { .. } = op.kind {
                    self.client_finish(
                        id,
                        End::Ok {
                            read: None,
                            cas_ok: true,
                        },
                        None,
                        "written",
                    );
                    return Ok(());
                }
                self.hosts[i].waiters.push(ApplyWaiter {
                    id,
                    index,
                    read_key: None,
                    op_id: op.id,
                });
                self.serve_waiters(i);
            }
            Ok(Completion::Read { index }) => {
                self.hosts[i].waiters.push(ApplyWaiter {
                    id,
                    index,
                    read_key: Some(op.key),
                    op_id: op.id,
                });
                self.serve_waiters(i);
            }
            Ok(other) => {
                return Err(Failure::safety(
                    "completion",
                    format!("n{} completed {id} with {other:?}", i + 1),
                ));
            }
            Err(e) => {
                let n = self.hosts.len();
                let hint = match &e {
                    RequestError::NotLeader { leader, .. } => leader.and_then(|l| index_of(l, n)),
                    _ => None,
                };
                if e.outcome() == raft_core::Outcome::Unknown {
                    self.cover("request outcome unknown (leadership lost after append)");
                }
                let end = match e.outcome() {
                    raft_core::Outcome::Definite => End::Failed,
                    raft_core::Outcome::Unknown => End::Unknown,
                };
                self.client_finish(id, end, hint, &e.to_string());
            }
        }
        Ok(())
    }

    /// The payload hash of the command op `op_id` proposed.
    fn command_hash(&self, op_id: u64) -> Option<u64> {
        let op = self.workload.history().get(op_id as usize)?;
        let kv_op = match op.kind {
            crate::history::OpKind::Put { value } => crate::kv::KvOp::Put { key: op.key, value },
            crate::history::OpKind::Cas { from, to, .. } => crate::kv::KvOp::Cas {
                key: op.key,
                from,
                to,
            },
            crate::history::OpKind::Get { .. } => return None,
        };
        Some(hash_bytes(&KvCommand { op_id, op: kv_op }.encode()))
    }

    /// Answers every client whose index node `i` has now applied.
    fn serve_waiters(&mut self, i: usize) {
        let applied = self.hosts[i].kv.applied();
        let (ready, waiting): (Vec<ApplyWaiter>, Vec<ApplyWaiter>) =
            std::mem::take(&mut self.hosts[i].waiters)
                .into_iter()
                .partition(|w| w.index <= applied);
        self.hosts[i].waiters = waiting;
        for w in ready {
            let kv = &self.hosts[i].kv;
            let end = match w.read_key {
                Some(key) => End::Ok {
                    read: kv.get(key),
                    cas_ok: false,
                },
                None => match kv.result_at(w.index) {
                    Some(r) if r.op_id == w.op_id => End::Ok {
                        read: None,
                        cas_ok: r.ok,
                    },
                    // Applied before this node kept results (restored from a snapshot).
                    _ => End::Unknown,
                },
            };
            self.client_finish(w.id, end, None, "served");
        }
    }
}

/// A role and term as a short glyph for the trace (`F3`, `L4`, `C5`, `P5`, `l2`).
pub fn role_glyph(role: Role, term: raft_core::Term) -> String {
    let g = match role {
        Role::Follower => 'F',
        Role::PreCandidate => 'P',
        Role::Candidate => 'C',
        Role::Leader => 'L',
        Role::Learner => 'l',
    };
    format!("{g}{}", term.0)
}
