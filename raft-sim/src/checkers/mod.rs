//! Oracles. Each check returns a [`Failure`] naming the checker; the world
//! stops at the first one.
//!
//! * [`log`]: log matching, leader completeness, state-machine safety, commit bound.
//! * [`durability`]: the driver contract seen from the disk: what leaves a node
//!   is durable; a leader's commit has the current term and a durable quorum.
//! * [`election`]: one leader per term; term, vote and commit monotonicity.
//! * [`writes`]: no acknowledged write lost.
//! * [`liveness`]: after the heal, a stable leader, progress and convergence.
//! * [`crate::linearizability`]: the client history, at the end of the run.

pub mod durability;
pub mod election;
pub mod liveness;
pub mod log;
pub mod writes;

use std::fmt;

/// What kind of failure, which also picks the exit code.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum FailureClass {
    /// A safety property or the driver contract broke (exit 2).
    Safety,
    /// The cluster did not recover after the heal (exit 3).
    Liveness,
    /// The core panicked (exit 4).
    Panic,
    /// The same seed produced two different runs (exit 5).
    Nondeterminism,
    /// A checker could not decide in its budget (exit 6): never a silent pass.
    Undecided,
}

impl FailureClass {
    /// The process exit code for this class.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Safety => 2,
            FailureClass::Liveness => 3,
            FailureClass::Panic => 4,
            FailureClass::Nondeterminism => 5,
            FailureClass::Undecided => 6,
        }
    }
}

/// A checker's verdict against the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The class.
    pub class: FailureClass,
    /// The checker's name.
    pub checker: &'static str,
    /// What it saw.
    pub message: String,
}

impl Failure {
    /// A safety failure.
    pub fn safety(checker: &'static str, message: String) -> Failure {
        Failure {
            class: FailureClass::Safety,
            checker,
            message,
        }
    }
    /// A liveness failure.
    pub fn liveness(checker: &'static str, message: String) -> Failure {
        Failure {
            class: FailureClass::Liveness,
            checker,
            message,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} [{}] {}", self.class, self.checker, self.message)
    }
}
