//! Resource limits on a virtual clock: each refuses new work cleanly, counts it, logs it
//! once per interval, and leaves established connections working.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use rawtcp_core::link::{Action, Rule, matches};
use rawtcp_core::{
    Config, DropReason, Event, Instant, LIMIT_LOG_INTERVAL, ListenOptions, Stack, State, TcpError,
};
use rawtcp_wire::tcp::{TcpFlags, TcpOptions};
use rawtcp_wire::{RxChecksum, SeqNum};

/// A and B, B configured by `tweak`.
fn sim_with(tweak: impl FnOnce(&mut Config)) -> Sim {
    let mut b = config(B_MAC, B_IP, 2);
    tweak(&mut b);
    Sim::new(config(A_MAC, A_IP, 1), b)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 256) as u8).collect()
}

#[test]
fn at_the_connection_limit_new_ones_are_refused_and_established_ones_work() {
    let mut sim = sim_with(|b| b.tcp.max_connections = 1);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    // B opens nothing more...
    assert_eq!(
        sim.b.tcp_connect(sim.now, SocketAddr::new(A_IP, 9), None),
        Err(TcpError::LimitReached)
    );
    // ...and takes no SYN: dropped, not reset, so the peer retries.
    let second = sim.a.tcp_connect(sim.now, b_addr(80), Some(40001)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.a.tcp_state(second), Some(State::SynSent));
    assert_eq!(sim.b.stats().drops(DropReason::ConnectionLimit), 2);
    // The established connection still moves data.
    let data = payload(100_000);
    assert!(transfer(&mut sim, client, server, &data, Duration::from_secs(10)) == data);
}

#[test]
fn the_host_wide_half_open_limit_holds_across_listeners() {
    let mut config = config(B_MAC, B_IP, 3);
    config.tcp.max_half_open = 2;
    config.tcp.syn_cookies = false;
    let mut b = Stack::new(config);
    b.tcp_listen(b_addr(80), None).unwrap();
    b.tcp_listen(b_addr(81), None).unwrap();
    b.handle_frame(
        Instant::ZERO,
        &arp_request(HOST_A, B_IP),
        RxChecksum::Verify,
    );
    for (i, port) in [80, 81, 80, 81, 80].into_iter().enumerate() {
        let syn = segment(
            40000 + i as u16,
            port,
            TcpFlags::SYN,
            SeqNum::new(1),
            SeqNum::new(0),
            &[],
        );
        b.handle_frame(
            Instant::ZERO,
            &tcp_frame(HOST_A, HOST_B, &syn),
            RxChecksum::Verify,
        );
    }
    assert_eq!(b.tcp_memory().half_open, 2);
    assert_eq!(b.stats().drops(DropReason::SynQueueFull), 3);
    // SYN-ACKs for the two that got in, nothing for the others.
    let sent = sent_segments(&mut b, Instant::ZERO);
    let syn_acks = sent
        .iter()
        .filter(|s| s.flags == TcpFlags::SYN | TcpFlags::ACK)
        .count();
    assert_eq!(syn_acks, 2);
}

#[test]
fn the_memory_limit_refuses_new_work_and_established_connections_recover() {
    const LIMIT: usize = 64 * 1024;
    let mut sim = sim_with(|b| b.tcp.max_buffer_memory = LIMIT);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    // A sends 200 KB that B does not read yet: B holds at most the limit.
    let data = payload(200_000);
    let mut sent = 0;
    for _ in 0..200 {
        if let Ok(n) = sim.a.tcp_send(sim.now, client, &data[sent..]) {
            sent += n;
        }
        sim.run_for(Duration::from_millis(10));
    }
    let memory = sim.b.tcp_memory();
    assert!(memory.buffered_peak <= LIMIT, "{memory:?}");
    assert!(sim.b.stats().drops(DropReason::MemoryLimit) > 0);
    // No room: B's own writes (past what is left) and connections are refused.
    let left = LIMIT - sim.b.tcp_memory().buffered;
    assert!(left < 1460, "within a segment of the limit");
    if left > 0 {
        assert_eq!(sim.b.tcp_send(sim.now, server, &[0; 10_000]), Ok(left));
    }
    assert_eq!(
        sim.b.tcp_send(sim.now, server, &[0; 10_000]),
        Err(TcpError::WouldBlock)
    );
    assert_eq!(
        sim.b.tcp_connect(sim.now, SocketAddr::new(A_IP, 9), None),
        Err(TcpError::LimitReached)
    );
    // Reading frees the memory: the writer hears it, and the stream arrives whole.
    sim.events_b.clear();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = sim.now + Duration::from_secs(60);
    while received.len() < data.len() && sim.now < deadline {
        while let Ok(n @ 1..) = sim.b.tcp_recv(sim.now, server, &mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        if sent < data.len()
            && let Ok(n) = sim.a.tcp_send(sim.now, client, &data[sent..])
        {
            sent += n;
        }
        sim.run_for(Duration::from_millis(10));
    }
    assert!(received == data, "byte-exact after the squeeze");
    assert!(
        sim.events_b
            .iter()
            .any(|(_, e)| *e == Event::Writable(server))
    );
    assert!(sim.b.tcp_memory().buffered_peak <= LIMIT);
}

#[test]
fn out_of_order_data_is_bounded_in_bytes() {
    const LIMIT: usize = 4 * 1460;
    let mut sim = sim_with(|b| b.tcp.max_out_of_order_bytes = LIMIT);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    // The first data segment is lost: everything behind it arrives out of order.
    sim.link_a_to_b_mut().config_mut().rules =
        vec![Rule::new(1, matches::tcp_data(), Action::Drop)];
    let data = payload(60_000);
    let warnings = Arc::new(AtomicUsize::new(0));
    let got = tracing::subscriber::with_default(Warnings(Arc::clone(&warnings)), || {
        transfer(&mut sim, client, server, &data, Duration::from_secs(30))
    });
    assert!(got == data, "byte-exact");
    let dropped = sim.b.tcp_info(server).unwrap().stats.out_of_order_dropped;
    assert!(dropped > 1);
    assert_eq!(sim.b.stats().drops(DropReason::OutOfOrderLimit), dropped);
    assert_eq!(warnings.load(Ordering::Relaxed), 1, "logged once");
}

#[test]
fn arp_resolutions_are_bounded_and_logged_once() {
    let warnings = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::with_default(Warnings(Arc::clone(&warnings)), || {
        let mut config = config(B_MAC, B_IP, 4);
        config.arp.max_resolving = 2;
        let mut b = Stack::new(config);
        for last in 3..13 {
            let host = SocketAddr::new(Ipv4Addr::new(10, 9, 0, last), 80);
            b.tcp_connect(Instant::ZERO, host, None).unwrap();
        }
        let mut sink = rawtcp_core::VecSink::new();
        let _ = b.poll_transmit(Instant::ZERO, &mut sink);
        // Two ARP requests; the other SYNs have nowhere to wait.
        assert_eq!(b.stats().arp_requests, 2);
        assert_eq!(b.stats().drops(DropReason::NeighborResolutionLimit), 8);
    });
    assert_eq!(warnings.load(Ordering::Relaxed), 1);
}

/// Counts WARN events: the limits' log lines.
struct Warnings(Arc<AtomicUsize>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_limit_is_logged_once_per_interval() {
    let warnings = Arc::new(AtomicUsize::new(0));
    let subscriber = Warnings(Arc::clone(&warnings));
    tracing::subscriber::with_default(subscriber, || {
        let mut config = config(B_MAC, B_IP, 5);
        config.tcp.max_connections = 0;
        let mut b = Stack::new(config);
        let remote = SocketAddr::new(A_IP, 80);
        let mut now = Instant::ZERO;
        for _ in 0..1000 {
            assert_eq!(
                b.tcp_connect(now, remote, None),
                Err(TcpError::LimitReached)
            );
            now += Duration::from_millis(1);
        }
        assert_eq!(
            warnings.load(Ordering::Relaxed),
            1,
            "once in the first second"
        );
        assert_eq!(b.stats().drops(DropReason::ConnectionLimit), 1000);
        now = Instant::ZERO + LIMIT_LOG_INTERVAL;
        let _ = b.tcp_connect(now, remote, None);
        assert_eq!(
            warnings.load(Ordering::Relaxed),
            2,
            "again after the interval"
        );
    });
}

#[test]
fn a_full_listener_queue_does_not_stop_a_shared_port() {
    // Two listeners share the port; one's SYN queue is full of spoofed SYNs (cookies off):
    // the flows the hash gives to the other are still taken.
    let mut config = config(B_MAC, B_IP, 6);
    config.tcp.syn_backlog = 1;
    config.tcp.syn_cookies = false;
    let mut b = Stack::new(config);
    let shared = ListenOptions {
        backlog: None,
        reuse_port: true,
    };
    b.tcp_listen_with(b_addr(80), shared).unwrap();
    b.tcp_listen_with(b_addr(80), shared).unwrap();
    b.handle_frame(
        Instant::ZERO,
        &arp_request(HOST_A, B_IP),
        RxChecksum::Verify,
    );
    for port in 40000..40020 {
        let syn = rawtcp_wire::tcp::TcpRepr {
            options: TcpOptions::default(),
            ..segment(port, 80, TcpFlags::SYN, SeqNum::new(1), SeqNum::new(0), &[])
        };
        b.handle_frame(
            Instant::ZERO,
            &tcp_frame(HOST_A, HOST_B, &syn),
            RxChecksum::Verify,
        );
    }
    // One half-open connection per listener: each has its own queue.
    assert_eq!(b.tcp_memory().half_open, 2);
    assert_eq!(b.stats().drops(DropReason::SynQueueFull), 18);
}

use std::net::SocketAddrV4 as SocketAddr;
