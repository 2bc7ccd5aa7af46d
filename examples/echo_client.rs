//! An echo client on rawtcp: sends a message (or N bytes), reads the echo back and checks it.
//!
//! ```text
//! cargo run --example echo_client                       # against an in-memory echo server
//! cargo run --example echo_client -- --message "hello, echo"
//! sudo target/debug/examples/echo_client --iface veth0 --ip 10.9.0.2/24 --connect 10.9.0.1:7
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
An echo client on rawtcp: sends a message, or N bytes of a pattern, to an echo server, reads
the echo until the server closes, and checks it. In memory (the default) it runs its own echo
server on a second stack.

Usage: echo_client [--message TEXT | --bytes N] [--iface NAME --ip A.B.C.D/NN --connect A.B.C.D:PORT]

Options:
  --connect A.B.C.D:PORT  the echo server (required with --iface; in memory 10.9.0.2:7)
  --message TEXT          send TEXT and print the reply
  --bytes N               send N bytes and verify the echo (default 1048576)";

#[tokio::main]
async fn main() -> ExitCode {
    let args = common::start(USAGE, &["--connect", "--message", "--bytes"], &[]);
    common::exit_code("echo_client", run(&args).await)
}

async fn run(args: &Args) -> io::Result<()> {
    let data = match args.get_opt::<String>("--message") {
        Some(message) => message.into_bytes(),
        None => {
            let bytes: usize = args.get("--bytes", 1 << 20);
            (0..bytes).map(|i| (i * 131 + i / 251) as u8).collect()
        }
    };
    let text = args.get_opt::<String>("--message").is_some();
    if args.over_iface() {
        let Some(server) = args.get_opt::<String>("--connect") else {
            args.fail("--iface needs --connect A.B.C.D:PORT");
        };
        let server = common::socket_addr(args, "--connect", &server);
        let stack = common::iface_stack(args, None).await?;
        let result = exchange(&stack, server, &data, text).await;
        stack.shutdown().await;
        return result;
    }
    let (client, server_stack) = common::local_pair(args, None).await?;
    let server = SocketAddrV4::new(common::LOCAL_SERVER, 7);
    let listener = TcpListener::bind(&server_stack, server).await?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(common::echo(stream));
        }
    });
    let result = exchange(&client, server, &data, text).await;
    client.shutdown().await;
    server_stack.shutdown().await;
    result
}

async fn exchange(stack: &Stack, server: SocketAddrV4, data: &[u8], text: bool) -> io::Result<()> {
    let start = Instant::now();
    let stream = TcpStream::connect(stack, server).await?;
    println!("echo_client: connected {} → {server}", stream.local_addr()?);
    let (mut reader, mut writer) = stream.into_split();
    let sent = data.to_vec();
    let writing = tokio::spawn(async move {
        writer.write_all(&sent).await?;
        writer.shutdown().await
    });
    let mut echoed = Vec::with_capacity(data.len());
    reader.read_to_end(&mut echoed).await?;
    writing.await.expect("the writer does not panic")?;
    let elapsed = start.elapsed().as_secs_f64();
    if text {
        println!("echo_client: reply {:?}", String::from_utf8_lossy(&echoed));
    }
    if echoed != data {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the echo differs: sent {} bytes, got {} back",
                data.len(),
                echoed.len()
            ),
        ));
    }
    println!(
        "echo_client: {} bytes sent and echoed back intact in {elapsed:.3} s",
        data.len()
    );
    Ok(())
}
