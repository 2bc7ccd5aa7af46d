//! The workloads: what the server side answers and what the client side measures. Each is
//! written once against [`Net`], so the kernel and rawtcp run exactly the same code.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::measure::{self, Metric};
use crate::net::{CHUNK, Held, Listener, Net, Stream, pump};
use crate::soak;

/// Connections one listener port takes in the `conns` scenario; beyond it the client moves
/// to the next port, so no source runs short of ephemeral ports (28 232 on Linux).
const CONNS_PER_PORT: usize = 20_000;
/// [`CHUNK`]s the warm-up connection of `conns` sends before memory is counted.
const WARM_UP_CHUNKS: usize = 64;

/// Connection attempts in flight at once while `conns` opens its connections. Queues keep
/// the room their busiest moment needed (the runtime's, the listener's): 128 handshakes at
/// once left about 45 KB behind over a MemLink, which made 100 connections look like
/// 1173 B each. A burst this wide is made before memory is counted.
const CONNS_IN_FLIGHT: usize = 16;

/// The first server port; listeners take the ports after it.
pub(crate) const BASE_PORT: u16 = 5000;

/// Who sends in a bulk transfer, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The client sends, the server receives.
    Send,
    /// The server sends, the client receives.
    Recv,
}

/// One measured workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Bulk {
        direction: Direction,
        streams: usize,
    },
    Rr {
        size: usize,
    },
    Crr {
        concurrency: usize,
    },
    Conns {
        count: usize,
    },
    /// `connections` at once, each streaming to the server, which echoes every byte back on
    /// the same connection: both ends read and write at once, as a proxy or tunnel does.
    Echo {
        connections: usize,
    },
    /// `connections` at once through a proxy: each client streams to the proxy, which
    /// relays to the server and back; the server echoes every byte. The proxy (the side
    /// measured) reads and writes two connections per client at once, both ways.
    Proxy {
        connections: usize,
    },
}

impl Case {
    pub(crate) fn label(&self) -> String {
        match *self {
            Case::Bulk { direction, streams } => {
                let dir = match direction {
                    Direction::Send => "send",
                    Direction::Recv => "recv",
                };
                if streams == 1 {
                    format!("bulk {dir}")
                } else {
                    format!("bulk {dir} ×{streams}")
                }
            }
            Case::Rr { size } => format!("rr {size} B"),
            Case::Crr { concurrency } => format!("crr c={concurrency}"),
            Case::Conns { count } => format!("conns {count}"),
            Case::Echo { connections } => format!("echo c={connections}"),
            Case::Proxy { connections } => format!("proxy c={connections}"),
        }
    }

    /// How many server ports it listens on, from the first on.
    pub(crate) fn ports(&self) -> u16 {
        self.roles().len() as u16
    }

    /// The server's listeners, by role.
    fn roles(&self) -> Vec<Role> {
        match *self {
            Case::Bulk {
                direction: Direction::Send,
                ..
            } => vec![Role::Sink],
            Case::Bulk {
                direction: Direction::Recv,
                ..
            } => vec![Role::Source],
            Case::Rr { size } => vec![Role::Echo(size)],
            Case::Crr { .. } => vec![Role::OneShot],
            Case::Conns { count } => {
                let mut roles = vec![Role::Sink];
                roles.extend((0..count.div_ceil(CONNS_PER_PORT)).map(|_| Role::Hold));
                roles
            }
            Case::Echo { .. } | Case::Proxy { .. } => vec![Role::StreamEcho],
        }
    }
}

/// What a server listener does with each connection.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Reads to the end, then closes.
    Sink,
    /// Writes until the client closes its sending side, then closes.
    Source,
    /// Answers every `size`-byte request with `size` bytes.
    Echo(usize),
    /// Reads one byte, answers one byte and closes first (as an HTTP/1.0 server does), so
    /// TIME-WAIT stays with the server and the client's ports are free again at once.
    OneShot,
    /// Keeps the connection open and idle until the run ends.
    Hold,
    /// Writes back every byte it reads, as it reads it, until the client closes; then
    /// closes.
    StreamEcho,
}

/// How long a client warms up, then measures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
}

/// A server's bound listeners, ready to serve.
pub(crate) struct Server {
    listeners: Vec<(Listener, Role)>,
}

/// Binds the listeners `case` needs on `addr`, from `port` on.
pub(crate) async fn bind(net: &Net, addr: Ipv4Addr, port: u16, case: Case) -> io::Result<Server> {
    let mut listeners = Vec::new();
    for (i, role) in case.roles().into_iter().enumerate() {
        let at = SocketAddrV4::new(addr, port + i as u16);
        let listener = net
            .bind(at)
            .await
            .map_err(|error| io::Error::new(error.kind(), format!("bind {at}: {error}")))?;
        listeners.push((listener, role));
    }
    Ok(Server { listeners })
}

/// Serves until `stop` fires (or its sender is dropped); then every connection is dropped.
pub(crate) async fn serve(server: Server, stop: tokio::sync::oneshot::Receiver<()>) {
    let (quit_tx, quit) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (listener, role) in server.listeners {
        tasks.spawn(accept_loop(listener, role, quit.clone()));
    }
    let _ = stop.await;
    let _ = quit_tx.send(true);
    tasks.shutdown().await;
}

async fn accept_loop(listener: Listener, role: Role, mut quit: watch::Receiver<bool>) {
    let mut handlers = JoinSet::new();
    // Held connections are kept here, not in a task each, so that the `conns` scenario
    // measures the stack's memory per connection and not the harness's; room for a whole
    // port's worth is made before anything is measured, so the list's doublings are not
    // counted as the stack's either.
    let mut held = Vec::with_capacity(if matches!(role, Role::Hold) {
        CONNS_PER_PORT
    } else {
        0
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok(stream) = accepted else { continue };
                match role {
                    Role::Hold => held.push(stream),
                    role => {
                        handlers.spawn(handle(stream, role));
                    }
                }
            }
            // Finished handlers are reaped as they go, so a long run holds no garbage.
            Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
            _ = quit.changed() => break,
        }
    }
    drop(held);
    handlers.shutdown().await;
}

async fn handle(mut stream: Stream, role: Role) -> io::Result<()> {
    match role {
        Role::Sink => {
            let mut held = Held::default();
            while stream.read_into(&mut held).await? > 0 {
                held.clear();
            }
            stream.shutdown().await
        }
        Role::Source => {
            {
                let (mut reader, mut writer) = stream.split();
                let data = Bytes::from(vec![0x5au8; CHUNK]);
                // Writing ends only in an error (the client reset or went away).
                let write = async {
                    loop {
                        if let Err(error) = writer.write_chunk(&data).await {
                            break error;
                        }
                    }
                };
                let eof = async {
                    let mut buf = [0u8; 64];
                    while reader.read(&mut buf).await? > 0 {}
                    Ok::<(), io::Error>(())
                };
                tokio::select! {
                    error = write => return Err(error),
                    result = eof => result?,
                }
            }
            stream.shutdown().await
        }
        Role::Echo(size) => {
            stream.set_nodelay(true)?;
            let mut buf = vec![0u8; size];
            loop {
                match stream.read_exact(&mut buf).await {
                    Ok(_) => stream.write_all(&buf).await?,
                    Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(error) => return Err(error),
                }
            }
        }
        Role::OneShot => {
            stream.set_nodelay(true)?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            stream.write_all(&byte).await?;
            // Dropping closes: FIN after the answer.
            Ok(())
        }
        Role::Hold => Ok(()),
        Role::StreamEcho => {
            let (mut reader, mut writer) = stream.split();
            pump(&mut reader, &mut writer).await
        }
    }
}

/// Runs `case`'s client against the server at `server:port` and measures it. `ends` is the
/// number of rawtcp stacks driven by the calling thread (two over a MemLink, where the
/// server's stack shares the thread), for the memory figure of `conns`.
pub(crate) async fn client(
    net: &Net,
    server: SocketAddrV4,
    case: Case,
    timing: Timing,
    ends: usize,
) -> io::Result<Vec<Metric>> {
    let at = server;
    match case {
        Case::Bulk { direction, streams } => bulk(net, at, direction, streams, timing).await,
        Case::Rr { size } => rr(net, at, size, timing).await,
        Case::Crr { concurrency } => crr(net, at, concurrency, timing).await,
        Case::Conns { count } => conns(net, at, count, timing, ends).await,
        Case::Echo { connections } | Case::Proxy { connections } => {
            echo(net, at, connections, timing).await
        }
    }
}

/// `count` connections to `at`, one after the other.
async fn connect_all(net: &Net, at: SocketAddrV4, count: usize) -> io::Result<Vec<Stream>> {
    let mut connected = Vec::with_capacity(count);
    for _ in 0..count {
        connected.push(connect(net, at).await?);
    }
    Ok(connected)
}

async fn connect(net: &Net, at: SocketAddrV4) -> io::Result<Stream> {
    net.connect(at)
        .await
        .map_err(|error| io::Error::new(error.kind(), format!("connect {at}: {error}")))
}

/// Goodput of `streams` connections, measured after the warm-up: by the receiver (for
/// `Recv`), or from the first byte written after the warm-up to the server's close after
/// the last one (for `Send`), so data still queued at the end is counted only once
/// delivered.
async fn bulk(
    net: &Net,
    at: SocketAddrV4,
    direction: Direction,
    streams: usize,
    timing: Timing,
) -> io::Result<Vec<Metric>> {
    let connected = connect_all(net, at, streams).await?;
    let start = Instant::now();
    let mark = start + timing.warmup;
    let end = mark + timing.duration;
    let counted = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for mut stream in connected {
        let counted = Arc::clone(&counted);
        tasks.spawn(async move {
            let mut held = Held::default();
            match direction {
                Direction::Send => {
                    let chunk = Bytes::from(vec![0x5au8; CHUNK]);
                    loop {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        let n = stream.write_chunk(&chunk).await?;
                        if now >= mark {
                            counted.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                    stream.shutdown().await?;
                    // The server closes once it has read everything.
                    while stream.read_into(&mut held).await? > 0 {
                        held.clear();
                    }
                }
                Direction::Recv => {
                    loop {
                        let n = stream.read_into(&mut held).await?;
                        held.clear();
                        if n == 0 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the server closed during the transfer",
                            ));
                        }
                        let now = Instant::now();
                        if now >= mark {
                            counted.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        if now >= end {
                            break;
                        }
                    }
                    // Ask the server to stop, and take what it sent meanwhile uncounted.
                    stream.shutdown().await?;
                    while stream.read_into(&mut held).await? > 0 {
                        held.clear();
                    }
                }
            }
            Ok::<Instant, io::Error>(Instant::now())
        });
    }
    tokio::time::sleep_until(mark.into()).await;
    let cpu_before = measure::machine_busy();
    let mut finish = end;
    while let Some(joined) = tasks.join_next().await {
        let done = joined.map_err(io::Error::other)??;
        if direction == Direction::Send {
            finish = finish.max(done);
        }
    }
    let cpu = measure::machine_busy().saturating_sub(cpu_before);
    let bytes = counted.load(Ordering::Relaxed);
    Ok(goodput_metrics(bytes, finish - mark, cpu))
}

/// Goodput of `bytes` moved in `elapsed`, and the machine's CPU time `cpu` per GB of them.
fn goodput_metrics(bytes: u64, elapsed: Duration, cpu: Duration) -> Vec<Metric> {
    let bytes = bytes as f64;
    let mut metrics = vec![Metric::higher(
        "goodput",
        "Gbit/s",
        bytes * 8.0 / elapsed.as_secs_f64() / 1e9,
    )];
    if bytes > 0.0 {
        metrics.push(Metric::lower(
            "CPU per GB",
            "s/GB",
            cpu.as_secs_f64() / (bytes / 1e9),
        ));
    }
    metrics
}

/// Echo goodput of `connections` streams: the bytes that came back within the measured
/// window. Each connection writes continuously and reads the echo at the same time, so
/// both stacks receive and send at full rate at once.
///
/// Each connection writes a stream of the soak's pattern of its own ([`soak::pattern_at`],
/// without a copy) and checks every byte of the echo against it, and that the echo ends
/// where the stream did: a byte lost, duplicated, reordered or corrupted by the stack under
/// test (or by the proxy, and both of the proxy's connections) fails the run with an
/// `InvalidData` error naming the stream and the offset.
async fn echo(
    net: &Net,
    at: SocketAddrV4,
    connections: usize,
    timing: Timing,
) -> io::Result<Vec<Metric>> {
    let connected = connect_all(net, at, connections).await?;
    let start = Instant::now();
    let mark = start + timing.warmup;
    let end = mark + timing.duration;
    let counted = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for (id, mut stream) in connected.into_iter().enumerate() {
        let counted = Arc::clone(&counted);
        let id = id as u64;
        tasks.spawn(async move {
            let (mut reader, mut writer) = stream.split();
            let write = async {
                let mut written = 0u64;
                while Instant::now() < end {
                    let chunk = soak::pattern_at(id, written);
                    written += writer.write_chunk(&chunk).await? as u64;
                }
                writer.shutdown().await?;
                Ok::<u64, io::Error>(written)
            };
            let read = async {
                let mut held = Held::default();
                let mut echoed = 0u64;
                loop {
                    let n = reader.read_into(&mut held).await?;
                    for piece in held.pieces() {
                        if let Some(at) = soak::first_mismatch(piece, id, echoed) {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("echo of stream {id}: byte {at} differs from the one sent"),
                            ));
                        }
                        echoed += piece.len() as u64;
                    }
                    held.clear();
                    if n == 0 {
                        return Ok::<u64, io::Error>(echoed);
                    }
                    let now = Instant::now();
                    if now >= mark && now < end {
                        counted.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            };
            let (written, echoed) = tokio::try_join!(write, read)?;
            if echoed != written {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("echo of stream {id} ended after {echoed} of the {written} bytes sent"),
                ));
            }
            Ok(())
        });
    }
    tokio::time::sleep_until(mark.into()).await;
    let cpu_before = measure::machine_busy();
    tokio::time::sleep_until(end.into()).await;
    let cpu = measure::machine_busy().saturating_sub(cpu_before);
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(io::Error::other)??;
    }
    // CPU per GB echoed: each of those bytes crossed the link twice.
    let bytes = counted.load(Ordering::Relaxed);
    Ok(goodput_metrics(bytes, timing.duration, cpu))
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s with three significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    histogram.saturating_record(latency.as_nanos().max(1) as u64);
}

fn micros(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1e3
}

/// Transactions per second over one connection, and their latency.
async fn rr(net: &Net, at: SocketAddrV4, size: usize, timing: Timing) -> io::Result<Vec<Metric>> {
    let mut stream = connect(net, at).await?;
    stream.set_nodelay(true)?;
    let mut buf = vec![0x5au8; size];
    let mut latencies = histogram();
    let start = Instant::now();
    let mark = start + timing.warmup;
    let end = mark + timing.duration;
    let mut last = mark;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        stream.write_all(&buf).await?;
        stream.read_exact(&mut buf).await?;
        last = Instant::now();
        if sent >= mark {
            record(&mut latencies, last - sent);
        }
    }
    stream.shutdown().await?;
    let seconds = (last - mark).as_secs_f64();
    Ok(vec![
        Metric::higher("transactions", "/s", latencies.len() as f64 / seconds),
        Metric::lower("p50", "µs", micros(&latencies, 0.5)),
        Metric::lower("p90", "µs", micros(&latencies, 0.9)),
        Metric::lower("p99", "µs", micros(&latencies, 0.99)),
        Metric::lower("p99.9", "µs", micros(&latencies, 0.999)),
    ])
}

/// Connections per second, each a connect, a one-byte request and answer, and a close,
/// from `concurrency` tasks at once.
async fn crr(
    net: &Net,
    at: SocketAddrV4,
    concurrency: usize,
    timing: Timing,
) -> io::Result<Vec<Metric>> {
    let start = Instant::now();
    let mark = start + timing.warmup;
    let end = mark + timing.duration;
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let net = net.clone_handle();
        tasks.spawn(async move {
            let mut latencies = histogram();
            let mut last = mark;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let mut stream = connect(&net, at).await?;
                stream.set_nodelay(true)?;
                stream.write_all(&[1]).await?;
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await?;
                // The server closes first.
                if stream.read(&mut byte).await? != 0 {
                    return Err(io::Error::other("the server sent more than one byte"));
                }
                drop(stream);
                last = Instant::now();
                if began >= mark {
                    record(&mut latencies, last - began);
                }
            }
            Ok::<_, io::Error>((latencies, last))
        });
    }
    let mut latencies = histogram();
    let mut last = mark;
    while let Some(joined) = tasks.join_next().await {
        let (part, done) = joined.map_err(io::Error::other)??;
        latencies.add(&part).map_err(io::Error::other)?;
        last = last.max(done);
    }
    let seconds = (last - mark).as_secs_f64();
    Ok(vec![
        Metric::higher("connections", "/s", latencies.len() as f64 / seconds),
        Metric::lower("p50", "µs", micros(&latencies, 0.5)),
        Metric::lower("p99", "µs", micros(&latencies, 0.99)),
    ])
}

/// Starts a connection to the `nth` of `conns`' holding listeners (the ports after `at`'s).
fn spawn_connect(
    opening: &mut JoinSet<io::Result<Stream>>,
    net: &Net,
    at: SocketAddrV4,
    nth: usize,
) {
    let port = at.port() + 1 + nth as u16;
    let net = net.clone_handle();
    opening.spawn(async move { connect(&net, SocketAddrV4::new(*at.ip(), port)).await });
}

/// Opens `count` idle connections, then measures what they cost: memory (rawtcp only: the
/// bytes this thread's allocator holds for them), CPU while idle, and a bulk stream's
/// goodput beside them.
async fn conns(
    net: &Net,
    at: SocketAddrV4,
    count: usize,
    timing: Timing,
    ends: usize,
) -> io::Result<Vec<Metric>> {
    // A stack's fixed costs come with its first traffic, not with a connection: the
    // driver's frame batches (64 receive slots of 64 KiB: 4 MiB) on its first turn, the
    // receive heads and their pool, the send blocks' first tail, the tables' first
    // buckets. Divided among the connections they made 100 look like 2.4 KiB each and 8000
    // like 1.5 KiB (524 B of it the batches). So one connection moves a few MiB to the
    // sink first, and a burst of handshakes as wide as the measured ones leaves the room
    // their queues keep; all of them stay open, outside the count, while it is measured.
    let mut warm = connect(net, at).await?;
    let mut warm_burst = JoinSet::new();
    for _ in 0..CONNS_IN_FLIGHT {
        spawn_connect(&mut warm_burst, net, at, 0);
    }
    let warm_burst = warm_burst.join_all().await;
    let chunk = vec![0x5a_u8; CHUNK];
    for _ in 0..WARM_UP_CHUNKS {
        warm.write_all(&chunk).await?;
    }
    warm.flush().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = measure::thread_allocated();
    let mut held: Vec<Stream> = Vec::with_capacity(count);
    let mut opening = JoinSet::new();
    for i in 0..count {
        if opening.len() >= CONNS_IN_FLIGHT
            && let Some(joined) = opening.join_next().await
        {
            held.push(joined.map_err(io::Error::other)??);
        }
        spawn_connect(&mut opening, net, at, i / CONNS_PER_PORT);
    }
    while let Some(joined) = opening.join_next().await {
        held.push(joined.map_err(io::Error::other)??);
    }
    // Let the handshakes' timers run out before idling is measured: the SYN's
    // retransmission deadline (1 s) is filed in the timing wheel and fires once, finding
    // nothing to do, even after the SYN-ACK cancelled it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = measure::thread_allocated();
    let mut metrics = vec![Metric::higher("held", "conns", held.len() as f64)];
    if ends > 0 {
        // The handles the harness keeps are the application's, not the stack's: the
        // client's list was made for `count` above; the server's room was made before.
        let handles = std::mem::size_of::<Stream>() * count;
        let bytes = (after - before) as f64 - handles as f64;
        metrics.push(Metric::lower(
            "memory per conn",
            "B",
            bytes / (count * ends) as f64,
        ));
    }
    let driver_before = net.driver_stats();
    let (cpu_before, wall) = (measure::process_cpu(), Instant::now());
    tokio::time::sleep(timing.duration).await;
    let idle = measure::process_cpu()
        .saturating_sub(cpu_before)
        .as_secs_f64()
        / wall.elapsed().as_secs_f64();
    metrics.push(Metric::lower("idle CPU", "%", idle * 100.0));
    // What woke this side's rawtcp driver meanwhile (the measuring sleep's own end wakes
    // this task, not the driver): an idle stack has no reason to wake at all.
    if let (Some(before), Some(after)) = (driver_before, net.driver_stats()) {
        metrics.push(Metric::lower(
            "driver wakeups while idle",
            "events",
            (after.wakeups() - before.wakeups()) as f64,
        ));
        for (name, count) in [
            (
                "  for the device",
                after.wakeups_device - before.wakeups_device,
            ),
            ("  for a timer", after.wakeups_timer - before.wakeups_timer),
            (
                "  for the application",
                after.wakeups_notify - before.wakeups_notify,
            ),
        ] {
            metrics.push(Metric::lower(name, "events", count as f64));
        }
    }
    let bulk = bulk(net, at, Direction::Send, 1, timing).await?;
    metrics.extend(
        bulk.into_iter()
            .map(|m| m.renamed("goodput beside them"))
            .take(1),
    );
    if held.len() != count {
        return Err(io::Error::other("not every connection was held"));
    }
    drop(held);
    drop((warm, warm_burst));
    Ok(metrics)
}
