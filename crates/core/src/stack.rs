//! The engine object: one host's network stack.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use rawtcp_wire::RxChecksum;

use crate::config::Config;
use crate::iface::Interface;
use crate::iface::stats::InterfaceStats;
use crate::random::Rng;
use crate::sink::FrameSink;
use crate::{Instant, Ipv4Cidr};

/// Something that happened in the stack, for the application or its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A next hop did not answer ARP: the datagrams waiting for it were dropped.
    NeighborUnreachable {
        /// The address that did not answer.
        address: Ipv4Addr,
    },
}

/// A TCP/IPv4 host, sans-IO.
///
/// # Examples
/// ```
/// use rawtcp_core::{Config, Instant, Ipv4Cidr, Stack, VecSink};
/// use rawtcp_wire::ethernet::EthernetAddress;
/// use rawtcp_wire::RxChecksum;
/// use std::net::Ipv4Addr;
///
/// let config = Config::new(EthernetAddress([2, 0, 0, 0, 0, 2]), Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, 2), 24));
/// let mut stack = Stack::new(config);
/// stack.handle_frame(Instant::ZERO, &[0u8; 10], RxChecksum::Verify); // garbage: counted and dropped
/// let mut sink = VecSink::new();
/// assert_eq!(stack.poll_transmit(Instant::ZERO, &mut sink), 0);
/// assert_eq!(stack.stats().rx_frames, 1);
/// ```
#[derive(Debug)]
pub struct Stack {
    config: Config,
    iface: Interface,
    events: VecDeque<Event>,
}

impl Stack {
    /// A stack with `config`.
    pub fn new(config: Config) -> Stack {
        let mut rng = Rng::new(config.seed);
        let iface = Interface::new(&config, rng.next_u64() as u16);
        Stack {
            config,
            iface,
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Our address and subnet.
    pub fn ipv4(&self) -> Ipv4Cidr {
        self.config.ipv4
    }

    /// Handles one received Ethernet frame. `checksum` is what the device says about its
    /// transport checksum ([`RxChecksum::Trusted`] when the kernel verified it or left it
    /// unfinished). Call [`poll_transmit`](Self::poll_transmit) afterwards.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], checksum: RxChecksum) {
        self.iface.handle_frame(now, frame, checksum);
    }

    /// Writes the frames due now into `sink`; returns how many. Call it after
    /// `handle_frame`, `handle_timeout` or an application call, until it writes nothing or
    /// the sink is full.
    #[must_use = "frames written to the sink must be sent"]
    pub fn poll_transmit(&mut self, now: Instant, sink: &mut dyn FrameSink) -> usize {
        self.iface.poll_transmit(now, sink)
    }

    /// Whether `poll_transmit` would write something now.
    #[must_use]
    pub fn wants_transmit(&self) -> bool {
        self.iface.wants_transmit()
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.iface.poll_timeout()
    }

    /// Runs every timer due by `now`. Call it when `poll_timeout`'s deadline has passed, then
    /// `poll_transmit`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.iface.handle_timeout(now, &mut self.events);
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Interface counters, drops by reason included.
    pub fn stats(&self) -> &InterfaceStats {
        &self.iface.stats
    }
}
