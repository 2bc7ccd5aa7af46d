//! Fetches a path from an HTTP/1.1 server over rawtcp and prints the status and body length.
//!
//! ```text
//! cargo run --example http_get                          # from an in-memory rawtcp server
//! cargo run --example http_get -- --path /bytes/100000
//! sudo target/debug/examples/http_get --iface veth0 --ip 10.9.0.2/24 --connect 10.9.0.1:8000
//! sudo target/debug/examples/http_get --iface veth0 --ip 10.9.0.2/24 --serve 80   # for curl
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
Fetches a path from an HTTP/1.1 server by IP over rawtcp and prints the status line and the
body's length. In memory (the default) it fetches from a small HTTP server on a second
rawtcp stack; --serve runs that server on --iface instead, for curl or a browser.

Usage: http_get [--connect A.B.C.D:PORT] [--path PATH] [--body] [--iface NAME --ip A.B.C.D/NN]
       http_get --serve PORT --iface NAME --ip A.B.C.D/NN

Options:
  --connect A.B.C.D:PORT  the server (required with --iface unless --serve; in memory 10.9.0.2:80)
  --path PATH             the path to fetch (default /)
  --body                  also print the body
  --serve PORT            with --iface: serve HTTP on PORT until Ctrl-C (GET / and
                          GET /bytes/N) instead of fetching";

#[tokio::main]
async fn main() -> ExitCode {
    let args = common::start(USAGE, &["--connect", "--path", "--serve"], &["--body"]);
    common::exit_code("http_get", run(&args).await)
}

async fn run(args: &Args) -> io::Result<()> {
    let path: String = args.get("--path", "/".to_string());
    if args.over_iface() {
        let stack = common::iface_stack(args, None).await?;
        if let Some(port) = args.get_opt::<u16>("--serve") {
            let ip = args.ip.expect("--iface has --ip").0;
            let listener = TcpListener::bind(&stack, SocketAddrV4::new(ip, port)).await?;
            println!("http_get: serving http://{ip}:{port}/ (Ctrl-C stops)");
            tokio::select! {
                result = common::serve_http(listener, true) => result?,
                _ = tokio::signal::ctrl_c() => {}
            }
            stack.shutdown().await;
            return Ok(());
        }
        let Some(server) = args.get_opt::<String>("--connect") else {
            args.fail("--iface needs --connect A.B.C.D:PORT (or --serve PORT)");
        };
        let server = common::socket_addr(args, "--connect", &server);
        let result = fetch(&stack, server, &path, args.flag("--body")).await;
        stack.shutdown().await;
        return result;
    }
    if args.get_opt::<u16>("--serve").is_some() {
        args.fail("--serve needs --iface");
    }
    let (client, server_stack) = common::local_pair(args, None).await?;
    let server = SocketAddrV4::new(common::LOCAL_SERVER, 80);
    let listener = TcpListener::bind(&server_stack, server).await?;
    tokio::spawn(common::serve_http(listener, false));
    let result = fetch(&client, server, &path, args.flag("--body")).await;
    client.shutdown().await;
    server_stack.shutdown().await;
    result
}

async fn fetch(
    stack: &Stack,
    server: SocketAddrV4,
    path: &str,
    print_body: bool,
) -> io::Result<()> {
    let start = Instant::now();
    let mut stream = TcpStream::connect(stack, server).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rawtcp-http_get\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        server.ip()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let response = Response::parse(&response)?;
    println!("{}", response.status_line);
    println!(
        "body: {} bytes{} in {elapsed:.3} s",
        response.body.len(),
        if response.chunked { " (chunked)" } else { "" }
    );
    if print_body {
        println!("{}", String::from_utf8_lossy(&response.body));
    }
    Ok(())
}

/// What `fetch` needs of a response: the status line and the body, whole.
struct Response {
    status_line: String,
    body: Vec<u8>,
    chunked: bool,
}

impl Response {
    fn parse(bytes: &[u8]) -> io::Result<Response> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no end of the response head"))?;
        let head = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        if !status_line.starts_with("HTTP/1.") {
            return Err(bad("not an HTTP/1.x response"));
        }
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let rest = &bytes[end + 4..];
        let body = if chunked {
            dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
        } else if let Some(length) = length {
            if rest.len() < length {
                return Err(bad("the body is shorter than Content-Length"));
            }
            rest[..length].to_vec()
        } else {
            // No length: the body runs to the close.
            rest.to_vec()
        };
        Ok(Response {
            status_line,
            body,
            chunked,
        })
    }
}

/// Decodes a chunked body (RFC 9112 §7.1).
fn dechunk(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&bytes[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(bytes.get(..size)?);
        bytes = bytes.get(size + 2..)?;
    }
}
