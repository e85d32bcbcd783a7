//! Seeds that once failed because of a simulator bug, replayed so the bug
//! stays fixed, and seeds that found protocol bugs since fixed in raft-core
//! (`regression_seeds.txt` lists every seed with a note).

use raft_sim::swarm::Overrides;
use raft_sim::sweep::{RunConfig, run_seed};
use raft_sim::trace::Trace;

fn assert_passes(seed: u64, swarm: bool, overrides: Overrides) {
    let report = run_seed(
        seed,
        &RunConfig { swarm, overrides },
        Trace::new(200, false),
    );
    if let Some(f) = &report.failure {
        panic!("seed {seed}: {f}\n{}", report.trace_tail.join("\n"));
    }
}

/// A restarted node whose durable log continues its snapshot (771.. after a
/// snapshot at 770) was mirrored with its first entry as the base, so its
/// legitimate truncation of the uncommitted 771 looked like cutting into the
/// snapshot.
#[test]
fn seed_51_restart_after_compaction_mirrors_the_log_after_the_snapshot() {
    assert_passes(
        51,
        true,
        Overrides {
            fault_interval_ms: Some(200),
            ..Overrides::default()
        },
    );
}

/// A candidate paused for 2.2 s receives a late vote on resume and becomes a
/// (stale) leader of term 3 while term 4 has committed more: legal in Raft,
/// and leader completeness must only demand entries committed in earlier terms.
#[test]
fn seed_729_a_stale_leader_of_an_old_term_is_not_bound_by_later_commits() {
    assert_passes(
        729,
        true,
        Overrides {
            fault_interval_ms: Some(200),
            ..Overrides::default()
        },
    );
}

/// A follower that compacted through its last index (trailing entries 0)
/// stopped acking; with a 200-byte budget the leader stalled for good
/// (fixed in raft-core 8391f73, "ack what a durable snapshot covers").
#[test]
fn seed_366_a_follower_acks_what_its_snapshot_covers() {
    assert_passes(366, true, Overrides::default());
}

/// One node, one key, 66k operations: the linearizability search stored one
/// bit per operation in every memo entry and ran out of memory after 32k
/// steps (undecided). Entries now store the prefix length and the window of
/// operations in flight.
#[test]
fn seed_182_a_long_single_key_history_is_decided() {
    assert_passes(182, true, Overrides::default());
}

/// The hostile member's chunk `prev=(commit, lower term)` with entries of
/// that term past the commit index passed the follower's checks and made
/// `RaftLog::append` assert "terms in a log never decrease" (also seeds 21,
/// 24, 66 and others in 0..200). Fixed in raft-core by checking every chunk
/// against the follower's log, committed prefix included (issue 8 item 3).
#[test]
fn seed_15_a_chunk_contradicting_a_committed_entry_is_refused() {
    assert_passes(
        15,
        true,
        Overrides {
            lease_reads: true,
            hostile: true,
            ..Overrides::default()
        },
    );
}
