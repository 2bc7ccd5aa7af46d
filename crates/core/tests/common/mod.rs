//! Two engines joined by a simulated link (netio's fault model) on a virtual clock that jumps
//! from deadline to deadline.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use rawtcp_core::{Config, Event, Instant, Ipv4Cidr, Stack, VecSink};
use rawtcp_netio::link::{LinkConfig, LinkModel};
use rawtcp_wire::RxChecksum;
use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::ethernet::EthernetAddress;
use rawtcp_wire::tcp::{TcpFlags, TcpOptions};

pub(crate) const A_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
pub(crate) const B_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
pub(crate) const A_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
pub(crate) const B_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

pub(crate) fn config(mac: EthernetAddress, ip: Ipv4Addr, seed: u64) -> Config {
    let mut config = Config::new(mac, Ipv4Cidr::new(ip, 24));
    config.seed = seed;
    config
}

/// One TCP segment seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seg {
    pub(crate) at: Instant,
    /// Sent by A (the client side in most tests).
    pub(crate) from_a: bool,
    pub(crate) flags: TcpFlags,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) len: usize,
    pub(crate) window: u16,
    pub(crate) options: TcpOptions<'static>,
    /// Whether the link delivered it.
    pub(crate) delivered: bool,
}

pub(crate) struct Sim {
    pub(crate) now: Instant,
    base: std::time::Instant,
    pub(crate) a: Stack,
    pub(crate) b: Stack,
    links: [LinkModel; 2],
    /// Every TCP segment put on the wire, in order.
    pub(crate) segments: Vec<Seg>,
    pub(crate) events_a: Vec<(Instant, Event)>,
    pub(crate) events_b: Vec<(Instant, Event)>,
    /// Frames of A and B, oldest first, as raw bytes (for captures and byte checks).
    pub(crate) frames: Vec<(Instant, bool, Vec<u8>)>,
    /// Keep `segments` and `frames` (off for bulk transfers).
    pub(crate) trace: bool,
    /// B's TCP is gone (a black hole; its link still answers ARP): TCP segments to it vanish.
    pub(crate) b_down: bool,
}

impl Sim {
    pub(crate) fn new() -> Sim {
        Sim::with_links(LinkConfig::default(), LinkConfig::default(), 1)
    }

    pub(crate) fn with_links(a_to_b: LinkConfig, b_to_a: LinkConfig, seed: u64) -> Sim {
        Sim::with_configs(
            config(A_MAC, A_IP, seed),
            config(B_MAC, B_IP, seed.wrapping_add(1)),
            a_to_b,
            b_to_a,
            seed,
        )
    }

    pub(crate) fn with_configs(
        a: Config,
        b: Config,
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        seed: u64,
    ) -> Sim {
        Sim {
            now: Instant::ZERO,
            base: std::time::Instant::now(),
            a: Stack::new(a),
            b: Stack::new(b),
            links: [
                LinkModel::new(a_to_b, seed),
                LinkModel::new(b_to_a, seed ^ 0xabcd),
            ],
            segments: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
            frames: Vec::new(),
            trace: true,
            b_down: false,
        }
    }

    fn std_time(&self, t: Instant) -> std::time::Instant {
        self.base + Duration::from_micros(t.as_micros())
    }

    fn sim_time(&self, t: std::time::Instant) -> Instant {
        // Round up: the link schedules in nanoseconds (jitter), our clock counts microseconds,
        // and a delivery must be due at the instant we jump to.
        Instant::from_micros(t.duration_since(self.base).as_nanos().div_ceil(1000) as u64)
    }

    fn transmit(&mut self, from_a: bool) -> bool {
        let mut sink = VecSink::new();
        let now = self.now;
        let stack = if from_a { &mut self.a } else { &mut self.b };
        let _ = stack.poll_transmit(now, &mut sink);
        let any = !sink.frames.is_empty();
        let std_now = self.std_time(now);
        for frame in sink.frames {
            let is_tcp = matches!(
                dissect(&frame, RxChecksum::Trusted).map(|d| d.network),
                Ok(Network::Ipv4 {
                    transport: Transport::Tcp(_),
                    ..
                })
            );
            let delivered = if from_a && self.b_down && is_tcp {
                false
            } else {
                let link = &mut self.links[usize::from(!from_a)];
                let before = link.stats();
                link.send(std_now, &frame);
                let after = link.stats();
                after.lost == before.lost
                    && after.rule_dropped == before.rule_dropped
                    && after.tail_dropped == before.tail_dropped
                    && after.oversized == before.oversized
            };
            if !self.trace {
                continue;
            }
            if let Ok(d) = dissect(&frame, RxChecksum::Verify)
                && let Network::Ipv4 {
                    transport: Transport::Tcp(tcp),
                    ..
                } = d.network
            {
                self.segments.push(Seg {
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
            self.frames.push((now, from_a, frame));
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
    pub(crate) fn settle(&mut self) {
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            assert!(
                rounds < 100_000,
                "livelock at {}: a: {:?} b: {:?}",
                self.now,
                self.a.connections(),
                self.b.connections()
            );
            let mut progress = false;
            for stack in [&mut self.a, &mut self.b] {
                if stack.poll_timeout().is_some_and(|t| t <= self.now) {
                    stack.handle_timeout(self.now);
                    progress = true;
                }
            }
            progress |= self.transmit(true);
            progress |= self.transmit(false);
            let std_now = self.std_time(self.now);
            while let Some(frame) = self.links[0].recv(std_now) {
                self.b.handle_frame(self.now, &frame, RxChecksum::Verify);
                progress = true;
            }
            while let Some(frame) = self.links[1].recv(std_now) {
                self.a.handle_frame(self.now, &frame, RxChecksum::Verify);
                progress = true;
            }
            self.collect_events();
            if !progress {
                break;
            }
        }
    }

    /// The next moment something is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let links = self
            .links
            .iter()
            .filter_map(|l| l.next_delivery())
            .map(|t| self.sim_time(t));
        [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .chain(links)
            .min()
    }

    /// Runs until `until`, jumping from deadline to deadline.
    pub(crate) fn run_until(&mut self, until: Instant) {
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

    pub(crate) fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until `done` holds or `limit` passes; returns whether it held.
    pub(crate) fn run_while(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> bool {
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

    /// TCP segments in one direction.
    pub(crate) fn segments_from(&self, from_a: bool) -> Vec<Seg> {
        self.segments
            .iter()
            .filter(|s| s.from_a == from_a)
            .cloned()
            .collect()
    }
}

pub(crate) fn b_addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(B_IP, port)
}
