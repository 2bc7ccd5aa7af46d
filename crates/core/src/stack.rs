//! The engine object: one host's network stack.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use rawtcp_wire::RxChecksum;
use rawtcp_wire::ethernet::EthernetAddress;
use rawtcp_wire::ipv4::IpProtocol;
use rawtcp_wire::tcp::{self, TcpFlags, TcpRepr};

use crate::config::{Config, Keepalive};
use crate::iface::conflict::AddressState;
use crate::iface::stats::InterfaceStats;
use crate::iface::{Interface, Sent};
use crate::random::Rng;
use crate::sink::FrameSink;
use crate::tcp::conn::{Connection, PlanKind};
use crate::tcp::{
    Cause, ConnError, ConnEvent, ConnectionId, ConnectionInfo, ListenOptions, ListenerId, State,
    Tcp, TcpError, TcpMemory,
};
use crate::{Instant, Ipv4Cidr};

/// Something that happened in the stack, for the application or its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Address conflict detection (RFC 5227 §2.1.1) found nobody else using our address: it
    /// is ours from now on, and the first announcement (§2.3) goes out on the next
    /// `poll_transmit`.
    AddressClaimed {
        /// Our address.
        address: Ipv4Addr,
    },
    /// Probing found another host using our address (RFC 5227 §2.1.1): the stack will not
    /// use it; `tcp_listen` and `tcp_connect` fail with [`TcpError::AddrInUse`].
    AddressInUse {
        /// Our (intended) address.
        address: Ipv4Addr,
        /// The MAC of the host that answered our probe, claimed the address, or probed for
        /// it at the same moment.
        by: EthernetAddress,
    },
    /// After our address became ours, another host claimed it (RFC 5227 §2.4): counted in
    /// [`InterfaceStats::address_conflicts`]. We keep the address and, unless we did within
    /// the defend interval, broadcast an announcement to defend it.
    AddressConflict {
        /// Our address.
        address: Ipv4Addr,
        /// The MAC that claimed it.
        by: EthernetAddress,
        /// An announcement answers this conflict.
        defended: bool,
    },
    /// A next hop did not answer ARP: the datagrams waiting for it were dropped.
    NeighborUnreachable {
        /// The address that did not answer.
        address: Ipv4Addr,
    },
    /// A connection changed state.
    StateChanged {
        /// The connection.
        connection: ConnectionId,
        /// Its local address.
        local: SocketAddrV4,
        /// Its peer's address.
        remote: SocketAddrV4,
        /// The state it left.
        from: State,
        /// The state it entered (equal to `from` when a timer restarted, as in TIME-WAIT).
        to: State,
        /// Why.
        cause: Cause,
    },
    /// A connect completed.
    Connected(ConnectionId),
    /// A listener has a connection to accept.
    Acceptable(ListenerId),
    /// Data (or the end of the stream) can be read.
    Readable(ConnectionId),
    /// Room opened in the send buffer.
    Writable(ConnectionId),
    /// The connection failed.
    Error(ConnectionId, ConnError),
    /// The connection reached CLOSED.
    Closed(ConnectionId),
}

/// A TCP/IPv4 host, sans-IO.
///
/// # Examples
/// ```
/// use rawtcp_core::{Config, Instant, Ipv4Cidr, Stack, VecSink};
/// use rawtcp_wire::ethernet::EthernetAddress;
/// use rawtcp_wire::RxChecksum;
/// use std::net::Ipv4Addr;
///
/// let config = Config::new(EthernetAddress([2, 0, 0, 0, 0, 2]), Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, 2), 24));
/// let mut stack = Stack::new(config);
/// stack.handle_frame(Instant::ZERO, &[0u8; 10], RxChecksum::Verify); // garbage: counted and dropped
/// let mut sink = VecSink::new();
/// assert_eq!(stack.poll_transmit(Instant::ZERO, &mut sink), 0);
/// assert_eq!(stack.stats().rx_frames, 1);
/// ```
#[derive(Debug)]
pub struct Stack {
    config: Config,
    iface: Interface,
    tcp: Tcp,
    events: VecDeque<Event>,
    /// Events dropped at [`Config::event_queue_limit`].
    events_dropped: u64,
}

impl Stack {
    /// A stack with `config`.
    pub fn new(config: Config) -> Stack {
        let mut rng = Rng::new(config.seed);
        // The probe delays draw from a stream of their own, so turning detection on or off
        // changes no other random choice (ISNs, ports) of the same seed.
        let detector_seed = Rng::new(config.seed ^ 0x5227_5227_5227_5227).next_u64();
        // The challenge-ACK budget too: its draws depend on what arrives.
        let challenge_seed = Rng::new(config.seed ^ 0x5961_5961_5961_5961).next_u64();
        let iface = Interface::new(
            &config,
            rng.next_u64() as u16,
            detector_seed,
            challenge_seed,
        );
        let tcp = Tcp::new(
            config.tcp.clone(),
            config.ipv4.address,
            config.mtu,
            &mut rng,
        );
        Stack {
            config,
            iface,
            tcp,
            events: VecDeque::new(),
            events_dropped: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Our address and subnet.
    pub fn ipv4(&self) -> Ipv4Cidr {
        self.config.ipv4
    }

    /// Whether our address may be used yet. With [`ConflictDetection`] on, it is
    /// [`AddressState::Probing`] until the probes of RFC 5227 have gone unanswered (run the
    /// timers: `poll_timeout`, `handle_timeout`, `poll_transmit`), then
    /// [`Claimed`](AddressState::Claimed), or [`InUse`](AddressState::InUse) when another
    /// host answered. With detection off it is claimed from the start.
    ///
    /// [`ConflictDetection`]: crate::ConflictDetection
    pub fn address_state(&self) -> AddressState {
        self.iface.address_state()
    }

    /// RFC 5227 §2.1: no connection uses an address that is not ours yet.
    fn check_address(&self) -> Result<(), TcpError> {
        match self.iface.address_state() {
            AddressState::Claimed => Ok(()),
            AddressState::Probing => Err(TcpError::AddrNotAvailable),
            AddressState::InUse { .. } => Err(TcpError::AddrInUse),
        }
    }

    /// Handles one received Ethernet frame. `checksum` is what the device says about its
    /// transport checksum ([`RxChecksum::Trusted`] when the kernel verified it or left it
    /// unfinished). Call [`poll_transmit`](Self::poll_transmit) afterwards.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], checksum: RxChecksum) {
        self.iface
            .handle_frame(now, frame, None, checksum, &mut self.tcp, &mut self.events);
        self.collect_events();
    }

    /// As [`handle_frame`](Self::handle_frame), for a frame the caller can share: the engine
    /// keeps a TCP payload of 512 bytes or more as a slice of it instead of copying it, and
    /// [`tcp_recv_bytes`](Self::tcp_recv_bytes) hands that slice to the reader. Shorter
    /// payloads are copied together, so that a peer's tiny segments do not each keep a frame
    /// alive. The frame's allocation lives as long as a slice of it is held: a driver should
    /// give each frame one of its own, about its size.
    pub fn handle_frame_bytes(&mut self, now: Instant, frame: bytes::Bytes, checksum: RxChecksum) {
        self.iface.handle_frame(
            now,
            &frame,
            Some(&frame),
            checksum,
            &mut self.tcp,
            &mut self.events,
        );
        self.collect_events();
    }

    /// Writes the frames due now into `sink`; returns how many. Call it after
    /// `handle_frame`, `handle_timeout` or an application call, until it writes nothing or
    /// the sink is full.
    #[must_use = "frames written to the sink must be sent"]
    pub fn poll_transmit(&mut self, now: Instant, sink: &mut dyn FrameSink) -> usize {
        let mut written = self.iface.poll_transmit(now, sink);
        // What each commit worked out for the next turn; nothing else touches a connection
        // in between.
        let mut worked_out = None;
        while let Some((id, mut plan)) = self.tcp.next_plan(worked_out.take()) {
            let Some((conn, local, remote)) = self.tcp.plan_details(id) else {
                break;
            };
            if plan.gso_size > 0 && !self.iface.next_hop_known(now, *remote.ip()) {
                // A super-segment cannot wait for ARP: send one ordinary segment instead.
                plan.data_len = usize::from(plan.gso_size);
                plan.gso_size = 0;
                plan.flags.set(TcpFlags::FIN | TcpFlags::PSH, false);
            }
            let options = if plan.kind == PlanKind::Syn {
                conn.syn_options(now)
            } else {
                conn.segment_options(now)
            };
            let repr = TcpRepr {
                src_port: local.port(),
                dst_port: remote.port(),
                seq_number: plan.seq,
                ack_number: plan.ack,
                flags: plan.flags,
                window_len: plan.window,
                urgent_pointer: 0,
                options: if plan.kind == PlanKind::Reset {
                    Default::default()
                } else {
                    options
                },
                payload: &[],
            };
            let header_len = repr.header_len();
            let checksum = if plan.gso_size > 0 {
                // The device completes each segment's checksum from the pseudo-header sum.
                rawtcp_wire::TxChecksum::Partial
            } else {
                rawtcp_wire::TxChecksum::Full
            };
            let gso = (plan.gso_size > 0).then_some((plan.gso_size, header_len as u16));
            let sent = self.iface.send_ipv4(
                now,
                sink,
                *remote.ip(),
                IpProtocol::Tcp,
                header_len + plan.data_len,
                gso,
                |out| {
                    conn.copy_payload(&plan, &mut out[header_len..]);
                    repr.emit_header(
                        &mut tcp::Packet::new_unchecked(out),
                        *local.ip(),
                        *remote.ip(),
                        checksum,
                    );
                },
            );
            match sent {
                Sent::SinkFull => break,
                Sent::Written => written += 1,
                Sent::Queued | Sent::Dropped => {}
            }
            worked_out = self.tcp.commit(id, &plan, now);
        }
        // Datagrams held for ARP may have started a resolution: send its request now.
        written += self.iface.poll_transmit(now, sink);
        self.collect_events();
        written
    }

    /// Whether `poll_transmit` would write something now.
    #[must_use]
    pub fn wants_transmit(&self) -> bool {
        self.iface.wants_transmit() || self.tcp.wants_transmit()
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.iface.poll_timeout(), self.tcp.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every timer due by `now`. Call it when `poll_timeout`'s deadline has passed, then
    /// `poll_transmit`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.iface
            .handle_timeout(now, &mut self.events, &mut self.tcp);
        self.tcp.handle_timeout(now);
        self.collect_events();
    }

    /// The next event, if any. Call it after every other call until it returns `None`;
    /// events not polled are held up to [`Config::event_queue_limit`], the oldest dropped
    /// beyond it.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Events dropped because the queue was at [`Config::event_queue_limit`] (the oldest go
    /// first).
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// Interface counters, drops by reason included.
    pub fn stats(&self) -> &InterfaceStats {
        &self.iface.stats
    }

    /// What TCP holds: buffered bytes (and their peak), connections, half-open ones, to
    /// compare with [`TcpConfig`](crate::TcpConfig)'s limits.
    pub fn tcp_memory(&self) -> TcpMemory {
        self.tcp.memory()
    }

    fn collect_events(&mut self) {
        self.iface.stats.absorb(&mut self.tcp.stats);
        while let Some((id, listener, event, (local, remote))) = self.tcp.events.pop_front() {
            let Some(id) = id else { continue };
            self.events.push_back(match event {
                ConnEvent::StateChanged { from, to, cause } => Event::StateChanged {
                    connection: id,
                    local,
                    remote,
                    from,
                    to,
                    cause,
                },
                ConnEvent::Connected => Event::Connected(id),
                ConnEvent::Established => match listener {
                    Some(listener) => Event::Acceptable(listener),
                    None => Event::Connected(id),
                },
                ConnEvent::Readable => Event::Readable(id),
                ConnEvent::Writable => Event::Writable(id),
                ConnEvent::Error(error) => Event::Error(id, error),
                ConnEvent::Closed => Event::Closed(id),
            });
        }
        let excess = self
            .events
            .len()
            .saturating_sub(self.config.event_queue_limit);
        self.events.drain(..excess);
        self.events_dropped += excess as u64;
    }

    // ---- TCP: the application's calls ----

    /// Listens on `local` (address 0.0.0.0 for every address of ours). `backlog` bounds the
    /// accept queue (default from the configuration). Fails with `AddrNotAvailable` while
    /// our address is being probed and `AddrInUse` once probing found it taken (see
    /// [`address_state`](Self::address_state)).
    pub fn tcp_listen(
        &mut self,
        local: SocketAddrV4,
        backlog: Option<usize>,
    ) -> Result<ListenerId, TcpError> {
        self.tcp_listen_with(
            local,
            ListenOptions {
                backlog,
                ..ListenOptions::default()
            },
        )
    }

    /// Listens as [`tcp_listen`](Self::tcp_listen) does, with `options`: with
    /// [`ListenOptions::reuse_port`] set on each, several listeners share a port and new
    /// connections are spread across them.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_core::{Config, Ipv4Cidr, ListenOptions, Stack};
    /// use rawtcp_wire::ethernet::EthernetAddress;
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    ///
    /// let address = Ipv4Addr::new(10, 9, 0, 2);
    /// let mut stack = Stack::new(Config::new(EthernetAddress([2, 0, 0, 0, 0, 2]), Ipv4Cidr::new(address, 24)));
    /// let shared = ListenOptions { reuse_port: true, ..ListenOptions::default() };
    /// let port = SocketAddrV4::new(address, 80);
    /// let a = stack.tcp_listen_with(port, shared).unwrap();
    /// let b = stack.tcp_listen_with(port, shared).unwrap();
    /// assert_ne!(a, b);
    /// assert!(stack.tcp_listen(port, None).is_err()); // this one did not ask to share
    /// ```
    pub fn tcp_listen_with(
        &mut self,
        local: SocketAddrV4,
        options: ListenOptions,
    ) -> Result<ListenerId, TcpError> {
        self.check_address()?;
        self.tcp.listen(local, options)
    }

    /// The next established connection of a listener, if any.
    pub fn tcp_accept(&mut self, listener: ListenerId) -> Result<Option<ConnectionId>, TcpError> {
        self.tcp.accept(listener)
    }

    /// Stops listening; connections not yet accepted are reset.
    pub fn tcp_unlisten(&mut self, now: Instant, listener: ListenerId) -> Result<(), TcpError> {
        let result = self.tcp.unlisten(listener, now);
        self.collect_events();
        result
    }

    /// The address a listener is bound to.
    pub fn tcp_listener_addr(&self, listener: ListenerId) -> Option<SocketAddrV4> {
        self.tcp.listener_addr(listener)
    }

    /// Opens a connection to `remote` (SYN-SENT); the SYN goes out on the next
    /// `poll_transmit`. `local_port` 0 or `None` picks an ephemeral port (RFC 6056). Fails
    /// as [`tcp_listen`](Self::tcp_listen) does while our address is not ours.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local_port: Option<u16>,
    ) -> Result<ConnectionId, TcpError> {
        self.check_address()?;
        let result = self.tcp.connect(now, remote, local_port);
        self.collect_events();
        result
    }

    /// What a read that found nothing readable means, for every `tcp_recv*`: `Ok(())` at the
    /// end of the stream (the FIN read, or a connection closed without error), the
    /// connection's error, or `WouldBlock` while more may come.
    fn nothing_read(conn: &Connection) -> Result<(), TcpError> {
        if conn.at_eof() {
            return Ok(());
        }
        if let Some(error) = Self::conn_error(conn.state, conn.error) {
            return Err(error);
        }
        if conn.state == State::Closed {
            return Ok(());
        }
        Err(TcpError::WouldBlock)
    }

    fn conn_error(state: State, error: Option<ConnError>) -> Option<TcpError> {
        match (state, error) {
            (_, Some(error)) => Some(TcpError::Connection(error)),
            _ => None,
        }
    }

    /// Queues data to send; returns how much fit (`WouldBlock` when none did). The bytes are
    /// copied once, here; [`tcp_send_bytes`](Self::tcp_send_bytes) takes them without a copy.
    pub fn tcp_send(
        &mut self,
        now: Instant,
        id: ConnectionId,
        data: &[u8],
    ) -> Result<usize, TcpError> {
        self.send_with(now, id, data.is_empty(), |conn, room| {
            conn.write(now, data, room)
        })
    }

    /// Queues data to send without copying it: the engine keeps `data` (a slice of it) until
    /// the peer acknowledges it, and copies each byte once, into the frame that carries it. A
    /// `Bytes` shorter than 1 KiB is copied instead (keeping it would cost more than copying
    /// it, and would keep its whole allocation alive). Takes the prefix that fits and returns
    /// its length, as [`tcp_send`](Self::tcp_send) does, with the same errors and memory
    /// limit; the caller keeps the rest, `data.slice(n..)`.
    ///
    /// # Examples
    /// ```
    /// # use rawtcp_core::sim::Sim;
    /// # use rawtcp_core::{Config, Ipv4Cidr};
    /// # use rawtcp_wire::ethernet::EthernetAddress;
    /// # use std::net::{Ipv4Addr, SocketAddrV4};
    /// # let host = |last| Config::new(
    /// #     EthernetAddress([2, 0, 0, 0, 0, last]),
    /// #     Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24),
    /// # );
    /// # let mut sim = Sim::new(host(1), host(2));
    /// # let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
    /// # sim.b.tcp_listen(server, None).unwrap();
    /// # let client = sim.a.tcp_connect(sim.now, server, None).unwrap();
    /// # sim.run_for(core::time::Duration::from_millis(10));
    /// use bytes::Buf;
    ///
    /// let mut data = bytes::Bytes::from(vec![7u8; 1 << 20]);
    /// while !data.is_empty() {
    ///     match sim.a.tcp_send_bytes(sim.now, client, data.clone()) {
    ///         Ok(n) => data.advance(n), // the engine holds data[..n], not a copy
    ///         Err(_) => break,          // WouldBlock: wait for Event::Writable
    ///     }
    /// }
    /// # assert!(data.len() < 1 << 20);
    /// ```
    pub fn tcp_send_bytes(
        &mut self,
        now: Instant,
        id: ConnectionId,
        data: bytes::Bytes,
    ) -> Result<usize, TcpError> {
        self.send_with(now, id, data.is_empty(), |conn, room| {
            conn.write_bytes(now, data, room)
        })
    }

    /// Queues the pieces at the front of `data` without copying them, as
    /// [`tcp_send_bytes`](Self::tcp_send_bytes) does one, for one connection lookup and
    /// one settling of the connection however many pieces fit: a relay's batch of received
    /// pieces is queued in one call. Each piece taken whole leaves `data`; the one the send
    /// buffer (or the memory limit) fills on is advanced past what was taken, and it and
    /// those behind it stay; empty pieces before it are dropped. Returns the bytes taken:
    /// `WouldBlock` when a piece was offered and none of it fit, `Ok(0)` when `data` held
    /// nothing to send (the errors of a connection that can no longer be written still
    /// come first, as for `tcp_send` of nothing).
    ///
    /// # Examples
    /// ```
    /// # use rawtcp_core::sim::Sim;
    /// # use rawtcp_core::{Config, Ipv4Cidr};
    /// # use rawtcp_wire::ethernet::EthernetAddress;
    /// # use std::net::{Ipv4Addr, SocketAddrV4};
    /// # let host = |last| Config::new(
    /// #     EthernetAddress([2, 0, 0, 0, 0, last]),
    /// #     Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24),
    /// # );
    /// # let mut sim = Sim::new(host(1), host(2));
    /// # let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
    /// # sim.b.tcp_listen(server, None).unwrap();
    /// # let client = sim.a.tcp_connect(sim.now, server, None).unwrap();
    /// # sim.run_for(core::time::Duration::from_millis(10));
    /// use bytes::Bytes;
    ///
    /// let mut pieces: std::collections::VecDeque<Bytes> =
    ///     [Bytes::from(vec![1u8; 4096]), Bytes::new(), Bytes::from(vec![2u8; 4096])].into();
    /// assert_eq!(sim.a.tcp_send_bytes_vectored(sim.now, client, &mut pieces), Ok(8192));
    /// assert!(pieces.is_empty());
    /// ```
    pub fn tcp_send_bytes_vectored(
        &mut self,
        now: Instant,
        id: ConnectionId,
        data: &mut VecDeque<bytes::Bytes>,
    ) -> Result<usize, TcpError> {
        use bytes::Buf;
        // TcpConfig::max_buffer_memory: no more than the stack may still hold, less what
        // the pieces before took.
        let room = self.tcp.send_room();
        let result = self.tcp.with_conn(id, now, |conn| {
            if let Some(error) = Self::conn_error(conn.state, conn.error) {
                return (Err(error), false);
            }
            if !conn.may_write() {
                return (Err(TcpError::BrokenPipe), false);
            }
            let held = conn.buffered_bytes();
            let mut taken = 0;
            while let Some(front) = data.front_mut() {
                if front.is_empty() {
                    data.pop_front();
                    continue;
                }
                let room = room.saturating_sub(conn.buffered_bytes().saturating_sub(held));
                let n = conn.write_bytes(now, front.clone(), room);
                taken += n;
                if n < front.len() {
                    // The send buffer or the memory limit is full: the rest waits.
                    front.advance(n);
                    if n == 0 && taken == 0 {
                        return (Err(TcpError::WouldBlock), room == 0);
                    }
                    return (Ok(taken), n == 0 && room == 0);
                }
                data.pop_front();
            }
            (Ok(taken), false)
        });
        if let Ok((_, true)) = result {
            self.tcp.memory_blocked(id);
        }
        self.collect_events();
        result?.0
    }

    /// `tcp_send` and `tcp_send_bytes`: the checks, then `write` with the memory room left.
    fn send_with(
        &mut self,
        now: Instant,
        id: ConnectionId,
        empty: bool,
        write: impl FnOnce(&mut Connection, usize) -> usize,
    ) -> Result<usize, TcpError> {
        // TcpConfig::max_buffer_memory: no more than the stack may still hold.
        let room = self.tcp.send_room();
        let result = self.tcp.with_conn(id, now, |conn| {
            if let Some(error) = Self::conn_error(conn.state, conn.error) {
                return Err(error);
            }
            if !conn.may_write() {
                return Err(TcpError::BrokenPipe);
            }
            if empty {
                return Ok(0);
            }
            match write(conn, room) {
                0 => Err(TcpError::WouldBlock),
                n => Ok(n),
            }
        });
        if room == 0 && result == Err(TcpError::WouldBlock) {
            self.tcp.memory_blocked(id);
        }
        self.collect_events();
        result?
    }

    /// Room in the send buffer: how much a `tcp_send` would take now. Fails as `tcp_send`
    /// would when the connection can no longer be written.
    pub fn tcp_send_space(&mut self, now: Instant, id: ConnectionId) -> Result<usize, TcpError> {
        self.tcp.with_conn(id, now, |conn| {
            if let Some(error) = Self::conn_error(conn.state, conn.error) {
                return Err(error);
            }
            if !conn.may_write() {
                return Err(TcpError::BrokenPipe);
            }
            Ok(conn.send_free())
        })?
    }

    /// Reads received data; `Ok(0)` at the end of the stream, `WouldBlock` when nothing is
    /// there yet.
    pub fn tcp_recv(
        &mut self,
        now: Instant,
        id: ConnectionId,
        out: &mut [u8],
    ) -> Result<usize, TcpError> {
        let result = self.tcp.with_conn(id, now, |conn| {
            let n = conn.read(now, out);
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            Self::nothing_read(conn).map(|()| 0)
        });
        self.collect_events();
        result?
    }

    /// Takes up to `max` bytes of received data without copying them: a slice of the frame
    /// they arrived in (see [`handle_frame_bytes`](Self::handle_frame_bytes)) or of the
    /// buffer small payloads were gathered in, at most one such piece per call. As
    /// [`tcp_recv`](Self::tcp_recv) otherwise: an empty `Bytes` at the end of the stream (or
    /// when `max` is 0), [`TcpError::WouldBlock`] when nothing has arrived yet, and a window
    /// update is sent when the read opened the window enough.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_core::{Config, ConnectionId, Instant, Ipv4Cidr, Stack, TcpError};
    /// use rawtcp_wire::ethernet::EthernetAddress;
    /// use std::net::Ipv4Addr;
    ///
    /// let config = Config::new(EthernetAddress([2, 0, 0, 0, 0, 2]), Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, 2), 24));
    /// let mut stack = Stack::new(config);
    /// # let id: ConnectionId = stack.tcp_connect(Instant::ZERO, "10.9.0.1:80".parse().unwrap(), None).unwrap();
    /// match stack.tcp_recv_bytes(Instant::ZERO, id, 64 * 1024) {
    ///     Ok(data) if data.is_empty() => println!("end of stream"),
    ///     Ok(data) => println!("{} bytes", data.len()),
    ///     Err(TcpError::WouldBlock) => println!("nothing yet"),
    ///     Err(error) => println!("{error:?}"),
    /// }
    /// ```
    pub fn tcp_recv_bytes(
        &mut self,
        now: Instant,
        id: ConnectionId,
        max: usize,
    ) -> Result<bytes::Bytes, TcpError> {
        let result = self.tcp.with_conn(id, now, |conn| {
            let data = conn.read_bytes(now, max);
            if !data.is_empty() || max == 0 {
                return Ok(data);
            }
            Self::nothing_read(conn).map(|()| data)
        });
        self.collect_events();
        result?
    }

    /// As [`tcp_recv_bytes`](Self::tcp_recv_bytes), in one call for many pieces: appends
    /// pieces to `out` until they add up to `max` bytes or nothing readable is left, and
    /// returns how many bytes they hold. A reader that takes a segment at a time pays the
    /// engine's per-call bookkeeping for each; this pays it once. `Ok(0)` at the end of the
    /// stream (or when `max` is 0), [`TcpError::WouldBlock`] when nothing has arrived yet.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_core::{Config, ConnectionId, Instant, Ipv4Cidr, Stack, TcpError};
    /// use rawtcp_wire::ethernet::EthernetAddress;
    /// use std::net::Ipv4Addr;
    ///
    /// let config = Config::new(EthernetAddress([2, 0, 0, 0, 0, 2]), Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, 2), 24));
    /// let mut stack = Stack::new(config);
    /// # let id: ConnectionId = stack.tcp_connect(Instant::ZERO, "10.9.0.1:80".parse().unwrap(), None).unwrap();
    /// let mut pieces = Vec::new();
    /// match stack.tcp_recv_bytes_into(Instant::ZERO, id, 256 * 1024, &mut pieces) {
    ///     Ok(0) => println!("end of stream"),
    ///     Ok(n) => println!("{n} bytes in {} pieces", pieces.len()),
    ///     Err(TcpError::WouldBlock) => println!("nothing yet"),
    ///     Err(error) => println!("{error:?}"),
    /// }
    /// ```
    pub fn tcp_recv_bytes_into(
        &mut self,
        now: Instant,
        id: ConnectionId,
        max: usize,
        out: &mut impl Extend<bytes::Bytes>,
    ) -> Result<usize, TcpError> {
        let result = self.tcp.with_conn(id, now, |conn| {
            let n = conn.read_bytes_into(now, max, out);
            if n > 0 || max == 0 {
                return Ok(n);
            }
            Self::nothing_read(conn).map(|()| 0)
        });
        self.collect_events();
        result?
    }

    /// Copies received data without consuming it.
    pub fn tcp_peek(
        &mut self,
        now: Instant,
        id: ConnectionId,
        out: &mut [u8],
    ) -> Result<usize, TcpError> {
        self.tcp.with_conn(id, now, |conn| conn.peek(out))
    }

    /// Shuts down the write side: a FIN follows the queued data; reading goes on.
    pub fn tcp_shutdown(&mut self, now: Instant, id: ConnectionId) -> Result<(), TcpError> {
        let result = self.tcp.with_conn(id, now, |conn| conn.shutdown());
        self.collect_events();
        result
    }

    /// Shuts down the read side (shutdown(SHUT_RD)): data already received may still be
    /// read, but data that arrives from now on is answered with a reset and ends the
    /// connection (RFC 1122 §4.2.2.13; Linux resets only once its FIN is out, and queues
    /// such data in ESTABLISHED).
    pub fn tcp_shutdown_read(&mut self, now: Instant, id: ConnectionId) -> Result<(), TcpError> {
        let result = self.tcp.with_conn(id, now, |conn| conn.shutdown_read());
        self.collect_events();
        result
    }

    /// Closes the connection and gives up the handle: a FIN after the queued data, or a reset
    /// when received data was never read (RFC 2525 §2.17).
    pub fn tcp_close(&mut self, now: Instant, id: ConnectionId) -> Result<(), TcpError> {
        let result = self.tcp.with_conn(id, now, |conn| conn.close(now));
        self.tcp.release(id, now);
        self.collect_events();
        result
    }

    /// Resets the connection and gives up the handle (SO_LINGER 0).
    pub fn tcp_abort(&mut self, now: Instant, id: ConnectionId) -> Result<(), TcpError> {
        let result = self
            .tcp
            .with_conn(id, now, |conn| conn.abort(Cause::AppAbort));
        self.tcp.release(id, now);
        self.collect_events();
        result
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn tcp_set_nodelay(
        &mut self,
        now: Instant,
        id: ConnectionId,
        nodelay: bool,
    ) -> Result<(), TcpError> {
        self.tcp.with_conn(id, now, |conn| conn.nodelay = nodelay)
    }

    /// Chooses a connection's congestion control algorithm (Linux's TCP_CONGESTION). The new
    /// controller starts afresh: from the initial window, or the current window if that is
    /// smaller; best set right after `tcp_connect` or `tcp_accept`.
    pub fn tcp_set_congestion_control(
        &mut self,
        now: Instant,
        id: ConnectionId,
        algorithm: crate::CongestionAlgorithm,
    ) -> Result<(), TcpError> {
        self.tcp
            .with_conn(id, now, |conn| conn.set_congestion_control(algorithm))
    }

    /// Sets keepalive (RFC 1122 §4.2.3.6) for a connection; `None` turns it off.
    pub fn tcp_set_keepalive(
        &mut self,
        now: Instant,
        id: ConnectionId,
        keepalive: Option<Keepalive>,
    ) -> Result<(), TcpError> {
        self.tcp.set_keepalive(id, now, keepalive)
    }

    /// A connection's state, while the application holds it.
    pub fn tcp_state(&self, id: ConnectionId) -> Option<State> {
        self.tcp.state(id)
    }

    /// The error that ended the connection, if one did.
    pub fn tcp_error(&self, id: ConnectionId) -> Option<ConnError> {
        self.tcp.error(id)
    }

    /// A snapshot of one connection.
    pub fn tcp_info(&self, id: ConnectionId) -> Option<ConnectionInfo> {
        self.tcp.info(id)
    }

    /// Every connection, `netstat -napt`-style.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.tcp.connections()
    }

    /// Every listener and its address.
    pub fn listeners(&self) -> Vec<(ListenerId, SocketAddrV4)> {
        self.tcp.listeners()
    }

    /// Checks the engine's internal invariants: the connection table and slab agree, each
    /// connection's deadline is filed, listeners' queues match their connections, and every
    /// control block has SND.UNA ≤ SND.NXT ≤ SND.MAX, buffers within their limits and RCV.NXT
    /// consistent with the bytes delivered. For the fuzz harness (feature `fuzzing`); a
    /// description of the first broken invariant otherwise.
    #[cfg(feature = "fuzzing")]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.tcp.check_invariants()
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::net::{Ipv4Addr, SocketAddrV4};

    use rawtcp_wire::ethernet::EthernetAddress;

    use crate::sim::Sim;
    use crate::{Config, Event, Instant, Ipv4Cidr, Keepalive, State};

    fn host(last: u8) -> Config {
        Config::new(
            EthernetAddress([2, 0, 0, 0, 0, last]),
            Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, last), 24),
        )
    }

    /// A caller's clock read before another call went further (two threads around one
    /// engine): a deadline already behind the wheel's clock is clamped to it, and must
    /// still fire. It used to be skipped as superseded, leaving the connection with no
    /// timer at all.
    #[test]
    fn a_deadline_already_past_when_filed_still_fires() {
        let mut stack = crate::Stack::new(host(1));
        stack.handle_timeout(Instant::from_secs(10));
        let remote = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
        let conn = stack
            .tcp_connect(Instant::from_secs(5), remote, None)
            .unwrap();
        // The SYN waits for ARP; its retransmission timer is due at 6 s, behind 10 s.
        let _ = stack.poll_transmit(Instant::from_secs(5), &mut crate::VecSink::new());
        stack.handle_timeout(Instant::from_secs(10));
        let info = stack.tcp_info(conn).unwrap();
        assert_eq!(info.stats.retransmit_timeouts, 1, "the SYN's timer fired");
    }

    /// Nobody polls: the queue keeps the newest events up to the limit and counts the rest.
    #[test]
    fn an_unpolled_event_queue_keeps_the_newest_up_to_its_limit() {
        let mut stack = crate::Stack::new(host(1));
        let limit = stack.config().event_queue_limit;
        let opens = limit + 1000;
        let mut last = None;
        for i in 0..opens {
            let remote = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 1 + (i / 20_000) as u16);
            last = Some(stack.tcp_connect(Instant::ZERO, remote, None).unwrap());
        }
        // Each open is one event (CLOSED → SYN-SENT).
        let events: Vec<Event> = std::iter::from_fn(|| stack.poll_event()).collect();
        assert_eq!(events.len(), limit);
        assert_eq!(stack.events_dropped(), (opens - limit) as u64);
        assert!(matches!(
            events.last(),
            Some(Event::StateChanged { connection, .. }) if Some(*connection) == last
        ));
    }

    /// With keepalive on, every delayed-ACK cycle moved the connection's deadline from two
    /// hours away to 40 ms away and back; the wheel kept each two-hour entry it left behind.
    #[test]
    fn each_connection_holds_one_timer_wheel_entry_however_often_its_deadline_moves() {
        let mut a = host(1);
        a.tcp.keepalive = Some(Keepalive::default());
        let mut sim = Sim::new(a, host(2));
        sim.trace = false;
        let server = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
        let listener = sim.b.tcp_listen(server, None).unwrap();
        let client = sim.a.tcp_connect(sim.now, server, None).unwrap();
        sim.run_for(Duration::from_millis(10));
        assert_eq!(sim.a.tcp_state(client), Some(State::Established));
        let accepted = sim.b.tcp_accept(listener).unwrap().expect("accepted");
        let mut buf = [0u8; 64];
        for _ in 0..1000 {
            // A small segment to A: A delays its ACK (40 ms), then re-arms keepalive (2 h).
            sim.b.tcp_send(sim.now, accepted, b"ping").unwrap();
            sim.run_for(Duration::from_millis(100));
            while sim
                .a
                .tcp_recv(sim.now, client, &mut buf)
                .is_ok_and(|n| n > 0)
            {}
        }
        assert_eq!(sim.a.connections().len(), 1);
        assert!(
            sim.a.tcp.timer_entries() <= 1,
            "{} wheel entries for one connection",
            sim.a.tcp.timer_entries()
        );
    }
}
