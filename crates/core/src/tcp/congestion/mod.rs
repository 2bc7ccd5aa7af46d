//! Congestion control behind a trait: the connection reports what happened (new data
//! acknowledged, a loss detected by duplicate ACKs or SACK, a retransmission timeout, an idle
//! restart) and asks how many bytes may be in flight. Each algorithm keeps its own state per
//! connection and is testable without one. Loss *detection* and the choice of what to
//! retransmit live in [`super::recovery`]; the algorithms here only size the window.
//!
//! [`CongestionAlgorithm`] in the configuration picks the algorithm: NewReno (RFC 5681,
//! RFC 6582) or CUBIC (RFC 9438, the default, as in Linux).

mod cubic;
mod newreno;

use core::fmt::Debug;
use core::time::Duration;

use crate::Instant;

pub(crate) use cubic::Cubic;
pub(crate) use newreno::NewReno;

/// Which congestion control algorithm a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CongestionAlgorithm {
    /// RFC 5681 slow start and congestion avoidance, RFC 6582 fast recovery.
    NewReno,
    /// RFC 9438 CUBIC with its Reno-friendly region and fast convergence.
    #[default]
    Cubic,
}

impl CongestionAlgorithm {
    /// A controller of this algorithm for a connection whose send MSS is `mss`.
    pub(crate) fn build(self, mss: u32) -> Controller {
        match self {
            CongestionAlgorithm::NewReno => Controller::NewReno(NewReno::new(mss)),
            CongestionAlgorithm::Cubic => Controller::Cubic(Cubic::new(mss)),
        }
    }

    /// The name Linux gives it (`ss -i`, TCP_CONGESTION).
    pub fn name(self) -> &'static str {
        match self {
            CongestionAlgorithm::NewReno => "reno",
            CongestionAlgorithm::Cubic => "cubic",
        }
    }
}

/// An acknowledgment of new data, as the congestion controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// Bytes of new data this ACK acknowledged.
    pub bytes: u32,
    /// Bytes in flight before it arrived.
    pub flight: u32,
    /// The window was the limit on sending: more would have been sent had it been larger.
    /// An application-limited (or receive-window-limited) sender does not grow the window
    /// (RFC 7661's spirit, RFC 9438 §5.8).
    pub cwnd_limited: bool,
    /// The smoothed round-trip time, once measured.
    pub srtt: Option<Duration>,
}

/// A congestion controller: how many bytes may be in flight.
pub trait CongestionControl: Debug + Send {
    /// Which algorithm this is.
    fn algorithm(&self) -> CongestionAlgorithm;
    /// The congestion window, bytes.
    fn window(&self) -> u32;
    /// The slow-start threshold, bytes (`u32::MAX` until the first loss).
    fn ssthresh(&self) -> u32;
    /// New data was acknowledged outside loss recovery: grow the window.
    fn on_ack(&mut self, now: Instant, acked: Acked);
    /// A loss was detected by duplicate ACKs or SACK with `flight` bytes outstanding
    /// (FlightSize): set ssthresh and the window for fast recovery.
    fn on_congestion_event(&mut self, now: Instant, flight: u32);
    /// Fast recovery ended (a full acknowledgment) with `flight` bytes still outstanding.
    fn on_recovery_end(&mut self, flight: u32);
    /// The retransmission timer expired with `flight` bytes outstanding: one segment.
    fn on_timeout(&mut self, now: Instant, flight: u32);
    /// Caps the window at `window` bytes: the restart window after an idle period
    /// (RFC 5681 §4.1), or one segment after a lost SYN or SYN-ACK (RFC 6928 §2).
    fn limit_window(&mut self, window: u32);
    /// The last reduction was spurious (every retransmission it caused was D-SACKed,
    /// RFC 2883 §5 and Linux's undo): back to at least the window and slow-start threshold
    /// from before it.
    fn undo(&mut self, cwnd: u32, ssthresh: u32);
}

/// One of the algorithms, held inline in the connection: no allocation and no indirection
/// per connection for a choice that comes from a closed list.
#[derive(Debug)]
pub(crate) enum Controller {
    NewReno(NewReno),
    Cubic(Cubic),
}

impl Controller {
    fn get(&self) -> &dyn CongestionControl {
        match self {
            Controller::NewReno(c) => c,
            Controller::Cubic(c) => c,
        }
    }

    fn get_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Controller::NewReno(c) => c,
            Controller::Cubic(c) => c,
        }
    }
}

impl CongestionControl for Controller {
    fn algorithm(&self) -> CongestionAlgorithm {
        self.get().algorithm()
    }
    fn window(&self) -> u32 {
        self.get().window()
    }
    fn ssthresh(&self) -> u32 {
        self.get().ssthresh()
    }
    fn on_ack(&mut self, now: Instant, acked: Acked) {
        self.get_mut().on_ack(now, acked);
    }
    fn on_congestion_event(&mut self, now: Instant, flight: u32) {
        self.get_mut().on_congestion_event(now, flight);
    }
    fn on_recovery_end(&mut self, flight: u32) {
        self.get_mut().on_recovery_end(flight);
    }
    fn on_timeout(&mut self, now: Instant, flight: u32) {
        self.get_mut().on_timeout(now, flight);
    }
    fn limit_window(&mut self, window: u32) {
        self.get_mut().limit_window(window);
    }
    fn undo(&mut self, cwnd: u32, ssthresh: u32) {
        self.get_mut().undo(cwnd, ssthresh);
    }
}

/// RFC 6928 §2: IW = min(10·MSS, max(2·MSS, 14 600)).
pub(crate) fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_is_ten_segments_capped_at_14600_bytes() {
        // RFC 6928 §2.
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5_360);
        assert_eq!(initial_window(8960), 17_920); // 2·MSS is the floor
        assert_eq!(initial_window(4000), 14_600);
    }

    #[test]
    fn the_default_is_cubic() {
        assert_eq!(CongestionAlgorithm::default(), CongestionAlgorithm::Cubic);
        let cc = CongestionAlgorithm::default().build(1460);
        assert_eq!(cc.algorithm().name(), "cubic");
        assert_eq!(cc.window(), 14_600);
        assert_eq!(cc.ssthresh(), u32::MAX);
    }
}
