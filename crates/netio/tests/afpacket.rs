//! AfPacket against the Linux kernel, as root, in namespaces each test creates (TESTBED.md).

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use rawtcp_netio::testbed::have_root;
use rawtcp_netio::{AfPacket, AfPacketConfig, Device, FrameBatch, IoMethod, netns};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};

fn ping_and_udp(offloads: bool, io: IoMethod) {
    require_tool("ethtool");
    require_tool("ping");
    let bed = veth_bed();
    bed.peer_offloads(offloads).expect("ethtool");
    let (stop_tx, stop_rx) = mpsc::channel();
    let dut = bed.dut.name().to_string();
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
    let ping = exec(
        &bed.peer,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.2"],
    );
    let udp = exec(
        &bed.peer,
        &[
            "python3",
            "-c",
            "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(5): s.sendto(b'x' * 200, ('10.9.0.2', 9))",
        ],
    );
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
fn kernel_pings_a_responder_on_an_rx_ring_offloads_on() {
    // Checksum status from the ring's frame headers: TP_STATUS_CSUMNOTREADY.
    if have_root("kernel_pings_a_responder_on_an_rx_ring_offloads_on") {
        ping_and_udp(true, IoMethod::RxRing);
    }
}

#[test]
fn kernel_pings_a_responder_on_a_frame_ring_offloads_on() {
    if have_root("kernel_pings_a_responder_on_a_frame_ring_offloads_on") {
        ping_and_udp(true, IoMethod::FrameRing);
    }
}

#[test]
fn kernel_pings_a_responder_on_a_frame_ring_offloads_off() {
    if have_root("kernel_pings_a_responder_on_a_frame_ring_offloads_off") {
        ping_and_udp(false, IoMethod::FrameRing);
    }
}

#[test]
fn kernel_pings_a_responder_on_an_rx_ring_offloads_off() {
    if have_root("kernel_pings_a_responder_on_an_rx_ring_offloads_off") {
        ping_and_udp(false, IoMethod::RxRing);
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
/// `Ip: InReceives` of the namespace's kernel (/proc/net/snmp): the IPv4 datagrams its own
/// input took in.
fn ip_in_receives(ns: &rawtcp_netio::testbed::Netns) -> u64 {
    let snmp = exec(ns, &["cat", "/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&snmp.stdout);
    let mut ip = text.lines().filter(|line| line.starts_with("Ip:"));
    let (names, values) = (
        ip.next().expect("Ip: names"),
        ip.next().expect("Ip: values"),
    );
    let at = names
        .split_whitespace()
        .position(|name| name == "InReceives")
        .expect("InReceives");
    values
        .split_whitespace()
        .nth(at)
        .expect("a value")
        .parse()
        .expect("a number")
}

#[test]
fn with_a_mac_of_its_own_the_namespace_kernel_never_takes_our_frames_in() {
    // With the interface's MAC, every IPv4 frame for the stack also runs the DUT kernel's
    // input (routed, then dropped: it owns no address there). With a MAC of the stack's own
    // it is another host's frame to that kernel, dropped before it counts as received; the
    // stack still answers ARP and ping with its own address.
    if !have_root("with_a_mac_of_its_own_the_namespace_kernel_never_takes_our_frames_in") {
        return;
    }
    require_tool("ping");
    const OWN_MAC: EthernetAddress = EthernetAddress([0x02, 0x72, 0, 0, 0x0d, 0x02]);
    for (own, label) in [
        (None, "the interface's MAC"),
        (Some(OWN_MAC), "a MAC of its own"),
    ] {
        let bed = veth_bed();
        let (stop_tx, stop_rx) = mpsc::channel();
        let dut = bed.dut.name().to_string();
        let responder = thread::spawn(move || {
            netns::enter(&dut).expect("enter the DUT namespace");
            let config = AfPacketConfig {
                mac: own,
                ..AfPacketConfig::default()
            };
            let multicast = AfPacketConfig {
                mac: Some(EthernetAddress([0x01, 0, 0x5e, 0, 0, 1])),
                ..AfPacketConfig::default()
            };
            let refused = AfPacket::open_with("d0", multicast).map(|_| ());
            assert_eq!(
                refused.map_err(|e| e.kind()),
                Err(std::io::ErrorKind::InvalidInput)
            );
            let device = AfPacket::open_with("d0", config).expect("open d0");
            let mac = device.mac();
            assert_eq!(mac, own.unwrap_or(DUT_MAC));
            serve(device, mac, DUT_IP, stop_rx)
        });
        thread::sleep(Duration::from_millis(100));
        let before = ip_in_receives(&bed.dut);
        let ping = exec(
            &bed.peer,
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.2"],
        );
        let taken_in = ip_in_receives(&bed.dut) - before;
        stop_tx.send(()).unwrap();
        let seen = responder.join().expect("responder thread");
        assert!(ping.status.success(), "{label}: ping failed");
        assert_eq!(seen.echo_requests, 3, "{label}: {seen:?}");
        let neighbour = exec(&bed.peer, &["ip", "neigh", "show", "10.9.0.2"]);
        let neighbour = String::from_utf8_lossy(&neighbour.stdout).to_string();
        assert!(
            neighbour.contains(&own.unwrap_or(DUT_MAC).to_string()),
            "{label}: the peer learnt {neighbour}"
        );
        if own.is_some() {
            assert_eq!(taken_in, 0, "{label}: the DUT kernel took our datagrams in");
        } else {
            assert!(taken_in >= 3, "{label}: the DUT kernel took in {taken_in}");
        }
    }
}

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
    if have_root("batched_path_moves_100k_frames_without_loss") {
        move_100k_frames(IoMethod::Batched);
    }
}

#[test]
fn tx_ring_moves_100k_frames_without_loss() {
    if have_root("tx_ring_moves_100k_frames_without_loss") {
        move_100k_frames(IoMethod::TxRing);
    }
}

/// Frame `seq`: [`numbered_frame`], 60 to 1514 bytes long, the rest a pattern of `seq`.
fn patterned_frame(seq: u64) -> Vec<u8> {
    let mut frame = vec![0u8; 60 + (seq as usize * 7919) % (1514 - 60 + 1)];
    numbered_frame(&mut frame, seq);
    for (i, byte) in frame.iter_mut().enumerate().skip(42) {
        *byte = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    frame
}

/// The sequence number of a frame [`numbered_frame`] wrote; `None` for any other frame (the
/// peer kernel's ARP).
fn seq_of(frame: &[u8]) -> Option<u64> {
    (frame.get(12..14) == Some(&[0x08, 0x00][..]) && frame.get(23) == Some(&253))
        .then(|| u64::from_be_bytes(frame[34..42].try_into().unwrap()))
}

#[test]
fn rx_ring_receives_100k_frames_byte_exact_once_each() {
    if have_root("rx_ring_receives_100k_frames_byte_exact_once_each") {
        // 32 MiB of ring, as the batched test's socket buffer.
        ring_receives_100k_frames(AfPacketConfig {
            io: IoMethod::RxRing,
            rx_ring: rawtcp_netio::RxRingConfig {
                block_count: 256,
                ..rawtcp_netio::RxRingConfig::default()
            },
            ..AfPacketConfig::default()
        });
    }
}

#[test]
fn frame_ring_receives_100k_frames_byte_exact_once_each() {
    if have_root("frame_ring_receives_100k_frames_byte_exact_once_each") {
        ring_receives_100k_frames(AfPacketConfig {
            io: IoMethod::FrameRing,
            ring_frames: 16384,
            ..AfPacketConfig::default()
        });
    }
}

/// 100 000 frames of every length up to 1514 from the peer, each handed up once, in order and
/// byte-exact by a receive ring of `config`, or counted as dropped by the kernel; no receive
/// syscall.
fn ring_receives_100k_frames(config: AfPacketConfig) {
    const FRAMES: u64 = 100_000;
    let bed = veth_bed();
    let (ready_tx, ready_rx) = mpsc::channel();
    let dut = bed.dut.name().to_string();
    let receiver = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let mut device = AfPacket::open_with("d0", config).unwrap();
        ready_tx.send(()).unwrap();
        let mut batch = FrameBatch::new(64, device.capabilities().max_frame_len);
        let mut seen = 0u64;
        let mut last: Option<u64> = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        // Until every frame was handed up or counted as dropped by the kernel (a receiver
        // descheduled long enough on a loaded machine fills any ring).
        while seen + device.stats().rx_kernel_drops < FRAMES && std::time::Instant::now() < deadline
        {
            batch.clear();
            if device.recv(&mut batch).unwrap() == 0 {
                device.refresh_kernel_stats().unwrap();
                thread::sleep(Duration::from_micros(200));
                continue;
            }
            for (frame, _) in batch.iter() {
                let Some(seq) = seq_of(frame) else { continue };
                // Each frame once, in order: a block or slot handed twice shows here.
                assert!(
                    last.is_none_or(|last| seq > last),
                    "frame {seq} after {last:?}"
                );
                assert!(
                    frame == patterned_frame(seq).as_slice(),
                    "frame {seq} differs"
                );
                last = Some(seq);
                seen += 1;
            }
        }
        device.refresh_kernel_stats().unwrap();
        (seen, device.stats())
    });
    ready_rx.recv().unwrap();
    let peer = bed.peer.name().to_string();
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
                assert!(batch.push_frame(&patterned_frame(seq)));
                seq += 1;
            }
            while !batch.is_empty() {
                if device.send(&mut batch).unwrap() == 0 {
                    thread::sleep(Duration::from_micros(100));
                }
            }
            // A modest rate: about 64 frames per millisecond, well inside the ring.
            thread::sleep(Duration::from_millis(1));
        }
        device.stats()
    });
    let sent = sender.join().unwrap();
    let (seen, stats) = receiver.join().unwrap();
    assert_eq!(sent.tx_frames, FRAMES);
    assert!(seen > 0, "{stats:?}");
    // No frame lost silently: what the ring did not hand up, the kernel counted as dropped.
    assert!(
        seen + stats.rx_kernel_drops >= FRAMES,
        "{seen} seen, {stats:?}"
    );
    assert_eq!(stats.rx_truncated, 0, "{stats:?}");
    // No receive syscalls at all: frames are read from the ring.
    assert_eq!(stats.rx_syscalls, 0, "{stats:?}");
    if stats.rx_kernel_drops > 0 {
        println!("the receiver fell behind: {stats:?}");
    }
}

#[test]
fn frame_ring_full_counts_drops_and_hands_the_rest_once() {
    if !have_root("frame_ring_full_counts_drops_and_hands_the_rest_once") {
        return;
    }
    const FRAMES: u64 = 2_000;
    // One block: 32 slots, then the rest drop.
    let config = AfPacketConfig {
        io: IoMethod::FrameRing,
        ring_frames: 1,
        ..AfPacketConfig::default()
    };
    let (seen, stats) = overflow_a_ring(config, FRAMES);
    // The first 32 frames filled the ring; the kernel dropped the rest and counted them.
    assert_eq!(seen, (0..32).collect::<Vec<u64>>(), "{stats:?}");
    assert!(stats.rx_kernel_drops >= FRAMES - 32, "{stats:?}");
    assert_eq!(stats.rx_syscalls, 0, "{stats:?}");
}

/// A frame longer than a slot of the frame ring (the interface's MTU grew after the ring was
/// made, as a GRO super-frame exceeds it) is read whole from the socket's queue in its turn:
/// long and short frames come up in the order they were sent, byte-exact.
#[test]
fn frame_ring_reads_frames_longer_than_its_slots_whole_and_in_order() {
    if !have_root("frame_ring_reads_frames_longer_than_its_slots_whole_and_in_order") {
        return;
    }
    const FRAMES: u64 = 200;
    // Frame `seq`: every third one longer than a 2 KiB slot.
    fn frame(seq: u64) -> Vec<u8> {
        let mut frame = vec![
            0u8;
            if seq.is_multiple_of(3) {
                8000 + seq as usize
            } else {
                100
            }
        ];
        numbered_frame(&mut frame, seq);
        for (i, byte) in frame.iter_mut().enumerate().skip(42) {
            *byte = (seq as usize).wrapping_mul(7).wrapping_add(i) as u8;
        }
        frame
    }
    let bed = veth_bed();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let dut = bed.dut.name().to_string();
    let receiver = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        // vnet_hdr: receive slots for frames of up to 64 KiB.
        let config = AfPacketConfig {
            io: IoMethod::FrameRing,
            vnet_hdr: true,
            ..AfPacketConfig::default()
        };
        let mut device = AfPacket::open_with("d0", config).unwrap();
        ready_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        let mut batch = FrameBatch::new(64, device.capabilities().max_frame_len);
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while (seen.len() as u64) < FRAMES && std::time::Instant::now() < deadline {
            batch.clear();
            if device.recv(&mut batch).unwrap() == 0 {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            for (got, _) in batch.iter() {
                if let Some(seq) = seq_of(got) {
                    assert!(got == frame(seq).as_slice(), "frame {seq} differs");
                    seen.push(seq);
                }
            }
        }
        (seen, device.stats())
    });
    ready_rx.recv().unwrap();
    for (ns, dev) in [(&bed.dut, "d0"), (&bed.peer, "p0")] {
        ns.ip(&["link", "set", dev, "mtu", "9000"]).unwrap();
    }
    let peer = bed.peer.name().to_string();
    thread::spawn(move || {
        netns::enter(&peer).unwrap();
        let mut device = AfPacket::open("p0").unwrap();
        let mut batch = FrameBatch::new(16, 9014 + 200);
        for seq in 0..FRAMES {
            assert!(batch.push_frame(&frame(seq)));
            while !batch.is_empty() {
                device.send(&mut batch).unwrap();
            }
        }
    })
    .join()
    .unwrap();
    sent_tx.send(()).unwrap();
    let (seen, stats) = receiver.join().unwrap();
    assert_eq!(seen, (0..FRAMES).collect::<Vec<u64>>(), "{stats:?}");
    assert_eq!(stats.rx_truncated, 0, "{stats:?}");
    // One receive syscall per long frame, none for the others.
    assert_eq!(stats.rx_syscalls, FRAMES.div_ceil(3), "{stats:?}");
}

#[test]
fn rx_ring_full_counts_drops_and_freezes_and_hands_the_rest_once() {
    if !have_root("rx_ring_full_counts_drops_and_freezes_and_hands_the_rest_once") {
        return;
    }
    const FRAMES: u64 = 2_000;
    // Two pages of ring: a few dozen frames, then every block is ours and the rest drop.
    let config = AfPacketConfig {
        io: IoMethod::RxRing,
        rx_ring: rawtcp_netio::RxRingConfig {
            block_size: 4096,
            block_count: 2,
            retire_timeout_ms: 1,
        },
        ..AfPacketConfig::default()
    };
    let (seen, stats) = overflow_a_ring(config, FRAMES);
    assert!(
        !seen.is_empty(),
        "the ring's blocks were handed up: {stats:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "each frame once, in order: {seen:?}"
    );
    assert!(stats.rx_kernel_drops > 0, "{stats:?}");
    assert!(stats.rx_kernel_freezes > 0, "{stats:?}");
    // Every frame was either handed up or counted as dropped.
    assert!(
        seen.len() as u64 + stats.rx_kernel_drops >= FRAMES,
        "{} seen, {stats:?}",
        seen.len()
    );
}

/// Sends `frames` patterned frames from the peer, as fast as it can, to a receive ring of
/// `config` that reads nothing until the kernel has seen them all, then drains it until it
/// stays quiet for 200 ms: the frames handed up, in order, and the device's counters.
fn overflow_a_ring(config: AfPacketConfig, frames: u64) -> (Vec<u64>, rawtcp_netio::AfPacketStats) {
    let bed = veth_bed();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let dut = bed.dut.name().to_string();
    let receiver = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let mut device = AfPacket::open_with("d0", config).unwrap();
        ready_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        // Nothing read until the kernel has seen every frame (dropped ones included).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while device.stats().rx_kernel_packets < frames && std::time::Instant::now() < deadline {
            device.refresh_kernel_stats().unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        let mut batch = FrameBatch::new(64, device.capabilities().max_frame_len);
        let mut seen = Vec::new();
        let mut quiet_since = std::time::Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(200) {
            batch.clear();
            if device.recv(&mut batch).unwrap() == 0 {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            quiet_since = std::time::Instant::now();
            for (frame, _) in batch.iter() {
                if let Some(seq) = seq_of(frame) {
                    assert!(
                        frame == patterned_frame(seq).as_slice(),
                        "frame {seq} differs"
                    );
                    seen.push(seq);
                }
            }
        }
        device.refresh_kernel_stats().unwrap();
        (seen, device.stats())
    });
    ready_rx.recv().unwrap();
    let peer = bed.peer.name().to_string();
    thread::spawn(move || {
        netns::enter(&peer).unwrap();
        let mut device = AfPacket::open("p0").unwrap();
        let mut batch = FrameBatch::new(64, 1514);
        for seq in 0..frames {
            assert!(batch.push_frame(&patterned_frame(seq)));
            while batch.is_full() || (seq + 1 == frames && !batch.is_empty()) {
                device.send(&mut batch).unwrap();
            }
        }
    })
    .join()
    .unwrap();
    sent_tx.send(()).unwrap();
    receiver.join().unwrap()
}

fn move_100k_frames(sender_io: IoMethod) {
    const FRAMES: u64 = 100_000;
    let bed = veth_bed();
    let (ready_tx, ready_rx) = mpsc::channel();
    let dut = bed.dut.name().to_string();
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
    let peer = bed.peer.name().to_string();
    let sender = thread::spawn(move || {
        netns::enter(&peer).unwrap();
        let config = AfPacketConfig {
            send_buffer: Some(8 << 20),
            io: sender_io,
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

#[test]
fn vnet_hdr_sends_a_gso_super_segment_with_checksum_offload() {
    if have_root("vnet_hdr_sends_a_gso_super_segment_with_checksum_offload") {
        gso_super_segment(IoMethod::Batched);
    }
}

#[test]
fn vnet_hdr_super_segment_reaches_an_rx_ring() {
    // The virtio-net header in front of each ring frame: checksum status and GRO.
    if have_root("vnet_hdr_super_segment_reaches_an_rx_ring") {
        gso_super_segment(IoMethod::RxRing);
    }
}

#[test]
fn vnet_hdr_super_segment_reaches_a_frame_ring_whole() {
    // Longer than a slot: read from the socket's queue, with its virtio-net header.
    if have_root("vnet_hdr_super_segment_reaches_a_frame_ring_whole") {
        gso_super_segment(IoMethod::FrameRing);
    }
}

fn gso_super_segment(receiver_io: IoMethod) {
    use rawtcp_netio::{ChecksumStatus, Gso};
    use rawtcp_wire::ipv4::{self, Ipv4Repr};
    use rawtcp_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
    use rawtcp_wire::{RxChecksum, SeqNum, TxChecksum, checksum};

    const MSS: usize = 1448;
    let payload: Vec<u8> = (0..3 * MSS).map(|i| (i % 251) as u8).collect();
    let bed = veth_bed();
    let (ready_tx, ready_rx) = mpsc::channel();
    let peer = bed.peer.name().to_string();
    let receiver = thread::spawn(move || {
        netns::enter(&peer).unwrap();
        let mut device = AfPacket::open_with(
            "p0",
            AfPacketConfig {
                vnet_hdr: true,
                io: receiver_io,
                ..AfPacketConfig::default()
            },
        )
        .unwrap();
        ready_tx.send(()).unwrap();
        let mut batch = FrameBatch::new(16, device.capabilities().max_frame_len);
        let mut data = Vec::new();
        let mut frames = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while data.len() < 3 * MSS && std::time::Instant::now() < deadline {
            batch.clear();
            if device.recv(&mut batch).unwrap() == 0 {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            for (frame, meta) in batch.iter() {
                if frame.get(12..14) != Some(&[0x08, 0x00][..]) {
                    // ARP: the peer kernel's own, which the device also hands up.
                    continue;
                }
                let mut frame = frame.to_vec();
                let (src, dst, tcp_start, tcp_end) = {
                    let ip = ipv4::Packet::new_checked(&frame[14..]).unwrap();
                    let ip_repr = Ipv4Repr::parse(&ip, RxChecksum::Verify).unwrap();
                    (
                        ip_repr.src_addr,
                        ip_repr.dst_addr,
                        14 + ip.header_len(),
                        14 + usize::from(ip.total_len()),
                    )
                };
                if meta.checksum == ChecksumStatus::Partial {
                    // Finish what the kernel left for a NIC: the field holds the pseudo-header sum.
                    let sum = checksum::finish(checksum::data(&frame[tcp_start..tcp_end]));
                    frame[tcp_start + 16..tcp_start + 18].copy_from_slice(&sum.to_be_bytes());
                }
                let segment = tcp::Packet::new_checked(&frame[tcp_start..tcp_end]).unwrap();
                let repr = TcpRepr::parse(&segment, src, dst, RxChecksum::Verify)
                    .expect("the checksum verifies once completed");
                data.extend_from_slice(repr.payload);
                frames.push((meta.gso, frame.len()));
            }
        }
        (data, frames)
    });
    ready_rx.recv().unwrap();
    let dut = bed.dut.name().to_string();
    let sent_payload = payload.clone();
    let sender = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let mut device = AfPacket::open_with(
            "d0",
            AfPacketConfig {
                vnet_hdr: true,
                ..AfPacketConfig::default()
            },
        )
        .unwrap();
        let caps = device.capabilities();
        assert!(caps.gso && caps.tx_checksum_offload);
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 5001,
            seq_number: SeqNum::new(1),
            ack_number: SeqNum::new(1),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window_len: 1000,
            urgent_pointer: 0,
            options: TcpOptions::default(),
            payload: &sent_payload,
        };
        let mut batch = FrameBatch::new(4, caps.max_frame_len);
        push_tcp(
            &mut batch,
            (DUT_MAC, DUT_IP),
            (PEER_MAC, PEER_IP),
            &tcp,
            TxChecksum::Partial,
        );
        let meta = batch.meta_mut(0);
        meta.tx_checksum = TxChecksum::Partial;
        meta.gso = Some(Gso {
            segment_size: MSS as u16,
            header_len: 54,
        });
        assert_eq!(device.send(&mut batch).unwrap(), 1);
    });
    sender.join().unwrap();
    let (data, frames) = receiver.join().unwrap();
    println!("received as (gso, frame length): {frames:?}");
    assert_eq!(data, payload, "frames seen: {frames:?}");
}

#[test]
fn plain_afpacket_refuses_offload_requests() {
    if !have_root("plain_afpacket_refuses_offload_requests") {
        return;
    }
    let bed = veth_bed();
    let dut = bed.dut.name().to_string();
    thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let mut device = AfPacket::open("d0").unwrap();
        let mut batch = FrameBatch::new(4, 1514);
        batch.push(60).unwrap().fill(0);
        batch.meta_mut(0).tx_checksum = rawtcp_wire::TxChecksum::Partial;
        let error = device.send(&mut batch).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(batch.is_empty(), "the refused frame is removed");
    })
    .join()
    .unwrap();
}

/// Sends `count` frames from p0 to `dst`, each from a different source address (so that a
/// flow hash spreads them), with an IPv4 header the kernel's flow dissector can read.
fn send_flows(peer: &str, dst: rawtcp_wire::ethernet::EthernetAddress, count: u16) {
    let peer = peer.to_string();
    thread::spawn(move || {
        netns::enter(&peer).unwrap();
        let mut device = AfPacket::open("p0").unwrap();
        let ethernet = EthernetRepr {
            src_addr: PEER_MAC,
            dst_addr: dst,
            vlan_tci: None,
            ethertype: EtherType::Ipv4,
        };
        let mut batch = FrameBatch::new(64, 1514);
        for i in 0..count {
            let frame = batch.push(60).unwrap();
            frame.fill(0);
            ethernet.emit(&mut Frame::new_unchecked(&mut *frame));
            let ip = rawtcp_wire::ipv4::Ipv4Repr {
                src_addr: std::net::Ipv4Addr::new(10, 9, (i >> 8) as u8, i as u8),
                dst_addr: DUT_IP,
                protocol: rawtcp_wire::ipv4::IpProtocol::Unknown(253),
                payload_len: 26,
                ttl: 64,
                dscp: 0,
                ecn: 0,
                ident: i,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
                options: &[],
            };
            ip.emit(&mut rawtcp_wire::ipv4::Packet::new_unchecked(
                &mut frame[14..],
            ));
            if batch.is_full() || i + 1 == count {
                while !batch.is_empty() {
                    device.send(&mut batch).unwrap();
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
    })
    .join()
    .unwrap();
}

/// Receives on `devices` until `expected` frames arrived in all or a second passed quietly.
fn count_frames(devices: &mut [AfPacket], expected: usize) -> Vec<usize> {
    let mut counts = vec![0; devices.len()];
    let mut batch = FrameBatch::new(64, 1514);
    let mut quiet_since = std::time::Instant::now();
    while counts.iter().sum::<usize>() < expected && quiet_since.elapsed() < Duration::from_secs(1)
    {
        let mut any = false;
        for (device, count) in devices.iter_mut().zip(&mut counts) {
            batch.clear();
            let got = device.recv(&mut batch).unwrap();
            *count += got;
            any |= got > 0;
        }
        if any {
            quiet_since = std::time::Instant::now();
        } else {
            thread::sleep(Duration::from_millis(1));
        }
    }
    counts
}

#[test]
fn promiscuous_mode_sees_frames_for_other_addresses() {
    if !have_root("promiscuous_mode_sees_frames_for_other_addresses") {
        return;
    }
    let bed = veth_bed();
    let dut = bed.dut.name().to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let receiver = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let plain = AfPacket::open("d0").unwrap();
        let promiscuous = AfPacket::open_with(
            "d0",
            AfPacketConfig {
                promiscuous: true,
                ..AfPacketConfig::default()
            },
        )
        .unwrap();
        ready_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        count_frames(&mut [plain, promiscuous], 2 * 100)
    });
    ready_rx.recv().unwrap();
    let stranger = rawtcp_wire::ethernet::EthernetAddress([0x02, 0, 0, 0, 0x0c, 0x01]);
    send_flows(bed.peer.name(), stranger, 100);
    go_tx.send(()).unwrap();
    let counts = receiver.join().unwrap();
    assert_eq!(counts, vec![0, 100], "plain, promiscuous");
}

#[test]
fn fanout_group_spreads_flows_over_its_sockets() {
    if !have_root("fanout_group_spreads_flows_over_its_sockets") {
        return;
    }
    const FRAMES: u16 = 1000;
    let bed = veth_bed();
    let dut = bed.dut.name().to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let receiver = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let config = AfPacketConfig {
            fanout: Some(7),
            recv_buffer: Some(8 << 20),
            ..AfPacketConfig::default()
        };
        let first = AfPacket::open_with("d0", config.clone()).unwrap();
        let second = AfPacket::open_with("d0", config).unwrap();
        ready_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        count_frames(&mut [first, second], usize::from(FRAMES))
    });
    ready_rx.recv().unwrap();
    send_flows(bed.peer.name(), DUT_MAC, FRAMES);
    go_tx.send(()).unwrap();
    let counts = receiver.join().unwrap();
    // Every frame reaches exactly one socket of the group, and both get a share.
    assert_eq!(
        counts.iter().sum::<usize>(),
        usize::from(FRAMES),
        "{counts:?}"
    );
    assert!(
        counts.iter().all(|&c| c > FRAMES as usize / 10),
        "{counts:?}"
    );
}
