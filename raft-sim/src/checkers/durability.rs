//! The driver contract checked against the simulated disk (SIMULATION §2.7):
//! whatever leaves a node is backed by durable state at that moment, and a
//! leader commits only a current-term entry that a quorum holds durably.

use super::Failure;
use super::log::LogMirror;
use crate::disk::{DurableAt, SimDisk};
use raft_core::{Frame, LogIndex, Message, MessageBody, StreamOpen, Term};

/// A datagram leaving `node`: its term is durable (pre-vote requests carry a
/// prospective term and are exempt); a granted vote is durable.
pub fn check_send(node: usize, msg: &Message, disk: &SimDisk) -> Result<(), Failure> {
    let hs = disk.hard_state();
    if !matches!(
        msg.body,
        MessageBody::PreVoteRequest { .. } | MessageBody::PreVoteResponse { .. }
    ) && hs.term < msg.term
    {
        return Err(Failure::safety(
            "durable-before-send",
            format!(
                "n{} sent {msg} while its durable term is {}",
                node + 1,
                hs.term
            ),
        ));
    }
    if let MessageBody::VoteResponse { granted: true } = msg.body {
        let durable = hs.term > msg.term || (hs.term == msg.term && hs.vote == Some(msg.to));
        if !durable {
            return Err(Failure::safety(
                "durable-before-send",
                format!(
                    "n{} granted a vote ({msg}) that is not durable (disk: {} vote {:?})",
                    node + 1,
                    hs.term,
                    hs.vote
                ),
            ));
        }
    }
    Ok(())
}

/// A stream handshake leaving a follower: its term is durable.
pub fn check_open(node: usize, open: &StreamOpen, disk: &SimDisk) -> Result<(), Failure> {
    if disk.hard_state().term < open.term {
        return Err(Failure::safety(
            "durable-before-send",
            format!(
                "n{} opened a stream ({open}) while its durable term is {}",
                node + 1,
                disk.hard_state().term
            ),
        ));
    }
    Ok(())
}

/// A frame leaving `node`: a chunk's term is durable; an ack names an index
/// whose entry is durable on this node.
pub fn check_frame(node: usize, frame: &Frame, disk: &SimDisk) -> Result<(), Failure> {
    match frame {
        Frame::Chunk { term, .. } if disk.hard_state().term < *term => Err(Failure::safety(
            "durable-before-send",
            format!(
                "n{} sent a chunk of {term} while its durable term is {}",
                node + 1,
                disk.hard_state().term
            ),
        )),
        Frame::Ack { durable }
            if durable.0 > 0 && disk.durable_at(*durable) == DurableAt::Missing =>
        {
            Err(Failure::safety(
                "ack-durable",
                format!(
                    "n{} acked {durable} but its durable log ends at {}",
                    node + 1,
                    disk.last_index()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// A leader of `term` advanced its commit index to `commit`: the entry there
/// has the leader's term (Raft §5.4.2) and a quorum of `voters` holds it
/// durably with the leader's digest right now.
pub fn check_leader_commit(
    node: usize,
    term: Term,
    commit: LogIndex,
    mirror: &LogMirror,
    voters: &[usize],
    disks: &[&SimDisk],
) -> Result<(), Failure> {
    let Some((entry_term, digest)) = mirror.at(commit) else {
        return Ok(()); // covered by the node's snapshot: nothing new to check
    };
    if entry_term != term {
        return Err(Failure::safety(
            "commit-rule",
            format!(
                "n{} leader of {term} advanced commit to {commit} whose entry has {entry_term}",
                node + 1
            ),
        ));
    }
    let holders = voters
        .iter()
        .filter(|&&v| match disks[v].durable_at(commit) {
            DurableAt::Entry { digest: d, .. } => d == digest,
            DurableAt::Covered => true,
            DurableAt::Missing => false,
        })
        .count();
    let quorum = voters.len() / 2 + 1;
    if holders < quorum {
        return Err(Failure::safety(
            "durable-quorum",
            format!(
                "n{} leader of {term} committed {commit} but only {holders} of {} voters hold it durably (quorum {quorum})",
                node + 1,
                voters.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{DiskEntry, DiskOp, DiskTiming};
    use crate::rng::{Ppm, SimRng, StreamKind};
    use bytes::Bytes;
    use raft_core::{ClusterId, EntryKind, HardState, Instant, LogEntry, NodeId};

    fn disk() -> SimDisk {
        SimDisk::new(DiskTiming {
            fsync_min_ns: 1,
            fsync_mean_ns: 1,
            slowdown: 1,
            torn_append: Ppm::NEVER,
        })
    }

    fn msg(term: u64, body: MessageBody) -> Message {
        Message {
            cluster_id: ClusterId(1),
            from: NodeId(1),
            to: NodeId(2),
            term: Term(term),
            body,
        }
    }

    #[test]
    fn a_vote_sent_before_it_is_durable_fails() {
        let mut d = disk();
        d.persist_hard_state(HardState {
            cluster_id: None,
            term: Term(3),
            vote: None,
        });
        let grant = msg(3, MessageBody::VoteResponse { granted: true });
        assert_eq!(
            check_send(0, &grant, &d).unwrap_err().checker,
            "durable-before-send"
        );
        d.persist_hard_state(HardState {
            cluster_id: None,
            term: Term(3),
            vote: Some(NodeId(2)),
        });
        assert!(check_send(0, &grant, &d).is_ok());
        let ahead = msg(
            4,
            MessageBody::Heartbeat {
                commit: LogIndex(0),
                round: 1,
            },
        );
        assert!(check_send(0, &ahead, &d).is_err());
        let prevote = msg(
            4,
            MessageBody::PreVoteRequest {
                last_index: LogIndex(0),
                last_term: Term(0),
            },
        );
        assert!(check_send(0, &prevote, &d).is_ok());
    }

    fn append(d: &mut SimDisk, mirror: &mut LogMirror, index: u64, term: u64, durable: bool) {
        let e = LogEntry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Nop,
            data: Bytes::new(),
        };
        let digest = mirror.append(std::slice::from_ref(&e)).unwrap()[0];
        let mut rng = SimRng::new(0, StreamKind::Disk);
        if let Some(f) = d.submit(
            DiskOp::Append(vec![DiskEntry { entry: e, digest }]),
            Instant(0),
            &mut rng,
        ) {
            if durable {
                d.complete_fsync(f.upto, f.at, &mut rng);
            }
        }
    }

    #[test]
    fn an_ack_of_a_non_durable_entry_fails() {
        let mut d = disk();
        let mut m = LogMirror::default();
        append(&mut d, &mut m, 1, 1, false);
        assert_eq!(
            check_frame(
                1,
                &Frame::Ack {
                    durable: LogIndex(1)
                },
                &d
            )
            .unwrap_err()
            .checker,
            "ack-durable"
        );
    }

    #[test]
    fn commit_without_durable_quorum_or_of_an_old_term_fails() {
        let (mut a, mut b, mut c) = (disk(), disk(), disk());
        let (mut ma, mut mb, mut mc) = (
            LogMirror::default(),
            LogMirror::default(),
            LogMirror::default(),
        );
        append(&mut a, &mut ma, 1, 2, true);
        append(&mut b, &mut mb, 1, 2, false);
        append(&mut c, &mut mc, 1, 2, false);
        let disks = [&a, &b, &c];
        let err =
            check_leader_commit(0, Term(2), LogIndex(1), &ma, &[0, 1, 2], &disks).unwrap_err();
        assert_eq!(err.checker, "durable-quorum");
        let err =
            check_leader_commit(0, Term(3), LogIndex(1), &ma, &[0, 1, 2], &disks).unwrap_err();
        assert_eq!(err.checker, "commit-rule");
        let mut b2 = disk();
        append(&mut b2, &mut LogMirror::default(), 1, 2, true);
        assert!(
            check_leader_commit(0, Term(2), LogIndex(1), &ma, &[0, 1, 2], &[&a, &b2, &c]).is_ok()
        );
    }
}
