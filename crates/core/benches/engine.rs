//! Engine benches (`cargo bench -p rawtcp-core --bench engine`):
//!
//! * `bulk`: two engines in one thread, frames handed straight from one to the other (no
//!   link model, no syscalls): payload Gbit/s and ns per segment at MSS 1460, written from
//!   a slice or (`_send_bytes`) handed over as `Bytes`. Four ways of
//!   receiving: `handle_frame` from reused buffers and `tcp_recv` (two copies: frame to
//!   buffer, buffer to reader); `handle_frame_bytes` with a fresh 2 KiB allocation per frame,
//!   as the drivers hand frames over (the bench copies each frame into it, where a device
//!   would receive into it), and `tcp_recv` (one copy); the same with
//!   `tcp_recv_bytes` (no copy, one call per piece) and with `tcp_recv_bytes_into` (no copy,
//!   one call for 256 KiB of pieces).
//! * `idle`: time to advance the clock by one second over 1 000 and over 100 000 idle
//!   ESTABLISHED connections with keepalive armed — equal if idle connections cost nothing
//!   per tick.
//! * `syn_cookies`: a server whose SYN queue is full answering SYNs with SYN cookies (RFC
//!   4987 §3.6): SYNs per second, each one parsed, a cookie computed (three SipHash-2-4) and
//!   its SYN-ACK written out.
//! * Memory of one idle ESTABLISHED connection besides its buffers, counted by a global
//!   allocator, printed before the benches run.

#[path = "../tests/counting/mod.rs"]
mod counting;

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use rawtcp_core::{Config, ConnectionId, FrameSink, Instant, Ipv4Cidr, Keepalive, Stack, State};
use rawtcp_wire::RxChecksum;
use rawtcp_wire::ethernet::EthernetAddress;

/// Payload moved per bulk iteration.
const BULK_CHUNK: usize = 16 << 20;

/// Counts the process's live heap bytes.
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Reusable frame buffers: no allocation per frame once warm.
struct Frames {
    buffers: Vec<Vec<u8>>,
    lens: Vec<usize>,
    used: usize,
}

impl Frames {
    fn new() -> Frames {
        Frames {
            buffers: Vec::new(),
            lens: Vec::new(),
            used: 0,
        }
    }
    fn clear(&mut self) {
        self.used = 0;
    }
}

impl FrameSink for Frames {
    fn push(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.used == self.buffers.len() {
            self.buffers.push(vec![0; 1514]);
            self.lens.push(0);
        }
        let buffer = &mut self.buffers[self.used];
        if buffer.len() < len {
            buffer.resize(len, 0);
        }
        self.lens[self.used] = len;
        self.used += 1;
        Some(&mut buffer[..len])
    }
}

fn host(last: u8, seed: u64) -> Config {
    let mut config = Config::new(
        EthernetAddress([2, 0, 0, 0, 0, last]),
        Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24),
    );
    config.seed = seed;
    // Bulk: no timestamps, so segments carry the full 1460-byte MSS.
    config.tcp.timestamps = false;
    // The idle bench opens tens of thousands of connections in one instant.
    config.tcp.syn_backlog = 1 << 20;
    config.tcp.max_half_open = 1 << 20;
    config
}

/// How frames reach the receiving stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// `handle_frame` from the sink's reused buffers.
    Borrowed,
    /// `handle_frame_bytes`, each frame in an allocation of its own (a driver's 2 KiB).
    Owned,
}

/// How the receiving application reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// `tcp_recv` into a 256 KiB buffer.
    Copy,
    /// `tcp_recv_bytes`: one piece (about a segment) per call.
    Piece,
    /// `tcp_recv_bytes_into`: up to 256 KiB of pieces per call.
    Pieces,
}

/// Moves frames between the two stacks at `now` until both are quiet.
fn exchange_with(
    a: &mut Stack,
    b: &mut Stack,
    now: Instant,
    frames: &mut Frames,
    delivery: Delivery,
) -> usize {
    let mut segments = 0;
    loop {
        let mut moved = false;
        for a_to_b in [true, false] {
            let (from, to) = if a_to_b {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            frames.clear();
            let _ = from.poll_transmit(now, frames);
            for i in 0..frames.used {
                let frame = &frames.buffers[i][..frames.lens[i]];
                match delivery {
                    Delivery::Borrowed => to.handle_frame(now, frame, RxChecksum::Trusted),
                    Delivery::Owned => {
                        // What a driver does: receive into a buffer of its own, share it.
                        let mut owned = Vec::with_capacity(2048);
                        owned.extend_from_slice(frame);
                        to.handle_frame_bytes(now, Bytes::from(owned), RxChecksum::Trusted);
                    }
                }
            }
            segments += frames.used;
            moved |= frames.used > 0;
        }
        if !moved {
            return segments;
        }
    }
}

struct Pair {
    a: Stack,
    b: Stack,
    now: Instant,
    frames: Frames,
}

impl Pair {
    /// Two stacks that have resolved each other (one connection made and aborted), so that
    /// a burst of SYNs does not wait in the ARP queue.
    fn new() -> Pair {
        Pair::with_server(host(2, 2))
    }

    /// As [`Pair::new`], B configured as `server`.
    fn with_server(server: Config) -> Pair {
        let mut pair = Pair {
            a: Stack::new(host(1, 1)),
            b: Stack::new(server),
            now: Instant::ZERO,
            frames: Frames::new(),
        };
        let (client, server) = pair.connect(79, 1)[0];
        pair.a.tcp_abort(pair.now, client).unwrap();
        pair.b.tcp_abort(pair.now, server).unwrap();
        pair.step();
        pair
    }

    fn step(&mut self) -> usize {
        self.step_with(Delivery::Borrowed)
    }

    fn step_with(&mut self, delivery: Delivery) -> usize {
        self.now += Duration::from_micros(10);
        for stack in [&mut self.a, &mut self.b] {
            if stack.poll_timeout().is_some_and(|t| t <= self.now) {
                stack.handle_timeout(self.now);
            }
        }
        let segments = exchange_with(
            &mut self.a,
            &mut self.b,
            self.now,
            &mut self.frames,
            delivery,
        );
        // A driver consumes events as they come; left in the queue they would be counted as
        // connection memory.
        while self.a.poll_event().is_some() {}
        while self.b.poll_event().is_some() {}
        segments
    }

    /// Connects A to B:`port` `count` times.
    fn connect(&mut self, port: u16, count: usize) -> Vec<(ConnectionId, ConnectionId)> {
        let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), port);
        let listener = self.b.tcp_listen(server, Some(count + 1)).unwrap();
        let clients: Vec<ConnectionId> = (0..count)
            .map(|_| self.a.tcp_connect(self.now, server, None).unwrap())
            .collect();
        self.step();
        self.step();
        let servers: Vec<ConnectionId> =
            std::iter::from_fn(|| self.b.tcp_accept(listener).unwrap()).collect();
        if servers.len() != count {
            let a: Vec<_> = self.a.stats().nonzero_drops().collect();
            let b: Vec<_> = self.b.stats().nonzero_drops().collect();
            panic!(
                "{} of {count} connected; drops A {a:?} B {b:?}",
                servers.len()
            );
        }
        clients.into_iter().zip(servers).collect()
    }
}

fn bulk(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulk");
    group.throughput(Throughput::Bytes(BULK_CHUNK as u64));
    group.sample_size(20);
    // The same stream, written from a slice (copied into the send buffer) or handed over as
    // `Bytes` (kept there; copied once, into the frame).
    let shared = Bytes::from(vec![0x5au8; 256 * 1024]);
    for (name, delivery, reader, send_bytes) in [
        (
            "two_engines_mss_1460",
            Delivery::Borrowed,
            Reader::Copy,
            false,
        ),
        (
            "two_engines_mss_1460_send_bytes",
            Delivery::Borrowed,
            Reader::Copy,
            true,
        ),
        (
            "two_engines_mss_1460_frame_bytes",
            Delivery::Owned,
            Reader::Copy,
            false,
        ),
        (
            "two_engines_mss_1460_frame_bytes_recv_bytes",
            Delivery::Owned,
            Reader::Piece,
            false,
        ),
        (
            "two_engines_mss_1460_frame_bytes_recv_bytes_into",
            Delivery::Owned,
            Reader::Pieces,
            false,
        ),
    ] {
        let mut pieces = Vec::new();
        let mut pair = Pair::new();
        let (client, server) = pair.connect(80, 1)[0];
        let data = vec![0x5au8; 256 * 1024];
        let mut buf = vec![0u8; 256 * 1024];
        let mut segments_total = 0usize;
        let mut bytes_total = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut sent = 0;
                let mut received = 0;
                while received < BULK_CHUNK {
                    if sent < BULK_CHUNK {
                        let len = (BULK_CHUNK - sent).min(data.len());
                        let taken = if send_bytes {
                            pair.a.tcp_send_bytes(pair.now, client, shared.slice(..len))
                        } else {
                            pair.a.tcp_send(pair.now, client, &data[..len])
                        };
                        sent += taken.unwrap_or(0);
                    }
                    segments_total += pair.step_with(delivery);
                    match reader {
                        Reader::Copy => {
                            while let Ok(n @ 1..) = pair.b.tcp_recv(pair.now, server, &mut buf) {
                                received += n;
                            }
                        }
                        Reader::Piece => {
                            while let Ok(piece) =
                                pair.b.tcp_recv_bytes(pair.now, server, usize::MAX)
                            {
                                if piece.is_empty() {
                                    break;
                                }
                                received += black_box(piece).len();
                            }
                        }
                        Reader::Pieces => {
                            while let Ok(n @ 1..) =
                                pair.b
                                    .tcp_recv_bytes_into(pair.now, server, buf.len(), &mut pieces)
                            {
                                received += n;
                                black_box(&pieces);
                                pieces.clear();
                            }
                        }
                    }
                }
                bytes_total += received;
                black_box(received)
            })
        });
        assert_eq!(pair.a.tcp_info(client).unwrap().mss, 1460);
        // The bytes moved let `perf stat` counts of a `--profile-time` run be read per MB.
        println!(
            "bulk {name}: {:.1} frames per MB moved (data segments and ACKs), {} MB moved",
            segments_total as f64 / (bytes_total as f64 / 1e6),
            bytes_total / 1_000_000
        );
    }
    group.finish();
}

fn idle(c: &mut Criterion) {
    let mut group = c.benchmark_group("idle");
    for count in [1_000usize, 100_000] {
        let mut pair = Pair::new();
        let mut conns = Vec::new();
        // 28 232 ephemeral ports per destination: spread over several server ports.
        let per_port = 20_000;
        for (i, port) in (80..).take(count.div_ceil(per_port)).enumerate() {
            let n = per_port.min(count - i * per_port);
            conns.extend(pair.connect(port, n));
        }
        for &(client, _) in &conns {
            pair.a
                .tcp_set_keepalive(pair.now, client, Some(Keepalive::default()))
                .unwrap();
        }
        assert!(
            conns
                .iter()
                .all(|&(c, _)| pair.a.tcp_state(c) == Some(State::Established))
        );
        group.bench_with_input(
            BenchmarkId::new("advance_one_second", count),
            &count,
            |b, _| {
                b.iter(|| {
                    // One second later: nothing is due (keepalive is 2 h away).
                    pair.now += Duration::from_secs(1);
                    if pair.a.poll_timeout().is_some_and(|t| t <= pair.now) {
                        pair.a.handle_timeout(pair.now);
                    }
                    black_box(pair.a.poll_timeout())
                })
            },
        );
    }
    group.finish();
}

fn memory_per_connection() {
    let mut pair = Pair::new();
    let before = counting::live();
    // In batches of 100, as connections arrive at a server, so that queues which only live
    // during a burst (events, transmit lists) do not count as connection memory.
    let n = 10_000;
    let mut conns = Vec::with_capacity(n);
    let baseline = counting::live() - before;
    for port in 0..(n / 100) as u16 {
        conns.extend(pair.connect(1000 + port, 100));
    }
    let after = counting::live();
    let handles = (conns.capacity() * std::mem::size_of::<(ConnectionId, ConnectionId)>()) as isize;
    // Both ends live in this process: half the growth is one side's.
    let per_connection = (after - before - baseline - handles) as f64 / n as f64 / 2.0;
    println!(
        "memory: {per_connection:.0} bytes per idle ESTABLISHED connection per side, buffers empty (send and receive buffers allocate only when data is queued); {} connections",
        conns.len()
    );
}

fn syn_cookies(c: &mut Criterion) {
    const SYNS: usize = 1024;
    let mut server = host(2, 2);
    server.tcp.syn_backlog = 0;
    let mut pair = Pair::with_server(server);
    let listen = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 443);
    pair.b.tcp_listen(listen, None).unwrap();
    // A's SYNs, kept to be offered again and again: B keeps nothing of one, so each offer
    // costs what a new SYN costs.
    for _ in 0..SYNS {
        pair.a.tcp_connect(pair.now, listen, None).unwrap();
    }
    pair.frames.clear();
    let _ = pair.a.poll_transmit(pair.now, &mut pair.frames);
    let syns: Vec<Vec<u8>> = (0..pair.frames.used)
        .map(|i| pair.frames.buffers[i][..pair.frames.lens[i]].to_vec())
        .collect();
    assert_eq!(syns.len(), SYNS);
    let mut out = Frames::new();
    // What is measured: one SYN in, one cookie SYN-ACK out, nothing kept.
    let cookies = pair.b.stats().syn_cookies_sent;
    pair.b.handle_frame(pair.now, &syns[0], RxChecksum::Trusted);
    assert_eq!(pair.b.poll_transmit(pair.now, &mut out), 1);
    assert_eq!(pair.b.stats().syn_cookies_sent, cookies + 1);
    let mut group = c.benchmark_group("syn_cookies");
    group.throughput(Throughput::Elements(SYNS as u64));
    group.bench_function("answer_1024_syns", |b| {
        b.iter(|| {
            out.clear();
            for syn in &syns {
                pair.b.handle_frame(pair.now, syn, RxChecksum::Trusted);
                let _ = pair.b.poll_transmit(pair.now, &mut out);
            }
            black_box(out.used)
        })
    });
    group.finish();
    assert_eq!(pair.b.tcp_memory().connections, 0, "no state kept");
}

fn benches(c: &mut Criterion) {
    memory_per_connection();
    bulk(c);
    idle(c);
    syn_cookies(c);
}

// The macro generates an undocumented `pub fn group`.
#[allow(missing_docs)]
mod generated {
    criterion::criterion_group!(group, super::benches);
}
criterion_main!(generated::group);
