//! Static bootstrap: every node starts from the same member list; lists that
//! differ never mix, and state already there is never overwritten.
use crate::harness::*;
use raft_core::*;

fn members(addresses: &[(u64, &str)]) -> Vec<(NodeId, String)> {
    addresses
        .iter()
        .map(|&(id, a)| (NodeId(id), a.to_string()))
        .collect()
}

fn three() -> Bootstrap {
    Bootstrap::new(
        BOOTSTRAP_TOKEN,
        members(&[(1, "node-1"), (2, "node-2"), (3, "node-3")]),
    )
    .unwrap()
}

/// Steps `node` with a bootstrap request and returns its actions.
fn bootstrap(node: &mut Node, now: Instant, bootstrap: Bootstrap) -> Vec<Action> {
    node.step(
        now,
        Event::BootstrapRequested {
            id: RequestId(7),
            bootstrap,
        },
    )
}

fn completion(actions: &[Action]) -> Result<Completion, RequestError> {
    actions
        .iter()
        .find_map(|a| match a {
            Action::CompleteRequest { result, .. } => Some(result.clone()),
            _ => None,
        })
        .expect("the request completes")
}

fn fresh(id: u64) -> Node {
    Node::new(
        NodeOptions::new(NodeId(id)),
        RecoveredState::default(),
        id,
        Instant(0),
    )
    .unwrap()
}

#[test]
fn three_nodes_bootstrapped_from_one_list_elect_a_leader_and_commit() {
    let mut c = Cluster::new(3);
    let leader = c.leader().expect("a leader");
    for id in c.ids() {
        let node = c.node(id);
        assert_eq!(node.cluster_id(), Some(three().cluster_id()));
        assert_eq!(node.config().voter_count(), 3);
        assert_eq!(c.host(id).applied()[0], three().first_entry());
    }
    let id = c.propose(b"x");
    c.run_for(Duration::from_millis(300));
    assert_eq!(
        c.result(id),
        Some(Ok(Completion::Written {
            index: c.node(leader).last_index()
        }))
    );
    for id in [1, 2, 3] {
        assert_eq!(c.commands(NodeId(id)), [bytes::Bytes::from_static(b"x")]);
    }
    c.assert_state_machine_safety();
}

#[test]
fn a_bootstrap_persists_the_term_then_appends_the_same_first_entry_on_every_node() {
    for id in [1, 2, 3] {
        let mut node = fresh(id);
        let actions = bootstrap(&mut node, Instant(1), three());
        assert_eq!(
            actions[..2],
            [
                Action::PersistHardState(HardState {
                    cluster_id: Some(three().cluster_id()),
                    term: Term(1),
                    vote: None
                }),
                Action::AppendLog([three().first_entry()].into()),
            ]
        );
        assert_eq!(
            completion(&actions),
            Ok(Completion::Initialized {
                cluster_id: three().cluster_id()
            })
        );
        assert_eq!(node.role(), Role::Follower);
    }
}

#[test]
fn nodes_given_different_lists_refuse_each_other_and_never_mix_logs() {
    let mut c = Cluster::empty(NodeOptions::new(NodeId(1)));
    // Node 3 was told another address for node 2: another list, another cluster.
    let other = Bootstrap::new(
        BOOTSTRAP_TOKEN,
        members(&[(1, "node-1"), (2, "node-2b"), (3, "node-3")]),
    )
    .unwrap();
    assert_ne!(other.cluster_id(), three().cluster_id());
    for (id, list) in [(1, three()), (2, three()), (3, other.clone())] {
        c.add_host(NodeId(id), None);
        let request = c.request_id();
        c.push(
            NodeId(id),
            Event::BootstrapRequested {
                id: request,
                bootstrap: list,
            },
        );
    }
    c.run_for(Duration::from_millis(3000));
    let leader = c.leader().expect("1 and 2 form a quorum of their list");
    assert_ne!(leader, NodeId(3));
    let id = c.propose(b"x");
    c.run_for(Duration::from_millis(300));
    assert!(matches!(c.result(id), Some(Ok(Completion::Written { .. }))));
    let lonely = c.host(NodeId(3));
    assert_eq!(lonely.node().cluster_id(), Some(other.cluster_id()));
    assert_ne!(lonely.node().role(), Role::Leader, "no quorum of its list");
    assert_eq!(
        lonely.node().last_index(),
        LogIndex(1),
        "only its own first entry"
    );
    let refused_foreign = c
        .host(NodeId(1))
        .actions()
        .iter()
        .chain(c.host(NodeId(3)).actions())
        .any(|a| {
            matches!(
                a,
                Action::Refused {
                    reason: Refusal::ForeignCluster { .. },
                    ..
                }
            )
        });
    assert!(refused_foreign, "the mismatch is visible as refusals");
}

#[test]
fn bootstrapping_again_with_the_same_list_succeeds_and_changes_nothing() {
    // A restarted node repeats its bootstrap (the flags it was started
    // with), whether its log still holds entry 1 or a snapshot covers it.
    let compacting = NodeOptions {
        snapshot_policy: SnapshotPolicy::every_entries(10),
        snapshot_trailing_entries: 2,
        ..NodeOptions::new(NodeId(1))
    };
    for (options, writes) in [(NodeOptions::new(NodeId(1)), 1), (compacting, 30)] {
        let mut c = Cluster::with_options(3, options);
        for i in 0..writes {
            let id = c.propose(format!("w{i}").as_bytes());
            c.run_for(Duration::from_millis(50));
            assert!(matches!(c.result(id), Some(Ok(Completion::Written { .. }))));
        }
        c.crash(NodeId(2));
        c.restart(NodeId(2));
        let compacted = c.node(NodeId(2)).status().first_index > LogIndex(1);
        assert_eq!(compacted, writes > 1, "entry 1 compacted away");
        let before = c.node(NodeId(2)).log_entries().cloned().collect::<Vec<_>>();
        c.clear_actions();
        let event = Event::BootstrapRequested {
            id: RequestId(7),
            bootstrap: three(),
        };
        c.step(NodeId(2), event);
        assert_eq!(
            c.host(NodeId(2)).actions(),
            [Action::CompleteRequest {
                id: RequestId(7),
                result: Ok(Completion::Initialized {
                    cluster_id: three().cluster_id()
                })
            }]
        );
        assert_eq!(
            c.node(NodeId(2)).log_entries().cloned().collect::<Vec<_>>(),
            before
        );
    }
}

#[test]
fn a_bootstrap_cut_short_before_its_entry_was_durable_finishes_when_repeated() {
    let mut node = fresh(1);
    bootstrap(&mut node, Instant(1), three());
    // The hard state reached disk; the entry did not.
    let recovered = RecoveredState {
        hard_state: node.hard_state().clone(),
        ..RecoveredState::default()
    };
    let mut node = Node::new(NodeOptions::new(NodeId(1)), recovered, 2, Instant(2)).unwrap();
    let actions = bootstrap(&mut node, Instant(3), three());
    assert!(actions.contains(&Action::AppendLog([three().first_entry()].into())));
    assert!(completion(&actions).is_ok());
    assert_eq!(node.config().voter_count(), 3);
}

#[test]
fn bootstrapping_a_node_of_another_cluster_is_refused() {
    let mut node = node_in_term(NodeId(1), 3);
    let actions = bootstrap(&mut node, Instant(1), three());
    assert_eq!(completion(&actions), Err(RequestError::AlreadyInitialized));
    assert_eq!(actions.len(), 1, "nothing else: {actions:?}");
    assert_eq!(node.cluster_id(), Some(CLUSTER));
}

#[test]
fn bootstrapping_over_another_first_entry_of_the_same_cluster_is_refused() {
    // Only a forged or damaged disk holds this: the cluster id names the list.
    let mut config = three().config().clone();
    config.members.pop();
    config.max_node_id = NodeId(2);
    let hard_state = HardState {
        cluster_id: Some(three().cluster_id()),
        term: Term(1),
        vote: None,
    };
    let entries = vec![LogEntry {
        data: config.encode(),
        ..three().first_entry()
    }];
    let recovered = RecoveredState {
        hard_state,
        snapshot: None,
        entries,
        stored: None,
    };
    let mut node = Node::new(NodeOptions::new(NodeId(1)), recovered, 1, Instant(0)).unwrap();
    let actions = bootstrap(&mut node, Instant(1), three());
    assert_eq!(completion(&actions), Err(RequestError::LogExists));
    assert_eq!(node.config().voter_count(), 2, "the log is untouched");
}

#[test]
fn a_node_outside_the_list_is_refused_and_stays_empty() {
    let mut node = fresh(4);
    let actions = bootstrap(&mut node, Instant(1), three());
    assert_eq!(
        completion(&actions),
        Err(RequestError::NodeNotFound(NodeId(4)))
    );
    assert_eq!(node.cluster_id(), None);
    assert_eq!(node.last_index(), LogIndex(0));
}

#[test]
fn a_node_bootstrapped_alone_elects_itself_and_commits() {
    let mut c = Cluster::new(1);
    assert_eq!(c.leader(), Some(NodeId(1)));
    let id = c.propose(b"x");
    c.settle();
    assert!(matches!(c.result(id), Some(Ok(Completion::Written { .. }))));
}

/// A driver that repeats its bootstrap on every restart may keep only the
/// token and the members a `Bootstrap` reports: the list rebuilt from them
/// is the same list, with the same cluster id, so the repeat is idempotent.
#[test]
fn a_bootstrap_rebuilt_from_its_token_and_members_is_the_same() {
    let b = three();
    let rebuilt = Bootstrap::new(
        b.token(),
        b.config().members.iter().map(|m| (m.id, m.address.clone())),
    )
    .unwrap();
    assert_eq!(rebuilt, b);
    assert_eq!(rebuilt.cluster_id(), b.cluster_id());
}
