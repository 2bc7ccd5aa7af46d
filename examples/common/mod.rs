//! What the examples share: their command line, the two ways to build stacks (two stacks over
//! an in-memory link, or one over AF_PACKET), tracing, and a Wireshark-like segment trace.
//!
//! Each example uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, exit};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rawtcp::netio::{AfPacket, Device, Flow, Inspect, MemLink, Pcap};
use rawtcp::wire::arp::Operation;
use rawtcp::wire::dissect::{Network, Transport, dissect};
use rawtcp::wire::tcp::{TcpFlags, TcpRepr};
use rawtcp::wire::{RxChecksum, SeqNum};
use rawtcp::{Stack, StateChange};

/// The options every example takes, described once for their `--help`.
pub(crate) const COMMON_OPTIONS: &str = "\
Where it runs (default: two rawtcp stacks over an in-memory link, in this process, with no
privileges):
  --iface NAME        run over AF_PACKET on interface NAME instead (needs CAP_NET_RAW)
  --ip A.B.C.D/NN     our address on NAME (required with --iface)
  --gateway A.B.C.D   next hop for addresses off the subnet
  --pcap FILE         write a libpcap capture of the run to FILE (open it in Wireshark)
  -h, --help          print this help

Logging: RUST_LOG=rawtcp=debug shows every state change, RUST_LOG=rawtcp=trace also every
dropped frame with its reason.";

/// The address of the in-memory server stack.
pub(crate) const LOCAL_SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
/// The address of the in-memory client stack.
pub(crate) const LOCAL_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

/// A parsed command line.
#[derive(Debug)]
pub(crate) struct Args {
    /// `--iface`.
    pub(crate) iface: Option<String>,
    /// `--ip`.
    pub(crate) ip: Option<(Ipv4Addr, u8)>,
    /// `--gateway`.
    pub(crate) gateway: Option<Ipv4Addr>,
    /// `--pcap`.
    pub(crate) pcap: Option<PathBuf>,
    values: HashMap<String, String>,
    flags: Vec<String>,
    usage: &'static str,
}

impl Args {
    /// Parses the command line. `options` are the example's own options that take a value,
    /// `flags` those that do not; `--help` prints `usage` and the common options and exits.
    pub(crate) fn parse(usage: &'static str, options: &[&str], flags: &[&str]) -> Args {
        let mut args = Args {
            iface: None,
            ip: None,
            gateway: None,
            pcap: None,
            values: HashMap::new(),
            flags: Vec::new(),
            usage,
        };
        let mut argv = std::env::args().skip(1);
        while let Some(arg) = argv.next() {
            if arg == "-h" || arg == "--help" {
                // Not println!: `--help | head` closes the pipe early, which is not an error.
                use std::io::Write;
                let _ = writeln!(io::stdout(), "{usage}\n\n{COMMON_OPTIONS}");
                exit(0);
            }
            if flags.contains(&arg.as_str()) {
                args.flags.push(arg);
                continue;
            }
            let common = ["--iface", "--ip", "--gateway", "--pcap"];
            if !common.contains(&arg.as_str()) && !options.contains(&arg.as_str()) {
                args.fail(&format!("unknown argument {arg:?}"));
            }
            let Some(value) = argv.next() else {
                args.fail(&format!("{arg} needs a value"));
            };
            match arg.as_str() {
                "--iface" => args.iface = Some(value),
                "--ip" => args.ip = Some(parse_cidr(&value).unwrap_or_else(|e| args.fail(&e))),
                "--gateway" => args.gateway = Some(args.parse_value(&arg, &value)),
                "--pcap" => args.pcap = Some(PathBuf::from(value)),
                _ => {
                    args.values.insert(arg, value);
                }
            }
        }
        if args.iface.is_some() && args.ip.is_none() {
            args.fail("--iface needs --ip A.B.C.D/NN");
        }
        args
    }

    /// Prints `message` and the usage line, and exits with status 2.
    pub(crate) fn fail(&self, message: &str) -> ! {
        let first = self.usage.lines().find(|l| l.starts_with("Usage:"));
        eprintln!("error: {message}");
        if let Some(line) = first {
            eprintln!("{line}");
        }
        eprintln!("(--help for more)");
        exit(2)
    }

    /// Whether `flag` was given.
    pub(crate) fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The value of `option`, parsed, or `default`.
    pub(crate) fn get<T: FromStr>(&self, option: &str, default: T) -> T {
        match self.values.get(option) {
            Some(value) => self.parse_value(option, value),
            None => default,
        }
    }

    /// The value of `option`, parsed, if given.
    pub(crate) fn get_opt<T: FromStr>(&self, option: &str) -> Option<T> {
        self.values.get(option).map(|v| self.parse_value(option, v))
    }

    fn parse_value<T: FromStr>(&self, option: &str, value: &str) -> T {
        value
            .parse()
            .unwrap_or_else(|_| self.fail(&format!("{option}: cannot read {value:?}")))
    }

    /// Whether the example runs over a real interface.
    pub(crate) fn over_iface(&self) -> bool {
        self.iface.is_some()
    }
}

fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let error = || format!("--ip: expected A.B.C.D/NN, got {text:?}");
    let (address, prefix) = text.split_once('/').ok_or_else(error)?;
    let address = address.parse().map_err(|_| error())?;
    let prefix: u8 = prefix.parse().map_err(|_| error())?;
    if prefix > 32 {
        return Err(error());
    }
    Ok((address, prefix))
}

/// How every example starts: parses the command line (exiting on `--help` or a mistake) and
/// installs tracing.
pub(crate) fn start(usage: &'static str, options: &[&str], flags: &[&str]) -> Args {
    let args = Args::parse(usage, options, flags);
    init_tracing();
    args
}

/// How every example ends: success, or the error under the example's name and a failure.
pub(crate) fn exit_code(name: &str, result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Echoes until the client closes its side, then closes ours; the bytes echoed.
pub(crate) async fn echo(mut stream: rawtcp::TcpStream) -> io::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let (mut reader, mut writer) = stream.split();
    let n = tokio::io::copy(&mut reader, &mut writer).await?;
    writer.shutdown().await?;
    Ok(n)
}

/// Installs a tracing subscriber that follows `RUST_LOG` (default: warnings only).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .init();
}

/// Something that looks at every frame of a stack (a [`SegmentTrace`]).
pub(crate) type Watch = Box<dyn FnMut(Flow, &[u8]) + Send>;

/// How a stack is started: its address, and what watches it.
struct Setup<'a> {
    ip: (Ipv4Addr, u8),
    gateway: Option<Ipv4Addr>,
    pcap: Option<&'a Path>,
    /// Shown every frame.
    watch: Option<Watch>,
    /// Told every state change, with this stack's name.
    states: Option<(&'a SegmentTrace, &'static str)>,
}

/// Starts a stack on `device` as `setup` says.
async fn spawn<D>(device: D, mut setup: Setup<'_>) -> io::Result<Stack>
where
    D: Device + rawtcp::DeviceMac + Send + 'static,
{
    match (setup.pcap, setup.watch.take()) {
        (Some(path), Some(w)) => {
            spawn_on(Inspect::new(Pcap::to_file(device, path)?, w), setup).await
        }
        (Some(path), None) => spawn_on(Pcap::to_file(device, path)?, setup).await,
        (None, Some(w)) => spawn_on(Inspect::new(device, w), setup).await,
        (None, None) => spawn_on(device, setup).await,
    }
}

async fn spawn_on<D>(device: D, setup: Setup<'_>) -> io::Result<Stack>
where
    D: Device + rawtcp::DeviceMac + Send + 'static,
{
    let mut builder = Stack::builder().device(device).ipv4(setup.ip.0, setup.ip.1);
    if let Some(gateway) = setup.gateway {
        builder = builder.gateway(gateway);
    }
    if let Some((trace, name)) = setup.states {
        builder = builder.on_state_change(trace.states(name));
    }
    builder.spawn().await
}

/// Two stacks joined by an in-memory link: `(client, server)` at [`LOCAL_CLIENT`] and
/// [`LOCAL_SERVER`]. The client's end is captured to `--pcap` and shown to `trace`: every
/// frame between the two passes through it. `trace` also hears both stacks' state changes.
pub(crate) async fn local_pair(
    args: &Args,
    trace: Option<&SegmentTrace>,
) -> io::Result<(Stack, Stack)> {
    let (left, right) = MemLink::pair();
    let client = spawn(
        left,
        Setup {
            ip: (LOCAL_CLIENT, 24),
            gateway: None,
            pcap: args.pcap.as_deref(),
            watch: trace.map(SegmentTrace::watch),
            states: trace.map(|t| (t, "client")),
        },
    )
    .await?;
    let server = spawn(
        right,
        Setup {
            ip: (LOCAL_SERVER, 24),
            gateway: None,
            pcap: None,
            watch: None,
            states: trace.map(|t| (t, "server")),
        },
    )
    .await?;
    Ok((client, server))
}

/// One stack on `--iface` with `--ip` and `--gateway`, captured to `--pcap`, its frames and
/// state changes shown to `trace`.
pub(crate) async fn iface_stack(args: &Args, trace: Option<&SegmentTrace>) -> io::Result<Stack> {
    let name = args.iface.as_deref().expect("over_iface() was checked");
    let device = AfPacket::open(name).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot open AF_PACKET on {name}: {error}"),
        )
    })?;
    let ip = args.ip.expect("parse() requires --ip with --iface");
    // RFC 5227: the stack makes sure nobody else on the link has the address first.
    eprintln!(
        "claiming {}/{} on {name}: probing that nobody else has it (a few seconds)",
        ip.0, ip.1
    );
    spawn(
        device,
        Setup {
            ip,
            gateway: args.gateway,
            pcap: args.pcap.as_deref(),
            watch: trace.map(SegmentTrace::watch),
            states: trace.map(|t| (t, "rawtcp")),
        },
    )
    .await
}

/// Parses `A.B.C.D:PORT`.
pub(crate) fn socket_addr(args: &Args, option: &str, text: &str) -> SocketAddrV4 {
    text.parse()
        .unwrap_or_else(|_| args.fail(&format!("{option}: expected A.B.C.D:PORT, got {text:?}")))
}

/// Prints TCP segments and ARP messages one line each, as Wireshark's packet list does, with
/// sequence and acknowledgment numbers relative to each side's initial sequence number.
#[derive(Clone)]
pub(crate) struct SegmentTrace {
    inner: Arc<Mutex<TraceState>>,
}

struct TraceState {
    start: Instant,
    /// The first sequence number seen from each endpoint (its ISN when the SYN was seen).
    base: HashMap<SocketAddrV4, SeqNum>,
}

impl SegmentTrace {
    /// A trace that prints each line as it sees the frame.
    pub(crate) fn new() -> SegmentTrace {
        SegmentTrace {
            inner: Arc::new(Mutex::new(TraceState {
                start: Instant::now(),
                base: HashMap::new(),
            })),
        }
    }

    /// The header line.
    pub(crate) fn header() -> String {
        format!(
            "{:>9}  {:<45} {:<6} {:>6} {:>6} {:>5} {:>6}  options",
            "time", "segment", "flags", "seq", "ack", "len", "win"
        )
    }

    /// A callback for a stack's device that feeds this trace.
    pub(crate) fn watch(&self) -> Watch {
        let trace = self.clone();
        Box::new(move |flow, frame| trace.frame(flow, frame))
    }

    /// A [`rawtcp::Builder::on_state_change`] hook that prints the changes of stack `name`.
    pub(crate) fn states(&self, name: &'static str) -> impl FnMut(&StateChange) + Send + 'static {
        let trace = self.clone();
        move |change| {
            let state = trace.inner.lock().unwrap_or_else(|p| p.into_inner());
            println!(
                "{:>9.6}  # {name} {} ↔ {}: {} → {} ({:?})",
                state.start.elapsed().as_secs_f64(),
                change.local,
                change.remote,
                change.from,
                change.to,
                change.cause
            );
        }
    }

    fn frame(&self, _flow: Flow, frame: &[u8]) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = state.start.elapsed().as_secs_f64();
        let Some(line) = describe(&mut state.base, frame) else {
            return;
        };
        println!("{elapsed:>9.6}  {line}");
    }
}

fn describe(base: &mut HashMap<SocketAddrV4, SeqNum>, frame: &[u8]) -> Option<String> {
    let dissection = dissect(frame, RxChecksum::Trusted).ok()?;
    match dissection.network {
        Network::Arp(arp) => Some(match arp.operation {
            Operation::Request => format!(
                "ARP  who has {}? tell {}",
                arp.target_protocol_addr, arp.source_protocol_addr
            ),
            Operation::Reply => format!(
                "ARP  {} is at {}",
                arp.source_protocol_addr, arp.source_hardware_addr
            ),
            Operation::Unknown(op) => format!("ARP  operation {op}"),
        }),
        Network::Ipv4 {
            header,
            transport: Transport::Tcp(tcp),
        } => {
            let from = SocketAddrV4::new(header.src_addr, tcp.src_port);
            let to = SocketAddrV4::new(header.dst_addr, tcp.dst_port);
            Some(describe_tcp(base, from, to, &tcp))
        }
        Network::Ipv4 { header, .. } => Some(format!(
            "IPv4 {} → {} protocol {:?}",
            header.src_addr, header.dst_addr, header.protocol
        )),
        Network::Other(_) => None,
    }
}

fn describe_tcp(
    base: &mut HashMap<SocketAddrV4, SeqNum>,
    from: SocketAddrV4,
    to: SocketAddrV4,
    tcp: &TcpRepr<'_>,
) -> String {
    if tcp.flags.contains(TcpFlags::SYN) {
        // A new connection from this endpoint starts its numbering again.
        base.insert(from, tcp.seq_number);
    }
    let own = *base.entry(from).or_insert(tcp.seq_number);
    let seq = tcp.seq_number.raw().wrapping_sub(own.raw());
    let ack = if tcp.flags.contains(TcpFlags::ACK) {
        base.get(&to)
            .map(|peer| tcp.ack_number.raw().wrapping_sub(peer.raw()).to_string())
            .unwrap_or_else(|| tcp.ack_number.raw().to_string())
    } else {
        String::new()
    };
    let mut options = Vec::new();
    if let Some(mss) = tcp.options.max_seg_size {
        options.push(format!("mss {mss}"));
    }
    if tcp.options.sack_permitted {
        options.push("sackOK".to_string());
    }
    if let Some(shift) = tcp.options.window_scale {
        options.push(format!("wscale {shift}"));
    }
    for block in tcp.options.sack_blocks.as_slice() {
        options.push(format!(
            "sack {}-{}",
            block
                .0
                .raw()
                .wrapping_sub(base.get(&to).map_or(0, |b| b.raw())),
            block
                .1
                .raw()
                .wrapping_sub(base.get(&to).map_or(0, |b| b.raw()))
        ));
    }
    format!(
        "{:<45} {:<6} {:>6} {:>6} {:>5} {:>6}  {}",
        format!("{from} → {to}"),
        format!("[{}]", tcp.flags),
        seq,
        ack,
        tcp.payload.len(),
        tcp.window_len,
        options.join(",")
    )
}

/// A minimal HTTP/1.1 server for the examples: `GET /` answers a page, `GET /bytes/N` answers
/// N bytes, anything else 404; one request per connection (`Connection: close`).
pub(crate) async fn serve_http(listener: rawtcp::TcpListener, log: bool) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(error) = answer_http(stream).await {
                eprintln!("http: {peer}: {error}");
            } else if log {
                println!("http: answered {peer}");
            }
        });
    }
}

async fn answer_http(mut stream: rawtcp::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || request.len() > 16 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "incomplete request head",
            ));
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/") => (
            "200 OK",
            b"<html><body><h1>Hello from rawtcp</h1></body></html>\n".to_vec(),
        ),
        ("GET", p) if p.starts_with("/bytes/") => match p["/bytes/".len()..].parse::<usize>() {
            Ok(n) if n <= 256 << 20 => ("200 OK", (0..n).map(|i| b'a' + (i % 26) as u8).collect()),
            _ => ("400 Bad Request", b"bad size\n".to_vec()),
        },
        ("GET", _) => ("404 Not Found", b"not found\n".to_vec()),
        _ => ("405 Method Not Allowed", b"GET only\n".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nServer: rawtcp\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await?;
    // Read to the client's FIN so the close is the four-way one, not a reset.
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}
