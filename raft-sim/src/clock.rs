//! Per-node local clocks: `local = offset + global + global * drift_ppm / 1e6`,
//! in integer arithmetic, plus forward jumps (resume from a pause, restart).
//!
//! The core only ever sees local time. A local clock is strictly monotone in
//! global time because drift is bounded well inside ±1,000,000 ppm.

use raft_core::Instant;

/// The largest drift magnitude a clock accepts (50 %): beyond it local time
/// could stand still, which is not a clock.
pub const DRIFT_PPM_LIMIT: i64 = 500_000;

/// One node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    offset_ns: u64,
    drift_ppm: i64,
}

impl Clock {
    /// A clock `offset_ns` ahead of global time, running `drift_ppm` fast
    /// (negative: slow).
    pub fn new(offset_ns: u64, drift_ppm: i64) -> Clock {
        assert!(
            drift_ppm.abs() <= DRIFT_PPM_LIMIT,
            "drift {drift_ppm} ppm beyond ±{DRIFT_PPM_LIMIT}"
        );
        Clock {
            offset_ns,
            drift_ppm,
        }
    }

    /// The drift in parts per million.
    pub fn drift_ppm(&self) -> i64 {
        self.drift_ppm
    }

    /// Local time at global time `global`.
    // Inlined (as `global_at`): every step and re-arm asks, and without
    // drift the answer is an addition.
    #[inline]
    pub fn local(&self, global: Instant) -> Instant {
        // 64-bit arithmetic whenever nothing overflows (any run shorter than
        // about five hours at the largest drift): 128-bit division was a few
        // percent of a sweep. The same value as the 128-bit path below, which
        // handles the rest: both divide truncating toward zero.
        if let Ok(g) = i64::try_from(global.0) {
            if let Some(product) = g.checked_mul(self.drift_ppm) {
                let local = self
                    .offset_ns
                    .checked_add(global.0)
                    .and_then(|t| t.checked_add_signed(product / 1_000_000));
                if let Some(local) = local {
                    return Instant(local);
                }
            }
        }
        self.local_wide(global)
    }

    /// [`Clock::local`] in 128-bit arithmetic, clamped to the `u64` range.
    fn local_wide(&self, global: Instant) -> Instant {
        let g = global.0 as i128;
        let local = self.offset_ns as i128 + g + g * self.drift_ppm as i128 / 1_000_000;
        Instant(local.clamp(0, u64::MAX as i128) as u64)
    }

    /// The earliest global time at which local time reaches `local`
    /// (`Instant::NEVER` stays never).
    #[inline]
    pub fn global_at(&self, local: Instant) -> Instant {
        if local == Instant::NEVER {
            return Instant::NEVER;
        }
        let want = local.0 as i128 - self.offset_ns as i128;
        if want <= 0 {
            return Instant::ZERO;
        }
        if self.drift_ppm == 0 {
            // Local time is global time plus the offset (the default knobs
            // draw no drift, and every re-arm asks).
            return Instant(want as u64);
        }
        // Invert g * (1e6 + drift) / 1e6 = want, then correct the rounding so
        // the answer is the least g with local(g) >= local.
        // The first guess in 64 bits when `want * 1e6` fits (as in `local`);
        // the loops below make the answer exact either way.
        let rate = 1_000_000 + self.drift_ppm;
        let mut g = match (want as i64).checked_mul(1_000_000) {
            Some(scaled) if want <= i64::MAX as i128 => (scaled / rate) as u64,
            _ => (want * 1_000_000 / rate as i128).clamp(0, u64::MAX as i128) as u64,
        };
        while g > 0 && self.local(Instant(g - 1)) >= local {
            g -= 1;
        }
        while self.local(Instant(g)) < local {
            g += 1;
        }
        Instant(g)
    }

    /// Moves the clock forward by `jump_ns` (a resume after a pause, a step).
    pub fn jump_forward(&mut self, jump_ns: u64) {
        self.offset_ns = self.offset_ns.saturating_add(jump_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_at_inverts_local_for_fast_and_slow_clocks() {
        for drift in [-50_000, -100, 0, 100, 50_000] {
            let c = Clock::new(123_456, drift);
            for g in [0u64, 1, 999, 1_000_000, 7_777_777_777] {
                let l = c.local(Instant(g));
                let back = c.global_at(l);
                assert!(back.0 <= g, "drift {drift}: {back:?} > {g}");
                assert_eq!(c.local(back), l);
                if back.0 > 0 {
                    assert!(c.local(Instant(back.0 - 1)) < l);
                }
            }
        }
    }

    #[test]
    fn local_time_is_monotone_and_drifts_by_the_rate() {
        let c = Clock::new(0, 1_000);
        assert_eq!(c.local(Instant(1_000_000_000)), Instant(1_001_000_000));
        let slow = Clock::new(0, -1_000);
        assert_eq!(slow.local(Instant(1_000_000_000)), Instant(999_000_000));
        let mut prev = Instant::ZERO;
        for g in 0..10_000u64 {
            let l = slow.local(Instant(g * 97));
            assert!(l >= prev);
            prev = l;
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_wide_one() {
        let globals = [
            0u64,
            1,
            999_999,
            1_000_001,
            7_777_777_777,
            (1 << 44) + 3,
            i64::MAX as u64 / 500_000,
            i64::MAX as u64 / 500_000 + 1,
            i64::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ];
        for drift in [
            -DRIFT_PPM_LIMIT,
            -123_457,
            -1,
            0,
            1,
            99,
            123_457,
            DRIFT_PPM_LIMIT,
        ] {
            for offset in [0u64, 5, 1 << 40, u64::MAX - 10] {
                let c = Clock::new(offset, drift);
                for g in globals {
                    assert_eq!(
                        c.local(Instant(g)),
                        c.local_wide(Instant(g)),
                        "offset {offset} drift {drift} at {g}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_jump_moves_local_time_forward_only() {
        let mut c = Clock::new(5, 0);
        c.jump_forward(1_000);
        assert_eq!(c.local(Instant(10)), Instant(1_015));
    }
}
