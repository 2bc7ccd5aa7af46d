//! One connection's control block and its processing (RFC 9293 §3.10).
//!
//! Segment arrival follows RFC 9293 §3.10.7 step by step; output is planned by
//! [`Connection::plan`] and applied by [`Connection::commit`] once the segment is actually
//! on its way, so a full transmit queue never loses state.

use core::time::Duration;
use std::net::SocketAddrV4;
use std::sync::Arc;

use bytes::Bytes;
use rawtcp_wire::SeqNum;
use rawtcp_wire::tcp::{TcpFlags, TcpRepr, Timestamps};

use super::autotune::RecvAutotune;
use super::buffer::{OutOfOrderLimits, RecvBuffer, SendBuffer};
use super::congestion::{Acked, CongestionControl, Controller, initial_window};
use super::paws::TsRecent;
use super::recovery::{AckContext, CongestionState, FrtoAction, LossRecovery, Retransmission};
use super::rtt::RttEstimator;
use super::state::State;
use super::timers::{Timer, TimerTable};
use super::{Cause, ConnError, ConnEvent, ConnectionStats, ListenerId};
use crate::Instant;
use crate::config::{Keepalive, TcpConfig};
use crate::iface::ratelimit::ChallengeAckBudget;

mod counters;
mod output;

use counters::Counters;

/// RFC 9293 §3.7.1: the send MSS when the peer offers none.
const DEFAULT_MSS: usize = 536;

/// What the connection wants to send next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) seq: SeqNum,
    pub(crate) ack: SeqNum,
    pub(crate) flags: TcpFlags,
    /// Offset of the payload from SND.UNA in the send buffer.
    pub(crate) data_offset: usize,
    pub(crate) data_len: usize,
    pub(crate) window: u16,
    pub(crate) kind: PlanKind,
    /// Payload bytes per segment when `data_len` is a super-segment for the device to cut
    /// (segmentation offload); 0 for an ordinary segment.
    pub(crate) gso_size: u16,
}

/// The most payload one super-segment carries: its IPv4 datagram must stay within 65 535
/// bytes with the largest TCP header (60 bytes).
const GSO_MAX_PAYLOAD: usize = 65_535 - 20 - 60;

impl Plan {
    /// The segments this plan puts on the wire.
    pub(crate) fn segments(&self) -> u64 {
        if self.gso_size == 0 {
            1
        } else {
            self.data_len.div_ceil(usize::from(self.gso_size)).max(1) as u64
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanKind {
    Syn,
    Data,
    /// A retransmission chosen by the loss recovery; SND.NXT stays where it is.
    Retransmit {
        rescue: bool,
    },
    Ack,
    /// A keepalive or zero-window probe: SEQ = SND.UNA − 1, no data.
    Probe,
    Reset,
}

/// Data (and/or a FIN) that may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DataPlan {
    /// Offset of the first byte from SND.UNA in the send buffer.
    offset: usize,
    len: usize,
    fin: bool,
    /// Payload bytes per segment when `len` is a super-segment for the device to cut, else 0.
    gso_size: u16,
    /// Set when the loss recovery chose this segment (rather than the next unsent one).
    retransmission: Option<Retransmission>,
}

/// The send and receive sequence variables (RFC 9293 §3.3.1), as a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SequenceState {
    pub(crate) snd_una: SeqNum,
    pub(crate) snd_nxt: SeqNum,
    /// One past the highest sequence number sent.
    pub(crate) snd_max: SeqNum,
    pub(crate) rcv_nxt: SeqNum,
}

/// Congestion control and loss recovery, for TCP_INFO-style statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CongestionInfo {
    pub(crate) algorithm: super::CongestionAlgorithm,
    pub(crate) state: CongestionState,
    pub(crate) cwnd: u32,
    pub(crate) ssthresh: u32,
    pub(crate) in_flight: u32,
    pub(crate) sacked: u32,
    pub(crate) lost: u32,
}

/// A reset to send on our way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResetPlan {
    seq: SeqNum,
    ack: Option<SeqNum>,
}

#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: SocketAddrV4,
    pub(crate) state: State,
    /// Passive connections belong to their listener until accepted.
    pub(crate) listener: Option<ListenerId>,
    /// The application holds the handle.
    pub(crate) app_owned: bool,
    /// The application closed the connection (no more reads or writes).
    pub(crate) app_closed: bool,
    /// The application shut down its read side: new data is answered with a reset.
    read_closed: bool,
    /// Opened by us (connect) rather than by a peer's SYN.
    pub(crate) active: bool,

    iss: SeqNum,
    /// Our SYN has been acknowledged. A state fact, never `snd_una == iss`: SND.UNA comes
    /// back to ISS every 2³² bytes (RFC 9293 §3.4).
    syn_acked: bool,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    /// One past the highest sequence number sent (SND.NXT before a go-back retransmission).
    snd_max: SeqNum,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    send: SendBuffer,
    /// The application shut down its write side: a FIN follows the data.
    fin_requested: bool,
    /// Sequence number of our FIN once it has been sent.
    fin_seq: Option<SeqNum>,
    /// Our FIN has been acknowledged (a state fact, as `syn_acked`).
    fin_acked: bool,

    irs: SeqNum,
    rcv_nxt: SeqNum,
    /// The right edge of the window we last advertised; it never moves left.
    rcv_right: SeqNum,
    recv: RecvBuffer,
    autotune: RecvAutotune,
    fin_received: bool,
    /// A FIN that arrived beyond RCV.NXT, to take when the data before it does.
    pending_fin: Option<SeqNum>,
    /// Data received twice, to report as the first SACK block of the next ACK (D-SACK,
    /// RFC 2883 §4).
    dsack: Option<(SeqNum, SeqNum)>,

    /// Our MSS offer (16 bits, as the option: an IPv4 datagram holds at most 65 535 bytes).
    our_mss: u16,
    /// The send MSS: the smaller of the two offers, lowered by path MTU discovery.
    mss: u16,
    snd_wscale: u8,
    rcv_wscale: u8,
    ts_enabled: bool,
    ts_recent: TsRecent,
    /// The acknowledgment number of our last ACK (RFC 7323 §4.3's Last.ACK.sent).
    last_ack_sent: SeqNum,
    ts_offset: u32,
    sack_permitted: bool,
    offer_wscale: bool,
    offer_ts: bool,
    offer_sack: bool,

    rtt: RttEstimator,
    /// Karn's rule without timestamps: one segment timed at a time, never a retransmitted one.
    rtt_probe: Option<(SeqNum, Instant)>,
    timers: TimerTable,
    /// Retransmissions since the last new acknowledgment.
    retransmits: u32,
    /// When the oldest unacknowledged data was first sent (for the user timeout).
    unacked_since: Option<Instant>,
    ack_now: bool,
    /// Full-sized segments received since our last ACK.
    segments_unacked: u32,
    persist_backoff: u32,
    /// Zero-window probes sent since the peer last acknowledged anything.
    persist_probes: u32,
    /// When the first of those unanswered probes went out (for the user timeout).
    persist_since: Option<Instant>,
    keepalive: Option<CompactKeepalive>,
    keepalive_probes: u32,
    probe_due: bool,
    /// The persist timer fired with a small, non-zero window: send what fits.
    sws_override: bool,
    /// When our last SYN or SYN-ACK went out (to rate-limit answers to duplicate SYNs).
    last_syn_sent: Option<Instant>,
    /// When we last answered an out-of-window or unsendable-ACK segment (rate limit).
    last_oow_ack: Option<Instant>,
    pub(crate) nodelay: bool,
    cc: Controller,
    recovery: LossRecovery,
    /// When data last went out (RFC 5681 §4.1: restart after an idle RTO).
    last_data_sent: Option<Instant>,
    reset: Option<ResetPlan>,
    pub(crate) error: Option<ConnError>,
    /// The last ICMP soft error (RFC 9293 MUST-56), reported on a timeout.
    soft_error: Option<ConnError>,
    resend_syn: bool,
    /// Passive connections use the listener's SYN-ACK retry count.
    passive_syn_retries: bool,
    /// The stack's TCP configuration, shared by every connection.
    config: Arc<TcpConfig>,
    pub(crate) stats: Counters,
    pub(crate) events: Vec<ConnEvent>,
}

/// Keepalive timing in milliseconds: every connection carries one, so it is kept small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CompactKeepalive {
    idle_ms: u32,
    interval_ms: u32,
    probes: u32,
}

impl From<Keepalive> for CompactKeepalive {
    fn from(k: Keepalive) -> CompactKeepalive {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        CompactKeepalive {
            idle_ms: ms(k.idle),
            interval_ms: ms(k.interval),
            probes: k.probes,
        }
    }
}

/// An MSS as the control block keeps it: 16 bits, as the option carries it (no IPv4 segment
/// has more payload; a larger configured minimum saturates).
fn mss_field(mss: usize) -> u16 {
    u16::try_from(mss).unwrap_or(u16::MAX)
}

/// Milliseconds of our timestamp clock at `now`.
pub(crate) fn ts_clock(now: Instant) -> u32 {
    (now.as_micros() / 1000) as u32
}

/// The smallest shift that lets `buffer` bytes be advertised in 16 bits (RFC 7323 §2.3: at
/// most 14).
pub(crate) fn window_shift(buffer: usize) -> u8 {
    let mut shift = 0;
    while shift < 14 && (buffer >> shift) > 65535 {
        shift += 1;
    }
    shift
}

impl Connection {
    fn new(
        config: &Arc<TcpConfig>,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        mtu: usize,
        ts_offset: u32,
        now: Instant,
    ) -> Connection {
        let our_mss = mtu.saturating_sub(40).max(config.min_snd_mss);
        Connection {
            local,
            remote,
            state: State::Closed,
            listener: None,
            app_owned: false,
            app_closed: false,
            read_closed: false,
            active: false,
            iss,
            syn_acked: false,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum::new(0),
            snd_wl2: iss,
            send: SendBuffer::new(config.send_buffer),
            fin_requested: false,
            fin_seq: None,
            fin_acked: false,
            irs: SeqNum::new(0),
            rcv_nxt: SeqNum::new(0),
            rcv_right: SeqNum::new(0),
            recv: RecvBuffer::new(config.recv_buffer),
            autotune: RecvAutotune::new(config.recv_buffer, config.recv_buffer_max, our_mss),
            fin_received: false,
            pending_fin: None,
            dsack: None,
            our_mss: mss_field(our_mss),
            mss: mss_field(DEFAULT_MSS.min(our_mss)),
            snd_wscale: 0,
            rcv_wscale: 0,
            ts_enabled: false,
            ts_recent: TsRecent::new(0, now),
            last_ack_sent: SeqNum::new(0),
            ts_offset,
            sack_permitted: false,
            offer_wscale: config.window_scaling,
            offer_ts: config.timestamps,
            offer_sack: config.sack,
            rtt: RttEstimator::new(config.rto_initial, config.rto_min, config.rto_max),
            rtt_probe: None,
            timers: TimerTable::default(),
            retransmits: 0,
            unacked_since: None,
            ack_now: false,
            segments_unacked: 0,
            persist_backoff: 0,
            persist_probes: 0,
            persist_since: None,
            keepalive: config.keepalive.map(CompactKeepalive::from),
            keepalive_probes: 0,
            probe_due: false,
            sws_override: false,
            last_syn_sent: None,
            last_oow_ack: None,
            nodelay: !config.nagle,
            cc: config.congestion_control.build(DEFAULT_MSS as u32),
            recovery: LossRecovery::new(iss, config.rack, config.frto),
            last_data_sent: None,
            reset: None,
            error: None,
            soft_error: None,
            resend_syn: false,
            passive_syn_retries: false,
            config: Arc::clone(config),
            stats: Counters::new(now),
            events: Vec::new(),
        }
    }

    /// An active open (RFC 9293 §3.10.1): SYN-SENT, the SYN goes out on the next transmit.
    pub(crate) fn connect(
        config: &Arc<TcpConfig>,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        mtu: usize,
        ts_offset: u32,
        now: Instant,
    ) -> Connection {
        let mut conn = Connection::new(config, local, remote, iss, mtu, ts_offset, now);
        conn.active = true;
        conn.app_owned = true;
        conn.set_state(State::SynSent, Cause::AppConnect);
        conn
    }

    /// A passive open answering `syn` (RFC 9293 §3.10.7.2): SYN-RECEIVED, the SYN-ACK goes
    /// out on the next transmit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn accept_syn(
        config: &Arc<TcpConfig>,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        mtu: usize,
        ts_offset: u32,
        now: Instant,
        syn: &TcpRepr<'_>,
        listener: ListenerId,
    ) -> Connection {
        let mut conn = Connection::new(config, local, remote, iss, mtu, ts_offset, now);
        conn.listener = Some(listener);
        conn.passive_syn_retries = true;
        conn.irs = syn.seq_number;
        conn.rcv_nxt = syn.seq_number + 1;
        conn.take_syn_options(now, syn);
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        conn.snd_wnd = u32::from(syn.window_len);
        conn.max_snd_wnd = conn.snd_wnd;
        conn.snd_wl1 = syn.seq_number;
        conn.stats.segments_in += 1;
        conn.set_state(State::SynReceived, Cause::SynReceived);
        conn
    }

    /// A passive open rebuilt from a SYN cookie's ACK (RFC 4987 §3.6): the SYN-ACK went out
    /// statelessly with `window`, so it is marked sent and is never retransmitted; the ACK
    /// then completes the handshake as any other.
    pub(crate) fn cookie_syn_ack_sent(&mut self, now: Instant, window: u16) {
        self.last_syn_sent = Some(now);
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_nxt;
        self.rcv_right = self.rcv_nxt + u32::from(window);
    }

    /// Memory held in the buffers: send queue, readable data (with the frames it keeps
    /// alive), out-of-order store.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.send.held() + self.recv.held() + self.recv.out_of_order_bytes()
    }

    /// Out-of-order segments dropped at the range or byte limit (modulo 2³²).
    pub(crate) fn out_of_order_dropped(&self) -> u32 {
        self.recv.out_of_order_dropped()
    }

    /// Out-of-order segments dropped since the last call (the stack's settling after each
    /// touch calls it), for the stack's counters.
    pub(crate) fn take_out_of_order_dropped(&mut self) -> u32 {
        self.recv.take_out_of_order_dropped()
    }

    /// The out-of-order store's limits, the configuration's.
    fn out_of_order_limits(&self) -> OutOfOrderLimits {
        OutOfOrderLimits {
            ranges: self.config.max_out_of_order,
            bytes: self.config.max_out_of_order_bytes,
        }
    }

    /// Takes the options of the peer's SYN: MSS, window scale, timestamps, SACK-permitted.
    fn take_syn_options(&mut self, now: Instant, syn: &TcpRepr<'_>) {
        let options = &syn.options;
        // RFC 9293 §3.7.1: 536 when the peer sends no MSS; never more than we offer to send.
        let peer_mss = options.max_seg_size.map_or(DEFAULT_MSS, usize::from);
        self.mss = mss_field(
            peer_mss
                .min(usize::from(self.our_mss))
                .max(self.config.min_snd_mss),
        );
        // The SYN is acknowledged by the next segment we send.
        self.last_ack_sent = self.rcv_nxt;
        // RFC 7323 §2.2: scaling only when both SYNs carry the option; shifts above 14 are 14.
        match options.window_scale {
            Some(shift) if self.offer_wscale => {
                self.snd_wscale = shift.min(14);
                self.rcv_wscale = window_shift(self.autotune.max());
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.offer_wscale = false;
            }
        }
        match options.timestamps {
            Some(ts) if self.offer_ts => {
                self.ts_enabled = true;
                self.ts_recent = TsRecent::new(ts.tsval, now);
            }
            _ => {
                self.ts_enabled = false;
                self.offer_ts = false;
            }
        }
        self.sack_permitted = options.sack_permitted && self.offer_sack;
        self.recovery.set_sack(self.sack_permitted);
        // The algorithm chosen so far (the configuration's, or the application's since
        // connect), sized now that the segment size is known.
        self.cc = self.cc.algorithm().build(self.smss());
    }

    /// RFC 5681 §2 SMSS, what congestion control counts in: the largest payload a segment
    /// carries, the send MSS less the options every segment has (timestamps: 1448 bytes
    /// on Ethernet, as Linux's mss_cache).
    fn smss(&self) -> u32 {
        let timestamps = if self.ts_enabled { 12 } else { 0 };
        self.mss().saturating_sub(timestamps).max(1) as u32
    }

    /// RFC 6928 §2 and RFC 5681 §3.1: after a lost SYN or SYN-ACK (ours went again) the
    /// initial window is one segment.
    fn limit_window_after_syn_loss(&mut self) {
        if self.stats.retransmitted_segments() > 0 {
            self.cc.limit_window(self.smss());
        }
    }

    pub(crate) fn set_state(&mut self, to: State, cause: Cause) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.events
            .push(ConnEvent::StateChanged { from, to, cause });
        if to == State::TimeWait {
            // A delayed ACK may still be due; the rest is over.
            for timer in [
                Timer::Close,
                Timer::Retransmit,
                Timer::Persist,
                Timer::Keepalive,
                Timer::LossProbe,
                Timer::RackReorder,
            ] {
                self.timers.stop(timer);
            }
        }
    }

    fn fail(&mut self, error: ConnError, cause: Cause) {
        if self.error.is_none() {
            self.error = Some(error);
            self.events.push(ConnEvent::Error(error));
        }
        self.enter_closed(cause);
    }

    /// Whether `seg`, arriving in TIME-WAIT, is a SYN that may open a new incarnation of
    /// this 4-tuple (RFC 6191 §2): newer by timestamp when the old incarnation used
    /// timestamps and the SYN carries one, else beyond RCV.NXT by sequence number (RFC 1122
    /// §4.2.2.13). Returns the lowest ISN the new incarnation may use: past everything this
    /// one sent, with a window's margin as Linux leaves.
    pub(crate) fn time_wait_takes_syn(&self, seg: &TcpRepr<'_>) -> Option<SeqNum> {
        if self.state != State::TimeWait
            || !seg.flags.syn()
            || seg.flags.ack()
            || seg.flags.rst()
            || seg.flags.fin()
        {
            return None;
        }
        let newer = match seg.options.timestamps {
            Some(ts) if self.ts_enabled => {
                let age = ts.tsval.wrapping_sub(self.ts_recent.value()) as i32;
                age > 0 || (age == 0 && seg.seq_number > self.rcv_nxt)
            }
            _ => seg.seq_number > self.rcv_nxt,
        };
        newer.then(|| self.snd_max.max(self.snd_nxt) + 65_537)
    }

    /// Leaves TIME-WAIT for a new incarnation (see [`Connection::time_wait_takes_syn`]).
    pub(crate) fn end_time_wait(&mut self) {
        self.enter_closed(Cause::TimeWaitReused);
    }

    fn enter_closed(&mut self, cause: Cause) {
        self.set_state(State::Closed, cause);
        self.timers.stop_all();
        self.ack_now = false;
        self.probe_due = false;
        self.events.push(ConnEvent::Closed);
    }

    // ---- The application side ----

    /// Queues a copy of data; returns how much fit in the send buffer and in `memory_room`
    /// more bytes of memory.
    pub(crate) fn write(&mut self, now: Instant, data: &[u8], memory_room: usize) -> usize {
        self.restart_idle_window(now);
        let n = self.send.write(data, memory_room);
        self.stats.bytes_queued += n as u64;
        n
    }

    /// Queues data without copying it (a short one is copied); returns how much fit, as
    /// [`write`](Self::write).
    pub(crate) fn write_bytes(&mut self, now: Instant, data: Bytes, memory_room: usize) -> usize {
        self.restart_idle_window(now);
        let n = self.send.write_bytes(data, memory_room);
        self.stats.bytes_queued += n as u64;
        n
    }

    fn restart_idle_window(&mut self, now: Instant) {
        // RFC 5681 §4.1: no data sent for longer than the RTO, nothing outstanding: the ACK
        // clock is gone, so start again from RW = min(IW, cwnd).
        if self.snd_una == self.snd_max
            && self.send.len() == 0
            && self
                .last_data_sent
                .is_some_and(|sent| now - sent > self.rtt.rto())
        {
            self.cc.limit_window(initial_window(self.smss()));
        }
    }

    /// Room left in the send buffer.
    pub(crate) fn send_free(&self) -> usize {
        self.send.free()
    }

    pub(crate) fn send_queue_len(&self) -> usize {
        self.send.len()
    }

    pub(crate) fn recv_queue_len(&self) -> usize {
        self.recv.len()
    }

    pub(crate) fn may_write(&self) -> bool {
        !self.fin_requested
            && self.error.is_none()
            && matches!(
                self.state,
                State::SynSent | State::SynReceived | State::Established | State::CloseWait
            )
    }

    /// Reads in-order data; a window update follows if the window opened enough.
    pub(crate) fn read(&mut self, now: Instant, out: &mut [u8]) -> usize {
        let n = self.recv.read(out);
        self.after_read(now, n);
        n
    }

    /// Takes up to `max` bytes of in-order data without a copy (the front chunk of the
    /// receive buffer, or part of it); a window update follows as after [`Self::read`].
    pub(crate) fn read_bytes(&mut self, now: Instant, max: usize) -> Bytes {
        let data = self.recv.read_bytes(max);
        self.after_read(now, data.len());
        data
    }

    /// As [`Self::read_bytes`], taking chunks until `max` bytes or the buffer run out, with
    /// one window update for them all; returns the bytes taken.
    pub(crate) fn read_bytes_into(
        &mut self,
        now: Instant,
        max: usize,
        out: &mut impl Extend<Bytes>,
    ) -> usize {
        let mut taken = 0;
        while taken < max {
            let data = self.recv.read_bytes(max - taken);
            if data.is_empty() {
                break;
            }
            taken += data.len();
            out.extend(Some(data));
        }
        self.after_read(now, taken);
        taken
    }

    /// Receive-buffer autotuning and the window update after the application read `n` bytes.
    fn after_read(&mut self, now: Instant, n: usize) {
        let (capacity, srtt) = (self.recv.capacity(), self.rtt.srtt());
        if let Some(size) = self.autotune.on_read(now, n, capacity, srtt, self.mss()) {
            self.recv.grow(size);
        }
        if n > 0 && self.state.is_synchronized() {
            let old = (self.rcv_right - self.rcv_nxt.min(self.rcv_right)) as usize;
            // What the window field can say: more than that is no news to the peer (RFC 5681
            // §4.2: no ACK beyond one per segment but to update the window).
            let new = self.recv.window().min(65535 << self.rcv_wscale);
            // A read that empties the buffer sends the ACK waiting for small segments (Linux's
            // tcp_cleanup_rbuf; full-sized ones are acknowledged every second one as they
            // arrive). Otherwise tell a stalled peer: a window that grew from under one MSS,
            // or by two MSS.
            let drained_with_ack_due = self.recv.len() == 0
                && self.segments_unacked == 0
                && self.timers.is_running(Timer::DelayedAck);
            if drained_with_ack_due
                || (old < self.mss() && new >= self.mss())
                || new >= old + 2 * self.mss()
            {
                self.ack_now = true;
            }
        }
    }

    pub(crate) fn peek(&self, out: &mut [u8]) -> usize {
        self.recv.peek(out)
    }

    /// The peer has finished sending and everything it sent has been read.
    pub(crate) fn at_eof(&self) -> bool {
        self.fin_received && self.recv.len() == 0
    }

    /// Shuts down the write side: a FIN follows the queued data (RFC 9293 §3.10.4).
    pub(crate) fn shutdown(&mut self) {
        if self.fin_requested {
            return;
        }
        match self.state {
            State::SynSent => {
                // Nothing was ever sent: just go away.
                self.enter_closed(Cause::AppClose);
            }
            State::SynReceived | State::Established => {
                self.fin_requested = true;
                if self.state == State::Established {
                    self.set_state(State::FinWait1, Cause::AppClose);
                }
            }
            State::CloseWait => {
                self.fin_requested = true;
                self.set_state(State::LastAck, Cause::AppClose);
            }
            _ => {}
        }
    }

    /// Closes fully (RFC 9293 §3.10.4): unread data means a reset (RFC 2525 §2.17),
    /// otherwise a FIN after the queued data; FIN-WAIT-2 then times out.
    pub(crate) fn close(&mut self, now: Instant) {
        self.app_closed = true;
        if self.recv.len() > 0 && self.state.is_synchronized() && self.state != State::TimeWait {
            self.abort(Cause::AppCloseWithUnreadData);
            return;
        }
        self.shutdown();
        if self.state == State::FinWait2 {
            self.timers
                .set(Timer::Close, now + self.config.fin_wait_2_timeout);
        }
    }

    /// The peer's window as `seg` gives it. RFC 7323 §2.2: the window of a segment with SYN
    /// set (a SYN or a SYN-ACK) MUST NOT be scaled; every other one is.
    fn send_window_of(&self, seg: &TcpRepr<'_>) -> u32 {
        if seg.flags.syn() {
            u32::from(seg.window_len)
        } else {
            u32::from(seg.window_len) << self.snd_wscale
        }
    }

    /// Sends a reset and drops the connection (RFC 9293 §3.10.5).
    pub(crate) fn abort(&mut self, cause: Cause) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            // Where the peer accepts it, as an ACK (see ack_seq).
            self.reset = Some(ResetPlan {
                seq: self.ack_seq(),
                ack: None,
            });
        }
        if self.state != State::Closed {
            self.enter_closed(cause);
        }
    }

    /// A new controller of `algorithm`, from the initial window or the current one if smaller.
    pub(crate) fn set_congestion_control(&mut self, algorithm: super::CongestionAlgorithm) {
        let cwnd = self.cc.window();
        self.cc = algorithm.build(self.smss());
        self.cc.limit_window(cwnd);
    }

    pub(crate) fn set_keepalive(&mut self, keepalive: Option<Keepalive>, now: Instant) {
        self.keepalive = keepalive.map(CompactKeepalive::from);
        self.keepalive_probes = 0;
        self.arm_keepalive(now);
    }

    fn arm_keepalive(&mut self, now: Instant) {
        match (self.keepalive, self.state) {
            (Some(k), State::Established | State::CloseWait | State::FinWait2) => {
                let idle = Duration::from_millis(u64::from(k.idle_ms));
                self.timers.set(Timer::Keepalive, now + idle);
            }
            _ => self.timers.stop(Timer::Keepalive),
        }
    }

    // ---- Segment arrival, RFC 9293 §3.10.7 ----

    /// Answers an unacceptable segment, or one acknowledging data never sent, with an ACK —
    /// at most every 500 ms for segments that carry no data or a SYN (RFC 5961 §5, Linux's
    /// tcp_oow_rate_limited): two confused peers would otherwise trade ACKs forever.
    fn out_of_window_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let loop_prone = seg.segment_len() == 0 || seg.flags.syn();
        if loop_prone && self.oow_rate_limited(now) {
            return;
        }
        self.ack_now = true;
    }

    /// The per-connection limit on ACKs to unacceptable segments: one per 500 ms (Linux's
    /// tcp_invalid_ratelimit). Records the ACK when it may go.
    fn oow_rate_limited(&mut self, now: Instant) -> bool {
        if self
            .last_oow_ack
            .is_some_and(|last| now - last < Duration::from_millis(500))
        {
            self.stats.rare().acks_rate_limited += 1;
            return true;
        }
        self.last_oow_ack = Some(now);
        false
    }

    /// A challenge ACK (RFC 5961 §3.2, §4.2, §5.2): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>,
    /// within the per-connection limit whatever the segment carries, then the host's budget
    /// (§7; Linux's tcp_send_challenge_ack checks in the same order).
    fn challenge_ack(&mut self, now: Instant, budget: &mut ChallengeAckBudget) {
        if self.oow_rate_limited(now) || !budget.take(now) {
            return;
        }
        self.stats.rare().challenge_acks += 1;
        self.ack_now = true;
    }

    /// RFC 7323 §3.2 and §5.3 R1, before the sequence number is looked at: once timestamps
    /// are in use a segment without them is dropped silently (unless
    /// [`TcpConfig::timestamps_required`] is off), one whose TSval is older than TS.Recent is
    /// dropped and answered with an ACK. A RST is exempt from both. True when the segment was
    /// dropped.
    fn timestamps_reject(&mut self, now: Instant, seg: &TcpRepr<'_>) -> bool {
        if !self.ts_enabled || seg.flags.rst() {
            return false;
        }
        match seg.options.timestamps {
            None if self.config.timestamps_required => {
                self.stats.rare().segments_dropped += 1;
                true
            }
            None => false,
            Some(ts)
                if self.ts_recent.rejects(now, ts.tsval) && !self.disordered_ack(seg, ts.tsval) =>
            {
                self.stats.rare().paws_rejected += 1;
                self.stats.rare().segments_dropped += 1;
                // What of it lies below RCV.NXT was received before: report it as a D-SACK
                // (RFC 2883 §4; Linux's tcp_send_dupack does the same for a PAWS drop), or
                // the sender cannot tell that its retransmission was spurious.
                let start = seg.seq_number;
                let end = start + seg.payload.len() as u32;
                if !seg.payload.is_empty() && start < self.rcv_nxt {
                    self.note_dsack(
                        start,
                        if end < self.rcv_nxt {
                            end
                        } else {
                            self.rcv_nxt
                        },
                    );
                }
                self.out_of_window_ack(now, seg);
                true
            }
            Some(_) => false,
        }
    }

    /// A duplicate ACK overtaken on the way here, which PAWS (RFC 7323 §5.3 R1) would drop:
    /// Linux lets it through (`tcp_disordered_ack`), and so do we, or every duplicate ACK
    /// reordered behind a newer one is lost to the count of RFC 5681 §3.2 (and its SACK
    /// blocks to the scoreboard). It must carry nothing PAWS protects: no data, SYN or FIN,
    /// the sequence number RCV.NXT, the acknowledgment SND.UNA and the window unchanged (so
    /// it moves no state but the duplicate-ACK count and the scoreboard, whose blocks are
    /// validated anyway), and a TSval behind TS.Recent by no more than one RTO counted in
    /// milliseconds (Linux's replay window; §5.4 puts a peer's clock at 1 ms to 1 s a tick).
    fn disordered_ack(&self, seg: &TcpRepr<'_>, tsval: u32) -> bool {
        let rto_ms = u32::try_from(self.rtt.rto().as_millis()).unwrap_or(u32::MAX);
        seg.flags.ack()
            && !seg.flags.syn()
            && !seg.flags.fin()
            && seg.payload.is_empty()
            && seg.seq_number == self.rcv_nxt
            && seg.ack_number == self.snd_una
            && self.send_window_of(seg) == self.snd_wnd
            && self.ts_recent.lags_by_at_most(tsval, rto_ms)
    }

    /// Processes a segment for this connection. Returns false when the segment completes a
    /// passive handshake but `may_establish` said no (a full accept queue): it is then
    /// dropped, as Linux does, and the SYN-ACK will be retransmitted. `frame` is the frame
    /// `seg` was parsed from when the driver shares it: its payload is kept as a slice of it.
    pub(crate) fn handle_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        frame: Option<&Bytes>,
        may_establish: bool,
        challenge: &mut ChallengeAckBudget,
    ) -> bool {
        self.stats.segments_in += 1;
        self.stats.bytes_in += seg.payload.len() as u64;
        if self.state == State::SynSent {
            self.handle_syn_sent(now, seg, frame);
            return true;
        }
        if self.state == State::Closed {
            return true;
        }
        // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost; send it again now, at
        // most every 500 ms (Linux's tcp_invalid_ratelimit).
        if self.state == State::SynReceived
            && seg.flags.syn()
            && !seg.flags.ack()
            && seg.seq_number == self.irs
        {
            if self
                .last_syn_sent
                .is_none_or(|sent| now - sent >= Duration::from_millis(500))
            {
                self.resend_syn = true;
            }
            return true;
        }
        if self.timestamps_reject(now, seg) {
            return true;
        }
        // TIME-WAIT (RFC 9293 §3.10.7.4, eighth step): a retransmitted FIN is acknowledged
        // again and the 2·MSL wait restarts.
        if self.state == State::TimeWait
            && seg.flags.fin()
            && !seg.flags.rst()
            && seg.seq_number + seg.segment_len() == self.rcv_nxt
        {
            self.ack_now = true;
            self.timers.set(Timer::Close, now + self.config.msl * 2);
            self.events.push(ConnEvent::StateChanged {
                from: State::TimeWait,
                to: State::TimeWait,
                cause: Cause::FinRetransmitted,
            });
            return true;
        }

        // First: the sequence number (the four cases of the acceptability test).
        let seg_len = seg.segment_len();
        let window = self.rcv_right - self.rcv_nxt.min(self.rcv_right);
        let acceptable = match (seg_len, window) {
            (0, 0) => seg.seq_number == self.rcv_nxt,
            (0, _) => seg.seq_number.in_window(self.rcv_nxt, window),
            (_, 0) => false,
            (_, _) => {
                seg.seq_number.in_window(self.rcv_nxt, window)
                    || (seg.seq_number + (seg_len - 1)).in_window(self.rcv_nxt, window)
            }
        };
        // A zero window still takes valid ACKs and RSTs (§3.10.7.4: "special allowance").
        let zero_window_ack = !acceptable && window == 0 && seg.seq_number == self.rcv_nxt;
        if !acceptable && !zero_window_ack {
            let end = seg.seq_number + seg.payload.len() as u32;
            if !seg.payload.is_empty()
                && end <= self.rcv_nxt
                && self.rcv_nxt - end < window.max(1 << 16)
            {
                // RFC 2883 §4.1.1: all of it arrived before.
                self.note_dsack(seg.seq_number, end);
            }
            if !seg.flags.rst() {
                self.out_of_window_ack(now, seg);
            }
            self.stats.rare().segments_dropped += 1;
            return true;
        }

        // Second: the RST bit (RFC 5961 §3.2: only an exact match resets; in-window ones get a
        // challenge ACK).
        if seg.flags.rst() {
            if self.state == State::TimeWait && self.config.rfc1337 {
                // RFC 1337 §3: a RST does not cut TIME-WAIT short ("TIME-WAIT assassination").
                self.stats.rare().segments_dropped += 1;
                return true;
            }
            if seg.seq_number != self.rcv_nxt {
                self.challenge_ack(now, challenge);
                return true;
            }
            match self.state {
                State::SynReceived if !self.active => {
                    // Back to LISTEN: the listener forgets this half-open connection.
                    self.enter_closed(Cause::RstReceived);
                }
                State::SynReceived => self.fail(ConnError::Refused, Cause::RstReceived),
                State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                    self.fail(ConnError::Reset, Cause::RstReceived)
                }
                _ => self.enter_closed(Cause::RstReceived),
            }
            return true;
        }

        // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 §4).
        if seg.flags.syn() {
            if self.state == State::SynReceived && !self.active {
                self.enter_closed(Cause::SynReceived);
                return true;
            }
            self.challenge_ack(now, challenge);
            return true;
        }

        // Fifth: the ACK field.
        if !seg.flags.ack() {
            return true;
        }
        // The peer answers: keepalive and zero-window probes start counting again.
        self.keepalive_probes = 0;
        self.persist_probes = 0;
        self.persist_since = None;
        if self.state == State::SynReceived {
            if seg.ack_number <= self.snd_una || seg.ack_number > self.snd_max {
                self.reset = Some(ResetPlan {
                    seq: seg.ack_number,
                    ack: None,
                });
                return true;
            }
            if !may_establish {
                self.stats.rare().segments_dropped += 1;
                return false;
            }
            self.snd_wnd = self.send_window_of(seg);
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = seg.ack_number;
            self.set_state(State::Established, Cause::AckReceived);
            self.limit_window_after_syn_loss();
            self.events.push(if self.active {
                ConnEvent::Connected
            } else {
                ConnEvent::Established
            });
            // RFC 9293 §3.10.4: a CLOSE in SYN-RECEIVED was queued "for processing after
            // entering ESTABLISHED state": its FIN follows the data, from FIN-WAIT-1.
            if self.fin_requested {
                self.set_state(State::FinWait1, Cause::AppClose);
            }
        }
        // RFC 5961 §5.2: an ACK is acceptable only in SND.UNA − MAX.SND.WND ..= SND.NXT (SND.MAX
        // here: after a go-back retransmission everything sent may be acknowledged). Any other
        // segment is dropped, data and all.
        if seg.ack_number > self.snd_max {
            self.out_of_window_ack(now, seg);
            self.stats.rare().segments_dropped += 1;
            return true;
        }
        if seg.ack_number < self.snd_una - self.max_snd_wnd {
            self.challenge_ack(now, challenge);
            self.stats.rare().segments_dropped += 1;
            return true;
        }
        if let Some(ts) = seg.options.timestamps
            && self.ts_enabled
        {
            // RFC 7323 §4.3 and §5.3 R3.
            self.ts_recent
                .update(now, ts.tsval, seg.seq_number, self.last_ack_sent);
        }
        self.process_ack(now, seg);
        if self.state == State::Closed {
            return true;
        }
        if zero_window_ack {
            if !seg.payload.is_empty() || seg.flags.fin() {
                self.ack_now = true;
            }
            return true;
        }

        // Seventh: the segment text.
        if !seg.payload.is_empty()
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
        {
            if (self.app_closed || self.read_closed)
                && seg.seq_number + seg.payload.len() as u32 > self.rcv_nxt
            {
                // RFC 9293 §3.10.7.4 and RFC 1122 §4.2.2.13: new data nobody will read is
                // lost; a RST tells the peer. Its SEQ is the peer's RCV.NXT as the segment
                // acknowledges it, so that it is accepted (RFC 5961 §3.2), as Linux sends.
                self.reset = Some(ResetPlan {
                    seq: seg.ack_number,
                    ack: None,
                });
                self.fail(ConnError::Reset, Cause::DataAfterClose);
                return true;
            }
            self.receive_data(now, seg, frame);
            if self.take_pending_fin(now) {
                return true;
            }
        }

        // Eighth: the FIN bit.
        if seg.flags.fin() {
            let fin_seq = seg.seq_number + seg.payload.len() as u32;
            if fin_seq == self.rcv_nxt {
                self.receive_fin(now);
            } else if fin_seq > self.rcv_nxt {
                self.pending_fin = Some(fin_seq);
                self.ack_now = true;
            }
        }
        true
    }

    /// RFC 9293 §3.10.7.3.
    fn handle_syn_sent(&mut self, now: Instant, seg: &TcpRepr<'_>, frame: Option<&Bytes>) {
        // First: the ACK bit.
        let ack_ok = if seg.flags.ack() {
            if seg.ack_number <= self.iss || seg.ack_number > self.snd_max {
                if !seg.flags.rst() {
                    self.reset = Some(ResetPlan {
                        seq: seg.ack_number,
                        ack: None,
                    });
                }
                return;
            }
            true
        } else {
            false
        };
        // Second: the RST bit (RFC 5961 §3.2: only with an acceptable ACK).
        if seg.flags.rst() {
            if ack_ok {
                self.fail(ConnError::Refused, Cause::RstReceived);
            }
            return;
        }
        // Fourth: the SYN bit.
        if !seg.flags.syn() {
            return;
        }
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1;
        self.take_syn_options(now, seg);
        if ack_ok {
            // Our SYN is acknowledged: ESTABLISHED.
            self.syn_acked = true;
            self.snd_una = seg.ack_number;
            self.take_rtt_sample(now, seg);
            self.timers.stop(Timer::Retransmit);
            self.retransmits = 0;
            self.rtt.reset_backoff();
            self.unacked_since = None;
            self.snd_wnd = self.send_window_of(seg);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = seg.ack_number;
            self.rcv_right = self.rcv_nxt + self.recv.window() as u32;
            self.set_state(State::Established, Cause::SynAckReceived);
            self.limit_window_after_syn_loss();
            self.events.push(ConnEvent::Connected);
            self.arm_keepalive(now);
            // The third segment of the handshake.
            self.ack_now = true;
            if !seg.payload.is_empty() {
                self.receive_data(
                    now,
                    &TcpRepr {
                        seq_number: seg.seq_number + 1,
                        ..*seg
                    },
                    frame,
                );
            }
        } else {
            // Simultaneous open: SYN-RECEIVED, our SYN goes out again with an ACK.
            self.snd_wnd = u32::from(seg.window_len);
            self.snd_wl1 = seg.seq_number;
            self.set_state(State::SynReceived, Cause::SynReceived);
            self.resend_syn = true;
        }
    }

    /// When the segment whose timestamp `seg` echoes was sent (RFC 7323 §3: TSecr is our
    /// TSval), to millisecond precision.
    fn echoed_sent_at(&self, now: Instant, seg: &TcpRepr<'_>) -> Option<Instant> {
        let tsecr = seg.options.timestamps.filter(|_| self.ts_enabled)?.tsecr;
        let elapsed = ts_clock(now).wrapping_sub(tsecr.wrapping_sub(self.ts_offset));
        (tsecr != 0 && elapsed < 120_000).then(|| now - Duration::from_millis(u64::from(elapsed)))
    }

    fn take_rtt_sample(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if self.ts_enabled
            && let Some(Timestamps { tsecr, .. }) = seg.options.timestamps
            && tsecr != 0
        {
            let elapsed = ts_clock(now).wrapping_sub(tsecr.wrapping_sub(self.ts_offset));
            if elapsed < 120_000 {
                self.rtt
                    .sample(Duration::from_millis(u64::from(elapsed.max(1))));
                return;
            }
        }
        if let Some((end, sent_at)) = self.rtt_probe
            && seg.ack_number >= end
        {
            self.rtt
                .sample((now - sent_at).max(Duration::from_micros(1)));
            self.rtt_probe = None;
        }
    }

    /// RFC 9293 §3.10.7.4, fifth step, for synchronized states.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let ack = seg.ack_number;
        let snd_una = self.snd_una;
        let flight = self.snd_max - self.snd_una;
        // The window limited sending: the flight filled it to within a segment.
        let cwnd_limited = flight + self.smss() > self.cc.window();
        // RFC 5681 §2: a duplicate ACK carries no data, no SYN or FIN, SEG.ACK = SND.UNA,
        // and data is outstanding.
        let duplicate = ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.fin()
            && self.snd_max > self.snd_una;
        let mut data_acked = 0;
        let mut last_ack_acked = false;
        if ack > self.snd_una {
            let mut acked = ack - self.snd_una;
            // The SYN and the FIN each take one sequence number but no byte of the send
            // buffer (RFC 9293 §3.3). Whether they are acknowledged is kept as a fact: an
            // equality with ISS holds again every 2³² bytes.
            if !self.syn_acked {
                self.syn_acked = true;
                acked -= 1;
            }
            // SND.UNA < FIN + 1 <= SEG.ACK <= SND.MAX, all within one window (§3.4).
            let fin_acked = !self.fin_acked && self.fin_seq.is_some_and(|fin| ack > fin);
            if fin_acked {
                self.fin_acked = true;
                acked -= 1;
            }
            data_acked = (acked as usize).min(self.send.len());
            self.send.ack(data_acked);
            self.snd_una = ack;
            if self.snd_nxt < self.snd_una {
                self.snd_nxt = self.snd_una;
            }
            self.take_rtt_sample(now, seg);
            self.rtt.reset_backoff();
            self.retransmits = 0;
            self.stats.bytes_acked += data_acked as u64;
            if self.snd_una == self.snd_max {
                self.timers.stop(Timer::Retransmit);
                self.unacked_since = None;
            } else {
                self.timers.set(Timer::Retransmit, now + self.rtt.rto());
                self.unacked_since = Some(now);
            }
            if data_acked > 0 {
                self.events.push(ConnEvent::Writable);
            }
            if fin_acked {
                match self.state {
                    State::FinWait1 => {
                        self.set_state(State::FinWait2, Cause::AckReceived);
                        if self.app_closed {
                            self.timers
                                .set(Timer::Close, now + self.config.fin_wait_2_timeout);
                        }
                    }
                    State::Closing => self.enter_time_wait(now, Cause::AckReceived),
                    State::LastAck => last_ack_acked = true,
                    _ => {}
                }
            }
        } else if duplicate {
            self.stats.rare().duplicate_acks += 1;
        }
        let context = AckContext {
            snd_una,
            ack,
            snd_max: self.snd_max,
            duplicate,
            sack_blocks: seg.options.sack_blocks.as_slice(),
            mss: self.smss(),
            acked: Acked {
                bytes: data_acked as u32,
                flight,
                cwnd_limited,
                srtt: self.rtt.srtt(),
            },
            echoed: self.echoed_sent_at(now, seg),
            new_data_waits: self.send.len() > (self.snd_max - self.snd_una) as usize,
        };
        self.recovery.on_ack(now, &context, &mut self.cc);
        self.arm_reorder_timer();
        // RFC 5682 §2.1: F-RTO sends new data instead of going back, or goes back after all.
        match self.recovery.take_frto_action() {
            Some(FrtoAction::SendNewData) => self.snd_nxt = self.snd_max,
            Some(FrtoAction::GoBack) => self.snd_nxt = self.snd_una,
            None => {}
        }
        if last_ack_acked {
            self.enter_closed(Cause::AckReceived);
            return;
        }
        self.arm_loss_probe(now);
        // The send window (RFC 9293 §3.10.7.4: only from newer segments), and from any
        // segment whose ACK moved SND.UNA on, as Linux's tcp_may_update_window does: the
        // peer's retransmission of old data (SEG.SEQ behind SND.WL1) carries its newest ACK
        // and the window offered with it, and ignoring that window left ours pinned to an
        // older right edge (SND.WL1 stays where it was, so older segments still cannot
        // update it).
        let moved_una = ack > snd_una;
        if moved_una
            || self.snd_wl1 < seg.seq_number
            || (self.snd_wl1 == seg.seq_number && self.snd_wl2 <= ack)
        {
            self.snd_wnd = self.send_window_of(seg);
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = self.snd_wl1.max(seg.seq_number);
            self.snd_wl2 = ack;
            if self.snd_wnd > 0 {
                self.timers.stop(Timer::Persist);
                self.persist_backoff = 0;
            }
        }
        self.arm_keepalive(now);
    }

    fn receive_data(&mut self, now: Instant, seg: &TcpRepr<'_>, frame: Option<&Bytes>) {
        // Trim what we already have and what lies beyond the window.
        let mut data = seg.payload;
        let mut seq = seg.seq_number;
        if seq < self.rcv_nxt {
            let skip = ((self.rcv_nxt - seq) as usize).min(data.len());
            // RFC 2883 §4.1.2: the part that arrived before.
            self.note_dsack(seq, seq + skip as u32);
            data = &data[skip..];
            seq = self.rcv_nxt;
        }
        let room = (self.rcv_right - self.rcv_nxt.min(self.rcv_right)) as usize;
        let distance = (seq - self.rcv_nxt) as usize;
        if distance >= room {
            self.ack_now = true;
            return;
        }
        let data = &data[..data.len().min(room - distance)];
        let inserted = self
            .recv
            .insert(distance, data, frame, self.out_of_order_limits());
        if inserted.advanced > 0 {
            self.rcv_nxt += inserted.advanced as u32;
            self.stats.bytes_delivered += inserted.advanced as u64;
            self.events.push(ConnEvent::Readable);
        }
        // RFC 9293 §3.8.6.3 and RFC 5681 §4.2: ACK at once for out-of-order data and for a
        // segment that fills a gap; otherwise at least every second full-sized segment.
        if inserted.out_of_order || inserted.filled_gap || self.recv.has_out_of_order() {
            self.ack_now = true;
        } else if inserted.advanced > 0 {
            if inserted.advanced >= self.effective_mss() {
                self.segments_unacked += 1;
            }
            if self.segments_unacked >= 2 {
                self.ack_now = true;
            } else {
                self.timers
                    .start(Timer::DelayedAck, now + self.config.delayed_ack);
            }
        }
    }

    fn note_dsack(&mut self, start: SeqNum, end: SeqNum) {
        if self.sack_permitted && start < end {
            self.dsack = Some((start, end));
        }
    }

    /// A FIN held beyond RCV.NXT is taken once the data before it has arrived. Data that went
    /// past it shows it was no FIN of the peer's (there is one): it is forgotten, not kept
    /// until RCV.NXT comes round to it again 2³² bytes later (RFC 9293 §3.4).
    fn take_pending_fin(&mut self, now: Instant) -> bool {
        match self.pending_fin {
            Some(fin) if fin == self.rcv_nxt => {
                self.pending_fin = None;
                self.receive_fin(now);
                true
            }
            Some(fin) if fin < self.rcv_nxt => {
                self.pending_fin = None;
                false
            }
            _ => false,
        }
    }

    /// RFC 9293 §3.10.7.4, eighth step: the FIN, in order.
    fn receive_fin(&mut self, now: Instant) {
        if self.fin_received {
            self.ack_now = true;
            return;
        }
        self.fin_received = true;
        self.rcv_nxt += 1;
        self.events.push(ConnEvent::Readable);
        match self.state {
            State::SynReceived | State::Established => {
                // A delayed ACK, as Linux does: an application that closes at once sends its
                // FIN on the same segment (the three-way close).
                self.set_state(State::CloseWait, Cause::FinReceived);
                self.timers
                    .start(Timer::DelayedAck, now + self.config.delayed_ack);
                return;
            }
            State::FinWait1 => {
                if self.fin_acked {
                    self.enter_time_wait(now, Cause::FinReceived);
                } else {
                    self.set_state(State::Closing, Cause::FinReceived);
                }
            }
            State::FinWait2 => self.enter_time_wait(now, Cause::FinReceived),
            _ => {}
        }
        self.ack_now = true;
    }

    fn enter_time_wait(&mut self, now: Instant, cause: Cause) {
        self.set_state(State::TimeWait, cause);
        self.timers.set(Timer::Close, now + self.config.msl * 2);
    }

    // ---- Timers ----

    /// The earliest deadline of this connection.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Runs every timer due by `now`.
    pub(crate) fn on_timer(&mut self, now: Instant) {
        if self.timers.expired(Timer::Close, now) {
            match self.state {
                State::TimeWait => {
                    self.enter_closed(Cause::TimeWaitExpired);
                    return;
                }
                State::FinWait2 => {
                    self.enter_closed(Cause::FinWait2Expired);
                    return;
                }
                _ => {}
            }
        }
        if self.timers.expired(Timer::DelayedAck, now) {
            self.ack_now = true;
        }
        if self.timers.expired(Timer::LossProbe, now) {
            // The probe goes instead of the retransmission timeout due at the same time.
            self.recovery.on_loss_probe_timer();
            if self.recovery.probe_due() {
                self.timers.set(Timer::Retransmit, now + self.rtt.rto());
            }
        }
        if self.timers.expired(Timer::RackReorder, now) {
            let (snd_una, snd_max, mss) = (self.snd_una, self.snd_max, self.smss());
            self.recovery
                .on_reorder_timer(now, snd_una, snd_max, mss, &mut self.cc);
            self.arm_reorder_timer();
            self.arm_loss_probe(now);
        }
        if self.timers.expired(Timer::Retransmit, now) {
            self.timers.stop(Timer::LossProbe);
            self.on_retransmit_timeout(now);
            if self.state == State::Closed {
                return;
            }
        }
        if self.timers.expired(Timer::Persist, now) {
            self.persist_backoff += 1;
            if self.snd_wnd == 0 {
                if self.persist_gives_up(now) {
                    self.fail(ConnError::TimedOut, Cause::PersistTimeout);
                    return;
                }
                self.persist_probes += 1;
                self.persist_since.get_or_insert(now);
                self.probe_due = true;
            } else {
                self.sws_override = true;
            }
        }
        if self.timers.expired(Timer::Keepalive, now)
            && let Some(keepalive) = self.keepalive
        {
            if self.keepalive_probes >= keepalive.probes {
                // RFC 1122 §4.2.3.6: the peer is gone. Linux resets the connection.
                self.reset = Some(ResetPlan {
                    seq: self.ack_seq(),
                    ack: None,
                });
                self.fail(ConnError::TimedOut, Cause::KeepaliveTimeout);
                return;
            }
            self.keepalive_probes += 1;
            self.probe_due = true;
            let interval = Duration::from_millis(u64::from(keepalive.interval_ms));
            self.timers.set(Timer::Keepalive, now + interval);
        }
    }

    /// RFC 9293 §3.8.6.1 keeps a connection open while the receiver answers zero-window
    /// probes, however long; unanswered probes end it as unanswered retransmissions do
    /// (RFC 1122 §4.2.3.5 R2, Linux's tcp_retries2): after the retransmission limit, or the
    /// user timeout (RFC 5482) counted from the first unanswered probe.
    fn persist_gives_up(&self, now: Instant) -> bool {
        let user_timed_out = self.config.user_timeout.is_some_and(|timeout| {
            self.persist_since
                .is_some_and(|since| now - since >= timeout)
        });
        self.persist_probes >= self.config.max_retransmits || user_timed_out
    }

    /// RFC 6298 §5.4-5.6: retransmit from SND.UNA, back off, give up after the limit.
    fn on_retransmit_timeout(&mut self, now: Instant) {
        let limit = match self.state {
            State::SynReceived if self.passive_syn_retries => self.config.synack_retries,
            State::SynSent | State::SynReceived => self.config.syn_retries,
            _ => self.config.max_retransmits,
        };
        let user_timed_out = self.config.user_timeout.is_some_and(|timeout| {
            self.unacked_since
                .is_some_and(|since| now - since >= timeout)
        });
        if self.retransmits >= limit || user_timed_out {
            let error = match (self.state, self.soft_error) {
                (_, Some(soft)) => soft,
                _ => ConnError::TimedOut,
            };
            if self.state == State::SynReceived && !self.active {
                self.enter_closed(Cause::RetransmitTimeout);
            } else {
                self.fail(error, Cause::RetransmitTimeout);
            }
            return;
        }
        self.retransmits += 1;
        self.stats.rare().retransmit_timeouts += 1;
        let first = self.retransmits == 1 && self.syn_acked;
        self.recovery
            .on_timeout(now, self.snd_una, self.snd_max, first, &mut self.cc);
        self.rtt.back_off();
        // Karn: no sample from a retransmitted segment.
        self.rtt_probe = None;
        self.snd_nxt = self.snd_una;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            self.resend_syn = true;
        }
    }

    // ---- Observation ----

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    pub(crate) fn rttvar(&self) -> Duration {
        self.rtt.rttvar()
    }

    pub(crate) fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    pub(crate) fn snd_wnd(&self) -> u32 {
        self.snd_wnd
    }

    /// The peer's right edge, SND.WL2 + SND.WND: it offered SND.WND from the acknowledgment
    /// it sent with it, not from SND.UNA. RFC 9293 §3.10.7.4 calls SND.WND "an offset from
    /// SND.UNA", which holds only while SND.WL2 = SND.UNA; an ACK that moves SND.UNA on
    /// without a window update (a segment the update check rejects) would otherwise move
    /// the edge on with it, past anything the peer offered.
    pub(crate) fn send_right_edge(&self) -> SeqNum {
        self.snd_wl2 + self.snd_wnd
    }

    /// What the peer's window still takes from SND.NXT on (0 at or past its right edge).
    pub(crate) fn send_window_room(&self) -> u32 {
        let edge = self.send_right_edge();
        if edge > self.snd_nxt {
            edge - self.snd_nxt
        } else {
            0
        }
    }

    pub(crate) fn recv_buffer_size(&self) -> usize {
        self.recv.capacity()
    }

    pub(crate) fn rcv_wnd(&self) -> u32 {
        self.recv.window() as u32
    }

    pub(crate) fn mss(&self) -> usize {
        usize::from(self.mss)
    }

    pub(crate) fn sequence_state(&self) -> SequenceState {
        SequenceState {
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt,
            snd_max: self.snd_max,
            rcv_nxt: self.rcv_nxt,
        }
    }

    pub(crate) fn congestion_info(&self) -> CongestionInfo {
        let mss = self.smss();
        let board = self.recovery.scoreboard();
        CongestionInfo {
            algorithm: self.cc.algorithm(),
            state: self.recovery.state(),
            cwnd: self.cc.window(),
            ssthresh: self.cc.ssthresh(),
            in_flight: self
                .recovery
                .in_flight(self.snd_una, self.snd_nxt, self.snd_max, mss),
            sacked: board.sacked_bytes(),
            lost: self.recovery.lost_bytes(self.snd_una, self.snd_max, mss),
        }
    }

    /// The public statistics.
    pub(crate) fn stats(&self) -> ConnectionStats {
        self.stats.snapshot(
            &self.recovery.counters(),
            u64::from(self.out_of_order_dropped()),
        )
    }

    pub(crate) fn rack_info(&self) -> super::recovery::RackInfo {
        self.recovery.rack_info()
    }

    /// RFC 5927 §4.1: an ICMP error is believed only when the segment it quotes lies in
    /// flight, SND.UNA <= SEG.SEQ < SND.NXT (SND.MAX here); a blind attacker must guess it.
    pub(crate) fn quotes_in_flight(&self, quoted_seq: SeqNum) -> bool {
        quoted_seq >= self.snd_una && quoted_seq < self.snd_max.max(self.snd_una + 1)
    }

    /// Lowers the send MSS after an ICMP fragmentation-needed (RFC 1191) quoting `quoted_seq`
    /// (RFC 5927 §7: validated as any ICMP error). The MTU is taken as at least
    /// [`TcpConfig::min_path_mtu`] and the MSS as at least [`TcpConfig::min_snd_mss`], as
    /// Linux does, so a forged MTU cannot shrink segments to a few bytes. False when ignored.
    pub(crate) fn lower_mtu(&mut self, mtu: usize, quoted_seq: SeqNum) -> bool {
        if !self.quotes_in_flight(quoted_seq) {
            return false;
        }
        let mtu = mtu.max(self.config.min_path_mtu);
        let mss = mtu.saturating_sub(40).max(self.config.min_snd_mss);
        if mss < self.mss() {
            self.mss = mss_field(mss);
            // Resend what is in flight at the new size.
            self.snd_nxt = self.snd_una;
        }
        true
    }

    /// An ICMP error quoting this connection (RFC 9293 §3.10.7 and MUST-56). False when
    /// ignored.
    pub(crate) fn icmp_error(
        &mut self,
        error: ConnError,
        hard_in_syn_sent: bool,
        quoted_seq: SeqNum,
    ) -> bool {
        if !self.quotes_in_flight(quoted_seq) {
            return false;
        }
        if self.state == State::SynSent && hard_in_syn_sent {
            self.fail(error, Cause::IcmpError);
        } else {
            self.soft_error = Some(error);
        }
        true
    }

    /// The application will read no more (shutdown(SHUT_RD)): data still queued may be read,
    /// new data resets the connection (RFC 1122 §4.2.2.13).
    pub(crate) fn shutdown_read(&mut self) {
        self.read_closed = true;
    }

    /// The fuzz harness's check of the control block: SND.UNA ≤ SND.NXT ≤ SND.MAX in
    /// sequence space (RFC 9293 §3.4: within 2³¹ of each other), what is in flight is held in
    /// the send buffer, both buffers within their limits, and RCV.NXT one past the peer's SYN,
    /// every byte delivered and its FIN.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let (una, nxt, max) = (self.snd_una, self.snd_nxt, self.snd_max);
        if !(una <= nxt && nxt <= max) || max - una >= 1 << 31 {
            return Err(format!("SND.UNA {una:?} SND.NXT {nxt:?} SND.MAX {max:?}"));
        }
        let syn_in_flight = u32::from(!self.syn_acked && max != una);
        let fin_in_flight = u32::from(self.fin_seq.is_some() && !self.fin_acked);
        let data_in_flight = (max - una).saturating_sub(syn_in_flight + fin_in_flight);
        if data_in_flight as usize > self.send.len() || self.send.len() > self.send.capacity() {
            return Err(format!(
                "{data_in_flight} bytes in flight, {} in a {}-byte send buffer",
                self.send.len(),
                self.send.capacity()
            ));
        }
        if let Some(fin) = self.fin_seq
            && !self.fin_acked
            && fin + 1 != max
        {
            return Err(format!("our FIN at {fin:?} but SND.MAX {max:?}"));
        }
        let delivered = self.recv.check_invariants(self.out_of_order_limits())?;
        if delivered != self.stats.bytes_delivered {
            return Err(format!(
                "RCV.NXT is {delivered} bytes into the stream, {} delivered",
                self.stats.bytes_delivered
            ));
        }
        if self.state.is_synchronized() || self.state == State::SynReceived {
            let expected = self.irs + 1 + delivered as u32 + u32::from(self.fin_received);
            if self.rcv_nxt != expected {
                return Err(format!(
                    "RCV.NXT {:?}, IRS {:?} + 1 + {delivered} delivered + FIN {} = {expected:?}",
                    self.rcv_nxt, self.irs, self.fin_received
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawtcp_wire::tcp::TcpOptions;
    use std::net::Ipv4Addr;

    const PEER_ISS: SeqNum = SeqNum::new(1000);

    /// A segment from the peer (port 80) to us (port 40000).
    fn from_peer(seq: SeqNum, ack: SeqNum, flags: TcpFlags, payload: &[u8]) -> TcpRepr<'_> {
        TcpRepr {
            src_port: 80,
            dst_port: 40000,
            seq_number: seq,
            ack_number: ack,
            flags,
            window_len: 65535,
            urgent_pointer: 0,
            options: TcpOptions::default(),
            payload,
        }
    }

    /// An active connection with ISS `iss`, established with a peer whose ISS is
    /// [`PEER_ISS`] (no options: no scaling, no timestamps).
    fn established(iss: SeqNum) -> Connection {
        let config = Arc::new(TcpConfig::default());
        let local = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 40000);
        let remote = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
        let mut conn = Connection::connect(&config, local, remote, iss, 1500, 0, Instant::ZERO);
        let syn = conn.plan().expect("the SYN");
        conn.commit(&syn, Instant::ZERO);
        let syn_ack = from_peer(PEER_ISS, iss + 1, TcpFlags::SYN | TcpFlags::ACK, &[]);
        conn.handle_segment(
            Instant::from_millis(1),
            &syn_ack,
            None,
            true,
            &mut ChallengeAckBudget::new(0, 0),
        );
        assert_eq!(conn.state, State::Established);
        conn
    }

    /// Sends what the connection plans now and returns the plan.
    fn send(conn: &mut Connection, now: Instant) -> Plan {
        let plan = conn.plan().expect("something to send");
        conn.commit(&plan, now);
        plan
    }

    /// The bug, reached directly: after 2³² − 1 bytes sent and acknowledged, SND.UNA
    /// is ISS again (modulo 2³²). "Our SYN is unacknowledged" decided by `snd_una == iss`
    /// took one byte off the next acknowledgment, and that byte stayed in the send buffer:
    /// everything sent after it was shifted by one.
    #[test]
    fn ack_when_snd_una_is_back_at_the_iss_frees_exactly_what_it_acknowledges() {
        let iss = SeqNum::new(u32::MAX - 1000);
        let mut conn = established(iss);
        // What 2³² − 1 acknowledged bytes leave behind (the sim's ignored test in
        // tests/wrap.rs gets here the long way).
        conn.snd_una = iss;
        conn.snd_nxt = iss;
        conn.snd_max = iss;
        conn.snd_wl2 = iss;
        let now = Instant::from_millis(2);
        assert_eq!(conn.write(now, &[7u8; 100], usize::MAX), 100);
        let plan = send(&mut conn, now);
        assert_eq!((plan.seq, plan.data_len), (iss, 100));
        let ack = from_peer(PEER_ISS + 1, iss + 100, TcpFlags::ACK, &[]);
        conn.handle_segment(now, &ack, None, true, &mut ChallengeAckBudget::new(0, 0));
        assert_eq!(conn.stats.bytes_acked, 100, "all 100 bytes acknowledged");
        assert_eq!(conn.send_queue_len(), 0, "no acknowledged byte left behind");
        assert_eq!(conn.write(now, b"next", usize::MAX), 4);
        let plan = send(&mut conn, now);
        let mut payload = [0u8; 4];
        conn.copy_payload(&plan, &mut payload);
        assert_eq!((plan.seq, &payload), (iss + 100, b"next"));
    }

    /// The bench's proxy against Linux 6 deadlocked so: we had sent 16 KB the peer then
    /// dropped for lack of memory, and it advertised a zero window at its RCV.NXT, below our
    /// SND.MAX. Our ACKs, at SND.MAX, lay outside its window and were dropped unread, so it
    /// never learnt we had its data. An ACK must carry the right edge of the peer's window
    /// when SND.MAX lies beyond it.
    #[test]
    fn an_ack_after_the_peer_shrinks_its_window_carries_a_sequence_number_it_accepts() {
        let iss = SeqNum::new(5000);
        let mut conn = established(iss);
        let now = Instant::from_millis(2);
        assert_eq!(conn.write(now, &[1u8; 4000], usize::MAX), 4000);
        while conn
            .plan()
            .is_some_and(|plan| matches!(plan.kind, PlanKind::Data))
        {
            send(&mut conn, now);
        }
        let sent_to = conn.snd_max;
        assert!(sent_to > iss + 1001, "{sent_to:?}");
        // The peer acknowledges the first 1000 bytes, sends 10 of its own and shrinks its
        // window to zero: RCV.NXT = its right edge = iss + 1001.
        let mut shrink = from_peer(PEER_ISS + 1, iss + 1001, TcpFlags::ACK, b"0123456789");
        shrink.window_len = 0;
        conn.handle_segment(now, &shrink, None, true, &mut ChallengeAckBudget::new(0, 0));
        let mut more = from_peer(PEER_ISS + 11, iss + 1001, TcpFlags::ACK, b"0123456789");
        more.window_len = 0;
        conn.handle_segment(now, &more, None, true, &mut ChallengeAckBudget::new(0, 0));
        assert_eq!(conn.snd_wnd, 0);
        // Small segments: the ACK waits for the delayed-ACK timer (not the RTO, due later).
        let now = now + conn.config.delayed_ack;
        conn.on_timer(now);
        let ack = conn.plan().expect("an ACK for the peer's data");
        assert_eq!(ack.kind, PlanKind::Ack);
        assert_eq!((ack.seq, ack.ack), (iss + 1001, PEER_ISS + 21));
        conn.commit(&ack, now);
        // With the window open again, past SND.MAX, ACKs go back to SND.MAX.
        let mut reopen = from_peer(PEER_ISS + 21, iss + 1001, TcpFlags::ACK, b"ab");
        reopen.window_len = 8000;
        conn.handle_segment(now, &reopen, None, true, &mut ChallengeAckBudget::new(0, 0));
        assert_eq!(conn.ack_seq(), sent_to);
    }

    /// The peer's retransmission of old data (SEG.SEQ behind SND.WL1) acknowledges new data
    /// and offers its window from that acknowledgment: the right edge stays where the peer
    /// put it. Taken as an offset from the new SND.UNA, the old window let 1000 bytes go past
    /// it; in `tests/wrap.rs` (one-byte writes, a 4 KiB window) both ends did so, and each
    /// end's ACKs, capped at the stale edge it knew, fell below the other's RCV.NXT and were
    /// dropped unread: both connections timed out.
    #[test]
    fn a_window_offered_with_a_retransmission_bounds_what_is_sent() {
        let iss = SeqNum::new(5000);
        let mut conn = established(iss);
        let now = Instant::from_millis(2);
        let budget = &mut ChallengeAckBudget::new(0, 0);
        // The peer sent no MSS option: 536-byte segments, and a window of eight. Its second
        // segment arrives ahead of a hole, and sets SND.WL1 there.
        let window = 8 * 536;
        for seq in [PEER_ISS + 1, PEER_ISS + 201] {
            let mut data = from_peer(seq, iss + 1, TcpFlags::ACK, &[7u8; 100]);
            data.window_len = window as u16;
            conn.handle_segment(now, &data, None, true, budget);
        }
        assert_eq!(conn.write(now, &[1u8; 16 * 536], usize::MAX), 16 * 536);
        while conn.plan().is_some() {
            send(&mut conn, now);
        }
        let edge = iss + 1 + window;
        assert_eq!(conn.snd_max, edge, "the window's worth");
        // The peer's retransmission fills the hole (SEG.SEQ behind SND.WL1): two segments
        // taken, none read, the window two segments smaller, the right edge where it was.
        // (From the new SND.UNA, the old window reached two segments further.)
        let mut again = from_peer(
            PEER_ISS + 101,
            iss + 1 + 2 * 536,
            TcpFlags::ACK,
            &[7u8; 100],
        );
        again.window_len = (window - 2 * 536) as u16;
        conn.handle_segment(now, &again, None, true, budget);
        assert_eq!(conn.snd_una, iss + 1 + 2 * 536);
        assert_eq!(conn.send_right_edge(), edge);
        assert_eq!(conn.send_window_room(), 0);
        while let Some(plan) = conn.plan() {
            assert!(plan.seq + plan.data_len as u32 <= edge, "{plan:?}");
            conn.commit(&plan, now);
        }
        assert_eq!(conn.snd_max, edge, "nothing past the peer's edge");
        assert_eq!(conn.ack_seq(), edge);
    }

    /// What every connection carries, idle or not, by part (`cargo test -p rawtcp-core
    /// control_block -- --nocapture` prints the table). State that only a flight, a recovery
    /// or trouble needs lives in boxes allocated when used; an upper bound keeps it so (a
    /// size, not a timing: growing past it is a decision to make, not an accident).
    #[test]
    fn the_control_block_stays_within_its_budget() {
        use core::mem::size_of;
        let parts = [
            ("Connection", size_of::<Connection>()),
            ("  RecvBuffer", size_of::<RecvBuffer>()),
            ("  LossRecovery", size_of::<LossRecovery>()),
            ("  Counters", size_of::<Counters>()),
            ("  TimerTable", size_of::<TimerTable>()),
            ("  SendBuffer", size_of::<SendBuffer>()),
            ("  RecvAutotune", size_of::<RecvAutotune>()),
            ("  RttEstimator", size_of::<RttEstimator>()),
            ("  events", size_of::<Vec<ConnEvent>>()),
            ("  Controller", size_of::<Controller>()),
            ("slab slot", size_of::<crate::tcp::Slot>()),
        ];
        for (part, size) in parts {
            eprintln!("{part:<16} {size:>5} B");
        }
        assert!(size_of::<Connection>() <= 864, "{parts:?}");
        assert!(size_of::<RecvBuffer>() <= 112, "{parts:?}");
        // Beside each control block, its slot in the slab (which grows by an eighth).
        assert!(size_of::<crate::tcp::Slot>() <= 40, "{parts:?}");
        assert!(size_of::<LossRecovery>() <= 128, "{parts:?}");
        assert!(size_of::<Counters>() <= 72, "{parts:?}");
        // An established connection that has counted nothing rare has no box for it.
        let conn = established(SeqNum::new(7));
        assert_eq!(conn.stats.retransmitted_segments(), 0);
        assert_eq!(
            conn.stats(),
            ConnectionStats {
                opened_at: Instant::ZERO,
                segments_in: 1,
                segments_out: 1,
                ..ConnectionStats::default()
            }
        );
    }
}
