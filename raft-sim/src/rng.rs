//! Seeded randomness for the simulator: one ChaCha8 key per seed, one stream
//! per subsystem, and integer-only sampling helpers.
//!
//! Every subsystem draws from its own stream (`ChaCha8Rng::set_stream`), so a
//! change in one (a fault removed while shrinking, a new knob) does not shift
//! the draws of the others. All sampling is integer arithmetic on `next_u64`:
//! no floats and no `rand` distributions, whose algorithms may change between
//! releases and silently break replays. The golden test below pins the first
//! outputs of each stream for seed 0, so such a change fails loudly.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// The fixed enumeration of streams. Never renumber: replays depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// Scenario generation (knobs, fault mix).
    Swarm,
    /// The timed fault schedule.
    Schedule,
    /// Client operations.
    Workload,
    /// Datagram and stream micro-randomness.
    Network,
    /// Disk latencies and crash outcomes.
    Disk,
    /// Clock offsets and drift.
    Clock,
    /// Swarm draws and schedule of the families added after the first six
    /// streams (lease reads, the hostile member, targeted faults), so adding
    /// them shifted none of the earlier draws.
    Reach,
    /// The hostile member's choices during a run.
    Hostile,
    /// The core RNG seed of one node incarnation.
    Node {
        /// The node's index in the world (0-based).
        node: u64,
        /// How many times it has restarted.
        incarnation: u64,
    },
}

impl StreamKind {
    /// The ChaCha stream number: small constants for subsystems, node streams at
    /// `2^40 + node * 2^20 + incarnation` (disjoint for any realistic count).
    pub fn id(self) -> u64 {
        match self {
            StreamKind::Swarm => 1,
            StreamKind::Schedule => 2,
            StreamKind::Workload => 3,
            StreamKind::Network => 4,
            StreamKind::Disk => 5,
            StreamKind::Clock => 6,
            StreamKind::Reach => 7,
            StreamKind::Hostile => 8,
            StreamKind::Node { node, incarnation } => (1 << 40) + (node << 20) + incarnation,
        }
    }
}

/// A parts-per-million probability: `Ppm(1_000_000)` is certainty.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Ppm(pub u32);

impl Ppm {
    /// Never.
    pub const NEVER: Ppm = Ppm(0);
    /// Always.
    pub const ALWAYS: Ppm = Ppm(1_000_000);
}

/// A deterministic random source for one subsystem of one seed.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

/// Quantiles of the unit exponential distribution at k/16 (k = 0..16), in
/// millionths: `-ln(1 - k/16) * 1e6`. The last sixteenth is sampled by
/// memorylessness (add the 15/16 quantile and draw again).
const EXP_QUANTILES_MICRO: [u64; 16] = [
    0, 64_539, 133_531, 207_639, 287_682, 374_693, 470_004, 575_364, 693_147, 826_679, 980_829,
    1_163_151, 1_386_294, 1_673_976, 2_079_442, 2_772_589,
];

impl SimRng {
    /// The stream `kind` of `seed`.
    pub fn new(seed: u64, kind: StreamKind) -> SimRng {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(kind.id());
        SimRng { inner }
    }

    /// The next raw 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`), by widening multiply with rejection (Lemire),
    /// so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no values");
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "between({lo}, {hi}) is empty");
        if hi - lo == u64::MAX {
            return self.next_u64();
        }
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`. Draws nothing when `p` is 0 or certain, so
    /// disabling a fault does not shift the stream.
    pub fn chance(&mut self, p: Ppm) -> bool {
        if p.0 == 0 {
            return false;
        }
        if p.0 >= 1_000_000 {
            return true;
        }
        self.below(1_000_000) < p.0 as u64
    }

    /// An index into `weights` chosen with probability proportional to its
    /// weight (at least one weight must be positive).
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        assert!(total > 0, "weighted choice needs a positive weight");
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        unreachable!("x < total by construction")
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An exponentially distributed duration with mean `mean_ns`, from an
    /// integer quantile table with linear interpolation inside each sixteenth.
    pub fn exponential_ns(&mut self, mean_ns: u64) -> u64 {
        if mean_ns == 0 {
            return 0;
        }
        let mut micro: u64 = 0;
        // Each trip through the tail adds 2.77 means; 64 trips is beyond any
        // realistic draw (probability 16^-64) and bounds the loop.
        for _ in 0..64 {
            let x = self.next_u64();
            let bucket = (x >> 60) as usize;
            let frac = (x >> 28) & 0xFFFF_FFFF;
            if bucket < 15 {
                let lo = EXP_QUANTILES_MICRO[bucket];
                let hi = EXP_QUANTILES_MICRO[bucket + 1];
                micro += lo + (((hi - lo) as u128 * frac as u128) >> 32) as u64;
                break;
            }
            micro += EXP_QUANTILES_MICRO[15];
        }
        ((mean_ns as u128 * micro as u128) / 1_000_000) as u64
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(kind: StreamKind) -> [u64; 3] {
        let mut r = SimRng::new(0, kind);
        [r.next_u64(), r.next_u64(), r.next_u64()]
    }

    /// Pins the first outputs of every stream for seed 0. If this fails after a
    /// dependency bump, every recorded seed replays differently: do not update
    /// the constants without saying so in the commit.
    #[test]
    fn golden_first_outputs_for_seed_zero_are_pinned() {
        let golden: [(StreamKind, [u64; 3]); 7] = [
            (StreamKind::Swarm, GOLDEN[0]),
            (StreamKind::Schedule, GOLDEN[1]),
            (StreamKind::Workload, GOLDEN[2]),
            (StreamKind::Network, GOLDEN[3]),
            (StreamKind::Disk, GOLDEN[4]),
            (StreamKind::Clock, GOLDEN[5]),
            (
                StreamKind::Node {
                    node: 2,
                    incarnation: 1,
                },
                GOLDEN[6],
            ),
        ];
        for (kind, want) in golden {
            assert_eq!(first(kind), want, "stream {kind:?} of seed 0 changed");
        }
        let mut r = SimRng::new(0, StreamKind::Network);
        let drawn = [
            r.below(1000),
            r.below(1000),
            r.exponential_ns(1_000_000),
            r.between(5, 9),
        ];
        assert_eq!(drawn, GOLDEN_HELPERS, "sampling helpers changed");
    }

    const GOLDEN: [[u64; 3]; 7] = [
        [
            13_937_087_304_575_520_531,
            13_615_851_043_850_391_654,
            10_883_527_568_275_655_943,
        ],
        [
            6_128_383_831_660_698_443,
            16_699_132_898_050_153_672,
            11_704_648_542_249_330_188,
        ],
        [
            722_560_577_158_678_697,
            900_493_232_103_884_966,
            4_303_286_743_164_505_542,
        ],
        [
            15_789_455_820_715_750_791,
            11_748_627_266_572_777_163,
            2_163_931_160_656_718_624,
        ],
        [
            3_283_172_953_191_924_410,
            3_393_908_577_904_909_371,
            8_675_252_811_903_252_744,
        ],
        [
            2_864_297_967_017_666_925,
            7_539_808_045_771_372_441,
            5_676_750_541_424_887_931,
        ],
        [
            16_776_259_114_837_886_731,
            4_553_518_532_026_419_339,
            12_633_405_358_459_655_663,
        ],
    ];
    const GOLDEN_HELPERS: [u64; 4] = [855, 636, 125_038, 9];

    #[test]
    fn streams_of_one_seed_differ_and_seeds_differ() {
        assert_ne!(first(StreamKind::Network), first(StreamKind::Disk));
        let mut a = SimRng::new(1, StreamKind::Network);
        let mut b = SimRng::new(2, StreamKind::Network);
        assert_ne!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = SimRng::new(7, StreamKind::Workload);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let x = r.below(7);
            assert!(x < 7);
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn chance_extremes_draw_nothing() {
        let mut a = SimRng::new(3, StreamKind::Disk);
        let mut b = SimRng::new(3, StreamKind::Disk);
        assert!(!a.chance(Ppm::NEVER));
        assert!(a.chance(Ppm::ALWAYS));
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn exponential_mean_is_close_to_requested() {
        let mut r = SimRng::new(11, StreamKind::Network);
        let n = 20_000u64;
        let sum: u64 = (0..n).map(|_| r.exponential_ns(1_000_000)).sum();
        let mean = sum / n;
        assert!((950_000..1_050_000).contains(&mean), "mean {mean}");
    }

    #[test]
    fn weighted_never_picks_zero_weight() {
        let mut r = SimRng::new(5, StreamKind::Swarm);
        for _ in 0..1000 {
            assert_ne!(r.weighted(&[3, 0, 5]), 1);
        }
    }
}
