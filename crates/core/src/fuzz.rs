//! The fuzz harness (feature `fuzzing`): the logic of the cargo-fuzz targets in `fuzz/`,
//! shared with the seeded regression test `tests/fuzz_regression.rs` so both run the same
//! code.
//!
//! [`two_engines`] reads its input as a schedule: application calls on both ends (write,
//! read, shutdown, close, abort), clock advances, and for every frame either end puts on the
//! link a fate — pass, drop, duplicate, reorder, delay or mutate. After every step both
//! engines pass [`Stack::check_invariants`] and every byte an application read is the next
//! byte the other wrote. When the input runs out the mutations stop, both ends shut down
//! and the clock runs on: the transfer must then complete byte-exact in both directions, or
//! end with an error of a kind the schedule allows.
//!
//! # The corruption rule
//! TCP cannot notice a segment that is wrong but well-formed, so the oracle must know which
//! mutations may legitimately put wrong bytes or a wrong end into a stream:
//! - **Checked by the checksum**: a single flipped bit anywhere in the frame and a frame cut
//!   short, with no checksum recomputed. The Internet checksum (RFC 1071) detects every
//!   single-bit error, and a cut frame no longer matches its IPv4 length, so these never
//!   reach TCP; more bits are never flipped without recomputing, since two flips can cancel.
//! - **Forged**: header fields rewritten with the checksums recomputed — flags, SEQ (the
//!   payload is removed, so no data lands at a wrong place), ACK, window, a byte of the
//!   options, the urgent pointer, and a payload cut to a prefix when the segment carries a
//!   FIN (the FIN moves). The payload itself and the data offset are never rewritten with a
//!   fresh checksum: that would be corruption no TCP can detect. IPv4 TTL, TOS, ident and DF
//!   are rewritten with a fresh header checksum and do not count as forged.
//!
//! # What outcome is allowed
//! Always: no panic, the invariants, reads that are a prefix of the peer's writes, an EOF
//! only at the end of what the peer wrote unless a frame was forged, and an end within the
//! time limit. At the end each direction must be complete (everything written was read, then
//! EOF) or its reader closed early, or else an error ended a connection: after a forged frame
//! or an application's close or abort before the end, any error (a forged RST in window, a
//! poisoned TS.Recent that PAWS turns into a timeout, an ACK for data the peer never got);
//! with only drops, duplicates, reordering, delays and checksum-caught corruption, only a
//! timeout ([`ConnError::TimedOut`], [`ConnError::NeighborUnreachable`]) — faults that last
//! longer than the retransmission budget — or a reset of a connection B never accepted: the
//! handshake's last ACK and every SYN-ACK retransmission lost, B's half-open connection
//! expires silently (Linux's tcp_synack_retries does the same) while A, established, later
//! meets a RST.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;
use rawtcp_wire::ethernet::EthernetAddress;
use rawtcp_wire::{RxChecksum, SeqNum, TxChecksum, ipv4, tcp};

use crate::sim::Sim;
use crate::{
    Config, ConnError, ConnectionId, Event, Instant, Ipv4Cidr, Keepalive, ListenerId, Stack, State,
    TcpError, VecSink,
};

const IP: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2)];
const PORT: u16 = 80;
/// Most bytes one application writes: enough for windows, loss and SACK to matter.
const MAX_STREAM: usize = 48 * 1024;
/// Steps of the schedule taken from one input.
const MAX_STEPS: usize = 4096;
/// Virtual time the ends get after the mutations stop, far beyond the retransmission budget
/// of [`config`].
const QUIET_LIMIT: Duration = Duration::from_secs(3600);
/// One-way delay of the link.
const LINK_DELAY: Duration = Duration::from_micros(500);

/// The input, read front to back; zeros once it runs out.
struct Input<'a> {
    bytes: &'a [u8],
}

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        head
    }
}

/// The configuration of both hosts: small buffers, a short retransmission budget and
/// keepalive, so a schedule reaches full windows, the out-of-order limit and timeouts
/// quickly.
pub fn config(host: u8) -> Config {
    let mut config = Config::new(
        EthernetAddress([2, 0, 0, 0, 0, host]),
        Ipv4Cidr::new(IP[usize::from(host - 1)], 24),
    );
    config.seed = 0x5eed_0000 + u64::from(host);
    let tcp = &mut config.tcp;
    tcp.send_buffer = 16 * 1024;
    tcp.recv_buffer = 16 * 1024;
    tcp.max_out_of_order = 8;
    tcp.rto_max = Duration::from_secs(4);
    tcp.max_retransmits = 6;
    tcp.syn_retries = 4;
    tcp.synack_retries = 4;
    tcp.fin_wait_2_timeout = Duration::from_secs(10);
    tcp.msl = Duration::from_secs(5);
    // A RST is sent once: when it is lost, the end that has nothing to send would wait
    // forever (RFC 1122 §4.2.3.6 is what finds such a dead peer). With keepalive on, every
    // connection either moves or fails, so one that does neither is a stall worth reporting.
    tcp.keepalive = Some(Keepalive {
        idle: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        probes: 3,
    });
    config
}

/// The byte at `offset` of the stream host `from` (0 or 1) writes: a hash of both, so a byte
/// delivered at the wrong offset or from the wrong direction does not match.
fn stream_byte(from: usize, offset: usize) -> u8 {
    let mut z = (offset as u64) ^ ((from as u64) << 40) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u8
}

/// What one run of [`two_engines`] came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes each host's application wrote (A, B).
    pub written: [usize; 2],
    /// Bytes each host's application read.
    pub read: [usize; 2],
    /// Both directions completed: everything written was read, then EOF.
    pub complete: bool,
    /// The errors that ended each host's connection.
    pub errors: [Option<ConnError>; 2],
    /// A header was forged (rewritten with a fresh checksum).
    pub forged: bool,
    /// An application closed or aborted before the end.
    pub closed_early: bool,
    /// Frames put on the link.
    pub frames: u64,
    /// Frames whose bytes were mutated.
    pub mutated: u64,
}

#[derive(Debug, Default)]
struct Side {
    conn: Option<ConnectionId>,
    written: usize,
    read: usize,
    eof: bool,
    shut: bool,
    closed: bool,
    error: Option<ConnError>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    to: usize,
    frame: Vec<u8>,
}

struct TwoEngines<'a> {
    now: Instant,
    stacks: [Stack; 2],
    sides: [Side; 2],
    listener: ListenerId,
    link: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    input: Input<'a>,
    mutating: bool,
    report: Report,
    buf: Vec<u8>,
}

/// Runs `input` as a schedule over two engines and a mutating link (see the module docs);
/// `Err` says which check failed. An engine panic is not caught.
pub fn two_engines(input: &[u8]) -> Result<Report, String> {
    let mut stacks = [Stack::new(config(1)), Stack::new(config(2))];
    let listener = stacks[1]
        .tcp_listen(SocketAddrV4::new(IP[1], PORT), None)
        .map_err(|e| format!("listen: {e:?}"))?;
    let client = stacks[0]
        .tcp_connect(Instant::ZERO, SocketAddrV4::new(IP[1], PORT), None)
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut run = TwoEngines {
        now: Instant::ZERO,
        stacks,
        sides: [Side::default(), Side::default()],
        listener,
        link: BinaryHeap::new(),
        order: 0,
        input: Input { bytes: input },
        mutating: true,
        report: Report::default(),
        buf: vec![0; 8192],
    };
    run.sides[0].conn = Some(client);
    run.schedule()?;
    run.quiet()?;
    run.verdict()
}

impl TwoEngines<'_> {
    fn schedule(&mut self) -> Result<(), String> {
        for _ in 0..MAX_STEPS {
            if self.input.is_empty() {
                break;
            }
            let op = self.input.u8();
            let side = usize::from(op & 1);
            match op {
                0..=63 => {
                    let len = usize::from(self.input.u16() % 4096) + 1;
                    self.write(side, len)?;
                }
                64..=127 => {
                    let len = usize::from(self.input.u16() % 4096) + 1;
                    self.read(side, len)?;
                }
                128..=191 => {
                    let shift = self.input.u8() % 24;
                    self.run_until(self.now + Duration::from_micros(1 << shift))?;
                }
                192..=199 => self.shutdown(side),
                200..=201 => self.close(side, false),
                202..=203 => self.close(side, true),
                _ => {
                    // To the next deadline, whatever it is.
                    if let Some(next) = self.next_deadline() {
                        self.run_until(next.max(self.now))?;
                    }
                }
            }
            self.settle()?;
        }
        Ok(())
    }

    /// The mutations stop, both ends finish writing, and the clock runs until every direction
    /// has come to an end or the limit passes.
    fn quiet(&mut self) -> Result<(), String> {
        self.mutating = false;
        let until = self.now + QUIET_LIMIT;
        loop {
            // Each end shuts down once its connection is past SYN-SENT (B: once accepted).
            for side in 0..2 {
                let s = &self.sides[side];
                if let Some(id) = s.conn
                    && self.stacks[side].tcp_state(id) != Some(State::SynSent)
                {
                    self.shutdown(side);
                }
            }
            self.settle()?;
            for side in 0..2 {
                self.read_all(side)?;
            }
            self.settle()?;
            if self.finished() {
                return Ok(());
            }
            match self.next_deadline() {
                Some(next) if next <= until => self.now = next.max(self.now),
                _ => return Ok(()),
            }
        }
    }

    /// Everything `from` wrote was read and then EOF (after a forged frame, an EOF anywhere:
    /// a FIN forged in sequence ends the stream there); or the reader closed; or the writer
    /// gave up before the reader ever had the connection (a connect shut down in SYN-SENT).
    fn direction_done(&self, from: usize) -> bool {
        let (writer, reader) = (&self.sides[from], &self.sides[1 - from]);
        (reader.eof && (reader.read == writer.written || self.report.forged))
            || reader.closed
            || (writer.closed && reader.conn.is_none())
    }

    fn allowed_errors(&self) -> bool {
        let lax = self.report.forged || self.report.closed_early;
        // A reset B never accepted the connection for: the handshake's last ACK and B's
        // SYN-ACK retransmissions were lost, B dropped the half-open connection without a
        // word (as Linux does after tcp_synack_retries), and A's next segment met a RST.
        let half_open_expired = self.sides[1].conn.is_none();
        self.sides.iter().any(|s| match s.error {
            Some(ConnError::TimedOut | ConnError::NeighborUnreachable) => true,
            Some(ConnError::Reset) if half_open_expired => true,
            Some(_) => lax,
            None => false,
        })
    }

    fn finished(&self) -> bool {
        (self.direction_done(0) && self.direction_done(1)) || self.allowed_errors()
    }

    fn verdict(mut self) -> Result<Report, String> {
        let complete = self.direction_done(0) && self.direction_done(1);
        if !complete {
            if self.sides.iter().all(|s| s.error.is_none()) {
                return Err(format!(
                    "stalled: neither complete nor failed after {QUIET_LIMIT:?} of quiet: {}",
                    self.describe()
                ));
            }
            if !self.allowed_errors() {
                return Err(format!(
                    "an error no fault explains (nothing forged, no early close): {}",
                    self.describe()
                ));
            }
        }
        self.report.complete = (0..2).all(|from| {
            let reader = &self.sides[1 - from];
            reader.eof && reader.read == self.sides[from].written
        });
        for (i, side) in self.sides.iter().enumerate() {
            self.report.written[i] = side.written;
            self.report.read[i] = side.read;
            self.report.errors[i] = side.error;
        }
        Ok(self.report)
    }

    fn describe(&self) -> String {
        let conns: Vec<_> = self.stacks.iter().map(Stack::connections).collect();
        format!(
            "at {}: sides {:?}, forged {}, closed early {}, A {:?}, B {:?}",
            self.now, self.sides, self.report.forged, self.report.closed_early, conns[0], conns[1]
        )
    }

    // ---- The applications ----

    fn write(&mut self, side: usize, len: usize) -> Result<(), String> {
        let s = &self.sides[side];
        let Some(id) = s.conn.filter(|_| !s.closed && !s.shut) else {
            return Ok(());
        };
        let len = len.min(MAX_STREAM - s.written);
        let data: Vec<u8> = (s.written..s.written + len)
            .map(|i| stream_byte(side, i))
            .collect();
        match self.stacks[side].tcp_send(self.now, id, &data) {
            Ok(n) => self.sides[side].written += n,
            Err(error) => self.app_error(side, error)?,
        }
        Ok(())
    }

    fn read(&mut self, side: usize, len: usize) -> Result<(), String> {
        let s = &self.sides[side];
        let Some(id) = s.conn.filter(|_| !s.closed) else {
            return Ok(());
        };
        let mut buf = std::mem::take(&mut self.buf);
        let len = len.min(buf.len());
        let result = self.stacks[side].tcp_recv(self.now, id, &mut buf[..len]);
        let outcome = match result {
            Ok(0) => self.eof(side),
            Ok(n) => self.check_read(side, &buf[..n]),
            Err(error) => self.app_error(side, error),
        };
        self.buf = buf;
        outcome
    }

    /// Reads until nothing is left.
    fn read_all(&mut self, side: usize) -> Result<(), String> {
        loop {
            let before = (self.sides[side].read, self.sides[side].eof);
            self.read(side, 8192)?;
            if (self.sides[side].read, self.sides[side].eof) == before {
                return Ok(());
            }
        }
    }

    fn check_read(&mut self, side: usize, data: &[u8]) -> Result<(), String> {
        let from = 1 - side;
        let s = &self.sides[side];
        if s.eof {
            return Err(format!("host {side} read {} bytes after EOF", data.len()));
        }
        if s.read + data.len() > self.sides[from].written {
            return Err(format!(
                "host {side} read {} bytes at {}, but only {} were written",
                data.len(),
                s.read,
                self.sides[from].written
            ));
        }
        if let Some(at) = (0..data.len()).find(|&i| data[i] != stream_byte(from, s.read + i)) {
            return Err(format!(
                "host {side} read a wrong byte at stream offset {} (a duplicate, reordered or corrupted byte)",
                s.read + at
            ));
        }
        self.sides[side].read += data.len();
        Ok(())
    }

    fn eof(&mut self, side: usize) -> Result<(), String> {
        let from = 1 - side;
        let peer = &self.sides[from];
        let s = &self.sides[side];
        if !s.eof && !self.report.forged && (s.read != peer.written || !(peer.shut || peer.closed))
        {
            return Err(format!(
                "host {side} saw EOF after {} bytes; the peer wrote {} and shut down: {}",
                s.read,
                peer.written,
                peer.shut || peer.closed
            ));
        }
        self.sides[side].eof = true;
        Ok(())
    }

    fn app_error(&mut self, side: usize, error: TcpError) -> Result<(), String> {
        match error {
            TcpError::WouldBlock => Ok(()),
            TcpError::Connection(error) => {
                self.sides[side].error.get_or_insert(error);
                Ok(())
            }
            // Writing after the connection reached its end without an error (a forged FIN
            // answered, a close): nothing to check here; the verdict judges the end.
            TcpError::BrokenPipe | TcpError::NotConnected => Ok(()),
            other => Err(format!("host {side}: {other:?} for a handle it holds")),
        }
    }

    fn shutdown(&mut self, side: usize) {
        let s = &mut self.sides[side];
        let Some(id) = s.conn.filter(|_| !s.closed && !s.shut) else {
            return;
        };
        if self.stacks[side].tcp_state(id) == Some(State::SynSent) {
            // Shutting down a connect in progress gives it up (RFC 9293 §3.10.4 CLOSE in
            // SYN-SENT; Linux's tcp_shutdown too): queued data is dropped. A close.
            s.closed = true;
            self.report.closed_early = true;
        }
        s.shut = true;
        let _ = self.stacks[side].tcp_shutdown(self.now, id);
    }

    fn close(&mut self, side: usize, abort: bool) {
        let s = &mut self.sides[side];
        let Some(id) = s.conn.filter(|_| !s.closed) else {
            return;
        };
        s.closed = true;
        self.report.closed_early = true;
        let _ = if abort {
            self.stacks[side].tcp_abort(self.now, id)
        } else {
            self.stacks[side].tcp_close(self.now, id)
        };
    }

    // ---- Time, the link and the checks ----

    fn next_deadline(&self) -> Option<Instant> {
        let link = self.link.peek().map(|Reverse(f)| f.at);
        [
            self.stacks[0].poll_timeout(),
            self.stacks[1].poll_timeout(),
            link,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn run_until(&mut self, until: Instant) -> Result<(), String> {
        self.settle()?;
        while let Some(next) = self.next_deadline() {
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            self.settle()?;
        }
        self.now = self.now.max(until);
        self.settle()
    }

    /// Moves everything due at `now`, then checks both engines.
    fn settle(&mut self) -> Result<(), String> {
        for _round in 0..100_000 {
            let mut progress = false;
            for side in 0..2 {
                if self.stacks[side]
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    self.stacks[side].handle_timeout(self.now);
                    progress = true;
                }
                progress |= self.transmit(side);
            }
            while self.link.peek().is_some_and(|Reverse(f)| f.at <= self.now) {
                let Some(Reverse(f)) = self.link.pop() else {
                    break;
                };
                // Both ways in: the second engine keeps payload as slices of its frames.
                if f.to == 1 {
                    self.stacks[1].handle_frame_bytes(
                        self.now,
                        Bytes::from(f.frame),
                        RxChecksum::Verify,
                    );
                } else {
                    self.stacks[0].handle_frame(self.now, &f.frame, RxChecksum::Verify);
                }
                progress = true;
            }
            self.collect_events()?;
            if !progress {
                for (side, stack) in self.stacks.iter().enumerate() {
                    stack
                        .check_invariants()
                        .map_err(|e| format!("host {side} at {}: {e}", self.now))?;
                }
                return Ok(());
            }
        }
        Err(format!("livelock: {}", self.describe()))
    }

    fn collect_events(&mut self) -> Result<(), String> {
        for side in 0..2 {
            while let Some(event) = self.stacks[side].poll_event() {
                match event {
                    Event::Error(id, error) if Some(id) == self.sides[side].conn => {
                        self.sides[side].error.get_or_insert(error);
                    }
                    Event::Acceptable(_) if side == 1 => self.accept()?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// B takes the connection from A's real address; any other (from a forged source port)
    /// is aborted.
    fn accept(&mut self) -> Result<(), String> {
        let client = self.sides[0]
            .conn
            .and_then(|id| self.stacks[0].tcp_info(id))
            .map(|info| info.local);
        while let Some(id) = self.stacks[1]
            .tcp_accept(self.listener)
            .map_err(|e| format!("accept: {e:?}"))?
        {
            let remote = self.stacks[1].tcp_info(id).map(|info| info.remote);
            if self.sides[1].conn.is_none() && remote.is_some() && remote == client {
                self.sides[1].conn = Some(id);
            } else {
                let _ = self.stacks[1].tcp_abort(self.now, id);
            }
        }
        Ok(())
    }

    fn transmit(&mut self, side: usize) -> bool {
        let mut sink = VecSink::new();
        let _ = self.stacks[side].poll_transmit(self.now, &mut sink);
        let any = !sink.frames.is_empty();
        for frame in sink.frames {
            self.report.frames += 1;
            self.fate(1 - side, frame);
        }
        any
    }

    fn send_at(&mut self, at: Instant, to: usize, frame: Vec<u8>) {
        self.order += 1;
        self.link.push(Reverse(InFlight {
            at: at + LINK_DELAY,
            order: self.order,
            to,
            frame,
        }));
    }

    /// What the link does with one frame: the next input byte says, while mutations last.
    fn fate(&mut self, to: usize, mut frame: Vec<u8>) {
        let now = self.now;
        if !self.mutating || self.input.is_empty() {
            return self.send_at(now, to, frame);
        }
        match self.input.u8() {
            0..=159 => self.send_at(now, to, frame),
            160..=179 => {} // lost
            180..=189 => {
                let later = Duration::from_millis(u64::from(self.input.u8()));
                self.send_at(now + later, to, frame.clone());
                self.send_at(now, to, frame);
            }
            190..=204 => {
                // Held back a little: frames sent after it overtake it.
                let hold = Duration::from_micros(100 + 100 * u64::from(self.input.u8() % 64));
                self.send_at(now + hold, to, frame);
            }
            205..=214 => {
                let delay = Duration::from_millis(20 * u64::from(self.input.u8()));
                self.send_at(now + delay, to, frame);
            }
            _ => {
                let kind = self.input.u8();
                if self.mutate(&mut frame, kind) {
                    self.report.mutated += 1;
                }
                self.send_at(now, to, frame);
            }
        }
    }

    /// Mutates a TCP/IPv4 frame as `kind` says (see the corruption rule in the module docs);
    /// whether it did.
    fn mutate(&mut self, frame: &mut Vec<u8>, kind: u8) -> bool {
        let Some(at) = TcpAt::of(frame) else {
            return false;
        };
        match kind % 10 {
            0 => {
                // One bit anywhere: the checksums catch it.
                let bit = usize::from(self.input.u16()) % (frame.len() * 8);
                frame[bit / 8] ^= 1 << (bit % 8);
                return true;
            }
            1 => {
                // Cut short, lengths left as they were: IPv4 validation drops it.
                let len = usize::from(self.input.u16()) % frame.len();
                frame.truncate(len);
                return true;
            }
            2 => {
                // A prefix of the payload: right bytes at the right place, but a FIN moves.
                let keep = usize::from(self.input.u16()) % (at.payload_len(frame) + 1);
                if frame[at.tcp + 13] & 0x01 != 0 {
                    self.report.forged = true;
                }
                at.cut_payload(frame, keep);
            }
            3 => {
                frame[at.tcp + 13] ^= self.input.u8();
                frame[at.tcp + 12] ^= self.input.u8() & 0x01; // NS
                self.report.forged = true;
            }
            4 => {
                let delta = i32::from(self.input.u16() as i16) * i32::from(self.input.u8());
                let seq = u32::from_be_bytes(frame[at.tcp + 4..at.tcp + 8].try_into().expect("4"));
                let seq = seq.wrapping_add(delta as u32);
                frame[at.tcp + 4..at.tcp + 8].copy_from_slice(&seq.to_be_bytes());
                at.cut_payload(frame, 0);
                self.report.forged = true;
            }
            5 => {
                let delta = i32::from(self.input.u16() as i16) * i32::from(self.input.u8());
                let ack = u32::from_be_bytes(frame[at.tcp + 8..at.tcp + 12].try_into().expect("4"));
                let ack = ack.wrapping_add(delta as u32);
                frame[at.tcp + 8..at.tcp + 12].copy_from_slice(&ack.to_be_bytes());
                self.report.forged = true;
            }
            6 => {
                let window = self.input.u16();
                frame[at.tcp + 14..at.tcp + 16].copy_from_slice(&window.to_be_bytes());
                self.report.forged = true;
            }
            7 => {
                let options = at.header_len(frame) - 20;
                let (index, value) = (usize::from(self.input.u8()), self.input.u8());
                if options == 0 {
                    return false;
                }
                frame[at.tcp + 20 + index % options] = value;
                self.report.forged = true;
            }
            8 => {
                let pointer = self.input.u16();
                frame[at.tcp + 13] |= 0x20; // URG
                frame[at.tcp + 18..at.tcp + 20].copy_from_slice(&pointer.to_be_bytes());
                self.report.forged = true;
            }
            _ => {
                // IPv4 fields TCP does not see, with a fresh header checksum.
                let value = self.input.u8();
                match value % 4 {
                    0 => frame[14 + 8] = self.input.u8(), // TTL
                    1 => frame[14 + 1] = self.input.u8(), // DSCP and ECN
                    2 => frame[14 + 4] = self.input.u8(), // ident
                    _ => frame[14 + 6] ^= 0x40,           // DF
                }
                ipv4::Packet::new_unchecked(&mut frame[14..at.tcp]).fill_checksum();
                return true;
            }
        }
        at.fill_checksums(frame);
        true
    }
}

/// Where the TCP segment sits in an Ethernet frame holding an unfragmented TCP/IPv4 datagram.
#[derive(Debug, Clone, Copy)]
struct TcpAt {
    /// Offset of the TCP header.
    tcp: usize,
    /// End of the IPv4 datagram.
    end: usize,
}

impl TcpAt {
    fn of(frame: &[u8]) -> Option<TcpAt> {
        if frame.len() < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 6 {
            return None;
        }
        let tcp = 14 + usize::from(frame[14] & 0x0f) * 4;
        let end = 14 + usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        let at = TcpAt { tcp, end };
        (tcp >= 34 && end <= frame.len() && tcp + 20 <= end && tcp + at.header_len(frame) <= end)
            .then_some(at)
    }

    fn header_len(&self, frame: &[u8]) -> usize {
        usize::from(frame[self.tcp + 12] >> 4) * 4
    }

    fn payload_len(&self, frame: &[u8]) -> usize {
        self.end - self.tcp - self.header_len(frame)
    }

    /// Keeps `keep` bytes of the payload and fixes the IPv4 total length.
    fn cut_payload(&self, frame: &mut Vec<u8>, keep: usize) {
        let end = self.tcp + self.header_len(frame) + keep.min(self.payload_len(frame));
        frame.truncate(end);
        let total = (end - 14) as u16;
        frame[16..18].copy_from_slice(&total.to_be_bytes());
    }

    fn fill_checksums(&self, frame: &mut [u8]) {
        let end = 14 + usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        let src = Ipv4Addr::from(<[u8; 4]>::try_from(&frame[26..30]).expect("4 bytes"));
        let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&frame[30..34]).expect("4 bytes"));
        ipv4::Packet::new_unchecked(&mut frame[14..self.tcp]).fill_checksum();
        tcp::Packet::new_unchecked(&mut frame[self.tcp..end]).fill_checksum(
            src,
            dst,
            TxChecksum::Full,
        );
    }
}

/// Feeds arbitrary frames to one engine, B, that has a listener and an established
/// connection with A (over a perfect simulated link): raw bytes as a whole frame, or a
/// well-formed TCP segment to the connection or the listener built from the input (valid
/// checksums, sequence and acknowledgment numbers near the live ones, raw option bytes),
/// interleaved with B's application calls and clock jumps. `Err` when an invariant breaks;
/// an engine panic is not caught.
pub fn one_engine_frames(input: &[u8]) -> Result<(), String> {
    let mut sim = Sim::new(config(1), config(2));
    sim.trace = false;
    let server = SocketAddrV4::new(IP[1], PORT);
    let listener = sim
        .b
        .tcp_listen(server, None)
        .map_err(|e| format!("{e:?}"))?;
    let client = sim
        .a
        .tcp_connect(sim.now, server, None)
        .map_err(|e| format!("{e:?}"))?;
    sim.run_for(Duration::from_millis(10));
    let conn = sim
        .b
        .tcp_accept(listener)
        .map_err(|e| format!("{e:?}"))?
        .ok_or("not established on a perfect link")?;
    let written: Vec<u8> = (0..3000).map(|i| stream_byte(0, i)).collect();
    let _ = sim.a.tcp_send(sim.now, client, &written);
    let _ = sim.b.tcp_send(sim.now, conn, &written);
    sim.run_for(Duration::from_millis(1));
    let mut input = Input { bytes: input };
    let mut buf = [0u8; 4096];
    let a_mac = sim.a.config().mac;
    let b_mac = sim.b.config().mac;
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        match op % 8 {
            0 => {
                let len = usize::from(input.u16() % 1600);
                let frame = input.take(len).to_vec();
                let checksum = if op & 8 == 0 {
                    RxChecksum::Verify
                } else {
                    RxChecksum::Trusted
                };
                if op & 16 == 0 {
                    sim.b.handle_frame(sim.now, &frame, checksum);
                } else {
                    sim.b
                        .handle_frame_bytes(sim.now, Bytes::from(frame), checksum);
                }
            }
            1..=3 => {
                // A segment to the connection (from A's address and port) or, for op 3, to
                // the listener from anywhere.
                let info = sim.b.tcp_info(conn);
                let (src_ip, src_port, seq, ack) = match (op % 8, info) {
                    (1 | 2, Some(info)) => (IP[0], info.remote.port(), info.rcv_nxt, info.snd_una),
                    _ => (
                        Ipv4Addr::new(10, 9, 0, 1 + input.u8() % 8),
                        input.u16(),
                        SeqNum::new(0),
                        SeqNum::new(0),
                    ),
                };
                let seq = seq + (i32::from(input.u16() as i16) * 8) as u32;
                let ack = ack + (i32::from(input.u16() as i16) * 8) as u32;
                let flags = input.u16() & 0x1ff;
                let window = input.u16();
                let urgent = if flags & 0x20 != 0 { input.u16() } else { 0 };
                let options_len = usize::from(input.u8() % 11) * 4;
                let mut options = input.take(options_len).to_vec();
                options.resize(options_len, 1); // NOP when the input ran out
                let payload_len = usize::from(input.u16() % 1500);
                let payload = input.take(payload_len).to_vec();
                let segment = Segment {
                    src: (src_ip, src_port),
                    dst: (IP[1], PORT),
                    seq,
                    ack,
                    flags,
                    window,
                    urgent,
                    options: &options,
                    payload: &payload,
                };
                let frame = segment.frame(a_mac, b_mac);
                // Segments to the connection: op 2's in a frame it may keep slices of.
                if op % 8 == 2 {
                    sim.b
                        .handle_frame_bytes(sim.now, Bytes::from(frame), RxChecksum::Verify);
                } else {
                    sim.b.handle_frame(sim.now, &frame, RxChecksum::Verify);
                }
            }
            4 => {
                let len = usize::from(input.u16() % 4096);
                let _ = sim
                    .b
                    .tcp_send(sim.now, conn, &written[..len.min(written.len())]);
            }
            5 => {
                let len = usize::from(input.u16()) % buf.len();
                let _ = sim.b.tcp_recv(sim.now, conn, &mut buf[..len]);
            }
            6 => {
                if input.u8() < 16 {
                    let _ = sim.b.tcp_shutdown(sim.now, conn);
                }
            }
            _ => sim.run_for(Duration::from_micros(1 << (input.u8() % 26))),
        }
        sim.settle();
        for (host, stack) in [("A", &sim.a), ("B", &sim.b)] {
            stack
                .check_invariants()
                .map_err(|e| format!("host {host} at {}: {e}", sim.now))?;
        }
    }
    sim.run_for(Duration::from_secs(600));
    for (host, stack) in [("A", &sim.a), ("B", &sim.b)] {
        stack
            .check_invariants()
            .map_err(|e| format!("host {host} at the end: {e}"))?;
    }
    Ok(())
}

/// A TCP segment with raw options, as [`one_engine_frames`] builds them.
struct Segment<'a> {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: SeqNum,
    ack: SeqNum,
    /// The nine control bits, NS included.
    flags: u16,
    window: u16,
    urgent: u16,
    /// A multiple of 4 bytes, at most 40.
    options: &'a [u8],
    payload: &'a [u8],
}

impl Segment<'_> {
    fn frame(&self, src_mac: EthernetAddress, dst_mac: EthernetAddress) -> Vec<u8> {
        let header_len = 20 + self.options.len();
        let total = 20 + header_len + self.payload.len();
        let mut frame = vec![0u8; 14 + total];
        frame[..6].copy_from_slice(&dst_mac.0);
        frame[6..12].copy_from_slice(&src_mac.0);
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut frame[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&self.src.0.octets());
        ip[16..20].copy_from_slice(&self.dst.0.octets());
        let tcp = &mut frame[34..];
        tcp[0..2].copy_from_slice(&self.src.1.to_be_bytes());
        tcp[2..4].copy_from_slice(&self.dst.1.to_be_bytes());
        tcp[4..8].copy_from_slice(&self.seq.raw().to_be_bytes());
        tcp[8..12].copy_from_slice(&self.ack.raw().to_be_bytes());
        tcp[12] = ((header_len / 4) as u8) << 4 | (self.flags >> 8) as u8;
        tcp[13] = self.flags as u8;
        tcp[14..16].copy_from_slice(&self.window.to_be_bytes());
        tcp[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        tcp[20..header_len].copy_from_slice(self.options);
        tcp[header_len..].copy_from_slice(self.payload);
        let at = TcpAt {
            tcp: 34,
            end: 14 + total,
        };
        at.fill_checksums(&mut frame);
        frame
    }
}
