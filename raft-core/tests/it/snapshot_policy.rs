//! The snapshot policy keeps total snapshot work linear in bytes written
//! (the argument is in `SnapshotPolicy`'s rustdoc); a fixed entry count
//! does not. Each test drives the pure policy over a long synthetic write
//! sequence against a key-value state and sums the bytes every snapshot
//! writes.

use proptest::prelude::*;
use raft_core::{LogSince, SnapshotPolicy};
use std::collections::BTreeMap;

/// Bytes of log the core counts for an entry carrying `payload` bytes
/// (`LogEntry::budget_bytes`).
const ENTRY_HEADER_BYTES: u64 = 24;

/// What a run of the policy cost.
struct Work {
    /// Log bytes written by clients.
    log_bytes: u64,
    /// Bytes written by all snapshots together.
    snapshot_bytes: u64,
    /// The state's size at the end.
    final_state_bytes: u64,
    snapshots: u64,
}

/// Applies `writes` (key, value bytes) to a map whose snapshot is its keys
/// and values, asking `policy` after every entry as the core does.
fn run(policy: SnapshotPolicy, writes: impl Iterator<Item = (u64, u64)>) -> Work {
    let mut state: BTreeMap<u64, u64> = BTreeMap::new();
    let mut state_bytes = 0u64;
    let mut since = LogSince::default();
    let mut last_snapshot_bytes = 0u64;
    let mut work = Work {
        log_bytes: 0,
        snapshot_bytes: 0,
        final_state_bytes: 0,
        snapshots: 0,
    };
    for (key, value_bytes) in writes {
        // A key is 8 bytes in the command and in the snapshot.
        let entry_bytes = 8 + value_bytes + ENTRY_HEADER_BYTES;
        work.log_bytes += entry_bytes;
        since.entries += 1;
        since.bytes += entry_bytes;
        match state.insert(key, value_bytes) {
            Some(old) => state_bytes = state_bytes - old + value_bytes,
            None => state_bytes += 8 + value_bytes,
        }
        if policy.is_due(since, last_snapshot_bytes) {
            work.snapshot_bytes += state_bytes;
            work.snapshots += 1;
            last_snapshot_bytes = state_bytes;
            since = LogSince::default();
        }
    }
    work.final_state_bytes = state_bytes;
    work
}

/// A state that only grows: every write is a new key.
fn growing(count: u64, value_bytes: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..count).map(move |i| (i, value_bytes))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn total_snapshot_work_stays_within_log_bytes_over_the_ratio_plus_the_final_state(
        log_bytes_min in 1u64..100_000,
        log_percent in prop::sample::select(vec![10u64, 25, 50, 100, 200, 400]),
        keys in 1u64..100_000,
        writes in prop::collection::vec((any::<u64>(), 0u64..4_096), 1..20_000),
    ) {
        let policy = SnapshotPolicy { log_bytes_min, log_percent, ..SnapshotPolicy::default() };
        let w = run(policy, writes.into_iter().map(|(k, v)| (k % keys, v)));
        let bound = w.log_bytes * 100 / log_percent + w.final_state_bytes;
        prop_assert!(
            w.snapshot_bytes <= bound,
            "{} snapshots wrote {} bytes for {} log bytes: above {bound}",
            w.snapshots, w.snapshot_bytes, w.log_bytes
        );
        prop_assert!(w.snapshots <= w.log_bytes / log_bytes_min, "the floor spaces snapshots");
    }
}

#[test]
fn snapshot_work_per_byte_written_stays_flat_as_the_state_grows() {
    let policy = SnapshotPolicy {
        log_bytes_min: 64 << 10,
        ..SnapshotPolicy::default()
    };
    let short = run(policy, growing(20_000, 128));
    let long = run(policy, growing(400_000, 128));
    // Twenty times the data: the work per log byte is the same, at most
    // 100/log_percent plus the final state, not twenty times larger.
    for w in [&short, &long] {
        assert!(
            w.snapshot_bytes <= w.log_bytes + w.final_state_bytes,
            "{} bytes of snapshots for {} log bytes",
            w.snapshot_bytes,
            w.log_bytes
        );
    }
}

#[test]
fn a_fixed_entry_count_makes_snapshot_work_grow_with_the_square_of_the_data() {
    // The policy this replaced: a snapshot every 8,192 entries, whatever the
    // state's size. The same growing state as above goes far past the linear
    // bound, and further the longer it runs.
    let policy = SnapshotPolicy::every_entries(8_192);
    let short = run(policy, growing(20_000, 128));
    let long = run(policy, growing(400_000, 128));
    assert!(short.snapshot_bytes <= short.log_bytes + short.final_state_bytes);
    assert!(
        long.snapshot_bytes > 10 * (long.log_bytes + long.final_state_bytes),
        "{} bytes of snapshots for {} log bytes",
        long.snapshot_bytes,
        long.log_bytes
    );
}

#[test]
fn nothing_applied_is_never_due_and_never_means_never() {
    let tiny = SnapshotPolicy {
        log_bytes_min: 0,
        ..SnapshotPolicy::default()
    };
    assert!(!tiny.is_due(LogSince::default(), 0));
    assert!(tiny.is_due(
        LogSince {
            entries: 1,
            bytes: 24
        },
        0
    ));
    let huge = LogSince {
        entries: u64::MAX - 1,
        bytes: u64::MAX - 1,
    };
    assert!(!SnapshotPolicy::NEVER.is_due(huge, 0));
    assert!(SnapshotPolicy::every_entries(10).is_due(
        LogSince {
            entries: 10,
            bytes: 1
        },
        u64::MAX
    ));
}

#[test]
fn a_cap_snapshots_before_the_ratio_is_reached() {
    let capped = SnapshotPolicy {
        log_bytes_max: 1 << 20,
        ..SnapshotPolicy::default()
    };
    let since = LogSince {
        entries: 1_000,
        bytes: 1 << 20,
    };
    assert!(capped.is_due(since, 1 << 30));
    assert!(!SnapshotPolicy::default().is_due(since, 1 << 30));
}
