//! What nodes say to each other: datagram [`Message`]s (votes, heartbeats,
//! `TimeoutNow`) and the [`Frame`]s of a replication stream.
//!
//! Every message carries the cluster id, the sender, the intended recipient and
//! the sender's term; every stream begins with a [`StreamOpen`] handshake that
//! carries the same. The receiver checks all four before trusting anything else.

use crate::config::Config;
use crate::entries::Entries;
use crate::entry::LogEntry;
use crate::types::{ClusterId, LogIndex, NodeId, Term};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A datagram between two nodes. Delivery is best effort: it may be lost,
/// duplicated, delayed or reordered, and the protocol tolerates all of that.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's cluster.
    pub cluster_id: ClusterId,
    /// The sender.
    pub from: NodeId,
    /// The intended recipient.
    pub to: NodeId,
    /// The sender's current term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What it says.
    pub body: MessageBody,
}

/// The kinds of datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum MessageBody {
    /// "Would you vote for me in `term`?" Changes no state on the receiver.
    PreVoteRequest {
        /// The candidate's last log index.
        last_index: LogIndex,
        /// The term of that entry.
        last_term: Term,
    },
    /// The answer to a pre-vote.
    PreVoteResponse {
        /// Whether the pre-vote was granted.
        granted: bool,
    },
    /// "Vote for me in `term`."
    VoteRequest {
        /// The candidate's last log index.
        last_index: LogIndex,
        /// The term of that entry.
        last_term: Term,
        /// Set when the old leader handed over leadership (`TimeoutNow`): voters
        /// then grant even though they heard from that leader recently.
        transfer: bool,
    },
    /// The answer to a vote request.
    VoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// The leader is alive. Never queued behind stream data.
    Heartbeat {
        /// The leader's commit index, clamped to what the recipient is known to hold.
        commit: LogIndex,
        /// Round number for ReadIndex confirmation; echoed in the response.
        round: u64,
    },
    /// A follower heard the heartbeat of `round`.
    HeartbeatResponse {
        /// The round being answered; 0, which no leader sends, answering a
        /// heartbeat of an earlier term (it confirms no round).
        round: u64,
        /// Whether the follower has an open stream to this leader (if not, it is opening one).
        streaming: bool,
    },
    /// The leader hands over leadership: campaign now, skipping pre-vote.
    TimeoutNow,
}

/// The handshake a follower sends when it opens a replication stream to the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOpen {
    /// The follower's cluster.
    pub cluster_id: ClusterId,
    /// The follower opening the stream.
    pub follower: NodeId,
    /// The leader it believes in.
    pub leader: NodeId,
    /// The term of that leader; the stream lives and dies with this term.
    pub term: Term,
    /// An index the follower's log holds (its last, or a lower one after a mismatch) ...
    pub probe_index: LogIndex,
    /// ... and the term of its entry there.
    pub probe_term: Term,
    /// The follower's commit index: everything up to here certainly matches the leader.
    pub commit: LogIndex,
    /// The part of a snapshot this follower received from the same leader on
    /// an earlier stream that broke before the transfer ended. The leader
    /// may go on from `received` instead of byte 0 (`SnapshotBegin` with
    /// that offset) or ignore the offer and start over.
    pub resume: Option<SnapshotResume>,
}

/// A follower's offer to resume a snapshot transfer: it holds the first
/// `received` bytes of the leader's snapshot at `index`/`term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotResume {
    /// The snapshot's last index.
    pub index: LogIndex,
    /// Its term.
    pub term: Term,
    /// How many of its bytes the follower stored, from byte 0.
    pub received: u64,
}

/// Metadata of a snapshot: the state after applying every entry up to `index`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers.
    pub index: LogIndex,
    /// The term of that entry.
    pub term: Term,
    /// The membership configuration in force at `index`.
    pub config: Config,
}

impl fmt::Display for SnapshotMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snapshot@{}/{}", self.index, self.term)
    }
}

/// One unit on a replication stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Leader to follower: entries that follow `prev` in the leader's log. An
    /// empty chunk only carries a new commit index.
    Chunk {
        /// The leader's term (the stream's term).
        term: Term,
        /// The index just before the first entry.
        prev_index: LogIndex,
        /// The leader's term at `prev_index`.
        prev_term: Term,
        /// The leader's commit index.
        leader_commit: LogIndex,
        /// Consecutive entries starting at `prev_index + 1` (encoded as a
        /// `Vec<LogEntry>` is).
        entries: Entries,
    },
    /// Leader to follower: a snapshot follows, `size` bytes in
    /// `SnapshotChunk`s, from byte `offset` on. An offset above 0 resumes a
    /// transfer the follower offered to resume (`StreamOpen::resume`).
    SnapshotBegin {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Its total size in bytes.
        size: u64,
        /// The first byte this stream carries: 0, or the `received` of the
        /// follower's resume offer.
        offset: u64,
    },
    /// Leader to follower: part of the snapshot.
    SnapshotChunk {
        /// Byte offset of `data` in the snapshot.
        offset: u64,
        /// The bytes.
        data: Bytes,
        /// CRC-32 (IEEE) of `data`.
        crc: u32,
    },
    /// Leader to follower: the snapshot is complete.
    SnapshotEnd {
        /// CRC-32 (IEEE) of the whole snapshot.
        crc: u32,
    },
    /// Follower to leader: every entry up to `durable` that this stream
    /// delivered, and everything before it, is durable on the follower.
    Ack {
        /// The follower's durable index, as validated by this stream.
        durable: LogIndex,
    },
    /// Follower to leader: how much of the snapshot in transfer has arrived,
    /// sent after every `SnapshotChunk` and at `SnapshotEnd`. Snapshot bytes
    /// count against the stream budget like entries; this frees them.
    SnapshotAck {
        /// Snapshot bytes received so far on this stream.
        received: u64,
        /// The snapshot's size, as its `SnapshotBegin` declared.
        size: u64,
    },
}

impl Frame {
    /// Bytes this frame costs against a stream budget.
    pub fn budget_bytes(&self) -> u64 {
        match self {
            Frame::Chunk { entries, .. } => {
                40 + entries.iter().map(LogEntry::budget_bytes).sum::<u64>()
            }
            Frame::SnapshotChunk { data, .. } => 24 + data.len() as u64,
            _ => 40,
        }
    }
}

impl fmt::Display for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageBody::PreVoteRequest {
                last_index,
                last_term,
            } => {
                write!(f, "PreVote last={last_index}/{last_term}")
            }
            MessageBody::PreVoteResponse { granted } => write!(f, "PreVoteResp granted={granted}"),
            MessageBody::VoteRequest {
                last_index,
                last_term,
                transfer,
            } => {
                write!(
                    f,
                    "Vote last={last_index}/{last_term}{}",
                    if *transfer { " transfer" } else { "" }
                )
            }
            MessageBody::VoteResponse { granted } => write!(f, "VoteResp granted={granted}"),
            MessageBody::Heartbeat { commit, round } => {
                write!(f, "Heartbeat commit={commit} round={round}")
            }
            MessageBody::HeartbeatResponse { round, streaming } => {
                write!(f, "HeartbeatResp round={round} streaming={streaming}")
            }
            MessageBody::TimeoutNow => write!(f, "TimeoutNow"),
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{} {} {}",
            self.from.0, self.to.0, self.term, self.body
        )
    }
}

impl fmt::Display for StreamOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{} Open {} probe={}/{} commit={}",
            self.follower.0,
            self.leader.0,
            self.term,
            self.probe_index,
            self.probe_term,
            self.commit
        )?;
        if let Some(r) = &self.resume {
            write!(f, " resume={}/{}@{}", r.index, r.term, r.received)?;
        }
        Ok(())
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Chunk {
                term,
                prev_index,
                prev_term,
                leader_commit,
                entries,
            } => {
                write!(
                    f,
                    "Chunk {term} prev={prev_index}/{prev_term} commit={leader_commit}"
                )?;
                match (entries.first(), entries.last()) {
                    (Some(a), Some(b)) => write!(f, " [{}..={}]", a.index, b.index),
                    _ => write!(f, " []"),
                }
            }
            Frame::SnapshotBegin { meta, size, offset } => {
                write!(f, "SnapshotBegin {meta} {size}B")?;
                if *offset > 0 {
                    write!(f, " resumed@{offset}")?;
                }
                Ok(())
            }
            Frame::SnapshotChunk { offset, data, .. } => {
                write!(f, "SnapshotChunk @{offset} {}B", data.len())
            }
            Frame::SnapshotEnd { crc } => write!(f, "SnapshotEnd crc={crc:08x}"),
            Frame::Ack { durable } => write!(f, "Ack durable={durable}"),
            Frame::SnapshotAck { received, size } => {
                write!(f, "SnapshotAck {received}/{size}B")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;

    fn command(index: u64, payload_bytes: usize) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(3),
            kind: EntryKind::Command,
            data: Bytes::from(vec![7; payload_bytes]),
        }
    }

    fn chunk(entries: Vec<LogEntry>) -> Frame {
        Frame::Chunk {
            term: Term(3),
            prev_index: LogIndex(9),
            prev_term: Term(3),
            leader_commit: LogIndex(9),
            entries: entries.into(),
        }
    }

    #[test]
    fn a_chunk_costs_a_frame_header_plus_what_its_entries_cost() {
        let header = chunk(Vec::new()).budget_bytes();
        // An empty chunk (a commit update) is in flight like any other.
        assert!(header > 0, "an empty chunk costs nothing");
        let entries = vec![command(10, 0), command(11, 300), command(12, 5)];
        let entries_bytes: u64 = entries.iter().map(LogEntry::budget_bytes).sum();
        assert_eq!(chunk(entries).budget_bytes(), header + entries_bytes);
    }

    #[test]
    fn a_snapshot_chunk_costs_a_frame_header_plus_its_bytes() {
        let snapshot_chunk = |len: usize| Frame::SnapshotChunk {
            offset: 4096,
            data: Bytes::from(vec![1; len]),
            crc: 0,
        };
        let header = snapshot_chunk(0).budget_bytes();
        assert!(header > 0, "an empty snapshot chunk costs nothing");
        for len in [1, 4096] {
            assert_eq!(snapshot_chunk(len).budget_bytes(), header + len as u64);
        }
    }
}
