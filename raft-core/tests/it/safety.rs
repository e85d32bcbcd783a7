//! Raft §5.4 (safety): the current-term commit rule (Figure 8), leader
//! completeness, and state-machine safety under repeated crashes.
use crate::harness::*;
use bytes::Bytes;
use raft_core::*;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn config3() -> Config {
    Config {
        cluster_id: ClusterId(9),
        index: LogIndex(1),
        max_node_id: n(3),
        members: (1..=3)
            .map(|i| Member {
                id: n(i),
                address: format!("n{i}"),
                role: MemberRole::Voter,
            })
            .collect(),
    }
}

fn entry(index: u64, term: u64, kind: EntryKind, data: Bytes) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind,
        data,
    }
}

/// Figure 8: an entry of an earlier term that reaches a majority is not
/// committed by counting replicas; only an entry of the current term commits
/// it (and everything before).
#[test]
fn an_earlier_term_entry_is_not_committed_by_replica_count() {
    assert_eq!(
        figure_8_commit_after_old_entry_reaches_majority(|_| {}),
        LogIndex(0)
    );
}

/// Proof that the test above can fail: with the rule switched off, the
/// earlier-term entry is counted committed.
#[cfg(feature = "mutants")]
#[test]
fn figure_8_test_fails_when_the_current_term_rule_is_removed() {
    let broken = |o: &mut NodeOptions| o.mutants.commit_by_count = true;
    assert_eq!(
        figure_8_commit_after_old_entry_reaches_majority(broken),
        LogIndex(2)
    );
}

/// Returns the leader's commit index once the term-2 entry is durable on a
/// majority but the term-4 Nop is not.
fn figure_8_commit_after_old_entry_reaches_majority(
    mutate: impl FnOnce(&mut NodeOptions),
) -> LogIndex {
    let init = entry(1, 1, EntryKind::Initialize, config3().encode());
    let old = entry(2, 2, EntryKind::Command, Bytes::from_static(b"from term 2"));
    let mut options = NodeOptions::new(n(1));
    mutate(&mut options);
    let mut c = Cluster::empty(options);
    // Three nodes whose logs are set up by hand:
    // n1 holds [1/1, 2/2] and will lead term 4; n2, n3 hold only [1/1].
    for (id, entries, term) in [
        (1, vec![init.clone(), old.clone()], 3),
        (2, vec![init.clone()], 3),
        (3, vec![init.clone()], 3),
    ] {
        c.add_host(n(id), Some(ClusterId(9)));
        let h = c.host_mut(n(id));
        h.disk.entries = entries;
        h.disk.hard_state = HardState {
            cluster_id: Some(ClusterId(9)),
            term: Term(term),
            vote: None,
        };
        c.crash(n(id));
        c.restart(n(id));
    }
    // Followers will make index 2 durable but not the Nop at 3.
    for id in [2, 3] {
        c.host_mut(n(id)).persist = Persist::Manually;
    }
    // n1 wins (its log is the most up to date); n2 and n3 cannot reach each
    // other, so neither can win with the other's vote.
    c.cut(n(2), n(3));
    c.cut(n(3), n(2));
    c.run_for(Duration::from_millis(1));
    let mut t = 0;
    while c.leader() != Some(n(1)) {
        c.run_for(Duration::from_millis(50));
        t += 1;
        assert!(t < 200, "n1 should win");
    }
    c.heal();
    c.settle();
    for id in [2, 3] {
        c.persist(n(id), LogIndex(2));
    }
    c.settle();
    let leader = &c.node(n(1));
    assert!(
        leader
            .status()
            .followers
            .iter()
            .any(|f| f.match_index >= LogIndex(2)),
        "index 2 is on a majority"
    );
    let commit_by_count = leader.commit_index();
    for id in [2, 3] {
        c.persist(n(id), LogIndex(u64::MAX));
    }
    c.settle();
    assert_eq!(
        c.node(n(1)).commit_index(),
        LogIndex(3),
        "the term-4 Nop commits it all"
    );
    commit_by_count
}

/// No acknowledged write is ever lost, whatever crashes happen: every write
/// completed `Written` is applied, at its index, on every node in the end.
#[test]
fn acknowledged_writes_survive_repeated_leader_crashes() {
    let mut c = Cluster::new(5);
    let mut acked = Vec::new();
    let mut pending = Vec::new();
    for round in 0..8u64 {
        for i in 0..5 {
            let data = format!("r{round}w{i}");
            let id = c.propose(data.as_bytes());
            pending.push((id, data));
        }
        c.settle();
        let leader = c.leader().unwrap();
        c.crash(leader);
        c.run_for(Duration::from_secs(2));
        c.restart(leader);
        c.run_for(Duration::from_millis(500));
    }
    c.run_for(Duration::from_secs(2));
    for (id, data) in pending {
        if let Some(Ok(Completion::Written { index })) = c.result(id) {
            acked.push((index, data));
        }
    }
    assert!(
        acked.len() >= 20,
        "most writes were acknowledged: {}",
        acked.len()
    );
    for (node, h) in c.hosts() {
        for (index, data) in &acked {
            let e = h
                .applied()
                .iter()
                .find(|e| e.index == *index)
                .unwrap_or_else(|| panic!("node {node} lacks {index}"));
            assert_eq!(e.data, data.as_bytes(), "node {node} index {index}");
        }
    }
    c.assert_state_machine_safety();
}

/// Leader completeness: whoever wins an election holds every committed entry.
#[test]
fn every_new_leader_holds_all_committed_entries() {
    let mut c = Cluster::new(3);
    for round in 0..6 {
        c.propose(format!("x{round}").as_bytes());
        c.settle();
        let leader = c.leader().unwrap();
        let committed: Vec<(LogIndex, Term)> = c
            .node(leader)
            .log_entries()
            .filter(|e| e.index <= c.node(leader).commit_index())
            .map(|e| (e.index, e.term))
            .collect();
        c.crash(leader);
        c.run_for(Duration::from_secs(2));
        let new = c.leader().unwrap();
        for (i, t) in &committed {
            assert_eq!(
                c.node(new).term_at(*i),
                Some(*t),
                "new leader {new} lacks committed {i}"
            );
        }
        c.restart(leader);
        c.run_for(Duration::from_millis(300));
    }
}

#[test]
fn messages_from_another_cluster_or_for_another_node_are_refused() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    let term = c.node(f).term();
    let ours = c.node(f).cluster_id().unwrap();
    let hb = |cluster_id: ClusterId, to: NodeId| Message {
        cluster_id,
        from: n(7),
        to,
        term: term.next().next(),
        body: MessageBody::Heartbeat {
            commit: LogIndex(100),
            round: 1,
        },
    };
    c.host_mut(f).clear_actions();
    c.step(f, Event::MessageReceived(hb(ClusterId(ours.0 ^ 0xff), f)));
    c.step(f, Event::MessageReceived(hb(ours, n(42))));
    let h = c.host(f);
    assert_eq!(h.node().term(), term, "neither message was trusted");
    let reasons: Vec<&Refusal> = h
        .actions()
        .iter()
        .filter_map(|a| {
            if let Action::Refused { reason, .. } = a {
                Some(reason)
            } else {
                None
            }
        })
        .collect();
    assert!(
        matches!(reasons[0], Refusal::ForeignCluster { .. }),
        "{reasons:?}"
    );
    assert!(matches!(reasons[1], Refusal::Misdirected(_)), "{reasons:?}");
}

#[test]
fn a_stream_from_a_foreign_cluster_or_a_non_member_is_closed() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let term = c.node(leader).term();
    let cluster_id = c.node(leader).cluster_id().unwrap();
    let open = |cluster_id: ClusterId, follower: NodeId| StreamOpen {
        cluster_id,
        follower,
        leader,
        term,
        probe_index: LogIndex(0),
        probe_term: Term(0),
        commit: LogIndex(0),
        resume: None,
    };
    c.host_mut(leader).clear_actions();
    c.step(
        leader,
        Event::StreamOpened {
            stream: StreamId(1),
            open: open(ClusterId(cluster_id.0 ^ 1), n(2)),
        },
    );
    c.step(
        leader,
        Event::StreamOpened {
            stream: StreamId(2),
            open: open(cluster_id, n(77)),
        },
    );
    let actions = c.host(leader).actions();
    // Each is closed towards the follower its handshake named.
    assert!(actions.contains(&Action::CloseStream {
        stream: StreamId(1),
        peer: n(2),
    }));
    assert!(actions.contains(&Action::CloseStream {
        stream: StreamId(2),
        peer: n(77),
    }));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SendFrame { .. })),
        "nothing streamed to strangers"
    );
}

/// A stream lives and dies with the term it was opened in: a member's open
/// that names the leader but an earlier term (sent before the follower
/// learned of this one, or delayed in the network) is refused and closed,
/// and the leader streams nothing on it, even though it leads now.
#[test]
fn a_leader_refuses_a_stream_opened_for_an_earlier_term() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let follower = c.others(leader)[0];
    let term = c.node(leader).term();
    assert!(term > Term(1), "elected after the bootstrap term: {term}");
    let open = StreamOpen {
        cluster_id: c.node(leader).cluster_id().unwrap(),
        follower,
        leader,
        term: Term(term.0 - 1),
        probe_index: LogIndex(0),
        probe_term: Term(0),
        commit: LogIndex(0),
        resume: None,
    };
    c.host_mut(leader).clear_actions();
    c.step(
        leader,
        Event::StreamOpened {
            stream: StreamId(99),
            open,
        },
    );
    let actions = c.host(leader).actions();
    assert!(
        actions.contains(&Action::Refused {
            peer: follower,
            reason: Refusal::NotLeaderOfTerm,
        }),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::CloseStream {
        stream: StreamId(99),
        peer: follower,
    }));
    assert!(
        !actions.iter().any(|a| matches!(
            a,
            Action::SendFrame {
                stream: StreamId(99),
                ..
            }
        )),
        "nothing streamed on a stream of another term: {actions:?}"
    );
}

/// A follower that misbehaves on its stream (acks entries it was never sent,
/// or sends the leader a frame only a leader sends) loses that stream: the
/// leader refuses it and closes it, and streams to the follower again only
/// once it opens a fresh one.
#[test]
fn a_leader_closes_the_stream_of_a_follower_that_misbehaves_on_it() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let follower = c.others(leader)[0];
    let stream_to = |c: &Cluster| {
        c.host(leader)
            .actions()
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::SendFrame { stream, peer, .. } if *peer == follower => Some(*stream),
                _ => None,
            })
            .expect("the leader streams to the follower")
    };
    let bad_frames = [
        Frame::Ack {
            durable: LogIndex(1_000),
        },
        Frame::Chunk {
            term: c.node(leader).term(),
            prev_index: LogIndex(0),
            prev_term: Term(0),
            leader_commit: LogIndex(0),
            entries: Vec::new().into(),
        },
    ];
    for frame in bad_frames {
        c.commit(b"x");
        let stream = stream_to(&c);
        c.host_mut(leader).clear_actions();
        c.step(leader, Event::FrameReceived { stream, frame });
        let actions = c.host(leader).actions();
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Refused {
                    peer,
                    reason: Refusal::Misbehaving(_),
                } if *peer == follower
            )),
            "{actions:?}"
        );
        assert!(
            actions.contains(&Action::CloseStream {
                stream,
                peer: follower
            }),
            "{actions:?}"
        );
        // The follower reopens, and what is committed next reaches it.
        let index = c.commit(b"y");
        c.run_until_applied(index);
        assert_ne!(stream_to(&c), stream, "a fresh stream");
    }
}
