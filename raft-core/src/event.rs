//! Inputs to [`crate::Node::step`].

use crate::action::LogReader;
use crate::bootstrap::Bootstrap;
use crate::entries::Entries;
use crate::message::{Frame, Message, SnapshotMeta, StreamOpen};
use crate::types::{LogIndex, NodeId, RequestId, StreamId, Term};
use bytes::Bytes;
use std::fmt;

/// A client command to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Echoed in the completion.
    pub id: RequestId,
    /// The command.
    pub data: Bytes,
}

/// A single-server membership change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipChange {
    /// Add a new node at `address` as a learner; the leader assigns its id
    /// (`max_node_id + 1`) and promotes it to voter once it has caught up.
    Add {
        /// Where the new node listens.
        address: String,
    },
    /// Add a new node at `address` as a learner under an id the caller
    /// chose (as hashicorp/raft's `AddVoter` takes one), promoted like
    /// `Add`. The id must be new to the cluster: a member's id is refused
    /// with [`RequestError::DuplicateNodeId`](crate::RequestError::DuplicateNodeId),
    /// and an id at or below `max_node_id` that is no member's (a removed
    /// member's: ids are never reused) or 0 with
    /// [`RequestError::InvalidNodeId`](crate::RequestError::InvalidNodeId).
    AddWithId {
        /// The id the new node will have.
        id: NodeId,
        /// Where the new node listens.
        address: String,
    },
    /// Remove a member. A leader that removes itself steps down once the change commits.
    Remove {
        /// The member to remove.
        id: NodeId,
    },
}

/// Something that happened, for the node to react to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Nothing but the passage of time: fire whatever timers are due.
    Tick,
    /// A datagram from a peer.
    MessageReceived(Message),
    /// (Leader) a follower opened stream `stream` with this handshake.
    StreamOpened {
        /// The stream.
        stream: StreamId,
        /// The follower's handshake.
        open: StreamOpen,
    },
    /// A frame arrived on `stream` (chunks at a follower, acks at a leader).
    FrameReceived {
        /// The stream.
        stream: StreamId,
        /// The frame.
        frame: Frame,
    },
    /// `stream` broke or was closed by the other side (or could not be opened).
    StreamClosed {
        /// The stream.
        stream: StreamId,
    },
    /// Every log operation issued up to and including the append of the entry
    /// at `index` (with `term`) is durable.
    LogPersisted {
        /// The entry's index.
        index: LogIndex,
        /// The entry's term (guards against an append that a later truncation replaced).
        term: Term,
    },
    /// The answer to [`Action::ReadLog`](crate::Action::ReadLog): the entries
    /// from `from` on as the driver's log holds them (none if a later
    /// compaction or truncation removed `from`).
    LogRead {
        /// The `reader` of the `ReadLog` answered.
        reader: LogReader,
        /// The `from` of the `ReadLog` answered.
        from: LogIndex,
        /// Consecutive entries starting at `from`.
        entries: Entries,
    },
    /// The driver took a snapshot of the FSM covering every entry up to
    /// `index`, and it is durable.
    SnapshotTaken {
        /// The last index it covers (at most the applied index).
        index: LogIndex,
        /// Its size: what the snapshot policy weighs the log against.
        bytes: u64,
    },
    /// The driver finished `Action::InstallSnapshot`: the FSM holds the
    /// snapshot's state and the whole log is gone, durably. A report for
    /// another snapshot than the one ordered is ignored.
    SnapshotInstalled {
        /// The installed snapshot.
        meta: SnapshotMeta,
    },
    /// A client wants commands appended.
    ProposeRequested {
        /// The commands, appended in order.
        proposals: Vec<Proposal>,
    },
    /// A client wants a linearizable read: the completion gives the index the
    /// FSM must have applied before the read is served.
    ReadRequested {
        /// Echoed in the completion.
        id: RequestId,
    },
    /// A client wants a membership change.
    ChangeMembershipRequested {
        /// Echoed in the completion.
        id: RequestId,
        /// The change.
        change: MembershipChange,
    },
    /// A client wants leadership moved to `target` (or the most caught-up voter).
    TransferLeadershipRequested {
        /// Echoed in the completion.
        id: RequestId,
        /// The node to hand over to.
        target: Option<NodeId>,
    },
    /// Make this empty node the first member of a new cluster.
    InitializeRequested {
        /// Echoed in the completion.
        id: RequestId,
        /// This node's address, recorded in the first configuration.
        address: String,
    },
    /// Make this node a member of the new cluster `bootstrap` describes
    /// (every member is stepped with the same one). Succeeds on an empty
    /// node, and again, changing nothing, on a node already bootstrapped
    /// with the same list; see [`crate::Bootstrap`] for the guarantees.
    BootstrapRequested {
        /// Echoed in the completion.
        id: RequestId,
        /// The member list and token every member starts from.
        bootstrap: Bootstrap,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Tick => write!(f, "Tick"),
            Event::MessageReceived(m) => write!(f, "Recv {m}"),
            Event::StreamOpened { stream, open } => write!(f, "StreamOpened {stream} {open}"),
            Event::FrameReceived { stream, frame } => write!(f, "FrameRecv {stream} {frame}"),
            Event::StreamClosed { stream } => write!(f, "StreamClosed {stream}"),
            Event::LogPersisted { index, term } => write!(f, "LogPersisted {index}/{term}"),
            Event::LogRead {
                reader,
                from,
                entries,
            } => write!(f, "LogRead for {reader} from={from} x{}", entries.len()),
            Event::SnapshotTaken { index, bytes } => write!(f, "SnapshotTaken {index} {bytes}B"),
            Event::SnapshotInstalled { meta } => write!(f, "SnapshotInstalled {meta}"),
            Event::ProposeRequested { proposals } => write!(f, "Propose x{}", proposals.len()),
            Event::ReadRequested { id } => write!(f, "Read {id}"),
            Event::ChangeMembershipRequested { id, change } => {
                write!(f, "ChangeMembership {id} {change:?}")
            }
            Event::TransferLeadershipRequested { id, target } => {
                write!(f, "Transfer {id} to {target:?}")
            }
            Event::InitializeRequested { id, address } => write!(f, "Initialize {id} {address}"),
            Event::BootstrapRequested { id, bootstrap } => write!(f, "Bootstrap {id} {bootstrap}"),
        }
    }
}
