//! The client history: every operation the simulated clients invoked, with
//! invoke and completion times in global simulated time and its outcome.
//!
//! [`Op`] is the key-value store's history in the form its register checker
//! reads (`crate::linearizability::check_history`; the store's model converts
//! the generic [`crate::service::Op`] with [`crate::kv::to_register_op`]);
//! [`OpRecord`] is what a run report keeps of any service's history. Both are
//! deliberately plain data.
//!
//! # Conventions the checker may rely on
//!
//! * Written values are unique across the whole run: no two `Put`s and no two
//!   `Cas`s (as `to`) write the same value, and no write uses [`Value`] 0
//!   semantics specially. So every value a `Get` returns points at exactly one
//!   write.
//! * Each client process has at most one outstanding operation: the ops of one
//!   `client` never overlap in time. After an [`OpStatus::Unknown`] the process
//!   retires and later operations use a fresh `client` id (Jepsen's model).
//! * Times are nanoseconds of global simulated time; `complete_ns >= invoke_ns`.
//! * [`OpStatus::Ok`]: the operation took effect exactly once between
//!   `invoke_ns` and `complete_ns` (its results are set).
//! * [`OpStatus::Failed`]: the operation certainly did not take effect (a
//!   definite error). The checker may ignore it.
//! * [`OpStatus::Unknown`]: the operation may have taken effect at any point
//!   after `invoke_ns`, or never; `complete_ns` is `None` (it never returned),
//!   and result fields (`Get::result`, `Cas::ok`) carry no information.
//! * A `Cas` that completed [`OpStatus::Ok`] with `ok: Some(false)` took effect
//!   as a read that saw a value different from `from` (it wrote nothing).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A client process id. Fresh after every indeterminate outcome.
pub type ClientId = u64;
/// A key of the replicated key-value map (a small key set, so ops contend).
pub type Key = u64;
/// A value in the key-value map. Unique per write in a run.
pub type Value = u64;

/// What an operation did (and, for reads, what it saw).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpKind {
    /// Set `key` to `value`.
    Put {
        /// The value written.
        value: Value,
    },
    /// Read `key`.
    Get {
        /// The value read (`None`: the key had no value). Meaningful only when
        /// the outcome is [`OpStatus::Ok`].
        result: Option<Value>,
    },
    /// Compare-and-set: if `key` holds `from`, set it to `to`.
    Cas {
        /// The value expected.
        from: Value,
        /// The value written if the comparison succeeds.
        to: Value,
        /// Whether the comparison succeeded; `None` unless the outcome is
        /// [`OpStatus::Ok`].
        ok: Option<bool>,
    },
}

/// How an operation ended, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpStatus {
    /// Completed successfully; the results are known.
    Ok,
    /// The client cannot know whether it happened (timeout, leadership lost
    /// after the append): it may take effect at any time after invocation, or never.
    Unknown,
    /// Certainly did not happen and never will.
    Failed,
}

/// One client operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history (invocation order); unique.
    pub id: u64,
    /// The client process that issued it.
    pub client: ClientId,
    /// The key it touches.
    pub key: Key,
    /// What it did.
    pub kind: OpKind,
    /// When the client invoked it (global simulated nanoseconds).
    pub invoke_ns: u64,
    /// When it completed; `None` for [`OpStatus::Unknown`].
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: OpStatus,
}

impl Op {
    /// Whether the operation may change the map (`Put` or `Cas`).
    pub fn is_write(&self) -> bool {
        matches!(self.kind, OpKind::Put { .. } | OpKind::Cas { .. })
    }

    /// The value this operation would write, if any.
    pub fn written_value(&self) -> Option<Value> {
        match self.kind {
            OpKind::Put { value } => Some(value),
            OpKind::Cas { to, .. } => Some(to),
            OpKind::Get { .. } => None,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpKind::Put { value } => write!(f, "put {value}"),
            OpKind::Get { result: Some(v) } => write!(f, "get -> {v}"),
            OpKind::Get { result: None } => write!(f, "get -> nil"),
            OpKind::Cas { from, to, ok } => {
                let ok = match ok {
                    Some(true) => " ok",
                    Some(false) => " mismatch",
                    None => "",
                };
                write!(f, "cas {from}->{to}{ok}")
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written in pieces rather than through a formatted `end` string:
        // every client completion's trace line prints an op.
        write!(
            f,
            "op{} c{} k{} {} [{}..",
            self.id, self.client, self.key, self.kind, self.invoke_ns
        )?;
        match self.complete_ns {
            Some(c) => write!(f, "{c}")?,
            None => f.write_str("?")?,
        }
        write!(f, "] {:?}", self.outcome)
    }
}

/// One client operation as a run report keeps it, whatever the service: its
/// times and outcome, and a description for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// Position in the history.
    pub id: u64,
    /// The client process that issued it.
    pub client: ClientId,
    /// When the client invoked it (global simulated nanoseconds).
    pub invoke_ns: u64,
    /// When it completed; `None` for [`OpStatus::Unknown`].
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: OpStatus,
    /// What it asked and got, as the service's types print it.
    pub text: String,
}

impl fmt::Display for OpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_value_is_the_put_value_or_the_cas_target() {
        let put = Op {
            id: 0,
            client: 1,
            key: 2,
            kind: OpKind::Put { value: 7 },
            invoke_ns: 10,
            complete_ns: Some(20),
            outcome: OpStatus::Ok,
        };
        assert_eq!(put.written_value(), Some(7));
        let cas = Op {
            kind: OpKind::Cas {
                from: 7,
                to: 8,
                ok: Some(true),
            },
            ..put
        };
        assert_eq!(cas.written_value(), Some(8));
        let get = Op {
            kind: OpKind::Get { result: Some(8) },
            ..put
        };
        assert_eq!(get.written_value(), None);
        assert!(!get.is_write());
        assert_eq!(format!("{cas}"), "op0 c1 k2 cas 7->8 ok [10..20] Ok");
    }
}
