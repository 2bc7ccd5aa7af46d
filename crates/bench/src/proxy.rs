//! The `proxy` scenario: a TCP proxy application, the side measured, between a client and a
//! server that run on the kernel's sockets.
//!
//! ```text
//!   client ns (p0, 10.9.0.1)                 proxy ns (d0, 10.9.0.2)
//!   kernel client ──── stream ────────────▶  proxy :port ─┐
//!   kernel server :port ◀─── relayed ──────────────────────┘
//!        └─ echoes every byte back the same way
//! ```
//!
//! The client and the echo server share one namespace (the bed's server side, where the
//! kernel owns 10.9.0.1), so every byte crosses the veth four times: client → proxy, proxy
//! → server, and back. The proxy runs on the bed's client side: rawtcp on AF_PACKET, or the
//! kernel's sockets for the baseline; both run the same relay code below ([`pump`] each
//! way). On rawtcp it passes each received piece on as it is, copied once in all, into the
//! frame that carries it on; on kernel sockets it reads into a buffer and writes from it,
//! two copies across the user/kernel boundary (a kernel proxy without them would need
//! `splice(2)`). Goodput is the echo the clients get back within the measured window, so it
//! moves both ways through the proxy at once.

use std::io;
use std::net::SocketAddrV4;

use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::measure::Metric;
use crate::net::{Listener, Net, Stream, pump};
use crate::run::{self, Backend, Bed, CLIENT, Pair, SERVER, Settings};
use crate::scenario::{self, Case};

/// Accepts connections on `listener` until `stop` fires (or its sender is dropped); for
/// each, opens one to `upstream` through `net` and relays both ways, passing each
/// half-close on. Then every connection is dropped.
pub(crate) async fn serve(
    listener: Listener,
    net: Net,
    upstream: SocketAddrV4,
    stop: oneshot::Receiver<()>,
) {
    let mut relays = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok(inbound) = accepted else { continue };
                let net = net.clone_handle();
                relays.spawn(async move {
                    let outbound = net.connect(upstream).await?;
                    relay(inbound, outbound).await
                });
            }
            // Finished relays are reaped as they go.
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
            _ = &mut stop => break,
        }
    }
    relays.shutdown().await;
}

/// Both directions at once; an error in either drops both connections.
async fn relay(mut inbound: Stream, mut outbound: Stream) -> io::Result<()> {
    let (mut in_read, mut in_write) = inbound.split();
    let (mut out_read, mut out_write) = outbound.split();
    tokio::try_join!(
        pump(&mut in_read, &mut out_write),
        pump(&mut out_read, &mut in_write)
    )?;
    Ok(())
}

/// The proxy's TCP in `pair`: the bed's client side. Its client and server are the
/// kernel's, on the server side, which must therefore be the kernel.
pub(crate) fn check(pair: Pair) -> Result<(), String> {
    if pair.link != run::Link::Mem && pair.server != Backend::Kernel {
        return Err(
            "proxy: the proxy runs on the --client side's TCP; its client and its server run \
             on the kernel in the other namespace, so --server must be kernel"
                .into(),
        );
    }
    Ok(())
}

/// One run of a `Case::Proxy` over the bed's veth: the proxy pinned to CPU 0, the kernel
/// client and server (two threads of the other namespace) to CPU 1.
pub(crate) fn run_veth(
    pair: Pair,
    bed: &Bed,
    case: Case,
    settings: &Settings,
    port: u16,
) -> io::Result<Vec<Metric>> {
    check(pair).map_err(io::Error::other)?;
    let seed = settings.seed;
    let buffer = settings.packet_buffer;
    let peer_cpu = settings.pin.then_some(1);
    let before = bed.faults_before();

    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_server, stop_rx) = oneshot::channel();
    let server = run::side(
        Some(bed.server_ns().to_string()),
        peer_cpu,
        move || async move {
            match scenario::bind(&Net::Kernel, SERVER, port, case).await {
                Ok(bound) => {
                    let _ = ready_tx.send(Ok(()));
                    scenario::serve(bound, stop_rx).await;
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                }
            }
            Ok(())
        },
    );
    if let Err(error) = started(&ready_rx) {
        let _ = run::join(server);
        return Err(error);
    }

    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_proxy, stop_rx) = oneshot::channel();
    let backend = pair.client;
    let proxy = run::side(
        Some(bed.client_ns().to_string()),
        settings.pin.then_some(0),
        move || async move {
            let net = match Net::of(backend, "d0", CLIENT, seed, buffer).await {
                Ok(net) => net,
                Err(error) => {
                    let _ = ready_tx.send(Err(io::Error::new(error.kind(), error.to_string())));
                    return Err(error);
                }
            };
            match net.bind(SocketAddrV4::new(CLIENT, port)).await {
                Ok(listener) => {
                    let _ = ready_tx.send(Ok(()));
                    let upstream = SocketAddrV4::new(SERVER, port);
                    serve(listener, net.clone_handle(), upstream, stop_rx).await;
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                }
            }
            Ok(net.shutdown().await)
        },
    );
    if let Err(error) = started(&ready_rx) {
        let _ = run::join(proxy);
        let _ = stop_server.send(());
        let _ = run::join(server);
        return Err(error);
    }

    let timing = settings.timing;
    let client = run::side(
        Some(bed.server_ns().to_string()),
        peer_cpu,
        move || async move {
            let at = SocketAddrV4::new(CLIENT, port);
            scenario::client(&Net::Kernel, at, case, timing, 0).await
        },
    );
    let result = run::join(client);
    let _ = stop_proxy.send(());
    let proxy_driver = run::join(proxy);
    let _ = stop_server.send(());
    let served = run::join(server);
    let mut metrics = result?;
    let proxy_driver = proxy_driver?;
    served?;
    metrics.extend(run::device_metrics(proxy_driver, None));
    // Every thread has ended, and with it every kernel stream: the client's and the
    // server's (the proxy's peers), and the proxy's own on the baseline.
    metrics.extend(bed.faults_since(pair, before));
    Ok(metrics)
}

/// Waits for a side's "ready" (or its error, or its end).
fn started(ready: &std::sync::mpsc::Receiver<io::Result<()>>) -> io::Result<()> {
    match ready.recv() {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("a side of the proxy run did not start")),
    }
}

/// Over a MemLink, in one thread: the proxy's rawtcp stack on one end, and the client and
/// the echo server on one rawtcp stack at the other.
pub(crate) fn run_mem(case: Case, settings: &Settings, port: u16) -> io::Result<Vec<Metric>> {
    let settings = *settings;
    run::join(run::side(
        None,
        settings.pin.then_some(0),
        move || async move {
            let (a, b) = run::mem_link(&settings);
            let proxy_net = Net::rawtcp_mem(a, CLIENT, settings.seed).await?;
            let ends = Net::rawtcp_mem(b, SERVER, settings.seed).await?;
            let bound = scenario::bind(&ends, SERVER, port, case).await?;
            let (stop_server, stop_rx) = oneshot::channel();
            let serving = tokio::spawn(scenario::serve(bound, stop_rx));
            let listener = proxy_net.bind(SocketAddrV4::new(CLIENT, port)).await?;
            let (stop_proxy, stop_rx) = oneshot::channel();
            let upstream = SocketAddrV4::new(SERVER, port);
            let proxying =
                tokio::spawn(serve(listener, proxy_net.clone_handle(), upstream, stop_rx));
            let at = SocketAddrV4::new(CLIENT, port);
            let result = scenario::client(&ends, at, case, settings.timing, 2).await;
            let _ = stop_proxy.send(());
            let _ = proxying.await;
            let _ = stop_server.send(());
            let _ = serving.await;
            proxy_net.shutdown().await;
            ends.shutdown().await;
            result
        },
    ))
}
