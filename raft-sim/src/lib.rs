//! Deterministic simulator for raft-core.
