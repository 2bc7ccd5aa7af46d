//! Moves a bulk stream between two engines in the simulation, for instruction counts that a
//! busy machine cannot blur:
//!
//! ```text
//! cargo build --release -p rawtcp-core --example bulk_sim
//! valgrind --tool=callgrind target/release/examples/bulk_sim 268435456 copy    # tcp_send
//! valgrind --tool=callgrind target/release/examples/bulk_sim 268435456 bytes   # tcp_send_bytes
//! ```
//!
//! A writes 64 KiB at a time, from a slice (`copy`: copied into the send buffer) or as a
//! `Bytes` (`bytes`: kept there), until B has read the given number of bytes.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;
use rawtcp_core::sim::Sim;
use rawtcp_core::{Config, Ipv4Cidr};
use rawtcp_wire::ethernet::EthernetAddress;

fn host(last: u8) -> Config {
    Config::new(
        EthernetAddress([2, 0, 0, 0, 0, last]),
        Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256 << 20);
    let by_bytes = args.next().as_deref() == Some("bytes");
    let mut sim = Sim::new(host(1), host(2));
    sim.trace = false;
    let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
    let listener = sim.b.tcp_listen(server, None).expect("listen");
    let client = sim.a.tcp_connect(sim.now, server, None).expect("connect");
    sim.run_for(Duration::from_millis(10));
    let accepted = sim
        .b
        .tcp_accept(listener)
        .expect("listener")
        .expect("established");
    let data = vec![0x5au8; 64 * 1024];
    let shared = Bytes::from(data.clone());
    let mut buf = vec![0u8; 256 * 1024];
    let (mut sent, mut received) = (0usize, 0usize);
    while received < total {
        while sent < total {
            let len = (total - sent).min(data.len());
            let taken = if by_bytes {
                sim.a.tcp_send_bytes(sim.now, client, shared.slice(..len))
            } else {
                sim.a.tcp_send(sim.now, client, &data[..len])
            };
            match taken {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        while let Ok(n @ 1..) = sim.b.tcp_recv(sim.now, accepted, &mut buf) {
            received += n;
        }
        sim.events_a.clear();
        sim.events_b.clear();
        let next = sim
            .next_deadline()
            .unwrap_or(sim.now + Duration::from_micros(1));
        sim.run_until(next.max(sim.now + Duration::from_micros(1)));
    }
    println!(
        "{received} bytes through {} by {:?} of virtual time",
        if by_bytes {
            "tcp_send_bytes"
        } else {
            "tcp_send"
        },
        sim.now
    );
}
