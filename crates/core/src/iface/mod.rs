//! The interface layer: Ethernet in and out, ARP, IPv4 validation and reassembly, ICMP, and
//! the answers RFC 9293 requires for segments that reach no connection.
//!
//! Input runs in [`Interface::handle_frame`]; anything to send in reply is queued as a whole
//! IPv4 datagram and written out by [`Interface::poll_transmit`], which resolves each next hop
//! through ARP first (holding datagrams, boundedly, while a request is outstanding).

mod arp;
pub(crate) mod conflict;
pub(crate) mod ratelimit;
mod reassembly;
pub(crate) mod stats;

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use bytes::Bytes;

use rawtcp_wire::arp::{self as arp_wire, ArpRepr, Operation};
use rawtcp_wire::ethernet::{self, EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp_wire::icmpv4::{self, DstUnreachable, Icmpv4Repr, TimeExceeded};
use rawtcp_wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
use rawtcp_wire::{Error as WireError, RxChecksum, SeqNum, TxChecksum};

use crate::config::Config;
use crate::sink::FrameSink;
use crate::tcp::{IcmpErrorKind, IcmpOutcome, Tcp};
use crate::{Event, Instant};
use arp::{ArpTable, Queued};
use conflict::{AddressState, Broadcast, Detector, Progress, Verdict};
use ratelimit::{ChallengeAckBudget, TokenBucket};
use reassembly::{Fragment, FragmentKey, Reassembly};
use stats::{DropReason, InterfaceStats};

/// Datagrams queued for sending at most (replies made while handling input).
const OUTBOX_LIMIT: usize = 256;
/// ARP replies queued at most.
const ARP_REPLY_LIMIT: usize = 64;
/// Largest ICMP error message (RFC 1812 §4.3.2.3: the error plus as much of the offending
/// datagram as fits in 576 bytes).
const ICMP_ERROR_MAX: usize = 576;

/// What became of a datagram handed to [`Interface::send_ipv4`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Written into the sink.
    Written,
    /// Held until ARP resolves the next hop.
    Queued,
    /// The sink had no room: nothing happened; try again later.
    SinkFull,
    /// Dropped (no route, or the ARP queue was full).
    Dropped,
}

/// A datagram ready to go, waiting for its link-layer header.
#[derive(Debug)]
struct Outgoing {
    next_hop: Ipv4Addr,
    datagram: Vec<u8>,
}

/// Facts about a received datagram that decide whether it may be answered with an ICMP error
/// (RFC 1122 §3.2.2).
#[derive(Debug, Clone, Copy)]
struct Received<'a> {
    header: Ipv4Repr<'a>,
    /// The datagram's header and payload as received (for quoting).
    raw: &'a [u8],
    header_len: usize,
    link_broadcast: bool,
    first_fragment: bool,
}

#[derive(Debug)]
pub(crate) struct Interface {
    mac: EthernetAddress,
    address: Ipv4Addr,
    cidr: crate::Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
    mtu: usize,
    ttl: u8,
    /// ICMP errors we may send (RFC 1812 §4.3.2.8).
    icmp_errors: TokenBucket,
    /// RSTs we may send for segments that reach no connection.
    resets: TokenBucket,
    /// Challenge ACKs the host may send (RFC 5961 §7).
    challenge_acks: ChallengeAckBudget,
    next_ident: u16,
    arp: ArpTable,
    arp_replies: VecDeque<ArpRepr>,
    /// RFC 5227 address conflict detection for `address`.
    detector: Detector,
    reassembly: Reassembly,
    outbox: VecDeque<Outgoing>,
    /// When the ARP resolution limit was last logged.
    resolution_limit_logged: Option<Instant>,
    pub(crate) stats: InterfaceStats,
}

impl Interface {
    /// `detector_seed` drives the random delays of address probing, `challenge_seed` the
    /// challenge-ACK budget.
    pub(crate) fn new(
        config: &Config,
        ident_seed: u16,
        detector_seed: u64,
        challenge_seed: u64,
    ) -> Interface {
        Interface {
            mac: config.mac,
            address: config.ipv4.address,
            cidr: config.ipv4,
            gateway: config.gateway,
            mtu: config.mtu,
            ttl: config.ttl,
            icmp_errors: TokenBucket::new(config.icmp_error_rate, config.icmp_error_burst),
            resets: TokenBucket::new(config.reset_rate, config.reset_burst),
            challenge_acks: ChallengeAckBudget::new(config.tcp.challenge_ack_limit, challenge_seed),
            next_ident: ident_seed,
            arp: ArpTable::new(config.arp.clone()),
            arp_replies: VecDeque::new(),
            detector: Detector::new(config.conflict_detection.clone(), detector_seed),
            reassembly: Reassembly::new(config.reassembly.clone()),
            outbox: VecDeque::new(),
            resolution_limit_logged: None,
            stats: InterfaceStats::default(),
        }
    }

    fn is_broadcast(&self, address: Ipv4Addr) -> bool {
        address == Ipv4Addr::BROADCAST
            || (address == self.cidr.broadcast() && self.cidr.prefix_len < 31)
    }

    /// RFC 1122 §3.2.1.3: a source that cannot be a single host.
    fn is_martian(&self, address: Ipv4Addr) -> bool {
        address.is_unspecified()
            || address.is_loopback()
            || address.is_multicast()
            || self.is_broadcast(address)
    }

    /// Handles one received Ethernet frame, `bytes`; `shared` is the same frame when the
    /// driver shares it (TCP payload in it is then kept as a slice, not copied).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_frame(
        &mut self,
        now: Instant,
        bytes: &[u8],
        shared: Option<&Bytes>,
        checksum: RxChecksum,
        tcp: &mut Tcp,
        events: &mut VecDeque<Event>,
    ) {
        self.stats.rx_frames += 1;
        let Ok(frame) = Frame::new_checked(bytes) else {
            self.stats.drop(DropReason::EthernetMalformed);
            return;
        };
        let dst = frame.dst_addr();
        if dst != self.mac && !dst.is_broadcast() {
            self.stats.drop(DropReason::NotForUs);
            return;
        }
        match frame.ethertype() {
            EtherType::Arp => self.handle_arp(now, frame.payload(), events),
            EtherType::Ipv4 => self.handle_ipv4(
                now,
                frame.payload(),
                shared,
                dst.is_broadcast(),
                checksum,
                tcp,
            ),
            _ => self.stats.drop(DropReason::UnsupportedEtherType),
        }
    }

    /// Whether our address is ours to use (RFC 5227: probed, or detection off).
    pub(crate) fn address_state(&self) -> AddressState {
        self.detector.state()
    }

    /// RFC 826, "Packet Reception", with the merge rule; before it, RFC 5227's checks for
    /// packets that claim our address or probe for it.
    fn handle_arp(&mut self, now: Instant, payload: &[u8], events: &mut VecDeque<Event>) {
        let Ok(arp) = arp_wire::Packet::new_checked(payload).and_then(|p| ArpRepr::parse(&p))
        else {
            self.stats.drop(DropReason::ArpMalformed);
            return;
        };
        let sender = arp.source_protocol_addr;
        if !arp.source_hardware_addr.is_unicast() {
            self.stats.drop(DropReason::ArpMalformed);
            return;
        }
        let for_us = arp.target_protocol_addr == self.address;
        if sender == self.address || (sender.is_unspecified() && for_us) {
            let address = self.address;
            match self.detector.check(now, &arp) {
                Verdict::NoConflict => {}
                Verdict::Lost { by } => {
                    events.push_back(Event::AddressInUse { address, by });
                    return;
                }
                Verdict::Conflict { by, defended } => {
                    // RFC 5227 §2.4: counted and reported; neither learned nor answered (the
                    // defence, if any, is a broadcast announcement).
                    self.stats.address_conflicts += 1;
                    events.push_back(Event::AddressConflict {
                        address,
                        by,
                        defended,
                    });
                    return;
                }
            }
        }
        if for_us && !self.detector.claimed() {
            // RFC 5227 §2.1: not ours yet (or someone else's): do not answer for it.
            self.stats.drop(DropReason::AddressUnclaimed);
            return;
        }
        if sender.is_unspecified() {
            // An ARP Probe (RFC 5227 §2.1.1) teaches no mapping; one for our address is
            // answered like any request (RFC 826), which tells the prober it is taken.
            if for_us && arp.operation == Operation::Request {
                self.queue_arp_reply(&arp);
            } else {
                self.stats.drop(DropReason::ArpNotForUs);
            }
            return;
        }
        if self.is_martian(sender) {
            self.stats.drop(DropReason::ArpMalformed);
            return;
        }
        // Merge: refresh a mapping we hold whoever the packet is for; add one only when the
        // packet is addressed to us.
        if for_us || self.arp.knows(sender) {
            let released = self.arp.learn(now, sender, arp.source_hardware_addr);
            self.outbox
                .extend(released.into_iter().map(|datagram| Outgoing {
                    next_hop: sender,
                    datagram,
                }));
        }
        if !for_us {
            self.stats.drop(DropReason::ArpNotForUs);
            return;
        }
        if arp.operation == Operation::Request {
            self.queue_arp_reply(&arp);
        }
    }

    /// RFC 826: "swap fields", our MAC and address as the sender, the opcode reply.
    fn queue_arp_reply(&mut self, request: &ArpRepr) {
        if self.arp_replies.len() < ARP_REPLY_LIMIT {
            self.arp_replies.push_back(ArpRepr {
                operation: Operation::Reply,
                source_hardware_addr: self.mac,
                source_protocol_addr: self.address,
                target_hardware_addr: request.source_hardware_addr,
                target_protocol_addr: request.source_protocol_addr,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_ipv4(
        &mut self,
        now: Instant,
        payload: &[u8],
        shared: Option<&Bytes>,
        link_broadcast: bool,
        checksum: RxChecksum,
        tcp: &mut Tcp,
    ) {
        let packet = match ipv4::Packet::new_checked(payload) {
            Ok(packet) => packet,
            Err(_) => return self.stats.drop(DropReason::Ipv4Malformed),
        };
        // The IPv4 header checksum is always complete, offloads or not: verify it.
        let header = match Ipv4Repr::parse(&packet, RxChecksum::Verify) {
            Ok(header) => header,
            Err(WireError::Checksum) => return self.stats.drop(DropReason::Ipv4Checksum),
            Err(WireError::Malformed) => return self.stats.drop(DropReason::FragmentMalformed),
            Err(_) => return self.stats.drop(DropReason::Ipv4Malformed),
        };
        if header.dst_addr != self.address && !self.is_broadcast(header.dst_addr) {
            return self.stats.drop(DropReason::NotOurAddress);
        }
        if !self.detector.claimed() {
            // RFC 5227 §2.1: an address being probed (or lost) is not used, not even to
            // answer.
            return self.stats.drop(DropReason::AddressUnclaimed);
        }
        if self.is_martian(header.src_addr) {
            return self.stats.drop(DropReason::MartianSource);
        }
        let raw = &payload[..usize::from(packet.total_len())];
        let header_len = packet.header_len();
        if header.more_frags || header.frag_offset != 0 {
            let fragment = Fragment {
                key: FragmentKey {
                    src: header.src_addr,
                    dst: header.dst_addr,
                    protocol: header.protocol.into(),
                    ident: header.ident,
                },
                offset: usize::from(header.frag_offset),
                more: header.more_frags,
                payload: packet.payload(),
                raw,
                header_len,
            };
            match self.reassembly.insert(now, fragment) {
                Ok(None) => {}
                Ok(Some(data)) => {
                    self.stats.reassembled += 1;
                    let whole = Ipv4Repr {
                        payload_len: data.len(),
                        more_frags: false,
                        frag_offset: 0,
                        options: &[],
                        ..header
                    };
                    // The device's checksum status was about single frames: verify. The
                    // datagram was copied together from several frames: nothing to share.
                    let received = Received {
                        header: whole,
                        raw,
                        header_len,
                        link_broadcast,
                        first_fragment: true,
                    };
                    self.handle_transport(now, received, &data, None, RxChecksum::Verify, tcp);
                }
                Err(reason) => self.stats.drop(reason),
            }
            return;
        }
        let received = Received {
            header,
            raw,
            header_len,
            link_broadcast,
            first_fragment: true,
        };
        self.handle_transport(now, received, packet.payload(), shared, checksum, tcp);
    }

    /// `payload` lies in `shared`, when there is one.
    fn handle_transport(
        &mut self,
        now: Instant,
        received: Received<'_>,
        payload: &[u8],
        shared: Option<&Bytes>,
        checksum: RxChecksum,
        tcp: &mut Tcp,
    ) {
        let header = received.header;
        let to_broadcast = received.link_broadcast || self.is_broadcast(header.dst_addr);
        match header.protocol {
            IpProtocol::Icmp => self.handle_icmp(now, header, payload, to_broadcast, checksum, tcp),
            IpProtocol::Tcp => {
                let segment = match tcp::Packet::new_checked(payload) {
                    Ok(segment) => segment,
                    Err(_) => return self.stats.drop(DropReason::TcpMalformed),
                };
                let repr =
                    match TcpRepr::parse(&segment, header.src_addr, header.dst_addr, checksum) {
                        Ok(repr) => repr,
                        Err(WireError::Checksum) => {
                            return self.stats.drop(DropReason::TcpChecksum);
                        }
                        Err(_) => return self.stats.drop(DropReason::TcpMalformed),
                    };
                if to_broadcast {
                    return self.stats.drop(DropReason::TcpToBroadcast);
                }
                let suppressed = self.challenge_acks.suppressed;
                let taken = tcp.handle_segment(
                    now,
                    header.src_addr,
                    header.dst_addr,
                    &repr,
                    shared,
                    &mut self.challenge_acks,
                );
                self.stats.drop_n(
                    DropReason::ChallengeAckRateLimited,
                    self.challenge_acks.suppressed - suppressed,
                );
                // No connection and no listener takes the segment: RFC 9293 §3.5.2, group 1.
                if !taken {
                    self.send_reset(now, header.src_addr, &repr);
                }
                // Segments TCP answers without a connection (SYN cookies' SYN-ACKs).
                while let Some(reply) = tcp.take_reply() {
                    self.queue_tcp(reply.dst, &reply.repr);
                }
            }
            IpProtocol::Udp => self.send_icmp_error(now, received, DstUnreachable::PortUnreachable),
            IpProtocol::Unknown(_) => {
                self.send_icmp_error(now, received, DstUnreachable::ProtoUnreachable)
            }
        }
    }

    fn handle_icmp(
        &mut self,
        now: Instant,
        header: Ipv4Repr<'_>,
        payload: &[u8],
        to_broadcast: bool,
        checksum: RxChecksum,
        tcp: &mut Tcp,
    ) {
        let packet = match icmpv4::Packet::new_checked(payload) {
            Ok(packet) => packet,
            Err(_) => return self.stats.drop(DropReason::IcmpMalformed),
        };
        let repr = match Icmpv4Repr::parse(&packet, checksum) {
            Ok(repr) => repr,
            Err(WireError::Checksum) => return self.stats.drop(DropReason::IcmpChecksum),
            Err(WireError::Unsupported) => return self.stats.drop(DropReason::IcmpUnsupported),
            Err(_) => return self.stats.drop(DropReason::IcmpMalformed),
        };
        match repr {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                if to_broadcast {
                    return self.stats.drop(DropReason::EchoToBroadcast);
                }
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                if ipv4::HEADER_LEN + reply.buffer_len() > self.mtu {
                    return self.stats.drop(DropReason::EchoTooLong);
                }
                self.stats.echo_replies += 1;
                self.queue_datagram(
                    header.src_addr,
                    IpProtocol::Icmp,
                    reply.buffer_len(),
                    |out| {
                        reply.emit(&mut icmpv4::Packet::new_unchecked(out));
                    },
                );
            }
            // Errors go to the connection they quote (RFC 9293 §3.10.7, RFC 5927).
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header: quoted,
                data,
            } => {
                let kind = match reason {
                    DstUnreachable::PortUnreachable | DstUnreachable::ProtoUnreachable => {
                        IcmpErrorKind::Refused
                    }
                    // RFC 1191 §5: a router that predates it sends no MTU; assume the
                    // smallest plateau that every IPv4 path carries.
                    DstUnreachable::FragRequired => {
                        IcmpErrorKind::FragmentationNeeded(if next_hop_mtu == 0 {
                            576
                        } else {
                            next_hop_mtu
                        })
                    }
                    _ => IcmpErrorKind::Unreachable,
                };
                self.icmp_to_tcp(now, quoted, data, kind, tcp);
            }
            Icmpv4Repr::TimeExceeded {
                header: quoted,
                data,
                ..
            } => self.icmp_to_tcp(now, quoted, data, IcmpErrorKind::Unreachable, tcp),
            Icmpv4Repr::EchoReply { .. } => self.stats.drop(DropReason::IcmpUnsupported),
        }
    }

    /// Hands an ICMP error to the TCP connection its quote names.
    fn icmp_to_tcp(
        &mut self,
        now: Instant,
        quoted: Ipv4Repr<'_>,
        data: &[u8],
        kind: IcmpErrorKind,
        tcp: &mut Tcp,
    ) {
        if quoted.protocol != IpProtocol::Tcp || quoted.src_addr != self.address || data.len() < 8 {
            return self.stats.drop(DropReason::IcmpUnmatched);
        }
        let local =
            std::net::SocketAddrV4::new(quoted.src_addr, u16::from_be_bytes([data[0], data[1]]));
        let remote =
            std::net::SocketAddrV4::new(quoted.dst_addr, u16::from_be_bytes([data[2], data[3]]));
        let seq = SeqNum::new(u32::from_be_bytes([data[4], data[5], data[6], data[7]]));
        match tcp.handle_icmp_error(now, local, remote, seq, kind) {
            IcmpOutcome::Taken => {}
            IcmpOutcome::Unmatched => self.stats.drop(DropReason::IcmpUnmatched),
            IcmpOutcome::NotInFlight => self.stats.drop(DropReason::IcmpNotInFlight),
        }
    }

    /// RFC 9293 §3.5.2, reset generation when no connection exists: a segment with RST is
    /// dropped; one with ACK gets <SEQ=SEG.ACK><CTL=RST>; any other gets
    /// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    /// Within the host's RST rate limit: the source of such a segment may be spoofed, and
    /// an unlimited answer would make us a reflector.
    fn send_reset(&mut self, now: Instant, peer: Ipv4Addr, segment: &TcpRepr<'_>) {
        if segment.flags.rst() {
            return;
        }
        if !self.resets.take(now) {
            return self.stats.drop(DropReason::ResetRateLimited);
        }
        let (seq_number, ack_number, flags) = if segment.flags.ack() {
            (segment.ack_number, SeqNum::new(0), TcpFlags::RST)
        } else {
            (
                SeqNum::new(0),
                segment.seq_number + segment.segment_len(),
                TcpFlags::RST | TcpFlags::ACK,
            )
        };
        let reset = TcpRepr {
            src_port: segment.dst_port,
            dst_port: segment.src_port,
            seq_number,
            ack_number,
            flags,
            window_len: 0,
            urgent_pointer: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        self.stats.resets += 1;
        self.queue_tcp(peer, &reset);
    }

    /// A datagram dropped at [`ArpConfig::max_resolving`](crate::ArpConfig::max_resolving):
    /// counted, and logged at most once per [`LIMIT_LOG_INTERVAL`](crate::LIMIT_LOG_INTERVAL).
    fn resolution_limit(&mut self, now: Instant) {
        self.stats.drop(DropReason::NeighborResolutionLimit);
        if self
            .resolution_limit_logged
            .is_none_or(|at| now - at >= crate::LIMIT_LOG_INTERVAL)
        {
            self.resolution_limit_logged = Some(now);
            tracing::warn!(
                resolving = self.arp.resolving(),
                "ARP resolution limit reached: dropping datagrams for unresolved addresses"
            );
        }
    }

    /// Queues a TCP segment from us to `peer`.
    fn queue_tcp(&mut self, peer: Ipv4Addr, segment: &TcpRepr<'_>) {
        let (src, dst) = (self.address, peer);
        self.queue_datagram(peer, IpProtocol::Tcp, segment.buffer_len(), |out| {
            segment.emit(
                &mut tcp::Packet::new_unchecked(out),
                src,
                dst,
                TxChecksum::Full,
            );
        });
    }

    /// Answers a datagram with destination unreachable, unless RFC 1122 §3.2.2 forbids it: not
    /// for broadcasts (link or IP), non-initial fragments, or sources that are not a host.
    fn send_icmp_error(&mut self, now: Instant, received: Received<'_>, reason: DstUnreachable) {
        let header = received.header;
        if received.link_broadcast
            || self.is_broadcast(header.dst_addr)
            || !received.first_fragment
            || self.is_martian(header.src_addr)
        {
            return;
        }
        self.send_icmp(
            now,
            received.raw,
            received.header_len,
            header.src_addr,
            |quoted, data| Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu: 0,
                header: quoted,
                data,
            },
        );
    }

    /// Builds and queues an ICMP error quoting `raw` (an IPv4 header of `header_len` bytes
    /// and what followed it) to `dst`, within the rate limit and 576 bytes.
    fn send_icmp<'q>(
        &mut self,
        now: Instant,
        raw: &'q [u8],
        header_len: usize,
        dst: Ipv4Addr,
        build: impl FnOnce(Ipv4Repr<'q>, &'q [u8]) -> Icmpv4Repr<'q>,
    ) {
        if !self.icmp_errors.take(now) {
            return self.stats.drop(DropReason::IcmpRateLimited);
        }
        let Ok((quoted, rest)) = Ipv4Repr::parse_quoted(raw) else {
            return;
        };
        let room = ICMP_ERROR_MAX - ipv4::HEADER_LEN - icmpv4::HEADER_LEN - header_len;
        let message = build(quoted, &rest[..rest.len().min(room)]);
        self.stats.icmp_errors += 1;
        self.queue_datagram(dst, IpProtocol::Icmp, message.buffer_len(), |out| {
            message.emit(&mut icmpv4::Packet::new_unchecked(out));
        });
    }

    /// The next hop towards `dst`: itself on the subnet, else the gateway.
    fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.cidr.contains(dst) {
            Some(dst)
        } else {
            self.gateway
        }
    }

    /// The header of a datagram from us, taking the next identification.
    fn header(
        &mut self,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
    ) -> Ipv4Repr<'static> {
        let ident = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        Ipv4Repr {
            src_addr: self.address,
            dst_addr: dst,
            protocol,
            payload_len,
            ttl: self.ttl,
            dscp: 0,
            ecn: 0,
            ident,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: &[],
        }
    }

    /// A whole datagram from us to `dst` in a new buffer, its payload filled by `write`.
    fn build_datagram(
        &mut self,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Vec<u8> {
        let header = self.header(dst, protocol, payload_len);
        let mut datagram = vec![0u8; header.header_len() + payload_len];
        header.emit(&mut ipv4::Packet::new_unchecked(&mut datagram[..]));
        write(&mut datagram[header.header_len()..]);
        datagram
    }

    /// Builds a datagram from us to `dst` whose payload `write` fills, and queues it.
    fn queue_datagram(
        &mut self,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
        write: impl FnOnce(&mut [u8]),
    ) {
        let Some(next_hop) = self.next_hop(dst) else {
            return self.stats.drop(DropReason::NoRoute);
        };
        if self.outbox.len() >= OUTBOX_LIMIT {
            return self.stats.drop(DropReason::TransmitQueueFull);
        }
        let datagram = self.build_datagram(dst, protocol, payload_len, write);
        self.outbox.push_back(Outgoing { next_hop, datagram });
    }

    /// Whether a datagram to `dst` would go out now rather than wait for ARP (a super-segment
    /// for the device to cut cannot wait in the neighbor queue: it exceeds the MTU).
    pub(crate) fn next_hop_known(&mut self, now: Instant, dst: Ipv4Addr) -> bool {
        self.next_hop(dst)
            .is_some_and(|hop| self.arp.lookup(now, hop).is_some())
    }

    /// Writes a datagram from us to `dst` straight into `sink` when the next hop's MAC is
    /// known, or holds it for ARP; `write` fills the payload either way. `gso` is
    /// `(segment_size, transport header length)` for a TCP super-segment the device is to
    /// cut (see [`FrameSink::push_gso`]); the caller checked [`Interface::next_hop_known`]
    /// for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_ipv4(
        &mut self,
        now: Instant,
        sink: &mut dyn FrameSink,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
        gso: Option<(u16, u16)>,
        write: impl FnOnce(&mut [u8]),
    ) -> Sent {
        let Some(next_hop) = self.next_hop(dst) else {
            self.stats.drop(DropReason::NoRoute);
            return Sent::Dropped;
        };
        let Some(mac) = self.arp.lookup(now, next_hop) else {
            let datagram = self.build_datagram(dst, protocol, payload_len, write);
            match self.arp.wait(now, next_hop, datagram) {
                Queued::Waiting => return Sent::Queued,
                Queued::QueueFull => self.stats.drop(DropReason::NeighborQueueFull),
                Queued::ResolutionLimit => self.resolution_limit(now),
            }
            return Sent::Dropped;
        };
        let len = ethernet::HEADER_LEN + ipv4::HEADER_LEN + payload_len;
        let out = match gso {
            None => sink.push(len),
            Some((segment_size, transport_header)) => sink.push_gso(
                len,
                segment_size,
                (ethernet::HEADER_LEN + ipv4::HEADER_LEN) as u16 + transport_header,
            ),
        };
        let Some(out) = out else {
            return Sent::SinkFull;
        };
        let header = self.header(dst, protocol, payload_len);
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: mac,
            vlan_tci: None,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut Frame::new_unchecked(&mut *out));
        let ip = &mut out[ethernet::HEADER_LEN..];
        header.emit(&mut ipv4::Packet::new_unchecked(&mut *ip));
        write(&mut ip[header.header_len()..]);
        self.stats.tx_frames += 1;
        Sent::Written
    }

    /// Writes queued frames into `sink`: ARP replies, then datagrams whose next hop is known
    /// (the others wait for ARP), then due ARP requests. Returns how many frames were written.
    pub(crate) fn poll_transmit(&mut self, now: Instant, sink: &mut dyn FrameSink) -> usize {
        let mut written = 0;
        if let Some(broadcast) = self.detector.pending() {
            let arp = match broadcast {
                Broadcast::Probe => ArpRepr::probe(self.mac, self.address),
                Broadcast::Announcement => ArpRepr::announcement(self.mac, self.address),
            };
            if !self.emit_arp(sink, &arp, EthernetAddress::BROADCAST) {
                return written;
            }
            self.detector.sent();
            match broadcast {
                Broadcast::Probe => self.stats.arp_probes += 1,
                Broadcast::Announcement => self.stats.arp_announcements += 1,
            }
            written += 1;
        }
        while let Some(reply) = self.arp_replies.front() {
            let reply = *reply;
            if !self.emit_arp(sink, &reply, reply.target_hardware_addr) {
                self.stats.tx_frames += written as u64;
                return written;
            }
            self.arp_replies.pop_front();
            written += 1;
        }
        while let Some(outgoing) = self.outbox.pop_front() {
            match self.arp.lookup(now, outgoing.next_hop) {
                Some(mac) => {
                    let Some(out) = sink.push(ethernet::HEADER_LEN + outgoing.datagram.len())
                    else {
                        self.outbox.push_front(outgoing);
                        break;
                    };
                    let ethernet = EthernetRepr {
                        src_addr: self.mac,
                        dst_addr: mac,
                        vlan_tci: None,
                        ethertype: EtherType::Ipv4,
                    };
                    ethernet.emit(&mut Frame::new_unchecked(&mut *out));
                    out[ethernet::HEADER_LEN..].copy_from_slice(&outgoing.datagram);
                    written += 1;
                }
                None => match self.arp.wait(now, outgoing.next_hop, outgoing.datagram) {
                    Queued::Waiting => {}
                    Queued::QueueFull => self.stats.drop(DropReason::NeighborQueueFull),
                    Queued::ResolutionLimit => self.resolution_limit(now),
                },
            }
        }
        for target in self.arp.take_due_requests(now) {
            let request = ArpRepr {
                operation: Operation::Request,
                source_hardware_addr: self.mac,
                source_protocol_addr: self.address,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: target,
            };
            // A full sink loses this request; the retry timer sends the next one.
            if !self.emit_arp(sink, &request, EthernetAddress::BROADCAST) {
                continue;
            }
            self.stats.arp_requests += 1;
            written += 1;
        }
        self.stats.tx_frames += written as u64;
        written
    }

    /// Writes one ARP packet from us to `dst` into `sink`; false when the sink is full.
    fn emit_arp(&self, sink: &mut dyn FrameSink, arp: &ArpRepr, dst: EthernetAddress) -> bool {
        let ethernet = EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst,
            vlan_tci: None,
            ethertype: EtherType::Arp,
        };
        let Some(out) = sink.push(ethernet::HEADER_LEN + arp.buffer_len()) else {
            return false;
        };
        ethernet.emit(&mut Frame::new_unchecked(&mut *out));
        arp.emit(&mut arp_wire::Packet::new_unchecked(
            &mut out[ethernet::HEADER_LEN..],
        ));
        true
    }

    /// Whether `poll_transmit` has something to write now.
    pub(crate) fn wants_transmit(&self) -> bool {
        self.detector.pending().is_some()
            || !self.arp_replies.is_empty()
            || !self.outbox.is_empty()
            || self.arp.has_due_requests()
    }

    /// ARP retries and give-ups, cache expiry, reassembly timeouts.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        events: &mut VecDeque<Event>,
        tcp: &mut Tcp,
    ) {
        if self.detector.poll_timeout().is_some_and(|at| at <= now)
            && self.detector.handle_timeout(now) == Progress::Claimed
        {
            events.push_back(Event::AddressClaimed {
                address: self.address,
            });
        }
        for (address, dropped) in self.arp.handle_timeout(now) {
            self.stats
                .drop_n(DropReason::NeighborUnreachable, dropped as u64);
            events.push_back(Event::NeighborUnreachable { address });
            tcp.neighbor_unreachable(now, address, |dst| self.next_hop(dst));
        }
        let (expired, count) = self.reassembly.handle_timeout(now);
        self.stats.drop_n(DropReason::FragmentTimeout, count as u64);
        for datagram in expired {
            // RFC 792: time exceeded, code 1, when fragment zero arrived.
            let Ok((quoted, _)) = Ipv4Repr::parse_quoted(&datagram.first) else {
                continue;
            };
            let (src, header_len) = (quoted.src_addr, quoted.header_len());
            if self.is_martian(src) {
                continue;
            }
            self.send_icmp(now, &datagram.first, header_len, src, |header, data| {
                Icmpv4Repr::TimeExceeded {
                    reason: TimeExceeded::FragExpired,
                    header,
                    data,
                }
            });
        }
    }

    /// The earliest interface deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.detector.poll_timeout(),
            self.arp.poll_timeout(),
            self.reassembly.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
