//! Client interaction (Raft §8): proposals answered once committed, with
//! not-leader hints; linearizable reads by ReadIndex and by an opt-in lease;
//! outcomes reported as definite or unknown.
use crate::harness::*;
use raft_core::*;

#[test]
fn a_proposal_to_a_follower_is_refused_with_a_leader_hint() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    let id = c.request_id();
    c.push(
        f,
        Event::ProposeRequested {
            proposals: vec![Proposal {
                id,
                data: "x".into(),
            }],
        },
    );
    c.settle();
    assert_eq!(
        c.result(id),
        Some(Err(RequestError::NotLeader {
            leader: Some(leader),
            outcome: Outcome::Definite
        }))
    );
    // What a client's retry logic asks: never applied, safe to retry.
    let err = c.result(id).unwrap().unwrap_err();
    assert_eq!(err.outcome(), Outcome::Definite);
}

#[test]
fn a_proposal_whose_leader_is_deposed_has_an_unknown_outcome() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.isolate(leader);
    let id = c.propose(b"maybe");
    c.settle();
    c.run_for(Duration::from_secs(2));
    assert_eq!(
        c.result(id),
        Some(Err(RequestError::NotLeader {
            leader: None,
            outcome: Outcome::Unknown
        }))
    );
    // A blind retry could apply it twice: the error says so.
    let err = c.result(id).unwrap().unwrap_err();
    assert_eq!(err.outcome(), Outcome::Unknown);
}

#[test]
fn a_read_index_waits_for_a_quorum_to_confirm_leadership() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let commit = c.node(leader).commit_index();
    c.isolate(leader);
    // Reads share a round sent in the same instant: arrive after it.
    c.advance(Duration::from_millis(1));
    let id = c.request_id();
    c.record_actions(true);
    c.push(leader, Event::ReadRequested { id });
    c.settle();
    assert_eq!(c.result(id), None, "no quorum answered the heartbeat round");
    // Answers of an earlier term (late answers to an earlier leader's
    // heartbeats, numbered like this round) confirm nothing: they say nothing
    // of who leads now.
    let round = *rounds_sent(&c, leader)
        .last()
        .expect("the read's heartbeat round");
    let term = c.node(leader).term();
    for from in c.others(leader) {
        let answer = Message {
            cluster_id: c.node(leader).cluster_id().unwrap(),
            from,
            to: leader,
            term: Term(term.0 - 1),
            body: MessageBody::HeartbeatResponse {
                round,
                streaming: true,
            },
        };
        c.push(leader, Event::MessageReceived(answer));
    }
    c.settle();
    assert_eq!(c.result(id), None, "stale answers confirm no round");
    assert_eq!(
        (c.node(leader).role(), c.node(leader).term()),
        (Role::Leader, term)
    );
    read_served_once_healed(&mut c, id, commit);
}

#[test]
fn a_read_on_a_fresh_leader_waits_for_its_first_commit() {
    let mut c = Cluster::new(3);
    let old = c.leader().unwrap();
    c.crash(old);
    for id in c.ids() {
        c.host_mut(id).persist = Persist::Manually;
    }
    c.run_for(Duration::from_secs(2));
    let leader = c.leader().unwrap();
    let id = c.request_id();
    c.push(leader, Event::ReadRequested { id });
    c.settle();
    assert_eq!(c.result(id), None, "the Nop of this term has not committed");
    let ids = c.ids();
    for n in ids {
        c.persist(n, LogIndex(u64::MAX));
    }
    c.run_for(Duration::from_millis(200));
    let nop = c.node(leader).last_index();
    assert_eq!(c.result(id), Some(Ok(Completion::Read { index: nop })));
}

/// A lease read is served at once, with no heartbeat round, while the lease
/// holds; the lease comes only from heartbeat rounds a quorum answered, and
/// ends a lease duration (shorter than the election timeout, so before anyone
/// else could have been elected) after the last of them was sent.
#[test]
fn lease_reads_skip_the_heartbeat_round_while_the_lease_holds() {
    let opts = NodeOptions {
        lease_reads: true,
        ..NodeOptions::new(NodeId(1))
    };
    let lease = opts.lease_duration();
    let mut c = Cluster::with_options(3, opts);
    // Well past a lease from the start of the term: the lease now held comes
    // from rounds the followers answered since.
    c.run_for(Duration::from_secs(1));
    let leader = c.leader().unwrap();
    // Up to the leader's next heartbeat round, answered in the same instant:
    // the last round a quorum answers.
    c.record_actions(true);
    loop {
        c.host_mut(leader).clear_actions();
        c.wake_next();
        let sent_round = c.host(leader).actions().iter().any(|a| {
            matches!(
                a,
                Action::Send(Message {
                    body: MessageBody::Heartbeat { .. },
                    ..
                })
            )
        });
        if sent_round {
            break;
        }
    }
    let answered = c.now();
    c.isolate(leader); // answers must come from the lease alone
    let read_at = |c: &mut Cluster, at: Instant| {
        c.advance_to(at);
        let id = c.request_id();
        c.push(leader, Event::ReadRequested { id });
        c.settle();
        c.result(id)
    };
    let served = read_at(&mut c, answered + lease - Duration(1));
    assert!(
        matches!(served, Some(Ok(Completion::Read { .. }))),
        "{served:?}"
    );
    let waiting = read_at(&mut c, answered + lease);
    assert_eq!(
        waiting, None,
        "the lease ran out: the read waits for a round"
    );
    assert_eq!(c.node(leader).role(), Role::Leader);
}

/// A new leader holds no lease until a quorum answered one of its heartbeat
/// rounds: a round merely sent buys nothing, even once the leader's first
/// entry committed over its streams.
#[test]
fn a_new_leader_whose_heartbeat_rounds_went_unanswered_serves_no_lease_read() {
    let opts = NodeOptions {
        lease_reads: true,
        ..NodeOptions::new(NodeId(1))
    };
    let mut c = Cluster::with_options(3, opts);
    let old = c.leader().unwrap();
    c.isolate(old);
    // Every heartbeat answer is lost from now on; streams carry the entries
    // and their acks as usual.
    let lose_answers = |c: &mut Cluster| {
        c.take_queued(|_, e| {
            matches!(
                e,
                Event::MessageReceived(Message {
                    body: MessageBody::HeartbeatResponse { .. },
                    ..
                })
            )
        });
    };
    let leader = loop {
        if let Some(l) = c.leader().filter(|&l| l != old) {
            break l;
        }
        assert!(
            c.now() < Instant(0) + Duration::from_secs(10),
            "no new leader"
        );
        c.advance(Duration::from_millis(5));
        for id in c.ids() {
            if c.node(id).next_deadline() <= c.now() {
                c.push(id, Event::Tick);
            }
        }
        loop {
            lose_answers(&mut c);
            if !c.deliver_next() {
                break;
            }
        }
    };
    // The term's first entry committed: reads need not wait for it.
    let nop = c.node(leader).last_index();
    assert_eq!(c.node(leader).commit_index(), nop);
    let id = c.request_id();
    c.push(leader, Event::ReadRequested { id });
    loop {
        lose_answers(&mut c);
        if !c.deliver_next() {
            break;
        }
    }
    assert_eq!(c.result(id), None, "no answered round, no lease");
    // Answers that arrive confirm the read's round.
    c.run_for(Duration::from_millis(200));
    assert_eq!(c.result(id), Some(Ok(Completion::Read { index: nop })));
}

#[test]
fn a_leader_that_sent_timeout_now_serves_no_lease_read_for_the_rest_of_its_term() {
    let opts = NodeOptions {
        lease_reads: true,
        ..NodeOptions::new(NodeId(1))
    };
    let mut c = Cluster::with_options(3, opts);
    c.run_for(Duration::from_millis(200));
    let leader = c.leader().unwrap();
    let target = c.others(leader)[0];
    let term = c.node(leader).term();
    // The TimeoutNow is lost, as it may be; the leader cannot tell whether the
    // target received it and won a later term.
    c.cut(leader, target);
    let transfer = request_transfer(&mut c, leader, Some(target));
    c.settle();
    c.heal();
    // Heartbeat rounds keep being confirmed after the transfer began, and the
    // transfer is abandoned.
    c.run_for(Duration::from_millis(600));
    assert_eq!(
        c.result(transfer),
        Some(Err(RequestError::TransferUnconfirmed(target)))
    );
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.node(leader).term(), term, "still the same term");
    c.isolate(leader); // only a lease could answer now
    let id = c.request_id();
    c.push(leader, Event::ReadRequested { id });
    c.settle();
    assert_eq!(c.result(id), None, "the read waits for a heartbeat round");
}

#[test]
fn initialize_is_refused_on_a_node_that_already_has_a_cluster() {
    let mut c = Cluster::new(1);
    let id = c.request_id();
    c.push(
        NodeId(1),
        Event::InitializeRequested {
            id,
            address: "again".into(),
        },
    );
    c.settle();
    assert_eq!(c.result(id), Some(Err(RequestError::AlreadyInitialized)));
}

#[test]
fn requests_to_an_uninitialized_node_say_so() {
    let mut node = Node::new(
        NodeOptions::new(NodeId(5)),
        RecoveredState::default(),
        1,
        Instant(0),
    )
    .unwrap();
    let actions = node.step(Instant(1), Event::ReadRequested { id: RequestId(1) });
    assert_eq!(
        actions,
        vec![Action::CompleteRequest {
            id: RequestId(1),
            result: Err(RequestError::NotInitialized)
        }]
    );
}

#[test]
fn a_command_larger_than_the_entry_limit_is_refused_definitely() {
    let opts = NodeOptions {
        entry_bytes_max: 100,
        ..NodeOptions::new(NodeId(1))
    };
    let mut c = Cluster::with_options(1, opts);
    let big = c.propose(&[0u8; 101]);
    let ok = c.propose(&[0u8; 100]);
    c.settle();
    assert_eq!(
        c.result(big),
        Some(Err(RequestError::TooLarge {
            bytes: 101,
            limit: 100
        }))
    );
    assert!(matches!(c.result(ok), Some(Ok(Completion::Written { .. }))));
    // In one batch (a driver gathers queued proposals into one event), the
    // one too large is refused and the others are written at consecutive
    // indexes; the log never holds the refused one.
    let leader = c.leader().unwrap();
    let first = c.node(leader).last_index().next();
    let ids: Vec<RequestId> = (0..3).map(|_| c.request_id()).collect();
    let proposals = [&[1u8; 10][..], &[2u8; 101], &[3u8; 100]]
        .iter()
        .zip(&ids)
        .map(|(data, &id)| Proposal {
            id,
            data: data.to_vec().into(),
        })
        .collect();
    c.push(leader, Event::ProposeRequested { proposals });
    c.settle();
    let index = |id| match c.result(id) {
        Some(Ok(Completion::Written { index, .. })) => index,
        other => panic!("{other:?}"),
    };
    assert_eq!((index(ids[0]), index(ids[2])), (first, first.next()));
    assert!(matches!(
        c.result(ids[1]),
        Some(Err(RequestError::TooLarge { bytes: 101, .. }))
    ));
    assert_eq!(c.node(leader).last_index(), first.next());
    assert!(c.node(leader).log_entries().all(|e| e.data.len() <= 100));
}

/// Backpressure: a leader holds at most `pending_requests_max` client
/// requests waiting for their answer; one more is refused with `Busy` at
/// once, and once those are answered it takes requests again.
#[test]
fn a_leader_with_its_fill_of_waiting_requests_refuses_the_next_as_busy() {
    let mut options = immediate_commit_notices(NodeOptions::new(NodeId(1)));
    options.pending_requests_max = 2;
    let mut c = Cluster::with_options(3, options);
    let leader = c.leader().unwrap();
    let propose = |c: &mut Cluster, data: &str| {
        let id = c.request_id();
        let proposals = vec![Proposal {
            id,
            data: data.to_string().into(),
        }];
        c.push(leader, Event::ProposeRequested { proposals });
        id
    };
    // All three reach the leader before any follower answers.
    let first = propose(&mut c, "a");
    let second = propose(&mut c, "b");
    let third = propose(&mut c, "c");
    c.settle();
    assert!(
        matches!(c.result(first), Some(Ok(_))),
        "{:?}",
        c.result(first)
    );
    assert!(
        matches!(c.result(second), Some(Ok(_))),
        "{:?}",
        c.result(second)
    );
    assert_eq!(c.result(third), Some(Err(RequestError::Busy)));
    let fourth = propose(&mut c, "d");
    c.settle();
    assert!(
        matches!(c.result(fourth), Some(Ok(_))),
        "{:?}",
        c.result(fourth)
    );
    assert_eq!(c.commands(leader).last().map(|d| &d[..]), Some(&b"d"[..]));
}

/// Reads waiting for their confirmation round count toward the same limit
/// as writes.
#[test]
fn reads_waiting_for_their_round_count_toward_the_limit_of_waiting_requests() {
    let mut options = immediate_commit_notices(NodeOptions::new(NodeId(1)));
    options.pending_requests_max = 2;
    let mut c = Cluster::with_options(3, options);
    let leader = c.leader().unwrap();
    let read = |c: &mut Cluster| {
        let id = c.request_id();
        c.push(leader, Event::ReadRequested { id });
        id
    };
    // Past the last heartbeat round, so the reads need one of their own;
    // all three reach the leader before any follower answers it.
    c.advance(Duration::from_millis(1));
    let first = read(&mut c);
    let second = read(&mut c);
    let third = read(&mut c);
    c.settle();
    for id in [first, second] {
        assert!(matches!(c.result(id), Some(Ok(_))), "{:?}", c.result(id));
    }
    assert_eq!(c.result(third), Some(Err(RequestError::Busy)));
}

/// Reads a new leader holds until an entry of its term commits (thesis
/// §6.4) count toward the same limit.
#[test]
fn reads_waiting_for_a_new_leaders_first_commit_count_toward_the_limit() {
    let mut options = immediate_commit_notices(NodeOptions::new(NodeId(1)));
    options.pending_requests_max = 2;
    let mut c = Cluster::with_options(3, options);
    let old = c.leader().unwrap();
    let [a, b] = c.others(old)[..] else { panic!() };
    // The next leader's first entry cannot commit while the follower left
    // beside it keeps its disk to itself.
    c.host_mut(b).persist = Persist::Manually;
    c.isolate(old);
    c.run_until("a new leader", |c| {
        c.leader().is_some_and(|l| l != old) && c.node(a).role() == Role::Leader
    });
    let reads: Vec<RequestId> = (0..3)
        .map(|_| {
            let id = c.request_id();
            c.push(a, Event::ReadRequested { id });
            id
        })
        .collect();
    c.settle();
    assert_eq!(c.result(reads[0]), None, "waits for the first commit");
    assert_eq!(c.result(reads[1]), None, "waits for the first commit");
    assert_eq!(c.result(reads[2]), Some(Err(RequestError::Busy)));
    c.persist(b, LogIndex(u64::MAX));
    c.run_for(Duration::from_millis(100));
    for &id in &reads[..2] {
        assert!(
            matches!(c.result(id), Some(Ok(Completion::Read { .. }))),
            "{:?}",
            c.result(id)
        );
    }
}

/// Writes and reads waiting together share the one limit: a leader with a
/// write and a read waiting is full at two.
#[test]
fn waiting_writes_and_reads_count_together_toward_the_limit() {
    let mut options = immediate_commit_notices(NodeOptions::new(NodeId(1)));
    options.pending_requests_max = 2;
    let mut c = Cluster::with_options(3, options);
    let leader = c.leader().unwrap();
    c.advance(Duration::from_millis(1));
    let write = c.request_id();
    let proposals = vec![Proposal {
        id: write,
        data: "a".to_string().into(),
    }];
    c.push(leader, Event::ProposeRequested { proposals });
    let read = c.request_id();
    c.push(leader, Event::ReadRequested { id: read });
    let third = c.request_id();
    let proposals = vec![Proposal {
        id: third,
        data: "b".to_string().into(),
    }];
    c.push(leader, Event::ProposeRequested { proposals });
    c.settle();
    for id in [write, read] {
        assert!(matches!(c.result(id), Some(Ok(_))), "{:?}", c.result(id));
    }
    assert_eq!(c.result(third), Some(Err(RequestError::Busy)));
}

/// Initialized clusters get cluster ids of their own (drawn from the node's
/// seed), so nodes of different clusters refuse each other's messages.
#[test]
fn separately_initialized_clusters_get_different_cluster_ids() {
    let ids: std::collections::BTreeSet<ClusterId> = (1..=16)
        .map(|seed| {
            let mut node = Node::new(
                NodeOptions::new(NodeId(1)),
                RecoveredState::default(),
                seed,
                Instant(0),
            )
            .unwrap();
            node.step(
                Instant(1),
                Event::InitializeRequested {
                    id: RequestId(1),
                    address: "n1".into(),
                },
            );
            node.cluster_id().expect("initialized")
        })
        .collect();
    assert_eq!(ids.len(), 16, "{ids:?}");
    assert!(!ids.contains(&ClusterId(0)));
}

/// The leader gathers its voters' heartbeat rounds on the stack for up to
/// 16 voters and in a vector beyond: clusters on either side of that line
/// confirm reads alike.
#[test]
fn clusters_of_16_and_17_voters_confirm_reads() {
    for voters in [16, 17] {
        let mut c = Cluster::new(voters);
        let leader = c.leader().unwrap();
        assert_eq!(c.node(leader).config().voter_count(), voters as usize);
        let written = c.commit(b"x");
        c.advance(Duration::from_millis(1));
        let id = c.request_id();
        c.push(leader, Event::ReadRequested { id });
        c.settle();
        assert_eq!(
            c.result(id),
            Some(Ok(Completion::Read { index: written })),
            "{voters} voters"
        );
    }
}

/// The heartbeat rounds `node` sent among the actions recorded since the last clear.
/// Heals the network: the read `id` is then served at `index`.
fn read_served_once_healed(c: &mut Cluster, id: RequestId, index: LogIndex) {
    c.heal();
    c.run_for(Duration::from_millis(200));
    assert_eq!(c.result(id), Some(Ok(Completion::Read { index })));
}

/// Takes out of the network the one message queued for `to` whose body
/// `is` picks.
fn take_one_queued(c: &mut Cluster, to: NodeId, is: fn(&MessageBody) -> bool) -> Event {
    let mut taken =
        c.take_queued(|t, e| t == to && matches!(e, Event::MessageReceived(m) if is(&m.body)));
    assert_eq!(taken.len(), 1, "{taken:?}");
    taken.pop().unwrap().1
}

/// The heartbeat rounds `node` sent, in order, among its recorded actions.
fn rounds_sent(c: &Cluster, node: NodeId) -> Vec<u64> {
    c.host(node)
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::Send(Message {
                body: MessageBody::Heartbeat { round, .. },
                ..
            }) => Some(*round),
            _ => None,
        })
        .collect()
}

/// A follower answers a heartbeat of an earlier term in its own, later term
/// (so that the stale leader learns of it). When the node that sent it leads
/// that later term, the answer must not count for the round of this term
/// that happens to carry the same number: it was given before the read
/// arrived and says nothing of who leads since.
#[test]
fn a_late_answer_to_a_heartbeat_of_an_earlier_term_confirms_no_read() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.run_for(Duration::from_secs(3)); // many rounds in this term
    // The leader's next heartbeat to `f` is held back in the network.
    c.advance_to(c.node(leader).next_deadline());
    c.push(leader, Event::Tick);
    c.deliver_next();
    let stale_heartbeat =
        take_one_queued(&mut c, f, |b| matches!(b, MessageBody::Heartbeat { .. }));
    let Event::MessageReceived(Message {
        body: MessageBody::Heartbeat {
            round: stale_round, ..
        },
        ..
    }) = stale_heartbeat
    else {
        unreachable!("taken as a heartbeat")
    };
    c.settle();
    // Leadership goes to `f` and comes back: a later term, whose rounds are
    // numbered from 1 again.
    c.elect(f);
    c.elect(leader);
    let term = c.node(leader).term();
    c.record_actions(true);
    c.clear_actions();
    // Up to the round just before the held one's number.
    loop {
        let last = rounds_sent(&c, leader).last().copied();
        assert!(last.is_none_or(|r| r < stale_round), "{last:?}");
        if last == Some(stale_round - 1) {
            break;
        }
        c.wake_next();
    }
    // The held heartbeat arrives at last; `f` answers it in the new term.
    c.push(f, stale_heartbeat);
    c.deliver_next();
    let answer = take_one_queued(&mut c, leader, |b| {
        matches!(b, MessageBody::HeartbeatResponse { .. })
    });
    assert!(matches!(&answer, Event::MessageReceived(m) if m.term == term));
    c.settle();
    // From now on nobody hears the leader: the read's round goes unanswered.
    c.isolate(leader);
    c.advance(Duration::from_millis(1));
    let commit = c.node(leader).commit_index();
    c.clear_actions();
    let id = c.request_id();
    c.push(leader, Event::ReadRequested { id });
    c.settle();
    assert_eq!(rounds_sent(&c, leader), vec![stale_round; 2]);
    assert_eq!(c.result(id), None);
    c.push(leader, answer);
    c.settle();
    assert_eq!(
        c.result(id),
        None,
        "an answer given before the read confirms nothing"
    );
    read_served_once_healed(&mut c, id, commit);
}

/// A leader cut off from its quorum steps down by check-quorum and answers
/// every request it holds: none is left waiting on a leader that is gone.
/// Writes and the membership change may still commit under a successor
/// (`Unknown`); the read was never served (`Definite`); the transfer waits to
/// hear who leads next, and hearing nobody, says so.
#[test]
fn a_leader_that_loses_its_quorum_answers_every_waiting_request() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let target = c.others(leader)[0];
    c.isolate(leader);
    c.advance(Duration::from_millis(1));
    let change = c.request_id();
    c.push(
        leader,
        Event::ChangeMembershipRequested {
            id: change,
            change: MembershipChange::Add {
                address: address(NodeId(9)),
            },
        },
    );
    let write = c.propose(b"w");
    let read = c.request_id();
    c.push(leader, Event::ReadRequested { id: read });
    let transfer = request_transfer(&mut c, leader, Some(target));
    c.settle();
    for id in [change, write, read, transfer] {
        assert_eq!(c.result(id), None, "{id:?} waits");
    }
    c.run_for(Duration::from_secs(2));
    assert_ne!(c.node(leader).role(), Role::Leader);
    let unknown = Err(RequestError::NotLeader {
        leader: None,
        outcome: Outcome::Unknown,
    });
    assert_eq!(c.result(change), Some(unknown.clone()));
    assert_eq!(c.result(write), Some(unknown));
    assert_eq!(
        c.result(read),
        Some(Err(RequestError::NotLeader {
            leader: None,
            outcome: Outcome::Definite
        }))
    );
    assert_eq!(
        c.result(transfer),
        Some(Err(RequestError::TransferUnconfirmed(target)))
    );
}

/// Reads share a heartbeat round only with reads of the same step. A round
/// sent in an earlier step, even at the same instant, may have been answered
/// before this read arrived, and a later term may have been elected and
/// committed meanwhile: the in-memory cluster delivers everything without
/// time passing, as a driver whose clock is coarser than a round trip would.
#[test]
fn a_read_does_not_share_a_round_answered_before_it_arrived() {
    let mut c = Cluster::new(3);
    c.run_for(Duration::from_secs(1));
    let old = c.leader().unwrap();
    let (target, other) = (c.others(old)[0], c.others(old)[1]);
    c.advance(Duration::from_millis(1));
    let first = c.request_id();
    c.push(old, Event::ReadRequested { id: first });
    c.settle();
    assert!(matches!(c.result(first), Some(Ok(Completion::Read { .. }))));
    // Within the same instant: the old leader hears nobody from now on, and
    // hands leadership to `target`, which wins a later term and commits a
    // write with `other`.
    c.cut(target, old);
    c.cut(other, old);
    request_transfer(&mut c, old, Some(target));
    c.settle();
    assert_eq!(c.leader(), Some(target));
    let write = c.propose(b"after");
    c.settle();
    let Some(Ok(Completion::Written { index })) = c.result(write) else {
        panic!("the new leader commits: {:?}", c.result(write));
    };
    // The old leader still believes it leads its term.
    assert_eq!(c.node(old).role(), Role::Leader);
    let read = c.request_id();
    c.push(old, Event::ReadRequested { id: read });
    c.settle();
    match c.result(read) {
        None => {}
        Some(Ok(Completion::Read { index: at })) => {
            assert!(
                at >= index,
                "a read served at {at} misses the write at {index}"
            )
        }
        Some(other) => panic!("{other:?}"),
    }
}

/// A transfer abandoned after its `TimeoutNow` left is not over: the message
/// may be late in the network, and the target campaigns on it whenever it
/// arrives, past every follower's stickiness. The answer says the outcome is
/// unknown rather than that the transfer did not happen.
#[test]
fn a_transfer_abandoned_after_timeout_now_left_has_an_unknown_outcome() {
    let mut c = Cluster::new(3);
    c.run_for(Duration::from_millis(200));
    let leader = c.leader().unwrap();
    let target = c.others(leader)[0];
    let id = request_transfer(&mut c, leader, Some(target));
    c.deliver_next();
    let late = c.take_queued(|_, e| {
        matches!(
            e,
            Event::MessageReceived(Message {
                body: MessageBody::TimeoutNow,
                ..
            })
        )
    });
    assert_eq!(late.len(), 1, "the target was caught up: TimeoutNow left");
    c.run_for(Duration::from_millis(600));
    let answer = c.result(id).expect("abandoned after an election timeout");
    assert_eq!(answer, Err(RequestError::TransferUnconfirmed(target)));
    assert_eq!(answer.unwrap_err().outcome(), Outcome::Unknown);
    assert_eq!(c.leader(), Some(leader));
    // It does take effect after all.
    for (to, e) in late {
        c.push(to, e);
    }
    c.run_for(Duration::from_millis(300));
    assert_eq!(c.leader(), Some(target));
}

/// What a lease rests on: a follower that answered its leader's heartbeat
/// round grants no vote for an election timeout. It holds even when the
/// follower meanwhile learns of a later term from an answer to an old
/// request of its own - here a pre-vote refusal from a node that moved to a
/// later term, sent late (or duplicated) by the network. Such an answer
/// proves no leader of that term; were the follower to forget its leader on
/// it, a candidate could win with its vote while the lease still holds.
#[test]
fn a_follower_that_answered_a_round_refuses_votes_for_a_timeout_whatever_term_it_learns() {
    let opts = NodeOptions {
        lease_reads: true,
        ..NodeOptions::new(NodeId(1))
    };
    let mut c = Cluster::with_options(3, opts);
    c.run_for(Duration::from_secs(1));
    let leader = c.leader().unwrap();
    let (q, z) = (c.others(leader)[0], c.others(leader)[1]);
    // `q` answers the leader's next round.
    c.advance_to(c.node(leader).next_deadline());
    c.push(leader, Event::Tick);
    c.settle();
    let term = c.node(q).term();
    let cluster_id = c.node(q).cluster_id().unwrap();
    let (last_index, last_term) = (c.node(z).last_index(), c.node(z).last_term());
    let now = c.now() + Duration::from_millis(1);
    let node = c.host_mut(q).node_mut();
    let message = |term: Term, body: MessageBody| {
        Event::MessageReceived(Message {
            cluster_id,
            from: z,
            to: q,
            term,
            body,
        })
    };
    node.step(
        now,
        message(term.next(), MessageBody::PreVoteResponse { granted: false }),
    );
    assert_eq!(node.term(), term.next(), "a later term is learnt");
    let pre_vote = node.step(
        now,
        message(
            term.next().next(),
            MessageBody::PreVoteRequest {
                last_index,
                last_term,
            },
        ),
    );
    let vote = node.step(
        now,
        message(
            term.next().next(),
            MessageBody::VoteRequest {
                last_index,
                last_term,
                transfer: false,
            },
        ),
    );
    let granted = |actions: &[Action]| {
        actions.iter().any(|a| {
            matches!(
                a,
                Action::Send(Message {
                    body: MessageBody::PreVoteResponse { granted: true }
                        | MessageBody::VoteResponse { granted: true },
                    ..
                })
            )
        })
    };
    assert!(!granted(&pre_vote), "{pre_vote:?}");
    assert!(!granted(&vote), "{vote:?}");
    assert_eq!(c.node(leader).role(), Role::Leader, "its lease still holds");
}
