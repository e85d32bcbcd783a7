//! Marks of rare events and of seed features, counted per run ("sometimes"
//! coverage, SIMULATION §2.10); the sweep sums them and checks its goals.

/// Coverage: a read answered from the leader's lease.
pub const LEASE_READ: &str = "read served from a lease";
/// Coverage mark of a seed with lease reads on.
pub const RUN_WITH_LEASE_READS: &str = "seed with lease reads";
/// Coverage mark of a seed with a hostile member.
pub const RUN_WITH_HOSTILE: &str = "seed with a hostile member";
/// Coverage: an initial member took its bootstrap list at its first start.
pub const BOOTSTRAPPED: &str = "bootstrapped";
/// Coverage: an initial member was bootstrapped again after a restart (a
/// repeat that changes nothing, or one that finishes a first entry a crash
/// lost).
pub const BOOTSTRAP_REPEATED: &str = "bootstrap repeated after a restart";
/// Coverage: a node refused a message or stream from another cluster.
pub const FOREIGN_CLUSTER_REFUSED: &str = "refused: foreign cluster";

/// Coverage mark of a seed whose nodes keep a few KiB of log in memory at most.
pub const RUN_WITH_SMALL_LOG_CACHE: &str = "seed with a small log cache";

/// Coverage: a leader streamed entries it read back from its disk.
pub const LOG_READ_FOR_STREAM: &str = "entries read back for a stream";

/// Coverage: committed entries read back from the disk to be applied.
pub const LOG_READ_FOR_APPLY: &str = "entries read back for apply";

/// Coverage: a leader resumed a snapshot transfer on a new stream from the
/// bytes the follower had stored (not a goal: the swarm's state machines are
/// small, so few transfers span several windows and a broken stream).
pub const SNAPSHOT_RESUMED: &str = "snapshot transfer resumed on a new stream";
