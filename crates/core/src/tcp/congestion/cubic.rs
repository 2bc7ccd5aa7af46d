//! CUBIC (RFC 9438): after a loss the window follows W_cubic(t) = C·(t − K)³ + W_max, a
//! cubic through the window before the loss, concave up to it and convex beyond; never less
//! than W_est, what Reno would have reached (the Reno-friendly region, §4.3). Windows are
//! kept in segments as floating point, as the RFC writes them; `window()` gives bytes.

use core::time::Duration;

use super::{Acked, CongestionAlgorithm, CongestionControl, initial_window};
use crate::Instant;

/// RFC 9438 §5: C = 0.4.
const C: f64 = 0.4;
/// RFC 9438 §4.6: β_cubic = 0.7.
const BETA: f64 = 0.7;
/// RFC 9438 §4.3: α_cubic = 3·(1 − β_cubic) / (1 + β_cubic).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// The RTT assumed in the target W_cubic(t + RTT) before one is measured.
const DEFAULT_RTT: Duration = Duration::from_millis(100);

/// RFC 9438 with fast convergence (§4.7) and standard slow start (§4.10).
#[derive(Debug, Clone)]
pub(crate) struct Cubic {
    mss: u32,
    /// Segments.
    cwnd: f64,
    /// Segments; `f64::INFINITY` until the first loss.
    ssthresh: f64,
    /// The window just before the last reduction, segments (W_max, §4.1).
    w_max: f64,
    /// cwnd before the last reduction (cwnd_prior, §4.6), for α_cubic's switch to 1.
    cwnd_prior: f64,
    /// The start of the current congestion avoidance stage (t = 0), set on its first ACK.
    epoch_start: Option<Instant>,
    /// Seconds from the epoch start to W_max (§4.2 eq. 2).
    k: f64,
    /// Reno's estimated window, segments (W_est, §4.3).
    w_est: f64,
}

impl Cubic {
    pub(crate) fn new(mss: u32) -> Cubic {
        Cubic {
            mss,
            cwnd: f64::from(initial_window(mss)) / f64::from(mss),
            ssthresh: f64::INFINITY,
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch_start: None,
            k: 0.0,
            w_est: 0.0,
        }
    }

    /// RFC 9438 §4.2 eq. 1: W_cubic(t), segments, `t` in seconds since the epoch start.
    pub(crate) fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    /// RFC 9438 §4.6 and §4.7: W_max with fast convergence, ssthresh = `flight`·β_cubic
    /// (at least 2 segments); a new congestion avoidance stage starts with the next ACK.
    fn reduce(&mut self, flight: u32) {
        self.epoch_start = None;
        self.w_max = if self.cwnd < self.w_max {
            // §4.7: release bandwidth for a newer flow.
            self.cwnd * (1.0 + BETA) / 2.0
        } else {
            self.cwnd
        };
        self.cwnd_prior = self.cwnd;
        let flight = f64::from(flight) / f64::from(self.mss);
        self.ssthresh = (flight * BETA).max(2.0);
    }

    fn congestion_avoidance(&mut self, now: Instant, acked: Acked) {
        let epoch = *self.epoch_start.get_or_insert_with(|| {
            // §4.2 eq. 2: K = cbrt((W_max − cwnd_epoch) / C); none when above W_max.
            self.k = if self.w_max > self.cwnd {
                ((self.w_max - self.cwnd) / C).cbrt()
            } else {
                self.w_max = self.cwnd;
                0.0
            };
            self.w_est = self.cwnd;
            now
        });
        let t = (now - epoch).as_secs_f64();
        let rtt = acked.srtt.unwrap_or(DEFAULT_RTT).as_secs_f64();
        let segments_acked = f64::from(acked.bytes) / f64::from(self.mss);
        // §4.3: W_est += α_cubic · segments_acked / cwnd; α is 1 once W_est reaches cwnd_prior.
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA
        };
        self.w_est += alpha * segments_acked / self.cwnd;
        if self.w_cubic(t) < self.w_est {
            // §4.3: the Reno-friendly region.
            self.cwnd = self.w_est;
        } else {
            // §4.4-4.5: toward target = W_cubic(t + RTT), within [cwnd, 1.5·cwnd] (eq. 4),
            // by (target − cwnd) / cwnd per acknowledged segment.
            let target = self.w_cubic(t + rtt).clamp(self.cwnd, 1.5 * self.cwnd);
            self.cwnd += (target - self.cwnd) / self.cwnd * segments_acked;
        }
    }
}

impl CongestionControl for Cubic {
    fn algorithm(&self) -> CongestionAlgorithm {
        CongestionAlgorithm::Cubic
    }

    fn window(&self) -> u32 {
        (self.cwnd * f64::from(self.mss)).min(f64::from(u32::MAX)) as u32
    }

    fn ssthresh(&self) -> u32 {
        (self.ssthresh * f64::from(self.mss)).min(f64::from(u32::MAX)) as u32
    }

    fn on_ack(&mut self, now: Instant, acked: Acked) {
        // §5.8: no growth from an application-limited window.
        if !acked.cwnd_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            // §4.10: standard slow start, cwnd += min(N, SMSS) (RFC 5681 eq. 2).
            self.cwnd += f64::from(acked.bytes.min(self.mss)) / f64::from(self.mss);
        } else {
            self.congestion_avoidance(now, acked);
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        // RFC 9438 §4.6: ssthresh = flight_size·β_cubic, where cwnd may stand for
        // flight_size since cwnd grows only while it is the limit (§5.8, `cwnd_limited`);
        // Linux's bictcp_recalc_ssthresh uses cwnd. The larger of the two: the flight at
        // the detecting ACK falls short of the window when that ACK came in one receive
        // batch behind a cumulative ACK the sender had no chance to answer yet (a
        // delayed-ACK receiver acks its in-order data the moment a segment after a hole
        // arrives, then sends a duplicate per segment), and FlightSize·β alone then took
        // the window to about half of itself per loss.
        self.reduce(flight.max(self.window()));
        self.cwnd = self.ssthresh;
    }

    fn on_recovery_end(&mut self, _flight: u32) {}

    fn on_timeout(&mut self, _now: Instant, flight: u32) {
        // §4.8: ssthresh as for a congestion event, then Reno's loss window of one segment.
        self.reduce(flight);
        self.cwnd = 1.0;
    }

    fn limit_window(&mut self, window: u32) {
        let window = f64::from(window.max(self.mss)) / f64::from(self.mss);
        self.cwnd = self.cwnd.min(window);
        self.epoch_start = None;
    }

    fn undo(&mut self, cwnd: u32, ssthresh: u32) {
        // As Linux's tcp_undo_cwnd_reduction with tcp_reno_undo_cwnd: the window and
        // ssthresh come back; W_max stays (a new epoch starts from the restored window).
        let mss = f64::from(self.mss);
        self.cwnd = self.cwnd.max(f64::from(cwnd) / mss);
        let ssthresh = if ssthresh == u32::MAX {
            f64::INFINITY // none yet, as before the first loss
        } else {
            f64::from(ssthresh) / mss
        };
        self.ssthresh = self.ssthresh.max(ssthresh);
        self.epoch_start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn full_window(cc: &Cubic, rtt: Duration) -> Acked {
        Acked {
            bytes: cc.window(),
            flight: cc.window(),
            cwnd_limited: true,
            srtt: Some(rtt),
        }
    }

    /// A loss at W = `w_max` segments, with as much in flight.
    fn after_loss_at(w_max: f64) -> Cubic {
        let mut cc = Cubic::new(MSS);
        cc.cwnd = w_max;
        cc.on_congestion_event(Instant::ZERO, (w_max * f64::from(MSS)) as u32);
        cc
    }

    #[test]
    fn multiplicative_decrease_is_beta_cubic() {
        let cc = after_loss_at(100.0);
        assert_eq!(cc.window(), 70_000);
        assert_eq!(cc.ssthresh(), 70_000);
        assert_eq!(cc.w_max, 100.0);
    }

    #[test]
    fn the_window_follows_w_cubic_once_a_round_trip() {
        // RTT 100 ms, W_max 100 segments. An ACK of a whole window moves cwnd to the target
        // W_cubic(t + RTT) in one step (byte counting), so after each round trip cwnd is
        // the RFC's curve within a byte's rounding; W_est (Reno) is the floor.
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss_at(100.0);
        let k = (30.0f64 / C).cbrt();
        let mut now = Instant::ZERO;
        let mut w_est = 70.0;
        let mut reno_rounds = Vec::new();
        for round in 0..60 {
            let before = cc.cwnd;
            let acked = full_window(&cc, rtt);
            let alpha = if w_est >= 100.0 { 1.0 } else { ALPHA };
            w_est += alpha * (f64::from(acked.bytes) / 1000.0) / before;
            cc.on_ack(now, acked);
            if round == 0 {
                assert!((cc.k - k).abs() < 1e-9, "K = cbrt(30 / 0.4) = {k}");
            }
            let t = (now - Instant::ZERO).as_secs_f64();
            let w_cubic = C * (t - k).powi(3) + 100.0;
            let expected = if w_cubic < w_est {
                reno_rounds.push(round);
                w_est
            } else {
                (C * (t + rtt.as_secs_f64() - k).powi(3) + 100.0).clamp(before, 1.5 * before)
            };
            assert!(
                (cc.cwnd - expected).abs() < 1e-3,
                "round {round}: cwnd {} segments, expected {expected}",
                cc.cwnd
            );
            now += rtt;
        }
        // At t = 0 W_cubic = cwnd = 70 and Reno's half segment is ahead; then the cubic
        // governs, concave up to W_max at K = 4.2 s and convex beyond, until W_est — growing
        // one segment per round trip since it passed cwnd_prior = 100 — overtakes the
        // still-flat cubic at 5.8 s.
        assert_eq!(reno_rounds, vec![0, 58, 59]);
        assert!(cc.cwnd > 100.0);
        assert_eq!(cc.window(), (cc.cwnd * 1000.0) as u32);
    }

    #[test]
    fn the_reno_friendly_region_follows_w_est() {
        // RTT 1 ms, W_max 10: W_cubic barely moves in a few milliseconds while Reno gains
        // α_cubic segments per round trip, then 1 once it passes cwnd_prior (§4.3).
        let rtt = Duration::from_millis(1);
        let mut cc = after_loss_at(10.0);
        let mut now = Instant::ZERO;
        let mut w_est = 7.0;
        for round in 0..12 {
            let alpha = if w_est >= 10.0 { 1.0 } else { ALPHA };
            let acked = full_window(&cc, rtt);
            w_est += alpha * (f64::from(acked.bytes) / 1000.0) / cc.cwnd;
            cc.on_ack(now, acked);
            let t = (now - Instant::ZERO).as_secs_f64();
            assert!(cc.w_cubic(t) < w_est, "round {round} is Reno-friendly");
            assert!(
                (cc.cwnd - w_est).abs() < 1e-9,
                "round {round}: cwnd {} segments, W_est {w_est}",
                cc.cwnd
            );
            now += rtt;
        }
        // 7 + 0.53 per round trip until past 10 (six rounds), then one segment per round trip.
        assert!(cc.cwnd > 15.5 && cc.cwnd < 16.5, "{}", cc.cwnd);
    }

    #[test]
    fn fast_convergence_lowers_w_max_when_losses_come_earlier() {
        let mut cc = after_loss_at(100.0);
        // Another loss before regaining W_max: W_max = cwnd · (1 + β) / 2.
        cc.on_congestion_event(Instant::ZERO, 70_000);
        assert!((cc.w_max - 70.0 * 1.7 / 2.0).abs() < 1e-9);
        assert_eq!(cc.window(), 49_000);
    }

    #[test]
    fn timeout_leaves_one_segment_and_slow_start_to_ssthresh() {
        let mut cc = after_loss_at(100.0);
        cc.on_timeout(Instant::ZERO, 70_000);
        assert_eq!(cc.window(), MSS);
        assert_eq!(cc.ssthresh(), 49_000);
        let acked = Acked {
            bytes: MSS,
            flight: MSS,
            cwnd_limited: true,
            srtt: None,
        };
        cc.on_ack(Instant::ZERO, acked);
        assert_eq!(cc.window(), 2 * MSS);
    }
}
