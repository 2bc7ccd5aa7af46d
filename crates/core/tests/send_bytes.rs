//! `Stack::tcp_send_bytes`: the application's `Bytes` kept in the send buffer without a copy
//! (issue 14), on the simulated link in virtual time. Every byte B reads is checked against
//! the pattern A wrote; each chunk's allocation is tracked, so the tests see that the engine
//! holds the caller's buffer (not a copy) until the peer acknowledges it, and then lets go.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes};
use common::*;
use rawtcp_core::link::{Action, LinkConfig, Rule, matches};
use rawtcp_core::{ConnectionId, TcpError};
use rawtcp_wire::SeqNum;

/// The byte at `offset` of A's stream.
fn byte(offset: u64) -> u8 {
    (offset % 251) as u8 ^ (offset >> 16) as u8
}

/// An allocation whose drop is counted: `live` is how many are still held by anyone.
struct Tracked {
    data: Vec<u8>,
    live: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn tracked(offset: u64, len: usize, live: &Arc<AtomicUsize>) -> Bytes {
    live.fetch_add(1, Ordering::SeqCst);
    Bytes::from_owner(Tracked {
        data: (0..len as u64).map(|i| byte(offset + i)).collect(),
        live: Arc::clone(live),
    })
}

/// A's side: writes `len` bytes as tracked `Bytes` of `sizes` in turn, B's side reads and
/// checks them.
struct Transfer {
    len: u64,
    sizes: Vec<usize>,
    writes: usize,
    /// Stream offset of `pending`'s first byte.
    sent: u64,
    /// What is left of the chunk being written (the engine took its front).
    pending: Bytes,
    received: u64,
    live: Arc<AtomicUsize>,
}

impl Transfer {
    fn new(len: u64, sizes: &[usize]) -> Transfer {
        Transfer {
            len,
            sizes: sizes.to_vec(),
            writes: 0,
            sent: 0,
            pending: Bytes::new(),
            received: 0,
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn step(&mut self, sim: &mut Sim, client: ConnectionId, server: ConnectionId, buf: &mut [u8]) {
        loop {
            if self.pending.is_empty() {
                let offset = self.sent;
                if offset == self.len {
                    break;
                }
                let size = self.sizes[self.writes % self.sizes.len()];
                let size = (self.len - offset).min(size as u64) as usize;
                self.writes += 1;
                self.pending = tracked(offset, size, &self.live);
            }
            match sim.a.tcp_send_bytes(sim.now, client, self.pending.clone()) {
                Ok(n) => {
                    self.pending.advance(n);
                    self.sent += n as u64;
                    if self.pending.is_empty() {
                        // An empty slice still holds the allocation.
                        self.pending = Bytes::new();
                    }
                }
                Err(TcpError::WouldBlock) => break,
                Err(error) => panic!("send: {error:?}"),
            }
        }
        loop {
            match sim.b.tcp_recv(sim.now, server, buf) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => {
                    for (i, &got) in buf[..n].iter().enumerate() {
                        let offset = self.received + i as u64;
                        assert_eq!(got, byte(offset), "byte {offset} of the stream");
                    }
                    self.received += n as u64;
                }
                Err(error) => panic!("recv: {error:?}"),
            }
        }
    }

    /// Runs until B has read everything and A holds nothing, or `limit` passes.
    fn run(&mut self, sim: &mut Sim, client: ConnectionId, server: ConnectionId, limit: Duration) {
        let mut buf = vec![0u8; 256 * 1024];
        let deadline = sim.now + limit;
        while (self.received < self.len || sim.a.tcp_memory().buffered > 0) && sim.now < deadline {
            self.step(sim, client, server, &mut buf);
            sim.events_a.clear();
            sim.events_b.clear();
            sim.step_until(deadline);
        }
        assert_eq!(
            self.received, self.len,
            "B read everything (at {:?})",
            sim.now
        );
        assert_eq!(
            sim.a.tcp_memory().buffered,
            0,
            "A holds nothing once acknowledged"
        );
        assert_eq!(
            self.live.load(Ordering::SeqCst),
            0,
            "every chunk's allocation was released"
        );
    }
}

/// Sizes that cut segments at every kind of place: below the copy threshold (copied into the
/// tail), just around it, not a multiple of the MSS, and larger than the send buffer.
const SIZES: &[usize] = &[100, 1023, 1024, 3000, 65_536, 7, 300_000, 1461];

#[test]
fn byte_exact_100_mb_with_tcp_send_bytes_through_a_lossy_link() {
    let faults = LinkConfig {
        loss: 0.01,
        reorder: 0.01,
        reorder_hold: Duration::from_millis(1),
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let mut sim = sim_with_links(faults.clone(), faults, 21);
    sim.trace = false;
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let mut transfer = Transfer::new(100 << 20, SIZES);
    transfer.run(&mut sim, client, server, Duration::from_secs(3600));
    let stats = sim.a.tcp_info(client).unwrap().stats;
    assert!(
        stats.retransmitted_segments > 0,
        "the link lost some: {stats:?}"
    );
    println!(
        "100 MB by {:?} of virtual time, {} segments retransmitted; links {:?}",
        sim.now,
        stats.retransmitted_segments,
        sim.link_a_to_b().stats()
    );
}

/// The engine keeps the caller's allocation (a copy would have let it go at once), counts
/// exactly its length as buffered, and releases it when the peer acknowledges it.
#[test]
fn the_engine_holds_the_callers_allocation_until_it_is_acknowledged() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let live = Arc::new(AtomicUsize::new(0));
    let data = tracked(0, 10_000, &live);
    assert_eq!(sim.a.tcp_send_bytes(sim.now, client, data), Ok(10_000));
    assert_eq!(
        live.load(Ordering::SeqCst),
        1,
        "held by the engine, not copied"
    );
    assert_eq!(
        sim.a.tcp_memory().buffered,
        10_000,
        "exactly the chunk, no block"
    );
    // A small one is copied: its allocation goes at once.
    assert_eq!(
        sim.a
            .tcp_send_bytes(sim.now, client, tracked(10_000, 500, &live)),
        Ok(500)
    );
    assert_eq!(live.load(Ordering::SeqCst), 1, "the short one was copied");
    let mut transfer = Transfer::new(10_500, &[1]);
    transfer.sent = 10_500;
    transfer.live = Arc::clone(&live);
    transfer.run(&mut sim, client, server, Duration::from_secs(10));
}

/// Segments lost in the middle of chunks: what is retransmitted starts inside a chunk the
/// peer has partly acknowledged (and, after the timeout, goes back over several), and still
/// arrives byte for byte.
#[test]
fn retransmissions_from_partly_acknowledged_chunks_are_byte_exact() {
    let mut sim = sim();
    // A's data segments 2, 5, 9 and 10 (a fast retransmission's second loss: an RTO) lost.
    sim.link_a_to_b_mut().config_mut().rules = [2u64, 5, 9, 10]
        .iter()
        .enumerate()
        .map(|(k, &nth)| Rule::new(nth - k as u64, matches::tcp_data(), Action::Drop))
        .collect();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let mut transfer = Transfer::new(400_000, &[3000, 2000, 5000]);
    transfer.run(&mut sim, client, server, Duration::from_secs(120));
    let stats = sim.a.tcp_info(client).unwrap().stats;
    assert!(
        stats.retransmitted_segments >= 4,
        "every lost segment sent again: {stats:?}"
    );
    assert_eq!(sim.link_a_to_b().stats().rule_dropped, 4);
}

/// The stream crosses the 2³² sequence wrap (RFC 9293 §3.4) inside kept chunks, with loss
/// around it: offsets into the send buffer are counted from SND.UNA, never from raw
/// sequence numbers.
#[test]
fn chunks_across_the_sequence_wrap_are_byte_exact() {
    for iss in [u32::MAX - 1_000, u32::MAX - 150_000, u32::MAX] {
        let mut a = config(A_MAC, A_IP, 31);
        let mut b = config(B_MAC, B_IP, 32);
        a.tcp.test_iss = Some(SeqNum::new(iss));
        b.tcp.test_iss = Some(SeqNum::new(7));
        let faults = LinkConfig {
            loss: 0.02,
            delay: Duration::from_millis(1),
            ..LinkConfig::default()
        };
        let mut sim = Sim::with_links(a, b, faults.clone(), faults, 33);
        sim.trace = false;
        let (client, server) = connected_on(&mut sim, b_addr(80));
        let mut transfer = Transfer::new(2 << 20, SIZES);
        transfer.run(&mut sim, client, server, Duration::from_secs(600));
        let info = sim.a.tcp_info(client).unwrap();
        assert!(
            info.snd_una.raw() < iss && info.snd_una > SeqNum::new(iss),
            "SND.UNA {:?} went past the wrap from the ISS {iss}",
            info.snd_una
        );
    }
}

/// What the facade's `poll_write_bytes_vectored` did before `tcp_send_bytes_vectored`: one
/// `tcp_send_bytes` per piece, for the vectored call to be compared with.
fn send_piece_by_piece(
    sim: &mut Sim,
    id: ConnectionId,
    data: &mut VecDeque<Bytes>,
) -> Result<usize, TcpError> {
    let mut taken = 0;
    while let Some(front) = data.front_mut() {
        if front.is_empty() {
            data.pop_front();
            continue;
        }
        match sim.a.tcp_send_bytes(sim.now, id, front.clone()) {
            Ok(n) if n == front.len() => {
                taken += n;
                data.pop_front();
            }
            Ok(n) => {
                taken += n;
                front.advance(n);
                break;
            }
            Err(_) if taken > 0 => break,
            Err(error) => return Err(error),
        }
    }
    if taken == 0 {
        return sim.a.tcp_send_bytes(sim.now, id, Bytes::new());
    }
    Ok(taken)
}

/// Pieces of A's stream from `offset`, of `sizes` (0: an empty piece), each its own
/// allocation.
fn pieces(offset: u64, sizes: &[usize], live: &Arc<AtomicUsize>) -> VecDeque<Bytes> {
    let mut at = offset;
    sizes
        .iter()
        .map(|&size| {
            let piece = tracked(at, size, live);
            at += size as u64;
            piece
        })
        .collect()
}

/// `tcp_send_bytes_vectored` takes what a call per piece took, leaves the same pieces
/// behind (the one the buffer filled on advanced), drops empty ones, and the stream arrives
/// byte for byte: with the send buffer filling first, and with the memory limit first.
#[test]
fn vectored_sends_take_what_one_call_per_piece_took() {
    // Send buffer 256 KiB; the last case's memory limit falls inside the third piece.
    let cases: [(&[usize], Option<usize>); 4] = [
        (&[100 << 10, 0, 100 << 10, 100 << 10, 10, 0], None),
        (&[0, 0], None),
        (&[700, 300, 5000, 0, 200, 200_000, 90_000], None),
        (&[30_000, 500, 30_000, 30_000], Some(50_000)),
    ];
    for (sizes, memory) in cases {
        let total: usize = sizes.iter().sum();
        let setup = || {
            let mut a = config(A_MAC, A_IP, 41);
            if let Some(limit) = memory {
                a.tcp.max_buffer_memory = limit;
            }
            let mut sim = Sim::with_links(
                a,
                config(B_MAC, B_IP, 42),
                LinkConfig::default(),
                LinkConfig::default(),
                43,
            );
            sim.trace = false;
            let (client, server) = connected_on(&mut sim, b_addr(80));
            (sim, client, server)
        };
        let live = Arc::new(AtomicUsize::new(0));
        let (mut vectored, client, server) = setup();
        let (mut piecewise, client2, _) = setup();
        let mut data = pieces(0, sizes, &live);
        // Counted apart: the transfer below checks that `live` all goes.
        let mut data2 = pieces(0, sizes, &Arc::new(AtomicUsize::new(0)));
        let first = vectored
            .a
            .tcp_send_bytes_vectored(vectored.now, client, &mut data);
        let expected = send_piece_by_piece(&mut piecewise, client2, &mut data2);
        assert_eq!(first, expected, "{sizes:?}");
        assert!(data == data2, "what is left differs, {sizes:?}");
        assert!(
            data.front().is_none_or(|piece| !piece.is_empty()),
            "the empty pieces before the one the buffer filled on are dropped"
        );
        assert_eq!(
            vectored.a.tcp_memory().buffered,
            piecewise.a.tcp_memory().buffered
        );
        if total == 0 {
            assert_eq!(first, Ok(0));
            assert!(data.is_empty(), "empty pieces are dropped");
            continue;
        }
        let taken = first.unwrap();
        assert!(taken > 0 && taken <= total);
        assert_eq!(total - taken, data.iter().map(Bytes::len).sum::<usize>());
        if !data.is_empty() {
            // Again at once: the same again (under the memory limit, what sealing the tail
            // block gave back; with the send buffer full, nothing).
            let before = data.clone();
            let again = vectored
                .a
                .tcp_send_bytes_vectored(vectored.now, client, &mut data);
            assert_eq!(
                again,
                send_piece_by_piece(&mut piecewise, client2, &mut data2)
            );
            assert!(data == data2, "what is left differs, {sizes:?}");
            if memory.is_none() {
                assert_eq!(again, Err(TcpError::WouldBlock));
                assert!(data == before, "nothing taken, nothing dropped");
            }
        }
        // The rest goes as B reads; every byte arrives in order.
        let mut transfer = Transfer::new(total as u64, &[1]);
        transfer.sent = total as u64;
        transfer.live = Arc::clone(&live);
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = vectored.now + Duration::from_secs(60);
        while !data.is_empty() && vectored.now < deadline {
            match vectored
                .a
                .tcp_send_bytes_vectored(vectored.now, client, &mut data)
            {
                Ok(_) | Err(TcpError::WouldBlock) => {}
                Err(error) => panic!("send: {error:?}"),
            }
            transfer.step(&mut vectored, client, server, &mut buf);
            vectored.run_for(Duration::from_millis(1));
        }
        assert!(data.is_empty(), "all queued by {:?}", vectored.now);
        transfer.run(&mut vectored, client, server, Duration::from_secs(60));
    }
}

/// The errors come first, as for `tcp_send`; a piece offered to a closed connection stays
/// the caller's.
#[test]
fn vectored_sends_report_the_connections_errors() {
    let mut sim = sim();
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    let live = Arc::new(AtomicUsize::new(0));
    let mut empty = VecDeque::new();
    assert_eq!(
        sim.a.tcp_send_bytes_vectored(sim.now, client, &mut empty),
        Ok(0)
    );
    sim.a.tcp_shutdown(sim.now, client).unwrap();
    let mut data = pieces(0, &[0, 2000], &live);
    assert_eq!(
        sim.a.tcp_send_bytes_vectored(sim.now, client, &mut data),
        Err(TcpError::BrokenPipe)
    );
    assert_eq!(data.len(), 2, "nothing taken");
    assert_eq!(
        sim.a.tcp_send_bytes_vectored(sim.now, client, &mut empty),
        Err(TcpError::BrokenPipe),
        "nothing to send still meets the error"
    );
    sim.a.tcp_abort(sim.now, client).unwrap();
    assert_eq!(
        sim.a.tcp_send_bytes_vectored(sim.now, client, &mut data),
        Err(TcpError::InvalidHandle)
    );
    assert_eq!(data.len(), 2);
}
