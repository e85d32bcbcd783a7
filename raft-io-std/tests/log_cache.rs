//! A node that keeps only `log_cache_bytes_max` bytes of its log in memory,
//! on real sockets and files: entries older than its cache are read back from
//! the write-ahead log (`Action::ReadLog`, served by the log writer thread)
//! for a follower's stream and for the apply path, and recovery loads only
//! the tail of the log that fits the cache.
//!
//! Nothing sleeps to synchronize: every wait polls a condition against a
//! generous deadline (real networks and disks have no virtual clock).
mod support;
use raft_io_std::storage::{self, StorageOptions};
use support::*;

/// A cache far smaller than the log the tests write.
const CACHE_BYTES: u64 = 4 << 10;

/// Each command's size: 40 of them are several times the cache.
const COMMAND_BYTES: usize = 300;

/// A tiny cache, and no snapshots: every entry stays in the log, so a
/// follower behind and a restarted node need the entries read back.
fn small_cache(c: &mut NodeConfig) {
    c.options.log_cache_bytes_max = CACHE_BYTES;
    c.options.snapshot_policy = SnapshotPolicy::NEVER;
}

/// `count` commands of [`COMMAND_BYTES`] each, named `{prefix}{i}`.
fn commands(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{prefix}{i:04}-{}", ".".repeat(COMMAND_BYTES)))
        .collect()
}

#[test]
fn a_follower_back_after_its_leader_wrote_past_the_cache_catches_up_from_entries_read_back() {
    let mut members = three_nodes(small_cache);
    let leader = leader_of(&members);
    let away = (leader + 1) % 3;
    let mut expected = commands("a", 5);
    apply_all(members[leader].node(), expected.clone());
    assert_all_applied(&members, &expected);

    members[away].close();
    let more = commands("b", 60); // about 20 KiB: five times the cache
    apply_all(members[leader].node(), more.clone());
    expected.extend(more);
    let reads_before = members[leader].node().metrics().unwrap().log_reads;

    members[away].reopen(&small_cache);
    assert_all_applied(&members, &expected);
    let metrics = members[leader].node().metrics().unwrap();
    assert!(
        metrics.log_reads.entries > reads_before.entries,
        "the leader streamed entries older than its cache: {:?} then {:?}",
        reads_before,
        metrics.log_reads
    );
    assert_eq!(metrics.transport.snapshots_sent, 0, "caught up by log");
}

#[test]
fn every_node_restarted_recovers_only_the_tail_and_applies_the_rest_from_reads() {
    let mut members = three_nodes(small_cache);
    let leader = leader_of(&members);
    let mut expected = commands("a", 60);
    apply_all(members[leader].node(), expected.clone());
    assert_all_applied(&members, &expected);
    for m in &mut members {
        m.close();
    }

    // What each node will recover: the tail in memory, the rest described.
    for m in &members {
        let opened =
            storage::open_within(m.dir.path(), &StorageOptions::default(), CACHE_BYTES).unwrap();
        let state = &opened.state;
        let stored = state
            .stored
            .as_ref()
            .expect("a log past the cache leaves a stored front");
        let tail_bytes: u64 = state.entries.iter().map(LogEntry::budget_bytes).sum();
        assert!(tail_bytes <= CACHE_BYTES, "{tail_bytes} bytes recovered");
        assert_eq!(stored.term_starts[0].0, LogIndex(1));
        assert_eq!(
            state.entries.first().map(|e| e.index),
            Some(stored.last.next())
        );
        assert!(
            stored.config_entries.iter().any(|e| e.index == LogIndex(1)),
            "the bootstrap's membership entry is kept: {:?}",
            stored.config_entries
        );
    }

    // An empty FSM and no snapshot: every entry is applied from the log again.
    for m in &mut members {
        m.reopen(&small_cache);
    }
    assert_all_applied(&members, &expected);
    for (i, m) in members.iter().enumerate() {
        let reads = m.node().metrics().unwrap().log_reads;
        assert!(
            reads.entries >= 40,
            "node {i} applied entries it read back: {reads:?}"
        );
    }
    let leader = leader_of(&members);
    let more = commands("b", 10);
    apply_all(members[leader].node(), more.clone());
    expected.extend(more);
    assert_all_applied(&members, &expected);
}
