//! TCP (RFC 9293): connections, listeners, and the table that finds them.
//!
//! Connections live in a slab addressed by [`ConnectionId`] (index and generation, so a stale
//! handle is recognised) and are found by 4-tuple through a hash table keyed with a secret
//! from the seed (O(1), deterministic, and not floodable by chosen tuples). Listeners are
//! found by (address, port), the wildcard address last. Each connection's next deadline is one
//! entry of a timer wheel, refiled in place when it moves; connections with something to send are kept in a list,
//! so a transmit visits only those.
//!
//! Nothing grows without bound (each limit a [`TcpConfig`] field): connections, half-open
//! connections per listener and host-wide, the bytes held in every buffer together, and each
//! connection's out-of-order store. A SYN beyond the SYN queue is answered with a SYN cookie
//! ([`cookie`]) and costs no memory. What a limit refuses is counted in the interface's
//! drop counters and logged (`tracing`, at most once per [`LIMIT_LOG_INTERVAL`] per limit).
//!
//! Several listeners may share a port when each asked for it ([`ListenOptions::reuse_port`],
//! SO_REUSEPORT): a new connection goes to the one a keyed hash of its 4-tuple picks.

mod autotune;
mod buffer;
mod congestion;
pub(crate) mod conn;
mod cookie;
mod isn;
mod paws;
mod recovery;
mod rtt;
mod state;
mod table;
mod timers;
mod wheel;

use core::time::Duration;
use std::cell::Cell;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use rawtcp_wire::SeqNum;
use rawtcp_wire::tcp::TcpRepr;

pub use congestion::{Acked, CongestionAlgorithm, CongestionControl};
pub use recovery::CongestionState;
pub use state::State;

use crate::Instant;
use crate::config::{Keepalive, TcpConfig};
use crate::iface::ratelimit::ChallengeAckBudget;
use crate::iface::stats::{DropReason, InterfaceStats};
use crate::random::Rng;
use conn::{Connection, Plan};
use cookie::{CookieJar, CookieOptions};
use isn::{IsnGenerator, PortAllocator, siphash24};
use rawtcp_wire::tcp::{TcpFlags, TcpOptions, Timestamps};
use table::{Tuple, TupleTable};
use wheel::{TimerKey, TimerWheel};

/// A connection, as the application holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    index: u32,
    generation: u32,
}

impl ConnectionId {
    /// The connection's slot in the stack's table: small and dense, and reused once the
    /// connection is gone (the id as a whole never is). For tables beside the engine's, so
    /// they need not hash.
    pub fn slot(self) -> usize {
        self.index as usize
    }

    /// Which of the connections that used [`slot`](Self::slot) this is: with the slot, all
    /// a table beside the engine's needs to keep to tell this handle from a stale one.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

/// A listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u32);

/// Why a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnError {
    /// The peer answered our SYN with a RST, or ICMP port/protocol unreachable.
    Refused,
    /// The peer reset an established connection.
    Reset,
    /// Retransmissions, keepalive probes or the user timeout ran out.
    TimedOut,
    /// ICMP said the network or host cannot be reached.
    Unreachable,
    /// The next hop never answered ARP.
    NeighborUnreachable,
}

/// Why a state changed, for the transition events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// The application connected.
    AppConnect,
    /// The application closed or shut down its side.
    AppClose,
    /// The application closed with unread data: reset (RFC 2525 §2.17).
    AppCloseWithUnreadData,
    /// Data arrived after the application closed or shut down reading: reset (RFC 1122
    /// §4.2.2.13).
    DataAfterClose,
    /// The application aborted.
    AppAbort,
    /// A SYN arrived.
    SynReceived,
    /// A SYN-ACK arrived.
    SynAckReceived,
    /// An ACK arrived.
    AckReceived,
    /// A FIN arrived.
    FinReceived,
    /// A retransmitted FIN arrived in TIME-WAIT (the timer restarts).
    FinRetransmitted,
    /// A RST arrived.
    RstReceived,
    /// The retransmission timer gave up.
    RetransmitTimeout,
    /// Keepalive probes went unanswered.
    KeepaliveTimeout,
    /// Zero-window probes went unanswered (the persist timer gave up).
    PersistTimeout,
    /// 2·MSL passed in TIME-WAIT.
    TimeWaitExpired,
    /// A new SYN for the same 4-tuple ended TIME-WAIT early and opens a new incarnation
    /// (RFC 6191).
    TimeWaitReused,
    /// The FIN-WAIT-2 timeout passed.
    FinWait2Expired,
    /// An ICMP error.
    IcmpError,
    /// The listener closed.
    ListenerClosed,
}

/// What a connection reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnEvent {
    StateChanged {
        from: State,
        to: State,
        cause: Cause,
    },
    Connected,
    Established,
    Readable,
    Writable,
    Error(ConnError),
    Closed,
}

/// Per-connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// When the connection was created.
    pub opened_at: Instant,
    /// Segments received.
    pub segments_in: u64,
    /// Segments sent.
    pub segments_out: u64,
    /// Payload bytes received (duplicates included).
    pub bytes_in: u64,
    /// Payload bytes sent (retransmissions included).
    pub bytes_out: u64,
    /// Bytes the application queued.
    pub bytes_queued: u64,
    /// Bytes the peer acknowledged.
    pub bytes_acked: u64,
    /// Bytes delivered in order to the receive buffer.
    pub bytes_delivered: u64,
    /// Segments sent again.
    pub retransmitted_segments: u64,
    /// Bytes sent again.
    pub bytes_retransmitted: u64,
    /// Times the retransmission timer expired.
    pub retransmit_timeouts: u64,
    /// Duplicate ACKs received.
    pub duplicate_acks: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Segments dropped as unacceptable.
    pub segments_dropped: u64,
    /// Resets sent.
    pub resets_out: u64,
    /// ACKs to out-of-window segments held back by the rate limit.
    pub acks_rate_limited: u64,
    /// Segments dropped by PAWS (RFC 7323 §5.3): a timestamp older than TS.Recent.
    pub paws_rejected: u64,
    /// Fast recoveries entered (three duplicate ACKs, or SACK showing SND.UNA lost).
    pub fast_recoveries: u64,
    /// RFC 6675 rescue retransmissions.
    pub rescue_retransmits: u64,
    /// SACK blocks rejected as invalid (outside SND.UNA..SND.MAX, empty, inverted).
    pub sack_blocks_rejected: u64,
    /// D-SACKs received (RFC 2883): the peer got a segment twice.
    pub dsacks_received: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub loss_probes: u64,
    /// Segments RACK marked lost (RFC 8985 §6.2), on an ACK or on the reorder timer.
    pub rack_lost_segments: u64,
    /// RACK reorder timer expirations that found a segment lost.
    pub rack_reorder_timeouts: u64,
    /// Fast recoveries undone because every retransmission they caused came back as a
    /// D-SACK (RFC 2883 §5): the window and ssthresh were restored.
    pub spurious_recoveries_undone: u64,
    /// Retransmission timeouts F-RTO (RFC 5682) found spurious; the reduction was undone.
    pub spurious_timeouts_undone: u64,
    /// Losses repaired by a loss probe's retransmission and answered by a window reduction
    /// (RFC 8985 §7.4).
    pub loss_probe_repairs: u64,
    /// Out-of-order segments dropped at
    /// [`TcpConfig::max_out_of_order`] or [`TcpConfig::max_out_of_order_bytes`].
    pub out_of_order_dropped: u64,
}

/// A snapshot of one connection, `netstat -napt`-style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The handle, if the application holds one.
    pub id: ConnectionId,
    /// Local address.
    pub local: SocketAddrV4,
    /// Remote address.
    pub remote: SocketAddrV4,
    /// State.
    pub state: State,
    /// Bytes queued to send (unacknowledged included).
    pub send_queue: usize,
    /// Bytes received and not yet read.
    pub recv_queue: usize,
    /// Smoothed round-trip time.
    pub srtt: Option<Duration>,
    /// Round-trip time variation.
    pub rttvar: Duration,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// The peer's window, scaled.
    pub snd_wnd: u32,
    /// Our receive window.
    pub rcv_wnd: u32,
    /// The congestion window, bytes.
    pub cwnd: u32,
    /// The slow-start threshold, bytes (`u32::MAX` before the first loss).
    pub ssthresh: u32,
    /// The congestion control algorithm.
    pub congestion_algorithm: CongestionAlgorithm,
    /// Open, disorder, recovery or loss.
    pub congestion_state: CongestionState,
    /// Bytes thought to be in the network: RFC 6675's pipe with SACK, else SND.NXT − SND.UNA.
    pub in_flight: u32,
    /// Bytes the peer has SACKed above SND.UNA.
    pub sacked: u32,
    /// Bytes deemed lost (by RACK, RFC 8985 §6.2, with SACK; else RFC 6675 IsLost) and not
    /// yet acknowledged.
    pub lost: u32,
    /// RACK saw reordering: a segment delivered below the highest delivered one without a
    /// retransmission (RFC 8985 §6.2 step 3).
    pub reordering_seen: bool,
    /// RACK's reordering window as last computed (RFC 8985 §6.2 step 4): zero until
    /// reordering is seen once three segments are SACKed, min RTT / 4 times the D-SACK
    /// multiplier after.
    pub reo_wnd: Duration,
    /// The smallest round trip RACK measured.
    pub min_rtt: Option<Duration>,
    /// The receive buffer's size, bytes: the most it holds and the largest window we
    /// advertise; grown by autotuning up to `TcpConfig::recv_buffer_max`.
    pub rcv_buffer: usize,
    /// The send MSS.
    pub mss: usize,
    /// SND.UNA: the oldest unacknowledged sequence number.
    pub snd_una: rawtcp_wire::SeqNum,
    /// SND.NXT: the next sequence number to send.
    pub snd_nxt: rawtcp_wire::SeqNum,
    /// RCV.NXT: the next sequence number expected.
    pub rcv_nxt: rawtcp_wire::SeqNum,
    /// Counters.
    pub stats: ConnectionStats,
}

#[derive(Debug)]
struct Listener {
    local: SocketAddrV4,
    backlog: usize,
    syn_backlog: usize,
    half_open: usize,
    accept_queue: VecDeque<ConnectionId>,
    /// Shares its port with other listeners that asked for it too.
    reuse_port: bool,
    /// When this listener last answered with a SYN cookie: only then is an ACK checked for
    /// one (as Linux's `tcp_synq_no_recent_overflow`), which keeps blind ACK guessing off
    /// listeners that never overflowed.
    last_cookie_sent: Option<Instant>,
}

/// How to listen: [`Stack::tcp_listen_with`](crate::Stack::tcp_listen_with).
///
/// # Examples
/// ```
/// use rawtcp_core::ListenOptions;
///
/// let options = ListenOptions { reuse_port: true, ..ListenOptions::default() };
/// assert_eq!(options.backlog, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenOptions {
    /// The accept queue's length; `None` takes [`TcpConfig::backlog`].
    pub backlog: Option<usize>,
    /// SO_REUSEPORT: the port may be shared with other listeners that set this too. New
    /// connections are spread across them by a keyed hash of the 4-tuple (Linux's
    /// `reuseport_select_sock`); closing one resets only the connections queued on it.
    pub reuse_port: bool,
}

/// The TCP side's use of memory: [`Stack::tcp_memory`](crate::Stack::tcp_memory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpMemory {
    /// Bytes held in every connection's buffers now (send queue, readable data,
    /// out-of-order store).
    pub buffered: usize,
    /// The most `buffered` has been.
    pub buffered_peak: usize,
    /// Connections held now, every state counted.
    pub connections: usize,
    /// The most connections held at once.
    pub connections_peak: usize,
    /// Half-open (SYN-RECEIVED) connections of every listener now.
    pub half_open: usize,
}

/// A segment TCP answers with no connection behind it (a SYN cookie's SYN-ACK), for the
/// interface to send.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) dst: Ipv4Addr,
    pub(crate) repr: TcpRepr<'static>,
}

/// Most replies held between two calls of the interface (it takes them after every segment).
const REPLIES_LIMIT: usize = 64;

/// A limit is logged at most once per this interval (each limit on its own clock).
pub const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The limits that log when they refuse work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    SynQueue,
    AcceptQueue,
    Connections,
    Memory,
    OutOfOrder,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    /// Boxed: the slab over-allocates slots, not control blocks.
    conn: Option<Box<Connection>>,
    /// The connection's next deadline as filed in the timer wheel: one entry, cancelled and
    /// filed again whenever the deadline moves.
    timer: Option<(TimerKey, Instant)>,
    /// In the list of connections with output pending.
    dirty: bool,
    /// The connection's buffered bytes as last counted into the stack's total.
    held: usize,
}

/// Makes room for one more slot, growing by an eighth (at least 64) rather than doubling:
/// the slab never shrinks, and doubling left up to half of it empty (48 B per slot, 31 % of
/// the slab unused at 100 000 connections). Still geometric, so pushing stays amortized
/// O(1).
fn grow_by_an_eighth<T>(slots: &mut Vec<T>) {
    if slots.len() == slots.capacity() {
        slots.reserve_exact((slots.len() / 8).max(64));
    }
}

/// The connections of the slab, in slot order.
fn live_connections(slots: &[Slot]) -> impl Iterator<Item = &Connection> {
    slots.iter().filter_map(|slot| slot.conn.as_deref())
}

/// The 4-tuple of the connection in slot `index`, if there is one (for the [`TupleTable`]).
fn tuple_in(slots: &[Slot]) -> impl Fn(u32) -> Option<Tuple> + '_ {
    |index| {
        let conn = slots.get(index as usize)?.conn.as_deref()?;
        Some((conn.local, conn.remote))
    }
}

/// The slot `id` names, if it still holds that generation. A function of the slab rather than
/// a method, so a caller may hold the slot while it touches the timers or the dirty list.
fn live_slot(slots: &mut [Slot], id: ConnectionId) -> Option<&mut Slot> {
    slots
        .get_mut(id.index as usize)
        .filter(|s| s.generation == id.generation)
}

/// The plan [`Tcp::commit`] worked out for the connection it left at the front of the
/// dirty list (`None` inside: nothing to send after all), for the [`Tcp::next_plan`] that
/// follows it, which would otherwise work it out again.
#[derive(Debug)]
pub(crate) struct NextPlan {
    id: ConnectionId,
    plan: Option<Plan>,
}

/// What the application may ask of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    /// No such connection or listener (closed, or never was).
    InvalidHandle,
    /// The address or port is taken.
    AddrInUse,
    /// No ephemeral port is free for this destination.
    AddrNotAvailable,
    /// The address cannot be used (zero, broadcast, multicast, port 0).
    InvalidInput,
    /// Nothing to read yet, or no room to write.
    WouldBlock,
    /// Not connected yet.
    NotConnected,
    /// Writing after shutdown or close.
    BrokenPipe,
    /// The connection failed.
    Connection(ConnError),
    /// A resource limit was reached: [`TcpConfig::max_connections`] or
    /// [`TcpConfig::max_buffer_memory`] (ENOBUFS).
    LimitReached,
}

pub(crate) struct Tcp {
    config: Arc<TcpConfig>,
    address: Ipv4Addr,
    mtu: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The slots of the connections, by 4-tuple.
    table: TupleTable,
    /// The last 4-tuple found in `table`: a bulk transfer's segments all go to one
    /// connection, and this spares each the keyed hash. Cleared when that tuple is inserted
    /// or removed.
    last_found: Cell<Option<((SocketAddrV4, SocketAddrV4), ConnectionId)>>,
    listeners: Vec<Option<Listener>>,
    timers: TimerWheel<ConnectionId>,
    dirty: VecDeque<ConnectionId>,
    isn: IsnGenerator,
    ports: PortAllocator,
    cookies: CookieJar,
    /// Key of the hash that picks one of several listeners on a port.
    reuse_key: [u64; 2],
    replies: VecDeque<Reply>,
    /// Bytes held in every connection's buffers (the sum of the slots' `held`).
    buffered: usize,
    buffered_peak: usize,
    connections_peak: usize,
    /// Connections whose write found no room under the memory limit: told when there is.
    memory_blocked: Vec<ConnectionId>,
    /// When each [`Limit`] was last logged.
    limit_logged: [Option<Instant>; 5],
    /// Drops and counters of the TCP side, moved into the interface's after every call.
    pub(crate) stats: InterfaceStats,
    /// The event list a connection at work borrows (see [`Tcp::lend_events`]) and
    /// [`Tcp::settle`] takes back, so that a connection's events cost no allocation.
    spare_events: Vec<ConnEvent>,
    /// Events with the connection's (local, remote) addresses, which outlive the connection.
    #[allow(clippy::type_complexity)]
    pub(crate) events: VecDeque<(
        Option<ConnectionId>,
        Option<ListenerId>,
        ConnEvent,
        (SocketAddrV4, SocketAddrV4),
    )>,
}

impl core::fmt::Debug for Tcp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tcp")
            .field("connections", &self.table.len())
            .field("listeners", &self.listeners.iter().flatten().count())
            .field("timers", &self.timers.len())
            .finish()
    }
}

impl Tcp {
    pub(crate) fn new(config: TcpConfig, address: Ipv4Addr, mtu: usize, rng: &mut Rng) -> Tcp {
        let table_key = [rng.next_u64(), rng.next_u64()];
        let isn = IsnGenerator::new(rng);
        let ports = PortAllocator::new(rng, config.ephemeral_ports.clone());
        // Drawn last, so every earlier choice of a seed stays what it was.
        let cookies = CookieJar::new(rng, config.syn_cookie_rotation);
        let reuse_key = [rng.next_u64(), rng.next_u64()];
        Tcp {
            config: Arc::new(config),
            address,
            mtu,
            slots: Vec::new(),
            free: Vec::new(),
            table: TupleTable::new(table_key),
            last_found: Cell::new(None),
            listeners: Vec::new(),
            timers: TimerWheel::new(),
            dirty: VecDeque::new(),
            isn,
            ports,
            cookies,
            reuse_key,
            replies: VecDeque::new(),
            buffered: 0,
            buffered_peak: 0,
            connections_peak: 0,
            memory_blocked: Vec::new(),
            limit_logged: [None; 5],
            stats: InterfaceStats::default(),
            spare_events: Vec::new(),
            events: VecDeque::new(),
        }
    }

    fn conn(&self, id: ConnectionId) -> Option<&Connection> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.conn.as_deref())
    }

    fn conn_mut(&mut self, id: ConnectionId) -> Option<&mut Connection> {
        live_slot(&mut self.slots, id).and_then(|s| s.conn.as_deref_mut())
    }

    /// [`conn_mut`](Self::conn_mut) for work that [`settle`](Self::settle) follows: the
    /// connection gets the spare event list (empty, with room), which `settle` takes back.
    /// A connection at rest holds no event capacity, and one busy moving data does not
    /// allocate a list for every segment's `Readable` or `Writable`.
    fn lend_events(&mut self, id: ConnectionId) -> Option<&mut Connection> {
        let spare = &mut self.spare_events;
        let conn = live_slot(&mut self.slots, id).and_then(|s| s.conn.as_deref_mut())?;
        if conn.events.capacity() == 0 {
            conn.events = std::mem::take(spare);
        }
        Some(conn)
    }

    fn insert(&mut self, conn: Connection) -> ConnectionId {
        let key = (conn.local, conn.remote);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                grow_by_an_eighth(&mut self.slots);
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                    timer: None,
                    dirty: false,
                    held: 0,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.conn = Some(Box::new(conn));
        let id = ConnectionId {
            index,
            generation: slot.generation,
        };
        self.forget_found(key);
        self.table.insert(index, key, tuple_in(&self.slots));
        self.connections_peak = self.connections_peak.max(self.table.len());
        id
    }

    /// The connection of a 4-tuple.
    fn find(&self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<ConnectionId> {
        let key = (local, remote);
        if let Some((last, id)) = self.last_found.get()
            && last == key
        {
            return Some(id);
        }
        let index = self.table.find(key, tuple_in(&self.slots))?;
        let id = ConnectionId {
            index,
            generation: self.slots[index as usize].generation,
        };
        self.last_found.set(Some((key, id)));
        Some(id)
    }

    fn forget_found(&self, key: (SocketAddrV4, SocketAddrV4)) {
        if self.last_found.get().is_some_and(|(last, _)| last == key) {
            self.last_found.set(None);
        }
    }

    fn remove(&mut self, id: ConnectionId) {
        let Some(slot) = live_slot(&mut self.slots, id) else {
            return;
        };
        let Some(conn) = slot.conn.take() else { return };
        if let Some((key, _)) = slot.timer.take() {
            self.timers.cancel(key);
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.dirty = false;
        self.buffered -= std::mem::take(&mut slot.held);
        self.free.push(id.index);
        self.forget_found((conn.local, conn.remote));
        self.table.remove(id.index, (conn.local, conn.remote));
        if let Some(listener) = conn
            .listener
            .and_then(|l| self.listeners.get_mut(l.0 as usize))
            .and_then(Option::as_mut)
        {
            // Either queued for accept, or still half-open.
            if let Some(at) = listener
                .accept_queue
                .iter()
                .position(|&queued| queued == id)
            {
                listener.accept_queue.remove(at);
            } else {
                listener.half_open = listener.half_open.saturating_sub(1);
            }
        }
    }

    /// After anything touched a connection: move its events out, refile its deadline, note
    /// pending output, and drop it when nobody needs it any more.
    fn settle(&mut self, id: ConnectionId, now: Instant) {
        self.settle_knowing(id, now, None);
    }

    /// [`settle`](Self::settle), given the connection's `wants_output` when the caller has
    /// just worked it out (what `settle` itself changes, a persist timer, does not move it).
    fn settle_knowing(&mut self, id: ConnectionId, now: Instant, wants_output: Option<bool>) {
        let Some(slot) = live_slot(&mut self.slots, id) else {
            return;
        };
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        conn.after_input(now);
        let listener = conn.listener;
        let endpoints = (conn.local, conn.remote);
        // Taken whole, so an idle connection keeps no event capacity; the list comes back
        // as the spare below.
        let mut events = std::mem::take(&mut conn.events);
        let established_passively = events.contains(&ConnEvent::Established);
        let deadline = conn.next_deadline();
        let wants_output = wants_output.unwrap_or_else(|| conn.wants_output());
        debug_assert_eq!(wants_output, conn.wants_output());
        let closed = conn.state == State::Closed;
        let released = !conn.app_owned;
        let held = conn.buffered_bytes();
        let out_of_order_dropped = conn.take_out_of_order_dropped();
        self.buffered = self.buffered - slot.held + held;
        self.buffered_peak = self.buffered_peak.max(self.buffered);
        slot.held = held;
        let out_of_order_limited = out_of_order_dropped > 0;
        if out_of_order_limited {
            self.stats
                .drop_n(DropReason::OutOfOrderLimit, u64::from(out_of_order_dropped));
        }
        if slot.timer.map(|(_, filed)| filed) != deadline {
            if let Some((key, _)) = slot.timer.take() {
                self.timers.cancel(key);
            }
            slot.timer = deadline.map(|at| (self.timers.insert(at, id), at));
        }
        if wants_output && !slot.dirty {
            slot.dirty = true;
            self.dirty.push_back(id);
        }
        for event in events.drain(..) {
            self.events
                .push_back((Some(id), listener, event, endpoints));
        }
        if events.capacity() > self.spare_events.capacity() {
            self.spare_events = events;
        }
        // A connection established from a listener joins its accept queue.
        if established_passively
            && let Some(l) = listener
            && let Some(listener) = self
                .listeners
                .get_mut(l.0 as usize)
                .and_then(Option::as_mut)
            && !listener.accept_queue.contains(&id)
        {
            listener.half_open = listener.half_open.saturating_sub(1);
            listener.accept_queue.push_back(id);
        }
        if out_of_order_limited {
            self.log_limit(now, Limit::OutOfOrder, endpoints.0.port());
        }
        if closed && released && !wants_output {
            self.remove(id);
        }
        if !self.memory_blocked.is_empty() && self.buffered < self.config.max_buffer_memory {
            self.wake_memory_blocked();
        }
    }

    // ---- Limits ----

    /// Logs that `limit` refused something, at most once per [`LIMIT_LOG_INTERVAL`].
    fn log_limit(&mut self, now: Instant, limit: Limit, port: u16) {
        let last = &mut self.limit_logged[limit as usize];
        if last.is_some_and(|at| now - at < LIMIT_LOG_INTERVAL) {
            return;
        }
        *last = Some(now);
        match limit {
            Limit::SynQueue if self.config.syn_cookies => {
                tracing::warn!(
                    port,
                    "SYN queue full (possible SYN flood): sending SYN cookies"
                )
            }
            Limit::SynQueue => tracing::warn!(port, "SYN queue full: dropping SYNs"),
            Limit::AcceptQueue => tracing::warn!(port, "accept queue full: dropping SYNs"),
            Limit::Connections => tracing::warn!(
                limit = self.config.max_connections,
                "connection limit reached: refusing new connections"
            ),
            Limit::Memory => tracing::warn!(
                limit = self.config.max_buffer_memory,
                "buffer memory limit reached: refusing new connections and data"
            ),
            Limit::OutOfOrder => tracing::warn!(
                port,
                ranges = self.config.max_out_of_order,
                bytes = self.config.max_out_of_order_bytes,
                "out-of-order limit reached: dropping segments beyond it"
            ),
        }
    }

    /// Whether one more connection may be created; counts and logs the refusal if not.
    fn admit(&mut self, now: Instant, port: u16) -> Result<(), TcpError> {
        if self.table.len() >= self.config.max_connections {
            self.stats.drop(DropReason::ConnectionLimit);
            self.log_limit(now, Limit::Connections, port);
            return Err(TcpError::LimitReached);
        }
        // A connection that could not hold one segment would only stall.
        if self.buffered + usize::from(self.our_mss()) > self.config.max_buffer_memory {
            self.stats.drop(DropReason::MemoryLimit);
            self.log_limit(now, Limit::Memory, port);
            return Err(TcpError::LimitReached);
        }
        Ok(())
    }

    /// Bytes the application may still queue under [`TcpConfig::max_buffer_memory`].
    pub(crate) fn send_room(&self) -> usize {
        self.config.max_buffer_memory.saturating_sub(self.buffered)
    }

    /// `id` found no room under the memory limit: it hears `Writable` when there is.
    pub(crate) fn memory_blocked(&mut self, id: ConnectionId) {
        if !self.memory_blocked.contains(&id) {
            self.memory_blocked.push(id);
        }
    }

    fn wake_memory_blocked(&mut self) {
        for id in std::mem::take(&mut self.memory_blocked) {
            if let Some(conn) = self.conn(id) {
                let endpoints = (conn.local, conn.remote);
                self.events
                    .push_back((Some(id), None, ConnEvent::Writable, endpoints));
            }
        }
    }

    /// What TCP holds now.
    pub(crate) fn memory(&self) -> TcpMemory {
        TcpMemory {
            buffered: self.buffered,
            buffered_peak: self.buffered_peak,
            connections: self.table.len(),
            connections_peak: self.connections_peak,
            half_open: self.half_open(),
        }
    }

    fn half_open(&self) -> usize {
        self.listeners.iter().flatten().map(|l| l.half_open).sum()
    }

    /// The next stateless reply to send.
    pub(crate) fn take_reply(&mut self) -> Option<Reply> {
        self.replies.pop_front()
    }

    // ---- Listening ----

    pub(crate) fn listen(
        &mut self,
        local: SocketAddrV4,
        options: ListenOptions,
    ) -> Result<ListenerId, TcpError> {
        if !local.ip().is_unspecified() && *local.ip() != self.address {
            return Err(TcpError::AddrNotAvailable);
        }
        // Port 0 asks for any free port, as bind(2) does: one from the ephemeral range that
        // no listener and no connection of ours uses.
        let local = if local.port() == 0 {
            let slots = &self.slots;
            let listeners = &self.listeners;
            let port = self
                .ports
                .allocate(
                    self.address,
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                    |port| {
                        listeners.iter().flatten().any(|l| l.local.port() == port)
                            || live_connections(slots).any(|c| c.local.port() == port)
                    },
                )
                .ok_or(TcpError::AddrInUse)?;
            SocketAddrV4::new(*local.ip(), port)
        } else {
            local
        };
        // A port is listened on once (0.0.0.0 covers our address too), unless every listener
        // on it asked to share it (SO_REUSEPORT, as Linux requires of all of them).
        let overlaps = |other: &SocketAddrV4| {
            other.port() == local.port()
                && (other.ip() == local.ip()
                    || other.ip().is_unspecified()
                    || local.ip().is_unspecified())
        };
        if self
            .listeners
            .iter()
            .flatten()
            .any(|l| overlaps(&l.local) && !(l.reuse_port && options.reuse_port))
        {
            return Err(TcpError::AddrInUse);
        }
        let listener = Listener {
            local,
            backlog: options.backlog.unwrap_or(self.config.backlog).max(1),
            syn_backlog: self.config.syn_backlog,
            half_open: 0,
            accept_queue: VecDeque::new(),
            reuse_port: options.reuse_port,
            last_cookie_sent: None,
        };
        let index = match self.listeners.iter().position(Option::is_none) {
            Some(index) => {
                self.listeners[index] = Some(listener);
                index
            }
            None => {
                self.listeners.push(Some(listener));
                self.listeners.len() - 1
            }
        };
        Ok(ListenerId(index as u32))
    }

    pub(crate) fn listener_addr(&self, id: ListenerId) -> Option<SocketAddrV4> {
        self.listeners.get(id.0 as usize)?.as_ref().map(|l| l.local)
    }

    pub(crate) fn accept(&mut self, id: ListenerId) -> Result<Option<ConnectionId>, TcpError> {
        let listener = self
            .listeners
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(TcpError::InvalidHandle)?;
        let Some(conn_id) = listener.accept_queue.pop_front() else {
            return Ok(None);
        };
        if let Some(conn) = self.conn_mut(conn_id) {
            conn.listener = None;
            conn.app_owned = true;
        }
        Ok(Some(conn_id))
    }

    /// Closes a listener: connections not yet accepted are reset.
    pub(crate) fn unlisten(&mut self, id: ListenerId, now: Instant) -> Result<(), TcpError> {
        self.listeners
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(TcpError::InvalidHandle)?;
        let orphans: Vec<ConnectionId> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let conn = slot.conn.as_ref()?;
                (conn.listener == Some(id)).then_some(ConnectionId {
                    index: index as u32,
                    generation: slot.generation,
                })
            })
            .collect();
        for conn_id in orphans {
            if let Some(conn) = self.conn_mut(conn_id) {
                conn.listener = None;
                conn.abort(Cause::ListenerClosed);
            }
            self.settle(conn_id, now);
        }
        self.listeners[id.0 as usize] = None;
        Ok(())
    }

    /// The listener a segment from `remote` to `local` goes to: one bound to `local`
    /// exactly, else one bound to 0.0.0.0 on its port; of several sharing it
    /// (SO_REUSEPORT), the one a keyed hash of the 4-tuple picks, scaled onto their number as
    /// Linux's `reciprocal_scale` does, so a flow always lands on the same one while the
    /// group is unchanged.
    fn find_listener(&self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<ListenerId> {
        let pick = |takes: &dyn Fn(&Listener) -> bool| {
            let takers = || {
                self.listeners
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.as_ref().is_some_and(takes))
            };
            let count = takers().count();
            let nth = match count {
                0 => return None,
                1 => 0,
                _ => {
                    let hash = siphash24(self.reuse_key, &isn::tuple_bytes(local, remote)) as u32;
                    ((u64::from(hash) * count as u64) >> 32) as usize
                }
            };
            takers().nth(nth).map(|(i, _)| ListenerId(i as u32))
        };
        pick(&|l| l.local == local)
            .or_else(|| pick(&|l| l.local.ip().is_unspecified() && l.local.port() == local.port()))
    }

    /// The initial send sequence number of a new connection: RFC 6528's, unless a test
    /// chose one ([`TcpConfig::test_iss`]).
    fn iss(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNum {
        self.config
            .test_iss
            .unwrap_or_else(|| self.isn.isn(now, local, remote))
    }

    // ---- Connecting ----

    pub(crate) fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local_port: Option<u16>,
    ) -> Result<ConnectionId, TcpError> {
        let ip = *remote.ip();
        if remote.port() == 0 || ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return Err(TcpError::InvalidInput);
        }
        let address = self.address;
        let port = match local_port {
            Some(port) if port != 0 => {
                let tuple = (SocketAddrV4::new(address, port), remote);
                if self.table.find(tuple, tuple_in(&self.slots)).is_some() {
                    return Err(TcpError::AddrInUse);
                }
                port
            }
            _ => {
                let (table, slots) = (&self.table, &self.slots);
                let listeners = &self.listeners;
                self.ports
                    .allocate(address, remote, |port| {
                        let tuple = (SocketAddrV4::new(address, port), remote);
                        table.find(tuple, tuple_in(slots)).is_some()
                            || listeners.iter().flatten().any(|l| l.local.port() == port)
                    })
                    .ok_or(TcpError::AddrNotAvailable)?
            }
        };
        let local = SocketAddrV4::new(address, port);
        self.admit(now, port)?;
        let iss = self.iss(now, local, remote);
        let ts_offset = self.isn.ts_offset(*local.ip(), *remote.ip());
        let conn = Connection::connect(&self.config, local, remote, iss, self.mtu, ts_offset, now);
        let id = self.insert(conn);
        self.settle(id, now);
        Ok(id)
    }

    // ---- Input ----

    /// A valid segment from `src` to us. Returns false when no connection or listener takes
    /// it (the interface then answers with a reset). Challenge ACKs come out of `challenge`,
    /// the host's budget. `frame`, when the driver shares it, is the frame `seg` lies in.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_segment(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr<'_>,
        frame: Option<&bytes::Bytes>,
        challenge: &mut ChallengeAckBudget,
    ) -> bool {
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        let mut iss_floor = None;
        let mut found = self.find(local, remote);
        if let Some(id) = found
            && let Some(floor) = self.conn(id).and_then(|c| c.time_wait_takes_syn(seg))
            && self.find_listener(local, remote).is_some()
        {
            // RFC 6191 §2 (and RFC 9293 §3.10.7.4's reference to it): a SYN that is
            // demonstrably newer than the old incarnation ends TIME-WAIT and is handed to
            // the listener, as Linux does; a server that closes first can then be
            // reconnected to at once from the same client port.
            if let Some(conn) = self.conn_mut(id) {
                conn.end_time_wait();
            }
            self.settle(id, now);
            iss_floor = Some(floor);
            // Settling may have dropped it.
            found = self.find(local, remote);
        }
        if let Some(id) = found {
            if iss_floor.is_none() && self.conn(id).is_some_and(|c| c.state == State::Closed) {
                // RFC 9293 §3.10.7.1: a connection that ended while the application still
                // holds it is CLOSED, and answers as if no TCB existed (a reset, within the
                // host's rate limit).
                return false;
            }
            let may_establish = match self.conn(id).and_then(|c| c.listener) {
                Some(l) => self
                    .listeners
                    .get(l.0 as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|l| l.accept_queue.len() < l.backlog),
                None => true,
            };
            if !seg.payload.is_empty()
                && self.buffered + buffer::charge(seg.payload, frame)
                    > self.config.max_buffer_memory
            {
                // Over the memory limit: dropped before it is processed, as Linux drops what
                // it cannot charge to tcp_mem; the peer retransmits.
                self.stats.drop(DropReason::MemoryLimit);
                self.log_limit(now, Limit::Memory, local.port());
                return true;
            }
            if let Some(conn) = self.lend_events(id) {
                conn.handle_segment(now, seg, frame, may_establish, challenge);
            }
            self.settle(id, now);
            return true;
        }
        let Some(listener_id) = self.find_listener(local, remote) else {
            return false;
        };
        // RFC 9293 §3.10.7.2, LISTEN: a RST is dropped, an ACK may be a SYN cookie's (else it
        // is answered with a reset), a SYN opens a connection.
        if seg.flags.rst() {
            return true;
        }
        if seg.flags.ack() && !seg.flags.syn() {
            return self.cookie_ack(now, listener_id, (local, remote), seg, challenge);
        }
        if !seg.flags.syn() || seg.flags.ack() {
            return false;
        }
        self.listen_syn(now, listener_id, local, remote, seg, iss_floor);
        true
    }

    /// A SYN for a listener: a half-open connection, a SYN cookie when the SYN queue is
    /// full, or nothing when a limit says no.
    fn listen_syn(
        &mut self,
        now: Instant,
        listener_id: ListenerId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
        iss_floor: Option<SeqNum>,
    ) {
        let half_open = self.half_open();
        let Some(listener) = self.listeners[listener_id.0 as usize].as_ref() else {
            return;
        };
        if listener.accept_queue.len() >= listener.backlog {
            // Linux drops a SYN while the accept queue is full, cookies or not: a cookie's
            // connection would have nowhere to go.
            self.stats.drop(DropReason::AcceptQueueFull);
            self.log_limit(now, Limit::AcceptQueue, local.port());
            return;
        }
        let queue_full =
            listener.half_open >= listener.syn_backlog || half_open >= self.config.max_half_open;
        if self.admit(now, local.port()).is_err() {
            return;
        }
        if queue_full {
            self.log_limit(now, Limit::SynQueue, local.port());
            if self.config.syn_cookies {
                self.send_cookie(now, listener_id, local, remote, seg);
            } else {
                self.stats.drop(DropReason::SynQueueFull);
            }
            return;
        }
        if let Some(listener) = self.listeners[listener_id.0 as usize].as_mut() {
            listener.half_open += 1;
        }
        let mut iss = self.iss(now, local, remote);
        // RFC 1122 §4.2.2.13 (1): above every sequence number of the old incarnation.
        if let Some(floor) = iss_floor
            && iss <= floor
        {
            iss = floor;
        }
        let ts_offset = self.isn.ts_offset(*local.ip(), *remote.ip());
        let conn = Connection::accept_syn(
            &self.config,
            local,
            remote,
            iss,
            self.mtu,
            ts_offset,
            now,
            seg,
            listener_id,
        );
        let id = self.insert(conn);
        self.settle(id, now);
    }

    /// Our MSS offer (the link's MTU less the IPv4 and TCP headers).
    fn our_mss(&self) -> u16 {
        self.mtu.saturating_sub(40).clamp(64, 65535) as u16
    }

    /// The window of a SYN-ACK, unscaled (RFC 7323 §2.2).
    fn syn_ack_window(&self) -> u16 {
        self.config.recv_buffer.min(65535) as u16
    }

    /// RFC 4987 §3.6: answers `syn` with a SYN-ACK whose sequence number is a cookie, and
    /// keeps nothing. The SYN-ACK is never retransmitted (nothing remembers it); a lost one
    /// is recovered by the peer's SYN retransmission.
    fn send_cookie(
        &mut self,
        now: Instant,
        listener_id: ListenerId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &TcpRepr<'_>,
    ) {
        if self.replies.len() >= REPLIES_LIMIT {
            self.stats.drop(DropReason::TransmitQueueFull);
            return;
        }
        let offered = &syn.options;
        let config = &self.config;
        // Window scale and SACK are remembered only in the timestamp (see `cookie`): without
        // timestamps the SYN-ACK offers neither, as Linux's does.
        let timestamps = config.timestamps && offered.timestamps.is_some();
        let window_scale = offered
            .window_scale
            .filter(|_| config.window_scaling && timestamps);
        let sack_permitted = offered.sack_permitted && config.sack && timestamps;
        let options = CookieOptions {
            mss: offered.max_seg_size.unwrap_or(536),
            window_scale,
            sack_permitted,
            timestamps,
        };
        let ts_now =
            conn::ts_clock(now).wrapping_add(self.isn.ts_offset(*local.ip(), *remote.ip()));
        let (cookie, tsval) =
            self.cookies
                .encode(now, local, remote, syn.seq_number, options, ts_now);
        let repr = TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq_number: cookie,
            ack_number: syn.seq_number + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window_len: self.syn_ack_window(),
            urgent_pointer: 0,
            options: TcpOptions {
                max_seg_size: Some(self.our_mss()),
                // The shift the connection will use: for the largest the buffer may grow to.
                window_scale: window_scale.map(|_| {
                    conn::window_shift(self.config.recv_buffer.max(self.config.recv_buffer_max))
                }),
                sack_permitted,
                timestamps: tsval
                    .zip(offered.timestamps)
                    .map(|(tsval, theirs)| Timestamps {
                        tsval,
                        tsecr: theirs.tsval,
                    }),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        self.replies.push_back(Reply {
            dst: *remote.ip(),
            repr,
        });
        self.stats.syn_cookies_sent += 1;
        if let Some(listener) = self.listeners[listener_id.0 as usize].as_mut() {
            listener.last_cookie_sent = Some(now);
        }
    }

    /// An ACK for a listener: if it echoes a valid SYN cookie, the connection is created
    /// from it and the ACK (with any data or FIN it carries) processed as the handshake's
    /// third segment. Returns false for an ACK that carries no valid cookie (a reset
    /// answers it, RFC 9293 §3.10.7.2).
    fn cookie_ack(
        &mut self,
        now: Instant,
        listener_id: ListenerId,
        (local, remote): (SocketAddrV4, SocketAddrV4),
        seg: &TcpRepr<'_>,
        challenge: &mut ChallengeAckBudget,
    ) -> bool {
        let Some(listener) = self.listeners[listener_id.0 as usize].as_ref() else {
            return false;
        };
        let lifetime = self.config.syn_cookie_rotation * 2;
        if listener
            .last_cookie_sent
            .is_none_or(|sent| now - sent >= lifetime)
        {
            return false;
        }
        let tsecr = seg
            .options
            .timestamps
            .filter(|_| self.config.timestamps)
            .map(|ts| ts.tsecr);
        let peer_isn = seg.seq_number - 1;
        let Some(options) =
            self.cookies
                .decode(now, local, remote, peer_isn, seg.ack_number - 1, tsecr)
        else {
            self.stats.drop(DropReason::SynCookieInvalid);
            return false;
        };
        if listener.accept_queue.len() >= listener.backlog {
            self.stats.drop(DropReason::AcceptQueueFull);
            self.log_limit(now, Limit::AcceptQueue, local.port());
            return true;
        }
        if self.admit(now, local.port()).is_err() {
            return true;
        }
        // The SYN as the cookie remembers it.
        let syn = TcpRepr {
            src_port: remote.port(),
            dst_port: local.port(),
            seq_number: peer_isn,
            ack_number: SeqNum::new(0),
            flags: TcpFlags::SYN,
            window_len: seg.window_len,
            urgent_pointer: 0,
            options: TcpOptions {
                max_seg_size: Some(options.mss),
                window_scale: options.window_scale,
                sack_permitted: options.sack_permitted,
                timestamps: seg
                    .options
                    .timestamps
                    .filter(|_| options.timestamps)
                    .map(|ts| Timestamps {
                        tsval: ts.tsval,
                        tsecr: 0,
                    }),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let ts_offset = self.isn.ts_offset(*local.ip(), *remote.ip());
        let mut conn = Connection::accept_syn(
            &self.config,
            local,
            remote,
            seg.ack_number - 1,
            self.mtu,
            ts_offset,
            now,
            &syn,
            listener_id,
        );
        conn.cookie_syn_ack_sent(now, self.syn_ack_window());
        if let Some(listener) = self.listeners[listener_id.0 as usize].as_mut() {
            listener.half_open += 1;
        }
        self.stats.syn_cookies_accepted += 1;
        let id = self.insert(conn);
        // The TSecr's low bits are the cookie's options, not our clock: no RTT sample from
        // it (Linux takes none from a cookie handshake either). A zero TSecr is one the
        // connection never samples.
        let mut ack = *seg;
        if let Some(ts) = ack.options.timestamps.as_mut() {
            ts.tsecr = 0;
        }
        if let Some(conn) = self.conn_mut(id) {
            conn.handle_segment(now, &ack, None, true, challenge);
        }
        self.settle(id, now);
        true
    }

    /// An ICMP error quoting a segment we sent from `local` to `remote` with sequence `seq`.
    pub(crate) fn handle_icmp_error(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seq: rawtcp_wire::SeqNum,
        error: IcmpErrorKind,
    ) -> IcmpOutcome {
        let Some(id) = self.find(local, remote) else {
            return IcmpOutcome::Unmatched;
        };
        let Some(conn) = self.conn_mut(id) else {
            return IcmpOutcome::Unmatched;
        };
        let taken = match error {
            IcmpErrorKind::FragmentationNeeded(mtu) => conn.lower_mtu(usize::from(mtu), seq),
            IcmpErrorKind::Refused => conn.icmp_error(ConnError::Refused, true, seq),
            IcmpErrorKind::Unreachable => conn.icmp_error(ConnError::Unreachable, false, seq),
        };
        self.settle(id, now);
        if taken {
            IcmpOutcome::Taken
        } else {
            IcmpOutcome::NotInFlight
        }
    }

    /// The neighbor `unreachable` never answered ARP: connections in SYN-SENT whose next hop
    /// (`next_hop` of their peer) it is fail. An unanswered gateway fails only those routed
    /// through it, never those to on-link hosts.
    pub(crate) fn neighbor_unreachable(
        &mut self,
        now: Instant,
        unreachable: Ipv4Addr,
        next_hop: impl Fn(Ipv4Addr) -> Option<Ipv4Addr>,
    ) {
        let ids: Vec<ConnectionId> = self
            .live_ids()
            .filter(|&id| {
                self.conn(id)
                    .is_some_and(|c| next_hop(*c.remote.ip()) == Some(unreachable))
            })
            .collect();
        for id in ids {
            if let Some(conn) = self.conn_mut(id)
                && conn.state == State::SynSent
            {
                // Always in flight: the quote is our own SND.UNA.
                let _ = conn.icmp_error(
                    ConnError::NeighborUnreachable,
                    true,
                    conn.sequence_state().snd_una,
                );
            }
            self.settle(id, now);
        }
    }

    // ---- Timers ----

    /// Entries in the timer wheel (at most one per connection).
    #[cfg(test)]
    pub(crate) fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.timers.advance(now, |_, id| due.push(id));
        for id in due {
            let Some(slot) = live_slot(&mut self.slots, id) else {
                continue; // the connection is gone
            };
            // The wheel holds exactly the slot's current entry (a moved deadline is
            // cancelled, not left behind), so whatever fires for a live slot is due. Not
            // compared with the filed instant: the wheel clamps a deadline already past to
            // its own clock, and a skipped entry would leave the connection with no timer.
            slot.timer = None;
            if let Some(conn) = slot.conn.as_mut() {
                conn.on_timer(now);
            }
            self.settle(id, now);
        }
    }

    // ---- Output ----

    /// The next connection with something to send, and what. `worked_out` is what the
    /// [`commit`](Self::commit) just before returned, if nothing has touched a connection
    /// since: the plan of the connection it left at the front of the dirty list, taken as it
    /// is instead of being worked out again.
    pub(crate) fn next_plan(
        &mut self,
        mut worked_out: Option<NextPlan>,
    ) -> Option<(ConnectionId, Plan)> {
        while let Some(&id) = self.dirty.front() {
            let plan = match worked_out.take() {
                Some(next) if next.id == id => {
                    debug_assert_eq!(next.plan, self.conn(id).and_then(|c| c.plan()));
                    next.plan
                }
                _ => self.conn(id).and_then(|c| c.plan()),
            };
            if let Some(plan) = plan {
                return Some((id, plan));
            }
            self.dirty.pop_front();
            if let Some(slot) = self.slots.get_mut(id.index as usize) {
                slot.dirty = false;
            }
            // Nothing more to send: a released, closed connection can go now.
            if let Some(conn) = self.conn(id)
                && conn.state == State::Closed
                && !conn.app_owned
            {
                self.remove(id);
            }
        }
        None
    }

    pub(crate) fn plan_details(
        &self,
        id: ConnectionId,
    ) -> Option<(&Connection, SocketAddrV4, SocketAddrV4)> {
        self.conn(id).map(|c| (c, c.local, c.remote))
    }

    /// Records that `plan` was sent. The connection's next plan is worked out here, once:
    /// it decides whether the connection stays in the dirty list, and is returned for the
    /// [`next_plan`](Self::next_plan) that follows at once (the caller hands it over, so it
    /// cannot outlive a change to the connection made in between).
    #[must_use = "hand the worked-out plan to the next `next_plan`, or drop it if anything changed"]
    pub(crate) fn commit(
        &mut self,
        id: ConnectionId,
        plan: &Plan,
        now: Instant,
    ) -> Option<NextPlan> {
        let mut wants = false;
        let mut worked_out = None;
        if let Some(conn) = self.lend_events(id) {
            conn.commit(plan, now);
            let (next, more) = conn.next_output();
            wants = more;
            if more {
                worked_out = Some(NextPlan { id, plan: next });
            }
        }
        // Keep the connection in the dirty list while it has more to send.
        if !wants {
            self.dirty.pop_front();
            if let Some(slot) = self.slots.get_mut(id.index as usize) {
                slot.dirty = false;
            }
        }
        self.settle_knowing(id, now, Some(wants));
        worked_out
    }

    pub(crate) fn wants_transmit(&self) -> bool {
        self.dirty
            .iter()
            .any(|&id| self.conn(id).is_some_and(|c| c.wants_output()))
    }

    // ---- The application side ----

    pub(crate) fn with_conn<T>(
        &mut self,
        id: ConnectionId,
        now: Instant,
        f: impl FnOnce(&mut Connection) -> T,
    ) -> Result<T, TcpError> {
        if !self.conn(id).is_some_and(|conn| conn.app_owned) {
            return Err(TcpError::InvalidHandle);
        }
        let Some(conn) = self.lend_events(id) else {
            return Err(TcpError::InvalidHandle);
        };
        let result = f(conn);
        self.settle(id, now);
        Ok(result)
    }

    pub(crate) fn error(&self, id: ConnectionId) -> Option<ConnError> {
        self.conn(id).and_then(|c| c.error)
    }

    pub(crate) fn state(&self, id: ConnectionId) -> Option<State> {
        self.conn(id).filter(|c| c.app_owned).map(|c| c.state)
    }

    pub(crate) fn info(&self, id: ConnectionId) -> Option<ConnectionInfo> {
        self.conn(id).map(|c| {
            let sequence = c.sequence_state();
            let congestion = c.congestion_info();
            let rack = c.rack_info();
            ConnectionInfo {
                id,
                local: c.local,
                remote: c.remote,
                state: c.state,
                send_queue: c.send_queue_len(),
                recv_queue: c.recv_queue_len(),
                srtt: c.srtt(),
                rttvar: c.rttvar(),
                rto: c.rto(),
                snd_wnd: c.snd_wnd(),
                rcv_wnd: c.rcv_wnd(),
                cwnd: congestion.cwnd,
                ssthresh: congestion.ssthresh,
                congestion_algorithm: congestion.algorithm,
                congestion_state: congestion.state,
                in_flight: congestion.in_flight,
                sacked: congestion.sacked,
                lost: congestion.lost,
                reordering_seen: rack.reordering_seen,
                reo_wnd: rack.reo_wnd,
                min_rtt: rack.min_rtt,
                rcv_buffer: c.recv_buffer_size(),
                mss: c.mss(),
                snd_una: sequence.snd_una,
                snd_nxt: sequence.snd_nxt,
                rcv_nxt: sequence.rcv_nxt,
                stats: c.stats(),
            }
        })
    }

    pub(crate) fn connections(&self) -> Vec<ConnectionInfo> {
        self.live_ids().filter_map(|id| self.info(id)).collect()
    }

    /// Every connection, in slot order (the order of their ids).
    fn live_ids(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.conn.is_some())
            .map(|(index, slot)| ConnectionId {
                index: index as u32,
                generation: slot.generation,
            })
    }

    pub(crate) fn listeners(&self) -> Vec<(ListenerId, SocketAddrV4)> {
        self.listeners
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().map(|l| (ListenerId(i as u32), l.local)))
            .collect()
    }

    pub(crate) fn release(&mut self, id: ConnectionId, now: Instant) {
        if let Some(conn) = self.conn_mut(id) {
            conn.app_owned = false;
        }
        self.settle(id, now);
    }

    pub(crate) fn set_keepalive(
        &mut self,
        id: ConnectionId,
        now: Instant,
        keepalive: Option<Keepalive>,
    ) -> Result<(), TcpError> {
        self.with_conn(id, now, |c| c.set_keepalive(keepalive, now))
    }

    /// The fuzz harness's check of the connection set: the 4-tuple table and the slab agree,
    /// the free list holds exactly the empty slots, each connection's deadline is the one
    /// filed in the wheel, each listener's queues match the connections that name it, and
    /// every control block passes its own check.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        for index in self.table.iter() {
            let tuple = tuple_in(&self.slots)(index)
                .ok_or_else(|| format!("the table names the empty slot {index}"))?;
            let found = self.table.find(tuple, tuple_in(&self.slots));
            if found != Some(index) {
                return Err(format!(
                    "slot {index} ({} {}) is found as {found:?}",
                    tuple.0, tuple.1
                ));
            }
        }
        let live = self.slots.iter().filter(|s| s.conn.is_some()).count();
        if live != self.table.len() {
            return Err(format!(
                "{live} connections, {} in the table",
                self.table.len()
            ));
        }
        let mut free = self.free.clone();
        free.sort_unstable();
        free.dedup();
        if free.len() != self.free.len()
            || free.len() + live != self.slots.len()
            || free.iter().any(|&i| self.slots[i as usize].conn.is_some())
        {
            return Err(format!(
                "free list {:?} over {} slots, {live} live",
                self.free,
                self.slots.len()
            ));
        }
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(conn) = slot.conn.as_deref() else {
                continue;
            };
            conn.check_invariants()
                .map_err(|e| format!("{} {} {}: {e}", conn.local, conn.remote, conn.state))?;
            if slot.timer.map(|(_, at)| at) != conn.next_deadline() {
                return Err(format!(
                    "connection {index}: deadline {:?} filed as {:?}",
                    conn.next_deadline(),
                    slot.timer.map(|(_, at)| at)
                ));
            }
        }
        for (index, listener) in self.listeners.iter().enumerate() {
            let Some(listener) = listener else { continue };
            let id = ListenerId(index as u32);
            let named = self
                .slots
                .iter()
                .filter_map(|s| s.conn.as_deref())
                .filter(|c| c.listener == Some(id))
                .count();
            let queued_ok = listener
                .accept_queue
                .iter()
                .all(|&c| self.conn(c).is_some_and(|c| c.listener == Some(id)));
            if !queued_ok
                || listener.accept_queue.len() > listener.backlog
                || named != listener.half_open + listener.accept_queue.len()
            {
                return Err(format!(
                    "listener {}: {named} connections, {} half-open + {} queued (backlog {})",
                    listener.local,
                    listener.half_open,
                    listener.accept_queue.len(),
                    listener.backlog
                ));
            }
        }
        Ok(())
    }
}

/// What became of an ICMP error handed to TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcmpOutcome {
    /// The connection acted on it.
    Taken,
    /// No connection has the quoted 4-tuple.
    Unmatched,
    /// The quoted sequence number is not in flight (RFC 5927 §4.1): ignored.
    NotInFlight,
}

/// The ICMP errors TCP acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcmpErrorKind {
    /// Port or protocol unreachable: a hard error in SYN-SENT.
    Refused,
    /// Network, host or source-route failure: soft errors (RFC 9293 MUST-56).
    Unreachable,
    /// Fragmentation needed, with the next-hop MTU.
    FragmentationNeeded(u16),
}
