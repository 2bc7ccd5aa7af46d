//! The engine's clock: a point in time given by the caller, never read from the system.
//!
//! [`Instant`] counts microseconds from an epoch the caller picks (the facade uses the moment
//! the stack started; tests use zero). Because the engine only ever sees `now` as a
//! parameter, a test can jump two hours ahead in one call and a keepalive test runs in
//! microseconds of real time.

use core::fmt;
use core::num::NonZeroU64;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since the caller's epoch.
///
/// It is stored as microseconds plus one, so that `Option<Instant>` is eight bytes, not
/// sixteen: every connection holds a dozen optional deadlines and timestamps. The last
/// representable microsecond (`u64::MAX`) is therefore given up; arithmetic saturates one
/// below it, some 584 000 years after the epoch.
///
/// # Examples
/// ```
/// use rawtcp_core::Instant;
/// use std::time::Duration;
///
/// let start = Instant::ZERO;
/// let later = start + Duration::from_secs(2);
/// assert_eq!(later - start, Duration::from_secs(2));
/// assert_eq!(later.to_string(), "2.000000s");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    /// Microseconds since the epoch, plus one.
    plus_one: NonZeroU64,
}

/// The latest representable time, in microseconds since the epoch.
const MAX_MICROS: u64 = u64::MAX - 1;

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant::from_micros(0);

    /// `micros` microseconds after the epoch (at most `u64::MAX - 1`: larger values
    /// saturate).
    pub const fn from_micros(micros: u64) -> Instant {
        let micros = if micros > MAX_MICROS {
            MAX_MICROS
        } else {
            micros
        };
        match NonZeroU64::new(micros + 1) {
            Some(plus_one) => Instant { plus_one },
            None => Instant {
                plus_one: NonZeroU64::MAX,
            },
        }
    }

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant::from_micros(millis.saturating_mul(1_000))
    }

    /// `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant::from_micros(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.plus_one.get() - 1
    }

    /// Time since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.as_micros().saturating_sub(earlier.as_micros()))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let micros = u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(self.as_micros().saturating_add(micros))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        let micros = u64::try_from(rhs.as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(self.as_micros().saturating_sub(micros))
    }
}

/// The time from `rhs` to `self`; zero if `rhs` is later.
impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.as_micros() / 1_000_000,
            self.as_micros() % 1_000_000
        )
    }
}

/// The epoch.
impl Default for Instant {
    fn default() -> Instant {
        Instant::ZERO
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_instant_takes_eight_bytes() {
        assert_eq!(core::mem::size_of::<Option<Instant>>(), 8);
        assert_eq!(core::mem::size_of::<Instant>(), 8);
    }

    #[test]
    fn arithmetic_saturates_at_both_ends() {
        let last = Instant::from_micros(u64::MAX);
        assert_eq!(last.as_micros(), u64::MAX - 1);
        assert_eq!(last + Duration::from_secs(1), last);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::from_secs(u64::MAX), last);
        assert_eq!(Instant::ZERO - last, Duration::ZERO);
        assert_eq!(last - Instant::ZERO, Duration::from_micros(u64::MAX - 1));
    }

    #[test]
    fn order_and_default_follow_the_microseconds() {
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(Instant::ZERO.as_micros(), 0);
        assert!(Instant::from_micros(1) > Instant::ZERO);
        assert!(Instant::from_millis(2) < Instant::from_micros(2_001));
        assert_eq!(Instant::from_secs(3).to_string(), "3.000000s");
    }
}
