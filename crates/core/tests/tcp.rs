//! TCP behaviour beyond the textbook scenarios: ICMP errors, listener queues, bulk transfer
//! through faults, hostile input.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use rawtcp_core::link::LinkConfig;
use rawtcp_core::{
    CongestionAlgorithm, ConnError, ConnectionId, Event, Instant, State, TcpError, VecSink,
};
use rawtcp_wire::RxChecksum;
use rawtcp_wire::SeqNum;
use rawtcp_wire::arp::{self, ArpRepr, Operation};
use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp_wire::icmpv4::{self, DstUnreachable, Icmpv4Repr};
use rawtcp_wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{SackBlocks, TcpFlags, TcpOptions, TcpRepr, Timestamps};

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[test]
fn wildcard_listener_accepts() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80));
    assert_eq!(sim.b.tcp_info(server).unwrap().local, b_addr(80));
    assert_eq!(sim.a.tcp_state(client), Some(State::Established));
    // A second listener on the same address is refused; another port is fine.
    assert_eq!(
        sim.b
            .tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), None),
        Err(TcpError::AddrInUse)
    );
    assert!(sim.b.tcp_listen(b_addr(81), None).is_ok());
}

#[test]
fn full_accept_queue_drops_the_final_ack_until_there_is_room() {
    let mut sim = sim();
    let listener = sim.b.tcp_listen(b_addr(80), Some(1)).unwrap();
    // Both SYNs arrive while the queue is empty (Linux, like us, drops SYNs once it is
    // full); the first to complete fills it, so the second's final ACK is dropped.
    let first = sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap();
    let second = sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap();
    sim.run_for(Duration::from_millis(500));
    // The client thinks both are open; the server has queued one and holds the other half-open.
    assert_eq!(sim.a.tcp_state(first), Some(State::Established));
    assert_eq!(sim.a.tcp_state(second), Some(State::Established));
    let half_open = sim
        .b
        .connections()
        .into_iter()
        .filter(|c| c.state == State::SynReceived)
        .count();
    assert_eq!(half_open, 1);
    // The application accepts; the SYN-ACK retransmission (1 s) draws an ACK that now fits.
    assert!(sim.b.tcp_accept(listener).unwrap().is_some());
    sim.run_for(Duration::from_secs(2));
    assert!(
        sim.b.tcp_accept(listener).unwrap().is_some(),
        "the second completed once there was room"
    );
    assert!(
        sim.segments
            .iter()
            .filter(|s| !s.from_a && s.flags == TcpFlags::SYN | TcpFlags::ACK)
            .count()
            >= 3
    );
}

// ---- ICMP errors routed to the connection they quote ----

/// A stack at A's address that has learned B's MAC, with one connection in SYN-SENT and its
/// SYN's IPv4 datagram.
fn syn_sent() -> (rawtcp_core::Stack, ConnectionId, Vec<u8>) {
    let mut stack = rawtcp_core::Stack::new(config(A_MAC, A_IP, 1));
    let reply = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: B_MAC,
        source_protocol_addr: B_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: A_IP,
    };
    let mut frame = vec![0u8; 42];
    EthernetRepr {
        src_addr: B_MAC,
        dst_addr: EthernetAddress::BROADCAST,
        vlan_tci: None,
        ethertype: EtherType::Arp,
    }
    .emit(&mut Frame::new_unchecked(&mut frame[..]));
    reply.emit(&mut arp::Packet::new_unchecked(&mut frame[14..]));
    stack.handle_frame(Instant::ZERO, &frame, RxChecksum::Verify);
    let _ = stack.poll_transmit(Instant::ZERO, &mut VecSink::new());
    let conn = stack
        .tcp_connect(Instant::ZERO, b_addr(80), Some(40000))
        .unwrap();
    let mut sink = VecSink::new();
    let _ = stack.poll_transmit(Instant::ZERO, &mut sink);
    let syn = sink
        .frames
        .into_iter()
        .find(|f| {
            matches!(
                dissect(f, RxChecksum::Verify).unwrap().network,
                Network::Ipv4 {
                    transport: Transport::Tcp(_),
                    ..
                }
            )
        })
        .unwrap();
    (stack, conn, syn[14..].to_vec())
}

fn icmp_error(reason: DstUnreachable, mtu: u16, quoted_datagram: &[u8]) -> Vec<u8> {
    let (header, rest) = Ipv4Repr::parse_quoted(quoted_datagram).unwrap();
    let icmp = Icmpv4Repr::DstUnreachable {
        reason,
        next_hop_mtu: mtu,
        header,
        data: &rest[..8],
    };
    let ip = Ipv4Repr {
        ident: 1,
        dont_frag: false,
        ..Ipv4Repr::new(
            Ipv4Addr::new(10, 9, 0, 254),
            A_IP,
            IpProtocol::Icmp,
            icmp.buffer_len(),
        )
    };
    let mut frame = vec![0u8; 14 + 20 + icmp.buffer_len()];
    EthernetRepr {
        src_addr: B_MAC,
        dst_addr: A_MAC,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut Frame::new_unchecked(&mut frame[..]));
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[14..]));
    icmp.emit(&mut icmpv4::Packet::new_unchecked(&mut frame[34..]));
    frame
}

fn errors(stack: &mut rawtcp_core::Stack) -> Vec<ConnError> {
    std::iter::from_fn(|| stack.poll_event())
        .filter_map(|e| {
            if let Event::Error(_, error) = e {
                Some(error)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn icmp_port_unreachable_in_syn_sent_refuses_the_connect() {
    let (mut stack, conn, syn) = syn_sent();
    stack.handle_frame(
        Instant::from_millis(1),
        &icmp_error(DstUnreachable::PortUnreachable, 0, &syn),
        RxChecksum::Verify,
    );
    assert_eq!(errors(&mut stack), vec![ConnError::Refused]);
    assert_eq!(stack.tcp_state(conn), Some(State::Closed));
}

#[test]
fn icmp_host_unreachable_is_a_soft_error_reported_on_timeout() {
    let (mut stack, conn, syn) = syn_sent();
    stack.handle_frame(
        Instant::from_millis(1),
        &icmp_error(DstUnreachable::HostUnreachable, 0, &syn),
        RxChecksum::Verify,
    );
    assert!(
        errors(&mut stack).is_empty(),
        "RFC 9293 MUST-56: codes 0, 1 and 5 are soft"
    );
    assert_eq!(stack.tcp_state(conn), Some(State::SynSent));
    let mut now = Instant::ZERO;
    while let Some(deadline) = stack.poll_timeout() {
        now = deadline;
        stack.handle_timeout(now);
        let _ = stack.poll_transmit(now, &mut VecSink::new());
        if stack.tcp_state(conn) == Some(State::Closed) {
            break;
        }
    }
    assert_eq!(now, Instant::from_secs(63));
    assert_eq!(
        errors(&mut stack),
        vec![ConnError::Unreachable],
        "the soft error is the reason given"
    );
}

#[test]
fn icmp_quoting_a_sequence_number_outside_the_window_is_ignored() {
    let (mut stack, conn, mut syn) = syn_sent();
    // Move the quoted sequence number far away (offset 24 of the datagram: the TCP seq).
    let seq = u32::from_be_bytes(syn[24..28].try_into().unwrap()).wrapping_add(1 << 30);
    syn[24..28].copy_from_slice(&seq.to_be_bytes());
    stack.handle_frame(
        Instant::from_millis(1),
        &icmp_error(DstUnreachable::PortUnreachable, 0, &syn),
        RxChecksum::Verify,
    );
    assert!(errors(&mut stack).is_empty());
    assert_eq!(stack.tcp_state(conn), Some(State::SynSent));
}

#[test]
fn fragmentation_needed_lowers_the_mss() {
    let mut sim = sim();
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    assert_eq!(sim.a.tcp_info(client).unwrap().mss, 1460);
    sim.a.tcp_send(sim.now, client, &[1u8; 4000]).unwrap();
    let mut sink = VecSink::new();
    let _ = sim.a.poll_transmit(sim.now, &mut sink);
    let data = sink.frames.iter().find(|f| matches!(dissect(f, RxChecksum::Verify).unwrap().network, Network::Ipv4 { transport: Transport::Tcp(t), .. } if !t.payload.is_empty())).unwrap();
    let frame = icmp_error(DstUnreachable::FragRequired, 1280, &data[14..]);
    sim.a.handle_frame(sim.now, &frame, RxChecksum::Verify);
    assert_eq!(sim.a.tcp_info(client).unwrap().mss, 1240);
}

/// RFC 1122 §3.3.1.4: an unanswered ARP for the gateway says nothing about on-link hosts,
/// which do not use it. It used to fail every connection in SYN-SENT.
#[test]
fn gateway_arp_failure_fails_only_connections_through_the_gateway() {
    let mut a = config(A_MAC, A_IP, 1);
    a.gateway = Some(Ipv4Addr::new(10, 9, 0, 254)); // nobody there: its ARP goes unanswered
    let mut sim = Sim::with_links(
        a,
        config(B_MAC, B_IP, 2),
        LinkConfig::default(),
        LinkConfig::default(),
        1,
    );
    // B answers ARP but its TCP is silent: the on-link connect stays in SYN-SENT.
    sim.blackhole_tcp_to_b = true;
    let on_link = sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap();
    let off_link = sim
        .a
        .tcp_connect(
            sim.now,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80),
            None,
        )
        .unwrap();
    sim.run_for(Duration::from_secs(10));
    assert!(sim.events_a.iter().any(|(_, e)| *e
        == Event::NeighborUnreachable {
            address: Ipv4Addr::new(10, 9, 0, 254)
        }));
    assert_eq!(
        sim.a.tcp_error(off_link),
        Some(ConnError::NeighborUnreachable)
    );
    assert_eq!(sim.a.tcp_error(on_link), None);
    assert_eq!(sim.a.tcp_state(on_link), Some(State::SynSent));
}

// ---- Bulk transfer through faults ----

#[test]
fn one_hundred_megabytes_through_ten_percent_of_every_fault() {
    let faults = LinkConfig {
        loss: 0.1,
        duplicate: 0.1,
        reorder: 0.1,
        corrupt: 0.1,
        delay: Duration::from_millis(2),
        mtu: 1500,
        ..LinkConfig::default()
    };
    let mut sim = sim_with_links(faults.clone(), faults, 2026);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.trace = false;
    let data = pattern(100 << 20, 7);
    // ~20 % effective loss each way takes a long simulated time (many retransmission
    // timeouts beside fast recovery); only CPU time is real.
    let received = transfer(
        &mut sim,
        client,
        server,
        &data,
        Duration::from_secs(1 << 40),
    );
    assert_eq!(received.len(), data.len());
    assert!(received == data, "100 MB arrived byte-exact and in order");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn bytes_arrive_intact_in_order_under_any_fault_pattern(seed in any::<u64>(), loss in 0.0..0.1f64, dup in 0.0..0.1f64, reorder in 0.0..0.1f64, corrupt in 0.0..0.1f64, cubic in any::<bool>(), sack in any::<bool>()) {
        // Connect on a clean link, then turn the faults on for the data: the simulated link
        // corrupts frames without an Ethernet FCS, and a corrupted ARP reply (ARP has no
        // checksum) can teach a wrong MAC that only revalidation 60 s later repairs.
        // Every loss recovery: NewReno or CUBIC, with SACK (RFC 6675) or without (RFC 6582).
        let mut a = config(A_MAC, A_IP, seed);
        a.tcp.congestion_control = if cubic { CongestionAlgorithm::Cubic } else { CongestionAlgorithm::NewReno };
        a.tcp.sack = sack;
        let mut sim = Sim::with_links(a, config(B_MAC, B_IP, seed ^ 1), LinkConfig::default(), LinkConfig::default(), seed);
        let (client, server) = connected_on(&mut sim, b_addr(80));
        let faults = LinkConfig { loss, duplicate: dup, reorder, corrupt, jitter: Duration::from_millis(3), ..LinkConfig::default() };
        *sim.link_a_to_b_mut().config_mut() = faults.clone();
        *sim.link_b_to_a_mut().config_mut() = faults;
        sim.trace = false;
        let data = pattern(300_000, seed as u32);
        let received = transfer(&mut sim, client, server, &data, Duration::from_secs(1 << 40));
        prop_assert_eq!(received.len(), data.len());
        prop_assert!(received == data);
    }
}

// ---- Hostile input ----

/// A forged segment from B to A's port `dst_port`.
#[allow(clippy::too_many_arguments)]
fn segment_from_b(
    flags: u16,
    seq: u32,
    ack: u32,
    window: u16,
    payload: &[u8],
    dst_port: u16,
    sack_blocks: SackBlocks,
    timestamps: Option<Timestamps>,
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: 80,
        dst_port,
        seq_number: SeqNum::new(seq),
        ack_number: SeqNum::new(ack),
        flags: TcpFlags::from_bits_truncate(flags),
        window_len: window,
        urgent_pointer: 0,
        options: TcpOptions {
            sack_blocks,
            timestamps,
            ..TcpOptions::default()
        },
        payload,
    };
    tcp_frame(HOST_B, HOST_A, &tcp)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn hostile_segments_never_break_the_invariants(
        segments in proptest::collection::vec((any::<u16>(), any::<i32>(), any::<i32>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..600), proptest::collection::vec((any::<i32>(), any::<i32>()), 0..5)), 1..60),
    ) {
        let mut sim = sim();
        let (client, server) = connected_on(&mut sim, b_addr(80));
        sim.a.tcp_send(sim.now, client, &[5u8; 3000]).unwrap();
        sim.b.tcp_send(sim.now, server, &[6u8; 2000]).unwrap();
        sim.run_for(Duration::from_millis(5));
        let info = sim.a.tcp_info(client).unwrap();
        let port = info.local.port();
        let mut delivered_before = info.stats.bytes_delivered;
        let mut rcv_before = info.rcv_nxt;
        for (flags, seq_off, ack_off, window, payload, blocks) in segments {
            let info = sim.a.tcp_info(client).unwrap();
            // Sequence and acknowledgment numbers near the live ones, where they do damage.
            let seq = info.rcv_nxt.raw().wrapping_add((seq_off % 100_000) as u32);
            let ack = info.snd_una.raw().wrapping_add((ack_off % 100_000) as u32);
            // SACK blocks near SND.UNA too: valid, inverted, beyond SND.MAX, below SND.UNA.
            let mut sack_blocks = SackBlocks::new();
            for (left, right) in blocks {
                let at = |off: i32| SeqNum::new(info.snd_una.raw().wrapping_add((off % 10_000) as u32));
                sack_blocks.push(at(left), at(right));
            }
            // Timestamps as B's clock has them (else PAWS and RFC 7323 §3.2 drop the segment
            // before it can do harm), sometimes older or missing.
            let tsval = sim.segments.iter().rev().find_map(|s| s.options.timestamps.filter(|_| !s.from_a)).map_or(0, |t| t.tsval);
            let timestamps = match flags >> 9 & 3 {
                0 => None,
                1 => Some(Timestamps { tsval: tsval.wrapping_sub(1000), tsecr: 0 }),
                _ => Some(Timestamps { tsval: tsval.wrapping_add(1), tsecr: 0 }),
            };
            let frame = segment_from_b(flags & 0x1ff, seq, ack, window, &payload, port, sack_blocks, timestamps);
            sim.a.handle_frame(sim.now, &frame, RxChecksum::Verify);
            sim.now += Duration::from_millis(1);
            sim.settle();
            let Some(info) = sim.a.tcp_info(client) else { break };
            prop_assert!(info.snd_una <= info.snd_nxt, "SND.UNA {:?} > SND.NXT {:?}", info.snd_una, info.snd_nxt);
            prop_assert!(info.recv_queue <= 256 * 1024);
            prop_assert!(info.send_queue <= 256 * 1024);
            // The scoreboard holds only what lies in flight.
            prop_assert!(info.sacked <= info.snd_nxt.raw().wrapping_sub(info.snd_una.raw()).max(3000), "sacked {}", info.sacked);
            prop_assert!(info.lost <= 3000);
            // Every byte delivered advanced RCV.NXT by one: none twice.
            let advanced = info.rcv_nxt - rcv_before.min(info.rcv_nxt);
            let delivered = info.stats.bytes_delivered - delivered_before;
            prop_assert!(u64::from(advanced) == delivered || u64::from(advanced) == delivered + 1, "advanced {} delivered {}", advanced, delivered);
            delivered_before = info.stats.bytes_delivered;
            rcv_before = info.rcv_nxt;
        }
        // Whatever happened, the application can still drain and close.
        let mut buf = [0u8; 4096];
        while let Ok(n) = sim.a.tcp_recv(sim.now, client, &mut buf) {
            if n == 0 { break; }
        }
        let _ = sim.a.tcp_close(sim.now, client);
        sim.run_for(Duration::from_secs(300));
    }
}

#[test]
fn data_retransmission_gives_up_after_15_retransmissions() {
    let mut sim = sim();
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    sim.blackhole_tcp_to_b = true;
    sim.a.tcp_send(sim.now, client, b"into the void").unwrap();
    let start = sim.now;
    sim.run_for(Duration::from_secs(3600));
    let failed = sim
        .events_a
        .iter()
        .find_map(|(t, e)| (*e == Event::Error(client, ConnError::TimedOut)).then_some(*t))
        .expect("timed out");
    let info = sim.a.connections();
    assert!(info.is_empty() || info[0].state == State::Closed);
    let retransmissions = sim
        .segments
        .iter()
        .filter(|s| s.from_a && s.len == 13)
        .count()
        - 1;
    // The tail loss probe (RFC 8985 §7) first, then the timer's 15.
    assert_eq!(retransmissions, 1 + 15);
    // Exponential backoff from 200 ms, capped at 120 s: about 15 minutes in all.
    let waited = failed - start;
    assert!(
        waited > Duration::from_secs(600) && waited < Duration::from_secs(1200),
        "{waited:?}"
    );
}

#[test]
fn user_timeout_gives_up_sooner() {
    let mut a = config(A_MAC, A_IP, 1);
    a.tcp.user_timeout = Some(Duration::from_secs(10));
    let mut sim = Sim::with_links(
        a,
        config(B_MAC, B_IP, 2),
        LinkConfig::default(),
        LinkConfig::default(),
        1,
    );
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    sim.blackhole_tcp_to_b = true;
    sim.a.tcp_send(sim.now, client, b"hello?").unwrap();
    let start = sim.now;
    sim.run_for(Duration::from_secs(600));
    let failed = sim
        .events_a
        .iter()
        .find_map(|(t, e)| (*e == Event::Error(client, ConnError::TimedOut)).then_some(*t))
        .expect("timed out");
    // RFC 5482: unacknowledged for 10 s; noticed at the first retransmission timeout after it.
    let waited = failed - start;
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(30),
        "{waited:?}"
    );
}

/// Found against the Linux kernel: the SYN-ACK's window is unscaled, but it was recorded as
/// if scaled, so a passive side promised eight times its buffer and, once its application
/// stopped reading, received more than it could hold.
#[test]
fn a_passive_receiver_never_takes_more_than_its_buffer() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.trace = false;
    let data = pattern(2 << 20, 3);
    let mut sent = 0;
    for _ in 0..400 {
        if let Ok(n) = sim.a.tcp_send(sim.now, client, &data[sent..]) {
            sent += n;
        }
        sim.run_for(Duration::from_millis(10));
        let info = sim.b.tcp_info(server).unwrap();
        assert!(
            info.recv_queue <= 256 * 1024,
            "{} bytes buffered",
            info.recv_queue
        );
    }
    // The application never read: the buffer is full and the window closed, not overrun.
    assert_eq!(sim.b.tcp_info(server).unwrap().recv_queue, 256 * 1024);
    assert_eq!(sim.b.tcp_info(server).unwrap().rcv_wnd, 0);
}

/// A's data fills B's 8 KiB buffer, which B never reads: B's window is zero and A probes it
/// (RFC 9293 §3.8.6.1). Returns the sim and A's connection.
fn zero_window(user_timeout: Option<Duration>) -> (Sim, ConnectionId) {
    let mut a = config(A_MAC, A_IP, 1);
    a.tcp.user_timeout = user_timeout;
    let mut b = config(B_MAC, B_IP, 2);
    b.tcp.recv_buffer = 8 * 1024;
    let mut sim = Sim::with_links(a, b, LinkConfig::default(), LinkConfig::default(), 1);
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    sim.a.tcp_send(sim.now, client, &[9u8; 20_000]).unwrap();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.a.tcp_info(client).unwrap().snd_wnd, 0);
    (sim, client)
}

/// Zero-window probes A sent (SEQ = SND.UNA − 1, no data).
fn probes(sim: &Sim, client: ConnectionId) -> usize {
    let snd_una = sim.a.tcp_info(client).unwrap().snd_una;
    sim.segments
        .iter()
        .filter(|s| s.from_a && s.len == 0 && SeqNum::new(s.seq) == snd_una - 1)
        .count()
}

fn timed_out_at(sim: &Sim, client: ConnectionId) -> Option<Instant> {
    sim.events_a
        .iter()
        .find_map(|(t, e)| (*e == Event::Error(client, ConnError::TimedOut)).then_some(*t))
}

/// A peer that vanishes while its window is zero must not hold the connection forever:
/// unanswered probes count as retransmissions do (Linux: tcp_retries2, 15 here) and end
/// it. The persist timer used to probe for ever.
#[test]
fn unanswered_zero_window_probes_end_the_connection() {
    let (mut sim, client) = zero_window(None);
    let answered = probes(&sim, client);
    sim.blackhole_tcp_to_b = true;
    sim.run_for(Duration::from_secs(4 * 3600));
    assert!(timed_out_at(&sim, client).is_some(), "TimedOut");
    assert_eq!(sim.a.tcp_state(client), Some(State::Closed));
    assert_eq!(
        probes(&sim, client) - answered,
        15,
        "15 unanswered probes, then give up"
    );
}

/// RFC 5482: with a user timeout, unanswered probes end the connection once that long has
/// passed since the peer last answered.
#[test]
fn the_user_timeout_ends_unanswered_zero_window_probes_sooner() {
    let timeout = Duration::from_secs(60);
    let (mut sim, client) = zero_window(Some(timeout));
    sim.blackhole_tcp_to_b = true;
    let start = sim.now;
    sim.run_for(Duration::from_secs(4 * 3600));
    let failed = timed_out_at(&sim, client).expect("TimedOut");
    // Counted from the first unanswered probe (after `start`); noticed when the persist timer
    // next fires (probes back off to at most 120 s apart).
    let waited = failed - start;
    assert!(waited >= timeout, "{waited:?}");
    assert!(waited <= timeout + Duration::from_secs(240), "{waited:?}");
    assert!(probes(&sim, client) < 15);
}

/// RFC 9293 §3.8.6.1: "the sending TCP MUST allow the connection to stay open" while the
/// receiver keeps answering probes with a zero window, however long.
#[test]
fn a_peer_answering_probes_with_a_zero_window_is_kept() {
    let (mut sim, client) = zero_window(None);
    sim.run_for(Duration::from_secs(4 * 3600));
    assert!(
        probes(&sim, client) > 100,
        "{} probes",
        probes(&sim, client)
    );
    assert_eq!(timed_out_at(&sim, client), None);
    assert_eq!(sim.a.tcp_state(client), Some(State::Established));
}
