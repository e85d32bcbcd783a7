//! [`Entries`]: a run of log entries shared, not copied, between the log,
//! every follower's chunk and `Apply`.

use crate::entry::LogEntry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// Consecutive log entries in one shared allocation: cloning and
/// [`Entries::slice`] copy no entry and allocate nothing.
///
/// A leader builds one `Entries` per batch of proposals; its log keeps it,
/// and the `AppendLog`, every follower's `Frame::Chunk` and the `Apply` that
/// carry those entries share it (a chunk or an `Apply` that spans several
/// batches gathers them into one new allocation). It reads as a slice
/// (`Deref<Target = [LogEntry]>`), and on the wire it is encoded exactly as a
/// `Vec<LogEntry>` is. Iterating one by value yields clones of its entries
/// (cheap: an entry's payload is a shared [`bytes::Bytes`]).
#[derive(Clone, Default)]
pub struct Entries {
    /// `None` for no entries: an empty run (a commit-only chunk) allocates nothing.
    shared: Option<Arc<[LogEntry]>>,
    /// The part of `shared` this run is.
    start: usize,
    end: usize,
}

impl Entries {
    /// No entries.
    pub fn new() -> Entries {
        Entries::default()
    }

    /// The entries, as a slice.
    pub fn as_slice(&self) -> &[LogEntry] {
        match &self.shared {
            Some(all) => &all[self.start..self.end],
            None => &[],
        }
    }

    /// The entries at positions `range` of this run (not log indexes), sharing
    /// its allocation. Panics if `range` is out of bounds, as slicing does.
    pub fn slice(&self, range: Range<usize>) -> Entries {
        assert!(
            range.start <= range.end && range.end <= self.len(),
            "entries {range:?} of a run of {}",
            self.len()
        );
        if range.is_empty() {
            return Entries::new();
        }
        Entries {
            shared: self.shared.clone(),
            start: self.start + range.start,
            end: self.start + range.end,
        }
    }

    /// The entries from position `from` of this run on (see [`Entries::slice`]).
    pub fn slice_from(&self, from: usize) -> Entries {
        self.slice(from..self.len())
    }
}

impl From<Arc<[LogEntry]>> for Entries {
    fn from(shared: Arc<[LogEntry]>) -> Entries {
        let end = shared.len();
        if end == 0 {
            return Entries::new();
        }
        Entries {
            shared: Some(shared),
            start: 0,
            end,
        }
    }
}

impl From<Vec<LogEntry>> for Entries {
    fn from(entries: Vec<LogEntry>) -> Entries {
        if entries.is_empty() {
            return Entries::new();
        }
        Entries::from(Arc::<[LogEntry]>::from(entries))
    }
}

impl<const N: usize> From<[LogEntry; N]> for Entries {
    fn from(entries: [LogEntry; N]) -> Entries {
        Entries::from_iter(entries)
    }
}

impl FromIterator<LogEntry> for Entries {
    /// One allocation when the iterator knows its exact length (a `map` over
    /// a slice, a `Vec` or a range), as collecting into `Arc<[_]>` does.
    fn from_iter<I: IntoIterator<Item = LogEntry>>(iter: I) -> Entries {
        Entries::from(iter.into_iter().collect::<Arc<[LogEntry]>>())
    }
}

impl Deref for Entries {
    type Target = [LogEntry];
    fn deref(&self) -> &[LogEntry] {
        self.as_slice()
    }
}

impl AsRef<[LogEntry]> for Entries {
    fn as_ref(&self) -> &[LogEntry] {
        self.as_slice()
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Entries) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Entries {}

impl PartialEq<[LogEntry]> for Entries {
    fn eq(&self, other: &[LogEntry]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<LogEntry>> for Entries {
    fn eq(&self, other: &Vec<LogEntry>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::hash::Hash for Entries {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<'a> IntoIterator for &'a Entries {
    type Item = &'a LogEntry;
    type IntoIter = std::slice::Iter<'a, LogEntry>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl IntoIterator for Entries {
    type Item = LogEntry;
    type IntoIter = EntriesIntoIter;
    fn into_iter(self) -> EntriesIntoIter {
        EntriesIntoIter {
            entries: self,
            next: 0,
        }
    }
}

/// Clones of the entries of an [`Entries`], in order.
#[derive(Clone, Debug)]
pub struct EntriesIntoIter {
    entries: Entries,
    next: usize,
}

impl Iterator for EntriesIntoIter {
    type Item = LogEntry;
    fn next(&mut self) -> Option<LogEntry> {
        let e = self.entries.get(self.next)?.clone();
        self.next += 1;
        Some(e)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.entries.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for EntriesIntoIter {}

impl Serialize for Entries {
    /// As a sequence, byte for byte what a `Vec<LogEntry>` encodes to.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Entries {
    /// What a `Vec<LogEntry>` decodes from, with the same limits.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entries, D::Error> {
        Vec::<LogEntry>::deserialize(deserializer).map(Entries::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;
    use crate::types::{LogIndex, Term};
    use bytes::Bytes;

    fn run(count: u64) -> Entries {
        (1..=count)
            .map(|i| LogEntry {
                index: LogIndex(i),
                term: Term(1),
                kind: EntryKind::Command,
                data: Bytes::from(vec![i as u8; 3]),
            })
            .collect()
    }

    #[test]
    fn a_slice_shares_the_allocation_and_sees_only_its_entries() {
        let all = run(5);
        let middle = all.slice(1..4);
        assert_eq!(middle.len(), 3);
        assert_eq!(middle[0].index, LogIndex(2));
        assert_eq!(middle.last().map(|e| e.index), Some(LogIndex(4)));
        assert!(
            std::ptr::eq(&all[1], &middle[0]),
            "the slice copied entries"
        );
        let tail = middle.slice_from(2);
        assert_eq!(tail.as_slice(), &all[3..4]);
        assert!(middle.slice(1..1).is_empty());
    }

    #[test]
    fn entries_encode_byte_for_byte_as_a_vector_of_entries_and_decode_back() {
        for count in [0, 1, 7] {
            let entries = run(count);
            let as_vec: Vec<LogEntry> = entries.to_vec();
            let encoded = postcard::to_allocvec(&entries).unwrap();
            assert_eq!(encoded, postcard::to_allocvec(&as_vec).unwrap());
            let decoded: Entries = postcard::from_bytes(&encoded).unwrap();
            assert_eq!(decoded, entries);
            // A sub-slice encodes as the entries it shows, nothing around them.
            if count > 2 {
                let part = entries.slice(1..3);
                assert_eq!(
                    postcard::to_allocvec(&part).unwrap(),
                    postcard::to_allocvec(&entries[1..3].to_vec()).unwrap()
                );
            }
        }
    }

    #[test]
    fn entries_compare_by_the_entries_they_show() {
        // Equal entries in different allocations are equal; a slice equals
        // the entries it shows, whatever it shares; any difference in
        // index, term or data makes them differ.
        let all = run(5);
        assert_eq!(all.slice(1..3), run(3).slice(1..3));
        assert_eq!(all.slice(0..2), run(2));
        assert_ne!(all.slice(0..2), all.slice(1..3));
        assert_ne!(all, run(4));
        let mut other = all.to_vec();
        other[4].data = Bytes::from_static(b"other");
        assert_ne!(all, Entries::from(other.clone()));
        assert!(all != *other.as_slice());
        assert!(all == *all.to_vec().as_slice());
    }

    #[test]
    fn entries_debug_print_as_the_list_of_their_entries_only() {
        // Test failures and traces show frames and actions through `Debug`:
        // a slice shows the entries it holds, like a vector of them, not
        // the rest of the allocation it shares.
        let all = run(5);
        let middle = all.slice(1..4);
        assert_eq!(format!("{middle:?}"), format!("{:?}", &all.to_vec()[1..4]));
        assert_eq!(format!("{:?}", Entries::new()), "[]");
    }

    #[test]
    fn entries_are_a_slice_of_their_entries_through_as_ref() {
        // Code generic over `AsRef<[LogEntry]>` (a driver's storage, say)
        // sees exactly the entries a slice holds.
        fn indexes(entries: impl AsRef<[LogEntry]>) -> Vec<u64> {
            entries.as_ref().iter().map(|e| e.index.0).collect()
        }
        assert_eq!(indexes(run(5).slice(1..4)), [2, 3, 4]);
        assert!(indexes(Entries::new()).is_empty());
    }

    #[test]
    fn iterating_by_value_yields_every_entry_in_order() {
        let entries = run(4).slice(1..4);
        let indexes: Vec<u64> = entries.into_iter().map(|e| e.index.0).collect();
        assert_eq!(indexes, [2, 3, 4]);
    }

    #[test]
    fn the_by_value_iterator_knows_exactly_how_many_entries_are_left() {
        // `ExactSizeIterator` promises an exact `len` at every step, which
        // `collect` and `zip` rely on to size what they build.
        let mut it = run(5).slice(1..4).into_iter();
        for left in (0..=3).rev() {
            assert_eq!(it.len(), left);
            assert_eq!(it.size_hint(), (left, Some(left)));
            assert_eq!(it.next().is_some(), left > 0);
        }
    }

    #[test]
    fn equal_entries_hash_alike_however_they_share_their_allocation() {
        // `Hash` agrees with `Eq` (a map keyed by entries finds them): a
        // slice of one run and a fresh run of the same entries hash alike.
        use std::hash::{BuildHasher, RandomState};
        let state = RandomState::new();
        let slice = run(5).slice(1..4);
        let fresh: Entries = slice.iter().cloned().collect();
        assert_eq!(slice, fresh);
        assert_eq!(state.hash_one(&slice), state.hash_one(&fresh));
        assert_eq!(state.hash_one(&slice), state.hash_one(slice.as_slice()));
        assert_ne!(state.hash_one(&slice), state.hash_one(run(3)));
    }

    #[test]
    fn entries_equal_the_vector_or_slice_of_the_same_entries_and_no_other() {
        let entries = run(3);
        let same: Vec<LogEntry> = entries.to_vec();
        assert!(entries == same);
        assert!(entries == *same.as_slice());
        let mut other = same.clone();
        other[2].term = Term(2);
        assert!(entries != other);
        assert!(entries != *other.as_slice());
        assert!(entries != same[..2].to_vec());
        assert!(Entries::new() == Vec::new());
    }
}
