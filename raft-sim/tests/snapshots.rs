//! Snapshots off the hot path: a state machine that takes several election
//! timeouts to write each snapshot (`Knobs::snapshot_duration_ms`) while the
//! cluster takes writes. The node must go on heartbeating, replicating and
//! applying meanwhile: no election, and no write waits for a snapshot.

use raft_core::SnapshotPolicy;
use raft_sim::rng::Ppm;
use raft_sim::scenario::{Knobs, Scenario};
use raft_sim::trace::Trace;
use raft_sim::world::World;

#[test]
fn snapshots_that_take_four_election_timeouts_cause_no_election_and_stall_no_write() {
    for seed in 0..3 {
        let mut k = Knobs {
            nodes: 3,
            duration_ms: 20_000,
            chaos_ms: 10_000,
            snapshot_policy: SnapshotPolicy::every_entries(50),
            snapshot_trailing_entries: 20,
            ..Knobs::default()
        };
        k.snapshot_duration_ms = 4 * k.election_timeout_ms;
        // A network that loses nothing: an election could only come from the node.
        k.net.drop = Ppm::NEVER;
        k.net.duplicate = Ppm::NEVER;
        k.net.stream_break = Ppm::NEVER;
        let mut w = World::new(
            Scenario {
                seed,
                knobs: k.clone(),
                faults: Vec::new(),
            },
            Trace::new(2_000_000, false),
        );
        w.run();
        assert_eq!(w.failure(), None, "seed {seed}: an oracle objected");

        let records = || w.trace.tail(usize::MAX);
        let taken = records()
            .filter(|r| r.text.contains("SnapshotTaken"))
            .count();
        assert!(
            taken >= 3 * k.nodes,
            "seed {seed}: only {taken} snapshots landed"
        );
        let leaders = records()
            .filter(|r| r.text.contains("RoleChanged Leader"))
            .count();
        assert_eq!(leaders, 1, "seed {seed}: one election, at the start");

        let writes: Vec<_> = w
            .workload
            .history()
            .iter()
            .filter(|o| o.is_write())
            .collect();
        assert!(writes.len() > 200, "seed {seed}: {} writes", writes.len());
        for o in &writes {
            let Some(done) = o.complete_ns else {
                continue; // invoked at the very end of the run
            };
            // Virtual time: a write waits for replication and fsyncs, never
            // for a snapshot (each takes 2 s here).
            let latency_ms = (done - o.invoke_ns) / 1_000_000;
            assert!(
                latency_ms < k.election_timeout_ms,
                "seed {seed}: write {} took {latency_ms} ms",
                o.id
            );
        }
    }
}

/// A follower far behind gets a snapshot of many budget windows; its stream
/// breaks in the middle (a chunk lost). The next stream resumes the transfer
/// where the follower stopped: the leader sends a `SnapshotBegin` past byte 0,
/// the snapshot installs once, and every oracle (the driver contract's check
/// that chunks continue the stored bytes included) is satisfied.
#[test]
fn a_snapshot_transfer_cut_short_resumes_on_the_next_stream() {
    use raft_core::{Frame, Instant};
    use raft_sim::intercept::{Packet, Treatment};
    use raft_sim::scenario::Fault;
    use raft_sim::trace::{Fact, FrameKind};
    use std::cell::RefCell;
    use std::rc::Rc;
    const S: u64 = 1_000_000_000;

    let mut k = Knobs {
        nodes: 3,
        duration_ms: 30_000,
        chaos_ms: 20_000,
        keys: 2_000,
        stream_budget_bytes: 1_024,
        snapshot_policy: SnapshotPolicy::every_entries(50),
        snapshot_trailing_entries: 10,
        ..Knobs::default()
    };
    k.net.drop = Ppm::NEVER;
    k.net.duplicate = Ppm::NEVER;
    k.net.stream_break = Ppm::NEVER;
    let scenario = Scenario {
        seed: 1,
        knobs: k,
        faults: Vec::new(),
    };
    let mut w = World::new(scenario, Trace::new(0, false));
    let begins: Rc<RefCell<Vec<(usize, bool)>>> = Rc::default();
    let sink = begins.clone();
    w.on_trace(move |r| {
        if let Fact::FrameDelivered {
            to,
            frame: FrameKind::SnapshotBegin { resumed, .. },
            ..
        } = r.fact
        {
            sink.borrow_mut().push((to, resumed));
        }
    });
    w.run_until(Instant(3 * S));
    let leader = w.current_leader().expect("a leader after 3 s");
    let follower = (leader + 1) % 3;
    w.inject(Fault::Crash { node: follower });
    w.run_until(Instant(10 * S));
    // The third snapshot chunk to the follower is lost: its stream breaks.
    let mut chunks = 0;
    w.intercept(move |from, to, p| {
        let Packet::Frame { frame, .. } = p else {
            return None;
        };
        if (from, to) != (leader, follower) || !matches!(frame, Frame::SnapshotChunk { .. }) {
            return None;
        }
        chunks += 1;
        (chunks == 3).then_some(Treatment::Drop)
    });
    w.inject(Fault::Restart { node: follower });
    w.run();
    assert_eq!(w.failure(), None, "an oracle objected");

    let begins = begins.borrow();
    let to_follower: Vec<bool> = begins
        .iter()
        .filter(|(to, _)| *to == follower)
        .map(|(_, resumed)| *resumed)
        .collect();
    assert!(
        to_follower.len() >= 2 && !to_follower[0] && to_follower[1],
        "the second stream resumes past byte 0: {to_follower:?}"
    );
    let coverage = w.report().coverage;
    assert!(
        coverage.contains_key(raft_sim::coverage::SNAPSHOT_RESUMED),
        "{coverage:?}"
    );
}
