//! RFC 5227 address conflict detection on the virtual clock: the probe sequence, a conflict
//! that keeps the address from being used, the announcements, and the defence after start.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::{A_IP, A_MAC, B_IP, B_MAC, Sim, config};
use rawtcp_core::link::LinkConfig;
use rawtcp_core::{
    AddressState, Config, ConflictDetection, DropReason, Event, Instant, Stack, State, TcpError,
    VecSink,
};
use rawtcp_wire::RxChecksum;
use rawtcp_wire::arp::{self, ArpRepr, Operation};
use rawtcp_wire::dissect::{Network, dissect};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};

const OTHER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x99]);

fn probing(mut config: Config) -> Config {
    config.conflict_detection.enabled = true;
    config
}

/// The ARP packets host A (`from_a`) or B put on the link, with when.
fn arp_from(sim: &Sim, from_a: bool) -> Vec<(Instant, ArpRepr)> {
    sim.frames
        .iter()
        .filter(|(_, a, _)| *a == from_a)
        .filter_map(|(at, _, frame)| match dissect(frame, RxChecksum::Verify) {
            Ok(d) => match d.network {
                Network::Arp(arp) => Some((*at, arp)),
                _ => None,
            },
            Err(_) => None,
        })
        .collect()
}

fn arp_frame(repr: &ArpRepr, src: EthernetAddress, dst: EthernetAddress) -> Vec<u8> {
    let mut frame = vec![0u8; 14 + repr.buffer_len()];
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        vlan_tci: None,
        ethertype: EtherType::Arp,
    }
    .emit(&mut Frame::new_unchecked(&mut frame[..]));
    repr.emit(&mut arp::Packet::new_unchecked(&mut frame[14..]));
    frame
}

#[test]
fn probes_three_times_then_claims_and_announces_twice() {
    let mut sim = Sim::new(probing(config(A_MAC, A_IP, 3)), config(B_MAC, B_IP, 4));
    let listen = SocketAddrV4::new(A_IP, 80);
    assert_eq!(sim.a.address_state(), AddressState::Probing);
    assert_eq!(
        sim.a.tcp_listen(listen, None),
        Err(TcpError::AddrNotAvailable),
        "no listener on an address being probed"
    );
    sim.run_for(Duration::from_secs(20));
    let sent = arp_from(&sim, true);
    let probe = ArpRepr::probe(A_MAC, A_IP);
    let announcement = ArpRepr::announcement(A_MAC, A_IP);
    let reprs: Vec<ArpRepr> = sent.iter().map(|&(_, r)| r).collect();
    assert_eq!(
        reprs,
        vec![probe, probe, probe, announcement, announcement],
        "RFC 5227 §2.1.1 and §2.3, and nothing else"
    );
    let at: Vec<Duration> = sent.iter().map(|&(t, _)| t - Instant::ZERO).collect();
    assert!(at[0] <= Duration::from_secs(1), "within PROBE_WAIT: {at:?}");
    for gap in [at[1] - at[0], at[2] - at[1]] {
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&gap),
            "PROBE_MIN..PROBE_MAX apart: {at:?}"
        );
    }
    assert_eq!(at[3] - at[2], Duration::from_secs(2), "ANNOUNCE_WAIT");
    assert_eq!(at[4] - at[3], Duration::from_secs(2), "ANNOUNCE_INTERVAL");
    // Every frame went to the broadcast address.
    for (_, _, frame) in sim.frames.iter().filter(|(_, a, _)| *a) {
        assert!(
            Frame::new_checked(&frame[..])
                .unwrap()
                .dst_addr()
                .is_broadcast()
        );
    }
    let claimed: Vec<Instant> = sim
        .events_a
        .iter()
        .filter(|(_, e)| *e == Event::AddressClaimed { address: A_IP })
        .map(|&(t, _)| t)
        .collect();
    assert_eq!(
        claimed,
        vec![sent[3].0],
        "claimed as the first announcement goes"
    );
    assert_eq!(sim.a.address_state(), AddressState::Claimed);
    let stats = sim.a.stats();
    assert_eq!((stats.arp_probes, stats.arp_announcements), (3, 2));
    // Now the address is used: B connects to A.
    sim.a.tcp_listen(listen, None).unwrap();
    let client = sim.b.tcp_connect(sim.now, listen, None).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.b.tcp_state(client), Some(State::Established));
}

#[test]
fn while_probing_the_address_is_not_answered_for() {
    let mut stack = Stack::new(probing(config(A_MAC, A_IP, 1)));
    let now = Instant::ZERO;
    let request = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: B_MAC,
        source_protocol_addr: B_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: A_IP,
    };
    stack.handle_frame(
        now,
        &arp_frame(&request, B_MAC, EthernetAddress::BROADCAST),
        RxChecksum::Verify,
    );
    let mut sink = VecSink::new();
    assert_eq!(stack.poll_transmit(now, &mut sink), 0, "no ARP reply");
    assert_eq!(stack.stats().drops(DropReason::AddressUnclaimed), 1);
    assert_eq!(stack.address_state(), AddressState::Probing);
}

/// B already holds 10.9.0.1; A probes for it.
fn a_probes_for_b_address(b_probes_too: bool) -> Sim {
    let b = config(B_MAC, A_IP, 4);
    let b = if b_probes_too { probing(b) } else { b };
    let mut sim = Sim::with_links(
        probing(config(A_MAC, A_IP, 3)),
        b,
        LinkConfig::default(),
        LinkConfig::default(),
        5,
    );
    sim.run_for(Duration::from_secs(20));
    sim
}

#[test]
fn an_answer_to_a_probe_means_the_address_is_in_use() {
    let mut sim = a_probes_for_b_address(false);
    assert_eq!(
        sim.a.address_state(),
        AddressState::InUse { by: B_MAC },
        "B answered A's first probe"
    );
    assert!(sim.events_a.iter().any(|(_, e)| *e
        == Event::AddressInUse {
            address: A_IP,
            by: B_MAC
        }));
    let sent: Vec<ArpRepr> = arp_from(&sim, true).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        sent,
        vec![ArpRepr::probe(A_MAC, A_IP)],
        "no probe or announcement after the answer"
    );
    let answer: Vec<ArpRepr> = arp_from(&sim, false).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        answer,
        vec![ArpRepr {
            operation: Operation::Reply,
            source_hardware_addr: B_MAC,
            source_protocol_addr: A_IP,
            target_hardware_addr: A_MAC,
            target_protocol_addr: Ipv4Addr::UNSPECIFIED,
        }],
        "the owner answers a probe as RFC 826 answers a request"
    );
    assert_eq!(
        sim.a.tcp_listen(SocketAddrV4::new(A_IP, 80), None),
        Err(TcpError::AddrInUse)
    );
    assert_eq!(
        sim.a
            .tcp_connect(sim.now, SocketAddrV4::new(B_IP, 80), None),
        Err(TcpError::AddrInUse)
    );
}

#[test]
fn two_hosts_probing_for_one_address_never_both_claim_it() {
    for seed in 0..20 {
        let b = probing(config(B_MAC, A_IP, 100 + seed));
        let mut sim = Sim::with_links(
            probing(config(A_MAC, A_IP, seed)),
            b,
            LinkConfig::default(),
            LinkConfig::default(),
            seed,
        );
        sim.run_for(Duration::from_secs(20));
        let states = [sim.a.address_state(), sim.b.address_state()];
        assert!(
            states
                .iter()
                .any(|s| matches!(s, AddressState::InUse { .. })),
            "seed {seed}: {states:?}"
        );
        assert!(
            !states.iter().all(|s| *s == AddressState::Claimed),
            "seed {seed}: {states:?}"
        );
    }
}

#[test]
fn conflicts_after_the_claim_are_counted_and_defended_once_per_defend_interval() {
    let mut stack = Stack::new(probing(config(A_MAC, A_IP, 9)));
    let mut now = Instant::ZERO;
    while stack.address_state() == AddressState::Probing {
        now = stack.poll_timeout().expect("a probe timer").max(now);
        stack.handle_timeout(now);
        let _ = stack.poll_transmit(now, &mut VecSink::new());
    }
    assert_eq!(stack.address_state(), AddressState::Claimed);
    // Past the announcements.
    now += Duration::from_secs(10);
    stack.handle_timeout(now);
    let _ = stack.poll_transmit(now, &mut VecSink::new());
    while stack.poll_event().is_some() {}
    let claim = ArpRepr {
        operation: Operation::Reply,
        source_hardware_addr: OTHER_MAC,
        source_protocol_addr: A_IP,
        target_hardware_addr: EthernetAddress::BROADCAST,
        target_protocol_addr: A_IP,
    };
    let frame = arp_frame(&claim, OTHER_MAC, EthernetAddress::BROADCAST);
    let mut answers = Vec::new();
    for offset in [0, 5, 10] {
        let at = now + Duration::from_secs(offset);
        stack.handle_frame(at, &frame, RxChecksum::Verify);
        let mut sink = VecSink::new();
        let _ = stack.poll_transmit(at, &mut sink);
        let sent: Vec<ArpRepr> = sink
            .frames
            .iter()
            .filter_map(
                |f| match dissect(f, RxChecksum::Verify).map(|d| d.network) {
                    Ok(Network::Arp(arp)) => Some(arp),
                    _ => None,
                },
            )
            .collect();
        answers.push((stack.poll_event(), sent));
    }
    let conflict = |defended| {
        Some(Event::AddressConflict {
            address: A_IP,
            by: OTHER_MAC,
            defended,
        })
    };
    let announcement = vec![ArpRepr::announcement(A_MAC, A_IP)];
    assert_eq!(
        answers,
        vec![
            (conflict(true), announcement.clone()),
            (conflict(false), vec![]),
            (conflict(true), announcement),
        ],
        "RFC 5227 §2.4: at most one defence per DEFEND_INTERVAL (10 s)"
    );
    assert_eq!(stack.stats().address_conflicts, 3);
    assert_eq!(stack.address_state(), AddressState::Claimed, "we keep it");
}

#[test]
fn detection_off_sends_nothing_and_changes_no_other_random_choice() {
    let mut off = Sim::new(config(A_MAC, A_IP, 3), config(B_MAC, B_IP, 4));
    off.run_for(Duration::from_secs(20));
    assert!(off.frames.is_empty(), "no probe, no announcement");
    // The same seed with detection on picks the same ephemeral port and ISN.
    let connect = |a: Config| {
        let mut sim = Sim::new(a, config(B_MAC, B_IP, 4));
        sim.run_for(Duration::from_secs(20));
        sim.b.tcp_listen(SocketAddrV4::new(B_IP, 80), None).unwrap();
        let id = sim
            .a
            .tcp_connect(sim.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
        sim.run_for(Duration::from_millis(10));
        let info = sim.a.tcp_info(id).unwrap();
        (info.local, sim.segments[0].seq)
    };
    let mut on = config(A_MAC, A_IP, 3);
    on.conflict_detection = ConflictDetection::scaled(Duration::from_millis(1));
    assert_eq!(connect(config(A_MAC, A_IP, 3)), connect(on));
}
