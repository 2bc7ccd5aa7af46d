//! Receive-buffer autotuning on the simulated link, in virtual time: a receiver that keeps
//! up with a path whose bandwidth-delay product exceeds its initial buffer grows the buffer
//! (and its window) to cover it, up to the configured maximum.

mod common;

use std::time::Duration;

use common::*;
use rawtcp_core::ConnectionInfo;
use rawtcp_core::link::LinkConfig;

/// 100 Mbit/s from A to B, 25 ms each way: a bandwidth-delay product of 625 kB.
const RATE: u64 = 12_500_000;
const ONE_WAY: Duration = Duration::from_millis(25);
const BDP: usize = (RATE as usize) * 50 / 1000;

/// Sends 6 MB from A to B, whose buffer starts at 64 KiB and may grow to `max`; returns B's
/// view of the connection and the virtual time the transfer took.
fn bulk(max: usize) -> (ConnectionInfo, Duration) {
    let a = config(A_MAC, A_IP, 3);
    let mut b = config(B_MAC, B_IP, 4);
    b.tcp.recv_buffer = 64 * 1024;
    b.tcp.recv_buffer_max = max;
    let a_to_b = LinkConfig {
        delay: ONE_WAY,
        rate: Some(RATE),
        ..LinkConfig::default()
    };
    let b_to_a = LinkConfig {
        delay: ONE_WAY,
        ..LinkConfig::default()
    };
    let mut sim = Sim::with_links(a, b, a_to_b, b_to_a, 3);
    sim.trace = false;
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let data: Vec<u8> = (0..6_000_000).map(|i: usize| (i % 253) as u8).collect();
    let start = sim.now;
    let received = transfer(&mut sim, client, server, &data, Duration::from_secs(120));
    assert!(received == data, "the bytes arrived intact and in order");
    let took = sim.now - start;
    let info = sim
        .b
        .connections()
        .into_iter()
        .find(|c| c.id == server)
        .expect("B's connection");
    (info, took)
}

#[test]
fn the_receive_buffer_grows_to_cover_the_path_up_to_the_maximum() {
    let (fixed, fixed_took) = bulk(0);
    assert_eq!(
        fixed.rcv_buffer,
        64 * 1024,
        "no autotuning without a larger maximum"
    );

    let (tuned, tuned_took) = bulk(4 << 20);
    assert!(
        tuned.rcv_buffer >= BDP,
        "the buffer covers the bandwidth-delay product: {} < {BDP}",
        tuned.rcv_buffer
    );
    assert!(tuned.rcv_buffer <= 4 << 20, "never beyond the maximum");
    assert!(tuned_took < fixed_took, "{tuned_took:?} vs {fixed_took:?}");

    // A small maximum caps it.
    let (capped, _) = bulk(200 * 1024);
    assert_eq!(capped.rcv_buffer, 200 * 1024);
}
