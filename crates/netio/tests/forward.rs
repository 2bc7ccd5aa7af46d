//! The forwarder between two kernels: ARP and TCP cross it, its faults are the model's, and it
//! loses nothing of its own.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use rawtcp_core::link::LinkConfig;
use rawtcp_netio::forward::ForwarderConfig;
use rawtcp_netio::testbed::have_root;

/// Both ends get a kernel address: d0 10.9.0.2, p0 10.9.0.1.
fn kernel_bed(faults: LinkConfig) -> (VethBed, rawtcp_netio::forward::LossyPath) {
    require_tool("ethtool");
    let (bed, path) =
        VethBed::through(VethConfig::default(), ForwarderConfig::symmetric(faults, 7))
            .expect("build the lossy bed");
    bed.dut
        .ip(&["addr", "add", &format!("{DUT_IP}/24"), "dev", "d0"])
        .unwrap();
    (bed, path)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
}

/// The peer kernel listens on p0 and echoes nothing: it reads `len` bytes and returns them.
fn transfer(bed: &VethBed, len: usize) -> Vec<u8> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let peer = bed.peer.name().to_string();
    let server = std::thread::spawn(move || {
        rawtcp_netio::netns::enter(&peer).unwrap();
        let listener = TcpListener::bind((PEER_IP, 5001)).unwrap();
        ready_tx.send(()).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut received = Vec::with_capacity(len);
        stream.read_to_end(&mut received).unwrap();
        received
    });
    ready_rx.recv().unwrap();
    let dut = bed.dut.name().to_string();
    let data = pattern(len);
    let client = std::thread::spawn(move || {
        rawtcp_netio::netns::enter(&dut).unwrap();
        let mut stream = TcpStream::connect((PEER_IP, 5001)).unwrap();
        stream.write_all(&data).unwrap();
    });
    client.join().unwrap();
    server.join().unwrap()
}

#[test]
fn kernel_tcp_crosses_a_perfect_forwarder_and_it_loses_nothing() {
    if !have_root("kernel_tcp_crosses_a_perfect_forwarder_and_it_loses_nothing") {
        return;
    }
    let (bed, path) = kernel_bed(LinkConfig::default());
    let len = 20 << 20;
    assert!(
        transfer(&bed, len) == pattern(len),
        "the bytes arrived intact"
    );
    let stats = path.stop().unwrap();
    assert_eq!(stats.own_drops(), 0, "{stats:?}");
    assert_eq!(stats.a_to_b.model_drops() + stats.b_to_a.model_drops(), 0);
    assert!(stats.a_to_b.passed > 0, "ARP crossed: {stats:?}");
    assert!(stats.b_to_a.passed > 0, "ARP crossed back: {stats:?}");
    // Every frame in was a frame out (the model queue is empty once the stream closed).
    assert!(
        stats.a_to_b.forwarded >= 20 * 1024 * 1024 / 1514,
        "{stats:?}"
    );
    assert_eq!(stats.a_to_b.received, stats.a_to_b.forwarded, "{stats:?}");
}

#[test]
fn kernel_tcp_recovers_from_the_forwarders_loss_delay_and_duplicates() {
    if !have_root("kernel_tcp_recovers_from_the_forwarders_loss_delay_and_duplicates") {
        return;
    }
    let faults = LinkConfig {
        loss: 0.01,
        duplicate: 0.005,
        reorder: 0.005,
        delay: Duration::from_millis(2),
        jitter: Duration::from_micros(200),
        ..LinkConfig::default()
    };
    let (bed, path) = kernel_bed(faults);
    let len = 4 << 20;
    assert!(
        transfer(&bed, len) == pattern(len),
        "the bytes arrived intact"
    );
    let stats = path.stop().unwrap();
    assert_eq!(stats.own_drops(), 0, "{stats:?}");
    let data = stats.a_to_b;
    assert!(data.link.lost > 0 && data.link.duplicated > 0, "{stats:?}");
    assert!(data.link.reordered > 0, "{stats:?}");
    // Frames delivered are those offered, less the lost, plus the copies.
    assert_eq!(
        data.forwarded - data.passed,
        data.link.offered - data.link.lost + data.link.duplicated,
        "{stats:?}"
    );
}

/// The delay is the model's: no echo comes back sooner than the two one-way delays (a
/// lower bound only; how much later depends on the machine).
#[test]
fn the_forwarders_delay_holds_each_frame_back() {
    if !have_root("the_forwarders_delay_holds_each_frame_back") {
        return;
    }
    require_tool("ping");
    let one_way = Duration::from_millis(5);
    let (bed, path) = kernel_bed(LinkConfig {
        delay: one_way,
        ..LinkConfig::default()
    });
    let output = bed
        .dut
        .exec_checked(&["ping", "-c", "5", "-i", "0.2", "-n", &PEER_IP.to_string()])
        .expect("ping across the forwarder");
    let text = String::from_utf8_lossy(&output.stdout);
    let rtts: Vec<f64> = text
        .lines()
        .filter_map(|line| line.split("time=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(rtts.len(), 5, "every echo came back: {text}");
    let floor = 2.0 * one_way.as_secs_f64() * 1000.0;
    for rtt in &rtts {
        assert!(
            *rtt >= floor,
            "an echo in {rtt} ms, under the {floor} ms of delay: {text}"
        );
    }
    println!("round trips across 2 × {one_way:?}: {rtts:?} ms");
    let stats = path.stop().unwrap();
    assert_eq!(stats.own_drops(), 0, "{stats:?}");
}
