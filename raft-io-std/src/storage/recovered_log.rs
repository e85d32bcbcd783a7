//! The log as recovery rebuilds it within a memory budget: the longest tail
//! of whole entries whose [`LogEntry::budget_bytes`] fit, and a description
//! of the entries before it ([`StoredEntries`]: term runs, last index,
//! membership entries), which stay on disk.

use raft_core::{LogEntry, LogIndex, StoredEntries};
use std::collections::VecDeque;

/// The log as replay rebuilds it: a tail of whole entries within a byte
/// budget, and a description of the entries before it.
pub(crate) struct Replay {
    pub(crate) first_index: LogIndex,
    cache_bytes_max: u64,
    /// The front, evicted from `tail` to keep it within the budget.
    pub(crate) stored: Option<StoredEntries>,
    /// The entries after `stored` (or from `first_index`).
    pub(crate) tail: VecDeque<LogEntry>,
    /// The [`LogEntry::budget_bytes`] of `tail`.
    tail_bytes: u64,
}

impl Replay {
    pub(crate) fn new(cache_bytes_max: u64) -> Replay {
        Replay {
            first_index: LogIndex(1),
            cache_bytes_max,
            stored: None,
            tail: VecDeque::new(),
            tail_bytes: 0,
        }
    }

    /// The index the next entry must have. Entries never have index
    /// `u64::MAX` (replay refuses one), so this cannot overflow.
    pub(crate) fn next_index(&self) -> LogIndex {
        match (self.tail.back(), &self.stored) {
            (Some(e), _) => e.index.next(),
            (None, Some(stored)) => stored.last.next(),
            (None, None) => self.first_index,
        }
    }

    pub(crate) fn push(&mut self, entry: LogEntry) {
        self.tail_bytes += entry.budget_bytes();
        self.tail.push_back(entry);
        while self.tail_bytes > self.cache_bytes_max {
            let Some(evicted) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= evicted.budget_bytes();
            let stored = self.stored.get_or_insert_with(StoredEntries::default);
            if stored
                .term_starts
                .last()
                .is_none_or(|&(_, t)| t != evicted.term)
            {
                stored.term_starts.push((evicted.index, evicted.term));
            }
            stored.last = evicted.index;
            if evicted.kind.is_config() {
                stored.config_entries.push(evicted);
            }
        }
    }

    /// Removes every entry at `from` and after (`from` is within the log or
    /// right after it).
    pub(crate) fn truncate(&mut self, from: LogIndex) {
        while self.tail.back().is_some_and(|e| e.index >= from) {
            let removed = self.tail.pop_back().expect("checked");
            self.tail_bytes -= removed.budget_bytes();
        }
        if let Some(stored) = &mut self.stored {
            if from <= stored.last {
                stored.term_starts.retain(|&(start, _)| start < from);
                stored.config_entries.retain(|e| e.index < from);
                stored.last = LogIndex(from.0 - 1);
                if stored.term_starts.is_empty() {
                    self.stored = None;
                }
            }
        }
    }
}
