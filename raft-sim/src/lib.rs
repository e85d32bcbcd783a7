//! Deterministic simulator for raft-core.
//!
//! A run is a world of simulated nodes (the real `raft_core::Node`), a
//! simulated network, disks, clocks and clients, driven by one event queue
//! ordered by `(time, seq)` and seeded randomness. Checkers watch every step.
//!
//! What the cluster replicates is pluggable: implement the traits of
//! [`service`] (a state machine, a client workload, a sequential model) and
//! run your service with [`cli::main`], [`sweep::sweep_with`] or
//! [`world::World::with_service`]. The key-value store ([`kv`]) is one such
//! service; `examples/bank.rs` is another.

pub mod checkers;
pub mod cli;
mod clients;
pub mod clock;
mod control;
pub mod coverage;
pub mod digest;
pub mod disk;
pub mod driver;
pub mod history;
mod host;
pub mod hostile;
pub mod intercept;
mod judges;
pub mod kv;
pub mod lincheck;
pub mod linearizability;
pub mod membership;
pub mod nemesis;
pub mod network;
mod queue;
pub mod rng;
pub mod scenario;
pub mod service;
pub mod shrink;
pub mod swarm;
pub mod sweep;
pub mod timeline;
pub mod trace;
pub mod workload;
pub mod world;
