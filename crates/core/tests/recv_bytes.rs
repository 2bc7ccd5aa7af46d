//! Received payload kept as slices of the frames it came in (`Stack::handle_frame_bytes`)
//! and handed to the reader without a copy (`Stack::tcp_recv_bytes`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use rawtcp_core::link::LinkConfig;
use rawtcp_core::{ConnError, TcpError, VecSink};
use rawtcp_wire::RxChecksum;

fn lies_in(inner: &[u8], outer: &[u8]) -> bool {
    let (start, at) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    at >= start && at + inner.len() <= start + outer.len()
}

/// The frames A sends now, as a driver would hand them to B: each in a `Bytes` of its own.
fn frames_from_a(sim: &mut Sim) -> Vec<Bytes> {
    let mut sink = VecSink::new();
    let _ = sim.a.poll_transmit(sim.now, &mut sink);
    sink.frames.into_iter().map(Bytes::from).collect()
}

#[test]
fn a_segment_given_as_bytes_is_read_back_without_a_copy() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(sim.a.tcp_send(sim.now, client, &data), Ok(1000));
    let frames = frames_from_a(&mut sim);
    assert_eq!(frames.len(), 1, "one data segment");
    sim.b
        .handle_frame_bytes(sim.now, frames[0].clone(), RxChecksum::Verify);
    let read = sim.b.tcp_recv_bytes(sim.now, server, usize::MAX).unwrap();
    assert_eq!(read, data);
    assert!(
        lies_in(&read, &frames[0]),
        "the payload is a slice of the frame"
    );
    assert_eq!(
        sim.b.tcp_recv_bytes(sim.now, server, usize::MAX),
        Err(TcpError::WouldBlock)
    );
    // The same bytes given by `handle_frame` (lent for the call) are copied: `tcp_recv_bytes`
    // still hands them over, out of the engine's own buffer. (B's ACK first: Nagle.)
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.a.tcp_send(sim.now, client, &data), Ok(1000));
    let frames = frames_from_a(&mut sim);
    sim.b.handle_frame(sim.now, &frames[0], RxChecksum::Verify);
    let read = sim.b.tcp_recv_bytes(sim.now, server, 600).unwrap();
    assert_eq!(read, data[..600]);
    assert!(!lies_in(&read, &frames[0]));
    assert_eq!(
        sim.b.tcp_recv_bytes(sim.now, server, usize::MAX).unwrap(),
        data[600..]
    );
}

#[test]
fn a_small_segment_given_as_bytes_keeps_no_hold_on_its_frame() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    assert_eq!(sim.a.tcp_send(sim.now, client, b"hello"), Ok(5));
    let frames = frames_from_a(&mut sim);
    sim.b
        .handle_frame_bytes(sim.now, frames[0].clone(), RxChecksum::Verify);
    assert!(
        frames[0].is_unique(),
        "the engine copied five bytes, not the frame"
    );
    assert_eq!(
        sim.b.tcp_recv_bytes(sim.now, server, usize::MAX).unwrap(),
        &b"hello"[..]
    );
}

#[test]
fn tcp_recv_bytes_into_takes_many_pieces_in_one_call() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 241) as u8).collect();
    assert_eq!(sim.a.tcp_send(sim.now, client, &data), Ok(data.len()));
    sim.a.tcp_shutdown(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(50));
    let mut pieces = Vec::new();
    let n = sim
        .b
        .tcp_recv_bytes_into(sim.now, server, 10_000, &mut pieces)
        .unwrap();
    assert!(n <= 10_000 && n > 1460, "several segments' worth: {n}");
    assert!(pieces.len() > 1 && pieces.iter().all(|p| !p.is_empty()));
    assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), n);
    let rest = sim
        .b
        .tcp_recv_bytes_into(sim.now, server, usize::MAX, &mut pieces)
        .unwrap();
    assert_eq!(n + rest, data.len());
    assert_eq!(pieces.concat(), data);
    // The end of the stream.
    assert_eq!(
        sim.b
            .tcp_recv_bytes_into(sim.now, server, usize::MAX, &mut pieces),
        Ok(0)
    );
}

#[test]
fn tcp_recv_bytes_is_empty_at_the_end_of_the_stream_and_reports_errors() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.a.tcp_send(sim.now, client, b"last words").unwrap();
    sim.a.tcp_shutdown(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.b.tcp_recv_bytes(sim.now, server, 4).unwrap(),
        &b"last"[..]
    );
    // `max` 0 reads nothing, as a zero-length `tcp_recv` does.
    assert!(sim.b.tcp_recv_bytes(sim.now, server, 0).unwrap().is_empty());
    assert_eq!(
        sim.b.tcp_recv_bytes(sim.now, server, 100).unwrap(),
        &b" words"[..]
    );
    assert!(
        sim.b
            .tcp_recv_bytes(sim.now, server, 100)
            .unwrap()
            .is_empty()
    );
    // A connection reset before the end of its stream reports it.
    let (client, server) = connected_on(&mut sim, b_addr(81));
    sim.a.tcp_abort(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.b.tcp_recv_bytes(sim.now, server, 100),
        Err(TcpError::Connection(ConnError::Reset))
    );
}

#[test]
fn reading_by_bytes_opens_the_window_as_tcp_recv_does() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let window = sim.b.tcp_info(server).unwrap().rcv_wnd as usize;
    // Fill B's window while B does not read.
    let data = vec![0x42u8; window + 100_000];
    let mut sent = 0;
    for _ in 0..200 {
        if let Ok(n) = sim.a.tcp_send(sim.now, client, &data[sent..]) {
            sent += n;
        }
        sim.run_for(Duration::from_millis(5));
    }
    assert_eq!(sim.b.tcp_info(server).unwrap().rcv_wnd, 0, "window closed");
    // Reading opens it: the peer hears of it and sends the rest.
    let mut received = 0;
    let deadline = sim.now + Duration::from_secs(60);
    while received < data.len() && sim.now < deadline {
        while let Ok(chunk) = sim.b.tcp_recv_bytes(sim.now, server, usize::MAX) {
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.iter().all(|&b| b == 0x42));
            received += chunk.len();
        }
        if sent < data.len()
            && let Ok(n) = sim.a.tcp_send(sim.now, client, &data[sent..])
        {
            sent += n;
        }
        sim.run_for(Duration::from_millis(5));
    }
    assert_eq!(received, data.len());
}

const LEN: u64 = 100 << 20;

fn byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// 100 MB from A to B over a link that loses, reorders and duplicates, B reading only with
/// `tcp_recv_bytes` and a `max` that changes from read to read (whole chunks, splits of
/// them, single bytes): every byte is checked against the pattern A wrote.
#[test]
fn byte_exact_100_mb_over_a_lossy_link_read_by_bytes() {
    let faults = LinkConfig {
        loss: 0.01,
        reorder: 0.01,
        reorder_hold: Duration::from_millis(1),
        duplicate: 0.01,
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let mut sim = sim_with_links(faults.clone(), faults, 21);
    sim.trace = false;
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut sent, mut received, mut reads) = (0u64, 0u64, 0u64);
    let maxes = [usize::MAX, 1, 700, 64 * 1024, 1460, 3];
    let deadline = sim.now + Duration::from_secs(3600);
    while received < LEN && sim.now < deadline {
        while sent < LEN {
            let len = (LEN - sent).min(chunk.len() as u64) as usize;
            for (i, b) in chunk[..len].iter_mut().enumerate() {
                *b = byte(sent + i as u64);
            }
            match sim.a.tcp_send(sim.now, client, &chunk[..len]) {
                Ok(n) => sent += n as u64,
                Err(TcpError::WouldBlock) => break,
                Err(error) => panic!("send: {error:?}"),
            }
        }
        loop {
            let max = maxes[(reads % maxes.len() as u64) as usize];
            match sim.b.tcp_recv_bytes(sim.now, server, max) {
                Ok(data) if data.is_empty() => break,
                Ok(data) => {
                    assert!(data.len() <= max);
                    if let Some(bad) = data
                        .iter()
                        .enumerate()
                        .position(|(i, &b)| b != byte(received + i as u64))
                    {
                        panic!("byte {} of the stream is wrong", received + bad as u64);
                    }
                    received += data.len() as u64;
                    reads += 1;
                }
                Err(TcpError::WouldBlock) => break,
                Err(error) => panic!("recv: {error:?}"),
            }
        }
        sim.events_a.clear();
        sim.events_b.clear();
        sim.step_until(deadline);
    }
    assert_eq!(received, LEN, "A's 100 MB reached B (at {:?})", sim.now);
    println!(
        "100 MB in {reads} reads by {:?} of virtual time; link {:?}",
        sim.now,
        sim.link_a_to_b().stats()
    );
}
