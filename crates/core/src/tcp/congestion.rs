//! Congestion control behind a trait, so that NewReno and CUBIC (the next engine issue) plug
//! in without touching the connection.

use core::fmt::Debug;

/// A congestion controller: how many bytes may be in flight.
pub trait CongestionControl: Debug + Send {
    /// The congestion window, bytes.
    fn window(&self) -> u32;
    /// `bytes` of new data were acknowledged; `in_flight` were outstanding before.
    fn on_ack(&mut self, bytes: u32, in_flight: u32);
    /// The retransmission timer expired with `in_flight` bytes outstanding.
    fn on_timeout(&mut self, in_flight: u32);
}

/// RFC 5681 §3.1: slow start and congestion avoidance, and the timeout reaction. Fast
/// retransmit and fast recovery come with the loss-recovery issue.
#[derive(Debug, Clone)]
pub(crate) struct SlowStart {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    acked: u32,
}

impl SlowStart {
    /// RFC 5681 §3.1 and RFC 6928: an initial window of 10 segments (what Linux uses);
    /// ssthresh starts arbitrarily high.
    pub(crate) fn new(mss: u32) -> SlowStart {
        SlowStart {
            mss,
            cwnd: 10 * mss,
            ssthresh: u32::MAX,
            acked: 0,
        }
    }
}

impl CongestionControl for SlowStart {
    fn window(&self) -> u32 {
        self.cwnd
    }

    fn on_ack(&mut self, bytes: u32, _in_flight: u32) {
        if self.cwnd < self.ssthresh {
            // Slow start: cwnd += min(N, SMSS) per ACK (RFC 5681 eq. 2, RFC 3465 L=1).
            self.cwnd = self.cwnd.saturating_add(bytes.min(self.mss));
        } else {
            // Congestion avoidance: about one SMSS per RTT.
            self.acked = self.acked.saturating_add(bytes);
            if self.acked >= self.cwnd {
                self.acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
    }

    fn on_timeout(&mut self, in_flight: u32) {
        // RFC 5681 eq. 4 and §3.1: ssthresh = max(FlightSize / 2, 2·SMSS); cwnd = 1 SMSS.
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.acked = 0;
    }
}
