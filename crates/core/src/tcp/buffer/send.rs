//! The send buffer: every byte from SND.UNA on, as a queue of shared chunks.
//!
//! Each byte is copied at most once on its way from the application to the wire: into the
//! frame the device sends. Bytes the application hands over as a [`Bytes`] are kept as they
//! are (a chunk of the queue, no copy here at all); bytes written from a slice are copied
//! once, into the tail: a [`BytesMut`] block that is sealed into a chunk when it is full or
//! when a kept chunk must follow it. A block is never grown or moved, so a byte once queued
//! stays where it is until it is acknowledged.
//!
//! Segments are cut at any offset (the MSS, the window, a retransmission of part of a
//! chunk): [`SendBuffer::copy_to`] finds the chunk that holds an offset by binary search over
//! the chunks' stream positions, O(log n) in the number of chunks, and copies across chunk
//! boundaries.
//!
//! An acknowledged block nobody else holds becomes the tail's next block when the tail is
//! full, rather than being freed while the next is allocated: a bulk sender allocates blocks
//! only until they cover its window.
//!
//! Memory: [`SendBuffer::held`] is what the buffer keeps allocated on its own account: the
//! bytes from SND.UNA on plus the tail block's unused room. Two things are not counted: the
//! acknowledged front of the block SND.UNA lies in (less than one block, freed with it), and
//! whatever lies beyond a kept chunk in the application's allocation (the engine cannot see
//! it).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// A tail block holds at least this much, so that small writes share one allocation.
const MIN_BLOCK: usize = 4 * 1024;

/// A tail block holds at most this much: a large write is spread over several blocks, each
/// freed as soon as it is acknowledged.
const MAX_BLOCK: usize = 64 * 1024;

/// A [`Bytes`] shorter than this is copied into the tail rather than kept. A kept chunk
/// costs a queue slot, two atomic reference-count updates and a boundary that each segment
/// across it must cross, and it keeps its whole allocation alive until acknowledged: a
/// 100-byte slice of a 64 KiB receive batch, echoed back, would pin the batch. Copying less
/// than 1 KiB takes a few tens of nanoseconds, about what keeping it costs, and a run of
/// small writes then fills one block instead of a queue of tiny chunks.
pub(crate) const COPY_BELOW: usize = 1024;

/// A sealed run of queued bytes and where it starts in the stream.
#[derive(Debug)]
struct Chunk {
    /// Stream position of the first byte (bytes queued before it since the connection
    /// opened; 64 bits, so it never wraps).
    start: u64,
    bytes: Bytes,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

/// Bytes from SND.UNA on, bounded.
#[derive(Debug)]
pub(crate) struct SendBuffer {
    /// Sealed chunks, oldest first; the first starts at `head`.
    chunks: VecDeque<Chunk>,
    /// Bytes after the chunks, written into a block that is never reallocated.
    tail: BytesMut,
    /// Stream position of SND.UNA's byte.
    head: u64,
    /// Bytes from SND.UNA on: the chunks and the tail.
    len: usize,
    capacity: usize,
}

impl SendBuffer {
    pub(crate) fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            chunks: VecDeque::new(),
            tail: BytesMut::new(),
            head: 0,
            len: 0,
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn free(&self) -> usize {
        self.capacity - self.len
    }

    /// Bytes allocated on the buffer's account: the queued bytes and the tail's unused room.
    pub(crate) fn held(&self) -> usize {
        self.len + self.tail_room()
    }

    fn tail_room(&self) -> usize {
        self.tail.capacity() - self.tail.len()
    }

    /// Stream position of the tail's first byte.
    fn tail_start(&self) -> u64 {
        self.chunks.back().map_or(self.head, Chunk::end)
    }

    /// Moves the tail's bytes into a chunk of their own; the tail keeps its unused room.
    fn seal_tail(&mut self) {
        self.seal_tail_from(self.tail_start());
    }

    /// [`seal_tail`](Self::seal_tail), the tail's first byte at stream position `start`.
    fn seal_tail_from(&mut self, start: u64) {
        if self.tail.is_empty() {
            return;
        }
        let bytes = if self.tail_room() == 0 {
            std::mem::take(&mut self.tail).freeze()
        } else {
            self.tail.split().freeze()
        };
        self.chunks.push_back(Chunk { start, bytes });
    }

    /// Appends as much of `data` as fits, copying it once; returns how much. New blocks are
    /// allocated within `memory_room` bytes (the tail's unused room is already held).
    pub(crate) fn write(&mut self, data: &[u8], memory_room: usize) -> usize {
        let wanted = data.len().min(self.free());
        let mut room = memory_room;
        let mut taken = 0;
        while taken < wanted {
            if self.tail_room() == 0 {
                let block = (wanted - taken).clamp(MIN_BLOCK, MAX_BLOCK).min(room);
                if block == 0 {
                    break;
                }
                self.seal_tail();
                self.tail = BytesMut::with_capacity(block);
                room = room.saturating_sub(self.tail.capacity());
            }
            let n = (wanted - taken).min(self.tail_room());
            self.tail.extend_from_slice(&data[taken..taken + n]);
            taken += n;
        }
        self.len += taken;
        taken
    }

    /// Appends as much of `data` as fits without copying it (below [`COPY_BELOW`] bytes it
    /// is copied into the tail instead); returns how much. The chunk kept counts its length
    /// against `memory_room`.
    pub(crate) fn write_bytes(&mut self, mut data: Bytes, memory_room: usize) -> usize {
        let n = data.len().min(self.free()).min(memory_room);
        if n < COPY_BELOW {
            return self.write(&data, memory_room);
        }
        self.seal_tail();
        data.truncate(n);
        let start = self.tail_start();
        self.chunks.push_back(Chunk { start, bytes: data });
        self.len += n;
        n
    }

    /// Drops `n` acknowledged bytes from the front.
    pub(crate) fn ack(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head += n as u64;
        self.len -= n;
        while let Some(front) = self.chunks.front_mut() {
            if front.end() <= self.head {
                // Where the tail starts, known before the last chunk goes.
                let tail_start = self.tail_start();
                if let Some(Chunk { bytes, .. }) = self.chunks.pop_front() {
                    self.reuse_as_tail(bytes, tail_start);
                }
                continue;
            }
            if front.start < self.head {
                front.bytes.advance((self.head - front.start) as usize);
                front.start = self.head;
            }
            break;
        }
        if self.chunks.is_empty() {
            // What is left is all in the tail.
            let acked = self.tail.len() - self.len;
            self.tail.advance(acked);
        }
        if self.len == 0 {
            // Nothing queued: an idle connection holds no block.
            self.tail = BytesMut::new();
        }
    }

    /// Makes an acknowledged chunk the tail's next block if the tail is full and nobody else
    /// holds the chunk's allocation, a block's size: a bulk sender then cycles through the
    /// blocks it has instead of freeing one and allocating the next per block. Nothing more
    /// is held than before the acknowledgment (the block's bytes were counted as queued; now
    /// they count as the tail's room), and no second block is kept beside the tail, so
    /// [`held`](Self::held) stays within a block of the queued bytes; with nothing queued
    /// [`ack`](Self::ack) drops the tail, block and all. The tail's bytes, from stream
    /// position `tail_start`, become a chunk.
    fn reuse_as_tail(&mut self, bytes: Bytes, tail_start: u64) {
        if self.len == 0 || self.tail_room() != 0 {
            return;
        }
        // Unique: no Bytes of ours or the application's points into it any more.
        let Ok(mut block) = bytes.try_into_mut() else {
            return;
        };
        block.clear();
        // Back to the start of the allocation; false when it is there already.
        let whole = block.capacity() + 1;
        let _ = block.try_reclaim(whole);
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block.capacity()) {
            return;
        }
        self.seal_tail_from(tail_start);
        self.tail = block;
    }

    #[cfg(feature = "fuzzing")]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies `out.len()` bytes starting `offset` bytes after SND.UNA into `out`. The range
    /// lies within the buffer (the caller plans segments from [`len`](Self::len)).
    pub(crate) fn copy_to(&self, offset: usize, out: &mut [u8]) {
        debug_assert!(offset + out.len() <= self.len, "copy past the queued bytes");
        let mut position = self.head + offset as u64;
        let mut index = self.chunks.partition_point(|c| c.end() <= position);
        let mut written = 0;
        while written < out.len() {
            let (start, bytes) = match self.chunks.get(index) {
                Some(chunk) => (chunk.start, &chunk.bytes[..]),
                None => (self.tail_start(), &self.tail[..]),
            };
            let from = (position - start) as usize;
            let n = bytes.len().saturating_sub(from).min(out.len() - written);
            if n == 0 {
                break;
            }
            out[written..written + n].copy_from_slice(&bytes[from..from + n]);
            written += n;
            position += n as u64;
            index += 1;
        }
    }

    /// The chunks' first bytes, oldest first: for tests that check a caller's allocation is
    /// kept rather than copied.
    #[cfg(test)]
    fn chunk_pointers(&self) -> Vec<*const u8> {
        self.chunks.iter().map(|c| c.bytes.as_ptr()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PLENTY: usize = usize::MAX;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn read(buffer: &SendBuffer, offset: usize, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        buffer.copy_to(offset, &mut out);
        out
    }

    #[test]
    fn send_buffer_copies_across_blocks_and_acknowledgments() {
        let mut buffer = SendBuffer::new(8);
        assert_eq!(buffer.write(b"abcdef", PLENTY), 6);
        buffer.ack(4);
        assert_eq!(buffer.write(b"ghijklmn", PLENTY), 6);
        assert_eq!(read(&buffer, 1, 5), b"fghij");
    }

    #[test]
    fn a_large_bytes_is_kept_not_copied() {
        let data = Bytes::from(pattern(10_000, 1));
        let mut buffer = SendBuffer::new(64 * 1024);
        assert_eq!(buffer.write(b"head", PLENTY), 4);
        assert_eq!(buffer.write_bytes(data.clone(), PLENTY), 10_000);
        assert_eq!(buffer.write(b"tail", PLENTY), 4);
        // The tail's bytes were sealed before the kept chunk; the chunk is the caller's.
        assert_eq!(buffer.chunk_pointers()[1], data.as_ptr());
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&data);
        expected.extend_from_slice(b"tail");
        assert_eq!(read(&buffer, 0, expected.len()), expected);
        // A segment across all three pieces after a partial acknowledgment.
        buffer.ack(3);
        assert_eq!(read(&buffer, 0, 2), [b'd', data[0]]);
        assert_eq!(read(&buffer, 9_990, 15), &expected[9_993..]);
        // The kept chunk is trimmed, never copied: its first byte is still the caller's.
        buffer.ack(1 + 100);
        assert_eq!(buffer.chunk_pointers()[0], data[100..].as_ptr());
    }

    #[test]
    fn a_small_bytes_is_copied_into_the_tail() {
        let data = Bytes::from(pattern(COPY_BELOW - 1, 2));
        let mut buffer = SendBuffer::new(64 * 1024);
        assert_eq!(buffer.write_bytes(data.clone(), PLENTY), data.len());
        assert!(buffer.chunk_pointers().is_empty());
        assert_eq!(read(&buffer, 0, data.len()), data);
    }

    #[test]
    fn a_bytes_takes_the_prefix_that_fits() {
        let data = Bytes::from(pattern(5_000, 3));
        let mut buffer = SendBuffer::new(4_000);
        assert_eq!(buffer.write_bytes(data.clone(), PLENTY), 4_000);
        assert_eq!(read(&buffer, 0, 4_000), &data[..4_000]);
        assert_eq!(buffer.write_bytes(data.slice(4_000..), PLENTY), 0);
        buffer.ack(1_500);
        // 1 000 bytes left of the caller's and 1 500 bytes of room: copied, below the
        // threshold.
        assert_eq!(buffer.write_bytes(data.slice(4_000..), PLENTY), 1_000);
        assert_eq!(read(&buffer, 0, 3_500), &data[1_500..]);
    }

    #[test]
    fn memory_held_counts_the_tail_room_and_respects_the_room_given() {
        let mut buffer = SendBuffer::new(256 * 1024);
        assert_eq!(buffer.held(), 0);
        // Five bytes take a minimum block.
        assert_eq!(buffer.write(b"hello", PLENTY), 5);
        assert_eq!(buffer.held(), MIN_BLOCK);
        // More bytes fill the block's room before any new memory is asked for.
        assert_eq!(buffer.write(&[1; 100], 0), 100);
        assert_eq!(buffer.held(), MIN_BLOCK);
        // A block no larger than the memory room.
        assert_eq!(buffer.write(&[2; 10_000], 1_000), MIN_BLOCK - 105 + 1_000);
        assert_eq!(buffer.held(), MIN_BLOCK + 1_000);
        // A kept chunk counts its length against the room too.
        assert_eq!(
            buffer.write_bytes(Bytes::from(vec![3; 5_000]), 2_000),
            2_000
        );
        assert_eq!(buffer.held(), MIN_BLOCK + 3_000);
        // Everything acknowledged: nothing held.
        buffer.ack(buffer.len());
        assert_eq!(buffer.held(), 0);
        assert_eq!(buffer.len(), 0);
    }

    #[test]
    fn a_large_write_is_spread_over_blocks_freed_as_they_are_acknowledged() {
        let data = pattern(200_000, 4);
        let mut buffer = SendBuffer::new(256 * 1024);
        assert_eq!(buffer.write(&data, PLENTY), data.len());
        assert_eq!(buffer.chunk_pointers().len(), data.len() / MAX_BLOCK);
        assert_eq!(buffer.held(), 3 * MAX_BLOCK + MIN_BLOCK);
        buffer.ack(MAX_BLOCK + 1);
        assert_eq!(buffer.chunk_pointers().len(), data.len() / MAX_BLOCK - 1);
        assert_eq!(read(&buffer, 0, 10), &data[MAX_BLOCK + 1..MAX_BLOCK + 11]);
    }

    #[test]
    fn an_acknowledged_block_becomes_the_next_tail() {
        let data = pattern(MAX_BLOCK, 5);
        let mut buffer = SendBuffer::new(4 * MAX_BLOCK);
        // Three full blocks; the tail is the third, full.
        for _ in 0..3 {
            assert_eq!(buffer.write(&data, PLENTY), MAX_BLOCK);
        }
        let first = buffer.chunk_pointers()[0];
        assert_eq!(buffer.held(), 3 * MAX_BLOCK);
        // The first acknowledged in two steps: a trimmed chunk is reused whole.
        buffer.ack(100);
        buffer.ack(MAX_BLOCK - 100);
        // Its memory is the tail's room now, counted as held; nothing new was allocated.
        assert_eq!(buffer.held(), 3 * MAX_BLOCK);
        assert_eq!(buffer.tail_room(), MAX_BLOCK);
        assert_eq!(buffer.write(&data, 0), MAX_BLOCK);
        assert_eq!(buffer.tail.as_ptr(), first);
        assert_eq!(read(&buffer, 2 * MAX_BLOCK, 10), &data[..10]);
        assert_eq!(
            read(&buffer, MAX_BLOCK - 5, 10),
            [&data[MAX_BLOCK - 5..], &data[..5]].concat()
        );
        // Everything acknowledged: nothing held, no block kept.
        buffer.ack(buffer.len());
        assert_eq!(buffer.held(), 0);
    }

    #[test]
    fn a_block_still_shared_or_the_applications_is_not_reused() {
        let mut buffer = SendBuffer::new(4 * MAX_BLOCK);
        // A kept chunk the application still holds.
        let kept = Bytes::from(pattern(MIN_BLOCK, 6));
        assert_eq!(buffer.write_bytes(kept.clone(), PLENTY), MIN_BLOCK);
        assert_eq!(buffer.write(&pattern(MIN_BLOCK, 7), PLENTY), MIN_BLOCK);
        buffer.ack(MIN_BLOCK);
        assert_eq!(buffer.held(), MIN_BLOCK);
        assert_eq!(kept, pattern(MIN_BLOCK, 6));
        // A block sealed before a kept chunk while the tail had room shares its allocation
        // with the tail: not reused, and the tail's room is kept.
        let mut buffer = SendBuffer::new(4 * MAX_BLOCK);
        assert_eq!(buffer.write(b"abc", PLENTY), 3);
        assert_eq!(
            buffer.write_bytes(Bytes::from(pattern(2_000, 8)), PLENTY),
            2_000
        );
        buffer.ack(3);
        assert_eq!(buffer.held(), 2_000 + MIN_BLOCK - 3);
        assert_eq!(read(&buffer, 0, 2_000), pattern(2_000, 8));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(usize),
        WriteBytes(usize),
        Ack(usize),
        CopyTo(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..20_000).prop_map(Op::Write),
            (0usize..70_000).prop_map(Op::WriteBytes),
            (0usize..30_000).prop_map(Op::Ack),
            (0usize..1 << 20, 0usize..5_000).prop_map(|(o, l)| Op::CopyTo(o, l)),
        ]
    }

    proptest! {
        /// Random writes, kept chunks, acknowledgments and segment copies against a plain
        /// `Vec` of the bytes from SND.UNA on.
        #[test]
        fn send_buffer_matches_a_vec(
            ops in proptest::collection::vec(op(), 1..120),
            capacity in 1usize..200_000,
            memory in 0usize..300_000,
        ) {
            let mut buffer = SendBuffer::new(capacity);
            let mut model: Vec<u8> = Vec::new();
            let mut next = 0u8;
            for op in ops {
                match op {
                    Op::Write(len) | Op::WriteBytes(len) => {
                        let data: Vec<u8> = (0..len)
                            .map(|_| { next = next.wrapping_add(7); next })
                            .collect();
                        let room = memory.saturating_sub(buffer.held());
                        let held = buffer.held();
                        let n = match op {
                            Op::Write(_) => buffer.write(&data, room),
                            _ => buffer.write_bytes(Bytes::from(data.clone()), room),
                        };
                        prop_assert!(n <= data.len() && model.len() + n <= capacity);
                        prop_assert!(buffer.held() <= held.max(memory), "memory limit");
                        if room >= data.len() + MAX_BLOCK {
                            prop_assert!(n == data.len().min(capacity - model.len()));
                        }
                        model.extend_from_slice(&data[..n]);
                    }
                    Op::Ack(n) => {
                        buffer.ack(n);
                        model.drain(..n.min(model.len()));
                    }
                    Op::CopyTo(offset, len) => {
                        if model.is_empty() {
                            continue;
                        }
                        let offset = offset % model.len();
                        let len = len.min(model.len() - offset);
                        prop_assert_eq!(read(&buffer, offset, len), &model[offset..offset + len]);
                    }
                }
                prop_assert_eq!(buffer.len(), model.len());
                prop_assert!(buffer.held() >= buffer.len());
                prop_assert!(buffer.held() <= buffer.len() + MAX_BLOCK);
            }
        }
    }
}
