//! Test beds in network namespaces (TESTBED.md) and a tiny ARP/ICMP responder built only on
//! netio and wire.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::Command;

use rawtcp_netio::{ChecksumStatus, Device, FrameBatch};
use rawtcp_wire::TxChecksum;
use rawtcp_wire::arp::{self, ArpRepr, Operation};
use rawtcp_wire::checksum;
use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp_wire::icmpv4::{self, Icmpv4Repr};
use rawtcp_wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{self, TcpRepr};

pub(crate) use rawtcp_netio::testbed::{Netns, VethBed, VethConfig};

/// Fails with a clear message when a tool the test needs is missing (`.ci/run` installs them).
pub(crate) fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: .ci/run installs it (apt-get install)"
    );
}

/// A bed with the default addresses: DUT_MAC on d0, PEER_MAC and PEER_IP on p0.
pub(crate) fn veth_bed() -> VethBed {
    VethBed::new(VethConfig::default()).expect("build the veth test bed")
}

pub(crate) const DUT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0d, 0x01]);
pub(crate) const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0e, 0x01]);
pub(crate) const DUT_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
pub(crate) const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

/// What the responder saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    pub(crate) arp_requests: usize,
    pub(crate) echo_requests: usize,
    pub(crate) udp: usize,
    pub(crate) udp_partial: usize,
    pub(crate) udp_checksum_ok: usize,
}

/// Answers ARP requests for `ip` and ICMP echo requests to it; counts UDP datagrams to it and
/// whether their checksums are partial (built on this host, unfinished) or verify.
pub(crate) fn respond(
    inbox: &FrameBatch,
    outbox: &mut FrameBatch,
    mac: EthernetAddress,
    ip: Ipv4Addr,
    seen: &mut Seen,
) {
    for (frame, meta) in inbox.iter() {
        let Ok(dissection) = dissect(frame, meta.checksum.rx_checksum()) else {
            continue;
        };
        match dissection.network {
            Network::Arp(request)
                if request.operation == Operation::Request
                    && request.target_protocol_addr == ip =>
            {
                seen.arp_requests += 1;
                let reply = ArpRepr {
                    operation: Operation::Reply,
                    source_hardware_addr: mac,
                    source_protocol_addr: ip,
                    target_hardware_addr: request.source_hardware_addr,
                    target_protocol_addr: request.source_protocol_addr,
                };
                let ethernet = EthernetRepr {
                    src_addr: mac,
                    dst_addr: request.source_hardware_addr,
                    vlan_tci: None,
                    ethertype: EtherType::Arp,
                };
                let out = outbox
                    .push(ethernet.buffer_len() + reply.buffer_len())
                    .expect("room in the outbox");
                ethernet.emit(&mut Frame::new_unchecked(&mut *out));
                reply.emit(&mut arp::Packet::new_unchecked(
                    &mut out[ethernet.buffer_len()..],
                ));
            }
            Network::Ipv4 { header, transport } if header.dst_addr == ip => match transport {
                Transport::Icmp(Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }) => {
                    seen.echo_requests += 1;
                    let reply = Icmpv4Repr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    };
                    let ip_reply = Ipv4Repr {
                        src_addr: ip,
                        dst_addr: header.src_addr,
                        protocol: IpProtocol::Icmp,
                        payload_len: reply.buffer_len(),
                        ttl: 64,
                        dscp: 0,
                        ecn: 0,
                        ident: seq_no,
                        dont_frag: false,
                        more_frags: false,
                        frag_offset: 0,
                        options: &[],
                    };
                    let ethernet = EthernetRepr {
                        src_addr: mac,
                        dst_addr: dissection.ethernet.src_addr,
                        vlan_tci: None,
                        ethertype: EtherType::Ipv4,
                    };
                    let total = ethernet.buffer_len() + ip_reply.header_len() + reply.buffer_len();
                    let out = outbox.push(total).expect("room in the outbox");
                    ethernet.emit(&mut Frame::new_unchecked(&mut *out));
                    let ip_start = ethernet.buffer_len();
                    ip_reply.emit(&mut ipv4::Packet::new_unchecked(&mut out[ip_start..]));
                    reply.emit(&mut icmpv4::Packet::new_unchecked(
                        &mut out[ip_start + ip_reply.header_len()..],
                    ));
                }
                Transport::Other(datagram) if header.protocol == IpProtocol::Udp => {
                    seen.udp += 1;
                    if meta.checksum == ChecksumStatus::Partial {
                        seen.udp_partial += 1;
                    } else {
                        let pseudo = checksum::pseudo_header_v4(
                            header.src_addr,
                            header.dst_addr,
                            17,
                            datagram.len() as u16,
                        );
                        if checksum::combine(&[pseudo, checksum::data(datagram)]) == 0xffff {
                            seen.udp_checksum_ok += 1;
                        }
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// Runs `respond` on `device` until `stop` resolves, inside a current-thread runtime on the
/// calling thread (which has entered the device's namespace).
pub(crate) fn serve<D: Device>(
    mut device: D,
    mac: EthernetAddress,
    ip: Ipv4Addr,
    stop: std::sync::mpsc::Receiver<()>,
) -> Seen {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let max = device.capabilities().max_frame_len;
        let mut inbox = FrameBatch::new(64, max);
        let mut outbox = FrameBatch::new(64, max);
        let mut seen = Seen::default();
        loop {
            if stop.try_recv().is_ok() {
                return seen;
            }
            let ready = tokio::time::timeout(
                std::time::Duration::from_millis(20),
                std::future::poll_fn(|cx| device.poll_recv_ready(cx)),
            )
            .await;
            if let Ok(result) = ready {
                result.expect("poll_recv_ready");
            }
            inbox.clear();
            device.recv(&mut inbox).expect("recv");
            respond(&inbox, &mut outbox, mac, ip, &mut seen);
            while !outbox.is_empty() {
                std::future::poll_fn(|cx| device.poll_send_ready(cx))
                    .await
                    .expect("poll_send_ready");
                device.send(&mut outbox).expect("send");
            }
        }
    })
}

/// Runs a program in `ns`; panics if it cannot be started.
pub(crate) fn exec(ns: &Netns, args: &[&str]) -> std::process::Output {
    ns.exec(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `ip -n NS ...`; panics on failure.
pub(crate) fn ns_ip(ns: &Netns, args: &[&str]) {
    ns.ip(args).unwrap_or_else(|e| panic!("{e}"));
}

/// Writes one Ethernet/IPv4/TCP frame for `tcp` from `src` to `dst` (MAC, IP) into `batch`,
/// its TCP checksum as `checksum` says (`Partial` leaves the pseudo-header sum for offload).
pub(crate) fn push_tcp(
    batch: &mut FrameBatch,
    src: (EthernetAddress, Ipv4Addr),
    dst: (EthernetAddress, Ipv4Addr),
    tcp: &TcpRepr<'_>,
    checksum: TxChecksum,
) {
    let ip = Ipv4Repr {
        src_addr: src.1,
        dst_addr: dst.1,
        protocol: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: &[],
    };
    let ethernet = EthernetRepr {
        src_addr: src.0,
        dst_addr: dst.0,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    };
    let frame = batch.push(14 + 20 + tcp.buffer_len()).unwrap();
    ethernet.emit(&mut Frame::new_unchecked(&mut *frame));
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[14..]));
    tcp.emit(
        &mut tcp::Packet::new_unchecked(&mut frame[34..]),
        src.1,
        dst.1,
        checksum,
    );
}
