//! A connection's timers, by name, in one table (quinn's `TimerTable` is the model): `set`,
//! `stop`, `expired`, and the earliest deadline for the stack's timer wheel.

use crate::Instant;

/// One of a connection's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// RFC 6298: retransmission (and SYN / SYN-ACK retries).
    Retransmit,
    /// RFC 9293 §3.8.6.3: an ACK held back.
    DelayedAck,
    /// RFC 9293 §3.8.6.1: probe a zero window (or a window too small to use).
    Persist,
    /// RFC 1122 §4.2.3.6.
    Keepalive,
    /// The end of TIME-WAIT (2·MSL) or of an orphaned FIN-WAIT-2.
    Close,
    /// RFC 8985 §7: the tail loss probe.
    LossProbe,
    /// RFC 8985 §6.2: RACK's reorder timer, when a segment is not yet overdue.
    RackReorder,
}

const TIMERS: usize = 7;

impl Timer {
    fn index(self) -> usize {
        match self {
            Timer::Retransmit => 0,
            Timer::DelayedAck => 1,
            Timer::Persist => 2,
            Timer::Keepalive => 3,
            Timer::Close => 4,
            Timer::LossProbe => 5,
            Timer::RackReorder => 6,
        }
    }
}

/// A deadline per [`Timer`], each armed or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; TIMERS],
}

impl TimerTable {
    /// Arms `timer` for `at`, replacing any earlier deadline.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Arms `timer` for `at` unless it runs already.
    pub(crate) fn start(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()].get_or_insert(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; TIMERS];
    }

    pub(crate) fn is_running(&self, timer: Timer) -> bool {
        self.deadlines[timer.index()].is_some()
    }

    pub(crate) fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Whether `timer` is due at `now`; a due timer is stopped, so it fires once.
    pub(crate) fn expired(&mut self, timer: Timer, now: Instant) -> bool {
        let slot = &mut self.deadlines[timer.index()];
        if slot.is_some_and(|at| at <= now) {
            *slot = None;
            true
        } else {
            false
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_timers_fire_once_and_the_earliest_leads() {
        let mut timers = TimerTable::default();
        assert_eq!(timers.next_deadline(), None);
        timers.set(Timer::Keepalive, Instant::from_millis(50));
        timers.set(Timer::Retransmit, Instant::from_millis(20));
        timers.start(Timer::Retransmit, Instant::from_millis(90));
        assert_eq!(timers.next_deadline(), Some(Instant::from_millis(20)));
        assert!(!timers.expired(Timer::Retransmit, Instant::from_millis(19)));
        assert!(timers.expired(Timer::Retransmit, Instant::from_millis(20)));
        assert!(!timers.expired(Timer::Retransmit, Instant::from_millis(21)));
        assert_eq!(timers.next_deadline(), Some(Instant::from_millis(50)));
        timers.stop_all();
        assert!(!timers.is_running(Timer::Keepalive));
    }
}
