//! The async API over an in-memory link: echo, errors, timeouts on tokio's paused clock.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use rawtcp::core::link::{Action, LinkConfig, Rule, matches};
use rawtcp::netio::MemLink;
use rawtcp::{Stack, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{CLIENT, SERVER, stacks_on};

async fn stacks(a_to_b: LinkConfig) -> (Stack, Stack) {
    let (left, right) = MemLink::with_faults(a_to_b, LinkConfig::default(), 1);
    let (client, server) = stacks_on(left, right).await;
    (client, server)
}

/// A listener on `port` of the server stack and one connection through it:
/// (listener, the client's stream, the server's accepted stream).
async fn connected(
    client: &Stack,
    server: &Stack,
    port: u16,
) -> (TcpListener, TcpStream, TcpStream) {
    let addr = SocketAddrV4::new(SERVER, port);
    let listener = TcpListener::bind(server, addr).await.unwrap();
    let stream = TcpStream::connect(client, addr).await.unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    (listener, stream, accepted)
}

/// Writes `data` and closes the sending side while reading what comes back to the end.
async fn write_all_and_read_back(stream: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let writing = async move {
        writer.write_all(data).await.unwrap();
        writer.shutdown().await.unwrap();
    };
    let mut echoed = Vec::new();
    let (_, read) = tokio::join!(writing, reader.read_to_end(&mut echoed));
    read.unwrap();
    echoed
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_a_megabyte_both_ways() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 7))
        .await
        .unwrap();
    assert_eq!(listener.local_addr().unwrap(), SocketAddrV4::new(SERVER, 7));
    let echo = tokio::spawn(async move {
        let (mut stream, peer) = listener.accept().await.unwrap();
        assert_eq!(*peer.ip(), CLIENT);
        let (mut reader, mut writer) = tokio::io::split(&mut stream);
        tokio::io::copy(&mut reader, &mut writer).await.unwrap();
        writer.shutdown().await.unwrap();
    });
    let data = pattern(1 << 20);
    let mut stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 7))
        .await
        .unwrap();
    assert_eq!(*stream.peer_addr().unwrap().ip(), SERVER);
    let echoed = write_all_and_read_back(&mut stream, &data).await;
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed byte for byte");
    echo.await.unwrap();
}

#[tokio::test]
async fn connect_to_a_closed_port_is_refused() {
    let (client, _server) = stacks(LinkConfig::default()).await;
    let error = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 9))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test(start_paused = true)]
async fn connect_to_a_dead_host_times_out_at_63_seconds() {
    // The host answers ARP but no TCP segment reaches it.
    let down = LinkConfig {
        rules: vec![Rule::every(matches::tcp(), Action::Drop)],
        ..LinkConfig::default()
    };
    let (client, _server) = stacks(down).await;
    let start = tokio::time::Instant::now();
    let error = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 80))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(63) && waited < Duration::from_millis(63_100),
        "{waited:?}"
    );
}

#[tokio::test]
async fn accept_finds_data_sent_before_it() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let listener = TcpListener::bind(&server, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 8080))
        .await
        .unwrap();
    stream.write_all(b"early").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (mut accepted, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 5];
    accepted.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"early");
    assert!(
        client
            .connections()
            .iter()
            .any(|c| c.state == rawtcp::core::State::Established)
    );
}

#[tokio::test]
async fn split_into_split_and_peek() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 9000))
        .await
        .unwrap();
    let echo = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut peeked = [0u8; 4];
        assert_eq!(stream.peek(&mut peeked).await.unwrap(), 4);
        assert_eq!(&peeked, b"ping");
        // Borrowed halves: read and write concurrently.
        let (mut reader, mut writer) = stream.split();
        tokio::io::copy(&mut reader, &mut writer).await.unwrap();
        writer.shutdown().await.unwrap();
    });
    let stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 9000))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        writer.write_all(b"ping pong").await.unwrap();
        // Dropping the owned write half sends the FIN.
        drop(writer);
    });
    let mut echoed = Vec::new();
    reader.read_to_end(&mut echoed).await.unwrap();
    assert_eq!(echoed, b"ping pong");
    sender.await.unwrap();
    echo.await.unwrap();
}

#[tokio::test]
async fn linger_zero_resets_and_take_error_reports_it() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, stream, mut accepted) = connected(&client, &server, 9001).await;
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(stream.linger().unwrap(), Some(Duration::ZERO));
    drop(stream);
    let mut buf = [0u8; 4];
    let error = accepted.read(&mut buf).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(
        accepted.take_error().unwrap().unwrap().kind(),
        std::io::ErrorKind::ConnectionReset
    );
}

/// tokio's `take_error` is SO_ERROR: it returns the pending error and clears it.
#[tokio::test]
async fn take_error_clears_the_error_it_returns() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, stream, mut accepted) = connected(&client, &server, 9002).await;
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
    let mut buf = [0u8; 4];
    assert!(accepted.read(&mut buf).await.is_err());
    let error = accepted.take_error().unwrap().expect("the reset");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(accepted.take_error().unwrap().is_none(), "taken once");
}

/// SO_LINGER reads back what was set, although only zero changes how a drop closes.
#[tokio::test]
async fn linger_reads_back_what_was_set() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, stream, _accepted) = connected(&client, &server, 9003).await;
    assert_eq!(stream.linger().unwrap(), None);
    stream.set_linger(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(stream.linger().unwrap(), Some(Duration::from_secs(5)));
    stream.set_linger(None).unwrap();
    assert_eq!(stream.linger().unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn keepalive_closes_a_dead_peer_after_2_hours_and_10_probes() {
    // After the handshake, B's TCP goes silent (its link still carries ARP).
    let dead = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&dead);
    let silent: rawtcp::core::link::Matcher = std::sync::Arc::new(move |frame: &[u8]| {
        flag.load(std::sync::atomic::Ordering::Relaxed) && (matches::tcp())(frame)
    });
    let b_to_a = LinkConfig {
        rules: vec![Rule::every(silent, Action::Drop)],
        ..LinkConfig::default()
    };
    let (left, right) = MemLink::with_faults(LinkConfig::default(), b_to_a, 1);
    let (client, server) = stacks_on(left, right).await;
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 9002))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 9002))
        .await
        .unwrap();
    let _accepted = listener.accept().await.unwrap();
    stream
        .set_keepalive(Some(rawtcp::core::Keepalive::default()))
        .unwrap();
    dead.store(true, std::sync::atomic::Ordering::Relaxed);
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 1];
    let error = stream.read(&mut buf).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    let waited = start.elapsed();
    let expected = Duration::from_secs(2 * 3600 + 10 * 75);
    assert!(
        waited >= expected && waited < expected + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_try_read_try_write_move_two_megabytes_in_order() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 9003))
        .await
        .unwrap();
    let data = pattern(2 << 20);
    let send = data.clone();
    let writer = tokio::spawn(async move {
        let stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 9003))
            .await
            .unwrap();
        let mut buf = [0u8; 4];
        // Nothing has arrived: a non-blocking read says so.
        let error = stream.try_read(&mut buf).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock);
        let mut sent = 0;
        let mut blocked = 0;
        // Write until the buffer is full, then wait for room.
        while sent < send.len() {
            match stream.try_write(&send[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    blocked += 1;
                    stream.writable().await.unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        }
        let mut stream = stream;
        stream.shutdown().await.unwrap();
        blocked
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 7000];
    loop {
        stream.readable().await.unwrap();
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let blocked = writer.await.unwrap();
    assert_eq!(received.len(), data.len());
    assert!(received == data, "received byte for byte");
    // 2 MiB does not fit the send buffer at once: the writer met a full buffer.
    assert!(blocked > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_queued_before_the_last_handle_drops_is_still_delivered() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 9004))
        .await
        .unwrap();
    let data = pattern(1 << 20);
    let send = data.clone();
    let writer = tokio::spawn(async move {
        let mut stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 9004))
            .await
            .unwrap();
        stream.write_all(&send).await.unwrap();
        // The stream and the stack go at once; most of the data is still queued.
        drop(stream);
        drop(client);
    });
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).await.unwrap();
    writer.await.unwrap();
    assert_eq!(received.len(), data.len());
    assert!(received == data, "received byte for byte");
}

#[tokio::test(start_paused = true)]
async fn connect_timeout_gives_up_when_told_and_releases_the_connection() {
    let down = LinkConfig {
        rules: vec![Rule::every(matches::tcp(), Action::Drop)],
        ..LinkConfig::default()
    };
    let (client, _server) = stacks(down).await;
    let start = tokio::time::Instant::now();
    let error = TcpStream::connect_timeout(
        &client,
        SocketAddrV4::new(SERVER, 80),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    // The abandoned SYN-SENT connection is gone, not left retrying.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(
        client.connections().is_empty(),
        "{:?}",
        client.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_queued_data_then_stops_and_refuses_new_work() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let data = pattern(300_000);
    let (_listener, mut stream, mut accepted) = connected(&client, &server, 7).await;
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        accepted.read_to_end(&mut got).await.unwrap();
        got
    });
    // More than the send buffer holds: some is still queued when shutdown is called.
    let written = stream.try_write(&data).unwrap();
    assert!(written > 0);
    let other = client.clone();
    client.shutdown().await;
    // The stream is still held, yet its data and a FIN went out before the driver stopped.
    let got = reading.await.unwrap();
    assert!(
        got == data[..written],
        "the queued bytes, in order, then EOF"
    );
    let error = stream.write(b"more").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotConnected);
    let error = TcpStream::connect(&other, SocketAddrV4::new(SERVER, 7))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotConnected);
    let error = TcpListener::bind(&other, SocketAddrV4::new(CLIENT, 80))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotConnected);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_listeners_and_resets_linger_zero_streams() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let (listener, mut stream, accepted) = connected(&client, &server, 7).await;
    accepted.set_linger(Some(Duration::ZERO)).unwrap();
    server.shutdown().await;
    let mut buf = [0u8; 8];
    let error = stream.read(&mut buf).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    let error = listener.accept().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::NotConnected);
    let error = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 7))
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::TimedOut,
        "nobody answers for the stopped stack, not even ARP"
    );
    drop(accepted);
}

#[tokio::test(start_paused = true)]
async fn a_full_backlog_holds_the_handshake_until_accept_makes_room() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let addr = SocketAddrV4::new(SERVER, 7);
    let listener = TcpListener::bind_with_backlog(&server, addr, 1)
        .await
        .unwrap();
    // Three clients at once: one handshake fills the queue, the others wait (their final
    // ACK, or their SYN, is dropped while it is full, as on Linux).
    let connects: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { TcpStream::connect(&client, addr).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let established = |stack: &Stack| {
        stack
            .connections()
            .iter()
            .filter(|c| c.state == rawtcp::core::State::Established)
            .count()
    };
    assert_eq!(established(&server), 1, "the backlog holds one");
    // Accepting makes room; the clients' retransmissions complete the rest.
    for _ in 0..3 {
        let (_stream, peer) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("each queued handshake completes")
            .unwrap();
        assert_eq!(*peer.ip(), CLIENT);
    }
    for connect in connects {
        connect.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_closes_the_window_and_the_writer_waits_with_bounded_memory() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, mut stream, mut accepted) = connected(&client, &server, 7).await;
    // 4 MiB against 256 KiB buffers each side: the write cannot finish while nobody reads.
    let data = pattern(4 << 20);
    let writing = tokio::spawn(async move {
        stream.write_all(&data).await.unwrap();
        stream.shutdown().await.unwrap();
        stream
    });
    // Wait (real time, no deadline but the harness's) until the window is closed at both
    // ends: how long that takes depends on the machine, and the last few bytes of window
    // are filled only after a persist timeout.
    let (theirs, ours) = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (theirs, ours) = (server.connections(), client.connections());
        if theirs[0].rcv_wnd == 0 && ours[0].snd_wnd == 0 {
            break (theirs, ours);
        }
    };
    assert!(!writing.is_finished(), "the writer waits for room");
    assert!(
        theirs[0].recv_queue <= 256 * 1024,
        "{}",
        theirs[0].recv_queue
    );
    assert!(ours[0].send_queue <= 256 * 1024, "{}", ours[0].send_queue);
    // Reading reopens the window; everything arrives in order.
    let mut got = Vec::new();
    accepted.read_to_end(&mut got).await.unwrap();
    assert!(got == pattern(4 << 20));
    drop(writing.await.unwrap());
}

/// RFC 5227 on an in-memory link, where it is off unless asked for: `spawn` returns once
/// the probes went unanswered (4–7 s of paused tokio time), and the address works.
#[tokio::test(start_paused = true)]
async fn spawn_claims_the_address_after_unanswered_probes() {
    let (left, right) = MemLink::pair();
    let server = Stack::builder()
        .device(right)
        .ipv4(SERVER, 24)
        .spawn()
        .await
        .unwrap();
    assert_eq!(server.stats().arp_probes, 0, "off on a MemLink by default");
    let start = tokio::time::Instant::now();
    let client = Stack::builder()
        .device(left)
        .ipv4(CLIENT, 24)
        .conflict_detection(true)
        .spawn()
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(
        (Duration::from_secs(4)..=Duration::from_secs(7)).contains(&waited),
        "PROBE_WAIT + 2 × PROBE_MIN..MAX + ANNOUNCE_WAIT on tokio's clock: {waited:?}"
    );
    let stats = client.stats();
    assert_eq!((stats.arp_probes, stats.arp_announcements), (3, 1));
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 7))
        .await
        .unwrap();
    let accept = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
    TcpStream::connect(&client, SocketAddrV4::new(SERVER, 7))
        .await
        .unwrap();
    assert_eq!(*accept.await.unwrap().unwrap().ip(), CLIENT);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        client.stats().arp_announcements,
        2,
        "the second one, 2 s later"
    );
}

/// The stack at the other end already holds the address: `spawn` fails with `AddrInUse`
/// naming the address and the MAC that answered.
#[tokio::test(start_paused = true)]
async fn spawn_fails_with_addr_in_use_when_another_host_answers_the_probe() {
    use rawtcp::wire::ethernet::EthernetAddress;
    let (left, right) = MemLink::pair();
    let owner_mac = EthernetAddress([0x02, 0, 0, 0, 0, 0x77]);
    let owner = Stack::builder()
        .device(right)
        .ipv4(SERVER, 24)
        .mac(owner_mac)
        .spawn()
        .await
        .unwrap();
    let error = Stack::builder()
        .device(left)
        .ipv4(SERVER, 24)
        .conflict_detection(true)
        .spawn()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    let message = error.to_string();
    assert!(
        message.contains("10.9.0.2") && message.contains("02:00:00:00:00:77"),
        "{message}"
    );
    assert_eq!(owner.stats().address_conflicts, 0, "a probe is no conflict");
}

/// `state_changes()` is bounded: a subscriber that never reads keeps the newest
/// `StateChanges::CAPACITY` changes, and counts the ones it lost.
#[tokio::test]
async fn an_unread_state_change_stream_keeps_the_newest_and_counts_the_rest() {
    let (left, right) = MemLink::pair();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&seen);
    let client = Stack::builder()
        .device(left)
        .ipv4(CLIENT, 24)
        .on_state_change(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .spawn()
        .await
        .unwrap();
    let server = Stack::builder()
        .device(right)
        .ipv4(SERVER, 24)
        .spawn()
        .await
        .unwrap();
    let mut changes = client.state_changes();
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 9004))
        .await
        .unwrap();
    // Each connection: CLOSED → SYN-SENT → ESTABLISHED at the client. All are held open, so
    // no close adds to the count.
    let mut held = Vec::new();
    for _ in 0..600 {
        let stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 9004))
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        held.push((stream, accepted));
    }
    let total = seen.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(total, 1200);
    let mut received = Vec::new();
    while let Some(change) = changes.try_recv() {
        received.push(change);
    }
    assert_eq!(received.len(), rawtcp::StateChanges::CAPACITY);
    assert_eq!(changes.missed(), total - received.len() as u64);
    assert_eq!(
        received.last().map(|c| c.to),
        Some(rawtcp::core::State::Established)
    );
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn info_reports_the_congestion_control_and_it_can_be_chosen() {
    use rawtcp::core::{CongestionAlgorithm, CongestionState};
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, mut stream, mut accepted) = connected(&client, &server, 8081).await;
    let info = stream.info().unwrap();
    assert_eq!(info.congestion_algorithm, CongestionAlgorithm::Cubic);
    assert_eq!(info.congestion_state, CongestionState::Open);
    assert_eq!(info.cwnd, 10 * 1448, "RFC 6928: ten segments of 1448 bytes");
    assert_eq!(info.ssthresh, u32::MAX);
    stream
        .set_congestion_control(CongestionAlgorithm::NewReno)
        .unwrap();
    let data = pattern(200_000);
    stream.write_all(&data).await.unwrap();
    let mut got = vec![0u8; data.len()];
    accepted.read_exact(&mut got).await.unwrap();
    assert!(got == data);
    // The last (delayed) ACK comes back: on tokio's paused clock, no real wait.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let info = stream.info().unwrap();
    assert_eq!(info.congestion_algorithm.name(), "reno");
    assert_eq!(info.stats.bytes_acked, 200_000);
    assert!(
        info.cwnd > 14_600,
        "slow start grew the window: {}",
        info.cwnd
    );
}

/// An allocation whose drop is seen: `live` is how many such buffers anyone still holds.
struct Tracked {
    data: Vec<u8>,
    live: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `write_bytes` moves the caller's buffers byte for byte and without a copy: while the
/// reader stalls, the engine still holds a buffer the writer has given up, and lets it go
/// once the peer has acknowledged it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_bytes_is_byte_exact_and_the_engine_holds_the_callers_buffer() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, mut stream, mut accepted) = connected(&client, &server, 7).await;
    let data = pattern(1 << 20);
    let live = Arc::new(AtomicUsize::new(0));
    // 300 KB fill the reader's 256 KiB buffer and stay partly in the writer's; the tracked
    // 100 KB after them cannot be acknowledged while nobody reads.
    let (fill, rest) = data.split_at(300_000);
    let (tracked, rest) = rest.split_at(100_000);
    stream
        .write_bytes(bytes::Bytes::copy_from_slice(fill))
        .await
        .unwrap();
    live.fetch_add(1, Ordering::SeqCst);
    let owner = Tracked {
        data: tracked.to_vec(),
        live: Arc::clone(&live),
    };
    stream
        .write_bytes(bytes::Bytes::from_owner(owner))
        .await
        .unwrap();
    assert_eq!(
        live.load(Ordering::SeqCst),
        1,
        "held by the engine, not copied"
    );
    let rest = bytes::Bytes::copy_from_slice(rest);
    let writing = tokio::spawn(async move {
        stream.write_bytes(rest).await.unwrap();
        stream.shutdown().await.unwrap();
        stream
    });
    let mut got = Vec::new();
    accepted.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "byte for byte");
    let stream = writing.await.unwrap();
    // The last ACK may still be on its way back (real time, no deadline but the harness's).
    while live.load(Ordering::SeqCst) != 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(stream);
}

/// `poll_write_bytes` takes what fits and advances the caller's `Bytes` past it, on the
/// stream and on both kinds of write half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_write_bytes_advances_the_callers_bytes_on_the_stream_and_its_halves() {
    use std::future::poll_fn;
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, mut stream, mut accepted) = connected(&client, &server, 7).await;
    let data = pattern(3 << 20);
    let whole = bytes::Bytes::from(data.clone());
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        accepted.read_to_end(&mut got).await.unwrap();
        got
    });
    // The first megabyte through the stream: more than its send buffer, so some polls take
    // a part and leave the rest.
    let mut first = whole.slice(..1 << 20);
    let mut partial = false;
    while !first.is_empty() {
        let before = first.len();
        let n = poll_fn(|cx| stream.poll_write_bytes(cx, &mut first))
            .await
            .unwrap();
        assert_eq!(first.len(), before - n, "advanced by what was taken");
        partial |= n < before;
    }
    assert!(partial, "a megabyte does not fit in one go");
    // The second through the borrowed half, the third through the owned one.
    {
        let (_reader, mut writer) = stream.split();
        writer
            .write_bytes(whole.slice(1 << 20..2 << 20))
            .await
            .unwrap();
    }
    let (_reader, mut writer) = stream.into_split();
    let mut third = whole.slice(2 << 20..);
    while !third.is_empty() {
        poll_fn(|cx| writer.poll_write_bytes(cx, &mut third))
            .await
            .unwrap();
    }
    writer.write_bytes(bytes::Bytes::new()).await.unwrap();
    drop(writer); // FIN
    let got = reading.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "byte for byte");
}

/// The next item of a `Stream`, without a combinator crate.
async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_bytes_delivers_a_megabyte_in_order_then_the_end_of_the_stream() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, mut stream, mut accepted) = connected(&client, &server, 9100).await;
    let data = pattern(1 << 20);
    let send = data.clone();
    let writer = tokio::spawn(async move {
        stream.write_all(&send).await.unwrap();
        stream.shutdown().await.unwrap();
        stream
    });
    let mut received = Vec::with_capacity(data.len());
    // Pieces of every size: single bytes, splits of a segment, whole chunks.
    let maxes = [1, 1000, 64 * 1024, usize::MAX];
    for i in 0.. {
        let max = maxes[i % maxes.len()];
        let chunk = accepted.read_bytes(max).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        assert!(chunk.len() <= max);
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received.len(), data.len());
    assert!(received == data, "byte for byte");
    // The end stays the end; a zero `max` reads nothing.
    assert!(accepted.read_bytes(100).await.unwrap().is_empty());
    assert!(accepted.read_bytes(0).await.unwrap().is_empty());
    drop(writer.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_halves_read_by_bytes_and_as_a_stream_while_writing() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let listener = TcpListener::bind(&server, SocketAddrV4::new(SERVER, 9101))
        .await
        .unwrap();
    // An echo server that reads through the borrowed half's `bytes` stream.
    let echo = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let (reader, mut writer) = stream.split();
        let mut chunks = reader.bytes();
        let mut echoed = 0;
        while let Some(chunk) = next(&mut chunks).await {
            let chunk = chunk.unwrap();
            writer.write_all(&chunk).await.unwrap();
            echoed += chunk.len();
        }
        assert!(next(&mut chunks).await.is_none(), "ended for good");
        writer.shutdown().await.unwrap();
        echoed
    });
    let data = pattern(512 * 1024);
    let stream = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 9101))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let send = data.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&send).await.unwrap();
        drop(writer); // the FIN
    });
    // The owned half: a first piece by `read_bytes`, the rest through its stream.
    let mut echoed = reader.read_bytes(10).await.unwrap().to_vec();
    assert!(!echoed.is_empty() && echoed.len() <= 10);
    let mut chunks = reader.bytes();
    while let Some(chunk) = next(&mut chunks).await {
        echoed.extend_from_slice(&chunk.unwrap());
    }
    writing.await.unwrap();
    assert_eq!(echo.await.unwrap(), data.len());
    assert!(echoed == data, "echoed byte for byte");
}

#[tokio::test]
async fn the_bytes_stream_yields_a_reset_then_ends() {
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, stream, accepted) = connected(&client, &server, 9102).await;
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
    let mut chunks = accepted.bytes();
    let error = next(&mut chunks).await.unwrap().unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(next(&mut chunks).await.is_none());
}

/// A relay on the zero-copy calls: what `read_bytes_into` takes on one half goes back out
/// through `write_bytes_vectored` on the other, byte for byte, on borrowed halves at the
/// server and owned ones at the client; the end of the stream is 0, and stays 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_bytes_into_and_write_bytes_vectored_relay_a_stream_byte_for_byte() {
    use std::collections::VecDeque;
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, stream, mut accepted) = connected(&client, &server, 9103).await;
    let echo = tokio::spawn(async move {
        let (mut reader, mut writer) = accepted.split();
        let mut pieces = VecDeque::new();
        let (mut relayed, mut batches) = (0, 0);
        loop {
            let n = reader
                .read_bytes_into(256 * 1024, &mut pieces)
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            assert_eq!(n, pieces.iter().map(bytes::Bytes::len).sum::<usize>());
            assert!(n <= 256 * 1024);
            relayed += n;
            batches += 1;
            writer.write_bytes_vectored(&mut pieces).await.unwrap();
            assert!(pieces.is_empty(), "all written");
        }
        assert!(pieces.is_empty(), "nothing appended at the end");
        assert_eq!(reader.read_bytes_into(1024, &mut pieces).await.unwrap(), 0);
        writer.shutdown().await.unwrap();
        (relayed, batches)
    });
    let data = pattern(3 << 20);
    let (mut reader, mut writer) = stream.into_split();
    let send = data.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&send).await.unwrap();
        drop(writer); // the FIN
    });
    let mut echoed = Vec::with_capacity(data.len());
    let mut pieces = Vec::new();
    // Odd sizes, and a zero one that takes nothing.
    for max in [0, 1, 1000, 100_000].into_iter().cycle() {
        let n = reader.read_bytes_into(max, &mut pieces).await.unwrap();
        assert_eq!(n, pieces.iter().map(bytes::Bytes::len).sum::<usize>());
        assert!(n <= max);
        if n == 0 && max > 0 {
            break;
        }
        pieces.drain(..).for_each(|p| echoed.extend_from_slice(&p));
    }
    writing.await.unwrap();
    let (relayed, batches) = echo.await.unwrap();
    assert_eq!(relayed, data.len());
    assert!(batches < data.len() / 1448, "many segments per batch");
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed byte for byte");
}

/// `poll_write_bytes_vectored` takes the pieces that fit, leaves a piece it took in part
/// advanced at the front, drops empty pieces, and reports a write side that is shut even
/// when it is given nothing but empty pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_write_bytes_vectored_takes_what_fits_and_leaves_the_rest() {
    use bytes::Bytes;
    use std::collections::VecDeque;
    use std::future::poll_fn;
    let (client, server) = stacks(LinkConfig::default()).await;
    let (_listener, mut stream, mut accepted) = connected(&client, &server, 9104).await;
    let data = Bytes::from(pattern(2 << 20));
    // 4 KiB pieces with an empty one between each, and a short one (copied) at the end.
    let mut pieces: VecDeque<Bytes> = VecDeque::new();
    let mut at = 0;
    while at < data.len() - 100 {
        let end = (at + 4096).min(data.len() - 100);
        pieces.push_back(data.slice(at..end));
        pieces.push_back(Bytes::new());
        at = end;
    }
    pieces.push_back(data.slice(at..));
    // Nobody reads yet: the first poll fills the send buffer and no more.
    let n = poll_fn(|cx| stream.poll_write_bytes_vectored(cx, &mut pieces))
        .await
        .unwrap();
    assert!(n > 0 && n < data.len(), "a part: {n}");
    let left: usize = pieces.iter().map(Bytes::len).sum();
    assert_eq!(left, data.len() - n, "the rest is still there");
    assert_eq!(
        pieces.front().map(|p| p.as_ptr()),
        Some(data[n..].as_ptr()),
        "the front piece starts where the taking stopped"
    );
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        accepted.read_to_end(&mut got).await.unwrap();
        got
    });
    stream.write_bytes_vectored(&mut pieces).await.unwrap();
    assert!(pieces.is_empty());
    stream.shutdown().await.unwrap();
    let got = reading.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "byte for byte");
    // After the FIN: an error, also for a write of nothing, and the pieces stay.
    let mut nothing: VecDeque<Bytes> = [Bytes::new(), Bytes::new()].into();
    let error = poll_fn(|cx| stream.poll_write_bytes_vectored(cx, &mut nothing))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    let mut more: VecDeque<Bytes> = [data.slice(..2048)].into();
    let (_reader, mut writer) = stream.split();
    let error = writer.write_bytes_vectored(&mut more).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    assert_eq!(more.len(), 1, "what was not queued is still the caller's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_link_with_offloads_super_segments_echo_eight_megabytes_byte_for_byte() {
    let (left, right) = MemLink::pair_with_offloads();
    let (client, server) = stacks_on(left, right).await;
    let (_listener, mut stream, accepted) = connected(&client, &server, 7).await;
    let echo = tokio::spawn(async move {
        let mut accepted = accepted;
        let (mut reader, mut writer) = tokio::io::split(&mut accepted);
        tokio::io::copy(&mut reader, &mut writer).await.unwrap();
        writer.shutdown().await.unwrap();
    });
    let data = pattern(8 << 20);
    let echoed = write_all_and_read_back(&mut stream, &data).await;
    echo.await.unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed byte for byte");
    // 8 MiB in 1448-byte segments is 5793 frames each way; super-segments need far fewer.
    let sent = client.stats().tx_frames;
    assert!(
        sent < 5793,
        "the client sent {sent} frames: no super-segments"
    );
}
