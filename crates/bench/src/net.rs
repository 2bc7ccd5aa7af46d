//! One interface over the two TCP implementations a side can run: the kernel's sockets
//! (through tokio) and rawtcp. Scenarios are written once against it.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rawtcp::core::{Config, Ipv4Cidr};
use rawtcp::netio::{AfPacket, AfPacketConfig, IoMethod, MemLinkEnd, RxRingConfig};

use crate::run::Backend;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A side's TCP: the kernel of the namespace the calling thread is in, or a rawtcp stack.
pub(crate) enum Net {
    Kernel,
    Rawtcp(rawtcp::Stack),
}

/// The accept queue length asked of both implementations (the kernel caps it at somaxconn,
/// 4096 by default).
const BACKLOG: u32 = 4096;

/// Socket buffers of the AF_PACKET device by default: room for a burst of a whole window of
/// frames.
pub(crate) const PACKET_BUFFER: usize = 8 << 20;

/// How rawtcp sides receive when not by their device's default (a TPACKET_V2 ring):
/// recvmmsg (`--recvmmsg`) or a TPACKET_V3 ring (`--rx-ring`); set once, before any run.
static RX: std::sync::OnceLock<IoMethod> = std::sync::OnceLock::new();

/// Makes every rawtcp side opened from now on receive by `io`.
pub(crate) fn use_rx(io: IoMethod) {
    let _ = RX.set(io);
}

fn rx_method() -> IoMethod {
    RX.get().copied().unwrap_or_default()
}

/// How a rawtcp side's streaming applications (bulk, echo, proxy) move their data
/// (`--rawtcp-io`). A kernel side always reads into and writes from a buffer of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RawtcpIo {
    /// rawtcp's zero-copy calls: received data is taken as the `Bytes` it arrived in
    /// (`read_bytes_into`), and written data is handed over as `Bytes`, kept in the send
    /// buffer (`write_bytes_vectored`, `poll_write_bytes`). A relayed byte is copied once,
    /// into the frame that carries it on.
    Bytes,
    /// `AsyncRead` and `AsyncWrite`, as a kernel socket is used: each read copies out of
    /// the receive buffer, each write into the send buffer.
    Copy,
}

/// Whether rawtcp sides use [`RawtcpIo::Copy`]; set once, before any run.
static COPY_IO: AtomicBool = AtomicBool::new(false);

/// Makes every rawtcp stream's reads and writes in [`ReadHalf::read_into`],
/// [`WriteHalf::write_from`] and [`WriteHalf::write_chunk`] go through `io`.
pub(crate) fn use_rawtcp_io(io: RawtcpIo) {
    COPY_IO.store(io == RawtcpIo::Copy, Ordering::Relaxed);
}

fn bytes_io() -> bool {
    !COPY_IO.load(Ordering::Relaxed)
}

/// Bytes a streaming application asks for in one read: what the kernel's side reads into
/// its buffer, and what a rawtcp side takes as pieces.
pub(crate) const CHUNK: usize = 64 * 1024;

impl Net {
    /// A rawtcp stack on AF_PACKET interface `iface` of the calling thread's namespace,
    /// owning `addr`/24, with `packet_buffer` bytes of socket buffer each way. Call inside
    /// the runtime that is to drive it.
    ///
    /// Without address conflict detection: the harness made the namespaces and the veth
    /// itself, so nobody else can hold the address, and a 4–7 s RFC 5227 probe per stack
    /// would only slow every repetition down.
    ///
    /// With a MAC of the stack's own ([`own_mac`]), so that the namespace's kernel drops the
    /// stack's frames at its first check instead of routing each one and dropping it then
    /// (see [`AfPacketConfig::mac`]): a deployment would do the same where its network
    /// accepts a second address on the interface.
    pub(crate) async fn rawtcp_on(
        iface: &str,
        addr: Ipv4Addr,
        seed: u64,
        packet_buffer: usize,
    ) -> io::Result<Net> {
        let ring = RxRingConfig::default();
        let device = AfPacket::open_with(
            iface,
            AfPacketConfig {
                recv_buffer: Some(packet_buffer),
                send_buffer: Some(packet_buffer),
                // Checksum offload and super-segments the kernel cuts (TSO/GSO), as a
                // kernel socket has them; the interface's own offload settings still apply.
                vnet_hdr: true,
                io: rx_method(),
                rx_ring: RxRingConfig {
                    block_count: packet_buffer.div_ceil(ring.block_size).max(2),
                    ..ring
                },
                // As many frames as a socket buffer of that size holds.
                ring_frames: packet_buffer.div_ceil(1024).max(64),
                mac: Some(own_mac(addr)),
                ..AfPacketConfig::default()
            },
        )
        .map_err(|error| io::Error::new(error.kind(), format!("AF_PACKET on {iface}: {error}")))?;
        let mac = device.mac();
        Ok(Net::Rawtcp(
            rawtcp::Stack::builder()
                .device(device)
                .ipv4(addr, 24)
                .config(config(mac, addr, seed))
                .conflict_detection(false)
                .spawn()
                .await?,
        ))
    }

    /// A side's TCP: the kernel's of the calling thread's namespace, or a rawtcp stack as
    /// [`Net::rawtcp_on`] makes one.
    pub(crate) async fn of(
        backend: Backend,
        iface: &str,
        addr: Ipv4Addr,
        seed: u64,
        packet_buffer: usize,
    ) -> io::Result<Net> {
        match backend {
            Backend::Kernel => Ok(Net::Kernel),
            Backend::Rawtcp => Net::rawtcp_on(iface, addr, seed, packet_buffer).await,
        }
    }

    /// A rawtcp stack on one end of an in-memory link, owning `addr`/24.
    pub(crate) async fn rawtcp_mem(end: MemLinkEnd, addr: Ipv4Addr, seed: u64) -> io::Result<Net> {
        let mac = own_mac(addr);
        Ok(Net::Rawtcp(
            rawtcp::Stack::builder()
                .device(end)
                .ipv4(addr, 24)
                .mac(mac)
                .config(config(mac, addr, seed))
                .spawn()
                .await?,
        ))
    }

    /// Another handle to the same TCP, for a task of its own.
    pub(crate) fn clone_handle(&self) -> Net {
        match self {
            Net::Kernel => Net::Kernel,
            Net::Rawtcp(stack) => Net::Rawtcp(stack.clone()),
        }
    }

    pub(crate) async fn connect(&self, addr: SocketAddrV4) -> io::Result<Stream> {
        match self {
            Net::Kernel => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                crate::kernel_cc::apply(&socket)?;
                Ok(Stream::Kernel(socket.connect(addr.into()).await?))
            }
            Net::Rawtcp(stack) => Ok(Stream::Rawtcp(
                rawtcp::TcpStream::connect(stack, addr).await?,
            )),
        }
    }

    pub(crate) async fn bind(&self, addr: SocketAddrV4) -> io::Result<Listener> {
        match self {
            Net::Kernel => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                // A previous run's TIME-WAIT connections on this port must not stop the bind.
                socket.set_reuseaddr(true)?;
                crate::kernel_cc::apply(&socket)?;
                socket.bind(addr.into())?;
                Ok(Listener::Kernel(socket.listen(BACKLOG)?))
            }
            Net::Rawtcp(stack) => Ok(Listener::Rawtcp(
                rawtcp::TcpListener::bind_with_backlog(stack, addr, BACKLOG).await?,
            )),
        }
    }

    /// What a rawtcp stack's driver has counted so far; `None` for the kernel.
    pub(crate) fn driver_stats(&self) -> Option<rawtcp::DriverStats> {
        match self {
            Net::Rawtcp(stack) => Some(stack.driver_stats()),
            _ => None,
        }
    }

    /// Closes what is left and stops a rawtcp stack's driver. A peer that is gone already
    /// would hold a closing connection for minutes of retransmissions: give up after a
    /// second (dropping the runtime then drops the driver).
    ///
    /// Returns what a rawtcp driver counted of its device (read as it stopped).
    pub(crate) async fn shutdown(self) -> Option<rawtcp::DriverStats> {
        let Net::Rawtcp(stack) = self else {
            return None;
        };
        let handle = stack.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), stack.shutdown()).await;
        Some(handle.driver_stats())
    }
}

/// The stack configuration the harness uses: the defaults, with `seed` for ports and ISNs.
/// The locally administered MAC a rawtcp side owning `addr` uses.
fn own_mac(addr: Ipv4Addr) -> rawtcp::wire::ethernet::EthernetAddress {
    rawtcp::wire::ethernet::EthernetAddress([0x02, 0x72, 0, 0, 0, addr.octets()[3]])
}

fn config(mac: rawtcp::wire::ethernet::EthernetAddress, addr: Ipv4Addr, seed: u64) -> Config {
    let mut config = Config::new(mac, Ipv4Cidr::new(addr, 24));
    config.seed = seed ^ u64::from(u32::from(addr));
    config
}

pub(crate) enum Listener {
    Kernel(tokio::net::TcpListener),
    Rawtcp(rawtcp::TcpListener),
}

impl Listener {
    pub(crate) async fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Kernel(l) => Ok(Stream::Kernel(l.accept().await?.0)),
            Listener::Rawtcp(l) => Ok(Stream::Rawtcp(l.accept().await?.0)),
        }
    }
}

pub(crate) enum Stream {
    Kernel(tokio::net::TcpStream),
    Rawtcp(rawtcp::TcpStream),
}

/// Segments the kernel's side of the run's connections retransmitted (TCP_INFO
/// `tcpi_total_retrans`, added as each kernel stream is dropped): what the peer had to
/// resend for rawtcp's losses, or the kernel's own on kernel↔kernel.
static KERNEL_RETRANSMITS: AtomicU64 = AtomicU64::new(0);

/// Starts counting [`KERNEL_RETRANSMITS`] anew, for a run.
pub(crate) fn reset_kernel_retransmits() {
    KERNEL_RETRANSMITS.store(0, Ordering::Relaxed);
    BYTES_RETRANSMITTED.store(0, Ordering::Relaxed);
    BYTES_ACKED.store(0, Ordering::Relaxed);
}

/// The kernel streams' retransmitted segments since the reset; read once both sides of the
/// run have dropped their streams.
pub(crate) fn kernel_retransmits() -> u64 {
    KERNEL_RETRANSMITS.load(Ordering::Relaxed)
}

/// Bytes the run's streams (both implementations, both sides) retransmitted, and bytes their
/// peers acknowledged, added as each stream is dropped: kernel streams from TCP_INFO
/// (`tcpi_bytes_retrans`, `tcpi_bytes_acked`), rawtcp's from `TcpStream::info()`. A
/// receiver adds next to nothing to either, so the quotient is the senders'.
static BYTES_RETRANSMITTED: AtomicU64 = AtomicU64::new(0);
static BYTES_ACKED: AtomicU64 = AtomicU64::new(0);

/// Retransmitted bytes per acknowledged byte, in percent, of the run's streams since the
/// reset; nothing when no byte was acknowledged.
pub(crate) fn retransmitted_share() -> Option<crate::measure::Metric> {
    let acked = BYTES_ACKED.load(Ordering::Relaxed);
    let retransmitted = BYTES_RETRANSMITTED.load(Ordering::Relaxed);
    (acked > 0).then(|| {
        crate::measure::Metric::lower(
            "retransmitted",
            "% of acked",
            retransmitted as f64 * 100.0 / acked as f64,
        )
    })
}

fn count_retransmitted(retransmitted: u64, acked: u64) {
    BYTES_RETRANSMITTED.fetch_add(retransmitted, Ordering::Relaxed);
    BYTES_ACKED.fetch_add(acked, Ordering::Relaxed);
}

/// TCP_INFO of `stream`.
fn tcp_info(stream: &tokio::net::TcpStream) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a live tcp_info and `len` its size; the kernel writes at most `len`
    // bytes. The descriptor is the stream's, open for the duration of the call.
    let ret = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

impl Drop for Stream {
    fn drop(&mut self) {
        match self {
            Stream::Kernel(stream) => {
                if let Ok(info) = tcp_info(stream) {
                    KERNEL_RETRANSMITS
                        .fetch_add(u64::from(info.tcpi_total_retrans), Ordering::Relaxed);
                    count_retransmitted(info.tcpi_bytes_retrans, info.tcpi_bytes_acked);
                }
            }
            Stream::Rawtcp(stream) => {
                if let Ok(info) = stream.info() {
                    count_retransmitted(info.stats.bytes_retransmitted, info.stats.bytes_acked);
                }
            }
        }
    }
}

impl Stream {
    /// Borrowed halves, to read and write at once in one task: the kernel's and rawtcp's
    /// own split, which share the stream without a lock.
    pub(crate) fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        match self {
            Stream::Kernel(s) => {
                let (read, write) = s.split();
                (ReadHalf::Kernel(read), WriteHalf::Kernel(write))
            }
            Stream::Rawtcp(s) => {
                let (read, write) = s.split();
                (ReadHalf::Rawtcp(read), WriteHalf::Rawtcp(write))
            }
        }
    }

    /// [`ReadHalf::read_into`] on the whole stream.
    pub(crate) async fn read_into(&mut self, held: &mut Held) -> io::Result<usize> {
        self.split().0.read_into(held).await
    }

    /// [`WriteHalf::write_chunk`] on the whole stream.
    pub(crate) async fn write_chunk(&mut self, chunk: &bytes::Bytes) -> io::Result<usize> {
        self.split().1.write_chunk(chunk).await
    }

    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Kernel(s) => s.set_nodelay(nodelay),
            Stream::Rawtcp(s) => s.set_nodelay(nodelay),
        }
    }
}

/// What a reader took and its writer has yet to send on: bytes read into a buffer of our
/// own (a kernel stream's, or rawtcp's under [`RawtcpIo::Copy`]), or the pieces rawtcp
/// received them in.
#[derive(Debug, Default)]
pub(crate) struct Held {
    buf: Vec<u8>,
    filled: usize,
    pieces: std::collections::VecDeque<bytes::Bytes>,
}

impl Held {
    /// Forgets what it holds (a sink's read).
    pub(crate) fn clear(&mut self) {
        self.filled = 0;
        self.pieces.clear();
    }

    /// What it holds, in stream order: the buffer's bytes read, or the pieces taken.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let read = Some(&self.buf[..self.filled]).filter(|read| !read.is_empty());
        read.into_iter()
            .chain(self.pieces.iter().map(|piece| &piece[..]))
    }
}

/// A stream's reading half ([`Stream::split`]).
pub(crate) enum ReadHalf<'a> {
    Kernel(tokio::net::tcp::ReadHalf<'a>),
    Rawtcp(rawtcp::ReadHalf<'a>),
}

/// A stream's writing half ([`Stream::split`]).
pub(crate) enum WriteHalf<'a> {
    Kernel(tokio::net::tcp::WriteHalf<'a>),
    Rawtcp(rawtcp::WriteHalf<'a>),
}

impl ReadHalf<'_> {
    /// Waits for data and takes up to [`CHUNK`] bytes of it into `held`, which holds
    /// nothing yet: a rawtcp stream under [`RawtcpIo::Bytes`] hands over its pieces
    /// without a copy, anything else reads into `held`'s buffer. Returns how many bytes, 0
    /// at the end of the stream.
    pub(crate) async fn read_into(&mut self, held: &mut Held) -> io::Result<usize> {
        debug_assert!(
            held.filled == 0 && held.pieces.is_empty(),
            "held is written out"
        );
        match self {
            ReadHalf::Rawtcp(r) if bytes_io() => r.read_bytes_into(CHUNK, &mut held.pieces).await,
            _ => {
                if held.buf.is_empty() {
                    held.buf = vec![0; CHUNK];
                }
                held.filled = tokio::io::AsyncReadExt::read(self, &mut held.buf).await?;
                Ok(held.filled)
            }
        }
    }
}

impl WriteHalf<'_> {
    /// Writes all that `held` holds and empties it: pieces go to a rawtcp stream as they
    /// are (kept in its send buffer), everything else is written as a slice (copied).
    pub(crate) async fn write_from(&mut self, held: &mut Held) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        if held.filled > 0 {
            self.write_all(&held.buf[..held.filled]).await?;
            held.filled = 0;
        }
        match self {
            WriteHalf::Rawtcp(w) => w.write_bytes_vectored(&mut held.pieces).await,
            WriteHalf::Kernel(w) => {
                while let Some(piece) = held.pieces.pop_front() {
                    w.write_all(&piece).await?;
                }
                Ok(())
            }
        }
    }

    /// Writes what fits of `chunk`, as `write` does; a rawtcp stream under
    /// [`RawtcpIo::Bytes`] takes it as `Bytes`, without copying it.
    pub(crate) async fn write_chunk(&mut self, chunk: &bytes::Bytes) -> io::Result<usize> {
        match self {
            WriteHalf::Rawtcp(w) if bytes_io() => {
                let mut rest = chunk.clone();
                std::future::poll_fn(|cx| w.poll_write_bytes(cx, &mut rest)).await
            }
            _ => tokio::io::AsyncWriteExt::write(self, chunk).await,
        }
    }
}

/// Moves everything `from` reads to `to`, until `from` ends; then shuts `to`'s sending side
/// (a FIN). The one relay of the harness: the echo server's (both halves of one stream) and
/// each direction of the proxy's.
pub(crate) async fn pump(from: &mut ReadHalf<'_>, to: &mut WriteHalf<'_>) -> io::Result<()> {
    let mut held = Held::default();
    while from.read_into(&mut held).await? > 0 {
        to.write_from(&mut held).await?;
    }
    tokio::io::AsyncWriteExt::shutdown(to).await
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Kernel(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Rawtcp(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Kernel(w) => Pin::new(w).poll_write(cx, data),
            WriteHalf::Rawtcp(w) => Pin::new(w).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Kernel(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Rawtcp(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Kernel(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Rawtcp(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Kernel(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Rawtcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Kernel(s) => Pin::new(s).poll_write(cx, data),
            Stream::Rawtcp(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Kernel(s) => Pin::new(s).poll_flush(cx),
            Stream::Rawtcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Kernel(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Rawtcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
