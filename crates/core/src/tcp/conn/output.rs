//! Output planning: what the connection sends next ([`Connection::plan`]), the options and
//! window it carries, and what sending it changes ([`Connection::commit`]).

use rawtcp_wire::SeqNum;
use rawtcp_wire::tcp::{SackBlocks, TcpFlags, TcpOptions, Timestamps};

use super::{Connection, DataPlan, GSO_MAX_PAYLOAD, Plan, PlanKind, ts_clock, window_shift};
use crate::Instant;
use crate::tcp::congestion::CongestionControl;
use crate::tcp::recovery::Retransmission;
use crate::tcp::state::State;
use crate::tcp::timers::Timer;

/// RFC 8985 §7.2: the peer's worst-case delayed ACK (200 ms), added to the probe timeout when
/// one segment is out.
const WORST_CASE_DELAYED_ACK_MICROS: u64 = 200_000;

impl Connection {
    /// The window to advertise, with receiver-side SWS avoidance (RFC 9293 §3.8.6.2.2): the
    /// right edge moves right only by at least min(MSS, buffer/2) at a time, and never left.
    fn window_to_advertise(&self) -> u32 {
        let free = self.recv.window() as u32;
        let current = self.rcv_right - self.rcv_nxt.min(self.rcv_right);
        let step = u32::from(self.mss).min(self.recv.capacity() as u32 / 2);
        // Never more than the buffer can hold: the right edge stays put while data arrives
        // (current shrinks with free) and moves right once reading frees enough space.
        let window = if free >= current + step {
            free
        } else {
            current.min(free)
        };
        // Representable after scaling, rounded down to the scale's granularity.
        let max = 65535u32 << self.rcv_wscale;
        window.min(max) >> self.rcv_wscale << self.rcv_wscale
    }

    fn window_field(&self, syn: bool) -> u16 {
        if syn {
            // RFC 7323 §2.2: the SYN's own window is never scaled.
            return (self.recv.window()).min(65535) as u16;
        }
        (self.window_to_advertise() >> self.rcv_wscale).min(65535) as u16
    }

    /// Whether `plan` has something to do now.
    pub(crate) fn wants_output(&self) -> bool {
        self.output_flagged() || self.data_plan().is_some()
    }

    /// [`plan`](Self::plan) and [`wants_output`](Self::wants_output) together, for the
    /// cost of one: the data plan, the expensive part of both, is worked out once.
    ///
    /// Without a flag of `output_flagged`, `plan` finds something exactly when the data
    /// plan does: no reset, no SYN due, no ACK owed in SYN-RECEIVED, and the states where
    /// `plan` stops before the data plan (CLOSED, the unsynchronized ones) are states
    /// where the data plan is `None` too.
    pub(crate) fn next_output(&self) -> (Option<Plan>, bool) {
        let plan = self.plan();
        let wants = plan.is_some() || self.output_flagged();
        (plan, wants)
    }

    /// Output that a flag asks for, whatever the data plan says.
    fn output_flagged(&self) -> bool {
        self.reset.is_some()
            || self.ack_now
            || self.probe_due
            || self.resend_syn
            || self.syn_plan_due()
    }

    fn syn_plan_due(&self) -> bool {
        matches!(self.state, State::SynSent | State::SynReceived)
            && (self.last_syn_sent.is_none() || self.resend_syn)
    }

    /// Data (and/or FIN) that may go out now: a retransmission the loss recovery wants, or
    /// the next unsent data as the windows, SWS avoidance and Nagle allow.
    fn data_plan(&self) -> Option<DataPlan> {
        // Nothing queued, nothing in flight, no FIN asked for: nothing to send, new or again
        // (the loss recovery has nothing outstanding to choose from). A receiver's case,
        // after every segment it takes and every read, so it is asked before the rest.
        if self.send.len() == 0
            && !self.fin_requested
            && self.snd_nxt == self.snd_una
            && self.snd_max == self.snd_una
        {
            debug_assert_eq!(self.data_plan_worked_out(), None);
            return None;
        }
        self.data_plan_worked_out()
    }

    fn data_plan_worked_out(&self) -> Option<DataPlan> {
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::LastAck
                | State::Closing
        ) {
            return None;
        }
        if let Some(plan) = self.retransmission_plan() {
            return Some(plan);
        }
        let offset = (self.snd_nxt - self.snd_una) as usize;
        if self.fin_seq.is_some_and(|fin| self.snd_nxt > fin) {
            return None; // everything, FIN included, is in flight
        }
        let unsent = self.send.len().saturating_sub(offset);
        let in_flight = self.snd_nxt - self.snd_una;
        let congestion_room =
            self.recovery
                .send_room(self.cc.window(), self.snd_una, self.snd_nxt, self.smss());
        // Never past the peer's right edge (RFC 9293 §3.8.6; see `send_right_edge`).
        let usable = self.send_window_room().min(congestion_room) as usize;
        let mss = self.effective_mss();
        let mut len = unsent.min(usable).min(mss);
        // Segmentation offload: as many whole segments as the window and the queue allow,
        // in one super-segment. A tail shorter than a segment is left to the rules below.
        if self.config.segmentation_offload && len == mss {
            let whole = unsent.min(usable).min(GSO_MAX_PAYLOAD) / mss * mss;
            len = len.max(whole);
        }
        let fin = self.fin_requested && offset + len == self.send.len();
        if len == 0 {
            return fin.then_some(DataPlan {
                offset,
                len: 0,
                fin: true,
                gso_size: 0,
                retransmission: None,
            });
        }
        // Sender-side SWS avoidance and Nagle (RFC 9293 §3.8.6.2.1, §3.7.4): a full segment,
        // or all that is queued when nothing is in flight (or Nagle is off, or a FIN follows),
        // or at least half the largest window the peer has offered.
        // The override timeout of §3.8.6.2.1 (the persist timer) sends what the window allows.
        let send = len >= mss
            || (len == unsent && (in_flight == 0 || self.nodelay || self.fin_requested))
            || len as u32 >= self.max_snd_wnd / 2
            // Going back after a timeout: whole segments, or what reaches SND.MAX.
            || (self.snd_nxt < self.snd_max && self.snd_nxt + len as u32 >= self.snd_max)
            || (self.sws_override && in_flight == 0);
        let gso_size = if len > mss { mss as u16 } else { 0 };
        send.then_some(DataPlan {
            offset,
            len,
            fin,
            gso_size,
            retransmission: None,
        })
    }

    /// The segment the loss recovery wants sent again, cut to what one segment carries.
    fn retransmission_plan(&self) -> Option<DataPlan> {
        let in_flight = self.snd_nxt - self.snd_una;
        let unsent =
            self.send.len() > in_flight as usize || (self.fin_requested && self.fin_seq.is_none());
        // RFC 6675 §4 NextSeg rule 2: new data the peer's window takes goes first.
        let new_data_waits = unsent && self.send_window_room() > 0;
        // Segments of what one carries beside its options, so that none leaves a runt.
        let wanted = self.recovery.next_retransmission(
            self.snd_una,
            self.snd_max,
            self.effective_mss() as u32,
            new_data_waits,
        )?;
        let offset = (wanted.seq - self.snd_una) as usize;
        let len = (wanted.len as usize)
            .min(self.send.len().saturating_sub(offset))
            .min(self.effective_mss());
        let end = wanted.seq + len as u32;
        let fin = self
            .fin_seq
            .is_some_and(|fin| end == fin && wanted.seq + wanted.len > fin);
        (len > 0 || fin).then_some(DataPlan {
            offset,
            len,
            fin,
            gso_size: 0,
            retransmission: Some(Retransmission {
                len: len as u32 + u32::from(fin),
                ..wanted
            }),
        })
    }

    /// The payload that fits in one segment with the options it carries (RFC 9293 §3.7.1:
    /// the effective send MSS excludes TCP options): timestamps take 12 bytes, SACK blocks
    /// 4 + 8 each.
    pub(super) fn effective_mss(&self) -> usize {
        let timestamps = if self.ts_enabled { 12 } else { 0 };
        let sack = if self.sack_permitted && (self.recv.has_out_of_order() || self.dsack.is_some())
        {
            let blocks = self
                .recv
                .out_of_order_ranges()
                .take(SackBlocks::MAX)
                .count()
                + usize::from(self.dsack.is_some());
            // What fits beside timestamps in 40 bytes.
            let blocks = blocks.min(if self.ts_enabled { 3 } else { 4 });
            4 + 8 * blocks
        } else {
            0
        };
        self.mss().saturating_sub(timestamps + sack).max(1)
    }

    fn ts_option(&self, now: Instant) -> Option<Timestamps> {
        self.ts_enabled.then(|| Timestamps {
            tsval: ts_clock(now).wrapping_add(self.ts_offset),
            tsecr: self.ts_recent.value(),
        })
    }

    /// The options of our SYN or SYN-ACK.
    pub(crate) fn syn_options(&self, now: Instant) -> TcpOptions<'static> {
        let answering = self.state == State::SynReceived;
        TcpOptions {
            max_seg_size: Some(self.our_mss),
            window_scale: (self.offer_wscale).then(|| {
                if answering {
                    self.rcv_wscale
                } else {
                    window_shift(self.autotune.max())
                }
            }),
            sack_permitted: self.offer_sack && (!answering || self.sack_permitted),
            sack_blocks: SackBlocks::new(),
            timestamps: if self.offer_ts && (!answering || self.ts_enabled) {
                Some(Timestamps {
                    tsval: ts_clock(now).wrapping_add(self.ts_offset),
                    tsecr: if answering { self.ts_recent.value() } else { 0 },
                })
            } else {
                None
            },
            tfo_cookie: None,
        }
    }

    /// Options of a segment other than a SYN: timestamps and, with out-of-order data held,
    /// SACK blocks (RFC 2018 §4: the block holding the latest segment first).
    pub(crate) fn segment_options(&self, now: Instant) -> TcpOptions<'static> {
        let mut sack_blocks = SackBlocks::new();
        if self.sack_permitted {
            // RFC 2018 §3: three blocks fit beside timestamps, four without.
            let mut limit = if self.ts_enabled { 3 } else { SackBlocks::MAX };
            if let Some((start, end)) = self.dsack {
                // RFC 2883 §4: a D-SACK block goes first.
                sack_blocks.push(start, end);
                limit -= 1;
            }
            for (start, end) in self.recv.sack_ranges(limit) {
                sack_blocks.push(self.rcv_nxt + start as u32, self.rcv_nxt + end as u32);
            }
        }
        TcpOptions {
            timestamps: self.ts_option(now),
            sack_blocks,
            ..TcpOptions::default()
        }
    }

    /// What to send next, if anything.
    pub(crate) fn plan(&self) -> Option<Plan> {
        if let Some(reset) = self.reset {
            let (flags, ack) = match reset.ack {
                Some(ack) => (TcpFlags::RST | TcpFlags::ACK, ack),
                None => (TcpFlags::RST, SeqNum::new(0)),
            };
            return Some(Plan {
                seq: reset.seq,
                ack,
                flags,
                data_offset: 0,
                data_len: 0,
                window: 0,
                kind: PlanKind::Reset,
                gso_size: 0,
            });
        }
        if self.state == State::Closed {
            return None;
        }
        if self.syn_plan_due() {
            let (flags, ack) = if self.state == State::SynReceived {
                (TcpFlags::SYN | TcpFlags::ACK, self.rcv_nxt)
            } else {
                (TcpFlags::SYN, SeqNum::new(0))
            };
            return Some(Plan {
                seq: self.iss,
                ack,
                flags,
                data_offset: 0,
                data_len: 0,
                window: self.window_field(true),
                kind: PlanKind::Syn,
                gso_size: 0,
            });
        }
        let window = self.window_field(false);
        if self.state == State::SynReceived {
            // RFC 9293 §3.10.7.4: an unacceptable segment (the crossing SYN-ACK of a
            // simultaneous open) is answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
            return self.ack_now.then_some(Plan {
                seq: self.snd_nxt,
                ack: self.rcv_nxt,
                flags: TcpFlags::ACK,
                data_offset: 0,
                data_len: 0,
                window,
                kind: PlanKind::Ack,
                gso_size: 0,
            });
        }
        if !self.state.is_synchronized() {
            return None;
        }
        if let Some(data) = self.data_plan() {
            let mut flags = TcpFlags::ACK;
            if data.fin {
                flags |= TcpFlags::FIN;
            }
            if data.len > 0 && data.offset + data.len == self.send.len() {
                flags |= TcpFlags::PSH;
            }
            return Some(Plan {
                seq: self.snd_una + data.offset as u32,
                ack: self.rcv_nxt,
                flags,
                data_offset: data.offset,
                data_len: data.len,
                window,
                kind: match data.retransmission {
                    Some(retransmission) => PlanKind::Retransmit {
                        rescue: retransmission.rescue,
                    },
                    None => PlanKind::Data,
                },
                gso_size: data.gso_size,
            });
        }
        if self.probe_due {
            return Some(Plan {
                seq: self.snd_una - 1,
                ack: self.rcv_nxt,
                flags: TcpFlags::ACK,
                data_offset: 0,
                data_len: 0,
                window,
                kind: PlanKind::Probe,
                gso_size: 0,
            });
        }
        if self.ack_now && self.state != State::Closed {
            return Some(Plan {
                seq: self.ack_seq(),
                ack: self.rcv_nxt,
                flags: TcpFlags::ACK,
                data_offset: 0,
                data_len: 0,
                window,
                kind: PlanKind::Ack,
                gso_size: 0,
            });
        }
        None
    }

    /// SEG.SEQ of a segment without data: one the peer finds acceptable (RFC 9293 §3.10.7.4,
    /// first check), or it drops the segment and the acknowledgment in it.
    ///
    /// SND.MAX, not SND.NXT: after a go-back retransmission SND.NXT may lie behind the peer's
    /// RCV.NXT, and two peers both retransmitting would then never hear each other's ACKs.
    /// But not past the right edge of the peer's window either: a receiver may shrink its
    /// window (RFC 9293 §3.8.6, RFC 7323 §2.4; Linux advertises zero at once when it drops
    /// data for lack of memory), and what we sent beyond the new edge then lies outside it.
    /// With the window at zero only SEG.SEQ = RCV.NXT is acceptable, and an ACK at SND.MAX
    /// went unheard: the peer kept retransmitting data we had acknowledged, its send buffer
    /// full, its application blocked and its window never reopening (a deadlock found by the
    /// bench's proxy against Linux 6). Linux's tcp_acceptable_seq makes the same choice.
    pub(crate) fn ack_seq(&self) -> SeqNum {
        let right_edge = self.send_right_edge();
        if self.snd_max <= right_edge {
            self.snd_max
        } else if right_edge < self.snd_una {
            self.snd_una
        } else {
            right_edge
        }
    }

    /// Copies the planned payload into `out`.
    pub(crate) fn copy_payload(&self, plan: &Plan, out: &mut [u8]) {
        self.send.copy_to(plan.data_offset, out);
    }

    /// Records that `plan` went out at `now`.
    pub(crate) fn commit(&mut self, plan: &Plan, now: Instant) {
        self.stats.segments_out += plan.segments();
        match plan.kind {
            PlanKind::Reset => {
                self.reset = None;
                self.stats.rare().resets_out += 1;
                return;
            }
            PlanKind::Syn => {
                if self.last_syn_sent.is_some() {
                    self.stats.rare().retransmitted_segments += 1;
                }
                self.resend_syn = false;
                self.last_syn_sent = Some(now);
                self.snd_nxt = self.iss + 1;
                self.snd_max = self.snd_max.max(self.snd_nxt);
                if self.state == State::SynReceived {
                    self.rcv_right = self.rcv_nxt + u32::from(plan.window);
                }
                self.timers.start(Timer::Retransmit, now + self.rtt.rto());
                if self.rtt_probe.is_none() && self.retransmits == 0 && !self.ts_enabled {
                    self.rtt_probe = Some((self.snd_nxt, now));
                }
            }
            PlanKind::Data => {
                self.sws_override = false;
                self.timers.stop(Timer::Persist);
                let end = plan.seq + plan.data_len as u32 + u32::from(plan.flags.fin());
                if plan.seq < self.snd_max {
                    self.stats.rare().retransmitted_segments += 1;
                    self.stats.rare().bytes_retransmitted += plan.data_len as u64;
                } else if self.rtt_probe.is_none() && !self.ts_enabled && plan.data_len > 0 {
                    self.rtt_probe = Some((end, now));
                }
                if plan.flags.fin() && self.fin_seq.is_none() {
                    self.fin_seq = Some(plan.seq + plan.data_len as u32);
                }
                self.stats.bytes_out += plan.data_len as u64;
                self.last_data_sent = Some(now);
                self.sent_maybe_probe(now, end, plan.seq < self.snd_max);
                self.recovery.on_transmit(now, plan.seq, end, self.smss());
                self.snd_nxt = end;
                // Going back after a timeout: what the peer SACKed since is not sent again.
                if self.snd_nxt < self.snd_max
                    && let Some(sacked_end) = self.recovery.scoreboard().sacked_end(self.snd_nxt)
                {
                    self.snd_nxt = sacked_end;
                }
                self.snd_max = self.snd_max.max(end);
                self.timers.start(Timer::Retransmit, now + self.rtt.rto());
                if self.unacked_since.is_none() {
                    self.unacked_since = Some(now);
                }
            }
            PlanKind::Retransmit { rescue } => {
                self.stats.rare().retransmitted_segments += 1;
                self.stats.rare().bytes_retransmitted += plan.data_len as u64;
                self.stats.bytes_out += plan.data_len as u64;
                self.last_data_sent = Some(now);
                let end = plan.seq + plan.data_len as u32 + u32::from(plan.flags.fin());
                self.sent_maybe_probe(now, end, true);
                // Karn: a segment timed without timestamps may now be acknowledged twice.
                if self.rtt_probe.is_some_and(|(end, _)| end > plan.seq) {
                    self.rtt_probe = None;
                }
                let len = plan.data_len as u32 + u32::from(plan.flags.fin());
                self.recovery.on_retransmitted(Retransmission {
                    seq: plan.seq,
                    len,
                    rescue,
                });
                self.recovery
                    .on_transmit(now, plan.seq, plan.seq + len, self.smss());
                self.timers.start(Timer::Retransmit, now + self.rtt.rto());
            }
            PlanKind::Probe => {
                self.probe_due = false;
            }
            PlanKind::Ack => {}
        }
        if plan.flags.ack() {
            self.last_ack_sent = plan.ack;
            self.dsack = None;
            self.ack_now = false;
            self.timers.stop(Timer::DelayedAck);
            self.segments_unacked = 0;
        }
        // The window of a SYN-ACK is unscaled (RFC 7323 §2.2): its right edge was recorded
        // above; scaling it here would promise the peer more than the buffer holds.
        if plan.flags.ack() && plan.kind != PlanKind::Syn {
            let right = self.rcv_nxt + (u32::from(plan.window) << self.rcv_wscale);
            if right > self.rcv_right {
                self.rcv_right = right;
            }
        }
        if self.window_blocked()
            && !self.timers.is_running(Timer::Persist)
            && !self.timers.is_running(Timer::Retransmit)
        {
            self.arm_persist(now);
        }
        if matches!(plan.kind, PlanKind::Data | PlanKind::Retransmit { .. }) {
            self.arm_loss_probe(now);
        }
    }

    /// A data segment went out: if it was the tail loss probe, the retransmission timer
    /// starts again from it (RFC 8985 §7.3).
    fn sent_maybe_probe(&mut self, now: Instant, end: SeqNum, retransmission: bool) {
        if self.recovery.probe_due() {
            self.recovery
                .on_probe_sent(self.snd_max.max(end), retransmission);
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
    }

    /// RFC 8985 §7.2: with data outstanding and no loss suspected, the probe timeout is
    /// 2·SRTT, plus the peer's worst-case delayed ACK (200 ms) when one segment is out, and
    /// never later than the retransmission timer: a tail loss is probed before the timer
    /// collapses the window.
    ///
    /// Only with SACK: RFC 8985 §4 makes it a requirement of RACK-TLP ("The connection MUST
    /// use selective acknowledgment (SACK) options"), since without SACK the probe's ACK cannot
    /// tell which segment was lost; Linux's `tcp_schedule_loss_probe` checks `tcp_is_sack`
    /// too.
    pub(super) fn arm_loss_probe(&mut self, now: Instant) {
        let outstanding = self.snd_max - self.snd_una;
        // Nothing outstanding (a receiver's every ACK) is the commonest reason, asked first.
        let eligible = outstanding > 0
            && self.config.tail_loss_probe
            && self.sack_permitted
            && self.syn_acked
            && matches!(
                self.state,
                State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
            )
            && self.recovery.loss_probe_allowed()
            // As Linux (tcp_schedule_loss_probe): RACK's reorder timer, when running, comes
            // first; the probe is armed again once it has fired.
            && !self.timers.is_running(Timer::RackReorder);
        let (true, Some(srtt)) = (eligible, self.rtt.srtt_micros()) else {
            self.timers.stop(Timer::LossProbe);
            return;
        };
        // In the clock's microseconds: this runs for every segment sent and every ACK, and
        // `Duration` arithmetic cost more than all the rest.
        let mut pto = u64::from(srtt) * 2;
        if outstanding <= self.smss() {
            pto += WORST_CASE_DELAYED_ACK_MICROS;
        }
        let mut at = Instant::from_micros(now.as_micros().saturating_add(pto));
        if let Some(rto) = self.timers.deadline(Timer::Retransmit) {
            at = at.min(rto);
        }
        self.timers.set(Timer::LossProbe, at);
    }

    /// RFC 8985 §6.2: RACK's reorder timer runs while a segment awaits its verdict.
    pub(super) fn arm_reorder_timer(&mut self) {
        match self.recovery.reorder_deadline() {
            Some(at) => self.timers.set(Timer::RackReorder, at),
            None => self.timers.stop(Timer::RackReorder),
        }
    }

    pub(super) fn arm_persist(&mut self, now: Instant) {
        let backoff = 1u32 << self.persist_backoff.min(16);
        let delay = self
            .rtt
            .rto()
            .saturating_mul(backoff)
            .min(self.config.rto_max);
        self.timers.set(Timer::Persist, now + delay);
    }

    /// After handling input or an application call: arm the persist timer when the peer's
    /// window is closed and data waits.
    pub(crate) fn after_input(&mut self, now: Instant) {
        if self.window_blocked()
            && !self.timers.is_running(Timer::Persist)
            && !self.timers.is_running(Timer::Retransmit)
        {
            self.arm_persist(now);
        }
    }

    /// Data waits, nothing is in flight, and the peer's window (zero, or too small for sender
    /// SWS avoidance) keeps it back: the persist timer must run (RFC 9293 §3.8.6.1).
    fn window_blocked(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::LastAck
                | State::Closing
        ) && self.snd_nxt == self.snd_una
            && self.send.len() > 0
            && self.data_plan().is_none()
    }
}
