//! A hierarchical timing wheel (after tokio's and Varghese and Lauck's): O(1) to file a
//! deadline, O(levels) to find the next one, and each entry moves down at most
//! `LEVELS - 1` times before it fires. Idle connections cost nothing per tick: advancing time
//! only looks at occupied slots, found through one 64-bit bitmap per level.
//!
//! Time is in microseconds, so deadlines stay exact: level 0 has 1 µs slots, level k slots of
//! 64^k µs; eight levels span about 8.9 years.

use crate::Instant;

const LEVELS: usize = 8;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;

#[derive(Debug)]
struct Level<T> {
    occupied: u64,
    slots: Vec<Vec<(u64, T)>>,
}

impl<T> Level<T> {
    fn new() -> Level<T> {
        Level {
            occupied: 0,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
        }
    }
}

/// Items filed under deadlines.
#[derive(Debug)]
pub(crate) struct TimerWheel<T> {
    levels: Vec<Level<T>>,
    /// Microseconds up to which the wheel has been advanced.
    elapsed: u64,
    len: usize,
}

/// The level an entry due at `when` belongs to, seen from `elapsed`: the highest 6-bit
/// group in which they differ.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    (significant / SLOT_BITS as usize).min(LEVELS - 1)
}

fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1)
}

impl<T> TimerWheel<T> {
    pub(crate) fn new() -> TimerWheel<T> {
        TimerWheel {
            levels: (0..LEVELS).map(|_| Level::new()).collect(),
            elapsed: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Files `item` under `when` (a past deadline fires on the next advance).
    pub(crate) fn insert(&mut self, when: Instant, item: T) {
        let when = when.as_micros().max(self.elapsed);
        self.file(when, item);
        self.len += 1;
    }

    fn file(&mut self, when: u64, item: T) {
        let level = level_for(self.elapsed, when);
        let slot = slot_for(when, level);
        let entry = &mut self.levels[level];
        entry.slots[slot].push((when, item));
        entry.occupied |= 1 << slot;
    }

    /// The first occupied slot: (level, slot, the time it starts).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, entry) in self.levels.iter().enumerate() {
            if entry.occupied == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let now_slot = slot_for(self.elapsed, level);
            let rotated = entry.occupied.rotate_right(now_slot as u32);
            let slot = (rotated.trailing_zeros() as usize + now_slot) % SLOTS;
            let level_range = 1u64.checked_shl(shift + SLOT_BITS).unwrap_or(0);
            let level_start = if level_range == 0 {
                0
            } else {
                self.elapsed & !(level_range - 1)
            };
            let mut start = level_start + ((slot as u64) << shift);
            if start < self.elapsed && level_range != 0 {
                start += level_range;
            }
            return Some((level, slot, start.max(self.elapsed)));
        }
        None
    }

    /// A lower bound of the next deadline (exact when it is the very next entry): call
    /// [`advance`](Self::advance) then. Cheap: it looks at one bitmap per level.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.next_slot()
            .map(|(_, _, start)| Instant::from_micros(start))
    }

    /// Moves time to `now`, handing every item due by then to `fire` with its deadline.
    pub(crate) fn advance(&mut self, now: Instant, mut fire: impl FnMut(Instant, T)) {
        let now = now.as_micros();
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = start;
            let entries = std::mem::take(&mut self.levels[level].slots[slot]);
            self.levels[level].occupied &= !(1 << slot);
            for (when, item) in entries {
                if when <= now && (level == 0 || when <= self.elapsed) {
                    self.len -= 1;
                    fire(Instant::from_micros(when), item);
                } else {
                    // Not due yet: file it again, one or more levels down.
                    self.file(when, item);
                }
            }
        }
        self.elapsed = self.elapsed.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fires_exactly_at_the_deadline_across_levels() {
        let mut wheel = TimerWheel::new();
        let deadlines = [
            1u64,
            63,
            64,
            65,
            4_095,
            4_096,
            1_000_000,
            7_200_000_000,
            7_200_000_001,
        ];
        for (i, &d) in deadlines.iter().enumerate() {
            wheel.insert(Instant::from_micros(d), i);
        }
        let mut fired = Vec::new();
        let mut now = Instant::ZERO;
        while let Some(next) = wheel.next_deadline() {
            assert!(next >= now, "deadlines never go back");
            now = next;
            wheel.advance(now, |when, item| {
                fired.push((when.as_micros(), item, now.as_micros()))
            });
        }
        let expected: Vec<(u64, usize, u64)> = deadlines
            .iter()
            .enumerate()
            .map(|(i, &d)| (d, i, d))
            .collect();
        assert_eq!(fired, expected, "each at its exact deadline, in order");
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn a_long_jump_fires_everything_due() {
        let mut wheel = TimerWheel::new();
        for i in 0..1000u64 {
            wheel.insert(Instant::from_micros(i * 7_919 + 3), i);
        }
        let mut count = 0;
        wheel.advance(Instant::from_secs(3600), |_, _| count += 1);
        assert_eq!(count, 1000);
        assert_eq!(wheel.next_deadline(), None);
    }

    proptest! {
        #[test]
        fn fires_every_item_once_no_earlier_than_its_deadline(
            deadlines in proptest::collection::vec(0u64..10_000_000_000, 1..200),
            steps in proptest::collection::vec(1u64..5_000_000_000, 1..50),
        ) {
            let mut wheel = TimerWheel::new();
            for (i, &d) in deadlines.iter().enumerate() {
                wheel.insert(Instant::from_micros(d), i);
            }
            let mut fired = vec![false; deadlines.len()];
            let mut now = 0u64;
            for step in steps.iter().copied().chain(std::iter::once(u64::MAX / 4)) {
                now = now.saturating_add(step);
                wheel.advance(Instant::from_micros(now), |when, i| {
                    assert!(!fired[i]);
                    assert_eq!(when.as_micros(), deadlines[i]);
                    assert!(deadlines[i] <= now);
                    fired[i] = true;
                });
                // Nothing due stays behind.
                for (i, &d) in deadlines.iter().enumerate() {
                    prop_assert!(fired[i] || d > now);
                }
            }
            prop_assert!(fired.iter().all(|&f| f));
        }
    }
}
