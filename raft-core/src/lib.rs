//! # raft-core: streaming Raft, sans IO
//!
//! One [`Node`] holds all protocol state of one server. The driver (the
//! simulator, the std adapter, or yours) feeds it [`Event`]s with the current
//! time and executes the [`Action`]s it returns, in order:
//!
//! ```text
//! actions = node.step(now, event)
//! ```
//!
//! The library never reads a clock, opens a socket or touches a file, and all
//! its randomness comes from the seed you give [`Node::new`]: the same seed and
//! the same events produce the same actions, byte for byte.
//!
//! ## The streaming protocol in one paragraph
//! Heartbeats (small datagrams with the term and commit index) are separate
//! from replication. A follower that hears from a leader opens one long-lived
//! *stream* to it, saying where its log stands; the leader answers with chunks
//! of entries back to back, bounded by a byte budget, and the follower acks
//! its *durable* index on the same stream. See `docs/protocol.md`.
//!
//! ## The driver contract
//! * Execute actions strictly in the order given.
//! * [`Action::PersistHardState`] must be durable before any later action runs
//!   (a vote reaches disk before the message that grants it).
//! * [`Action::AppendLog`] and [`Action::TruncateLog`] may complete
//!   asynchronously but in order; report each durable prefix with
//!   [`Event::LogPersisted`] naming the last entry it covers (group commit:
//!   one report may cover many appends).
//! * [`Action::InstallSnapshot`] runs after every earlier log operation and
//!   discards the whole log durably; [`Event::SnapshotInstalled`] comes after
//!   their `LogPersisted` reports.
//! * Deliver datagrams best effort; deliver stream frames FIFO and report a
//!   broken stream with [`Event::StreamClosed`] on each side. Write the frames
//!   of an [`Action::SendSnapshot`] back to back, before any later
//!   [`Action::SendFrame`] on that stream.
//! * Wake the node at [`Node::next_deadline`] with [`Event::Tick`].
//! * On restart, hand [`Node::new`] the durable hard state, the latest
//!   snapshot's meta (the FSM restored from it) and the durable entries
//!   ([`RecoveredState`]); an inconsistent handover, or invalid options, is a
//!   [`RecoveryError`], never a panic.
//!
//! Everything a peer sends is input: a message or frame that breaks the
//! protocol is refused ([`Action::Refused`] with a [`Violation`]), never
//! trusted and never a panic.
//!
//! ## A driver loop
//! ```
//! use raft_core::*;
//! use std::collections::VecDeque;
//!
//! // One node that initializes a cluster of its own and commits a command.
//! let mut now = Instant(0);
//! let mut node = Node::new(NodeOptions::new(NodeId(1)), RecoveredState::default(), 42, now).unwrap();
//! let mut inbox = VecDeque::from([
//!     Event::InitializeRequested { id: RequestId(1), address: "127.0.0.1:7001".into() },
//!     Event::ProposeRequested { proposals: vec![Proposal { id: RequestId(2), data: "set x 1".into() }] },
//! ]);
//! let mut disk: Vec<LogEntry> = Vec::new();
//! let mut applied = Vec::new();
//! let mut done = Vec::new();
//! while let Some(event) = inbox.pop_front() {
//!     for action in node.step(now, event) {
//!         match action {
//!             Action::PersistHardState(_hs) => { /* write and fsync before going on */ }
//!             Action::AppendLog(entries) => {
//!                 // A real driver fsyncs in a group-commit thread, then reports.
//!                 let last = entries.last().unwrap();
//!                 inbox.push_back(Event::LogPersisted { index: last.index, term: last.term });
//!                 disk.extend(entries);
//!             }
//!             Action::Apply(entries) => applied.extend(entries),
//!             Action::CompleteRequest { id, result } => done.push((id, result)),
//!             _ => {} // sends, streams, snapshots: nothing to do for a lone node
//!         }
//!     }
//!     now = now + Duration::from_millis(1);
//! }
//! assert_eq!(node.role(), Role::Leader);
//! assert_eq!(done[1], (RequestId(2), Ok(Completion::Written { index: LogIndex(2) })));
//! assert_eq!(applied.last().unwrap().data, "set x 1");
//! ```

pub mod action;
pub mod config;
pub mod entry;
pub mod error;
pub mod event;
pub mod message;
pub mod node;
pub mod options;
pub mod quorum;
pub mod time;
pub mod types;
pub mod wire;

pub use action::{Action, Completion, HardState, Role};
pub use config::{Config, Member, MemberRole};
pub use entry::{EntryKind, LogEntry};
pub use error::{DecodeError, Outcome, Refusal, RequestError, Violation};
pub use event::{Event, MembershipChange, Proposal};
pub use message::{Frame, Message, MessageBody, SnapshotMeta, StreamOpen};
pub use node::{FollowerStatus, Node, RecoveredState, RecoveryError, Status};
pub use options::{InvalidOptions, LogSince, Mutants, NodeOptions, SnapshotPolicy};
pub use time::{Duration, Instant};
pub use types::{ClusterId, LogIndex, NodeId, RequestId, StreamId, Term};
pub use wire::{snapshot_frames, snapshot_window_frames};
