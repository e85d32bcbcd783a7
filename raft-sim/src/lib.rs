//! Deterministic simulator for raft-core.
//!
//! A run is a world of simulated nodes (the real `raft_core::Node`), a
//! simulated network, disks, clocks and clients, driven by one event queue
//! ordered by `(time, seq)` and seeded randomness. Checkers watch every step.

pub mod history;
pub mod linearizability;
