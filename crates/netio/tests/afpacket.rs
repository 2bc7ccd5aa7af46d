//! AfPacket against the Linux kernel, as root, in namespaces each test creates (TESTBED.md).

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use rawtcp_netio::{AfPacket, AfPacketConfig, Device, FrameBatch, IoMethod, netns};
use rawtcp_wire::ethernet::{EtherType, EthernetRepr, Frame};

fn ping_and_udp(offloads: bool, io: IoMethod) {
    require_tool("ethtool");
    require_tool("ping");
    let bed = VethBed::new(1500);
    bed.peer_offloads(offloads);
    let (stop_tx, stop_rx) = mpsc::channel();
    let dut = bed.dut.name.clone();
    let responder = thread::spawn(move || {
        netns::enter(&dut).expect("enter the DUT namespace");
        let config = AfPacketConfig {
            io,
            ..AfPacketConfig::default()
        };
        let device = AfPacket::open_with("d0", config).expect("open d0");
        assert_eq!(device.mac(), DUT_MAC);
        assert_eq!(device.capabilities().mtu, 1500);
        serve(device, DUT_MAC, DUT_IP, stop_rx)
    });
    let ping = bed
        .peer
        .exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.2"]);
    let udp = bed.peer.exec(&[
        "python3",
        "-c",
        "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(5): s.sendto(b'x' * 200, ('10.9.0.2', 9))",
    ]);
    thread::sleep(Duration::from_millis(200));
    stop_tx.send(()).unwrap();
    let seen = responder.join().expect("responder thread");
    assert!(
        ping.status.success(),
        "ping failed: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert!(
        udp.status.success(),
        "{}",
        String::from_utf8_lossy(&udp.stderr)
    );
    assert!(seen.arp_requests >= 1, "{seen:?}");
    assert_eq!(seen.echo_requests, 3, "{seen:?}");
    assert_eq!(seen.udp, 5, "{seen:?}");
    if offloads {
        // The peer kernel left the UDP checksums to a NIC that a veth does not have: the
        // frames arrive marked TP_STATUS_CSUMNOTREADY, and must be accepted, not dropped.
        assert_eq!(seen.udp_partial, 5, "{seen:?}");
    } else {
        assert_eq!(seen.udp_checksum_ok, 5, "{seen:?}");
    }
}

#[test]
fn kernel_pings_a_responder_on_afpacket_offloads_off() {
    if have_root("kernel_pings_a_responder_on_afpacket_offloads_off") {
        ping_and_udp(false, IoMethod::Batched);
    }
}

#[test]
fn kernel_pings_a_responder_on_afpacket_offloads_on() {
    if have_root("kernel_pings_a_responder_on_afpacket_offloads_on") {
        ping_and_udp(true, IoMethod::Batched);
    }
}

#[test]
fn kernel_pings_a_responder_on_afpacket_single_frame_io() {
    if have_root("kernel_pings_a_responder_on_afpacket_single_frame_io") {
        ping_and_udp(true, IoMethod::Single);
    }
}

/// Writes frame `seq` (an IPv4 EtherType, so the filter keeps it; protocol 253, reserved for
/// experiments, so no kernel acts on it) into `out`.
fn numbered_frame(out: &mut [u8], seq: u64) {
    let ethernet = EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: DUT_MAC,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    };
    ethernet.emit(&mut Frame::new_unchecked(&mut *out));
    out[14] = 0x45;
    out[23] = 253;
    out[34..42].copy_from_slice(&seq.to_be_bytes());
}

#[test]
fn batched_path_moves_100k_frames_without_loss() {
    if !have_root("batched_path_moves_100k_frames_without_loss") {
        return;
    }
    const FRAMES: u64 = 100_000;
    let bed = VethBed::new(1500);
    let (ready_tx, ready_rx) = mpsc::channel();
    let dut = bed.dut.name.clone();
    let receiver = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let config = AfPacketConfig {
            recv_buffer: Some(32 << 20),
            ..AfPacketConfig::default()
        };
        let mut device = AfPacket::open_with("d0", config).unwrap();
        ready_tx.send(()).unwrap();
        let mut batch = FrameBatch::new(64, device.capabilities().max_frame_len);
        let mut next = 0u64;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while next < FRAMES && std::time::Instant::now() < deadline {
            batch.clear();
            if device.recv(&mut batch).unwrap() == 0 {
                thread::sleep(Duration::from_micros(200));
                continue;
            }
            for (frame, _) in batch.iter() {
                let seq = u64::from_be_bytes(frame[34..42].try_into().unwrap());
                assert_eq!(seq, next, "frames lost or reordered");
                next += 1;
            }
        }
        (next, device.stats())
    });
    ready_rx.recv().unwrap();
    let peer = bed.peer.name.clone();
    let sender = thread::spawn(move || {
        netns::enter(&peer).unwrap();
        let config = AfPacketConfig {
            send_buffer: Some(8 << 20),
            ..AfPacketConfig::default()
        };
        let mut device = AfPacket::open_with("p0", config).unwrap();
        let mut batch = FrameBatch::new(64, 1514);
        let mut seq = 0;
        while seq < FRAMES {
            while !batch.is_full() && seq < FRAMES {
                numbered_frame(batch.push(100).unwrap(), seq);
                seq += 1;
            }
            while !batch.is_empty() {
                if device.send(&mut batch).unwrap() == 0 {
                    thread::sleep(Duration::from_micros(100));
                }
            }
            // A modest rate: about 64 frames per millisecond.
            thread::sleep(Duration::from_millis(1));
        }
        device.stats()
    });
    let sent = sender.join().unwrap();
    let (received, stats) = receiver.join().unwrap();
    assert_eq!(sent.tx_frames, FRAMES);
    assert_eq!(received, FRAMES, "receiver stats {stats:?}");
    // Batching is real: far fewer syscalls than frames on both sides.
    assert!(sent.tx_syscalls * 10 < FRAMES, "{sent:?}");
    assert!(stats.rx_syscalls < FRAMES, "{stats:?}");
}

#[test]
fn unknown_interface_is_not_found_with_its_name() {
    if !have_root("unknown_interface_is_not_found_with_its_name") {
        return;
    }
    let error = AfPacket::open("rt-no-such-if").unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(error.to_string().contains("rt-no-such-if"), "{error}");
}

#[test]
fn without_cap_net_raw_open_is_permission_denied() {
    if std::env::var_os("RAWTCP_UNPRIVILEGED_CHILD").is_some() {
        let error = AfPacket::open("lo").unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::PermissionDenied,
            "{error}"
        );
        assert!(error.to_string().contains("CAP_NET_RAW"), "{error}");
        return;
    }
    if !have_root("without_cap_net_raw_open_is_permission_denied") {
        // Already unprivileged: the check can run in this process.
        let error = AfPacket::open("lo").unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
        return;
    }
    require_tool("setpriv");
    // Run this same test again as nobody, with every capability dropped.
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&exe)
        .args([
            "--exact",
            "without_cap_net_raw_open_is_permission_denied",
            "--test-threads=1",
        ])
        .env("RAWTCP_UNPRIVILEGED_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
