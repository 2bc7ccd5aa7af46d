//! Wire-level hardening on the simulated link: RFC 5961's ACK checks and challenge-ACK
//! limits, PAWS (RFC 7323 §5), RFC 1337, data after close, the RST rate limit, and ICMP
//! fragmentation-needed validation (RFC 5927). Segments an attacker (or an old duplicate)
//! would send are forged as frames from A and handed to B, whose answers the link records.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::time::Duration;

use common::*;
use rawtcp_core::link::LinkConfig;
use rawtcp_core::{
    Cause, Config, ConnError, ConnectionId, ConnectionInfo, DropReason, Event, State, TcpError,
};
use rawtcp_wire::icmpv4::DstUnreachable;
use rawtcp_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use rawtcp_wire::{RxChecksum, SeqNum};

const ACK: TcpFlags = TcpFlags::ACK;
const PSH_ACK: TcpFlags = TcpFlags::from_bits_truncate(0x018);

/// A and B with `configure` applied to both configurations.
fn sim_with(configure: impl Fn(&mut Config)) -> Sim {
    let mut a = config(A_MAC, A_IP, 1);
    let mut b = config(B_MAC, B_IP, 2);
    configure(&mut a);
    configure(&mut b);
    Sim::with_links(a, b, LinkConfig::default(), LinkConfig::default(), 1)
}

/// The TSval of the last segment A sent: forged segments from A go on from A's clock.
fn last_tsval_from_a(sim: &Sim) -> u32 {
    sim.segments
        .iter()
        .rev()
        .find_map(|s| s.options.timestamps.filter(|_| s.from_a))
        .expect("A uses timestamps")
        .tsval
}

/// A segment from A's side of `conn` (B's connection) with A's next timestamp unless
/// `tsval` says otherwise.
fn forged(
    info: &ConnectionInfo,
    flags: TcpFlags,
    seq: SeqNum,
    ack: SeqNum,
    payload: &[u8],
    tsval: Option<u32>,
) -> Vec<u8> {
    let segment = TcpRepr {
        src_port: info.remote.port(),
        dst_port: info.local.port(),
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 65535,
        urgent_pointer: 0,
        options: TcpOptions {
            timestamps: tsval.map(|tsval| Timestamps { tsval, tsecr: 0 }),
            ..TcpOptions::default()
        },
        payload,
    };
    tcp_frame(HOST_A, HOST_B, &segment)
}

/// Hands `frame` to B now and lets everything settle; returns the segments B sent.
fn inject_to_b(sim: &mut Sim, frame: &[u8]) -> Vec<Seg> {
    let before = sim.segments.len();
    sim.b.handle_frame(sim.now, frame, RxChecksum::Verify);
    sim.settle();
    sim.segments[before..]
        .iter()
        .filter(|s| !s.from_a)
        .cloned()
        .collect()
}

/// An established pair with a little traffic behind it; returns (client, server).
fn established(sim: &mut Sim) -> (ConnectionId, ConnectionId) {
    let (client, server) = connected_on(sim, b_addr(80));
    sim.run_for(Duration::from_millis(100));
    (client, server)
}

fn read_all(sim: &mut Sim, id: ConnectionId) -> Result<Vec<u8>, TcpError> {
    let mut buf = [0u8; 4096];
    let n = sim.b.tcp_recv(sim.now, id, &mut buf)?;
    Ok(buf[..n].to_vec())
}

// ---- RFC 5961 §5.2 ----

#[test]
fn an_ack_above_snd_nxt_discards_the_segment_data_and_all_and_is_answered_with_an_ack() {
    let mut sim = sim();
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let tsval = last_tsval_from_a(&sim) + 1;
    let frame = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt,
        info.snd_nxt + 1000,
        b"injected!!",
        Some(tsval),
    );
    let answers = inject_to_b(&mut sim, &frame);
    let after = sim.b.tcp_info(server).unwrap();
    assert_eq!(after.rcv_nxt, info.rcv_nxt, "the data was not accepted");
    assert_eq!(after.stats.bytes_delivered, info.stats.bytes_delivered);
    assert_eq!(read_all(&mut sim, server), Err(TcpError::WouldBlock));
    assert_eq!(
        answers
            .iter()
            .map(|s| (s.flags, s.seq, s.ack, s.len))
            .collect::<Vec<_>>(),
        vec![(ACK, info.snd_nxt.raw(), info.rcv_nxt.raw(), 0)],
        "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"
    );
}

#[test]
fn an_ack_below_snd_una_minus_max_snd_wnd_discards_the_data_with_a_challenge_ack() {
    let mut sim = sim();
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let tsval = last_tsval_from_a(&sim) + 1;
    // A's window is 256 KiB at most: 2^30 below SND.UNA is far outside MAX.SND.WND.
    let too_old = info.snd_una - (1 << 30);
    let frame = forged(&info, PSH_ACK, info.rcv_nxt, too_old, b"blind", Some(tsval));
    let answers = inject_to_b(&mut sim, &frame);
    let after = sim.b.tcp_info(server).unwrap();
    assert_eq!(after.rcv_nxt, info.rcv_nxt, "the data was not accepted");
    assert_eq!(read_all(&mut sim, server), Err(TcpError::WouldBlock));
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0].flags, answers[0].ack),
        (ACK, info.rcv_nxt.raw())
    );
    assert_eq!(
        after.stats.challenge_acks,
        info.stats.challenge_acks + 1,
        "a challenge ACK (RFC 5961 §5.2)"
    );
    // An old ACK within MAX.SND.WND is a plain duplicate: its data is taken.
    let frame = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt,
        info.snd_una - 1,
        b"fine",
        Some(tsval + 1),
    );
    inject_to_b(&mut sim, &frame);
    assert_eq!(read_all(&mut sim, server).unwrap(), b"fine");
}

// ---- RFC 5961 §3, §4, §7: challenge ACK limits ----

#[test]
fn syn_triggered_challenge_acks_are_throttled_per_connection() {
    let mut sim = sim();
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let mut answered = Vec::new();
    for gap_ms in [0, 100, 500] {
        sim.run_for(Duration::from_millis(gap_ms));
        let tsval = last_tsval_from_a(&sim) + 1000;
        let syn = forged(
            &info,
            TcpFlags::SYN,
            info.rcv_nxt + 10,
            SeqNum::new(0),
            &[],
            Some(tsval),
        );
        answered.push(inject_to_b(&mut sim, &syn).len());
    }
    assert_eq!(
        answered,
        vec![1, 0, 1],
        "one per 500 ms (Linux's tcp_invalid_ratelimit)"
    );
    let after = sim.b.tcp_info(server).unwrap();
    assert_eq!(after.state, State::Established, "the SYN changed nothing");
    assert_eq!(after.stats.challenge_acks - info.stats.challenge_acks, 2);
    assert_eq!(
        after.stats.acks_rate_limited - info.stats.acks_rate_limited,
        1
    );
}

#[test]
fn the_host_wide_challenge_ack_budget_is_drawn_at_random_each_second() {
    const CONNECTIONS: u16 = 40;
    let mut sim = sim_with(|c| c.tcp.challenge_ack_limit = 10);
    let listener = sim.b.tcp_listen(b_addr(80), None).unwrap();
    for i in 0..CONNECTIONS {
        sim.a
            .tcp_connect(sim.now, b_addr(80), Some(40000 + i))
            .unwrap();
    }
    // Eight SYNs wait for ARP, the others are sent again after 1 s.
    sim.run_for(Duration::from_secs(3));
    while sim.b.tcp_accept(listener).unwrap().is_some() {}
    let servers: Vec<ConnectionInfo> = sim.b.connections();
    assert_eq!(servers.len(), usize::from(CONNECTIONS));
    let mut budgets = Vec::new();
    for second in 0..6 {
        sim.run_for(Duration::from_secs(1));
        let dropped = sim.b.stats().drops(DropReason::ChallengeAckRateLimited);
        let mut sent = 0;
        for info in &servers {
            let info = sim.b.tcp_info(info.id).unwrap();
            // In the window but not at RCV.NXT: a challenge ACK each (RFC 5961 §3.2).
            let rst = forged(
                &info,
                TcpFlags::RST,
                info.rcv_nxt + 1,
                SeqNum::new(0),
                &[],
                None,
            );
            sent += inject_to_b(&mut sim, &rst).len();
        }
        // limit/2 .. limit/2 + limit per second, every connection being allowed one.
        assert!(
            (5..15).contains(&sent),
            "{sent} challenge ACKs in second {second}"
        );
        let suppressed = sim.b.stats().drops(DropReason::ChallengeAckRateLimited) - dropped;
        assert_eq!(sent as u64 + suppressed, u64::from(CONNECTIONS));
        budgets.push(sent);
    }
    assert!(
        budgets.iter().collect::<BTreeSet<_>>().len() > 1,
        "the budget varies from second to second: {budgets:?}"
    );
    assert!(
        sim.b
            .connections()
            .iter()
            .all(|c| c.state == State::Established),
        "no RST took effect"
    );
}

// ---- PAWS, RFC 7323 §5 ----

#[test]
fn paws_drops_a_segment_with_an_old_timestamp_and_answers_with_an_ack() {
    let mut sim = sim();
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let recent = last_tsval_from_a(&sim);
    let old = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt,
        info.snd_nxt,
        b"stale",
        Some(recent - 1000),
    );
    let answers = inject_to_b(&mut sim, &old);
    let after = sim.b.tcp_info(server).unwrap();
    assert_eq!(after.stats.paws_rejected, 1);
    assert_eq!(after.rcv_nxt, info.rcv_nxt, "dropped");
    assert_eq!(answers.len(), 1, "answered at once with an ACK (R1)");
    assert_eq!(
        answers[0].options.timestamps.map(|t| t.tsecr),
        Some(recent),
        "TS.Recent stays"
    );
    // Without timestamps at all (RFC 7323 §3.2): dropped silently.
    let bare = forged(&info, PSH_ACK, info.rcv_nxt, info.snd_nxt, b"bare", None);
    assert!(inject_to_b(&mut sim, &bare).is_empty());
    assert_eq!(read_all(&mut sim, server), Err(TcpError::WouldBlock));
    let fresh = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt,
        info.snd_nxt,
        b"fresh",
        Some(recent + 1),
    );
    inject_to_b(&mut sim, &fresh);
    assert_eq!(read_all(&mut sim, server).unwrap(), b"fresh");
}

#[test]
fn a_paws_rejected_duplicate_is_reported_by_a_dsack() {
    let mut sim = sim();
    let (client, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    sim.a.tcp_send(sim.now, client, b"hello").unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(read_all(&mut sim, server).unwrap(), b"hello");
    // The same bytes again, as a late copy of the original with its older timestamp.
    let recent = last_tsval_from_a(&sim);
    let late = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt,
        info.snd_nxt,
        b"hello",
        Some(recent - 1000),
    );
    let answers = inject_to_b(&mut sim, &late);
    assert_eq!(sim.b.tcp_info(server).unwrap().stats.paws_rejected, 1);
    assert_eq!(answers.len(), 1, "answered at once");
    assert_eq!(
        answers[0].options.sack_blocks.as_slice().first(),
        Some(&(info.rcv_nxt, info.rcv_nxt + 5)),
        "its first SACK block is the duplicate (RFC 2883 §4)"
    );
    assert_eq!(read_all(&mut sim, server), Err(TcpError::WouldBlock));
}

#[test]
fn ts_recent_is_taken_only_from_segments_at_or_before_last_ack_sent() {
    let mut sim = sim();
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let tsval = last_tsval_from_a(&sim);
    // Two small segments back to back: the first is acknowledged late (delayed ACK), so the
    // second lies beyond Last.ACK.sent and its timestamp is not recorded (RFC 7323 §4.3 (2)).
    let first = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt,
        info.snd_nxt,
        b"one",
        Some(tsval + 1),
    );
    let second = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt + 3,
        info.snd_nxt,
        b"two",
        Some(tsval + 2),
    );
    assert!(inject_to_b(&mut sim, &first).is_empty(), "the ACK waits");
    assert!(inject_to_b(&mut sim, &second).is_empty(), "the ACK waits");
    let before = sim.segments.len();
    sim.run_for(Duration::from_millis(100));
    // (A, which never sent these bytes, then answers the ACK, and B that answer: the first
    // ACK is the one that matters.)
    let ack = sim.segments[before..]
        .iter()
        .find(|s| !s.from_a)
        .expect("the delayed ACK");
    assert_eq!(ack.ack, (info.rcv_nxt + 6).raw());
    assert_eq!(
        ack.options.timestamps.map(|t| t.tsecr),
        Some(tsval + 1),
        "the timestamp of the earliest unacknowledged segment is echoed"
    );
}

#[test]
fn ts_recent_older_than_24_days_no_longer_rejects_a_segment() {
    let mut sim = sim();
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let old_tsval = last_tsval_from_a(&sim) - 1000;
    const DAY: Duration = Duration::from_secs(24 * 3600);
    sim.run_for(DAY * 23);
    let frame = forged(
        &info,
        PSH_ACK,
        info.rcv_nxt,
        info.snd_nxt,
        b"a",
        Some(old_tsval),
    );
    inject_to_b(&mut sim, &frame);
    assert_eq!(sim.b.tcp_info(server).unwrap().stats.paws_rejected, 1);
    // RFC 7323 §5.5: 24 days after TS.Recent was last set it is invalid.
    sim.run_for(DAY);
    inject_to_b(&mut sim, &frame);
    let after = sim.b.tcp_info(server).unwrap();
    assert_eq!(after.stats.paws_rejected, 1);
    assert_eq!(read_all(&mut sim, server).unwrap(), b"a");
}

// ---- RFC 1337 ----

/// A and B close, A first: A's connection ends in TIME-WAIT. Returns it and B's next
/// TSval (for a RST B's clock would carry).
fn a_in_time_wait(sim: &mut Sim) -> ConnectionInfo {
    let (client, server) = established(sim);
    sim.a.tcp_close(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(10));
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(100));
    let info = sim.a.tcp_info(client).expect("still in TIME-WAIT");
    assert_eq!(info.state, State::TimeWait);
    info
}

fn rst_from_b(info: &ConnectionInfo) -> Vec<u8> {
    let rst = TcpRepr {
        src_port: info.remote.port(),
        dst_port: info.local.port(),
        seq_number: info.rcv_nxt,
        ack_number: SeqNum::new(0),
        flags: TcpFlags::RST,
        window_len: 0,
        urgent_pointer: 0,
        options: TcpOptions::default(),
        payload: &[],
    };
    tcp_frame(HOST_B, HOST_A, &rst)
}

#[test]
fn a_rst_does_not_end_time_wait_by_default() {
    let mut sim = sim();
    let info = a_in_time_wait(&mut sim);
    sim.a
        .handle_frame(sim.now, &rst_from_b(&info), RxChecksum::Verify);
    sim.settle();
    assert_eq!(sim.a.tcp_info(info.id).unwrap().state, State::TimeWait);
    // 2·MSL still ends it.
    sim.run_for(Duration::from_secs(61));
    assert!(sim.a.tcp_info(info.id).is_none());
}

#[test]
fn a_rst_ends_time_wait_when_rfc1337_is_off() {
    let mut sim = sim_with(|c| c.tcp.rfc1337 = false);
    let info = a_in_time_wait(&mut sim);
    sim.a
        .handle_frame(sim.now, &rst_from_b(&info), RxChecksum::Verify);
    sim.settle();
    assert!(
        sim.events_a.iter().any(|(_, e)| matches!(
            e,
            Event::StateChanged {
                from: State::TimeWait,
                to: State::Closed,
                cause: Cause::RstReceived,
                ..
            }
        )),
        "Linux's default (tcp_rfc1337 = 0)"
    );
}

// ---- Data after close ----

fn reset_errors(events: &[(rawtcp_core::Instant, Event)], id: ConnectionId) -> usize {
    events
        .iter()
        .filter(|(_, e)| *e == Event::Error(id, ConnError::Reset))
        .count()
}

#[test]
fn data_arriving_after_close_is_answered_with_a_reset() {
    let mut sim = sim();
    let (client, server) = established(&mut sim);
    sim.a.tcp_close(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.a.tcp_info(client).unwrap().state, State::FinWait2);
    let before = sim.segments.len();
    sim.b.tcp_send(sim.now, server, b"too late").unwrap();
    sim.run_for(Duration::from_millis(10));
    let flags: Vec<_> = sim.segments[before..]
        .iter()
        .map(|s| (s.from_a, s.flags))
        .collect();
    assert_eq!(flags, vec![(false, PSH_ACK), (true, TcpFlags::RST)]);
    assert_eq!(sim.b.tcp_state(server), Some(State::Closed));
    assert_eq!(
        reset_errors(&sim.events_b, server),
        1,
        "the peer learns of the loss"
    );
    assert!(sim.a.tcp_info(client).is_none(), "A's connection is gone");
}

#[test]
fn data_arriving_after_shutdown_read_is_answered_with_a_reset() {
    let mut sim = sim();
    let (client, server) = established(&mut sim);
    sim.b.tcp_send(sim.now, server, b"read me").unwrap();
    sim.run_for(Duration::from_millis(100));
    sim.a.tcp_shutdown_read(sim.now, client).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        sim.a.tcp_recv(sim.now, client, &mut buf),
        Ok(7),
        "what came before stays readable"
    );
    sim.b.tcp_send(sim.now, server, b"lost").unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.a.tcp_state(client), Some(State::Closed));
    assert_eq!(sim.b.tcp_state(server), Some(State::Closed));
    assert_eq!(reset_errors(&sim.events_a, client), 1);
    assert_eq!(reset_errors(&sim.events_b, server), 1);
}

// ---- Rate limits on what we send ----

#[test]
fn resets_to_segments_for_closed_ports_are_rate_limited() {
    let mut sim = sim_with(|c| {
        c.reset_rate = 10;
        c.reset_burst = 5;
    });
    // ARP first, so that B's answers are not held waiting for it.
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let syn_to = |sim: &mut Sim, port: u16| {
        let closed = ConnectionInfo {
            local: SocketAddrV4::new(B_IP, 9),
            remote: SocketAddrV4::new(A_IP, port),
            ..info.clone()
        };
        let syn = forged(
            &closed,
            TcpFlags::SYN,
            SeqNum::new(1),
            SeqNum::new(0),
            &[],
            None,
        );
        inject_to_b(sim, &syn)
            .iter()
            .filter(|s| s.flags.contains(TcpFlags::RST))
            .count()
    };
    let burst: usize = (0..20).map(|i| syn_to(&mut sim, 50000 + i)).sum();
    assert_eq!(burst, 5, "the burst");
    assert_eq!(sim.b.stats().drops(DropReason::ResetRateLimited), 15);
    sim.run_for(Duration::from_millis(300));
    let refilled: usize = (0..20).map(|i| syn_to(&mut sim, 51000 + i)).sum();
    assert_eq!(refilled, 3, "10 per second: 3 in 300 ms");
    assert_eq!(sim.b.stats().drops(DropReason::ResetRateLimited), 32);
}

// ---- ICMP fragmentation needed, RFC 5927 and RFC 1191 ----

/// An established pair with one data segment from A in flight (unacknowledged: B's TCP is
/// cut off), and that segment's IPv4 datagram.
fn data_in_flight(sim: &mut Sim) -> (ConnectionId, Vec<u8>) {
    let (client, _) = established(sim);
    sim.blackhole_tcp_to_b = true;
    sim.a.tcp_send(sim.now, client, &[7u8; 1000]).unwrap();
    sim.settle();
    let datagram = sim
        .frames
        .iter()
        .rev()
        .find(|(_, from_a, frame)| *from_a && frame.len() > 1000)
        .map(|(_, _, frame)| frame[14..].to_vec())
        .expect("the data segment");
    (client, datagram)
}

fn frag_needed(sim: &mut Sim, mtu: u16, quoted: &[u8]) {
    let frame = icmp_unreachable_frame(HOST_B, HOST_A, DstUnreachable::FragRequired, mtu, quoted);
    sim.a.handle_frame(sim.now, &frame, RxChecksum::Verify);
    sim.settle();
}

#[test]
fn fragmentation_needed_quoting_data_not_in_flight_is_ignored() {
    let mut sim = sim();
    let (client, mut datagram) = data_in_flight(&mut sim);
    let mss = sim.a.tcp_info(client).unwrap().mss;
    // The quoted TCP sequence number (IPv4 header 20 bytes, then ports, then seq), moved
    // past SND.NXT: what a blind attacker that guessed wrong would send.
    let seq = u32::from_be_bytes(datagram[24..28].try_into().unwrap()).wrapping_add(5000);
    datagram[24..28].copy_from_slice(&seq.to_be_bytes());
    frag_needed(&mut sim, 1000, &datagram);
    assert_eq!(sim.a.tcp_info(client).unwrap().mss, mss);
    assert_eq!(sim.a.stats().drops(DropReason::IcmpNotInFlight), 1);
}

#[test]
fn fragmentation_needed_never_lowers_the_mss_below_the_floors() {
    let mut sim = sim();
    let (client, datagram) = data_in_flight(&mut sim);
    // A forged next-hop MTU of 68 (the IPv4 minimum) is taken as min_path_mtu, 552.
    frag_needed(&mut sim, 68, &datagram);
    assert_eq!(sim.a.tcp_info(client).unwrap().mss, 552 - 40);

    // With the path MTU floor off, the MSS floor (Linux's tcp_min_snd_mss) still holds.
    let mut sim = sim_with(|c| c.tcp.min_path_mtu = 0);
    let (client, datagram) = data_in_flight(&mut sim);
    frag_needed(&mut sim, 68, &datagram);
    assert_eq!(sim.a.tcp_info(client).unwrap().mss, 48);
}

#[test]
fn segments_without_timestamps_are_taken_when_timestamps_are_not_required() {
    let mut sim = sim_with(|c| c.tcp.timestamps_required = false);
    let (_, server) = established(&mut sim);
    let info = sim.b.tcp_info(server).unwrap();
    let bare = forged(&info, PSH_ACK, info.rcv_nxt, info.snd_nxt, b"bare", None);
    inject_to_b(&mut sim, &bare);
    assert_eq!(
        read_all(&mut sim, server).unwrap(),
        b"bare",
        "as Linux does"
    );
}
