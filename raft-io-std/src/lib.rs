//! # raft-io-std: streaming Raft on std threads, TCP and files
//!
//! A thin binding of [`raft_core`] to the operating system. It makes no
//! protocol decision: every decision is the core's; this crate moves bytes,
//! writes files and runs the user's state machine, obeying the driver contract
//! written in `raft_core`'s crate docs.
//!
//! * [`RaftNode`]: the handle (`open`, `initialize`, `join`, `propose`
//!   (returns at commit), `wait_applied`, `apply_barrier`, `read_barrier`,
//!   `add_peer`, `remove_peer`, `leave`, `leader`, `role`, `metrics`,
//!   `close`) with typed [`Error`]s that say whether a failed request may
//!   still take effect; a refusal is the core's own
//!   [`raft_core::RequestError`], wrapped in [`Error::Request`].
//! * [`Fsm`]: the user's state machine.
//! * `driver` (internal): one thread owns the `raft_core::Node`; an applier
//!   thread runs the FSM; the storage's group-commit thread writes the log.
//! * [`transport`]: TCP, a hello on every connection (the cluster id is
//!   checked there), datagrams and replication streams on separate
//!   connections, bounded queues.
//! * [`storage`]: the write-ahead log, hard state, snapshots and node identity.
//!
//! Each public type has one path: the handle's types at the root, each
//! subsystem's (its options, metrics, stores and codecs) in [`storage`] or
//! [`transport`], the two modules a user reaches into by path (to tune
//! them, or to read a data directory or a connection's bytes without a
//! node). Inside them, only the codec modules a test or fuzzer uses by path
//! are public ([`storage::record`], [`transport::hello`]).
//!
//! Coming from the original Go package (InfluxDB's streaming `raft`)?
//! `docs/go-api.md` maps each of its methods and errors to its counterpart
//! here.
//!
//! The example server built on this crate, `raft-kv`, is a crate of its own
//! (`raft-kv/` in the workspace; `docs/operations.md`).
//!
//! ```no_run
//! use raft_io_std::{Fsm, NodeConfig, RaftNode};
//! use raft_core::{EntryKind, LogEntry, LogIndex};
//! use std::io::{self, Read, Write};
//! use std::time::Duration;
//!
//! #[derive(Default)]
//! struct Log { lines: Vec<String>, index: LogIndex }
//!
//! impl Fsm for Log {
//!     fn apply(&mut self, e: &LogEntry) {
//!         if e.kind == EntryKind::Command {
//!             self.lines.push(String::from_utf8_lossy(&e.data).into_owned());
//!         }
//!         self.index = e.index;
//!     }
//!     fn index(&self) -> LogIndex { self.index }
//!     fn snapshot(&mut self, w: &mut dyn Write) -> io::Result<()> {
//!         writeln!(w, "{}", self.index.0)?;
//!         for l in &self.lines { writeln!(w, "{l}")?; }
//!         Ok(())
//!     }
//!     fn restore(&mut self, r: &mut dyn Read) -> io::Result<()> {
//!         let mut s = String::new();
//!         r.read_to_string(&mut s)?;
//!         let mut lines = s.lines();
//!         self.index = LogIndex(lines.next().unwrap_or("0").parse().unwrap_or(0));
//!         self.lines = lines.map(String::from).collect();
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> raft_io_std::Result<()> {
//! let node = RaftNode::open("/tmp/n1", NodeConfig::new("127.0.0.1:7001"), Log::default())?;
//! node.initialize()?;
//! let index = node.propose("hello")?; // committed
//! node.wait_applied(index, Duration::from_secs(1))?; // and applied here
//! println!("{:?}", node.metrics()?);
//! node.close()?;
//! # Ok(()) }
//! ```

mod driver;
mod error;
mod fsm;
mod metrics;
mod node;
pub mod storage;
pub mod transport;

pub use error::{Error, Result};
pub use fsm::{Fsm, SnapshotSource};
pub use metrics::{FollowerLag, LogReadMetrics, Metrics, SnapshotMetrics};
pub use node::{NodeConfig, PendingProposal, RaftNode};
