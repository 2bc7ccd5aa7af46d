//! SYN cookies against the Linux kernel, as root, in namespaces the test creates
//! (TESTBED.md): our server answers every SYN with a cookie (a SYN queue of 0), and kernel
//! clients connect through it, move data both ways, and report what the handshake
//! negotiated from their side (TCP_INFO). Without root each test prints one line and passes.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::in_namespace;
use rawtcp::core::{Config, ConflictDetection, Ipv4Cidr};
use rawtcp::netio::AfPacket;
use rawtcp::netio::testbed::{VethBed, VethConfig, have_root};
use rawtcp::{Stack, TcpListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OURS: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const CLIENTS: usize = 20;
const SIZE: usize = 256 * 1024;

/// `n` kernel clients to 10.9.0.2:7, each sending `size` bytes of a pattern and reading them
/// back. Prints `OK <tcpi_options> <tcpi_snd_wscale> <tcpi_snd_mss>` when every echo matched
/// and every connection negotiated the same, else `BAD ...`.
const KERNEL_CLIENTS: &str = r#"
import socket, sys, threading
n, size = int(sys.argv[1]), int(sys.argv[2])
pattern = (bytes(range(251)) * (size // 251 + 1))[:size]
results = [None] * n
def run(i):
    s = socket.create_connection(("10.9.0.2", 7), timeout=20)
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    negotiated = (info[5] & 7, info[6] & 15, int.from_bytes(info[16:20], "little"))
    def send():
        s.sendall(pattern)
        s.shutdown(socket.SHUT_WR)
    writer = threading.Thread(target=send)
    writer.start()
    got = bytearray()
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    writer.join()
    s.close()
    results[i] = (got == pattern, negotiated)
threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ok = all(r is not None and r[0] for r in results)
kinds = set(r[1] for r in results if r is not None)
if ok and len(kinds) == 1:
    o, w, m = kinds.pop()
    print("OK %d %d %d" % (o, w, m), flush=True)
else:
    print("BAD %r" % (results,), flush=True)
"#;

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
        let accept_loop = async {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut reader, mut writer) = tokio::io::split(&mut stream);
                    tokio::io::copy(&mut reader, &mut writer).await.unwrap();
                    writer.shutdown().await.unwrap();
                    let mut end = [0u8; 1];
                    let _ = reader.read(&mut end).await;
                });
            }
        };
        tokio::select! {
            _ = accept_loop => {}
            _ = stop_rx => {}
        }
        stack.stats().syn_cookies_accepted
    });
    ready_rx.recv().unwrap();
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            bed.peer.name(),
            "python3",
            "-c",
            KERNEL_CLIENTS,
        ])
        .args([CLIENTS.to_string(), SIZE.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 in the peer namespace");
    let verdict = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = child.wait();
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
