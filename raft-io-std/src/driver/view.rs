//! What the driver publishes for the handle: role, term, leader, membership,
//! and the FSM's applied index (which `wait_applied` blocks on).

use crate::metrics::SnapshotMetrics;
use raft_core::{ClusterId, Config, LogIndex, NodeId, Role, Term};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// The node's state as last published by the driver.
#[derive(Clone, Debug)]
pub(crate) struct ViewState {
    pub(crate) id: Option<NodeId>,
    pub(crate) cluster_id: Option<ClusterId>,
    pub(crate) role: Role,
    pub(crate) term: Term,
    pub(crate) leader: Option<NodeId>,
    pub(crate) config: Config,
    pub(crate) commit: LogIndex,
}

/// Why the node no longer serves requests.
#[derive(Clone, Debug)]
pub(crate) enum Ended {
    Closed,
    Stopped(String),
}

struct Applied {
    index: LogIndex,
    ended: Option<Ended>,
}

/// Why a `wait_applied` returned without its index applied.
pub(crate) enum WaitError {
    Ended(Ended),
    Timeout,
}

pub(crate) struct View {
    state: Mutex<ViewState>,
    applied: Mutex<Applied>,
    changed: Condvar,
    snapshots: Mutex<SnapshotMetrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl View {
    pub(crate) fn new(applied: LogIndex) -> View {
        View {
            state: Mutex::new(ViewState {
                id: None,
                cluster_id: None,
                role: Role::Learner,
                term: Term(0),
                leader: None,
                config: Config::default(),
                commit: applied,
            }),
            applied: Mutex::new(Applied {
                index: applied,
                ended: None,
            }),
            changed: Condvar::new(),
            snapshots: Mutex::new(SnapshotMetrics::default()),
        }
    }

    /// Counts a snapshot made durable: `bytes` long, `took` since the
    /// core's request.
    pub(crate) fn snapshot_taken(&self, bytes: u64, took: std::time::Duration) {
        let ms = took.as_millis().min(u64::MAX as u128) as u64;
        let mut s = lock(&self.snapshots);
        s.taken += 1;
        s.last_bytes = bytes;
        s.last_ms = ms;
        s.max_ms = s.max_ms.max(ms);
    }

    pub(crate) fn snapshots(&self) -> SnapshotMetrics {
        *lock(&self.snapshots)
    }

    pub(crate) fn get(&self) -> ViewState {
        lock(&self.state).clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut ViewState)) {
        f(&mut lock(&self.state));
    }

    pub(crate) fn applied(&self) -> LogIndex {
        lock(&self.applied).index
    }

    pub(crate) fn ended(&self) -> Option<Ended> {
        lock(&self.applied).ended.clone()
    }

    pub(crate) fn set_applied(&self, index: LogIndex) {
        let mut a = lock(&self.applied);
        if index > a.index {
            a.index = index;
            drop(a);
            self.changed.notify_all();
        }
    }

    /// Marks the node closed or stopped (the first reason sticks) and wakes waiters.
    pub(crate) fn end(&self, why: Ended) {
        let mut a = lock(&self.applied);
        if a.ended.is_none() {
            a.ended = Some(why);
        }
        drop(a);
        self.changed.notify_all();
    }

    /// Blocks until the FSM applied `index`, the node ended, or `deadline`.
    pub(crate) fn wait_applied(&self, index: LogIndex, deadline: Instant) -> Result<(), WaitError> {
        let mut a = lock(&self.applied);
        loop {
            if a.index >= index {
                return Ok(());
            }
            if let Some(why) = &a.ended {
                return Err(WaitError::Ended(why.clone()));
            }
            a = super::reply::wait_until(&self.changed, a, deadline).ok_or(WaitError::Timeout)?;
        }
    }
}
