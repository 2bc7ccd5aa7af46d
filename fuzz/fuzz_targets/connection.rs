//! An established connection fed arbitrary segments (valid checksums, sequence and
//! acknowledgment numbers near the live ones) interleaved with application calls and clock
//! jumps. The engine must never panic, and after every step SND.UNA <= SND.NXT, the buffers
//! stay within their limits, and every delivered byte advanced RCV.NXT once.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rawtcp_core::sim::Sim;
use rawtcp_core::{Config, Ipv4Cidr, State};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp_wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use rawtcp_wire::{RxChecksum, SeqNum, TxChecksum};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const A_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const B_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

fn frame(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: u16, window: u16, ts: Option<(u32, u32)>, payload: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port,
        dst_port,
        seq_number: SeqNum::new(seq),
        ack_number: SeqNum::new(ack),
        flags: TcpFlags::from_bits_truncate(flags),
        window_len: window,
        urgent_pointer: 0,
        options: TcpOptions { timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }), ..TcpOptions::default() },
        payload,
    };
    let ip = Ipv4Repr::new(B_IP, A_IP, IpProtocol::Tcp, tcp.buffer_len());
    let mut bytes = vec![0u8; 34 + tcp.buffer_len()];
    EthernetRepr { src_addr: B_MAC, dst_addr: A_MAC, vlan_tci: None, ethertype: EtherType::Ipv4 }
        .emit(&mut Frame::new_unchecked(&mut bytes[..]));
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut bytes[14..]));
    tcp.emit(&mut tcp::Packet::new_unchecked(&mut bytes[34..]), B_IP, A_IP, TxChecksum::Full);
    bytes
}

fuzz_target!(|input: &[u8]| {
    let host = |mac, ip| Config::new(mac, Ipv4Cidr::new(ip, 24));
    let mut sim = Sim::new(host(A_MAC, A_IP), host(B_MAC, B_IP));
    let server = SocketAddrV4::new(B_IP, 80);
    let listener = sim.b.tcp_listen(server, None).unwrap();
    let client = sim.a.tcp_connect(sim.now, server, None).unwrap();
    sim.run_for(Duration::from_millis(10));
    let Some(_server_conn) = sim.b.tcp_accept(listener).unwrap() else { return };
    if sim.a.tcp_state(client) != Some(State::Established) {
        return;
    }
    let port = sim.a.tcp_info(client).unwrap().local.port();
    let mut bytes = input;
    let mut buf = [0u8; 2048];
    while bytes.len() >= 12 {
        let (head, rest) = bytes.split_at(12);
        let op = head[0];
        let before = sim.a.tcp_info(client);
        match op % 8 {
            // Application calls.
            0 => {
                let _ = sim.a.tcp_send(sim.now, client, &rest[..rest.len().min(usize::from(head[1]) * 8)]);
            }
            1 => {
                let _ = sim.a.tcp_recv(sim.now, client, &mut buf);
            }
            2 => {
                let _ = sim.a.tcp_shutdown(sim.now, client);
            }
            3 => sim.run_for(Duration::from_millis(u64::from(u16::from_le_bytes([head[1], head[2]])))),
            // A segment "from B".
            _ => {
                let Some(info) = before.clone() else { break };
                let seq = info.rcv_nxt.raw().wrapping_add((i16::from_le_bytes([head[1], head[2]]) as i32 as u32).wrapping_mul(8));
                let ack = info.snd_una.raw().wrapping_add((i16::from_le_bytes([head[3], head[4]]) as i32 as u32).wrapping_mul(8));
                let flags = u16::from_le_bytes([head[5], head[6]]) & 0x1ff;
                let window = u16::from_le_bytes([head[7], head[8]]);
                let ts = (head[9] & 1 == 1).then(|| (u32::from(head[10]), u32::from(head[11])));
                let len = rest.len().min(usize::from(head[9]) * 4);
                let frame = frame(80, port, seq, ack, flags, window, ts, &rest[..len]);
                sim.a.handle_frame(sim.now, &frame, RxChecksum::Verify);
                sim.settle();
                bytes = &rest[len..];
                check(&sim, client, before);
                continue;
            }
        }
        sim.settle();
        check(&sim, client, before);
        bytes = rest;
    }
    sim.run_for(Duration::from_secs(600));
});

fn check(sim: &Sim, client: rawtcp_core::ConnectionId, before: Option<rawtcp_core::ConnectionInfo>) {
    for stack in [&sim.a, &sim.b] {
        if let Err(broken) = stack.check_invariants() {
            panic!("{broken}");
        }
    }
    let (Some(before), Some(after)) = (before, sim.a.tcp_info(client)) else { return };
    assert!(after.snd_una <= after.snd_nxt, "SND.UNA {:?} > SND.NXT {:?}", after.snd_una, after.snd_nxt);
    assert!(after.recv_queue <= 256 * 1024 && after.send_queue <= 256 * 1024);
    let advanced = after.rcv_nxt - before.rcv_nxt.min(after.rcv_nxt);
    let delivered = after.stats.bytes_delivered - before.stats.bytes_delivered;
    assert!(u64::from(advanced) == delivered || u64::from(advanced) == delivered + 1, "RCV.NXT moved {advanced}, delivered {delivered}");
}
