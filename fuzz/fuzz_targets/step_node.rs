//! A structured sequence of events fed to one `raft_core::Node`.
//!
//! The node starts empty, or from a recovered state the input describes (a
//! member of a three-node cluster with a log, maybe a snapshot, so it has a
//! committed prefix from the first event; inconsistent descriptions must come
//! back as a `RecoveryError`). The harness plays two parts:
//! - the **peers**: messages, stream handshakes and frames with arbitrary
//!   content, passed through the wire codec first (the node only ever sees
//!   what `wire::decode` accepts), mostly addressed correctly so they get past
//!   the cluster and recipient checks; and a **hostile leader** whose frames
//!   are built from the node's own log so they pass the codec and the cheap
//!   checks and then break a protocol rule: `prev` in or beyond the log with a
//!   wrong term (below the commit index too), terms that decrease or pass the
//!   stream's term, commit claims beyond the chunk, snapshots that overlap the
//!   log or rewind the stream, duplicated and reordered frames, terms at the
//!   edge of `u64`;
//! - an **honest driver**: it reports storage completions only for work the
//!   node ordered (`LogPersisted` for appended entries, in order;
//!   `SnapshotTaken` after `TakeSnapshot`; `SnapshotInstalled` after
//!   `InstallSnapshot`), and time only moves forward.
//!
//! After every step: the node's public state is sane (same id, commit never
//! goes down), every action formats, and every message, handshake and frame it
//! orders sent survives the wire codec. A panic anywhere is a bug: peers'
//! bytes are never allowed to break an invariant.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use raft_core::wire::{self, WireUnit};
use raft_core::{
    Action, ClusterId, Config, Duration, EntryKind, Event, Frame, Instant, LogEntry, LogIndex,
    Member, MemberRole, MembershipChange, Message, MessageBody, Node, NodeId, NodeOptions,
    Proposal, RecoveredState, RequestId, SnapshotMeta, SnapshotResume, StreamId, StreamOpen, Term,
};
use std::collections::VecDeque;

/// At most this many events per input, so one run stays fast.
const EVENTS_MAX: usize = 256;
/// The node under test.
const SELF: NodeId = NodeId(1);
/// Peers are nodes 1..=PEERS_MAX (1 is the node itself, for misdirected input).
const PEERS_MAX: u8 = 5;

#[derive(Arbitrary, Debug)]
struct Input {
    rng_seed: u64,
    start: Option<FuzzStart>,
    events: Vec<FuzzEvent>,
}

/// A recovered state: node SELF in a cluster of nodes 1..=3, with a log whose
/// terms rise by the given steps, maybe behind a snapshot.
#[derive(Arbitrary, Debug)]
struct FuzzStart {
    /// Term steps of the log's entries (each entry's term = previous + step % 3).
    term_steps: Vec<u8>,
    /// The snapshot covers this many of the entries (none when 0).
    snapshot_count: u8,
    /// Entries kept behind the snapshot (a trailing window).
    trailing: u8,
    /// How far the hard state's term is above the log's last term.
    term_above_log: u8,
    /// Break one rule of the handover (`RecoveryError` expected).
    corrupt: Option<FuzzCorruption>,
}

#[derive(Arbitrary, Debug)]
enum FuzzCorruption {
    DropEntry(u8),
    SwapTerms(u8),
    HardStateBelowLog,
    LogEndsBeforeSnapshot,
    NoCluster,
    ForeignConfig,
}

#[derive(Arbitrary, Debug)]
enum FuzzEvent {
    /// Time passes by this many milliseconds, then a tick.
    Tick { advance_ms: u16 },
    /// Time jumps to the node's next deadline (if any), then a tick.
    TickAtDeadline,
    /// A datagram from a peer.
    Message(FuzzMessage),
    /// A follower opens a stream to us.
    StreamOpened { stream: u8, open: FuzzOpen },
    /// A frame on a stream (one the node opened, or one opened to it).
    Frame { stream: u8, frame: FuzzFrame },
    /// A whole snapshot transfer on a stream, as `snapshot_frames` cuts it.
    SnapshotTransfer {
        stream: u8,
        meta: FuzzMeta,
        data: Vec<u8>,
        chunk_bytes: u8,
    },
    /// A stream breaks.
    StreamClosed { stream: u8 },
    /// A protocol-breaking frame built from the node's log, on its newest stream.
    Hostile(HostileFrame),
    /// A frame fed earlier, again (duplicated, or reordered after later ones).
    Replay { back: u8 },
    /// The driver made the next `count + 1` appended entries durable.
    LogPersisted { count: u8 },
    /// The driver finished the snapshot the node asked for.
    SnapshotTaken,
    /// The driver finished installing the snapshot the node received.
    SnapshotInstalled,
    /// A client proposes `count + 1` commands.
    Propose { count: u8, data: Vec<u8> },
    /// A client wants a linearizable read.
    Read,
    /// A client asks to initialize a new cluster here.
    Initialize,
    /// A client asks for a membership change.
    ChangeMembership(FuzzChange),
    /// A client asks for a leadership transfer.
    TransferLeadership { target: Option<u8> },
}

#[derive(Arbitrary, Debug)]
struct FuzzMessage {
    from: u8,
    misdirected: bool,
    foreign_cluster: bool,
    term: FuzzTerm,
    body: FuzzBody,
}

/// A term: small, near the node's own, or at the edge of `u64`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzTerm {
    Small(u8),
    Near(i8),
    Max(u8),
}

/// Frames an honest leader never sends, positioned against the node's log.
#[derive(Arbitrary, Debug)]
enum HostileFrame {
    /// A chunk whose `prev` is `back` below the last (or the commit) index
    /// (negative: beyond the log), with `prev_term` off by `prev_term_delta`,
    /// entries whose terms step by the given deltas from `prev_term`, a commit
    /// claim `commit_delta` past the chunk's end, in the stream's term or not.
    Chunk {
        from_commit: bool,
        back: i8,
        prev_term_delta: i8,
        term_steps: Vec<i8>,
        commit_delta: i8,
        term_delta: i8,
    },
    /// A whole snapshot transfer whose index is `back` below the commit index
    /// (negative: beyond it) and whose term is off by `term_delta`.
    Snapshot {
        back: i8,
        term_delta: i8,
        data: Vec<u8>,
        chunk_bytes: u8,
        /// Drop, duplicate or swap one frame of the transfer.
        tamper: Option<(u8, u8)>,
    },
}

#[derive(Arbitrary, Debug)]
enum FuzzBody {
    PreVoteRequest {
        last_index: u16,
        last_term: u8,
    },
    PreVoteResponse {
        granted: bool,
    },
    VoteRequest {
        last_index: u16,
        last_term: u8,
        transfer: bool,
    },
    VoteResponse {
        granted: bool,
    },
    Heartbeat {
        commit: u16,
        round: u8,
    },
    HeartbeatResponse {
        round: u8,
        streaming: bool,
    },
    TimeoutNow,
}

#[derive(Arbitrary, Debug)]
struct FuzzOpen {
    follower: u8,
    foreign_cluster: bool,
    term: u8,
    probe_index: u16,
    probe_term: u8,
    commit: u16,
    /// A snapshot transfer to resume: index, term, bytes received.
    resume: Option<(u16, u8, u16)>,
}

#[derive(Arbitrary, Debug)]
enum FuzzFrame {
    Chunk {
        term: u8,
        prev_index: u16,
        prev_term: u8,
        leader_commit: u16,
        entries: Vec<FuzzEntry>,
    },
    SnapshotBegin {
        meta: FuzzMeta,
        size: u16,
        offset: u16,
    },
    SnapshotChunk {
        offset: u16,
        data: Vec<u8>,
        crc: u32,
    },
    SnapshotEnd {
        crc: u32,
    },
    Ack {
        durable: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct FuzzEntry {
    term: u8,
    kind: FuzzKind,
    data: Vec<u8>,
    config: FuzzConfig,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzKind {
    Command,
    Nop,
    Initialize,
    AddPeer,
    PromotePeer,
    RemovePeer,
}

#[derive(Arbitrary, Debug)]
struct FuzzMeta {
    index: u16,
    term: u8,
    config: FuzzConfig,
}

/// A valid configuration of up to PEERS_MAX + 2 members (ids past PEERS_MAX
/// are nodes the harness never speaks for).
#[derive(Arbitrary, Debug)]
struct FuzzConfig {
    /// Bit i: node i + 1 is a member.
    members: u8,
    /// Bit i: node i + 1 is a learner.
    learners: u8,
    index: u16,
}

#[derive(Arbitrary, Debug)]
enum FuzzChange {
    Add { address: u8 },
    Remove { id: u8 },
}

/// What the honest driver remembers of the node's orders.
struct Driver {
    node: Node,
    now: Instant,
    next_request: u64,
    /// Appended, not yet reported durable, in append order.
    unpersisted: VecDeque<(LogIndex, Term)>,
    /// Streams the node opened or that were opened to it, oldest first.
    streams: Vec<StreamId>,
    applied: LogIndex,
    snapshot_requested: bool,
    snapshot_to_install: Option<SnapshotMeta>,
    commit: LogIndex,
    /// Frames fed to the node, newest last (bounded), for replays.
    history: VecDeque<(StreamId, Frame)>,
}

/// Frames kept for replays.
const HISTORY_MAX: usize = 32;

impl Driver {
    fn cluster(&self) -> ClusterId {
        self.node.cluster_id().unwrap_or(ClusterId(1))
    }

    fn stream(&self, pick: u8) -> StreamId {
        if self.streams.is_empty() || pick >= 200 {
            StreamId(u64::from(pick))
        } else {
            self.streams[usize::from(pick) % self.streams.len()]
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn step(&mut self, event: Event) {
        let actions = self.node.step(self.now, event);
        for action in &actions {
            let _ = action.to_string();
            self.observe(action);
        }
        self.node.check_invariants();
        assert_eq!(self.node.id(), SELF);
        let commit = self.node.commit_index();
        assert!(
            commit >= self.commit,
            "commit went down: {} -> {commit}",
            self.commit
        );
        self.commit = commit;
    }

    fn observe(&mut self, action: &Action) {
        match action {
            Action::Send(message) => assert_survives_wire(WireUnit::Message(message.clone())),
            Action::OpenStream { stream, open, .. } => {
                assert_survives_wire(WireUnit::Open(open.clone()));
                self.streams.push(*stream);
            }
            Action::SendFrame { frame, .. } => assert_survives_wire(WireUnit::Frame(frame.clone())),
            Action::AppendLog(entries) => {
                self.unpersisted
                    .extend(entries.iter().map(|e| (e.index, e.term)));
            }
            Action::TruncateLog { from } => self.unpersisted.retain(|(index, _)| index < from),
            Action::Apply(entries) => {
                if let Some(last) = entries.last() {
                    self.applied = last.index;
                }
            }
            Action::TakeSnapshot => self.snapshot_requested = true,
            Action::InstallSnapshot { meta } => self.snapshot_to_install = Some(meta.clone()),
            _ => {}
        }
    }

    /// Peer input goes through the codec, as it would from a socket; what the
    /// codec refuses never reaches the node.
    fn from_wire(unit: WireUnit) -> Option<WireUnit> {
        let mut bytes = Vec::new();
        wire::encode(&unit, &mut bytes);
        wire::decode(&bytes).ok().flatten().map(|(unit, _)| unit)
    }

    fn feed_frame(&mut self, stream: StreamId, frame: Frame) {
        if let Some(WireUnit::Frame(frame)) = Self::from_wire(WireUnit::Frame(frame)) {
            if self.history.len() == HISTORY_MAX {
                self.history.pop_front();
            }
            self.history.push_back((stream, frame.clone()));
            self.step(Event::FrameReceived { stream, frame });
        }
    }

    fn term(&self, t: FuzzTerm) -> Term {
        match t {
            FuzzTerm::Small(t) => Term(u64::from(t)),
            FuzzTerm::Near(d) => Term(self.node.term().0.saturating_add_signed(i64::from(d))),
            FuzzTerm::Max(pick) => Term(match pick % 4 {
                0 => u64::MAX,
                1 => u64::MAX - 1,
                2 => Term::LIMIT.0,
                _ => Term::LIMIT.0 + 1,
            }),
        }
    }

    /// The node's newest stream (the one a follower reads from).
    fn newest_stream(&self) -> StreamId {
        self.streams.last().copied().unwrap_or(StreamId(0))
    }

    /// The term the node's log has at `index`, or a guess below its log.
    fn term_at(&self, index: LogIndex) -> Term {
        self.node
            .term_at(index)
            .or_else(|| {
                self.node
                    .snapshot()
                    .filter(|s| s.index == index)
                    .map(|s| s.term)
            })
            .unwrap_or(Term(0))
    }

    fn hostile(&mut self, frame: HostileFrame) {
        let cluster_id = self.cluster();
        let stream = self.newest_stream();
        let commit = self.node.commit_index().0;
        let last = self.node.last_index().0;
        let term = self.node.term();
        match frame {
            HostileFrame::Chunk {
                from_commit,
                back,
                prev_term_delta,
                term_steps,
                commit_delta,
                term_delta,
            } => {
                let from = if from_commit { commit } else { last };
                let prev_index = LogIndex(from.saturating_add_signed(-i64::from(back)));
                let prev_term = shift(self.term_at(prev_index), prev_term_delta);
                let mut entry_term = prev_term;
                let mut entries = Vec::new();
                for (i, step) in (1..).zip(term_steps.into_iter().take(16)) {
                    entry_term = shift(entry_term, step);
                    entries.push(LogEntry {
                        index: LogIndex(prev_index.0 + i),
                        term: entry_term,
                        kind: EntryKind::Command,
                        data: bytes::Bytes::new(),
                    });
                }
                let chunk_last = prev_index.0 + entries.len() as u64;
                let frame = Frame::Chunk {
                    term: shift(term, term_delta / 64),
                    prev_index,
                    prev_term,
                    leader_commit: LogIndex(
                        chunk_last.saturating_add_signed(i64::from(commit_delta)),
                    ),
                    entries: entries.into(),
                };
                self.feed_frame(stream, frame);
            }
            HostileFrame::Snapshot {
                back,
                term_delta,
                data,
                chunk_bytes,
                tamper,
            } => {
                let index = LogIndex(commit.saturating_add_signed(-i64::from(back)));
                let meta = SnapshotMeta {
                    index,
                    term: shift(self.term_at(index).max(Term(1)), term_delta),
                    config: self.node.config().clone(),
                };
                let meta = SnapshotMeta {
                    config: Config {
                        cluster_id,
                        index: meta.config.index.min(index),
                        ..meta.config
                    },
                    ..meta
                };
                let mut frames = raft_core::wire::snapshot_frames(
                    &meta,
                    &data.into(),
                    usize::from(chunk_bytes).max(1),
                );
                if let Some((at, how)) = tamper {
                    let at = usize::from(at) % frames.len();
                    match how % 3 {
                        0 => {
                            frames.remove(at);
                        }
                        1 => frames.insert(at, frames[at].clone()),
                        _ => {
                            let other = (at + 1) % frames.len();
                            frames.swap(at, other);
                        }
                    }
                }
                for frame in frames {
                    self.feed_frame(stream, frame);
                }
            }
        }
    }

    fn run(&mut self, event: FuzzEvent) {
        match event {
            FuzzEvent::Tick { advance_ms } => {
                self.now = self.now + Duration::from_millis(u64::from(advance_ms));
                self.step(Event::Tick);
            }
            FuzzEvent::TickAtDeadline => {
                let deadline = self.node.next_deadline();
                if deadline != Instant::NEVER && deadline > self.now {
                    self.now = deadline;
                }
                self.step(Event::Tick);
            }
            FuzzEvent::Message(m) => {
                let cluster_id = if m.foreign_cluster {
                    ClusterId(self.cluster().0 ^ 0x5eed)
                } else {
                    self.cluster()
                };
                let to = if m.misdirected { NodeId(2) } else { SELF };
                let message = Message {
                    cluster_id,
                    from: peer(m.from),
                    to,
                    term: self.term(m.term),
                    body: m.body.into_body(),
                };
                if let Some(WireUnit::Message(message)) =
                    Self::from_wire(WireUnit::Message(message))
                {
                    self.step(Event::MessageReceived(message));
                }
            }
            FuzzEvent::StreamOpened { stream, open } => {
                let stream = StreamId(u64::from(stream));
                let cluster_id = if open.foreign_cluster {
                    ClusterId(self.cluster().0 ^ 0x5eed)
                } else {
                    self.cluster()
                };
                let open = StreamOpen {
                    cluster_id,
                    follower: peer(open.follower),
                    leader: SELF,
                    term: Term(u64::from(open.term)),
                    probe_index: LogIndex(u64::from(open.probe_index)),
                    probe_term: Term(u64::from(open.probe_term)),
                    commit: LogIndex(u64::from(open.commit)),
                    resume: open.resume.map(|(index, term, received)| SnapshotResume {
                        index: LogIndex(u64::from(index)),
                        term: Term(u64::from(term)),
                        received: u64::from(received),
                    }),
                };
                if let Some(WireUnit::Open(open)) = Self::from_wire(WireUnit::Open(open)) {
                    self.streams.push(stream);
                    self.step(Event::StreamOpened { stream, open });
                }
            }
            FuzzEvent::Frame { stream, frame } => {
                let stream = self.stream(stream);
                let frame = frame.into_frame(self.cluster());
                self.feed_frame(stream, frame);
            }
            FuzzEvent::SnapshotTransfer {
                stream,
                meta,
                data,
                chunk_bytes,
            } => {
                let stream = self.stream(stream);
                let meta = meta.into_meta(self.cluster());
                let chunk_bytes = usize::from(chunk_bytes).max(1);
                for frame in raft_core::wire::snapshot_frames(&meta, &data.into(), chunk_bytes) {
                    self.feed_frame(stream, frame);
                }
            }
            FuzzEvent::StreamClosed { stream } => {
                let stream = self.stream(stream);
                self.streams.retain(|s| *s != stream);
                self.step(Event::StreamClosed { stream });
            }
            FuzzEvent::Hostile(frame) => self.hostile(frame),
            FuzzEvent::Replay { back } => {
                if !self.history.is_empty() {
                    let at = self.history.len() - 1 - usize::from(back) % self.history.len();
                    let (stream, frame) = self.history[at].clone();
                    self.feed_frame(stream, frame);
                }
            }
            FuzzEvent::LogPersisted { count } => {
                let mut last = None;
                for _ in 0..=count {
                    match self.unpersisted.pop_front() {
                        Some(entry) => last = Some(entry),
                        None => break,
                    }
                }
                if let Some((index, term)) = last {
                    self.step(Event::LogPersisted { index, term });
                }
            }
            FuzzEvent::SnapshotTaken => {
                if std::mem::take(&mut self.snapshot_requested) {
                    self.step(Event::SnapshotTaken {
                        index: self.applied,
                        bytes: self.applied.0,
                    });
                }
            }
            FuzzEvent::SnapshotInstalled => {
                if let Some(meta) = self.snapshot_to_install.take() {
                    // The install replaced the log up to the snapshot.
                    self.unpersisted.retain(|(index, _)| *index > meta.index);
                    self.applied = self.applied.max(meta.index);
                    self.step(Event::SnapshotInstalled { meta });
                }
            }
            FuzzEvent::Propose { count, data } => {
                let proposals = (0..=count % 8)
                    .map(|i| Proposal {
                        id: self.request_id(),
                        data: [&[i][..], &data].concat().into(),
                    })
                    .collect();
                self.step(Event::ProposeRequested { proposals });
            }
            FuzzEvent::Read => {
                let id = self.request_id();
                self.step(Event::ReadRequested { id });
            }
            FuzzEvent::Initialize => {
                let id = self.request_id();
                self.step(Event::InitializeRequested {
                    id,
                    address: address(1),
                });
            }
            FuzzEvent::ChangeMembership(change) => {
                let id = self.request_id();
                let change = match change {
                    FuzzChange::Add { address: a, .. } => MembershipChange::Add {
                        address: address(a),
                    },
                    FuzzChange::Remove { id } => MembershipChange::Remove {
                        id: NodeId(u64::from(id % 8)),
                    },
                };
                self.step(Event::ChangeMembershipRequested { id, change });
            }
            FuzzEvent::TransferLeadership { target } => {
                let id = self.request_id();
                let target = target.map(peer);
                self.step(Event::TransferLeadershipRequested { id, target });
            }
        }
    }
}

/// `term` moved by `delta`, within `0..=u64::MAX`.
fn shift(term: Term, delta: i8) -> Term {
    Term(term.0.saturating_add_signed(i64::from(delta)))
}

impl FuzzStart {
    /// The recovered state this start describes, and whether it was corrupted.
    fn recovered(self) -> (RecoveredState, bool) {
        let cluster_id = ClusterId(1);
        let config = Config {
            cluster_id,
            index: LogIndex(1),
            max_node_id: NodeId(3),
            members: (1..=3)
                .map(|id| Member {
                    id: NodeId(id),
                    address: address(id as u8),
                    role: MemberRole::Voter,
                })
                .collect(),
        };
        let mut term = Term(1);
        let mut entries = vec![LogEntry {
            index: LogIndex(1),
            term,
            kind: EntryKind::Initialize,
            data: config.encode(),
        }];
        for (i, step) in (2..).zip(self.term_steps.into_iter().take(64)) {
            term = Term(term.0 + u64::from(step % 3));
            entries.push(LogEntry {
                index: LogIndex(i),
                term,
                kind: EntryKind::Command,
                data: bytes::Bytes::new(),
            });
        }
        let covered = usize::from(self.snapshot_count) % (entries.len() + 1);
        let mut snapshot = None;
        if covered > 0 {
            let at = &entries[covered - 1];
            snapshot = Some(SnapshotMeta {
                index: at.index,
                term: at.term,
                config: config.clone(),
            });
            let keep_from = covered.saturating_sub(usize::from(self.trailing));
            entries.drain(..keep_from);
        }
        let mut hard_state = raft_core::HardState {
            cluster_id: Some(cluster_id),
            term: Term(term.0 + u64::from(self.term_above_log % 4)),
            vote: None,
        };
        let corrupted = self.corrupt.is_some();
        match self.corrupt {
            None => {}
            Some(FuzzCorruption::DropEntry(i)) if entries.len() > 2 => {
                entries.remove(1 + usize::from(i) % (entries.len() - 2));
            }
            Some(FuzzCorruption::SwapTerms(i)) if entries.len() > 1 => {
                let i = usize::from(i) % (entries.len() - 1);
                let (a, b) = (entries[i].term, entries[i + 1].term);
                entries[i].term = b;
                entries[i + 1].term = a;
            }
            Some(FuzzCorruption::HardStateBelowLog) => hard_state.term = Term(0),
            Some(FuzzCorruption::LogEndsBeforeSnapshot) => {
                if let Some(s) = &mut snapshot {
                    s.index = LogIndex(s.index.0 + 100);
                }
            }
            Some(FuzzCorruption::NoCluster) => hard_state.cluster_id = None,
            Some(FuzzCorruption::ForeignConfig) => {
                if let Some(s) = &mut snapshot {
                    s.config.cluster_id = ClusterId(2);
                }
            }
            Some(_) => {}
        }
        (
            RecoveredState {
                hard_state,
                snapshot,
                entries,
                stored: None,
            },
            corrupted,
        )
    }
}

fn peer(raw: u8) -> NodeId {
    NodeId(u64::from(raw % PEERS_MAX) + 1)
}

fn address(raw: u8) -> String {
    format!("n{raw}")
}

/// The node's own output must be something the codec carries unchanged.
fn assert_survives_wire(unit: WireUnit) {
    let mut bytes = Vec::new();
    wire::encode(&unit, &mut bytes);
    assert_eq!(
        wire::decode(&bytes),
        Ok(Some((unit, bytes.len()))),
        "the node ordered a unit the codec refuses"
    );
}

impl FuzzBody {
    fn into_body(self) -> MessageBody {
        match self {
            FuzzBody::PreVoteRequest {
                last_index,
                last_term,
            } => MessageBody::PreVoteRequest {
                last_index: LogIndex(u64::from(last_index)),
                last_term: Term(u64::from(last_term)),
            },
            FuzzBody::PreVoteResponse { granted } => MessageBody::PreVoteResponse { granted },
            FuzzBody::VoteRequest {
                last_index,
                last_term,
                transfer,
            } => MessageBody::VoteRequest {
                last_index: LogIndex(u64::from(last_index)),
                last_term: Term(u64::from(last_term)),
                transfer,
            },
            FuzzBody::VoteResponse { granted } => MessageBody::VoteResponse { granted },
            FuzzBody::Heartbeat { commit, round } => MessageBody::Heartbeat {
                commit: LogIndex(u64::from(commit)),
                round: u64::from(round),
            },
            FuzzBody::HeartbeatResponse { round, streaming } => MessageBody::HeartbeatResponse {
                round: u64::from(round),
                streaming,
            },
            FuzzBody::TimeoutNow => MessageBody::TimeoutNow,
        }
    }
}

impl FuzzFrame {
    fn into_frame(self, cluster_id: ClusterId) -> Frame {
        match self {
            FuzzFrame::Chunk {
                term,
                prev_index,
                prev_term,
                leader_commit,
                entries,
            } => {
                let prev_index = u64::from(prev_index);
                let entries = entries
                    .into_iter()
                    .take(16)
                    .zip(1..)
                    .map(|(entry, i)| entry.into_entry(LogIndex(prev_index + i), cluster_id))
                    .collect();
                Frame::Chunk {
                    term: Term(u64::from(term)),
                    prev_index: LogIndex(prev_index),
                    prev_term: Term(u64::from(prev_term)),
                    leader_commit: LogIndex(u64::from(leader_commit)),
                    entries,
                }
            }
            FuzzFrame::SnapshotBegin { meta, size, offset } => Frame::SnapshotBegin {
                meta: meta.into_meta(cluster_id),
                size: u64::from(size),
                offset: u64::from(offset),
            },
            FuzzFrame::SnapshotChunk { offset, data, crc } => Frame::SnapshotChunk {
                offset: u64::from(offset),
                data: data.into(),
                crc,
            },
            FuzzFrame::SnapshotEnd { crc } => Frame::SnapshotEnd { crc },
            FuzzFrame::Ack { durable } => Frame::Ack {
                durable: LogIndex(u64::from(durable)),
            },
        }
    }
}

impl FuzzEntry {
    fn into_entry(self, index: LogIndex, cluster_id: ClusterId) -> LogEntry {
        let kind = match self.kind {
            FuzzKind::Command => EntryKind::Command,
            FuzzKind::Nop => EntryKind::Nop,
            FuzzKind::Initialize => EntryKind::Initialize,
            FuzzKind::AddPeer => EntryKind::AddPeer,
            FuzzKind::PromotePeer => EntryKind::PromotePeer,
            FuzzKind::RemovePeer => EntryKind::RemovePeer,
        };
        // Membership entries mostly carry a valid configuration, sometimes raw bytes.
        let data = if kind.is_config() && self.data.is_empty() {
            self.config.into_config(cluster_id).encode()
        } else {
            self.data.into()
        };
        LogEntry {
            index,
            term: Term(u64::from(self.term)),
            kind,
            data,
        }
    }
}

impl FuzzMeta {
    fn into_meta(self, cluster_id: ClusterId) -> SnapshotMeta {
        SnapshotMeta {
            index: LogIndex(u64::from(self.index)),
            term: Term(u64::from(self.term)),
            config: self.config.into_config(cluster_id),
        }
    }
}

impl FuzzConfig {
    fn into_config(self, cluster_id: ClusterId) -> Config {
        let members: Vec<Member> = (0..7u8)
            .filter(|bit| self.members & (1 << bit) != 0)
            .map(|bit| Member {
                id: NodeId(u64::from(bit) + 1),
                address: address(bit + 1),
                role: if self.learners & (1 << bit) != 0 {
                    MemberRole::Learner
                } else {
                    MemberRole::Voter
                },
            })
            .collect();
        let max_node_id = members.last().map_or(NodeId(0), |m| m.id);
        Config {
            cluster_id,
            index: LogIndex(u64::from(self.index)),
            max_node_id,
            members,
        }
    }
}

fuzz_target!(|input: Input| {
    let (recovered, corrupted) = input
        .start
        .map_or((RecoveredState::default(), false), FuzzStart::recovered);
    let node = match Node::new(
        NodeOptions::new(SELF),
        recovered,
        input.rng_seed,
        Instant(0),
    ) {
        Ok(node) => node,
        Err(error) => {
            // Only a deliberately broken handover may be refused.
            assert!(
                corrupted,
                "a consistent recovered state was refused: {error}"
            );
            return;
        }
    };
    let commit = node.commit_index();
    let applied = node.applied_index();
    let mut driver = Driver {
        node,
        now: Instant(0),
        next_request: 0,
        unpersisted: VecDeque::new(),
        streams: Vec::new(),
        applied,
        snapshot_requested: false,
        snapshot_to_install: None,
        commit,
        history: VecDeque::new(),
    };
    for event in input.events.into_iter().take(EVENTS_MAX) {
        driver.run(event);
    }
});
