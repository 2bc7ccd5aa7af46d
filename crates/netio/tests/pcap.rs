//! Captures written by Pcap and FlightRecorder, read back by tcpdump.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::{push_tcp, require_tool};
use rawtcp_netio::{FlightRecorder, FrameBatch, MemLink, Pcap, PcapWriter};
use rawtcp_wire::arp::{self, ArpRepr, Operation};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp_wire::tcp::{TcpFlags, TcpOptions, TcpRepr};
use rawtcp_wire::{SeqNum, TxChecksum};

const A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

fn arp_request(batch: &mut FrameBatch) {
    let ethernet = EthernetRepr {
        src_addr: A,
        dst_addr: EthernetAddress::BROADCAST,
        vlan_tci: None,
        ethertype: EtherType::Arp,
    };
    let request = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: A,
        source_protocol_addr: A_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: B_IP,
    };
    let frame = batch.push(42).unwrap();
    ethernet.emit(&mut Frame::new_unchecked(&mut *frame));
    request.emit(&mut arp::Packet::new_unchecked(&mut frame[14..]));
}

fn syn(batch: &mut FrameBatch) {
    let tcp = TcpRepr {
        src_port: 49152,
        dst_port: 80,
        seq_number: SeqNum::new(1000),
        ack_number: SeqNum::new(0),
        flags: TcpFlags::SYN,
        window_len: 64240,
        urgent_pointer: 0,
        options: TcpOptions {
            max_seg_size: Some(1460),
            ..TcpOptions::default()
        },
        payload: &[],
    };
    push_tcp(batch, (A, A_IP), (B, B_IP), &tcp, TxChecksum::Full);
}

fn tcpdump(path: &std::path::Path) -> String {
    require_tool("tcpdump");
    let output = Command::new("tcpdump")
        .args(["-nn", "-vv", "-r"])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tcpdump failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn pcap_device_capture_reads_back_in_tcpdump() {
    let dir = std::env::temp_dir().join(format!("rawtcp-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sent-and-received.pcap");
    let (a, mut b) = MemLink::pair();
    let mut a = Pcap::to_file(a, &path).unwrap();
    let mut out = FrameBatch::new(8, 1514);
    arp_request(&mut out);
    syn(&mut out);
    rawtcp_netio::Device::send(&mut a, &mut out).unwrap();
    // Echo both frames back so the capture holds received frames too.
    let mut inbox = FrameBatch::new(8, 1514);
    assert_eq!(
        b.recv_at(rawtcp_core::Instant::from_secs(1 << 30), &mut inbox),
        2
    );
    let mut echo = FrameBatch::new(8, 1514);
    for (frame, _) in inbox.iter() {
        echo.push_frame(frame);
    }
    // Due at once, whatever tokio's clock (which the Device side reads) says.
    b.send_at(rawtcp_core::Instant::ZERO, &mut echo);
    let mut back = FrameBatch::new(8, 1514);
    // MemLink as a Device reads tokio's clock; outside a runtime it is std's.
    assert_eq!(rawtcp_netio::Device::recv(&mut a, &mut back).unwrap(), 2);
    a.into_inner().unwrap();
    let text = tcpdump(&path);
    assert_eq!(
        text.matches("Request who-has 10.9.0.2 tell 10.9.0.1")
            .count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("10.9.0.1.49152 > 10.9.0.2.80: Flags [S], cksum")
            .count(),
        2,
        "{text}"
    );
    assert!(text.contains("(correct)"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flight_recorder_writes_a_readable_capture() {
    let mut batch = FrameBatch::new(64, 1514);
    let mut recorder = FlightRecorder::new(5, 1 << 20);
    for _ in 0..4 {
        arp_request(&mut batch);
        syn(&mut batch);
    }
    for (frame, _) in batch.iter() {
        recorder.record(std::time::SystemTime::now(), frame);
    }
    assert_eq!(recorder.len(), 5);
    let path = std::env::temp_dir().join(format!("rawtcp-recorder-{}.pcap", std::process::id()));
    recorder
        .write_pcap(std::fs::File::create(&path).unwrap())
        .unwrap();
    let text = tcpdump(&path);
    // The newest five of eight frames: SYN, ARP, SYN, ARP, SYN.
    assert_eq!(text.matches("Flags [S]").count(), 3, "{text}");
    assert_eq!(text.matches("Request who-has").count(), 2, "{text}");
    std::fs::remove_file(&path).unwrap();
    let empty = PcapWriter::new(Vec::new()).unwrap().into_inner().unwrap();
    assert_eq!(empty.len(), 24);
}
