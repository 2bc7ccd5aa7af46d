//! SYN cookies against the Linux kernel, as root, in namespaces the test creates
//! (TESTBED.md): our server answers every SYN with a cookie (a SYN queue of 0), and kernel
//! clients connect through it, move data both ways, and report what the handshake
//! negotiated from their side (TCP_INFO). Without root each test prints one line and passes.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::{KERNEL_ECHO_CLIENTS, in_namespace, python_in, serve_echo};
use rawtcp::core::{Config, ConflictDetection, Ipv4Cidr};
use rawtcp::netio::AfPacket;
use rawtcp::netio::testbed::{VethBed, VethConfig, have_root};
use rawtcp::{Stack, TcpListener};

const OURS: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const CLIENTS: usize = 20;
const SIZE: usize = 256 * 1024;

/// Runs an echo server whose every SYN gets a cookie, `CLIENTS` kernel clients against it,
/// and returns the clients' verdict line and how many cookies our side accepted.
fn kernel_clients_through_cookies(kernel_timestamps: bool) -> (String, u64) {
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    bed.peer
        .exec_checked(&[
            "sysctl",
            "-qw",
            &format!("net.ipv4.tcp_timestamps={}", u8::from(kernel_timestamps)),
        ])
        .expect("sysctl in the peer namespace");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = in_namespace(bed.dut.name(), move || async move {
        let device = AfPacket::open("d0").unwrap();
        let mut config = Config::new(device.mac(), Ipv4Cidr::new(OURS, 24));
        config.conflict_detection = ConflictDetection::scaled(Duration::from_millis(20));
        config.seed = u64::from(std::process::id());
        config.tcp.syn_backlog = 0;
        let stack = Stack::builder()
            .device(device)
            .ipv4(OURS, 24)
            .config(config)
            .spawn()
            .await
            .unwrap();
        let listener = TcpListener::bind(&stack, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
            .await
            .unwrap();
        ready_tx.send(()).unwrap();
        serve_echo(listener, stop_rx).await;
        stack.stats().syn_cookies_accepted
    });
    ready_rx.recv().unwrap();
    let (_clients, mut lines) = python_in(
        bed.peer.name(),
        KERNEL_ECHO_CLIENTS,
        &[&CLIENTS.to_string(), &SIZE.to_string()],
    );
    let verdict = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = stop_tx.send(());
    let accepted = server.join().expect("server thread");
    (verdict, accepted)
}

#[test]
fn kernel_clients_connect_through_syn_cookies_with_timestamps() {
    if !have_root("kernel_clients_connect_through_syn_cookies_with_timestamps") {
        return;
    }
    let (verdict, accepted) = kernel_clients_through_cookies(true);
    // The kernel sees timestamps, SACK and window scaling (TCPI_OPT_* 1|2|4), our shift of
    // 3 for a 256 KiB buffer, and an MSS of 1460 less the 12 bytes of timestamps: what the
    // cookie carried in the TSval came back whole.
    assert_eq!(verdict, "OK 7 3 1448");
    assert_eq!(accepted, CLIENTS as u64);
}

#[test]
fn kernel_clients_connect_through_syn_cookies_without_timestamps() {
    if !have_root("kernel_clients_connect_through_syn_cookies_without_timestamps") {
        return;
    }
    let (verdict, accepted) = kernel_clients_through_cookies(false);
    // Without timestamps the cookie keeps only the MSS: no SACK, no window scaling offered.
    assert_eq!(verdict, "OK 0 0 1460");
    assert_eq!(accepted, CLIENTS as u64);
}
