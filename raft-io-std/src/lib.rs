//! std-threads driver for raft-core.
