//! # raft-core: streaming Raft, sans IO
//!
//! (crate docs are completed with the driver-loop example below the node.)

pub mod action;
pub mod config;
pub mod entry;
pub mod error;
pub mod event;
pub mod message;
pub mod node;
pub mod options;
pub mod time;
pub mod types;
pub mod wire;

pub use action::{Action, Completion, HardState, Role};
pub use config::{Config, Member, MemberRole};
pub use entry::{EntryKind, LogEntry};
pub use error::{DecodeError, Outcome, Refusal, RequestError};
pub use event::{Event, MembershipChange, Proposal};
pub use message::{Frame, Message, MessageBody, SnapshotMeta, StreamOpen};
pub use node::{Node, RecoveredState, Status, FollowerStatus};
pub use options::NodeOptions;
pub use time::{Duration, Instant};
pub use types::{ClusterId, LogIndex, NodeId, RequestId, StreamId, Term};
pub use wire::snapshot_frames;
