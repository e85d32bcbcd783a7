//! Properties of the pure pieces: quorum arithmetic and configs.
use proptest::prelude::*;
use raft_core::quorum::{committed_index, is_majority};
use raft_core::*;

proptest! {
    /// The committed index is reached by at least a quorum and exceeded by fewer.
    #[test]
    fn committed_index_is_reached_by_a_quorum(matches in prop::collection::vec(0u64..50, 1..9)) {
        let m: Vec<LogIndex> = matches.iter().map(|&x| LogIndex(x)).collect();
        let q = m.len() / 2 + 1;
        let c = committed_index(&m, q);
        prop_assert!(m.iter().filter(|&&x| x >= c).count() >= q);
        prop_assert!(m.iter().filter(|&&x| x > c).count() < q);
    }

    /// Any two majorities of the same voter set intersect.
    #[test]
    fn majorities_intersect(voters in 1usize..10, a in any::<u16>(), b in any::<u16>()) {
        let set = |bits: u16| (0..voters).filter(|i| bits & (1 << i) != 0).collect::<Vec<_>>();
        let (sa, sb) = (set(a), set(b));
        if is_majority(sa.len(), voters) && is_majority(sb.len(), voters) {
            prop_assert!(sa.iter().any(|x| sb.contains(x)));
        }
    }

    /// A config round-trips through its entry encoding, and decoding arbitrary
    /// bytes never panics.
    #[test]
    fn configs_round_trip_and_garbage_is_an_error(n in 1u64..8, garbage in prop::collection::vec(any::<u8>(), 0..64)) {
        let config = Config {
            cluster_id: ClusterId(3),
            index: LogIndex(4),
            max_node_id: NodeId(n),
            members: (1..=n).map(|i| Member { id: NodeId(i), address: format!("h{i}"), role: MemberRole::Voter }).collect(),
        };
        prop_assert_eq!(Config::decode(&config.encode()), Ok(config));
        let _ = Config::decode(&garbage);
    }
}

#[test]
fn configs_with_duplicate_or_unsorted_members_are_invalid() {
    let m = |id: u64, a: &str| Member {
        id: NodeId(id),
        address: a.into(),
        role: MemberRole::Voter,
    };
    let base = Config {
        cluster_id: ClusterId(1),
        index: LogIndex(1),
        max_node_id: NodeId(3),
        members: vec![],
    };
    for members in [
        vec![m(2, "a"), m(1, "b")],
        vec![m(1, "a"), m(1, "b")],
        vec![m(1, "a"), m(2, "a")],
        vec![m(4, "a")],
        vec![m(1, "")],
    ] {
        let c = Config {
            members,
            ..base.clone()
        };
        assert!(Config::decode(&c.encode()).is_err(), "{c:?}");
    }
}
