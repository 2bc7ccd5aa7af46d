//! RFC 5227 address conflict detection against real neighbours, as root, in namespaces each
//! test creates (TESTBED.md): another rawtcp stack on the same veth end, the kernel holding
//! the address, and a conflicting ARP after start. Without root each test prints one line
//! and passes.

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rawtcp::netio::testbed::{VethBed, VethConfig, have_root};
use rawtcp::netio::{AfPacket, Device, FrameBatch, netns};
use rawtcp::wire::arp::{self, ArpRepr, Operation};
use rawtcp::wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp::{Stack, TcpListener};

mod common;
use common::{in_namespace, stack_on};

const OURS: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

/// A stack owning `address`/24 on `d0` (see [`stack_on`]).
async fn stack_on_d0(address: Ipv4Addr) -> std::io::Result<Stack> {
    stack_on(AfPacket::open("d0")?, address).await
}

#[test]
fn a_second_stack_on_the_same_veth_end_cannot_claim_the_address() {
    if !have_root("a_second_stack_on_the_same_veth_end_cannot_claim_the_address") {
        return;
    }
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    let dut_mac = bed.config.dut_mac;
    let outcome = in_namespace(bed.dut.name(), move || async move {
        let first = stack_on_d0(OURS)
            .await
            .expect("the first stack claims 10.9.0.2");
        let _listener = TcpListener::bind(&first, "0.0.0.0:7".parse().unwrap())
            .await
            .unwrap();
        let second = stack_on_d0(OURS).await.map(drop);
        // Another address on the same interface is free: the README runs its examples so.
        let other = stack_on_d0(Ipv4Addr::new(10, 9, 0, 3)).await.map(drop);
        (second, other, first.stats())
    })
    .join()
    .unwrap();
    let (second, other, first_stats) = outcome;
    let error = second.expect_err("the second stack must not start");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    let message = error.to_string();
    println!("the second stack: {message}");
    for part in ["10.9.0.2", "d0", &dut_mac.to_string(), "another program"] {
        assert!(message.contains(part), "{part:?} in {message:?}");
    }
    other.expect("10.9.0.3 on the same d0 starts");
    assert_eq!(
        first_stats.address_conflicts, 0,
        "a probe is answered, not counted"
    );
}

#[test]
fn the_kernel_holding_the_address_keeps_rawtcp_from_starting() {
    if !have_root("the_kernel_holding_the_address_keeps_rawtcp_from_starting") {
        return;
    }
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    bed.peer
        .ip(&["addr", "add", "10.9.0.2/24", "dev", "p0"])
        .expect("the peer kernel takes 10.9.0.2 too");
    let peer_mac = bed.config.peer_mac;
    let result = in_namespace(bed.dut.name(), || async {
        stack_on_d0(OURS).await.map(drop)
    })
    .join()
    .unwrap();
    let error = result.expect_err("rawtcp must refuse an address the kernel holds");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    let message = error.to_string();
    println!("rawtcp: {message}");
    for part in ["10.9.0.2", "d0", &peer_mac.to_string()] {
        assert!(message.contains(part), "{part:?} in {message:?}");
    }
}

/// An Ethernet frame carrying `arp`, broadcast from `src`.
fn arp_broadcast(src: EthernetAddress, arp: &ArpRepr) -> Vec<u8> {
    let mut frame = vec![0u8; 14 + arp.buffer_len()];
    EthernetRepr {
        src_addr: src,
        dst_addr: EthernetAddress::BROADCAST,
        vlan_tci: None,
        ethertype: EtherType::Arp,
    }
    .emit(&mut Frame::new_unchecked(&mut frame[..]));
    arp.emit(&mut arp::Packet::new_unchecked(&mut frame[14..]));
    frame
}

#[test]
fn a_conflict_after_start_is_counted_and_defended() {
    if !have_root("a_conflict_after_start_is_counted_and_defended") {
        return;
    }
    let bed = VethBed::new(VethConfig::default()).expect("veth bed");
    let (dut_mac, peer_mac) = (bed.config.dut_mac, bed.config.peer_mac);
    let (ready_tx, ready_rx) = mpsc::channel();
    let ours = in_namespace(bed.dut.name(), move || async move {
        let stack = stack_on_d0(OURS).await.expect("10.9.0.2 is free");
        // Both announcements of the claim are out (RFC 5227 §2.3), so that any further one
        // is a defence.
        while stack.stats().arp_announcements < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ready_tx.send(()).unwrap();
        while stack.stats().address_conflicts == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Room for a second, undefended conflict to be counted too.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stack.stats()
    });
    ready_rx.recv().unwrap();
    // From the peer's namespace, a host at p0's MAC claims 10.9.0.2, twice: an ARP reply, as
    // a host with a stale or misconfigured address sends.
    let peer = bed.peer.name().to_string();
    let heard = thread::spawn(move || {
        netns::enter(&peer).unwrap();
        let mut device = AfPacket::open("p0").unwrap();
        let claim = ArpRepr {
            operation: Operation::Reply,
            source_hardware_addr: peer_mac,
            source_protocol_addr: OURS,
            target_hardware_addr: EthernetAddress::BROADCAST,
            target_protocol_addr: OURS,
        };
        let mut out = FrameBatch::new(2, 1514);
        out.push_frame(&arp_broadcast(peer_mac, &claim));
        out.push_frame(&arp_broadcast(peer_mac, &claim));
        assert_eq!(device.send(&mut out).unwrap(), 2);
        // Our defence: an announcement of 10.9.0.2 at d0's MAC.
        let mut batch = FrameBatch::new(16, 1514);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            batch.clear();
            if device.recv(&mut batch).unwrap() == 0 {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
            for (frame, _) in batch.iter() {
                let Some(arp) = Frame::new_checked(frame)
                    .ok()
                    .filter(|f| f.ethertype() == EtherType::Arp)
                    .and_then(|f| {
                        arp::Packet::new_checked(f.payload())
                            .and_then(|p| ArpRepr::parse(&p))
                            .ok()
                    })
                else {
                    continue;
                };
                if arp == ArpRepr::announcement(dut_mac, OURS) {
                    return true;
                }
            }
        }
        false
    });
    let stats = ours.join().unwrap();
    assert!(heard.join().unwrap(), "our defence was seen on p0");
    assert_eq!(
        stats.address_conflicts, 2,
        "both claims counted (RFC 5227 §2.4)"
    );
    assert_eq!(
        stats.arp_announcements, 3,
        "two at the claim, one defence: the second claim came within DEFEND_INTERVAL"
    );
}
