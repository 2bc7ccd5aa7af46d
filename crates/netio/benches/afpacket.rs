//! AF_PACKET throughput over a veth between two namespaces this bench creates (needs root):
//! frames per second and nanoseconds per frame, sent and received, and the receiving
//! thread's CPU time per frame (it sleeps when it finds nothing), at 64 B, 1514 B and
//! 64 KiB, for each I/O method (recvmmsg/sendmmsg, a TPACKET_V3 receive ring beside
//! sendmmsg, a PACKET_TX_RING, one frame per syscall); then a paced run at the target
//! rate (0.85 Mpps of 1514-byte frames) to check that the receiver keeps up without drops.
//!
//! `cargo bench -p rawtcp-netio --bench afpacket [-- SECONDS] [--size BYTES] [--method batched|rxring|txring|single]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rawtcp_netio::testbed::{VethBed, VethConfig, is_root, pin_current_thread};
use rawtcp_netio::{AfPacket, AfPacketConfig, Device, FrameBatch, IoMethod};
use rawtcp_wire::ethernet::{EtherType, EthernetRepr, Frame};

/// Whether senders skip the qdisc layer (PACKET_QDISC_BYPASS).
static QDISC_BYPASS: AtomicBool = AtomicBool::new(false);

struct Run {
    sent: u64,
    received: u64,
    send_time: Duration,
    receive_time: Duration,
    tx_syscalls: u64,
    /// CPU time of the receiving thread (which sleeps 50 µs whenever it finds nothing).
    receive_cpu: Duration,
    /// Dropped by the kernel at a full receive backlog (ENOBUFS), not counted as sent.
    tx_dropped: u64,
}

/// Sends `len`-byte frames from p0 to d0 for `duration` (as fast as possible, or at `rate`
/// frames per second) while d0 counts what arrives. The sender runs on CPU 0 and the
/// receiver on CPU 1; with `steer`, d0's receive processing runs on CPU 1 too instead of
/// inside the sender's syscalls.
fn run(len: usize, method: IoMethod, duration: Duration, rate: Option<f64>, steer: bool) -> Run {
    run_with(len, method, duration, rate, steer, true)
}

/// As [`run`]; without `receive`, no socket listens on d0 (only the DUT kernel sees the
/// frames), which isolates the sender's own cost.
fn run_with(
    len: usize,
    method: IoMethod,
    duration: Duration,
    rate: Option<f64>,
    steer: bool,
    receive: bool,
) -> Run {
    let mtu = if len > 1514 { 65535 } else { 1500 };
    let config = VethConfig {
        mtu,
        ..VethConfig::default()
    };
    let bed = VethBed::new(config.clone()).expect("veth bed");
    if steer {
        bed.dut_receive_steering(0b10).expect("RPS on d0");
    }
    let done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let dut = bed.dut.name().to_string();
    let receiver_done = Arc::clone(&done);
    let receiver = thread::Builder::new()
        .name("afp-receiver".into())
        .spawn(move || {
            rawtcp_netio::netns::enter(&dut).unwrap();
            let _ = pin_current_thread(1);
            let io = AfPacketConfig {
                io: method,
                recv_buffer: Some(64 << 20),
                // As much ring as socket buffer.
                rx_ring: rawtcp_netio::RxRingConfig {
                    block_count: 512,
                    ..Default::default()
                },
                ..AfPacketConfig::default()
            };
            let mut device = AfPacket::open_with("d0", io).unwrap();
            let mut batch = FrameBatch::new(64, device.capabilities().max_frame_len);
            if !receive {
                drop(device);
                ready_tx.send(()).unwrap();
                return (0, Duration::ZERO, Duration::ZERO);
            }
            ready_tx.send(()).unwrap();
            let mut received = 0u64;
            let mut first: Option<Instant> = None;
            let mut last = Instant::now();
            let mut idle_since = None;
            loop {
                batch.clear();
                let got = device.recv(&mut batch).unwrap() as u64;
                if got > 0 {
                    let now = Instant::now();
                    first.get_or_insert(now);
                    last = now;
                    received += got;
                    idle_since = None;
                } else {
                    if receiver_done.load(Ordering::Relaxed) {
                        let idle = *idle_since.get_or_insert_with(Instant::now);
                        if idle.elapsed() > Duration::from_millis(200) {
                            break;
                        }
                    }
                    // Nothing waiting: sleep rather than spin, so the thread's CPU time is
                    // the cost of receiving, not of polling.
                    thread::sleep(Duration::from_micros(50));
                }
            }
            (
                received,
                first.map_or(Duration::ZERO, |first| last - first),
                thread_cpu(),
            )
        })
        .expect("spawn the receiver");
    ready_rx.recv().unwrap();
    let peer = bed.peer.name().to_string();
    let (dut_mac, peer_mac) = (config.dut_mac, config.peer_mac);
    let sender = thread::Builder::new()
        .name("afp-sender".into())
        .spawn(move || {
            rawtcp_netio::netns::enter(&peer).unwrap();
            let _ = pin_current_thread(0);
            let io = AfPacketConfig {
                io: method,
                send_buffer: Some(16 << 20),
                qdisc_bypass: QDISC_BYPASS.load(Ordering::Relaxed),
                ..AfPacketConfig::default()
            };
            let mut device = AfPacket::open_with("p0", io).unwrap();
            let mut batch = FrameBatch::new(64, len);
            let ethernet = EthernetRepr {
                src_addr: peer_mac,
                dst_addr: dut_mac,
                vlan_tci: None,
                ethertype: EtherType::Ipv4,
            };
            // Write every slot once; later pushes reuse the bytes and only renumber.
            for _ in 0..64 {
                let frame = batch.push(len).unwrap();
                ethernet.emit(&mut Frame::new_unchecked(&mut *frame));
                frame[14] = 0x45;
                frame[23] = 253;
            }
            batch.clear();
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < duration {
                if let Some(rate) = rate {
                    let due = start + Duration::from_secs_f64(sent as f64 / rate);
                    while Instant::now() < due {
                        std::hint::spin_loop();
                    }
                }
                while !batch.is_full() {
                    let frame = batch.push(len).unwrap();
                    frame[34..42].copy_from_slice(&sent.to_be_bytes());
                }
                sent += device.send(&mut batch).unwrap() as u64;
            }
            (
                sent,
                start.elapsed(),
                device.stats().tx_syscalls,
                device.stats().tx_dropped,
            )
        })
        .expect("spawn the sender");
    let (sent, send_time, tx_syscalls, tx_dropped) = sender.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let (received, receive_time, receive_cpu) = receiver.join().unwrap();
    Run {
        sent,
        received,
        send_time,
        receive_time,
        receive_cpu,
        tx_syscalls,
        tx_dropped,
    }
}

/// CPU time (user and system) of the calling thread so far.
fn thread_cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage writes only the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() {
    if !is_root() {
        println!("skipping the AF_PACKET bench: needs root (network namespaces, CAP_NET_RAW)");
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: f64 = args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(2.0);
    let only_size: Option<usize> = option("--size").and_then(|s| s.parse().ok());
    let only_method = option("--method");
    let duration = Duration::from_secs_f64(seconds);
    println!(
        "AF_PACKET over veth, {seconds} s per run, sender and receiver each on its own thread"
    );
    println!(
        "{:<9} {:<9} {:>7} {:>10} {:>9} {:>10} {:>9} {:>10} {:>7} {:>11} {:>9}",
        "method",
        "rx work",
        "bytes",
        "sent Mpps",
        "ns/frame",
        "recv Mpps",
        "ns/frame",
        "rx cpu ns",
        "lost %",
        "frames/call",
        "ENOBUFS"
    );
    for steer in [false, true] {
        for method in [
            IoMethod::Batched,
            IoMethod::RxRing,
            IoMethod::FrameRing,
            IoMethod::TxRing,
            IoMethod::Single,
        ] {
            let name = format!("{method:?}").to_lowercase();
            if only_method.as_ref().is_some_and(|only| *only != name) {
                continue;
            }
            for len in [64usize, 1514, 65536] {
                if only_size.is_some_and(|only| only != len) {
                    continue;
                }
                let r = run(len, method, duration, None, steer);
                let tx_pps = r.sent as f64 / r.send_time.as_secs_f64();
                let rx_pps = r.received as f64 / r.receive_time.as_secs_f64().max(1e-9);
                println!(
                    "{:<9} {:<9} {:>7} {:>10.3} {:>9.0} {:>10.3} {:>9.0} {:>10.0} {:>7.2} {:>11.1} {:>9}",
                    name,
                    if steer { "rx core" } else { "tx core" },
                    len,
                    tx_pps / 1e6,
                    1e9 / tx_pps,
                    rx_pps / 1e6,
                    1e9 / rx_pps,
                    r.receive_cpu.as_nanos() as f64 / r.received.max(1) as f64,
                    100.0 * (r.sent - r.received.min(r.sent)) as f64 / r.sent as f64,
                    r.sent as f64 / r.tx_syscalls.max(1) as f64,
                    r.tx_dropped,
                );
            }
        }
    }
    if only_size.is_some() || only_method.is_some() {
        return;
    }
    for bypass in [false, true] {
        QDISC_BYPASS.store(bypass, Ordering::Relaxed);
        let alone = run_with(1514, IoMethod::Batched, duration, None, false, false);
        let pps = alone.sent as f64 / alone.send_time.as_secs_f64();
        println!(
            "sender alone (no socket on d0), 1514 B, batched{}: {:.3} Mpps, {:.0} ns/frame",
            if bypass { ", qdisc bypass" } else { "" },
            pps / 1e6,
            1e9 / pps
        );
        let with_receiver = run(1514, IoMethod::Batched, duration, None, false);
        let pps = with_receiver.sent as f64 / with_receiver.send_time.as_secs_f64();
        println!(
            "with the receiver, 1514 B, batched{}: {:.3} Mpps, lost {}",
            if bypass { ", qdisc bypass" } else { "" },
            pps / 1e6,
            with_receiver.sent - with_receiver.received.min(with_receiver.sent)
        );
    }
    QDISC_BYPASS.store(false, Ordering::Relaxed);
    let target = 850_000.0;
    for (method, steer) in [
        (IoMethod::Batched, false),
        (IoMethod::Batched, true),
        (IoMethod::RxRing, false),
        (IoMethod::RxRing, true),
        (IoMethod::FrameRing, false),
        (IoMethod::FrameRing, true),
    ] {
        let r = run(1514, method, duration, Some(target), steer);
        println!(
            "paced at {:.2} Mpps, 1514 B, {}, rx work on the {}: sent {} ({:.3} Mpps), received {}, lost {}, ENOBUFS {}",
            target / 1e6,
            format!("{method:?}").to_lowercase(),
            if steer {
                "receiver's core"
            } else {
                "sender's core"
            },
            r.sent,
            r.sent as f64 / r.send_time.as_secs_f64() / 1e6,
            r.received,
            r.sent - r.received.min(r.sent),
            r.tx_dropped
        );
    }
}
