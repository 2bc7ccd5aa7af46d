//! Batches of frames: the unit every device moves per call.
//!
//! A [`FrameBatch`] owns one contiguous buffer cut into fixed-size slots, allocated once and
//! reused, so that a device can hand the kernel a whole batch in one syscall (recvmmsg,
//! sendmmsg) and the engine can write outgoing frames in place. Each slot keeps
//! [`FrameBatch::HEADROOM`] bytes in front of the frame for a virtio-net header.

use std::time::Instant;

use rawtcp_wire::{RxChecksum, TxChecksum};

/// What the kernel (or the device) says about a received frame's checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumStatus {
    /// Nothing is known: verify in software.
    #[default]
    Unverified,
    /// The kernel or the NIC verified the transport checksum (`TP_STATUS_CSUM_VALID`,
    /// virtio-net `DATA_VALID`).
    Valid,
    /// The frame was built on this host and its transport checksum field holds only the
    /// pseudo-header sum (`TP_STATUS_CSUMNOTREADY`, virtio-net `NEEDS_CSUM`). It never
    /// crossed a wire, so there is nothing to verify.
    Partial,
}

impl ChecksumStatus {
    /// What a parser should do with the frame's checksums.
    pub fn rx_checksum(self) -> RxChecksum {
        match self {
            ChecksumStatus::Unverified => RxChecksum::Verify,
            ChecksumStatus::Valid | ChecksumStatus::Partial => RxChecksum::Trusted,
        }
    }
}

/// Generic segmentation (GSO) of one TCP/IPv4 super-segment, or GRO on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    /// Payload bytes per segment (the MSS).
    pub segment_size: u16,
    /// Ethernet + IPv4 + TCP header length of the super-segment.
    pub header_len: u16,
}

/// Per-frame facts beside the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// When the frame was received (or, for a memory link, delivered).
    pub timestamp: Instant,
    /// Received: the checksum status the device reported.
    pub checksum: ChecksumStatus,
    /// Sent: how the transport checksum field was filled. [`TxChecksum::Partial`] needs a
    /// device with [`Capabilities::tx_checksum_offload`](crate::Capabilities).
    pub tx_checksum: TxChecksum,
    /// A super-segment to be cut (sent), or one the kernel merged (received).
    pub gso: Option<Gso>,
    /// An 802.1Q tag the kernel stripped from a received frame.
    pub vlan_tci: Option<u16>,
}

impl FrameMeta {
    /// The meta of a plain frame at `timestamp`.
    pub fn new(timestamp: Instant) -> FrameMeta {
        FrameMeta {
            timestamp,
            checksum: ChecksumStatus::Unverified,
            tx_checksum: TxChecksum::Full,
            gso: None,
            vlan_tci: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Offset of the frame within the slot (after headroom).
    offset: usize,
    len: usize,
    meta: FrameMeta,
}

/// A reusable batch of frames in fixed-size slots.
///
/// Frames are appended at the back and consumed from the front: a device's `send` removes
/// the frames it sent, so a partial send leaves the rest queued in order.
///
/// # Examples
/// ```
/// use rawtcp_netio::FrameBatch;
///
/// let mut batch = FrameBatch::new(4, 1514);
/// batch.push(60).unwrap().fill(0xab);
/// assert!(batch.push_frame(&[1, 2, 3]));
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.frame(1), &[1, 2, 3]);
/// batch.consume(1);
/// assert_eq!(batch.frame(0), &[1, 2, 3]);
/// ```
#[derive(Debug)]
pub struct FrameBatch {
    buffer: Vec<u8>,
    slot_size: usize,
    capacity: usize,
    slots: Vec<Slot>,
    /// Index of the first frame not yet consumed.
    start: usize,
}

impl FrameBatch {
    /// Bytes reserved in front of each frame, for a virtio-net header.
    pub const HEADROOM: usize = 16;

    /// A batch of `capacity` slots, each holding a frame of up to `max_frame_len` bytes.
    pub fn new(capacity: usize, max_frame_len: usize) -> FrameBatch {
        let slot_size = Self::HEADROOM + max_frame_len;
        FrameBatch {
            buffer: vec![0; slot_size * capacity],
            slot_size,
            capacity,
            slots: Vec::with_capacity(capacity),
            start: 0,
        }
    }

    /// Frames in the batch.
    pub fn len(&self) -> usize {
        self.slots.len() - self.start
    }

    /// No frames.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in all.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether no more frames can be pushed.
    pub fn is_full(&self) -> bool {
        self.slots.len() == self.capacity
    }

    /// The longest frame a slot holds.
    pub fn max_frame_len(&self) -> usize {
        self.slot_size - Self::HEADROOM
    }

    /// Removes every frame.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.start = 0;
    }

    /// Removes the first `n` frames (all, if fewer).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.slots.len());
        if self.start == self.slots.len() {
            self.clear();
        }
    }

    fn slot_range(&self, index: usize) -> std::ops::Range<usize> {
        let slot = &self.slots[self.start + index];
        let base = (self.start + index) * self.slot_size;
        base + slot.offset..base + slot.offset + slot.len
    }

    /// Frame `index` (0 is the front). Panics if out of range.
    pub fn frame(&self, index: usize) -> &[u8] {
        &self.buffer[self.slot_range(index)]
    }

    /// Frame `index`, mutable.
    pub fn frame_mut(&mut self, index: usize) -> &mut [u8] {
        let range = self.slot_range(index);
        &mut self.buffer[range]
    }

    /// The meta of frame `index`.
    pub fn meta(&self, index: usize) -> &FrameMeta {
        &self.slots[self.start + index].meta
    }

    /// The meta of frame `index`, mutable (e.g. to ask for checksum offload or GSO).
    pub fn meta_mut(&mut self, index: usize) -> &mut FrameMeta {
        &mut self.slots[self.start + index].meta
    }

    /// Iterates over the frames and their meta, front first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &FrameMeta)> + '_ {
        (0..self.len()).map(move |i| (self.frame(i), self.meta(i)))
    }

    /// Appends a frame of `len` bytes and returns it to be written in place; `None` when the
    /// batch is full or `len` exceeds the slot.
    pub fn push(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.is_full() || len > self.max_frame_len() {
            return None;
        }
        let index = self.slots.len();
        self.slots.push(Slot {
            offset: Self::HEADROOM,
            len,
            meta: FrameMeta::new(Instant::now()),
        });
        let base = index * self.slot_size + Self::HEADROOM;
        Some(&mut self.buffer[base..base + len])
    }

    /// Appends a copy of `frame`; false when it does not fit.
    pub fn push_frame(&mut self, frame: &[u8]) -> bool {
        match self.push(frame.len()) {
            Some(slot) => {
                slot.copy_from_slice(frame);
                true
            }
            None => false,
        }
    }

    // Device-side access: whole slots, for syscalls that fill or drain them.

    /// Index of the next free slot in the underlying storage.
    pub(crate) fn next_free(&self) -> usize {
        self.slots.len()
    }

    /// Free slots at the back.
    pub(crate) fn free(&self) -> usize {
        self.capacity - self.slots.len()
    }

    /// The whole storage of slot `raw` (headroom included), by storage index.
    pub(crate) fn raw_slot_mut(&mut self, raw: usize) -> &mut [u8] {
        let base = raw * self.slot_size;
        &mut self.buffer[base..base + self.slot_size]
    }

    /// Marks the next free slot filled: the frame at `offset` within the slot, `len` long.
    pub(crate) fn commit(&mut self, offset: usize, len: usize, meta: FrameMeta) {
        debug_assert!(offset + len <= self.slot_size);
        self.slots.push(Slot { offset, len, meta });
    }

    /// The free slots' storage, in order, for a receive syscall to fill.
    pub(crate) fn free_slots_mut(&mut self) -> impl Iterator<Item = &mut [u8]> + '_ {
        let start = self.slots.len() * self.slot_size;
        self.buffer[start..].chunks_exact_mut(self.slot_size)
    }

    /// Copies storage slot `from` over storage slot `to` (closing a hole left by a dropped
    /// frame).
    pub(crate) fn move_slot(&mut self, from: usize, to: usize) {
        let size = self.slot_size;
        self.buffer
            .copy_within(from * size..(from + 1) * size, to * size);
    }

    /// Frame `index` with `headroom` bytes in front of it (a header the device wrote there).
    pub(crate) fn frame_with_headroom(&self, index: usize, headroom: usize) -> &[u8] {
        let range = self.slot_range(index);
        &self.buffer[range.start - headroom..range.end]
    }

    /// Storage index of frame `index` and the frame's offset in its slot, for senders that
    /// write a header into the headroom.
    pub(crate) fn raw_position(&self, index: usize) -> (usize, usize) {
        (self.start + index, self.slots[self.start + index].offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_consume_and_refill() {
        let mut batch = FrameBatch::new(3, 100);
        assert!(batch.push(101).is_none());
        for i in 0..3u8 {
            assert!(batch.push_frame(&[i; 10]));
        }
        assert!(batch.is_full());
        assert!(!batch.push_frame(&[9]));
        batch.consume(2);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.frame(0), &[2; 10]);
        batch.consume(5);
        assert!(batch.is_empty());
        assert!(batch.push_frame(&[7; 100]));
        assert_eq!(
            batch.iter().map(|(f, _)| f.len()).collect::<Vec<_>>(),
            vec![100]
        );
    }

    #[test]
    fn device_side_commit() {
        let mut batch = FrameBatch::new(2, 64);
        let raw = batch.next_free();
        batch.raw_slot_mut(raw)[10..20].fill(5);
        batch.commit(10, 10, FrameMeta::new(Instant::now()));
        assert_eq!(batch.frame(0), &[5; 10]);
        assert_eq!(batch.free(), 1);
    }
}
