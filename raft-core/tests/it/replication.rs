//! Raft §5.3 (log replication) over streams: the handshake, chunk checks,
//! conflict truncation, durable acks, flow control and prompt commit.
use crate::harness::*;
use bytes::Bytes;
use raft_core::*;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

fn manual(c: &mut Cluster) {
    for id in c.ids() {
        c.host_mut(id).persist = Persist::Manually;
    }
}

#[test]
fn an_entry_commits_only_once_durable_on_a_quorum_including_the_leaders_own_fsync() {
    let mut c = Cluster::new(3);
    manual(&mut c);
    let leader = c.leader().unwrap();
    let followers = c.others(leader);
    let commit_before = c.node(leader).commit_index();
    let id = c.propose(b"x");
    c.settle();
    assert_eq!(
        c.node(leader).commit_index(),
        commit_before,
        "nothing durable yet"
    );
    c.persist(followers[0], LogIndex(u64::MAX));
    c.settle();
    assert_eq!(
        c.node(leader).commit_index(),
        commit_before,
        "the leader counts itself only once durable"
    );
    assert!(c.result(id).is_none());
    c.persist(leader, LogIndex(u64::MAX));
    c.settle();
    assert!(c.node(leader).commit_index() > commit_before);
    assert!(matches!(c.result(id), Some(Ok(Completion::Written { .. }))));
}

#[test]
fn followers_learn_the_commit_index_without_waiting_for_a_heartbeat() {
    let mut c = Cluster::new(3);
    c.propose(b"a");
    c.settle(); // no time passes: no heartbeat can fire
    let leader = c.leader().unwrap();
    let commit = c.node(leader).commit_index();
    for (id, h) in c.hosts() {
        assert_eq!(h.node().commit_index(), commit, "node {id}");
        assert_eq!(h.applied().last().unwrap().index, commit, "node {id}");
    }
}

#[test]
fn a_follower_acks_only_durable_entries() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.host_mut(f).persist = Persist::Manually;
    c.host_mut(f).clear_actions();
    c.propose(b"a");
    c.settle();
    let acks = |c: &Cluster| {
        c.host(f)
            .actions()
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::SendFrame {
                        frame: Frame::Ack { .. },
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(acks(&c), 0, "appended but not durable: no ack");
    c.persist(f, LogIndex(u64::MAX));
    c.settle();
    assert_eq!(acks(&c), 1);
}

#[test]
fn a_follower_truncates_a_conflicting_uncommitted_suffix_and_converges() {
    let mut c = Cluster::new(3);
    let old = c.leader().unwrap();
    c.isolate(old);
    for i in 0..3 {
        let id = c.request_id();
        c.push(
            old,
            Event::ProposeRequested {
                proposals: vec![Proposal {
                    id,
                    data: Bytes::from(format!("lost{i}")),
                }],
            },
        );
    }
    c.settle();
    c.run_for(Duration::from_secs(2));
    let new = c.leader().unwrap();
    assert_ne!(new, old);
    c.propose(b"kept");
    c.settle();
    c.heal();
    c.run_for(Duration::from_secs(1));
    assert!(
        c.host(old)
            .actions()
            .iter()
            .any(|a| matches!(a, Action::TruncateLog { .. }))
    );
    let logs: Vec<Vec<(LogIndex, Term)>> = c
        .hosts()
        .map(|(_, h)| h.node().log_entries().map(|e| (e.index, e.term)).collect())
        .collect();
    assert!(
        logs.windows(2).all(|w| w[0] == w[1]),
        "logs match after healing: {logs:?}"
    );
    assert!(c.commands(old).iter().all(|d| !d.starts_with(b"lost")));
    c.assert_state_machine_safety();
}

/// The original design's bug: a follower applied a stale suffix from an old
/// leader because the commit index it used was not clamped to what the
/// current leader had validated.
#[test]
fn a_follower_never_applies_past_what_the_current_leader_validated() {
    let config = Config {
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
    };
    let e = |index: u64, term: u64, kind: EntryKind, data: Bytes| LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind,
        data,
    };
    let entries = vec![
        e(1, 1, EntryKind::Initialize, config.encode()),
        e(2, 1, EntryKind::Command, Bytes::from_static(b"stale")),
        e(3, 1, EntryKind::Command, Bytes::from_static(b"stale")),
    ];
    let mut node = node_restarted(n(2), 1, entries);
    let hb = heartbeat(n(1), n(2), 2, 3);
    let actions = node.step(Instant(1), Event::MessageReceived(hb));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Apply(_))),
        "nothing validated yet: {actions:?}"
    );
    let stream = actions
        .iter()
        .find_map(|a| match a {
            Action::OpenStream { stream, open, .. } => Some((*stream, open.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (stream.1.probe_index, stream.1.probe_term),
        (LogIndex(3), Term(1))
    );
    // The new leader's log diverges after index 1.
    let chunk = Frame::Chunk {
        term: Term(2),
        prev_index: LogIndex(1),
        prev_term: Term(1),
        leader_commit: LogIndex(3),
        entries: vec![
            e(2, 2, EntryKind::Nop, Bytes::new()),
            e(3, 2, EntryKind::Command, Bytes::from_static(b"fresh")),
        ]
        .into(),
    };
    let actions = node.step(
        Instant(2),
        Event::FrameReceived {
            stream: stream.0,
            frame: chunk,
        },
    );
    let truncate = actions
        .iter()
        .position(|a| matches!(a, Action::TruncateLog { from: LogIndex(2) }))
        .expect("truncates");
    let applied: Vec<LogEntry> = actions
        .iter()
        .filter_map(|a| {
            if let Action::Apply(es) = a {
                Some(es.clone())
            } else {
                None
            }
        })
        .flatten()
        .collect();
    let apply = actions
        .iter()
        .position(|a| matches!(a, Action::Apply(_)))
        .unwrap();
    assert!(truncate < apply);
    assert_eq!(
        applied.iter().map(|e| e.term).collect::<Vec<_>>(),
        vec![Term(1), Term(2), Term(2)]
    );
    assert_eq!(applied[2].data, "fresh");
}

#[test]
fn a_chunk_that_does_not_match_makes_the_follower_reopen_with_a_lower_probe() {
    let e = |index: u64, term: u64| LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Nop,
        data: Bytes::new(),
    };
    let entries = vec![e(1, 1), e(2, 1), e(3, 2), e(4, 2)];
    let mut node = node_restarted(n(2), 3, entries);
    let hb = heartbeat(n(1), n(2), 3, 0);
    let actions = node.step(Instant(1), Event::MessageReceived(hb));
    let stream = opened_stream(&actions);
    // The leader claims term 3 at index 4: we have term 2 there.
    let chunk = Frame::Chunk {
        term: Term(3),
        prev_index: LogIndex(4),
        prev_term: Term(3),
        leader_commit: LogIndex(0),
        entries: Entries::new(),
    };
    let actions = node.step(
        Instant(2),
        Event::FrameReceived {
            stream,
            frame: chunk,
        },
    );
    assert!(actions.contains(&Action::CloseStream { stream, peer: n(1) }));
    let reopen = actions
        .iter()
        .find_map(|a| match a {
            Action::OpenStream { open, .. } => Some(open.clone()),
            _ => None,
        })
        .expect("reopens at once");
    assert_eq!(
        (reopen.probe_index, reopen.probe_term),
        (LogIndex(3), Term(2))
    );
    assert_eq!(
        node.last_index(),
        LogIndex(4),
        "a mismatch alone truncates nothing"
    );
}

#[test]
fn frames_of_an_older_stream_are_ignored() {
    let mut node = node_in_term(n(3), 1);
    let hb = |from: u64, term: u64| Message {
        cluster_id: ClusterId(9),
        from: n(from),
        to: n(3),
        term: Term(term),
        body: MessageBody::Heartbeat {
            commit: LogIndex(0),
            round: 1,
        },
    };
    let first = node.step(Instant(1), Event::MessageReceived(hb(1, 2)));
    let old = first
        .iter()
        .find_map(|a| match a {
            Action::OpenStream { stream, .. } => Some(*stream),
            _ => None,
        })
        .unwrap();
    let second = node.step(Instant(2), Event::MessageReceived(hb(2, 3)));
    assert!(
        second.contains(&Action::CloseStream {
            stream: old,
            peer: n(1),
        }),
        "a new term closes the old stream, to the old leader"
    );
    let chunk = Frame::Chunk {
        term: Term(2),
        prev_index: LogIndex(0),
        prev_term: Term(0),
        leader_commit: LogIndex(1),
        entries: vec![LogEntry {
            index: LogIndex(1),
            term: Term(2),
            kind: EntryKind::Nop,
            data: Bytes::new(),
        }]
        .into(),
    };
    let late = node.step(
        Instant(3),
        Event::FrameReceived {
            stream: old,
            frame: chunk,
        },
    );
    assert!(
        !late
            .iter()
            .any(|a| matches!(a, Action::AppendLog(_) | Action::Apply(_))),
        "{late:?}"
    );
    assert_eq!(node.last_index(), LogIndex(0));
}

#[test]
fn the_stream_budget_bounds_bytes_in_flight_to_a_slow_follower() {
    let budget = 4_000;
    let opts = NodeOptions {
        stream_budget_bytes: budget,
        batch_entries_max: 4,
        ..NodeOptions::new(n(1))
    };
    let mut c = Cluster::with_options(3, opts);
    let leader = c.leader().unwrap();
    let slow = c.others(leader)[0];
    c.host_mut(slow).persist = Persist::Manually;
    for _ in 0..200 {
        c.propose(&[7u8; 256]);
    }
    c.settle();
    let status = c.node(leader).status();
    let f = status.followers.iter().find(|f| f.id == slow).unwrap();
    let max_chunk = 4 * (256 + 24) + 40;
    assert!(
        f.inflight_bytes <= budget + max_chunk,
        "in flight {} > budget",
        f.inflight_bytes
    );
    assert!(
        f.next_index < c.node(leader).last_index(),
        "the slow follower is held back"
    );
    // The allocation-free view for metrics says the same as the status.
    let inflight: Vec<(NodeId, u64)> = c.node(leader).inflight_bytes().collect();
    let in_status: Vec<(NodeId, u64)> = status
        .followers
        .iter()
        .map(|f| (f.id, f.inflight_bytes))
        .collect();
    assert_eq!(inflight, in_status);
    // Once it catches up on fsyncs, the rest streams.
    for _ in 0..100 {
        c.persist(slow, LogIndex(u64::MAX));
        c.settle();
    }
    assert_eq!(c.node(slow).last_index(), c.node(leader).last_index());
}

#[test]
fn a_restarted_follower_resumes_its_stream_from_its_own_log() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    for i in 0..10 {
        c.propose(format!("w{i}").as_bytes());
    }
    c.settle();
    c.restart(f);
    c.run_for(Duration::from_secs(1));
    assert_eq!(c.node(f).commit_index(), c.node(leader).commit_index());
    assert_eq!(c.commands(f).len(), 10);
    c.assert_state_machine_safety();
}

fn opens_stream(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::OpenStream { .. }))
}

#[test]
fn a_follower_whose_stream_breaks_asks_to_be_woken_to_reopen_it_after_the_reconnect_delay() {
    let mut node = node_in_term(n(2), 3);
    let heard = voting_from();
    let actions = node.step(heard, Event::MessageReceived(heartbeat(n(1), n(2), 3, 0)));
    let stream = opened_stream(&actions);
    // With the stream open, only the election timer is left to wake it.
    assert_eq!(Some(node.next_deadline()), node.election_deadline());

    let broken = heard + Duration::from_millis(1);
    let actions = node.step(broken, Event::StreamClosed { stream });
    assert!(!opens_stream(&actions), "reopens at once: {actions:?}");
    // The leader never sent a frame on it: one unanswered open, one delay.
    let reopen = broken + node.options().reconnect_delay;
    assert!(reopen < node.election_deadline().unwrap());
    assert_eq!(
        node.next_deadline(),
        reopen,
        "a driver that sleeps until the next deadline must wake to reconnect"
    );
    let early = node.step(Instant(reopen.0 - 1), Event::Tick);
    assert!(!opens_stream(&early), "reopens early: {early:?}");
    let actions = node.step(reopen, Event::Tick);
    assert_ne!(opened_stream(&actions), stream);
    assert_eq!(Some(node.next_deadline()), node.election_deadline());
}

#[test]
fn a_stream_closed_that_is_not_the_followers_own_changes_nothing() {
    let mut node = node_in_term(n(2), 3);
    let heard = voting_from();
    let actions = node.step(heard, Event::MessageReceived(heartbeat(n(1), n(2), 3, 0)));
    let stream = opened_stream(&actions);
    let other = StreamId(stream.0.wrapping_add(1));
    let actions = node.step(heard, Event::StreamClosed { stream: other });
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(Some(node.next_deadline()), node.election_deadline());
}

#[test]
fn a_leader_sends_nothing_more_on_a_stream_that_broke() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    let stream = opened_stream(
        &c.host(f)
            .actions()
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<_>>(),
    );
    let streaming = |c: &Cluster| {
        let status = c.node(leader).status();
        status
            .followers
            .iter()
            .find(|s| s.id == f)
            .unwrap()
            .streaming
    };
    assert!(streaming(&c));

    c.step(leader, Event::StreamClosed { stream });
    assert!(
        !streaming(&c),
        "the leader still counts on the broken stream"
    );
    c.host_mut(leader).clear_actions();
    c.propose(b"after the break");
    c.settle();
    let on_dead_stream: Vec<&Action> = c
        .host(leader)
        .actions()
        .iter()
        .filter(|a| matches!(a, Action::SendFrame { stream: s, .. } if *s == stream))
        .collect();
    assert!(on_dead_stream.is_empty(), "{on_dead_stream:?}");
}

/// A three-node cluster whose leader holds commit notices back 1 ms, with no
/// action recorded yet.
fn cluster_with_commit_notify_delay() -> (Cluster, NodeId) {
    let options = NodeOptions {
        commit_notify_delay: Duration::from_millis(1),
        ..NodeOptions::new(NodeId(1))
    };
    let mut c = Cluster::with_options(3, options);
    // Formation left a notice pending: let it go out.
    c.run_for(Duration::from_millis(5));
    let leader = c.leader().expect("a leader");
    c.clear_actions();
    (c, leader)
}

/// The chunks without entries node `id` sent.
fn chunks_without_entries(c: &Cluster, id: NodeId) -> usize {
    c.host(id)
        .actions()
        .iter()
        .filter(|a| {
            matches!(a, Action::SendFrame { frame: Frame::Chunk { entries, .. }, .. } if entries.is_empty())
        })
        .count()
}

#[test]
fn under_load_each_chunk_carries_the_commit_index_and_none_goes_without_entries() {
    let (mut c, leader) = cluster_with_commit_notify_delay();
    for i in 0..5 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    let last = c.node(leader).last_index();
    assert_eq!(c.node(leader).commit_index(), last);
    assert_eq!(
        chunks_without_entries(&c, leader),
        0,
        "a commit move cost a chunk"
    );
    for id in c.others(leader) {
        // Each chunk told the follower the commit index before it.
        assert_eq!(c.node(id).commit_index(), last.prev(), "follower {id}");
    }
}

#[test]
fn an_idle_follower_hears_every_commit_move_in_one_chunk_once_the_notify_delay_passed() {
    let (mut c, leader) = cluster_with_commit_notify_delay();
    c.propose(b"a");
    c.settle();
    c.propose(b"b");
    c.settle();
    let last = c.node(leader).last_index();
    let followers = c.others(leader);
    for id in &followers {
        assert!(
            c.node(*id).commit_index() < last,
            "follower {id} heard it early"
        );
    }
    let due = c.node(leader).next_deadline();
    assert!(
        due > c.now() && due <= c.now() + Duration::from_millis(1),
        "the notice is due at {due}, now is {}",
        c.now()
    );
    c.advance_to(due);
    c.step(leader, Event::Tick);
    c.settle();
    assert_eq!(
        chunks_without_entries(&c, leader),
        followers.len(),
        "one notice per follower"
    );
    for id in &followers {
        assert_eq!(c.node(*id).commit_index(), last, "follower {id}");
        assert_eq!(c.node(*id).applied_index(), last, "follower {id}");
    }
    assert!(
        c.node(leader).next_deadline() > due,
        "a notice is still pending"
    );
}

/// A follower whose disk is slow hears the commit index (in the notice)
/// before it holds the entry durably; its ack comes later and tells the
/// leader nothing to announce. A driver sleeps until the leader's next
/// deadline: that ack must not pull it in for a notice with nothing to say.
#[test]
fn a_late_ack_from_a_follower_that_heard_the_commit_index_schedules_no_notice() {
    let (mut c, leader) = cluster_with_commit_notify_delay();
    let slow = c.others(leader)[0];
    c.host_mut(slow).persist = Persist::Manually;
    c.propose(b"a");
    c.settle();
    let last = c.node(leader).last_index();
    assert_eq!(
        c.node(leader).commit_index(),
        last,
        "the other follower acked"
    );
    c.advance_to(c.node(leader).next_deadline());
    c.step(leader, Event::Tick);
    c.settle();
    assert_eq!(
        chunks_without_entries(&c, leader),
        2,
        "both followers got the notice"
    );
    assert_eq!(c.node(slow).commit_index(), last, "{slow} heard it");
    assert!(
        c.node(slow).durable_index() < last,
        "{slow} holds it only in memory"
    );
    let wake = c.node(leader).next_deadline();
    c.persist(slow, last);
    c.settle();
    let status = c.node(leader).status();
    let acked = status.followers.iter().find(|s| s.id == slow).unwrap();
    assert_eq!(acked.match_index, last, "the leader got {slow}'s ack");
    assert_eq!(
        c.node(leader).next_deadline(),
        wake,
        "the ack moved the leader's next wake-up (now is {})",
        c.now()
    );
    assert_eq!(chunks_without_entries(&c, leader), 2, "no further notice");
}

#[test]
fn a_chunk_carries_at_most_the_batch_byte_limit_of_entries() {
    let opts = NodeOptions {
        batch_bytes_max: 1_000,
        ..NodeOptions::new(NodeId(1))
    };
    let mut c = Cluster::with_options(3, immediate_commit_notices(opts));
    let leader = c.leader().unwrap();
    c.host_mut(leader).clear_actions();
    // One batch of twenty 300-byte commands (324 budget bytes each): about
    // 6.5 kB for each follower, which must travel as several chunks.
    let proposals = (0..20)
        .map(|i| Proposal {
            id: RequestId(1_000 + i),
            data: Bytes::from(vec![i as u8; 300]),
        })
        .collect();
    c.push(leader, Event::ProposeRequested { proposals });
    c.settle();
    let chunks: Vec<Vec<u64>> = c
        .host(leader)
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::SendFrame {
                frame: Frame::Chunk { entries, .. },
                ..
            } if !entries.is_empty() => Some(entries.iter().map(LogEntry::budget_bytes).collect()),
            _ => None,
        })
        .collect();
    for chunk in &chunks {
        assert!(
            chunk.len() == 1 || chunk.iter().sum::<u64>() <= 1_000,
            "a chunk over the limit: {chunk:?}"
        );
    }
    let carried: usize = chunks.iter().map(Vec::len).sum();
    assert_eq!(carried, 2 * 20, "every entry reaches both followers");
    for id in c.ids() {
        assert_eq!(c.commands(id).len(), 20, "node {id}");
    }
}

#[test]
fn a_follower_with_a_conflicting_suffix_is_caught_up_on_its_first_stream() {
    let mut c = Cluster::new(3);
    let old = c.leader().unwrap();
    c.isolate(old);
    let proposals = (0..3)
        .map(|i| Proposal {
            id: RequestId(1_000 + i),
            data: Bytes::from(format!("lost{i}")),
        })
        .collect();
    c.push(old, Event::ProposeRequested { proposals });
    c.settle();
    c.run_for(Duration::from_secs(2));
    let new = c.leader().unwrap();
    // The new leader's log reaches past the old one's, with its own term at
    // the old leader's last index: the old leader's probe names an entry both
    // hold, with different terms.
    for i in 0..5 {
        c.propose(format!("kept{i}").as_bytes());
    }
    c.settle();
    let probe = c.node(old).last_index();
    assert!(c.node(new).last_index() > probe);
    c.host_mut(old).clear_actions();
    c.heal();
    c.run_for(Duration::from_secs(1));
    // The leader answers the conflicting probe by skipping the follower's
    // entries of later terms, so the first stream starts where the logs
    // agree: no chunk is refused, no second open is needed.
    let opens = c
        .host(old)
        .actions()
        .iter()
        .filter(|a| matches!(a, Action::OpenStream { leader, .. } if *leader == new))
        .count();
    assert_eq!(opens, 1, "{:?}", c.host(old).actions());
    assert_eq!(
        c.node(old).log_entries().last().map(|e| e.term),
        c.node(new).log_entries().last().map(|e| e.term)
    );
    assert!(c.commands(old).iter().all(|d| !d.starts_with(b"lost")));
    c.assert_state_machine_safety();
}

/// A follower whose disk lost entries it had acknowledged (a disk that lied
/// about a sync) restarts in the same term and reopens its stream from what
/// it still holds. The leader takes that as the follower's match, streams the
/// lost entries again, and keeps its commit index: those entries were
/// reported committed to clients, even though for a while only the leader
/// holds them durably (the other follower lags behind a partition).
#[test]
fn a_follower_that_lost_acknowledged_entries_gets_them_again_and_the_commit_stands() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let [a, b] = c.others(leader)[..] else {
        panic!("two followers")
    };
    let kept = c.commit(b"kept");
    c.run_until_applied(kept);
    c.isolate(b);
    let mut last = kept;
    for command in [&b"x1"[..], b"x2", b"x3"] {
        last = c.commit(command);
    }
    let term = c.node(leader).term();
    c.crash(a);
    c.host_mut(a).disk.entries.retain(|e| e.index <= kept);
    c.restart(a);
    assert_eq!(c.node(a).last_index(), kept, "the disk lost the rest");
    c.run_until("the follower holds the lost entries again", |c| {
        c.node(a).durable_index() >= last
    });
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.node(leader).term(), term, "no election was needed");
    assert!(c.node(leader).commit_index() >= last);
    c.heal();
    c.run_until_applied(last);
    for id in c.ids() {
        assert_eq!(
            c.commands(id)[c.commands(id).len() - 3..],
            [&b"x1"[..], b"x2", b"x3"],
            "node {id}"
        );
    }
    c.assert_state_machine_safety();
}

/// A commit that moves on the leader's own durable write (the follower
/// acked first) reaches an idle follower at once, without waiting for a
/// heartbeat.
#[test]
fn a_commit_moved_by_the_leaders_own_write_reaches_an_idle_follower() {
    let mut c = Cluster::new(2);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.host_mut(leader).persist = Persist::Manually;
    c.propose(b"x");
    c.settle();
    let last = c.node(leader).last_index();
    assert!(
        c.node(leader).commit_index() < last,
        "the leader's disk lags"
    );
    assert_eq!(c.node(f).status().durable, last, "the follower holds it");
    c.persist(leader, last);
    c.settle();
    assert_eq!(c.node(leader).commit_index(), last);
    assert_eq!(c.node(f).commit_index(), last);
}
