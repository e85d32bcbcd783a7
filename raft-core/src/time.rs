//! Time as the core sees it: nanoseconds from the driver's epoch. The core never
//! reads a clock; the driver passes `now` into every `step`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

/// A point in the driver's monotonic time, in nanoseconds from its epoch.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Instant(pub u64);

/// A span of time in nanoseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Duration(pub u64);

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration(0);
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms * 1_000_000)
    }
    /// A duration of `us` microseconds.
    pub const fn from_micros(us: u64) -> Duration {
        Duration(us * 1_000)
    }
    /// A duration of `s` seconds.
    pub const fn from_secs(s: u64) -> Duration {
        Duration(s * 1_000_000_000)
    }
    /// Whole nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Converts to the standard library's duration (for drivers).
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
    /// Converts from the standard library's duration, saturating at u64 nanoseconds.
    pub fn from_std(d: std::time::Duration) -> Duration {
        Duration(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
    /// This duration multiplied by `factor`, saturating.
    pub const fn saturating_mul(self, factor: u64) -> Duration {
        Duration(self.0.saturating_mul(factor))
    }
}

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant, used as "never".
    pub const NEVER: Instant = Instant(u64::MAX);
    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.0 / 1_000_000_000,
            (self.0 % 1_000_000_000) / 1_000
        )
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1_000_000 {
            write!(f, "{}ms", self.0 / 1_000_000)
        } else {
            write!(f, "{}us", self.0 / 1_000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_convert_between_units_and_to_std_and_back_exactly() {
        let d = Duration::from_secs(2) + Duration::from_millis(3) + Duration::from_micros(4);
        assert_eq!(d.as_nanos(), 2_003_004_000);
        assert_eq!(d.as_millis(), 2_003);
        assert_eq!(d.to_std(), std::time::Duration::from_nanos(2_003_004_000));
        assert_eq!(Duration::from_std(d.to_std()), d);
        // A std duration beyond the core's range saturates, never wraps.
        assert_eq!(
            Duration::from_std(std::time::Duration::MAX),
            Duration(u64::MAX)
        );
        assert_eq!(
            Duration::from_millis(10).saturating_mul(3),
            Duration::from_millis(30)
        );
        assert_eq!(Duration(u64::MAX / 2).saturating_mul(3), Duration(u64::MAX));
    }

    #[test]
    fn instant_arithmetic_saturates_instead_of_wrapping() {
        let t = Instant(1_000);
        assert_eq!(t + Duration(500), Instant(1_500));
        assert_eq!(t - Duration(400), Instant(600));
        assert_eq!(t - Duration(5_000), Instant::ZERO);
        assert_eq!(Instant::NEVER + Duration(1), Instant::NEVER);
        assert_eq!(Instant(1_500).saturating_since(t), Duration(500));
        assert_eq!(t.saturating_since(Instant(1_500)), Duration::ZERO);
        assert_eq!(Duration(u64::MAX) + Duration(1), Duration(u64::MAX));
    }
}
