use super::*;
use crate::rng::StreamKind;
use raft_core::{LogIndex, StreamId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A minimal event loop over the network alone.
struct Harness {
    net: Network,
    rng: SimRng,
    queue: BinaryHeap<Reverse<(Instant, u64, Ev)>>,
    seq: u64,
    log: Vec<(Instant, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Net(NetEventKey),
    Heal,
}

/// `NetEvent` is not `Ord`; wrap it with its debug text for ordering.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct NetEventKey(String, u64);

impl Harness {
    fn new(knobs: NetKnobs) -> Harness {
        Harness {
            net: Network::new(2, knobs),
            rng: SimRng::new(9, StreamKind::Network),
            queue: BinaryHeap::new(),
            seq: 0,
            log: Vec::new(),
        }
    }
    fn push(&mut self, s: Schedule, store: &mut Vec<NetEvent>) {
        for (at, ev) in s {
            store.push(ev);
            self.seq += 1;
            self.queue.push(Reverse((
                at,
                self.seq,
                Ev::Net(NetEventKey(String::new(), (store.len() - 1) as u64)),
            )));
        }
    }
    fn run(&mut self, store: &mut Vec<NetEvent>, until: Instant) {
        while let Some(Reverse((at, _, ev))) = self.queue.pop() {
            if at > until {
                self.queue.push(Reverse((at, 0, ev)));
                break;
            }
            match ev {
                Ev::Heal => {
                    let s = self.net.set_blocked(vec![false; 4], at);
                    self.push(s, store);
                }
                Ev::Net(NetEventKey(_, i)) => {
                    let ne = store[i as usize].clone();
                    match ne {
                        NetEvent::Connect { stream } => {
                            let (ok, s) = self.net.connect(stream, Some(0), at);
                            self.log.push((at, format!("connect {}", ok.is_some())));
                            self.push(s, store);
                        }
                        NetEvent::DeliverFrame {
                            stream,
                            dir,
                            generation,
                        } => {
                            let (d, s) = self.net.deliver(stream, dir, generation, at);
                            match d {
                                Delivery::Frame {
                                    node,
                                    frame: Frame::Ack { durable },
                                    ..
                                } => self
                                    .log
                                    .push((at, format!("frame {} to {node}", durable.0))),
                                Delivery::Closed { node, .. } => {
                                    self.log.push((at, format!("fin to {node}")))
                                }
                                _ => {}
                            }
                            self.push(s, store);
                        }
                        NetEvent::StallCheck {
                            stream,
                            dir,
                            generation,
                        } => {
                            let s =
                                self.net
                                    .stall_check(stream, dir, generation, at, &mut self.rng);
                            self.push(s, store);
                        }
                        NetEvent::Closed { node, .. } => {
                            self.log.push((at, format!("closed to {node}")))
                        }
                    }
                }
            }
        }
    }
}

fn ack(i: u64) -> Frame {
    Frame::Ack {
        durable: LogIndex(i),
    }
}

fn quiet() -> NetKnobs {
    NetKnobs {
        stream_break: Ppm::NEVER,
        drop: Ppm::NEVER,
        duplicate: Ppm::NEVER,
        ..NetKnobs::default()
    }
}

fn open(h: &mut Harness, store: &mut Vec<NetEvent>) -> StreamId {
    let id = StreamId(77);
    let s = h
        .net
        .open_stream(id, (0, 0), (1, Some(0)), Instant(0))
        .unwrap();
    h.push(s, store);
    h.run(store, Instant(1_000_000));
    assert!(h.net.is_open(id));
    id
}

#[test]
fn datagrams_are_dropped_on_a_blocked_path_and_delayed_otherwise() {
    let mut net = Network::new(2, quiet());
    let mut rng = SimRng::new(1, StreamKind::Network);
    let t = net.send_datagram(0, 1, Instant(0), &mut rng).unwrap();
    assert_eq!(t.len(), 1);
    assert!(t[0].0 >= 200_000);
    net.set_blocked(vec![false, true, false, false], Instant(0));
    assert_eq!(
        net.send_datagram(0, 1, Instant(0), &mut rng),
        Err("partitioned")
    );
    assert!(
        net.send_datagram(1, 0, Instant(0), &mut rng).is_ok(),
        "one-way block"
    );
}

#[test]
fn datagram_loss_and_duplication_follow_their_rates() {
    let knobs = NetKnobs {
        drop: Ppm(100_000),
        duplicate: Ppm(100_000),
        ..quiet()
    };
    let net = Network::new(2, knobs);
    let mut rng = SimRng::new(2, StreamKind::Network);
    let (mut lost, mut dup) = (0, 0);
    for _ in 0..10_000 {
        match net.send_datagram(0, 1, Instant(0), &mut rng) {
            Err(_) => lost += 1,
            Ok(t) if t.len() == 2 => dup += 1,
            Ok(_) => {}
        }
    }
    assert!((800..1200).contains(&lost), "lost {lost}");
    assert!((700..1100).contains(&dup), "dup {dup}");
}

#[test]
fn stream_frames_arrive_in_order_spaced_by_bandwidth() {
    let knobs = NetKnobs {
        bandwidth_bytes_per_s: 40_000,
        ..quiet()
    };
    let mut h = Harness::new(knobs);
    let mut store = Vec::new();
    let id = open(&mut h, &mut store);
    for i in 1..=3 {
        let s = h
            .net
            .send_frame(id, 0, ack(i), Instant(1_000_000), &mut h.rng)
            .unwrap();
        h.push(s, &mut store);
    }
    h.run(&mut store, Instant(10_000_000_000));
    let frames: Vec<&(Instant, String)> = h
        .log
        .iter()
        .filter(|(_, s)| s.starts_with("frame"))
        .collect();
    assert_eq!(
        frames.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["frame 1 to 1", "frame 2 to 1", "frame 3 to 1"]
    );
    // 40 bytes per ack at 40,000 B/s: one millisecond apart.
    assert_eq!(frames[1].0.0 - frames[0].0.0, 1_000_000);
}

#[test]
fn a_short_partition_stalls_a_stream_without_loss() {
    let mut h = Harness::new(quiet());
    let mut store = Vec::new();
    let id = open(&mut h, &mut store);
    let s = h
        .net
        .set_blocked(vec![false, true, true, false], Instant(1_000_000));
    h.push(s, &mut store);
    for i in 1..=2 {
        let s = h
            .net
            .send_frame(id, 0, ack(i), Instant(1_000_000), &mut h.rng)
            .unwrap();
        h.push(s, &mut store);
    }
    h.seq += 1;
    h.queue
        .push(Reverse((Instant(500_000_000), h.seq, Ev::Heal)));
    h.run(&mut store, Instant(10_000_000_000));
    let got: Vec<&str> = h.log.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(got, ["connect true", "frame 1 to 1", "frame 2 to 1"]);
    assert!(h.log[1].0 >= Instant(500_000_000));
}

#[test]
fn a_long_partition_breaks_the_stream_and_each_side_learns_separately() {
    let mut h = Harness::new(quiet());
    let mut store = Vec::new();
    let id = open(&mut h, &mut store);
    let s = h
        .net
        .set_blocked(vec![false, true, true, false], Instant(1_000_000));
    h.push(s, &mut store);
    let s = h
        .net
        .send_frame(id, 0, ack(1), Instant(1_000_000), &mut h.rng)
        .unwrap();
    h.push(s, &mut store);
    h.run(&mut store, Instant(10_000_000_000));
    let closed: Vec<&(Instant, String)> = h
        .log
        .iter()
        .filter(|(_, s)| s.starts_with("closed"))
        .collect();
    assert_eq!(closed.len(), 2, "{:?}", h.log);
    assert!(
        !h.log.iter().any(|(_, s)| s.starts_with("frame")),
        "the frame in flight is lost"
    );
    assert!(
        h.net
            .send_frame(id, 1, ack(2), Instant(3_000_000_000), &mut h.rng)
            .is_err()
    );
}

#[test]
fn close_delivers_queued_frames_then_the_fin() {
    let mut h = Harness::new(quiet());
    let mut store = Vec::new();
    let id = open(&mut h, &mut store);
    let s = h
        .net
        .send_frame(id, 1, ack(5), Instant(1_000_000), &mut h.rng)
        .unwrap();
    h.push(s, &mut store);
    let s = h.net.close(id, 1);
    h.push(s, &mut store);
    h.run(&mut store, Instant(10_000_000_000));
    let got: Vec<&str> = h.log.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(got, ["connect true", "frame 5 to 0", "fin to 0"]);
}

#[test]
fn opening_over_a_blocked_path_fails_after_the_connect_timeout() {
    let mut h = Harness::new(quiet());
    let mut store = Vec::new();
    h.net
        .set_blocked(vec![false, true, false, false], Instant(0));
    let s = h
        .net
        .open_stream(StreamId(5), (0, 0), (1, Some(0)), Instant(0))
        .unwrap();
    h.push(s, &mut store);
    h.run(&mut store, Instant(10_000_000_000));
    assert_eq!(
        h.log,
        vec![(Instant(200_000_000), "closed to 0".to_string())]
    );
    assert!(
        h.net
            .open_stream(StreamId(5), (0, 0), (1, Some(0)), Instant(0))
            .is_err(),
        "ids are never reused"
    );
}

#[test]
fn a_crash_breaks_every_stream_of_the_node() {
    let mut h = Harness::new(quiet());
    let mut store = Vec::new();
    let id = open(&mut h, &mut store);
    let s = h.net.crash(1, Instant(2_000_000), &mut h.rng);
    assert_eq!(s.len(), 2);
    assert!(!h.net.is_open(id));
}

#[test]
fn an_added_node_is_reachable_and_existing_cuts_are_kept() {
    let mut net = Network::new(3, NetKnobs::default());
    let mut blocked = vec![false; 9];
    blocked[1] = true; // 0 -> 1 cut
    let _ = net.set_blocked(blocked, Instant::ZERO);
    net.add_node();
    assert!(!net.path_up(0, 1), "the cut 0 -> 1 survives");
    assert!(net.path_up(1, 0));
    for other in 0..3 {
        assert!(net.path_up(other, 3) && net.path_up(3, other));
    }
    let _ = net.set_blocked(vec![false; 16], Instant::ZERO);
    assert!(net.path_up(0, 1));
}
