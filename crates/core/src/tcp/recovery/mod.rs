//! Loss detection and recovery: the peer's SACK blocks, duplicate ACKs, and what to
//! retransmit.
//!
//! [`Scoreboard`] keeps what the peer has SACKed (RFC 2018), validated and bounded: a block
//! outside SND.UNA..SND.MAX, empty or inverted is rejected before it touches the scoreboard,
//! and the scoreboard holds at most [`MAX_SACKED_RANGES`] ranges, so a lying peer can cost
//! neither memory nor endless retransmission (each hole goes again at most once per recovery;
//! what the peer never acknowledges ends with the retransmission timer's limit).
//!
//! [`LossRecovery`] is the congestion state machine Linux names open / disorder / recovery /
//! loss: duplicate ACKs are counted (limited transmit, RFC 3042, on the first two), the third
//! or a SACK scoreboard showing SND.UNA lost starts fast recovery. Without SACK it is NewReno's
//! (RFC 6582: window inflation, a partial ACK retransmits the next hole); with SACK RFC 6675's
//! (pipe, NextSeg, the rescue retransmission). After a retransmission timeout it is in loss
//! until everything outstanding then is acknowledged.

use core::time::Duration;

use rawtcp_wire::SeqNum;

use super::congestion::{Acked, CongestionControl};
use crate::Instant;

mod frto;
mod rack;

pub(crate) use frto::FrtoAction;
use frto::{Frto, FrtoOutcome};
use rack::{Rack, RackAck};

/// RFC 5681 §3.2 and RFC 6675 §2: DupThresh.
pub(crate) const DUP_THRESH: u32 = 3;
/// The most disjoint SACKed ranges kept. The receiver holds a bounded number of
/// out-of-order ranges too; beyond this the highest ones are forgotten (SACK is advisory:
/// forgetting costs a needless retransmission, never correctness).
pub(crate) const MAX_SACKED_RANGES: usize = 32;

/// Where a connection's congestion control stands, as Linux's TCP_INFO reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CongestionState {
    /// No loss suspected.
    #[default]
    Open,
    /// Duplicate ACKs or SACK blocks seen, not (yet) a loss.
    Disorder,
    /// Fast recovery after a loss detected by duplicate ACKs or SACK.
    Recovery,
    /// After a retransmission timeout, until what was outstanding then is acknowledged.
    Loss,
}

/// What one ACK's SACK blocks did to the scoreboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SackUpdate {
    /// Bytes SACKed for the first time.
    pub(crate) newly_sacked: u32,
    /// Blocks rejected as invalid.
    pub(crate) rejected: u32,
    /// The first block, when it lies below the ACK's cumulative acknowledgment or within the
    /// second block: a D-SACK (RFC 2883 §4), a duplicate received.
    pub(crate) dsack: Option<(SeqNum, SeqNum)>,
}

/// The ranges the peer has SACKed above SND.UNA: sorted, disjoint, not touching.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scoreboard {
    /// Absent while nothing is SACKed (most connections, most of the time): a pointer in
    /// every connection rather than a `Vec`'s three words.
    #[allow(clippy::box_collection)]
    ranges: Option<Box<Vec<(SeqNum, SeqNum)>>>,
}

impl Scoreboard {
    /// Takes the blocks of an ACK whose cumulative acknowledgment field is `cumulative`, with
    /// SND.UNA now at `snd_una` (later than `cumulative` when the ACK was overtaken by newer
    /// ones on the way).
    pub(crate) fn update(
        &mut self,
        snd_una: SeqNum,
        cumulative: SeqNum,
        snd_max: SeqNum,
        blocks: &[(SeqNum, SeqNum)],
    ) -> SackUpdate {
        self.trim(snd_una);
        let mut update = SackUpdate::default();
        let window = snd_max - snd_una;
        // Within a quarter of the sequence space behind: anything further is no recent data.
        let recent = |distance: u32| distance <= 1 << 30;
        for (i, &(left, right)) in blocks.iter().enumerate() {
            let len = right.raw().wrapping_sub(left.raw());
            // RFC 2883 §4: a first block below the ACK's own cumulative acknowledgment, or
            // covered by the second block, reports a duplicate. Below the ACK's field, not
            // below SND.UNA: an ACK overtaken by newer ones carries SACK blocks that SND.UNA
            // has passed since, and they are no duplicates (Linux's tcp_check_dsack compares
            // with the ACK's ack_seq too).
            if i == 0 && len > 0 && recent(len) {
                let below = recent(cumulative.raw().wrapping_sub(left.raw()))
                    && left.raw() != cumulative.raw();
                let covered = blocks.get(1).is_some_and(|&(l2, r2)| {
                    let (from, to) = (
                        left.raw().wrapping_sub(l2.raw()),
                        right.raw().wrapping_sub(l2.raw()),
                    );
                    from < to && to <= r2.raw().wrapping_sub(l2.raw())
                });
                if below || covered {
                    update.dsack = Some((left, right));
                    continue;
                }
            }
            // Offsets from SND.UNA, so that a block is judged the same across the wrap.
            let (from, to) = (
                left.raw().wrapping_sub(snd_una.raw()),
                right.raw().wrapping_sub(snd_una.raw()),
            );
            if from < to && to <= window {
                update.newly_sacked += self.insert(left, right);
                continue;
            }
            if len > 0 && recent(len) && recent(snd_una.raw().wrapping_sub(left.raw())) {
                // Starts behind SND.UNA: from an ACK that newer ones overtook. What SND.UNA has
                // passed is known; the rest, if any, is SACKed.
                if to > 0 && to <= window && to < len {
                    update.newly_sacked += self.insert(snd_una, right);
                }
                continue;
            }
            update.rejected += 1;
        }
        update
    }

    /// Adds [left, right); returns the bytes it added.
    fn insert(&mut self, left: SeqNum, right: SeqNum) -> u32 {
        let before = self.sacked_bytes();
        let ranges = self.ranges.get_or_insert_with(Box::default);
        // Every range touching or overlapping the new one merges into it.
        let first = ranges.partition_point(|&(_, end)| end < left);
        let mut last = first;
        let (mut start, mut end) = (left, right);
        while let Some(&(s, e)) = ranges.get(last) {
            if s > right {
                break;
            }
            start = start.min(s);
            end = end.max(e);
            last += 1;
        }
        ranges.splice(first..last, [(start, end)]);
        ranges.truncate(MAX_SACKED_RANGES);
        self.sacked_bytes().saturating_sub(before)
    }

    /// Forgets what SND.UNA has passed.
    pub(crate) fn trim(&mut self, snd_una: SeqNum) {
        let Some(ranges) = self.ranges.as_mut() else {
            return;
        };
        ranges.retain(|&(_, end)| end > snd_una);
        if ranges.is_empty() {
            self.ranges = None;
            return;
        }
        if let Some(first) = ranges.first_mut()
            && first.0 < snd_una
        {
            first.0 = snd_una;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.ranges = None;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges().is_empty()
    }

    pub(crate) fn sacked_bytes(&self) -> u32 {
        self.ranges().iter().map(|&(s, e)| e - s).sum()
    }

    /// The SACKed ranges, sorted.
    pub(crate) fn ranges(&self) -> &[(SeqNum, SeqNum)] {
        self.ranges.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The highest SACKed sequence number plus one.
    pub(crate) fn high_sacked(&self) -> Option<SeqNum> {
        self.ranges().last().map(|&(_, end)| end)
    }

    /// The end of the range `seq` lies in, if SACKed.
    pub(crate) fn sacked_end(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges()
            .iter()
            .find(|&&(s, e)| s <= seq && seq < e)
            .map(|&(_, e)| e)
    }

    /// Bytes and ranges SACKed at or above `seq`.
    fn sacked_above(&self, seq: SeqNum) -> (u32, u32) {
        self.ranges()
            .iter()
            .filter(|&&(s, _)| s >= seq)
            .fold((0, 0), |(bytes, n), &(s, e)| (bytes + (e - s), n + 1))
    }

    /// RFC 6675 §4 IsLost for every octet of a hole ending at `hole_end`: DupThresh
    /// discontiguous SACKed ranges above it, or more than (DupThresh − 1)·SMSS bytes.
    pub(crate) fn is_lost(&self, hole_end: SeqNum, mss: u32) -> bool {
        let (bytes, ranges) = self.sacked_above(hole_end);
        ranges >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss
    }

    /// The unSACKed ranges of SND.UNA..SND.MAX, the last one above every SACKed range.
    pub(crate) fn holes(
        &self,
        snd_una: SeqNum,
        snd_max: SeqNum,
    ) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        let starts = core::iter::once(snd_una).chain(self.ranges().iter().map(|&(_, e)| e));
        let ends = self
            .ranges()
            .iter()
            .map(|&(s, _)| s)
            .chain(core::iter::once(snd_max));
        starts.zip(ends).filter(|&(s, e)| s < e)
    }
}

/// A segment to send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retransmission {
    pub(crate) seq: SeqNum,
    /// Sequence space it covers (a FIN included).
    pub(crate) len: u32,
    /// RFC 6675 §4 NextSeg rule 4: the rescue retransmission.
    pub(crate) rescue: bool,
}

/// The sequence numbers an ACK arrives into.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckContext<'a> {
    /// SND.UNA before this ACK.
    pub(crate) snd_una: SeqNum,
    /// SEG.ACK.
    pub(crate) ack: SeqNum,
    pub(crate) snd_max: SeqNum,
    /// RFC 5681 §2: no data, no SYN or FIN, SEG.ACK = SND.UNA, data outstanding.
    pub(crate) duplicate: bool,
    pub(crate) sack_blocks: &'a [(SeqNum, SeqNum)],
    pub(crate) mss: u32,
    /// New data acknowledged, for the congestion controller.
    pub(crate) acked: Acked,
    /// When the segment whose timestamp this ACK echoes was sent, if timestamps are on.
    pub(crate) echoed: Option<Instant>,
    /// Data never sent is queued (F-RTO step 2b sends it).
    pub(crate) new_data_waits: bool,
}

/// Counters of the recovery, for the connection's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecoveryCounters {
    pub(crate) fast_recoveries: u64,
    pub(crate) rescue_retransmits: u64,
    pub(crate) sack_blocks_rejected: u64,
    pub(crate) dsacks_received: u64,
    pub(crate) loss_probes: u64,
    /// Segments RACK marked lost (RFC 8985 §6.2), by an ACK or by the reorder timer.
    pub(crate) rack_lost_segments: u64,
    /// Reorder timer expirations that marked a segment lost.
    pub(crate) rack_reorder_timeouts: u64,
    /// Reductions undone because every retransmission they caused was D-SACKed.
    pub(crate) spurious_recoveries_undone: u64,
    /// Retransmission timeouts F-RTO found spurious, their reduction undone.
    pub(crate) spurious_timeouts_undone: u64,
    /// Losses the loss probe's retransmission repaired (RFC 8985 §7.4), each answered by a
    /// window reduction.
    pub(crate) loss_probe_repairs: u64,
}

/// RACK's state as TCP_INFO-style statistics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RackInfo {
    /// A segment was delivered below the highest delivered one without a retransmission.
    pub(crate) reordering_seen: bool,
    /// RACK.reo_wnd as last computed.
    pub(crate) reo_wnd: Duration,
    /// RACK.min_RTT.
    pub(crate) min_rtt: Option<Duration>,
}

/// RFC 6937 Proportional Rate Reduction: how much may go out during fast recovery.
#[derive(Debug, Clone, Copy, Default)]
struct Prr {
    /// RecoverFS: FlightSize when recovery began.
    recover_fs: u32,
    /// prr_delivered: bytes the peer received (cumulatively or by SACK) during recovery.
    delivered: u64,
    /// prr_out: bytes sent during recovery.
    out: u64,
    /// sndcnt as of the last ACK, less what was sent since.
    allowance: u32,
}

/// The most retransmissions of one recovery tracked for an undo; a recovery with more is
/// no spurious one worth undoing.
const UNDO_MAX_RETRANSMISSIONS: usize = 16;

/// What a reduction replaced, to restore if it proves spurious (RFC 2883 §5, Linux's
/// undo_marker / undo_retrans).
#[derive(Debug, Clone)]
struct Undo {
    prior_cwnd: u32,
    prior_ssthresh: u32,
    /// What the recovery retransmitted and no D-SACK has reported received twice yet.
    /// Linux counts D-SACKs above its undo_marker instead; keeping the ranges means a
    /// D-SACK for something else (a loss probe's duplicate) cannot undo a real reduction.
    retransmitted: Vec<(SeqNum, SeqNum)>,
    /// Something was retransmitted at all.
    any: bool,
}

/// The congestion state machine and the choice of what to retransmit.
#[derive(Debug, Clone)]
pub(crate) struct LossRecovery {
    sack: bool,
    /// RACK (RFC 8985 §6) is configured; it needs SACK too to see what arrived.
    rack_enabled: bool,
    scoreboard: Scoreboard,
    rack: Rack,
    /// Only during fast recovery with SACK: boxed, since most connections never recover.
    prr: Option<Box<Prr>>,
    /// Boxed: it exists only from a recovery until its undo or the next.
    undo: Option<Box<Undo>>,
    /// F-RTO (RFC 5682) is configured.
    frto_enabled: bool,
    /// Only after a first timeout, until F-RTO decides: boxed.
    frto: Option<Box<Frto>>,
    /// What the last ACK's F-RTO step asks of SND.NXT, for the connection to take.
    frto_action: Option<FrtoAction>,
    state: CongestionState,
    dup_acks: u32,
    /// RFC 6582's `recover` and RFC 6675's RecoveryPoint: SND.MAX when recovery (or loss)
    /// began; it ends once SND.UNA reaches it.
    recovery_point: SeqNum,
    /// RFC 6675 HighRxt: the end of the highest retransmission of this recovery.
    high_rxt: SeqNum,
    /// RFC 6675 RescueRxt.
    rescue_rxt: Option<SeqNum>,
    /// RFC 6582 §3.2 without SACK: cwnd inflated by the duplicate ACKs, deflated by
    /// partial ACKs.
    inflated_window: u32,
    /// The segment at SND.UNA must go again: the fast retransmit (RFC 5681 §3.2 step 2), or
    /// a partial ACK's hole without SACK (RFC 6582 §3.2 step 5).
    head_due: bool,
    /// RFC 8985 §7.3: the probe timer fired; one segment goes out beyond cwnd.
    probe_due: bool,
    /// A probe went out and nothing new has been acknowledged since: one per tail.
    probe_out: bool,
    /// RFC 8985 §7.4: TLP.end_seq and TLP.is_retrans of the probe whose fate is open.
    tlp_episode: Option<(SeqNum, bool)>,
    /// Allocated at the first count: most connections never recover from anything.
    counters: Option<Box<RecoveryCounters>>,
}

impl LossRecovery {
    pub(crate) fn new(iss: SeqNum, rack: bool, frto: bool) -> LossRecovery {
        LossRecovery {
            sack: false,
            rack_enabled: rack,
            scoreboard: Scoreboard::default(),
            rack: Rack::default(),
            prr: None,
            undo: None,
            frto_enabled: frto,
            frto: None,
            frto_action: None,
            state: CongestionState::Open,
            dup_acks: 0,
            recovery_point: iss,
            high_rxt: iss,
            rescue_rxt: None,
            inflated_window: 0,
            head_due: false,
            probe_due: false,
            probe_out: false,
            tlp_episode: None,
            counters: None,
        }
    }

    /// The counters, to add to.
    fn count(&mut self) -> &mut RecoveryCounters {
        self.counters.get_or_insert_with(Box::default)
    }

    /// The counters so far.
    pub(crate) fn counters(&self) -> RecoveryCounters {
        self.counters.as_deref().copied().unwrap_or_default()
    }

    /// Both SYNs carried SACK-permitted.
    pub(crate) fn set_sack(&mut self, sack: bool) {
        self.sack = sack;
    }

    /// RACK decides what is lost: SACK was negotiated and RACK is configured.
    pub(crate) fn uses_rack(&self) -> bool {
        self.sack && self.rack_enabled
    }

    pub(crate) fn state(&self) -> CongestionState {
        self.state
    }

    pub(crate) fn scoreboard(&self) -> &Scoreboard {
        &self.scoreboard
    }

    /// An acceptable ACK (SEG.ACK within SND.UNA..=SND.MAX) arrived.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        ack: &AckContext<'_>,
        cc: &mut dyn CongestionControl,
    ) {
        let new_data = ack.ack > ack.snd_una;
        if new_data {
            self.probe_out = false;
        }
        // An old ACK overtaken by newer ones (reordering) moves nothing back.
        let snd_una = if new_data { ack.ack } else { ack.snd_una };
        let sacked_before = self.scoreboard.sacked_bytes();
        let mut dsack = None;
        if self.sack {
            let update = self
                .scoreboard
                .update(snd_una, ack.ack, ack.snd_max, ack.sack_blocks);
            // Counted only when there is something to count: the counters' box is allocated
            // at the first, and an ordinary ACK must not allocate it.
            if update.rejected > 0 {
                self.count().sack_blocks_rejected += u64::from(update.rejected);
            }
            if update.dsack.is_some() {
                self.count().dsacks_received += 1;
            }
            dsack = update.dsack;
        }
        // RFC 6937 §3: DeliveredData = the change in SND.UNA plus the change in SACKed bytes.
        let delivered = i64::from(snd_una - ack.snd_una)
            + i64::from(self.scoreboard.sacked_bytes())
            - i64::from(sacked_before);
        if let Some(block) = dsack {
            self.on_dsack(block, cc);
        }
        self.on_ack_tlp(now, snd_una, ack, dsack, cc);
        if self.uses_rack() {
            let marked = self.rack.on_ack(
                now,
                &RackAck {
                    snd_una,
                    snd_max: ack.snd_max,
                    sacked: self.scoreboard.ranges(),
                    dsack: dsack.is_some(),
                    in_recovery: matches!(
                        self.state,
                        CongestionState::Recovery | CongestionState::Loss
                    ),
                    srtt: ack.acked.srtt,
                    echoed: ack.echoed,
                },
            );
            if marked > 0 {
                self.count().rack_lost_segments += u64::from(marked);
            }
        }
        match self.state {
            CongestionState::Loss => {
                if new_data {
                    cc.on_ack(now, ack.acked);
                }
                if self.on_ack_frto(new_data, snd_una, ack, cc) {
                    return;
                }
                if snd_una >= self.recovery_point {
                    self.state = CongestionState::Open;
                    self.dup_acks = 0;
                    self.rack.on_recovery_end();
                }
            }
            CongestionState::Recovery => {
                if snd_una >= self.recovery_point {
                    // RFC 6582 §3.2 step 3 and RFC 6675 §5: a full acknowledgment ends it.
                    cc.on_recovery_end(ack.snd_max - snd_una);
                    self.state = CongestionState::Open;
                    self.prr = None;
                    self.dup_acks = 0;
                    self.head_due = false;
                    self.rack.on_recovery_end();
                    return;
                }
                if new_data {
                    self.high_rxt = self.high_rxt.max(ack.ack);
                    if !self.sack {
                        // RFC 6582 §3.2 step 5: a partial ACK retransmits the next hole;
                        // deflate by what it acknowledged, add back one SMSS if that was a
                        // segment or more.
                        let acked = ack.ack - ack.snd_una;
                        let back = if acked >= ack.mss { ack.mss } else { 0 };
                        self.inflated_window = self.inflated_window.saturating_sub(acked) + back;
                        self.head_due = true;
                    }
                } else if ack.duplicate && !self.sack {
                    // RFC 5681 §3.2 step 4: each further duplicate inflates by one SMSS.
                    self.inflated_window = self.inflated_window.saturating_add(ack.mss);
                }
                if self.sack {
                    self.prr_on_ack(delivered, cc.ssthresh(), snd_una, ack.snd_max, ack.mss);
                }
            }
            CongestionState::Open | CongestionState::Disorder => {
                if new_data {
                    self.dup_acks = 0;
                    cc.on_ack(now, ack.acked);
                } else if ack.duplicate {
                    self.dup_acks += 1;
                }
                // With RACK, RACK alone says what is lost (its window is zero from DupThresh
                // SACKed segments until reordering is seen: see `rack`); without, RFC 6675's
                // IsLost on the first hole, or DupThresh duplicate ACKs (RFC 5681 §3.2).
                let lost = if self.uses_rack() {
                    self.rack.has_lost()
                } else {
                    self.dup_acks >= DUP_THRESH
                        || (self.sack
                            && ack.snd_max > snd_una
                            && self
                                .scoreboard
                                .holes(snd_una, ack.snd_max)
                                .next()
                                .is_some_and(|(s, e)| {
                                    s == snd_una && self.scoreboard.is_lost(e, ack.mss)
                                }))
                };
                if lost {
                    self.enter_recovery(now, snd_una, ack.snd_max, ack.mss, cc);
                    if self.sack {
                        self.prr_on_ack(delivered, cc.ssthresh(), snd_una, ack.snd_max, ack.mss);
                    }
                } else if self.dup_acks > 0 || !self.scoreboard.is_empty() {
                    self.state = CongestionState::Disorder;
                } else {
                    self.state = CongestionState::Open;
                }
            }
        }
    }

    /// F-RTO's step for an ACK in loss; true when the timeout proved spurious and loss is
    /// over.
    fn on_ack_frto(
        &mut self,
        new_data: bool,
        snd_una: SeqNum,
        ack: &AckContext<'_>,
        cc: &mut dyn CongestionControl,
    ) -> bool {
        let Some(frto) = self.frto.as_mut() else {
            return false;
        };
        let covers_recover = snd_una >= self.recovery_point;
        match frto.on_ack(
            new_data,
            ack.duplicate,
            covers_recover,
            ack.new_data_waits,
            ack.mss,
        ) {
            FrtoOutcome::Wait => {}
            FrtoOutcome::SendNewData => self.frto_action = Some(FrtoAction::SendNewData),
            FrtoOutcome::Conventional => self.frto = None,
            FrtoOutcome::GoBack => {
                // RFC 5682 §2.1 step 3a: cwnd at most three segments, from SND.UNA.
                cc.limit_window(3 * ack.mss);
                self.frto = None;
                self.frto_action = Some(FrtoAction::GoBack);
            }
            FrtoOutcome::Spurious {
                prior_cwnd,
                prior_ssthresh,
            } => {
                cc.undo(prior_cwnd, prior_ssthresh);
                self.frto = None;
                self.state = CongestionState::Open;
                self.dup_acks = 0;
                // What the timeout marked lost was in flight after all.
                self.rack.clear_lost();
                self.count().spurious_timeouts_undone += 1;
                return true;
            }
        }
        false
    }

    /// What F-RTO asks of SND.NXT after the last ACK, once.
    pub(crate) fn take_frto_action(&mut self) -> Option<FrtoAction> {
        self.frto_action.take()
    }

    /// RFC 5681 §3.2 steps 2-3, RFC 6582 §3.2 step 3, RFC 6675 §5 step 4, RFC 6937 §3 (the
    /// start of PRR).
    fn enter_recovery(
        &mut self,
        now: Instant,
        snd_una: SeqNum,
        snd_max: SeqNum,
        mss: u32,
        cc: &mut dyn CongestionControl,
    ) {
        let flight = snd_max - snd_una;
        self.undo = Some(Box::new(Undo {
            prior_cwnd: cc.window(),
            prior_ssthresh: cc.ssthresh(),
            retransmitted: Vec::new(),
            any: false,
        }));
        cc.on_congestion_event(now, flight);
        // This reduction answers whatever the probe may have repaired.
        self.tlp_episode = None;
        self.state = CongestionState::Recovery;
        self.recovery_point = snd_max;
        self.high_rxt = snd_una;
        self.head_due = true;
        self.probe_due = false;
        self.inflated_window = cc.window().saturating_add(DUP_THRESH * mss);
        self.prr = Some(Box::new(Prr {
            recover_fs: flight,
            ..Prr::default()
        }));
        self.count().fast_recoveries += 1;
    }

    /// PRR's sndcnt less what was sent since; 0 outside recovery.
    fn prr_allowance(&self) -> u32 {
        self.prr.as_ref().map_or(0, |prr| prr.allowance)
    }

    /// RFC 6937 §3, on every ACK in recovery: sndcnt, what may go out until the next ACK.
    /// While the pipe exceeds ssthresh, in proportion to what the peer received (so that
    /// the window comes down to ssthresh over one round trip, not in one step); below it,
    /// PRR-SSRB: back up toward ssthresh at most one segment more than was delivered.
    fn prr_on_ack(
        &mut self,
        delivered: i64,
        ssthresh: u32,
        snd_una: SeqNum,
        snd_max: SeqNum,
        mss: u32,
    ) {
        let pipe = u64::from(self.pipe(snd_una, snd_max, mss));
        let ssthresh = u64::from(ssthresh);
        let Some(prr) = self.prr.as_deref_mut() else {
            return; // not in recovery
        };
        prr.delivered = prr.delivered.saturating_add_signed(delivered);
        let sndcnt = if pipe > ssthresh {
            (prr.delivered * ssthresh)
                .div_ceil(u64::from(prr.recover_fs.max(1)))
                .saturating_sub(prr.out)
        } else {
            let delivered = u64::try_from(delivered).unwrap_or(0);
            let limit = prr.delivered.saturating_sub(prr.out).max(delivered) + u64::from(mss);
            (ssthresh - pipe).min(limit)
        };
        prr.allowance = u32::try_from(sndcnt).unwrap_or(u32::MAX);
    }

    /// A D-SACK reported `block` received twice. When every byte this recovery
    /// retransmitted has come back so, the reduction was spurious (the segments were
    /// reordered or delayed, not lost): RFC 2883 §5's undo, as Linux's
    /// tcp_try_undo_dsack, restores the window and ssthresh and leaves recovery.
    fn on_dsack(&mut self, block: (SeqNum, SeqNum), cc: &mut dyn CongestionControl) {
        let Some(undo) = self.undo.as_mut() else {
            return;
        };
        let (left, right) = block;
        let mut rest = Vec::with_capacity(undo.retransmitted.len());
        for &(start, end) in &undo.retransmitted {
            // What of [start, end) the block does not cover: up to a part on each side.
            if left > start {
                rest.push((start, end.min(left)));
            }
            if right < end {
                rest.push((start.max(right), end));
            }
        }
        rest.retain(|&(start, end)| start < end);
        undo.retransmitted = rest;
        if !undo.any || !undo.retransmitted.is_empty() {
            return;
        }
        cc.undo(undo.prior_cwnd, undo.prior_ssthresh);
        self.undo = None;
        self.count().spurious_recoveries_undone += 1;
        if self.state == CongestionState::Recovery {
            self.state = CongestionState::Disorder;
            self.prr = None;
            self.head_due = false;
            self.dup_acks = 0;
            self.rack.on_recovery_end();
        }
    }

    /// The retransmission timer expired: loss until `snd_max` is acknowledged. RFC 2018 §8:
    /// after a timeout the SACK information gathered before it is not trusted (the receiver
    /// may have reneged); what arrives afterwards is.
    ///
    /// RFC 5682 §2.1 step 1: F-RTO watches a first timeout (`first`: not a backed-off one)
    /// outside fast recovery.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        snd_una: SeqNum,
        snd_max: SeqNum,
        first: bool,
        cc: &mut dyn CongestionControl,
    ) {
        self.frto = (self.frto_enabled
            && first
            && matches!(
                self.state,
                CongestionState::Open | CongestionState::Disorder
            ))
        .then(|| Box::new(Frto::start(cc.window(), cc.ssthresh())));
        self.frto_action = None;
        // The timeout's reduction answers whatever the probe may have repaired.
        self.tlp_episode = None;
        // RFC 5681 §3.1 and RFC 6298 §5.4: one segment, and everything from SND.UNA again.
        cc.on_timeout(now, snd_max - snd_una);
        self.state = CongestionState::Loss;
        self.prr = None;
        self.recovery_point = snd_max;
        self.scoreboard.clear();
        self.rack.on_timeout(now);
        self.undo = None;
        self.head_due = false;
        self.dup_acks = 0;
        self.probe_due = false;
        self.probe_out = false;
    }

    /// RACK's reorder timer fired (RFC 8985 §6.2): what is overdue now is lost, and a loss
    /// starts recovery as one found by an ACK would.
    pub(crate) fn on_reorder_timer(
        &mut self,
        now: Instant,
        snd_una: SeqNum,
        snd_max: SeqNum,
        mss: u32,
        cc: &mut dyn CongestionControl,
    ) {
        if !self.uses_rack() {
            return;
        }
        let marked = self.rack.on_reorder_timeout(now);
        if marked == 0 {
            return;
        }
        self.count().rack_lost_segments += u64::from(marked);
        self.count().rack_reorder_timeouts += 1;
        if matches!(
            self.state,
            CongestionState::Open | CongestionState::Disorder
        ) {
            self.enter_recovery(now, snd_una, snd_max, mss, cc);
            // RFC 6937: no ACK delivered anything yet; the fast retransmit goes regardless.
            self.prr_on_ack(0, cc.ssthresh(), snd_una, snd_max, mss);
        }
    }

    /// When RACK's reorder timer must fire, if it must.
    pub(crate) fn reorder_deadline(&self) -> Option<Instant> {
        self.uses_rack()
            .then(|| self.rack.reorder_deadline())
            .flatten()
    }

    /// RACK's view, for the connection's statistics.
    pub(crate) fn rack_info(&self) -> RackInfo {
        RackInfo {
            reordering_seen: self.rack.reordering_seen(),
            reo_wnd: self.rack.reo_wnd(),
            min_rtt: self.rack.min_rtt(),
        }
    }

    /// [start, end) went out at `now` (new data or again): RACK's transmit times, PRR's
    /// prr_out.
    pub(crate) fn on_transmit(&mut self, now: Instant, start: SeqNum, end: SeqNum, mss: u32) {
        if self.uses_rack() {
            self.rack.on_transmit(now, start, end, mss);
        }
        let len = end - start;
        if self.state == CongestionState::Recovery
            && self.sack
            && let Some(prr) = self.prr.as_deref_mut()
        {
            prr.out += u64::from(len);
            prr.allowance = prr.allowance.saturating_sub(len);
        }
        if let Some(frto) = self.frto.as_mut() {
            frto.on_transmit(len);
        }
    }

    /// RFC 8985 §7.2: a probe may be scheduled — no loss suspected, none out already.
    pub(crate) fn loss_probe_allowed(&self) -> bool {
        matches!(
            self.state,
            CongestionState::Open | CongestionState::Disorder
        ) && !self.probe_out
            && !self.probe_due
    }

    /// The probe timer fired.
    pub(crate) fn on_loss_probe_timer(&mut self) {
        if self.loss_probe_allowed() {
            self.probe_due = true;
            self.count().loss_probes += 1;
        }
    }

    pub(crate) fn probe_due(&self) -> bool {
        self.probe_due
    }

    /// The probe went out: SND.NXT is now `end` (RFC 8985 §7.3: TLP.end_seq), and it
    /// was a `retransmission` of the last segment or new data (TLP.is_retrans).
    pub(crate) fn on_probe_sent(&mut self, end: SeqNum, retransmission: bool) {
        if self.probe_due {
            self.probe_due = false;
            self.probe_out = true;
            self.tlp_episode = Some((end, retransmission));
        }
    }

    /// RFC 8985 §7.4.2: did the probe's retransmission repair a loss? The sequence it ended
    /// at acknowledged, without a D-SACK saying it arrived twice, and more acknowledged
    /// beyond it (or a duplicate ACK without SACK): a loss nothing else would have noticed,
    /// so the window is reduced for it as for a one-loss recovery. A D-SACK of it, or a
    /// probe of new data, closes the episode without one.
    fn on_ack_tlp(
        &mut self,
        now: Instant,
        snd_una: SeqNum,
        ack: &AckContext<'_>,
        dsack: Option<(SeqNum, SeqNum)>,
        cc: &mut dyn CongestionControl,
    ) {
        let Some((end, retransmission)) = self.tlp_episode else {
            return;
        };
        if snd_una < end {
            return;
        }
        if !retransmission || dsack.is_some_and(|(_, right)| right == end) {
            self.tlp_episode = None;
        } else if snd_una > end || (ack.duplicate && ack.sack_blocks.is_empty()) {
            self.tlp_episode = None;
            let flight = ack.snd_max - snd_una;
            cc.on_congestion_event(now, flight);
            cc.on_recovery_end(flight);
            self.count().loss_probe_repairs += 1;
        }
    }

    /// RFC 6675 §4 SetPipe: the octets thought to be in the network. With RACK, what is
    /// neither delivered nor marked lost (a retransmission counts once, as Linux's
    /// packets_out − sacked_out − lost_out + retrans_out).
    pub(crate) fn pipe(&self, snd_una: SeqNum, snd_max: SeqNum, mss: u32) -> u32 {
        if self.uses_rack() {
            return self.rack.pipe();
        }
        let mut pipe = 0u32;
        for (start, end) in self.scoreboard.holes(snd_una, snd_max) {
            if !self.scoreboard.is_lost(end, mss) {
                pipe = pipe.saturating_add(end - start);
            }
            if self.state == CongestionState::Recovery && self.high_rxt > start {
                pipe = pipe.saturating_add(self.high_rxt.min(end) - start);
            }
        }
        pipe
    }

    /// Bytes in flight as TCP_INFO counts them: the pipe with SACK, else what is outstanding.
    pub(crate) fn in_flight(
        &self,
        snd_una: SeqNum,
        snd_nxt: SeqNum,
        snd_max: SeqNum,
        mss: u32,
    ) -> u32 {
        if self.sack && !self.scoreboard.is_empty() {
            self.pipe(snd_una, snd_max, mss)
        } else {
            snd_nxt - snd_una
        }
    }

    /// Bytes deemed lost: marked by RACK, else RFC 6675's IsLost holes.
    pub(crate) fn lost_bytes(&self, snd_una: SeqNum, snd_max: SeqNum, mss: u32) -> u32 {
        if self.uses_rack() {
            return self.rack.lost_bytes();
        }
        self.scoreboard
            .holes(snd_una, snd_max)
            .filter(|&(_, end)| self.scoreboard.is_lost(end, mss))
            .map(|(start, end)| end - start)
            .sum()
    }

    /// How many bytes beyond SND.NXT congestion control lets go out now.
    pub(crate) fn send_room(&self, cwnd: u32, snd_una: SeqNum, snd_nxt: SeqNum, mss: u32) -> u32 {
        let outstanding = snd_nxt - snd_una;
        if self.probe_due {
            // RFC 8985 §7.3: new data for the probe, whatever cwnd says.
            return mss;
        }
        match self.state {
            // RFC 6937: PRR's sndcnt, in place of RFC 6675 §5 step (C)'s cwnd − pipe.
            CongestionState::Recovery if self.sack => self.prr_allowance(),
            CongestionState::Recovery => self.inflated_window.saturating_sub(outstanding),
            // RFC 3042 §2: on the first two duplicate ACKs, new data up to cwnd + 2·SMSS.
            CongestionState::Disorder => cwnd
                .saturating_add(self.dup_acks.min(DUP_THRESH - 1) * mss)
                .saturating_sub(outstanding),
            // RFC 5682 §2.1 step 2b: two new segments, whatever cwnd says.
            CongestionState::Loss if self.frto.as_ref().is_some_and(|f| f.allowance() > 0) => {
                self.frto.as_ref().map_or(0, |f| f.allowance())
            }
            CongestionState::Open | CongestionState::Loss => cwnd.saturating_sub(outstanding),
        }
    }

    /// What to retransmit now, if anything (RFC 6675 §4 NextSeg, rules 1, 3 and 4; rule 2,
    /// new data, is the caller's when `new_data_waits`).
    pub(crate) fn next_retransmission(
        &self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        mss: u32,
        new_data_waits: bool,
    ) -> Option<Retransmission> {
        if snd_max <= snd_una {
            return None;
        }
        if self.probe_due && !new_data_waits {
            // RFC 8985 §7.3: no new data: the probe is the last segment sent.
            let start = snd_una.max(snd_max - mss.min(snd_max - snd_una));
            return Some(Retransmission {
                seq: start,
                len: snd_max - start,
                rescue: false,
            });
        }
        if self.state != CongestionState::Recovery {
            return None;
        }
        let board = &self.scoreboard;
        let segment = |start: SeqNum, end: SeqNum| Retransmission {
            seq: start,
            len: (end - start).min(mss),
            rescue: false,
        };
        if self.head_due {
            return board
                .holes(snd_una, snd_max)
                .next()
                .map(|(start, end)| segment(start, end));
        }
        if !self.sack || self.prr_allowance() < mss {
            return None;
        }
        if self.uses_rack() {
            // RFC 8985 §6.2: what RACK marked lost, lowest first, retransmissions that were
            // lost again included (Linux's tcp_xmit_retransmit_queue). Unlike RFC 6675's
            // rule 3, nothing merely unSACKed goes: it may be reordered, not lost.
            if let Some((start, end)) = self.rack.first_lost() {
                return Some(segment(start, end));
            }
        }
        let high_sacked = board.high_sacked().unwrap_or(snd_una);
        let below_high_sacked = || {
            board
                .holes(snd_una, snd_max)
                .filter(move |&(_, end)| end <= high_sacked && end > self.high_rxt)
                .map(|(start, end)| (start.max(self.high_rxt), end))
        };
        // Rule 1: the first lost octet above HighRxt.
        if !self.uses_rack()
            && let Some((start, end)) =
                below_high_sacked().find(|&(_, end)| board.is_lost(end, mss))
        {
            return Some(segment(start, end));
        }
        if new_data_waits {
            return None;
        }
        // Rule 3: any unSACKed octet above HighRxt below the highest SACKed one.
        if !self.uses_rack()
            && let Some((start, end)) = below_high_sacked().next()
        {
            return Some(segment(start, end));
        }
        // Rule 4: once per recovery, a segment holding the highest unSACKed octet. Not with
        // RACK (nor in Linux): there the loss probe and RACK cover a lost tail, and the
        // rescue would mostly resend what is merely not yet acknowledged.
        if !self.uses_rack() && self.rescue_rxt.is_none_or(|rescue| snd_una > rescue) {
            let (start, end) = board.holes(snd_una, snd_max).last()?;
            let start = start.max(end - mss.min(end - start));
            return Some(Retransmission {
                seq: start,
                len: end - start,
                rescue: true,
            });
        }
        None
    }

    /// A retransmission chosen by [`LossRecovery::next_retransmission`] went out.
    pub(crate) fn on_retransmitted(&mut self, retransmission: Retransmission) {
        if retransmission.rescue {
            // RFC 6675 §4 rule 4: RescueRxt = RecoveryPoint; HighRxt is not updated.
            self.rescue_rxt = Some(self.recovery_point);
            self.count().rescue_retransmits += 1;
            return;
        }
        self.head_due = false;
        self.high_rxt = self.high_rxt.max(retransmission.seq + retransmission.len);
        if self.state == CongestionState::Recovery
            && let Some(undo) = self.undo.as_mut()
        {
            undo.retransmitted
                .push((retransmission.seq, retransmission.seq + retransmission.len));
            undo.any = true;
            if undo.retransmitted.len() > UNDO_MAX_RETRANSMISSIONS {
                self.undo = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::congestion::NewReno;

    const MSS: u32 = 1000;
    const UNA: SeqNum = SeqNum::new(u32::MAX - 4_500);

    fn seq(offset: u32) -> SeqNum {
        UNA + offset
    }

    #[test]
    fn blocks_outside_the_window_or_inverted_are_rejected() {
        let mut board = Scoreboard::default();
        let max = seq(10 * MSS);
        let update = board.update(
            UNA,
            UNA,
            max,
            &[
                (seq(2 * MSS), seq(3 * MSS)),  // valid, across the 2³² wrap
                (seq(5 * MSS), seq(11 * MSS)), // beyond SND.MAX
                (seq(4 * MSS), seq(4 * MSS)),  // empty
                (seq(7 * MSS), seq(6 * MSS)),  // inverted
            ],
        );
        assert_eq!(update.newly_sacked, MSS);
        assert_eq!(update.rejected, 3);
        assert_eq!(board.ranges(), vec![(seq(2 * MSS), seq(3 * MSS))]);
        // Far away (a lie, or another incarnation): rejected, nothing stored.
        let update = board.update(UNA, UNA, max, &[(UNA + 0x8000_0000, UNA + 0x8000_1000)]);
        assert_eq!(update.rejected, 1);
        assert_eq!(board.sacked_bytes(), MSS);
    }

    #[test]
    fn a_first_block_below_the_cumulative_ack_is_a_dsack() {
        // RFC 2883 §4: the receiver reports a duplicate of data already acknowledged.
        let mut board = Scoreboard::default();
        let update = board.update(
            seq(3 * MSS),
            seq(3 * MSS),
            seq(10 * MSS),
            &[(seq(MSS), seq(2 * MSS))],
        );
        assert_eq!(update.dsack, Some((seq(MSS), seq(2 * MSS))));
        assert_eq!(update.rejected, 0);
        assert!(board.is_empty());
    }

    #[test]
    fn a_first_block_within_the_second_is_a_dsack() {
        // RFC 2883 §4.2: a duplicate of data above the cumulative ACK, already SACKed.
        let mut board = Scoreboard::default();
        let max = seq(10 * MSS);
        board.update(UNA, UNA, max, &[(seq(2 * MSS), seq(5 * MSS))]);
        let update = board.update(
            UNA,
            UNA,
            max,
            &[(seq(3 * MSS), seq(4 * MSS)), (seq(2 * MSS), seq(5 * MSS))],
        );
        assert_eq!(update.dsack, Some((seq(3 * MSS), seq(4 * MSS))));
        assert_eq!((update.newly_sacked, update.rejected), (0, 0));
        assert_eq!(board.ranges(), vec![(seq(2 * MSS), seq(5 * MSS))]);
    }

    #[test]
    fn the_blocks_of_an_overtaken_ack_are_no_dsack() {
        // An ACK of 1·MSS SACKing 2..3·MSS and 4..6·MSS arrives after newer ACKs moved SND.UNA
        // to 5·MSS: its blocks are old news, not duplicates; what lies above SND.UNA counts.
        let mut board = Scoreboard::default();
        let update = board.update(
            seq(5 * MSS),
            seq(MSS),
            seq(10 * MSS),
            &[(seq(2 * MSS), seq(3 * MSS)), (seq(4 * MSS), seq(6 * MSS))],
        );
        assert_eq!(update.dsack, None);
        assert_eq!((update.newly_sacked, update.rejected), (MSS, 0));
        assert_eq!(board.ranges(), vec![(seq(5 * MSS), seq(6 * MSS))]);
        // Its first block below its own cumulative ACK is still a D-SACK.
        let update = board.update(seq(5 * MSS), seq(MSS), seq(10 * MSS), &[(seq(0), seq(MSS))]);
        assert_eq!(update.dsack, Some((seq(0), seq(MSS))));
    }

    #[test]
    fn blocks_merge_and_the_scoreboard_stays_bounded() {
        let mut board = Scoreboard::default();
        let max = seq(1_000 * MSS);
        board.update(UNA, UNA, max, &[(seq(2 * MSS), seq(3 * MSS))]);
        board.update(UNA, UNA, max, &[(seq(4 * MSS), seq(5 * MSS))]);
        // Bridges the two: one range.
        board.update(UNA, UNA, max, &[(seq(3 * MSS), seq(4 * MSS))]);
        assert_eq!(board.ranges(), vec![(seq(2 * MSS), seq(5 * MSS))]);
        // A peer SACKing a thousand disjoint single bytes costs no more than the bound.
        for i in 0..1_000 {
            let at = seq(6 * MSS + 2 * i);
            board.update(UNA, UNA, max, &[(at, at + 1)]);
        }
        assert_eq!(board.ranges().len(), MAX_SACKED_RANGES);
        // The cumulative ACK passing a range forgets it.
        board.trim(seq(3 * MSS));
        assert_eq!(board.ranges()[0], (seq(3 * MSS), seq(5 * MSS)));
    }

    #[test]
    fn holes_and_is_lost() {
        let mut board = Scoreboard::default();
        let max = seq(10 * MSS);
        board.update(
            UNA,
            UNA,
            max,
            &[(seq(MSS), seq(2 * MSS)), (seq(3 * MSS), seq(6 * MSS))],
        );
        let holes: Vec<_> = board.holes(UNA, max).collect();
        assert_eq!(
            holes,
            vec![
                (UNA, seq(MSS)),
                (seq(2 * MSS), seq(3 * MSS)),
                (seq(6 * MSS), max)
            ]
        );
        // RFC 6675 IsLost: more than (DupThresh − 1)·SMSS SACKed above.
        assert!(board.is_lost(seq(MSS), MSS));
        assert!(board.is_lost(seq(3 * MSS), MSS));
        assert!(!board.is_lost(max, MSS));
    }

    fn duplicate<'a>(blocks: &'a [(SeqNum, SeqNum)], max: SeqNum) -> AckContext<'a> {
        AckContext {
            snd_una: UNA,
            ack: UNA,
            snd_max: max,
            duplicate: true,
            sack_blocks: blocks,
            mss: MSS,
            acked: Acked {
                bytes: 0,
                flight: max - UNA,
                cwnd_limited: true,
                srtt: None,
            },
            echoed: None,
            new_data_waits: false,
        }
    }

    #[test]
    fn a_peer_that_sacks_but_never_acknowledges_gets_each_hole_once() {
        // A lying (or reneging) peer SACKs everything above SND.UNA for ever and never moves
        // the cumulative ACK: the hole is retransmitted once in this recovery, the rescue
        // once, then nothing until the retransmission timer (whose limit ends it).
        let mut recovery = LossRecovery::new(UNA, false, false);
        recovery.set_sack(true);
        let mut cc = NewReno::new(MSS);
        let max = seq(20 * MSS);
        let blocks = [(seq(MSS), seq(19 * MSS))];
        let mut sent = Vec::new();
        for _ in 0..1_000 {
            recovery.on_ack(Instant::ZERO, &duplicate(&blocks, max), &mut cc);
            while let Some(r) = recovery.next_retransmission(UNA, max, MSS, false) {
                recovery.on_retransmitted(r);
                recovery.on_transmit(Instant::ZERO, r.seq, r.seq + r.len, MSS);
                sent.push(r);
                assert!(sent.len() < 10, "retransmitting for ever: {sent:?}");
            }
        }
        assert_eq!(recovery.state(), CongestionState::Recovery);
        assert_eq!(
            sent,
            vec![
                Retransmission {
                    seq: UNA,
                    len: MSS,
                    rescue: false
                },
                Retransmission {
                    seq: seq(19 * MSS),
                    len: MSS,
                    rescue: true
                },
            ]
        );
        assert_eq!(recovery.counters().fast_recoveries, 1);
    }

    #[test]
    fn pipe_counts_what_is_in_the_network() {
        // RFC 6675 §4 SetPipe: ten segments out, the 1st and 3rd unSACKed below three SACKed
        // ones (lost), the last four above every SACK (not lost), the 1st retransmitted.
        let mut recovery = LossRecovery::new(UNA, false, false);
        recovery.set_sack(true);
        let mut cc = NewReno::new(MSS);
        let max = seq(10 * MSS);
        let blocks = [(seq(MSS), seq(2 * MSS)), (seq(3 * MSS), seq(6 * MSS))];
        for _ in 0..3 {
            recovery.on_ack(Instant::ZERO, &duplicate(&blocks, max), &mut cc);
        }
        assert_eq!(recovery.state(), CongestionState::Recovery);
        assert_eq!(recovery.pipe(UNA, max, MSS), 4 * MSS);
        assert_eq!(recovery.lost_bytes(UNA, max, MSS), 2 * MSS);
        let first = recovery.next_retransmission(UNA, max, MSS, false).unwrap();
        assert_eq!(first.seq, UNA);
        recovery.on_retransmitted(first);
        recovery.on_transmit(Instant::ZERO, first.seq, first.seq + first.len, MSS);
        assert_eq!(recovery.pipe(UNA, max, MSS), 5 * MSS);
        // cwnd = ssthresh = FlightSize / 2 = 5 segments: no room for the second hole yet.
        assert_eq!(cc.window(), 5 * MSS);
        assert_eq!(recovery.next_retransmission(UNA, max, MSS, false), None);
    }

    /// Twenty segments out at t = 0 with RACK, then ACKs at 20 ms each SACKing one more
    /// segment above a lost first one.
    fn sacks_of(count: u32) -> Vec<(SeqNum, SeqNum)> {
        vec![(seq(MSS), seq((1 + count) * MSS))]
    }

    #[test]
    fn prr_spreads_the_reduction_over_the_recovery() {
        // RFC 6937 §3: while pipe > ssthresh, sndcnt = ⌈prr_delivered · ssthresh / RecoverFS⌉
        // − prr_out: with ssthresh half the flight, one segment out per two delivered, not
        // nothing until the pipe has drained by half (RFC 6675) nor a burst.
        let mut recovery = LossRecovery::new(UNA, true, false);
        recovery.set_sack(true);
        let mut cc = NewReno::new(MSS);
        let max = seq(20 * MSS);
        recovery.on_transmit(Instant::ZERO, UNA, max, MSS);
        let mut sent = 0u32;
        let mut snd_nxt = max;
        let mut delivered = 0u32;
        for count in 1..=12 {
            let blocks = sacks_of(count);
            recovery.on_ack(
                Instant::from_millis(20),
                &duplicate(&blocks, snd_nxt),
                &mut cc,
            );
            if recovery.state() != CongestionState::Recovery {
                continue;
            }
            // prr_delivered counts from the ACK that starts the recovery.
            delivered += MSS;
            while let Some(r) = recovery.next_retransmission(UNA, snd_nxt, MSS, false) {
                recovery.on_retransmitted(r);
                recovery.on_transmit(Instant::from_millis(20), r.seq, r.seq + r.len, MSS);
                sent += 1;
            }
            while recovery.send_room(cc.window(), UNA, snd_nxt, MSS) >= MSS {
                recovery.on_transmit(Instant::from_millis(20), snd_nxt, snd_nxt + MSS, MSS);
                snd_nxt += MSS;
                sent += 1;
            }
            // The fast retransmit goes regardless; after it, PRR's proportion.
            let allowed = (u64::from(delivered) * u64::from(cc.ssthresh()))
                .div_ceil(20 * u64::from(MSS)) as u32;
            assert_eq!(sent, (allowed / MSS).max(1), "after {count} SACKed");
        }
        assert_eq!(recovery.counters().fast_recoveries, 1);
        assert_eq!(cc.ssthresh(), 10 * MSS);
    }

    #[test]
    fn only_dsacks_of_its_own_retransmissions_undo_a_recovery() {
        let mut recovery = LossRecovery::new(UNA, true, false);
        recovery.set_sack(true);
        let mut cc = NewReno::new(MSS);
        let max = seq(20 * MSS);
        recovery.on_transmit(Instant::ZERO, UNA, max, MSS);
        recovery.on_ack(
            Instant::from_millis(20),
            &duplicate(&sacks_of(3), max),
            &mut cc,
        );
        assert_eq!(recovery.state(), CongestionState::Recovery);
        let prior = (10 * MSS, u32::MAX);
        assert_eq!(cc.ssthresh(), 10 * MSS, "half the flight of 20");
        let r = recovery.next_retransmission(UNA, max, MSS, false).unwrap();
        recovery.on_retransmitted(r);
        recovery.on_transmit(Instant::from_millis(20), r.seq, r.seq + r.len, MSS);
        // The original arrives: everything up to the 5th segment acknowledged.
        let mut ack = duplicate(&[], max);
        ack.ack = seq(4 * MSS);
        ack.duplicate = false;
        recovery.on_ack(Instant::from_millis(21), &ack, &mut cc);
        // A D-SACK of something it did not retransmit changes nothing.
        let other = [(seq(2 * MSS), seq(3 * MSS))];
        let mut dsack = duplicate(&other, max);
        dsack.snd_una = seq(4 * MSS);
        dsack.ack = seq(4 * MSS);
        recovery.on_ack(Instant::from_millis(22), &dsack, &mut cc);
        assert_eq!(recovery.counters().spurious_recoveries_undone, 0);
        // Its retransmission reported twice: undone.
        let own = [(UNA, seq(MSS))];
        let mut dsack = duplicate(&own, max);
        dsack.snd_una = seq(4 * MSS);
        dsack.ack = seq(4 * MSS);
        recovery.on_ack(Instant::from_millis(40), &dsack, &mut cc);
        assert_eq!(recovery.counters().spurious_recoveries_undone, 1);
        assert_eq!((cc.window(), cc.ssthresh()), prior);
        assert_ne!(recovery.state(), CongestionState::Recovery);
    }

    /// An ordinary flight, sent and acknowledged with SACK and RACK on, leaves nothing boxed
    /// behind: no counters (nothing was counted), no scoreboard, no RACK flight, no PRR.
    #[test]
    fn an_ordinary_flight_leaves_nothing_allocated() {
        let mut recovery = LossRecovery::new(UNA, true, true);
        recovery.set_sack(true);
        let mut cc = NewReno::new(MSS);
        let max = seq(4 * MSS);
        recovery.on_transmit(Instant::ZERO, UNA, max, MSS);
        let mut ack = duplicate(&[], max);
        ack.ack = max;
        ack.duplicate = false;
        ack.acked.bytes = 4 * MSS;
        recovery.on_ack(Instant::from_millis(10), &ack, &mut cc);
        assert_eq!(recovery.state(), CongestionState::Open);
        assert!(recovery.counters.is_none(), "{:?}", recovery.counters);
        assert!(recovery.scoreboard.ranges.is_none());
        assert!(recovery.prr.is_none() && recovery.undo.is_none());
        assert_eq!(recovery.rack.pipe(), 0);
        assert_eq!(recovery.counters(), RecoveryCounters::default());
    }
}
