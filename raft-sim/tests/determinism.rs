//! The same seed replays bit for bit: identical trace digests on two runs of
//! each of several seeds (default knobs and swarm), and different seeds differ.

use raft_sim::swarm::Overrides;
use raft_sim::sweep::{RunConfig, run_seed};
use raft_sim::trace::Trace;

fn config(swarm: bool) -> RunConfig {
    RunConfig {
        swarm,
        overrides: Overrides {
            duration_ms: Some(6_000),
            ..Overrides::default()
        },
    }
}

fn digest(seed: u64, config: &RunConfig) -> (u64, u64) {
    let r = run_seed(seed, config, Trace::new(0, false));
    (r.digest, r.events)
}

#[test]
fn the_same_seed_gives_the_same_digest_twice() {
    for swarm in [false, true] {
        let config = config(swarm);
        for seed in [0, 1, 7, 42, 1234] {
            let a = digest(seed, &config);
            let b = digest(seed, &config);
            assert_eq!(a, b, "seed {seed} (swarm {swarm}) replayed differently");
            assert!(
                a.1 > 1_000,
                "seed {seed} did almost nothing: {} events",
                a.1
            );
        }
    }
}

#[test]
fn different_seeds_give_different_digests() {
    let config = config(false);
    let digests: Vec<u64> = (0..6).map(|s| digest(s, &config).0).collect();
    for (i, a) in digests.iter().enumerate() {
        for b in &digests[i + 1..] {
            assert_ne!(a, b, "two seeds produced the same run");
        }
    }
}
