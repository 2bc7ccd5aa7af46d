//! A deterministic simulation of two hosts: two [`Stack`]s joined by a [`LinkModel`] each way,
//! on a virtual clock that jumps from one deadline to the next.
//!
//! It is how this crate tests itself, and it is meant for application authors too: drive
//! both ends through the `tcp_*` calls of [`Stack`], inject faults with [`LinkConfig`]
//! (random ones from a seed, or scripted [`Rule`](crate::link::Rule)s), and read back every
//! segment that crossed the link. The same seed gives the same run; hours of protocol time
//! (keepalives, TIME-WAIT) pass in microseconds of real time. Frames reach each host through
//! [`Stack::handle_frame_bytes`], as a driver hands them over; a frame's buffer goes back to
//! its link for a later frame once the host keeps no slice of it (a bounded number of kept
//! ones is watched, oldest first, as a driver's pool of receive buffers does), and frames
//! sent are written into one reused buffer: a bulk transfer allocates nothing per frame.
//!
//! # Examples
//! ```
//! use rawtcp_core::sim::Sim;
//! use rawtcp_core::{Config, Ipv4Cidr, State};
//! use rawtcp_wire::ethernet::EthernetAddress;
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use std::time::Duration;
//!
//! let host = |last: u8| Config::new(EthernetAddress([2, 0, 0, 0, 0, last]), Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24));
//! let mut sim = Sim::new(host(1), host(2));
//! let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
//! sim.b.tcp_listen(server, None).unwrap();
//! let client = sim.a.tcp_connect(sim.now, server, None).unwrap();
//! sim.run_for(Duration::from_millis(10));
//! assert_eq!(sim.a.tcp_state(client), Some(State::Established));
//! assert_eq!(sim.segments.len(), 3); // SYN, SYN-ACK, ACK
//! ```

use core::time::Duration;
use std::collections::VecDeque;

use bytes::BytesMut;
use rawtcp_wire::RxChecksum;
use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::tcp::{TcpFlags, TcpOptions};

use crate::link::{LinkConfig, LinkModel};
use crate::sink::FrameSink;
use crate::{Config, Event, Instant, Stack};

/// One TCP segment seen on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// When it was sent.
    pub at: Instant,
    /// Sent by host A.
    pub from_a: bool,
    /// Control bits.
    pub flags: TcpFlags,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Payload length.
    pub len: usize,
    /// Window field, unscaled.
    pub window: u16,
    /// Options.
    pub options: TcpOptions<'static>,
    /// Whether the link delivered it (not lost, dropped by a rule, queue or size).
    pub delivered: bool,
}

/// Two hosts and the link between them.
#[derive(Debug)]
pub struct Sim {
    /// The virtual clock.
    pub now: Instant,
    /// Host A.
    pub a: Stack,
    /// Host B.
    pub b: Stack,
    links: [LinkModel; 2],
    /// Per link, our handles to the buffers of frames the receiving host kept a slice of,
    /// oldest first: each goes back to its link once the host lets the slice go.
    kept: [VecDeque<BytesMut>; 2],
    /// Where a host writes the frames of one `poll_transmit`.
    outbox: Outbox,
    /// Every TCP segment put on the link, in order (while `trace` is on).
    pub segments: Vec<Segment>,
    /// A's events with the time they happened.
    pub events_a: Vec<(Instant, Event)>,
    /// B's events with the time they happened.
    pub events_b: Vec<(Instant, Event)>,
    /// Every frame put on the link: time, sent by A, bytes (while `trace` is on).
    pub frames: Vec<(Instant, bool, Vec<u8>)>,
    /// Keep `segments` and `frames` (turn off for bulk transfers).
    pub trace: bool,
    /// B's TCP is unreachable: TCP segments from A vanish while ARP still works (a crashed
    /// host behind a live link, a black hole).
    pub blackhole_tcp_to_b: bool,
}

impl Sim {
    /// Two hosts on a perfect link.
    pub fn new(a: Config, b: Config) -> Sim {
        let seed = a.seed;
        Sim::with_links(a, b, LinkConfig::default(), LinkConfig::default(), seed)
    }

    /// Two hosts; frames from A to B cross `a_to_b`, from B to A `b_to_a`; the links' random
    /// choices come from `seed`.
    pub fn with_links(
        a: Config,
        b: Config,
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        seed: u64,
    ) -> Sim {
        Sim {
            now: Instant::ZERO,
            a: Stack::new(a),
            b: Stack::new(b),
            links: [
                LinkModel::new(a_to_b, seed),
                LinkModel::new(b_to_a, seed ^ 0xabcd),
            ],
            kept: [VecDeque::new(), VecDeque::new()],
            outbox: Outbox::default(),
            segments: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            frames: Vec::new(),
            trace: true,
            blackhole_tcp_to_b: false,
        }
    }

    fn transmit(&mut self, from_a: bool) -> bool {
        let now = self.now;
        let stack = if from_a { &mut self.a } else { &mut self.b };
        self.outbox.clear();
        let _ = stack.poll_transmit(now, &mut self.outbox);
        let any = !self.outbox.ends.is_empty();
        let mut start = 0;
        for index in 0..self.outbox.ends.len() {
            let end = self.outbox.ends[index];
            let frame = &self.outbox.bytes[start..end];
            start = end;
            let tcp = match dissect(frame, RxChecksum::Trusted).map(|d| d.network) {
                Ok(Network::Ipv4 {
                    transport: Transport::Tcp(tcp),
                    ..
                }) => Some(tcp),
                _ => None,
            };
            let delivered = if from_a && self.blackhole_tcp_to_b && tcp.is_some() {
                false
            } else {
                let link = &mut self.links[usize::from(!from_a)];
                let before = link.stats();
                link.send(now, frame);
                let after = link.stats();
                after.lost == before.lost
                    && after.rule_dropped == before.rule_dropped
                    && after.tail_dropped == before.tail_dropped
                    && after.oversized == before.oversized
            };
            if !self.trace {
                continue;
            }
            if let Some(tcp) = tcp {
                self.segments.push(Segment {
                    at: now,
                    from_a,
                    flags: tcp.flags,
                    seq: tcp.seq_number.raw(),
                    ack: tcp.ack_number.raw(),
                    len: tcp.payload.len(),
                    window: tcp.window_len,
                    options: TcpOptions {
                        tfo_cookie: None,
                        ..tcp.options
                    },
                    delivered,
                });
            }
            self.frames.push((now, from_a, frame.to_vec()));
        }
        any
    }

    /// Hands each frame due on link `link` to its host as `Bytes` it may keep slices of, as
    /// a driver does; returns whether there was any. A buffer the host kept nothing of goes
    /// back to the link at once, a kept one when the host has let it go.
    fn deliver(&mut self, link: usize) -> bool {
        let now = self.now;
        let host = if link == 0 { &mut self.b } else { &mut self.a };
        let (model, kept) = (&mut self.links[link], &mut self.kept[link]);
        let mut any = false;
        while let Some(mut buffer) = model.recv_buffer(now) {
            any = true;
            // The frame shares the buffer's allocation with `buffer`, our handle to it.
            let frame = buffer.split().freeze();
            host.handle_frame_bytes(now, frame, RxChecksum::Verify);
            if reclaim(&mut buffer) {
                model.recycle(buffer);
            } else {
                if kept.len() >= KEPT_LIMIT {
                    // Let the oldest go: whoever holds its frame frees it.
                    kept.pop_front();
                }
                kept.push_back(buffer);
            }
            // Received data is let go in about the order it came: look at the oldest only.
            while let Some(oldest) = kept.front_mut() {
                if !reclaim(oldest) {
                    break;
                }
                if let Some(buffer) = kept.pop_front() {
                    model.recycle(buffer);
                }
            }
        }
        any
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.a.poll_event() {
            self.events_a.push((self.now, event));
        }
        while let Some(event) = self.b.poll_event() {
            self.events_b.push((self.now, event));
        }
    }

    /// Moves everything that can move at `now`: timers, transmissions, deliveries.
    ///
    /// # Panics
    /// If the two hosts keep exchanging frames within one instant (a livelock): that is a
    /// bug worth a loud failure.
    pub fn settle(&mut self) {
        for _round in 0..100_000 {
            let mut progress = false;
            for stack in [&mut self.a, &mut self.b] {
                if stack.poll_timeout().is_some_and(|t| t <= self.now) {
                    stack.handle_timeout(self.now);
                    progress = true;
                }
            }
            progress |= self.transmit(true);
            progress |= self.transmit(false);
            progress |= self.deliver(0);
            progress |= self.deliver(1);
            self.collect_events();
            if !progress {
                return;
            }
        }
        panic!(
            "livelock at {}: A {:?} B {:?}",
            self.now,
            self.a.connections(),
            self.b.connections()
        );
    }

    /// The next moment something is due: a timer of either host or a frame on the link.
    pub fn next_deadline(&self) -> Option<Instant> {
        let links = self.links.iter().filter_map(LinkModel::next_delivery);
        [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .chain(links)
            .min()
    }

    /// Runs until `until`, jumping from deadline to deadline.
    pub fn run_until(&mut self, until: Instant) {
        self.settle();
        while let Some(next) = self.next_deadline() {
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            self.settle();
        }
        self.now = self.now.max(until);
        self.settle();
    }

    /// One turn of a test that acts between events: settles, then runs to the next event,
    /// at least a microsecond on (so the loop always advances) and never past `deadline`.
    pub fn step_until(&mut self, deadline: Instant) {
        self.settle();
        let next = self
            .next_deadline()
            .unwrap_or(deadline)
            .max(self.now + Duration::from_micros(1));
        self.run_until(next.min(deadline));
    }

    /// Runs for `duration`.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until `done` holds or `limit` passes; returns whether it held.
    pub fn run_while(&mut self, limit: Duration, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let until = self.now + limit;
        self.settle();
        loop {
            if done(self) {
                return true;
            }
            match self.next_deadline() {
                Some(next) if next <= until => {
                    self.now = next.max(self.now);
                    self.settle();
                }
                _ => return done(self),
            }
        }
    }

    /// The link from A to B (its counters, its configuration).
    pub fn link_a_to_b(&self) -> &LinkModel {
        &self.links[0]
    }

    /// The link from B to A.
    pub fn link_b_to_a(&self) -> &LinkModel {
        &self.links[1]
    }

    /// The link from A to B, to change its faults mid-run.
    pub fn link_a_to_b_mut(&mut self) -> &mut LinkModel {
        &mut self.links[0]
    }

    /// The link from B to A, to change its faults mid-run.
    pub fn link_b_to_a_mut(&mut self) -> &mut LinkModel {
        &mut self.links[1]
    }
}

/// Most buffers of kept frames watched per link (about 6 MiB at MTU 1500); beyond it the
/// oldest is let go, to be freed by whoever holds its frame.
const KEPT_LIMIT: usize = 4096;

/// Makes `buffer`, our handle to what is left of a link buffer after its frame was split
/// off, empty and its whole allocation again if no slice of the frame is left (asking
/// `try_reclaim` for more room than the handle has makes it check that the handle is the
/// only one). False while the frame is still held.
fn reclaim(buffer: &mut BytesMut) -> bool {
    buffer.clear();
    let beyond_what_is_left = buffer.capacity() + 1;
    buffer.try_reclaim(beyond_what_is_left)
}

/// The frames of one `poll_transmit`, end to end in one buffer that is reused.
#[derive(Debug, Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// Where each frame ends in `bytes`.
    ends: Vec<usize>,
}

impl Outbox {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

impl FrameSink for Outbox {
    fn push(&mut self, len: usize) -> Option<&mut [u8]> {
        let start = self.bytes.len();
        self.bytes.resize(start + len, 0);
        self.ends.push(start + len);
        Some(&mut self.bytes[start..])
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use rawtcp_wire::ethernet::EthernetAddress;

    use super::*;
    use crate::Ipv4Cidr;

    fn host(last: u8) -> Config {
        Config::new(
            EthernetAddress([2, 0, 0, 0, 0, last]),
            Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24),
        )
    }

    fn byte(offset: usize) -> u8 {
        (offset % 251) as u8
    }

    /// B reads by `tcp_recv_bytes` and keeps every piece, slices of the link's buffers,
    /// while megabytes more cross the link: no buffer goes back to the link while a piece
    /// of it is held (each byte is checked at the end), and the pieces let go come back.
    #[test]
    fn a_buffer_goes_back_to_its_link_only_once_the_host_lets_it_go() {
        let mut sim = Sim::new(host(1), host(2));
        sim.trace = false;
        let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
        let listener = sim.b.tcp_listen(server, None).expect("listen");
        let client = sim.a.tcp_connect(sim.now, server, None).expect("connect");
        sim.run_for(Duration::from_millis(10));
        let accepted = sim
            .b
            .tcp_accept(listener)
            .expect("listener")
            .expect("accepted");
        let data: Vec<u8> = (0..4 << 20).map(byte).collect();
        let (mut sent, mut received) = (0, 0);
        let mut kept = Vec::new();
        let mut round = 0;
        while received < data.len() && round < 100_000 {
            round += 1;
            if let Ok(n) = sim.a.tcp_send(sim.now, client, &data[sent..]) {
                sent += n;
            }
            while let Ok(piece) = sim.b.tcp_recv_bytes(sim.now, accepted, usize::MAX) {
                if piece.is_empty() {
                    break;
                }
                // Hold the first half for good, let the second half go as it comes.
                let len = piece.len();
                if received < data.len() / 2 {
                    kept.push(piece);
                }
                received += len;
            }
            let next = sim.next_deadline().unwrap_or(sim.now);
            sim.step_until(next.max(sim.now + Duration::from_micros(1)));
        }
        assert_eq!(received, data.len());
        let mut offset = 0;
        for piece in &kept {
            assert_eq!(
                &piece[..],
                &data[offset..offset + piece.len()],
                "at {offset}"
            );
            offset += piece.len();
        }
        assert!(offset >= data.len() / 2);
        // Every buffer the first half lies in is watched still, within the limit.
        let watched = sim.kept[0].len();
        assert!(
            watched >= offset / 1460 && watched <= KEPT_LIMIT,
            "{watched}"
        );
        // Let everything go: the next frames find the buffers back with the link.
        drop(kept);
        sim.a
            .tcp_send(sim.now, client, &data[..100_000])
            .expect("send");
        sim.run_for(Duration::from_millis(100));
        let mut rest = vec![0; 200_000];
        assert_eq!(sim.b.tcp_recv(sim.now, accepted, &mut rest), Ok(100_000));
        assert!(sim.kept[0].len() < 100, "{}", sim.kept[0].len());
    }
}
