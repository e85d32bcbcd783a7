//! The same seed and the same events give the same actions, byte for byte.
mod harness;
use harness::*;
use raft_core::*;

fn run() -> Vec<String> {
    let mut c = Cluster::new(3);
    for i in 0..10 {
        c.propose(format!("w{i}").as_bytes());
    }
    c.settle();
    let leader = c.leader().unwrap();
    c.crash(leader);
    c.run_for(Duration::from_secs(2));
    c.restart(leader);
    c.run_for(Duration::from_secs(1));
    c.hosts
        .values()
        .flat_map(|h| h.actions.iter().map(|a| format!("{a:?}")))
        .collect()
}

#[test]
fn the_same_seed_gives_the_identical_sequence_of_actions() {
    let a = run();
    let b = run();
    assert!(a.len() > 100);
    assert_eq!(a, b);
}

#[test]
fn different_seeds_draw_different_timeouts() {
    let hs = HardState {
        cluster_id: Some(ClusterId(1)),
        term: Term(1),
        vote: None,
    };
    let deadline = |seed| {
        Node::new(
            NodeOptions::new(NodeId(1)),
            RecoveredState {
                hard_state: hs.clone(),
                ..Default::default()
            },
            seed,
            Instant(0),
        )
        .unwrap()
        .election_deadline()
    };
    assert_eq!(deadline(7), deadline(7));
    assert!(
        (0..10)
            .map(deadline)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 5
    );
}
