//! Newtypes for the protocol's numbers, so a term can never be passed where an
//! index is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($prefix)?;
                write_decimal(f, self.0)
            }
        }
    };
}

/// Writes `n` in decimal, ignoring the formatter's width, sign and fill
/// exactly as `write!(f, "{}", n)` does, but without a nested pass through
/// the formatting machinery when there are no such flags (the usual case):
/// traces print millions of terms and indexes, and the simulator's
/// determinism digest is made of that text.
fn write_decimal(f: &mut fmt::Formatter<'_>, n: u64) -> fmt::Result {
    if f.width().is_none() && !f.sign_plus() {
        // Without a width or a sign, `u64`'s Display writes the bare digits.
        fmt::Display::fmt(&n, f)
    } else {
        write!(f, "{n}")
    }
}

id_newtype!(
    /// A Raft term: a logical clock that only moves forward. Term 0 means "no
    /// election has happened yet".
    Term,
    "t"
);
id_newtype!(
    /// A 1-based position in the replicated log. Index 0 is the empty prefix.
    LogIndex,
    ""
);
id_newtype!(
    /// A server's identity inside one cluster. Ids are assigned by the cluster
    /// (`initialize` takes 1, each join takes `max_node_id + 1`) and never reused.
    NodeId,
    "n"
);
id_newtype!(
    /// A cluster's identity, chosen at random at `initialize` or derived from
    /// the member list and token of a [`crate::Bootstrap`]; every handshake
    /// and heartbeat carries it so nodes of two clusters can never mix.
    ClusterId,
    "c"
);
id_newtype!(
    /// The driver's handle for a client request; echoed in `Action::CompleteRequest`.
    RequestId,
    "r"
);
id_newtype!(
    /// The identity of one replication stream, chosen at random by the follower
    /// that opens it, so frames of an older stream can never be mistaken for
    /// frames of the current one.
    StreamId,
    "s"
);

impl Term {
    /// The largest term a node takes from a peer or from its recovered hard
    /// state (half the `u64` range): above it a message is refused and a hard
    /// state is an error, so the node's own campaigns, one term each, can
    /// never run out of terms.
    pub const LIMIT: Term = Term(u64::MAX / 2);

    /// The next term.
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl LogIndex {
    /// The largest index a node takes from a peer's snapshot (half the `u64`
    /// range). Entries arrive one index after another, but a snapshot names
    /// its index outright: above this one it is refused, so a log restarted
    /// after a snapshot always has room to go on.
    pub const LIMIT: LogIndex = LogIndex(u64::MAX / 2);

    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }
    /// The index before this one; `LogIndex(0).prev()` is a bug.
    pub fn prev(self) -> LogIndex {
        assert!(self.0 > 0, "LogIndex(0) has no predecessor");
        LogIndex(self.0 - 1)
    }
}

impl NodeId {
    /// The next node id.
    pub fn next(self) -> NodeId {
        NodeId(self.0 + 1)
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn newtypes_print_like_write_of_their_number() {
        for n in [0, 7, 9, 10, 99, 100, 12_345, u64::MAX - 1, u64::MAX] {
            assert_eq!(Term(n).to_string(), format!("t{n}"));
            assert_eq!(LogIndex(n).to_string(), format!("{n}"));
            assert_eq!(NodeId(n).to_string(), format!("n{n}"));
        }
        // As with `write!(f, "t{}", ..)`, the caller's width does not apply.
        assert_eq!(format!("{:>6}|{:<4}|", Term(3), LogIndex(12)), "t3|12|");
        assert_eq!(format!("{:+}|{:06}|", NodeId(4), LogIndex(5)), "n4|5|");
    }
}
