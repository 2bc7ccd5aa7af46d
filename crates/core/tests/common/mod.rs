//! Addresses and constructors for tests on the public simulation ([`rawtcp_core::sim`]).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};

use rawtcp_core::link::LinkConfig;
use rawtcp_core::{Config, Ipv4Cidr};
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
