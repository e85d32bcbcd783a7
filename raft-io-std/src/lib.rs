//! std-threads driver for raft-core.

pub mod storage;
