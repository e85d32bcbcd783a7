//! # raft-kv: the example server of raft-io-std
//!
//! A replicated key-value map over HTTP, one [`raft_io_std::RaftNode`] per
//! process. The binaries are `raft-kv` (the server, and `raft-kv
//! local-cluster`) and `raft-kv-bench` (a cluster benchmark);
//! `docs/operations.md` tells how to run them. The library part is the
//! state machine they share, [`kv`], and how they pick free ports for a
//! cluster started on one machine, [`ports`].

pub mod kv;
pub mod ports;
