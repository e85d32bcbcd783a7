//! A run starts by static bootstrap: every initial member starts on an
//! empty disk and its driver gives it the same list on every start. These
//! scenarios drive the start through the public control API.

use raft_core::{Bootstrap, Instant, LogEntry, LogIndex, Node, NodeId, Role};
use raft_sim::scenario::{Fault, Knobs, Scenario};
use raft_sim::trace::Trace;
use raft_sim::world::{World, initial_members};

const S: u64 = 1_000_000_000;
const NODES: usize = 3;

/// A run without scheduled faults (nor membership nemesis): the only
/// faults are the ones a test injects.
fn world(seed: u64) -> World {
    let knobs = Knobs {
        nodes: NODES,
        duration_ms: 20_000,
        chaos_ms: 8_000,
        ..Knobs::default()
    };
    let scenario = Scenario {
        seed,
        knobs,
        faults: Vec::new(),
    };
    World::new(scenario, Trace::new(10_000, false))
}

/// The entry at index 1 in `node`'s log.
fn first_entry(node: &Node) -> Option<&LogEntry> {
    node.log_entries().find(|e| e.index == LogIndex(1))
}

/// Whether node `i` took its bootstrap (it holds entry 1 in memory) and
/// the entry is not durable yet.
fn bootstrapped_not_durable(w: &World, i: usize) -> bool {
    w.node(i).is_some_and(|n| n.last_index() == LogIndex(1))
        && w.disk(i).last_index() == LogIndex(0)
}

/// Runs seed `seed` crashing every member right after its bootstrap, before
/// its fsync completes; returns the world once every member is down again
/// (or `None` if some crash kept the first entry, so this seed does not
/// test the case).
fn crash_every_member_before_its_first_fsync(seed: u64) -> Option<World> {
    let mut w = world(seed);
    for i in 0..NODES {
        w.inject_when(
            move |w| bootstrapped_not_durable(w, i),
            Fault::Crash { node: i },
        );
    }
    for _ in 0..1_000 {
        if (0..NODES).all(|i| w.node(i).is_none()) {
            break;
        }
        assert!(w.step(), "the run ended before every member crashed");
    }
    assert!(
        (0..NODES).all(|i| w.node(i).is_none()),
        "some member never crashed"
    );
    assert!(w.now < Instant(S / 10), "the crashes came late: {}", w.now);
    let lost_every_entry = (0..NODES).all(|i| {
        let disk = w.disk(i);
        disk.last_index() == LogIndex(0) && disk.hard_state().cluster_id == Some(w.cluster_id())
    });
    lost_every_entry.then_some(w)
}

#[test]
fn a_cluster_whose_members_all_crashed_before_their_first_entry_was_durable_forms_on_restart() {
    // Each crash keeps a random prefix of the pending appends; take the
    // seeds where every member lost its first entry and kept only the hard
    // state (cluster id and term 1): none of them could ever campaign if the
    // restart did not bootstrap again.
    let worlds: Vec<World> = (0..40)
        .filter_map(crash_every_member_before_its_first_fsync)
        .take(3)
        .collect();
    assert!(!worlds.is_empty(), "no seed of 40 lost every first entry");
    let first = initial_members(NODES).first_entry();
    for mut w in worlds {
        let seed = w.scenario.seed;
        for i in 0..NODES {
            w.inject(Fault::Restart { node: i });
        }
        w.run();
        assert_eq!(w.failure(), None, "seed {seed}");
        assert!(w.report().leader_terms > 0, "seed {seed}: no leader ever");
        for i in 0..NODES {
            let node = w.node(i).expect("no fault after the restart");
            assert_eq!(first_entry(node), Some(&first), "seed {seed} n{}", i + 1);
            assert!(node.commit_index() > LogIndex(1), "seed {seed} n{}", i + 1);
        }
        let coverage = w.report().coverage;
        assert_eq!(
            coverage.get("bootstrap repeated after a restart"),
            Some(&(NODES as u64))
        );
    }
}

#[test]
fn a_member_given_another_list_never_joins_the_others_log() {
    let mut w = world(11);
    let stranger = NODES - 1;
    let members = (1..=NODES as u64).map(|i| (NodeId(i), format!("sim-{i}")));
    let other = Bootstrap::new(raft_sim::world::BOOTSTRAP_TOKEN + 1, members).unwrap();
    assert_ne!(other.cluster_id(), w.cluster_id());
    w.set_bootstrap(stranger, other.clone());
    let own = other.first_entry();
    w.add_invariant("the stranger holds only its own first entry", move |w| {
        let Some(n) = w.node(stranger) else {
            return Ok(());
        };
        match first_entry(n) {
            Some(e) if *e != own => Err(format!("n{} holds {e:?}", stranger + 1)),
            _ if n.last_index() > LogIndex(1) => {
                Err(format!("n{} grew to {}", stranger + 1, n.last_index()))
            }
            _ if n.role() == Role::Leader => Err(format!("n{} leads", stranger + 1)),
            _ => Ok(()),
        }
    });
    // Not to the end: the liveness judgment may pick the stranger into the
    // core it expects to converge, which it never will.
    assert!(w.run_until(Instant(6 * S)), "{:?}", w.failure());
    let leader = w.current_leader().expect("the two others elect a leader");
    assert_ne!(leader, stranger);
    let node = w.node(leader).unwrap();
    assert!(
        node.commit_index() > LogIndex(1),
        "the others commit without the stranger"
    );
    assert_eq!(
        w.node(stranger).map(|n| n.cluster_id()),
        Some(Some(other.cluster_id()))
    );
    let log: Vec<&LogEntry> = w.node(stranger).unwrap().log_entries().collect();
    assert_eq!(log, [&other.first_entry()]);
    let refused = w.report().coverage.get("refused: foreign cluster").copied();
    assert!(refused.unwrap_or(0) > 0, "nobody refused the stranger");
}
