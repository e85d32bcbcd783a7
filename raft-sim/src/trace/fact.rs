//! What a trace record says happened, as data a test can match on.
//!
//! A [`Fact`] is the typed twin of a record's one-line text: the text is what
//! a person reads (and what the digest, `-v`, `--trace` and the timeline
//! use); the fact is what a program matches. Facts carry identities and
//! indexes, never payloads (entries, snapshot bytes), so building one costs
//! no allocation on the paths every step takes.
//!
//! Nodes are world indexes (`0..node_count`), as everywhere in the
//! simulator's API; node ids (`NodeId`, 1-based) appear only where the core
//! names a node (a vote, a message body).

use crate::disk::{CrashAccount, DiskDamage};
use crate::scenario::Fault;
use raft_core::{
    Action, Event, Frame, LogIndex, LogReader, Message, MessageBody, NodeId, Refusal, RequestId,
    Role, StreamId, Term,
};

/// One thing that happened in a run (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fact {
    /// The run began (the first record).
    RunStarted {
        /// The seed.
        seed: u64,
    },
    /// The node started (first start or restart) from its disk.
    Started {
        /// Its incarnation (0 on the first start).
        incarnation: u64,
        /// The last index of its durable log.
        last_index: LogIndex,
    },
    /// The node did not start: its recovery found its disk damaged (see
    /// [`crate::disk::SimDisk::check`]); it stays down.
    StartRefused {
        /// What recovery found.
        damage: DiskDamage,
    },
    /// The node crashed; its disk kept part of its pending writes.
    Crashed {
        /// What the disk kept of its pending writes.
        account: CrashAccount,
    },
    /// The node resumed after a pause.
    Resumed,
    /// A node the membership nemesis added joined with an empty disk.
    Joined,
    /// A client's operation ended (completed, failed, timed out or unknown).
    ClientFinished {
        /// The client slot.
        client: usize,
        /// Its position in the client history.
        op: u64,
    },
    /// The hostile member forged a frame or a datagram; the text says which.
    Hostile,
    /// A fault was applied (scheduled, injected or triggered).
    Fault(Fault),
    /// The nemesis cut a new leader off with one follower.
    LeaderCutOff {
        /// The follower left with it.
        with: usize,
    },
    /// The chaos phase ended: faults healed, the liveness phase begins.
    Healed,
    /// The node was stepped with a datagram: it arrived.
    MessageDelivered {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// The sender's term.
        term: Term,
        /// What it says.
        body: MessageBody,
    },
    /// The node sent a datagram that the network will deliver (once, or
    /// twice if `duplicated`).
    MessageSent {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// The sender's term.
        term: Term,
        /// What it says.
        body: MessageBody,
        /// The network will deliver a second copy.
        duplicated: bool,
    },
    /// A datagram was dropped, at its send or on its arrival.
    MessageDropped {
        /// Sender.
        from: usize,
        /// Receiver (out of `0..node_count` for an id outside the world).
        to: usize,
        /// The sender's term.
        term: Term,
        /// What it says.
        body: MessageBody,
        /// Why.
        reason: DropReason,
    },
    /// A datagram was held by a rule ([`crate::world::World::hold_datagrams`]
    /// or [`crate::intercept::Treatment::Hold`]).
    MessageHeld {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// What it says.
        body: MessageBody,
    },
    /// Held datagrams and streams were released.
    HeldReleased {
        /// Datagrams released.
        datagrams: usize,
        /// Stream directions released.
        lanes: usize,
    },
    /// A rule delayed, reordered or duplicated a datagram or a frame.
    Intercepted {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// What the rule did.
        treatment: crate::intercept::Treatment,
    },
    /// A frame was put on a stream.
    FrameSent {
        /// The stream.
        stream: StreamId,
        /// Sender.
        from: usize,
        /// Receiver (the stream's other end).
        to: usize,
        /// What it is.
        frame: FrameKind,
        /// Its size as the stream's budget and bandwidth count it.
        bytes: u64,
    },
    /// A frame could not be sent (the stream is gone or not open).
    FrameDropped {
        /// The stream.
        stream: StreamId,
        /// Sender.
        from: usize,
        /// What it is.
        frame: FrameKind,
        /// Why (the network's reason).
        reason: &'static str,
    },
    /// The node was stepped with a frame: it arrived.
    FrameDelivered {
        /// The stream.
        stream: StreamId,
        /// Receiver.
        to: usize,
        /// What it is.
        frame: FrameKind,
    },
    /// A stream broke outside a node's doing.
    StreamBroken {
        /// The stream.
        stream: StreamId,
        /// Why.
        cause: BreakCause,
    },
    /// The node was stepped with an event other than a datagram or a frame.
    Stepped {
        /// The event.
        input: Input,
    },
    /// The node's log writes up to `index` are durable (its fsync completed).
    LogPersisted {
        /// The last durable index.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
    /// The node made its term and vote durable.
    HardStatePersisted {
        /// The term.
        term: Term,
        /// The vote in it.
        vote: Option<NodeId>,
    },
    /// The node appended entries in memory and submitted them to its disk.
    Appended {
        /// The first index.
        first: LogIndex,
        /// The last index.
        last: LogIndex,
    },
    /// The node truncated its log from `from` (submitted to its disk).
    Truncated {
        /// The first index removed.
        from: LogIndex,
    },
    /// The node compacted its log through `through`.
    Compacted {
        /// The last index removed.
        through: LogIndex,
    },
    /// The node applied committed entries to its state machine.
    Applied {
        /// The first index.
        first: LogIndex,
        /// The last index.
        last: LogIndex,
    },
    /// The node's role changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// Its term.
        term: Term,
        /// The leader it knows of.
        leader: Option<NodeId>,
    },
    /// The node answered a request (a client's, the nemesis' or a bootstrap).
    RequestCompleted {
        /// The request.
        id: RequestId,
        /// Whether it succeeded.
        ok: bool,
    },
    /// The node refused a peer.
    Refused {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: Refusal,
    },
    /// Another action of the node (stream opens and closes, snapshots,
    /// configuration changes).
    Acted {
        /// Which.
        action: ActionKind,
    },
    /// A nemesis request (transfer, membership change), skipped, asked or
    /// answered; the text says which.
    Nemesis,
    /// A judgment at the end of the run (liveness postponed, skipped, or the
    /// state of each member on a failure); the text says which.
    Judgment,
    /// The run failed.
    Failed {
        /// The checker that failed it.
        checker: &'static str,
    },
    /// The core (or the service) panicked; the text holds the message.
    Panicked,
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Addressed to an id outside the world.
    NoSuchNode,
    /// The path was blocked when it was sent.
    Partitioned,
    /// The path was blocked when it arrived.
    PartitionedInFlight,
    /// Lost at random (`NetKnobs::drop`).
    Lost,
    /// A rule dropped it ([`crate::intercept::Treatment::Drop`]).
    Rule,
}

impl DropReason {
    /// The network's reason for a drop at send.
    pub(crate) fn of_send(why: &str) -> DropReason {
        match why {
            "partitioned" => DropReason::Partitioned,
            _ => DropReason::Lost,
        }
    }
}

/// Why a stream broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakCause {
    /// A direction stalled behind a partition for longer than
    /// `NetKnobs::stream_break_after_ns`.
    Stall,
    /// A rule dropped, duplicated or reordered one of its frames, which a
    /// stream cannot do without breaking (see [`crate::intercept::Treatment`]).
    Rule,
}

/// A stream frame without its payload. (Small on purpose: every frame sent
/// and delivered makes one. A chunk's term is its stream's leader's.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameKind {
    /// Entries (or, empty, only a commit index), leader to follower.
    Chunk {
        /// The entry before the first.
        prev_index: LogIndex,
        /// The leader's commit index.
        leader_commit: LogIndex,
        /// How many entries.
        count: u32,
    },
    /// A snapshot transfer begins.
    SnapshotBegin {
        /// The snapshot's last index.
        index: LogIndex,
        /// Its size in bytes.
        size: u64,
        /// It resumes a transfer an earlier stream cut short (it starts
        /// past byte 0). Not the offset itself: a fact stays within a
        /// cache line.
        resumed: bool,
    },
    /// Bytes of a snapshot.
    SnapshotChunk {
        /// Where they start.
        offset: u64,
        /// How many.
        len: u32,
    },
    /// A snapshot transfer ends.
    SnapshotEnd,
    /// A follower's durable index.
    Ack {
        /// The durable index.
        durable: LogIndex,
    },
    /// A follower's progress in a snapshot transfer.
    SnapshotAck {
        /// Bytes received.
        received: u64,
    },
}

impl FrameKind {
    /// The kind of `frame`.
    pub fn of(frame: &Frame) -> FrameKind {
        match frame {
            Frame::Chunk {
                prev_index,
                leader_commit,
                entries,
                ..
            } => FrameKind::Chunk {
                prev_index: *prev_index,
                leader_commit: *leader_commit,
                count: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            },
            Frame::SnapshotBegin { meta, size, offset } => FrameKind::SnapshotBegin {
                index: meta.index,
                size: *size,
                resumed: *offset > 0,
            },
            Frame::SnapshotChunk { offset, data, .. } => FrameKind::SnapshotChunk {
                offset: *offset,
                len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            },
            Frame::SnapshotEnd { .. } => FrameKind::SnapshotEnd,
            Frame::Ack { durable } => FrameKind::Ack { durable: *durable },
            Frame::SnapshotAck { received, .. } => FrameKind::SnapshotAck {
                received: *received,
            },
        }
    }
}

/// A core event other than a datagram or a frame, without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Input {
    /// Time passed (a timer).
    Tick,
    /// A follower opened a stream to this leader.
    StreamOpened {
        /// The stream.
        stream: StreamId,
    },
    /// A stream closed (or broke) under the node.
    StreamClosed {
        /// The stream.
        stream: StreamId,
    },
    /// The state machine finished a snapshot.
    SnapshotTaken {
        /// Its last index.
        index: LogIndex,
    },
    /// A received snapshot is durable.
    SnapshotInstalled {
        /// Its last index.
        index: LogIndex,
    },
    /// Client writes were proposed (the start of client operations).
    ProposeRequested {
        /// How many proposals.
        count: usize,
    },
    /// A client read was asked (the start of a client operation).
    ReadRequested {
        /// The request.
        id: RequestId,
    },
    /// A membership change was asked.
    ChangeMembershipRequested {
        /// The request.
        id: RequestId,
    },
    /// A leadership transfer was asked.
    TransferLeadershipRequested {
        /// The request.
        id: RequestId,
    },
    /// The node was asked to initialize a cluster.
    InitializeRequested {
        /// The request.
        id: RequestId,
    },
    /// The node's driver bootstrapped it.
    BootstrapRequested {
        /// The request.
        id: RequestId,
    },
    /// Entries read back from the disk arrived.
    LogRead {
        /// Who asked.
        reader: LogReader,
        /// The first index.
        from: LogIndex,
        /// How many entries.
        count: usize,
    },
    /// An event this simulator does not name yet.
    Other,
}

/// An action other than those with a fact of their own, without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActionKind {
    /// A follower opens a stream to `leader`.
    OpenStream {
        /// The stream.
        stream: StreamId,
        /// The leader.
        leader: NodeId,
    },
    /// The node closes a stream.
    CloseStream {
        /// The stream.
        stream: StreamId,
    },
    /// A leader streams a window of its snapshot.
    SendSnapshot {
        /// The stream.
        stream: StreamId,
        /// The snapshot's last index.
        index: LogIndex,
        /// Where the window starts.
        offset: u64,
    },
    /// The node asks its state machine for a snapshot.
    TakeSnapshot,
    /// A follower buffers snapshot bytes.
    ReceiveSnapshotChunk {
        /// Where they start.
        offset: u64,
    },
    /// A follower installs the snapshot it received.
    InstallSnapshot {
        /// Its last index.
        index: LogIndex,
    },
    /// The node's configuration changed.
    ConfigChanged,
    /// The node asks its disk for evicted entries (its log cache is full).
    ReadLog {
        /// A stream to a follower, or the apply path.
        reader: LogReader,
        /// The first index asked for.
        from: LogIndex,
    },
    /// An action this simulator does not name yet.
    Other,
}

impl Fact {
    /// The fact of stepping node `to` with `event`.
    pub(crate) fn of_event(to: usize, event: &Event) -> Fact {
        let input = match event {
            Event::MessageReceived(m) => {
                return Fact::MessageDelivered {
                    from: world_index(m.from),
                    to,
                    term: m.term,
                    body: m.body.clone(),
                };
            }
            Event::FrameReceived { stream, frame } => {
                return Fact::FrameDelivered {
                    stream: *stream,
                    to,
                    frame: FrameKind::of(frame),
                };
            }
            Event::LogPersisted { index, term } => {
                return Fact::LogPersisted {
                    index: *index,
                    term: *term,
                };
            }
            Event::Tick => Input::Tick,
            Event::StreamOpened { stream, .. } => Input::StreamOpened { stream: *stream },
            Event::StreamClosed { stream } => Input::StreamClosed { stream: *stream },
            Event::SnapshotTaken { index, .. } => Input::SnapshotTaken { index: *index },
            Event::SnapshotInstalled { meta } => Input::SnapshotInstalled { index: meta.index },
            Event::ProposeRequested { proposals } => Input::ProposeRequested {
                count: proposals.len(),
            },
            Event::ReadRequested { id } => Input::ReadRequested { id: *id },
            Event::ChangeMembershipRequested { id, .. } => {
                Input::ChangeMembershipRequested { id: *id }
            }
            Event::TransferLeadershipRequested { id, .. } => {
                Input::TransferLeadershipRequested { id: *id }
            }
            Event::InitializeRequested { id, .. } => Input::InitializeRequested { id: *id },
            Event::BootstrapRequested { id, .. } => Input::BootstrapRequested { id: *id },
            Event::LogRead {
                reader,
                from,
                entries,
            } => Input::LogRead {
                reader: *reader,
                from: *from,
                count: entries.len(),
            },
            _ => Input::Other,
        };
        Fact::Stepped { input }
    }

    /// The fact of executing `action` (those traced as `-> {action}`).
    pub(crate) fn of_action(action: &Action) -> Fact {
        let kind = match action {
            Action::PersistHardState(hs) => {
                return Fact::HardStatePersisted {
                    term: hs.term,
                    vote: hs.vote,
                };
            }
            Action::AppendLog(entries) => {
                let (first, last) = match (entries.first(), entries.last()) {
                    (Some(a), Some(b)) => (a.index, b.index),
                    _ => (LogIndex(0), LogIndex(0)),
                };
                return Fact::Appended { first, last };
            }
            Action::TruncateLog { from } => return Fact::Truncated { from: *from },
            Action::CompactLog { through } => return Fact::Compacted { through: *through },
            Action::CompleteRequest { id, result } => {
                return Fact::RequestCompleted {
                    id: *id,
                    ok: result.is_ok(),
                };
            }
            Action::RoleChanged { role, term, leader } => {
                return Fact::RoleChanged {
                    role: *role,
                    term: *term,
                    leader: *leader,
                };
            }
            Action::Refused { peer, reason } => {
                return Fact::Refused {
                    peer: *peer,
                    reason: reason.clone(),
                };
            }
            Action::OpenStream { stream, leader, .. } => ActionKind::OpenStream {
                stream: *stream,
                leader: *leader,
            },
            Action::CloseStream { stream, .. } => ActionKind::CloseStream { stream: *stream },
            Action::SendSnapshot {
                stream,
                meta,
                offset,
                ..
            } => ActionKind::SendSnapshot {
                stream: *stream,
                index: meta.index,
                offset: *offset,
            },
            Action::TakeSnapshot => ActionKind::TakeSnapshot,
            Action::ReceiveSnapshotChunk { offset, .. } => {
                ActionKind::ReceiveSnapshotChunk { offset: *offset }
            }
            Action::InstallSnapshot { meta } => ActionKind::InstallSnapshot { index: meta.index },
            Action::ConfigChanged(_) => ActionKind::ConfigChanged,
            Action::ReadLog { reader, from, .. } => ActionKind::ReadLog {
                reader: *reader,
                from: *from,
            },
            _ => ActionKind::Other,
        };
        Fact::Acted { action: kind }
    }

    /// The fact of a datagram `msg` from `from` dropped for `reason`.
    pub(crate) fn dropped(from: usize, msg: &Message, reason: DropReason) -> Fact {
        Fact::MessageDropped {
            from,
            to: world_index(msg.to),
            term: msg.term,
            body: msg.body.clone(),
            reason,
        }
    }

    /// Whether the record's text says more than this fact (the facts whose
    /// doc says "the text says which", a failure's message, a panic's): the
    /// digest then reads the text too, so these records' text is always
    /// formatted. All are rare.
    pub fn text_says_more(&self) -> bool {
        matches!(
            self,
            Fact::Hostile | Fact::Nemesis | Fact::Judgment | Fact::Failed { .. } | Fact::Panicked
        )
    }

    /// Whether this fact is about a datagram (sent, delivered, dropped or held).
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            Fact::MessageDelivered { .. }
                | Fact::MessageSent { .. }
                | Fact::MessageDropped { .. }
                | Fact::MessageHeld { .. }
        )
    }
}

/// The world index of node id `id` (out of range for an id outside the
/// world: `usize::MAX` for id 0).
fn world_index(id: NodeId) -> usize {
    (id.0 as usize).wrapping_sub(1)
}
