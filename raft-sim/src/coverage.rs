//! Marks of rare events and of seed features, counted per run ("sometimes"
//! coverage, SIMULATION §2.10); the sweep sums them and checks its goals.

/// Coverage: a read answered from the leader's lease.
pub const LEASE_READ: &str = "read served from a lease";
/// Coverage mark of a seed with lease reads on.
pub const RUN_WITH_LEASE_READS: &str = "seed with lease reads";
/// Coverage mark of a seed with a hostile member.
pub const RUN_WITH_HOSTILE: &str = "seed with a hostile member";
