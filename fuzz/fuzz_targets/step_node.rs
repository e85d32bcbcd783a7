//! A structured sequence of events fed to one `raft_core::Node`.
//!
//! The harness plays two parts:
//! - the **peers**: messages, stream handshakes and frames with arbitrary
//!   content, passed through the wire codec first (the node only ever sees
//!   what `wire::decode` accepts), mostly addressed correctly so they get past
//!   the cluster and recipient checks;
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
    Proposal, RecoveredState, RequestId, SnapshotMeta, StreamId, StreamOpen, Term,
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
    events: Vec<FuzzEvent>,
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
    term: u8,
    body: FuzzBody,
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
}

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
            self.step(Event::FrameReceived { stream, frame });
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
                    term: Term(u64::from(m.term)),
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
                for frame in raft_core::snapshot_frames(&meta, &data.into(), chunk_bytes) {
                    self.feed_frame(stream, frame);
                }
            }
            FuzzEvent::StreamClosed { stream } => {
                let stream = self.stream(stream);
                self.streams.retain(|s| *s != stream);
                self.step(Event::StreamClosed { stream });
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
            FuzzFrame::SnapshotBegin { meta, size } => Frame::SnapshotBegin {
                meta: meta.into_meta(cluster_id),
                size: u64::from(size),
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
    let node = Node::new(
        NodeOptions::new(SELF),
        RecoveredState::default(),
        input.rng_seed,
        Instant(0),
    )
    .expect("a fresh node always recovers");
    let mut driver = Driver {
        node,
        now: Instant(0),
        next_request: 0,
        unpersisted: VecDeque::new(),
        streams: Vec::new(),
        applied: LogIndex(0),
        snapshot_requested: false,
        snapshot_to_install: None,
        commit: LogIndex(0),
    };
    for event in input.events.into_iter().take(EVENTS_MAX) {
        driver.run(event);
    }
});
