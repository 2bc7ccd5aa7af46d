//! DESIGN.md scenarios 1-3 as the Linux kernel sent them, decoded field by field, and
//! re-emitted byte for byte from our reprs.

mod fixtures;

use std::net::Ipv4Addr;

use rawtcp_wire::dissect::{Network, Transport, dissect};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, Frame};
use rawtcp_wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{self, TcpFlags, TcpRepr, Timestamps};
use rawtcp_wire::{RxChecksum, SeqNum, TxChecksum};

const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const CLIENT_ISN: u32 = 790_412_166;
const SERVER_ISN: u32 = 2_876_832_232;

/// Parses a frame of the fixture, checking the layers every frame shares.
fn tcp_of(frame: &[u8]) -> (Ipv4Repr<'_>, TcpRepr<'_>) {
    let dissection = dissect(frame, RxChecksum::Verify).expect("fixture frames are valid");
    assert_eq!(dissection.ethernet.ethertype, EtherType::Ipv4);
    assert_eq!(dissection.ethernet.vlan_tci, None);
    let Network::Ipv4 {
        header,
        transport: Transport::Tcp(tcp),
    } = dissection.network
    else {
        panic!("not TCP/IPv4: {dissection}");
    };
    assert_eq!(header.protocol, IpProtocol::Tcp);
    assert_eq!(header.ttl, 64);
    assert!(header.dont_frag);
    assert!(!header.more_frags);
    assert_eq!(header.frag_offset, 0);
    assert_eq!((header.dscp, header.ecn), (0, 0));
    let from_client = header.src_addr == CLIENT;
    let ethernet = dissection.ethernet;
    if from_client {
        assert_eq!(
            (ethernet.src_addr, ethernet.dst_addr),
            (CLIENT_MAC, SERVER_MAC)
        );
        assert_eq!(
            (header.dst_addr, tcp.src_port, tcp.dst_port),
            (SERVER, 49152, 8080)
        );
    } else {
        assert_eq!(
            (ethernet.src_addr, ethernet.dst_addr),
            (SERVER_MAC, CLIENT_MAC)
        );
        assert_eq!((header.src_addr, header.dst_addr), (SERVER, CLIENT));
        assert_eq!((tcp.src_port, tcp.dst_port), (8080, 49152));
    }
    (header, tcp)
}

#[test]
fn syn() {
    let (ip, tcp) = tcp_of(&fixtures::SYN);
    assert_eq!(ip.payload_len, 40);
    assert_eq!(ip.ident, 16217);
    assert_eq!(tcp.flags, TcpFlags::SYN);
    assert_eq!(tcp.seq_number, SeqNum::new(CLIENT_ISN));
    assert_eq!(tcp.ack_number, SeqNum::new(0));
    assert_eq!(tcp.window_len, 64240);
    assert_eq!(tcp.urgent_pointer, 0);
    assert_eq!(tcp.header_len(), 40);
    assert_eq!(tcp.options.max_seg_size, Some(1460));
    assert!(tcp.options.sack_permitted);
    assert_eq!(
        tcp.options.timestamps,
        Some(Timestamps {
            tsval: 3_119_831_322,
            tsecr: 0
        })
    );
    assert_eq!(tcp.options.window_scale, Some(10));
    assert!(tcp.options.sack_blocks.is_empty());
    assert_eq!(tcp.options.tfo_cookie, None);
    assert!(tcp.payload.is_empty());
    // Scenario 1: the SYN consumes one sequence number.
    assert_eq!(tcp.segment_len(), 1);
    let packet = tcp::Packet::new_checked(&fixtures::SYN[34..]).unwrap();
    assert_eq!(packet.checksum(), 0xdbb4);
    assert_eq!(packet.reserved(), 0);
}

#[test]
fn syn_ack() {
    let (ip, tcp) = tcp_of(&fixtures::SYN_ACK);
    assert_eq!(ip.ident, 0);
    assert_eq!(tcp.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(tcp.seq_number, SeqNum::new(SERVER_ISN));
    // Acknowledges the SYN's one sequence number.
    assert_eq!(tcp.ack_number, SeqNum::new(CLIENT_ISN) + 1);
    assert_eq!(tcp.window_len, 65160);
    assert_eq!(tcp.options.max_seg_size, Some(1460));
    assert!(tcp.options.sack_permitted);
    assert_eq!(
        tcp.options.timestamps,
        Some(Timestamps {
            tsval: 1_774_533_637,
            tsecr: 3_119_831_322
        })
    );
    assert_eq!(tcp.options.window_scale, Some(10));
    assert_eq!(tcp.segment_len(), 1);
    assert_eq!(
        tcp::Packet::new_checked(&fixtures::SYN_ACK[34..])
            .unwrap()
            .checksum(),
        0x8cdf
    );
}

#[test]
fn third_ack() {
    let (_, tcp) = tcp_of(&fixtures::ACK);
    assert_eq!(tcp.flags, TcpFlags::ACK);
    assert_eq!(tcp.seq_number - SeqNum::new(CLIENT_ISN), 1);
    assert_eq!(tcp.ack_number - SeqNum::new(SERVER_ISN), 1);
    // Scaled window: 63 << 10.
    assert_eq!(tcp.window_len, 63);
    assert_eq!(tcp.header_len(), 32);
    assert_eq!(tcp.options.max_seg_size, None);
    assert_eq!(tcp.options.window_scale, None);
    assert_eq!(
        tcp.options.timestamps,
        Some(Timestamps {
            tsval: 3_119_831_322,
            tsecr: 1_774_533_637
        })
    );
    assert_eq!(tcp.segment_len(), 0);
}

#[test]
fn hello_then_world_then_fin() {
    // Scenario 2: relative seq 1 (len 5), 6 (len 5), FIN at 11.
    let relative = |tcp: &TcpRepr<'_>| tcp.seq_number - SeqNum::new(SERVER_ISN);
    let (ip, hello) = tcp_of(&fixtures::HELLO);
    assert_eq!(ip.payload_len, 37);
    assert_eq!(hello.flags, TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(relative(&hello), 1);
    assert_eq!(hello.payload, b"hello");
    assert_eq!(hello.ack_number - SeqNum::new(CLIENT_ISN), 1);
    let (_, world) = tcp_of(&fixtures::WORLD);
    assert_eq!(relative(&world), 6);
    assert_eq!(world.payload, b"world");
    let (_, fin) = tcp_of(&fixtures::SERVER_FIN);
    assert_eq!(fin.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(relative(&fin), 11);
    assert!(fin.payload.is_empty());
    assert_eq!(fin.segment_len(), 1);
}

#[test]
fn four_way_close() {
    // Scenario 3: FIN from the server, ACK of it (FIN-WAIT-2 on the server, CLOSE-WAIT on the
    // client), FIN from the client (LAST-ACK), the final ACK (TIME-WAIT on the server).
    let (_, ack) = tcp_of(&fixtures::ACK_SERVER_FIN);
    assert_eq!(ack.flags, TcpFlags::ACK);
    assert_eq!(ack.ack_number - SeqNum::new(SERVER_ISN), 12);
    let (_, fin) = tcp_of(&fixtures::CLIENT_FIN);
    assert_eq!(fin.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(fin.seq_number - SeqNum::new(CLIENT_ISN), 1);
    let (_, last) = tcp_of(&fixtures::ACK_CLIENT_FIN);
    assert_eq!(last.flags, TcpFlags::ACK);
    assert_eq!(last.seq_number - SeqNum::new(SERVER_ISN), 12);
    assert_eq!(last.ack_number - SeqNum::new(CLIENT_ISN), 2);
}

#[test]
fn every_frame_re_emits_byte_for_byte() {
    for (i, original) in fixtures::CONVERSATION.iter().enumerate() {
        let dissection = dissect(original, RxChecksum::Verify).unwrap();
        let Network::Ipv4 {
            header,
            transport: Transport::Tcp(tcp),
        } = dissection.network
        else {
            panic!("frame {i} is not TCP");
        };
        let mut out = vec![0u8; original.len()];
        let eth_len = dissection.ethernet.buffer_len();
        dissection
            .ethernet
            .emit(&mut Frame::new_unchecked(&mut out[..]));
        let ip_len = header.header_len();
        header.emit(&mut ipv4::Packet::new_unchecked(&mut out[eth_len..]));
        tcp.emit(
            &mut tcp::Packet::new_unchecked(&mut out[eth_len + ip_len..]),
            header.src_addr,
            header.dst_addr,
            TxChecksum::Full,
        );
        assert_eq!(&out[..], *original, "frame {i}: {dissection}");
    }
}

#[test]
fn every_frame_prints() {
    let text = dissect(&fixtures::SYN, RxChecksum::Verify)
        .unwrap()
        .to_string();
    assert!(
        text.contains("TCP 49152 > 8080 [S] seq 790412166"),
        "{text}"
    );
    assert!(
        text.contains("<mss 1460,sackOK,TS val 3119831322 ecr 0,wscale 10>"),
        "{text}"
    );
    for frame in fixtures::CONVERSATION {
        assert!(
            !dissect(frame, RxChecksum::Verify)
                .unwrap()
                .to_string()
                .is_empty()
        );
    }
}

#[test]
fn corrupted_frames_are_rejected() {
    let mut frame = fixtures::HELLO;
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    assert_eq!(
        dissect(&frame, RxChecksum::Verify).unwrap_err(),
        rawtcp_wire::Error::Checksum
    );
    assert!(dissect(&frame, RxChecksum::Trusted).is_ok());
}

mod mutated {
    //! The kernel's frames with random bytes changed: most still parse (checksums trusted),
    //! which explores far more of the option and header space than random bytes do. Whatever
    //! parses must survive emit and parse unchanged, as in the fuzz target.
    use super::fixtures;
    use proptest::prelude::*;
    use rawtcp_wire::RxChecksum;
    use rawtcp_wire::dissect::{Network, Transport, dissect};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn mutated_frames_parse_emit_parse(
            which in 0..fixtures::CONVERSATION.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut frame = fixtures::CONVERSATION[which].to_vec();
            for (at, value) in edits {
                let i = at.index(frame.len());
                frame[i] = value;
            }
            let _ = dissect(&frame, RxChecksum::Verify);
            let Ok(mut first) = dissect(&frame, RxChecksum::Trusted) else { return Ok(()) };
            let mut out = vec![0u8; first.buffer_len()];
            first.emit(&mut out);
            let second = dissect(&out, RxChecksum::Verify);
            prop_assert!(second.is_ok(), "{:?}", second);
            let second = second.unwrap();
            // The re-emit lays TCP options out anew: follow its length and SACK blocks.
            if let (Network::Ipv4 { header, transport: Transport::Tcp(tcp) }, Network::Ipv4 { header: h2, transport: Transport::Tcp(t2) }) =
                (&mut first.network, &second.network)
            {
                tcp.options.sack_blocks.truncate(t2.options.sack_blocks.len());
                header.payload_len = h2.payload_len;
            }
            prop_assert_eq!(first, second);
        }
    }
}
