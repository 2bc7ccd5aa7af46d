//! The retransmission timeout, RFC 6298.

use core::time::Duration;

/// SRTT, RTTVAR and RTO with exponential backoff.
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min: Duration,
    max: Duration,
    /// Doublings applied since the last new acknowledgment (RFC 6298 §5.5).
    backoff: u32,
}

impl RttEstimator {
    pub(crate) fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial,
            min,
            max,
            backoff: 0,
        }
    }

    /// RFC 6298 §2.2-2.3: the first sample sets SRTT = R, RTTVAR = R/2; later ones use
    /// alpha = 1/8 and beta = 1/4. RTO = SRTT + max(G, 4·RTTVAR), clamped.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.expect("set above");
        // Clock granularity G: our clock is microseconds; 1 ms is Linux's.
        let variance = (self.rttvar * 4).max(Duration::from_millis(1));
        self.rto = (srtt + variance).clamp(self.min, self.max);
    }

    /// The timeout to arm now, backoff included.
    pub(crate) fn rto(&self) -> Duration {
        self.rto
            .saturating_mul(1 << self.backoff.min(16))
            .min(self.max)
    }

    /// RFC 6298 §5.5: double the timeout after it expires.
    pub(crate) fn back_off(&mut self) {
        if self.rto() < self.max {
            self.backoff += 1;
        }
    }

    /// New data was acknowledged: the backoff is over.
    pub(crate) fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_then_smoothing_then_backoff() {
        let ms = Duration::from_millis;
        let mut rtt = RttEstimator::new(ms(1000), ms(200), Duration::from_secs(120));
        assert_eq!(rtt.rto(), ms(1000));
        rtt.sample(ms(100));
        // SRTT 100, RTTVAR 50: RTO = 100 + 200 = 300 ms.
        assert_eq!(rtt.rto(), ms(300));
        rtt.sample(ms(100));
        // RTTVAR = 3/4 · 50 = 37.5; RTO = 100 + 150 = 250 ms.
        assert_eq!(rtt.rto(), ms(250));
        rtt.back_off();
        rtt.back_off();
        assert_eq!(rtt.rto(), ms(1000));
        rtt.reset_backoff();
        assert_eq!(rtt.rto(), ms(250));
        for _ in 0..40 {
            rtt.back_off();
        }
        assert_eq!(rtt.rto(), Duration::from_secs(120));
    }
}
