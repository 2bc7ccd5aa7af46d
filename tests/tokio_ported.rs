//! The behaviours tokio's own TCP tests check (tcp_accept, tcp_connect, tcp_echo, tcp_split,
//! tcp_into_split, tcp_shutdown, tcp_peek, tcp_stream), checked on rawtcp: two stacks over an
//! in-memory link stand in for the loopback interface. Written anew for our API; where tokio
//! allows a platform difference, so do we.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use rawtcp::netio::MemLink;
use rawtcp::{Stack, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{CLIENT, SERVER, stacks_on};

async fn stacks() -> (Stack, Stack) {
    let (left, right) = MemLink::pair();
    let (client, server) = stacks_on(left, right).await;
    (client, server)
}

/// A listener on an ephemeral port of the server stack, and its address.
async fn listen(server: &Stack) -> (TcpListener, SocketAddrV4) {
    let listener = TcpListener::bind(server, SocketAddrV4::new(SERVER, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A connected pair: (client side, server side).
async fn pair(client: &Stack, server: &Stack) -> (TcpStream, TcpStream) {
    let (listener, addr) = listen(server).await;
    let (connected, accepted) = tokio::join!(TcpStream::connect(client, addr), listener.accept());
    (connected.unwrap(), accepted.unwrap().0)
}

// ---- tcp_accept ----

#[tokio::test]
async fn accept_reports_the_connecting_peer() {
    let (client, server) = stacks().await;
    let (listener, addr) = listen(&server).await;
    assert_eq!(*addr.ip(), SERVER);
    assert_ne!(addr.port(), 0, "port 0 picked a port");
    let (accepted, connected) = tokio::join!(listener.accept(), TcpStream::connect(&client, addr));
    let (stream, peer) = accepted.unwrap();
    let connected = connected.unwrap();
    assert_eq!(peer, connected.local_addr().unwrap());
    assert_eq!(stream.peer_addr().unwrap(), connected.local_addr().unwrap());
    assert_eq!(stream.local_addr().unwrap(), addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_may_wait_in_accept_on_one_listener() {
    const N: usize = 20;
    let (client, server) = stacks().await;
    let (listener, addr) = listen(&server).await;
    let listener = Arc::new(listener);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..N {
        let listener = Arc::clone(&listener);
        let done = done_tx.clone();
        tokio::spawn(async move {
            let accepted = listener.accept().await;
            done.send(accepted.map(|(_, peer)| peer)).unwrap();
        });
    }
    // Let every task wait in accept before anyone connects.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut streams = Vec::new();
    for _ in 0..N {
        streams.push(TcpStream::connect(&client, addr).await.unwrap());
    }
    let mut peers = Vec::new();
    for _ in 0..N {
        peers.push(done_rx.recv().await.unwrap().unwrap());
    }
    peers.sort();
    let mut expected: Vec<_> = streams.iter().map(|s| s.local_addr().unwrap()).collect();
    expected.sort();
    assert_eq!(peers, expected, "each connection accepted exactly once");
}

#[tokio::test]
async fn poll_accept_is_pending_until_a_connection_arrives() {
    let (client, server) = stacks().await;
    let (listener, addr) = listen(&server).await;
    let waker = futures_noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(listener.poll_accept(&mut cx).is_pending());
    let _stream = TcpStream::connect(&client, addr).await.unwrap();
    let accepted = std::future::poll_fn(|cx| listener.poll_accept(cx)).await;
    assert!(accepted.is_ok());
}

fn futures_noop_waker() -> std::task::Waker {
    std::task::Waker::noop().clone()
}

// ---- tcp_connect ----

#[tokio::test]
async fn connect_mirrors_the_addresses_of_both_ends() {
    let (client, server) = stacks().await;
    let (connected, accepted) = pair(&client, &server).await;
    assert_eq!(
        connected.peer_addr().unwrap(),
        accepted.local_addr().unwrap()
    );
    assert_eq!(
        connected.local_addr().unwrap(),
        accepted.peer_addr().unwrap()
    );
    assert_eq!(*connected.local_addr().unwrap().ip(), CLIENT);
}

#[tokio::test]
async fn connect_to_an_address_that_is_no_host_is_invalid_input() {
    let (client, _server) = stacks().await;
    for bad in [
        SocketAddrV4::new(SERVER, 0),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 80),
    ] {
        let error = TcpStream::connect(&client, bad).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{bad}");
    }
}

#[tokio::test]
async fn binding_an_address_twice_is_addr_in_use() {
    let (_client, server) = stacks().await;
    let (_listener, addr) = listen(&server).await;
    let error = TcpListener::bind(&server, addr).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AddrInUse);
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, addr.port());
    let error = TcpListener::bind(&server, any).await.unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::AddrInUse,
        "0.0.0.0 covers our address"
    );
    let error = TcpListener::bind(&server, SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 99), 80))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AddrNotAvailable, "not our address");
}

// ---- tcp_echo ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_server_with_copy() {
    const ITER: usize = 1024;
    const MSG: &[u8] = b"foo bar baz";
    let (client, server) = stacks().await;
    let (listener, addr) = listen(&server).await;
    let echo = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let (mut reader, mut writer) = stream.split();
        let copied = tokio::io::copy(&mut reader, &mut writer).await.unwrap();
        assert_eq!(copied, (ITER * MSG.len()) as u64);
    });
    let mut stream = TcpStream::connect(&client, addr).await.unwrap();
    for _ in 0..ITER {
        stream.write_all(MSG).await.unwrap();
        let mut buf = [0u8; MSG.len()];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, MSG);
    }
    drop(stream);
    echo.await.unwrap();
}

// ---- tcp_split ----

#[tokio::test]
async fn split_halves_read_and_write_at_once() {
    const MSG: &[u8] = b"split";
    let (client, server) = stacks().await;
    let (mut stream, mut peer) = pair(&client, &server).await;
    peer.write_all(MSG).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let mut got = [0u8; MSG.len()];
    let (read, wrote) = tokio::join!(reader.read_exact(&mut got), writer.write_all(MSG));
    read.unwrap();
    wrote.unwrap();
    assert_eq!(&got, MSG);
    let mut back = [0u8; MSG.len()];
    peer.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, MSG);
}

// ---- tcp_into_split ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn into_split_halves_live_in_different_tasks() {
    let (client, server) = stacks().await;
    let (stream, mut peer) = pair(&client, &server).await;
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        writer.write_all(b"from the write half").await.unwrap();
        writer
    });
    let mut got = [0u8; 19];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"from the write half");
    peer.write_all(b"to the read half").await.unwrap();
    let mut back = [0u8; 16];
    reader.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"to the read half");
    let writer = writing.await.unwrap();
    let stream = reader.reunite(writer).expect("halves of one stream");
    assert!(stream.peer_addr().is_ok());
}

#[tokio::test]
async fn reunite_refuses_halves_of_different_streams() {
    let (client, server) = stacks().await;
    let (a, _pa) = pair(&client, &server).await;
    let (b, _pb) = pair(&client, &server).await;
    let (a_read, _a_write) = a.into_split();
    let (_b_read, b_write) = b.into_split();
    assert!(a_read.reunite(b_write).is_err());
}

#[tokio::test]
async fn dropping_the_owned_write_half_sends_fin_and_reading_goes_on() {
    let (client, server) = stacks().await;
    let (stream, mut peer) = pair(&client, &server).await;
    let (mut reader, writer) = stream.into_split();
    drop(writer);
    let mut buf = [0u8; 4];
    assert_eq!(
        peer.read(&mut buf).await.unwrap(),
        0,
        "the peer sees our FIN"
    );
    peer.write_all(b"late").await.unwrap();
    reader.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"late", "our read side is still open");
}

// ---- tcp_shutdown ----

#[tokio::test]
async fn shutdown_then_the_peer_copies_nothing_and_shuts_down_too() {
    let (client, server) = stacks().await;
    let (mut stream, mut peer) = pair(&client, &server).await;
    stream.shutdown().await.unwrap();
    let (mut reader, mut writer) = peer.split();
    assert_eq!(tokio::io::copy(&mut reader, &mut writer).await.unwrap(), 0);
    peer.shutdown().await.unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(stream.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test]
async fn shutdown_after_the_peer_reset_is_ok_or_reset() {
    let (client, server) = stacks().await;
    let (mut stream, peer) = pair(&client, &server).await;
    peer.set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    tokio::time::sleep(Duration::from_millis(10)).await;
    match stream.shutdown().await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("unexpected error after a reset: {e}"),
    }
}

#[tokio::test]
async fn shutdown_may_be_called_again() {
    let (client, server) = stacks().await;
    let (mut stream, _peer) = pair(&client, &server).await;
    for _ in 0..3 {
        stream.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn writing_after_shutdown_is_broken_pipe() {
    let (client, server) = stacks().await;
    let (mut stream, _peer) = pair(&client, &server).await;
    stream.shutdown().await.unwrap();
    let error = stream.write(b"x").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BrokenPipe);
}

// ---- tcp_peek ----

#[tokio::test]
async fn peek_leaves_the_data_for_read() {
    let (client, server) = stacks().await;
    let (mut stream, mut peer) = pair(&client, &server).await;
    peer.write_all(b"0123456789").await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut buf = [0u8; 10];
    assert_eq!(stream.peek(&mut buf).await.unwrap(), 10);
    assert_eq!(&buf, b"0123456789");
    let mut again = [0u8; 4];
    assert_eq!(stream.peek(&mut again).await.unwrap(), 4);
    assert_eq!(&again, b"0123");
    let mut read = [0u8; 10];
    stream.read_exact(&mut read).await.unwrap();
    assert_eq!(&read, b"0123456789");
}

// ---- tcp_stream ----

#[tokio::test]
async fn set_nodelay_and_set_linger_are_read_back() {
    let (client, server) = stacks().await;
    let (stream, _peer) = pair(&client, &server).await;
    stream.set_nodelay(true).unwrap();
    assert_eq!(stream.linger().unwrap(), None);
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    assert_eq!(stream.linger().unwrap(), Some(Duration::ZERO));
    stream.set_linger(None).unwrap();
    assert_eq!(stream.linger().unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_read_try_write_with_readiness() {
    let (client, server) = stacks().await;
    let (stream, peer) = pair(&client, &server).await;
    let mut buf = [0u8; 64];
    assert_eq!(
        stream.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "nothing to read yet"
    );
    // Fill the send buffer (the peer does not read) until try_write would block.
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    loop {
        match stream.try_write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(written > 0);
    // The peer reads everything; room opens and writable() says so.
    let draining = tokio::spawn(async move {
        let mut peer = peer;
        let mut sink = vec![0u8; written];
        peer.read_exact(&mut sink).await.unwrap();
        assert!(sink.iter().all(|&b| b == 7));
        peer.write_all(b"pong").await.unwrap();
        peer
    });
    stream.writable().await.unwrap();
    assert!(stream.try_write(b"more").unwrap() > 0);
    stream.readable().await.unwrap();
    let n = stream.try_read(&mut buf).unwrap();
    assert_eq!(&buf[..n], &b"pong"[..n]);
    let _peer = draining.await.unwrap();
}

#[tokio::test]
async fn reading_after_the_peer_closed_is_eof_every_time() {
    let (client, server) = stacks().await;
    let (mut stream, peer) = pair(&client, &server).await;
    drop(peer);
    let mut buf = [0u8; 8];
    for _ in 0..3 {
        assert_eq!(stream.read(&mut buf).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn writing_after_the_peer_reset_fails() {
    let (client, server) = stacks().await;
    let (mut stream, peer) = pair(&client, &server).await;
    peer.set_linger(Some(Duration::ZERO)).unwrap();
    drop(peer);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let error = stream.write(b"x").await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_tasks_may_wait_to_read_one_stream() {
    let (client, server) = stacks().await;
    let (stream, mut peer) = pair(&client, &server).await;
    let stream = Arc::new(stream);
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let stream = Arc::clone(&stream);
            tokio::spawn(async move { stream.readable().await })
        })
        .collect();
    let peeking = {
        let stream = Arc::clone(&stream);
        tokio::spawn(async move {
            let mut buf = [0u8; 2];
            stream.peek(&mut buf).await.map(|n| buf[..n].to_vec())
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    peer.write_all(b"hi").await.unwrap();
    for task in waiting {
        task.await.unwrap().unwrap();
    }
    assert_eq!(peeking.await.unwrap().unwrap(), b"hi".to_vec());
}
