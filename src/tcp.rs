//! `TcpListener` and `TcpStream`, with tokio::net's names and semantics.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddrV4;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use rawtcp_core::{
    ConnectionId, Instant, ListenOptions, ListenerId, Stack as Engine, State, TcpError,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{conn_error, tcp_error};
use crate::stack::{Stack, Wait};

/// How [`TcpListener::bind_with`] listens.
///
/// # Examples
/// ```
/// let options = rawtcp::BindOptions { reuse_port: true, backlog: Some(1024) };
/// assert!(!rawtcp::BindOptions::default().reuse_port);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// SO_REUSEPORT: share the port with other listeners that set it too.
    pub reuse_port: bool,
    /// The accept queue's length (0 is taken as 1); `None` takes the configured backlog.
    pub backlog: Option<u32>,
}

/// A listening socket.
///
/// # Examples
/// ```no_run
/// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
/// use std::net::{Ipv4Addr, SocketAddrV4};
/// let listener = rawtcp::TcpListener::bind(&stack, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080)).await?;
/// let (stream, peer) = listener.accept().await?;
/// # let _ = (stream, peer); Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpListener {
    stack: Stack,
    id: ListenerId,
}

impl TcpListener {
    /// Listens on `addr` (address 0.0.0.0 for any of ours; port 0 picks a free one), with the
    /// configured backlog ([`Config::backlog`](rawtcp_core::Config), 128 by default).
    ///
    /// Fails with `AddrInUse` when something listens there already, `AddrNotAvailable` for an
    /// address that is not ours, `NotConnected` once the stack is shut down.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    /// let listener = rawtcp::TcpListener::bind(&stack, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).await?;
    /// println!("listening on {}", listener.local_addr()?);
    /// # Ok(()) }
    /// ```
    pub async fn bind(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpListener> {
        TcpListener::listen(stack, addr, None)
    }

    /// Like [`bind`](TcpListener::bind), with at most `backlog` established connections
    /// waiting to be accepted (as `listen(2)`'s backlog; 0 is taken as 1). When the queue is
    /// full, a handshake's final ACK is dropped and the client retransmits it, as on Linux.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    /// let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080);
    /// let listener = rawtcp::TcpListener::bind_with_backlog(&stack, addr, 1024).await?;
    /// # let _ = listener; Ok(()) }
    /// ```
    pub async fn bind_with_backlog(
        stack: &Stack,
        addr: SocketAddrV4,
        backlog: u32,
    ) -> io::Result<TcpListener> {
        TcpListener::listen(stack, addr, Some(backlog.max(1) as usize))
    }

    /// Like [`bind`](TcpListener::bind), with [`BindOptions`]: a backlog, and
    /// `reuse_port` (SO_REUSEPORT) to share the port with other listeners that set it too.
    /// New connections are then spread across them by a keyed hash of their 4-tuple, and
    /// dropping one listener resets only the connections queued on it.
    ///
    /// Fails with `AddrInUse` when a listener on the port did not ask to share it (or this
    /// one does not).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// use rawtcp::{BindOptions, TcpListener};
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    /// let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080);
    /// let options = BindOptions { reuse_port: true, ..BindOptions::default() };
    /// let first = TcpListener::bind_with(&stack, addr, options).await?;
    /// let second = TcpListener::bind_with(&stack, addr, options).await?;
    /// # let _ = (first, second); Ok(()) }
    /// ```
    pub async fn bind_with(
        stack: &Stack,
        addr: SocketAddrV4,
        options: BindOptions,
    ) -> io::Result<TcpListener> {
        TcpListener::listen_with(
            stack,
            addr,
            ListenOptions {
                backlog: options.backlog.map(|b| b.max(1) as usize),
                reuse_port: options.reuse_port,
            },
        )
    }

    fn listen(
        stack: &Stack,
        addr: SocketAddrV4,
        backlog: Option<usize>,
    ) -> io::Result<TcpListener> {
        TcpListener::listen_with(
            stack,
            addr,
            ListenOptions {
                backlog,
                reuse_port: false,
            },
        )
    }

    fn listen_with(
        stack: &Stack,
        addr: SocketAddrV4,
        options: ListenOptions,
    ) -> io::Result<TcpListener> {
        let mut inner = stack.shared.lock();
        inner.check_open()?;
        let id = inner
            .engine
            .tcp_listen_with(addr, options)
            .map_err(tcp_error)?;
        Ok(TcpListener {
            stack: stack.clone(),
            id,
        })
    }

    /// The next connection and its peer's address.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(listener: rawtcp::TcpListener) -> std::io::Result<()> {
    /// loop {
    ///     let (stream, peer) = listener.accept().await?;
    ///     println!("{peer} connected");
    ///     tokio::spawn(async move { drop(stream) });
    /// }
    /// # }
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddrV4)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(listener: rawtcp::TcpListener) -> std::io::Result<()> {
    /// let (stream, peer) = std::future::poll_fn(|cx| listener.poll_accept(cx)).await?;
    /// # let _ = (stream, peer);
    /// # Ok(()) }
    /// ```
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddrV4)>> {
        let mut inner = self.stack.shared.lock();
        match inner.engine.tcp_accept(self.id).map_err(tcp_error)? {
            Some(id) => {
                let peer = inner
                    .engine
                    .tcp_info(id)
                    .map(|i| i.remote)
                    .ok_or_else(|| tcp_error(TcpError::InvalidHandle))?;
                inner.conns.entry(id);
                Poll::Ready(Ok((TcpStream::new(self.stack.clone(), id), peer)))
            }
            None => {
                inner
                    .listeners
                    .entry(self.id)
                    .or_default()
                    .register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// The address this listener is bound to.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(listener: rawtcp::TcpListener) -> std::io::Result<()> {
    /// let addr = listener.local_addr()?;
    /// assert_ne!(addr.port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.stack
            .shared
            .lock()
            .engine
            .tcp_listener_addr(self.id)
            .ok_or_else(|| tcp_error(TcpError::InvalidHandle))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let shared = &self.stack.shared;
        let now = shared.now();
        let mut inner = shared.lock();
        let _ = inner.engine.tcp_unlisten(now, self.id);
        inner.listeners.remove(&self.id);
        drop(inner);
        shared.notify.notify_one();
    }
}

/// A TCP connection.
#[derive(Debug)]
pub struct TcpStream {
    stack: Stack,
    id: ConnectionId,
}

impl TcpStream {
    fn new(stack: Stack, id: ConnectionId) -> TcpStream {
        TcpStream { stack, id }
    }

    /// Sets keepalive (off by default, RFC 9293 MUST-24): probes after `idle`, every
    /// `interval`, `probes` of them unanswered close the connection with `TimedOut`.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let keepalive = rawtcp::core::Keepalive { idle: Duration::from_secs(60), interval: Duration::from_secs(10), probes: 5 };
    /// stream.set_keepalive(Some(keepalive))?;
    /// # Ok(()) }
    /// ```
    pub fn set_keepalive(&self, keepalive: Option<rawtcp_core::Keepalive>) -> io::Result<()> {
        self.call(|engine, now, id| engine.tcp_set_keepalive(now, id, keepalive))
    }

    /// SO_LINGER: `Some(Duration::ZERO)` makes dropping the stream reset the connection
    /// (RST, no FIN). A longer linger closes normally: an async drop cannot wait.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// // Dropping the stream now sends a RST instead of a FIN.
    /// stream.set_linger(Some(std::time::Duration::ZERO))?;
    /// drop(stream);
    /// # Ok(()) }
    /// ```
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        let mut inner = self.stack.shared.lock();
        if inner.stopped {
            return Err(tcp_error(TcpError::InvalidHandle));
        }
        inner.conns.entry(self.id).set_linger(linger);
        Ok(())
    }

    /// The linger setting, as [`set_linger`](Self::set_linger) left it: `Some(ZERO)` when a
    /// drop resets the connection.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// assert_eq!(stream.linger()?, None);
    /// # Ok(()) }
    /// ```
    pub fn linger(&self) -> io::Result<Option<std::time::Duration>> {
        let inner = self.stack.shared.lock();
        Ok(inner.conns.get(self.id).and_then(|c| c.linger()))
    }

    /// The error that ended the connection, if one did, once: like SO_ERROR, taking it clears
    /// it, and the next call returns `None`. Reads and writes go on failing with it.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// if let Some(error) = stream.take_error()? {
    ///     eprintln!("the connection failed: {error}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let mut inner = self.stack.shared.lock();
        let Some(error) = inner.engine.tcp_error(self.id) else {
            return Ok(None);
        };
        if inner.conns.entry(self.id).take_error_once() {
            return Ok(None);
        }
        Ok(Some(conn_error(error)))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout` (or sooner, when the SYN
    /// retries run out). A connection given up on is closed and its handle released.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    /// let addr = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 80);
    /// let stream = rawtcp::TcpStream::connect_timeout(&stack, addr, std::time::Duration::from_secs(5)).await?;
    /// # let _ = stream;
    /// # Ok(()) }
    /// ```
    pub async fn connect_timeout(
        stack: &Stack,
        addr: SocketAddrV4,
        timeout: std::time::Duration,
    ) -> io::Result<TcpStream> {
        tokio::time::timeout(timeout, TcpStream::connect(stack, addr))
            .await
            .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut)))
    }

    /// Connects to `addr`: `ConnectionRefused` on a reset or ICMP port unreachable,
    /// `TimedOut` after the SYN retries (63 s by default).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    /// use tokio::io::AsyncWriteExt;
    /// let mut stream = rawtcp::TcpStream::connect(&stack, SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 7)).await?;
    /// stream.write_all(b"hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpStream> {
        let shared = &stack.shared;
        let id = {
            let now = shared.now();
            let mut inner = shared.lock();
            inner.check_open()?;
            let id = inner
                .engine
                .tcp_connect(now, addr, None)
                .map_err(tcp_error)?;
            inner.conns.entry(id);
            id
        };
        shared.notify.notify_one();
        let stream = TcpStream::new(stack.clone(), id);
        poll_fn(|cx| {
            let mut inner = shared.lock();
            if let Some(error) = inner.engine.tcp_error(id) {
                return Poll::Ready(Err(conn_error(error)));
            }
            match inner.engine.tcp_state(id) {
                Some(State::SynSent | State::SynReceived) => {
                    inner.conns.entry(id).register(Wait::Write, cx.waker());
                    Poll::Pending
                }
                Some(_) => Poll::Ready(Ok(())),
                None => Poll::Ready(Err(tcp_error(TcpError::InvalidHandle))),
            }
        })
        .await?;
        Ok(stream)
    }

    /// Our address.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// println!("{} -> {}", stream.local_addr()?, stream.peer_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.with_info(|i| i.local)
    }

    /// The peer's address.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// println!("connected to {}", stream.peer_addr()?);
    /// # Ok(()) }
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        self.with_info(|i| i.remote)
    }

    fn with_info<T>(&self, f: impl FnOnce(&rawtcp_core::ConnectionInfo) -> T) -> io::Result<T> {
        self.stack
            .shared
            .lock()
            .engine
            .tcp_info(self.id)
            .as_ref()
            .map(f)
            .ok_or_else(|| tcp_error(TcpError::InvalidHandle))
    }

    /// The connection's state.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// assert_eq!(stream.state(), Some(rawtcp::core::State::Established));
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> Option<State> {
        self.stack.shared.lock().engine.tcp_state(self.id)
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// stream.set_nodelay(true)?; // small writes go out at once
    /// # Ok(()) }
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.call(|engine, now, id| engine.tcp_set_nodelay(now, id, nodelay))
    }

    /// A snapshot of the connection, as Linux's TCP_INFO gives it: state, sequence
    /// variables, RTT and RTO, the congestion window, ssthresh, the congestion algorithm and
    /// state (open, disorder, recovery, loss), bytes in flight, SACKed and lost, and the
    /// counters (retransmissions, fast recoveries, timeouts, ...).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let info = stream.info()?;
    /// println!(
    ///     "{} cwnd {} ssthresh {} {:?}, {} bytes retransmitted",
    ///     info.congestion_algorithm.name(),
    ///     info.cwnd,
    ///     info.ssthresh,
    ///     info.congestion_state,
    ///     info.stats.bytes_retransmitted
    /// );
    /// # Ok(()) }
    /// ```
    pub fn info(&self) -> io::Result<rawtcp_core::ConnectionInfo> {
        self.with_info(|i| i.clone())
    }

    /// Chooses the congestion control algorithm (Linux's TCP_CONGESTION; CUBIC by default,
    /// or as `Config::tcp.congestion_control` says). The new controller starts afresh, from
    /// the initial window or the current one if smaller: set it right after connecting or
    /// accepting.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// stream.set_congestion_control(rawtcp::core::CongestionAlgorithm::NewReno)?;
    /// # Ok(()) }
    /// ```
    pub fn set_congestion_control(
        &self,
        algorithm: rawtcp_core::CongestionAlgorithm,
    ) -> io::Result<()> {
        self.call(|engine, now, id| engine.tcp_set_congestion_control(now, id, algorithm))
    }

    /// Resets the connection at once (SO_LINGER 0). Dropping it afterwards does nothing more.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// stream.abort(); // a RST, now
    /// # Ok(()) }
    /// ```
    pub fn abort(self) {
        let _ = self.call(|engine, now, id| engine.tcp_abort(now, id));
    }
}

impl TcpStream {
    /// Runs one engine call for this connection. On `WouldBlock`, `wait`'s waker is registered
    /// under the same lock, so no event slips between the check and the registration.
    /// Otherwise the driver is woken: the call may have queued a segment (data, a FIN, a
    /// window update after a read) or armed a timer.
    fn engine_call<T>(
        &self,
        wait: Option<(&Waker, Wait)>,
        op: impl FnOnce(&mut Engine, Instant, ConnectionId) -> Result<T, TcpError>,
    ) -> Result<T, TcpError> {
        let shared = &self.stack.shared;
        let now = shared.now();
        let mut inner = shared.lock();
        if inner.stopped {
            return Err(TcpError::InvalidHandle);
        }
        let result = op(&mut inner.engine, now, self.id);
        match (&result, wait) {
            (Err(TcpError::WouldBlock), Some((waker, wait))) => {
                inner.conns.entry(self.id).register(wait, waker);
            }
            (Err(TcpError::WouldBlock), None) => {}
            _ => {
                drop(inner);
                shared.notify.notify_one();
            }
        }
        result
    }

    /// An engine call that does not wait.
    fn call<T>(
        &self,
        op: impl FnOnce(&mut Engine, Instant, ConnectionId) -> Result<T, TcpError>,
    ) -> io::Result<T> {
        self.engine_call(None, op).map_err(tcp_error)
    }

    /// An engine call that is pending, until the engine's next event for `wait`, while it
    /// would block.
    fn poll_call<T>(
        &self,
        cx: &mut Context<'_>,
        wait: Wait,
        op: impl FnOnce(&mut Engine, Instant, ConnectionId) -> Result<T, TcpError>,
    ) -> Poll<io::Result<T>> {
        match self.engine_call(Some((cx.waker(), wait)), op) {
            Err(TcpError::WouldBlock) => Poll::Pending,
            result => Poll::Ready(result.map_err(tcp_error)),
        }
    }

    /// `AsyncRead`: one copy per byte, from the engine's receive buffer (slices of the frames
    /// the payload came in) into `buf`.
    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = ready!(self.poll_call(cx, Wait::Read, |engine, now, id| {
            engine.tcp_recv(now, id, buf.initialize_unfilled())
        }))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    /// Up to `max` received bytes without a copy, waiting for some; empty at the end of the
    /// stream.
    fn poll_read_bytes_priv(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        self.poll_call(cx, Wait::Read, |engine, now, id| {
            engine.tcp_recv_bytes(now, id, max)
        })
    }

    /// Reads up to `max` bytes without copying them, waiting until some have arrived: what
    /// arrived in one segment (a slice of the frame that carried it, when the driver shares
    /// frames), or a run of small segments gathered together; at most one such piece per
    /// call. An empty `Bytes` means the end of the stream (or `max` was 0).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// loop {
    ///     let data = stream.read_bytes(64 * 1024).await?;
    ///     if data.is_empty() {
    ///         break; // the peer finished
    ///     }
    ///     println!("{} bytes", data.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_bytes(&mut self, max: usize) -> io::Result<Bytes> {
        poll_fn(|cx| self.poll_read_bytes_priv(cx, max)).await
    }

    /// [`read_bytes`](Self::read_bytes) as a poll function: `Pending` until data, the end
    /// of the stream or an error is there, the task woken when it is.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let data = std::future::poll_fn(|cx| stream.poll_read_bytes(cx, 1500)).await?;
    /// # let _ = data;
    /// # Ok(()) }
    /// ```
    pub fn poll_read_bytes(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        self.poll_read_bytes_priv(cx, max)
    }

    /// The received data as a [`Stream`] of [`Bytes`], without copies (see
    /// [`read_bytes`](Self::read_bytes) for what each item is). It ends at the end of the
    /// stream, and after yielding an error.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// use futures_core::Stream;
    /// use std::pin::pin;
    ///
    /// let mut chunks = pin!(stream.bytes());
    /// let mut total = 0;
    /// while let Some(chunk) = std::future::poll_fn(|cx| chunks.as_mut().poll_next(cx)).await {
    ///     total += chunk?.len();
    /// }
    /// println!("{total} bytes until the peer finished");
    /// # Ok(()) }
    /// ```
    pub fn bytes(self) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin {
        Chunks::new(self)
    }

    fn poll_write_priv(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_call(cx, Wait::Write, |engine, now, id| {
            engine.tcp_send(now, id, data)
        })
    }

    fn poll_write_bytes_priv(
        &self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        let n = ready!(self.poll_call(cx, Wait::Write, |engine, now, id| {
            engine.tcp_send_bytes(now, id, data.clone())
        }))?;
        data.advance(n);
        Poll::Ready(Ok(n))
    }

    async fn write_bytes_priv(&self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            poll_fn(|cx| self.poll_write_bytes_priv(cx, &mut data)).await?;
        }
        Ok(())
    }

    /// Writes all of `data`, waiting for room as `write_all` does, without copying it: the
    /// engine keeps slices of `data` itself until the peer acknowledges them, and each byte
    /// is copied once, into the frame that carries it. (A `Bytes` shorter than 1 KiB is
    /// copied into the send buffer: keeping it would cost more.)
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let body = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    /// stream.write_bytes(body.clone()).await?; // no copy of the megabyte here
    /// # Ok(()) }
    /// ```
    pub async fn write_bytes(&mut self, data: Bytes) -> io::Result<()> {
        self.write_bytes_priv(data).await
    }

    /// Queues the prefix of `data` that fits in the send buffer without copying it, and
    /// advances `data` past it; pending while nothing fits. Returns how much was taken.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let mut data = bytes::Bytes::from_static(&[0u8; 100_000]);
    /// while !data.is_empty() {
    ///     std::future::poll_fn(|cx| stream.poll_write_bytes(cx, &mut data)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn poll_write_bytes(
        &self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        self.poll_write_bytes_priv(cx, data)
    }

    /// Up to `max` received bytes as pieces appended to `out`, in one engine call however
    /// many pieces that is; waiting for some.
    fn poll_read_bytes_into_priv(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.poll_call(cx, Wait::Read, |engine, now, id| {
            engine.tcp_recv_bytes_into(now, id, max, out)
        })
    }

    /// Queues pieces from the front of `data` while they fit, under one lock and with one
    /// wakeup of the driver for them all.
    fn poll_write_bytes_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        data: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.poll_call(cx, Wait::Write, |engine, now, id| {
            // One engine call for the whole batch; a piece taken in part stays, advanced.
            engine.tcp_send_bytes_vectored(now, id, data)
        })
    }

    async fn write_bytes_vectored_priv(&self, data: &mut VecDeque<Bytes>) -> io::Result<()> {
        while !data.is_empty() {
            poll_fn(|cx| self.poll_write_bytes_vectored_priv(cx, data)).await?;
        }
        Ok(())
    }

    /// Reads up to `max` received bytes without copying them, appending them to `out` as
    /// the pieces [`read_bytes`](Self::read_bytes) returns one at a time, all in one call:
    /// a relay or a parser that takes what has arrived pays the per-call cost (a lock, an
    /// engine call, a wakeup of the driver for the window update) once per batch, not once
    /// per segment. Waits until some data has arrived; returns how many bytes were
    /// appended, 0 at the end of the stream (or when `max` is 0).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let mut pieces = std::collections::VecDeque::new();
    /// while stream.read_bytes_into(256 * 1024, &mut pieces).await? > 0 {
    ///     for piece in pieces.drain(..) {
    ///         println!("{} bytes", piece.len());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_bytes_into(
        &mut self,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_bytes_into_priv(cx, max, out)).await
    }

    /// [`read_bytes_into`](Self::read_bytes_into) as a poll function: `Pending` (and
    /// nothing appended) until data, the end of the stream or an error is there.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let mut pieces = Vec::new();
    /// let n = std::future::poll_fn(|cx| stream.poll_read_bytes_into(cx, 65536, &mut pieces)).await?;
    /// assert_eq!(n, pieces.iter().map(|p| p.len()).sum::<usize>());
    /// # Ok(()) }
    /// ```
    pub fn poll_read_bytes_into(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.poll_read_bytes_into_priv(cx, max, out)
    }

    /// Writes every piece of `data`, in order, without copying them, as
    /// [`write_bytes`](Self::write_bytes) does one: each call into the engine queues as
    /// many pieces as fit, so the pieces [`read_bytes_into`](Self::read_bytes_into) took
    /// from one connection go out on another for one lock and one driver wakeup per batch.
    /// `data` is empty when it returns `Ok`; on an error it holds what was not queued.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut from: rawtcp::TcpStream, mut to: rawtcp::TcpStream) -> std::io::Result<()> {
    /// // A relay: one copy per byte in all, into the frame that carries it onward.
    /// let mut pieces = std::collections::VecDeque::new();
    /// while from.read_bytes_into(256 * 1024, &mut pieces).await? > 0 {
    ///     to.write_bytes_vectored(&mut pieces).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn write_bytes_vectored(&mut self, data: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.write_bytes_vectored_priv(data).await
    }

    /// Queues the pieces at the front of `data` that fit in the send buffer, without
    /// copying them, and removes them (a piece taken in part stays, advanced past what was
    /// taken); pending while nothing fits. Returns how many bytes were taken.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// use bytes::Bytes;
    /// let mut data: std::collections::VecDeque<Bytes> =
    ///     [Bytes::from_static(b"hello, "), Bytes::from_static(b"world")].into();
    /// while !data.is_empty() {
    ///     std::future::poll_fn(|cx| stream.poll_write_bytes_vectored(cx, &mut data)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn poll_write_bytes_vectored(
        &self,
        cx: &mut Context<'_>,
        data: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.poll_write_bytes_vectored_priv(cx, data)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.call(|engine, now, id| engine.tcp_shutdown(now, id))
    }

    /// Copies received data into `buf` without consuming it, waiting for some if none has
    /// arrived; `Ok(0)` at the end of the stream.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let mut buf = [0u8; 4];
    /// let n = stream.peek(&mut buf).await?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_peek_priv(cx, buf)).await
    }

    fn poll_peek_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let shared = &self.stack.shared;
        let now = shared.now();
        let mut inner = shared.lock();
        let n = inner
            .engine
            .tcp_peek(now, self.id, buf)
            .map_err(tcp_error)?;
        if n > 0 || buf.is_empty() {
            return Poll::Ready(Ok(n));
        }
        if let Some(error) = inner.engine.tcp_error(self.id) {
            return Poll::Ready(Err(conn_error(error)));
        }
        // Nothing buffered: the end of the stream once the peer's FIN has arrived.
        let peer_finished = matches!(
            inner.engine.tcp_state(self.id),
            Some(
                State::CloseWait
                    | State::LastAck
                    | State::Closing
                    | State::TimeWait
                    | State::Closed
            ) | None
        );
        if peer_finished {
            return Poll::Ready(Ok(0));
        }
        inner.conns.entry(self.id).register(Wait::Read, cx.waker());
        Poll::Pending
    }

    /// Waits until a read would not block: data has arrived, the peer has finished, or the
    /// connection has failed (the next read reports the error).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let mut buf = [0u8; 4096];
    /// loop {
    ///     stream.readable().await?;
    ///     match stream.try_read(&mut buf) {
    ///         Ok(0) => break,
    ///         Ok(n) => println!("{n} bytes"),
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        let mut scratch = [0u8; 1];
        poll_fn(|cx| self.poll_peek_priv(cx, &mut scratch).map(|_| Ok(()))).await
    }

    /// Waits until a write would not block: the send buffer has room, or writing can no
    /// longer succeed (the next write reports why).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let mut data: &[u8] = b"hello";
    /// while !data.is_empty() {
    ///     stream.writable().await?;
    ///     match stream.try_write(data) {
    ///         Ok(n) => data = &data[n..],
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| {
            self.poll_call(cx, Wait::Write, |engine, now, id| {
                match engine.tcp_send_space(now, id) {
                    Ok(0) => Err(TcpError::WouldBlock),
                    // An error is the next write's to report.
                    Ok(_) | Err(_) => Ok(()),
                }
            })
        })
        .await
    }

    /// Reads what has arrived without waiting: `WouldBlock` when nothing has, `Ok(0)` at the
    /// end of the stream.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let mut buf = [0u8; 1024];
    /// match stream.try_read(&mut buf) {
    ///     Ok(n) => println!("{n} bytes"),
    ///     Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => println!("nothing yet"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.call(|engine, now, id| engine.tcp_recv(now, id, buf))
    }

    /// Queues what fits in the send buffer without waiting: `WouldBlock` when nothing does.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let n = stream.try_write(b"ping")?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        self.call(|engine, now, id| engine.tcp_send(now, id, data))
    }

    /// Borrowed halves for reading and writing concurrently.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (mut reader, mut writer) = stream.split();
    /// tokio::io::copy(&mut reader, &mut writer).await?; // echo
    /// # Ok(()) }
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Owned halves that can move to different tasks; dropping the write half sends a FIN.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// use tokio::io::AsyncWriteExt;
    /// let (reader, mut writer) = stream.into_split();
    /// tokio::spawn(async move { writer.write_all(b"from another task").await });
    /// # drop(reader);
    /// # Ok(()) }
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let stream = std::sync::Arc::new(self);
        (
            OwnedReadHalf(std::sync::Arc::clone(&stream)),
            OwnedWriteHalf {
                stream,
                shutdown_on_drop: true,
            },
        )
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Data is handed to the engine as it is written; there is nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown_write())
    }
}

/// What [`Chunks`] reads from: a stream or one of its read halves.
trait Reader {
    fn stream(&self) -> &TcpStream;
}

impl Reader for TcpStream {
    fn stream(&self) -> &TcpStream {
        self
    }
}

impl Reader for ReadHalf<'_> {
    fn stream(&self) -> &TcpStream {
        self.0
    }
}

impl Reader for OwnedReadHalf {
    fn stream(&self) -> &TcpStream {
        &self.0
    }
}

/// Bytes a [`Chunks`] stream takes from the engine in one call, at most: one lock and one
/// engine call for many segments, while the window stays the engine's to open.
const CHUNKS_BATCH: usize = 64 * 1024;

/// The [`Stream`] of [`TcpStream::bytes`] and of the read halves' `bytes`: pieces are taken
/// from the engine up to [`CHUNKS_BATCH`] bytes at a time and yielded one by one.
#[derive(Debug)]
struct Chunks<R> {
    reader: R,
    taken: VecDeque<Bytes>,
    done: bool,
}

impl<R> Chunks<R> {
    fn new(reader: R) -> Chunks<R> {
        Chunks {
            reader,
            taken: VecDeque::new(),
            done: false,
        }
    }
}

impl<R: Reader + Unpin> Stream for Chunks<R> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(data) = this.taken.pop_front() {
            return Poll::Ready(Some(Ok(data)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        let taken = &mut this.taken;
        let result = ready!(
            this.reader
                .stream()
                .poll_call(cx, Wait::Read, |engine, now, id| {
                    engine.tcp_recv_bytes_into(now, id, CHUNKS_BATCH, taken)
                })
        );
        match result {
            Ok(0) => {
                this.done = true;
                Poll::Ready(None)
            }
            Ok(_) => Poll::Ready(this.taken.pop_front().map(Ok)),
            Err(error) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
        }
    }
}

/// The reading half of a [`TcpStream`], borrowed ([`TcpStream::split`]).
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The writing half of a [`TcpStream`], borrowed ([`TcpStream::split`]).
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

/// The reading half of a [`TcpStream`], owned ([`TcpStream::into_split`]).
#[derive(Debug)]
pub struct OwnedReadHalf(std::sync::Arc<TcpStream>);

/// The writing half of a [`TcpStream`], owned ([`TcpStream::into_split`]); dropping it
/// shuts the write side down (a FIN), as tokio's does.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    stream: std::sync::Arc<TcpStream>,
    shutdown_on_drop: bool,
}

impl<'a> ReadHalf<'a> {
    /// As [`TcpStream::read_bytes`]: up to `max` received bytes without a copy; empty at the
    /// end of the stream.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (mut reader, _writer) = stream.split();
    /// let data = reader.read_bytes(4096).await?;
    /// # let _ = data;
    /// # Ok(()) }
    /// ```
    pub async fn read_bytes(&mut self, max: usize) -> io::Result<Bytes> {
        poll_fn(|cx| self.0.poll_read_bytes_priv(cx, max)).await
    }

    /// As [`TcpStream::poll_read_bytes`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (reader, _writer) = stream.split();
    /// let data = std::future::poll_fn(|cx| reader.poll_read_bytes(cx, 1500)).await?;
    /// # let _ = data;
    /// # Ok(()) }
    /// ```
    pub fn poll_read_bytes(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        self.0.poll_read_bytes_priv(cx, max)
    }

    /// As [`TcpStream::read_bytes_into`]: received pieces appended to `out` in one call;
    /// 0 at the end of the stream.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (mut reader, _writer) = stream.split();
    /// let mut pieces = Vec::new();
    /// let n = reader.read_bytes_into(65536, &mut pieces).await?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub async fn read_bytes_into(
        &mut self,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> io::Result<usize> {
        poll_fn(|cx| self.0.poll_read_bytes_into_priv(cx, max, out)).await
    }

    /// As [`TcpStream::poll_read_bytes_into`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (reader, _writer) = stream.split();
    /// let mut pieces = Vec::new();
    /// let n = std::future::poll_fn(|cx| reader.poll_read_bytes_into(cx, 65536, &mut pieces)).await?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub fn poll_read_bytes_into(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_read_bytes_into_priv(cx, max, out)
    }

    /// As [`TcpStream::bytes`]: the received data as a [`Stream`] of [`Bytes`], while the
    /// write half goes on writing.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// use futures_core::Stream;
    /// use std::pin::pin;
    ///
    /// let (reader, _writer) = stream.split();
    /// let mut chunks = pin!(reader.bytes());
    /// if let Some(first) = std::future::poll_fn(|cx| chunks.as_mut().poll_next(cx)).await {
    ///     println!("{} bytes first", first?.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn bytes(self) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin + 'a {
        Chunks::new(self)
    }
}

impl OwnedReadHalf {
    /// As [`TcpStream::read_bytes`]: up to `max` received bytes without a copy; empty at the
    /// end of the stream.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (mut reader, _writer) = stream.into_split();
    /// let data = reader.read_bytes(4096).await?;
    /// # let _ = data;
    /// # Ok(()) }
    /// ```
    pub async fn read_bytes(&mut self, max: usize) -> io::Result<Bytes> {
        poll_fn(|cx| self.0.poll_read_bytes_priv(cx, max)).await
    }

    /// As [`TcpStream::poll_read_bytes`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (reader, _writer) = stream.into_split();
    /// let data = std::future::poll_fn(|cx| reader.poll_read_bytes(cx, 1500)).await?;
    /// # let _ = data;
    /// # Ok(()) }
    /// ```
    pub fn poll_read_bytes(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        self.0.poll_read_bytes_priv(cx, max)
    }

    /// As [`TcpStream::read_bytes_into`]: received pieces appended to `out` in one call;
    /// 0 at the end of the stream.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (mut reader, _writer) = stream.into_split();
    /// let mut pieces = Vec::new();
    /// let n = reader.read_bytes_into(65536, &mut pieces).await?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub async fn read_bytes_into(
        &mut self,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> io::Result<usize> {
        poll_fn(|cx| self.0.poll_read_bytes_into_priv(cx, max, out)).await
    }

    /// As [`TcpStream::poll_read_bytes_into`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (reader, _writer) = stream.into_split();
    /// let mut pieces = Vec::new();
    /// let n = std::future::poll_fn(|cx| reader.poll_read_bytes_into(cx, 65536, &mut pieces)).await?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub fn poll_read_bytes_into(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_read_bytes_into_priv(cx, max, out)
    }

    /// As [`TcpStream::bytes`]: the received data as a [`Stream`] of [`Bytes`], which can
    /// move to another task than the write half's.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// use futures_core::Stream;
    /// use std::pin::pin;
    ///
    /// let (reader, _writer) = stream.into_split();
    /// let reading = tokio::spawn(async move {
    ///     let mut chunks = pin!(reader.bytes());
    ///     let mut total = 0;
    ///     while let Some(Ok(chunk)) = std::future::poll_fn(|cx| chunks.as_mut().poll_next(cx)).await {
    ///         total += chunk.len();
    ///     }
    ///     total
    /// });
    /// # let _ = reading;
    /// # Ok(()) }
    /// ```
    pub fn bytes(self) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin {
        Chunks::new(self)
    }

    /// Puts the stream back together.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (reader, writer) = stream.into_split();
    /// let stream = reader.reunite(writer).expect("halves of one stream");
    /// # drop(stream);
    /// # Ok(()) }
    /// ```
    pub fn reunite(
        self,
        other: OwnedWriteHalf,
    ) -> Result<TcpStream, (OwnedReadHalf, OwnedWriteHalf)> {
        if !std::sync::Arc::ptr_eq(&self.0, &other.stream) {
            return Err((self, other));
        }
        let mut write = other;
        write.shutdown_on_drop = false;
        let stream = std::sync::Arc::clone(&write.stream);
        drop(write);
        drop(self);
        Ok(std::sync::Arc::try_unwrap(stream).expect("both halves were dropped"))
    }
}

impl WriteHalf<'_> {
    /// [`TcpStream::write_bytes`] on the borrowed write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, mut writer) = stream.split();
    /// writer.write_bytes(bytes::Bytes::from_static(b"hello")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_bytes(&mut self, data: Bytes) -> io::Result<()> {
        self.0.write_bytes_priv(data).await
    }

    /// [`TcpStream::poll_write_bytes`] on the borrowed write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, writer) = stream.split();
    /// let mut data = bytes::Bytes::from_static(b"hello");
    /// std::future::poll_fn(|cx| writer.poll_write_bytes(cx, &mut data)).await?;
    /// # Ok(()) }
    /// ```
    pub fn poll_write_bytes(
        &self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_bytes_priv(cx, data)
    }

    /// [`TcpStream::write_bytes_vectored`] on the borrowed write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, mut writer) = stream.split();
    /// let mut data = std::collections::VecDeque::from([bytes::Bytes::from(vec![1u8; 4096])]);
    /// writer.write_bytes_vectored(&mut data).await?;
    /// assert!(data.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn write_bytes_vectored(&mut self, data: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.0.write_bytes_vectored_priv(data).await
    }

    /// [`TcpStream::poll_write_bytes_vectored`] on the borrowed write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(mut stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, writer) = stream.split();
    /// let mut data = std::collections::VecDeque::from([bytes::Bytes::from_static(b"hello")]);
    /// std::future::poll_fn(|cx| writer.poll_write_bytes_vectored(cx, &mut data)).await?;
    /// # Ok(()) }
    /// ```
    pub fn poll_write_bytes_vectored(
        &self,
        cx: &mut Context<'_>,
        data: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_bytes_vectored_priv(cx, data)
    }
}

impl OwnedWriteHalf {
    /// [`TcpStream::write_bytes`] on the owned write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, mut writer) = stream.into_split();
    /// tokio::spawn(async move {
    ///     writer.write_bytes(bytes::Bytes::from(vec![0u8; 1 << 20])).await
    /// });
    /// # Ok(()) }
    /// ```
    pub async fn write_bytes(&mut self, data: Bytes) -> io::Result<()> {
        self.stream.write_bytes_priv(data).await
    }

    /// [`TcpStream::poll_write_bytes`] on the owned write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, writer) = stream.into_split();
    /// let mut data = bytes::Bytes::from_static(b"hello");
    /// std::future::poll_fn(|cx| writer.poll_write_bytes(cx, &mut data)).await?;
    /// # Ok(()) }
    /// ```
    pub fn poll_write_bytes(
        &self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        self.stream.poll_write_bytes_priv(cx, data)
    }

    /// [`TcpStream::write_bytes_vectored`] on the owned write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, mut writer) = stream.into_split();
    /// let mut data = std::collections::VecDeque::from([bytes::Bytes::from(vec![1u8; 4096])]);
    /// writer.write_bytes_vectored(&mut data).await?;
    /// assert!(data.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn write_bytes_vectored(&mut self, data: &mut VecDeque<Bytes>) -> io::Result<()> {
        self.stream.write_bytes_vectored_priv(data).await
    }

    /// [`TcpStream::poll_write_bytes_vectored`] on the owned write half.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stream: rawtcp::TcpStream) -> std::io::Result<()> {
    /// let (_reader, writer) = stream.into_split();
    /// let mut data = std::collections::VecDeque::from([bytes::Bytes::from_static(b"hello")]);
    /// std::future::poll_fn(|cx| writer.poll_write_bytes_vectored(cx, &mut data)).await?;
    /// # Ok(()) }
    /// ```
    pub fn poll_write_bytes_vectored(
        &self,
        cx: &mut Context<'_>,
        data: &mut VecDeque<Bytes>,
    ) -> Poll<io::Result<usize>> {
        self.stream.poll_write_bytes_vectored_priv(cx, data)
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.stream.shutdown_write();
        }
    }
}

impl AsyncRead for ReadHalf<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.poll_read_priv(cx, buf)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for WriteHalf<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_priv(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.shutdown_write())
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream.poll_write_priv(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown_write())
    }
}

impl Drop for TcpStream {
    /// Closes the connection: a FIN after the queued data, or a reset if received data was
    /// never read or linger is zero.
    fn drop(&mut self) {
        let shared = &self.stack.shared;
        let now = shared.now();
        let mut inner = shared.lock();
        let reset = inner
            .conns
            .remove(self.id)
            .is_some_and(|c| c.reset_on_close());
        if reset {
            let _ = inner.engine.tcp_abort(now, self.id);
        } else {
            let _ = inner.engine.tcp_close(now, self.id);
        }
        drop(inner);
        shared.notify.notify_one();
    }
}
