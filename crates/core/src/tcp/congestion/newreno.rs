//! NewReno's window (RFC 5681 §3.1, RFC 6582 §3.2). The window inflation of fast recovery
//! without SACK is the recovery's business ([`crate::tcp::recovery`]); this is slow start,
//! congestion avoidance and the multiplicative decrease.

use super::{Acked, CongestionAlgorithm, CongestionControl, initial_window};
use crate::Instant;

/// RFC 5681 with RFC 6582's exit from fast recovery.
#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    bytes_acked: u32,
}

impl NewReno {
    /// RFC 5681 §3.1: ssthresh starts arbitrarily high; RFC 6928 the initial window.
    pub(crate) fn new(mss: u32) -> NewReno {
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: u32::MAX,
            bytes_acked: 0,
        }
    }

    /// RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2·SMSS).
    fn halve(&mut self, flight: u32) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.bytes_acked = 0;
    }
}

impl CongestionControl for NewReno {
    fn algorithm(&self) -> CongestionAlgorithm {
        CongestionAlgorithm::NewReno
    }

    fn window(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: Acked) {
        if !acked.cwnd_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 eq. 2 with RFC 3465's L = 1 SMSS: cwnd += min(N, SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.bytes.min(self.mss));
        } else {
            // RFC 5681 §3.1, byte counting: one SMSS once a window's worth is acknowledged.
            self.bytes_acked = self.bytes_acked.saturating_add(acked.bytes);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        // RFC 5681 §3.2 step 2 and RFC 6582 §3.2 step 3: ssthresh halves and cwnd starts
        // from it (the recovery adds the 3·SMSS of inflation while it lasts).
        self.halve(flight);
        self.cwnd = self.ssthresh;
    }

    fn on_recovery_end(&mut self, flight: u32) {
        // RFC 6582 §3.2 step 3, full ACK, option (1): min(ssthresh, max(FlightSize, SMSS) +
        // SMSS), so that no burst follows the recovery.
        self.cwnd = self.ssthresh.min(flight.max(self.mss) + self.mss);
    }

    fn on_timeout(&mut self, _now: Instant, flight: u32) {
        // RFC 5681 eq. 4 and §3.1: cwnd = 1 SMSS (the loss window).
        self.halve(flight);
        self.cwnd = self.mss;
    }

    fn limit_window(&mut self, window: u32) {
        self.cwnd = self.cwnd.min(window.max(self.mss));
    }

    fn undo(&mut self, cwnd: u32, ssthresh: u32) {
        self.cwnd = self.cwnd.max(cwnd);
        self.ssthresh = self.ssthresh.max(ssthresh);
        self.bytes_acked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1460;

    fn acked(bytes: u32) -> Acked {
        Acked {
            bytes,
            flight: 100 * MSS,
            cwnd_limited: true,
            srtt: None,
        }
    }

    #[test]
    fn slow_start_grows_one_smss_per_ack_then_congestion_avoidance_one_per_window() {
        let mut cc = NewReno::new(MSS);
        let now = Instant::ZERO;
        // Slow start from IW = 10 segments: each ACK of a segment adds min(N, SMSS).
        let mut trace = vec![cc.window()];
        for _ in 0..5 {
            cc.on_ack(now, acked(MSS));
            trace.push(cc.window());
        }
        assert_eq!(trace, (10..=15).map(|n| n * MSS).collect::<Vec<_>>());
        // An ACK of two segments adds only one SMSS (RFC 3465, L = 1).
        cc.on_ack(now, acked(2 * MSS));
        assert_eq!(cc.window(), 16 * MSS);
        // A loss: ssthresh = FlightSize / 2 = 8 segments, and cwnd with it.
        cc.on_congestion_event(now, 16 * MSS);
        assert_eq!((cc.ssthresh(), cc.window()), (8 * MSS, 8 * MSS));
        // Congestion avoidance: +1 SMSS after 8 segments' worth, then after 9.
        for _ in 0..7 {
            cc.on_ack(now, acked(MSS));
        }
        assert_eq!(cc.window(), 8 * MSS);
        cc.on_ack(now, acked(MSS));
        assert_eq!(cc.window(), 9 * MSS);
        for _ in 0..8 {
            cc.on_ack(now, acked(MSS));
        }
        assert_eq!(cc.window(), 9 * MSS);
        cc.on_ack(now, acked(MSS));
        assert_eq!(cc.window(), 10 * MSS);
    }

    #[test]
    fn ssthresh_is_never_below_two_segments() {
        let mut cc = NewReno::new(MSS);
        cc.on_congestion_event(Instant::ZERO, 3 * MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        cc.on_timeout(Instant::ZERO, 3 * MSS);
        assert_eq!((cc.ssthresh(), cc.window()), (2 * MSS, MSS));
    }

    #[test]
    fn an_application_limited_sender_does_not_grow() {
        let mut cc = NewReno::new(MSS);
        cc.on_ack(
            Instant::ZERO,
            Acked {
                cwnd_limited: false,
                ..acked(MSS)
            },
        );
        assert_eq!(cc.window(), 10 * MSS);
    }

    #[test]
    fn recovery_ends_without_a_burst() {
        let mut cc = NewReno::new(MSS);
        cc.on_congestion_event(Instant::ZERO, 20 * MSS);
        // Little left in flight: cwnd = FlightSize + SMSS, not the whole ssthresh.
        cc.on_recovery_end(2 * MSS);
        assert_eq!(cc.window(), 3 * MSS);
        cc.on_congestion_event(Instant::ZERO, 20 * MSS);
        cc.on_recovery_end(15 * MSS);
        assert_eq!(cc.window(), 10 * MSS);
    }

    #[test]
    fn restart_after_idle_caps_at_the_restart_window() {
        let mut cc = NewReno::new(MSS);
        for _ in 0..30 {
            cc.on_ack(Instant::ZERO, acked(MSS));
        }
        assert_eq!(cc.window(), 40 * MSS);
        cc.limit_window(initial_window(MSS));
        assert_eq!(cc.window(), 10 * MSS);
    }
}
