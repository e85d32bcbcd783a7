//! Targeted message control: rules a test sets on the world
//! ([`World::intercept`]) that pick datagrams and stream frames by `(from,
//! to, what)` and drop, duplicate, reorder, delay or hold them.
//!
//! A rule judges a datagram when it would arrive, and a stream frame when
//! it reaches the head of its direction and is due; the first rule that
//! answers `Some` decides, and a datagram or frame is judged once.
//!
//! **Datagrams** are best effort, so every treatment is one a real network
//! can produce: dropped; delivered twice in a row; held back until the next
//! datagram on the same link has been delivered, then delivered right after
//! it (reordered); delivered after a delay; or held until
//! [`World::release_held`].
//!
//! **Stream frames** travel on a stream that, like the TCP connection it
//! models, delivers its bytes once and in order or fails. So a rule may
//! *delay* or *hold* a frame, which delays or holds every frame behind it on
//! that direction, in order (a stalled connection); but a frame a rule
//! would *drop*, *duplicate* or *reorder* breaks the stream instead: the
//! frames in flight are lost and each side sees the stream closed after its
//! detection delay, as after any break. A stream never silently loses or
//! repeats a frame in the middle; the core must (and does) cope with a
//! broken stream by reopening one.

use crate::queue::SimEvent;
use crate::service::Service;
use crate::trace::{BreakCause, DropReason, Fact};
use crate::world::World;
use raft_core::{Duration, Frame, Instant, Message, StreamId};

/// What a rule does with a datagram or frame it picked (see the module doc
/// for how a stream frame is treated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Treatment {
    /// Lost (a stream frame: the stream breaks).
    Drop,
    /// Delivered twice (a stream frame: the stream breaks).
    Duplicate,
    /// Delivered after the next one on the same link (a stream frame: the
    /// stream breaks).
    Reorder,
    /// Delivered this much later (a stream frame: it and every frame behind
    /// it on its direction).
    Delay(Duration),
    /// Held until [`World::release_held`] (a stream frame: it and every
    /// frame behind it on its direction).
    Hold,
}

/// What a rule sees: a datagram or a stream frame.
#[derive(Clone, Copy, Debug)]
pub enum Packet<'a> {
    /// A datagram (votes, heartbeats, `TimeoutNow`).
    Message(&'a Message),
    /// A frame on a replication stream.
    Frame {
        /// The stream.
        stream: StreamId,
        /// The frame.
        frame: &'a Frame,
    },
}

/// A rule: `(from, to, packet)` (world indexes) to a treatment, or `None`
/// to leave it alone.
pub type Rule = Box<dyn FnMut(usize, usize, Packet<'_>) -> Option<Treatment>>;

impl<S: Service> World<S> {
    /// Adds `rule`, judged on every datagram and stream frame from now on
    /// (after the rules added before it) until [`World::clear_intercepts`].
    pub fn intercept(
        &mut self,
        rule: impl FnMut(usize, usize, Packet<'_>) -> Option<Treatment> + 'static,
    ) {
        self.rules.push(Box::new(rule));
    }

    /// Removes every rule added by [`World::intercept`] (what they hold stays
    /// held until [`World::release_held`]).
    pub fn clear_intercepts(&mut self) {
        self.rules.clear();
    }

    /// The first rule's verdict on `packet`.
    fn judge(&mut self, from: usize, to: usize, packet: Packet<'_>) -> Option<Treatment> {
        self.rules.iter_mut().find_map(|r| r(from, to, packet))
    }

    /// A datagram arrives (no hold of [`World::hold_datagrams`] took it):
    /// the rules judge it, then it is delivered or treated.
    pub(crate) fn arrive_datagram(&mut self, from: usize, to: usize, msg: Message) {
        let verdict = if self.rules.is_empty() {
            None
        } else {
            self.judge(from, to, Packet::Message(&msg))
        };
        let Some(treatment) = verdict else {
            return self.deliver_datagram(from, to, msg);
        };
        match treatment {
            Treatment::Drop => {
                let fact = Fact::dropped(from, &msg, DropReason::Rule);
                let text = format!("drop (rule) {msg}");
                return self.trace.record(self.now, Some(to), fact, text);
            }
            Treatment::Hold => {
                return self.hold_message(from, to, msg);
            }
            _ => {}
        }
        let fact = Fact::Intercepted {
            from,
            to,
            treatment,
        };
        let text = format!("rule {treatment:?} {msg}");
        self.trace.record(self.now, Some(to), fact, text);
        match treatment {
            Treatment::Duplicate => {
                self.deliver_datagram(from, to, msg.clone());
                self.deliver_datagram(from, to, msg);
            }
            Treatment::Reorder => self.reordered.push((from, to, msg)),
            Treatment::Delay(d) => {
                let at = Instant(self.now.0.saturating_add(d.as_nanos()));
                self.schedule(at, SimEvent::MessageLate { from, to, msg });
            }
            Treatment::Drop | Treatment::Hold => unreachable!("handled above"),
        }
    }

    /// Delivers a datagram (unless the path is cut now), then the datagrams
    /// a rule reordered behind it on the same link.
    pub(crate) fn deliver_datagram(&mut self, from: usize, to: usize, msg: Message) {
        if !self.net.path_up(from, to) {
            self.trace.record(
                self.now,
                Some(to),
                Fact::dropped(from, &msg, DropReason::PartitionedInFlight),
                format!("drop (partitioned in flight) {msg}"),
            );
        } else if self.hosts[to].node.is_some() {
            self.step_message(to, msg);
        }
        if self.reordered.is_empty() {
            return;
        }
        let (after, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reordered)
            .into_iter()
            .partition(|(f, t, _)| (*f, *t) == (from, to));
        self.reordered = rest;
        for (f, t, m) in after {
            self.deliver_datagram(f, t, m);
        }
    }

    /// The head of a stream direction is due: if a rule picks it, treats it
    /// and returns `true` (nothing is delivered now).
    pub(crate) fn judge_frame(
        &mut self,
        stream: StreamId,
        dir: crate::network::Dir,
        generation: u64,
    ) -> bool {
        let Some(due) = self.net.due_frame(stream, dir, generation) else {
            return false;
        };
        let (from, to) = (due.from, due.to);
        let packet = Packet::Frame {
            stream,
            frame: due.frame,
        };
        let Some(treatment) = self.rules.iter_mut().find_map(|r| r(from, to, packet)) else {
            return false;
        };
        let text = format!("rule {treatment:?} frame {stream} {}", due.frame);
        let fact = Fact::Intercepted {
            from,
            to,
            treatment,
        };
        self.trace.record(self.now, Some(to), fact, text);
        match treatment {
            Treatment::Hold => self.net.hold_lane(stream, dir),
            Treatment::Delay(d) => {
                let until = Instant(self.now.0.saturating_add(d.as_nanos()));
                let follow = self.net.delay_lane(stream, dir, until);
                self.schedule_net(follow);
            }
            Treatment::Drop | Treatment::Duplicate | Treatment::Reorder => {
                let follow = self.net.break_stream(stream, self.now, &mut self.net_rng);
                let fact = Fact::StreamBroken {
                    stream,
                    cause: BreakCause::Rule,
                };
                let text = format!("stream {stream} broke: a stream cannot {treatment:?} a frame");
                self.trace.record(self.now, None, fact, text);
                self.schedule_net(follow);
            }
        }
        true
    }
}
