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
    assert!(quorum > 0, "a quorum has at least one member");
    if matches.len() < quorum {
        return LogIndex(0);
    }
    // The quorum-th largest, found without allocating (clusters are small):
    // the largest value that at least `quorum` matches reach.
    let mut best = LogIndex(0);
    for &candidate in matches {
        if candidate > best && matches.iter().filter(|&&m| m >= candidate).count() >= quorum {
            best = candidate;
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
    fn majority_needs_more_than_half() {
        assert!(is_majority(1, 1));
        assert!(!is_majority(1, 2));
        assert!(is_majority(2, 3));
        assert!(!is_majority(2, 4));
        assert!(is_majority(3, 5));
    }
}
