//! Where the two sides run: both rawtcp stacks on one thread over a MemLink, or each side on
//! its own thread inside its own network namespace, joined by a veth pair the harness
//! creates (TESTBED.md's recipe).

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread;

use rawtcp::core::link::LinkConfig;
use rawtcp::netio::forward::{ForwarderStats, LossyPath};
use rawtcp::netio::testbed::{Netns, pin_current_thread, veth_pair};
use rawtcp::netio::{MemLink, MemLinkCounters, MemLinkEnd};

use crate::measure::Metric;
use crate::net::Net;
use crate::scenario::{self, BASE_PORT, Case, Timing};
use crate::soak;

/// The client's address (on `d0`, in the DUT namespace).
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
/// The server's address (on `p0`, in the peer namespace).
pub(crate) const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

/// A side's TCP implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// This crate's stack.
    Rawtcp,
    /// Linux's TCP, through ordinary sockets.
    Kernel,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Rawtcp => "rawtcp",
            Backend::Kernel => "kernel",
        }
    }
}

/// What joins the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Link {
    /// An in-memory link in one thread: no syscalls, no privileges; rawtcp on both sides.
    Mem,
    /// A veth pair between two network namespaces the harness creates (root).
    Veth,
    /// Two veth pairs bridged by a userspace forwarder in a third namespace, which applies
    /// the fault options (`tc netem` in userspace; root).
    Fwd,
}

/// Which implementation runs each side, over which link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pair {
    pub(crate) client: Backend,
    pub(crate) server: Backend,
    pub(crate) link: Link,
}

impl Pair {
    pub(crate) fn label(&self) -> String {
        let link = match self.link {
            Link::Mem => " (mem)",
            Link::Veth => "",
            Link::Fwd => " (fwd)",
        };
        format!("{}↔{}{link}", self.client.name(), self.server.name())
    }
}

/// Settings every run shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) timing: Timing,
    pub(crate) mtu: usize,
    /// Offloads (checksum, TSO, GSO, GRO) of both veth ends.
    pub(crate) offloads: bool,
    pub(crate) seed: u64,
    /// Pin the client to CPU 0 and the server to CPU 1.
    pub(crate) pin: bool,
    /// Socket buffer bytes, each way, of a rawtcp side's AF_PACKET device.
    pub(crate) packet_buffer: usize,
    /// The path's faults (the forwarder's, or the MemLink's).
    pub(crate) faults: crate::forward::FaultArgs,
    /// Congestion control of the kernel's sides.
    pub(crate) kernel_cc: crate::kernel_cc::KernelCc,
}

/// Two namespaces and a veth for one [`Pair`], kept for all of its runs and deleted on drop.
/// A side run by the kernel has its address on its veth end; a side run by rawtcp has none,
/// so that the kernel there neither answers ARP for rawtcp's address nor resets rawtcp's
/// connections.
pub(crate) struct Bed {
    // Declared first: the forwarder stops before the namespaces go.
    path: Option<LossyPath>,
    client_ns: Netns,
    server_ns: Netns,
}

/// What a bed's counters read before a run: the forwarder's, the kernel's receive-memory
/// ones ([`Bed::faults_since`] reports the difference).
pub(crate) struct FaultsBefore {
    path: Option<ForwarderStats>,
    pressure: KernelPressure,
}

impl Bed {
    /// Starts a run's fault counts: the kernel streams' retransmissions from zero, and the
    /// bed's counters as they stand.
    pub(crate) fn faults_before(&self) -> FaultsBefore {
        crate::net::reset_kernel_retransmits();
        FaultsBefore {
            path: self.path.as_ref().map(LossyPath::stats),
            pressure: self.kernel_pressure(),
        }
    }

    /// The faults of the run since `before`, once both sides' threads (and with them every
    /// stream) have ended: what the kernel retransmitted and what it did short of receive
    /// memory (where a side was the kernel), the share of bytes sent again, and the
    /// forwarder's drops.
    pub(crate) fn faults_since(&self, pair: Pair, before: FaultsBefore) -> Vec<Metric> {
        let mut metrics = Vec::new();
        if pair.client == Backend::Kernel || pair.server == Backend::Kernel {
            metrics.push(Metric::lower(
                "kernel retransmits",
                "segments",
                crate::net::kernel_retransmits() as f64,
            ));
            metrics.extend(self.kernel_pressure().metrics_since(before.pressure));
        }
        metrics.extend(crate::net::retransmitted_share());
        if let (Some(path), Some(then)) = (&self.path, before.path) {
            metrics.extend(crate::forward::metrics(then, path.stats()));
        }
        metrics
    }

    /// The kernel's receive-memory counters of both namespaces now; all zero when they cannot
    /// be read (the run's figures then say nothing, rather than failing the run).
    pub(crate) fn kernel_pressure(&self) -> KernelPressure {
        let names = [
            self.client_ns.name().to_string(),
            self.server_ns.name().to_string(),
        ];
        // A thread of its own enters each namespace: /proc/thread-self/net is the calling
        // thread's namespace's.
        thread::spawn(move || {
            names.iter().fold(KernelPressure::default(), |sum, name| {
                let read = rawtcp::netio::netns::enter(name)
                    .and_then(|()| std::fs::read_to_string("/proc/thread-self/net/netstat"));
                match read {
                    Ok(text) => sum.add(KernelPressure::parse(&text)),
                    Err(_) => sum,
                }
            })
        })
        .join()
        .unwrap_or_default()
    }

    pub(crate) fn new(pair: Pair, settings: &Settings) -> io::Result<Bed> {
        let client_ns = Netns::new("bench-c")?;
        let server_ns = Netns::new("bench-s")?;
        let path = match pair.link {
            Link::Fwd => Some(crate::forward::path(
                &client_ns,
                &server_ns,
                settings.mtu,
                &settings.faults,
                settings.seed,
            )?),
            _ => veth_pair(&client_ns, &server_ns).map(|()| None)?,
        };
        let mtu = settings.mtu.to_string();
        for (ns, dev, backend, addr, mac) in [
            (&client_ns, "d0", pair.client, CLIENT, "02:00:00:00:0d:01"),
            (&server_ns, "p0", pair.server, SERVER, "02:00:00:00:0e:01"),
        ] {
            ns.ip(&["link", "set", dev, "address", mac, "mtu", &mtu, "up"])?;
            ns.exec_checked(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ])?;
            if backend == Backend::Kernel {
                ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev])?;
            }
            // On both ends, whichever stack sends there: with them off, a super-segment that
            // rawtcp hands the kernel is cut in software before it crosses the veth, as the
            // kernel's own would be, so neither side's receiver gets a larger frame.
            let state = if settings.offloads { "on" } else { "off" };
            ns.exec_checked(&[
                "ethtool", "-K", dev, "tx", state, "tso", state, "gso", state, "gro", state,
            ])
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("setting offloads with ethtool (is it installed?): {error}"),
                )
            })?;
        }
        Ok(Bed {
            path,
            client_ns,
            server_ns,
        })
    }

    /// The client side's namespace (`d0`, 10.9.0.2).
    pub(crate) fn client_ns(&self) -> &str {
        self.client_ns.name()
    }

    /// The server side's namespace (`p0`, 10.9.0.1).
    pub(crate) fn server_ns(&self) -> &str {
        self.server_ns.name()
    }
}

/// A fresh server port for each run, so that a run never meets the TIME-WAIT connections
/// (on either side) of the run before it.
fn next_port(case: Case) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    BASE_PORT + NEXT.fetch_add(case.ports(), Ordering::Relaxed) % 20_000
}

/// One run of `case` between the sides of `pair`.
pub(crate) fn run_once(
    pair: Pair,
    bed: Option<&Bed>,
    case: Case,
    settings: &Settings,
) -> io::Result<Vec<Metric>> {
    let port = next_port(case);
    match (pair.link, bed, case) {
        (Link::Mem, _, Case::Proxy { .. }) => crate::proxy::run_mem(case, settings, port),
        (Link::Veth | Link::Fwd, Some(bed), Case::Proxy { .. }) => {
            crate::proxy::run_veth(pair, bed, case, settings, port)
        }
        (Link::Mem, _, _) => run_mem(case, settings, port),
        (Link::Veth | Link::Fwd, Some(bed), _) => run_veth(pair, bed, case, settings, port),
        (Link::Veth | Link::Fwd, None, _) => Err(io::Error::other("a veth run needs its bed")),
    }
}

/// Runs `body` on a new thread with a current-thread runtime, inside namespace `ns`, pinned
/// to `cpu`.
pub(crate) fn side<T, F, Fut>(
    ns: Option<String>,
    cpu: Option<usize>,
    body: F,
) -> thread::JoinHandle<io::Result<T>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<T>>,
{
    thread::spawn(move || {
        if let Some(cpu) = cpu {
            // Best effort: a machine with one CPU runs unpinned.
            let _ = pin_current_thread(cpu);
        }
        if let Some(ns) = ns {
            rawtcp::netio::netns::enter(&ns)?;
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(body())
    })
}

pub(crate) fn join<T>(handle: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a benchmark thread panicked")))
}

fn run_veth(
    pair: Pair,
    bed: &Bed,
    case: Case,
    settings: &Settings,
    port: u16,
) -> io::Result<Vec<Metric>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let seed = settings.seed;
    let buffer = settings.packet_buffer;
    let before = bed.faults_before();
    let server = side(
        Some(bed.server_ns.name().to_string()),
        settings.pin.then_some(1),
        move || async move {
            let net = Net::of(pair.server, "p0", SERVER, seed, buffer).await?;
            match scenario::bind(&net, SERVER, port, case).await {
                Ok(bound) => {
                    let _ = ready_tx.send(Ok(()));
                    scenario::serve(bound, stop_rx).await;
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                }
            }
            Ok(net.shutdown().await)
        },
    );
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            let _ = join(server);
            return Err(error);
        }
        Err(_) => return join(server).and(Err(io::Error::other("the server did not start"))),
    }
    let timing = settings.timing;
    let client = side(
        Some(bed.client_ns.name().to_string()),
        settings.pin.then_some(0),
        move || async move {
            let net = Net::of(pair.client, "d0", CLIENT, seed, buffer).await?;
            // The rawtcp stacks this thread drives, for the memory figure of `conns`.
            let ends = usize::from(pair.client == Backend::Rawtcp);
            let result =
                scenario::client(&net, SocketAddrV4::new(SERVER, port), case, timing, ends).await;
            // The server closes its connections while this side's stack still runs to answer
            // (its shutdown waits for them). Stopped the other way round, a kernel server's
            // FINs went unanswered and were retransmitted for minutes into the next runs,
            // where a new rawtcp stack on the same address woke for each: 1-121 wakeups and
            // up to 0.48 % of a core in conns' idle window.
            let _ = stop_tx.send(());
            let driver = net.shutdown().await;
            result.map(|metrics| (metrics, driver))
        },
    );
    let result = join(client);
    let server_driver = join(server)?;
    let (mut metrics, client_driver) = result?;
    metrics.extend(device_metrics(client_driver, server_driver));
    // Both sides' threads have ended, and with them every stream.
    metrics.extend(bed.faults_since(pair, before));
    Ok(metrics)
}

/// What the kernel's TCP did for want of receive memory, in both of a bed's namespaces
/// together (`/proc/net/netstat`, which is per namespace): a kernel receiver short of it
/// prunes its queues, drops in-window segments and advertises a zero window at once,
/// shrinking the window it offered (RFC 9293 §3.8.6 asks the sender to cope): the condition
/// under which rawtcp and Linux once deadlocked (d720ae8).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KernelPressure {
    /// `TCPToZeroWindowAdv`: windows that fell to zero as advertised.
    zero_windows: u64,
    /// `PruneCalled`: times a socket's receive queues were pruned for memory.
    prunes: u64,
    /// Segments dropped for memory: `TCPRcvQDrop`, `TCPZeroWindowDrop`, `RcvPruned`,
    /// `OfoPruned`.
    drops: u64,
}

impl KernelPressure {
    /// The counters of `netstat`, the text of a `/proc/net/netstat`: pairs of lines that
    /// name the fields and give their values, `TcpExt:` among them.
    fn parse(netstat: &str) -> KernelPressure {
        let mut lines = netstat.lines();
        let mut pressure = KernelPressure::default();
        while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
            if !names.starts_with("TcpExt:") {
                continue;
            }
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                let value: u64 = value.parse().unwrap_or(0);
                match name {
                    "TCPToZeroWindowAdv" => pressure.zero_windows += value,
                    "PruneCalled" => pressure.prunes += value,
                    "TCPRcvQDrop" | "TCPZeroWindowDrop" | "RcvPruned" | "OfoPruned" => {
                        pressure.drops += value
                    }
                    _ => {}
                }
            }
        }
        pressure
    }

    fn add(self, other: KernelPressure) -> KernelPressure {
        KernelPressure {
            zero_windows: self.zero_windows + other.zero_windows,
            prunes: self.prunes + other.prunes,
            drops: self.drops + other.drops,
        }
    }

    /// What happened between `before` and `self`.
    pub(crate) fn metrics_since(self, before: KernelPressure) -> Vec<Metric> {
        let since = |now: u64, then: u64| now.saturating_sub(then) as f64;
        vec![
            Metric::lower(
                "kernel zero windows",
                "adverts",
                since(self.zero_windows, before.zero_windows),
            ),
            Metric::lower(
                "kernel rcvbuf prunes",
                "calls",
                since(self.prunes, before.prunes),
            ),
            Metric::lower(
                "kernel rcvbuf drops",
                "segments",
                since(self.drops, before.drops),
            ),
        ]
    }
}

/// What the rawtcp sides' drivers counted of their devices: frames the AF_PACKET socket
/// dropped for a full receive buffer (each a retransmission for the peer), and lost
/// wakeups (which must stay 0). The whole run's, warm-up included.
pub(crate) fn device_metrics(
    client: Option<rawtcp::DriverStats>,
    server: Option<rawtcp::DriverStats>,
) -> Vec<Metric> {
    let sides = client.into_iter().chain(server);
    let (drops, lost) = sides.fold((0, 0), |(drops, lost), stats| {
        (drops + stats.device_rx_drops, lost + stats.lost_wakeups)
    });
    if client.is_none() && server.is_none() {
        return Vec::new();
    }
    vec![
        Metric::lower("rawtcp rx drops", "frames", drops as f64),
        Metric::lower("lost wakeups", "events", lost as f64),
    ]
}

/// What a MemLink's fault model did to the frames both ends sent: lost, dropped by a rule or
/// the queue limit, duplicated, reordered, corrupted. Only the faults the settings asked for
/// can be non-zero.
fn mem_link_metrics(links: &[MemLinkCounters]) -> Vec<Metric> {
    let total = |of: fn(&rawtcp::core::link::LinkStats) -> u64| {
        links.iter().map(|link| of(&link.send_stats())).sum::<u64>() as f64
    };
    vec![
        Metric::lower(
            "link losses",
            "frames",
            total(|s| s.lost + s.rule_dropped + s.tail_dropped),
        ),
        Metric::lower("link duplicates", "frames", total(|s| s.duplicated)),
        Metric::lower("link reorders", "frames", total(|s| s.reordered)),
        Metric::lower("link corruptions", "frames", total(|s| s.corrupted)),
    ]
}

/// The MemLink of the settings: with their faults and MTU, or (`--offloads on`) the
/// perfect link whose ends pass super-segments whole and trust checksums, as loopback does.
pub(crate) fn mem_link(settings: &Settings) -> (MemLinkEnd, MemLinkEnd) {
    if settings.offloads {
        return MemLink::pair_with_offloads();
    }
    let link = settings.faults.link_config(settings.mtu);
    MemLink::with_faults(link.clone(), link, settings.seed)
}

/// Both rawtcp stacks on one thread (one core) over a MemLink of the configured MTU.
fn run_mem(case: Case, settings: &Settings, port: u16) -> io::Result<Vec<Metric>> {
    let settings = *settings;
    join(side(None, settings.pin.then_some(0), move || async move {
        let (a, b) = mem_link(&settings);
        let client = Net::rawtcp_mem(a, CLIENT, settings.seed).await?;
        let server = Net::rawtcp_mem(b, SERVER, settings.seed).await?;
        let bound = scenario::bind(&server, SERVER, port, case).await?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let serving = tokio::spawn(scenario::serve(bound, stop_rx));
        let result = scenario::client(
            &client,
            SocketAddrV4::new(SERVER, port),
            case,
            settings.timing,
            2,
        )
        .await;
        let _ = stop_tx.send(());
        let _ = serving.await;
        client.shutdown().await;
        server.shutdown().await;
        result
    }))
}

/// A soak between the sides of `pair`; over a MemLink with `faults` on both directions.
pub(crate) fn run_soak(
    pair: Pair,
    bed: Option<&Bed>,
    spec: soak::Spec,
    settings: &Settings,
    faults: &LinkConfig,
) -> io::Result<soak::Outcome> {
    match (pair.link, bed) {
        (Link::Mem, _) => soak_mem(spec, settings, faults.clone()),
        (Link::Veth | Link::Fwd, Some(bed)) => soak_veth(pair, bed, spec, settings),
        (Link::Veth | Link::Fwd, None) => Err(io::Error::other("a veth run needs its bed")),
    }
}

/// Both rawtcp stacks on one thread over a MemLink.
fn soak_mem(
    spec: soak::Spec,
    settings: &Settings,
    faults: LinkConfig,
) -> io::Result<soak::Outcome> {
    let settings = *settings;
    join(side(None, settings.pin.then_some(0), move || async move {
        let link = LinkConfig {
            mtu: settings.mtu,
            ..faults
        };
        let (a, b) = MemLink::with_faults(link.clone(), link, settings.seed);
        let links = [a.counters(), b.counters()];
        let client = Net::rawtcp_mem(a, CLIENT, settings.seed).await?;
        let server = Net::rawtcp_mem(b, SERVER, settings.seed).await?;
        let at = SocketAddrV4::new(SERVER, BASE_PORT);
        let listener = server.bind(at).await?;
        let serving = tokio::spawn(soak::serve(listener, spec));
        let (to_client, elapsed) = soak::timed(soak::client(&client, at, spec)).await;
        let to_server = serving
            .await
            .map_err(|_| io::Error::other("the soak server panicked"))?;
        let client_driver = client.shutdown().await;
        let server_driver = server.shutdown().await;
        let mut faults = device_metrics(client_driver, server_driver);
        faults.extend(mem_link_metrics(&links));
        Ok(soak::Outcome {
            to_server: to_server?,
            to_client: to_client?,
            elapsed,
            faults,
        })
    }))
}

/// Each side in its namespace: the same verifying code on rawtcp or on the kernel's sockets.
fn soak_veth(
    pair: Pair,
    bed: &Bed,
    spec: soak::Spec,
    settings: &Settings,
) -> io::Result<soak::Outcome> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let seed = settings.seed;
    let buffer = settings.packet_buffer;
    let before = bed.faults_before();
    let server = side(
        Some(bed.server_ns.name().to_string()),
        settings.pin.then_some(1),
        move || async move {
            let net = Net::of(pair.server, "p0", SERVER, seed, buffer).await?;
            let result = match net.bind(SocketAddrV4::new(SERVER, BASE_PORT)).await {
                Ok(listener) => {
                    let _ = ready_tx.send(Ok(()));
                    soak::serve(listener, spec).await
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(io::Error::new(error.kind(), error.to_string())));
                    Err(error)
                }
            };
            let driver = net.shutdown().await;
            result.map(|received| (received, driver))
        },
    );
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            let _ = join(server);
            return Err(error);
        }
        Err(_) => return join(server).and(Err(io::Error::other("the server did not start"))),
    }
    let client = side(
        Some(bed.client_ns.name().to_string()),
        settings.pin.then_some(0),
        move || async move {
            let net = Net::of(pair.client, "d0", CLIENT, seed, buffer).await?;
            let at = SocketAddrV4::new(SERVER, BASE_PORT);
            let (result, elapsed) = soak::timed(soak::client(&net, at, spec)).await;
            let driver = net.shutdown().await;
            result.map(|received| (received, elapsed, driver))
        },
    );
    let client = join(client);
    let (to_server, server_driver) = join(server)?;
    let (to_client, elapsed, client_driver) = client?;
    let mut faults = device_metrics(client_driver, server_driver);
    faults.extend(bed.faults_since(pair, before));
    Ok(soak::Outcome {
        to_server,
        to_client,
        elapsed,
        faults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_pressure_reads_the_tcpext_lines_only() {
        let netstat = "TcpExt: SyncookiesSent PruneCalled RcvPruned OfoPruned TCPRcvQDrop \
                       TCPZeroWindowDrop TCPToZeroWindowAdv TCPWantZeroWindowAdv\n\
                       TcpExt: 9 4 1 2 3 5 7 100\n\
                       IpExt: InNoRoutes PruneCalled\n\
                       IpExt: 1 1000\n";
        let pressure = KernelPressure::parse(netstat);
        assert_eq!(pressure.zero_windows, 7);
        assert_eq!(pressure.prunes, 4);
        assert_eq!(pressure.drops, 1 + 2 + 3 + 5);
        let values: Vec<f64> = pressure
            .metrics_since(KernelPressure {
                zero_windows: 2,
                prunes: 4,
                drops: 20,
            })
            .iter()
            .map(|metric| metric.value)
            .collect();
        assert_eq!(values, [5.0, 0.0, 0.0], "since, never below zero");
    }
}
