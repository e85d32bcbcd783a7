//! The same seed and the same events give the same actions, byte for byte.
use crate::harness::*;
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
    c.hosts()
        .flat_map(|(_, h)| h.actions().iter().map(|a| format!("{a:?}")))
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

#[test]
fn step_into_appends_exactly_the_actions_step_returns_after_what_the_buffer_holds() {
    let bootstrap = Bootstrap::new(7, (1..=3).map(|i| (NodeId(i), format!("node-{i}")))).unwrap();
    let node = || {
        Node::new(
            NodeOptions::new(NodeId(1)),
            RecoveredState::default(),
            5,
            Instant(0),
        )
        .unwrap()
    };
    let (mut by_step, mut by_step_into) = (node(), node());
    let cluster_id = bootstrap.cluster_id();
    let granted = |term, body| {
        Event::MessageReceived(Message {
            cluster_id,
            from: NodeId(2),
            to: NodeId(1),
            term,
            body,
        })
    };
    let mut t = Instant(0);
    let mut events = vec![(
        t,
        Event::BootstrapRequested {
            id: RequestId(1),
            bootstrap,
        },
    )];
    // The election: the pre-vote granted makes the node a candidate, which
    // enters a term and votes for itself in one step (one hard-state write,
    // updated in place); the vote granted makes it leader.
    t = t + Duration::from_secs(2);
    events.push((t, Event::Tick));
    events.push((
        t,
        granted(Term(2), MessageBody::PreVoteResponse { granted: true }),
    ));
    events.push((
        t,
        granted(Term(2), MessageBody::VoteResponse { granted: true }),
    ));
    events.push((
        t,
        Event::ProposeRequested {
            proposals: vec![Proposal {
                id: RequestId(2),
                data: "x".into(),
            }],
        },
    ));
    // Whatever a driver has not executed yet stays in front, untouched.
    let earlier = Action::TakeSnapshot;
    let mut buffer = vec![earlier.clone()];
    let mut hard_state_writes = 0;
    for (now, event) in events {
        let returned = by_step.step(now, event.clone());
        by_step_into.step_into(now, event.clone(), &mut buffer);
        assert_eq!(buffer[0], earlier, "after {event}");
        assert_eq!(buffer[1..], returned[..], "after {event}");
        hard_state_writes += returned
            .iter()
            .filter(|a| matches!(a, Action::PersistHardState(_)))
            .count();
        buffer.truncate(1);
    }
    assert_eq!(by_step_into.role(), Role::Leader);
    assert!(
        hard_state_writes >= 2,
        "the run wrote the hard state {hard_state_writes} times"
    );
}
