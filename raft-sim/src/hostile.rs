//! The hostile member: one node runs the real core, and with each frame or
//! message it sends, the simulator may send a forged one in its name that
//! breaks a protocol rule a correct receiver can check (issue 8, item 14).
//!
//! Every attack is something a receiver must *refuse*, never something it
//! cannot tell from honest behaviour: a voter lying about its durable log, or
//! a leader sending well-formed entries with the wrong payload, is Byzantine
//! and out of Raft's model, so the nemesis never does that. Forged entries and
//! snapshots carry [`FORGED`] as their payload, so the oracle that matters is
//! direct: no node ever appends or installs it. Beyond that the usual oracles
//! keep watching (no panic, election safety, log matching, linearizability),
//! plus the per-message rules the world checks on every datagram. The attacks stop at
//! the heal, and the liveness phase judges that the cluster recovers.

use crate::rng::SimRng;
use crate::scenario::HostileKnobs;
use bytes::Bytes;
use raft_core::{EntryKind, Frame, LogEntry, LogIndex, Node, SnapshotMeta, StreamId, Term};
use std::collections::BTreeMap;

/// The payload of every entry and snapshot the hostile member forges.
pub const FORGED: &[u8] = b"forged by the hostile member";

/// How far beyond a receiver's term the absurd-term requests reach.
pub const ABSURD_TERM_STEP: u64 = 1_000_000;

/// How far beyond a log's end forged indexes reach: far enough that the log
/// cannot grow there while the forged frame is in flight (an ack just beyond
/// the leader's log when sent may be within it when it arrives, and then it is
/// an undetectable lie about durability, not a malformed frame).
pub const ABSURD_INDEX_STEP: u64 = 1 << 40;

/// One kind of forged frame or message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    /// Leader: a chunk continuing the stream with an entry of a later term than the stream's.
    FutureTermEntry,
    /// Leader: a chunk continuing the stream whose entry's term is below `prev_term`.
    DecreasingTerms,
    /// Leader: a chunk whose `prev` lies beyond the leader's own log.
    PrevBeyondLog,
    /// Leader: a chunk whose `prev` is the receiver's committed index with a
    /// lower term, followed by entries of that term (issue 8 item 3's panic).
    CommittedMismatch,
    /// Leader: an empty chunk continuing the stream with a commit index beyond
    /// the leader's log (sent only while everything sent is committed, so a
    /// receiver that bounds commit by what it validated stays correct).
    CommitBeyondLog,
    /// Leader: a snapshot of the receiver's committed index with forged data.
    OverlappingSnapshot,
    /// Leader: an `Ack` sent down to a follower.
    AckDownstream,
    /// Leader or follower: the frame just sent, again.
    DuplicateFrame,
    /// Leader or follower: the frame held back and sent after the next one.
    ReorderFrames,
    /// Follower: an ack beyond the leader's whole log.
    AckBeyondLog,
    /// Follower: a chunk sent up to the leader.
    ChunkUpstream,
    /// A heartbeat of a term below the receiver's, with commit and round far ahead.
    StaleHeartbeat,
    /// `TimeoutNow` to a node that does not follow us.
    ForeignTimeoutNow,
    /// To a leader: an answer to a heartbeat round it never sent.
    FutureRound,
    /// A pre-vote request at an absurd term with an empty log.
    AbsurdPreVote,
    /// A vote request at an absurd term with an empty log.
    AbsurdVote,
}

impl Attack {
    /// Frame attacks of a leader, datagram attacks, and so on, as coverage names.
    pub fn name(self) -> &'static str {
        match self {
            Attack::FutureTermEntry => "hostile: entry of a later term than its chunk",
            Attack::DecreasingTerms => "hostile: entry terms decreasing",
            Attack::PrevBeyondLog => "hostile: prev beyond the log",
            Attack::CommittedMismatch => "hostile: prev term contradicting a committed entry",
            Attack::CommitBeyondLog => "hostile: commit beyond the log",
            Attack::OverlappingSnapshot => "hostile: snapshot overlapping the committed log",
            Attack::AckDownstream => "hostile: ack sent to a follower",
            Attack::DuplicateFrame => "hostile: frame duplicated",
            Attack::ReorderFrames => "hostile: frames reordered",
            Attack::AckBeyondLog => "hostile: ack beyond the leader's log",
            Attack::ChunkUpstream => "hostile: chunk sent to the leader",
            Attack::StaleHeartbeat => "hostile: heartbeat of a stale term",
            Attack::ForeignTimeoutNow => "hostile: TimeoutNow to a node that does not follow it",
            Attack::FutureRound => "hostile: answer to a round never sent",
            Attack::AbsurdPreVote => "hostile: pre-vote at an absurd term",
            Attack::AbsurdVote => "hostile: vote request at an absurd term",
        }
    }

    /// Every attack, for coverage goals.
    pub const ALL: [Attack; 16] = [
        Attack::FutureTermEntry,
        Attack::DecreasingTerms,
        Attack::PrevBeyondLog,
        Attack::CommittedMismatch,
        Attack::CommitBeyondLog,
        Attack::OverlappingSnapshot,
        Attack::AckDownstream,
        Attack::DuplicateFrame,
        Attack::ReorderFrames,
        Attack::AckBeyondLog,
        Attack::ChunkUpstream,
        Attack::StaleHeartbeat,
        Attack::ForeignTimeoutNow,
        Attack::FutureRound,
        Attack::AbsurdPreVote,
        Attack::AbsurdVote,
    ];
}

pub(crate) const LEADER_FRAME_ATTACKS: [Attack; 9] = [
    Attack::FutureTermEntry,
    Attack::DecreasingTerms,
    Attack::PrevBeyondLog,
    Attack::CommittedMismatch,
    Attack::CommitBeyondLog,
    Attack::OverlappingSnapshot,
    Attack::AckDownstream,
    Attack::DuplicateFrame,
    Attack::ReorderFrames,
];

pub(crate) const FOLLOWER_FRAME_ATTACKS: [Attack; 4] = [
    Attack::AckBeyondLog,
    Attack::ChunkUpstream,
    Attack::DuplicateFrame,
    Attack::ReorderFrames,
];

pub(crate) const DATAGRAM_ATTACKS: [Attack; 5] = [
    Attack::StaleHeartbeat,
    Attack::ForeignTimeoutNow,
    Attack::FutureRound,
    Attack::AbsurdPreVote,
    Attack::AbsurdVote,
];

/// The hostile member's state during a run.
pub struct Hostile {
    /// Its knobs.
    pub knobs: HostileKnobs,
    rng: SimRng,
    /// Per stream it leads: the index and term the last chunk (or snapshot) ended at.
    pub(crate) sent_end: BTreeMap<StreamId, (LogIndex, Term)>,
    /// A frame held back to go out after the next one of its stream, and the
    /// step (of the node) that held it.
    pub(crate) held: Option<(StreamId, Frame, u64)>,
}

impl Hostile {
    /// The hostile member of `knobs`, drawing from `rng`.
    pub fn new(knobs: HostileKnobs, rng: SimRng) -> Hostile {
        Hostile {
            knobs,
            rng,
            sent_end: BTreeMap::new(),
            held: None,
        }
    }

    pub(crate) fn draw(&mut self, from: &[Attack]) -> Option<Attack> {
        if !self.rng.chance(self.knobs.rate) {
            return None;
        }
        Some(*self.rng.pick(from))
    }

    /// The forged frames of attack `a` from node `me` on a stream whose
    /// other end is `peer` and whose last chunk ended at `end`; empty when
    /// the state at hand does not allow it.
    pub(crate) fn forge_frames(
        &mut self,
        me: &Node,
        peer: Option<&Node>,
        a: Attack,
        end: Option<(LogIndex, Term)>,
    ) -> Vec<Frame> {
        let (term, commit, last) = (me.term(), me.commit_index(), me.last_index());
        let r = &mut self.rng;
        let chunk = |prev: (LogIndex, Term), leader_commit, entries: Vec<LogEntry>| Frame::Chunk {
            term,
            prev_index: prev.0,
            prev_term: prev.1,
            leader_commit,
            entries: entries.into(),
        };
        match a {
            Attack::FutureTermEntry => end
                .map(|e| chunk(e, commit, vec![forged_entry(e.0.next(), term.next())]))
                .into_iter()
                .collect(),
            Attack::DecreasingTerms => end
                .filter(|e| e.1.0 >= 2)
                .map(|e| chunk(e, commit, vec![forged_entry(e.0.next(), Term(e.1.0 - 1))]))
                .into_iter()
                .collect(),
            Attack::PrevBeyondLog => {
                let prev = LogIndex(last.0 + ABSURD_INDEX_STEP + r.below(50));
                vec![chunk(
                    (prev, term),
                    prev.next(),
                    vec![forged_entry(prev.next(), term)],
                )]
            }
            Attack::CommittedMismatch => peer
                .map(|p| committed_mismatch(p, end, term))
                .unwrap_or_default(),
            Attack::CommitBeyondLog => match end {
                Some(e) if e.0 <= commit => {
                    vec![chunk(e, LogIndex(last.0 + ABSURD_INDEX_STEP), Vec::new())]
                }
                _ => Vec::new(),
            },
            Attack::OverlappingSnapshot => peer.map(overlapping_snapshot).unwrap_or_default(),
            Attack::AckDownstream => vec![Frame::Ack {
                durable: end.map_or(LogIndex(0), |e| e.0),
            }],
            Attack::AckBeyondLog => {
                let Some(p) = peer else { return Vec::new() };
                vec![Frame::Ack {
                    durable: LogIndex(p.last_index().0 + ABSURD_INDEX_STEP + r.below(100)),
                }]
            }
            Attack::ChunkUpstream => vec![chunk(
                (LogIndex(0), Term(0)),
                LogIndex(0),
                vec![forged_entry(LogIndex(1), term)],
            )],
            _ => Vec::new(),
        }
    }
}

fn forged_entry(index: LogIndex, term: Term) -> LogEntry {
    LogEntry {
        index,
        term,
        kind: EntryKind::Command,
        data: Bytes::from_static(FORGED),
    }
}

/// Whether `entries` hold an entry the hostile member forged.
pub fn holds_forged(entries: &[LogEntry]) -> bool {
    entries.iter().any(|e| e.data.as_ref() == FORGED)
}

/// A chunk that continues the stream (or opens it), so it reaches the
/// committed-prefix rule, with entries of a wrong term from there to just
/// beyond the peer's commit index.
fn committed_mismatch(p: &Node, end: Option<(LogIndex, Term)>, term: Term) -> Vec<Frame> {
    let c = p.commit_index();
    let Some(tc) = p.term_at(c).filter(|t| t.0 >= 2) else {
        return Vec::new();
    };
    let from = match end {
        None => c,
        Some((e, _)) if e <= c && c.0 - e.0 < 64 => e,
        Some(_) => return Vec::new(),
    };
    let wrong = Term(tc.0 - 1);
    let entries = (from.0 + 1..=c.0 + 1)
        .map(|x| forged_entry(LogIndex(x), wrong))
        .collect();
    vec![Frame::Chunk {
        term,
        prev_index: from,
        prev_term: wrong,
        leader_commit: c.next(),
        entries,
    }]
}

/// A forged snapshot of the peer's committed prefix.
fn overlapping_snapshot(p: &Node) -> Vec<Frame> {
    let c = p.commit_index();
    let config = p.config().clone();
    let Some(tc) = p.term_at(c) else {
        return Vec::new();
    };
    if config.index > c || c.0 == 0 {
        return Vec::new();
    }
    let data = Bytes::from_static(FORGED);
    let meta = SnapshotMeta {
        index: c,
        term: tc,
        config,
    };
    raft_core::wire::snapshot_frames(&meta, &data, data.len().max(1))
}
