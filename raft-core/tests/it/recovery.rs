//! `Node::new` with what a driver recovered: every inconsistent handover is a
//! typed `RecoveryError`, never a panic, and whatever it accepts satisfies the
//! node's invariants.
use crate::harness::CLUSTER;
use bytes::Bytes;
use proptest::prelude::*;
use raft_core::*;

fn e(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Command,
        data: Bytes::new(),
    }
}

fn config(cluster_id: ClusterId, index: u64) -> Config {
    Config {
        cluster_id,
        index: LogIndex(index),
        max_node_id: NodeId(3),
        members: (1..=3)
            .map(|id| Member {
                id: NodeId(id),
                address: format!("n{id}"),
                role: MemberRole::Voter,
            })
            .collect(),
    }
}

fn config_entry(index: u64, term: u64, cluster_id: ClusterId) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::AddPeer,
        data: config(cluster_id, index).encode(),
    }
}

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
        config: config(CLUSTER, 1),
    }
}

fn state(term: u64, snapshot: Option<SnapshotMeta>, entries: Vec<LogEntry>) -> RecoveredState {
    RecoveredState {
        hard_state: HardState {
            cluster_id: Some(CLUSTER),
            term: Term(term),
            vote: None,
        },
        snapshot,
        entries,
        stored: None,
    }
}

fn recover(options: NodeOptions, recovered: RecoveredState) -> Result<Node, RecoveryError> {
    Node::new(options, recovered, 1, Instant(0))
}

fn opts() -> NodeOptions {
    NodeOptions::new(NodeId(1))
}

#[test]
fn consistent_states_recover() {
    let cases = [
        state(0, None, vec![]),
        state(3, None, vec![e(1, 1), e(2, 2), e(3, 3)]),
        state(3, Some(meta(5, 2)), vec![]),
        state(3, Some(meta(5, 2)), vec![e(6, 3)]),
        // A trailing window behind the snapshot.
        state(
            3,
            Some(meta(5, 2)),
            vec![e(3, 1), e(4, 2), e(5, 2), e(6, 3)],
        ),
        state(
            3,
            Some(meta(5, 2)),
            vec![e(1, 1), e(2, 1), e(3, 2), e(4, 2), e(5, 2)],
        ),
        state(3, Some(meta(5, 2)), vec![e(5, 2)]),
        // A trailing window's first entry is the log's base (the term before
        // it is unknown): a membership entry there, which the snapshot's
        // configuration covers, is not read, even if it no longer decodes.
        state(
            3,
            Some(SnapshotMeta {
                config: config(CLUSTER, 4),
                ..meta(5, 2)
            }),
            vec![
                LogEntry {
                    data: Bytes::from_static(b"not a config"),
                    ..config_entry(4, 2, CLUSTER)
                },
                e(5, 2),
                e(6, 3),
            ],
        ),
        // The last term a node may hold (one above is refused below).
        state(Term::LIMIT.0, None, vec![]),
        // A snapshot whose configuration is the entry at its own index.
        state(
            3,
            Some(SnapshotMeta {
                config: config(CLUSTER, 5),
                ..meta(5, 2)
            }),
            vec![],
        ),
    ];
    for recovered in cases {
        let node = recover(opts(), recovered.clone())
            .unwrap_or_else(|err| panic!("{recovered:?} refused: {err}"));
        node.check_invariants();
        // Every entry recovered is in the log, trailing window included.
        for e in &recovered.entries {
            assert_eq!(node.term_at(e.index), Some(e.term), "{recovered:?}");
        }
        assert_eq!(
            node.last_index(),
            recovered
                .entries
                .last()
                .map(|e| e.index)
                .or(recovered.snapshot.as_ref().map(|s| s.index))
                .unwrap_or_default()
        );
    }
}

#[test]
fn every_kind_of_inconsistent_state_is_a_typed_error() {
    let foreign = ClusterId(CLUSTER.0 + 1);
    let mut no_cluster = state(1, None, vec![e(1, 1)]);
    no_cluster.hard_state.cluster_id = None;
    let mut snapshot_no_cluster = state(1, Some(meta(2, 1)), vec![]);
    snapshot_no_cluster.hard_state.cluster_id = None;
    let mut foreign_snapshot = meta(5, 2);
    foreign_snapshot.config.cluster_id = foreign;
    let mut config_ahead = meta(5, 2);
    config_ahead.config.index = LogIndex(6);
    let mut invalid_config = meta(5, 2);
    invalid_config.config.max_node_id = NodeId(1);
    let bad_config_bytes = LogEntry {
        data: Bytes::from_static(b"not a config"),
        ..config_entry(2, 1, CLUSTER)
    };
    use RecoveryError::*;
    let cases: Vec<(&str, RecoveredState, RecoveryError)> = vec![
        (
            "entries that end before the snapshot",
            state(3, Some(meta(10, 2)), vec![e(1, 1), e(2, 1), e(3, 2)]),
            LogEndsBeforeSnapshot {
                last: LogIndex(3),
                snapshot: LogIndex(10),
            },
        ),
        (
            "a gap after the snapshot",
            state(3, Some(meta(5, 2)), vec![e(7, 3)]),
            GapAfterSnapshot {
                first: LogIndex(7),
                snapshot: LogIndex(5),
            },
        ),
        (
            "a log that does not start at 1 without a snapshot",
            state(3, None, vec![e(2, 1)]),
            GapAfterSnapshot {
                first: LogIndex(2),
                snapshot: LogIndex(0),
            },
        ),
        (
            "a gap inside the log",
            state(3, None, vec![e(1, 1), e(3, 1)]),
            NotContiguous(LogIndex(3)),
        ),
        (
            "an entry at index 0",
            state(3, None, vec![e(0, 1)]),
            NotContiguous(LogIndex(0)),
        ),
        (
            "indexes that run past the largest",
            state(
                3,
                Some(meta(u64::MAX - 1, 1)),
                vec![e(u64::MAX, 1), e(0, 1)],
            ),
            NotContiguous(LogIndex(0)),
        ),
        (
            "terms that decrease",
            state(3, None, vec![e(1, 2), e(2, 1)]),
            TermsDecrease(LogIndex(2)),
        ),
        (
            "an entry of term 0",
            state(3, None, vec![e(1, 0)]),
            TermsDecrease(LogIndex(1)),
        ),
        (
            "entries after the snapshot of a lower term",
            state(3, Some(meta(5, 2)), vec![e(6, 1)]),
            TermsDecrease(LogIndex(6)),
        ),
        (
            "the entry at the snapshot's index of another term",
            state(3, Some(meta(5, 2)), vec![e(4, 1), e(5, 1), e(6, 3)]),
            SnapshotTermMismatch(LogIndex(5)),
        ),
        (
            "a hard state term below the log's",
            state(1, None, vec![e(1, 1), e(2, 2)]),
            TermAboveHardState {
                log: Term(2),
                hard_state: Term(1),
            },
        ),
        (
            "a hard state term below the snapshot's",
            state(1, Some(meta(5, 2)), vec![]),
            TermAboveHardState {
                log: Term(2),
                hard_state: Term(1),
            },
        ),
        (
            "a hard state term above the limit",
            state(Term::LIMIT.0 + 1, None, vec![]),
            TermExhausted(Term(Term::LIMIT.0 + 1)),
        ),
        (
            "a membership entry that does not decode",
            state(3, None, vec![e(1, 1), bad_config_bytes]),
            BadConfigEntry(LogIndex(2)),
        ),
        (
            "a membership entry of another cluster",
            state(3, None, vec![e(1, 1), config_entry(2, 1, foreign)]),
            BadConfigEntry(LogIndex(2)),
        ),
        (
            "a snapshot at index 0",
            state(3, Some(meta(0, 1)), vec![]),
            BadSnapshot(LogIndex(0)),
        ),
        (
            "a snapshot of term 0",
            state(3, Some(meta(5, 0)), vec![]),
            BadSnapshot(LogIndex(5)),
        ),
        (
            "a snapshot of another cluster",
            state(3, Some(foreign_snapshot), vec![]),
            BadSnapshot(LogIndex(5)),
        ),
        (
            "a snapshot whose configuration is newer than itself",
            state(3, Some(config_ahead), vec![]),
            BadSnapshot(LogIndex(5)),
        ),
        (
            "a snapshot whose configuration is invalid",
            state(3, Some(invalid_config), vec![]),
            BadSnapshot(LogIndex(5)),
        ),
        (
            "a snapshot older than a membership entry it covers",
            state(
                3,
                Some(meta(5, 2)),
                vec![e(2, 1), config_entry(3, 1, CLUSTER), e(4, 2), e(5, 2)],
            ),
            BadSnapshot(LogIndex(5)),
        ),
        ("a log without a cluster", no_cluster, NoClusterId),
        (
            "a snapshot without a cluster",
            snapshot_no_cluster,
            NoClusterId,
        ),
    ];
    for (what, recovered, expected) in cases {
        match recover(opts(), recovered) {
            Ok(_) => panic!("{what}: accepted"),
            Err(err) => assert_eq!(err, expected, "{what}"),
        }
    }
}

#[test]
fn invalid_options_are_a_typed_error() {
    let base = opts();
    let cases = [
        NodeOptions {
            id: NodeId(0),
            ..base.clone()
        },
        NodeOptions {
            heartbeat_interval: base.election_timeout,
            ..base.clone()
        },
        NodeOptions {
            heartbeat_interval: Duration(0),
            ..base.clone()
        },
        // One nanosecond over half the election timeout.
        NodeOptions {
            heartbeat_interval: Duration(base.election_timeout.as_nanos() / 2 + 1),
            ..base.clone()
        },
        NodeOptions {
            batch_entries_max: 0,
            ..base.clone()
        },
        NodeOptions {
            batch_bytes_max: 0,
            ..base.clone()
        },
        NodeOptions {
            stream_budget_bytes: 0,
            ..base.clone()
        },
        NodeOptions {
            entry_bytes_max: wire::FRAME_BYTES_MAX as u64,
            ..base.clone()
        },
    ];
    for options in cases {
        let err = recover(options.clone(), RecoveredState::default()).err();
        assert!(
            matches!(err, Some(RecoveryError::InvalidOptions(_))),
            "{options:?}: {err:?}"
        );
        assert_eq!(
            err,
            options.validate().err().map(RecoveryError::InvalidOptions)
        );
    }
    let half = NodeOptions {
        heartbeat_interval: Duration(base.election_timeout.as_nanos() / 2),
        ..base.clone()
    };
    assert_eq!(
        half.validate(),
        Ok(()),
        "half the election timeout is allowed"
    );
}

/// A recovered state built from small random parts: mostly near-consistent,
/// so the checks are exercised one disagreement at a time.
fn arb_state() -> impl Strategy<Value = RecoveredState> {
    let entry = (0u64..12, 0u64..5, 0u8..4);
    (
        0u64..6,
        proptest::option::of((0u64..12, 0u64..5, 0u64..12, any::<bool>())),
        proptest::collection::vec(entry, 0..10),
        1u64..8,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(hs_term, snapshot, raw, start, contiguous, no_cluster)| {
            let entries = raw
                .into_iter()
                .enumerate()
                .map(|(i, (index, term, kind))| {
                    let index = if contiguous { start + i as u64 } else { index };
                    let cluster = if kind == 3 {
                        ClusterId(CLUSTER.0 + 1)
                    } else {
                        CLUSTER
                    };
                    if kind >= 2 {
                        config_entry(index, term, cluster)
                    } else {
                        e(index, term)
                    }
                })
                .collect();
            let snapshot = snapshot.map(|(index, term, config_index, foreign)| {
                let mut m = meta(index, term);
                m.config.index = LogIndex(config_index);
                if foreign {
                    m.config.cluster_id = ClusterId(CLUSTER.0 + 1);
                }
                m
            });
            let mut s = state(hs_term, snapshot, entries);
            if no_cluster {
                s.hard_state.cluster_id = None;
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Whatever the driver hands over, `Node::new` returns: an error, or a
    /// node whose invariants hold and that survives a tick.
    #[test]
    fn recovery_never_panics_and_accepted_states_hold_the_invariants(recovered in arb_state()) {
        if let Ok(mut node) = recover(opts(), recovered) {
            node.check_invariants();
            node.step(Instant(1), Event::Tick);
            node.check_invariants();
        }
    }

    /// A driver that leaves the log's front on disk (`stored`) recovers the
    /// same node as one that loads it all: same ends, terms and configuration.
    #[test]
    fn a_stored_front_recovers_the_same_log(recovered in arb_state(), budget in 0u64..400) {
        let Ok(full) = recover(opts(), recovered.clone()) else { return Ok(()) };
        let split = recovered.split_stored(budget);
        let split = recover(opts(), split).expect("the same log, stored in part, recovers");
        split.check_invariants();
        let (a, b) = (full.status(), split.status());
        // Only the newest entries that fit the budget stay in memory.
        prop_assert!(b.cached_bytes <= budget, "{} bytes cached, budget {}", b.cached_bytes, budget);
        prop_assert_eq!((a.first_index, a.last_index, a.durable), (b.first_index, b.last_index, b.durable));
        for i in a.first_index.0.saturating_sub(1)..=a.last_index.0 {
            prop_assert_eq!(full.term_at(LogIndex(i)), split.term_at(LogIndex(i)), "term at {}", i);
        }
        prop_assert_eq!(full.config(), split.config());
    }
}

#[test]
fn a_node_recovered_from_a_snapshot_and_its_trailing_log_runs_the_latest_config() {
    // The snapshot at 5 folded in the config of entry 3; the trailing log
    // still holds entry 3, and entry 7 added node 4 as a learner after it.
    let mut snapshot = meta(5, 2);
    snapshot.config = config(CLUSTER, 3);
    let mut grown = config(CLUSTER, 7);
    grown.max_node_id = NodeId(4);
    grown.members.push(Member {
        id: NodeId(4),
        address: "n4".into(),
        role: MemberRole::Learner,
    });
    let add_4 = LogEntry {
        index: LogIndex(7),
        term: Term(3),
        kind: EntryKind::AddPeer,
        data: grown.encode(),
    };
    let entries = vec![
        e(2, 1),
        config_entry(3, 2, CLUSTER),
        e(4, 2),
        e(5, 2),
        e(6, 3),
        add_4,
    ];
    let node = recover(opts(), state(3, Some(snapshot), entries)).unwrap();
    assert_eq!(node.config(), &grown);
    assert_eq!(
        node.config().member(NodeId(4)).unwrap().role,
        MemberRole::Learner
    );
}

#[test]
fn split_stored_keeps_in_memory_the_newest_entries_that_fit_the_budget() {
    let all = state(3, None, (1..=10).map(|i| e(i, 1 + i / 5)).collect());
    let one = e(1, 1).budget_bytes();
    for (budget, kept) in [
        (0, 0),
        (one - 1, 0),
        (one, 1),
        (3 * one, 3),
        (100 * one, 10),
    ] {
        let split = all.clone().split_stored(budget);
        let indexes: Vec<u64> = split.entries.iter().map(|e| e.index.0).collect();
        assert_eq!(
            indexes,
            (11 - kept..=10).collect::<Vec<_>>(),
            "budget {budget}"
        );
        // The rest is described, terms and all, for the driver to read back.
        match &split.stored {
            None => assert_eq!(kept, 10),
            Some(stored) => {
                assert_eq!(stored.last, LogIndex(10 - kept));
                assert_eq!(stored.term_starts[0], (LogIndex(1), Term(1)));
            }
        }
        let node = recover(opts(), split).unwrap();
        assert_eq!(node.last_index(), LogIndex(10));
        assert_eq!(node.term_at(LogIndex(7)), Some(Term(2)));
    }
}

#[test]
fn a_malformed_stored_front_is_a_typed_error() {
    let stored = |term_starts: Vec<(u64, u64)>, last: u64, configs: Vec<LogEntry>| StoredEntries {
        term_starts: term_starts
            .into_iter()
            .map(|(i, t)| (LogIndex(i), Term(t)))
            .collect(),
        last: LogIndex(last),
        config_entries: configs,
    };
    let with = |s: StoredEntries, entries: Vec<LogEntry>| RecoveredState {
        stored: Some(s),
        ..state(5, None, entries)
    };
    let cases = [
        (
            with(stored(vec![], 3, vec![]), vec![]),
            RecoveryError::NotContiguous(LogIndex(3)),
        ),
        (
            with(stored(vec![(1, 2), (3, 2)], 4, vec![]), vec![]),
            RecoveryError::TermsDecrease(LogIndex(3)),
        ),
        (
            with(stored(vec![(1, 1), (4, 2)], 3, vec![]), vec![]),
            RecoveryError::NotContiguous(LogIndex(4)),
        ),
        (
            with(stored(vec![(1, 1)], 3, vec![]), vec![e(5, 1)]),
            RecoveryError::NotContiguous(LogIndex(5)),
        ),
        (
            with(stored(vec![(1, 1), (3, 2)], 3, vec![]), vec![e(4, 1)]),
            RecoveryError::TermsDecrease(LogIndex(4)),
        ),
        (
            with(
                stored(vec![(1, 1)], 3, vec![config_entry(2, 2, CLUSTER)]),
                vec![],
            ),
            RecoveryError::BadConfigEntry(LogIndex(2)),
        ),
        (
            // Membership entries listed twice (or out of order).
            with(
                stored(
                    vec![(1, 1)],
                    3,
                    vec![config_entry(2, 1, CLUSTER), config_entry(2, 1, CLUSTER)],
                ),
                vec![],
            ),
            RecoveryError::BadConfigEntry(LogIndex(2)),
        ),
        (
            with(stored(vec![(2, 1)], 3, vec![]), vec![]),
            RecoveryError::GapAfterSnapshot {
                first: LogIndex(2),
                snapshot: LogIndex(0),
            },
        ),
    ];
    for (recovered, expected) in cases {
        let got = recover(opts(), recovered.clone()).err();
        assert_eq!(got, Some(expected), "{recovered:?}");
    }
    // And a well-formed one recovers, its membership entry included.
    let good = with(
        stored(vec![(1, 1), (3, 2)], 3, vec![config_entry(2, 1, CLUSTER)]),
        vec![e(4, 2)],
    );
    let node = recover(opts(), good).expect("recovers");
    assert_eq!(node.config().index, LogIndex(2));
    assert_eq!(node.term_at(LogIndex(2)), Some(Term(1)));
}

#[test]
fn a_snapshot_with_a_trailing_log_from_entry_1_keeps_the_whole_log() {
    // The driver compacted nothing yet behind its snapshot at 5: the log it
    // hands over still starts at entry 1, so the node holds entry 1 (its
    // term is known: the term before it is 0) and starts its log there.
    let entries = vec![e(1, 1), e(2, 1), e(3, 2), e(4, 2), e(5, 2), e(6, 3)];
    let node = recover(opts(), state(3, Some(meta(5, 2)), entries.clone())).unwrap();
    node.check_invariants();
    assert_eq!(node.status().first_index, LogIndex(1));
    assert_eq!(node.term_at(LogIndex(1)), Some(Term(1)));
    assert_eq!(
        node.log_entries().cloned().collect::<Vec<_>>(),
        entries,
        "every entry handed over"
    );
}
