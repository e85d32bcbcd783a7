//! raft-core's integration tests, one module per subject, in one test binary:
//! every build (each cargo-mutants mutant, each CI run) links one binary
//! instead of one per subject. `tests/allocations.rs` stays a binary of its
//! own: its counting global allocator would count the allocations of tests
//! running in parallel beside it.
//!
//! Run one subject with a filter: `cargo test -p raft-core --test it election::`.

mod harness;

mod bootstrap;
mod client;
mod compaction;
mod determinism;
mod election;
mod hostile_peer;
mod log_cache;
mod membership;
mod properties;
mod recovery;
mod replication;
mod safety;
mod scripts;
mod smoke;
mod snapshot_policy;
mod snapshot_resume;
mod testing;
mod wire_props;
