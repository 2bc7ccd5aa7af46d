//! Two connected in-memory ends: a link between two stacks in one process, no privileges.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use rawtcp_wire::ethernet;

use crate::batch::{ChecksumStatus, FrameBatch, FrameMeta};
use crate::{Capabilities, Device};
use rawtcp_core::Instant;
use rawtcp_core::link::{LinkConfig, LinkModel, LinkStats};

/// The largest IPv4 datagram: what a link with offloads carries in one frame.
const SUPER_FRAME_MTU: usize = u16::MAX as usize;

#[derive(Debug)]
struct Direction {
    model: LinkModel,
    /// The receiving end's task, waiting for a frame.
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Shared {
    /// Index 0 carries frames from end A to end B, index 1 from B to A.
    directions: [Direction; 2],
}

/// Builds connected pairs of [`MemLinkEnd`]s.
#[derive(Debug)]
pub struct MemLink;

impl MemLink {
    /// Two ends joined by a perfect link (MTU 1500, no faults).
    ///
    /// # Examples
    /// ```
    /// use rawtcp_core::Instant;
    /// use rawtcp_netio::{FrameBatch, MemLink};
    ///
    /// let (mut a, mut b) = MemLink::pair();
    /// let now = Instant::ZERO;
    /// let mut out = FrameBatch::new(8, 1514);
    /// out.push_frame(&[0xab; 60]);
    /// a.send_at(now, &mut out);
    /// let mut inbox = FrameBatch::new(8, 1514);
    /// assert_eq!(b.recv_at(now, &mut inbox), 1);
    /// assert_eq!(inbox.frame(0), &[0xab; 60]);
    /// ```
    pub fn pair() -> (MemLinkEnd, MemLinkEnd) {
        Self::with_faults(LinkConfig::default(), LinkConfig::default(), 0)
    }

    /// Two ends joined by a perfect link (MTU 1500, no faults) whose devices offload as a
    /// kernel's loopback does, or a veth with its offloads on: a stack sends TCP
    /// super-segments of up to 64 KiB ([`Capabilities::gso`]) with only the pseudo-header
    /// sum in their checksum field ([`Capabilities::tx_checksum_offload`]), and the link
    /// hands each frame whole to the other end, marked [`ChecksumStatus::Partial`]: built in
    /// this process, it crossed no wire and is not verified. The segments a stack cuts its
    /// data into are still the MTU's (the super-segment stands for them, as GRO's does).
    ///
    /// There is no faulty form: a fault model acts on frames, and one lost or corrupted
    /// super-segment is not what a path does to the segments it stands for.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_netio::{ChecksumStatus, Device, FrameBatch, MemLink};
    ///
    /// let (mut a, mut b) = MemLink::pair_with_offloads();
    /// assert!(a.capabilities().gso && a.capabilities().tx_checksum_offload);
    /// assert_eq!(a.capabilities().mtu, 1500);
    /// let mut out = FrameBatch::new(8, 65_549);
    /// out.push_frame(&[0xab; 9_000]);
    /// a.send_at(rawtcp_core::Instant::ZERO, &mut out);
    /// let mut inbox = FrameBatch::new(8, 65_549);
    /// assert_eq!(b.recv_at(rawtcp_core::Instant::ZERO, &mut inbox), 1);
    /// assert_eq!(inbox.frame(0).len(), 9_000);
    /// assert_eq!(inbox.meta(0).checksum, ChecksumStatus::Partial);
    /// ```
    pub fn pair_with_offloads() -> (MemLinkEnd, MemLinkEnd) {
        // The model only has to carry super-frames.
        let carrier = LinkConfig {
            mtu: SUPER_FRAME_MTU,
            ..LinkConfig::default()
        };
        let (mut a, mut b) = Self::with_faults(carrier.clone(), carrier, 0);
        let mtu = LinkConfig::default().mtu;
        for end in [&mut a, &mut b] {
            end.mtu = mtu;
            end.offloads = true;
        }
        (a, b)
    }

    /// Two ends: frames from A to B go through `a_to_b`, from B to A through `b_to_a`; the
    /// random faults of both directions are drawn from `seed`.
    pub fn with_faults(
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        seed: u64,
    ) -> (MemLinkEnd, MemLinkEnd) {
        let mtus = [a_to_b.mtu, b_to_a.mtu];
        let shared = Arc::new(Mutex::new(Shared {
            directions: [
                Direction {
                    model: LinkModel::new(a_to_b, seed),
                    waker: None,
                },
                Direction {
                    model: LinkModel::new(b_to_a, seed ^ 0x5555_5555_5555_5555),
                    waker: None,
                },
            ],
        }));
        let end = |side: usize| MemLinkEnd {
            shared: Arc::clone(&shared),
            side,
            mtu: mtus[side].min(mtus[1 - side]),
            offloads: false,
            sleep: None,
        };
        (end(0), end(1))
    }
}

/// One end of a [`MemLink`].
///
/// As a [`Device`] it reads tokio's clock, so `tokio::time::pause()` drives its delays. The
/// `*_at` methods take the time instead, for a virtual clock.
#[derive(Debug)]
pub struct MemLinkEnd {
    shared: Arc<Mutex<Shared>>,
    side: usize,
    mtu: usize,
    /// Built by [`MemLink::pair_with_offloads`].
    offloads: bool,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The link's shared state, locked. A panic while holding the lock leaves only plain queues
/// behind: keep going.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemLinkEnd {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// Offers every frame of `batch` to the link at `now` and empties the batch. Returns how
    /// many were offered (the link's faults decide what arrives).
    pub fn send_at(&mut self, now: Instant, batch: &mut FrameBatch) -> usize {
        let count = batch.len();
        let mut shared = self.lock();
        let direction = &mut shared.directions[self.side];
        for (frame, _) in batch.iter() {
            direction.model.send(now, frame);
        }
        if count > 0
            && let Some(waker) = direction.waker.take()
        {
            waker.wake();
        }
        drop(shared);
        batch.clear();
        count
    }

    /// Moves the frames due by `now` into `batch`, up to its free slots. Each frame moves as
    /// the buffer the link holds it in, which becomes its slot's head (no copy); the slot's
    /// free head goes back to the link to carry a later frame.
    pub fn recv_at(&mut self, now: Instant, batch: &mut FrameBatch) -> usize {
        let mut shared = self.lock();
        let model = &mut shared.directions[1 - self.side].model;
        let mut got = 0;
        let mut meta = FrameMeta::new(std::time::Instant::now());
        if self.offloads {
            meta.checksum = ChecksumStatus::Partial;
        }
        while batch.free() > 0 {
            let Some(frame) = model.recv_buffer(now) else {
                break;
            };
            if let Some(free) = batch.push_owned(frame, meta) {
                model.recycle(free);
            }
            got += 1;
        }
        got
    }

    /// When the next frame for this end is due, if any is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.lock().directions[1 - self.side].model.next_delivery()
    }

    /// Counters of the direction this end sends on.
    pub fn send_stats(&self) -> LinkStats {
        stats(&self.shared, self.side)
    }

    /// Counters of the direction this end receives on.
    pub fn recv_stats(&self) -> LinkStats {
        stats(&self.shared, 1 - self.side)
    }

    /// A handle that reads this end's counters after the end itself has moved into a stack.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_core::Instant;
    /// use rawtcp_netio::{FrameBatch, MemLink};
    ///
    /// let (mut a, _b) = MemLink::pair();
    /// let counters = a.counters();
    /// let mut out = FrameBatch::new(8, 1514);
    /// out.push_frame(&[0xab; 60]);
    /// a.send_at(Instant::ZERO, &mut out);
    /// drop(a);
    /// assert_eq!(counters.send_stats().offered, 1);
    /// ```
    pub fn counters(&self) -> MemLinkCounters {
        MemLinkCounters {
            shared: Arc::clone(&self.shared),
            side: self.side,
        }
    }
}

/// The counters of `direction` (0 from end A to end B, 1 back).
fn stats(shared: &Mutex<Shared>, direction: usize) -> LinkStats {
    lock(shared).directions[direction].model.stats()
}

/// The counters of one [`MemLinkEnd`], readable from anywhere ([`MemLinkEnd::counters`]).
#[derive(Debug, Clone)]
pub struct MemLinkCounters {
    shared: Arc<Mutex<Shared>>,
    side: usize,
}

impl MemLinkCounters {
    /// Counters of the direction the end sends on.
    pub fn send_stats(&self) -> LinkStats {
        stats(&self.shared, self.side)
    }

    /// Counters of the direction the end receives on.
    pub fn recv_stats(&self) -> LinkStats {
        stats(&self.shared, 1 - self.side)
    }
}

/// The moment the engine's clock (rawtcp_core::Instant) counts from, for every MemLink in the
/// process: tokio's clock at first use, so a paused runtime's timers line up with it.
fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| tokio::time::Instant::now().into_std())
}

/// Tokio's clock (paused or not) as the engine's.
fn tokio_now() -> Instant {
    let now = tokio::time::Instant::now().into_std();
    Instant::from_micros(now.saturating_duration_since(epoch()).as_micros() as u64)
}

fn to_tokio(at: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(epoch() + std::time::Duration::from_micros(at.as_micros()))
}

impl Device for MemLinkEnd {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: self.mtu,
            max_frame_len: if self.offloads {
                SUPER_FRAME_MTU + ethernet::HEADER_LEN
            } else {
                self.mtu + ethernet::HEADER_LEN
            },
            tx_checksum_offload: self.offloads,
            gso: self.offloads,
            shared_link: false,
        }
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        Ok(self.recv_at(tokio_now(), batch))
    }

    fn send(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        Ok(self.send_at(tokio_now(), batch))
    }

    fn poll_recv_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let now = tokio_now();
        let next = {
            let mut shared = self.lock();
            let direction = &mut shared.directions[1 - self.side];
            match direction.model.next_delivery() {
                Some(at) if at <= now => return Poll::Ready(Ok(())),
                next => {
                    direction.waker = Some(cx.waker().clone());
                    next
                }
            }
        };
        // A frame in flight: wake when it is due, even if no new frame is sent meanwhile.
        match next {
            Some(at) => {
                let deadline = to_tokio(at);
                match &mut self.sleep {
                    Some(sleep) => sleep.as_mut().reset(deadline),
                    None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                let sleep = self.sleep.as_mut().expect("set just above");
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Ok(())),
                    Poll::Pending => Poll::Pending,
                }
            }
            None => Poll::Pending,
        }
    }

    fn poll_send_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The link accepts every frame; its queue limit, if any, drops at the tail.
        Poll::Ready(Ok(()))
    }

    fn recv_pending(&self) -> Option<bool> {
        let now = tokio_now();
        let shared = self.lock();
        let next = shared.directions[1 - self.side].model.next_delivery();
        Some(next.is_some_and(|at| at <= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn delayed_frames_wake_the_receiver_on_tokio_time() {
        let config = LinkConfig {
            delay: Duration::from_millis(50),
            ..LinkConfig::default()
        };
        let (mut a, mut b) = MemLink::with_faults(config, LinkConfig::default(), 1);
        let mut out = FrameBatch::new(4, 1514);
        out.push_frame(&[7; 64]);
        a.send(&mut out).unwrap();
        let start = tokio::time::Instant::now();
        std::future::poll_fn(|cx| b.poll_recv_ready(cx))
            .await
            .unwrap();
        // Virtual time: the delay exactly, or up to the next tick of tokio's millisecond
        // timer wheel when the frame went out between two ticks.
        let waited = start.elapsed();
        assert!(
            (Duration::from_millis(50)..=Duration::from_millis(51)).contains(&waited),
            "{waited:?}"
        );
        let mut inbox = FrameBatch::new(4, 1514);
        assert_eq!(b.recv(&mut inbox).unwrap(), 1);
        assert_eq!(inbox.frame(0), &[7; 64]);
    }

    #[tokio::test]
    async fn a_sender_wakes_a_waiting_receiver() {
        let (mut a, mut b) = MemLink::pair();
        let waiter = tokio::spawn(async move {
            std::future::poll_fn(|cx| b.poll_recv_ready(cx))
                .await
                .unwrap();
            let mut inbox = FrameBatch::new(4, 1514);
            b.recv(&mut inbox).unwrap()
        });
        tokio::task::yield_now().await;
        let mut out = FrameBatch::new(4, 1514);
        out.push_frame(&[1; 60]);
        out.push_frame(&[2; 60]);
        a.send(&mut out).unwrap();
        assert_eq!(waiter.await.unwrap(), 2);
    }

    #[test]
    fn frames_cross_in_circulating_buffers() {
        let (mut a, mut b) = MemLink::pair();
        let now = Instant::ZERO;
        let mut out = FrameBatch::new(8, 1514);
        let mut inbox = FrameBatch::new(8, 1514);
        let mut kept = Vec::new();
        for round in 0..100u32 {
            for i in 0..8u32 {
                let id = round * 8 + i;
                out.push_frame(&[&id.to_be_bytes()[..], &[0xab; 1510][..]].concat());
            }
            a.send_at(now, &mut out);
            assert_eq!(b.recv_at(now, &mut inbox), 8);
            for i in 0..8 {
                let frame = inbox.take_frame(i);
                assert_eq!(frame[..4], (round * 8 + i as u32).to_be_bytes());
                if round == 50 && i == 3 {
                    kept.push(frame);
                }
            }
            inbox.clear();
        }
        // Only the frame kept needed a head to replace it.
        assert_eq!(inbox.fresh_heads(), 1);
        assert_eq!(kept[0][..4], 403u32.to_be_bytes());
    }
}
