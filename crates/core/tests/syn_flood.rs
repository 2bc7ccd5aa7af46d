//! A SYN flood (RFC 4987) on a virtual clock: 100 000 SYNs from spoofed sources while a
//! legitimate client connects and moves 1 MB. The server answers the flood with SYN cookies,
//! holds no more than its limits, and the transfer arrives byte-exact.

mod common;
mod counting;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use rawtcp_core::{DropReason, Event, State};
use rawtcp_wire::ethernet::EthernetAddress;
use rawtcp_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use rawtcp_wire::{RxChecksum, SeqNum};

const SPOOFED: usize = 100_000;
const PER_ROUND: usize = 500;
const MEMORY_LIMIT: usize = 4 * 1024 * 1024;
const SYN_BACKLOG: usize = 256;
const MAX_RESOLVING: usize = 32;

/// Counts the process's live heap bytes.
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// splitmix64: the flood's addresses, ports and ISNs, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A SYN from a random source: nine in ten from off the subnet (answered through the
/// gateway), one in ten from a random on-link address (each would need ARP); half offer
/// timestamps.
fn spoofed_syn(rng: &mut Rng) -> Vec<u8> {
    let r = rng.next();
    let src = if r.is_multiple_of(10) {
        Ipv4Addr::new(10, 9, 0, 3 + (r >> 8) as u8 % 250)
    } else {
        Ipv4Addr::from(0x0b00_0000 | (r >> 8) as u32 & 0x00ff_ffff)
    };
    let r2 = rng.next();
    let syn = TcpRepr {
        options: TcpOptions {
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: (r2 & 1 == 0).then_some(Timestamps {
                tsval: (r2 >> 32) as u32,
                tsecr: 0,
            }),
            ..TcpOptions::default()
        },
        ..segment(
            1024 + (r2 >> 16) as u16 % 60000,
            80,
            TcpFlags::SYN,
            SeqNum::new(r2 as u32),
            SeqNum::new(0),
            &[],
        )
    };
    let mac = EthernetAddress([2, 0xee, r as u8, (r >> 8) as u8, (r >> 16) as u8, 1]);
    tcp_frame(Host { mac, ip: src }, HOST_B, &syn)
}

#[test]
fn a_legitimate_client_moves_one_megabyte_through_a_flood_of_spoofed_syns() {
    let mut server = config(B_MAC, B_IP, 11);
    server.gateway = Some(A_IP);
    server.tcp.max_buffer_memory = MEMORY_LIMIT;
    server.tcp.syn_backlog = SYN_BACKLOG;
    server.arp.max_resolving = MAX_RESOLVING;
    let mut sim = Sim::new(config(A_MAC, A_IP, 10), server);
    // 100 000 SYN-ACKs and their retransmissions: not recorded.
    sim.trace = false;
    let listener = sim.b.tcp_listen(b_addr(80), None).unwrap();
    let mut rng = Rng(0x5eed);

    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut received = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 64 * 1024];
    let (mut client, mut accepted) = (None, None);
    let mut sent = 0;
    let mut injected = 0;
    let mut memory_peak = 0;
    // Everything above this is what the flood and the transfer cost the process.
    let heap_before = counting::live();
    let mut heap_peak = 0;
    let deadline = sim.now + Duration::from_secs(300);
    while received.len() < data.len() {
        assert!(sim.now < deadline, "the transfer did not finish");
        for _ in 0..PER_ROUND.min(SPOOFED - injected) {
            sim.b
                .handle_frame(sim.now, &spoofed_syn(&mut rng), RxChecksum::Verify);
            injected += 1;
        }
        // The client connects once the flood has filled the SYN queue.
        if client.is_none() && injected >= 2 * SYN_BACKLOG {
            client = Some(sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap());
        }
        if accepted.is_none() {
            accepted = sim.b.tcp_accept(listener).unwrap();
        }
        if let (Some(client), Some(server)) = (client, accepted) {
            pump(
                &mut sim,
                client,
                server,
                &data,
                &mut sent,
                &mut received,
                &mut buf,
            );
        }
        let memory = sim.b.tcp_memory();
        memory_peak = memory_peak.max(memory.buffered);
        heap_peak = heap_peak.max(counting::live() - heap_before);
        assert!(memory.half_open <= SYN_BACKLOG);
        sim.events_a.clear();
        sim.events_b
            .retain(|(_, e)| matches!(e, Event::Acceptable(_)));
        sim.run_for(Duration::from_millis(1));
    }
    // The flood ran its course, beside the transfer or after it.
    while injected < SPOOFED {
        for _ in 0..PER_ROUND.min(SPOOFED - injected) {
            sim.b
                .handle_frame(sim.now, &spoofed_syn(&mut rng), RxChecksum::Verify);
            injected += 1;
        }
        heap_peak = heap_peak.max(counting::live() - heap_before);
        sim.run_for(Duration::from_millis(1));
    }

    assert!(received == data, "1 MB arrives byte-exact");
    let client = client.unwrap();
    assert_eq!(sim.a.tcp_state(client), Some(State::Established));
    let stats = sim.b.stats();
    let memory = sim.b.tcp_memory();
    eprintln!(
        "flood: {} cookies sent, {} accepted, peak {} connections, {} bytes buffered (limit {}), \
         {} ARP resolutions refused, process heap peak +{} bytes, {:?}",
        stats.syn_cookies_sent,
        stats.syn_cookies_accepted,
        memory.connections_peak,
        memory.buffered_peak,
        MEMORY_LIMIT,
        stats.drops(DropReason::NeighborResolutionLimit),
        heap_peak,
        stats.nonzero_drops().collect::<Vec<_>>()
    );
    // Every SYN beyond the queue got a cookie; only the client's came back.
    assert!(stats.syn_cookies_sent >= (SPOOFED - SYN_BACKLOG) as u64);
    assert_eq!(stats.syn_cookies_accepted, 1);
    // State: the SYN queue and the client's connection, nothing per cookie.
    assert!(memory.connections_peak <= SYN_BACKLOG + 1);
    assert!(memory.buffered_peak <= MEMORY_LIMIT);
    assert!(memory_peak <= MEMORY_LIMIT);
    // The whole process (both engines, the link, the test's own buffers) grew by less than
    // the configured limit: a control block kept per SYN would have cost over 100 MB.
    assert!(heap_peak < MEMORY_LIMIT as isize, "heap +{heap_peak}");
    // Replies to on-link spoofed sources would each need ARP: bounded too.
    assert!(stats.drops(DropReason::NeighborResolutionLimit) > 0);
}
