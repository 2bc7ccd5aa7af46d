//! Criterion benches for the hot paths of rawtcp-wire: the internet checksum (beside a memcpy
//! of the same size, measured in the same run) and the parse and emit of a full-sized
//! Ethernet/IPv4/TCP frame. Run with `cargo bench -p rawtcp-wire`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rawtcp_wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp_wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{self, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use rawtcp_wire::{RxChecksum, SeqNum, TxChecksum, checksum, dissect};

fn checksum_vs_memcpy(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for size in [40usize, 1500, 65536] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        let mut dst = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("internet", size), &data, |b, data| {
            b.iter(|| checksum::data(black_box(data)))
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &data, |b, data| {
            b.iter(|| {
                dst.copy_from_slice(black_box(data));
                black_box(&dst);
            })
        });
    }
    group.finish();
}

const SRC: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const DST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

fn full_sized_segment<'a>(payload: &'a [u8]) -> (EthernetRepr, Ipv4Repr<'static>, TcpRepr<'a>) {
    let tcp = TcpRepr {
        src_port: 49152,
        dst_port: 8080,
        seq_number: SeqNum::new(0x1234_5678),
        ack_number: SeqNum::new(0x9abc_def0),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window_len: 502,
        urgent_pointer: 0,
        options: TcpOptions {
            timestamps: Some(Timestamps { tsval: 1, tsecr: 2 }),
            ..TcpOptions::default()
        },
        payload,
    };
    let ip = Ipv4Repr {
        ident: 1,
        ..Ipv4Repr::new(SRC, DST, IpProtocol::Tcp, tcp.buffer_len())
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    };
    (eth, ip, tcp)
}

fn emit(frame: &mut [u8], eth: &EthernetRepr, ip: &Ipv4Repr<'_>, tcp: &TcpRepr<'_>) {
    eth.emit(&mut Frame::new_unchecked(&mut *frame));
    let ip_start = eth.buffer_len();
    let tcp_start = ip_start + ip.header_len();
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[ip_start..]));
    tcp.emit(
        &mut tcp::Packet::new_unchecked(&mut frame[tcp_start..]),
        SRC,
        DST,
        TxChecksum::Full,
    );
}

fn frame_parse_and_emit(c: &mut Criterion) {
    // 1448 bytes of data + 32 TCP + 20 IPv4 + 14 Ethernet = 1514.
    let payload = vec![0x5au8; 1448];
    let (eth, ip, tcp) = full_sized_segment(&payload);
    let mut frame = vec![0u8; 1514];
    emit(&mut frame, &eth, &ip, &tcp);
    assert!(dissect::dissect(&frame, RxChecksum::Verify).is_ok());

    let mut group = c.benchmark_group("frame_1514");
    group.throughput(Throughput::Bytes(1514));
    group.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            dissect::dissect(black_box(&frame), RxChecksum::Verify).map(|d| d.ethernet.ethertype)
        })
    });
    group.bench_function("parse_trusted", |b| {
        b.iter(|| {
            dissect::dissect(black_box(&frame), RxChecksum::Trusted).map(|d| d.ethernet.ethertype)
        })
    });
    let mut out = vec![0u8; 1514];
    group.bench_function("emit", |b| {
        b.iter(|| {
            emit(black_box(&mut out), &eth, &ip, black_box(&tcp));
            black_box(&out);
        })
    });
    group.finish();
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, checksum_vs_memcpy, frame_parse_and_emit);
}
criterion_main!(group::benches);
