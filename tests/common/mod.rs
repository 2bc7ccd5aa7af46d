//! What the facade's tests share: for the in-memory ones the two addresses and a pair of
//! stacks; for those in network namespaces a stack on AF_PACKET and a thread in a namespace.
#![allow(dead_code)]

use std::net::Ipv4Addr;
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
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        protocol: IpProtocol::Tcp,
        payload_len: len,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: &[],
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
