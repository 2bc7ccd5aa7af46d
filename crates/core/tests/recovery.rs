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
        rules: drops(drop),
        ..LinkConfig::default()
    };
    // ACKs cross without queueing: each arrives exactly DELAY after it left.
    let b_to_a = LinkConfig {
        delay: DELAY,
        ..LinkConfig::default()
    };
    Sim::with_links(a, b, a_to_b, b_to_a, 7)
}

/// Rules dropping A's `nth` data segments (1-based, ascending, retransmissions counted).
fn drops(nth: &[u64]) -> Vec<Rule> {
    // A rule does not see what an earlier one dropped: the k-th rule counts k fewer.
    nth.iter()
        .enumerate()
        .map(|(k, &nth)| Rule::new(nth - k as u64, matches::tcp_data(), Action::Drop))
        .collect()
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
    // rule 4) sends it before the retransmission timer. (With RACK, on by default, the
    // retransmission of the 4th, delivered, shows the 10th overdue instead.)
    let mut sim = rack_path(false, drops(&[4, 10]));
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    let fourth = sent_at(&sim, nth_seq(4));
    let tenth = sent_at(&sim, nth_seq(10));
    assert_eq!((fourth.len(), tenth.len()), (2, 2));
    // The rescue waits only until cwnd − pipe leaves room for a segment: at the latest the
    // next SACK. (Here at once, beside the fast retransmit: CUBIC's ssthresh is β_cubic of
    // the window, which the first ACKs grew past the ten segments in flight.)
    assert!(tenth[1] >= fourth[1] && tenth[1] - fourth[1] < 2 * DELAY);
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
fn without_sack_there_is_no_loss_probe() {
    // RFC 8985 §4: RACK-TLP requires SACK. The same tail loss as above with SACK off is
    // left to the retransmission timer, the probe configured on or not.
    let mut sim = path_with(CongestionAlgorithm::Cubic, false, &[10], true);
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    let info = info(&sim, client);
    assert_eq!(info.stats.loss_probes, 0);
    assert_eq!(info.stats.retransmit_timeouts, 1);
    assert_eq!(sent_at(&sim, nth_seq(10)).len(), 2);
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

#[test]
fn acks_reordered_on_the_way_back_bring_no_false_dsacks() {
    // Data is lost now and then, so ACKs carry SACK blocks; a fifth of the ACKs are held
    // back and overtaken. An overtaken ACK's blocks lie behind SND.UNA by the time it
    // arrives: old news, not duplicates. Every D-SACK must stand for a segment B received
    // twice, which only a retransmission can make here.
    // Without timestamps: with them, PAWS drops every overtaken ACK that acknowledges less
    // than SND.UNA before its blocks are read (the next test).
    acks_reordered_on_the_way_back(false);
}

#[test]
fn acks_reordered_on_the_way_back_with_timestamps_bring_no_false_dsacks() {
    // PAWS lets an overtaken duplicate ACK through (as Linux's tcp_disordered_ack), so its
    // blocks reach the scoreboard too; they must not count as D-SACKs either.
    let info = acks_reordered_on_the_way_back(true);
    assert!(
        info.stats.paws_rejected > 0,
        "overtaken ACKs of older data are dropped"
    );
}

/// A's bulk send across a lossy path whose ACKs are reordered, with timestamps on or off;
/// checks that every D-SACK A counted stands for a retransmission.
fn acks_reordered_on_the_way_back(timestamps: bool) -> ConnectionInfo {
    let mut a = config(A_MAC, A_IP, 7);
    a.tcp.congestion_control = CongestionAlgorithm::Cubic;
    a.tcp.timestamps = timestamps;
    let mut b = config(B_MAC, B_IP, 8);
    b.tcp.timestamps = timestamps;
    let a_to_b = LinkConfig {
        delay: DELAY,
        rate: Some(1_250_000),
        loss: 0.01,
        ..LinkConfig::default()
    };
    let b_to_a = LinkConfig {
        delay: DELAY,
        reorder: 0.2,
        reorder_hold: Duration::from_millis(50),
        ..LinkConfig::default()
    };
    let mut sim = Sim::with_links(a, b, a_to_b, b_to_a, 7);
    let (client, _) = send(&mut sim, 2_000_000);
    let info = info(&sim, client);
    assert!(sim.link_b_to_a().stats().reordered > 100);
    assert!(info.stats.retransmitted_segments > 0);
    assert!(
        info.stats.dsacks_received <= info.stats.retransmitted_segments,
        "{} D-SACKs for {} retransmitted segments",
        info.stats.dsacks_received,
        info.stats.retransmitted_segments
    );
    info
}

/// CUBIC with SACK, RACK on or off, the loss probe on, and A's data shaped by `rules`.
fn rack_path(rack: bool, rules: Vec<Rule>) -> Sim {
    rack_path_with(rack, rules, true)
}

/// [`rack_path`], with timestamps on or off.
fn rack_path_with(rack: bool, rules: Vec<Rule>, timestamps: bool) -> Sim {
    let mut a = config(A_MAC, A_IP, 7);
    a.tcp.congestion_control = CongestionAlgorithm::Cubic;
    a.tcp.rack = rack;
    a.tcp.timestamps = timestamps;
    let b = config(B_MAC, B_IP, 8);
    let a_to_b = LinkConfig {
        delay: DELAY,
        rate: Some(1_250_000),
        rules,
        ..LinkConfig::default()
    };
    let b_to_a = LinkConfig {
        delay: DELAY,
        ..LinkConfig::default()
    };
    Sim::with_links(a, b, a_to_b, b_to_a, 7)
}

/// Delays A's `nth` data segment (1-based) by `delay`.
fn delay_nth(nth: u64, delay: Duration) -> Rule {
    Rule::new(nth, matches::tcp_data(), Action::Delay(delay))
}

/// Drops the first `times` transmissions of A's `nth` data segment (1-based), recognised by
/// its sequence number (the first data segment's plus (nth − 1)·SEG).
fn drop_transmissions_of(nth: u32, times: u32) -> Rule {
    use std::sync::{Arc, Mutex};
    let is_data = matches::tcp_data();
    let seen = Mutex::new((None::<u32>, 0u32));
    Rule::every(
        Arc::new(move |frame: &[u8]| {
            if !is_data(frame) {
                return false;
            }
            // Ethernet (14) + IPv4 without options (20): the sequence number at 4..8.
            let seq = u32::from_be_bytes([frame[38], frame[39], frame[40], frame[41]]);
            let mut seen = seen.lock().expect("the matcher's state");
            let first = *seen.0.get_or_insert(seq);
            if seq.wrapping_sub(first) != (nth - 1) * SEG {
                return false;
            }
            seen.1 += 1;
            seen.1 <= times
        }),
        Action::Drop,
    )
}

#[test]
fn a_rack_detected_loss_after_reordering_within_the_reordering_window_is_not_retransmitted() {
    // The 3rd segment arrives 2 ms late, overtaken by the 4th: RACK sees reordering (a
    // segment delivered below the highest delivered one, never retransmitted). Later the
    // 20th is 4 ms late, overtaken by three: three SACKed above a hole, which RFC 6675's
    // IsLost (and RACK before any reordering) calls a loss; but 4 ms is within RACK's
    // reordering window (min RTT / 4, about 5 ms here), so RACK lets it arrive.
    let rules = || {
        vec![
            delay_nth(3, Duration::from_millis(2)),
            delay_nth(20, Duration::from_millis(4)),
        ]
    };
    let mut sim = rack_path(true, rules());
    let (client, _) = send(&mut sim, 40 * SEG as usize);
    let rack = info(&sim, client);
    assert!(rack.reordering_seen);
    assert_eq!(sent_at(&sim, nth_seq(3)).len(), 1);
    assert_eq!(sent_at(&sim, nth_seq(20)).len(), 1, "never retransmitted");
    assert_eq!(rack.stats.fast_recoveries, 0);
    assert_eq!(rack.stats.retransmitted_segments, 0);
    assert_eq!(rack.reo_wnd, rack.min_rtt.expect("measured") / 4);

    // The duplicate-ACK threshold alone retransmits the 20th.
    let mut sim = rack_path(false, rules());
    let (client, _) = send(&mut sim, 40 * SEG as usize);
    assert_eq!(sent_at(&sim, nth_seq(20)).len(), 2);
    assert_eq!(info(&sim, client).stats.fast_recoveries, 1);
}

#[test]
fn a_lost_retransmission_is_recovered_by_rack_without_an_rto() {
    // The 5th segment is lost, and so is its fast retransmission. New data sent after the
    // retransmission is SACKed: RACK sees the retransmission overdue (RFC 8985 §6.2, its
    // transmit time is the retransmission's) and sends it a third time. Without RACK
    // nothing but the retransmission timer sends it again.
    let mut sim = rack_path(true, vec![drop_transmissions_of(5, 2)]);
    let (client, _) = send(&mut sim, 60 * SEG as usize);
    assert_eq!(sent_at(&sim, nth_seq(5)).len(), 3);
    let rack = info(&sim, client);
    assert_eq!(rack.stats.retransmit_timeouts, 0);
    assert_eq!(
        rack.stats.fast_recoveries, 1,
        "one recovery for both losses"
    );

    let mut sim = rack_path(false, vec![drop_transmissions_of(5, 2)]);
    let (client, _) = send(&mut sim, 60 * SEG as usize);
    assert_eq!(sent_at(&sim, nth_seq(5)).len(), 3);
    assert_eq!(info(&sim, client).stats.retransmit_timeouts, 1);
}

#[test]
fn the_rack_reorder_timer_finds_a_loss_too_few_sacks_show() {
    // Ten segments, the 9th lost: only the 10th is SACKed above it, fewer than DupThresh, so
    // the reordering window is min RTT / 4, and the 9th is not yet overdue when that SACK
    // arrives. The reorder timer fires when it is, and it goes again — before the loss
    // probe, which is what recovers it without RACK.
    let mut sim = rack_path(true, vec![Rule::new(9, matches::tcp_data(), Action::Drop)]);
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    let rack = info(&sim, client);
    let by_timer = sent_at(&sim, nth_seq(9));
    assert_eq!(by_timer.len(), 2);
    assert_eq!(rack.stats.rack_reorder_timeouts, 1);
    assert_eq!(rack.stats.loss_probes, 0);
    assert_eq!(rack.stats.retransmit_timeouts, 0);
    // The SACK of the 10th reached A before the retransmission.
    let isn = isn_a(&sim);
    let sack_of_tenth = segments_from(&sim, false)
        .into_iter()
        .find(|s| {
            s.options
                .sack_blocks
                .as_slice()
                .iter()
                .any(|&(left, _)| left.raw().wrapping_sub(isn) == nth_seq(10))
        })
        .expect("the 10th SACKed");
    assert!(sack_of_tenth.at + DELAY < by_timer[1]);

    let mut sim = rack_path(false, vec![Rule::new(9, matches::tcp_data(), Action::Drop)]);
    let (client, _) = send(&mut sim, 10 * SEG as usize);
    assert_eq!(info(&sim, client).stats.loss_probes, 1);
    assert!(by_timer[1] < sent_at(&sim, nth_seq(9))[1]);
}

#[test]
fn the_rack_reordering_window_grows_after_a_dsack() {
    // RFC 8985 §6.2 step 4: a D-SACK (the link delivers the 3rd segment twice) doubles the
    // reordering window's multiplier for the next 16 recoveries.
    let mut sim = rack_path(true, vec![delay_nth(3, Duration::from_millis(2))]);
    let (client, _) = send(&mut sim, 20 * SEG as usize);
    let plain = info(&sim, client);
    assert_eq!(plain.reo_wnd, plain.min_rtt.expect("measured") / 4);

    let mut sim = rack_path(
        true,
        vec![
            delay_nth(3, Duration::from_millis(2)),
            Rule::new(5, matches::tcp_data(), Action::Duplicate),
        ],
    );
    let (client, _) = send(&mut sim, 20 * SEG as usize);
    let grown = info(&sim, client);
    assert_eq!(grown.stats.dsacks_received, 1);
    assert_eq!(grown.reo_wnd, grown.min_rtt.expect("measured") / 4 * 2);
}

#[test]
fn a_spurious_fast_retransmit_is_undone_by_its_dsack() {
    // The 20th segment is 8 ms late, overtaken by six, before any reordering was seen: RACK
    // (as the duplicate-ACK threshold) declares it lost and fast recovery halves the window.
    // The original arrives, then the retransmission, which B reports as a D-SACK: every
    // retransmission of the recovery came back twice, so the reduction was spurious and
    // cwnd and ssthresh come back (RFC 2883 §5, Linux's undo).
    let mut sim = rack_path(true, vec![]);
    let (client, _) = send(&mut sim, 40 * SEG as usize);
    let clean = info(&sim, client);

    let mut sim = rack_path(true, vec![delay_nth(20, Duration::from_millis(8))]);
    let (client, _) = send(&mut sim, 40 * SEG as usize);
    // The retransmission queued behind the flight: B has everything before it arrives.
    sim.run_for(Duration::from_secs(1));
    let undone = info(&sim, client);
    assert_eq!(sent_at(&sim, nth_seq(20)).len(), 2, "retransmitted once");
    assert_eq!(undone.stats.fast_recoveries, 1);
    assert_eq!(undone.stats.dsacks_received, 1);
    assert_eq!(undone.stats.rescue_retransmits, 0);
    assert_eq!(undone.stats.spurious_recoveries_undone, 1);
    assert_eq!(
        undone.ssthresh, clean.ssthresh,
        "ssthresh as before the loss"
    );
    assert_eq!(undone.congestion_state, CongestionState::Open);
}

/// Sends `data` from A and reads it at B until `until` (or until all of it arrived).
fn pump(
    sim: &mut Sim,
    (client, server): (ConnectionId, ConnectionId),
    data: &[u8],
    (sent, received): (&mut usize, &mut Vec<u8>),
    until: Instant,
) {
    let mut buf = vec![0u8; 256 * 1024];
    while received.len() < data.len() && sim.now < until {
        while *sent < data.len() {
            match sim.a.tcp_send(sim.now, client, &data[*sent..]) {
                Ok(n) => *sent += n,
                Err(TcpError::WouldBlock) => break,
                Err(error) => panic!("send: {error:?}"),
            }
        }
        loop {
            match sim.b.tcp_recv(sim.now, server, &mut buf) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(error) => panic!("recv: {error:?}"),
            }
        }
        let next = sim.next_deadline().unwrap_or(until);
        sim.run_until(next.max(sim.now + Duration::from_micros(1)).min(until));
    }
}

/// A transfer whose ACKs are all held up 300 ms for a while (a delay spike on the way
/// back), longer than the retransmission timeout: the timer fires though nothing is lost.
fn ack_delay_spike(frto: bool) -> ConnectionInfo {
    let mut a = config(A_MAC, A_IP, 7);
    a.tcp.frto = frto;
    let b = config(B_MAC, B_IP, 8);
    let a_to_b = LinkConfig {
        delay: DELAY,
        rate: Some(1_250_000),
        ..LinkConfig::default()
    };
    let b_to_a = LinkConfig {
        delay: DELAY,
        ..LinkConfig::default()
    };
    let mut sim = Sim::with_links(a, b, a_to_b, b_to_a, 7);
    let ends = connected_on(&mut sim, b_addr(80));
    let data = pattern(400 * SEG as usize);
    let (mut sent, mut received) = (0, Vec::new());
    let start = sim.now;
    pump(
        &mut sim,
        ends,
        &data,
        (&mut sent, &mut received),
        start + Duration::from_millis(150),
    );
    sim.link_b_to_a_mut().config_mut().rules = vec![Rule::every(
        matches::tcp(),
        Action::Delay(Duration::from_millis(300)),
    )];
    let spike_end = sim.now + Duration::from_millis(400);
    pump(&mut sim, ends, &data, (&mut sent, &mut received), spike_end);
    sim.link_b_to_a_mut().config_mut().rules.clear();
    let limit = sim.now + Duration::from_secs(30);
    pump(&mut sim, ends, &data, (&mut sent, &mut received), limit);
    assert!(received == data, "the bytes arrived intact and in order");
    info(&sim, ends.0)
}

#[test]
fn a_spurious_retransmission_timeout_is_found_by_frto_and_undone() {
    // RFC 5682 §2.1: after the timeout one segment goes again; the delayed ACKs then
    // acknowledge new data twice (the second time data the timeout never resent): the
    // timeout was spurious, and cwnd and ssthresh come back. Without F-RTO the sender goes
    // back to SND.UNA and sends again everything the peer already has.
    let frto = ack_delay_spike(true);
    assert_eq!(frto.stats.retransmit_timeouts, 1);
    assert_eq!(frto.stats.spurious_timeouts_undone, 1);
    assert_eq!(
        frto.stats.retransmitted_segments, 1,
        "only the timeout's own"
    );
    assert_eq!(frto.stats.fast_recoveries, 0);

    let plain = ack_delay_spike(false);
    assert_eq!(plain.stats.retransmit_timeouts, 1);
    assert_eq!(plain.stats.spurious_timeouts_undone, 0);
    assert!(plain.stats.retransmitted_segments > frto.stats.retransmitted_segments);
    assert!(plain.ssthresh < frto.ssthresh, "the reduction stayed");
}

#[test]
fn a_loss_repaired_by_the_loss_probe_still_reduces_the_window() {
    // RFC 8985 §7.4: the last of ten segments is lost and the probe's retransmission of it
    // arrives alone — no duplicate, so no D-SACK. When later data is acknowledged beyond
    // it, the sender knows the probe repaired a loss, and answers it as a one-loss recovery.
    // When nothing was lost (the tenth only late, so the probe arrives as a duplicate and is
    // D-SACKed), nothing is reduced. (That case runs without timestamps: with them, the
    // late original, older than the probe, fails PAWS and is dropped without the D-SACK
    // Linux sends for it in tcp_send_dupack.)
    let run = |rule: Rule, timestamps: bool| {
        let mut sim = rack_path_with(true, vec![rule], timestamps);
        let (client, server) = connected_on(&mut sim, b_addr(80));
        let first = pattern(10 * SEG as usize);
        assert!(transfer(&mut sim, client, server, &first, Duration::from_secs(10)) == first);
        sim.run_for(Duration::from_secs(1));
        let second = pattern(10 * SEG as usize);
        assert!(transfer(&mut sim, client, server, &second, Duration::from_secs(10)) == second);
        info(&sim, client)
    };
    let repaired = run(Rule::new(10, matches::tcp_data(), Action::Drop), true);
    assert_eq!(repaired.stats.loss_probes, 1);
    assert_eq!(repaired.stats.retransmit_timeouts, 0);
    assert_eq!(repaired.stats.fast_recoveries, 0);
    assert_eq!(repaired.stats.loss_probe_repairs, 1);
    assert!(repaired.ssthresh < u32::MAX, "a reduction: {repaired:?}");

    let late = run(
        Rule::new(
            10,
            matches::tcp_data(),
            Action::Delay(Duration::from_millis(300)),
        ),
        false,
    );
    assert_eq!(late.stats.loss_probes, 1);
    assert_eq!(late.stats.loss_probe_repairs, 0);
    assert_eq!(late.ssthresh, u32::MAX, "no reduction: {late:?}");
}

#[test]
fn cubic_reduces_the_window_it_had_when_the_loss_is_found_in_a_batch_of_acks() {
    // No rate limit either way: a window's segments reach B in the same instant, B's
    // answers (the cumulative ACK of what came before the hole, then a duplicate per
    // segment after it) reach A in the same instant, and A takes them all in before it
    // transmits, as a driver does with a receive batch. The loss is found with the
    // cumulative ACK not yet answered, so FlightSize is short of cwnd; RFC 9438 §4.6's
    // ssthresh is then β_cubic·cwnd (cwnd grows only while it is the limit, §5.8), as in
    // Linux, not β_cubic·FlightSize, which had taken the window to about half per loss
    // (7095 bytes from 18 824 here).
    let mut a = config(A_MAC, A_IP, 7);
    a.tcp.congestion_control = CongestionAlgorithm::Cubic;
    let b = config(B_MAC, B_IP, 8);
    let link = |rules| LinkConfig {
        delay: DELAY,
        rules,
        ..LinkConfig::default()
    };
    let mut sim = Sim::with_links(a, b, link(drops(&[40])), link(Vec::new()), 7);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let chunk = vec![0x5au8; 64 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut before = info(&sim, client);
    let deadline = sim.now + Duration::from_secs(10);
    let entered = loop {
        assert!(sim.now < deadline, "a fast recovery");
        while let Ok(n) = sim.a.tcp_send(sim.now, client, &chunk) {
            if n == 0 {
                break;
            }
        }
        while let Ok(n) = sim.b.tcp_recv(sim.now, server, &mut buf) {
            if n == 0 {
                break;
            }
        }
        let next = sim
            .next_deadline()
            .unwrap_or(sim.now + Duration::from_millis(1));
        sim.run_until(next.max(sim.now + Duration::from_micros(1)));
        let now = info(&sim, client);
        if now.congestion_state == CongestionState::Recovery {
            break now;
        }
        before = now;
    };
    assert_eq!(entered.stats.fast_recoveries, 1);
    assert_eq!(entered.stats.retransmit_timeouts, 0);
    // The batch's cumulative ACK may have grown cwnd before the loss was found, never
    // shrunk it: ssthresh is at least β_cubic of the window before the batch.
    let floor = f64::from(before.cwnd) * 0.7;
    assert!(
        f64::from(entered.ssthresh) >= floor - 1.0,
        "ssthresh {} below 0.7 · cwnd {} (in flight before the batch: {})",
        entered.ssthresh,
        before.cwnd,
        before.in_flight
    );
    assert_eq!(entered.cwnd, entered.ssthresh);
}
