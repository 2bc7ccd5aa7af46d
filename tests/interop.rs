//! rawtcp against the Linux kernel's TCP, as root, in namespaces each test creates
//! (TESTBED.md). Without root each test prints one line and passes.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::thread;

use rawtcp::netio::testbed::{VethBed, VethConfig, have_root};
use rawtcp::netio::{AfPacket, IoMethod, netns};
use rawtcp::{Stack, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{
    KERNEL_ECHO_CLIENTS, KillOnDrop, command_in, in_namespace, python_in, serve_echo, stack_on,
};

const OURS: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

/// The kernel side: accepts one connection, sends `len` bytes of a pattern of period 251,
/// reads `len` bytes back and prints OK when their SHA-256 matches the pattern's.
const KERNEL_SERVER: &str = r#"
import hashlib, socket, sys
n = int(sys.argv[1])
pattern = (bytes(range(251)) * (n // 251 + 1))[:n]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.9.0.1", 5000))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(pattern)
got = bytearray()
while len(got) < n:
    chunk = c.recv(1 << 20)
    if not chunk:
        break
    got += chunk
rest = c.recv(1)
ok = hashlib.sha256(got).digest() == hashlib.sha256(pattern).digest() and rest == b""
c.close()
print("OK" if ok else "BAD %d" % len(got), flush=True)
"#;

/// A stack owning 10.9.0.2/24 on `device`, conflict detection on with quick probes.
async fn our_stack(device: AfPacket) -> std::io::Result<Stack> {
    stack_on(device, OURS).await
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// tcpdump on `iface` in namespace `ns`, writing headers to `file` as packets arrive.
struct Capture {
    child: KillOnDrop,
    file: std::path::PathBuf,
}

impl Capture {
    fn start(ns: &str, iface: &str, name: &str) -> Capture {
        let file = std::env::temp_dir().join(format!("rawtcp-{name}-{}.pcap", std::process::id()));
        let mut child = command_in(ns, "tcpdump")
            .args(["-i", iface, "-U", "-s", "128", "-n", "-B", "65536"])
            .args(["-w", file.to_str().unwrap(), "tcp"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        // tcpdump says "listening on ..." once it captures.
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = stderr.next().and_then(Result::ok).unwrap_or_default();
        assert!(first.contains("listening on"), "tcpdump: {first}");
        Capture {
            child: KillOnDrop(child),
            file,
        }
    }

    /// Waits until the capture holds the end of a close that we began (the kernel's FIN and
    /// a segment of ours after it), then stops it and returns tcpdump's reading of it, a line
    /// per packet. tcpdump may lag far behind a bulk transfer on a busy machine, and stopping
    /// it loses what its buffer still holds, so the file itself is watched.
    fn stop_after_close(mut self) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !close_on_file(&self.file) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        self.child.interrupt();
        let out = Command::new("tcpdump")
            .args(["-nr", self.file.to_str().unwrap()])
            .stderr(Stdio::null())
            .output()
            .expect("tcpdump -r");
        let _ = std::fs::remove_file(&self.file);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Whether the pcap file at `path` holds a FIN from the kernel and, after it, a segment from
/// us. Frames cut short by the snap length (data) do not parse and are skipped; the FIN and
/// the ACK that matter carry no data.
fn close_on_file(path: &std::path::Path) -> bool {
    use rawtcp::wire::RxChecksum;
    use rawtcp::wire::dissect::{Network, Transport, dissect};
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    // tcpdump writes the host's byte order; this machine is little-endian.
    if bytes.get(..4) != Some(&0xa1b2_c3d4u32.to_le_bytes()[..]) {
        return false;
    }
    let mut at = 24;
    let mut kernel_fin = false;
    while let Some(header) = bytes.get(at..at + 16) {
        let len = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + len) else {
            break; // a record still being written
        };
        at += 16 + len;
        if let Ok(Network::Ipv4 {
            header,
            transport: Transport::Tcp(tcp),
        }) = dissect(frame, RxChecksum::Trusted).map(|d| d.network)
        {
            if header.src_addr == OURS && kernel_fin {
                return true;
            }
            kernel_fin |= header.src_addr == KERNEL && tcp.flags.fin();
        }
    }
    false
}

/// The flags of a tcpdump line (`Flags [F.]` gives `F.`) and whether it went from us.
fn flags_of(line: &str) -> Option<(bool, &str)> {
    let from_us = line.contains(&format!("IP {OURS}."));
    let start = line.find("Flags [")? + "Flags [".len();
    let end = start + line[start..].find(']')?;
    Some((from_us, &line[start..end]))
}

/// Checks that `packets` end in a clean close that we began: our FIN, the kernel's FIN
/// after it (its ACK of ours alone or riding on it), and our ACK of the kernel's FIN last;
/// no RST anywhere.
fn assert_clean_close_we_began(packets: &[String]) {
    let flags: Vec<(bool, &str)> = packets.iter().filter_map(|l| flags_of(l)).collect();
    assert!(
        flags.iter().all(|(_, f)| !f.contains('R')),
        "no reset in the capture"
    );
    let our_fin = flags.iter().position(|&(us, f)| us && f.contains('F'));
    let their_fin = flags.iter().position(|&(us, f)| !us && f.contains('F'));
    let (Some(our_fin), Some(their_fin)) = (our_fin, their_fin) else {
        panic!(
            "both FINs are in the capture: {:?}",
            &packets[packets.len().saturating_sub(8)..]
        );
    };
    assert!(our_fin < their_fin, "we closed first");
    assert_eq!(
        flags.last(),
        Some(&(true, ".")),
        "our ACK of the kernel's FIN ends it: {:?}",
        &packets[packets.len().saturating_sub(6)..]
    );
    println!("the close, as tcpdump saw it:");
    for line in &packets[our_fin.saturating_sub(1)..] {
        println!("  {line}");
    }
}

/// Checks that `chunk`, found at `offset` of a stream, is the pattern there; `window` is
/// [`pattern`] of at least 251 bytes more than the chunk. A slice comparison (memcmp), so a
/// debug build checks gigabytes quickly; on a mismatch, finds the first bad byte.
fn check_pattern(window: &[u8], offset: usize, chunk: &[u8]) {
    let expected = &window[offset % 251..][..chunk.len()];
    if chunk != expected {
        let bad = chunk.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "byte {} of the stream is not the pattern's",
            offset + bad.unwrap_or(0)
        );
    }
}

/// Reads `len` bytes and checks each against the pattern, as they come.
async fn read_pattern(stream: &mut TcpStream, len: usize) {
    let window = pattern((1 << 16) + 251);
    let mut buf = vec![0u8; 1 << 16];
    let mut offset = 0;
    while offset < len {
        let n = stream
            .read(&mut buf[..(len - offset).min(1 << 16)])
            .await
            .unwrap();
        assert!(n > 0, "the stream ended at {offset} of {len} bytes");
        check_pattern(&window, offset, &buf[..n]);
        offset += n;
    }
}

/// Writes `len` bytes of the pattern.
async fn write_pattern(stream: &mut TcpStream, len: usize) {
    let chunk = pattern(251 * 256);
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(chunk.len());
        stream.write_all(&chunk[..n]).await.unwrap();
        offset += n;
    }
}

/// `segmentation`: our side sends through the virtio-net header, data in super-segments the
/// kernel cuts (in software on `d0`, whose offloads follow `offloads`, or on the peer's
/// receive path when they are on).
fn our_client_against_a_kernel_server(offloads: bool, segmentation: bool) {
    our_client_against_a_kernel_server_with(offloads, segmentation, IoMethod::default());
}

/// As [`our_client_against_a_kernel_server`], our device receiving by `io`.
fn our_client_against_a_kernel_server_with(offloads: bool, segmentation: bool, io: IoMethod) {
    const LEN: usize = 100 << 20;
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    bed.peer_offloads(offloads).expect("ethtool");
    if segmentation {
        let state = if offloads { "on" } else { "off" };
        bed.dut
            .exec_checked(&[
                "ethtool", "-K", "d0", "tx", state, "tso", state, "gso", state,
            ])
            .expect("ethtool on d0");
    }
    let capture = Capture::start(
        bed.peer.name(),
        "p0",
        &format!("bulk-{offloads}-{segmentation}-{io:?}"),
    );
    let (mut server, mut lines) = python_in(bed.peer.name(), KERNEL_SERVER, &[&LEN.to_string()]);
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let dut = bed.dut.name().to_string();
    let client = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(async {
                // Inside the runtime: a timer needs its reactor.
                tokio::time::timeout(std::time::Duration::from_secs(300), async {
                    let device = AfPacket::open_with(
                        "d0",
                        rawtcp::netio::AfPacketConfig {
                            vnet_hdr: segmentation,
                            io,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                    let stack = our_stack(device).await.unwrap();
                    let mut stream = TcpStream::connect(&stack, SocketAddrV4::new(KERNEL, 5000))
                        .await
                        .unwrap();
                    let start = std::time::Instant::now();
                    read_pattern(&mut stream, LEN).await;
                    let down = start.elapsed();
                    write_pattern(&mut stream, LEN).await;
                    stream.shutdown().await.unwrap();
                    let mut end = [0u8; 1];
                    assert_eq!(
                        stream.read(&mut end).await.unwrap(),
                        0,
                        "the kernel closed after us"
                    );
                    let both = start.elapsed();
                    let info = stack.connections();
                    drop(stream);
                    // Our ACK of the kernel's FIN goes out before the driver stops.
                    stack.shutdown().await;
                    (info, down, both)
                })
                .await
            })
            .expect("the exchange finished within 300 s")
    });
    let (info, down, both) = client.join().expect("client thread");
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "OK",
        "the kernel verified our bytes (SHA-256)"
    );
    assert!(server.0.wait().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_clean_close_we_began(&capture.stop_after_close());
    println!(
        "100 MB from the kernel in {down:.2?}, both ways and closed in {both:.2?} (debug build); \
         connection at the end: {info:?}"
    );
}

#[test]
fn our_client_exchanges_100_mb_with_a_kernel_server_offloads_off() {
    if !have_root("our_client_exchanges_100_mb_with_a_kernel_server_offloads_off") {
        return;
    }
    our_client_against_a_kernel_server(false, false);
}

#[test]
fn our_client_exchanges_100_mb_with_a_kernel_server_offloads_on() {
    if !have_root("our_client_exchanges_100_mb_with_a_kernel_server_offloads_on") {
        return;
    }
    our_client_against_a_kernel_server(true, false);
}

#[test]
fn our_client_exchanges_100_mb_in_super_segments_offloads_off() {
    if !have_root("our_client_exchanges_100_mb_in_super_segments_offloads_off") {
        return;
    }
    our_client_against_a_kernel_server(false, true);
}

/// The default device receives through a frame ring, whose slots the kernel's TSO
/// super-segments (offloads on) outgrow: each is read whole from the socket's queue in its
/// turn. recvmmsg, the other way in, must move the same bytes.
#[test]
fn our_client_exchanges_100_mb_through_recvmmsg_offloads_on() {
    if !have_root("our_client_exchanges_100_mb_through_recvmmsg_offloads_on") {
        return;
    }
    our_client_against_a_kernel_server_with(true, true, IoMethod::Batched);
}

#[test]
fn our_client_exchanges_100_mb_through_recvmmsg_offloads_off() {
    if !have_root("our_client_exchanges_100_mb_through_recvmmsg_offloads_off") {
        return;
    }
    our_client_against_a_kernel_server_with(false, false, IoMethod::Batched);
}

#[test]
fn our_client_exchanges_100_mb_in_super_segments_offloads_on() {
    if !have_root("our_client_exchanges_100_mb_in_super_segments_offloads_on") {
        return;
    }
    our_client_against_a_kernel_server(true, true);
}

#[test]
fn kernel_clients_to_our_echo_server_100_connections_of_1_mb() {
    if !have_root("kernel_clients_to_our_echo_server_100_connections_of_1_mb") {
        return;
    }
    const CLIENTS: usize = 100;
    const SIZE: usize = 1 << 20;
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let dut = bed.dut.name().to_string();
    let server = thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let stack = our_stack(AfPacket::open("d0").unwrap()).await.unwrap();
            let listener =
                rawtcp::TcpListener::bind(&stack, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
                    .await
                    .unwrap();
            ready_tx.send(()).unwrap();
            serve_echo(listener, stop_rx).await
        })
    });
    ready_rx.recv().unwrap();
    let (_clients, mut lines) = python_in(
        bed.peer.name(),
        KERNEL_ECHO_CLIENTS,
        &[&CLIENTS.to_string(), &SIZE.to_string()],
    );
    let verdict = lines.next().map(|l| l.unwrap()).unwrap_or_default();
    let _ = stop_tx.send(());
    let served = server.join().expect("server thread");
    assert!(
        verdict.starts_with("OK "),
        "every kernel client got its megabyte back: {verdict}"
    );
    assert_eq!(served, CLIENTS);
}

/// Runs `body` on a stack on d0 inside the DUT namespace, within 30 s.
fn on_our_side<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    bed: &VethBed,
    body: impl FnOnce(Stack) -> F + Send + 'static,
) -> thread::JoinHandle<T> {
    in_namespace(bed.dut.name(), move || async move {
        let stack = our_stack(AfPacket::open("d0").unwrap()).await.unwrap();
        body(stack).await
    })
}

#[test]
fn refused_both_ways() {
    if !have_root("refused_both_ways") {
        return;
    }
    let bed = VethBed::new(VethConfig::default()).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    // We connect to a kernel port nobody listens on.
    let ours = on_our_side(&bed, move |stack| async move {
        let error = TcpStream::connect(&stack, SocketAddrV4::new(KERNEL, 5999))
            .await
            .unwrap_err();
        // Our address is claimed and in use: now the kernel's connect below, answered by
        // this stack while it stays up.
        ready_tx.send(()).unwrap();
        let _ = done_rx.await;
        error.kind()
    });
    ready_rx.recv().expect("our side is up");
    // The kernel connects to a port of ours nobody listens on.
    let (_child, mut lines) = python_in(
        bed.peer.name(),
        "import socket\ntry:\n    socket.create_connection(('10.9.0.2', 6999), timeout=5)\n    print('connected')\nexcept ConnectionRefusedError:\n    print('refused')\n",
        &[],
    );
    let verdict = lines.next().map(|l| l.unwrap()).unwrap_or_default();
    let _ = done_tx.send(());
    assert_eq!(verdict, "refused", "the kernel got ConnectionRefusedError");
    assert_eq!(ours.join().unwrap(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn resets_both_ways() {
    if !have_root("resets_both_ways") {
        return;
    }
    let bed = VethBed::new(VethConfig::default()).unwrap();
    // The kernel accepts two connections: the first it resets (SO_LINGER 0); on the second
    // it waits for our abort and reports what recv saw.
    let script = r#"
import socket, struct
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.9.0.1", 5001)); s.listen(2); print("ready", flush=True)
c1, _ = s.accept()
c1.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c1.close()
c2, _ = s.accept()
try:
    data = c2.recv(10)
    print("eof" if data == b"" else "data", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
"#;
    let (_child, mut lines) = python_in(bed.peer.name(), script, &[]);
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let ours = on_our_side(&bed, |stack| async move {
        // The kernel resets the first connection as soon as it is accepted: the reset may
        // be taken in the driver's turn before the connecting task sees the handshake done,
        // and connect reports it then (as tokio's does on Linux, from SO_ERROR); else the
        // first read does.
        let mut buf = [0u8; 8];
        let first_error = match TcpStream::connect(&stack, SocketAddrV4::new(KERNEL, 5001)).await {
            Err(error) => error.kind(),
            Ok(mut first) => first.read(&mut buf).await.unwrap_err().kind(),
        };
        let second = TcpStream::connect(&stack, SocketAddrV4::new(KERNEL, 5001))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        second.abort();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        first_error
    });
    assert_eq!(
        ours.join().unwrap(),
        std::io::ErrorKind::ConnectionReset,
        "the kernel's SO_LINGER 0 close reset us"
    );
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "reset",
        "our abort reset the kernel"
    );
}

#[test]
fn half_close_both_ways() {
    if !have_root("half_close_both_ways") {
        return;
    }
    let bed = VethBed::new(VethConfig::default()).unwrap();
    // The kernel reads until our FIN, then answers on its still-open side and closes.
    let script = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.9.0.1", 5002)); s.listen(1); print("ready", flush=True)
c, _ = s.accept()
got = b""
while True:
    chunk = c.recv(4096)
    if not chunk:
        break
    got += chunk
c.sendall(b"you said: " + got)
c.shutdown(socket.SHUT_WR)
print("done", flush=True)
c.close()
"#;
    let (_child, mut lines) = python_in(bed.peer.name(), script, &[]);
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let ours = on_our_side(&bed, |stack| async move {
        let mut stream = TcpStream::connect(&stack, SocketAddrV4::new(KERNEL, 5002))
            .await
            .unwrap();
        stream.write_all(b"half-close").await.unwrap();
        // Our side is shut; reading goes on.
        stream.shutdown().await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        String::from_utf8(reply).unwrap()
    });
    assert_eq!(ours.join().unwrap(), "you said: half-close");
    assert_eq!(lines.next().unwrap().unwrap(), "done");
}

/// A directory of this test process's under the temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rawtcp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `python3 -m http.server` on 10.9.0.1:8000 in namespace `ns`, serving `dir`, once it
/// says it serves.
fn http_server_in(ns: &str, dir: &std::path::Path) -> KillOnDrop {
    let (server, mut ready) = KillOnDrop::spawn(
        command_in(ns, "python3")
            .args(["-u", "-m", "http.server", "8000", "--bind", "10.9.0.1"])
            .arg("--directory")
            .arg(dir)
            .stderr(Stdio::null()),
    );
    let first = ready.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains("Serving HTTP"), "http.server: {first}");
    server
}

/// An example binary, built by `cargo test` next to the test binaries.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

/// An example run on d0 in the DUT namespace, as rawtcp's 10.9.0.2/24.
fn example_on_d0(bed: &VethBed, name: &str) -> Command {
    let mut command = command_in(bed.dut.name(), example(name));
    command.args(["--iface", "d0", "--ip", "10.9.0.2/24"]);
    command
}

/// Runs `program args` in namespace `ns` with `input` on stdin; its stdout.
fn run_in(ns: &str, program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = command_in(ns, program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeding = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("the program ends");
    feeding.join().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        out.status
    );
    out.stdout
}

#[test]
fn socat_clients_to_the_echo_server_example() {
    if !have_root("socat_clients_to_the_echo_server_example") {
        return;
    }
    const CLIENTS: usize = 10;
    const SIZE: usize = 1 << 20;
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    let (mut server, mut lines) =
        KillOnDrop::spawn(example_on_d0(&bed, "echo_server").args(["--port", "7"]));
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("listening on 10.9.0.2:7"), "{first}");
    let peer = bed.peer.name().to_string();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let peer = peer.clone();
            thread::spawn(move || {
                let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 + n) as u8).collect();
                // -t: after our EOF, wait for the echo to end rather than 0.5 s.
                let echoed = run_in(&peer, "socat", &["-t", "60", "-", "TCP:10.9.0.2:7"], &data);
                assert_eq!(echoed.len(), SIZE, "client {n}: the whole echo");
                assert!(echoed == data, "client {n}: the echo is what was sent");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a socat client");
    }
    let status = server.interrupt();
    assert!(
        status.success(),
        "echo_server exits cleanly on Ctrl-C: {status}"
    );
}

#[test]
fn curl_fetches_from_http_on_rawtcp() {
    if !have_root("curl_fetches_from_http_on_rawtcp") {
        return;
    }
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    let (mut server, mut lines) =
        KillOnDrop::spawn(example_on_d0(&bed, "http_get").args(["--serve", "80"]));
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("serving http://10.9.0.2:80/"), "{first}");
    let page = run_in(
        bed.peer.name(),
        "curl",
        &["-sS", "--fail", "http://10.9.0.2/"],
        b"",
    );
    assert!(String::from_utf8_lossy(&page).contains("Hello from rawtcp"));
    let body = run_in(
        bed.peer.name(),
        "curl",
        &["-sS", "--fail", "http://10.9.0.2/bytes/5000000"],
        b"",
    );
    assert_eq!(body.len(), 5_000_000);
    assert!(
        body.iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8)
    );
    let head = run_in(
        bed.peer.name(),
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://10.9.0.2/nothing",
        ],
        b"",
    );
    assert_eq!(head, b"404");
    let status = server.interrupt();
    assert!(
        status.success(),
        "the server exits cleanly on Ctrl-C: {status}"
    );
}

#[test]
fn http_get_fetches_from_python_http_server() {
    if !have_root("http_get_fetches_from_python_http_server") {
        return;
    }
    const SIZE: usize = 3_000_000;
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    let dir = TempDir::new("http");
    std::fs::write(dir.0.join("file.bin"), pattern(SIZE)).unwrap();
    let _server = http_server_in(bed.peer.name(), &dir.0);
    let out = example_on_d0(&bed, "http_get")
        .args(["--connect", "10.9.0.1:8000", "--path", "/file.bin"])
        .output()
        .expect("http_get runs");
    drop(dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "http_get: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("HTTP/1.0 200 OK"));
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with(&format!("body: {SIZE} bytes")),
        "{stdout}"
    );
}

/// The kernel's sink for the long transfers: accepts `count` connections on 10.9.0.1:5001 one
/// after the other, checks each one's bytes against the pattern as they come, and prints
/// `OK <bytes>` or `BAD <offset>` for each.
const KERNEL_SINK: &str = r#"
import socket, sys
count = int(sys.argv[1])
window = bytes(range(251)) * ((1 << 16) // 251 + 2)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.9.0.1", 5001))
s.listen(1)
print("ready", flush=True)
for _ in range(count):
    c, _ = s.accept()
    offset, bad = 0, None
    while True:
        chunk = c.recv(1 << 16)
        if not chunk:
            break
        if bad is None and chunk != window[offset % 251:offset % 251 + len(chunk)]:
            bad = offset + next(i for i, b in enumerate(chunk) if b != window[(offset + i) % 251])
        offset += len(chunk)
    c.close()
    print("OK %d" % offset if bad is None else "BAD %d" % bad, flush=True)
"#;

/// How much each long transfer moves: past the point where the hang of issue 17 showed
/// (9–55 MB), and long enough that the socket queue fills many times over.
const LONG: usize = 1 << 30;

/// A deliberately small AF_PACKET receive buffer (the kernel doubles it): a few dozen
/// frames, so the socket's queue fills and the kernel drops frames again and again.
const SMALL_RECV_BUFFER: usize = 32 << 10;

/// The body of an HTTP/1.0 GET of `path` from 10.9.0.1:8000, checked against the pattern as
/// it comes; its length.
async fn http_get_pattern(stack: &Stack, path: &str) -> usize {
    let mut stream = TcpStream::connect(stack, SocketAddrV4::new(KERNEL, 8000))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: 10.9.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut head = Vec::new();
    let body_start = loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed before its headers ended");
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    assert!(
        head.starts_with(b"HTTP/1.0 200"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    let window = pattern((1 << 16) + 251);
    check_pattern(&window, 0, &head[body_start..]);
    let mut offset = head.len() - body_start;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return offset;
        }
        check_pattern(&window, offset, &buf[..n]);
        offset += n;
    }
}

/// One long transfer each way on a stack over d0: a `LONG` fetch from the kernel's HTTP
/// server, then `LONG` bytes to the kernel's sink. Runs on a multi-threaded runtime, as an
/// application's `#[tokio::main]` does (the reactor then turns on another thread while the
/// driver works, which is how the lost wakeup of issue 17 struck).
fn long_transfer_run(
    dut: &str,
    recv_buffer: Option<usize>,
) -> (std::time::Duration, rawtcp::DriverStats) {
    let dut = dut.to_string();
    thread::spawn(move || {
        netns::enter(&dut).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let device = AfPacket::open_with(
                "d0",
                rawtcp::netio::AfPacketConfig {
                    recv_buffer,
                    ..Default::default()
                },
            )
            .unwrap();
            let stack = our_stack(device).await.unwrap();
            let start = std::time::Instant::now();
            // A hang detector, not a speed check: a debug build moves a gigabyte in well
            // under a minute here.
            let bound = std::time::Duration::from_secs(600);
            let fetched = tokio::time::timeout(bound, http_get_pattern(&stack, "/big.bin"))
                .await
                .expect("the fetch finished: no hang");
            assert_eq!(fetched, LONG, "the whole body");
            let sent = tokio::time::timeout(bound, async {
                let mut stream = TcpStream::connect(&stack, SocketAddrV4::new(KERNEL, 5001))
                    .await
                    .unwrap();
                write_pattern(&mut stream, LONG).await;
                stream.shutdown().await.unwrap();
                let mut end = [0u8; 1];
                stream.read(&mut end).await.unwrap()
            })
            .await
            .expect("the send finished: no hang");
            assert_eq!(sent, 0, "the sink closed after our FIN");
            let elapsed = start.elapsed();
            // The driver reads the device's drop counter once more as it stops.
            let handle = stack.clone();
            stack.shutdown().await;
            (elapsed, handle.driver_stats())
        })
    })
    .join()
    .expect("the transfers")
}

/// Issue 17: with the default receive buffer and a small one (the socket's queue fills and
/// the kernel drops), a gigabyte each way, twice in a row each, byte-exact, never hanging.
fn long_transfers(offloads: bool) {
    const RUNS: usize = 2;
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    bed.peer_offloads(offloads).expect("ethtool");
    let state = if offloads { "on" } else { "off" };
    bed.dut
        .exec_checked(&[
            "ethtool", "-K", "d0", "tx", state, "tso", state, "gso", state, "gro", state,
        ])
        .expect("ethtool on d0");
    // Removed when the test ends, also when it fails: it holds a gigabyte.
    let dir = TempDir::new(&format!("long-{offloads}"));
    {
        use std::io::Write;
        let chunk = pattern(251 << 12);
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(dir.0.join("big.bin")).unwrap());
        let mut left = LONG;
        while left > 0 {
            let n = left.min(chunk.len());
            file.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        file.flush().unwrap();
    }
    let _http = http_server_in(bed.peer.name(), &dir.0);
    let buffers = [
        (
            "default",
            rawtcp::netio::AfPacketConfig::default().recv_buffer,
        ),
        ("small", Some(SMALL_RECV_BUFFER)),
    ];
    let (_sink, mut verdicts) = python_in(
        bed.peer.name(),
        KERNEL_SINK,
        &[&(RUNS * buffers.len()).to_string()],
    );
    assert_eq!(verdicts.next().unwrap().unwrap(), "ready");
    for (name, recv_buffer) in buffers {
        for run in 1..=RUNS {
            let (elapsed, stats) = long_transfer_run(bed.dut.name(), recv_buffer);
            let verdict = verdicts.next().and_then(Result::ok).unwrap_or_default();
            assert_eq!(
                verdict,
                format!("OK {LONG}"),
                "the kernel sink checked our bytes"
            );
            assert_eq!(stats.lost_wakeups, 0, "no lost wakeup: {stats:?}");
            println!(
                "offloads {state}, {name} receive buffer, run {run}: 1 GiB each way in \
                 {elapsed:.2?} (debug build); frames the socket dropped: {}",
                stats.device_rx_drops
            );
        }
    }
}

#[test]
fn long_transfers_never_hang_offloads_off() {
    if !have_root("long_transfers_never_hang_offloads_off") {
        return;
    }
    long_transfers(false);
}

#[test]
fn long_transfers_never_hang_offloads_on() {
    if !have_root("long_transfers_never_hang_offloads_on") {
        return;
    }
    long_transfers(true);
}
