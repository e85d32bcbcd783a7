//! The errors of the node handle, by who is at fault: the caller (the
//! request was refused, or came at the wrong time), the cluster (not the
//! leader, a timeout), or the machine (storage, the network, the FSM).
//!
//! Every error says whether the request's outcome is
//! [`Outcome::Definite`] (certainly not applied) or [`Outcome::Unknown`] (it
//! may still commit): see [`Error::outcome`].

use crate::storage::StorageError;
use raft_core::RecoveryError;
use raft_core::{InvalidOptions, Outcome, RequestError};
use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// What went wrong with a request to a [`crate::RaftNode`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The node was closed before the request was made.
    #[error("node is closed")]
    Closed,
    /// The node was closed or stopped while the request was in flight: it may
    /// still have taken effect.
    #[error("node closed while the request was in flight: {0}")]
    Abandoned(String),
    /// The node stopped after a fatal error (storage failure, FSM failure);
    /// nothing more is accepted.
    #[error("node stopped: {0}")]
    Stopped(String),
    /// The node's options break a rule of [`raft_core::NodeOptions`] (a
    /// heartbeat interval not below the election timeout, a zero limit, a
    /// batch above half a frame): refused by [`crate::RaftNode::open`] before
    /// it touches the data directory.
    #[error("invalid config: {0}")]
    InvalidConfig(InvalidOptions),
    /// The data directory is already open in this process.
    #[error("data directory {} is already open", .0.display())]
    AlreadyOpen(PathBuf),
    /// No answer in time.
    #[error("timed out (outcome {outcome:?})")]
    Timeout {
        /// Whether the request may still take effect.
        outcome: Outcome,
    },
    /// The core refused the request, or the request came at the wrong time:
    /// not the leader ([`RequestError::NotLeader`] names the leader this
    /// node knows; [`crate::RaftNode::leader`] gives its address), not yet
    /// initialized, already initialized, membership rules, busy, a transfer.
    /// The core's error as it is, so each refusal has one name.
    #[error("request refused: {0}")]
    Request(#[from] RequestError),
    /// A join could not be completed (no member reachable, or refused).
    #[error("join failed: {0}")]
    Join(String),
    /// Durable storage failed or holds damaged data.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The files of the data directory disagree with each other.
    #[error("inconsistent data directory {}: {reason}", path.display())]
    Inconsistent {
        /// The directory.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// The recovered state is not a valid Raft state.
    #[error("recovery: {0}")]
    Recovery(#[from] RecoveryError),
    /// The FSM failed to restore from a snapshot at open.
    #[error("fsm: {0}")]
    Fsm(io::Error),
    /// A socket or thread could not be set up.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The core answered a request with a completion of another kind: a bug
    /// in this crate or in raft-core; please report it.
    #[error("internal error (a bug): {0}")]
    Internal(String),
}

impl Error {
    /// Whether the request may still take effect.
    ///
    /// ```
    /// use raft_io_std::Error;
    /// use raft_core::Outcome;
    /// assert_eq!(Error::Closed.outcome(), Outcome::Definite);
    /// assert_eq!(Error::Timeout { outcome: Outcome::Unknown }.outcome(), Outcome::Unknown);
    /// let lost = raft_core::RequestError::NotLeader { leader: None, outcome: Outcome::Unknown };
    /// assert_eq!(Error::Request(lost).outcome(), Outcome::Unknown);
    /// ```
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Timeout { outcome } => *outcome,
            Error::Request(e) => e.outcome(),
            Error::Abandoned(_) => Outcome::Unknown,
            _ => Outcome::Definite,
        }
    }
}

/// The handle's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
