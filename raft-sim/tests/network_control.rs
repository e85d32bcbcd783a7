//! Targeted control of datagrams and stream frames, and per-link bandwidth,
//! through the public API only, observed through the typed trace.

use raft_core::{Duration, Frame, Instant, MessageBody, StreamId};
use raft_sim::intercept::{Packet, Treatment};
use raft_sim::scenario::{Knobs, Scenario};
use raft_sim::trace::{BreakCause, DropReason, Fact, FrameKind, Input, Trace};
use raft_sim::world::World;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

const S: u64 = 1_000_000_000;

/// A 3-node key-value world with no random loss, duplication or stream
/// breaks, so that what a test sees is what its rules did.
fn world(seed: u64) -> World {
    let mut knobs = Knobs {
        nodes: 3,
        duration_ms: 20_000,
        chaos_ms: 8_000,
        ..Knobs::default()
    };
    knobs.net.drop = raft_sim::rng::Ppm(0);
    knobs.net.duplicate = raft_sim::rng::Ppm(0);
    knobs.net.stream_break = raft_sim::rng::Ppm(0);
    let scenario = Scenario {
        seed,
        knobs,
        faults: Vec::new(),
    };
    World::new(scenario, Trace::new(0, false))
}

/// Every fact recorded from now on, with its time.
/// What the trace saw, by time, shared with the trace's callback.
type Seen = Rc<RefCell<Vec<(Instant, Fact)>>>;

fn facts(w: &mut World) -> Seen {
    let seen: Seen = Rc::default();
    let sink = seen.clone();
    w.on_trace(move |r| sink.borrow_mut().push((r.at, r.fact.clone())));
    seen
}

/// The leader after 3 s and one of its followers.
fn leader_and_follower(w: &mut World) -> (usize, usize) {
    w.run_until(Instant(3 * S));
    let leader = w.current_leader().expect("a leader after 3 s");
    (leader, (leader + 1) % 3)
}

fn is_heartbeat(p: Packet<'_>) -> bool {
    matches!(p, Packet::Message(m) if matches!(m.body, MessageBody::Heartbeat { .. }))
}

fn is_chunk_with_entries(p: Packet<'_>) -> bool {
    matches!(p, Packet::Frame { frame: Frame::Chunk { entries, .. }, .. } if !entries.is_empty())
}

/// A rule that treats the first packet `pick` matches on `from -> to`, once.
fn once(
    from: usize,
    to: usize,
    pick: fn(Packet<'_>) -> bool,
    treatment: Treatment,
) -> impl FnMut(usize, usize, Packet<'_>) -> Option<Treatment> {
    let mut done = false;
    move |f, t, p| {
        let hit = !done && (f, t) == (from, to) && pick(p);
        done |= hit;
        hit.then_some(treatment)
    }
}

/// A world of `seed` where, once a leader is elected, the first packet
/// `pick` matches from it to a follower is delayed by `delay`; run to 5 s.
/// Returns the leader, the follower and what the trace saw.
fn delayed_once(seed: u64, pick: fn(Packet<'_>) -> bool, delay: Duration) -> (usize, usize, Seen) {
    let mut w = world(seed);
    let (leader, follower) = leader_and_follower(&mut w);
    let seen = facts(&mut w);
    w.intercept(once(leader, follower, pick, Treatment::Delay(delay)));
    w.run_until(Instant(5 * S));
    (leader, follower, seen)
}

/// When the first delayed packet was due.
fn delayed_at(seen: &[(Instant, Fact)]) -> Option<Instant> {
    seen.iter().find_map(|(at, f)| {
        matches!(
            f,
            Fact::Intercepted {
                treatment: Treatment::Delay(_),
                ..
            }
        )
        .then_some(*at)
    })
}

/// Heartbeats delivered on `from -> to`, by time, with their round.
fn heartbeats(seen: &[(Instant, Fact)], from: usize, to: usize) -> Vec<(Instant, u64)> {
    seen.iter()
        .filter_map(|(at, f)| match f {
            Fact::MessageDelivered {
                from: a,
                to: b,
                body: MessageBody::Heartbeat { round, .. },
                ..
            } if (*a, *b) == (from, to) => Some((*at, *round)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rule_drops_the_datagrams_it_picks_and_no_others() {
    let mut w = world(21);
    let (leader, follower) = leader_and_follower(&mut w);
    let other = 3 - leader - follower;
    let seen = facts(&mut w);
    w.intercept(move |from, to, p| {
        ((from, to) == (leader, follower) && is_heartbeat(p)).then_some(Treatment::Drop)
    });
    w.run_until(Instant(4 * S));
    let seen = seen.borrow();
    assert!(heartbeats(&seen, leader, follower).is_empty());
    assert!(!heartbeats(&seen, leader, other).is_empty());
    let dropped = seen.iter().filter(|(_, f)| {
        matches!(f, Fact::MessageDropped { from, to, reason: DropReason::Rule, .. } if (*from, *to) == (leader, follower))
    });
    assert!(
        dropped.count() >= 3,
        "a heartbeat every 150 ms for a second"
    );
}

#[test]
fn a_duplicated_datagram_arrives_twice_in_a_row() {
    let mut w = world(22);
    let (leader, follower) = leader_and_follower(&mut w);
    let seen = facts(&mut w);
    w.intercept(once(leader, follower, is_heartbeat, Treatment::Duplicate));
    w.run_until(Instant(4 * S));
    let beats = heartbeats(&seen.borrow(), leader, follower);
    let twice = beats.windows(2).filter(|p| p[0] == p[1]).count();
    assert_eq!(twice, 1, "{beats:?}");
}

#[test]
fn a_reordered_datagram_arrives_right_after_the_next_one_on_its_link() {
    let mut w = world(23);
    let (leader, follower) = leader_and_follower(&mut w);
    let seen = facts(&mut w);
    let picked = Rc::new(Cell::new(None));
    let round = picked.clone();
    w.intercept(move |from, to, p| match p {
        Packet::Message(m) if (from, to) == (leader, follower) && round.get().is_none() => {
            match m.body {
                MessageBody::Heartbeat { round: r, .. } => {
                    round.set(Some(r));
                    Some(Treatment::Reorder)
                }
                _ => None,
            }
        }
        _ => None,
    });
    w.run_until(Instant(4 * S));
    let r = picked.get().expect("a heartbeat within a second");
    // Every datagram delivered on the link, in order: the next one after
    // the reordered heartbeat, then the heartbeat, at the same moment.
    let link: Vec<(Instant, MessageBody)> = seen
        .borrow()
        .iter()
        .filter_map(|(at, f)| match f {
            Fact::MessageDelivered { from, to, body, .. } if (*from, *to) == (leader, follower) => {
                Some((*at, body.clone()))
            }
            _ => None,
        })
        .collect();
    let k = link
        .iter()
        .position(|(_, b)| matches!(b, MessageBody::Heartbeat { round, .. } if *round == r))
        .expect("the reordered heartbeat arrives");
    assert_eq!(k, 1, "{link:?}");
    assert_eq!(link[0].0, link[1].0, "right after the next one: {link:?}");
    assert!(
        matches!(link[0].1, MessageBody::Heartbeat { round, .. } if round > r),
        "{link:?}"
    );
}

#[test]
fn a_delayed_datagram_arrives_that_much_later() {
    let delay = Duration::from_millis(400);
    let (leader, follower, seen) = delayed_once(24, is_heartbeat, delay);
    let seen = seen.borrow();
    let at = delayed_at(&seen).expect("a heartbeat within 2 s");
    let beats = heartbeats(&seen, leader, follower);
    let late = beats
        .iter()
        .find(|(t, _)| *t == Instant(at.0 + delay.as_nanos()))
        .expect("the delayed heartbeat arrives exactly 400 ms after it was due");
    assert!(
        beats.iter().any(|(t, r)| *t < late.0 && *r > late.1),
        "later heartbeats overtook it: {beats:?}"
    );
}

/// Chunks with entries delivered to `to`, by time: (stream, prev index).
fn chunks_to(seen: &[(Instant, Fact)], to: usize) -> Vec<(Instant, StreamId, u64)> {
    seen.iter()
        .filter_map(|(at, f)| match f {
            Fact::FrameDelivered {
                stream,
                to: t,
                frame:
                    FrameKind::Chunk {
                        prev_index, count, ..
                    },
            } if *t == to && *count > 0 => Some((*at, *stream, prev_index.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_held_frame_holds_the_rest_of_its_stream_until_released_then_all_arrive_in_order() {
    let mut w = world(25);
    let (leader, follower) = leader_and_follower(&mut w);
    let seen = facts(&mut w);
    w.intercept(once(
        leader,
        follower,
        is_chunk_with_entries,
        Treatment::Hold,
    ));
    w.run_until(Instant(4 * S));
    let held_at = seen
        .borrow()
        .iter()
        .find(|(_, f)| {
            matches!(
                f,
                Fact::Intercepted {
                    treatment: Treatment::Hold,
                    ..
                }
            )
        })
        .map(|(at, _)| *at)
        .expect("the leader streamed entries within a second");
    assert!(
        chunks_to(&seen.borrow(), follower).is_empty(),
        "nothing passes a held stream"
    );
    let held = w.held_count();
    assert!(held >= 2, "frames queue behind the held one: {held}");
    let durable = w.disk(follower).last_index();
    let released_at = w.now;
    assert_eq!(w.release_held(), held);
    w.run_until(Instant(5 * S));
    let after = chunks_to(&seen.borrow(), follower);
    assert!(after.len() >= held - 1, "{after:?}");
    assert!(
        after
            .iter()
            .all(|(at, s, _)| *at >= released_at && *s == after[0].1)
    );
    assert!(
        after.windows(2).all(|p| p[0].2 < p[1].2),
        "in stream order: {after:?}"
    );
    assert!(w.disk(follower).last_index() > durable);
    assert!(held_at < released_at);
    w.run();
    assert_eq!(w.failure(), None);
}

#[test]
fn a_delayed_frame_delays_every_frame_behind_it_on_its_stream() {
    let delay = Duration::from_millis(300);
    let (_, follower, seen) = delayed_once(26, is_chunk_with_entries, delay);
    let seen = seen.borrow();
    let due = delayed_at(&seen).expect("the leader streamed entries within 2 s");
    let until = Instant(due.0 + delay.as_nanos());
    let chunks = chunks_to(&seen, follower);
    let (first, stream) = (chunks[0].0, chunks[0].1);
    assert_eq!(first, until, "the delayed chunk arrives first, 300 ms late");
    let on_stream: Vec<_> = chunks.iter().filter(|c| c.1 == stream).collect();
    assert!(on_stream.iter().all(|c| c.0 >= until));
    assert!(on_stream.windows(2).all(|p| p[0].2 < p[1].2));
}

#[test]
fn a_frame_a_stream_cannot_lose_repeat_or_reorder_breaks_the_stream_instead() {
    for (seed, treatment) in [
        (27, Treatment::Drop),
        (28, Treatment::Duplicate),
        (29, Treatment::Reorder),
    ] {
        let mut w = world(seed);
        let (leader, follower) = leader_and_follower(&mut w);
        let seen = facts(&mut w);
        w.intercept(once(leader, follower, is_chunk_with_entries, treatment));
        w.run_until(Instant(5 * S));
        let seen = seen.borrow();
        let (broke_at, broken) = seen
            .iter()
            .find_map(|(at, f)| match f {
                Fact::StreamBroken {
                    stream,
                    cause: BreakCause::Rule,
                } => Some((*at, *stream)),
                _ => None,
            })
            .expect("the stream broke");
        let chunks = chunks_to(&seen, follower);
        assert!(
            chunks.iter().all(|c| c.1 != broken),
            "{treatment:?}: a frame of the broken stream arrived"
        );
        let closed = seen.iter().any(|(_, f)| {
            matches!(f, Fact::Stepped { input: Input::StreamClosed { stream } } if *stream == broken)
        });
        assert!(closed, "{treatment:?}: the follower never saw it close");
        let resumed = chunks.iter().any(|c| c.0 > broke_at);
        assert!(resumed, "{treatment:?}: no new stream carried entries");
        drop(seen);
        w.run();
        assert_eq!(w.failure(), None, "{treatment:?}");
    }
}

/// Frames sent and delivered on `from -> to` after `since`, paired in order
/// per stream: (sent at, delivered at, bytes).
fn link_frames(seen: &[(Instant, Fact)], from: usize, to: usize) -> Vec<(Instant, Instant, u64)> {
    let mut sent: Vec<(StreamId, Instant, u64)> = Vec::new();
    let mut pairs = Vec::new();
    for (at, f) in seen {
        match f {
            Fact::FrameSent {
                stream,
                from: a,
                to: b,
                bytes,
                ..
            } if (*a, *b) == (from, to) => sent.push((*stream, *at, *bytes)),
            Fact::FrameDelivered { stream, to: b, .. } if *b == to => {
                if let Some(k) = sent.iter().position(|s| s.0 == *stream) {
                    let (_, sent_at, bytes) = sent.remove(k);
                    pairs.push((sent_at, *at, bytes));
                }
            }
            _ => {}
        }
    }
    pairs
}

#[test]
fn a_slow_link_delays_each_frame_by_its_size_over_the_bandwidth_behind_the_ones_before() {
    let bytes_per_s = 20_000;
    let mut w = world(30);
    // Watched from the start, so that every frame pairs with its send.
    let seen = facts(&mut w);
    let (leader, follower) = leader_and_follower(&mut w);
    let limited_at = w.now;
    w.set_link_bandwidth(leader, follower, bytes_per_s);
    w.run_until(Instant(6 * S));
    let latency = w.net.knobs().stream_latency_ns;
    let mut frames = link_frames(&seen.borrow(), leader, follower);
    frames.retain(|(sent, _, _)| *sent >= limited_at);
    assert!(frames.len() >= 10, "{} frames", frames.len());
    let transmit = |bytes: u64| bytes * S / bytes_per_s;
    let start = frames[0].0;
    let mut total = 0;
    for (sent, delivered, bytes) in &frames {
        total += bytes;
        // The link carries one frame at a time: this one arrives after every
        // byte sent on the link since the limit has been transmitted.
        assert!(delivered.0 >= sent.0 + transmit(*bytes) + latency);
        assert!(delivered.0 >= start.0 + transmit(total) + latency);
    }
    // The other follower's link is not limited: the same stream traffic
    // arrives after the latency alone.
    let other = 3 - leader - follower;
    let free = link_frames(&seen.borrow(), leader, other);
    assert!(free.iter().all(|(s, d, _)| d.0 - s.0 < transmit(40)));
}

#[test]
fn a_catch_up_on_a_slower_link_takes_proportionally_longer() {
    // The same seed twice: a follower misses a few seconds of writes, then
    // catches up over a link of 8,000 or of 32,000 bytes per second.
    let catch_up = |bytes_per_s: u64| {
        let mut w = world(31);
        let (leader, follower) = leader_and_follower(&mut w);
        w.inject(raft_sim::scenario::Fault::Crash { node: follower });
        w.run_until(Instant(6 * S));
        let target = w.node(leader).expect("up").commit_index();
        w.set_link_bandwidth(leader, follower, bytes_per_s);
        let seen = facts(&mut w);
        w.inject(raft_sim::scenario::Fault::Restart { node: follower });
        let start = w.now;
        let reached = Rc::new(Cell::new(None));
        let mark = reached.clone();
        w.add_invariant("catching up", move |w| {
            if mark.get().is_none() && w.disk(follower).last_index() >= target {
                mark.set(Some(w.now));
            }
            Ok(())
        });
        w.run_until(Instant(30 * S));
        let done = reached.get().expect("the follower caught up");
        let bytes: u64 = link_frames(&seen.borrow(), leader, follower)
            .iter()
            .filter(|(_, d, _)| *d <= done)
            .map(|(_, _, b)| b)
            .sum();
        (done.0 - start.0, bytes)
    };
    let (slow, slow_bytes) = catch_up(8_000);
    let (fast, fast_bytes) = catch_up(32_000);
    assert!(
        slow_bytes > 10_000,
        "too little to catch up on: {slow_bytes}"
    );
    // Each takes at least its bytes over its bandwidth; four times less
    // bandwidth, at least (nearly) four times as long.
    assert!(
        slow >= slow_bytes * S / 8_000,
        "{slow} ns for {slow_bytes} B"
    );
    assert!(
        fast >= fast_bytes * S / 32_000,
        "{fast} ns for {fast_bytes} B"
    );
    assert!(slow > 3 * fast, "slow {slow} ns, fast {fast} ns");
}

/// The second example of docs/simulation.md ("Driving a run from a test"),
/// kept compiling and passing.
#[test]
fn the_guide_example_holds_a_stream_then_lets_it_flow() {
    let mut w = world(32);
    w.run_until(Instant(3 * S));
    let leader = w.current_leader().expect("a leader");
    let follower = (leader + 1) % 3;
    w.intercept(move |from, to, p| match p {
        Packet::Frame {
            frame: Frame::Chunk { entries, .. },
            ..
        } if (from, to) == (leader, follower) && !entries.is_empty() => Some(Treatment::Hold),
        _ => None,
    });
    let delivered = Rc::new(Cell::new(0));
    let count = delivered.clone();
    w.on_trace(move |r| {
        if matches!(r.fact, Fact::FrameDelivered { to, frame: FrameKind::Chunk { count: 1.., .. }, .. }
            if to == follower)
        {
            count.set(count.get() + 1);
        }
    });
    w.run_until(Instant(w.now.0 + 500_000_000));
    assert_eq!(delivered.get(), 0);
    w.clear_intercepts();
    w.release_held();
    w.run_until(Instant(w.now.0 + 500_000_000));
    assert!(delivered.get() > 0);
}
