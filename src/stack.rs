//! The stack handle and the driver task that owns the engine's device.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use rawtcp_core::{
    AddressState, Config, ConnectionId, ConnectionInfo, Event, FrameSink, InterfaceStats, Ipv4Cidr,
    ListenerId, State,
};
use rawtcp_netio::{Device, FrameBatch};
use rawtcp_wire::ethernet::EthernetAddress;
use tokio::sync::Notify;

/// The tasks waiting for one thing (in `accept`, on a listener; a connection's are
/// [`ConnWakers`]). Each is woken once when it happens; those that still cannot go on
/// register again. Nearly always one task waits: it is kept inline, so a wait allocates
/// nothing; several share a list. Either way the value takes 24 bytes, a `Vec`'s size.
#[derive(Debug, Default)]
pub(crate) enum Wakers {
    #[default]
    None,
    One(Waker),
    Many(Vec<Waker>),
}

impl Wakers {
    /// Adds `waker` unless the same task waits already.
    pub(crate) fn register(&mut self, waker: &Waker) {
        match self {
            Wakers::None => *self = Wakers::One(waker.clone()),
            Wakers::One(first) => {
                if !first.will_wake(waker) {
                    *self = Wakers::Many(vec![first.clone(), waker.clone()]);
                }
            }
            Wakers::Many(list) => {
                if !list.iter().any(|w| w.will_wake(waker)) {
                    list.push(waker.clone());
                }
            }
        }
    }

    /// Wakes and forgets every waiting task. A list's memory goes too: most connections
    /// sit idle with nobody waiting.
    pub(crate) fn wake_all(&mut self) {
        match std::mem::take(self) {
            Wakers::None => {}
            Wakers::One(waker) => waker.wake(),
            Wakers::Many(list) => list.into_iter().for_each(Waker::wake),
        }
    }
}

/// Which of a connection's wakers a blocked call waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// To read (or for readability, or in `peek`).
    Read,
    /// To write (or for writability, or in `connect`).
    Write,
}

/// The facade's state for one connection: the wakers of the tasks waiting on it, and how it
/// is to be closed. Every connection has one, idle or not, so it keeps inline only the first
/// task waiting on each side (nearly always the only one: a stream's reader, or its writer);
/// further tasks and the options rarely set wait in a box made when first needed and freed
/// when empty again. 40 bytes.
#[derive(Debug, Default)]
pub(crate) struct ConnWakers {
    read: Option<Waker>,
    write: Option<Waker>,
    rare: Option<Box<RareConnState>>,
}

/// What a connection seldom has: more than one task waiting on a side, SO_LINGER, an error
/// taken.
#[derive(Debug, Default)]
struct RareConnState {
    /// Tasks waiting beside the first, by side, in the order they came.
    more_read: Vec<Waker>,
    more_write: Vec<Waker>,
    /// SO_LINGER as set, read back by `linger()`; `Some(ZERO)` resets on close.
    linger: Option<std::time::Duration>,
    /// `take_error` returned the connection's error: SO_ERROR is clear now.
    error_taken: bool,
}

impl RareConnState {
    fn is_empty(&self) -> bool {
        self.more_read.is_empty()
            && self.more_write.is_empty()
            && self.linger.is_none()
            && !self.error_taken
    }
}

impl ConnWakers {
    /// Adds `waker` to those waiting on `side`, unless the same task waits already.
    pub(crate) fn register(&mut self, side: Wait, waker: &Waker) {
        let first = match side {
            Wait::Read => &mut self.read,
            Wait::Write => &mut self.write,
        };
        match first {
            None => *first = Some(waker.clone()),
            Some(first) if first.will_wake(waker) => {}
            Some(_) => {
                let rare = self.rare.get_or_insert_default();
                let more = match side {
                    Wait::Read => &mut rare.more_read,
                    Wait::Write => &mut rare.more_write,
                };
                if !more.iter().any(|w| w.will_wake(waker)) {
                    more.push(waker.clone());
                }
            }
        }
    }

    /// Wakes and forgets every task waiting on `side`, the first first.
    pub(crate) fn wake(&mut self, side: Wait) {
        let first = match side {
            Wait::Read => self.read.take(),
            Wait::Write => self.write.take(),
        };
        let Some(first) = first else {
            // The first place is filled before any other.
            return;
        };
        first.wake();
        if let Some(rare) = &mut self.rare {
            let more = match side {
                Wait::Read => std::mem::take(&mut rare.more_read),
                Wait::Write => std::mem::take(&mut rare.more_write),
            };
            more.into_iter().for_each(Waker::wake);
            self.release_if_empty();
        }
    }

    /// Wakes every waiting task, readers first.
    pub(crate) fn wake_all(&mut self) {
        self.wake(Wait::Read);
        self.wake(Wait::Write);
    }

    fn release_if_empty(&mut self) {
        if self.rare.as_deref().is_some_and(RareConnState::is_empty) {
            self.rare = None;
        }
    }

    /// SO_LINGER as set.
    pub(crate) fn linger(&self) -> Option<std::time::Duration> {
        self.rare.as_ref().and_then(|rare| rare.linger)
    }

    pub(crate) fn set_linger(&mut self, linger: Option<std::time::Duration>) {
        if linger.is_some() || self.rare.is_some() {
            self.rare.get_or_insert_default().linger = linger;
            self.release_if_empty();
        }
    }

    /// SO_LINGER 0: closing resets the connection instead (dropping the stream, or
    /// [`Stack::shutdown`]).
    pub(crate) fn reset_on_close(&self) -> bool {
        self.linger() == Some(std::time::Duration::ZERO)
    }

    /// Marks the connection's error as taken by `take_error`; true if it had been already.
    pub(crate) fn take_error_once(&mut self) -> bool {
        std::mem::replace(&mut self.rare.get_or_insert_default().error_taken, true)
    }
}

/// One entry of the [`ConnTable`]: the state of the connection in the engine's slot of the
/// same index, while `live`, for the generation it names.
#[derive(Debug, Default)]
struct ConnEntry {
    generation: u32,
    live: bool,
    wakers: ConnWakers,
}

impl ConnEntry {
    fn holds(&self, id: ConnectionId) -> bool {
        self.live && self.generation == id.generation()
    }
}

/// The facade's state per connection, in a table indexed by the engine's slot
/// ([`ConnectionId::slot`]): no hashing, and no more room than the engine's own slab.
#[derive(Debug, Default)]
pub(crate) struct ConnTable {
    slots: Vec<ConnEntry>,
}

impl ConnTable {
    pub(crate) fn get(&self, id: ConnectionId) -> Option<&ConnWakers> {
        self.slots
            .get(id.slot())
            .filter(|entry| entry.holds(id))
            .map(|entry| &entry.wakers)
    }

    pub(crate) fn get_mut(&mut self, id: ConnectionId) -> Option<&mut ConnWakers> {
        self.slots
            .get_mut(id.slot())
            .filter(|entry| entry.holds(id))
            .map(|entry| &mut entry.wakers)
    }

    /// The state of `id`, new if it has none (or if its slot still holds a connection
    /// that is gone).
    pub(crate) fn entry(&mut self, id: ConnectionId) -> &mut ConnWakers {
        let slot = id.slot();
        if slot >= self.slots.len() {
            // By an eighth at a time rather than doubling, as the engine's own slab grows:
            // the table never shrinks, and doubling left up to half of it empty.
            let wanted = slot + 1 - self.slots.len();
            if self.slots.capacity() < slot + 1 {
                self.slots
                    .reserve_exact(wanted.max(self.slots.len() / 8).max(64));
            }
            self.slots.resize_with(slot + 1, ConnEntry::default);
        }
        let entry = &mut self.slots[slot];
        if !entry.holds(id) {
            *entry = ConnEntry {
                generation: id.generation(),
                live: true,
                wakers: ConnWakers::default(),
            };
        }
        &mut entry.wakers
    }

    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<ConnWakers> {
        let entry = self
            .slots
            .get_mut(id.slot())
            .filter(|entry| entry.holds(id))?;
        entry.live = false;
        Some(std::mem::take(&mut entry.wakers))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ConnWakers> {
        self.slots
            .iter_mut()
            .filter(|entry| entry.live)
            .map(|entry| &mut entry.wakers)
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) engine: rawtcp_core::Stack,
    pub(crate) conns: ConnTable,
    /// Tasks waiting in `accept`, several per listener when it is shared.
    pub(crate) listeners: HashMap<ListenerId, Wakers>,
    /// [`Stack::shutdown`] was called: listeners are gone, connections are closing, and no
    /// new ones may be opened.
    pub(crate) shutting_down: bool,
    /// The driver has exited: every call fails with `NotConnected`.
    pub(crate) stopped: bool,
    /// [`Stack::state_changes`] subscribers, once the first subscribed; dropped (ending
    /// every stream) when the driver stops.
    pub(crate) watchers: Option<tokio::sync::broadcast::Sender<StateChange>>,
    /// [`Builder::on_state_change`].
    pub(crate) hook: Option<StateHook>,
    /// [`Stack::driver_stats`].
    pub(crate) driver: DriverStats,
}

/// What the driver task has seen of its device, as [`Stack::driver_stats`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Times the driver found frames waiting in the device although the device had not
    /// reported itself readable for a grace period: a lost readiness edge, recovered by
    /// reading anyway. Always 0 unless there is a bug; each one is also logged as a warning.
    pub lost_wakeups: u64,
    /// Receive calls the device failed (the error is logged at debug level).
    pub recv_errors: u64,
    /// Frames the device refused (the engine's loss to recover; logged at debug level).
    pub send_errors: u64,
    /// Frames the device lost before the driver could read them (an AF_PACKET socket's
    /// full receive buffer, PACKET_STATISTICS `tp_drops`): each costs the peer a
    /// retransmission. Read from the device at most every 100 ms; 0 for devices that
    /// cannot tell.
    pub device_rx_drops: u64,
    /// Receive buffers allocated because the engine still held the frame in the old one (as
    /// received data not yet read) when the driver reused it, and no buffer held before had
    /// been let go since (the receive batch pools those, up to
    /// `FrameBatch::DEFAULT_HEAD_POOL_LIMIT`). Frames not kept (ACKs, dropped ones) cost
    /// none; a bulk receiver allocates only until the pool covers what it holds at once.
    pub rx_buffers_kept: u64,
    /// Times the driver woke because the device became readable (or, with frames queued,
    /// writable).
    pub wakeups_device: u64,
    /// Times it woke for an engine deadline ([`rawtcp_core::Stack::poll_timeout`]) or the
    /// lost-wakeup watchdog.
    pub wakeups_timer: u64,
    /// Times it woke for an application's call (a read, write, connect, close...).
    pub wakeups_notify: u64,
}

impl DriverStats {
    /// Wakeups for any reason: what an idle stack should keep at zero.
    pub fn wakeups(&self) -> u64 {
        self.wakeups_device + self.wakeups_timer + self.wakeups_notify
    }

    fn count(&mut self, wakeup: Wakeup) {
        match wakeup {
            Wakeup::Device => self.wakeups_device += 1,
            Wakeup::Timer => self.wakeups_timer += 1,
            Wakeup::Notify => self.wakeups_notify += 1,
        }
    }
}

/// Why the driver's sleep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wakeup {
    Device,
    Timer,
    Notify,
}

/// A connection's state change, as [`Stack::state_changes`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// When, counted from the stack's start.
    pub at: std::time::Duration,
    /// The connection's local address.
    pub local: std::net::SocketAddrV4,
    /// Its peer's address.
    pub remote: std::net::SocketAddrV4,
    /// The state it left.
    pub from: State,
    /// The state it entered (equal to `from` when a timer restarted, as in TIME-WAIT).
    pub to: State,
    /// Why it changed.
    pub cause: rawtcp_core::Cause,
}

impl Inner {
    /// Fails once the stack is shutting down or stopped, for calls that would open something.
    pub(crate) fn check_open(&self) -> std::io::Result<()> {
        if self.shutting_down || self.stopped {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the stack is shut down",
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the driver after an application call that may have something to send.
    pub(crate) notify: Arc<Notify>,
    /// The engine's clock counts from here (tokio's clock, so `time::pause` drives it).
    epoch: tokio::time::Instant,
    /// Live [`Stack`] handles (listeners and streams hold one each).
    handles: AtomicUsize,
    /// Becomes `true` when the driver exits and drops the device.
    exited: tokio::sync::watch::Sender<bool>,
    /// The engine's [`AddressState`], for [`Builder::spawn`] to wait on.
    address: tokio::sync::watch::Sender<AddressState>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn now(&self) -> rawtcp_core::Instant {
        rawtcp_core::Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn to_tokio(&self, at: rawtcp_core::Instant) -> tokio::time::Instant {
        self.epoch + std::time::Duration::from_micros(at.as_micros())
    }
}

/// A userspace TCP/IPv4 stack on one device, driven by one tokio task.
///
/// Cloning gives another handle to the same stack. When the last handle, listener and stream
/// are gone, the driver goes on until every connection has finished closing (its queued data
/// and FIN delivered, or given up on by the retransmission and FIN-WAIT-2 timeouts), as the
/// kernel does for a closed socket; then it stops and drops the device. TIME-WAIT is not kept.
#[derive(Debug)]
pub struct Stack {
    pub(crate) shared: Arc<Shared>,
}

/// Configures a [`Stack`].
#[derive(Debug)]
pub struct Builder<D = ()> {
    device: D,
    ipv4: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
    mac: Option<EthernetAddress>,
    config: Option<Config>,
    on_state_change: Option<StateHook>,
    conflict_detection: Option<bool>,
}

/// The stream of [`Stack::state_changes`]: bounded, the oldest unread changes dropped
/// (and counted) when it falls [`CAPACITY`](Self::CAPACITY) behind.
#[derive(Debug)]
pub struct StateChanges {
    receiver: tokio::sync::broadcast::Receiver<StateChange>,
    missed: u64,
}

impl StateChanges {
    /// Changes held for a subscriber that does not read.
    pub const CAPACITY: usize = 1024;

    /// The next change; `None` once the stack has stopped. Changes lost by falling behind
    /// are skipped (and counted in [`missed`](Self::missed)).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) {
    /// let mut changes = stack.state_changes();
    /// if let Some(change) = changes.recv().await {
    ///     println!("{} → {}", change.from, change.to);
    /// }
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<StateChange> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match self.receiver.recv().await {
                Ok(change) => return Some(change),
                Err(RecvError::Lagged(missed)) => self.missed += missed,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The next change if one is waiting, without waiting.
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(stack: rawtcp::Stack) {
    /// let mut changes = stack.state_changes();
    /// while let Some(change) = changes.try_recv() {
    ///     println!("{} → {}", change.from, change.to);
    /// }
    /// # }
    /// ```
    pub fn try_recv(&mut self) -> Option<StateChange> {
        use tokio::sync::broadcast::error::TryRecvError;
        loop {
            match self.receiver.try_recv() {
                Ok(change) => return Some(change),
                Err(TryRecvError::Lagged(missed)) => self.missed += missed,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return None,
            }
        }
    }

    /// Changes this subscriber lost by falling more than [`CAPACITY`](Self::CAPACITY)
    /// behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// A [`Builder::on_state_change`] callback.
pub(crate) struct StateHook(Box<dyn FnMut(&StateChange) + Send>);

impl std::fmt::Debug for StateHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateHook")
    }
}

impl Clone for Stack {
    fn clone(&self) -> Stack {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Stack {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Perhaps the last handle: let the driver look.
        self.shared.handles.fetch_sub(1, Ordering::AcqRel);
        self.shared.notify.notify_one();
    }
}

impl Stack {
    /// Starts configuring a stack.
    ///
    /// # Examples
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let (end, _other) = rawtcp::netio::MemLink::pair();
    /// let stack = rawtcp::Stack::builder().device(end).ipv4(std::net::Ipv4Addr::new(10, 9, 0, 1), 24).spawn().await?;
    /// # drop(stack); Ok(()) }
    /// ```
    pub fn builder() -> Builder<()> {
        Builder {
            device: (),
            ipv4: None,
            gateway: None,
            mac: None,
            config: None,
            on_state_change: None,
            conflict_detection: None,
        }
    }

    /// Every connection, `netstat -napt`-style.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// for c in stack.connections() {
    ///     println!("{} {} {} rto {:?}", c.local, c.remote, c.state, c.rto);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared.lock().engine.connections()
    }

    /// Every state change of every connection from now on, in order, with its cause: how
    /// the examples show a connection's life. The stream holds at most
    /// [`StateChanges::CAPACITY`] changes not yet read: a subscriber that falls further
    /// behind loses the oldest, counted in [`StateChanges::missed`] (it lags as a
    /// `tokio::sync::broadcast` receiver does). Dropping it unsubscribes; it ends when the
    /// stack stops.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) {
    /// let mut changes = stack.state_changes();
    /// while let Some(change) = changes.recv().await {
    ///     println!("{} → {}: {} → {} ({:?})", change.local, change.remote, change.from, change.to, change.cause);
    /// }
    /// # }
    /// ```
    pub fn state_changes(&self) -> StateChanges {
        let mut inner = self.shared.lock();
        let receiver = match &inner.watchers {
            Some(watchers) => watchers.subscribe(),
            None if inner.stopped => tokio::sync::broadcast::channel(1).1, // ends at once
            None => {
                let (watchers, receiver) = tokio::sync::broadcast::channel(StateChanges::CAPACITY);
                inner.watchers = Some(watchers);
                receiver
            }
        };
        StateChanges {
            receiver,
            missed: 0,
        }
    }

    /// The addresses listened on.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// for addr in stack.listeners() {
    ///     println!("LISTEN {addr}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn listeners(&self) -> Vec<std::net::SocketAddrV4> {
        let inner = self.shared.lock();
        inner
            .engine
            .listeners()
            .into_iter()
            .map(|(_, a)| a)
            .collect()
    }

    /// Interface counters, drops by reason included.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) -> std::io::Result<()> {
    /// let stats = stack.stats();
    /// for (reason, count) in stats.nonzero_drops() {
    ///     println!("dropped {count}: {reason}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> InterfaceStats {
        self.shared.lock().engine.stats().clone()
    }

    /// What the engine's TCP holds now and at most (buffered bytes, connections), to compare
    /// with the limits of [`TcpConfig`](rawtcp_core::TcpConfig).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn f(stack: rawtcp::Stack) {
    /// let memory = stack.tcp_memory();
    /// println!("{} bytes buffered in {} connections", memory.buffered, memory.connections);
    /// # }
    /// ```
    pub fn tcp_memory(&self) -> rawtcp_core::TcpMemory {
        self.shared.lock().engine.tcp_memory()
    }

    /// What the driver task has counted of its device: receive and send errors, and lost
    /// wakeups (frames left waiting in the device while the driver slept), which must never
    /// happen.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn f(stack: rawtcp::Stack) {
    /// assert_eq!(stack.driver_stats().lost_wakeups, 0);
    /// # }
    /// ```
    pub fn driver_stats(&self) -> DriverStats {
        self.shared.lock().driver
    }

    /// Stops the stack cleanly and waits until the driver has exited and dropped the device
    /// (so a [`Pcap`](rawtcp_netio::Pcap) capture is complete once this returns).
    ///
    /// Listeners stop at once (connections not yet accepted are reset, as the kernel does on
    /// `close` of a listening socket). Every connection is closed as if its stream had been
    /// dropped: its queued data and a FIN go out, or a RST when it has unread data or a linger
    /// of zero. The driver runs until each has finished closing (TIME-WAIT is not kept) or
    /// has been given up on by the retransmission and FIN-WAIT-2 timeouts; wrap the call in
    /// [`tokio::time::timeout`] to wait less. Calls on streams and listeners still held
    /// afterwards fail with `NotConnected`, as do new binds and connects.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use std::net::Ipv4Addr;
    /// let (left, _right) = rawtcp::netio::MemLink::pair();
    /// let stack = rawtcp::Stack::builder().device(left).ipv4(Ipv4Addr::new(10, 9, 0, 1), 24).spawn().await?;
    /// stack.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(self) {
        let mut exited = self.shared.exited.subscribe();
        self.shared.lock().shutting_down = true;
        self.shared.notify.notify_one();
        drop(self);
        // The driver holds the sender until it exits, so this cannot fail before.
        let _ = exited.wait_for(|&exited| exited).await;
    }
}

impl<D> Builder<D> {
    /// The device frames move through.
    ///
    /// # Examples
    /// ```no_run
    /// # fn f() -> std::io::Result<()> {
    /// let builder = rawtcp::Stack::builder().device(rawtcp::netio::AfPacket::open("eth1")?);
    /// # drop(builder);
    /// # Ok(()) }
    /// ```
    pub fn device<T: Device + Send + 'static>(self, device: T) -> Builder<T> {
        Builder {
            device,
            ipv4: self.ipv4,
            gateway: self.gateway,
            mac: self.mac,
            config: self.config,
            on_state_change: self.on_state_change,
            conflict_detection: self.conflict_detection,
        }
    }

    /// Our IPv4 address and prefix length.
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(device: rawtcp::netio::MemLinkEnd) {
    /// let builder = rawtcp::Stack::builder().device(device).ipv4(std::net::Ipv4Addr::new(192, 168, 7, 2), 24);
    /// # drop(builder); }
    /// ```
    pub fn ipv4(mut self, address: Ipv4Addr, prefix_len: u8) -> Self {
        self.ipv4 = Some(Ipv4Cidr::new(address, prefix_len));
        self
    }

    /// The next hop for destinations off the subnet.
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(device: rawtcp::netio::MemLinkEnd) {
    /// use std::net::Ipv4Addr;
    /// let builder = rawtcp::Stack::builder()
    ///     .device(device)
    ///     .ipv4(Ipv4Addr::new(192, 168, 7, 2), 24)
    ///     .gateway(Ipv4Addr::new(192, 168, 7, 1));
    /// # drop(builder); }
    /// ```
    pub fn gateway(mut self, gateway: Ipv4Addr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Our MAC address (default: the device's, or a locally administered one).
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(device: rawtcp::netio::MemLinkEnd) {
    /// use rawtcp::wire::ethernet::EthernetAddress;
    /// let builder = rawtcp::Stack::builder().device(device).mac(EthernetAddress([0x02, 0, 0, 0, 0, 0x42]));
    /// # drop(builder); }
    /// ```
    pub fn mac(mut self, mac: EthernetAddress) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Calls `hook` with every state change of every connection, in the driver task, at the
    /// moment the engine reports it: after the segment that caused it arrived and before the
    /// answer goes out, so it interleaves exactly with a frame trace
    /// ([`Inspect`](rawtcp_netio::Inspect)). It runs with the stack locked: it must not
    /// block or call into the stack. [`Stack::state_changes`] is the async alternative.
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(device: rawtcp::netio::MemLinkEnd) {
    /// let builder = rawtcp::Stack::builder().device(device).on_state_change(|change| {
    ///     println!("{} {} → {}", change.local, change.from, change.to);
    /// });
    /// # drop(builder); }
    /// ```
    pub fn on_state_change(mut self, hook: impl FnMut(&StateChange) + Send + 'static) -> Self {
        self.on_state_change = Some(StateHook(Box::new(hook)));
        self
    }

    /// Whether to claim the address with RFC 5227 address conflict detection before using
    /// it: ARP-probe it, fail [`spawn`](Builder::spawn) with `AddrInUse` when another host
    /// answers, announce it, and log and count conflicts afterwards. By default it is on for
    /// devices whose link other hosts may share ([`Capabilities::shared_link`]: AF_PACKET,
    /// TAP) and off for an in-memory link.
    ///
    /// [`Capabilities::shared_link`]: rawtcp_netio::Capabilities::shared_link
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(device: rawtcp::netio::AfPacket) {
    /// // A test bed this program built itself: nobody else can hold the address.
    /// let builder = rawtcp::Stack::builder().device(device).conflict_detection(false);
    /// # drop(builder); }
    /// ```
    pub fn conflict_detection(mut self, on: bool) -> Self {
        self.conflict_detection = Some(on);
        self
    }

    /// Engine configuration (timers, buffers, seed); the builder's address settings win, and
    /// so does its choice of conflict detection (the delays of `config.conflict_detection`
    /// apply). Without it, the defaults apply with a random seed; with it, its seed is used
    /// as is, so a fixed seed gives the same ISNs and ports every run.
    ///
    /// # Examples
    /// ```no_run
    /// # fn f(device: rawtcp::netio::MemLinkEnd) {
    /// use rawtcp::core::{Config, Ipv4Cidr};
    /// use std::net::Ipv4Addr;
    /// let mut config = Config::new(Default::default(), Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, 1), 24));
    /// config.seed = 7; // the same ISNs and ports every run
    /// let builder = rawtcp::Stack::builder().device(device).ipv4(Ipv4Addr::new(10, 9, 0, 1), 24).config(config);
    /// # drop(builder); }
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }
}

/// What a stack asks of its device besides frames: its own MAC address and the name of its
/// interface (for messages).
pub trait DeviceMac {
    /// The device's MAC, if it has one.
    fn mac(&self) -> Option<EthernetAddress> {
        None
    }

    /// The interface's name, if it has one.
    fn interface_name(&self) -> Option<String> {
        None
    }
}

impl DeviceMac for rawtcp_netio::AfPacket {
    fn mac(&self) -> Option<EthernetAddress> {
        Some(rawtcp_netio::AfPacket::mac(self))
    }

    fn interface_name(&self) -> Option<String> {
        Some(self.name().to_string())
    }
}
impl DeviceMac for rawtcp_netio::MemLinkEnd {}
impl DeviceMac for rawtcp_netio::Tap {
    fn interface_name(&self) -> Option<String> {
        Some(self.name().to_string())
    }
}
impl<D: Device + DeviceMac> DeviceMac for rawtcp_netio::Pcap<D> {
    fn mac(&self) -> Option<EthernetAddress> {
        self.get_ref().mac()
    }

    fn interface_name(&self) -> Option<String> {
        self.get_ref().interface_name()
    }
}
impl<D: Device + DeviceMac, F: FnMut(rawtcp_netio::Flow, &[u8])> DeviceMac
    for rawtcp_netio::Inspect<D, F>
{
    fn mac(&self) -> Option<EthernetAddress> {
        self.get_ref().mac()
    }

    fn interface_name(&self) -> Option<String> {
        self.get_ref().interface_name()
    }
}

impl<D: Device + DeviceMac + Send + 'static> Builder<D> {
    /// Starts the driver task on the current tokio runtime and returns the stack once its
    /// address is ours to use.
    ///
    /// With conflict detection on (the default on AF_PACKET and TAP, see
    /// [`conflict_detection`](Builder::conflict_detection)) the stack first claims its
    /// address as RFC 5227 says: ARP probes, then silence, then an announcement. With the
    /// RFC's delays that takes 4 to 7 seconds of tokio time; `config.conflict_detection`
    /// sets shorter ones ([`ConflictDetection::scaled`]). On an in-memory link it returns at
    /// once.
    ///
    /// [`ConflictDetection::scaled`]: rawtcp_core::ConflictDetection::scaled
    ///
    /// # Errors
    /// `AddrInUse` when another host (another rawtcp stack, the kernel, any host on the link)
    /// answers a probe, claims the address or probes for it at the same moment; the message
    /// names the address, the interface and the MAC that answered. The stack is stopped.
    ///
    /// # Panics
    /// Without an IPv4 address, or outside a tokio runtime.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let (end, _other) = rawtcp::netio::MemLink::pair();
    /// let stack = rawtcp::Stack::builder().device(end).ipv4(std::net::Ipv4Addr::new(10, 9, 0, 1), 24).spawn().await?;
    /// stack.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn spawn(self) -> std::io::Result<Stack> {
        let cidr = self.ipv4.expect("Stack::builder().ipv4(...) is required");
        let mac = self.mac.or_else(|| self.device.mac()).unwrap_or_else(|| {
            // A locally administered address derived from our IPv4 address.
            let o = cidr.address.octets();
            EthernetAddress([0x02, 0x72, o[0], o[1], o[2], o[3]])
        });
        let mut config = self.config.unwrap_or_else(|| {
            let mut config = Config::new(mac, cidr);
            // RFC 6528 §3: the ISN secret must not be guessable, and ports should differ
            // from run to run (RFC 6056). The seed comes from the OS's randomness unless the
            // caller chose one (a deterministic run) through `config`.
            config.seed = random_seed();
            config
        });
        config.mac = mac;
        config.ipv4 = cidr;
        config.gateway = self.gateway.or(config.gateway);
        let capabilities = self.device.capabilities();
        config.mtu = capabilities.mtu;
        config.conflict_detection.enabled =
            self.conflict_detection.unwrap_or(capabilities.shared_link);
        let interface = self.device.interface_name();
        // A device that cuts TCP super-segments and completes their checksums (AF_PACKET
        // with the virtio-net header) gets data in frames of up to 64 KiB: one copy and one
        // frame where there were forty.
        config.tcp.segmentation_offload = capabilities.gso && capabilities.tx_checksum_offload;
        let engine = rawtcp_core::Stack::new(config);
        let address = tokio::sync::watch::channel(engine.address_state()).0;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                engine,
                conns: ConnTable::default(),
                listeners: HashMap::new(),
                shutting_down: false,
                stopped: false,
                watchers: None,
                driver: DriverStats::default(),
                hook: self.on_state_change,
            }),
            notify: Arc::new(Notify::new()),
            epoch: tokio::time::Instant::now(),
            handles: AtomicUsize::new(1),
            exited: tokio::sync::watch::channel(false).0,
            address,
        });
        let notify = Arc::clone(&shared.notify);
        let mut state = shared.address.subscribe();
        tokio::spawn(drive(Arc::clone(&shared), notify, self.device));
        let stack = Stack { shared };
        // The driver runs the probes; the sender lives in `stack`, so this cannot fail.
        let state = *state
            .wait_for(|state| *state != AddressState::Probing)
            .await
            .expect("the stack holds the sender");
        match state {
            AddressState::InUse { by } => {
                // Dropping the only handle stops the driver: nothing was opened.
                drop(stack);
                Err(address_in_use(cidr.address, interface.as_deref(), by, mac))
            }
            AddressState::Claimed | AddressState::Probing => Ok(stack),
        }
    }
}

/// The error of a start that found its address taken, saying who has it.
fn address_in_use(
    address: Ipv4Addr,
    interface: Option<&str>,
    by: EthernetAddress,
    ours: EthernetAddress,
) -> std::io::Error {
    let on = interface.map_or_else(|| "the link".to_string(), |name| name.to_string());
    let mut message = format!(
        "address {address} is already in use on {on} by {by} \
         (it answered or claimed our RFC 5227 ARP probes)"
    );
    if by == ours {
        // The kernel never returns our own frames: the same MAC is another program here.
        message.push_str(&format!(
            "; {by} is {on}'s own MAC, so another program on this host holds {address} on \
             {on} (another rawtcp stack, or the kernel)"
        ));
    }
    std::io::Error::new(std::io::ErrorKind::AddrInUse, message)
}

/// 64 bits from the OS's randomness (std seeds `RandomState` from it).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// An Ethernet header with a VLAN tag.
const RX_LINK_HEADER_MAX: usize = 18;

/// The largest frame received: a 64 KiB IPv4 datagram with an Ethernet header and a VLAN tag.
const RX_FRAME_MAX: usize = 65_535 + RX_LINK_HEADER_MAX;

/// Lets the engine write frames straight into the device's transmit batch.
struct BatchSink<'a>(&'a mut FrameBatch);

impl FrameSink for BatchSink<'_> {
    fn push(&mut self, len: usize) -> Option<&mut [u8]> {
        self.0.push(len)
    }

    /// Offered only when the device cuts super-segments (see `segmentation_offload` in
    /// [`Builder::spawn`]): the frame's metadata tells it how.
    fn push_gso(&mut self, len: usize, segment_size: u16, header_len: u16) -> Option<&mut [u8]> {
        let index = self.0.len();
        self.0.push(len)?;
        let meta = self.0.meta_mut(index);
        meta.gso = Some(rawtcp_netio::Gso {
            segment_size,
            header_len,
        });
        meta.tx_checksum = rawtcp_wire::TxChecksum::Partial;
        Some(self.0.frame_mut(index))
    }
}

/// The driver: frames in, timers, frames out, events to wakers; then sleep until a frame, a
/// deadline or an application call needs it.
async fn drive<D: Device>(stack: Arc<Shared>, notify: Arc<Notify>, device: D) {
    run(&stack, &notify, device).await;
    // The device is dropped (a capture flushed and closed): wake everything still waiting so
    // it sees the stack stopped.
    let mut inner = stack.lock();
    inner.stopped = true;
    // Ends every state_changes() stream.
    inner.watchers = None;
    for wakers in inner.conns.iter_mut() {
        wakers.wake_all();
    }
    for (_, mut wakers) in inner.listeners.drain() {
        wakers.wake_all();
    }
    drop(inner);
    tracing::debug!("stack stopped");
    stack.exited.send_replace(true);
}

/// The driver's loop; returns when the stack is to stop.
async fn run<D: Device>(stack: &Shared, notify: &Notify, mut device: D) {
    let capabilities = device.capabilities();
    let max = capabilities.max_frame_len;
    // Receive slots hold a GSO super-frame: a peer kernel on the same host (a veth) hands
    // AF_PACKET its TCP super-segments whole, up to 64 KiB, when its offloads are on. Their
    // heads, which a frame the engine keeps pins, hold an MTU-sized frame with a VLAN tag:
    // only a super-frame is copied (once, into a buffer of its own length).
    let head_len = capabilities.mtu + RX_LINK_HEADER_MAX;
    let mut rx = FrameBatch::with_head_len(64, max.max(RX_FRAME_MAX), head_len);
    // With segmentation offload a frame may hold a 64 KiB super-segment.
    let tx_frame = if capabilities.gso {
        max.max(RX_FRAME_MAX)
    } else {
        max
    };
    let mut tx = FrameBatch::new(64, tx_frame);
    let mut closed_all = false;
    let mut lost_wakeup = false;
    let mut woken_by = None;
    // On the engine's clock, read once per turn below.
    let mut drops_read_at = stack.now();
    loop {
        let (deadline, more_to_send) = {
            let mut inner = stack.lock();
            if inner.shutting_down && !closed_all {
                close_all(stack, &mut inner);
                closed_all = true;
            }
            let now = stack.now();
            // Drops are counted by the engine; with trace on, report each new one.
            let before =
                tracing::enabled!(tracing::Level::TRACE).then(|| inner.engine.stats().clone());
            if let Some(wakeup) = woken_by.take() {
                inner.driver.count(wakeup);
            }
            if lost_wakeup {
                inner.driver.lost_wakeups += 1;
                tracing::warn!(
                    "frames waited in the device with no readiness reported: a lost wakeup"
                );
            }
            // Receive first, and drain: frames left in the device's queue while we send are
            // the ones its kernel drops when the queue fills.
            for _ in 0..RX_BATCHES_PER_TURN {
                rx.clear();
                inner.driver.rx_buffers_kept = rx.fresh_heads();
                if let Err(error) = device.recv(&mut rx) {
                    // A device error is not the application's fault; keep going.
                    inner.driver.recv_errors += 1;
                    tracing::debug!(%error, "device receive failed");
                }
                // Each frame as Bytes of its own receive head: the engine may keep slices
                // of it (received data) without a copy; the next clear() takes back the
                // heads it did not keep.
                for index in 0..rx.len() {
                    let checksum = rx.meta(index).checksum.rx_checksum();
                    let frame = rx.take_frame(index);
                    inner.engine.handle_frame_bytes(now, frame, checksum);
                }
                if rx.len() < rx.capacity() {
                    // The device had no more.
                    break;
                }
            }
            if inner.engine.poll_timeout().is_some_and(|t| t <= now) {
                inner.engine.handle_timeout(now);
            }
            // Events before the answers go out, so state changes are reported in order with
            // the frames that caused them and the frames they cause.
            dispatch(stack, &mut inner);
            // Send, but only so much before receiving again: an engine with megabytes to send
            // would otherwise leave arriving frames to overflow the device's receive queue.
            let mut more_to_send = false;
            for turn in 1..=TX_BATCHES_PER_TURN {
                let written = inner.engine.poll_transmit(now, &mut BatchSink(&mut tx));
                if !tx.is_empty() {
                    // A refused frame is the engine's loss to recover (it retransmits).
                    if let Err(error) = device.send(&mut tx) {
                        inner.driver.send_errors += 1;
                        tracing::debug!(%error, "device refused a frame");
                    }
                }
                // Done when the engine has nothing more, or the device is full.
                if written == 0 || !tx.is_empty() {
                    break;
                }
                more_to_send = turn == TX_BATCHES_PER_TURN;
            }
            dispatch(stack, &mut inner);
            if let Some(before) = before {
                trace_drops(&before, inner.engine.stats());
            }
            if now.saturating_duration_since(drops_read_at) >= DEVICE_STATS_INTERVAL {
                drops_read_at = now;
                read_device_drops(&mut device, &mut inner.driver);
            }
            let no_handles = stack.handles.load(Ordering::Acquire) == 0;
            if (no_handles || inner.shutting_down) && finished(&inner) && tx.is_empty() {
                // Nothing is left to deliver (the last RST or ACK has gone out), and nobody
                // can ask for more.
                read_device_drops(&mut device, &mut inner.driver);
                return;
            }
            let deadline = inner.engine.poll_timeout().map(|t| stack.to_tokio(t));
            (deadline, more_to_send)
        };
        if more_to_send {
            // Receive, then send the rest; let the application's tasks run in between.
            lost_wakeup = false;
            tokio::task::yield_now().await;
            continue;
        }
        let woke = sleep(notify, &mut device, !tx.is_empty(), deadline).await;
        (woken_by, lost_wakeup) = (Some(woke.0), woke.1);
    }
}

/// Receive batches the driver drains, while they come back full, before it sends.
const RX_BATCHES_PER_TURN: usize = 8;

/// Transmit batches the driver sends before it receives again.
const TX_BATCHES_PER_TURN: usize = 4;

/// How often the driver reads the device's receive drop counter.
const DEVICE_STATS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies the device's receive drop counter into the driver's, logging new drops.
fn read_device_drops<D: Device>(device: &mut D, stats: &mut DriverStats) {
    if let Some(drops) = device.rx_dropped() {
        if drops > stats.device_rx_drops {
            tracing::debug!(
                new = drops - stats.device_rx_drops,
                total = drops,
                "the device dropped received frames (its receive buffer was full)"
            );
        }
        stats.device_rx_drops = drops;
    }
}

/// How long frames may wait in the device, unreported by its readiness, before the driver
/// calls it a lost wakeup. A frame that arrives just as the driver goes to sleep is reported
/// by the reactor's next turn, microseconds later; this is far beyond that.
const LOST_WAKEUP_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Waits for the next reason to run: a frame, an application call, a deadline, or room in
/// the device for frames still queued (`pending_tx`). Returns what ended the wait, and
/// whether the watchdog found a lost wakeup: frames waiting in the device all along while it
/// never reported itself readable. The next receive reads them anyway (it tries the syscall
/// whatever tokio's cached readiness says).
async fn sleep<D: Device>(
    notify: &Notify,
    device: &mut D,
    pending_tx: bool,
    deadline: Option<tokio::time::Instant>,
) -> (Wakeup, bool) {
    // Frames may be waiting already (one arriving as we go to sleep, whose edge the reactor
    // has not processed yet): then watch that the edge does come.
    let watchdog = (device.recv_pending() == Some(true))
        .then(|| tokio::time::Instant::now() + LOST_WAKEUP_GRACE);
    let notified = notify.notified();
    tokio::pin!(notified);
    let wake_up = poll_fn(|cx| {
        if notified.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Wakeup::Notify);
        }
        if device.poll_recv_ready(cx).is_ready()
            || (pending_tx && device.poll_send_ready(cx).is_ready())
        {
            return Poll::Ready(Wakeup::Device);
        }
        Poll::Pending
    });
    let until = match (deadline, watchdog) {
        (Some(deadline), Some(watchdog)) => Some(deadline.min(watchdog)),
        (deadline, watchdog) => deadline.or(watchdog),
    };
    let Some(until) = until else {
        return (wake_up.await, false);
    };
    // Timed out means every reason above was still pending when the timer fired, after the
    // reactor's turn that fired it had processed every readiness event the kernel had.
    match tokio::time::timeout_at(until, wake_up).await {
        Ok(wakeup) => (wakeup, false),
        Err(_) => (
            Wakeup::Timer,
            watchdog.is_some_and(|at| at <= tokio::time::Instant::now())
                && device.recv_pending() == Some(true),
        ),
    }
}

/// [`Stack::shutdown`]: stops every listener and closes every connection.
fn close_all(stack: &Shared, inner: &mut Inner) {
    let now = stack.now();
    for (listener, _) in inner.engine.listeners() {
        let _ = inner.engine.tcp_unlisten(now, listener);
    }
    // Connections whose stream was dropped are closing already; the rest still have a
    // stream (or a connect in progress).
    for info in inner.engine.connections() {
        let id = info.id;
        let Some(wakers) = inner.conns.get(id) else {
            continue;
        };
        let _ = if wakers.reset_on_close() {
            inner.engine.tcp_abort(now, id)
        } else {
            inner.engine.tcp_close(now, id)
        };
    }
}

/// Reports, at trace level, the drops counted since `before`.
fn trace_drops(before: &InterfaceStats, after: &InterfaceStats) {
    for (reason, count) in after.nonzero_drops() {
        let new = count - before.drops(reason);
        if new > 0 {
            tracing::trace!(%reason, count = new, "dropped");
        }
    }
}

/// Whether every connection is past the point of sending anything (TIME-WAIT or closed).
fn finished(inner: &Inner) -> bool {
    inner
        .engine
        .connections()
        .iter()
        .all(|c| matches!(c.state, State::TimeWait | State::Closed))
}

/// Wakes the tasks the engine's events concern.
fn dispatch(stack: &Shared, inner: &mut Inner) {
    while let Some(event) = inner.engine.poll_event() {
        match event {
            Event::Readable(id) => {
                if let Some(wakers) = inner.conns.get_mut(id) {
                    wakers.wake(Wait::Read);
                }
            }
            Event::Writable(id) => {
                if let Some(wakers) = inner.conns.get_mut(id) {
                    wakers.wake(Wait::Write);
                }
            }
            Event::Connected(id) | Event::Error(id, _) | Event::Closed(id) => {
                if let Some(wakers) = inner.conns.get_mut(id) {
                    wakers.wake_all();
                }
            }
            Event::Acceptable(listener) => {
                // Every waiting task looks; those that find nothing wait again.
                if let Some(mut wakers) = inner.listeners.remove(&listener) {
                    wakers.wake_all();
                }
            }
            Event::StateChanged {
                connection,
                local,
                remote,
                from,
                to,
                cause,
            } => {
                tracing::debug!(?connection, %local, %remote, %from, %to, ?cause, "state changed");
                let watched = inner
                    .watchers
                    .as_ref()
                    .is_some_and(|w| w.receiver_count() > 0);
                if watched || inner.hook.is_some() {
                    let change = StateChange {
                        at: stack.epoch.elapsed(),
                        local,
                        remote,
                        from,
                        to,
                        cause,
                    };
                    if let Some(watchers) = &inner.watchers {
                        // Fails only when nobody subscribes any more: nothing to do then.
                        let _ = watchers.send(change);
                    }
                    if let Some(hook) = inner.hook.as_mut() {
                        (hook.0)(&change);
                    }
                }
            }
            Event::NeighborUnreachable { address } => {
                tracing::debug!(%address, "next hop unreachable (no ARP reply)");
            }
            Event::AddressClaimed { address } => {
                tracing::debug!(%address, "address claimed (RFC 5227 probes unanswered)");
                stack.address.send_replace(AddressState::Claimed);
            }
            Event::AddressInUse { address, by } => {
                tracing::debug!(%address, %by, "address in use (RFC 5227 probe answered)");
                stack.address.send_replace(AddressState::InUse { by });
            }
            Event::AddressConflict {
                address,
                by,
                defended,
            } => {
                // RFC 5227 §2.4: a host that keeps its address must still say so.
                let conflicts = inner.engine.stats().address_conflicts;
                tracing::warn!(
                    %address, %by, defended, conflicts,
                    "address conflict: another host claims our address (RFC 5227 §2.4)"
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawtcp_netio::Capabilities;
    use std::io;
    use std::task::Context;

    /// A device whose readiness never comes, with frames waiting or not.
    struct Silent {
        frames_waiting: bool,
    }

    impl Device for Silent {
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                mtu: 1500,
                max_frame_len: 1514,
                tx_checksum_offload: false,
                gso: false,
                shared_link: false,
            }
        }
        fn recv(&mut self, _batch: &mut FrameBatch) -> io::Result<usize> {
            Ok(0)
        }
        fn send(&mut self, _batch: &mut FrameBatch) -> io::Result<usize> {
            Ok(0)
        }
        fn poll_recv_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_send_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn recv_pending(&self) -> Option<bool> {
            Some(self.frames_waiting)
        }
    }

    /// Frames wait in the device and it never says so: after the grace period the driver
    /// wakes and reports a lost wakeup, though it had nothing else to wake for.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_reports_frames_left_waiting() {
        let notify = Notify::new();
        let mut device = Silent {
            frames_waiting: true,
        };
        let start = tokio::time::Instant::now();
        assert_eq!(
            sleep(&notify, &mut device, false, None).await,
            (Wakeup::Timer, true)
        );
        assert_eq!(start.elapsed(), LOST_WAKEUP_GRACE);
    }

    /// An engine deadline before the grace period ends is no lost wakeup yet; nor is a sleep
    /// with nothing waiting, whatever wakes it.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_is_quiet_otherwise() {
        let notify = Notify::new();
        let mut waiting = Silent {
            frames_waiting: true,
        };
        let soon = tokio::time::Instant::now() + LOST_WAKEUP_GRACE / 2;
        assert_eq!(
            sleep(&notify, &mut waiting, false, Some(soon)).await,
            (Wakeup::Timer, false)
        );
        let mut empty = Silent {
            frames_waiting: false,
        };
        let later = tokio::time::Instant::now() + LOST_WAKEUP_GRACE * 3;
        assert_eq!(
            sleep(&notify, &mut empty, false, Some(later)).await,
            (Wakeup::Timer, false)
        );
        notify.notify_one();
        assert_eq!(
            sleep(&notify, &mut waiting, false, None).await,
            (Wakeup::Notify, false)
        );
    }

    /// The driver's wakeups are counted by cause.
    #[test]
    fn wakeups_are_counted_by_cause() {
        let mut stats = DriverStats::default();
        for wakeup in [Wakeup::Device, Wakeup::Timer, Wakeup::Timer, Wakeup::Notify] {
            stats.count(wakeup);
        }
        assert_eq!(
            (
                stats.wakeups_device,
                stats.wakeups_timer,
                stats.wakeups_notify
            ),
            (1, 2, 1)
        );
        assert_eq!(stats.wakeups(), 4);
    }

    /// A waker that counts its wakes.
    struct Counter(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection's first waiting task on each side is kept inline; further ones, linger
    /// and a taken error go in a box that goes again once nothing is left in it. Each task
    /// is woken once, on its side only. An entry of the table takes 48 bytes.
    #[test]
    fn conn_wakers_keep_the_first_task_of_each_side_inline() {
        assert_eq!(std::mem::size_of::<ConnWakers>(), 40);
        assert_eq!(std::mem::size_of::<ConnEntry>(), 48);
        let counters: Vec<Arc<Counter>> = (0..3)
            .map(|_| Arc::new(Counter(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counters.iter().map(|c| Waker::from(c.clone())).collect();
        let woken = || -> Vec<usize> {
            counters
                .iter()
                .map(|c| c.0.load(Ordering::Relaxed))
                .collect()
        };
        let mut conn = ConnWakers::default();
        conn.register(Wait::Read, &wakers[0]);
        conn.register(Wait::Read, &wakers[0]);
        conn.register(Wait::Write, &wakers[1]);
        assert!(conn.rare.is_none(), "one task a side: nothing boxed");
        conn.wake(Wait::Read);
        assert_eq!(woken(), [1, 0, 0]);
        for waker in wakers.iter().chain(&wakers) {
            conn.register(Wait::Read, waker);
        }
        assert!(conn.rare.is_some());
        conn.wake(Wait::Read);
        conn.wake(Wait::Read);
        assert_eq!(woken(), [2, 1, 1]);
        assert!(conn.write.is_some(), "the writer waits on");
        assert!(conn.rare.is_none(), "an empty box goes");
        // Linger stays until cleared; a taken error stays taken.
        conn.set_linger(Some(std::time::Duration::ZERO));
        conn.wake_all();
        assert_eq!(woken(), [2, 2, 1]);
        assert!(conn.reset_on_close());
        conn.set_linger(None);
        assert!((conn.linger(), conn.rare.is_none()) == (None, true));
        assert!(!conn.take_error_once());
        assert!(conn.take_error_once());
        // The table: a stale id finds nothing, and its slot starts over for the new one.
        let mut table = ConnTable::default();
        let mut engine = rawtcp_core::Stack::new(Config::new(
            EthernetAddress([2, 0, 0, 0, 0, 1]),
            Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 1), 24),
        ));
        let remote = std::net::SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
        let now = rawtcp_core::Instant::ZERO;
        let first = engine.tcp_connect(now, remote, None).expect("connect");
        table
            .entry(first)
            .set_linger(Some(std::time::Duration::from_secs(1)));
        assert!(table.get(first).is_some());
        let _ = engine.tcp_abort(now, first);
        let removed = table.remove(first).expect("held");
        assert_eq!(removed.linger(), Some(std::time::Duration::from_secs(1)));
        assert!(table.get(first).is_none() && table.remove(first).is_none());
        let second = engine.tcp_connect(now, remote, None).expect("connect");
        assert_eq!(second.slot(), first.slot());
        assert!(table.get(second).is_none());
        assert_eq!(table.entry(second).linger(), None);
        assert!(table.get(first).is_none());
    }

    /// One waiting task is kept inline, the same task twice once, several in a list; each
    /// is woken exactly once, and nothing is left behind. The whole takes a `Vec`'s room.
    #[test]
    fn wakers_keep_one_task_inline_and_wake_each_once() {
        assert_eq!(
            std::mem::size_of::<Wakers>(),
            std::mem::size_of::<Vec<Waker>>()
        );
        let counters: Vec<Arc<Counter>> = (0..3)
            .map(|_| Arc::new(Counter(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counters.iter().map(|c| Waker::from(c.clone())).collect();
        let mut waiting = Wakers::default();
        waiting.register(&wakers[0]);
        waiting.register(&wakers[0]);
        assert!(matches!(waiting, Wakers::One(_)));
        waiting.wake_all();
        assert!(matches!(waiting, Wakers::None));
        for waker in wakers.iter().chain(&wakers) {
            waiting.register(waker);
        }
        assert!(matches!(&waiting, Wakers::Many(list) if list.len() == 3));
        waiting.wake_all();
        waiting.wake_all();
        let woken: Vec<usize> = counters
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .collect();
        assert_eq!(woken, [2, 1, 1]);
    }
}
