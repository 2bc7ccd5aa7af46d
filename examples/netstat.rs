//! Opens connections in several states and prints them the way `netstat -napt` does, with the
//! TCP internals netstat does not show (SRTT, RTO, windows, retransmissions).
//!
//! ```text
//! cargo run --example netstat
//! sudo target/debug/examples/netstat --iface veth0 --ip 10.9.0.2/24 --connect 10.9.0.1:80
//! ```

mod common;

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

use common::Args;
use rawtcp::{Stack, TcpListener, TcpStream};
use tokio::io::AsyncWriteExt;

const USAGE: &str = "\
Opens rawtcp connections in several states (LISTEN, SYN-SENT, ESTABLISHED with data queued
both ways, FIN-WAIT-2 and CLOSE-WAIT, TIME-WAIT) and prints stack.connections() the way
`netstat -napt` does, with SRTT, RTO, windows and retransmissions besides.

Usage: netstat [--iface NAME --ip A.B.C.D/NN --connect A.B.C.D:PORT]

Options:
  --connect A.B.C.D:PORT  with --iface: a server to open connections to (for example
                          `python3 -m http.server` on the kernel side)";

#[tokio::main]
async fn main() -> ExitCode {
    let args = common::start(USAGE, &["--connect"], &[]);
    common::exit_code("netstat", run(&args).await)
}

async fn run(args: &Args) -> io::Result<()> {
    if args.over_iface() {
        let Some(server) = args.get_opt::<String>("--connect") else {
            args.fail("--iface needs --connect A.B.C.D:PORT");
        };
        let server = common::socket_addr(args, "--connect", &server);
        let stack = common::iface_stack(args, None).await?;
        let ip = args.ip.expect("--iface has --ip").0;
        let _listener = TcpListener::bind(&stack, SocketAddrV4::new(ip, 13200)).await?;
        let mut streams = Vec::new();
        for _ in 0..3 {
            streams.push(TcpStream::connect(&stack, server).await?);
        }
        // One closes its side: FIN-WAIT-2 once the server has acknowledged the FIN.
        streams[0].shutdown().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        print_table("rawtcp", &stack);
        drop(streams);
        stack.shutdown().await;
        return Ok(());
    }
    let (client, server) = common::local_pair(args, None).await?;
    let addr = |port| SocketAddrV4::new(common::LOCAL_SERVER, port);
    let _web = TcpListener::bind(&server, addr(80)).await?;
    let echo = TcpListener::bind(&server, addr(7)).await?;

    // ESTABLISHED, idle.
    let _idle = TcpStream::connect(&client, addr(7)).await?;
    let (_idle_server, _) = echo.accept().await?;

    // ESTABLISHED with data queued: the server does not read, so its Recv-Q fills and the
    // client's Send-Q holds what the closed window keeps back.
    let mut busy = TcpStream::connect(&client, addr(7)).await?;
    let (_busy_server, _) = echo.accept().await?;
    let data = vec![0x5a; 400_000];
    let _ = tokio::time::timeout(Duration::from_millis(300), busy.write_all(&data)).await;

    // The server closes: it waits in FIN-WAIT-2, the client in CLOSE-WAIT.
    let _half_closed = TcpStream::connect(&client, addr(7)).await?;
    let (mut closing, _) = echo.accept().await?;
    closing.shutdown().await?;

    // The client closes first and the server answers: the client keeps TIME-WAIT.
    let mut done = TcpStream::connect(&client, addr(7)).await?;
    let (mut done_server, _) = echo.accept().await?;
    done.shutdown().await?;
    let mut buf = [0u8; 1];
    let _ = tokio::io::AsyncReadExt::read(&mut done_server, &mut buf).await?;
    done_server.shutdown().await?;
    drop(done_server);

    // SYN-SENT: nobody answers for 10.9.0.3 (not even ARP), so the SYN waits.
    let unanswered = client.clone();
    let pending = tokio::spawn(async move {
        TcpStream::connect(
            &unanswered,
            SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 3), 80),
        )
        .await
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(done);
    tokio::time::sleep(Duration::from_millis(100)).await;
    print_table("client 10.9.0.1", &client);
    println!();
    print_table("server 10.9.0.2", &server);
    pending.abort();
    Ok(())
}

fn print_table(name: &str, stack: &Stack) {
    println!("Active Internet connections on rawtcp stack {name}");
    println!(
        "{:<5} {:>7} {:>7} {:<22} {:<22} {:<12} {:>8} {:>7} {:>8} {:>8} {:>6} {:>7}",
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local Address",
        "Foreign Address",
        "State",
        "SRTT",
        "RTO",
        "SndWnd",
        "RcvWnd",
        "MSS",
        "Retrans"
    );
    for listener in stack.listeners() {
        println!(
            "{:<5} {:>7} {:>7} {:<22} {:<22} {:<12}",
            "tcp", 0, 0, listener, "0.0.0.0:*", "LISTEN"
        );
    }
    let mut connections = stack.connections();
    connections.sort_by_key(|c| (c.local.port(), c.remote.port()));
    for c in connections {
        println!(
            "{:<5} {:>7} {:>7} {:<22} {:<22} {:<12} {:>8} {:>7} {:>8} {:>8} {:>6} {:>7}",
            "tcp",
            c.recv_queue,
            c.send_queue,
            c.local,
            c.remote,
            c.state.to_string(),
            c.srtt.map_or("-".to_string(), |d| format!(
                "{:.1}ms",
                d.as_secs_f64() * 1e3
            )),
            format!("{}ms", c.rto.as_millis()),
            c.snd_wnd,
            c.rcv_wnd,
            c.mss,
            c.stats.retransmitted_segments,
        );
    }
}
