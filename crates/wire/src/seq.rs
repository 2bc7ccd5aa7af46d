//! 32-bit TCP sequence numbers (RFC 9293 §3.4).
//!
//! Sequence space wraps at 2^32, so `a < b` means "b is ahead of a by less than 2^31". That
//! order is not transitive across the whole space, which is why [`SeqNum`] implements
//! `PartialOrd` only and never exposes a raw `<` on `u32`. Numbers exactly 2^31 apart have no
//! meaningful order; each then compares as behind the other. TCP never compares such numbers:
//! windows are at most 2^30 (RFC 7323 §2.3).

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A TCP sequence or acknowledgment number.
///
/// # Examples
/// ```
/// use rawtcp_wire::SeqNum;
/// let isn = SeqNum::new(u32::MAX - 1);
/// let next = isn + 5;
/// assert_eq!(next, SeqNum::new(3));
/// assert!(isn < next);
/// assert_eq!(next - isn, 5);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(u32);

impl SeqNum {
    /// Wraps a raw 32-bit number.
    #[inline]
    pub const fn new(raw: u32) -> Self {
        SeqNum(raw)
    }

    /// The raw 32-bit number, as written on the wire.
    #[inline]
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The signed distance from `other` to `self`: positive when `self` is ahead.
    #[inline]
    pub const fn distance(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The later of two numbers in sequence space.
    #[inline]
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.distance(other) >= 0 {
            self
        } else {
            other
        }
    }

    /// The earlier of two numbers in sequence space.
    #[inline]
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.distance(other) <= 0 {
            self
        } else {
            other
        }
    }

    /// `start <= self < end` in sequence space; false when the window is empty.
    #[inline]
    pub fn in_window(self, start: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }
}

impl PartialOrd for SeqNum {
    #[inline]
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.distance(*other).cmp(&0))
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl SubAssign<u32> for SeqNum {
    #[inline]
    fn sub_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_sub(rhs);
    }
}

/// The number of sequence numbers from `rhs` up to `self`, which must not be behind `rhs`.
///
/// Panics in debug builds when `self` is behind `rhs`: callers compare first.
impl Sub<SeqNum> for SeqNum {
    type Output = u32;
    #[inline]
    fn sub(self, rhs: SeqNum) -> u32 {
        let distance = self.distance(rhs);
        debug_assert!(distance >= 0, "sequence number {self} is behind {rhs}");
        distance as u32
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps() {
        let a = SeqNum::new(u32::MAX);
        let b = a + 1;
        assert_eq!(b.raw(), 0);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b - a, 1);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert!(a.in_window(SeqNum::new(u32::MAX - 2), 5));
        assert!(b.in_window(SeqNum::new(u32::MAX - 2), 5));
        assert!(!SeqNum::new(3).in_window(SeqNum::new(u32::MAX - 2), 5));
        assert!(!a.in_window(a, 0));
    }

    proptest! {
        #[test]
        fn ordering_across_the_wrap(base in any::<u32>(), delta in 1u32..(1 << 31)) {
            let a = SeqNum::new(base);
            let b = a + delta;
            prop_assert!(a < b);
            prop_assert!(b > a);
            prop_assert!(a <= b);
            prop_assert!(a != b);
            prop_assert_eq!(b - a, delta);
            prop_assert_eq!(b - delta, a);
            prop_assert_eq!(a.distance(b), -(delta as i32));
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(b.min(a), a);
            prop_assert!(a.in_window(a, delta));
            prop_assert!(!b.in_window(a, delta));
            let mut c = a;
            c += delta;
            c -= delta;
            prop_assert_eq!(c, a);
        }

        #[test]
        fn equal_is_neither_less_nor_greater(base in any::<u32>()) {
            let a = SeqNum::new(base);
            prop_assert_eq!(a.partial_cmp(&a), Some(Ordering::Equal));
            prop_assert_eq!(a - a, 0);
        }
    }
}
