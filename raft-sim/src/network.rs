//! The simulated network: a connectivity matrix shared by best-effort
//! datagrams and TCP-like replication streams.
//!
//! * **Datagrams** may be dropped, duplicated (the copy with its own delay) and
//!   delayed (`min + exponential(mean)`, with a rare long tail); reordering
//!   follows from independent delays. A blocked path drops at send and at
//!   delivery.
//! * **Streams** open after one latency if the path is up and the leader is up
//!   (else the follower hears `StreamClosed` after a connect timeout, or after a
//!   round trip when the leader is down). Each direction is FIFO and lossless
//!   while open, with a bandwidth model (`link_free_at`). A blocked path
//!   *stalls* a direction; a stall longer than `stream_break_after_ns` breaks
//!   the stream. A break (also at random per frame, or a crash of one end)
//!   loses the frames in flight and each side learns of it after its own
//!   detection delay: half-open streams are part of the model. A close is a
//!   FIN queued behind the closer's frames.
//!
//! The network never pushes into the event queue itself: its methods return
//! `(Instant, NetEvent)` pairs for the world to schedule, and the world calls
//! back when they fire.

use crate::rng::{Ppm, SimRng};
use raft_core::{Frame, Instant, StreamId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

pub mod control;

/// Network dials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetKnobs {
    /// Least datagram delay.
    pub delay_min_ns: u64,
    /// Mean of the exponential part of a datagram delay.
    pub delay_mean_ns: u64,
    /// Chance a datagram takes the long tail (50–100× the mean).
    pub tail: Ppm,
    /// Chance a datagram is lost.
    pub drop: Ppm,
    /// Chance a datagram is duplicated.
    pub duplicate: Ppm,
    /// One-way latency of a stream.
    pub stream_latency_ns: u64,
    /// Stream bandwidth per direction (0: unlimited).
    pub bandwidth_bytes_per_s: u64,
    /// How long an open attempt over a blocked path waits before failing.
    pub connect_timeout_ns: u64,
    /// A stall longer than this breaks the stream.
    pub stream_break_after_ns: u64,
    /// Chance that a frame send breaks its stream.
    pub stream_break: Ppm,
    /// Least time for one side to notice a break.
    pub detect_min_ns: u64,
    /// Greatest time for one side to notice a break.
    pub detect_max_ns: u64,
}

impl Default for NetKnobs {
    fn default() -> NetKnobs {
        NetKnobs {
            delay_min_ns: 200_000,
            delay_mean_ns: 1_000_000,
            tail: Ppm(1_000),
            drop: Ppm(10_000),
            duplicate: Ppm(5_000),
            stream_latency_ns: 500_000,
            bandwidth_bytes_per_s: 100_000_000,
            connect_timeout_ns: 200_000_000,
            stream_break_after_ns: 1_000_000_000,
            stream_break: Ppm(200),
            detect_min_ns: 1_000_000,
            detect_max_ns: 300_000_000,
        }
    }
}

/// A stream direction: follower to leader (acks) or leader to follower (chunks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    /// Follower → leader.
    Up,
    /// Leader → follower.
    Down,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::Up => 0,
            Dir::Down => 1,
        }
    }
}

/// Something the network needs to happen later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A stream's open attempt reaches the leader.
    Connect {
        /// The stream.
        stream: StreamId,
    },
    /// The head of a direction's queue is due.
    DeliverFrame {
        /// The stream.
        stream: StreamId,
        /// Which direction.
        dir: Dir,
        /// Invalidates deliveries scheduled before a stall or break.
        generation: u64,
    },
    /// Check whether a direction is still stalled (and break it if so).
    StallCheck {
        /// The stream.
        stream: StreamId,
        /// Which direction.
        dir: Dir,
        /// The generation the stall began in.
        generation: u64,
    },
    /// Tell `node` (if still the same incarnation) that `stream` is closed.
    Closed {
        /// The stream.
        stream: StreamId,
        /// The endpoint told.
        node: usize,
        /// The incarnation of that endpoint the stream belonged to.
        incarnation: u64,
    },
}

/// One item in a direction's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Frame(Frame),
    Fin,
}

#[derive(Clone, Debug, Default)]
struct Lane {
    queue: VecDeque<(Instant, Item)>,
    link_free_at: Instant,
    /// A delivery event for the head is in the event queue.
    scheduled: bool,
    stalled: bool,
    generation: u64,
    /// Held by a test's rule: nothing is delivered until released.
    held: bool,
    /// The head was already judged by the test's rules (held or delayed).
    head_judged: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    /// Broken or fully closed: nothing more is delivered.
    Dead,
}

#[derive(Clone, Debug)]
struct SimStream {
    follower: usize,
    leader: usize,
    /// Incarnations of (follower, leader) this stream belongs to.
    incarnation: [u64; 2],
    state: State,
    lanes: [Lane; 2],
    /// Whether each side (follower, leader) has closed or been told it is closed.
    done: [bool; 2],
}

impl SimStream {
    fn endpoints(&self, dir: Dir) -> (usize, usize) {
        match dir {
            Dir::Up => (self.follower, self.leader),
            Dir::Down => (self.leader, self.follower),
        }
    }
    fn side_of(&self, node: usize) -> usize {
        if node == self.follower { 0 } else { 1 }
    }
}

/// What a delivery produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Deliver `frame` to `node` (incarnation `incarnation`).
    Frame {
        /// The receiver.
        node: usize,
        /// Its incarnation.
        incarnation: u64,
        /// The frame.
        frame: Frame,
    },
    /// The other side's close reached `node`.
    Closed {
        /// The receiver.
        node: usize,
        /// Its incarnation.
        incarnation: u64,
    },
    /// Nothing to deliver (stale event, stall).
    Nothing,
}

/// The network of one world.
#[derive(Clone, Debug)]
pub struct Network {
    n: usize,
    knobs: NetKnobs,
    /// `blocked[from * n + to]`: packets from `from` to `to` are lost.
    blocked: Vec<bool>,
    streams: BTreeMap<StreamId, SimStream>,
    /// Per directed link `(from, to)` bandwidth limits (see [`control`]).
    links: BTreeMap<(usize, usize), control::Link>,
    /// Stream directions held by a test's rule, in the order they were held.
    held_lanes: Vec<(StreamId, Dir)>,
}

/// Scheduled follow-ups.
pub type Schedule = Vec<(Instant, NetEvent)>;

/// One scheduled follow-up.
pub type FollowUp = (Instant, NetEvent);

/// A frame put on a stream: its receiver, its size and the follow-ups.
pub(crate) struct Put {
    pub(crate) to: usize,
    pub(crate) bytes: u64,
    /// The delivery of the lane's head, if this frame made it due. (Not
    /// in `follow`: a `Vec` of one per frame was a sweep's most frequent
    /// allocation.)
    pub(crate) head: Option<FollowUp>,
    /// The follow-ups of a random break (rare; empty otherwise).
    pub(crate) follow: Schedule,
}

impl Network {
    /// A fully connected network of `n` nodes.
    pub fn new(n: usize, knobs: NetKnobs) -> Network {
        Network {
            n,
            knobs,
            blocked: vec![false; n * n],
            streams: BTreeMap::new(),
            links: BTreeMap::new(),
            held_lanes: Vec::new(),
        }
    }

    /// Wires one more node in, reachable from and reaching every node
    /// (existing cuts among the others are kept).
    pub fn add_node(&mut self) {
        let (old, n) = (self.n, self.n + 1);
        let mut blocked = vec![false; n * n];
        for from in 0..old {
            for to in 0..old {
                blocked[from * n + to] = self.blocked[from * old + to];
            }
        }
        self.n = n;
        self.blocked = blocked;
    }

    /// The dials.
    pub fn knobs(&self) -> &NetKnobs {
        &self.knobs
    }

    /// Replaces the dials (the liveness phase calms the network).
    pub fn set_knobs(&mut self, knobs: NetKnobs) {
        self.knobs = knobs;
    }

    /// Whether packets from `from` reach `to`.
    pub fn path_up(&self, from: usize, to: usize) -> bool {
        from == to || !self.blocked[from * self.n + to]
    }

    /// Number of live (not dead) streams, for bounds.
    pub fn stream_count(&self) -> usize {
        self.streams
            .values()
            .filter(|s| s.state != State::Dead)
            .count()
    }

    /// Sets the connectivity; stalled lanes whose path is up again resume.
    pub fn set_blocked(&mut self, blocked: Vec<bool>, now: Instant) -> Schedule {
        assert_eq!(blocked.len(), self.n * self.n);
        self.blocked = blocked;
        let mut out = Vec::new();
        let latency = self.knobs.stream_latency_ns;
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in ids {
            for dir in [Dir::Up, Dir::Down] {
                let s = &self.streams[&id];
                let (from, to) = s.endpoints(dir);
                if s.state == State::Dead
                    || !s.lanes[dir.index()].stalled
                    || !self.path_up(from, to)
                {
                    continue;
                }
                let lane = &mut self.streams.get_mut(&id).expect("listed").lanes[dir.index()];
                lane.stalled = false;
                lane.generation += 1;
                // Retransmission after the heal: the queue drains from now on.
                let mut at = Instant(now.0 + latency);
                for (t, _) in lane.queue.iter_mut() {
                    at = at.max(*t);
                    *t = at;
                }
                if lane.held {
                    continue;
                }
                if let Some((head_at, _)) = lane.queue.front() {
                    lane.scheduled = true;
                    out.push((
                        *head_at,
                        NetEvent::DeliverFrame {
                            stream: id,
                            dir,
                            generation: lane.generation,
                        },
                    ));
                }
            }
        }
        out
    }

    /// Delivery times for one datagram from `from` to `to` (none if lost, two if
    /// duplicated), or the reason it was dropped.
    pub fn send_datagram(
        &self,
        from: usize,
        to: usize,
        now: Instant,
        rng: &mut SimRng,
    ) -> Result<Vec<Instant>, &'static str> {
        if !self.path_up(from, to) {
            return Err("partitioned");
        }
        if rng.chance(self.knobs.drop) {
            return Err("lost");
        }
        let mut times = vec![Instant(now.0 + self.datagram_delay(rng))];
        if rng.chance(self.knobs.duplicate) {
            times.push(Instant(now.0 + self.datagram_delay(rng)));
        }
        Ok(times)
    }

    fn datagram_delay(&self, rng: &mut SimRng) -> u64 {
        let k = &self.knobs;
        let mut d = k.delay_min_ns + rng.exponential_ns(k.delay_mean_ns);
        if rng.chance(k.tail) {
            d += k.delay_mean_ns.max(1) * rng.between(50, 100);
        }
        d
    }

    /// A follower (`follower`, incarnation `follower_inc`) opens `stream` to
    /// `leader`; `leader_up` says whether the leader process is running.
    pub fn open_stream(
        &mut self,
        stream: StreamId,
        (follower, follower_inc): (usize, u64),
        (leader, leader_inc): (usize, Option<u64>),
        now: Instant,
    ) -> Result<Schedule, String> {
        if self.streams.contains_key(&stream) {
            return Err(format!("stream id {stream} reused"));
        }
        let mut s = SimStream {
            follower,
            leader,
            incarnation: [follower_inc, leader_inc.unwrap_or(0)],
            state: State::Connecting,
            lanes: Default::default(),
            done: [false, false],
        };
        let k = &self.knobs;
        let out = if !self.path_up(follower, leader) || !self.path_up(leader, follower) {
            s.state = State::Dead;
            s.done[1] = true;
            vec![(
                Instant(now.0 + k.connect_timeout_ns),
                NetEvent::Closed {
                    stream,
                    node: follower,
                    incarnation: follower_inc,
                },
            )]
        } else if leader_inc.is_none() {
            s.state = State::Dead;
            s.done[1] = true;
            vec![(
                Instant(now.0 + 2 * k.stream_latency_ns),
                NetEvent::Closed {
                    stream,
                    node: follower,
                    incarnation: follower_inc,
                },
            )]
        } else {
            vec![(
                Instant(now.0 + k.stream_latency_ns),
                NetEvent::Connect { stream },
            )]
        };
        self.streams.insert(stream, s);
        Ok(out)
    }

    /// The open attempt arrives: on success returns the leader endpoint and
    /// incarnation for `StreamOpened`; on failure schedules the follower's close.
    pub fn connect(
        &mut self,
        stream: StreamId,
        leader_inc_now: Option<u64>,
        now: Instant,
    ) -> (Option<(usize, u64)>, Schedule) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return (None, Vec::new());
        };
        if s.state != State::Connecting {
            return (None, Vec::new());
        }
        let path = !self.blocked[s.follower * self.n + s.leader] || s.follower == s.leader;
        if path && leader_inc_now == Some(s.incarnation[1]) && !s.done[0] {
            s.state = State::Open;
            return (Some((s.leader, s.incarnation[1])), Vec::new());
        }
        s.state = State::Dead;
        s.done[1] = true;
        let mut out = Vec::new();
        if !s.done[0] {
            s.done[0] = true;
            let delay = if path {
                self.knobs.stream_latency_ns
            } else {
                self.knobs.connect_timeout_ns
            };
            out.push((
                Instant(now.0 + delay),
                NetEvent::Closed {
                    stream,
                    node: s.follower,
                    incarnation: s.incarnation[0],
                },
            ));
        }
        (None, out)
    }

    /// `from` writes `frame` on `stream`. A frame on a dead or unknown stream is
    /// dropped (returns the reason); a random break may hit the stream.
    pub fn send_frame(
        &mut self,
        stream: StreamId,
        from: usize,
        frame: Frame,
        now: Instant,
        rng: &mut SimRng,
    ) -> Result<Schedule, &'static str> {
        self.put_frame(stream, from, frame, now, rng).map(|put| {
            let mut follow = put.follow;
            follow.extend(put.head);
            follow
        })
    }

    /// [`Network::send_frame`], also saying to whom and how many bytes (for
    /// the trace, without a second lookup or a second pass over the entries).
    pub(crate) fn put_frame(
        &mut self,
        stream: StreamId,
        from: usize,
        frame: Frame,
        now: Instant,
        rng: &mut SimRng,
    ) -> Result<Put, &'static str> {
        let (stream_break, latency_ns) = (self.knobs.stream_break, self.knobs.stream_latency_ns);
        let bandwidth = self.knobs.bandwidth_bytes_per_s;
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err("unknown stream");
        };
        match s.state {
            State::Dead => return Err("stream dead"),
            State::Connecting => return Err("stream not open yet"),
            State::Open => {}
        }
        let dir = if from == s.follower {
            Dir::Up
        } else {
            Dir::Down
        };
        if s.done[s.side_of(from)] {
            return Err("sender closed the stream");
        }
        let ends = s.endpoints(dir);
        let bytes = frame.budget_bytes();
        if rng.chance(stream_break) {
            let follow = self.break_stream(stream, now, rng);
            return Ok(Put {
                to: ends.1,
                bytes,
                head: None,
                follow,
            });
        }
        let lane = &mut s.lanes[dir.index()];
        let mut tx_ns = control::transmit_ns(bytes, bandwidth);
        let mut start = lane.link_free_at.max(now);
        // A limited link carries every stream between its two ends: a frame
        // waits for the frames sent before it on any of them.
        if let Some(link) = self.links.get_mut(&ends) {
            start = start.max(link.free_at);
            tx_ns = tx_ns.max(control::transmit_ns(bytes, link.bytes_per_s));
            link.free_at = Instant(start.0 + tx_ns);
        }
        lane.link_free_at = Instant(start.0 + tx_ns);
        let mut at = Instant(lane.link_free_at.0 + latency_ns);
        if let Some((last, _)) = lane.queue.back() {
            at = at.max(*last);
        }
        lane.queue.push_back((at, Item::Frame(frame)));
        Ok(Put {
            to: ends.1,
            bytes,
            head: Self::schedule_head(stream, dir, lane),
            follow: Vec::new(),
        })
    }

    /// The delivery of the lane's head, unless one is scheduled already or
    /// the lane waits (stalled, held, empty).
    fn schedule_head(stream: StreamId, dir: Dir, lane: &mut Lane) -> Option<FollowUp> {
        if lane.scheduled || lane.stalled || lane.held {
            return None;
        }
        let (at, _) = lane.queue.front()?;
        lane.scheduled = true;
        Some((
            *at,
            NetEvent::DeliverFrame {
                stream,
                dir,
                generation: lane.generation,
            },
        ))
    }

    /// The head of a lane is due: deliver it, or stall if the path is blocked.
    pub fn deliver(
        &mut self,
        stream: StreamId,
        dir: Dir,
        generation: u64,
        now: Instant,
    ) -> (Delivery, Schedule) {
        let (delivery, follow) = self.deliver_one(stream, dir, generation, now);
        (delivery, follow.into_iter().collect())
    }

    /// [`Network::deliver`], whose follow-up is one at most: without a
    /// `Vec` per frame delivered.
    pub(crate) fn deliver_one(
        &mut self,
        stream: StreamId,
        dir: Dir,
        generation: u64,
        now: Instant,
    ) -> (Delivery, Option<FollowUp>) {
        let n = self.n;
        let break_after = self.knobs.stream_break_after_ns;
        let Some(s) = self.streams.get_mut(&stream) else {
            return (Delivery::Nothing, None);
        };
        let (from, to) = s.endpoints(dir);
        let blocked = from != to && self.blocked[from * n + to];
        let to_side = s.side_of(to);
        let to_inc = s.incarnation[to_side];
        let lane = &mut s.lanes[dir.index()];
        if s.state == State::Dead || generation != lane.generation {
            return (Delivery::Nothing, None);
        }
        lane.scheduled = false;
        if blocked {
            lane.stalled = true;
            lane.generation += 1;
            let check = NetEvent::StallCheck {
                stream,
                dir,
                generation: lane.generation,
            };
            return (
                Delivery::Nothing,
                Some((Instant(now.0 + break_after), check)),
            );
        }
        let Some((_, item)) = lane.queue.pop_front() else {
            return (Delivery::Nothing, None);
        };
        lane.head_judged = false;
        let follow = Self::schedule_head(stream, dir, lane);
        let delivery = match item {
            Item::Frame(frame) => Delivery::Frame {
                node: to,
                incarnation: to_inc,
                frame,
            },
            Item::Fin => {
                s.done[to_side] = true;
                if s.done == [true, true] {
                    s.state = State::Dead;
                }
                Delivery::Closed {
                    node: to,
                    incarnation: to_inc,
                }
            }
        };
        (delivery, follow)
    }

    /// A stall check fires: if the lane is still stalled since then, break the stream.
    pub fn stall_check(
        &mut self,
        stream: StreamId,
        dir: Dir,
        generation: u64,
        now: Instant,
        rng: &mut SimRng,
    ) -> Schedule {
        let still = self.streams.get(&stream).is_some_and(|s| {
            s.state != State::Dead
                && s.lanes[dir.index()].stalled
                && s.lanes[dir.index()].generation == generation
        });
        if still {
            self.break_stream(stream, now, rng)
        } else {
            Vec::new()
        }
    }

    /// `by` closes the stream: a FIN follows its queued frames; the other
    /// direction's frames are discarded.
    pub fn close(&mut self, stream: StreamId, by: usize) -> Schedule {
        let Some(s) = self.streams.get_mut(&stream) else {
            return Vec::new();
        };
        if s.state == State::Dead {
            return Vec::new();
        }
        let side = s.side_of(by);
        if s.done[side] {
            return Vec::new();
        }
        s.done[side] = true;
        if s.state == State::Connecting {
            // The leader will see the attempt fail (`connect` checks `done`).
            return Vec::new();
        }
        let (out_dir, in_dir) = if side == 0 {
            (Dir::Up, Dir::Down)
        } else {
            (Dir::Down, Dir::Up)
        };
        let incoming = &mut s.lanes[in_dir.index()];
        incoming.queue.clear();
        incoming.head_judged = false;
        incoming.generation += 1;
        incoming.scheduled = false;
        incoming.stalled = false;
        let latency = self.knobs.stream_latency_ns;
        let lane = &mut s.lanes[out_dir.index()];
        let at = lane
            .queue
            .back()
            .map_or(Instant(0), |(t, _)| *t)
            .max(Instant(lane.link_free_at.0 + latency));
        lane.queue.push_back((at, Item::Fin));
        Self::schedule_head(stream, out_dir, lane)
            .into_iter()
            .collect()
    }

    /// Breaks `stream`: frames in flight are lost; each side not yet done
    /// learns of it after its own detection delay.
    pub fn break_stream(&mut self, stream: StreamId, now: Instant, rng: &mut SimRng) -> Schedule {
        let (lo, hi) = (
            self.knobs.detect_min_ns,
            self.knobs.detect_max_ns.max(self.knobs.detect_min_ns),
        );
        let Some(s) = self.streams.get_mut(&stream) else {
            return Vec::new();
        };
        if s.state == State::Dead {
            return Vec::new();
        }
        s.state = State::Dead;
        let mut out = Vec::new();
        for (side, node) in [(0, s.follower), (1, s.leader)] {
            if !s.done[side] {
                s.done[side] = true;
                let at = Instant(now.0 + rng.between(lo, hi));
                out.push((
                    at,
                    NetEvent::Closed {
                        stream,
                        node,
                        incarnation: s.incarnation[side],
                    },
                ));
            }
        }
        for lane in &mut s.lanes {
            lane.queue.clear();
            lane.generation += 1;
        }
        out
    }

    /// Node `node` crashed: every live stream it belongs to breaks.
    pub fn crash(&mut self, node: usize, now: Instant, rng: &mut SimRng) -> Schedule {
        let ids: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.state != State::Dead && (s.follower == node || s.leader == node))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.break_stream(id, now, rng));
        }
        out
    }

    /// A one-line account of the live streams, by state and by endpoints
    /// (for bounds failures).
    pub fn census(&self) -> String {
        let mut by: BTreeMap<(usize, usize, &'static str), usize> = BTreeMap::new();
        for s in self.streams.values() {
            let state = match (s.state, s.done) {
                (State::Dead, _) => continue,
                (State::Connecting, _) => "connecting",
                (State::Open, [false, false]) => "open",
                (State::Open, [true, false]) => "follower-closed",
                (State::Open, _) => "leader-closed",
            };
            *by.entry((s.follower + 1, s.leader + 1, state)).or_default() += 1;
        }
        by.iter()
            .map(|((f, l, st), c)| format!("{f}->{l} {st} x{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Forgets dead streams (their late events find nothing and do nothing).
    pub fn collect_garbage(&mut self) {
        self.streams.retain(|_, s| s.state != State::Dead);
    }

    /// Whether `stream` is open (connected and not yet broken or closed).
    pub fn is_open(&self, stream: StreamId) -> bool {
        self.streams
            .get(&stream)
            .is_some_and(|s| s.state == State::Open)
    }

    /// The endpoints (follower, leader) of a stream the network still tracks.
    pub fn endpoints(&self, stream: StreamId) -> Option<(usize, usize)> {
        self.streams.get(&stream).map(|s| (s.follower, s.leader))
    }
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
