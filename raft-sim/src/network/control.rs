//! A test's hand on the network: per-link bandwidth, and holding or
//! delaying one direction of a stream from the frame a rule picked on.
//!
//! A stream is FIFO: holding or delaying its head holds or delays every
//! frame behind it, in order, as a stalled TCP connection does. (Dropping,
//! duplicating or reordering a frame is not something an open stream does:
//! the world breaks the stream instead, see [`crate::intercept`].)

use super::{Dir, Item, Network, Schedule, State};
use raft_core::{Frame, Instant, StreamId};
use std::collections::VecDeque;

/// A bandwidth limit on one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Link {
    /// Bytes per second.
    pub(super) bytes_per_s: u64,
    /// When the link has finished transmitting what was sent on it so far.
    pub(super) free_at: Instant,
}

/// Nanoseconds to transmit `bytes` at `bytes_per_s` (0: unlimited).
pub(super) fn transmit_ns(bytes: u64, bytes_per_s: u64) -> u64 {
    if bytes_per_s == 0 {
        0
    } else {
        (bytes as u128 * 1_000_000_000 / bytes_per_s as u128) as u64
    }
}

/// The head frame of a stream direction that is due, as a test's rules see it.
#[derive(Debug)]
pub(crate) struct DueFrame<'a> {
    /// Sender.
    pub(crate) from: usize,
    /// Receiver.
    pub(crate) to: usize,
    /// The frame.
    pub(crate) frame: &'a Frame,
}

impl Network {
    /// Limits the directed link `from -> to` to `bytes_per_s` (0 lifts the
    /// limit). Every stream frame sent on it from now on takes `bytes /
    /// bytes_per_s` to transmit, after the frames sent on it before (on any
    /// stream between the two), and then the stream latency. Datagrams are
    /// not limited: votes and heartbeats are a few dozen bytes.
    pub fn set_link_bandwidth(&mut self, from: usize, to: usize, bytes_per_s: u64) {
        if bytes_per_s == 0 {
            self.links.remove(&(from, to));
            return;
        }
        let free_at = self
            .links
            .get(&(from, to))
            .map_or(Instant::ZERO, |l| l.free_at);
        let link = Link {
            bytes_per_s,
            free_at,
        };
        self.links.insert((from, to), link);
    }

    /// The bandwidth limit of link `from -> to`, if any.
    pub fn link_bandwidth(&self, from: usize, to: usize) -> Option<u64> {
        self.links.get(&(from, to)).map(|l| l.bytes_per_s)
    }

    /// The frame that the delivery `(stream, dir, generation)` would hand
    /// over now, if it is a frame no rule has judged yet (not a stale
    /// delivery, a stall, a close notice or a head already held or delayed).
    pub(crate) fn due_frame(
        &self,
        stream: StreamId,
        dir: Dir,
        generation: u64,
    ) -> Option<DueFrame<'_>> {
        let s = self.streams.get(&stream)?;
        let lane = &s.lanes[dir.index()];
        let (from, to) = s.endpoints(dir);
        if s.state == State::Dead
            || lane.generation != generation
            || lane.head_judged
            || !self.path_up(from, to)
        {
            return None;
        }
        match lane.queue.front() {
            Some((_, Item::Frame(frame))) => Some(DueFrame { from, to, frame }),
            _ => None,
        }
    }

    /// Holds direction `dir` of `stream` from its head on: nothing more is
    /// delivered on it until [`Network::release_lanes`].
    pub(crate) fn hold_lane(&mut self, stream: StreamId, dir: Dir) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        let lane = &mut s.lanes[dir.index()];
        lane.held = true;
        lane.head_judged = true;
        lane.scheduled = false;
        lane.generation += 1;
        self.held_lanes.push((stream, dir));
    }

    /// Delays direction `dir` of `stream`: its head arrives at `until` at the
    /// earliest, and every frame behind it after the head.
    pub(crate) fn delay_lane(&mut self, stream: StreamId, dir: Dir, until: Instant) -> Schedule {
        let Some(s) = self.streams.get_mut(&stream) else {
            return Vec::new();
        };
        let lane = &mut s.lanes[dir.index()];
        lane.head_judged = true;
        lane.scheduled = false;
        lane.generation += 1;
        shift_queue(&mut lane.queue, until);
        Self::schedule_head(stream, dir, lane).into_iter().collect()
    }

    /// Stream directions held and not released (on streams still alive).
    pub fn held_lane_count(&self) -> usize {
        self.held_lanes
            .iter()
            .filter(|(id, _)| self.streams.get(id).is_some_and(|s| s.state != State::Dead))
            .count()
    }

    /// Frames waiting in held directions (of streams still alive).
    pub fn held_frame_count(&self) -> usize {
        self.held_lanes
            .iter()
            .filter_map(|(id, dir)| self.streams.get(id).map(|s| (s, dir)))
            .filter(|(s, _)| s.state != State::Dead)
            .map(|(s, dir)| s.lanes[dir.index()].queue.len())
            .sum()
    }

    /// Releases every held direction: its frames flow again from `now`, in
    /// order. Returns how many directions, and their deliveries.
    pub(crate) fn release_lanes(&mut self, now: Instant) -> (usize, Schedule) {
        let mut out = Vec::new();
        let mut count = 0;
        for (stream, dir) in std::mem::take(&mut self.held_lanes) {
            let Some(s) = self.streams.get_mut(&stream) else {
                continue;
            };
            let lane = &mut s.lanes[dir.index()];
            if s.state == State::Dead || !lane.held {
                continue;
            }
            count += 1;
            lane.held = false;
            shift_queue(&mut lane.queue, now);
            out.extend(Self::schedule_head(stream, dir, lane));
        }
        (count, out)
    }
}

/// Moves every item of `queue` to `from` or later, keeping their order.
fn shift_queue(queue: &mut VecDeque<(Instant, Item)>, from: Instant) {
    let mut at = from;
    for (t, _) in queue.iter_mut() {
        at = at.max(*t);
        *t = at;
    }
}
