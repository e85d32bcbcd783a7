//! The exported in-memory cluster (`raft_core::testing`) does what its docs
//! promise a user: their own state machine through snapshots and restarts,
//! events held and released, partitions, leadership moved on demand, and
//! bounded runs that fail instead of spinning.
use raft_core::testing::{Cluster, Persist, StateMachine};
use raft_core::*;

/// A user's state machine: the sum of the numbers proposed.
#[derive(Default)]
struct Sum(u64);

impl StateMachine for Sum {
    fn apply(&mut self, entry: &LogEntry) {
        if entry.kind == EntryKind::Command {
            let text = std::str::from_utf8(&entry.data).expect("a number");
            self.0 += text.parse::<u64>().expect("a number");
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }

    fn restore(&mut self, snapshot: &[u8]) {
        self.0 = u64::from_le_bytes(snapshot.try_into().expect("eight bytes"));
    }
}

fn snapshot_every(entries: u64) -> NodeOptions {
    NodeOptions {
        snapshot_policy: SnapshotPolicy::every_entries(entries),
        snapshot_trailing_entries: 2,
        ..NodeOptions::new(NodeId(1))
    }
}

#[test]
fn a_users_state_machine_reaches_a_lagging_follower_through_a_snapshot_and_survives_restarts() {
    let mut c = Cluster::with_state_machine(3, snapshot_every(10), 0, |_| Sum::default());
    let leader = c.leader().expect("a leader");
    let f = c.others(leader)[0];
    c.crash(f);
    let mut last = LogIndex(0);
    for i in 1..=40 {
        last = c.commit(i.to_string().as_bytes());
    }
    c.restart(f);
    c.run_until_applied(last);
    assert!(
        c.host(f)
            .actions()
            .iter()
            .any(|a| matches!(a, Action::InstallSnapshot { .. })),
        "the follower fell behind the compaction point"
    );
    let total = 40 * 41 / 2;
    for id in c.ids() {
        assert_eq!(c.host(id).state_machine.0, total, "node {id}");
    }
    // A restart restores the state machine from the node's own snapshot,
    // then the node applies the entries after it again.
    c.crash(leader);
    c.restart(leader);
    assert!(
        c.host(leader).state_machine.0 > 0,
        "restored from the snapshot"
    );
    let next = c.commit(b"1");
    c.run_until_applied(next);
    for id in c.ids() {
        assert_eq!(c.host(id).state_machine.0, total + 1, "node {id}");
    }
    c.assert_state_machine_safety();
}

#[test]
fn a_held_proposal_completes_only_once_released() {
    let mut c = Cluster::new(3);
    let id = c.propose(b"late");
    let held = c.take_queued(|_, event| matches!(event, Event::ProposeRequested { .. }));
    assert_eq!(held.len(), 1);
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.result(id), None, "the leader never saw it");
    assert_eq!(c.queued().count(), 0);
    for (to, event) in held {
        c.push(to, event);
    }
    // Released, it is the one event queued, as the test pushed it.
    let queued: Vec<(NodeId, &Event)> = c.queued().collect();
    assert!(
        matches!(queued[..], [(_, Event::ProposeRequested { .. })]),
        "{queued:?}"
    );
    assert!(c.deliver_next(), "the released proposal");
    let index = match c.result(id) {
        None => {
            c.settle();
            match c.result(id) {
                Some(Ok(Completion::Written { index })) => index,
                other => panic!("the proposal failed: {other:?}"),
            }
        }
        done => panic!("completed before any follower acked: {done:?}"),
    };
    c.run_until_applied(index);
    assert_eq!(c.commands(NodeId(3)), vec!["late"]);
}

#[test]
fn the_majority_side_of_a_partition_elects_and_commits_and_the_minority_catches_up_on_healing() {
    let mut c = Cluster::new(5);
    c.elect(NodeId(1));
    assert_eq!(c.leader(), Some(NodeId(1)));
    c.partition(&[NodeId(1), NodeId(2)]);
    c.run_until("a leader on the majority side", |c| {
        c.leader().is_some_and(|l| l.0 >= 3)
    });
    // The minority side cannot commit: its old leader refuses the proposal
    // (check-quorum made it step down) or holds it uncommitted.
    let stale = c.request_id();
    let data = "on the minority side".into();
    let proposals = vec![Proposal { id: stale, data }];
    c.push(NodeId(1), Event::ProposeRequested { proposals });
    let index = c.commit(b"on the majority side");
    let refused = c.result(stale);
    assert!(!matches!(refused, Some(Ok(_))), "{refused:?}");
    c.heal();
    c.run_until_applied(index);
    for id in c.ids() {
        assert_eq!(c.commands(id), vec!["on the majority side"], "node {id}");
    }
    c.assert_state_machine_safety();
}

#[test]
fn elect_moves_leadership_to_the_chosen_node() {
    let mut c = Cluster::new(3);
    for target in [NodeId(3), NodeId(2), NodeId(3)] {
        c.elect(target);
        assert_eq!(c.leader(), Some(target));
        let index = c.commit(b"x");
        c.run_until_committed(index);
    }
}

#[test]
fn a_crash_loses_the_appends_not_yet_durable_and_the_node_catches_up_after_restart() {
    let mut c = Cluster::new(3);
    let leader = c.leader().expect("a leader");
    let f = c.others(leader)[0];
    c.host_mut(f).persist = Persist::Manually;
    let index = c.commit(b"w");
    assert_eq!(c.host(f).disk.pending.last().map(|e| e.index), Some(index));
    assert!(
        c.host(f).disk.read(index, 1, u64::MAX).is_empty(),
        "not durable on f"
    );
    c.crash(f);
    assert!(c.host(f).disk.pending.is_empty(), "lost in the crash");
    c.host_mut(f).persist = Persist::Immediately;
    c.restart(f);
    c.run_until_applied(index);
    assert_eq!(c.host(f).disk.read(index, 1, u64::MAX)[0].data, "w");
    assert_eq!(c.commands(f), vec!["w"]);
}

#[test]
fn a_stream_needs_both_directions_of_its_link() {
    // As a TCP connection does: a follower that hears its leader but cannot
    // reach it opens no stream, so no entries reach it until the cut heals.
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    c.restart(f);
    c.cut(f, leader);
    let before = c.node(f).last_index();
    let index = c.commit(b"w");
    c.run_for(Duration::from_millis(500));
    assert_eq!(c.node(f).last_index(), before, "entries reached {f}");
    c.heal();
    c.run_until_applied(index);
    assert_eq!(c.commands(f), vec!["w"]);
}

#[test]
fn run_until_applied_waits_for_the_running_members_only() {
    // A crashed member cannot apply: waiting for it would never end.
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let down = c.others(leader)[0];
    c.crash(down);
    let index = c.commit(b"w");
    c.run_until_applied(index);
    for id in c.others(down) {
        assert_eq!(c.commands(id), vec!["w"], "node {id}");
    }
    assert!(c.commands(down).is_empty());
}

#[test]
#[should_panic(expected = "not reached within")]
fn run_until_fails_when_the_condition_never_holds() {
    let mut c = Cluster::new(3);
    for id in c.ids() {
        c.crash(id);
    }
    c.run_until("a leader among crashed nodes", |c| c.leader().is_some());
}

#[test]
fn the_seed_chooses_the_election_timeouts_and_replays_them() {
    let first_deadline = |seed| {
        let mut c = Cluster::empty_with_state_machine(NodeOptions::new(NodeId(1)), seed, |_| ());
        c.bootstrap(3);
        c.node(NodeId(1)).next_deadline()
    };
    assert_eq!(first_deadline(7), first_deadline(7));
    let drawn: std::collections::BTreeSet<Instant> = (0..10).map(first_deadline).collect();
    assert!(drawn.len() > 5, "{drawn:?}");
}

/// The example of the guide (docs/simulation.md), kept compiling and true.
#[test]
fn the_guides_example_runs() {
    use raft_core::testing::{Cluster, Persist};
    use raft_core::{Event, NodeId};

    let mut c = Cluster::new(3); // bootstrapped, a leader elected, all applied
    c.elect(NodeId(2)); // leadership moved by a transfer
    c.host_mut(NodeId(3)).persist = Persist::Manually; // node 3's appends wait for c.persist
    let index = c.commit(b"set x 1"); // proposed, run until committed (durable on 1 and 2)
    assert!(c.host(NodeId(3)).disk.read(index, 1, u64::MAX).is_empty());
    c.persist(NodeId(3), index); // now durable on node 3 too
    // Step the leader by hand: what it sends stays queued until delivered.
    c.advance_to(c.node(NodeId(2)).next_deadline());
    c.step(NodeId(2), Event::Tick);
    let held = c.take_queued(|to, _| to == NodeId(1)); // hold what goes to node 1
    c.settle(); // deliver the rest
    assert!(!held.is_empty());
    for (to, event) in held {
        c.push(to, event); // and release it late
    }
    c.settle();
    c.isolate(NodeId(2)); // both directions cut
    c.run_until("a new leader", |c| {
        c.leader().is_some_and(|l| l != NodeId(2))
    });
    c.heal();
    c.run_until_applied(index);
    c.assert_state_machine_safety();
}

/// The in-memory disk answers a `ReadLog` as the driver contract asks: from
/// the index asked for, at most `count_max` entries, stopping before their
/// bytes pass `bytes_max`, but always at least one entry.
#[test]
fn the_disk_reads_back_entries_within_the_count_and_byte_limits() {
    let entry = |i: u64| LogEntry {
        index: LogIndex(i),
        term: Term(1),
        kind: EntryKind::Command,
        data: vec![b'x'; 76].into(),
    };
    let disk = raft_core::testing::Disk {
        entries: (1..=10).map(entry).collect(),
        ..Default::default()
    };
    let one = entry(1).budget_bytes();
    let indexes = |read: &[LogEntry]| read.iter().map(|e| e.index.0).collect::<Vec<_>>();
    assert_eq!(indexes(disk.read(LogIndex(3), 4, u64::MAX)), [3, 4, 5, 6]);
    assert_eq!(indexes(disk.read(LogIndex(3), 100, 3 * one)), [3, 4, 5]);
    assert_eq!(indexes(disk.read(LogIndex(3), 100, 3 * one - 1)), [3, 4]);
    assert_eq!(indexes(disk.read(LogIndex(9), 100, 1)), [9], "at least one");
    assert!(disk.read(LogIndex(11), 100, u64::MAX).is_empty());
}

#[test]
fn every_completion_is_kept_with_its_node_until_cleared() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.clear_completions();
    let first = c.propose(b"1");
    let second = c.propose(b"2");
    c.settle();
    let completed: Vec<_> = c
        .completions()
        .iter()
        .map(|(node, id, result)| (*node, *id, result.is_ok()))
        .collect();
    assert_eq!(completed, [(leader, first, true), (leader, second, true)]);
    c.clear_completions();
    assert!(c.completions().is_empty());
    assert_eq!(c.result(first), None, "forgotten");
}

#[test]
fn run_until_committed_runs_until_a_leader_committed_the_index() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    let next = c.node(leader).last_index().next();
    c.propose(b"1");
    // Queued, not yet delivered: nothing is committed before the run.
    assert!(c.node(leader).commit_index() < next);
    c.run_until_committed(next);
    assert!(c.node(leader).commit_index() >= next);
}

#[test]
fn snapshot_chunks_carry_the_bytes_set_for_them() {
    let chunk_lengths = |bytes: Option<usize>| {
        let mut c = Cluster::with_state_machine(3, snapshot_every(10), 0, |_| Sum::default());
        if let Some(bytes) = bytes {
            c.set_snapshot_chunk_bytes(bytes);
        }
        let leader = c.leader().expect("a leader");
        let f = c.others(leader)[0];
        c.crash(f);
        let mut last = LogIndex(0);
        for i in 1..=40 {
            last = c.commit(i.to_string().as_bytes());
        }
        c.restart(f);
        c.run_until_applied(last);
        c.host(f)
            .actions()
            .iter()
            .filter_map(|a| match a {
                Action::ReceiveSnapshotChunk { data, .. } => Some(data.len()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let default = chunk_lengths(None);
    assert_eq!(default.iter().max(), Some(&64), "64 bytes by default");
    let set = chunk_lengths(Some(100));
    assert_eq!(set.iter().max(), Some(&100), "{set:?}");
    assert!(set.len() < default.len());
}

#[test]
fn run_for_advances_the_clock_by_exactly_the_duration_in_steps_of_5_ms() {
    let mut c = Cluster::new(3);
    let start = c.now();
    c.run_for(Duration::from_millis(100));
    assert_eq!(c.now(), start + Duration::from_millis(100));
    // A duration between steps runs to the step after it.
    c.run_for(Duration::from_millis(7));
    assert_eq!(c.now(), start + Duration::from_millis(110));
}

#[test]
fn hosts_record_no_actions_once_recording_is_off() {
    let mut c = Cluster::new(3);
    let leader = c.leader().unwrap();
    c.record_actions(false);
    c.clear_actions();
    c.commit(b"1");
    c.commit(b"2");
    for id in c.ids() {
        assert!(c.host(id).actions().is_empty(), "node {id}");
    }
    // Only the last applied entry is kept.
    assert_eq!(c.commands(leader), vec![b"2".to_vec()]);
    c.record_actions(true);
    c.commit(b"3");
    assert!(!c.host(leader).actions().is_empty());
}

/// `settle` gives up after a million deliveries (a livelock) instead of
/// spinning for ever.
#[test]
#[should_panic(expected = "livelock")]
fn settle_fails_after_a_million_deliveries() {
    let mut c = Cluster::new(1);
    let leader = c.leader().unwrap();
    for _ in 0..1_000_000 {
        c.push(leader, Event::Tick);
    }
    c.settle();
}
