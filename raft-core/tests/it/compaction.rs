//! Raft §7 (log compaction): snapshots requested by the snapshot policy, the log
//! compacted behind them with a trailing window, and a lagging follower
//! brought up to date by a snapshot streamed on its stream, then entries.
use crate::harness::*;
use bytes::Bytes;
use raft_core::*;

/// Options that ask for a snapshot every `threshold` entries (0: never).
fn opts(threshold: u64, trailing: u64) -> NodeOptions {
    NodeOptions {
        snapshot_policy: if threshold == 0 {
            SnapshotPolicy::NEVER
        } else {
            SnapshotPolicy::every_entries(threshold)
        },
        snapshot_trailing_entries: trailing,
        ..NodeOptions::new(NodeId(1))
    }
}

fn count(h: &Host, f: impl Fn(&Action) -> bool) -> usize {
    h.actions().iter().filter(|a| f(a)).count()
}

#[test]
fn a_snapshot_is_requested_after_the_threshold_and_the_log_compacted_behind_it() {
    let mut c = Cluster::with_options(3, opts(10, 4));
    for i in 0..30 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    for (id, h) in c.hosts() {
        assert!(
            count(h, |a| matches!(a, Action::TakeSnapshot)) >= 2,
            "node {id}"
        );
        assert!(
            count(h, |a| matches!(a, Action::CompactLog { .. })) >= 2,
            "node {id}"
        );
        let s = h.node().snapshot().expect("a snapshot");
        assert!(
            h.node().status().first_index.0 + 4 > s.index.0,
            "node {id} keeps only the trailing window"
        );
        assert!(h.node().status().first_index > LogIndex(1));
        // The driver's log (the harness's disk) drops what was compacted.
        assert_eq!(
            h.disk.entries.first().map(|e| e.index),
            Some(h.node().status().first_index),
            "node {id}"
        );
    }
}

#[test]
fn a_follower_behind_the_compaction_point_gets_the_snapshot_then_the_entries() {
    let mut c = Cluster::with_options(3, opts(10, 2));
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    for i in 0..40 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    c.restart(f);
    c.run_for(Duration::from_millis(500));
    for i in 40..45 {
        c.propose(format!("w{i}").as_bytes());
    }
    c.run_for(Duration::from_millis(200));
    let h = c.host(f);
    assert_eq!(count(h, |a| matches!(a, Action::InstallSnapshot { .. })), 1);
    assert_eq!(h.node().commit_index(), c.node(leader).commit_index());
    assert_eq!(
        c.commands(f).len(),
        45,
        "snapshot plus the entries after it, no gap"
    );
    c.assert_state_machine_safety();
}

/// The membership change a follower missed was compacted away: only the
/// snapshot's configuration tells it who the voters are now.
#[test]
fn a_follower_brought_up_by_a_snapshot_takes_the_membership_it_carries() {
    let mut c = Cluster::with_options(3, opts(10, 2));
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    let id = c.request_id();
    c.push(
        leader,
        Event::ChangeMembershipRequested {
            id,
            change: MembershipChange::Add {
                address: "node-4".into(),
            },
        },
    );
    c.settle();
    let Some(Ok(Completion::MembershipChanged { node, .. })) = c.result(id) else {
        panic!("{:?}", c.result(id))
    };
    // The new node never starts, so it stays a learner: no later entry
    // changes the membership again.
    for i in 0..40 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    assert!(c.node(leader).status().first_index > c.node(leader).config().index);
    c.restart(f);
    c.run_for(Duration::from_millis(500));
    assert_eq!(
        count(c.host(f), |a| matches!(a, Action::InstallSnapshot { .. })),
        1
    );
    assert_eq!(
        c.node(f).config().member(node).map(|m| m.role),
        Some(MemberRole::Learner),
        "{}",
        c.node(f).config()
    );
    assert_eq!(c.node(f).config(), c.node(leader).config());
    // Its driver is told of the membership the snapshot brought, or it
    // would keep dialing the old member list.
    let reported = c.host(f).actions().iter().rev().find_map(|a| match a {
        Action::ConfigChanged(config) => Some(config.clone()),
        _ => None,
    });
    assert_eq!(reported.as_ref(), Some(c.node(leader).config()));
    c.assert_state_machine_safety();
}

#[test]
fn a_briefly_disconnected_follower_resumes_from_the_trailing_log_without_a_snapshot() {
    let mut c = Cluster::with_options(3, opts(10, 100));
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    for i in 0..25 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    assert!(c.node(leader).snapshot().is_some());
    c.restart(f);
    c.run_for(Duration::from_millis(500));
    let h = c.host(f);
    assert_eq!(count(h, |a| matches!(a, Action::InstallSnapshot { .. })), 0);
    assert_eq!(c.commands(f).len(), 25);
}

/// Streams `frames(meta)` of a snapshot at index 5 whose config has
/// `config_index` to a fresh follower; returns the stream and every action.
fn receive_snapshot(
    config_index: u64,
    frames: impl FnOnce(&SnapshotMeta) -> Vec<Frame>,
) -> (StreamId, Vec<Action>) {
    let mut node = node_in_term(NodeId(2), 2);
    let actions = node.step(
        Instant(1),
        Event::MessageReceived(heartbeat(NodeId(1), NodeId(2), 2, 0)),
    );
    let stream = opened_stream(&actions);
    let config = Config {
        cluster_id: CLUSTER,
        index: LogIndex(config_index),
        max_node_id: NodeId(2),
        members: vec![Member {
            id: NodeId(1),
            address: "a".into(),
            role: MemberRole::Voter,
        }],
    };
    let meta = SnapshotMeta {
        index: LogIndex(5),
        term: Term(1),
        config,
    };
    let mut all = Vec::new();
    for frame in frames(&meta) {
        all.extend(node.step(Instant(2), Event::FrameReceived { stream, frame }));
    }
    (stream, all)
}

#[test]
fn a_snapshot_with_a_corrupted_chunk_is_refused() {
    let (stream, all) = receive_snapshot(1, |meta| {
        let mut frames =
            wire::snapshot_frames(meta, &Bytes::from_static(b"some snapshot bytes"), 8);
        if let Frame::SnapshotChunk { data, .. } = &mut frames[1] {
            *data = Bytes::from_static(b"tampered");
        }
        frames
    });
    assert!(
        all.iter()
            .any(|a| matches!(a, Action::CloseStream { stream: s, .. } if *s == stream)),
        "{all:?}"
    );
    assert!(!all.iter().any(|a| matches!(
        a,
        Action::InstallSnapshot { .. } | Action::ReceiveSnapshotChunk { .. }
    )));
}

/// Found by fuzzing (step_node): a snapshot whose configuration claims an index
/// beyond the snapshot's own is malformed and must not be installed.
#[test]
fn a_snapshot_whose_config_is_newer_than_itself_is_refused() {
    let (stream, all) = receive_snapshot(900, |meta| {
        wire::snapshot_frames(meta, &Bytes::from_static(b"state"), 8)
    });
    assert!(
        all.iter()
            .any(|a| matches!(a, Action::CloseStream { stream: s, .. } if *s == stream))
    );
    assert!(
        !all.iter()
            .any(|a| matches!(a, Action::InstallSnapshot { .. }))
    );
}

/// Found by the simulator (swarm seed 1110): a follower compacted its log
/// behind a snapshot before its appends were reported durable; the late
/// reports were ignored as covered, no ack was ever sent, and the leader's
/// stream to it stalled on its byte budget forever.
#[test]
fn a_follower_acks_what_its_durable_snapshot_covers_even_before_the_append_is_reported() {
    // A small budget: without acks from f, the leader soon stops streaming to it.
    let options = NodeOptions {
        stream_budget_bytes: 600,
        batch_entries_max: 2,
        ..opts(5, 0)
    };
    let mut c = Cluster::with_options(3, options);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.host_mut(f).persist = Persist::Manually;
    for i in 0..40 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    c.run_for(Duration::from_millis(200)); // heartbeats carry the commit index to f
    let snap = c.node(f).snapshot().expect("f snapshotted").index;
    assert!(c.node(f).durable_index() >= snap);
    let status = c.node(leader).status();
    let m = status
        .followers
        .iter()
        .find(|s| s.id == f)
        .unwrap()
        .match_index;
    assert!(
        m >= snap,
        "the leader knows {f} holds {snap} durably (match {m})"
    );
}

#[test]
fn a_snapshot_on_the_stream_never_runs_more_than_the_budget_ahead_of_the_followers_acks() {
    let budget = 1_000;
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            stream_budget_bytes: budget,
            ..opts(50, 2)
        },
    );
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    for i in 0..120 {
        c.propose(format!("write {i:>4} with some padding to make it weigh").as_bytes());
        c.settle();
    }
    let (_, data) = c.host(leader).disk.snapshot.clone().expect("a snapshot");
    assert!(
        data.len() as u64 > 4 * budget,
        "a snapshot of several budgets"
    );
    c.record_steps();
    c.restart(f);
    c.run_for(Duration::from_millis(500));
    let h = c.host(f);
    assert_eq!(count(h, |a| matches!(a, Action::InstallSnapshot { .. })), 1);
    // The budget is used (its first window goes out whole, ahead of any
    // ack) and never exceeded.
    assert_eq!(
        c.snapshot_inflight_max(),
        budget,
        "snapshot bytes ahead of the acks"
    );
    // Once the first ack told the size, each window is what the acks freed
    // (up to the snapshot's end): a window per ack at most, and the
    // follower acks each chunk it stores, so no more windows than chunks.
    let windows = assert_windows_wait_for_the_size(&c.take_steps(), leader, f);
    let chunks = data.len().div_ceil(64);
    assert!(
        windows > 4 && windows <= chunks + 1,
        "sent in {windows} windows, {chunks} chunks"
    );
    assert_eq!(c.commands(f).len(), 120);
    c.assert_state_machine_safety();
}

/// Checks the rule a driver relies on for the leader's snapshot windows to
/// `peer` in `steps`: the first window of a transfer is cut before the
/// leader knows the snapshot's size, so no second window follows it until
/// the follower's first `SnapshotAck` told the size; the first starts within
/// the snapshot, and every later one ends at or before its end. Returns the
/// number of windows.
fn assert_windows_wait_for_the_size(steps: &[Step], leader: NodeId, peer: NodeId) -> usize {
    let mut windows = 0;
    let mut size = None;
    let mut first_offset = None;
    for step in steps.iter().filter(|s| s.node == leader) {
        if let Event::FrameReceived {
            frame: Frame::SnapshotAck { size: told, .. },
            ..
        } = &step.event
        {
            if let Some(offset) = first_offset.take() {
                assert!(
                    offset <= *told,
                    "the first window starts at {offset}, past the end {told}"
                );
            }
            size = Some(*told);
        }
        for action in &step.actions {
            let &Action::SendSnapshot {
                peer: to,
                offset,
                bytes_max,
                first,
                ..
            } = action
            else {
                continue;
            };
            if to != peer {
                continue;
            }
            windows += 1;
            if first {
                // A new transfer: its size is unknown again.
                size = None;
                first_offset = Some(offset);
                continue;
            }
            let Some(size) = size else {
                panic!("window @{offset} {bytes_max}B sent before the first ack told the size");
            };
            assert!(
                offset + bytes_max <= size,
                "window @{offset} {bytes_max}B runs past the end {size}"
            );
        }
    }
    windows
}

/// A follower whose disk is slow had entries in flight when the leader
/// compacted past them: the snapshot's first window gets what those entries
/// left of the budget, and once the follower's disk catches up, its acks of
/// the entries free more budget before its first snapshot ack arrives. The
/// leader still waits for that ack (which tells the size) before it cuts a
/// second window.
#[test]
fn a_snapshot_sends_no_second_window_before_the_first_ack_tells_its_size() {
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            stream_budget_bytes: 600,
            batch_entries_max: 1,
            ..opts(30, 2)
        },
    );
    let leader = c.leader().unwrap();
    let slow = c.others(leader)[0];
    c.host_mut(slow).persist = Persist::Manually;
    for i in 0..40 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    // The slow follower's entries in flight fill the budget; the leader
    // compacted past them.
    let durable = c.node(slow).durable_index();
    let status = c.node(leader).status();
    let cursor = status.followers.iter().find(|s| s.id == slow).unwrap();
    let sent = cursor.next_index.prev();
    assert!(cursor.inflight_bytes >= 600 && sent > durable.next());
    assert!(status.first_index > cursor.next_index, "{status:?}");
    c.record_steps();
    // Its disk catches up in two steps: the first ack frees a little budget,
    // which opens the snapshot; the second frees the rest of the entries'
    // budget (here more than the whole snapshot) before any snapshot ack.
    c.persist(slow, durable.next());
    c.persist(slow, sent);
    c.settle();
    let steps = c.take_steps();
    // The scenario this test is for: after the first window went out, an
    // ack of entries reached the leader before the first snapshot ack.
    let acks_before_the_size = steps
        .iter()
        .filter(|s| s.node == leader)
        .skip_while(|s| {
            !s.actions
                .iter()
                .any(|a| matches!(a, Action::SendSnapshot { .. }))
        })
        .skip(1)
        .map(|s| &s.event)
        .take_while(|e| {
            !matches!(
                e,
                Event::FrameReceived {
                    frame: Frame::SnapshotAck { .. },
                    ..
                }
            )
        })
        .filter(|e| {
            matches!(
                e,
                Event::FrameReceived {
                    frame: Frame::Ack { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(acks_before_the_size, 1);
    let windows = assert_windows_wait_for_the_size(&steps, leader, slow);
    assert!(windows > 1, "{windows} windows");
    c.host_mut(slow).persist = Persist::Immediately;
    c.persist(slow, LogIndex(u64::MAX));
    c.run_for(Duration::from_millis(200));
    assert_eq!(
        count(c.host(slow), |a| matches!(
            a,
            Action::InstallSnapshot { .. }
        )),
        1
    );
    assert_eq!(c.commands(slow).len(), 40);
    c.assert_state_machine_safety();
}

#[test]
fn a_snapshot_acked_whole_at_once_is_sent_once_then_the_entries() {
    let mut c = Cluster::with_options(3, opts(10, 2));
    c.set_snapshot_chunk_bytes(1 << 20); // one chunk: the first ack is also the last
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    for i in 0..40 {
        c.propose(format!("w{i}").as_bytes());
        c.settle();
    }
    c.host_mut(leader).clear_actions();
    c.restart(f);
    c.run_for(Duration::from_millis(500));
    let sent = count(c.host(leader), |a| matches!(a, Action::SendSnapshot { .. }));
    assert_eq!(sent, 1, "the snapshot went out in one window, once");
    assert_eq!(c.commands(f).len(), 40);
    c.assert_state_machine_safety();
}

/// The harness's snapshot holds every applied entry, so it grows with the
/// log: under the proportional policy each snapshot waits for as many log
/// bytes as the last one held (a little less: an entry costs 124 log bytes
/// and about 110 in the snapshot), and snapshots come at geometrically
/// growing indexes instead of every few entries.
#[test]
fn snapshots_wait_for_log_bytes_in_proportion_to_the_last_snapshot() {
    let policy = SnapshotPolicy {
        log_bytes_min: 1_000,
        log_percent: 100,
        ..SnapshotPolicy::default()
    };
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            snapshot_policy: policy,
            snapshot_trailing_entries: 4,
            ..NodeOptions::new(NodeId(1))
        },
    );
    let leader = c.leader().unwrap();
    let mut indexes = Vec::new();
    for i in 0..200 {
        c.propose(&[i as u8; 100]);
        c.settle();
        if let Some(s) = c.node(leader).snapshot().map(|s| s.index) {
            if indexes.last() != Some(&s) {
                indexes.push(s);
            }
        }
    }
    // 124 log bytes an entry: the 1,000-byte floor takes 9 entries, after
    // which each snapshot (about 100 bytes an applied entry) needs as many
    // log bytes as it holds.
    assert!(indexes.len() >= 3, "snapshots at {indexes:?}");
    for pair in indexes.windows(2) {
        assert!(
            2 * pair[1].0 >= 3 * pair[0].0,
            "each snapshot waits for about as much log as the last held: {indexes:?}"
        );
    }
    assert!(
        indexes.len() <= 6,
        "a handful of snapshots for 200 entries, not 20: {indexes:?}"
    );
}

fn compactions(h: &Host) -> Vec<LogIndex> {
    h.actions()
        .iter()
        .filter_map(|a| match a {
            Action::CompactLog { through } => Some(*through),
            _ => None,
        })
        .collect()
}

#[test]
fn a_snapshot_taken_is_recorded_only_if_newer_and_applied_and_compacts_behind_its_trailing_window()
{
    // Requests switched off: the test reports snapshots itself.
    let mut c = Cluster::with_options(1, opts(0, 3));
    for i in 0..10 {
        c.propose(format!("w{i}").as_bytes());
    }
    c.settle();
    let me = NodeId(1);
    let applied = c.node(me).applied_index();
    assert!(applied >= LogIndex(11), "{applied}");
    let taken = |c: &mut Cluster, index: LogIndex| {
        c.host_mut(me).clear_actions();
        c.step(me, Event::SnapshotTaken { index, bytes: 0 });
        let h = c.host(me);
        (h.node().snapshot().map(|s| s.index), compactions(h))
    };

    // Beyond what the FSM applied, or of nothing: not a snapshot of ours.
    assert_eq!(taken(&mut c, applied.next()), (None, vec![]));
    assert_eq!(taken(&mut c, LogIndex(0)), (None, vec![]));
    // Within the trailing window of the log's start: nothing to drop yet.
    assert_eq!(taken(&mut c, LogIndex(3)), (Some(LogIndex(3)), vec![]));
    assert_eq!(c.node(me).status().first_index, LogIndex(1));
    // Up to the applied index: recorded, the log kept for 3 entries behind it.
    let through = LogIndex(applied.0 - 3);
    assert_eq!(taken(&mut c, applied), (Some(applied), vec![through]));
    assert_eq!(c.node(me).status().first_index, through.next());
    // An older or the same snapshot again changes nothing.
    assert_eq!(taken(&mut c, applied), (Some(applied), vec![]));
    assert_eq!(
        taken(&mut c, LogIndex(applied.0 - 1)),
        (Some(applied), vec![])
    );
}

/// A follower of `CLUSTER` in term 3 with an empty log and the stream it
/// opened to leader 1, ready for a snapshot.
fn empty_follower_with_a_stream() -> (Node, StreamId) {
    let mut node = node_in_term(NodeId(2), 3);
    let actions = node.step(
        Instant(1),
        Event::MessageReceived(heartbeat(NodeId(1), NodeId(2), 3, 0)),
    );
    let stream = opened_stream(&actions);
    (node, stream)
}

/// A snapshot's index is the one place a leader names a log position the
/// follower's log need not reach: a chunk can only extend the log entry by
/// entry. A snapshot claiming an index where the log could not go on after it
/// (`u64::MAX`: no index follows) is bad input from a peer, refused with a
/// typed violation, not installed only for the node to panic when its log
/// restarts after it.
#[test]
fn a_snapshot_at_an_index_no_log_can_follow_is_refused_not_installed() {
    for index in [u64::MAX, u64::MAX - 1, u64::MAX / 2 + 1] {
        let (mut node, stream) = empty_follower_with_a_stream();
        let meta = SnapshotMeta {
            index: LogIndex(index),
            term: Term(3),
            config: Config {
                cluster_id: CLUSTER,
                index: LogIndex(1),
                max_node_id: NodeId(2),
                members: vec![Member {
                    id: NodeId(1),
                    address: "a".into(),
                    role: MemberRole::Voter,
                }],
            },
        };
        let mut actions = Vec::new();
        for frame in wire::snapshot_frames(&meta, &Bytes::from_static(b"state"), 4) {
            actions.extend(node.step(Instant(2), Event::FrameReceived { stream, frame }));
        }
        let installing = actions
            .iter()
            .any(|a| matches!(a, Action::InstallSnapshot { .. }));
        if installing {
            // The driver did as it was told: the node must not panic now.
            node.step(Instant(3), Event::SnapshotInstalled { meta: meta.clone() });
        }
        assert!(!installing, "index {index}: installed {actions:?}");
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Refused {
                    reason: Refusal::Misbehaving(Violation::SnapshotIndexAboveLimit(i)),
                    ..
                } if *i == LogIndex(index)
            )),
            "index {index}: {actions:?}"
        );
        assert_eq!(node.last_index(), LogIndex(0));
    }
}
