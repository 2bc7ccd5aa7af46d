//! RACK (RFC 8985 §6): time-based loss detection from per-segment transmit times.
//!
//! Every segment sent is kept with its transmit time (`xmit_ts`) until the cumulative ACK
//! passes it. An ACK that delivers (acknowledges or SACKs) a segment tells the time the most
//! recently sent delivered segment left (`RACK.xmit_ts`): any segment sent earlier and still
//! undelivered one RTT plus a reordering window later is lost (§6.2 step 5). A retransmission
//! gets a new `xmit_ts`, so a lost retransmission is detected the same way, without waiting
//! for the retransmission timer. When a segment is not yet overdue, the reorder timer
//! (§6.2, "RACK reordering timer") fires when it would be.
//!
//! **Against the duplicate-ACK threshold** (RFC 8985 §6.2 step 4, RFC 6675's IsLost):
//! until reordering has been seen on the connection, the reordering window is zero once
//! DupThresh (3) segments are SACKed or while in recovery — RACK then declares a hole lost
//! exactly when three segments sent after it have been SACKed, as RFC 6675's IsLost would,
//! or earlier, after min_RTT/4, with fewer SACKed (a short flight or a tail). Once reordering
//! has been seen (a segment delivered below the highest delivered one without having been
//! retransmitted) the window is min_RTT/4 whatever the SACK count, so reordering shorter than
//! that costs no retransmission; each D-SACK round multiplies the window (up to SRTT), and 16
//! recoveries without one bring it back (§6.2 step 4). That is Linux's behaviour too
//! (`tcp_rack_reo_wnd`: without `rack.reord`, zero once `sacked_out >= tp->reordering` or in
//! recovery; with RACK on, Linux's own dupthresh marking, `tcp_update_scoreboard`, is
//! skipped). [`super::LossRecovery`] with RACK therefore starts recovery only on a RACK loss;
//! the duplicate-ACK count remains the trigger without SACK (NewReno, RFC 6582), where RACK
//! cannot see which segments arrived.
//!
//! The per-segment list is bounded by what the send buffer holds in flight, one entry per
//! segment; SACK blocks never create entries (a misaligned block leaves a segment
//! undelivered, never split), so a lying peer cannot grow it.

use core::time::Duration;
use std::collections::VecDeque;

use rawtcp_wire::SeqNum;

use super::DUP_THRESH;
use crate::Instant;

/// RFC 8985 §6.2 step 4: recoveries without a D-SACK before the multiplier returns to 1.
const REO_WND_PERSIST: u32 = 16;

/// One segment sent and not yet cumulatively acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SentSegment {
    start: SeqNum,
    end: SeqNum,
    /// When it (last) went out.
    xmit_ts: Instant,
    retransmitted: bool,
    /// The peer SACKed all of it.
    sacked: bool,
    /// RACK (or the retransmission timer) declared it lost; cleared when it goes again.
    lost: bool,
}

/// What one ACK told RACK.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RackAck<'a> {
    /// SND.UNA after this ACK.
    pub(crate) snd_una: SeqNum,
    /// SND.MAX (the RFC's SND.NXT: one past the highest sequence number sent).
    pub(crate) snd_max: SeqNum,
    /// The peer's SACKed ranges after this ACK, sorted.
    pub(crate) sacked: &'a [(SeqNum, SeqNum)],
    /// This ACK carried a D-SACK block.
    pub(crate) dsack: bool,
    /// Fast recovery or loss (after a timeout) is under way.
    pub(crate) in_recovery: bool,
    pub(crate) srtt: Option<Duration>,
    /// When the segment whose timestamp this ACK echoes was sent (RFC 7323), if known.
    pub(crate) echoed: Option<Instant>,
}

/// RACK's state (RFC 8985 §6.1). What concerns the segments in flight is boxed and goes
/// when the cumulative ACK covers everything sent (most connections sit idle most of the
/// time); what outlives an idle period stays inline, the durations as microseconds (the
/// engine's clock has no finer tick; a round trip over 71 minutes saturates).
#[derive(Debug, Clone)]
pub(crate) struct Rack {
    flight: Option<Box<Flight>>,
    /// The most segments the last flight held at once: the next one's list is allocated that
    /// large, rather than grown step by step again (a bulk sender whose peer acknowledges
    /// each round whole drains and refills its flight every round trip).
    last_flight_peak: u32,
    /// RACK.rtt: the round trip of the most recently sent segment delivered. Kept across an
    /// idle period: a retransmission timeout before the next delivery uses it (§6.3).
    rtt_us: u32,
    /// RACK.min_RTT: the smallest unambiguous round trip seen (Linux filters over five
    /// minutes; a connection's lifetime minimum is the RFC's "recent minimum" taken widely).
    min_rtt_us: Option<u32>,
    /// RACK.reo_wnd as last computed.
    reo_wnd_us: u32,
    /// RACK.reordering_seen.
    reordering_seen: bool,
    /// RACK.reo_wnd_mult.
    reo_wnd_mult: u32,
    /// RACK.reo_wnd_persist.
    reo_wnd_persist: u32,
    /// RACK.dsack_round: the D-SACK round ends when SND.UNA passes it.
    dsack_round: Option<SeqNum>,
}

/// RACK's state about what is in flight. Once everything sent is acknowledged none of it
/// matters: the next segment delivered is sent after every earlier one, so it becomes
/// RACK.xmit_ts / RACK.end_seq and RACK.fack whatever they were.
///
/// Two counts of `segments` are kept as their marks change, so that an ACK needs no walk of
/// the whole flight (about 180 segments in a bulk transfer over a LAN) to learn them;
/// [`Flight::count`] walks it to check them in debug builds.
#[derive(Debug, Clone, Default)]
struct Flight {
    segments: VecDeque<SentSegment>,
    /// Segments SACKed (Linux's sacked_out): what step 4 compares with DupThresh.
    sacked: u32,
    /// Segments marked lost, neither SACKed nor sent again since (Linux's lost_out less
    /// what was retransmitted).
    lost: u32,
    /// RACK.xmit_ts and RACK.end_seq: the most recently sent segment delivered.
    latest: Option<(Instant, SeqNum)>,
    /// RACK.fack: the highest end of a delivered segment.
    fack: Option<SeqNum>,
    /// When the reorder timer is due, if a segment awaits its verdict.
    reorder_deadline: Option<Instant>,
    /// The most segments held at once.
    peak: u32,
}

impl Default for Rack {
    fn default() -> Rack {
        Rack {
            flight: None,
            last_flight_peak: 0,
            rtt_us: 0,
            min_rtt_us: None,
            reo_wnd_us: 0,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: REO_WND_PERSIST,
            dsack_round: None,
        }
    }
}

/// RFC 8985 §6.2 RACK_sent_after: `t1` later than `t2`, or the same time and further on.
fn sent_after(t1: Instant, end1: SeqNum, t2: Instant, end2: SeqNum) -> bool {
    t1 > t2 || (t1 == t2 && end1 > end2)
}

fn duration(micros: u32) -> Duration {
    Duration::from_micros(u64::from(micros))
}

impl SentSegment {
    /// What it adds to [`Flight::sacked`] and [`Flight::lost`].
    fn counted(&self) -> (u32, u32) {
        (u32::from(self.sacked), u32::from(self.lost && !self.sacked))
    }
}

impl Flight {
    /// `sacked` and `lost` as a walk of the segments finds them.
    fn count(&self) -> (u32, u32) {
        self.segments.iter().fold((0, 0), |(sacked, lost), s| {
            let (s, l) = s.counted();
            (sacked + s, lost + l)
        })
    }

    /// The counts kept match the segments' marks: checked in debug builds (every test that
    /// runs the engine), after each change of a mark.
    fn debug_check(&self) {
        debug_assert_eq!(
            (self.sacked, self.lost),
            self.count(),
            "RACK's flight counts"
        );
    }

    /// `segment` leaves the list, or its marks are about to change: what it counted goes.
    fn uncount(&mut self, segment: &SentSegment) {
        let (sacked, lost) = segment.counted();
        // Saturating: debug builds check the counts against the list after every change;
        // a release build never wraps one to four billion if they ever drift.
        self.sacked = self.sacked.saturating_sub(sacked);
        self.lost = self.lost.saturating_sub(lost);
    }

    /// Cuts the segment holding `seq` in two there (a retransmission of part of it).
    fn split_at(&mut self, seq: SeqNum) {
        let i = self.segments.partition_point(|s| s.end <= seq);
        if let Some(&segment) = self.segments.get(i)
            && segment.start < seq
        {
            // Both halves carry its marks.
            let (sacked, lost) = segment.counted();
            self.sacked += sacked;
            self.lost += lost;
            self.segments[i].end = seq;
            self.segments.insert(
                i + 1,
                SentSegment {
                    start: seq,
                    ..segment
                },
            );
        }
    }

    fn bytes(&self, which: impl Fn(&SentSegment) -> bool) -> u32 {
        self.segments
            .iter()
            .filter(|s| which(s))
            .map(|s| s.end - s.start)
            .sum()
    }
}

impl Rack {
    /// [start, end) went out at `now`, cut into segments of at most `mss`; what of it was
    /// sent before is a retransmission.
    pub(crate) fn on_transmit(&mut self, now: Instant, start: SeqNum, end: SeqNum, mss: u32) {
        if start >= end {
            return;
        }
        let peak = self.last_flight_peak as usize;
        let flight = self.flight.get_or_insert_with(|| {
            Box::new(Flight {
                segments: VecDeque::with_capacity(peak),
                ..Flight::default()
            })
        });
        let sent_end = flight.segments.back().map_or(start, |s| s.end);
        if start < sent_end {
            flight.split_at(start);
            flight.split_at(end.min(sent_end));
            let (mut sacked, mut lost) = (0, 0);
            for segment in flight.segments.iter_mut() {
                if segment.start >= start && segment.end <= end {
                    let (s, l) = segment.counted();
                    sacked += s;
                    lost += l;
                    segment.xmit_ts = now;
                    segment.retransmitted = true;
                    segment.lost = false;
                    segment.sacked = false;
                }
            }
            flight.sacked = flight.sacked.saturating_sub(sacked);
            flight.lost = flight.lost.saturating_sub(lost);
            flight.debug_check();
        }
        let mut at = start.max(sent_end);
        if at >= end {
            return;
        }
        while at < end {
            let next = if end - at > mss { at + mss } else { end };
            flight.segments.push_back(SentSegment {
                start: at,
                end: next,
                xmit_ts: now,
                retransmitted: false,
                sacked: false,
                lost: false,
            });
            at = next;
        }
        let held = u32::try_from(flight.segments.len()).unwrap_or(u32::MAX);
        flight.peak = flight.peak.max(held);
    }

    /// RFC 8985 §6.2 steps 1-5 for one ACK: how many segments were newly marked lost.
    pub(crate) fn on_ack(&mut self, now: Instant, ack: &RackAck<'_>) -> u32 {
        // Taken out while it is worked on, so that steps 1-3 may touch both it and the
        // state that outlives it; an ACK with nothing in flight allocates nothing.
        let mut flight = self.flight.take();
        if let Some(flight) = flight.as_deref_mut() {
            self.deliver(now, flight, ack);
        }
        // Step 4: the reordering window, adapted by D-SACK rounds.
        if self.dsack_round.is_some_and(|round| ack.snd_una >= round) {
            self.dsack_round = None;
        }
        if ack.dsack && self.dsack_round.is_none() {
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1);
            self.dsack_round = Some(ack.snd_max);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
        let sacked = flight.as_ref().map_or(0, |f| f.sacked);
        self.update_reo_wnd(sacked, ack.in_recovery, ack.srtt);
        let Some(mut flight) = flight else {
            return 0;
        };
        if flight.segments.is_empty() {
            // Everything sent is acknowledged: the flight's memory goes back; the next send
            // allocates it again, as large as this one grew.
            self.last_flight_peak = flight.peak;
            return 0;
        }
        // Step 5 marks only segments neither SACKed nor marked already.
        let marked = self.detect_loss(&mut flight, now);
        flight.debug_check();
        self.flight = Some(flight);
        marked
    }

    /// Steps 1-3: what this ACK delivered, cumulatively or by SACK.
    fn deliver(&mut self, now: Instant, flight: &mut Flight, ack: &RackAck<'_>) {
        while let Some(&front) = flight.segments.front() {
            if front.end > ack.snd_una {
                if front.start < ack.snd_una {
                    flight.segments[0].start = ack.snd_una;
                }
                break;
            }
            flight.segments.pop_front();
            flight.uncount(&front);
            if !front.sacked {
                // Steps 1-3 at once: no list to allocate on every cumulative ACK.
                self.on_delivered(now, flight, front, ack.echoed);
            }
        }
        // Without SACKed ranges (every ACK while nothing is missing) nothing more.
        let Some(&(first_start, _)) = ack.sacked.first() else {
            return;
        };
        // Newly SACKed segments are collected first (the walk borrows the list); a Vec
        // allocates only when one is found.
        let mut delivered: Vec<SentSegment> = Vec::new();
        // Newly SACKed: a merge walk of the segments against the sorted ranges, from the
        // first segment that can lie in the lowest range (none below it can be in any).
        let from = flight.segments.partition_point(|s| s.end <= first_start);
        let mut ranges = ack.sacked.iter().peekable();
        for segment in flight.segments.range_mut(from..) {
            while ranges.next_if(|&&(_, end)| end <= segment.start).is_some() {}
            let Some(&&(start, end)) = ranges.peek() else {
                break;
            };
            if !segment.sacked && start <= segment.start && segment.end <= end {
                segment.sacked = true;
                delivered.push(*segment);
            }
        }
        // A segment newly SACKed counts as SACKed, no longer as lost.
        for segment in &delivered {
            flight.sacked += 1;
            flight.lost = flight.lost.saturating_sub(u32::from(segment.lost));
        }
        for segment in delivered {
            self.on_delivered(now, flight, segment, ack.echoed);
        }
    }

    /// Steps 1-3 for one newly delivered segment.
    fn on_delivered(
        &mut self,
        now: Instant,
        flight: &mut Flight,
        segment: SentSegment,
        echoed: Option<Instant>,
    ) {
        // now − xmit_ts, saturating, in the clock's microseconds.
        let rtt = u32::try_from(now.as_micros().saturating_sub(segment.xmit_ts.as_micros()))
            .unwrap_or(u32::MAX);
        if segment.retransmitted {
            // Step 2: which copy was delivered is ambiguous; only a timestamp echoing the
            // retransmission (millisecond clock: one tick of slack), or an RTT no shorter
            // than the minimum, says it was the retransmission.
            let echoes_original =
                echoed.is_some_and(|e| e + Duration::from_millis(1) < segment.xmit_ts);
            if echoes_original || self.min_rtt_us.is_some_and(|min| rtt < min) {
                return;
            }
        } else {
            // Step 1.
            self.min_rtt_us = Some(self.min_rtt_us.map_or(rtt, |min| min.min(rtt)));
        }
        self.rtt_us = rtt;
        if flight
            .latest
            .is_none_or(|(ts, end)| sent_after(segment.xmit_ts, segment.end, ts, end))
        {
            flight.latest = Some((segment.xmit_ts, segment.end));
        }
        // Step 3: delivered below the highest delivered, never retransmitted: reordering.
        match flight.fack {
            Some(fack) if segment.end <= fack => {
                if segment.end < fack && !segment.retransmitted {
                    self.reordering_seen = true;
                }
            }
            _ => flight.fack = Some(segment.end),
        }
    }

    /// RFC 8985 §6.2 step 4, RACK_update_reo_wnd, with `sacked` segments SACKed.
    ///
    /// In microseconds, as the clock (it runs on every ACK, with or without a flight):
    /// min_RTT · mult / 4 rounded down, and SRTT in whole microseconds, are what the same
    /// sum in `Duration` truncates to.
    fn update_reo_wnd(&mut self, sacked: u32, in_recovery: bool, srtt: Option<Duration>) {
        let reo_wnd = if !self.reordering_seen && (in_recovery || sacked >= DUP_THRESH) {
            0
        } else {
            // u32 · u32 fits in u64.
            let window = u64::from(self.min_rtt_us.unwrap_or(0)) * u64::from(self.reo_wnd_mult) / 4;
            srtt.map_or(window, |srtt| {
                window.min(u64::try_from(srtt.as_micros()).unwrap_or(u64::MAX))
            })
        };
        self.reo_wnd_us = u32::try_from(reo_wnd).unwrap_or(u32::MAX);
    }

    /// RACK.rtt + RACK.reo_wnd, in microseconds: how long after a segment went out a later
    /// delivery makes it lost.
    fn wait_micros(&self) -> u64 {
        u64::from(self.rtt_us) + u64::from(self.reo_wnd_us)
    }

    /// RFC 8985 §6.2 step 5, RACK_detect_loss: marks what is overdue and sets the reorder
    /// timer for what is not yet. Returns how many segments were newly marked lost.
    fn detect_loss(&self, flight: &mut Flight, now: Instant) -> u32 {
        flight.reorder_deadline = None;
        let Some((latest_ts, latest_end)) = flight.latest else {
            return 0;
        };
        let wait = self.wait_micros();
        let mut marked = 0;
        let mut deadline: Option<Instant> = None;
        for segment in flight.segments.iter_mut() {
            if !sent_after(latest_ts, latest_end, segment.xmit_ts, segment.end) {
                // The list is in sequence order, and a segment first goes out after every
                // segment below it; only a retransmission moves its `xmit_ts` on, never back.
                // So once a segment sent only once is no earlier than RACK.xmit_ts, nor is
                // any segment after it: the walk ends there, after the one or two segments
                // an ordinary ACK leaves to look at rather than the whole flight.
                if !segment.retransmitted {
                    break;
                }
                continue;
            }
            if segment.sacked || segment.lost {
                continue;
            }
            let due = Instant::from_micros(segment.xmit_ts.as_micros().saturating_add(wait));
            if due <= now {
                segment.lost = true;
                marked += 1;
            } else {
                deadline = Some(deadline.map_or(due, |d| d.max(due)));
            }
        }
        flight.lost += marked;
        flight.reorder_deadline = deadline;
        marked
    }

    /// When the reorder timer must fire (RFC 8985 §6.2: the largest remaining wait).
    pub(crate) fn reorder_deadline(&self) -> Option<Instant> {
        self.flight.as_ref().and_then(|f| f.reorder_deadline)
    }

    /// The reorder timer fired: RACK_detect_loss again. Returns how many segments were newly
    /// marked lost.
    pub(crate) fn on_reorder_timeout(&mut self, now: Instant) -> u32 {
        let Some(mut flight) = self.flight.take() else {
            return 0;
        };
        let marked = self.detect_loss(&mut flight, now);
        flight.debug_check();
        self.flight = Some(flight);
        marked
    }

    /// RFC 8985 §6.3 on a retransmission timeout: the first segment and everything sent more
    /// than RACK.rtt + reo_wnd ago are lost. RFC 2018 §8: SACK information is not trusted
    /// after a timeout.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        let wait = self.wait_micros();
        let Some(flight) = self.flight.as_deref_mut() else {
            return;
        };
        let mut lost = 0;
        for (i, segment) in flight.segments.iter_mut().enumerate() {
            segment.sacked = false;
            if i == 0 || segment.xmit_ts.as_micros().saturating_add(wait) <= now.as_micros() {
                segment.lost = true;
            }
            lost += u32::from(segment.lost);
        }
        flight.sacked = 0;
        flight.lost = lost;
        flight.reorder_deadline = None;
        flight.debug_check();
    }

    /// The timeout proved spurious (F-RTO): nothing it marked was lost.
    pub(crate) fn clear_lost(&mut self) {
        if let Some(flight) = self.flight.as_deref_mut() {
            for segment in flight.segments.iter_mut() {
                segment.lost = false;
            }
            flight.lost = 0;
        }
    }

    /// RFC 8985 §6.2 step 4: fast or RTO recovery ended.
    pub(crate) fn on_recovery_end(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// Whether any undelivered segment is marked lost (and not yet sent again).
    pub(crate) fn has_lost(&self) -> bool {
        self.flight.as_ref().is_some_and(|f| f.lost > 0)
    }

    /// The lowest undelivered segment marked lost, as (start, end).
    pub(crate) fn first_lost(&self) -> Option<(SeqNum, SeqNum)> {
        self.flight.as_ref().filter(|f| f.lost > 0).and_then(|f| {
            f.segments
                .iter()
                .find(|s| s.lost && !s.sacked)
                .map(|s| (s.start, s.end))
        })
    }

    /// Bytes marked lost and not delivered.
    pub(crate) fn lost_bytes(&self) -> u32 {
        self.flight
            .as_ref()
            .map_or(0, |f| f.bytes(|s| s.lost && !s.sacked))
    }

    /// Bytes in the network as Linux counts them (packets_out − sacked_out − lost_out +
    /// retrans_out): sent, not delivered, not lost; a retransmission is in flight again.
    pub(crate) fn pipe(&self) -> u32 {
        self.flight
            .as_ref()
            .map_or(0, |f| f.bytes(|s| !s.lost && !s.sacked))
    }

    pub(crate) fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    pub(crate) fn reo_wnd(&self) -> Duration {
        duration(self.reo_wnd_us)
    }

    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt_us.map(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Rack {
        /// The segments in flight, in order.
        fn segments(&self) -> Vec<SentSegment> {
            self.flight
                .as_ref()
                .map(|f| f.segments.iter().copied().collect())
                .unwrap_or_default()
        }
    }

    const MSS: u32 = 1000;
    /// Near the 2³² wrap, so that every comparison is tested across it.
    const BASE: SeqNum = SeqNum::new(u32::MAX - 2_500);

    fn seq(segment: u32) -> SeqNum {
        BASE + segment * MSS
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// Ten segments sent 1 ms apart from t = 0; the round trip is 20 ms.
    fn ten_sent() -> Rack {
        let mut rack = Rack::default();
        for i in 0..10 {
            rack.on_transmit(ms(u64::from(i)), seq(i), seq(i + 1), MSS);
        }
        rack
    }

    fn ack<'a>(snd_una: SeqNum, sacked: &'a [(SeqNum, SeqNum)]) -> RackAck<'a> {
        RackAck {
            snd_una,
            snd_max: seq(10),
            sacked,
            dsack: false,
            in_recovery: false,
            srtt: Some(Duration::from_millis(20)),
            echoed: None,
        }
    }

    #[test]
    fn three_segments_sacked_above_a_hole_mark_it_lost_at_once() {
        // No reordering seen: the window is zero from DupThresh SACKed segments on, as
        // RFC 6675's IsLost (RFC 8985 §6.2 step 4).
        let mut rack = ten_sent();
        assert_eq!(rack.on_ack(ms(20), &ack(seq(1), &[])), 0);
        assert_eq!(rack.on_ack(ms(22), &ack(seq(1), &[(seq(2), seq(3))])), 0);
        assert_eq!(rack.on_ack(ms(23), &ack(seq(1), &[(seq(2), seq(4))])), 0);
        assert_eq!(rack.reo_wnd(), Duration::from_millis(5), "min_RTT / 4");
        assert!(rack.on_ack(ms(24), &ack(seq(1), &[(seq(2), seq(5))])) > 0);
        assert_eq!(rack.reo_wnd(), Duration::ZERO);
        assert_eq!(rack.first_lost(), Some((seq(1), seq(2))));
        assert_eq!(rack.lost_bytes(), MSS);
        // Sent 10, delivered 4, lost 1: five in the network.
        assert_eq!(rack.pipe(), 5 * MSS);
    }

    #[test]
    fn a_segment_is_lost_until_it_goes_again_or_is_sacked() {
        let mut rack = ten_sent();
        let sacked = [(seq(2), seq(5))];
        rack.on_ack(ms(20), &ack(seq(1), &[]));
        assert!(rack.on_ack(ms(24), &ack(seq(1), &sacked)) > 0);
        assert!(rack.has_lost());
        // A later ACK marks nothing new; the hole is still lost.
        assert_eq!(rack.on_ack(ms(25), &ack(seq(1), &sacked)), 0);
        assert!(rack.has_lost());
        // Sent again, it is in flight, not lost.
        rack.on_transmit(ms(25), seq(1), seq(2), MSS);
        assert_eq!(rack.on_ack(ms(26), &ack(seq(1), &sacked)), 0);
        assert!(!rack.has_lost());
        assert_eq!(rack.first_lost(), None);
        // After a timeout everything is lost; what is SACKed since, or acknowledged, is not.
        rack.on_timeout(ms(100));
        assert_eq!(rack.lost_bytes(), 9 * MSS);
        let sacked = [(seq(2), seq(10))];
        rack.on_ack(ms(101), &ack(seq(1), &sacked));
        assert_eq!(rack.first_lost(), Some((seq(1), seq(2))));
        rack.on_ack(ms(102), &ack(seq(2), &sacked));
        assert!(!rack.has_lost());
        assert_eq!(rack.first_lost(), None);
    }

    #[test]
    fn the_reorder_timer_marks_a_hole_lost_when_fewer_than_three_are_sacked() {
        let mut rack = ten_sent();
        rack.on_ack(ms(20), &ack(seq(1), &[]));
        // Segment 2 (sent at 2 ms) SACKed at 22 ms: the hole (sent at 1 ms) is overdue at
        // 1 + RACK.rtt (20) + reo_wnd (5) = 26 ms.
        assert_eq!(rack.on_ack(ms(22), &ack(seq(1), &[(seq(2), seq(3))])), 0);
        assert_eq!(rack.reorder_deadline(), Some(ms(26)));
        assert!(rack.on_reorder_timeout(ms(26)) > 0);
        assert_eq!(rack.first_lost(), Some((seq(1), seq(2))));
        assert_eq!(rack.reorder_deadline(), None);
    }

    #[test]
    fn reordering_within_the_window_marks_nothing_once_seen() {
        let mut rack = ten_sent();
        rack.on_ack(ms(20), &ack(seq(1), &[]));
        // Segment 2 overtakes segment 1, which arrives 1 ms later: reordering seen.
        rack.on_ack(ms(22), &ack(seq(1), &[(seq(2), seq(3))]));
        rack.on_ack(ms(22), &ack(seq(3), &[]));
        assert!(rack.reordering_seen());
        // Now three SACKed above a hole no longer zero the window.
        let sacked = [(seq(4), seq(7))];
        assert_eq!(rack.on_ack(ms(26), &ack(seq(3), &sacked)), 0);
        assert_eq!(rack.reo_wnd(), Duration::from_millis(5));
        assert!(!rack.has_lost());
        // Segment 3 is late by less than the window: delivered, never marked.
        rack.on_ack(ms(27), &ack(seq(7), &[]));
        assert!(!rack.has_lost());
        assert_eq!(rack.reorder_deadline(), None);
    }

    #[test]
    fn reo_wnd_grows_after_a_dsack_and_shrinks_after_sixteen_recoveries() {
        let mut rack = ten_sent();
        rack.on_ack(ms(20), &ack(seq(1), &[]));
        rack.on_ack(ms(22), &ack(seq(1), &[(seq(2), seq(3))]));
        assert_eq!(rack.reo_wnd(), Duration::from_millis(5));
        let second = [(seq(2), seq(3))];
        let mut dsack = ack(seq(1), &second);
        dsack.dsack = true;
        rack.on_ack(ms(22), &dsack);
        assert_eq!(rack.reo_wnd(), Duration::from_millis(10), "2 · min_RTT / 4");
        // A second D-SACK in the same round (SND.UNA below the round's end) adds nothing.
        rack.on_ack(ms(22), &dsack);
        assert_eq!(rack.reo_wnd(), Duration::from_millis(10));
        // Bounded by SRTT.
        for _ in 0..10 {
            rack.dsack_round = None;
            rack.on_ack(ms(22), &dsack);
        }
        assert_eq!(rack.reo_wnd(), Duration::from_millis(20));
        for _ in 0..REO_WND_PERSIST {
            rack.on_recovery_end();
        }
        rack.on_ack(ms(22), &ack(seq(1), &[(seq(2), seq(3))]));
        assert_eq!(rack.reo_wnd(), Duration::from_millis(5));
    }

    #[test]
    fn a_lost_retransmission_is_detected_by_a_later_delivery() {
        let mut rack = ten_sent();
        rack.on_ack(ms(20), &ack(seq(1), &[]));
        let sacked = [(seq(2), seq(5))];
        assert!(rack.on_ack(ms(24), &ack(seq(1), &sacked)) > 0);
        // The hole goes again at 24 ms, then new data at 25 ms.
        rack.on_transmit(ms(24), seq(1), seq(2), MSS);
        assert!(!rack.has_lost());
        rack.on_transmit(ms(25), seq(10), seq(11), MSS);
        // The retransmission is lost too; the segment after it arrives at 45 ms.
        let sacked = [(seq(2), seq(5)), (seq(10), seq(11))];
        let mut later = ack(seq(1), &sacked);
        later.snd_max = seq(11);
        later.in_recovery = true;
        assert!(rack.on_ack(ms(45), &later) > 0);
        assert_eq!(rack.first_lost(), Some((seq(1), seq(2))));
    }

    #[test]
    fn a_retransmission_of_part_of_a_segment_splits_it() {
        let mut rack = Rack::default();
        rack.on_transmit(ms(0), seq(0), seq(4), 4 * MSS);
        rack.on_transmit(ms(5), seq(1), seq(2), MSS);
        let spans: Vec<_> = rack.segments().iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(
            spans,
            vec![(seq(0), seq(1)), (seq(1), seq(2)), (seq(2), seq(4))]
        );
        assert!(rack.segments()[1].retransmitted && !rack.segments()[2].retransmitted);
    }

    #[test]
    fn a_partial_retransmission_of_a_lost_segment_leaves_the_rest_of_it_lost() {
        let mut rack = Rack::default();
        rack.on_transmit(ms(0), seq(0), seq(4), 4 * MSS);
        rack.on_timeout(ms(1000));
        assert_eq!(rack.lost_bytes(), 4 * MSS);
        rack.on_transmit(ms(1000), seq(0), seq(1), MSS);
        // Both parts that did not go again are still lost; the first of them is next.
        assert_eq!(rack.lost_bytes(), 3 * MSS);
        assert_eq!(rack.first_lost(), Some((seq(1), seq(4))));
        rack.on_transmit(ms(1001), seq(2), seq(3), MSS);
        assert_eq!(rack.lost_bytes(), 2 * MSS);
        assert_eq!(rack.first_lost(), Some((seq(1), seq(2))));
        // The peer SACKs the part beyond: only [1, 2) is left lost.
        let sacked = [(seq(3), seq(4))];
        rack.on_ack(ms(1002), &ack(seq(0), &sacked));
        assert_eq!(rack.lost_bytes(), MSS);
        rack.on_ack(ms(1003), &ack(seq(2), &sacked));
        assert!(!rack.has_lost());
    }

    #[test]
    fn a_misaligned_sack_block_neither_splits_nor_delivers() {
        let mut rack = ten_sent();
        let sacked = [(seq(2) + 1, seq(4))];
        rack.on_ack(ms(22), &ack(seq(0), &sacked));
        assert_eq!(rack.segments().len(), 10);
        assert_eq!(rack.segments().iter().filter(|s| s.sacked).count(), 1);
    }

    /// Once the cumulative ACK covers everything sent, the per-flight state is freed (most
    /// connections then sit idle); what outlives it, min_RTT and RACK.rtt, stays, and the
    /// next flight is detected as the first was.
    #[test]
    fn the_flight_goes_when_everything_is_acknowledged_and_its_lessons_stay() {
        let mut rack = ten_sent();
        assert_eq!(rack.on_ack(ms(30), &ack(seq(10), &[])), 0);
        assert!(rack.flight.is_none());
        assert_eq!(
            rack.last_flight_peak, 10,
            "the next flight starts with room for ten"
        );
        assert_eq!(
            rack.min_rtt(),
            Some(Duration::from_millis(21)),
            "sent at 9, acked at 30"
        );
        assert_eq!(rack.pipe(), 0);
        assert_eq!(rack.reorder_deadline(), None);
        // An ACK with nothing in flight allocates nothing.
        assert_eq!(rack.on_ack(ms(31), &ack(seq(10), &[])), 0);
        assert!(rack.flight.is_none());
        // A retransmission timeout before the next delivery still knows RACK.rtt: a
        // segment sent just now is not marked lost (the first one always is).
        rack.on_transmit(ms(100), seq(10), seq(11), MSS);
        rack.on_transmit(ms(101), seq(11), seq(12), MSS);
        assert!(
            rack.flight
                .as_ref()
                .is_some_and(|f| f.segments.capacity() >= 10)
        );
        rack.on_timeout(ms(110));
        assert_eq!(rack.lost_bytes(), MSS, "only the first of the two");
        // This flight held two: the next one starts with room for two, not ten.
        let mut done = ack(seq(12), &[]);
        done.snd_max = seq(12);
        rack.on_ack(ms(120), &done);
        assert_eq!(rack.last_flight_peak, 2);
    }
}
