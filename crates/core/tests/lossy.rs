//! Byte-exact 100 MB each way at once between two engines over the simulated link, for each
//! lossy combination of issue 12 (virtual time, fixed seeds): every byte each side reads is
//! checked against the pattern its peer wrote, and the run must finish, however much was lost.

mod common;

use std::time::Duration;

use common::*;
use rawtcp_core::link::LinkConfig;
use rawtcp_core::{ConnectionId, TcpError};

const LEN: u64 = 100 << 20;
/// Virtual time allowed: far more than any of these paths needs (the runs take seconds).
const LIMIT: Duration = Duration::from_secs(3600);

/// The byte at `offset` of the stream A sends (`from_a`) or B sends: different periods, so a
/// byte delivered on the wrong connection or at the wrong offset cannot pass.
fn byte(from_a: bool, offset: u64) -> u8 {
    if from_a {
        (offset % 251) as u8
    } else {
        (offset % 239) as u8 ^ 0xa5
    }
}

fn fill(from_a: bool, offset: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = byte(from_a, offset + i as u64);
    }
}

/// One end of the exchange: what it has written and read, and the next bytes it writes.
struct End {
    from_a: bool,
    sent: u64,
    received: u64,
    /// The stream from `sent` on (filled again only once the stack took it: a debug build
    /// would spend the run filling it at every step otherwise).
    chunk: Vec<u8>,
    chunk_len: usize,
    expected: Vec<u8>,
}

impl End {
    fn new(from_a: bool) -> End {
        let mut end = End {
            from_a,
            sent: 0,
            received: 0,
            chunk: vec![0; 64 * 1024],
            chunk_len: 0,
            expected: Vec::new(),
        };
        end.refill();
        end
    }

    fn refill(&mut self) {
        self.chunk_len = (LEN - self.sent).min(self.chunk.len() as u64) as usize;
        fill(self.from_a, self.sent, &mut self.chunk[..self.chunk_len]);
    }

    /// Writes what `stack` takes, then reads and checks what it has of the peer's stream.
    fn step(
        &mut self,
        now: rawtcp_core::Instant,
        stack: &mut rawtcp_core::Stack,
        id: ConnectionId,
        buf: &mut [u8],
    ) {
        while self.sent < LEN {
            match stack.tcp_send(now, id, &self.chunk[..self.chunk_len]) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(taken) => {
                    self.sent += taken as u64;
                    if taken == self.chunk_len {
                        self.refill();
                    } else {
                        self.chunk.copy_within(taken..self.chunk_len, 0);
                        self.chunk_len -= taken;
                    }
                }
                Err(error) => panic!("send: {error:?}"),
            }
        }
        loop {
            match stack.tcp_recv(now, id, buf) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => {
                    self.expected.resize(n, 0);
                    fill(!self.from_a, self.received, &mut self.expected);
                    if buf[..n] != self.expected[..] {
                        let bad = buf.iter().zip(&self.expected).position(|(x, y)| x != y);
                        panic!(
                            "byte {} of the stream is wrong",
                            self.received + bad.unwrap_or(0) as u64
                        );
                    }
                    self.received += n as u64;
                }
                Err(error) => panic!("recv: {error:?}"),
            }
        }
    }
}

/// 100 MB from A to B and 100 MB from B to A at once over links with `faults` each way.
fn exchange(faults: LinkConfig, seed: u64) {
    let mut sim = sim_with_links(faults.clone(), faults, seed);
    sim.trace = false;
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let (mut a, mut b) = (End::new(true), End::new(false));
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = sim.now + LIMIT;
    while (a.received < LEN || b.received < LEN) && sim.now < deadline {
        let now = sim.now;
        a.step(now, &mut sim.a, client, &mut buf);
        b.step(now, &mut sim.b, server, &mut buf);
        // The events are not what this test reads; keep them from growing for 100 MB.
        sim.events_a.clear();
        sim.events_b.clear();
        sim.step_until(deadline);
    }
    assert_eq!(b.received, LEN, "A's 100 MB reached B (at {:?})", sim.now);
    assert_eq!(a.received, LEN, "B's 100 MB reached A (at {:?})", sim.now);
    let stats = (sim.link_a_to_b().stats(), sim.link_b_to_a().stats());
    println!(
        "both ways by {:?} of virtual time; links {stats:?}",
        sim.now
    );
}

/// The delay every combination has, each way, unless it says otherwise: a 2 ms round trip.
fn path(faults: LinkConfig) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(1),
        ..faults
    }
}

#[test]
fn byte_exact_100_mb_both_ways_at_once_at_one_percent_loss() {
    exchange(
        path(LinkConfig {
            loss: 0.01,
            ..LinkConfig::default()
        }),
        11,
    );
}

#[test]
fn byte_exact_100_mb_both_ways_at_once_at_five_percent_loss() {
    exchange(
        path(LinkConfig {
            loss: 0.05,
            ..LinkConfig::default()
        }),
        12,
    );
}

#[test]
fn byte_exact_100_mb_both_ways_at_once_with_reordering() {
    exchange(
        path(LinkConfig {
            reorder: 0.02,
            reorder_hold: Duration::from_millis(1),
            ..LinkConfig::default()
        }),
        13,
    );
}

#[test]
fn byte_exact_100_mb_both_ways_at_once_with_duplication() {
    exchange(
        path(LinkConfig {
            duplicate: 0.02,
            ..LinkConfig::default()
        }),
        14,
    );
}

#[test]
fn byte_exact_100_mb_both_ways_at_once_with_delay_jitter_and_loss() {
    exchange(
        LinkConfig {
            loss: 0.01,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(2),
            ..LinkConfig::default()
        },
        15,
    );
}
