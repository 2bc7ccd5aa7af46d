//! The retransmission timeout, RFC 6298.

use core::time::Duration;

/// SRTT, RTTVAR and RTO with exponential backoff, in microseconds (u32: up to 71 minutes,
/// far above the 120 s ceiling), kept small because every connection has one.
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    /// 0 until the first sample.
    srtt: u32,
    rttvar: u32,
    rto: u32,
    min: u32,
    max: u32,
    /// Doublings applied since the last new acknowledgment (RFC 6298 §5.5).
    backoff: u8,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl RttEstimator {
    pub(crate) fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: 0,
            rttvar: 0,
            rto: micros(initial),
            min: micros(min),
            max: micros(max),
            backoff: 0,
        }
    }

    /// RFC 6298 §2.2-2.3: the first sample sets SRTT = R, RTTVAR = R/2; later ones use
    /// alpha = 1/8 and beta = 1/4. RTO = SRTT + max(G, 4·RTTVAR), clamped.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        let rtt = micros(rtt).max(1);
        if self.srtt == 0 {
            self.srtt = rtt;
            self.rttvar = rtt / 2;
        } else {
            let delta = self.srtt.abs_diff(rtt);
            self.rttvar = ((u64::from(self.rttvar) * 3 + u64::from(delta)) / 4) as u32;
            self.srtt = ((u64::from(self.srtt) * 7 + u64::from(rtt)) / 8) as u32;
        }
        // Clock granularity G: our clock is microseconds; 1 ms is Linux's.
        let variance = self.rttvar.saturating_mul(4).max(1000);
        self.rto = self.srtt.saturating_add(variance).clamp(self.min, self.max);
    }

    /// The timeout to arm now, backoff included.
    pub(crate) fn rto(&self) -> Duration {
        let backed_off = u64::from(self.rto) << self.backoff.min(16);
        Duration::from_micros(backed_off.min(u64::from(self.max)))
    }

    /// RFC 6298 §5.5: double the timeout after it expires.
    pub(crate) fn back_off(&mut self) {
        if self.rto() < Duration::from_micros(u64::from(self.max)) {
            self.backoff += 1;
        }
    }

    /// New data was acknowledged: the backoff is over.
    pub(crate) fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        (self.srtt > 0).then(|| Duration::from_micros(u64::from(self.srtt)))
    }

    /// SRTT in microseconds, for arithmetic on the engine's clock without a `Duration`.
    pub(crate) fn srtt_micros(&self) -> Option<u32> {
        (self.srtt > 0).then_some(self.srtt)
    }

    pub(crate) fn rttvar(&self) -> Duration {
        Duration::from_micros(u64::from(self.rttvar))
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
