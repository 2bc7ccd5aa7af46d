//! The receive buffer: in-order unread bytes and the out-of-order store.
//!
//! In-order data is a queue of [`Bytes`] chunks. A payload of at least [`SHARE_MIN`] bytes
//! that arrived in a frame the driver shares ([`Stack::handle_frame_bytes`]) is kept as a
//! slice of that frame: no copy on the way in, and [`RecvBuffer::read_bytes`] hands it to the
//! reader without one on the way out. Shorter payloads, and every payload of a frame lent
//! only for the call ([`Stack::handle_frame`]), are copied into a coalescing tail, so that a
//! peer sending tiny segments cannot make each byte pin a frame.
//!
//! **Memory pinned per byte.** With frames that own allocations of about 2 KiB (what the
//! drivers hand over), a shared chunk holds at least [`SHARE_MIN`] = 512 bytes of payload and
//! keeps one frame alive, plus queue entries and a reference count (about 128 bytes at
//! most): at most (2048 + 128) / 512 ≈ 4.3 bytes of memory per byte received and not yet
//! read. Copied bytes cost themselves, plus the unused room of the allocations they were
//! copied into: a new allocation is made only when a payload does not fit in the old one's
//! room, so the room given up is smaller than the data copied after it. That is at most 2
//! bytes per copied byte, plus the allocation being read and the one being filled (16 KiB
//! each, or one payload if larger); with nothing readable, one allocation of up to 16 KiB
//! stays for the next copies. A driver that shares slices of one large receive batch
//! instead of a frame each makes each chunk pin the whole batch. [`RecvBuffer::held`], what
//! the stack's buffer memory accounting counts, is the frames' lengths and the copied
//! bytes; pieces the reader has taken are the reader's.
//!
//! Out-of-order data is always copied (the rare path) and handed to the in-order queue in
//! the allocation it was stored in once the gap before it fills. The store itself is boxed
//! when the first out-of-order segment arrives and freed when the last range leaves it, and
//! its limits are the configuration's, passed in with each segment: an idle connection, or
//! one that sees no loss, carries 8 bytes for it.
//!
//! [`Stack::handle_frame_bytes`]: crate::Stack::handle_frame_bytes
//! [`Stack::handle_frame`]: crate::Stack::handle_frame

use std::collections::{BTreeMap, VecDeque};

use bytes::{Buf, Bytes, BytesMut};

/// Payloads at least this long are kept as slices of a shared frame; shorter ones are
/// copied into the coalescing tail (see the module docs for the memory bound it gives).
pub(crate) const SHARE_MIN: usize = 512;
/// The smallest and the largest allocation the coalescing tail makes.
const TAIL_MIN: usize = 512;
const TAIL_MAX: usize = 16 * 1024;
const _: () = assert!(TAIL_MAX <= u16::MAX as usize, "tail_allocation is 16 bits");

/// In-order data: its bytes, and the memory it keeps alive.
#[derive(Debug)]
struct Chunk {
    data: Bytes,
    /// The whole frame for a slice of one, the stored range for out-of-order data, the bytes
    /// themselves for a piece of the tail.
    held: usize,
}

/// In-order unread bytes plus out-of-order segments, addressed by stream offset (bytes since
/// the first data byte, as a u64 so that sequence wrap does not matter).
#[derive(Debug)]
pub(crate) struct RecvBuffer {
    /// In-order unread data, oldest first; every byte of it comes before `tail`'s.
    ready: VecDeque<Chunk>,
    /// Bytes in `ready`, and the memory its chunks hold.
    ready_len: usize,
    ready_held: usize,
    /// Copied payloads after the last chunk of `ready`, in an allocation with room for more;
    /// frozen onto `ready` when a shared chunk follows them or the room runs out, and given
    /// up when everything has been read.
    tail: BytesMut,
    capacity: usize,
    /// Stream offset of RCV.NXT.
    next_offset: u64,
    /// Segments beyond RCV.NXT; `None` while there are none.
    out_of_order: Option<Box<OutOfOrder>>,
    /// The size of the tail's last allocation (at most [`TAIL_MAX`], which 16 bits hold).
    tail_allocation: u16,
    /// The low 16 bits of `out_of_order_dropped` when the stack last took the new drops
    /// ([`RecvBuffer::take_out_of_order_dropped`]): it takes them after every segment, and
    /// one segment drops at most once, so the difference modulo 2¹⁶ is exact.
    out_of_order_taken: u16,
    /// Segments dropped at the out-of-order limits (modulo 2³²).
    out_of_order_dropped: u32,
}

/// Out-of-order segments remembered for the order of SACK blocks.
const RECENT: usize = 8;

/// The out-of-order store: held only while it holds something.
#[derive(Debug, Default)]
struct OutOfOrder {
    /// Stored ranges by stream offset, apart and not touching.
    ranges: BTreeMap<u64, Vec<u8>>,
    /// Bytes held in `ranges`.
    bytes: usize,
    /// Stream offsets of the latest out-of-order segments, most recent first (the first
    /// `recent_len`): the SACK blocks that hold them go first (RFC 2018 §4).
    recent: [u64; RECENT],
    recent_len: u8,
}

impl OutOfOrder {
    /// The latest out-of-order segments' offsets, most recent first.
    fn recent(&self) -> &[u64] {
        &self.recent[..usize::from(self.recent_len)]
    }

    /// Notes a segment at `start` as the most recent one, forgetting the oldest beyond
    /// [`RECENT`].
    fn note_recent(&mut self, start: u64) {
        let len = usize::from(self.recent_len);
        let at = self.recent[..len]
            .iter()
            .position(|&offset| offset == start)
            .unwrap_or(len.min(RECENT - 1));
        self.recent.copy_within(..at, 1);
        self.recent[0] = start;
        self.recent_len = self.recent_len.max(at as u8 + 1);
    }
}

/// The limits of a connection's out-of-order store ([`TcpConfig::max_out_of_order`] and
/// [`TcpConfig::max_out_of_order_bytes`]), given with each segment rather than kept per
/// connection.
///
/// [`TcpConfig::max_out_of_order`]: crate::TcpConfig::max_out_of_order
/// [`TcpConfig::max_out_of_order_bytes`]: crate::TcpConfig::max_out_of_order_bytes
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfOrderLimits {
    /// Ranges (holes) held at once.
    pub(crate) ranges: usize,
    /// Bytes held at once.
    pub(crate) bytes: usize,
}

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

/// `data` as a slice of `frame`, when it lies inside it.
fn share(frame: &Bytes, data: &[u8]) -> Option<Bytes> {
    let start = frame.as_ptr() as usize;
    let at = data.as_ptr() as usize;
    let inside = at >= start && at + data.len() <= start + frame.len();
    inside.then(|| frame.slice_ref(data))
}

/// The memory the in-order `data` of `frame` (if shared) would hold once buffered: the
/// whole frame when it is kept as a slice of it, else the bytes themselves. The check
/// against [`TcpConfig::max_buffer_memory`](crate::TcpConfig::max_buffer_memory) charges
/// this before the segment is processed.
pub(crate) fn charge(data: &[u8], frame: Option<&Bytes>) -> usize {
    match frame {
        Some(frame) if data.len() >= SHARE_MIN => frame.len().max(data.len()),
        _ => data.len(),
    }
}

impl RecvBuffer {
    pub(crate) fn new(capacity: usize) -> RecvBuffer {
        RecvBuffer {
            ready: VecDeque::new(),
            ready_len: 0,
            ready_held: 0,
            tail: BytesMut::new(),
            capacity,
            next_offset: 0,
            out_of_order: None,
            tail_allocation: 0,
            out_of_order_taken: 0,
            out_of_order_dropped: 0,
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
        self.ready_len + self.tail.len()
    }

    /// Memory the readable bytes hold: the frames that shared chunks keep alive, and copied
    /// bytes themselves (the unused room of the copy allocations is not counted; the module
    /// docs bound it).
    pub(crate) fn held(&self) -> usize {
        self.ready_held + self.tail.len()
    }

    /// Room for bytes not yet read: the receive window.
    pub(crate) fn window(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    /// Bytes held out of order.
    pub(crate) fn out_of_order_bytes(&self) -> usize {
        self.out_of_order.as_ref().map_or(0, |store| store.bytes)
    }

    /// Out-of-order segments dropped at the range or byte limit.
    pub(crate) fn out_of_order_dropped(&self) -> u32 {
        self.out_of_order_dropped
    }

    /// Out-of-order segments dropped since the last call, for the stack's counters.
    pub(crate) fn take_out_of_order_dropped(&mut self) -> u32 {
        let now = self.out_of_order_dropped as u16;
        let new = now.wrapping_sub(self.out_of_order_taken);
        self.out_of_order_taken = now;
        u32::from(new)
    }

    pub(crate) fn has_out_of_order(&self) -> bool {
        self.out_of_order.is_some()
    }

    /// The stored ranges, by stream offset (none while the store is not allocated).
    fn ranges(&self) -> impl DoubleEndedIterator<Item = (u64, &[u8])> + '_ {
        self.out_of_order
            .iter()
            .flat_map(|store| store.ranges.iter())
            .map(|(&start, bytes)| (start, &bytes[..]))
    }

    /// Stores `data` that starts `distance` bytes after RCV.NXT (already trimmed to start at
    /// or after RCV.NXT and to end within the window). `frame`, when the driver shares it,
    /// is the frame `data` lies in: in-order data is then kept as a slice of it. Data out of
    /// order is stored within `limits`, or dropped and counted.
    pub(crate) fn insert(
        &mut self,
        distance: usize,
        data: &[u8],
        frame: Option<&Bytes>,
        limits: OutOfOrderLimits,
    ) -> Inserted {
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
            self.store_out_of_order(start, data, limits);
            if let Some(store) = &mut self.out_of_order {
                store.note_recent(start);
            }
            result.out_of_order = true;
            return result;
        }
        // Never beyond the capacity, whatever the window said: the rest is retransmitted.
        let data = &data[..data.len().min(self.window())];
        match frame
            .filter(|_| data.len() >= SHARE_MIN)
            .and_then(|f| share(f, data).map(|shared| (shared, f.len())))
        {
            Some((shared, frame_len)) => self.push_chunk(shared, frame_len.max(data.len())),
            None => self.copy_to_tail(data),
        }
        self.next_offset += data.len() as u64;
        result.advanced = data.len();
        // Pull stored segments that are now contiguous; the store goes once it is empty.
        while let Some(store) = &mut self.out_of_order {
            let Some(entry) = store.ranges.first_entry() else {
                self.out_of_order = None;
                break;
            };
            if *entry.key() > self.next_offset {
                break;
            }
            let (start, bytes) = entry.remove_entry();
            store.bytes -= bytes.len();
            let end = start + bytes.len() as u64;
            if end > self.next_offset {
                let skip = (self.next_offset - start) as usize;
                let len = bytes.len() - skip;
                if len >= SHARE_MIN {
                    // The store's own allocation moves over: no copy.
                    let held = bytes.len();
                    let mut data = Bytes::from(bytes);
                    data.advance(skip);
                    self.push_chunk(data, held);
                } else {
                    self.copy_to_tail(&bytes[skip..]);
                }
                result.advanced += len;
                self.next_offset = end;
                result.filled_gap = true;
            }
        }
        result
    }

    /// Appends a chunk behind everything readable (the tail first becomes a chunk).
    fn push_chunk(&mut self, data: Bytes, held: usize) {
        self.freeze_tail();
        self.ready_len += data.len();
        self.ready_held += held;
        self.ready.push_back(Chunk { data, held });
    }

    /// Moves the tail's bytes onto `ready`; its room stays for the next copies.
    fn freeze_tail(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let data = self.tail.split().freeze();
        self.ready_len += data.len();
        self.ready_held += data.len();
        self.ready.push_back(Chunk {
            held: data.len(),
            data,
        });
    }

    /// Copies `data` behind everything readable, into the tail's room or a new allocation,
    /// each twice the size of the one before (from 512 bytes to 16 KiB, or `data`'s size).
    fn copy_to_tail(&mut self, data: &[u8]) {
        if self.tail.capacity() - self.tail.len() < data.len() {
            self.freeze_tail();
            let allocation = (usize::from(self.tail_allocation) * 2).clamp(TAIL_MIN, TAIL_MAX);
            self.tail_allocation = allocation as u16;
            self.tail = BytesMut::with_capacity(allocation.max(data.len()));
        }
        self.tail.extend_from_slice(data);
    }

    /// Everything read: the tail's allocation starts over for the next copies when nobody
    /// else holds a piece of it (the reader took copies, not slices); otherwise it goes, and
    /// the next one is made when data comes. A connection so holds at most one allocation of
    /// up to 16 KiB while nothing is readable, and a reader that keeps up copies into the
    /// same one again and again.
    fn release_if_empty(&mut self) {
        if self.len() > 0 || self.tail.capacity() == 0 {
            return;
        }
        if !self.tail.try_reclaim(usize::from(self.tail_allocation)) {
            self.tail = BytesMut::new();
        }
    }

    fn store_out_of_order(&mut self, start: u64, data: &[u8], limits: OutOfOrderLimits) {
        let end = start + data.len() as u64;
        // Merge with every stored range that touches or overlaps [start, end).
        let mut merged_start = start;
        let mut merged_end = end;
        let (touching, stored_ranges): (Vec<u64>, usize) = match &self.out_of_order {
            Some(store) => (
                store
                    .ranges
                    .range(..=end)
                    .filter(|&(&s, bytes)| s + bytes.len() as u64 >= start)
                    .map(|(&s, _)| s)
                    .collect(),
                store.ranges.len(),
            ),
            None => (Vec::new(), 0),
        };
        if touching.is_empty() && stored_ranges >= limits.ranges {
            // No room for another hole: drop the segment; the sender will retransmit.
            self.out_of_order_dropped = self.out_of_order_dropped.wrapping_add(1);
            return;
        }
        let store = self.out_of_order.get_or_insert_default();
        let mut replaced = 0;
        for &s in &touching {
            let bytes = &store.ranges[&s];
            merged_start = merged_start.min(s);
            merged_end = merged_end.max(s + bytes.len() as u64);
            replaced += bytes.len() as u64;
        }
        let held = store.bytes as u64 - replaced + (merged_end - merged_start);
        if held > limits.bytes as u64 {
            // Past the byte limit: dropped as above (and a store made for it goes again).
            self.out_of_order_dropped = self.out_of_order_dropped.wrapping_add(1);
            if store.ranges.is_empty() {
                self.out_of_order = None;
            }
            return;
        }
        store.bytes = held as usize;
        let mut merged = vec![0u8; (merged_end - merged_start) as usize];
        for s in touching {
            let bytes = store.ranges.remove(&s).expect("listed above");
            let at = (s - merged_start) as usize;
            merged[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        // New data wins nothing over stored data: they are the same bytes in a correct stream.
        let at = (start - merged_start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        store.ranges.insert(merged_start, merged);
    }

    /// Copies readable bytes into `out`; returns how many.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let want = out.len() - n;
            if let Some(front) = self.ready.front_mut() {
                let take = want.min(front.data.len());
                out[n..n + take].copy_from_slice(&front.data[..take]);
                n += take;
                self.ready_len -= take;
                if take == front.data.len() {
                    self.ready_held -= front.held;
                    self.ready.pop_front();
                } else {
                    front.data.advance(take);
                }
            } else {
                let take = want.min(self.tail.len());
                if take == 0 {
                    break;
                }
                out[n..n + take].copy_from_slice(&self.tail[..take]);
                self.tail.advance(take);
                n += take;
            }
        }
        self.release_if_empty();
        n
    }

    /// Takes up to `max` readable bytes without copying them: the front chunk, or its first
    /// `max` bytes. Empty when nothing is readable (or `max` is 0).
    pub(crate) fn read_bytes(&mut self, max: usize) -> Bytes {
        if max == 0 {
            return Bytes::new();
        }
        let data = if let Some(front) = self.ready.front_mut() {
            if front.data.len() <= max {
                self.ready_held -= front.held;
                let chunk = self.ready.pop_front().expect("just looked");
                chunk.data
            } else {
                // The rest keeps the whole charge: the frame lives on until it is read.
                front.data.split_to(max)
            }
        } else {
            let take = max.min(self.tail.len());
            if take == 0 {
                return Bytes::new();
            }
            let data = self.tail.split_to(take).freeze();
            self.release_if_empty();
            return data;
        };
        self.ready_len -= data.len();
        self.release_if_empty();
        data
    }

    /// Copies readable bytes into `out` without consuming them; returns how many.
    pub(crate) fn peek(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        let chunks = self.ready.iter().map(|c| &c.data[..]);
        for data in chunks.chain(std::iter::once(&self.tail[..])) {
            if n == out.len() {
                break;
            }
            let take = (out.len() - n).min(data.len());
            out[n..n + take].copy_from_slice(&data[..take]);
            n += take;
        }
        n
    }

    /// Up to `limit` SACK blocks as offsets from RCV.NXT, in the order RFC 2018 §4 asks: the
    /// range holding the latest segment first (a MUST, unless that segment advanced RCV.NXT),
    /// then those holding the next most recent ones, then the rest in ascending order.
    pub(crate) fn sack_ranges(&self, limit: usize) -> Vec<(u64, u64)> {
        let Some(store) = &self.out_of_order else {
            return Vec::new();
        };
        let range_of = |offset: u64| {
            store
                .ranges
                .range(..=offset)
                .next_back()
                .filter(|(s, b)| offset < **s + b.len() as u64)
                .map(|(&s, _)| s)
        };
        let mut starts: Vec<u64> = Vec::with_capacity(limit);
        let recent = store.recent().iter().filter_map(|&offset| range_of(offset));
        for start in recent.chain(store.ranges.keys().copied()) {
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
                let end = s + store.ranges[&s].len() as u64;
                (s - self.next_offset, end - self.next_offset)
            })
            .collect()
    }

    /// The fuzz harness's check: the buffer within its capacity, its chunks non-empty and
    /// adding up to what it counts, the out-of-order store within `limits`, allocated only
    /// while it holds a range, its ranges beyond RCV.NXT, sorted, apart, adding up to what it
    /// counts and no larger than the buffer. Returns the stream offset of RCV.NXT (every byte
    /// made readable so far).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn check_invariants(&self, limits: OutOfOrderLimits) -> Result<u64, String> {
        if self.len() > self.capacity {
            return Err(format!(
                "{} readable bytes in a {}-byte buffer",
                self.len(),
                self.capacity
            ));
        }
        let (len, held) = self
            .ready
            .iter()
            .fold((0, 0), |(len, held), c| (len + c.data.len(), held + c.held));
        if len != self.ready_len || held != self.ready_held {
            return Err(format!(
                "chunks of {len} bytes holding {held}, counted {} holding {}",
                self.ready_len, self.ready_held
            ));
        }
        if let Some(chunk) = self
            .ready
            .iter()
            .find(|c| c.data.is_empty() || c.held < c.data.len())
        {
            return Err(format!(
                "a chunk of {} bytes holding {}",
                chunk.data.len(),
                chunk.held
            ));
        }
        if let Some(store) = &self.out_of_order {
            if store.ranges.is_empty() {
                return Err("an empty out-of-order store is kept".to_string());
            }
            if store.ranges.len() > limits.ranges || store.bytes > limits.bytes {
                return Err(format!(
                    "{} out-of-order ranges of {} bytes, limits {limits:?}",
                    store.ranges.len(),
                    store.bytes,
                ));
            }
        }
        let mut end_before = self.next_offset;
        let mut stored = 0;
        for (start, bytes) in self.ranges() {
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
        if stored != self.out_of_order_bytes() {
            return Err(format!(
                "out-of-order ranges of {stored} bytes, counted {}",
                self.out_of_order_bytes()
            ));
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
        self.ranges()
            .map(move |(s, b)| (s - self.next_offset, s - self.next_offset + b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(ranges: usize, bytes: usize) -> OutOfOrderLimits {
        OutOfOrderLimits { ranges, bytes }
    }

    #[test]
    fn out_of_order_segments_join_when_the_gap_fills() {
        let mut buffer = RecvBuffer::new(100);
        let limits = limits(8, usize::MAX);
        assert!(buffer.insert(5, b"fgh", None, limits).out_of_order);
        assert!(buffer.insert(10, b"klm", None, limits).out_of_order);
        assert_eq!(
            buffer.out_of_order_ranges().collect::<Vec<_>>(),
            vec![(5, 8), (10, 13)]
        );
        let inserted = buffer.insert(0, b"abcde", None, limits);
        assert_eq!(inserted.advanced, 8);
        assert!(inserted.filled_gap);
        assert_eq!(buffer.insert(0, b"ij", None, limits).advanced, 5);
        let mut out = [0u8; 20];
        assert_eq!(buffer.read(&mut out), 13);
        assert_eq!(&out[..13], b"abcdefghijklm");
        assert!(!buffer.has_out_of_order());
    }

    #[test]
    fn out_of_order_bytes_are_bounded() {
        let mut buffer = RecvBuffer::new(1000);
        let limits = limits(64, 10);
        buffer.insert(10, b"abcdef", None, limits);
        assert_eq!(buffer.out_of_order_bytes(), 6);
        // Five more would make eleven: dropped and counted.
        buffer.insert(30, b"ghijk", None, limits);
        assert_eq!(buffer.out_of_order_bytes(), 6);
        assert_eq!(buffer.out_of_order_dropped(), 1);
        // Four fit, and an overlap with a stored range counts the union once.
        buffer.insert(30, b"ghij", None, limits);
        buffer.insert(14, b"ef", None, limits);
        assert_eq!(buffer.out_of_order_bytes(), 10);
        assert_eq!(buffer.out_of_order_ranges().count(), 2);
        // In-order data pulls the store in and frees it.
        assert_eq!(buffer.insert(0, b"0123456789", None, limits).advanced, 16);
        assert_eq!(buffer.out_of_order_bytes(), 4);
    }

    #[test]
    fn the_out_of_order_store_is_held_only_while_it_holds_something() {
        let mut buffer = RecvBuffer::new(1000);
        let limits = limits(8, 4);
        assert!(buffer.out_of_order.is_none());
        // Dropped at the byte limit: no store is left behind for it.
        buffer.insert(10, b"abcdef", None, limits);
        assert!(buffer.out_of_order.is_none());
        assert_eq!(buffer.out_of_order_dropped(), 1);
        buffer.insert(10, b"abc", None, limits);
        assert!(buffer.has_out_of_order());
        // In-order data that reaches the stored range but not past it leaves it stored.
        assert_eq!(buffer.insert(0, b"0123456", None, limits).advanced, 7);
        assert!(buffer.has_out_of_order());
        assert_eq!(buffer.insert(0, b"789", None, limits).advanced, 6);
        assert!(buffer.out_of_order.is_none());
        assert_eq!((buffer.out_of_order_bytes(), buffer.len()), (0, 13));
        // No ranges allowed at all: nothing is stored, nothing is allocated.
        buffer.insert(
            5,
            b"x",
            None,
            OutOfOrderLimits {
                ranges: 0,
                bytes: 100,
            },
        );
        assert!(buffer.out_of_order.is_none());
        assert_eq!(buffer.out_of_order_dropped(), 2);
        // The stack takes each drop once.
        assert_eq!(buffer.take_out_of_order_dropped(), 2);
        assert_eq!(buffer.take_out_of_order_dropped(), 0);
        buffer.insert(
            5,
            b"y",
            None,
            OutOfOrderLimits {
                ranges: 0,
                bytes: 100,
            },
        );
        assert_eq!(buffer.take_out_of_order_dropped(), 1);
    }

    #[test]
    fn sack_blocks_come_most_recent_first_then_in_order() {
        let mut buffer = RecvBuffer::new(100_000);
        let limits = limits(64, usize::MAX);
        for distance in [10, 20, 30] {
            buffer.insert(distance, b"a", None, limits);
        }
        // 10 again: it moves to the front, the others keep their order.
        buffer.insert(10, b"a", None, limits);
        assert_eq!(buffer.sack_ranges(3), vec![(10, 11), (30, 31), (20, 21)]);
        // Only the eight latest segments are remembered; older ranges follow in order.
        for distance in (100..1000).step_by(100) {
            buffer.insert(distance, b"b", None, limits);
        }
        let starts: Vec<u64> = buffer.sack_ranges(12).iter().map(|r| r.0).collect();
        assert_eq!(
            starts,
            vec![900, 800, 700, 600, 500, 400, 300, 200, 10, 20, 30, 100]
        );
    }

    #[test]
    fn out_of_order_ranges_are_bounded() {
        let mut buffer = RecvBuffer::new(1000);
        let limits = limits(2, usize::MAX);
        buffer.insert(10, b"a", None, limits);
        buffer.insert(20, b"b", None, limits);
        // A third hole does not fit: dropped (the sender retransmits it).
        buffer.insert(30, b"c", None, limits);
        assert_eq!(buffer.out_of_order_ranges().count(), 2);
        assert_eq!(buffer.out_of_order_dropped(), 1);
        // Data touching a stored range still merges.
        buffer.insert(11, b"x", None, limits);
        assert_eq!(
            buffer.out_of_order_ranges().collect::<Vec<_>>(),
            vec![(10, 12), (20, 21)]
        );
    }

    /// A frame as a driver hands it over: 54 bytes of headers, then the payload.
    fn frame_with(payload: &[u8]) -> Bytes {
        let mut frame = vec![0xeeu8; 54];
        frame.extend_from_slice(payload);
        Bytes::from(frame)
    }

    fn lies_in(inner: &[u8], outer: &[u8]) -> bool {
        let (start, at) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
        at >= start && at + inner.len() <= start + outer.len()
    }

    #[test]
    fn a_full_sized_payload_is_handed_out_as_a_slice_of_its_frame() {
        let payload: Vec<u8> = (0..1460).map(|i| i as u8).collect();
        let frame = frame_with(&payload);
        let mut buffer = RecvBuffer::new(65536);
        let limits = limits(8, usize::MAX);
        assert_eq!(
            buffer
                .insert(0, &frame[54..], Some(&frame), limits)
                .advanced,
            1460
        );
        // The whole frame is what the buffer keeps alive.
        assert_eq!(buffer.held(), frame.len());
        let first = buffer.read_bytes(1000);
        assert_eq!(first.as_ptr(), frame[54..].as_ptr(), "no copy");
        assert_eq!(&first[..], &payload[..1000]);
        let rest = buffer.read_bytes(usize::MAX);
        assert!(lies_in(&rest, &frame));
        assert_eq!(&rest[..], &payload[1000..]);
        assert_eq!((buffer.len(), buffer.held()), (0, 0));
        assert!(buffer.read_bytes(usize::MAX).is_empty());
    }

    #[test]
    fn small_payloads_are_copied_together_and_pin_no_frame() {
        let mut buffer = RecvBuffer::new(65536);
        let limits = limits(8, usize::MAX);
        let mut frames = Vec::new();
        for i in 0..100u8 {
            let frame = frame_with(&[i; 10]);
            buffer.insert(0, &frame[54..], Some(&frame), limits);
            frames.push(frame);
        }
        // A thousand bytes hold a thousand bytes, not a hundred frames.
        assert_eq!((buffer.len(), buffer.held()), (1000, 1000));
        assert!(frames.iter().all(Bytes::is_unique), "no frame is pinned");
        // Gathered in two allocations (512 bytes, then 1 KiB): two chunks for the reader.
        let first = buffer.read_bytes(usize::MAX);
        let second = buffer.read_bytes(usize::MAX);
        assert_eq!((first.len(), second.len()), (510, 490));
        assert!(buffer.read_bytes(usize::MAX).is_empty());
        let expected: Vec<u8> = (0..100u8).flat_map(|i| [i; 10]).collect();
        assert_eq!([&first[..], &second[..]].concat(), expected);
    }

    #[test]
    fn copied_and_shared_data_keep_their_order() {
        let mut buffer = RecvBuffer::new(65536);
        let limits = limits(8, usize::MAX);
        let big = frame_with(&[b'B'; 1000]);
        buffer.insert(0, b"ab", None, limits);
        buffer.insert(0, &big[54..], Some(&big), limits);
        buffer.insert(0, b"cd", Some(&big), limits); // not inside the frame: copied
        // A big payload of a frame that is only lent is copied too.
        buffer.insert(0, &[b'L'; 600], None, limits);
        assert_eq!(buffer.len(), 1604);
        let mut peeked = vec![0u8; 2000];
        assert_eq!(buffer.peek(&mut peeked), 1604);
        let mut expected = b"ab".to_vec();
        expected.extend_from_slice(&[b'B'; 1000]);
        expected.extend_from_slice(b"cd");
        expected.extend_from_slice(&[b'L'; 600]);
        assert_eq!(&peeked[..1604], &expected[..]);
        assert_eq!(&buffer.read_bytes(usize::MAX)[..], b"ab");
        let shared = buffer.read_bytes(usize::MAX);
        assert_eq!(shared.as_ptr(), big[54..].as_ptr());
        // read() copies across what is left of the queue and the tail.
        let mut out = vec![0u8; 2000];
        assert_eq!(buffer.read(&mut out), 602);
        assert_eq!(&out[..602], &expected[1002..]);
        assert_eq!(buffer.held(), 0);
    }

    #[test]
    fn stored_out_of_order_data_moves_to_the_queue_without_a_copy() {
        let mut buffer = RecvBuffer::new(65536);
        let limits = limits(8, usize::MAX);
        let second: Vec<u8> = (0..1460).map(|i| (i * 3) as u8).collect();
        let third = vec![7u8; 100];
        let fourth = vec![9u8; 100];
        // Two touching ranges merge into one; the third is apart.
        assert!(buffer.insert(1460, &second, None, limits).out_of_order);
        assert!(buffer.insert(2920, &third, None, limits).out_of_order);
        assert!(buffer.insert(3120, &fourth, None, limits).out_of_order);
        let first = frame_with(&[1u8; 1460]);
        let inserted = buffer.insert(0, &first[54..], Some(&first), limits);
        assert_eq!(inserted.advanced, 3020);
        assert!(inserted.filled_gap);
        assert_eq!(buffer.out_of_order_bytes(), 100);
        assert_eq!(buffer.read_bytes(usize::MAX).as_ptr(), first[54..].as_ptr());
        // The stored range comes out whole, in the allocation it was stored in.
        assert_eq!(
            buffer.read_bytes(usize::MAX),
            [&second[..], &third[..]].concat()
        );
        assert_eq!(buffer.len(), 0);
        // A short stored range goes through the tail.
        assert_eq!(buffer.insert(0, &[8u8; 100], None, limits).advanced, 200);
        assert_eq!(
            buffer.read_bytes(usize::MAX),
            [&[8u8; 100][..], &fourth[..]].concat()
        );
    }

    #[test]
    fn a_reader_that_keeps_up_copies_into_the_same_allocation_again() {
        let mut buffer = RecvBuffer::new(65536);
        let limits = limits(8, usize::MAX);
        let mut out = [0u8; 100];
        buffer.insert(0, &[1u8; 100], None, limits);
        let at = buffer.tail.as_ptr();
        assert_eq!(buffer.read(&mut out), 100);
        // Read by copy: the allocation starts over, no new one.
        buffer.insert(0, &[2u8; 100], None, limits);
        assert_eq!(buffer.tail.as_ptr(), at);
        // Read by slice: the reader holds a piece of it, so the next copies go elsewhere.
        let piece = buffer.read_bytes(usize::MAX);
        assert_eq!((piece.as_ptr(), &piece[..]), (at, &[2u8; 100][..]));
        buffer.insert(0, &[3u8; 100], None, limits);
        assert_ne!(buffer.tail.as_ptr(), at);
        assert_eq!(buffer.read(&mut out), 100);
        assert_eq!((out, buffer.held()), ([3u8; 100], 0));
    }

    #[test]
    fn the_window_counts_bytes_and_in_order_data_stops_at_the_capacity() {
        let mut buffer = RecvBuffer::new(1000);
        let limits = limits(8, usize::MAX);
        let frame = frame_with(&[3u8; 1460]);
        // Only what fits is taken; the rest is retransmitted.
        assert_eq!(
            buffer
                .insert(0, &frame[54..], Some(&frame), limits)
                .advanced,
            1000
        );
        assert_eq!(buffer.window(), 0);
        let taken = buffer.read_bytes(400);
        assert!(lies_in(&taken, &frame));
        assert_eq!(buffer.window(), 400);
        // The rest of the chunk still holds the frame.
        assert_eq!(buffer.held(), frame.len());
    }

    proptest! {
        #[test]
        fn any_segmentation_and_order_reassembles(len in 1usize..3000, cuts in proptest::collection::vec(1usize..1600, 1..40), order in any::<u64>(), read_max in 1usize..2000) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            // One shared "frame" holding the whole stream: segments are slices of it.
            let frame = Bytes::from(data.clone());
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
            let mut buffer = RecvBuffer::new(len);
        let limits = limits(4096, usize::MAX);
            let mut next = 0usize;
            for (i, (start, end)) in segments.into_iter().enumerate() {
                if end <= next { continue; }
                let start = start.max(next);
                // Every other segment comes in a shared frame.
                let shared = (i % 2 == 0).then_some(&frame);
                let inserted = buffer.insert(start - next, &data[start..end], shared, limits);
                next += inserted.advanced;
            }
            prop_assert_eq!(buffer.len(), len);
            // Read back in pieces of at most `read_max`, by both kinds of read.
            let mut out = Vec::with_capacity(len);
            let mut buf = vec![0u8; read_max];
            let mut by_bytes = order % 2 == 0;
            while out.len() < len {
                if by_bytes {
                    let chunk = buffer.read_bytes(read_max);
                    prop_assert!(!chunk.is_empty() && chunk.len() <= read_max);
                    out.extend_from_slice(&chunk);
                } else {
                    let n = buffer.read(&mut buf);
                    prop_assert!(n > 0);
                    out.extend_from_slice(&buf[..n]);
                }
                by_bytes = !by_bytes;
            }
            prop_assert_eq!(out, data);
            prop_assert_eq!(buffer.held(), 0);
            // Every gap filled: the out-of-order store is gone.
            prop_assert!(buffer.out_of_order.is_none());
        }
    }
}
