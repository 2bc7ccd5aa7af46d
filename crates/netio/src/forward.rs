//! A lossy path between two real hosts: a userspace bridge with rawtcp-core's fault model.
//!
//! `tc netem` is not available everywhere, so this does its work in userspace. A
//! [`Forwarder`] owns two AF_PACKET sockets, one on each of two interfaces, in promiscuous
//! mode (it sees frames for any MAC, ARP included), and bridges them: every IPv4 frame read
//! on one side goes through a [`LinkModel`] of its own direction (loss, delay, jitter,
//! reordering, duplication, rate, queue limit, all seeded) and is written to the other side
//! when the model lets it out. Other frames (ARP) cross unimpaired and at once, so that a lost
//! ARP reply does not add a second of setup to a measurement; MAC addresses are left as they
//! are, so the two hosts see one Ethernet segment.
//!
//! Delay is timer-driven: the bridge sleeps until [`LinkModel::next_delivery`] on a timerfd
//! (the kernel's high-resolution timers; tokio's own tick in milliseconds, which would add up
//! to a millisecond per frame and release frames in bursts on the tick).
//!
//! The bridge must not lose frames itself, or its losses would pass for the model's: its
//! sockets get large buffers, and [`ForwarderStats`] keeps what the model dropped apart from
//! what the bridge dropped (the kernel's receive drops from PACKET_STATISTICS, send drops for
//! a full device queue, frames too long for the MTU, which only offloads left on produce).
//!
//! [`LossyPath`] builds the usual topology: the two namespaces of a test, joined through a
//! third ("router") namespace that holds the bridge.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use rawtcp_core::Instant;
use rawtcp_core::link::{LinkConfig, LinkModel, LinkStats};

use crate::afpacket::{AfPacket, AfPacketConfig};
use crate::batch::FrameBatch;
use crate::readiness::FdIo;
use crate::testbed::Netns;
use crate::{Device, sys};

/// How a [`Forwarder`] treats each direction.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Faults from interface A to interface B (the client's frames, in a [`LossyPath`]).
    pub a_to_b: LinkConfig,
    /// Faults from interface B to interface A.
    pub b_to_a: LinkConfig,
    /// Seed of both directions' random choices (each draws its own sequence from it).
    pub seed: u64,
    /// Receive and send buffer of each AF_PACKET socket, bytes (SO_RCVBUFFORCE).
    pub socket_buffer: usize,
    /// Run the bridge's thread at a real-time priority (SCHED_FIFO 10, as a softirq runs
    /// ahead of applications), so that on a busy machine it keeps to the model's timing;
    /// without CAP_SYS_NICE it runs as an ordinary thread, with a warning. Its lateness is
    /// counted either way ([`DirectionStats::late`]).
    pub realtime: bool,
}

impl Default for ForwarderConfig {
    /// A perfect bridge: no faults, 32 MiB socket buffers.
    fn default() -> ForwarderConfig {
        ForwarderConfig {
            a_to_b: LinkConfig::default(),
            b_to_a: LinkConfig::default(),
            seed: 0,
            socket_buffer: 32 << 20,
            realtime: false,
        }
    }
}

impl ForwarderConfig {
    /// The same faults both ways.
    pub fn symmetric(faults: LinkConfig, seed: u64) -> ForwarderConfig {
        ForwarderConfig {
            a_to_b: faults.clone(),
            b_to_a: faults,
            seed,
            ..ForwarderConfig::default()
        }
    }
}

/// What one direction of a [`Forwarder`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Frames read from the ingress socket.
    pub received: u64,
    /// Frames written to the egress socket (duplicates included).
    pub forwarded: u64,
    /// Of those, frames other than IPv4 (ARP), which cross without faults.
    pub passed: u64,
    /// What the fault model did: `lost` + `rule_dropped` are its drops by design,
    /// `tail_dropped` its queue limit's.
    pub link: LinkStats,
    /// Frames the kernel dropped before the bridge read them, the ingress socket's buffer
    /// being full (PACKET_STATISTICS `tp_drops`): the bridge's own loss.
    pub rx_kernel_drops: u64,
    /// Frames longer than the ingress socket's slots (a GRO or GSO super-frame: offloads left
    /// on), dropped: the bridge's own loss.
    pub rx_truncated: u64,
    /// Frames the egress device refused for a full queue (ENOBUFS): the bridge's own loss.
    pub tx_dropped: u64,
    /// Frames other than IPv4 dropped because too many were waiting to be sent.
    pub passthrough_dropped: u64,
    /// Frames handed to the egress socket more than [`LATE`] after the model let them out:
    /// delay the bridge added itself (it was busy, or not scheduled).
    pub late: u64,
    /// The most any frame was handed on after the model let it out, microseconds.
    pub max_lateness_us: u64,
}

impl DirectionStats {
    /// Frames the fault model dropped on purpose: at random, by a rule, or over the MTU.
    pub fn model_drops(&self) -> u64 {
        self.link.lost + self.link.rule_dropped + self.link.oversized
    }

    /// Frames the model's queue limit tail-dropped.
    pub fn queue_drops(&self) -> u64 {
        self.link.tail_dropped
    }

    /// Frames the bridge itself lost: no fault model asked for these.
    pub fn own_drops(&self) -> u64 {
        self.rx_kernel_drops + self.rx_truncated + self.tx_dropped + self.passthrough_dropped
    }
}

/// How much later than the model's time a frame may be handed on before it counts as
/// [`late`](DirectionStats::late).
pub const LATE: Duration = Duration::from_millis(1);

/// Both directions' counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwarderStats {
    /// From interface A to interface B.
    pub a_to_b: DirectionStats,
    /// From interface B to interface A.
    pub b_to_a: DirectionStats,
}

impl ForwarderStats {
    /// Frames the bridge itself lost, both ways.
    pub fn own_drops(&self) -> u64 {
        self.a_to_b.own_drops() + self.b_to_a.own_drops()
    }

    /// Frames the bridge handed on late, both ways.
    pub fn late(&self) -> u64 {
        self.a_to_b.late + self.b_to_a.late
    }
}

/// A running bridge between two interfaces, on a thread of its own; stopped on drop.
///
/// # Examples
/// ```no_run
/// use rawtcp_core::link::LinkConfig;
/// use rawtcp_netio::forward::{Forwarder, ForwarderConfig};
/// use std::time::Duration;
///
/// let faults = LinkConfig { loss: 0.01, delay: Duration::from_millis(5), ..LinkConfig::default() };
/// let bridge = Forwarder::spawn(None, "f0", "f1", ForwarderConfig::symmetric(faults, 1))?;
/// // ... traffic between the hosts behind f0 and f1 ...
/// let stats = bridge.stop()?;
/// assert_eq!(stats.own_drops(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Forwarder {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<io::Result<ForwarderStats>>>,
    shared: Arc<Mutex<ForwarderStats>>,
}

impl Forwarder {
    /// Opens `a` and `b` (in network namespace `netns`, or the caller's) and starts bridging
    /// them. Returns once both sockets are open and bound, so no frame sent afterwards is
    /// missed. Needs CAP_NET_RAW, and CAP_SYS_ADMIN to enter a namespace.
    pub fn spawn(
        netns: Option<&str>,
        a: &str,
        b: &str,
        config: ForwarderConfig,
    ) -> io::Result<Forwarder> {
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Mutex::new(ForwarderStats::default()));
        let published = Arc::clone(&shared);
        let netns = netns.map(str::to_string);
        let (a, b) = (a.to_string(), b.to_string());
        let thread = thread::Builder::new()
            .name("rawtcp-forwarder".into())
            .spawn(move || {
                let opened = (|| {
                    if let Some(netns) = &netns {
                        crate::netns::enter(netns)?;
                    }
                    if config.realtime
                        && let Err(error) = sys::set_realtime(10)
                    {
                        tracing::warn!(%error, "the forwarder runs without real-time priority");
                    }
                    let open = |name: &str| {
                        AfPacket::open_with(
                            name,
                            AfPacketConfig {
                                promiscuous: true,
                                recv_buffer: Some(config.socket_buffer),
                                send_buffer: Some(config.socket_buffer),
                                ..AfPacketConfig::default()
                            },
                        )
                        .map_err(|error| {
                            io::Error::new(error.kind(), format!("AF_PACKET on {name}: {error}"))
                        })
                    };
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    Ok::<_, io::Error>((open(&a)?, open(&b)?, sys::timerfd()?, runtime))
                })();
                let (a, b, timer, runtime) = match opened {
                    Ok(opened) => {
                        let _ = opened_tx.send(Ok(()));
                        opened
                    }
                    Err(error) => {
                        let message = error.to_string();
                        let _ = opened_tx.send(Err(error));
                        return Err(io::Error::other(message));
                    }
                };
                runtime.block_on(bridge(a, b, timer, config, stop_rx, published))
            })?;
        match opened_rx.recv() {
            Ok(Ok(())) => Ok(Forwarder {
                stop: Some(stop_tx),
                thread: Some(thread),
                shared,
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => Err(io::Error::other(
                "the forwarder thread ended before it opened",
            )),
        }
    }

    /// The counters as the bridge last published them (it does after every round of work;
    /// the kernel's receive drops every 100 ms).
    pub fn stats(&self) -> ForwarderStats {
        *self
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops the bridge (frames still in the fault model's queue are dropped, not counted)
    /// and returns its final counters.
    pub fn stop(mut self) -> io::Result<ForwarderStats> {
        self.halt()
    }

    fn halt(&mut self) -> io::Result<ForwarderStats> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the forwarder thread panicked"))),
            None => Ok(self.stats()),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Frames of one direction read per socket per round, at most, before the bridge turns to
/// delivering: a flood one way must not hold the other way's due frames back.
const ROUND: usize = 4;
/// Frames other than IPv4 waiting to be sent, at most.
const PASSTHROUGH_LIMIT: usize = 1024;
/// How often the kernel's receive drops are read.
const KERNEL_STATS_EVERY: Duration = Duration::from_millis(100);

/// One direction: its model, frames waiting for the egress socket, its counters.
struct Lane {
    model: LinkModel,
    passthrough: VecDeque<Vec<u8>>,
    /// Frames due that the egress socket has not taken yet.
    out: FrameBatch,
    stats: DirectionStats,
}

impl Lane {
    fn new(config: LinkConfig, seed: u64, max_frame_len: usize) -> Lane {
        Lane {
            model: LinkModel::new(config, seed),
            passthrough: VecDeque::new(),
            out: FrameBatch::new(crate::sys::MAX_BATCH * 4, max_frame_len),
            stats: DirectionStats::default(),
        }
    }

    /// Takes what `ingress` has, up to [`ROUND`] batches.
    fn ingest(
        &mut self,
        now: Instant,
        ingress: &mut AfPacket,
        inbox: &mut FrameBatch,
    ) -> io::Result<()> {
        for _ in 0..ROUND {
            inbox.clear();
            let got = ingress.recv(inbox)?;
            for (frame, _) in inbox.iter() {
                self.stats.received += 1;
                if is_ipv4(frame) {
                    self.model.send(now, frame);
                } else if self.passthrough.len() < PASSTHROUGH_LIMIT {
                    self.passthrough.push_back(frame.to_vec());
                } else {
                    self.stats.passthrough_dropped += 1;
                }
            }
            if got < inbox.capacity() {
                break;
            }
        }
        Ok(())
    }

    /// Sends what is due by `now` to `egress`, as far as it takes them; the rest waits in
    /// `out` (then [`Lane::backlogged`]).
    fn deliver(&mut self, now: Instant, egress: &mut AfPacket) -> io::Result<()> {
        loop {
            while !self.out.is_full() {
                if let Some(frame) = self.passthrough.pop_front() {
                    self.out.push_frame(&frame);
                    self.stats.passed += 1;
                } else if let Some(due) = self.model.next_delivery().filter(|&due| due <= now)
                    && let Some(frame) = self.model.recv_buffer(now)
                {
                    let lateness = now.saturating_duration_since(due);
                    self.stats.late += u64::from(lateness > LATE);
                    self.stats.max_lateness_us =
                        self.stats.max_lateness_us.max(lateness.as_micros() as u64);
                    // The model's MTU check let the frame in, and the batch's slots hold the
                    // MTU, unless the config's MTU is larger than the interface's: such a
                    // frame cannot be sent.
                    if !self.out.push_frame(&frame) {
                        self.stats.tx_dropped += 1;
                    }
                    // Its buffer goes back to the model for reuse: no allocation per frame.
                    self.model.recycle(frame);
                } else {
                    break;
                }
            }
            if self.out.is_empty() {
                return Ok(());
            }
            let queued = self.out.len();
            let sent = match egress.send(&mut self.out) {
                Ok(sent) => sent,
                // A frame the device refused (too long for it): it is gone; count it.
                Err(_) => {
                    self.stats.tx_dropped += 1;
                    0
                }
            };
            self.stats.forwarded += sent as u64;
            if !self.out.is_empty() && self.out.len() == queued {
                return Ok(()); // the socket is full: wait until it is writable
            }
        }
    }

    fn backlogged(&self) -> bool {
        !self.out.is_empty()
    }

    fn snapshot(&self, ingress: &AfPacket, egress: &AfPacket) -> DirectionStats {
        DirectionStats {
            link: self.model.stats(),
            rx_kernel_drops: ingress.stats().rx_kernel_drops,
            rx_truncated: ingress.stats().rx_truncated,
            tx_dropped: self.stats.tx_dropped + egress.stats().tx_dropped,
            ..self.stats
        }
    }
}

fn is_ipv4(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x00][..])
}

/// Why the bridge woke.
enum Wake {
    Work,
    Stop,
}

/// The bridge's loop: take what arrived, hand on what is due, sleep until the next frame is
/// due or one arrives.
async fn bridge(
    mut a: AfPacket,
    mut b: AfPacket,
    timer: OwnedFd,
    config: ForwarderConfig,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    published: Arc<Mutex<ForwarderStats>>,
) -> io::Result<ForwarderStats> {
    let epoch = std::time::Instant::now();
    let clock = || Instant::from_micros(epoch.elapsed().as_micros() as u64);
    let max_frame_len = a
        .capabilities()
        .max_frame_len
        .max(b.capabilities().max_frame_len);
    let mut inbox = FrameBatch::new(sys::MAX_BATCH, max_frame_len);
    let mut ab = Lane::new(config.a_to_b, config.seed, max_frame_len);
    // Another stream of choices for the other direction, from the same seed.
    let mut ba = Lane::new(
        config.b_to_a,
        config.seed ^ 0x9e37_79b9_7f4a_7c15,
        max_frame_len,
    );
    let mut timer = FdIo::new(timer);
    let mut armed: Option<Instant> = None;
    let mut kernel_stats_at = std::time::Instant::now();
    let publish = |ab: &Lane, ba: &Lane, a: &AfPacket, b: &AfPacket| {
        let stats = ForwarderStats {
            a_to_b: ab.snapshot(a, b),
            b_to_a: ba.snapshot(b, a),
        };
        *published
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = stats;
        stats
    };
    loop {
        // A fired timer is read (which also clears its readiness once it reads nothing).
        while timer.read_with(sys::read_timerfd)?.is_some() {
            armed = None;
        }
        let now = clock();
        ab.ingest(now, &mut a, &mut inbox)?;
        ba.ingest(now, &mut b, &mut inbox)?;
        let now = clock();
        ab.deliver(now, &mut b)?;
        ba.deliver(now, &mut a)?;
        if kernel_stats_at.elapsed() >= KERNEL_STATS_EVERY {
            a.refresh_kernel_stats()?;
            b.refresh_kernel_stats()?;
            kernel_stats_at = std::time::Instant::now();
        }
        publish(&ab, &ba, &a, &b);
        let next = [ab.model.next_delivery(), ba.model.next_delivery()]
            .into_iter()
            .flatten()
            .min();
        if let Some(next) = next
            && armed != Some(next)
        {
            let after = next.saturating_duration_since(clock());
            sys::arm_timerfd(timer.get_ref(), after)?;
            armed = Some(next);
        }
        let wake = poll_fn(|cx| {
            if std::pin::Pin::new(&mut stop).poll(cx).is_ready() {
                return Poll::Ready(Ok(Wake::Stop));
            }
            let mut ready = false;
            for device in [&mut a, &mut b] {
                if let Poll::Ready(result) = device.poll_recv_ready(cx) {
                    result?;
                    ready = true;
                }
            }
            if ab.backlogged()
                && let Poll::Ready(result) = b.poll_send_ready(cx)
            {
                result?;
                ready = true;
            }
            if ba.backlogged()
                && let Poll::Ready(result) = a.poll_send_ready(cx)
            {
                result?;
                ready = true;
            }
            if armed.is_some()
                && let Poll::Ready(result) = timer.poll_read(cx)
            {
                result?;
                ready = true;
            }
            if ready {
                Poll::Ready(Ok::<_, io::Error>(Wake::Work))
            } else {
                Poll::Pending
            }
        })
        .await?;
        if let Wake::Stop = wake {
            a.refresh_kernel_stats()?;
            b.refresh_kernel_stats()?;
            return Ok(publish(&ab, &ba, &a, &b));
        }
    }
}

/// Two namespaces joined through a third that bridges them with faults: `d0` in the DUT
/// namespace —veth— `f0` [bridge] `f1` —veth— `p0` in the peer namespace, one Ethernet
/// segment. Interface A of the [`Forwarder`] faces the DUT, B the peer. Built in place of
/// [`veth_pair`](crate::testbed::veth_pair): `d0` and `p0` are left down and without
/// addresses, for the caller to configure as before.
///
/// Offloads: the bridge reads and writes frames one by one, so it turns checksum offload,
/// TSO, GSO and GRO off on `f0` and `f1`, and checksum offload, TSO and GSO on `d0` and `p0`
/// (what the hosts send must be whole frames of at most the MTU with finished checksums).
///
/// The router namespace is deleted and the bridge stopped on drop.
#[derive(Debug)]
pub struct LossyPath {
    // Declared first: the bridge stops before its namespace goes.
    forwarder: Forwarder,
    router: Netns,
}

impl LossyPath {
    /// Builds the path between `dut` and `peer` with MTU `mtu` on all four ends.
    pub fn new(
        dut: &Netns,
        peer: &Netns,
        mtu: u32,
        config: ForwarderConfig,
    ) -> io::Result<LossyPath> {
        let router = Netns::new("fwd")?;
        crate::testbed::veth_between(dut, "d0", &router, "f0")?;
        crate::testbed::veth_between(&router, "f1", peer, "p0")?;
        let mtu_text = mtu.to_string();
        for (ns, dev) in [(&router, "f0"), (&router, "f1")] {
            ns.exec_checked(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ])?;
            ns.ip(&["link", "set", dev, "mtu", &mtu_text, "up"])?;
            ethtool_off(ns, dev, &["tx", "tso", "gso", "gro"])?;
        }
        for (ns, dev) in [(dut, "d0"), (peer, "p0")] {
            ns.ip(&["link", "set", dev, "mtu", &mtu_text])?;
            ethtool_off(ns, dev, &["tx", "tso", "gso"])?;
        }
        let mut config = config;
        config.a_to_b.mtu = mtu as usize;
        config.b_to_a.mtu = mtu as usize;
        let forwarder = Forwarder::spawn(Some(router.name()), "f0", "f1", config)?;
        Ok(LossyPath { forwarder, router })
    }

    /// The router namespace's name.
    pub fn router(&self) -> &str {
        self.router.name()
    }

    /// The bridge's counters so far (A → B is DUT → peer).
    pub fn stats(&self) -> ForwarderStats {
        self.forwarder.stats()
    }

    /// Stops the bridge and returns its final counters.
    pub fn stop(self) -> io::Result<ForwarderStats> {
        self.forwarder.stop()
    }
}

fn ethtool_off(ns: &Netns, dev: &str, features: &[&str]) -> io::Result<()> {
    let mut args = vec!["ethtool", "-K", dev];
    for feature in features {
        args.extend([*feature, "off"]);
    }
    ns.exec_checked(&args).map(drop).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("turning offloads off on {dev} with ethtool (is it installed?): {error}"),
        )
    })
}
