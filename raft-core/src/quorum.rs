//! Quorum arithmetic as pure functions.

use crate::types::LogIndex;

/// The highest index that at least `quorum` of `matches` have reached.
///
/// ```
/// use raft_core::quorum::committed_index;
/// use raft_core::LogIndex;
/// let m = [LogIndex(5), LogIndex(9), LogIndex(7)];
/// assert_eq!(committed_index(&m, 2), LogIndex(7));
/// ```
pub fn committed_index(matches: &[LogIndex], quorum: usize) -> LogIndex {
    quorum_value(matches, quorum).unwrap_or(LogIndex(0))
}

/// The largest value that at least `quorum` of `values` reach (the
/// quorum-th largest), or `None` if there are fewer than `quorum` values.
/// Over match indexes it is the commit point; over last-heard instants, the
/// latest time by which a quorum had been heard from.
///
/// ```
/// use raft_core::quorum::quorum_value;
/// assert_eq!(quorum_value(&[30, 10, 20], 2), Some(20));
/// assert_eq!(quorum_value(&[30], 2), None);
/// ```
pub fn quorum_value<T: Copy + Ord>(values: &[T], quorum: usize) -> Option<T> {
    assert!(quorum > 0, "a quorum has at least one member");
    // Found without allocating (clusters are small): the largest candidate
    // that at least `quorum` values reach.
    let mut best = None;
    for &candidate in values {
        if best.is_none_or(|b| candidate > b)
            && values.iter().filter(|&&v| v >= candidate).count() >= quorum
        {
            best = Some(candidate);
        }
    }
    best
}

/// Whether `count` votes (or acks) out of `voters` form a majority.
pub fn is_majority(count: usize, voters: usize) -> bool {
    count > voters / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_index_is_the_quorum_th_largest() {
        let l = |v: &[u64]| v.iter().map(|&x| LogIndex(x)).collect::<Vec<_>>();
        assert_eq!(committed_index(&l(&[3]), 1), LogIndex(3));
        assert_eq!(committed_index(&l(&[1, 2, 3, 4, 5]), 3), LogIndex(3));
        assert_eq!(committed_index(&l(&[5, 5, 1, 1]), 3), LogIndex(1));
        assert_eq!(committed_index(&l(&[5]), 2), LogIndex(0));
    }

    #[test]
    fn quorum_value_is_the_quorum_th_largest_of_any_order() {
        assert_eq!(quorum_value(&[5u64, 1, 9, 9], 3), Some(5));
        assert_eq!(quorum_value(&[7u64, 7, 7], 3), Some(7));
        assert_eq!(quorum_value::<u64>(&[], 1), None);
    }

    #[test]
    fn majority_needs_more_than_half() {
        assert!(is_majority(1, 1));
        assert!(!is_majority(1, 2));
        assert!(is_majority(2, 3));
        assert!(!is_majority(2, 4));
        assert!(is_majority(3, 5));
    }
}
