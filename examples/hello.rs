//! The textbook TCP conversation, segment by segment.
//!
//! A server on port 13200 sends "hello" and "world", sleeps 1 s and closes; a client connects,
//! prints what it got, sleeps 2 s and closes. Every segment is printed as Wireshark's packet
//! list shows it (relative sequence numbers), and every state change of both connections.
//!
//! ```text
//! cargo run --example hello
//! cargo run --example hello -- --pcap hello.pcap
//! sudo target/debug/examples/hello --iface veth0 --ip 10.9.0.2/24            # serve the kernel
//! sudo target/debug/examples/hello --iface veth0 --ip 10.9.0.2/24 --connect 10.9.0.1:13200
//! ```

mod common;

use std::io;
use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Duration;

use common::{Args, SegmentTrace};
use rawtcp::{Stack, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str = "\
The textbook TCP conversation: a server on port 13200 sends \"hello\" and \"world\", sleeps
1 s and closes; a client connects, prints what it got, sleeps 2 s and closes. Prints every
segment (relative seq/ack, like Wireshark) and every state change of both connections.

Usage: hello [--iface NAME --ip A.B.C.D/NN [--connect A.B.C.D:PORT]] [--pcap FILE]

Options:
  --connect A.B.C.D:PORT  with --iface: be the client of that server (default: be the
                          server on port 13200, for a kernel client such as
                          `socat - TCP:A.B.C.D:13200`)";

const PORT: u16 = 13200;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = common::start(USAGE, &["--connect"], &[]);
    common::exit_code("hello", run(&args).await)
}

async fn run(args: &Args) -> io::Result<()> {
    let trace = SegmentTrace::new();
    println!("{}", SegmentTrace::header());
    if !args.over_iface() {
        let (client, server) = common::local_pair(args, Some(&trace)).await?;
        let listener =
            TcpListener::bind(&server, SocketAddrV4::new(common::LOCAL_SERVER, PORT)).await?;
        let serving = tokio::spawn(async move { serve_one(&listener).await });
        run_client(&client, SocketAddrV4::new(common::LOCAL_SERVER, PORT)).await?;
        serving.await.expect("the server task does not panic")?;
        // Let the last ACK arrive, then stop both (the server's TIME-WAIT is not kept).
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.shutdown().await;
        server.shutdown().await;
        return Ok(());
    }
    let stack = common::iface_stack(args, Some(&trace)).await?;
    match args.get_opt::<String>("--connect") {
        Some(text) => {
            let server = common::socket_addr(args, "--connect", &text);
            run_client(&stack, server).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None => {
            let ip = args.ip.expect("--iface has --ip").0;
            let listener = TcpListener::bind(&stack, SocketAddrV4::new(ip, PORT)).await?;
            println!("# listening on {ip}:{PORT}; connect with: socat - TCP:{ip}:{PORT}");
            let conversation = async {
                serve_one(&listener).await?;
                // Wait for the client's FIN and our last ACK.
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok::<(), io::Error>(())
            };
            tokio::select! {
                result = conversation => result?,
                // Ctrl-C ends it at once, whatever the conversation's state (the peer may be
                // gone: the README's walkthrough stops everything and deletes the test bed).
                _ = tokio::signal::ctrl_c() => {
                    println!("# interrupted");
                    return Ok(());
                }
            }
        }
    }
    stack.shutdown().await;
    if let Some(path) = &args.pcap {
        println!("# capture written to {}", path.display());
    }
    Ok(())
}

/// Accepts one connection, sends "hello" and "world", sleeps 1 s and closes.
async fn serve_one(listener: &TcpListener) -> io::Result<()> {
    let (mut stream, peer) = listener.accept().await?;
    println!("# server: accepted {peer}");
    // Each write its own segment, as in the textbook picture: no Nagle coalescing, and a
    // moment between the writes (the driver sends what has been written when it next runs,
    // so two writes in a row would share one segment).
    stream.set_nodelay(true)?;
    stream.write_all(b"hello").await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    stream.write_all(b"world").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("# server: closing");
    drop(stream);
    Ok(())
}

/// Connects, prints what arrives until the server closes, sleeps 2 s and closes.
async fn run_client(stack: &Stack, server: SocketAddrV4) -> io::Result<()> {
    let mut stream = TcpStream::connect(stack, server).await?;
    println!("# client: connected to {server}");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await?;
    println!(
        "# client: got {:?}, then the end of the stream",
        String::from_utf8_lossy(&got)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("# client: closing");
    drop(stream);
    Ok(())
}
