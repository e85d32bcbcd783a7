//! The error vocabulary, by who is at fault.
//!
//! * [`RequestError`]: a client request the node could not carry out. Each says
//!   whether the outcome is [`Outcome::Definite`] (certainly not applied) or
//!   [`Outcome::Unknown`] (may still commit): clients and the linearizability
//!   checker depend on the difference.
//! * [`DecodeError`]: bytes from the network or a disk that are not a valid value.
//! * [`Refusal`]: a peer's message that was refused (stale, foreign, misdirected).
//! * [`Violation`]: the stream rule a peer broke (a [`Refusal::Misbehaving`]):
//!   well-formed frames that no honest peer sends.
//!
//! A broken invariant is none of these: it is a bug, and the core panics.

use crate::types::{ClusterId, LogIndex, NodeId, Term};
use thiserror::Error;

/// Whether a failed request may still take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The request was certainly not applied and never will be.
    Definite,
    /// The request was appended to the log and may still commit.
    Unknown,
}

/// Why a client request failed.
#[derive(Clone, Debug, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum RequestError {
    /// This node is not the leader (or stopped being it); try `leader`.
    #[error("not leader (leader hint: {leader:?}, outcome {outcome:?})")]
    NotLeader {
        /// The node this one believes is the leader, if any.
        leader: Option<NodeId>,
        /// Whether the request may still commit.
        outcome: Outcome,
    },
    /// `initialize` on a node that already belongs to a cluster.
    #[error("already initialized")]
    AlreadyInitialized,
    /// `bootstrap` on a node whose first entry is not the list's (a damaged
    /// or forged disk: the cluster id names the list). `initialize` never
    /// meets a log without a cluster id: recovery refuses one.
    #[error("log exists: this node's first entry is not the bootstrap list's")]
    LogExists,
    /// A request that needs a cluster on a node that has neither initialized nor joined.
    #[error("not initialized: initialize or join first")]
    NotInitialized,
    /// A membership change while another is still uncommitted.
    #[error("a membership change is already in progress")]
    ChangeInProgress,
    /// The leader has not yet committed an entry of its own term; retry shortly.
    #[error("leader not ready: no entry of its term committed yet")]
    LeaderNotReady,
    /// The named node is not a member.
    #[error("node not found: {0}")]
    NodeNotFound(NodeId),
    /// A node id that cannot be used here (zero, or above `max_node_id`).
    #[error("invalid node id: {0}")]
    InvalidNodeId(NodeId),
    /// A membership change without an address.
    #[error("node address required")]
    NodeAddressRequired,
    /// A node with this id is already a member.
    #[error("duplicate node id: {0}")]
    DuplicateNodeId(NodeId),
    /// A node with this address is already a member.
    #[error("duplicate node address: {0}")]
    DuplicateNodeAddress(String),
    /// A leadership transfer is in progress; proposals wait until it ends.
    #[error("leadership transfer in progress")]
    TransferInProgress,
    /// The transfer target did not catch up in time, so it was never sent
    /// `TimeoutNow`: the transfer is over.
    #[error("leadership transfer to {0} timed out")]
    TransferTimedOut(NodeId),
    /// A command larger than `NodeOptions::entry_bytes_max`.
    #[error("command of {bytes} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The command's size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many requests are waiting; back off.
    #[error("too many pending requests")]
    Busy,
    /// The leader stepped down during the transfer and then heard `leader`,
    /// not the target, lead the later term `term`.
    #[error("leadership transfer to {target} superseded: {leader} leads term {term}")]
    TransferSuperseded {
        /// The node the transfer was meant for.
        target: NodeId,
        /// The node heard leading instead.
        leader: NodeId,
        /// Its term.
        term: Term,
    },
    /// The outcome is not known: the leader stepped down during the transfer
    /// (check-quorum, a later term) and heard from no leader of a later term
    /// within an election timeout, or it sent `TimeoutNow` and the target had
    /// not taken over within an election timeout. The target may or may not
    /// lead now, or later: a `TimeoutNow` late in the network still makes it
    /// campaign past every follower's stickiness.
    #[error("leadership transfer to {0} unconfirmed: no successor heard, the target may yet lead")]
    TransferUnconfirmed(NodeId),
}

impl RequestError {
    /// Whether the request may still take effect.
    pub fn outcome(&self) -> Outcome {
        match self {
            RequestError::NotLeader { outcome, .. } => *outcome,
            RequestError::TransferUnconfirmed(_) => Outcome::Unknown,
            _ => Outcome::Definite,
        }
    }
}

/// Bytes that do not decode to a valid value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the frame needs.
    #[error("truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        have: usize,
    },
    /// The checksum does not match the bytes.
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The checksum in the frame.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// A format version this build does not read.
    #[error("unsupported version {0}")]
    Version(u8),
    /// A length above the allowed maximum.
    #[error("frame too large: {len} bytes, limit {limit}")]
    TooLarge {
        /// The declared length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload is not a valid encoding.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The payload decodes but breaks a structural rule.
    #[error("invalid: {0}")]
    Invalid(&'static str),
}

/// Why a peer's message or stream was refused. Reported by `Action::Refused` so
/// operators can see misconfiguration (a node of another cluster knocking).
#[derive(Clone, Debug, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The sender belongs to another cluster.
    #[error("foreign cluster {theirs} (ours {ours:?})")]
    ForeignCluster {
        /// The sender's cluster.
        theirs: ClusterId,
        /// Ours, if we have one.
        ours: Option<ClusterId>,
    },
    /// The message names another recipient.
    #[error("meant for {0}")]
    Misdirected(NodeId),
    /// The sender is not a member of our configuration.
    #[error("{0} is not a member")]
    NotMember(NodeId),
    /// The sender's term is older than ours.
    #[error("stale term {theirs} < {ours}")]
    StaleTerm {
        /// The sender's term.
        theirs: Term,
        /// Ours.
        ours: Term,
    },
    /// A vote refused because the candidate's log is behind ours.
    #[error("candidate log out of date")]
    OutOfDateLog,
    /// A vote refused because we voted for someone else in this term.
    #[error("already voted for {0} in this term")]
    AlreadyVoted(NodeId),
    /// A vote refused because we heard from a live leader recently.
    #[error("leader {0:?} is alive")]
    LeaderAlive(Option<NodeId>),
    /// A stream opened to a node that is not the leader of that term.
    #[error("not the leader of that term")]
    NotLeaderOfTerm,
    /// A peer broke the stream protocol; the stream was closed.
    #[error("protocol violation: {0}")]
    Misbehaving(Violation),
    /// A vote or pre-vote refused because this node started less than an
    /// election timeout ago and may have helped a leader's lease before it
    /// stopped (see `NodeOptions::lease_reads`).
    #[error("started less than an election timeout ago")]
    RecentlyStarted,
}

/// A protocol rule a peer broke. Every frame a peer sends is input: the
/// receiver checks it against the stream so far and against its own log, and
/// closes the stream on the first violation (the follower reopens it after the
/// reconnect delay) instead of trusting it. A message that breaks a rule is
/// dropped.
#[derive(Clone, Debug, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize, Hash)]
#[non_exhaustive]
pub enum Violation {
    /// A chunk of a term other than the stream's.
    #[error("chunk of term {chunk} on a stream of term {stream}")]
    ChunkOfAnotherTerm {
        /// The chunk's term.
        chunk: Term,
        /// The stream's term.
        stream: Term,
    },
    /// A chunk that does not start where the previous frame ended (duplicated,
    /// reordered or skipped frames).
    #[error("chunk starts after {prev} but the stream is at {expected}")]
    ChunkOutOfOrder {
        /// Where the stream stands.
        expected: LogIndex,
        /// The chunk's `prev_index`.
        prev: LogIndex,
    },
    /// A stream's first chunk that starts beyond the follower's log (an honest
    /// leader starts at or below the follower's probe).
    #[error("chunk starts after {prev}, beyond the last index {last}")]
    PrevBeyondLog {
        /// The chunk's `prev_index`.
        prev: LogIndex,
        /// The follower's last index.
        last: LogIndex,
    },
    /// Chunk entries that are not consecutive from `prev_index + 1`.
    #[error("chunk entries not consecutive at {0}")]
    EntriesNotContiguous(LogIndex),
    /// A chunk whose terms decrease (from `prev_term` through its entries).
    #[error("chunk terms decrease at {0}")]
    TermsDecrease(LogIndex),
    /// A chunk naming a term above the stream's (in `prev_term` or an entry).
    #[error("chunk names term {term} at {index}, above the stream's term")]
    TermAboveStream {
        /// Where.
        index: LogIndex,
        /// The term named.
        term: Term,
    },
    /// A chunk that claims a commit index beyond its own last entry.
    #[error("chunk claims commit {commit} beyond its last index {last}")]
    CommitBeyondChunk {
        /// The claimed commit index.
        commit: LogIndex,
        /// The chunk's last index (`prev_index` when empty).
        last: LogIndex,
    },
    /// A membership entry that does not decode or names another cluster.
    #[error("membership entry at {0} is not a configuration of this cluster")]
    BadConfigEntry(LogIndex),
    /// A chunk or snapshot that gives a committed index another term than the
    /// follower's log: a leader's log holds every committed entry.
    #[error("term at committed index {0} contradicted")]
    ContradictsCommitted(LogIndex),
    /// A chunk that would replace entries this stream already validated.
    #[error("entry {0}, validated on this stream, contradicted")]
    ContradictsValidated(LogIndex),
    /// A chunk between a `SnapshotBegin` and its `SnapshotEnd`.
    #[error("chunk inside a snapshot transfer")]
    ChunkInsideSnapshot,
    /// A `SnapshotBegin` before the previous snapshot ended.
    #[error("snapshot begins inside another")]
    SnapshotInsideSnapshot,
    /// A `SnapshotBegin` that resumes a transfer at `offset` this follower
    /// did not offer: it holds `held` bytes of it, or of another snapshot.
    #[error("snapshot resumes at byte {offset}, but {held} bytes of it are held")]
    SnapshotResumeMismatch {
        /// Where the leader resumed.
        offset: u64,
        /// The bytes of a cut-short transfer this follower held (0 if none).
        held: u64,
    },
    /// A snapshot of a term above the stream's.
    #[error("snapshot of term {0}, above the stream's term")]
    SnapshotTermAboveStream(Term),
    /// A snapshot whose index is above [`LogIndex::LIMIT`]: no honest
    /// log gets there, and a log restarted after it would run out of indexes.
    #[error("snapshot at index {0}, above the limit")]
    SnapshotIndexAboveLimit(LogIndex),
    /// A snapshot of another cluster.
    #[error("snapshot of another cluster")]
    SnapshotOfAnotherCluster,
    /// A snapshot whose configuration is invalid or newer than the snapshot.
    #[error("snapshot configuration invalid or newer than the snapshot")]
    SnapshotConfigInvalid,
    /// A snapshot that ends before what the stream already delivered.
    #[error("snapshot at {snapshot} behind the stream at {stream}")]
    SnapshotRewindsStream {
        /// The snapshot's index.
        snapshot: LogIndex,
        /// Where the stream stands.
        stream: LogIndex,
    },
    /// A snapshot chunk, or end, outside a snapshot transfer.
    #[error("snapshot data outside a snapshot transfer")]
    SnapshotDataOutsideSnapshot,
    /// A snapshot chunk at the wrong offset or past the announced size.
    #[error("snapshot chunk at offset {offset} out of place (expected {expected})")]
    SnapshotChunkOutOfPlace {
        /// The chunk's offset.
        offset: u64,
        /// The bytes received so far.
        expected: u64,
    },
    /// A snapshot chunk, or a whole snapshot, whose checksum or size is wrong.
    #[error("snapshot checksum mismatch or size short")]
    SnapshotCorrupt,
    /// A frame only the other end of a stream sends (an ack at a follower, a
    /// chunk or snapshot at a leader).
    #[error("frame sent in the wrong direction")]
    WrongDirection,
    /// A snapshot ack that does not fit the transfer in progress: none is in
    /// progress, it names another size, or it acks bytes not sent or fewer
    /// than an earlier ack.
    #[error("snapshot ack of {received} of {size} bytes does not fit the transfer")]
    SnapshotAckOutOfPlace {
        /// The bytes the follower says it received.
        received: u64,
        /// The snapshot size the follower names.
        size: u64,
    },
    /// A message naming a term above [`Term::LIMIT`]: entering it could
    /// leave no later term to campaign in.
    #[error("term {0} is above the term limit")]
    TermExhausted(Term),
    /// An ack of an index the leader has not sent on this stream.
    #[error("ack of {durable}, beyond {sent} sent")]
    AckBeyondSent {
        /// The acknowledged index.
        durable: LogIndex,
        /// The last index sent.
        sent: LogIndex,
    },
}
