//! The interface layer on a virtual clock: ARP, ICMP, reassembly, resets, drops.

use std::net::Ipv4Addr;
use std::time::Duration;

use proptest::prelude::*;
use rawtcp_core::{Config, DropReason, Event, Instant, Ipv4Cidr, Stack, VecSink};
use rawtcp_wire::RxChecksum;
use rawtcp_wire::arp::{self, ArpRepr, Operation};
use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp_wire::icmpv4::{self, DstUnreachable, Icmpv4Repr, TimeExceeded};
use rawtcp_wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
use rawtcp_wire::{SeqNum, TxChecksum};

const OUR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

fn stack() -> Stack {
    Stack::new(Config::new(OUR_MAC, Ipv4Cidr::new(OUR_IP, 24)))
}

fn ethernet(dst: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: dst,
        vlan_tci: None,
        ethertype,
    };
    let mut frame = vec![0u8; 14 + payload.len()];
    repr.emit(&mut Frame::new_unchecked(&mut frame[..]));
    frame[14..].copy_from_slice(payload);
    frame
}

fn arp_frame(operation: Operation, target_ip: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr {
        operation,
        source_hardware_addr: PEER_MAC,
        source_protocol_addr: PEER_IP,
        target_hardware_addr: if operation == Operation::Reply {
            OUR_MAC
        } else {
            EthernetAddress([0; 6])
        },
        target_protocol_addr: target_ip,
    };
    let mut bytes = [0u8; 28];
    repr.emit(&mut arp::Packet::new_unchecked(&mut bytes[..]));
    let dst = if operation == Operation::Request {
        EthernetAddress::BROADCAST
    } else {
        OUR_MAC
    };
    ethernet(dst, EtherType::Arp, &bytes)
}

fn ip_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    payload_len: usize,
) -> Ipv4Repr<'static> {
    Ipv4Repr {
        ident: 0x4242,
        dont_frag: false,
        ..Ipv4Repr::new(src, dst, protocol, payload_len)
    }
}

fn ip_frame(header: Ipv4Repr<'_>, payload: &[u8]) -> Vec<u8> {
    let mut datagram = vec![0u8; 20 + payload.len()];
    header.emit(&mut ipv4::Packet::new_unchecked(&mut datagram[..]));
    datagram[20..].copy_from_slice(payload);
    ethernet(OUR_MAC, EtherType::Ipv4, &datagram)
}

fn echo_request(data: &[u8]) -> Vec<u8> {
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 7,
        seq_no: 1,
        data,
    };
    let mut bytes = vec![0u8; icmp.buffer_len()];
    icmp.emit(&mut icmpv4::Packet::new_unchecked(&mut bytes[..]));
    bytes
}

fn tcp_segment(flags: TcpFlags, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: SeqNum::new(seq),
        ack_number: SeqNum::new(ack),
        flags,
        window_len: 1000,
        urgent_pointer: 0,
        options: TcpOptions::default(),
        payload,
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut tcp::Packet::new_unchecked(&mut bytes[..]),
        PEER_IP,
        OUR_IP,
        TxChecksum::Full,
    );
    bytes
}

fn transmit(stack: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut sink = VecSink::new();
    let _ = stack.poll_transmit(now, &mut sink);
    sink.frames
}

fn learn_peer(stack: &mut Stack) {
    stack.handle_frame(
        Instant::ZERO,
        &arp_frame(Operation::Request, OUR_IP),
        RxChecksum::Verify,
    );
    assert_eq!(transmit(stack, Instant::ZERO).len(), 1, "the ARP reply");
}

#[test]
fn answers_arp_for_our_address_only() {
    let mut stack = stack();
    stack.handle_frame(
        Instant::ZERO,
        &arp_frame(Operation::Request, OUR_IP),
        RxChecksum::Verify,
    );
    let frames = transmit(&mut stack, Instant::ZERO);
    assert_eq!(frames.len(), 1);
    let reply = dissect(&frames[0], RxChecksum::Verify).unwrap();
    assert_eq!(
        (reply.ethernet.src_addr, reply.ethernet.dst_addr),
        (OUR_MAC, PEER_MAC)
    );
    assert_eq!(
        reply.network,
        Network::Arp(ArpRepr {
            operation: Operation::Reply,
            source_hardware_addr: OUR_MAC,
            source_protocol_addr: OUR_IP,
            target_hardware_addr: PEER_MAC,
            target_protocol_addr: PEER_IP,
        })
    );
    stack.handle_frame(
        Instant::ZERO,
        &arp_frame(Operation::Request, Ipv4Addr::new(10, 9, 0, 77)),
        RxChecksum::Verify,
    );
    assert!(transmit(&mut stack, Instant::ZERO).is_empty());
    assert_eq!(stack.stats().drops(DropReason::ArpNotForUs), 1);
}

#[test]
fn answers_ping_to_a_learned_peer() {
    let mut stack = stack();
    learn_peer(&mut stack);
    let data = b"0123456789abcdef";
    let request = echo_request(data);
    stack.handle_frame(
        Instant::ZERO,
        &ip_frame(
            ip_header(PEER_IP, OUR_IP, IpProtocol::Icmp, request.len()),
            &request,
        ),
        RxChecksum::Verify,
    );
    let frames = transmit(&mut stack, Instant::ZERO);
    assert_eq!(frames.len(), 1);
    let reply = dissect(&frames[0], RxChecksum::Verify).unwrap();
    assert_eq!(reply.ethernet.dst_addr, PEER_MAC);
    let Network::Ipv4 {
        header,
        transport: Transport::Icmp(icmp),
    } = reply.network
    else {
        panic!("{reply}")
    };
    assert_eq!(
        (header.src_addr, header.dst_addr, header.ttl),
        (OUR_IP, PEER_IP, 64)
    );
    assert_eq!(
        icmp,
        Icmpv4Repr::EchoReply {
            ident: 7,
            seq_no: 1,
            data
        }
    );
    assert_eq!(stack.stats().echo_replies, 1);
}

#[test]
fn reply_to_an_unknown_host_waits_for_arp() {
    let mut stack = stack();
    let request = echo_request(b"hi");
    stack.handle_frame(
        Instant::ZERO,
        &ip_frame(
            ip_header(PEER_IP, OUR_IP, IpProtocol::Icmp, request.len()),
            &request,
        ),
        RxChecksum::Verify,
    );
    let frames = transmit(&mut stack, Instant::ZERO);
    assert_eq!(frames.len(), 1);
    let Network::Arp(arp) = dissect(&frames[0], RxChecksum::Verify).unwrap().network else {
        panic!("not ARP")
    };
    assert_eq!(
        (arp.operation, arp.target_protocol_addr),
        (Operation::Request, PEER_IP)
    );
    // The peer answers; the held echo reply goes out.
    stack.handle_frame(
        Instant::from_millis(5),
        &arp_frame(Operation::Reply, OUR_IP),
        RxChecksum::Verify,
    );
    let frames = transmit(&mut stack, Instant::from_millis(5));
    assert_eq!(frames.len(), 1);
    assert!(matches!(
        dissect(&frames[0], RxChecksum::Verify).unwrap().network,
        Network::Ipv4 {
            transport: Transport::Icmp(Icmpv4Repr::EchoReply { .. }),
            ..
        }
    ));
}

#[test]
fn arp_gives_up_after_three_requests_one_second_apart() {
    let mut stack = stack();
    let request = echo_request(b"hi");
    stack.handle_frame(
        Instant::ZERO,
        &ip_frame(
            ip_header(PEER_IP, OUR_IP, IpProtocol::Icmp, request.len()),
            &request,
        ),
        RxChecksum::Verify,
    );
    let mut sent_at = Vec::new();
    let mut now = Instant::ZERO;
    for _ in 0..10 {
        for frame in transmit(&mut stack, now) {
            assert!(matches!(
                dissect(&frame, RxChecksum::Verify).unwrap().network,
                Network::Arp(_)
            ));
            sent_at.push(now);
        }
        match stack.poll_timeout() {
            Some(deadline) => {
                now = deadline;
                stack.handle_timeout(now);
            }
            None => break,
        }
    }
    assert_eq!(
        sent_at,
        vec![Instant::ZERO, Instant::from_secs(1), Instant::from_secs(2)]
    );
    assert_eq!(
        stack.poll_event(),
        Some(Event::NeighborUnreachable { address: PEER_IP })
    );
    assert_eq!(stack.stats().drops(DropReason::NeighborUnreachable), 1);
}

#[test]
fn segments_for_no_connection_are_reset_per_rfc9293() {
    let mut stack = stack();
    learn_peer(&mut stack);
    // A SYN: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    let syn = tcp_segment(TcpFlags::SYN, 1000, 0, b"");
    stack.handle_frame(
        Instant::ZERO,
        &ip_frame(ip_header(PEER_IP, OUR_IP, IpProtocol::Tcp, syn.len()), &syn),
        RxChecksum::Verify,
    );
    // Data with ACK: <SEQ=SEG.ACK><CTL=RST>.
    let data = tcp_segment(TcpFlags::ACK | TcpFlags::PSH, 5000, 777, b"hello");
    stack.handle_frame(
        Instant::ZERO,
        &ip_frame(
            ip_header(PEER_IP, OUR_IP, IpProtocol::Tcp, data.len()),
            &data,
        ),
        RxChecksum::Verify,
    );
    // A RST is never answered.
    let rst = tcp_segment(TcpFlags::RST, 1, 0, b"");
    stack.handle_frame(
        Instant::ZERO,
        &ip_frame(ip_header(PEER_IP, OUR_IP, IpProtocol::Tcp, rst.len()), &rst),
        RxChecksum::Verify,
    );
    let frames = transmit(&mut stack, Instant::ZERO);
    assert_eq!(frames.len(), 2);
    let resets: Vec<TcpRepr<'_>> = frames
        .iter()
        .map(|f| match dissect(f, RxChecksum::Verify).unwrap().network {
            Network::Ipv4 {
                transport: Transport::Tcp(tcp),
                ..
            } => tcp,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(resets[0].flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(
        (resets[0].seq_number, resets[0].ack_number),
        (SeqNum::new(0), SeqNum::new(1001))
    );
    assert_eq!((resets[0].src_port, resets[0].dst_port), (80, 40000));
    assert_eq!(resets[1].flags, TcpFlags::RST);
    assert_eq!(resets[1].seq_number, SeqNum::new(777));
    assert_eq!(stack.stats().resets, 2);
}

#[test]
fn udp_and_unknown_protocols_get_unreachable_within_the_rate_limit() {
    let mut stack = stack();
    learn_peer(&mut stack);
    let udp = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4];
    for _ in 0..20 {
        stack.handle_frame(
            Instant::ZERO,
            &ip_frame(ip_header(PEER_IP, OUR_IP, IpProtocol::Udp, udp.len()), &udp),
            RxChecksum::Verify,
        );
    }
    let frames = transmit(&mut stack, Instant::ZERO);
    // A burst of 10, then the limit.
    assert_eq!(frames.len(), 10);
    assert_eq!(stack.stats().drops(DropReason::IcmpRateLimited), 10);
    let Network::Ipv4 {
        transport:
            Transport::Icmp(Icmpv4Repr::DstUnreachable {
                reason,
                header,
                data,
                ..
            }),
        ..
    } = dissect(&frames[0], RxChecksum::Verify).unwrap().network
    else {
        panic!("not an unreachable")
    };
    assert_eq!(reason, DstUnreachable::PortUnreachable);
    assert_eq!(
        (header.src_addr, header.protocol, header.payload_len),
        (PEER_IP, IpProtocol::Udp, 12)
    );
    assert_eq!(data, &udp);
    // A second later the bucket has refilled.
    let later = Instant::from_secs(1);
    stack.handle_frame(
        later,
        &ip_frame(
            ip_header(PEER_IP, OUR_IP, IpProtocol::Unknown(253), 4),
            &[0; 4],
        ),
        RxChecksum::Verify,
    );
    let frames = transmit(&mut stack, later);
    assert!(matches!(
        dissect(&frames[0], RxChecksum::Verify).unwrap().network,
        Network::Ipv4 {
            transport: Transport::Icmp(Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::ProtoUnreachable,
                ..
            }),
            ..
        }
    ));
    // Never for a datagram sent to a broadcast address.
    let to_broadcast = ip_header(
        PEER_IP,
        Ipv4Addr::new(10, 9, 0, 255),
        IpProtocol::Udp,
        udp.len(),
    );
    stack.handle_frame(later, &ip_frame(to_broadcast, &udp), RxChecksum::Verify);
    assert!(transmit(&mut stack, later).is_empty());
}

fn fragment_frames(data: &[u8], ident: u16, pieces: &[(usize, usize)]) -> Vec<Vec<u8>> {
    pieces
        .iter()
        .map(|&(start, end)| {
            let header = Ipv4Repr {
                ident,
                more_frags: end < data.len(),
                frag_offset: start as u16,
                ..ip_header(PEER_IP, OUR_IP, IpProtocol::Icmp, end - start)
            };
            ip_frame(header, &data[start..end])
        })
        .collect()
}

#[test]
fn fragmented_echo_is_reassembled_and_answered() {
    let mut stack = stack();
    learn_peer(&mut stack);
    let payload: Vec<u8> = (0..1400).map(|i| i as u8).collect();
    let request = echo_request(&payload);
    let frames = fragment_frames(&request, 9, &[(800, request.len()), (0, 400), (400, 800)]);
    for frame in &frames {
        stack.handle_frame(Instant::ZERO, frame, RxChecksum::Verify);
    }
    let out = transmit(&mut stack, Instant::ZERO);
    assert_eq!(out.len(), 1);
    let Network::Ipv4 {
        transport: Transport::Icmp(Icmpv4Repr::EchoReply { data, .. }),
        ..
    } = dissect(&out[0], RxChecksum::Verify).unwrap().network
    else {
        panic!("no echo reply")
    };
    assert_eq!(data, &payload[..]);
    assert_eq!(stack.stats().reassembled, 1);
}

#[test]
fn incomplete_datagram_times_out_with_icmp_time_exceeded() {
    let mut stack = stack();
    learn_peer(&mut stack);
    let request = echo_request(&[7; 1000]);
    // Fragment zero arrives, the rest never does.
    stack.handle_frame(
        Instant::ZERO,
        &fragment_frames(&request, 11, &[(0, 512)])[0],
        RxChecksum::Verify,
    );
    assert!(transmit(&mut stack, Instant::ZERO).is_empty());
    assert_eq!(stack.poll_timeout(), Some(Instant::from_secs(30)));
    stack.handle_timeout(Instant::from_secs(30));
    let out = transmit(&mut stack, Instant::from_secs(30));
    assert_eq!(out.len(), 1);
    let Network::Ipv4 {
        transport:
            Transport::Icmp(Icmpv4Repr::TimeExceeded {
                reason,
                header,
                data,
            }),
        ..
    } = dissect(&out[0], RxChecksum::Verify).unwrap().network
    else {
        panic!("no time exceeded")
    };
    assert_eq!(reason, TimeExceeded::FragExpired);
    assert_eq!(
        (header.ident, header.frag_offset, header.more_frags),
        (11, 0, true)
    );
    assert_eq!(data.len(), 8);
    assert_eq!(stack.stats().drops(DropReason::FragmentTimeout), 1);
}

#[test]
fn each_drop_reason_is_counted() {
    let mut stack = stack();
    learn_peer(&mut stack);
    let now = Instant::ZERO;
    let request = echo_request(b"x");
    let good = ip_frame(
        ip_header(PEER_IP, OUR_IP, IpProtocol::Icmp, request.len()),
        &request,
    );
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..10].to_vec(), DropReason::EthernetMalformed),
        (
            {
                let mut f = good.clone();
                f[0] = 0x04;
                f
            },
            DropReason::NotForUs,
        ),
        (
            {
                let mut f = good.clone();
                f[12] = 0x86;
                f[13] = 0xdd;
                f
            },
            DropReason::UnsupportedEtherType,
        ),
        (
            {
                let mut f = good.clone();
                f[24] ^= 1;
                f
            },
            DropReason::Ipv4Checksum,
        ),
        (good[..30].to_vec(), DropReason::Ipv4Malformed),
        (
            ip_frame(
                ip_header(
                    PEER_IP,
                    Ipv4Addr::new(10, 9, 0, 3),
                    IpProtocol::Icmp,
                    request.len(),
                ),
                &request,
            ),
            DropReason::NotOurAddress,
        ),
        (
            ip_frame(
                ip_header(
                    Ipv4Addr::new(224, 0, 0, 1),
                    OUR_IP,
                    IpProtocol::Icmp,
                    request.len(),
                ),
                &request,
            ),
            DropReason::MartianSource,
        ),
        (
            ip_frame(
                ip_header(
                    PEER_IP,
                    Ipv4Addr::BROADCAST,
                    IpProtocol::Icmp,
                    request.len(),
                ),
                &request,
            ),
            DropReason::EchoToBroadcast,
        ),
        (
            {
                let mut f = good.clone();
                let n = f.len();
                f[n - 1] ^= 1;
                f
            },
            DropReason::IcmpChecksum,
        ),
        (
            {
                let s = tcp_segment(TcpFlags::SYN, 1, 0, b"");
                let mut f = ip_frame(ip_header(PEER_IP, OUR_IP, IpProtocol::Tcp, s.len()), &s);
                let n = f.len();
                f[n - 1] ^= 1;
                f
            },
            DropReason::TcpChecksum,
        ),
    ];
    for (frame, reason) in cases {
        let before = stack.stats().drops(reason);
        stack.handle_frame(now, &frame, RxChecksum::Verify);
        assert_eq!(stack.stats().drops(reason), before + 1, "{reason}");
    }
    assert!(transmit(&mut stack, now).is_empty());
}

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut stack = stack();
        for (i, frame) in frames.iter().enumerate() {
            let now = Instant::from_millis(i as u64 * 100);
            stack.handle_frame(now, frame, RxChecksum::Trusted);
            let _ = transmit(&mut stack, now);
        }
        stack.handle_timeout(Instant::from_secs(100));
        let _ = transmit(&mut stack, Instant::from_secs(100));
    }

    #[test]
    fn mutated_frames_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), which in 0usize..4) {
        let mut stack = stack();
        let request = echo_request(b"payload");
        let syn = tcp_segment(TcpFlags::SYN, 1, 0, b"");
        let mut frame = match which {
            0 => arp_frame(Operation::Request, OUR_IP),
            1 => ip_frame(ip_header(PEER_IP, OUR_IP, IpProtocol::Icmp, request.len()), &request),
            2 => ip_frame(ip_header(PEER_IP, OUR_IP, IpProtocol::Tcp, syn.len()), &syn),
            _ => fragment_frames(&[1u8; 64], 3, &[(0, 32)]).remove(0),
        };
        for (at, value) in edits {
            let i = at.index(frame.len());
            frame[i] = value;
        }
        for checksum in [RxChecksum::Verify, RxChecksum::Trusted] {
            stack.handle_frame(Instant::ZERO, &frame, checksum);
            let _ = transmit(&mut stack, Instant::ZERO);
        }
        stack.handle_timeout(Instant::from_secs(31));
        let _ = transmit(&mut stack, Instant::from_secs(31));
    }
}

#[test]
fn timers_do_not_fire_early() {
    let mut stack = stack();
    let request = echo_request(b"hi");
    stack.handle_frame(
        Instant::ZERO,
        &ip_frame(
            ip_header(PEER_IP, OUR_IP, IpProtocol::Icmp, request.len()),
            &request,
        ),
        RxChecksum::Verify,
    );
    let _ = transmit(&mut stack, Instant::ZERO);
    stack.handle_timeout(Instant::ZERO + Duration::from_millis(999));
    assert!(transmit(&mut stack, Instant::from_millis(999)).is_empty());
}
