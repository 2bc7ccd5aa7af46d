//! Tap against the Linux kernel, as root, in a namespace each test creates.

mod common;

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rawtcp_netio::testbed::have_root;
use rawtcp_netio::{AfPacket, AfPacketConfig, Device, FrameBatch, Tap, netns};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};

const TAP_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0f, 0x01]);
const TAP_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 2);

fn tap_namespace() -> Netns {
    let ns = Netns::new("tap").expect("create a namespace");
    exec(&ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    exec(
        &ns,
        &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
    );
    ns
}

#[test]
fn kernel_pings_a_responder_on_a_tap() {
    if !have_root("kernel_pings_a_responder_on_a_tap") {
        return;
    }
    require_tool("ping");
    let ns = tap_namespace();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel();
    let name = ns.name().to_string();
    let responder = thread::spawn(move || {
        netns::enter(&name).unwrap();
        let tap = Tap::open("rt-tap0").expect("create rt-tap0");
        assert_eq!(tap.name(), "rt-tap0");
        ready_tx.send(()).unwrap();
        serve(tap, TAP_MAC, TAP_IP, stop_rx)
    });
    ready_rx.recv().unwrap();
    ns_ip(&ns, &["addr", "add", "10.9.1.1/24", "dev", "rt-tap0"]);
    ns_ip(&ns, &["link", "set", "rt-tap0", "up"]);
    let ping = exec(
        &ns,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.1.2"],
    );
    stop_tx.send(()).unwrap();
    let seen = responder.join().unwrap();
    assert!(
        ping.status.success(),
        "ping failed: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert!(seen.arp_requests >= 1, "{seen:?}");
    assert_eq!(seen.echo_requests, 3, "{seen:?}");
}

#[test]
fn tap_moves_100k_frames_without_loss() {
    if !have_root("tap_moves_100k_frames_without_loss") {
        return;
    }
    const FRAMES: u64 = 100_000;
    let ns = tap_namespace();
    let name = ns.name().to_string();
    let ns_for_ip = ns.name().to_string();
    let (received, sent) = thread::spawn(move || {
        netns::enter(&name).unwrap();
        let mut tap = Tap::open("rt-tap1").unwrap();
        let up = std::process::Command::new("ip")
            .args(["-n", &ns_for_ip, "link", "set", "rt-tap1", "up"])
            .status()
            .unwrap();
        assert!(up.success());
        // What we write into the TAP, the kernel receives on rt-tap1: an AF_PACKET socket on
        // that interface counts it.
        let mut counter = AfPacket::open_with(
            "rt-tap1",
            AfPacketConfig {
                recv_buffer: Some(32 << 20),
                ..AfPacketConfig::default()
            },
        )
        .unwrap();
        let ethernet = EthernetRepr {
            src_addr: TAP_MAC,
            dst_addr: counter.mac(),
            vlan_tci: None,
            ethertype: EtherType::Ipv4,
        };
        let mut out = FrameBatch::new(64, 1514);
        let mut inbox = FrameBatch::new(64, 1514);
        let (mut sent, mut next) = (0u64, 0u64);
        let deadline = Instant::now() + Duration::from_secs(60);
        while next < FRAMES && Instant::now() < deadline {
            while sent < FRAMES && !out.is_full() {
                let frame = out.push(100).unwrap();
                ethernet.emit(&mut Frame::new_unchecked(&mut *frame));
                frame[14] = 0x45;
                frame[23] = 253;
                frame[34..42].copy_from_slice(&sent.to_be_bytes());
                sent += 1;
            }
            tap.send(&mut out).unwrap();
            thread::sleep(Duration::from_millis(1));
            inbox.clear();
            counter.recv(&mut inbox).unwrap();
            for (frame, _) in inbox.iter() {
                assert_eq!(
                    u64::from_be_bytes(frame[34..42].try_into().unwrap()),
                    next,
                    "frames lost or reordered"
                );
                next += 1;
            }
        }
        (next, sent)
    })
    .join()
    .unwrap();
    assert_eq!(sent, FRAMES);
    assert_eq!(received, FRAMES);
}
