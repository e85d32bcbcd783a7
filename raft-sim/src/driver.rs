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

use crate::checkers::log::LogMirror;
use crate::checkers::{Failure, durability, election};
use crate::disk::{DiskNotice, DiskOp};
use crate::rng::{SimRng, StreamKind};
use crate::service::Replica;
use crate::trace::{Fact, FrameKind};
use crate::world::{SimEvent, World, index_of};
use node_driver::NodeDriver;
use raft_core::{
    Action, Completion, EntryKind, Event, Frame, Instant, LogIndex, Message, MessageBody, Node,
    RequestError, RequestId, Role,
};
use std::fmt::{self, Write as _};

mod hostile_member;
mod node_driver;

/// Up to this many entries in a node's log, its invariants are checked after every step.
pub const INVARIANTS_FULL_LOG_ENTRIES: u64 = 512;
/// Beyond that, every this many steps of the node.
pub const INVARIANTS_SAMPLE_STEPS: u64 = 16;

/// Bounds are checked every this many steps of a node.
pub const BOUNDS_SAMPLE_STEPS: u64 = 16;

/// Bytes per `SnapshotChunk` frame the simulated leader driver writes.
pub const SNAPSHOT_CHUNK_BYTES: usize = 16 * 1024;

thread_local! {
    /// The buffer every step's actions are written into and executed from, so
    /// a step allocates no list of actions. Per thread: a sweep runs worlds on
    /// several; a world steps one node at a time, and the buffer is empty
    /// between steps, so sharing it carries nothing from one node to another.
    static ACTIONS: std::cell::Cell<Vec<Action>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The thread's action buffer, on loan for one step; returned (emptied) when
/// dropped, however the step ends.
struct ActionBuffer(Vec<Action>);

impl ActionBuffer {
    fn take() -> ActionBuffer {
        ActionBuffer(ACTIONS.take())
    }
}

impl Drop for ActionBuffer {
    fn drop(&mut self) {
        self.0.clear();
        ACTIONS.set(std::mem::take(&mut self.0));
    }
}

impl<S: crate::service::Service> World<S> {
    /// Puts `frame` from node `i` on `stream` (traced; dropped if the stream is gone).
    pub(crate) fn send_frame_now(&mut self, i: usize, stream: raft_core::StreamId, frame: Frame) {
        let text = self
            .trace
            .text(format_args!("-> SendFrame {stream} {frame}"));
        let kind = FrameKind::of(&frame);
        match self
            .net
            .put_frame(stream, i, frame, self.now, &mut self.net_rng)
        {
            Ok(put) => {
                let fact = Fact::FrameSent {
                    stream,
                    from: i,
                    to: put.to,
                    frame: kind,
                    bytes: put.bytes,
                };
                self.trace.record(self.now, Some(i), fact, text);
                if let Some((at, e)) = put.head {
                    self.schedule(at, SimEvent::Net(e));
                }
                self.schedule_net(put.follow);
            }
            Err(why) => {
                let fact = Fact::FrameDropped {
                    stream,
                    from: i,
                    frame: kind,
                    reason: why,
                };
                let mut text = text;
                fmt::Write::write_fmt(&mut text, format_args!(" dropped ({why})"))
                    .expect("formatting into a String cannot fail");
                self.trace.record(self.now, Some(i), fact, text)
            }
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
    pub(crate) fn step_node(&mut self, i: usize, event: Event) {
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        let local = host.clock.local(self.now);
        // Asked once: `role` looks the node up among the members, and the
        // glyph's arguments are evaluated even when no text is formatted.
        let role = node.role();
        let text = self
            .trace
            .text(format_args!("{} <- {event}", Glyph(role, node.term())));
        let fact = Fact::of_event(i, &event);
        let read = match &event {
            Event::ReadRequested { id } if node.config().voter_count() > 1 => Some(*id),
            _ => None,
        };
        // A leader may commit and then append a configuration in one step
        // (a promotion): the commit was decided under the voters before it.
        // (Into a buffer kept across steps: collecting a fresh `Vec` on
        // every leader step was several percent of a sweep.)
        let mut voters_before = std::mem::take(&mut self.voters_before);
        voters_before.clear();
        if role == Role::Leader {
            voters_before.extend(node.config().voters());
        }
        let mut actions = ActionBuffer::take();
        node.step_into(local, event, &mut actions.0);
        // With other voters, a read answered within the step that asked it
        // did not wait for a heartbeat round: the lease served it.
        let lease_read = read.is_some_and(|id| {
            actions.0.iter().any(|a| {
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
        self.trace.record(self.now, Some(i), fact, text);
        if lease_read {
            self.cover(crate::coverage::LEASE_READ);
        }
        for action in actions.0.drain(..) {
            if let Err(f) = self.execute(i, action) {
                return self.fail(f);
            }
            if self.hosts[i].node.is_none() {
                return;
            }
        }
        self.flush_hostile(i);
        let checked = self.after_step(i, &voters_before);
        self.voters_before = voters_before;
        if let Err(f) = checked {
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
        NodeDriver::new(self, i).execute(action)
    }

    /// The digest with which index `index` was applied, for a snapshot.
    pub(crate) fn global_applied(&self, i: usize, index: LogIndex) -> Option<(LogIndex, u64)> {
        let mirror = self.hosts[i].mirror.at(index).map(|(_, d)| d);
        mirror
            .or_else(|| self.global.committed_at(index))
            .map(|d| (index, d))
    }

    pub(crate) fn submit(&mut self, i: usize, op: DiskOp) {
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
        let mut notices = std::mem::take(&mut self.notices_scratch);
        let next = host
            .disk
            .complete_fsync_into(upto, self.now, &mut self.disk_rng, &mut notices);
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
        for notice in notices.drain(..) {
            if self.hosts[i].node.is_none() || self.failure().is_some() {
                return;
            }
            match notice {
                DiskNotice::LogPersisted { index, term } => {
                    self.step_node(i, Event::LogPersisted { index, term })
                }
                DiskNotice::SnapshotInstalled(meta) => {
                    self.cover("snapshot installed");
                    let host = &mut self.hosts[i];
                    let data = host
                        .disk
                        .snapshot()
                        .map(|s| s.data.clone())
                        .unwrap_or_default();
                    match Replica::restore(self.service.machine(), &data, meta.config.clone()) {
                        Ok(fsm) => host.fsm = fsm,
                        Err(e) => {
                            return self
                                .fail(Failure::safety("snapshot", format!("n{}: {e}", i + 1)));
                        }
                    }
                    self.step_node(i, Event::SnapshotInstalled { meta });
                }
            }
        }
        self.notices_scratch = notices;
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
        if self.is_foreign(i) {
            // Its commits and applies are of another cluster's log.
            self.hosts[i].commit = commit;
            self.hosts[i].step_applies.clear();
            return Ok(());
        }
        if commit > old {
            self.global
                .on_commit(i, node.term(), old, commit, &host.mirror)?;
            if node.role() == Role::Leader {
                // The disks and voters gathered on the stack for clusters of
                // up to `SMALL` nodes: two vectors per leader commit were
                // half a percent of a sweep.
                const SMALL: usize = 16;
                let n = self.hosts.len();
                let mut disks_small = [&host.disk; SMALL];
                let disks_large: Vec<&crate::disk::SimDisk>;
                let disks: &[&crate::disk::SimDisk] = if n <= SMALL {
                    for (d, h) in disks_small.iter_mut().zip(&self.hosts) {
                        *d = &h.disk;
                    }
                    &disks_small[..n]
                } else {
                    disks_large = self.hosts.iter().map(|h| &h.disk).collect();
                    &disks_large
                };
                let check = |voters: &mut dyn Iterator<Item = raft_core::NodeId>| {
                    let (mut small, mut k, mut large) = ([0usize; SMALL], 0, Vec::new());
                    for v in voters.filter_map(|v| index_of(v, n)) {
                        if large.is_empty() && k < SMALL {
                            small[k] = v;
                            k += 1;
                        } else {
                            if large.is_empty() {
                                large.extend_from_slice(&small[..k]);
                            }
                            large.push(v);
                        }
                    }
                    let voters = if large.is_empty() {
                        &small[..k]
                    } else {
                        &large[..]
                    };
                    durability::check_leader_commit(
                        i,
                        node.term(),
                        commit,
                        &host.mirror,
                        voters,
                        disks,
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
        // Cleared in place, not taken: the buffer keeps its capacity for
        // the node's next step (taking it cost an allocation per apply).
        let applies = &mut self.hosts[i].step_applies;
        let checked = applies
            .iter()
            .try_for_each(|&(index, digest)| self.global.on_apply(i, index, digest));
        applies.clear();
        checked
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
}

impl<S: crate::service::Service> World<S> {
    /// Steps a datagram into node `to` and checks rules every receiver obeys
    /// whoever the sender (the hostile member included): a pre-vote request
    /// never makes it adopt the request's term; a vote goes only to a
    /// candidate whose log is at least as up to date; `TimeoutNow` starts a
    /// campaign only when it comes from the receiver's leader. (A timer due
    /// in the same step may start a campaign of the receiver's own, which
    /// moves the term by one, never to a pre-vote's term further ahead.)
    pub(crate) fn step_message(&mut self, to: usize, msg: Message) {
        let Some(node) = self.hosts[to].node.as_ref() else {
            return;
        };
        let (term0, vote0) = (node.term(), node.vote());
        let (last0, leader0, role0) = (
            (node.last_term(), node.last_index()),
            node.leader(),
            node.role(),
        );
        let (from, term, body) = (msg.from, msg.term, msg.body.clone());
        self.step_node(to, Event::MessageReceived(msg));
        let Some(node) = self.hosts[to]
            .node
            .as_ref()
            .filter(|_| self.failure().is_none())
        else {
            return;
        };
        let broken = match body {
            MessageBody::PreVoteRequest { .. } => (term.0 > term0.0 + 1 && node.term() >= term)
                .then(|| format!("adopted the term {term} of a pre-vote request from {from}")),
            MessageBody::VoteRequest {
                last_index,
                last_term,
                ..
            } => {
                let newly =
                    node.vote() == Some(from) && (node.term(), node.vote()) != (term0, vote0);
                (newly && (last_term, last_index) < last0).then(|| {
                    format!(
                        "voted for {from} in {term} whose log ends at {last_index}/{last_term}, behind its own {}/{}",
                        last0.1, last0.0
                    )
                })
            }
            MessageBody::TimeoutNow => (node.role() == Role::Candidate
                && role0 != Role::Candidate
                && leader0 != Some(from))
            .then(|| format!("campaigned on TimeoutNow from {from}, which it did not follow")),
            _ => None,
        };
        if let Some(why) = broken {
            self.fail(Failure::safety(
                "message-rules",
                format!("n{} {why}", to + 1),
            ));
        }
    }

    /// Starts (or restarts) node `i` from its disk.
    pub(crate) fn start_node(&mut self, i: usize) {
        if let Err(damage) = self.hosts[i].disk.check() {
            let text = format!("start refused: {damage}");
            let fact = Fact::StartRefused { damage };
            self.trace.record(self.now, Some(i), fact, text);
            self.refusals.insert(i, damage);
            return;
        }
        let opts = self.options(i);
        let host = &mut self.hosts[i];
        let recovered = host.disk.recover(opts.log_cache_bytes_max);
        let local = host.clock.local(self.now);
        let seed = SimRng::new(
            self.scenario.seed,
            StreamKind::Node {
                node: i as u64,
                incarnation: host.incarnation,
            },
        )
        .next_u64();
        host.mirror = LogMirror::default();
        host.fsm = Replica::new(self.service.machine());
        if let Some(s) = host.disk.snapshot() {
            match Replica::restore(self.service.machine(), &s.data, s.meta.config.clone()) {
                Ok(fsm) => host.fsm = fsm,
                Err(e) => {
                    let f = Failure::safety(
                        "recovery",
                        format!("n{} snapshot does not restore: {e}", i + 1),
                    );
                    return self.fail(f);
                }
            }
            host.mirror.install(s.meta.index, s.meta.term, s.digest);
        }
        let entries = host.disk.recovered_entries();
        // Mirror the core's recovered log: entries continuing the snapshot (or
        // starting at 1) follow its base; a trailing window that starts inside
        // the snapshot begins at its first entry, as the core's recovery does.
        if let Some((first, rest)) = entries.split_first() {
            if first.entry.index == host.mirror.last_index().next() {
                host.mirror
                    .append(std::slice::from_ref(&first.entry))
                    .expect("the entry follows the base");
            } else {
                host.mirror
                    .install(first.entry.index, first.entry.term, first.digest);
            }
            for e in rest {
                if host.mirror.append(std::slice::from_ref(&e.entry)).is_err() {
                    let f = Failure::safety(
                        "recovery",
                        format!("n{} durable log is not contiguous", i + 1),
                    );
                    return self.fail(f);
                }
            }
        }
        match Node::new(opts, recovered, seed, local) {
            Ok(node) => {
                host.commit = node.commit_index();
                host.role = node.role();
                host.term = node.term();
                host.node = Some(node);
                host.wake_at = Instant::NEVER;
                let (incarnation, last_index) = (host.incarnation, host.disk.last_index());
                let text = format!("start incarnation {incarnation} from disk (last {last_index})");
                let fact = Fact::Started {
                    incarnation,
                    last_index,
                };
                self.trace.record(self.now, Some(i), fact, text);
                let incarnation = host.incarnation;
                if host.bootstrap.is_some() {
                    // Its driver's first call after opening the disk, as
                    // raft-kv repeats its --bootstrap flags on every start.
                    self.schedule(
                        self.now,
                        SimEvent::Bootstrap {
                            node: i,
                            incarnation,
                        },
                    );
                }
                self.rearm(i);
            }
            Err(e) => {
                let f = Failure::safety(
                    "recovery",
                    format!("n{} refused to start from its disk: {e}", i + 1),
                );
                self.fail(f);
            }
        }
    }

    /// Steps initial member `i` with its bootstrap list (request id from
    /// [`BOOTSTRAP_REQUEST_BASE`](crate::world::BOOTSTRAP_REQUEST_BASE)).
    pub(crate) fn bootstrap(&mut self, i: usize) {
        let host = &self.hosts[i];
        let Some(bootstrap) = host.bootstrap.clone() else {
            return;
        };
        let id =
            RequestId(crate::world::BOOTSTRAP_REQUEST_BASE + ((i as u64) << 32) + host.incarnation);
        self.step_node(i, Event::BootstrapRequested { id, bootstrap });
    }

    /// Judges a bootstrap's completion on node `i`; `false` if `id` is not
    /// in the bootstrap range. The same list on the same node must always
    /// succeed with its own cluster id: first time, after a restart, and
    /// after a crash that lost the first entry.
    pub(crate) fn bootstrap_complete(
        &mut self,
        i: usize,
        id: RequestId,
        result: &Result<Completion, RequestError>,
    ) -> Result<bool, Failure> {
        if id.0 < crate::world::BOOTSTRAP_REQUEST_BASE {
            return Ok(false);
        }
        let host = &self.hosts[i];
        let want = host.bootstrap.as_ref().map(|b| b.cluster_id());
        match result {
            Ok(Completion::Initialized { cluster_id }) if Some(*cluster_id) == want => {}
            other => {
                return Err(Failure::safety(
                    "bootstrap",
                    format!(
                        "n{} incarnation {} bootstrap {id} completed with {other:?}, expected its cluster {want:?}",
                        i + 1,
                        host.incarnation
                    ),
                ));
            }
        }
        let mark = if host.incarnation == 0 {
            crate::coverage::BOOTSTRAPPED
        } else {
            crate::coverage::BOOTSTRAP_REPEATED
        };
        self.cover(mark);
        Ok(true)
    }

    /// Re-arms node `i`'s wake-up from its next deadline.
    pub(crate) fn rearm(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        let Some(node) = &host.node else { return };
        let local = node.next_deadline();
        let at = if local == Instant::NEVER {
            Instant::NEVER
        } else {
            host.clock.global_at(local).max(Instant(self.now.0 + 1))
        };
        if at == host.wake_at {
            return;
        }
        host.wake_generation += 1;
        host.wake_at = at;
        if at != Instant::NEVER {
            let generation = host.wake_generation;
            self.schedule(
                at,
                SimEvent::Wake {
                    node: i,
                    generation,
                },
            );
        }
    }
}

/// A role and term as a short glyph for the trace (`F3`, `L4`, `C5`, `P5`, `l2`).
pub fn role_glyph(role: Role, term: raft_core::Term) -> String {
    Glyph(role, term).to_string()
}

/// [`role_glyph`] written straight into the text of a step's record: every
/// step is traced, and a glyph of its own would cost an allocation each.
struct Glyph(Role, raft_core::Term);

impl std::fmt::Display for Glyph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = match self.0 {
            Role::Follower => 'F',
            Role::PreCandidate => 'P',
            Role::Candidate => 'C',
            Role::Leader => 'L',
            Role::Learner => 'l',
        };
        // Glyphs are only ever printed with `{}`, so the term can take the
        // formatter as is: one pass of core::fmt less per step's trace line.
        f.write_char(g)?;
        std::fmt::Display::fmt(&self.1.0, f)
    }
}
