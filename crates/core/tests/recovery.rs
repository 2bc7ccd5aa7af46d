//! Loss recovery on the simulated link, in virtual time: fast retransmit and NewReno's
//! partial ACKs (RFC 5681, RFC 6582), limited transmit (RFC 3042), SACK recovery with its
//! rescue retransmission (RFC 6675), the SACK blocks we send (RFC 2018), and the windows
//! (RFC 6928, RFC 5681 §4.1). Each scenario drops chosen data segments of A's with scripted
//! rules and reads the segments back as Wireshark would show them.

mod common;

use std::time::Duration;

use common::*;
use rawtcp_core::link::{Action, LinkConfig, Rule, matches};
use rawtcp_core::{
    CongestionAlgorithm, CongestionState, ConnectionId, ConnectionInfo, Instant, TcpError,
};
use rawtcp_wire::tcp::TcpFlags;

/// One-way delay: a 20 ms round trip.
const DELAY: Duration = Duration::from_millis(10);
/// Payload per segment with timestamps (MSS 1460 − 12): RFC 5681's SMSS, which the windows
/// count in.
const SEG: u32 = 1448;
const SMSS: u32 = SEG;

/// A and B, A's `nth` data segments (1-based, ascending, retransmissions counted) dropped; 10 Mbit/s
/// from A to B so that every segment arrives on its own and is acknowledged on its own.
fn path(algorithm: CongestionAlgorithm, sack: bool, drop: &[u64]) -> Sim {
    path_with(algorithm, sack, drop, true)
}

/// [`path`], with the tail loss probe on or off.
fn path_with(algorithm: CongestionAlgorithm, sack: bool, drop: &[u64], probe: bool) -> Sim {
    let mut a = config(A_MAC, A_IP, 7);
    a.tcp.congestion_control = algorithm;
    a.tcp.sack = sack;
    a.tcp.tail_loss_probe = probe;
    let mut b = config(B_MAC, B_IP, 8);
    b.tcp.sack = sack;
    let a_to_b = LinkConfig {
        delay: DELAY,
        rate: Some(1_250_000),
        // A rule does not see what an earlier one dropped: the k-th rule counts k fewer.
        rules: drop
            .iter()
            .enumerate()
            .map(|(k, &nth)| Rule::new(nth - k as u64, matches::tcp_data(), Action::Drop))
            .collect(),
        ..LinkConfig::default()
    };
    // ACKs cross without queueing: each arrives exactly DELAY after it left.
    let b_to_a = LinkConfig {
        delay: DELAY,
        ..LinkConfig::default()
    };
    Sim::with_links(a, b, a_to_b, b_to_a, 7)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Connects, sends `len` bytes from A to B, checks that they arrived intact, and returns
/// the client's handle.
fn send(sim: &mut Sim, len: usize) -> (ConnectionId, ConnectionId) {
    let (client, server) = connected_on(sim, b_addr(80));
    let data = pattern(len);
    let received = transfer(sim, client, server, &data, Duration::from_secs(60));
    assert!(received == data, "the bytes arrived intact and in order");
    (client, server)
}

fn info(sim: &Sim, id: ConnectionId) -> ConnectionInfo {
    sim.a
        .connections()
        .into_iter()
        .find(|c| c.id == id)
        .expect("the connection")
}

/// A's ISN.
fn isn_a(sim: &Sim) -> u32 {
    sim.segments
        .iter()
        .find(|s| s.from_a && s.flags.contains(TcpFlags::SYN))
        .expect("A's SYN")
        .seq
}

/// A's data segments as (sent at, relative seq, length).
fn data_from_a(sim: &Sim) -> Vec<(Instant, u32, usize)> {
    let isn = isn_a(sim);
    segments_from(sim, true)
        .into_iter()
        .filter(|s| s.len > 0)
        .map(|s| (s.at, s.seq.wrapping_sub(isn), s.len))
        .collect()
}

/// When A sent the segment at relative `seq`, in order.
fn sent_at(sim: &Sim, seq: u32) -> Vec<Instant> {
    data_from_a(sim)
        .into_iter()
        .filter(|&(_, s, _)| s == seq)
        .map(|(at, _, _)| at)
        .collect()
}

/// B's pure ACKs as (sent at, relative ack), in order.
fn acks_from_b(sim: &Sim) -> Vec<(Instant, u32)> {
    let isn = isn_a(sim);
    segments_from(sim, false)
        .into_iter()
        .filter(|s| s.len == 0 && !s.flags.contains(TcpFlags::SYN))
        .map(|s| (s.at, s.ack.wrapping_sub(isn)))
        .collect()
}

/// The times B sent the 1st, 2nd, ... duplicate of ACK `ack`.
fn duplicates_of(sim: &Sim, ack: u32) -> Vec<Instant> {
    acks_from_b(sim)
        .into_iter()
        .filter(|&(_, a)| a == ack)
        .skip(1)
        .map(|(at, _)| at)
        .collect()
}

/// Relative sequence number of A's `n`th (1-based) data segment.
fn nth_seq(n: u32) -> u32 {
    1 + (n - 1) * SEG
}

#[test]
fn three_duplicate_acks_bring_exactly_one_fast_retransmit_and_halve_ssthresh() {
    let mut sim = path(CongestionAlgorithm::NewReno, false, &[5]);
    let lost = nth_seq(5);
    let (client, _) = send(&mut sim, 40 * SEG as usize);
    let sends = sent_at(&sim, lost);
    assert_eq!(sends.len(), 2, "sent, then retransmitted exactly once");
    let dups = duplicates_of(&sim, lost);
    assert!(dups.len() >= 3, "the peer sent duplicates: {dups:?}");
    // RFC 5681 §3.2: the retransmission goes out as the third duplicate ACK arrives.
    assert_eq!(sends[1], dups[2] + DELAY);
    let info = info(&sim, client);
    assert_eq!(info.stats.retransmit_timeouts, 0);
    assert_eq!(info.stats.fast_recoveries, 1);
    assert_eq!(info.stats.retransmitted_segments, 1);
    // ssthresh = max(FlightSize / 2, 2·SMSS), FlightSize when the third duplicate arrived.
    let highest_sent = data_from_a(&sim)
        .into_iter()
        .filter(|&(at, _, _)| at < sends[1])
        .map(|(_, seq, len)| seq + len as u32)
        .max()
        .unwrap();
    let flight = highest_sent - lost;
    assert_eq!(info.ssthresh, (flight / 2).max(2 * SMSS));
}

#[test]
fn a_partial_ack_retransmits_the_next_hole_at_once() {
    // Without SACK, two holes in one window: the first comes back by fast retransmit, its
    // ACK is partial (it stops at the second hole), and that retransmits the second hole
    // (RFC 6582 §3.2 step 5) instead of waiting for the timer.
    let mut sim = path(CongestionAlgorithm::NewReno, false, &[5, 8]);
    let (first, second) = (nth_seq(5), nth_seq(8));
    let (client, _) = send(&mut sim, 40 * SEG as usize);
    let partial = acks_from_b(&sim)
        .into_iter()
        .find(|&(_, ack)| ack == second)
        .expect("a partial ACK up to the second hole")
        .0;
    assert_eq!(sent_at(&sim, first).len(), 2);
    let second_sends = sent_at(&sim, second);
    assert_eq!(second_sends.len(), 2);
    assert_eq!(second_sends[1], partial + DELAY);
    let info = info(&sim, client);
    assert_eq!(info.stats.retransmit_timeouts, 0);
    assert_eq!(info.stats.fast_recoveries, 1, "one recovery for both holes");
}

#[test]
fn limited_transmit_sends_new_data_on_the_first_two_duplicate_acks() {
    let mut sim = path(CongestionAlgorithm::NewReno, false, &[5]);
    let lost = nth_seq(5);
    send(&mut sim, 40 * SEG as usize);
    let dups = duplicates_of(&sim, lost);
    let data = data_from_a(&sim);
    for (k, &dup) in dups.iter().take(2).enumerate() {
        let arrival = dup + DELAY;
        let highest_before = data
            .iter()
            .filter(|&&(at, _, _)| at < arrival)
            .map(|&(_, seq, len)| seq + len as u32)
            .max()
            .unwrap();
        let sent: Vec<_> = data.iter().filter(|&&(at, _, _)| at == arrival).collect();
        // RFC 3042 §2: one previously unsent segment per duplicate ACK.
        assert_eq!(sent.len(), 1, "duplicate {}: {sent:?}", k + 1);
        assert_eq!(sent[0].1, highest_before, "new data, not a retransmission");
    }
}

#[test]
fn sack_recovers_several_holes_in_one_round_trip() {
    let rtt = 2 * DELAY;
    for algorithm in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
        let mut sim = path(algorithm, true, &[3, 5, 7]);
        let (client, _) = send(&mut sim, 40 * SEG as usize);
        let retransmitted: Vec<Instant> = [3, 5, 7]
            .iter()
            .map(|&n| {
                let sends = sent_at(&sim, nth_seq(n));
                assert_eq!(sends.len(), 2, "segment {n} goes again exactly once");
                sends[1]
            })
            .collect();
        let first = retransmitted[0];
        assert!(
            retransmitted.iter().all(|&at| at - first < rtt),
            "{algorithm:?}: all three holes within one round trip: {retransmitted:?}"
        );
        let info = info(&sim, client);
        assert_eq!(info.stats.retransmit_timeouts, 0);
        assert_eq!(info.stats.fast_recoveries, 1);
    }
}

#[test]
fn without_sack_newreno_takes_a_round_trip_per_hole() {
    // The contrast to the SACK test above: the same three holes, one per partial ACK.
    let rtt = 2 * DELAY;
    let mut sim = path(CongestionAlgorithm::NewReno, false, &[3, 5, 7]);
    let (client, _) = send(&mut sim, 40 * SEG as usize);
    let retransmitted: Vec<Instant> = [3, 5, 7]
        .iter()
        .map(|&n| sent_at(&sim, nth_seq(n))[1])
        .collect();
    assert!(retransmitted[1] - retransmitted[0] >= rtt);
    assert!(retransmitted[2] - retransmitted[1] >= rtt);
    assert_eq!(info(&sim, client).stats.retransmit_timeouts, 0);
}

#[test]
fn the_rescue_retransmission_recovers_a_lost_tail_without_a_timeout() {
    // Ten segments and no more data: the 4th and the last are lost. SACK shows the 4th lost;
    // nothing SACKed lies above the 10th, so only RFC 6675's rescue retransmission (NextSeg
    // rule 4) sends it before the retransmission timer.
    let mut sim = path(CongestionAlgorithm::Cubic, true, &[4, 10]);
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    let fourth = sent_at(&sim, nth_seq(4));
    let tenth = sent_at(&sim, nth_seq(10));
    assert_eq!((fourth.len(), tenth.len()), (2, 2));
    // The rescue waits only until cwnd − pipe leaves room for a segment: the next SACK.
    assert!(tenth[1] > fourth[1] && tenth[1] - fourth[1] < 2 * DELAY);
    let info = info(&sim, client);
    assert_eq!(info.stats.retransmit_timeouts, 0);
    assert_eq!(info.stats.rescue_retransmits, 1);
}

#[test]
fn sack_blocks_first_cover_the_segment_that_triggered_the_ack() {
    // Holes at A's 2nd, 4th, 6th, 8th and 10th segments: each later segment arrives out of
    // order, and B's ACK for it must carry the block holding it first (RFC 2018 §4: a MUST,
    // unless the segment advanced RCV.NXT), then the most recent others; three blocks at
    // most beside timestamps. Which segment triggered an ACK shows as the one its blocks
    // cover that no earlier ACK's did.
    let mut sim = path(CongestionAlgorithm::Cubic, true, &[2, 4, 6, 8, 10]);
    send(&mut sim, 14 * SEG as usize);
    let isn = isn_a(&sim);
    let segment_index = |seq: u32| (seq.wrapping_sub(isn) - 1) / SEG;
    let mut seen = std::collections::BTreeSet::new();
    let mut checked = 0;
    let mut most_blocks = 0;
    for ack in segments_from(&sim, false) {
        let blocks = ack.options.sack_blocks.as_slice();
        most_blocks = most_blocks.max(blocks.len());
        let covered = |&(left, right): &(rawtcp_wire::SeqNum, rawtcp_wire::SeqNum)| {
            segment_index(left.raw())..segment_index(right.raw())
        };
        let new: Vec<u32> = blocks
            .iter()
            .flat_map(covered)
            .filter(|i| !seen.contains(i))
            .collect();
        if let Some(first) = blocks.first()
            && !new.is_empty()
        {
            assert!(
                new.iter().all(|i| covered(first).contains(i)),
                "the first block {:?} holds the new segments {new:?}",
                covered(first)
            );
            checked += 1;
        }
        seen.extend(new);
    }
    assert!(checked >= 5, "{checked} ACKs with blocks checked");
    assert_eq!(most_blocks, 3, "three blocks beside timestamps");
}

#[test]
fn after_a_timeout_the_window_is_one_segment_and_sending_restarts_at_snd_una() {
    // Every data segment of A's after the 3rd vanishes for a while: no duplicate ACKs come
    // back, the retransmission timer fires, cwnd = 1 SMSS and A goes back to SND.UNA.
    let mut sim = path(CongestionAlgorithm::Cubic, true, &[]);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let data = pattern(20 * SEG as usize);
    sim.link_a_to_b_mut().config_mut().rules = vec![Rule::every(matches::tcp_data(), Action::Drop)];
    assert_eq!(sim.a.tcp_send(sim.now, client, &data), Ok(data.len()));
    assert!(sim.run_while(Duration::from_secs(5), |s| {
        info(s, client).stats.retransmit_timeouts == 1
    }));
    let after = info(&sim, client);
    assert_eq!(after.cwnd, SMSS);
    assert_eq!(after.congestion_state, CongestionState::Loss);
    assert_eq!(after.snd_nxt, after.snd_una + SEG);
    sim.link_a_to_b_mut().config_mut().rules.clear();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    assert!(sim.run_while(Duration::from_secs(30), |s| {
        loop {
            match s.b.tcp_recv(s.now, server, &mut buf) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{e:?}"),
            }
        }
        received.len() == data.len()
    }));
    assert!(received == data);
    assert_eq!(info(&sim, client).congestion_state, CongestionState::Open);
}

#[test]
fn the_initial_window_is_ten_segments_or_one_after_a_lost_syn() {
    let mut sim = path(CongestionAlgorithm::Cubic, true, &[]);
    let (client, _) = connected_on(&mut sim, b_addr(80));
    assert_eq!(
        info(&sim, client).cwnd,
        10 * SMSS,
        "RFC 6928: 10 segments, 14 600 bytes"
    );
    assert_eq!(
        info(&sim, client).congestion_algorithm,
        CongestionAlgorithm::Cubic
    );

    let mut sim = path(CongestionAlgorithm::Cubic, true, &[]);
    sim.link_a_to_b_mut().config_mut().rules = vec![Rule::new(
        1,
        matches::tcp_flags(TcpFlags::SYN),
        Action::Drop,
    )];
    let (client, _) = connected_on(&mut sim, b_addr(80));
    assert_eq!(
        info(&sim, client).cwnd,
        SMSS,
        "RFC 6928 §2: one segment after a lost SYN"
    );
}

#[test]
fn an_application_limited_sender_keeps_its_window_and_an_idle_one_restarts() {
    let mut sim = path(CongestionAlgorithm::NewReno, true, &[]);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let mut buf = vec![0u8; 64 * 1024];
    // One segment per round trip never fills a 10-segment window: no growth.
    for _ in 0..20 {
        assert_eq!(sim.a.tcp_send(sim.now, client, &[1u8; 100]), Ok(100));
        sim.run_for(2 * DELAY + Duration::from_millis(50));
        while let Ok(n) = sim.b.tcp_recv(sim.now, server, &mut buf) {
            if n == 0 {
                break;
            }
        }
    }
    assert_eq!(info(&sim, client).cwnd, 10 * SMSS);
    // A bulk transfer grows it...
    let data = pattern(300 * SEG as usize);
    let received = transfer(&mut sim, client, server, &data, Duration::from_secs(30));
    assert!(received == data);
    assert!(info(&sim, client).cwnd > 10 * SMSS);
    // ...and after an idle RTO the next write starts again from the initial window
    // (RFC 5681 §4.1).
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.a.tcp_send(sim.now, client, &[1u8; 100]), Ok(100));
    assert_eq!(info(&sim, client).cwnd, 10 * SMSS);
}

#[test]
fn a_segment_received_twice_is_reported_by_a_dsack() {
    // The link delivers A's 3rd data segment twice: B's next ACK carries a first SACK block
    // below its cumulative ACK, the duplicate's range (RFC 2883 §4), and A counts it.
    let mut sim = path(CongestionAlgorithm::Cubic, true, &[]);
    sim.link_a_to_b_mut().config_mut().rules =
        vec![Rule::new(3, matches::tcp_data(), Action::Duplicate)];
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    let isn = isn_a(&sim);
    let third = nth_seq(3);
    let dsacks: Vec<(u32, u32, u32)> = segments_from(&sim, false)
        .into_iter()
        .filter_map(|s| {
            let &(left, right) = s.options.sack_blocks.as_slice().first()?;
            let (left, right) = (left.raw().wrapping_sub(isn), right.raw().wrapping_sub(isn));
            let ack = s.ack.wrapping_sub(isn);
            (right <= ack).then_some((left, right, ack))
        })
        .collect();
    assert_eq!(dsacks.len(), 1, "{dsacks:?}");
    assert_eq!((dsacks[0].0, dsacks[0].1), (third, third + SEG));
    assert_eq!(info(&sim, client).stats.dsacks_received, 1);
}

#[test]
fn a_tail_loss_is_recovered_by_the_loss_probe_without_a_timeout() {
    // Ten segments and no more data, the last one lost: no duplicate ACK will ever come.
    // RFC 8985 §7: the probe timer (2·SRTT, plus the worst-case delayed ACK with one segment
    // out, never later than the RTO) sends the last segment again before the retransmission
    // timer would collapse the window. Without the probe, the timer does it.
    let last = nth_seq(10);
    let mut sim = path_with(CongestionAlgorithm::Cubic, true, &[10], true);
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    let info_probe = info(&sim, client);
    assert_eq!(sent_at(&sim, last).len(), 2);
    assert_eq!(info_probe.stats.loss_probes, 1);
    assert_eq!(info_probe.stats.retransmit_timeouts, 0);
    assert_eq!(info_probe.congestion_state, CongestionState::Open);
    let probed_at = sent_at(&sim, last)[1];

    let mut sim = path_with(CongestionAlgorithm::Cubic, true, &[10], false);
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    let info_timer = info(&sim, client);
    assert_eq!(info_timer.stats.loss_probes, 0);
    assert_eq!(info_timer.stats.retransmit_timeouts, 1);
    // One segment after the timeout, one more in slow start for the ACK of it; the probe
    // collapsed nothing (the window grew once, on the ACK of the full initial flight).
    assert_eq!(info_timer.cwnd, 2 * SMSS);
    assert_eq!(info_probe.cwnd, 11 * SMSS);
    assert!(
        probed_at <= sent_at(&sim, last)[1],
        "the probe is never later"
    );
}

#[test]
fn the_congestion_control_chosen_before_the_handshake_is_kept() {
    let mut sim = path(CongestionAlgorithm::Cubic, true, &[]);
    sim.b.tcp_listen(b_addr(80), None).unwrap();
    let client = sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap();
    sim.a
        .tcp_set_congestion_control(sim.now, client, CongestionAlgorithm::NewReno)
        .unwrap();
    sim.run_for(Duration::from_millis(100));
    let info = info(&sim, client);
    assert_eq!(info.state, rawtcp_core::State::Established);
    assert_eq!(info.congestion_algorithm, CongestionAlgorithm::NewReno);
    assert_eq!(info.cwnd, 10 * SMSS);
}
