//! A simulated link, sans-IO: frames in at `now`, frames out when they are due.
//!
//! [`LinkModel`] is the one fault model of the project: [`sim`](crate::sim) runs it between
//! two engines on a virtual clock, and rawtcp-netio's `MemLink` runs it on tokio's clock.
//! Every random choice comes from the seed, so a run is reproducible.
//!
//! Faults are applied to each frame in this order: MTU (oversized frames dropped), scripted
//! [`Rule`]s, random loss, the queue limit (tail drop), corruption (one bit flipped), then
//! timing — serialisation at the rate limit, fixed delay plus uniform jitter, and a hold-back
//! for frames picked for reordering so that later frames overtake them — and finally random
//! duplication. Jitter alone can reorder frames too, as on a real path.
//!
//! Frames in flight wait in delivery order: a plain queue as long as each is due no earlier
//! than the one before (no jitter, reordering or rule delay: every frame of a fault-free
//! link), a heap for those that overtake. Frames are held in [`BytesMut`] buffers that a
//! receiver may take whole ([`LinkModel::recv_buffer`]) and hand back for reuse
//! ([`LinkModel::recycle`]), so a frame crosses the link with one copy and no allocation.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;

use bytes::BytesMut;

use crate::Instant;
use crate::random::Rng;

use rawtcp_wire::RxChecksum;
use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::ethernet;
use rawtcp_wire::tcp::TcpFlags;

/// Random choices the link needs, on top of the shared generator.
trait LinkRandom {
    fn unit(&mut self) -> f64;
    fn chance(&mut self, probability: f64) -> bool;
    fn below(&mut self, bound: u64) -> u64;
}

impl LinkRandom for Rng {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.unit() < probability
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}

/// A predicate over whole Ethernet frames.
pub type Matcher = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// What a [`Rule`] does to the frame it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Lose it.
    Drop,
    /// Deliver it twice.
    Duplicate,
    /// Deliver it this much later.
    Delay(Duration),
}

/// A scripted fault: the `nth` frame (1-based) that matches gets `action`.
///
/// # Examples
/// ```
/// use rawtcp_core::link::{Action, Rule, matches};
/// use rawtcp_wire::tcp::TcpFlags;
/// // Drop the 3rd TCP segment with FIN set.
/// let rule = Rule::new(3, matches::tcp_flags(TcpFlags::FIN), Action::Drop);
/// # let _ = rule;
/// ```
#[derive(Clone)]
pub struct Rule {
    nth: u64,
    matcher: Matcher,
    action: Action,
    seen: u64,
}

impl Rule {
    /// The `nth` (from 1) frame for which `matcher` is true gets `action`.
    pub fn new(nth: u64, matcher: Matcher, action: Action) -> Rule {
        Rule {
            nth: nth.max(1),
            matcher,
            action,
            seen: 0,
        }
    }

    /// Every frame for which `matcher` is true gets `action` (a host that is down behind a
    /// link that still answers ARP, a one-way outage).
    pub fn every(matcher: Matcher, action: Action) -> Rule {
        Rule {
            nth: 0,
            matcher,
            action,
            seen: 0,
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("nth", &self.nth)
            .field("action", &self.action)
            .field("seen", &self.seen)
            .finish()
    }
}

/// Ready-made matchers.
pub mod matches {
    use super::*;

    /// Every frame.
    pub fn any() -> Matcher {
        Arc::new(|_| true)
    }

    /// TCP segments.
    pub fn tcp() -> Matcher {
        Arc::new(|frame| tcp_flags_of(frame).is_some())
    }

    /// TCP segments with all of `flags` set.
    pub fn tcp_flags(flags: TcpFlags) -> Matcher {
        Arc::new(move |frame| tcp_flags_of(frame).is_some_and(|(f, _)| f.contains(flags)))
    }

    /// TCP segments carrying data.
    pub fn tcp_data() -> Matcher {
        Arc::new(|frame| tcp_flags_of(frame).is_some_and(|(_, len)| len > 0))
    }

    fn tcp_flags_of(frame: &[u8]) -> Option<(TcpFlags, usize)> {
        match dissect(frame, RxChecksum::Trusted).ok()?.network {
            Network::Ipv4 {
                transport: Transport::Tcp(tcp),
                ..
            } => Some((tcp.flags, tcp.payload.len())),
            _ => None,
        }
    }
}

/// The faults of one direction of a link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// IP MTU: frames longer than this plus the 14-byte Ethernet header are dropped.
    pub mtu: usize,
    /// Probability a frame is lost.
    pub loss: f64,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame is held back by [`reorder_hold`](Self::reorder_hold).
    pub reorder: f64,
    /// How long a reordered frame is held back.
    pub reorder_hold: Duration,
    /// Probability one random bit of a frame is flipped.
    pub corrupt: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `[0, jitter]`.
    pub jitter: Duration,
    /// Link rate in bytes per second; `None` is infinitely fast.
    pub rate: Option<u64>,
    /// Most frames in flight; more are tail-dropped. `None` is unbounded.
    pub queue_limit: Option<usize>,
    /// Scripted faults.
    pub rules: Vec<Rule>,
}

impl Default for LinkConfig {
    /// A perfect Ethernet link: MTU 1500, no faults, no delay.
    fn default() -> LinkConfig {
        LinkConfig {
            mtu: 1500,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_hold: Duration::from_millis(1),
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate: None,
            queue_limit: None,
            rules: Vec::new(),
        }
    }
}

/// What happened to the frames offered to a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames offered.
    pub offered: u64,
    /// Frames handed out (duplicates included).
    pub delivered: u64,
    /// Lost at random.
    pub lost: u64,
    /// Dropped by a rule.
    pub rule_dropped: u64,
    /// Dropped for exceeding the MTU.
    pub oversized: u64,
    /// Dropped at the queue limit.
    pub tail_dropped: u64,
    /// Extra copies made (at random or by a rule).
    pub duplicated: u64,
    /// Held back for reordering.
    pub reordered: u64,
    /// A bit flipped.
    pub corrupted: u64,
    /// Delayed by a rule.
    pub rule_delayed: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: Instant,
    seq: u64,
    frame: BytesMut,
}

/// Spare buffers a link keeps for frames to come, at most.
const SPARE_LIMIT: usize = 4096;

/// One direction of a simulated link.
#[derive(Debug)]
pub struct LinkModel {
    config: LinkConfig,
    rng: Rng,
    /// Frames in delivery order, each due no earlier than the one before: every frame, when
    /// nothing reorders them.
    in_order: VecDeque<Pending>,
    /// Frames due before the last one queued in `in_order` (jitter, a reorder hold-back
    /// ending sooner, a rule's delay), by time due.
    overtaking: BinaryHeap<Reverse<Pending>>,
    next_seq: u64,
    /// When the link finishes sending what it has, in nanoseconds of the caller's clock.
    busy_until_ns: u64,
    spare: Vec<BytesMut>,
    stats: LinkStats,
}

impl LinkModel {
    /// A link with `config`, its random choices drawn from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> LinkModel {
        LinkModel {
            config,
            rng: Rng::new(seed),
            in_order: VecDeque::new(),
            overtaking: BinaryHeap::new(),
            next_seq: 0,
            busy_until_ns: 0,
            spare: Vec::new(),
            stats: LinkStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The configuration, to change the faults from now on (frames in flight keep theirs).
    pub fn config_mut(&mut self) -> &mut LinkConfig {
        &mut self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Frames in flight.
    pub fn in_flight(&self) -> usize {
        self.in_order.len() + self.overtaking.len()
    }

    /// When the next frame is due, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.next_pending().map(|pending| pending.at)
    }

    /// The frame delivered next: the earlier of the two queues' fronts (by time due, then by
    /// the order sent).
    fn next_pending(&self) -> Option<&Pending> {
        match (self.in_order.front(), self.overtaking.peek()) {
            (Some(first), Some(Reverse(other))) => Some(if other < first { other } else { first }),
            (first, other) => first.or(other.map(|Reverse(pending)| pending)),
        }
    }

    fn copy_of(&mut self, frame: &[u8]) -> BytesMut {
        let mut copy = self
            .spare
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(frame.len()));
        copy.clear();
        copy.extend_from_slice(frame);
        copy
    }

    fn enqueue(&mut self, at: Instant, frame: BytesMut) {
        let pending = Pending {
            at,
            seq: self.next_seq,
            frame,
        };
        self.next_seq += 1;
        // A later sequence number and a time no earlier keep `in_order` sorted.
        if self.in_order.back().is_none_or(|last| last.at <= at) {
            self.in_order.push_back(pending);
        } else {
            self.overtaking.push(Reverse(pending));
        }
    }

    /// Offers a frame to the link at `now`.
    pub fn send(&mut self, now: Instant, frame: &[u8]) {
        self.stats.offered += 1;
        if frame.len() > self.config.mtu + ethernet::HEADER_LEN {
            self.stats.oversized += 1;
            return;
        }
        let mut copies = 1;
        let mut extra_delay = Duration::ZERO;
        for rule in &mut self.config.rules {
            if !(rule.matcher)(frame) {
                continue;
            }
            rule.seen += 1;
            if rule.nth != 0 && rule.seen != rule.nth {
                continue;
            }
            match rule.action {
                Action::Drop => {
                    self.stats.rule_dropped += 1;
                    return;
                }
                Action::Duplicate => {
                    copies += 1;
                    self.stats.duplicated += 1;
                }
                Action::Delay(delay) => {
                    extra_delay += delay;
                    self.stats.rule_delayed += 1;
                }
            }
        }
        if self.rng.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        if self
            .config
            .queue_limit
            .is_some_and(|limit| self.in_flight() >= limit)
        {
            self.stats.tail_dropped += 1;
            return;
        }
        let mut bytes = self.copy_of(frame);
        if !bytes.is_empty() && self.rng.chance(self.config.corrupt) {
            let bit = self.rng.below(bytes.len() as u64 * 8);
            bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
        }
        let departs = match self.config.rate {
            Some(rate) if rate > 0 => {
                // Serialisation in nanoseconds: a frame can take less than our clock's
                // microsecond, and the link's busy time must still add up.
                let now_ns = now.as_micros().saturating_mul(1000);
                let start = self.busy_until_ns.max(now_ns);
                let done =
                    start.saturating_add((bytes.len() as u64).saturating_mul(1_000_000_000) / rate);
                self.busy_until_ns = done;
                Instant::from_micros(done.div_ceil(1000))
            }
            _ => now,
        };
        let jitter =
            Duration::from_micros(self.rng.below(self.config.jitter.as_micros() as u64 + 1));
        let mut at = departs + self.config.delay + jitter + extra_delay;
        if self.rng.chance(self.config.reorder) {
            at += self.config.reorder_hold;
            self.stats.reordered += 1;
        }
        if self.rng.chance(self.config.duplicate) {
            copies += 1;
            self.stats.duplicated += 1;
        }
        for _ in 1..copies {
            let copy = self.copy_of(&bytes);
            self.enqueue(at, copy);
        }
        self.enqueue(at, bytes);
    }

    /// Copies the next frame due by `now` into `out` and returns its length; `None` when
    /// nothing is due. A frame longer than `out` is cut to fit.
    pub fn recv_into(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let frame = self.recv_buffer(now)?;
        let len = frame.len().min(out.len());
        out[..len].copy_from_slice(&frame[..len]);
        self.recycle(frame);
        Some(len)
    }

    /// Takes the next frame due by `now`.
    pub fn recv(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.recv_buffer(now).map(Vec::from)
    }

    /// Takes the next frame due by `now` in the buffer the link held it in; hand the buffer
    /// (or any other) back with [`recycle`](Self::recycle) for a later frame.
    pub fn recv_buffer(&mut self, now: Instant) -> Option<BytesMut> {
        if self.next_delivery()? > now {
            return None;
        }
        let from_in_order = match (self.in_order.front(), self.overtaking.peek()) {
            (Some(first), Some(Reverse(other))) => first < other,
            (first, _) => first.is_some(),
        };
        let pending = if from_in_order {
            self.in_order.pop_front()?
        } else {
            self.overtaking.pop()?.0
        };
        self.stats.delivered += 1;
        Some(pending.frame)
    }

    /// Gives the link a buffer to carry a later frame in (one taken with
    /// [`recv_buffer`](Self::recv_buffer), or a receiver's free one): no allocation per frame.
    pub fn recycle(&mut self, mut buffer: BytesMut) {
        if self.spare.len() < SPARE_LIMIT {
            buffer.clear();
            self.spare.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(model: &mut LinkModel, count: usize, len: usize, now: Instant) {
        for i in 0..count {
            let mut frame = vec![0u8; len];
            frame[..8].copy_from_slice(&(i as u64).to_be_bytes());
            model.send(now, &frame);
        }
    }

    fn drain(model: &mut LinkModel, now: Instant) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| model.recv(now)).collect()
    }

    #[test]
    fn perfect_link_keeps_order() {
        let now = Instant::ZERO;
        let mut model = LinkModel::new(LinkConfig::default(), 1);
        frames(&mut model, 100, 60, now);
        let out = drain(&mut model, now);
        assert_eq!(out.len(), 100);
        for (i, frame) in out.iter().enumerate() {
            assert_eq!(frame[..8], (i as u64).to_be_bytes());
        }
    }

    #[test]
    fn fault_rates_match_configuration() {
        let now = Instant::ZERO;
        let config = LinkConfig {
            loss: 0.1,
            duplicate: 0.05,
            corrupt: 0.02,
            reorder: 0.03,
            ..LinkConfig::default()
        };
        let mut model = LinkModel::new(config, 7);
        let n = 100_000;
        frames(&mut model, n, 100, now);
        let stats = model.stats();
        let near = |count: u64, rate: f64, of: usize| {
            let expected = rate * of as f64;
            (count as f64 - expected).abs() < 5.0 * expected.sqrt() + 1.0
        };
        assert!(near(stats.lost, 0.1, n), "{stats:?}");
        let survivors = n - stats.lost as usize;
        assert!(near(stats.duplicated, 0.05, survivors), "{stats:?}");
        assert!(near(stats.corrupted, 0.02, survivors), "{stats:?}");
        assert!(near(stats.reordered, 0.03, survivors), "{stats:?}");
        let delivered = drain(&mut model, now + Duration::from_secs(1)).len();
        assert_eq!(delivered as u64, survivors as u64 + stats.duplicated);
    }

    #[test]
    fn same_seed_same_sequence() {
        let run = |seed| {
            let now = Instant::ZERO;
            let config = LinkConfig {
                loss: 0.3,
                corrupt: 0.3,
                jitter: Duration::from_millis(5),
                ..LinkConfig::default()
            };
            let mut model = LinkModel::new(config, seed);
            frames(&mut model, 1000, 64, now);
            drain(&mut model, now + Duration::from_secs(1))
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn scripted_rule_hits_exactly_the_nth_match() {
        let now = Instant::ZERO;
        // Frames whose first byte is odd match; drop the 3rd of those.
        let odd: Matcher = Arc::new(|frame: &[u8]| frame[7] % 2 == 1);
        let config = LinkConfig {
            rules: vec![Rule::new(3, odd, Action::Drop)],
            ..LinkConfig::default()
        };
        let mut model = LinkModel::new(config, 1);
        frames(&mut model, 20, 60, now);
        let out: Vec<u64> = drain(&mut model, now)
            .iter()
            .map(|f| u64::from_be_bytes(f[..8].try_into().unwrap()))
            .collect();
        let expected: Vec<u64> = (0..20).filter(|&i| i != 5).collect();
        assert_eq!(out, expected);
        assert_eq!(model.stats().rule_dropped, 1);
    }

    #[test]
    fn delay_rate_mtu_and_queue_limit() {
        let now = Instant::ZERO;
        let config = LinkConfig {
            mtu: 100,
            delay: Duration::from_millis(10),
            rate: Some(1_000_000),
            queue_limit: Some(3),
            ..LinkConfig::default()
        };
        let mut model = LinkModel::new(config, 1);
        model.send(now, &[0u8; 115]);
        assert_eq!(model.stats().oversized, 1);
        frames(&mut model, 5, 100, now);
        assert_eq!(model.stats().tail_dropped, 2);
        // 100 bytes at 1 MB/s take 100 µs each, then 10 ms of delay.
        assert_eq!(
            model.next_delivery(),
            Some(now + Duration::from_micros(100) + Duration::from_millis(10))
        );
        assert!(model.recv(now + Duration::from_millis(10)).is_none());
        assert_eq!(
            drain(&mut model, now + Duration::from_micros(10_300)).len(),
            3
        );
    }

    #[test]
    fn frames_leave_in_time_order_then_sending_order() {
        // Jitter and reordering mix the in-order queue with overtaking frames; a fault-free
        // stretch in between uses the queue alone. Every frame must leave by (time due,
        // order sent), as one heap would have it.
        let config = LinkConfig {
            jitter: Duration::from_micros(300),
            reorder: 0.2,
            reorder_hold: Duration::from_micros(500),
            ..LinkConfig::default()
        };
        let mut model = LinkModel::new(config, 3);
        let mut sent = 0u64;
        let mut send = |model: &mut LinkModel, now: Instant, count: u64| {
            for _ in 0..count {
                model.send(now, &sent.to_be_bytes());
                sent += 1;
            }
        };
        let mut now = Instant::ZERO;
        for step in 0..200u64 {
            if step == 100 {
                *model.config_mut() = LinkConfig::default();
            }
            send(&mut model, now, step % 4);
            now += Duration::from_micros(50);
        }
        let mut last: Option<(Instant, u64)> = None;
        let mut delivered = 0;
        while let Some(due) = model.next_delivery() {
            let frame = model.recv(due).expect("due");
            let id = u64::from_be_bytes(frame[..8].try_into().unwrap());
            if let Some((last_due, last_id)) = last {
                assert!(due > last_due || (due == last_due && id > last_id));
            }
            last = Some((due, id));
            delivered += 1;
        }
        assert_eq!(delivered, sent);
        assert_eq!(model.in_flight(), 0);
    }
}
