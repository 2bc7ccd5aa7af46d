//! Batches of frames: the unit every device moves per call.
//!
//! A [`FrameBatch`] owns one contiguous buffer cut into fixed-size slots, allocated once and
//! reused, so that a device can hand the kernel a whole batch in one syscall (recvmmsg,
//! sendmmsg) and the engine can write outgoing frames in place. Each slot keeps
//! [`FrameBatch::HEADROOM`] bytes in front of the frame for a virtio-net header.
//!
//! Received frames go first into a small buffer per slot (its head), so that each can be
//! handed to the engine as [`bytes::Bytes`] that pin that frame's memory alone, however long
//! the engine keeps it: never a batch, never a 64 KiB slot. A peer can then make us hold
//! little more than the frames it sent.
//!
//! A head whose frame is still held when the batch is reused (received data the engine keeps
//! until the application reads it) is exchanged for one from the batch's pool of heads: heads
//! once held whose last `Bytes` has been dropped since, found by their reference count (an
//! atomic, so a `Bytes` may be dropped on any thread). The pool is bounded; beyond its limit
//! the oldest held head is let go, to be freed by whoever drops its last `Bytes`. A bulk
//! receiver then allocates heads only until the pool covers the frames it holds at once.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
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
    /// When the frame was received (or, for a memory link, delivered); for a frame pushed
    /// to send, a fixed placeholder.
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

/// Where a frame's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the slot's part of the contiguous buffer (frames pushed to send, received frames
    /// longer than a head).
    Buffer,
    /// In the slot's receive head.
    Head,
    /// Handed out by [`FrameBatch::take_frame`]; the head is reclaimed by `clear`.
    Taken,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Offset of the frame within the slot (after headroom).
    offset: usize,
    len: usize,
    meta: FrameMeta,
    place: Place,
}

/// A reusable batch of frames in fixed-size slots.
///
/// Frames are appended at the back and consumed from the front: a device's `send` removes
/// the frames it sent, so a partial send leaves the rest queued in order.
///
/// Received frames land in a small buffer of their slot's own, its *head*
/// ([`FrameBatch::with_head_len`]: an MTU-sized frame by default), followed by the slot's
/// part of the contiguous buffer for the rest of a longer one (a GRO super-frame), which is
/// then made contiguous there. [`FrameBatch::take_frame`] hands a frame out as [`Bytes`]:
/// a frame in its head without a copy, pinning only that head, never the batch; a longer one
/// as one copy of exactly its length. [`FrameBatch::clear`] takes back every head whose frame
/// nobody holds any more, and gives a slot whose head is still held another one, from a
/// bounded pool of heads once held and let go since (allocated only when the pool has none
/// free): receiving frames that are not kept (ACKs, dropped frames) allocates nothing, and
/// frames that are kept for a while allocate only until the pool covers them.
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
    /// One receive head per slot, allocated at the first receive (a batch that only sends
    /// never has any). A free head is empty with room for `head_size` bytes.
    heads: Vec<BytesMut>,
    /// Bytes of a head: [`FrameBatch::HEADROOM`] and the longest frame it holds.
    head_size: usize,
    /// Heads a taken frame held when its slot was reused, and those free again since.
    pool: HeadPool,
    /// Heads allocated after the first ones, because a taken frame still held the old one
    /// and the pool had none free.
    fresh_heads: u64,
}

/// Receive heads beyond one per slot: those whose taken frame was still held when the batch
/// was cleared, and those of them free again since. Bounded by a number of heads: at most
/// `limit` heads' memory is pinned here beyond what the holders of their frames pin.
#[derive(Debug)]
struct HeadPool {
    /// Heads a taken frame still held when last looked at, in the order they were handed
    /// over: the engine releases received data mostly in order, so the front comes free
    /// first. Each is our handle to the head's allocation, after the frame it was split from.
    held: VecDeque<BytesMut>,
    /// Heads no `Bytes` points into any more, reclaimed whole and empty.
    free: Vec<BytesMut>,
    /// Most heads in `held` and `free` together.
    limit: usize,
    /// Heads taken from the pool instead of allocated.
    reused: u64,
}

impl HeadPool {
    fn new(limit: usize) -> HeadPool {
        HeadPool {
            held: VecDeque::new(),
            free: Vec::new(),
            limit,
            reused: 0,
        }
    }

    fn len(&self) -> usize {
        self.held.len() + self.free.len()
    }

    /// Keeps `head`, which a taken frame still holds, to be reused once nobody holds it.
    /// At the limit the oldest held head is let go (its holders free it), or `head` itself
    /// when none is held.
    fn hold(&mut self, head: BytesMut) {
        if self.limit == 0 {
            return;
        }
        if self.len() >= self.limit && self.held.pop_front().is_none() {
            return;
        }
        self.held.push_back(head);
    }

    /// A free head: one reclaimed before, or the oldest held one if nobody holds it any
    /// more. Only the oldest is looked at (O(1)): received data is let go in about the order
    /// it arrived, and a head held for long reaches the front of `held` and is let go there
    /// (by [`hold`](Self::hold) at the limit) rather than searched past each time.
    fn take(&mut self) -> Option<BytesMut> {
        let head = match self.free.pop() {
            Some(head) => head,
            None => {
                let oldest = self.held.front_mut()?;
                if !reclaim(oldest) {
                    return None;
                }
                self.held.pop_front()?
            }
        };
        self.reused += 1;
        Some(head)
    }
}

/// Makes `head`, our handle to what is left of a head after a frame was split off it, empty
/// and its whole allocation again, if no `Bytes` of the frame is left. Asking for more room
/// than the handle has makes `try_reclaim` check that it is the allocation's only one (an
/// atomic reference count, read with Acquire: a `Bytes` dropped on another thread is seen
/// with everything it did); then it moves back to the start of the allocation without
/// allocating. False, and the head untouched but emptied, while the frame is still held.
fn reclaim(head: &mut BytesMut) -> bool {
    head.clear();
    let beyond_what_is_left = head.capacity() + 1;
    head.try_reclaim(beyond_what_is_left)
}

/// Where a device writes one received frame: `head_len` bytes into the head's spare
/// capacity (after the `len()` bytes already there), then on into `tail` for a frame
/// longer than that. The device sets the head's length to what it wrote there.
#[derive(Debug)]
pub(crate) struct RecvSlot<'a> {
    pub(crate) head: &'a mut BytesMut,
    pub(crate) head_len: usize,
    pub(crate) tail: &'a mut [u8],
}

impl FrameBatch {
    /// Bytes reserved in front of each frame, for a virtio-net header.
    pub const HEADROOM: usize = 16;

    /// The longest frame a receive head holds unless [`FrameBatch::with_head_len`] says
    /// otherwise: a head is 2 KiB with its headroom, an MTU-1500 frame with a VLAN tag and
    /// room to spare.
    pub const DEFAULT_HEAD_LEN: usize = 2048 - Self::HEADROOM;

    /// The most receive heads a batch keeps beyond one per slot unless
    /// [`set_head_pool_limit`](Self::set_head_pool_limit) says otherwise: 1024 heads, 1.5 MiB
    /// at MTU 1500, the frames of 1.2 ms at 10 Gbit/s. (A bulk receive over a MemLink, its
    /// application reading as data comes, needed fewer than 200.)
    pub const DEFAULT_HEAD_POOL_LIMIT: usize = 1024;

    /// A batch of `capacity` slots, each holding a frame of up to `max_frame_len` bytes,
    /// received frames of up to [`DEFAULT_HEAD_LEN`](Self::DEFAULT_HEAD_LEN) bytes in a
    /// head of their own.
    pub fn new(capacity: usize, max_frame_len: usize) -> FrameBatch {
        Self::with_head_len(capacity, max_frame_len, Self::DEFAULT_HEAD_LEN)
    }

    /// A batch of `capacity` slots, each holding a frame of up to `max_frame_len` bytes,
    /// whose receive heads hold frames of up to `head_len` bytes (at least 64; at most
    /// `max_frame_len`): what a taken frame pins. Longer received frames are copied once
    /// when taken. Size it by the MTU: `mtu + 18` holds any frame but a GRO super-frame.
    pub fn with_head_len(capacity: usize, max_frame_len: usize, head_len: usize) -> FrameBatch {
        let slot_size = Self::HEADROOM + max_frame_len;
        FrameBatch {
            buffer: vec![0; slot_size * capacity],
            slot_size,
            capacity,
            slots: Vec::with_capacity(capacity),
            start: 0,
            heads: Vec::new(),
            head_size: Self::HEADROOM + head_len.max(64).min(max_frame_len),
            pool: HeadPool::new(Self::DEFAULT_HEAD_POOL_LIMIT),
            fresh_heads: 0,
        }
    }

    /// Keeps at most `limit` receive heads beyond one per slot, for frames the engine still
    /// holds when their slot is reused and for reuse once it has let them go (0: none, each
    /// such slot gets a newly allocated head). Heads over a lowered limit are let go.
    pub fn set_head_pool_limit(&mut self, limit: usize) {
        self.pool.limit = limit;
        while self.pool.len() > limit {
            if self.pool.free.pop().is_none() {
                self.pool.held.pop_front();
            }
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

    /// The longest received frame a head holds, handed out by
    /// [`take_frame`](Self::take_frame) without a copy.
    pub fn head_len(&self) -> usize {
        self.head_size - Self::HEADROOM
    }

    /// Receive heads allocated because a frame taken from the one before was still held
    /// when the batch was cleared (the engine kept it as received data). Frames nobody
    /// keeps cost no allocation.
    pub fn fresh_heads(&self) -> u64 {
        self.fresh_heads
    }

    /// Receive heads that replaced one still held without an allocation: taken from the pool
    /// of heads once held and let go since.
    pub fn reused_heads(&self) -> u64 {
        self.pool.reused
    }

    /// Receive heads kept beyond one per slot (still held by a taken frame, or free for
    /// reuse), at most [`DEFAULT_HEAD_POOL_LIMIT`](Self::DEFAULT_HEAD_POOL_LIMIT) or what
    /// [`set_head_pool_limit`](Self::set_head_pool_limit) set; each is about
    /// [`head_len`](Self::head_len) bytes.
    pub fn pooled_heads(&self) -> usize {
        self.pool.len()
    }

    /// Removes every frame, and takes back the heads of frames that were taken and are no
    /// longer held (a new head for each one still held).
    pub fn clear(&mut self) {
        for raw in 0..self.slots.len() {
            match self.slots[raw].place {
                Place::Buffer => {}
                Place::Head => self.heads[raw].clear(),
                Place::Taken => self.reclaim_head(raw),
            }
        }
        self.slots.clear();
        self.start = 0;
    }

    /// Makes head `raw`, whose frame was taken, free again: empty, its whole allocation
    /// ours; or, while a taken frame still holds it, exchanged for a free one from the pool
    /// (a new one when the pool has none), the held one kept in the pool. (A head from a
    /// memory link may be smaller than ours; the next receive into it makes room.)
    fn reclaim_head(&mut self, raw: usize) {
        if reclaim(&mut self.heads[raw]) {
            return;
        }
        let free = self.pool.take().unwrap_or_else(|| {
            self.fresh_heads += 1;
            BytesMut::with_capacity(self.head_size)
        });
        let held = std::mem::replace(&mut self.heads[raw], free);
        self.pool.hold(held);
    }

    /// Removes the first `n` frames (all, if fewer).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.slots.len());
        if self.start == self.slots.len() {
            self.clear();
        }
    }

    fn buffer_range(&self, raw: usize) -> std::ops::Range<usize> {
        let slot = &self.slots[raw];
        let base = raw * self.slot_size;
        base + slot.offset..base + slot.offset + slot.len
    }

    /// Frame `index` (0 is the front). Panics if out of range or taken.
    pub fn frame(&self, index: usize) -> &[u8] {
        let raw = self.start + index;
        let slot = &self.slots[raw];
        match slot.place {
            Place::Buffer => &self.buffer[self.buffer_range(raw)],
            Place::Head => &self.heads[raw][slot.offset..slot.offset + slot.len],
            Place::Taken => panic!("frame {index} was taken from the batch"),
        }
    }

    /// Frame `index`, mutable. Panics if out of range or taken.
    pub fn frame_mut(&mut self, index: usize) -> &mut [u8] {
        let raw = self.start + index;
        let slot = self.slots[raw];
        match slot.place {
            Place::Buffer => {
                let range = self.buffer_range(raw);
                &mut self.buffer[range]
            }
            Place::Head => &mut self.heads[raw][slot.offset..slot.offset + slot.len],
            Place::Taken => panic!("frame {index} was taken from the batch"),
        }
    }

    /// Hands frame `index` out as [`Bytes`] that share nothing with the batch but the
    /// frame's own head: a received frame that fits its head without a copy, any other
    /// frame (pushed to send, or a received super-frame) as a copy of exactly its length.
    /// The frame stays in the batch (its meta too) but can no longer be read through it if
    /// it was in a head. Panics if out of range or taken already.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_core::Instant;
    /// use rawtcp_netio::{FrameBatch, MemLink};
    ///
    /// let (mut a, mut b) = MemLink::pair();
    /// let mut out = FrameBatch::new(8, 1514);
    /// out.push_frame(&[0xab; 60]);
    /// a.send_at(Instant::ZERO, &mut out);
    /// let mut inbox = FrameBatch::new(8, 1514);
    /// assert_eq!(b.recv_at(Instant::ZERO, &mut inbox), 1);
    /// let kept = inbox.take_frame(0);
    /// // The kept frame still holds its head, so the batch needs a new one for that slot.
    /// inbox.clear();
    /// assert_eq!(inbox.fresh_heads(), 1);
    /// assert_eq!(kept, &[0xab; 60][..]);
    /// ```
    pub fn take_frame(&mut self, index: usize) -> Bytes {
        let raw = self.start + index;
        let slot = &mut self.slots[raw];
        match slot.place {
            Place::Head => {
                slot.place = Place::Taken;
                let mut frame = self.heads[raw].split_to(slot.offset + slot.len);
                frame.advance(slot.offset);
                frame.freeze()
            }
            Place::Buffer => Bytes::copy_from_slice(&self.buffer[self.buffer_range(raw)]),
            Place::Taken => panic!("frame {index} was taken from the batch already"),
        }
    }

    /// The meta of frame `index`.
    pub fn meta(&self, index: usize) -> &FrameMeta {
        &self.slots[self.start + index].meta
    }

    /// The meta of frame `index`, mutable (e.g. to ask for checksum offload or GSO).
    pub fn meta_mut(&mut self, index: usize) -> &mut FrameMeta {
        &mut self.slots[self.start + index].meta
    }

    /// Iterates over the frames and their meta, front first. Panics on a taken frame.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &FrameMeta)> + '_ {
        (0..self.len()).map(move |i| (self.frame(i), self.meta(i)))
    }

    /// Appends a frame of `len` bytes and returns it to be written in place; `None` when the
    /// batch is full or `len` exceeds the slot. Its timestamp is a fixed one (the first push
    /// in the process): a frame to send has no moment of its own, and reading the clock per
    /// frame was a measurable share of sending.
    pub fn push(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.is_full() || len > self.max_frame_len() {
            return None;
        }
        let index = self.slots.len();
        self.slots.push(Slot {
            offset: Self::HEADROOM,
            len,
            meta: FrameMeta::new(send_timestamp()),
            place: Place::Buffer,
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

    // Device-side access, for receive syscalls that fill slots and send syscalls that drain
    // them.

    /// Free slots at the back.
    pub(crate) fn free(&self) -> usize {
        self.capacity - self.slots.len()
    }

    fn ensure_heads(&mut self) {
        if self.heads.len() < self.capacity {
            let size = self.head_size;
            self.heads
                .resize_with(self.capacity, || BytesMut::with_capacity(size));
        }
    }

    /// The next `n` free slots (at most the free ones), in order, for a receive syscall to
    /// fill: each head holds `offset` zero bytes (the headroom the frame, or its virtio-net
    /// header, starts after), then room up to the head's size, then the tail.
    pub(crate) fn recv_slots(
        &mut self,
        n: usize,
        offset: usize,
    ) -> impl Iterator<Item = RecvSlot<'_>> + '_ {
        self.ensure_heads();
        let first = self.slots.len();
        let (slot_size, head_size) = (self.slot_size, self.head_size);
        let n = n.min(self.free());
        self.heads[first..first + n]
            .iter_mut()
            .zip(self.buffer[first * slot_size..].chunks_exact_mut(slot_size))
            .map(move |(head, slot)| {
                head.clear();
                head.reserve(head_size);
                head.put_bytes(0, offset);
                RecvSlot {
                    head,
                    head_len: head_size - offset,
                    tail: &mut slot[head_size..],
                }
            })
    }

    /// The bytes received into free slot `raw` (by storage index) that lie in its head: a
    /// device reads the frame's first bytes there (virtio-net header, EtherType) before it
    /// decides to keep the frame.
    pub(crate) fn received_head(&self, raw: usize) -> &[u8] {
        &self.heads[raw]
    }

    /// Storage index of the next free slot.
    pub(crate) fn next_free(&self) -> usize {
        self.slots.len()
    }

    /// Moves what was received into free slot `from` to free slot `to` (closing a hole left
    /// by a dropped frame), the frame ending at `end` within the slot: the heads swap, and
    /// only the part of a long frame beyond its head is copied.
    pub(crate) fn move_received(&mut self, from: usize, to: usize, end: usize) {
        self.heads.swap(from, to);
        if end > self.head_size {
            let size = self.slot_size;
            self.buffer.copy_within(
                from * size + self.head_size..from * size + end,
                to * size + self.head_size,
            );
        }
    }

    /// Marks the next free slot filled by a receive into [`recv_slots`](Self::recv_slots):
    /// the frame at `offset` within the slot, `len` long. A frame longer than the head is
    /// made contiguous in the slot's part of the buffer (its head's bytes copied there).
    pub(crate) fn commit(&mut self, offset: usize, len: usize, meta: FrameMeta) {
        let raw = self.slots.len();
        debug_assert!(offset + len <= self.slot_size);
        let head = &self.heads[raw];
        let place = if offset + len <= head.len() {
            Place::Head
        } else {
            let base = raw * self.slot_size;
            let in_head = head.len().min(self.head_size);
            self.buffer[base + offset..base + in_head].copy_from_slice(&head[offset..in_head]);
            Place::Buffer
        };
        self.slots.push(Slot {
            offset,
            len,
            meta,
            place,
        });
    }

    /// Appends a copy of a received `frame` (from a device that cannot write into slots
    /// itself: a mapped ring): into a head if it fits one, else into the buffer. False when
    /// the batch is full or the frame longer than a slot.
    pub(crate) fn push_received(&mut self, frame: &[u8], meta: FrameMeta) -> bool {
        if self.is_full() || frame.len() > self.max_frame_len() {
            return false;
        }
        self.ensure_heads();
        let raw = self.slots.len();
        let offset = Self::HEADROOM;
        let place = if offset + frame.len() <= self.head_size {
            let head = &mut self.heads[raw];
            head.clear();
            head.reserve(self.head_size);
            head.put_bytes(0, offset);
            head.extend_from_slice(frame);
            Place::Head
        } else {
            let base = raw * self.slot_size + offset;
            self.buffer[base..base + frame.len()].copy_from_slice(frame);
            Place::Buffer
        };
        self.slots.push(Slot {
            offset,
            len: frame.len(),
            meta,
            place,
        });
        true
    }

    /// Appends a received frame that arrives in a buffer of its own (a memory link's): it
    /// becomes the next free slot's head, without a copy, cut to the slot's length; the
    /// slot's free head is returned, empty, for the link to fill with a later frame. `None`
    /// (and `frame` dropped) when the batch is full.
    pub(crate) fn push_owned(&mut self, mut frame: BytesMut, meta: FrameMeta) -> Option<BytesMut> {
        if self.is_full() {
            return None;
        }
        self.ensure_heads();
        frame.truncate(self.max_frame_len());
        let raw = self.slots.len();
        self.slots.push(Slot {
            offset: 0,
            len: frame.len(),
            meta,
            place: Place::Head,
        });
        let mut free = std::mem::replace(&mut self.heads[raw], frame);
        free.clear();
        Some(free)
    }

    /// The `headroom` bytes in front of frame `index`, for a sender to write a header into.
    /// A frame in a head without that much room in front (one a memory link delivered) is
    /// first moved into the buffer.
    pub(crate) fn headroom_mut(&mut self, index: usize, headroom: usize) -> &mut [u8] {
        let raw = self.start + index;
        let slot = self.slots[raw];
        match slot.place {
            Place::Head if slot.offset >= headroom => {
                &mut self.heads[raw][slot.offset - headroom..slot.offset]
            }
            Place::Head => {
                let base = raw * self.slot_size + Self::HEADROOM;
                self.buffer[base..base + slot.len]
                    .copy_from_slice(&self.heads[raw][slot.offset..slot.offset + slot.len]);
                self.slots[raw].offset = Self::HEADROOM;
                self.slots[raw].place = Place::Buffer;
                &mut self.buffer[base - headroom..base]
            }
            Place::Buffer => {
                let base = raw * self.slot_size + slot.offset;
                &mut self.buffer[base - headroom..base]
            }
            Place::Taken => panic!("frame {index} was taken from the batch"),
        }
    }

    /// Frame `index` with `headroom` bytes in front of it (a header the device wrote there
    /// through [`headroom_mut`](Self::headroom_mut); with `headroom` 0, any frame).
    pub(crate) fn frame_with_headroom(&self, index: usize, headroom: usize) -> &[u8] {
        let raw = self.start + index;
        let slot = &self.slots[raw];
        match slot.place {
            Place::Head => &self.heads[raw][slot.offset - headroom..slot.offset + slot.len],
            _ => {
                let range = self.buffer_range(raw);
                &self.buffer[range.start - headroom..range.end]
            }
        }
    }
}

/// The timestamp of frames pushed to send: one clock read per process, not per frame.
fn send_timestamp() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
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

    /// What a device does: writes `frame` into the next free slot (head, then tail) at the
    /// headroom and commits it.
    fn receive(batch: &mut FrameBatch, frame: &[u8]) {
        let at = FrameBatch::HEADROOM;
        let slot = batch.recv_slots(1, at).next().expect("a free slot");
        let in_head = frame.len().min(slot.head_len);
        slot.head.extend_from_slice(&frame[..in_head]);
        let rest = &frame[in_head..];
        slot.tail[..rest.len()].copy_from_slice(rest);
        batch.commit(at, frame.len(), FrameMeta::new(Instant::now()));
    }

    #[test]
    fn a_kept_frame_survives_the_batch_being_reused() {
        let mut batch = FrameBatch::new(2, 1514);
        receive(&mut batch, &[1; 1514]);
        receive(&mut batch, &[2; 60]);
        let kept = batch.take_frame(0);
        let dropped = batch.take_frame(1);
        drop(dropped);
        batch.clear();
        // The kept frame's head could not be taken back, the other's could.
        assert_eq!(batch.fresh_heads(), 1);
        for _ in 0..3 {
            receive(&mut batch, &[3; 1514]);
            receive(&mut batch, &[4; 1514]);
            assert_eq!(batch.frame(0), &[3; 1514][..]);
            batch.clear();
        }
        assert_eq!(kept, vec![1; 1514]);
        assert_eq!(batch.fresh_heads(), 1);
    }

    #[test]
    fn a_short_kept_frame_shares_its_head_with_no_later_frame() {
        let mut batch = FrameBatch::new(1, 1514);
        receive(&mut batch, &[1; 100]);
        let kept = batch.take_frame(0);
        batch.clear();
        // Room was left in the head behind the kept frame, but it is not reused: a later
        // frame kept too would pin the first one's head, and so on.
        assert_eq!(batch.fresh_heads(), 1);
        receive(&mut batch, &[2; 100]);
        let next = batch.take_frame(0);
        let first = kept.as_ptr_range();
        assert!(!first.contains(&next.as_ptr()) && next.as_ptr() != first.end);
        drop(kept);
        batch.clear();
        // The first head, let go, comes back from the pool for the slot.
        assert_eq!((batch.fresh_heads(), batch.reused_heads()), (1, 1));
        receive(&mut batch, &[3; 100]);
        let third = batch.take_frame(0);
        assert_eq!(third.as_ptr(), first.start);
        drop(next);
        batch.clear();
        drop(third);
        receive(&mut batch, &[4; 100]);
        batch.clear();
        assert_eq!(batch.fresh_heads(), 1);
    }

    /// The memory each held frame's head spans, to check that no later frame lies in it.
    fn overlaps(a: &Bytes, b: &Bytes) -> bool {
        let (a, b) = (a.as_ptr_range(), b.as_ptr_range());
        a.start < b.end && b.start < a.end
    }

    #[test]
    fn a_pooled_head_is_handed_out_only_once_nobody_holds_it() {
        let mut batch = FrameBatch::new(4, 1514);
        let mut held: VecDeque<Bytes> = VecDeque::new();
        // A receiver that keeps each frame for three rounds, then lets it go: a bulk
        // receiver whose application reads a little behind.
        for round in 0..200u32 {
            for slot in 0..4u8 {
                receive(&mut batch, &[slot.wrapping_add(round as u8); 1514]);
            }
            for index in 0..4 {
                let frame = batch.take_frame(index);
                for other in &held {
                    assert!(!overlaps(&frame, other), "round {round}: a head in use");
                }
                held.push_back(frame);
            }
            batch.clear();
            while held.len() > 12 {
                let frame = held.pop_front().expect("held");
                assert!(
                    frame.iter().all(|&b| b == frame[0]),
                    "a held frame overwritten"
                );
            }
        }
        // Allocated only until the pool covered the frames held at once: 16 when the batch
        // is cleared (12 from before and this round's 4) and a free head for each of the 4
        // slots, 4 of those 20 the slots' first ones. Every later slot got one from the pool.
        assert_eq!(batch.fresh_heads(), 16);
        assert_eq!(batch.reused_heads(), 200 * 4 - 16);
        assert_eq!(batch.pooled_heads(), 16);
    }

    #[test]
    fn the_pool_is_bounded_when_frames_are_held_for_ever() {
        let mut batch = FrameBatch::new(2, 1514);
        batch.set_head_pool_limit(8);
        let mut kept = Vec::new();
        for round in 0..50u8 {
            receive(&mut batch, &[round; 1000]);
            receive(&mut batch, &[round; 1000]);
            kept.push(batch.take_frame(0));
            kept.push(batch.take_frame(1));
            batch.clear();
            assert!(batch.pooled_heads() <= 8);
        }
        // Nothing was let go, so nothing could be reused: each slot got a new head.
        assert_eq!((batch.fresh_heads(), batch.reused_heads()), (100, 0));
        for (i, frame) in kept.iter().enumerate() {
            assert_eq!(frame, &vec![(i / 2) as u8; 1000]);
        }
        // Frames let go since the pool's limit let their heads go are freed by their
        // holders; those the pool still has come back.
        kept.clear();
        receive(&mut batch, &[1; 60]);
        let frame = batch.take_frame(0);
        batch.clear();
        assert_eq!(batch.reused_heads(), 1);
        drop(frame);
        batch.set_head_pool_limit(0);
        assert_eq!(batch.pooled_heads(), 0);
    }

    #[test]
    fn a_head_let_go_on_another_thread_is_reused() {
        let mut batch = FrameBatch::new(1, 1514);
        receive(&mut batch, &[7; 1514]);
        let frame = batch.take_frame(0);
        let at = frame.as_ptr();
        batch.clear();
        let reader = std::thread::spawn(move || {
            assert_eq!(frame, vec![7; 1514]);
        });
        reader.join().expect("the reader thread");
        // The slot's fresh head is kept too: the first, let go, comes back for the slot.
        receive(&mut batch, &[8; 1514]);
        let next = batch.take_frame(0);
        batch.clear();
        receive(&mut batch, &[9; 1514]);
        let third = batch.take_frame(0);
        assert_eq!(third.as_ptr(), at);
        assert_eq!(next, vec![8; 1514]);
        assert_eq!(third, vec![9; 1514]);
        assert_eq!((batch.fresh_heads(), batch.reused_heads()), (1, 1));
    }

    #[test]
    fn frames_not_kept_reuse_their_head() {
        let mut batch = FrameBatch::new(1, 1514);
        let mut seen = None;
        for round in 0..5u8 {
            receive(&mut batch, &[round; 100]);
            let frame = batch.take_frame(0);
            assert_eq!(frame, vec![round; 100]);
            // The same memory every time: handed out without a copy, taken back unshared.
            let at = frame.as_ptr();
            assert_eq!(*seen.get_or_insert(at), at);
            drop(frame);
            batch.clear();
        }
        assert_eq!(batch.fresh_heads(), 0);
    }

    #[test]
    fn super_frames_arrive_whole_and_pin_no_slot() {
        let mut batch = FrameBatch::with_head_len(2, 65_549, 1518);
        assert_eq!(batch.head_len(), 1518);
        let frame: Vec<u8> = (0..65_549u32).map(|i| (i % 251) as u8).collect();
        receive(&mut batch, &[9; 60]);
        receive(&mut batch, &frame);
        assert_eq!(batch.frame(1), &frame[..]);
        let taken = batch.take_frame(1);
        assert_eq!(taken, frame);
        // Still readable through the batch: it was copied out, not handed over.
        assert_eq!(batch.frame(1), &frame[..]);
        batch.clear();
        receive(&mut batch, &[7; 65_549]);
        receive(&mut batch, &[8; 65_549]);
        assert_eq!(taken, frame);
        assert_eq!(batch.frame(1), &[8; 65_549][..]);
    }

    #[test]
    fn holes_close_in_order() {
        let mut batch = FrameBatch::with_head_len(3, 4000, 100);
        let at = FrameBatch::HEADROOM;
        let frames = [vec![1u8; 50], vec![2u8; 3000], vec![3u8; 80]];
        let mut lens = Vec::new();
        for (slot, frame) in batch.recv_slots(3, at).zip(&frames) {
            let in_head = frame.len().min(slot.head_len);
            slot.head.extend_from_slice(&frame[..in_head]);
            slot.tail[..frame.len() - in_head].copy_from_slice(&frame[in_head..]);
            lens.push(frame.len());
        }
        // The first frame is dropped: the others move down.
        let first = batch.next_free();
        batch.move_received(first + 1, first, at + lens[1]);
        batch.commit(at, lens[1], FrameMeta::new(Instant::now()));
        batch.move_received(first + 2, first + 1, at + lens[2]);
        batch.commit(at, lens[2], FrameMeta::new(Instant::now()));
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.frame(0), &frames[1][..]);
        assert_eq!(batch.frame(1), &frames[2][..]);
    }

    #[test]
    fn owned_frames_become_heads_and_make_room_to_send() {
        let mut batch = FrameBatch::new(2, 1514);
        let free = batch
            .push_owned(
                BytesMut::from(&[5u8; 70][..]),
                FrameMeta::new(Instant::now()),
            )
            .expect("room");
        assert!(free.is_empty() && free.capacity() >= batch.head_len());
        assert_eq!(batch.frame(0), &[5; 70][..]);
        // No headroom in front of it: moved into the buffer to get some.
        batch.headroom_mut(0, 10).fill(0xee);
        assert_eq!(batch.frame_with_headroom(0, 10)[..10], [0xee; 10]);
        assert_eq!(&batch.frame_with_headroom(0, 10)[10..], &[5; 70][..]);
        assert!(batch.push_received(&[6; 40], FrameMeta::new(Instant::now())));
        assert_eq!(batch.take_frame(1), vec![6; 40]);
        assert!(batch.is_full());
        assert!(
            batch
                .push_owned(BytesMut::new(), FrameMeta::new(Instant::now()))
                .is_none()
        );
    }
}
