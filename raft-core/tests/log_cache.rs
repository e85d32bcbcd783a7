//! Memory bounded in bytes: a node keeps at most `log_cache_bytes_max` bytes
//! of durable entries in memory and reads older ones back through the
//! driver (`Action::ReadLog`), for a follower's stream and for the apply
//! path; a driver may recover without loading the log's front
//! (`RecoveredState::stored`).
mod harness;
use harness::*;
use raft_core::*;

const CACHE: u64 = 2048;
const VALUE: usize = 100;

fn small_cache() -> NodeOptions {
    immediate_commit_notices(NodeOptions {
        log_cache_bytes_max: CACHE,
        snapshot_policy: SnapshotPolicy::NEVER,
        ..NodeOptions::new(NodeId(1))
    })
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("w{i:05}").into_bytes();
    v.resize(VALUE, b'.');
    v
}

/// Every node holds at most the budget plus one append batch (here, one
/// proposal) of durable entries, and every entry it holds is durable or newer.
fn assert_within_budget(c: &Cluster) {
    let one = LogEntry {
        index: LogIndex(1),
        term: Term(1),
        kind: EntryKind::Command,
        data: value(0).into(),
    }
    .budget_bytes();
    for (id, h) in c.hosts.iter().filter(|(_, h)| h.up) {
        let status = h.node.status();
        assert!(
            status.cached_bytes <= CACHE + one,
            "node {id} holds {} bytes, budget {CACHE}",
            status.cached_bytes
        );
        assert!(
            status.cache_start <= status.durable.next(),
            "node {id}: {status:?}"
        );
    }
}

#[test]
fn a_follower_far_behind_catches_up_from_entries_read_back() {
    let mut c = Cluster::with_options(3, small_cache());
    let leader = c.leader().expect("a leader");
    let behind = c.hosts.keys().copied().find(|&id| id != leader).unwrap();
    c.isolate(behind);
    for i in 0..200 {
        c.propose(&value(i));
        c.settle();
        assert_within_budget(&c);
    }
    let status = c.node(leader.0).status();
    assert!(
        status.cache_start > LogIndex(150),
        "the leader still holds entries from {}",
        status.cache_start
    );
    assert_eq!(c.reads, 0, "nothing needed reading yet");
    c.heal();
    c.run_for(Duration::from_millis(2_000));
    assert!(c.reads > 0, "the follower's entries came from reads");
    assert_within_budget(&c);
    let all = c.commands(leader);
    assert_eq!(all.len(), 200);
    assert_eq!(c.commands(behind), all, "the follower applied every entry");
    c.assert_state_machine_safety();
}

#[test]
fn after_a_restart_of_every_node_committed_entries_are_applied_from_reads() {
    let mut c = Cluster::with_options(3, small_cache());
    for i in 0..100 {
        c.propose(&value(i));
        c.settle();
    }
    let before = c.commands(c.leader().unwrap());
    assert_eq!(before.len(), 100);
    let ids: Vec<NodeId> = c.hosts.keys().copied().collect();
    for &id in &ids {
        c.crash(id);
    }
    for &id in &ids {
        // The harness recovers within the budget: the log's front stays
        // on its disk, described by `StoredEntries`.
        c.restart(id);
        let status = c.node(id.0).status();
        assert!(status.cache_start > LogIndex(50), "node {id}: {status:?}");
    }
    let reads = c.reads;
    c.run_for(Duration::from_millis(3_000));
    assert!(c.reads > reads, "the apply path read entries back");
    for &id in &ids {
        let applied = c.commands(id);
        assert_eq!(
            applied[..100],
            before[..],
            "node {id} re-applied the same log"
        );
    }
    c.propose(b"after");
    c.settle();
    assert_within_budget(&c);
    c.assert_state_machine_safety();
}

#[test]
fn a_repeated_bootstrap_is_recognised_with_entry_one_evicted() {
    let mut c = Cluster::with_options(3, small_cache());
    for i in 0..50 {
        c.propose(&value(i));
        c.settle();
    }
    let leader = c.leader().unwrap();
    assert!(c.node(leader.0).status().cache_start > LogIndex(1));
    let bootstrap = Bootstrap::new(TOKEN, (1..=3).map(|i| (NodeId(i), addr(NodeId(i))))).unwrap();
    let id = c.request_id();
    c.push(leader, Event::BootstrapRequested { id, bootstrap });
    c.settle();
    assert!(
        matches!(c.result(id), Some(Ok(Completion::Initialized { .. }))),
        "a repeat is a no-op: {:?}",
        c.result(id)
    );
    let other = Bootstrap::new(TOKEN + 1, (1..=3).map(|i| (NodeId(i), addr(NodeId(i))))).unwrap();
    let id = c.request_id();
    c.push(
        leader,
        Event::BootstrapRequested {
            id,
            bootstrap: other,
        },
    );
    c.settle();
    assert!(matches!(c.result(id), Some(Err(_))), "{:?}", c.result(id));
}

#[test]
fn a_stale_read_answer_is_dropped() {
    let mut c = Cluster::with_options(3, small_cache());
    for i in 0..60 {
        c.propose(&value(i));
        c.settle();
    }
    let leader = c.leader().unwrap();
    let before = c.node(leader.0).status();
    // An answer nobody asked for (no stream reads, no apply read pending).
    let entries = c.hosts[&leader].disk.entries[..3].iter().cloned().collect();
    c.push(
        leader,
        Event::LogRead {
            reader: LogReader::Apply,
            from: LogIndex(1),
            entries,
        },
    );
    c.settle();
    assert_eq!(c.node(leader.0).status().applied, before.applied);
    c.assert_state_machine_safety();
}
