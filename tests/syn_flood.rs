//! A SYN flood against the facade over MemLinks, on tokio's paused clock: a bridge between
//! the client's link and the server's forwards their frames and injects 100 000 SYNs from
//! spoofed sources; the client still connects and moves 1 MB byte-exact, and the server
//! holds no more than its limits.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{CLIENT, SERVER, spoofed_syn};
use rawtcp::core::{Config, Ipv4Cidr};
use rawtcp::netio::{Device, FrameBatch, MemLink, MemLinkEnd};
use rawtcp::wire::ethernet::EthernetAddress;
use rawtcp::{Stack, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPOOFED: usize = 100_000;
const MEMORY_LIMIT: usize = 4 * 1024 * 1024;
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

/// Forwards frames both ways every 200 µs and injects up to 100 spoofed SYNs toward the
/// server each time, until every SYN is in and `stop` is set. Returns how many it injected.
async fn bridge(
    mut client_side: MemLinkEnd,
    mut server_side: MemLinkEnd,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut batch = FrameBatch::new(256, 1514);
    let mut injected = 0;
    let mut rng = 0x5eed_u64;
    let server = SocketAddrV4::new(SERVER, 80);
    loop {
        while client_side.recv(&mut batch).expect("a MemLink receives") > 0 {
            server_side.send(&mut batch).expect("a MemLink sends");
        }
        while server_side.recv(&mut batch).expect("a MemLink receives") > 0 {
            client_side.send(&mut batch).expect("a MemLink sends");
        }
        for _ in 0..100.min(SPOOFED - injected) {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let src = SocketAddrV4::new(
                Ipv4Addr::from(0x0b00_0000 | (rng >> 40) as u32),
                1024 + (rng >> 16) as u16 % 60000,
            );
            batch.push_frame(&spoofed_syn(SERVER_MAC, src, server, rng as u32));
            injected += 1;
        }
        server_side.send(&mut batch).expect("a MemLink sends");
        if injected == SPOOFED && stop.load(Ordering::Relaxed) {
            return injected;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_moves_one_megabyte_through_a_syn_flood_over_memlinks() {
    let (client_end, bridge_client) = MemLink::pair();
    let (bridge_server, server_end) = MemLink::pair();
    let client = Stack::builder()
        .device(client_end)
        .ipv4(CLIENT, 24)
        .spawn()
        .await
        .unwrap();
    let mut config = Config::new(SERVER_MAC, Ipv4Cidr::new(SERVER, 24));
    config.seed = 13;
    config.tcp.max_buffer_memory = MEMORY_LIMIT;
    // The flood's SYN-ACKs go out through the client's address as a gateway (and are
    // dropped there as not its own).
    let server = Stack::builder()
        .device(server_end)
        .ipv4(SERVER, 24)
        .mac(SERVER_MAC)
        .gateway(CLIENT)
        .config(config)
        .spawn()
        .await
        .unwrap();
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 80))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn(bridge(bridge_client, bridge_server, Arc::clone(&stop)));
    // Let the flood fill the SYN queue first.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(server.tcp_memory().half_open > 0);

    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let reader = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        // The listener stays open through the flood.
        (got, listener)
    });
    let mut stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 80))
        .await
        .unwrap();
    stream.write_all(&data).await.unwrap();
    stream.shutdown().await.unwrap();
    let (got, listener) = reader.await.unwrap();
    assert!(got == data, "1 MB arrives byte-exact");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(flood.await.unwrap(), SPOOFED);
    // Let the last of the flood reach the server.
    tokio::time::sleep(Duration::from_millis(5)).await;

    let stats = server.stats();
    let memory = server.tcp_memory();
    eprintln!(
        "facade flood: {} cookies sent, {} accepted, peak {} connections, {} bytes buffered, {} frames in, {:?}",
        stats.syn_cookies_sent,
        stats.syn_cookies_accepted,
        memory.connections_peak,
        memory.buffered_peak,
        stats.rx_frames,
        stats.nonzero_drops().collect::<Vec<_>>()
    );
    let syn_backlog = Config::new(SERVER_MAC, Ipv4Cidr::new(SERVER, 24))
        .tcp
        .syn_backlog;
    assert!(stats.syn_cookies_sent >= (SPOOFED - syn_backlog) as u64);
    assert_eq!(stats.syn_cookies_accepted, 1, "the client's handshake");
    assert!(memory.connections_peak <= syn_backlog + 1);
    assert!(memory.buffered_peak <= MEMORY_LIMIT);
    drop(listener);
}
