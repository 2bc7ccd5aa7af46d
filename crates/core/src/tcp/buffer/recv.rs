//! The receive buffer: in-order unread bytes and the out-of-order store.

use std::collections::{BTreeMap, VecDeque};

/// In-order unread bytes plus out-of-order segments, addressed by stream offset (bytes since
/// the first data byte, as a u64 so that sequence wrap does not matter).
#[derive(Debug)]
pub(crate) struct RecvBuffer {
    ready: VecDeque<u8>,
    capacity: usize,
    /// Stream offset of RCV.NXT.
    next_offset: u64,
    out_of_order: BTreeMap<u64, Vec<u8>>,
    max_ranges: usize,
    /// Bytes held in `out_of_order`, and the most it may hold (four bytes each: the store
    /// lies within the receive window, below 2³⁰ bytes, RFC 7323 §2.3).
    out_of_order_bytes: u32,
    max_out_of_order_bytes: u32,
    /// Segments dropped at `max_ranges` or `max_out_of_order_bytes` (modulo 2³²).
    out_of_order_dropped: u32,
    /// Stream offsets of the latest out-of-order segments, most recent first: the SACK
    /// blocks that hold them go first (RFC 2018 §4).
    recent: VecDeque<u64>,
}

/// Out-of-order segments remembered for the order of SACK blocks.
const RECENT: usize = 8;

/// What [`RecvBuffer::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// Bytes that became readable (RCV.NXT advanced by this much).
    pub(crate) advanced: usize,
    /// The segment was (also) stored out of order.
    pub(crate) out_of_order: bool,
    /// The segment filled a gap in front of stored data.
    pub(crate) filled_gap: bool,
}

impl RecvBuffer {
    pub(crate) fn new(capacity: usize, max_ranges: usize, max_bytes: usize) -> RecvBuffer {
        RecvBuffer {
            ready: VecDeque::new(),
            capacity,
            next_offset: 0,
            out_of_order: BTreeMap::new(),
            max_ranges,
            out_of_order_bytes: 0,
            max_out_of_order_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
            out_of_order_dropped: 0,
            recent: VecDeque::new(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Raises the capacity (autotuning); it never shrinks, so nothing held is lost.
    pub(crate) fn grow(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Readable bytes.
    pub(crate) fn len(&self) -> usize {
        self.ready.len()
    }

    /// Room for bytes not yet read: the receive window.
    pub(crate) fn window(&self) -> usize {
        self.capacity.saturating_sub(self.ready.len())
    }

    /// Bytes held out of order.
    pub(crate) fn out_of_order_bytes(&self) -> usize {
        self.out_of_order_bytes as usize
    }

    /// Out-of-order segments dropped at the range or byte limit.
    pub(crate) fn out_of_order_dropped(&self) -> u32 {
        self.out_of_order_dropped
    }

    pub(crate) fn has_out_of_order(&self) -> bool {
        !self.out_of_order.is_empty()
    }

    /// Stores `data` that starts `distance` bytes after RCV.NXT (already trimmed to start at
    /// or after RCV.NXT and to end within the window).
    pub(crate) fn insert(&mut self, distance: usize, data: &[u8]) -> Inserted {
        let mut result = Inserted {
            advanced: 0,
            out_of_order: false,
            filled_gap: false,
        };
        if data.is_empty() {
            return result;
        }
        if distance > 0 {
            let start = self.next_offset + distance as u64;
            self.store_out_of_order(start, data);
            self.recent.retain(|&offset| offset != start);
            self.recent.push_front(start);
            self.recent.truncate(RECENT);
            result.out_of_order = true;
            return result;
        }
        // Never beyond the capacity, whatever the window said: the rest is retransmitted.
        let data = &data[..data.len().min(self.window())];
        self.ready.extend(data);
        self.next_offset += data.len() as u64;
        result.advanced = data.len();
        // Pull stored segments that are now contiguous.
        while let Some((&start, _)) = self.out_of_order.first_key_value() {
            if start > self.next_offset {
                break;
            }
            let (start, bytes) = self.out_of_order.pop_first().expect("just looked");
            self.out_of_order_bytes -= bytes.len() as u32;
            let end = start + bytes.len() as u64;
            if end > self.next_offset {
                let skip = (self.next_offset - start) as usize;
                self.ready.extend(&bytes[skip..]);
                result.advanced += bytes.len() - skip;
                self.next_offset = end;
                result.filled_gap = true;
            }
        }
        result
    }

    fn store_out_of_order(&mut self, start: u64, data: &[u8]) {
        let end = start + data.len() as u64;
        // Merge with every stored range that touches or overlaps [start, end).
        let mut merged_start = start;
        let mut merged_end = end;
        let touching: Vec<u64> = self
            .out_of_order
            .range(..=end)
            .filter(|&(&s, bytes)| s + bytes.len() as u64 >= start)
            .map(|(&s, _)| s)
            .collect();
        if touching.is_empty() && self.out_of_order.len() >= self.max_ranges {
            // No room for another hole: drop the segment; the sender will retransmit.
            self.out_of_order_dropped = self.out_of_order_dropped.wrapping_add(1);
            return;
        }
        let mut replaced = 0;
        for &s in &touching {
            let bytes = &self.out_of_order[&s];
            merged_start = merged_start.min(s);
            merged_end = merged_end.max(s + bytes.len() as u64);
            replaced += bytes.len() as u64;
        }
        let held = self.out_of_order_bytes as u64 - replaced + (merged_end - merged_start);
        if held > u64::from(self.max_out_of_order_bytes) {
            // Past the byte limit: dropped as above.
            self.out_of_order_dropped = self.out_of_order_dropped.wrapping_add(1);
            return;
        }
        self.out_of_order_bytes = held as u32;
        let mut merged = vec![0u8; (merged_end - merged_start) as usize];
        for s in touching {
            let bytes = self.out_of_order.remove(&s).expect("listed above");
            let at = (s - merged_start) as usize;
            merged[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        // New data wins nothing over stored data: they are the same bytes in a correct stream.
        let at = (start - merged_start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        self.out_of_order.insert(merged_start, merged);
    }

    /// Copies readable bytes into `out`; returns how many.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek(out);
        // Dropping bytes from the front of a VecDeque only moves its head.
        self.ready.drain(..n);
        n
    }

    /// Copies readable bytes into `out` without consuming them; returns how many.
    pub(crate) fn peek(&self, out: &mut [u8]) -> usize {
        // Two slice copies (memcpy), not a loop over the bytes: this is on every read.
        let n = out.len().min(self.ready.len());
        let (a, b) = self.ready.as_slices();
        let first = n.min(a.len());
        out[..first].copy_from_slice(&a[..first]);
        out[first..n].copy_from_slice(&b[..n - first]);
        n
    }

    /// Up to `limit` SACK blocks as offsets from RCV.NXT, in the order RFC 2018 §4 asks: the
    /// range holding the latest segment first (a MUST, unless that segment advanced RCV.NXT),
    /// then those holding the next most recent ones, then the rest in ascending order.
    pub(crate) fn sack_ranges(&self, limit: usize) -> Vec<(u64, u64)> {
        let range_of = |offset: u64| {
            self.out_of_order
                .range(..=offset)
                .next_back()
                .filter(|(s, b)| offset < **s + b.len() as u64)
                .map(|(&s, _)| s)
        };
        let mut starts: Vec<u64> = Vec::with_capacity(limit);
        let recent = self.recent.iter().filter_map(|&offset| range_of(offset));
        for start in recent.chain(self.out_of_order.keys().copied()) {
            if starts.len() == limit {
                break;
            }
            if !starts.contains(&start) {
                starts.push(start);
            }
        }
        starts
            .into_iter()
            .map(|s| {
                let end = s + self.out_of_order[&s].len() as u64;
                (s - self.next_offset, end - self.next_offset)
            })
            .collect()
    }

    /// The fuzz harness's check: the buffer within its capacity, the out-of-order store
    /// within its range limit, its ranges beyond RCV.NXT, sorted, apart and no larger than the
    /// buffer. Returns the stream offset of RCV.NXT (every byte made readable so far).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn check_invariants(&self) -> Result<u64, String> {
        if self.ready.len() > self.capacity {
            return Err(format!(
                "{} readable bytes in a {}-byte buffer",
                self.ready.len(),
                self.capacity
            ));
        }
        if self.out_of_order.len() > self.max_ranges {
            return Err(format!(
                "{} out-of-order ranges, limit {}",
                self.out_of_order.len(),
                self.max_ranges
            ));
        }
        let mut end_before = self.next_offset;
        let mut stored = 0;
        for (&start, bytes) in &self.out_of_order {
            // A range at or before RCV.NXT would have been pulled in; touching ranges merge.
            if start <= end_before || bytes.is_empty() {
                return Err(format!(
                    "out-of-order range at {start} (+{}) after {end_before}, RCV.NXT offset {}",
                    bytes.len(),
                    self.next_offset
                ));
            }
            end_before = start + bytes.len() as u64;
            stored += bytes.len();
        }
        if stored > self.capacity {
            return Err(format!(
                "{stored} out-of-order bytes in a {}-byte buffer",
                self.capacity
            ));
        }
        Ok(self.next_offset)
    }

    /// Stored out-of-order ranges as offsets from RCV.NXT, for SACK blocks.
    pub(crate) fn out_of_order_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.out_of_order
            .iter()
            .map(move |(&s, b)| (s - self.next_offset, s - self.next_offset + b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_of_order_segments_join_when_the_gap_fills() {
        let mut buffer = RecvBuffer::new(100, 8, usize::MAX);
        assert!(buffer.insert(5, b"fgh").out_of_order);
        assert!(buffer.insert(10, b"klm").out_of_order);
        assert_eq!(
            buffer.out_of_order_ranges().collect::<Vec<_>>(),
            vec![(5, 8), (10, 13)]
        );
        let inserted = buffer.insert(0, b"abcde");
        assert_eq!(inserted.advanced, 8);
        assert!(inserted.filled_gap);
        assert_eq!(buffer.insert(0, b"ij").advanced, 5);
        let mut out = [0u8; 20];
        assert_eq!(buffer.read(&mut out), 13);
        assert_eq!(&out[..13], b"abcdefghijklm");
        assert!(!buffer.has_out_of_order());
    }

    #[test]
    fn out_of_order_bytes_are_bounded() {
        let mut buffer = RecvBuffer::new(1000, 64, 10);
        buffer.insert(10, b"abcdef");
        assert_eq!(buffer.out_of_order_bytes(), 6);
        // Five more would make eleven: dropped and counted.
        buffer.insert(30, b"ghijk");
        assert_eq!(buffer.out_of_order_bytes(), 6);
        assert_eq!(buffer.out_of_order_dropped(), 1);
        // Four fit, and an overlap with a stored range counts the union once.
        buffer.insert(30, b"ghij");
        buffer.insert(14, b"ef");
        assert_eq!(buffer.out_of_order_bytes(), 10);
        assert_eq!(buffer.out_of_order_ranges().count(), 2);
        // In-order data pulls the store in and frees it.
        assert_eq!(buffer.insert(0, b"0123456789").advanced, 16);
        assert_eq!(buffer.out_of_order_bytes(), 4);
    }

    #[test]
    fn out_of_order_ranges_are_bounded() {
        let mut buffer = RecvBuffer::new(1000, 2, usize::MAX);
        buffer.insert(10, b"a");
        buffer.insert(20, b"b");
        // A third hole does not fit: dropped (the sender retransmits it).
        buffer.insert(30, b"c");
        assert_eq!(buffer.out_of_order_ranges().count(), 2);
        assert_eq!(buffer.out_of_order_dropped(), 1);
        // Data touching a stored range still merges.
        buffer.insert(11, b"x");
        assert_eq!(
            buffer.out_of_order_ranges().collect::<Vec<_>>(),
            vec![(10, 12), (20, 21)]
        );
    }

    proptest! {
        #[test]
        fn any_segmentation_and_order_reassembles(len in 1usize..3000, cuts in proptest::collection::vec(1usize..200, 1..40), order in any::<u64>()) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut segments = Vec::new();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= len { break; }
                let end = (at + cut).min(len);
                segments.push((at, end));
                at = end;
            }
            // Shuffle, and deliver some twice.
            let mut state = order | 1;
            for i in (1..segments.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                segments.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let dup = segments.clone();
            segments.extend(dup.iter().take(3));
            let mut buffer = RecvBuffer::new(len, 4096, usize::MAX);
            let mut next = 0usize;
            for (start, end) in segments {
                if end <= next { continue; }
                let start = start.max(next);
                let inserted = buffer.insert(start - next, &data[start..end]);
                next += inserted.advanced;
            }
            let mut out = vec![0u8; len];
            prop_assert_eq!(buffer.read(&mut out), len);
            prop_assert_eq!(out, data);
        }
    }
}
