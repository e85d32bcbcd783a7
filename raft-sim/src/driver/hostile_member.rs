//! The hostile member's plumbing in the world: which frames and datagrams
//! of node `i` it accompanies with forgeries (see [`crate::hostile`]).

use crate::hostile::{
    ABSURD_TERM_STEP, Attack, DATAGRAM_ATTACKS, FOLLOWER_FRAME_ATTACKS, LEADER_FRAME_ATTACKS,
};
use crate::trace::Fact;
use crate::world::{SimEvent, World, index_of};
use raft_core::{Frame, LogIndex, Message, MessageBody, SnapshotMeta, StreamId, Term};

impl<S: crate::service::Service> World<S> {
    fn hostile_active(&self, i: usize) -> bool {
        self.heal_at.is_none() && self.hostile.as_ref().is_some_and(|h| h.knobs.node == i)
    }

    /// Node `i` sends `frame` on `stream`: the hostile member may add to it.
    pub(crate) fn send_frame_of(&mut self, i: usize, stream: StreamId, frame: Frame) {
        if !self.hostile_active(i) {
            return self.send_frame_now(i, stream, frame);
        }
        let downstream = !matches!(frame, Frame::Ack { .. } | Frame::SnapshotAck { .. });
        let steps = self.hosts[i].steps;
        let h = self.hostile.as_mut().expect("active");
        let before = h.sent_end.get(&stream).copied();
        match &frame {
            Frame::Chunk {
                prev_index,
                prev_term,
                entries,
                ..
            } => {
                let end = entries
                    .last()
                    .map_or((*prev_index, *prev_term), |e| (e.index, e.term));
                h.sent_end.insert(stream, end);
            }
            Frame::SnapshotBegin { .. }
            | Frame::SnapshotChunk { .. }
            | Frame::SnapshotEnd { .. } => {
                h.sent_end.remove(&stream);
            }
            Frame::Ack { .. } | Frame::SnapshotAck { .. } => {}
        }
        let after = h.sent_end.get(&stream).copied();
        let attack = h.draw(if downstream {
            &LEADER_FRAME_ATTACKS
        } else {
            &FOLLOWER_FRAME_ATTACKS
        });
        // A frame held back on this stream goes out after this one.
        let overtaken = h.held.take_if(|(s, _, _)| *s == stream);
        if attack == Some(Attack::ReorderFrames) && overtaken.is_none() && h.held.is_none() {
            h.held = Some((stream, frame, steps));
            return;
        }
        match attack {
            None | Some(Attack::ReorderFrames) => self.send_frame_now(i, stream, frame),
            Some(Attack::DuplicateFrame) => {
                self.cover(Attack::DuplicateFrame.name());
                self.send_frame_now(i, stream, frame.clone());
                self.send_frame_now(i, stream, frame);
            }
            Some(a) => {
                // The committed-prefix rule is reached only by a chunk that
                // continues the stream, so that one goes before the real frame.
                let first = a == Attack::CommittedMismatch;
                if !first {
                    self.send_frame_now(i, stream, frame.clone());
                }
                let forged = self.forge_frames(i, stream, a, if first { before } else { after });
                if !forged.is_empty() {
                    self.cover(a.name());
                    let text = format!("hostile: {a:?} on {stream}");
                    self.trace.record(self.now, Some(i), Fact::Hostile, text);
                }
                for f in forged {
                    self.send_frame_now(i, stream, f);
                }
                if first {
                    self.send_frame_now(i, stream, frame);
                }
            }
        }
        if let Some((stream, held, _)) = overtaken {
            self.cover(Attack::ReorderFrames.name());
            self.send_frame_now(i, stream, held);
        }
    }

    /// The hostile member sends a frame it held back since an earlier step
    /// and no later frame of its stream overtook.
    pub(crate) fn flush_hostile(&mut self, i: usize) {
        let steps = self.hosts[i].steps;
        let held = match &mut self.hostile {
            Some(h) if h.knobs.node == i => h.held.take_if(|(_, _, at)| *at < steps),
            _ => None,
        };
        if let Some((stream, frame, _)) = held {
            self.send_frame_now(i, stream, frame);
        }
    }

    /// Remembers where a snapshot the hostile member streamed ends.
    pub(crate) fn hostile_snapshot_sent(
        &mut self,
        i: usize,
        stream: StreamId,
        meta: &SnapshotMeta,
    ) {
        if let Some(h) = self.hostile.as_mut().filter(|h| h.knobs.node == i) {
            h.sent_end.insert(stream, (meta.index, meta.term));
        }
    }

    /// Node `i` sent `msg`: the hostile member may send a forged datagram to
    /// the same receiver.
    pub(crate) fn hostile_datagram(&mut self, i: usize, msg: &Message) {
        if !self.hostile_active(i) {
            return;
        }
        let n = self.hosts.len();
        let Some(to) = index_of(msg.to, n) else {
            return;
        };
        let h = self.hostile.as_mut().expect("active");
        let Some(a) = h.draw(&DATAGRAM_ATTACKS) else {
            return;
        };
        let Some(peer) = self.hosts[to].node.as_ref() else {
            return;
        };
        let (term, last) = (peer.term(), peer.last_index());
        let leads = peer.role() == raft_core::Role::Leader;
        let follows_us = peer.leader() == Some(msg.from);
        let absurd = Term(term.0 + ABSURD_TERM_STEP);
        let (term, body) = match a {
            Attack::StaleHeartbeat if term.0 >= 2 => (
                Term(term.0 - 1),
                MessageBody::Heartbeat {
                    commit: LogIndex(last.0 + 1_000),
                    round: u64::MAX / 2,
                },
            ),
            Attack::ForeignTimeoutNow if !follows_us => (term, MessageBody::TimeoutNow),
            Attack::FutureRound if leads => (
                term,
                MessageBody::HeartbeatResponse {
                    round: u64::MAX / 2,
                    streaming: true,
                },
            ),
            Attack::AbsurdPreVote => (
                absurd,
                MessageBody::PreVoteRequest {
                    last_index: LogIndex(0),
                    last_term: Term(0),
                },
            ),
            Attack::AbsurdVote => (
                absurd,
                MessageBody::VoteRequest {
                    last_index: LogIndex(0),
                    last_term: Term(0),
                    transfer: false,
                },
            ),
            _ => return,
        };
        let forged = Message {
            term,
            body,
            ..msg.clone()
        };
        self.cover(a.name());
        let text = format!("hostile: {a:?} -> {forged}");
        self.trace.record(self.now, Some(i), Fact::Hostile, text);
        if let Ok(times) = self.net.send_datagram(i, to, self.now, &mut self.net_rng) {
            for at in times {
                self.schedule(
                    at,
                    SimEvent::Message {
                        from: i,
                        to,
                        msg: forged.clone(),
                    },
                );
            }
        }
    }

    /// The forged frames of attack `a` on `stream`, sent by node `i`.
    fn forge_frames(
        &mut self,
        i: usize,
        stream: StreamId,
        a: Attack,
        end: Option<(LogIndex, Term)>,
    ) -> Vec<Frame> {
        let Some((follower, leader)) = self.net.endpoints(stream) else {
            return Vec::new();
        };
        let Some(me) = self.hosts[i].node.as_ref() else {
            return Vec::new();
        };
        let other = if i == leader { follower } else { leader };
        let peer = self.hosts.get(other).and_then(|h| h.node.as_ref());
        let h = self.hostile.as_mut().expect("active");
        h.forge_frames(me, peer, a, end)
    }
}
