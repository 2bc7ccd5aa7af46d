//! A bulk stream from A to B whose instruction counts callgrind splits by side:
//!
//! ```text
//! cargo build --release -p rawtcp-core --example bulk_sides
//! valgrind --tool=callgrind target/release/examples/bulk_sides 134217728
//! callgrind_annotate --inclusive=yes callgrind.out.* | grep -E 'bulk_sides::\w+ \['
//! ```
//!
//! At 57810fd, 128 MiB: the sender 6.28 M instructions per MiB (of which taking ACKs 2.18),
//! the receiver 5.40; a96349b, before RACK, 4.92 and 5.04 (ported there as a test harness).
//!
//! The link has no delay and delivers the way a veth bulk transfer does: each data segment
//! reaches B alone and B transmits after each, so B acknowledges every second segment as a
//! kernel receiver does, and A takes B's ACKs as one batch per turn, as a driver hands a
//! batch over. (`bulk_sim` delivers a whole flight at once, and one ACK answers it: it
//! cannot show what an ACK costs the sender.)
//!
//! Every engine call goes through a function of its own named for its side (`sender_*`,
//! `receiver_*`, never inlined), so that each one's inclusive cost is that side's; each
//! counts its calls, which also keeps the linker from folding two of them into one.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rawtcp_core::{Config, ConnectionId, Instant, Ipv4Cidr, Stack, VecSink};
use rawtcp_wire::RxChecksum;
use rawtcp_wire::ethernet::EthernetAddress;

/// Calls of each wrapper below, in the order they are declared.
static CALLS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
const NAMES: [&str; 8] = [
    "sender_write",
    "sender_transmit",
    "sender_frame",
    "sender_timer",
    "receiver_read",
    "receiver_transmit",
    "receiver_frame",
    "receiver_timer",
];

fn host(last: u8) -> Config {
    Config::new(
        EthernetAddress([2, 0, 0, 0, 0, last]),
        Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24),
    )
}

#[inline(never)]
fn sender_write(a: &mut Stack, now: Instant, id: ConnectionId, data: &[u8]) -> Option<usize> {
    CALLS[0].fetch_add(1, Relaxed);
    a.tcp_send(now, id, data).ok()
}

#[inline(never)]
fn sender_transmit(a: &mut Stack, now: Instant, sink: &mut VecSink) {
    CALLS[1].fetch_add(1, Relaxed);
    let _ = a.poll_transmit(now, sink);
}

#[inline(never)]
fn sender_frame(a: &mut Stack, now: Instant, frame: Vec<u8>) {
    CALLS[2].fetch_add(1, Relaxed);
    a.handle_frame_bytes(now, frame.into(), RxChecksum::Verify);
}

#[inline(never)]
fn sender_timer(a: &mut Stack, now: Instant) {
    CALLS[3].fetch_add(1, Relaxed);
    if a.poll_timeout().is_some_and(|t| t <= now) {
        a.handle_timeout(now);
    }
    while a.poll_event().is_some() {}
}

#[inline(never)]
fn receiver_read(b: &mut Stack, now: Instant, id: ConnectionId, buf: &mut [u8]) -> usize {
    CALLS[4].fetch_add(1, Relaxed);
    let mut read = 0;
    while let Ok(n @ 1..) = b.tcp_recv(now, id, buf) {
        read += n;
    }
    read
}

#[inline(never)]
fn receiver_transmit(b: &mut Stack, now: Instant, sink: &mut VecSink) {
    CALLS[5].fetch_add(1, Relaxed);
    let _ = b.poll_transmit(now, sink);
}

#[inline(never)]
fn receiver_frame(b: &mut Stack, now: Instant, frame: Vec<u8>) {
    CALLS[6].fetch_add(1, Relaxed);
    b.handle_frame_bytes(now, frame.into(), RxChecksum::Verify);
}

#[inline(never)]
fn receiver_timer(b: &mut Stack, now: Instant) {
    CALLS[7].fetch_add(1, Relaxed);
    if b.poll_timeout().is_some_and(|t| t <= now) {
        b.handle_timeout(now);
    }
    while b.poll_event().is_some() {}
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(128 << 20);
    let mut a = Stack::new(host(1));
    let mut b = Stack::new(host(2));
    let mut now = Instant::ZERO;
    let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
    let listener = b.tcp_listen(server, None).expect("listen");
    let client = a.tcp_connect(now, server, None).expect("connect");
    let mut sink = VecSink::new();
    let data = vec![0x5au8; 64 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut accepted = None;
    let (mut sent, mut received) = (0usize, 0usize);
    let mut acks = VecDeque::new();
    while received < total {
        if accepted.is_none() {
            accepted = b.tcp_accept(listener).ok().flatten();
        }
        if accepted.is_some() {
            while sent < total {
                let len = (total - sent).min(data.len());
                match sender_write(&mut a, now, client, &data[..len]) {
                    Some(n) => sent += n,
                    None => break,
                }
            }
        }
        sender_transmit(&mut a, now, &mut sink);
        let flight = std::mem::take(&mut sink.frames);
        let mut moved = !flight.is_empty();
        for frame in flight {
            receiver_frame(&mut b, now, frame);
            receiver_transmit(&mut b, now, &mut sink);
            acks.extend(sink.frames.drain(..));
            if let Some(id) = accepted {
                received += receiver_read(&mut b, now, id, &mut buf);
            }
        }
        receiver_transmit(&mut b, now, &mut sink);
        acks.extend(sink.frames.drain(..));
        while let Some(frame) = acks.pop_front() {
            moved = true;
            sender_frame(&mut a, now, frame);
        }
        if let Some(id) = accepted {
            received += receiver_read(&mut b, now, id, &mut buf);
        }
        now = if moved {
            now + Duration::from_micros(20)
        } else {
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            next.unwrap_or(now).max(now + Duration::from_micros(1))
        };
        sender_timer(&mut a, now);
        receiver_timer(&mut b, now);
    }
    println!("{received} bytes by {now:?} of virtual time");
    for (name, calls) in NAMES.iter().zip(&CALLS) {
        println!("{name}: {} calls", calls.load(Relaxed));
    }
    for (side, stack, id) in [("A", &a, Some(client)), ("B", &b, accepted)] {
        if let Some(info) = id.and_then(|id| stack.tcp_info(id)) {
            let s = info.stats;
            println!(
                "{side}: segments out {} in {}, retransmitted {}, loss probes {}, cwnd {}, rcv_buffer {}",
                s.segments_out,
                s.segments_in,
                s.retransmitted_segments,
                s.loss_probes,
                info.cwnd,
                info.rcv_buffer
            );
        }
    }
}
