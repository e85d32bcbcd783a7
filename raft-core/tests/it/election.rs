//! Raft §5.2 (leader election), with pre-vote, leader stickiness and
//! check-quorum from Ongaro's thesis §9.6.
use crate::harness::*;
use raft_core::*;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

#[test]
fn a_cluster_elects_exactly_one_leader_per_term() {
    let mut c = Cluster::new(5);
    let leader = c.leader().unwrap();
    c.crash(leader);
    c.run_for(Duration::from_secs(3));
    let new_leader = c.leader().unwrap();
    assert_ne!(new_leader, leader);
    let term = c.node(new_leader).term();
    let leaders_in_term = c
        .hosts()
        .filter(|(_, h)| h.is_up() && h.node().role() == Role::Leader && h.node().term() == term)
        .count();
    assert_eq!(leaders_in_term, 1);
}

#[test]
fn election_timeout_is_drawn_from_t_to_2t() {
    let opts = NodeOptions::new(n(1));
    let t = opts.election_timeout;
    for seed in 0..50 {
        let hs = HardState {
            cluster_id: Some(ClusterId(9)),
            term: Term(1),
            vote: None,
        };
        let node = Node::new(
            opts.clone(),
            RecoveredState {
                hard_state: hs,
                ..Default::default()
            },
            seed,
            Instant(0),
        )
        .unwrap();
        let deadline = node.election_deadline().unwrap();
        assert!(
            deadline >= Instant(0) + t && deadline < Instant(0) + t.saturating_mul(2),
            "seed {seed}: {deadline}"
        );
    }
}

#[test]
fn pre_vote_keeps_a_partitioned_node_from_raising_its_term() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let follower = c.others(leader)[0];
    let term_before = c.node(follower).term();
    c.isolate(follower);
    c.run_for(Duration::from_secs(5));
    assert_eq!(
        c.node(follower).term(),
        term_before,
        "pre-vote never succeeds alone, so the term stays"
    );
    c.heal();
    c.run_for(Duration::from_secs(1));
    assert_eq!(
        c.leader(),
        Some(leader),
        "the rejoining node does not depose the leader"
    );
}

#[test]
fn leader_steps_down_when_quorum_silent_for_election_timeout() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.isolate(leader);
    c.run_for(Duration::from_millis(1200));
    assert_ne!(c.node(leader).role(), Role::Leader, "check-quorum");
    let others: Vec<_> = c.others(leader);
    assert!(
        others.iter().any(|id| c.node(*id).role() == Role::Leader),
        "the majority elected a new leader"
    );
}

#[test]
fn an_isolated_leader_steps_down_one_election_timeout_after_its_last_quorum_contact() {
    let timeout = NodeOptions::new(n(1)).election_timeout;
    // Whatever the phase of the leader's timers when the isolation begins.
    for phase_ms in [0, 100, 200, 300, 400] {
        let mut c = Cluster::new(3);
        c.run_for(Duration::from_millis(phase_ms));
        let leader = c.leader().unwrap();
        // A ReadIndex round makes every follower answer now: the last contact.
        let read = c.request_id();
        c.push(leader, Event::ReadRequested { id: read });
        c.settle();
        assert!(matches!(c.result(read), Some(Ok(Completion::Read { .. }))));
        let contact = c.now();
        c.isolate(leader);
        let node = c.host_mut(leader).node_mut();
        node.step(contact + timeout - Duration(1), Event::Tick);
        assert_eq!(
            node.role(),
            Role::Leader,
            "phase {phase_ms} ms: heard within T"
        );
        assert_eq!(
            node.next_deadline(),
            contact + timeout,
            "phase {phase_ms} ms: the node asks to be woken when its quorum contact expires"
        );
        node.step(contact + timeout, Event::Tick);
        assert_eq!(
            node.role(),
            Role::Follower,
            "phase {phase_ms} ms: check-quorum steps down T after the last quorum contact"
        );
    }
}

#[test]
fn votes_refused_while_a_live_leader_was_heard_recently() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let follower = c.others(leader)[0];
    let term = c.node(follower).term();
    let cluster_id = c.node(follower).cluster_id().unwrap();
    let last_index = c.node(follower).last_index();
    let vote = Message {
        cluster_id,
        from: n(99),
        to: follower,
        term: term.next(),
        body: MessageBody::VoteRequest {
            last_index,
            last_term: term,
            transfer: false,
        },
    };
    c.step(follower, Event::MessageReceived(vote));
    let node = &c.node(follower);
    assert_eq!(
        node.term(),
        term,
        "a disruptive candidate does not bump the term"
    );
    assert_eq!(node.vote(), c.host(follower).disk.hard_state.vote);
    assert!(c.host(follower).actions().iter().any(|a| matches!(
        a,
        Action::Refused {
            reason: Refusal::LeaderAlive(_),
            ..
        }
    )));
}

fn vote_granted(actions: &[Action]) -> Option<bool> {
    actions.iter().find_map(|a| match a {
        Action::Send(Message {
            body: MessageBody::VoteResponse { granted } | MessageBody::PreVoteResponse { granted },
            ..
        }) => Some(*granted),
        _ => None,
    })
}

#[test]
fn a_restarted_node_refuses_votes_and_pre_votes_for_one_election_timeout() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let others: Vec<NodeId> = c.others(leader);
    let (restarted, candidate) = (others[0], others[1]);
    // Its last heartbeat answer may back the leader's lease; a restart must
    // not make it forget that it promised no vote for T.
    c.crash(restarted);
    c.restart(restarted);
    let started = c.now();
    let timeout = c.options().election_timeout;
    let node = c.host_mut(restarted).node_mut();
    let term = node.term();
    let ask = |term: Term, body: MessageBody| Message {
        cluster_id: node.cluster_id().unwrap(),
        from: candidate,
        to: restarted,
        term,
        body,
    };
    let (last_index, last_term) = (node.last_index(), node.last_term());
    let pre_vote = ask(
        term.next(),
        MessageBody::PreVoteRequest {
            last_index,
            last_term,
        },
    );
    let vote = ask(
        term.next(),
        MessageBody::VoteRequest {
            last_index,
            last_term,
            transfer: false,
        },
    );
    let last_moment = started + timeout - Duration(1);
    let actions = node.step(last_moment, Event::MessageReceived(pre_vote.clone()));
    assert_eq!(vote_granted(&actions), Some(false), "pre-vote refused");
    let actions = node.step(last_moment, Event::MessageReceived(vote.clone()));
    assert!(actions.contains(&Action::Refused {
        peer: candidate,
        reason: Refusal::RecentlyStarted
    }));
    assert_eq!(vote_granted(&actions), None);
    assert_eq!(node.term(), term, "the candidate does not bump the term");
    let actions = node.step(started + timeout, Event::MessageReceived(pre_vote));
    assert_eq!(
        vote_granted(&actions),
        Some(true),
        "pre-vote granted after T"
    );
    let actions = node.step(started + timeout, Event::MessageReceived(vote));
    assert_eq!(vote_granted(&actions), Some(true), "vote granted after T");
}

#[test]
fn a_node_that_never_saw_a_term_votes_at_once() {
    let mut node = node_in_term(n(2), 0);
    let req = Message {
        cluster_id: CLUSTER,
        from: n(1),
        to: n(2),
        term: Term(1),
        body: MessageBody::VoteRequest {
            last_index: LogIndex(0),
            last_term: Term(0),
            transfer: false,
        },
    };
    let actions = node.step(Instant(1), Event::MessageReceived(req));
    assert_eq!(
        vote_granted(&actions),
        Some(true),
        "a fresh cluster elects at once"
    );
}

#[test]
fn a_vote_is_durable_before_the_response_leaves() {
    let mut node = node_in_term(n(2), 1);
    let req = Message {
        cluster_id: ClusterId(9),
        from: n(1),
        to: n(2),
        term: Term(2),
        body: MessageBody::VoteRequest {
            last_index: LogIndex(0),
            last_term: Term(0),
            transfer: false,
        },
    };
    let actions = node.step(voting_from(), Event::MessageReceived(req));
    let persist = actions
        .iter()
        .rposition(|a| matches!(a, Action::PersistHardState(h) if h.vote == Some(n(1))))
        .expect("vote persisted");
    let reply = actions
        .iter()
        .position(|a| matches!(a, Action::Send(m) if matches!(m.body, MessageBody::VoteResponse { granted: true })))
        .expect("vote granted");
    assert!(persist < reply, "{actions:?}");
    assert_eq!(
        Action::PersistHardState(node.hard_state().clone()),
        actions[persist],
        "the hard state it reports is the one it ordered persisted"
    );
}

#[test]
fn one_vote_per_term() {
    let mut node = node_in_term(n(3), 1);
    let ask = |from: u64| Message {
        cluster_id: ClusterId(9),
        from: n(from),
        to: n(3),
        term: Term(2),
        body: MessageBody::VoteRequest {
            last_index: LogIndex(0),
            last_term: Term(0),
            transfer: false,
        },
    };
    let granted = |actions: &[Action]| {
        actions.iter().any(|a| matches!(a, Action::Send(m) if matches!(m.body, MessageBody::VoteResponse { granted: true })))
    };
    assert!(granted(
        &node.step(voting_from(), Event::MessageReceived(ask(1)))
    ));
    assert!(
        !granted(&node.step(voting_from() + Duration(1), Event::MessageReceived(ask(2)))),
        "second candidate in the same term"
    );
    assert!(
        granted(&node.step(voting_from() + Duration(2), Event::MessageReceived(ask(1)))),
        "a repeated request gets the same answer"
    );
    assert_eq!(node.vote(), Some(n(1)), "the vote it reports");
}

#[test]
fn a_candidate_with_an_older_log_is_refused() {
    let entries = vec![LogEntry {
        index: LogIndex(1),
        term: Term(2),
        kind: EntryKind::Nop,
        data: Default::default(),
    }];
    let mut node = node_restarted(n(3), 2, entries);
    let req = Message {
        cluster_id: ClusterId(9),
        from: n(1),
        to: n(3),
        term: Term(3),
        body: MessageBody::VoteRequest {
            last_index: LogIndex(5),
            last_term: Term(1),
            transfer: false,
        },
    };
    let actions = node.step(voting_from(), Event::MessageReceived(req));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Refused {
            reason: Refusal::OutOfDateLog,
            ..
        }
    )));
    assert_eq!(node.vote(), None);
    assert_eq!(node.term(), Term(3), "the higher term is still adopted");
}

#[test]
fn a_new_leader_appends_a_nop_of_its_term() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.crash(leader);
    c.run_for(Duration::from_secs(3));
    let l = &c.node(c.leader().unwrap());
    let last = l.log_entries().last().unwrap();
    assert_eq!((last.kind, last.term), (EntryKind::Nop, l.term()));
}

#[test]
fn timeout_now_makes_the_target_campaign_past_leader_stickiness() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let target = c.others(leader)[0];
    let id = request_transfer(&mut c, leader, Some(target));
    c.settle();
    c.run_for(Duration::from_millis(50));
    assert_eq!(c.leader(), Some(target));
    assert!(
        matches!(c.result(id), Some(Ok(Completion::Transferred { .. }))),
        "{:?}",
        c.result(id)
    );
}

/// Starts a transfer from the leader to another node whose `TimeoutNow` is
/// lost; returns (leader, target, request).
fn transfer_with_lost_timeout_now(c: &mut Cluster) -> (NodeId, NodeId, RequestId) {
    let leader = c.leader().unwrap();
    let target = c.others(leader)[0];
    c.cut(leader, target);
    let id = request_transfer(c, leader, Some(target));
    c.settle();
    assert!(
        c.host(leader).actions().iter().any(|a| matches!(
            a,
            Action::Send(Message { body: MessageBody::TimeoutNow, to, .. }) if *to == target
        )),
        "the leader sent TimeoutNow"
    );
    (leader, target, id)
}

#[test]
fn a_transfer_is_reported_done_only_when_the_target_leads_a_later_term() {
    let mut c = Cluster::new(3);
    let (leader, target, id) = transfer_with_lost_timeout_now(&mut c);
    let other = c
        .ids()
        .into_iter()
        .find(|&n| n != leader && n != target)
        .unwrap();
    // Another node leads a later term: the leader steps down, but not because
    // the target took over.
    let node = &c.node(leader);
    let later = node.term().next();
    let beat = Message {
        cluster_id: node.cluster_id().unwrap(),
        from: other,
        to: leader,
        term: later,
        body: MessageBody::Heartbeat {
            commit: node.commit_index(),
            round: 1,
        },
    };
    c.step(leader, Event::MessageReceived(beat));
    assert_eq!(c.node(leader).role(), Role::Follower);
    assert_eq!(
        c.result(id),
        Some(Err(RequestError::TransferSuperseded {
            target,
            leader: other,
            term: later
        }))
    );
}

#[test]
fn a_transfer_cut_short_by_check_quorum_is_reported_unconfirmed() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.isolate(leader);
    c.run_for(Duration::from_millis(100));
    // TimeoutNow leaves (and is lost); check-quorum deposes the leader before
    // the transfer would have been abandoned.
    let (_, target, id) = transfer_with_lost_timeout_now(&mut c);
    c.run_for(Duration::from_millis(450));
    assert_ne!(c.node(leader).role(), Role::Leader, "check-quorum");
    assert_eq!(c.result(id), None, "stepping down proves nothing yet");
    c.run_for(Duration::from_millis(600));
    assert_eq!(
        c.result(id),
        Some(Err(RequestError::TransferUnconfirmed(target)))
    );
}

#[test]
fn granting_a_vote_in_a_new_term_costs_one_hard_state_write() {
    let mut node = node_in_term(n(2), 1);
    let req = Message {
        cluster_id: ClusterId(9),
        from: n(1),
        to: n(2),
        term: Term(5),
        body: MessageBody::VoteRequest {
            last_index: LogIndex(0),
            last_term: Term(0),
            transfer: false,
        },
    };
    let actions = node.step(voting_from(), Event::MessageReceived(req));
    let writes: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::PersistHardState(_)))
        .collect();
    assert_eq!(
        writes,
        vec![&Action::PersistHardState(HardState {
            cluster_id: Some(ClusterId(9)),
            term: Term(5),
            vote: Some(n(1))
        })]
    );
}

#[test]
fn a_leader_that_loses_its_quorum_waits_a_fresh_election_timeout() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.isolate(leader);
    for _ in 0..400 {
        if c.node(leader).role() != Role::Leader {
            break;
        }
        c.run_for(Duration::from_millis(5));
    }
    let node = &c.node(leader);
    assert_eq!(node.role(), Role::Follower, "check-quorum stepped it down");
    assert!(
        node.election_deadline().unwrap() >= c.now() + node.options().election_timeout,
        "no campaign before a full election timeout after stepping down"
    );
}

/// Node 1 of a five-voter cluster of `CLUSTER` in term 1, its log holding
/// only the configuration, gone pre-candidate at its first election timeout.
fn pre_candidate_of_five() -> (Node, Instant) {
    let config = Config {
        cluster_id: CLUSTER,
        index: LogIndex(1),
        max_node_id: n(5),
        members: (1..=5)
            .map(|id| Member {
                id: n(id),
                address: format!("n{id}"),
                role: MemberRole::Voter,
            })
            .collect(),
    };
    let recovered = RecoveredState {
        hard_state: HardState {
            cluster_id: Some(CLUSTER),
            term: Term(1),
            vote: None,
        },
        snapshot: None,
        entries: vec![LogEntry {
            index: LogIndex(1),
            term: Term(1),
            kind: EntryKind::Initialize,
            data: config.encode(),
        }],
        stored: None,
    };
    let mut node = Node::new(NodeOptions::new(n(1)), recovered, 5, Instant(0)).unwrap();
    let timeout = node.next_deadline();
    node.step(timeout, Event::Tick);
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(1)));
    (node, timeout)
}

fn pre_vote_response(from: u64, term: u64, granted: bool) -> Event {
    Event::MessageReceived(Message {
        cluster_id: CLUSTER,
        from: n(from),
        to: n(1),
        term: Term(term),
        body: MessageBody::PreVoteResponse { granted },
    })
}

#[test]
fn a_pre_candidate_keeps_its_term_until_a_quorum_grants_the_pre_vote() {
    let (mut node, now) = pre_candidate_of_five();
    // Grants come in the term it would campaign in; one is not a quorum of five.
    node.step(now, pre_vote_response(2, 2, true));
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(1)));
    // A refusal from a voter in our own term (it hears a leader) is no news.
    node.step(now, pre_vote_response(3, 1, false));
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(1)));
    // A repeated grant from the same voter does not count twice.
    node.step(now, pre_vote_response(2, 2, true));
    assert_eq!(node.role(), Role::PreCandidate);
    node.step(now, pre_vote_response(4, 2, true));
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));
}

#[test]
fn a_pre_candidate_refused_from_a_later_term_follows_that_term() {
    let (mut node, now) = pre_candidate_of_five();
    node.step(now, pre_vote_response(2, 7, false));
    assert_eq!((node.role(), node.term()), (Role::Follower, Term(7)));
    assert_eq!(node.vote(), None);
}

fn vote_response(from: u64, term: u64, granted: bool) -> Event {
    Event::MessageReceived(Message {
        cluster_id: CLUSTER,
        from: n(from),
        to: n(1),
        term: Term(term),
        body: MessageBody::VoteResponse { granted },
    })
}

#[test]
fn a_candidate_ignores_stale_vote_answers_and_follows_a_later_term_it_hears_of() {
    let (mut node, now) = pre_candidate_of_five();
    node.step(now, pre_vote_response(2, 2, true));
    node.step(now, pre_vote_response(4, 2, true));
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));
    // An answer from the term before (a pre-vote's term) changes nothing.
    node.step(now, vote_response(3, 1, false));
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));
    // A rival candidate of the same term is refused (we voted for
    // ourselves), and our campaign goes on.
    let rival = Event::MessageReceived(Message {
        cluster_id: CLUSTER,
        from: n(3),
        to: n(1),
        term: Term(2),
        body: MessageBody::VoteRequest {
            last_index: LogIndex(1),
            last_term: Term(1),
            transfer: false,
        },
    });
    assert_eq!(vote_granted(&node.step(now, rival)), Some(false));
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));
    assert_eq!(node.vote(), Some(n(1)));
    // A refusal from a later term: that term is current, and we follow it.
    node.step(now, vote_response(5, 9, false));
    assert_eq!((node.role(), node.term()), (Role::Follower, Term(9)));
    assert_eq!(node.vote(), None);
}

#[test]
fn timeout_now_makes_a_follower_campaign_only_from_its_leader_in_its_term() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let term = c.node(leader).term();
    let others: Vec<NodeId> = c.others(leader);
    let (f, other) = (others[0], others[1]);
    let timeout_now = |from: NodeId, term: Term| {
        Event::MessageReceived(Message {
            cluster_id: c.node(f).cluster_id().unwrap(),
            from,
            to: f,
            term,
            body: MessageBody::TimeoutNow,
        })
    };
    let (from_a_follower, from_an_older_term) = (
        timeout_now(other, term),
        timeout_now(leader, Term(term.0 - 1)),
    );
    let from_the_leader = timeout_now(leader, term);
    for event in [from_a_follower, from_an_older_term] {
        c.step(f, event.clone());
        let node = &c.node(f);
        assert_eq!(
            (node.role(), node.term()),
            (Role::Follower, term),
            "{event:?}"
        );
    }
    c.step(f, from_the_leader);
    let node = &c.node(f);
    assert_eq!((node.role(), node.term()), (Role::Candidate, term.next()));
}

#[test]
fn a_transfer_to_the_leader_itself_completes_at_once_in_its_term() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let term = c.node(leader).term();
    let id = c.request_id();
    c.host_mut(leader).clear_actions();
    c.push(
        leader,
        Event::TransferLeadershipRequested {
            id,
            target: Some(leader),
        },
    );
    c.settle();
    assert_eq!(c.result(id), Some(Ok(Completion::Transferred { term })));
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.node(leader).term(), term);
    let timeout_now_sent = c
        .host(leader)
        .actions()
        .iter()
        .any(|a| matches!(a, Action::Send(m) if m.body == MessageBody::TimeoutNow));
    assert!(!timeout_now_sent);
}

#[test]
fn no_node_asks_to_be_woken_at_a_time_already_past() {
    // A driver sleeps until `next_deadline`: one in the past makes it spin.
    let mut c = Cluster::new(3);
    let first = c.leader().unwrap();
    for round in 0..60 {
        if round == 20 {
            c.crash(first);
        }
        c.run_for(Duration::from_millis(50));
        for (id, h) in c.hosts().filter(|(_, h)| h.is_up()) {
            assert!(
                h.node().next_deadline() > c.now(),
                "node {id} ({:?}) asks for {} at {}",
                h.node().role(),
                h.node().next_deadline(),
                c.now()
            );
        }
    }
    assert_ne!(c.leader(), Some(first));
}

#[test]
fn role_and_config_changes_are_reported_once_each_as_they_happen() {
    let c = Cluster::initialized_then_joined(3);
    let leader = c.leader().unwrap();
    for (id, h) in c.hosts() {
        let roles: Vec<(Role, Term, Option<NodeId>)> = h
            .actions()
            .iter()
            .filter_map(|a| match a {
                Action::RoleChanged { role, term, leader } => Some((*role, *term, *leader)),
                _ => None,
            })
            .collect();
        let configs: Vec<&Config> = h
            .actions()
            .iter()
            .filter_map(|a| match a {
                Action::ConfigChanged(config) => Some(config),
                _ => None,
            })
            .collect();
        assert_eq!(
            roles.last(),
            Some(&(h.node().role(), h.node().term(), Some(leader))),
            "node {id}: {roles:?}"
        );
        assert_eq!(configs.last(), Some(&h.node().config()), "node {id}");
        assert!(
            roles.windows(2).all(|w| w[0] != w[1]),
            "node {id} repeats a report: {roles:?}"
        );
        assert!(
            configs.windows(2).all(|w| w[0] != w[1]),
            "node {id} repeats a report: {configs:?}"
        );
    }
    // The first node saw the cluster grow one member at a time.
    let sizes: Vec<usize> = c
        .host(NodeId(1))
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::ConfigChanged(config) => Some(config.members.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes.first(), Some(&1));
    assert_eq!(sizes.last(), Some(&3));
}

#[test]
fn pre_vote_grants_for_another_term_do_not_count() {
    let (mut node, now) = pre_candidate_of_five();
    // Late grants of an earlier pre-vote round, for the term it now holds.
    node.step(now, pre_vote_response(2, 1, true));
    node.step(now, pre_vote_response(3, 1, true));
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(1)));
    // Grants from a non-member do not count either.
    node.step(now, pre_vote_response(6, 2, true));
    node.step(now, pre_vote_response(7, 2, true));
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(1)));
}

#[test]
fn a_transfer_to_a_node_that_is_not_a_voter_is_refused() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let term = c.node(leader).term();
    let stranger = NodeId(9);
    let id = request_transfer(&mut c, leader, Some(stranger));
    c.settle();
    assert_eq!(
        c.result(id),
        Some(Err(RequestError::NodeNotFound(stranger)))
    );
    // No transfer is under way: the next one is taken.
    let next = request_transfer(&mut c, leader, Some(leader));
    c.settle();
    assert_eq!(c.result(next), Some(Ok(Completion::Transferred { term })));
}

#[test]
fn a_leader_refuses_a_vote_for_a_later_term_and_keeps_leading() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let member = c.others(leader)[0];
    let node = &c.node(leader);
    let (term, cluster_id, last_index) =
        (node.term(), node.cluster_id().unwrap(), node.last_index());
    for pre_vote in [true, false] {
        let (last_term, transfer) = (term, false);
        let body = if pre_vote {
            MessageBody::PreVoteRequest {
                last_index,
                last_term,
            }
        } else {
            MessageBody::VoteRequest {
                last_index,
                last_term,
                transfer,
            }
        };
        // An up-to-date member campaigning while the leader holds its quorum
        // (a partition healing, a long pause): it must not unseat the leader.
        let request = Message {
            cluster_id,
            from: member,
            to: leader,
            term: term.next(),
            body,
        };
        c.host_mut(leader).clear_actions();
        c.step(leader, Event::MessageReceived(request));
        let host = c.host(leader);
        // A pre-vote is answered no; a vote is not answered (the candidate
        // times out), and never granted.
        let answer = vote_granted(host.actions());
        assert_eq!(answer, pre_vote.then_some(false), "pre-vote {pre_vote}");
        // A refused vote for a later term is reported (a pre-vote changes no
        // term, so its refusal is only the answer).
        assert_eq!(
            host.actions().iter().any(|a| matches!(
                a,
                Action::Refused {
                    reason: Refusal::LeaderAlive(_),
                    ..
                }
            )),
            !pre_vote
        );
        assert_eq!(
            (host.node().role(), host.node().term()),
            (Role::Leader, term)
        );
    }
}

/// A heartbeat answer from a later term (a follower that restarted into a
/// term it campaigned in, a stale leader's heartbeat answered after a new
/// election) tells the leader it is deposed: it follows that term at once
/// rather than counting the answer toward its round.
#[test]
fn a_leader_answered_from_a_later_term_follows_that_term() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let member = c.others(leader)[0];
    let node = &c.node(leader);
    let (term, cluster_id) = (node.term(), node.cluster_id().unwrap());
    let answer = Message {
        cluster_id,
        from: member,
        to: leader,
        term: term.next(),
        body: MessageBody::HeartbeatResponse {
            round: 1,
            streaming: false,
        },
    };
    c.step(leader, Event::MessageReceived(answer));
    let node = c.node(leader);
    assert_eq!((node.role(), node.term()), (Role::Follower, term.next()));
    assert_eq!(node.vote(), None);
}

/// Votes are counted, refusals are not: a follower that missed a committed
/// entry and is pushed into a campaign (here by a `TimeoutNow` that reaches it
/// before the entry does) is refused by both peers for its out-of-date log.
/// It must not lead on those answers; a node that holds the entry does, and
/// the entry survives.
#[test]
fn a_candidate_refused_by_every_peer_does_not_lead() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let behind = c.others(leader)[0];
    let term = c.node(leader).term();
    c.isolate(behind);
    let index = c.commit(b"x");
    c.heal();
    assert!(c.node(behind).last_index() < index);
    assert_eq!(c.node(behind).leader(), Some(leader), "no election yet");
    c.step(
        behind,
        Event::MessageReceived(Message {
            cluster_id: c.node(leader).cluster_id().unwrap(),
            from: leader,
            to: behind,
            term,
            body: MessageBody::TimeoutNow,
        }),
    );
    assert_eq!(c.node(behind).role(), Role::Candidate);
    c.settle();
    assert_ne!(c.node(behind).role(), Role::Leader);
    c.run_until("a leader", |c| c.leader().is_some());
    assert_ne!(c.leader(), Some(behind));
    c.run_until_applied(index);
    for id in c.ids() {
        assert_eq!(c.commands(id), [&b"x"[..]], "node {id}");
    }
    c.assert_state_machine_safety();
}

#[test]
fn a_leader_has_no_election_deadline_and_its_followers_have_one() {
    // A driver that sleeps until the election deadline must not wake a
    // leader for a campaign it never starts.
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.node(leader).election_deadline(), None);
    for id in c.others(leader) {
        assert!(
            c.node(id).election_deadline().is_some_and(|d| d > c.now()),
            "follower {id}"
        );
    }
}
