//! Addresses and constructors for tests on the public simulation ([`rawtcp_core::sim`]).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};

use std::time::Duration;

use rawtcp_core::link::LinkConfig;
use rawtcp_core::{Config, ConnectionId, Event, Ipv4Cidr, State, TcpError};
use rawtcp_wire::ethernet::EthernetAddress;

pub(crate) use rawtcp_core::sim::{Segment as Seg, Sim};

pub(crate) const A_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
pub(crate) const B_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
pub(crate) const A_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
pub(crate) const B_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

pub(crate) fn config(mac: EthernetAddress, ip: Ipv4Addr, seed: u64) -> Config {
    let mut config = Config::new(mac, Ipv4Cidr::new(ip, 24));
    config.seed = seed;
    config
}

/// A (10.9.0.1) and B (10.9.0.2) on a perfect link.
pub(crate) fn sim() -> Sim {
    sim_with_links(LinkConfig::default(), LinkConfig::default(), 1)
}

/// A and B on links with faults.
pub(crate) fn sim_with_links(a_to_b: LinkConfig, b_to_a: LinkConfig, seed: u64) -> Sim {
    Sim::with_links(
        config(A_MAC, A_IP, seed),
        config(B_MAC, B_IP, seed.wrapping_add(1)),
        a_to_b,
        b_to_a,
        seed,
    )
}

pub(crate) fn b_addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(B_IP, port)
}

/// TCP segments in one direction.
pub(crate) fn segments_from(sim: &Sim, from_a: bool) -> Vec<Seg> {
    sim.segments
        .iter()
        .filter(|s| s.from_a == from_a)
        .cloned()
        .collect()
}

/// A listener on `listen` at B and a connection to it from A, both established; returns
/// (client, server). Allows for a lossy link.
pub(crate) fn connected_on(sim: &mut Sim, listen: SocketAddrV4) -> (ConnectionId, ConnectionId) {
    let listener = sim.b.tcp_listen(listen, None).unwrap();
    let client = sim
        .a
        .tcp_connect(sim.now, b_addr(listen.port()), Some(49152))
        .unwrap();
    assert!(sim.run_while(Duration::from_secs(120), |s| {
        s.a.tcp_state(client) == Some(State::Established)
            && s.events_b
                .iter()
                .any(|(_, e)| *e == Event::Acceptable(listener))
    }));
    let server = sim
        .b
        .tcp_accept(listener)
        .unwrap()
        .expect("a connection to accept");
    (client, server)
}

/// Streams `data` from A to B through the application calls and returns what B read.
pub(crate) fn transfer(
    sim: &mut Sim,
    client: ConnectionId,
    server: ConnectionId,
    data: &[u8],
    limit: Duration,
) -> Vec<u8> {
    let mut sent = 0;
    let mut received = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = sim.now + limit;
    while received.len() < data.len() && sim.now < deadline {
        pump(
            sim,
            client,
            server,
            data,
            &mut sent,
            &mut received,
            &mut buf,
        );
        let next = sim
            .next_deadline()
            .unwrap_or(sim.now + Duration::from_millis(1));
        sim.run_until(next.max(sim.now + Duration::from_micros(1)).min(deadline));
    }
    received
}

/// One step of a transfer from A to B at the current instant: A writes as much of
/// `data[*sent..]` as fits, B reads everything readable into `received` (through `buf`).
pub(crate) fn pump(
    sim: &mut Sim,
    client: ConnectionId,
    server: ConnectionId,
    data: &[u8],
    sent: &mut usize,
    received: &mut Vec<u8>,
    buf: &mut [u8],
) {
    while *sent < data.len() {
        match sim.a.tcp_send(sim.now, client, &data[*sent..]) {
            Ok(n) => *sent += n,
            Err(TcpError::WouldBlock) => break,
            Err(error) => panic!("send: {error:?}"),
        }
    }
    loop {
        match sim.b.tcp_recv(sim.now, server, buf) {
            Ok(0) | Err(TcpError::WouldBlock) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) => panic!("recv: {error:?}"),
        }
    }
}

/// A host's link and network addresses, for forged frames.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Host {
    pub(crate) mac: EthernetAddress,
    pub(crate) ip: Ipv4Addr,
}

pub(crate) const HOST_A: Host = Host {
    mac: A_MAC,
    ip: A_IP,
};
pub(crate) const HOST_B: Host = Host {
    mac: B_MAC,
    ip: B_IP,
};

/// An Ethernet frame carrying `payload` of `protocol` from `src` to `dst`.
pub(crate) fn ipv4_frame(
    src: Host,
    dst: Host,
    protocol: rawtcp_wire::ipv4::IpProtocol,
    payload_len: usize,
    write: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    use rawtcp_wire::ethernet::{EtherType, EthernetRepr, Frame};
    use rawtcp_wire::ipv4::{self, Ipv4Repr};
    let ip = Ipv4Repr {
        ident: 1,
        ..Ipv4Repr::new(src.ip, dst.ip, protocol, payload_len)
    };
    let mut frame = vec![0u8; 34 + payload_len];
    EthernetRepr {
        src_addr: src.mac,
        dst_addr: dst.mac,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut Frame::new_unchecked(&mut frame[..]));
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[14..]));
    write(&mut frame[34..]);
    frame
}

/// A forged TCP segment from `src` to `dst`.
pub(crate) fn tcp_frame(src: Host, dst: Host, segment: &rawtcp_wire::tcp::TcpRepr<'_>) -> Vec<u8> {
    use rawtcp_wire::tcp;
    ipv4_frame(
        src,
        dst,
        rawtcp_wire::ipv4::IpProtocol::Tcp,
        segment.buffer_len(),
        |out| {
            segment.emit(
                &mut tcp::Packet::new_unchecked(out),
                src.ip,
                dst.ip,
                rawtcp_wire::TxChecksum::Full,
            )
        },
    )
}

/// An ICMP destination unreachable from `src` to `dst` quoting `quoted_datagram` (an IPv4
/// datagram `dst` sent: its header and the first 8 bytes after it).
pub(crate) fn icmp_unreachable_frame(
    src: Host,
    dst: Host,
    reason: rawtcp_wire::icmpv4::DstUnreachable,
    next_hop_mtu: u16,
    quoted_datagram: &[u8],
) -> Vec<u8> {
    use rawtcp_wire::icmpv4::{self, Icmpv4Repr};
    use rawtcp_wire::ipv4::Ipv4Repr;
    let (header, rest) = Ipv4Repr::parse_quoted(quoted_datagram).expect("a datagram to quote");
    let icmp = Icmpv4Repr::DstUnreachable {
        reason,
        next_hop_mtu,
        header,
        data: &rest[..8],
    };
    ipv4_frame(
        src,
        dst,
        rawtcp_wire::ipv4::IpProtocol::Icmp,
        icmp.buffer_len(),
        |out| icmp.emit(&mut icmpv4::Packet::new_unchecked(out)),
    )
}

// ---- Playing a peer by hand (or a crowd of spoofed ones): ARP, and reading back ----

use rawtcp_core::{Instant, Stack, VecSink};
use rawtcp_wire::arp::{self, ArpRepr, Operation};
use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::ethernet::{EtherType, EthernetRepr, Frame};
use rawtcp_wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use rawtcp_wire::{RxChecksum, SeqNum};

/// An ARP request from `src` for `target`: the stack learns the sender from it.
pub(crate) fn arp_request(src: Host, target: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: src.mac,
        source_protocol_addr: src.ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let mut frame = vec![0u8; 14 + 28];
    EthernetRepr {
        src_addr: src.mac,
        dst_addr: EthernetAddress::BROADCAST,
        vlan_tci: None,
        ethertype: EtherType::Arp,
    }
    .emit(&mut Frame::new_unchecked(&mut frame[..]));
    repr.emit(&mut arp::Packet::new_unchecked(&mut frame[14..]));
    frame
}

/// A segment as a test reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) dst: Ipv4Addr,
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) flags: TcpFlags,
    pub(crate) seq: SeqNum,
    pub(crate) ack: SeqNum,
    pub(crate) window: u16,
    pub(crate) options: TcpOptions<'static>,
    pub(crate) payload: Vec<u8>,
}

/// The TCP segments `stack` sends now.
pub(crate) fn sent_segments(stack: &mut Stack, now: Instant) -> Vec<Sent> {
    let mut sink = VecSink::new();
    let _ = stack.poll_transmit(now, &mut sink);
    sink.frames
        .iter()
        .filter_map(
            |frame| match dissect(frame, RxChecksum::Verify).ok()?.network {
                Network::Ipv4 {
                    header,
                    transport: Transport::Tcp(seg),
                } => Some(Sent {
                    dst: header.dst_addr,
                    src_port: seg.src_port,
                    dst_port: seg.dst_port,
                    flags: seg.flags,
                    seq: seg.seq_number,
                    ack: seg.ack_number,
                    window: seg.window_len,
                    options: TcpOptions {
                        tfo_cookie: None,
                        ..seg.options
                    },
                    payload: seg.payload.to_vec(),
                }),
                _ => None,
            },
        )
        .collect()
}

/// A segment from `src_port` to `dst_port` with these fields and no options.
pub(crate) fn segment<'a>(
    src_port: u16,
    dst_port: u16,
    flags: TcpFlags,
    seq: SeqNum,
    ack: SeqNum,
    payload: &'a [u8],
) -> TcpRepr<'a> {
    TcpRepr {
        src_port,
        dst_port,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 65535,
        urgent_pointer: 0,
        options: TcpOptions::default(),
        payload,
    }
}
