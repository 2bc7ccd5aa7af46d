//! Several listeners on one port through the facade (`TcpListener::bind_with`), and the
//! limits' errors as a tokio user sees them, over an in-memory link on tokio's paused clock.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddrV4;
use std::time::Duration;

use common::{CLIENT, SERVER, stacks_on};
use rawtcp::core::{Config, Ipv4Cidr};
use rawtcp::netio::MemLink;
use rawtcp::{BindOptions, Stack, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(start_paused = true)]
async fn two_listeners_share_a_port_and_closing_one_resets_only_its_queue() {
    let (left, right) = MemLink::pair();
    let (client, server) = stacks_on(left, right).await;
    let addr = SocketAddrV4::new(SERVER, 80);
    let shared = BindOptions {
        reuse_port: true,
        backlog: None,
    };
    let first = TcpListener::bind_with(&server, addr, shared).await.unwrap();
    let second = TcpListener::bind_with(&server, addr, shared).await.unwrap();
    let error = TcpListener::bind(&server, addr).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AddrInUse);

    let mut streams = Vec::new();
    for _ in 0..16 {
        streams.push(TcpStream::connect(&client, addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Each listener got some: take the second's, and close the first with its queue.
    let accepted = accept_ready(&second).await;
    let queued_on_first = 16 - accepted.len();
    assert!(queued_on_first > 0, "the hash gave the first listener none");
    assert!(
        !accepted.is_empty(),
        "the hash gave the second listener none"
    );
    drop(first);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut reset = 0;
    for stream in &mut streams {
        let mut buf = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Err(error)) if error.kind() == ErrorKind::ConnectionReset => reset += 1,
            Err(_) => {} // open and idle: the second listener's
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(reset, queued_on_first);
    // The accepted ones still carry data.
    let survivors = accepted.len();
    for mut stream in accepted {
        stream.write_all(b"ok").await.unwrap();
    }
    let mut heard = 0;
    for stream in &mut streams {
        let mut buf = [0u8; 2];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(100), stream.read_exact(&mut buf)).await
        {
            assert_eq!(&buf, b"ok");
            heard += 1;
        }
    }
    assert_eq!(heard, survivors);
    // The port still takes connections, all on the second listener now.
    let _late = TcpStream::connect(&client, addr).await.unwrap();
    let (_, peer) = second.accept().await.unwrap();
    assert_eq!(*peer.ip(), CLIENT);
}

/// Accepts whatever is queued on `listener` now.
async fn accept_ready(listener: &TcpListener) -> Vec<TcpStream> {
    let mut accepted = Vec::new();
    while let Ok(Ok((stream, _))) =
        tokio::time::timeout(Duration::from_millis(1), listener.accept()).await
    {
        accepted.push(stream);
    }
    accepted
}

#[tokio::test(start_paused = true)]
async fn connect_at_the_connection_limit_is_an_out_of_memory_error() {
    let (left, right) = MemLink::pair();
    let mut config = Config::new(Default::default(), Ipv4Cidr::new(CLIENT, 24));
    config.tcp.max_connections = 1;
    let client = Stack::builder()
        .device(left)
        .ipv4(CLIENT, 24)
        .config(config)
        .spawn()
        .await
        .unwrap();
    let server = Stack::builder()
        .device(right)
        .ipv4(SERVER, 24)
        .spawn()
        .await
        .unwrap();
    let addr = SocketAddrV4::new(SERVER, 80);
    let listener = TcpListener::bind(&server, addr).await.unwrap();
    let mut first = TcpStream::connect(&client, addr).await.unwrap();
    let error = TcpStream::connect(&client, addr).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutOfMemory, "{error}");
    assert_eq!(
        client
            .stats()
            .drops(rawtcp::core::DropReason::ConnectionLimit),
        1
    );
    // The established one still works.
    let (mut accepted, _) = listener.accept().await.unwrap();
    first.write_all(b"ok").await.unwrap();
    let mut buf = [0u8; 2];
    accepted.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ok");
}
