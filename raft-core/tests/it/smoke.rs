//! Smoke test: a cluster forms (from a bootstrap list, and through
//! initialize and joins) and commits.
use crate::harness::*;
use raft_core::*;

#[test]
fn three_node_cluster_forms_and_commits() {
    let mut c = Cluster::new(3);
    let leader = c.leader().expect("leader");
    assert_eq!(
        c.node(leader).config().voter_count(),
        3,
        "{}",
        c.node(leader).config()
    );
    let id = c.propose(b"hello");
    c.settle();
    assert!(
        matches!(c.result(id), Some(Ok(Completion::Written { .. }))),
        "{:?}",
        c.result(id)
    );
    c.run_for(Duration::from_millis(300));
    for id in [1, 2, 3] {
        assert_eq!(
            c.commands(NodeId(id)),
            vec![bytes::Bytes::from_static(b"hello")],
            "node {id}"
        );
    }
    c.assert_state_machine_safety();
}

#[test]
fn three_node_cluster_forms_through_initialize_and_joins_and_commits() {
    let mut c = Cluster::initialized_then_joined(3);
    let leader = c.leader().expect("leader");
    assert_eq!(c.node(leader).config().voter_count(), 3);
    let id = c.propose(b"hello");
    c.run_for(Duration::from_millis(300));
    assert!(matches!(c.result(id), Some(Ok(Completion::Written { .. }))));
    for id in [1, 2, 3] {
        assert_eq!(
            c.commands(NodeId(id)),
            [bytes::Bytes::from_static(b"hello")]
        );
    }
    c.assert_state_machine_safety();
}
