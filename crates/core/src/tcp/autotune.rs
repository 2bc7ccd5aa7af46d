//! Receive-buffer autotuning, Linux's "dynamic right-sizing" (`tcp_rcv_space_adjust`).
//!
//! Once a round trip, the bytes the application read in it are the rate the peer sends at.
//! When they exceed what was read in the best round trip before, the buffer — and with it
//! the window we advertise — grows to twice that plus sixteen segments, plus twice the
//! growth again ("slow start: allow the sender to double its rate", as Linux), never beyond
//! the configured maximum (Linux's `tcp_rmem[2]`). A reader slower than the path never
//! grows it: what it reads per round trip is what it can take. The buffer never shrinks.
//! Its size is the connection's receive memory, and [`crate::ConnectionInfo::rcv_buffer`]
//! reports it.

use core::time::Duration;

use crate::Instant;

/// The measurement of one connection's receive rate.
#[derive(Debug, Clone)]
pub(crate) struct RecvAutotune {
    /// The most the buffer may grow to.
    max: usize,
    /// rcvq_space.space: the most read in one measured round trip.
    space: usize,
    /// Bytes read in the current measurement.
    read: usize,
    /// When the current measurement began.
    since: Option<Instant>,
}

impl RecvAutotune {
    /// A buffer of `initial` bytes that may grow to `max`; `mss` sizes the first
    /// measurement's baseline (ten segments, Linux's initial rcvq_space).
    pub(crate) fn new(initial: usize, max: usize, mss: usize) -> RecvAutotune {
        RecvAutotune {
            max: max.max(initial),
            space: (10 * mss).min(initial).max(1),
            read: 0,
            since: None,
        }
    }

    /// The largest the buffer can become: the window scale is chosen for it.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// The application read `n` bytes at `now`; `rtt` is the connection's round-trip
    /// estimate. Returns the buffer size to grow to, if it must grow beyond `capacity`.
    pub(crate) fn on_read(
        &mut self,
        now: Instant,
        n: usize,
        capacity: usize,
        rtt: Option<Duration>,
        mss: usize,
    ) -> Option<usize> {
        if self.max <= capacity {
            return None;
        }
        self.read += n;
        let since = *self.since.get_or_insert(now);
        let rtt = rtt?;
        if now - since < rtt {
            return None;
        }
        let copied = self.read;
        self.read = 0;
        self.since = Some(now);
        if copied <= self.space {
            return None;
        }
        let mut window = 2 * copied + 16 * mss;
        let grow = window * (copied - self.space) / self.space;
        window += 2 * grow;
        self.space = copied;
        let size = window.min(self.max);
        (size > capacity).then_some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const RTT: Duration = Duration::from_millis(10);

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn a_reader_keeping_up_with_a_faster_path_grows_the_buffer_to_the_max() {
        let mut tune = RecvAutotune::new(64 * 1024, 1 << 20, MSS);
        assert_eq!(tune.on_read(at(0), 0, 64 * 1024, Some(RTT), MSS), None);
        // 60 kB read in a round trip, against a baseline of ten segments.
        let grown = tune
            .on_read(at(10), 60_000, 64 * 1024, Some(RTT), MSS)
            .expect("grows");
        assert!(grown > 2 * 60_000, "room for the sender to double: {grown}");
        // At the maximum, no further growth.
        let mut capacity = grown;
        for ms in (20..200).step_by(10) {
            if let Some(size) = tune.on_read(at(ms), capacity, capacity, Some(RTT), MSS) {
                capacity = size;
            }
        }
        assert_eq!(capacity, 1 << 20);
    }

    #[test]
    fn a_slow_reader_or_no_round_trip_estimate_grows_nothing() {
        let mut tune = RecvAutotune::new(64 * 1024, 1 << 20, MSS);
        tune.on_read(at(0), 0, 64 * 1024, Some(RTT), MSS);
        // Less than the baseline per round trip.
        assert_eq!(tune.on_read(at(10), 5_000, 64 * 1024, Some(RTT), MSS), None);
        assert_eq!(tune.on_read(at(20), 9_000, 64 * 1024, Some(RTT), MSS), None);
        // Within the same round trip: not measured yet.
        assert_eq!(
            tune.on_read(at(25), 60_000, 64 * 1024, Some(RTT), MSS),
            None
        );
        let mut unmeasured = RecvAutotune::new(64 * 1024, 1 << 20, MSS);
        assert_eq!(
            unmeasured.on_read(at(0), 60_000, 64 * 1024, None, MSS),
            None
        );
        assert_eq!(
            unmeasured.on_read(at(50), 60_000, 64 * 1024, None, MSS),
            None
        );
    }

    #[test]
    fn without_a_larger_maximum_it_is_off() {
        let mut tune = RecvAutotune::new(64 * 1024, 0, MSS);
        assert_eq!(tune.max(), 64 * 1024);
        tune.on_read(at(0), 0, 64 * 1024, Some(RTT), MSS);
        assert_eq!(
            tune.on_read(at(10), 60_000, 64 * 1024, Some(RTT), MSS),
            None
        );
    }
}
