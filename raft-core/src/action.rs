//! Outputs of [`crate::Node::step`]: orders for the driver, executed strictly in
//! the order given.

use crate::config::Config;
use crate::entries::Entries;
use crate::error::{Refusal, RequestError};
use crate::message::{Frame, Message, SnapshotMeta, StreamOpen};
use crate::state::{HardState, Role};
use crate::types::{ClusterId, LogIndex, NodeId, RequestId, StreamId, Term};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who asked for entries read back with [`Action::ReadLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LogReader {
    /// A leader's replication stream to `peer`.
    Stream {
        /// The follower.
        peer: NodeId,
        /// The stream (a read for a stream since closed is dropped).
        stream: StreamId,
    },
    /// The apply path: committed entries to hand to the state machine.
    Apply,
}

impl fmt::Display for LogReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogReader::Stream { peer, stream } => write!(f, "stream {stream} to {peer}"),
            LogReader::Apply => write!(f, "apply"),
        }
    }
}

/// What a successful request produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Completion {
    /// The proposal committed at `index`.
    Written {
        /// Its log index.
        index: LogIndex,
    },
    /// Serve the read once the FSM has applied `index`.
    Read {
        /// The read index.
        index: LogIndex,
    },
    /// The membership change committed at `index`; `node` is the node it concerned
    /// (for an add: the id assigned).
    MembershipChanged {
        /// The change's log index.
        index: LogIndex,
        /// The node added or removed.
        node: NodeId,
        /// The cluster (a joining node needs it to start).
        cluster_id: ClusterId,
    },
    /// Leadership moved to the transfer's target.
    Transferred {
        /// The new leader's term.
        term: Term,
    },
    /// This node initialized a new cluster.
    Initialized {
        /// The new cluster's id.
        cluster_id: ClusterId,
    },
}

/// An order for the driver.
///
/// The durability contract: execute actions in order; `PersistHardState` must be
/// durable before any later action runs (votes and terms reach disk before the
/// messages that depend on them); log operations may complete asynchronously, in
/// order, each durable batch reported back with `Event::LogPersisted`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send a datagram (best effort).
    Send(Message),
    /// Open a replication stream to `leader` and deliver `open` as its first
    /// bytes; report failure or a later break with `Event::StreamClosed`.
    OpenStream {
        /// The new stream's id.
        stream: StreamId,
        /// The leader to connect to.
        leader: NodeId,
        /// The handshake.
        open: StreamOpen,
    },
    /// Write a frame on an open stream (FIFO). Drop it silently if the stream is gone.
    SendFrame {
        /// The stream.
        stream: StreamId,
        /// The node at its other end (a driver needs no table of streams).
        peer: NodeId,
        /// The frame.
        frame: Frame,
    },
    /// Send the part of snapshot `meta` that covers `bytes_max` bytes from
    /// byte `offset` on `stream`, ahead of any later `SendFrame` on it:
    /// `SnapshotBegin { offset }` first when `first` is set (the window
    /// opens the transfer on this stream: at byte 0, or further on when the
    /// follower offered to resume), `SnapshotChunk`s for those bytes (fewer at
    /// the snapshot's end), and `SnapshotEnd` when the part reaches the end
    /// (see [`crate::wire::snapshot_window_frames`]). Snapshot bytes count
    /// against the stream budget: the core orders the next part as the
    /// follower's `SnapshotAck`s free it, each starting where the last one
    /// ended, so a driver keeps the snapshot open from one window to the
    /// next rather than reopening it. If the driver no longer holds `meta`
    /// (a newer snapshot replaced it), it closes the stream: the follower
    /// reopens it and the transfer starts over with the newer snapshot.
    SendSnapshot {
        /// The stream.
        stream: StreamId,
        /// The follower at its other end.
        peer: NodeId,
        /// Which snapshot.
        meta: SnapshotMeta,
        /// The first byte to send.
        offset: u64,
        /// The most snapshot bytes to send.
        bytes_max: u64,
        /// This window opens the transfer on this stream: lead with
        /// `SnapshotBegin`.
        first: bool,
    },
    /// Close a stream; the other side sees `StreamClosed`.
    CloseStream {
        /// The stream.
        stream: StreamId,
        /// The node at its other end (for a refused open: the follower the
        /// handshake named).
        peer: NodeId,
    },
    /// Make the hard state durable before executing any later action.
    PersistHardState(HardState),
    /// Append entries to the log (asynchronously durable; report with
    /// `LogPersisted`). They are shared with the node's log and the chunks
    /// that carry them: keep them (cloning is cheap) or copy what you need.
    AppendLog(Entries),
    /// Remove every entry at `from` and after, before any later append.
    TruncateLog {
        /// The first index removed.
        from: LogIndex,
    },
    /// Entries up to `through` are no longer needed (a snapshot covers them).
    CompactLog {
        /// The last index that may be deleted.
        through: LogIndex,
    },
    /// Apply committed entries to the FSM, in order.
    Apply(Entries),
    /// Read entries back from the durable log: the node no longer holds them
    /// in memory (see [`NodeOptions::log_cache_bytes_max`](crate::NodeOptions::log_cache_bytes_max))
    /// and `reader` needs them. Answer with [`Event::LogRead`](crate::Event::LogRead),
    /// echoing `reader` and `from`, with the entries from `from` on as the
    /// log holds them after every earlier action: at most `count_max`,
    /// stopping before their [`LogEntry::budget_bytes`](crate::LogEntry::budget_bytes)
    /// exceed `bytes_max` but at least one; none if `from` is no longer in
    /// the log. It asks only for entries reported durable (`LogPersisted`)
    /// and not truncated since, so they are on the disk whatever appends or
    /// truncations are still on their way to it. Every `ReadLog` must be
    /// answered (unless the node restarts); read off the step loop if the
    /// disk may be slow.
    ReadLog {
        /// Who asked; echo it.
        reader: LogReader,
        /// The first index wanted; echo it.
        from: LogIndex,
        /// The most entries to return.
        count_max: usize,
        /// The most bytes to return (at least one entry whatever its size).
        bytes_max: u64,
    },
    /// Take a snapshot of the FSM (at its applied index, or any later one)
    /// and report `SnapshotTaken` with its size once it is durable. The node
    /// goes on stepping meanwhile, however long the write takes: a driver
    /// captures the state and writes it off its hot path, so heartbeats,
    /// votes, replication and applies never wait for it.
    TakeSnapshot,
    /// Store part of an incoming snapshot. Chunks come in order: offset 0
    /// starts the snapshot `meta` afresh (drop any bytes stored before, of
    /// this or another snapshot); a later offset continues the bytes stored
    /// for the same `meta`, exactly where they end, possibly on a new stream
    /// after the last one broke (the transfer resumed). A follower offers to
    /// resume only what this node received since it last started, so the
    /// bytes need not be durable: a restart never resumes.
    ReceiveSnapshotChunk {
        /// The snapshot it belongs to.
        meta: SnapshotMeta,
        /// Byte offset.
        offset: u64,
        /// The bytes (checksum already verified).
        data: Bytes,
    },
    /// The received snapshot is complete and verified: restore the FSM from it,
    /// make it durable, discard the whole log (entries after the snapshot's
    /// index too: the core's log restarts empty right after it), then report
    /// `SnapshotInstalled`.
    InstallSnapshot {
        /// The snapshot.
        meta: SnapshotMeta,
    },
    /// Answer a client request.
    CompleteRequest {
        /// The request.
        id: RequestId,
        /// What happened.
        result: Result<Completion, RequestError>,
    },
    /// The node's role, term or known leader changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: Term,
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The membership configuration in force changed (appended, truncated or restored).
    ConfigChanged(Config),
    /// A peer's input was refused (for operators; no action needed).
    Refused {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: Refusal,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send(m) => write!(f, "Send {m}"),
            Action::OpenStream { stream, open, .. } => write!(f, "OpenStream {stream} {open}"),
            Action::SendFrame { stream, frame, .. } => write!(f, "SendFrame {stream} {frame}"),
            Action::SendSnapshot {
                stream,
                meta,
                offset,
                bytes_max,
                first,
                ..
            } => {
                write!(f, "SendSnapshot {stream} {meta} @{offset} {bytes_max}B")?;
                if *first && *offset > 0 {
                    write!(f, " resumed")?;
                }
                Ok(())
            }
            Action::CloseStream { stream, .. } => write!(f, "CloseStream {stream}"),
            Action::PersistHardState(h) => {
                write!(
                    f,
                    "PersistHardState {} vote={:?}",
                    h.term,
                    h.vote.map(|v| v.0)
                )
            }
            Action::AppendLog(es) => match (es.first(), es.last()) {
                (Some(a), Some(b)) => write!(f, "AppendLog [{}..={}] {}", a.index, b.index, b.term),
                _ => write!(f, "AppendLog []"),
            },
            Action::TruncateLog { from } => write!(f, "TruncateLog from={from}"),
            Action::CompactLog { through } => write!(f, "CompactLog through={through}"),
            Action::Apply(es) => match (es.first(), es.last()) {
                (Some(a), Some(b)) => write!(f, "Apply [{}..={}]", a.index, b.index),
                _ => write!(f, "Apply []"),
            },
            Action::ReadLog {
                reader,
                from,
                count_max,
                bytes_max,
            } => write!(
                f,
                "ReadLog for {reader} from={from} x{count_max} {bytes_max}B"
            ),
            Action::TakeSnapshot => write!(f, "TakeSnapshot"),
            Action::ReceiveSnapshotChunk { offset, data, .. } => {
                write!(f, "ReceiveSnapshotChunk @{offset} {}B", data.len())
            }
            Action::InstallSnapshot { meta } => write!(f, "InstallSnapshot {meta}"),
            Action::CompleteRequest { id, result } => match result {
                Ok(c) => write!(f, "Complete {id} {c:?}"),
                Err(e) => write!(f, "Complete {id} error: {e}"),
            },
            Action::RoleChanged { role, term, leader } => {
                write!(
                    f,
                    "RoleChanged {role:?} {term} leader={:?}",
                    leader.map(|l| l.0)
                )
            }
            Action::ConfigChanged(c) => write!(f, "ConfigChanged {c}"),
            Action::Refused { peer, reason } => write!(f, "Refused {peer}: {reason}"),
        }
    }
}
