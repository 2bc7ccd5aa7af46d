//! An echo server on rawtcp: it echoes each client's bytes until the client closes, then
//! closes, serving many clients at once.
//!
//! ```text
//! cargo run --example echo_server                       # with demo clients, in memory
//! sudo target/debug/examples/echo_server --iface veth0 --ip 10.9.0.2/24 --port 7
//! socat - TCP:10.9.0.2:7                                # from the kernel side
//! ```

mod common;

use std::io;
use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Instant;

use common::Args;
use rawtcp::{Stack, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str = "\
An echo server on rawtcp: echoes each client's bytes until the client closes, then closes;
serves many clients at once. In memory (the default) it also runs demo clients against
itself and checks what comes back. With --iface it serves until Ctrl-C.

Usage: echo_server [--port N] [--clients N] [--bytes N] [--iface NAME --ip A.B.C.D/NN]

Options:
  --port N      port to listen on (default 7)
  --clients N   in memory: how many demo clients connect at once (default 20)
  --bytes N     in memory: how many bytes each demo client sends (default 262144)";

#[tokio::main]
async fn main() -> ExitCode {
    let args = common::start(USAGE, &["--port", "--clients", "--bytes"], &[]);
    common::exit_code("echo_server", run(&args).await)
}

async fn run(args: &Args) -> io::Result<()> {
    let port: u16 = args.get("--port", 7);
    if args.over_iface() {
        let stack = common::iface_stack(args, None).await?;
        let ip = args.ip.expect("--iface has --ip").0;
        let listener = TcpListener::bind(&stack, SocketAddrV4::new(ip, port)).await?;
        println!("echo_server: listening on {}", listener.local_addr()?);
        tokio::select! {
            result = serve(listener, true) => result?,
            _ = tokio::signal::ctrl_c() => println!("echo_server: interrupted, closing"),
        }
        stack.shutdown().await;
        return Ok(());
    }
    let (client, server) = common::local_pair(args, None).await?;
    let listener =
        TcpListener::bind(&server, SocketAddrV4::new(common::LOCAL_SERVER, port)).await?;
    println!(
        "echo_server: listening on {} (in memory)",
        listener.local_addr()?
    );
    tokio::spawn(serve(listener, false));
    let clients: usize = args.get("--clients", 20);
    let bytes: usize = args.get("--bytes", 256 * 1024);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..clients {
        let client = client.clone();
        let addr = SocketAddrV4::new(common::LOCAL_SERVER, port);
        tasks.push(tokio::spawn(async move {
            demo_client(&client, addr, n, bytes).await
        }));
    }
    for task in tasks {
        task.await.expect("a demo client does not panic")?;
    }
    let elapsed = start.elapsed();
    println!(
        "echo_server: {clients} clients × {bytes} bytes echoed and verified in {:.3} s ({:.1} MB/s each way)",
        elapsed.as_secs_f64(),
        (clients * bytes) as f64 / elapsed.as_secs_f64() / 1e6
    );
    client.shutdown().await;
    server.shutdown().await;
    Ok(())
}

/// Accepts clients until the listener fails, each in its own task.
async fn serve(listener: TcpListener, log: bool) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        if log {
            println!("echo_server: {peer} connected");
        }
        tokio::spawn(async move {
            match common::echo(stream).await {
                Ok(n) if log => println!("echo_server: {peer} closed after {n} bytes"),
                Ok(_) => {}
                Err(error) => eprintln!("echo_server: {peer}: {error}"),
            }
        });
    }
}

/// Sends `bytes` of a pattern particular to client `n`, reads the echo, and checks it.
async fn demo_client(stack: &Stack, addr: SocketAddrV4, n: usize, bytes: usize) -> io::Result<()> {
    let stream = TcpStream::connect(stack, addr).await?;
    let data: Vec<u8> = (0..bytes).map(|i| (i * 31 + n * 7) as u8).collect();
    let (mut reader, mut writer) = stream.into_split();
    let sent = data.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&sent).await?;
        writer.shutdown().await
    });
    let mut echoed = Vec::with_capacity(bytes);
    reader.read_to_end(&mut echoed).await?;
    writing.await.expect("the writer does not panic")?;
    if echoed != data {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("client {n}: the echo differs from what was sent"),
        ));
    }
    Ok(())
}
