//! A hierarchical timing wheel (after tokio's and Varghese and Lauck's): O(1) to file a
//! deadline, O(levels) to find the next one, and each entry moves down at most
//! `LEVELS - 1` times before it fires. Idle connections cost nothing per tick: advancing time
//! only looks at occupied slots, found through one 64-bit bitmap per level.
//!
//! Time is in microseconds, so deadlines stay exact: level 0 has 1 µs slots, level k slots of
//! 64^k µs; eight levels span about 8.9 years.
//!
//! Every insertion returns a [`TimerKey`] that cancels the entry in O(1) (each entry knows
//! its place in its slot's list), so a deadline that moves is refiled rather than left
//! behind: an owner holds one entry per deadline it keeps, however often it moves.

use crate::Instant;

const LEVELS: usize = 8;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;

#[derive(Debug)]
struct Level {
    occupied: u64,
    /// Indices into the wheel's entries.
    slots: Vec<Vec<u32>>,
}

impl Level {
    fn new() -> Level {
        Level {
            occupied: 0,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
        }
    }
}

/// Names one filed entry, to cancel it. A key whose entry fired or was cancelled is stale:
/// its generation no longer matches, and cancelling it does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    index: u32,
    generation: u32,
}

/// Where an entry is filed: level, slot and position in the slot's list.
#[derive(Debug, Clone, Copy)]
struct Place {
    level: u8,
    slot: u8,
    position: u32,
}

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    /// The deadline in microseconds and the item, while filed.
    filed: Option<(u64, T, Place)>,
}

/// Items filed under deadlines.
#[derive(Debug)]
pub(crate) struct TimerWheel<T> {
    levels: Vec<Level>,
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
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
            entries: Vec::new(),
            free: Vec::new(),
            elapsed: 0,
            len: 0,
        }
    }

    /// Entries filed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Files `item` under `when` (a past deadline fires on the next advance).
    pub(crate) fn insert(&mut self, when: Instant, item: T) -> TimerKey {
        let when = when.as_micros().max(self.elapsed);
        let index = self.free.pop().unwrap_or_else(|| {
            self.entries.push(Entry {
                generation: 0,
                filed: None,
            });
            (self.entries.len() - 1) as u32
        });
        self.file(when, index, item);
        self.len += 1;
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Takes the entry `key` names out of the wheel, in O(1); `None` when it already fired
    /// or was cancelled.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let entry = self.entries.get_mut(key.index as usize)?;
        if entry.generation != key.generation {
            return None;
        }
        let (_, item, place) = entry.filed.take()?;
        self.release(key.index);
        let level = &mut self.levels[usize::from(place.level)];
        let list = &mut level.slots[usize::from(place.slot)];
        list.swap_remove(place.position as usize);
        if let Some(&moved) = list.get(place.position as usize)
            && let Some((_, _, moved_place)) = &mut self.entries[moved as usize].filed
        {
            moved_place.position = place.position;
        }
        if list.is_empty() {
            level.occupied &= !(1 << place.slot);
        }
        Some(item)
    }

    /// Frees an entry whose item left the wheel: its key goes stale.
    fn release(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(index);
        self.len -= 1;
    }

    fn file(&mut self, when: u64, index: u32, item: T) {
        let level = level_for(self.elapsed, when);
        let slot = slot_for(when, level);
        let entry = &mut self.levels[level];
        let place = Place {
            level: level as u8,
            slot: slot as u8,
            position: entry.slots[slot].len() as u32,
        };
        entry.slots[slot].push(index);
        entry.occupied |= 1 << slot;
        self.entries[index as usize].filed = Some((when, item, place));
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
            let indices = std::mem::take(&mut self.levels[level].slots[slot]);
            self.levels[level].occupied &= !(1 << slot);
            for index in indices {
                let Some((when, item, _)) = self.entries[index as usize].filed.take() else {
                    continue; // unreachable: a cancelled entry leaves its slot's list
                };
                if when <= now && (level == 0 || when <= self.elapsed) {
                    self.release(index);
                    fire(Instant::from_micros(when), item);
                } else {
                    // Not due yet: file it again, one or more levels down.
                    self.file(when, index, item);
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
        fn cancelled_items_never_fire_and_the_rest_fire_on_time(
            deadlines in proptest::collection::vec(0u64..10_000_000_000, 1..200),
            cancel in proptest::collection::vec(any::<bool>(), 200),
            steps in proptest::collection::vec(1u64..5_000_000_000, 1..20),
        ) {
            let mut wheel = TimerWheel::new();
            let keys: Vec<TimerKey> = deadlines
                .iter()
                .enumerate()
                .map(|(i, &d)| wheel.insert(Instant::from_micros(d), i))
                .collect();
            let mut now = 0u64;
            let mut fired = vec![false; deadlines.len()];
            // Cancel half-way through, some entries already moved down a level or fired.
            now += steps[0];
            wheel.advance(Instant::from_micros(now), |_, i| fired[i] = true);
            let mut cancelled = vec![false; deadlines.len()];
            for (i, &key) in keys.iter().enumerate() {
                if cancel[i] {
                    cancelled[i] = wheel.cancel(key) == Some(i);
                    prop_assert_eq!(cancelled[i], !fired[i]);
                    prop_assert_eq!(wheel.cancel(key), None, "a key cancels once");
                }
            }
            let live = (0..deadlines.len()).filter(|&i| !fired[i] && !cancelled[i]).count();
            prop_assert_eq!(wheel.len(), live);
            for step in steps.iter().skip(1).copied().chain(std::iter::once(u64::MAX / 4)) {
                now = now.saturating_add(step);
                wheel.advance(Instant::from_micros(now), |when, i| {
                    assert!(!cancelled[i] && !fired[i]);
                    assert_eq!(when.as_micros(), deadlines[i]);
                    fired[i] = true;
                });
            }
            prop_assert!((0..deadlines.len()).all(|i| fired[i] != cancelled[i]));
            prop_assert_eq!(wheel.len(), 0);
        }

        #[test]
        fn random_inserts_cancels_and_advances_agree_with_a_plain_list(
            ops in proptest::collection::vec((0u8..3, 0u64..20_000_000, any::<prop::sample::Index>()), 1..400),
        ) {
            let mut wheel = TimerWheel::new();
            // The model: (deadline, key) of every live entry, by item.
            let mut live: std::collections::BTreeMap<usize, (u64, TimerKey)> = Default::default();
            let mut now = 0u64;
            for (item, (op, amount, pick)) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        // A deadline anywhere from 1 s in the past to 19 s ahead.
                        let when = (now + amount).saturating_sub(1_000_000);
                        let key = wheel.insert(Instant::from_micros(when), item);
                        live.insert(item, (when.max(now), key));
                    }
                    1 if !live.is_empty() => {
                        let victim = *live.keys().nth(pick.index(live.len())).unwrap();
                        let (_, key) = live.remove(&victim).unwrap();
                        prop_assert_eq!(wheel.cancel(key), Some(victim));
                    }
                    _ => {
                        now += amount;
                        let mut fired = Vec::new();
                        wheel.advance(Instant::from_micros(now), |when, i| fired.push((when.as_micros(), i)));
                        let mut due: Vec<(u64, usize)> = live
                            .iter()
                            .filter(|(_, (when, _))| *when <= now)
                            .map(|(&i, &(when, _))| (when, i))
                            .collect();
                        due.sort();
                        fired.sort();
                        prop_assert_eq!(&fired, &due);
                        for (_, i) in fired {
                            live.remove(&i);
                        }
                    }
                }
                prop_assert_eq!(wheel.len(), live.len());
                let earliest = live.values().map(|(when, _)| *when).min();
                let bound = wheel.next_deadline().map(Instant::as_micros);
                prop_assert_eq!(bound.is_some(), earliest.is_some());
                if let (Some(bound), Some(earliest)) = (bound, earliest) {
                    prop_assert!(bound <= earliest, "next_deadline {} after {}", bound, earliest);
                }
            }
        }

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
