//! What the facade's tests share: for the in-memory ones the two addresses and a pair of
//! stacks; for those in network namespaces a stack on AF_PACKET and a thread in a namespace.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use rawtcp::Stack;
use rawtcp::core::{Config, ConflictDetection, Ipv4Cidr};
use rawtcp::netio::{AfPacket, MemLinkEnd, netns};

/// The server's address on the in-memory link.
pub(crate) const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
/// The client's address on the in-memory link.
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

/// A client stack on `left` and a server stack on `right`, started (a MemLink has no
/// address to probe, so `spawn` returns at once).
pub(crate) async fn stacks_on(left: MemLinkEnd, right: MemLinkEnd) -> (Stack, Stack) {
    let client = Stack::builder()
        .device(left)
        .ipv4(CLIENT, 24)
        .spawn()
        .await
        .expect("a MemLink stack starts");
    let server = Stack::builder()
        .device(right)
        .ipv4(SERVER, 24)
        .spawn()
        .await
        .expect("a MemLink stack starts");
    (client, server)
}

/// A stack owning `address`/24 on `device`, conflict detection on with RFC 5227's delays
/// scaled to 20 ms a second (a claim takes 80–140 ms instead of 4–7 s), seeded by this
/// process and the address (two stacks of one test draw apart).
pub(crate) async fn stack_on(device: AfPacket, address: Ipv4Addr) -> std::io::Result<Stack> {
    let mut config = Config::new(device.mac(), Ipv4Cidr::new(address, 24));
    config.conflict_detection = ConflictDetection::scaled(Duration::from_millis(20));
    config.seed = u64::from(std::process::id()) ^ u64::from(u32::from(address));
    Stack::builder()
        .device(device)
        .ipv4(address, 24)
        .config(config)
        .spawn()
        .await
}

/// Runs `body` on a current-thread runtime in a thread inside namespace `ns`, within 30 s.
pub(crate) fn in_namespace<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    ns: &str,
    body: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        netns::enter(&ns).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), body())
                .await
                .expect("finished within 30 s")
        })
    })
}

/// A SYN to `dst` from a spoofed `src`, as an Ethernet frame to `dst_mac` (for flood tests).
pub(crate) fn spoofed_syn(
    dst_mac: rawtcp::wire::ethernet::EthernetAddress,
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    isn: u32,
) -> Vec<u8> {
    use rawtcp::wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
    use rawtcp::wire::ipv4::{self, IpProtocol, Ipv4Repr};
    use rawtcp::wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr};
    use rawtcp::wire::{SeqNum, TxChecksum};
    let syn = TcpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        seq_number: SeqNum::new(isn),
        ack_number: SeqNum::new(0),
        flags: TcpFlags::SYN,
        window_len: 65535,
        urgent_pointer: 0,
        options: TcpOptions {
            max_seg_size: Some(1460),
            ..TcpOptions::default()
        },
        payload: &[],
    };
    let len = syn.buffer_len();
    let mut frame = vec![0u8; 14 + 20 + len];
    EthernetRepr {
        src_addr: EthernetAddress([2, 0xee, 0, 0, 0, 1]),
        dst_addr: dst_mac,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut Frame::new_unchecked(&mut frame[..]));
    Ipv4Repr {
        ident: 1,
        ..Ipv4Repr::new(*src.ip(), *dst.ip(), IpProtocol::Tcp, len)
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut frame[14..]));
    syn.emit(
        &mut tcp::Packet::new_unchecked(&mut frame[34..]),
        *src.ip(),
        *dst.ip(),
        TxChecksum::Full,
    );
    frame
}

/// Kernel clients: `argv[1]` concurrent connections to 10.9.0.2:7, each sending `argv[2]` bytes
/// of a pattern and reading them back. Prints `OK <tcpi_options> <tcpi_snd_wscale>
/// <tcpi_snd_mss>` (from TCP_INFO: what the handshake negotiated, as the kernel saw it) when
/// every echo matched and every connection negotiated the same, else `BAD ...`.
pub(crate) const KERNEL_ECHO_CLIENTS: &str = r#"
import socket, sys, threading
n, size = int(sys.argv[1]), int(sys.argv[2])
pattern = (bytes(range(251)) * (size // 251 + 1))[:size]
results = [None] * n
def run(i):
    s = socket.create_connection(("10.9.0.2", 7), timeout=60)
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

/// Kills the kernel-side program if the test fails before it ends.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

/// A program's stdout, a line at a time as it comes.
pub(crate) type Lines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// `program` in namespace `ns`. `ip netns exec` execs it, so the child's pid is the
/// program's own.
pub(crate) fn command_in(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program);
    command
}

impl KillOnDrop {
    /// Starts `command` with its stdout piped.
    pub(crate) fn spawn(command: &mut Command) -> (KillOnDrop, Lines) {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        (KillOnDrop(child), lines)
    }

    /// Ctrl-C, then its exit status.
    pub(crate) fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        self.0.wait().expect("the program exits")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `script` with python3 in `ns` and returns its stdout lines as they come.
pub(crate) fn python_in(ns: &str, script: &str, args: &[&str]) -> (KillOnDrop, Lines) {
    KillOnDrop::spawn(command_in(ns, "python3").args(["-c", script]).args(args))
}

/// Echoes every connection `listener` accepts, each in its own task, until `stop` fires;
/// returns how many it accepted. Each echo passes the client's half-close on and lingers
/// until the client has read everything and closed.
pub(crate) async fn serve_echo(
    listener: rawtcp::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut served = 0usize;
    let accept_loop = async {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            served += 1;
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
        _ = stop => {}
    }
    served
}
