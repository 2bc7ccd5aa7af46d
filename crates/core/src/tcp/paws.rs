//! PAWS, Protection Against Wrapped Sequences (RFC 7323 §5): TS.Recent, the newest timestamp
//! of the peer's that an in-window segment brought, and the test that rejects a segment
//! whose timestamp is older.
//!
//! TS.Recent changes only as §4.3 says (in-window segments at or before Last.ACK.sent, not
//! older than it) and stops counting after 24 days without an update (§5.5): the peer's
//! clock may have wrapped its sign bit since, so an old value proves nothing.

use core::time::Duration;

use rawtcp_wire::SeqNum;

use crate::Instant;

/// RFC 7323 §5.5: after this long without an update TS.Recent is invalid (Linux's
/// TCP_PAWS_24DAYS).
pub(crate) const TS_RECENT_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// TS.Recent and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TsRecent {
    value: u32,
    updated_at: Instant,
}

/// `a` is older than `b` on the 32-bit timestamp clock (RFC 7323 §5.2: compared as
/// sequence numbers are).
fn older(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl TsRecent {
    /// TS.Recent from the peer's SYN or SYN-ACK (RFC 7323 §4.3).
    pub(crate) fn new(tsval: u32, now: Instant) -> TsRecent {
        TsRecent {
            value: tsval,
            updated_at: now,
        }
    }

    /// The value to echo in TSecr.
    pub(crate) fn value(&self) -> u32 {
        self.value
    }

    /// RFC 7323 §5.5: TS.Recent untouched for 24 days is no longer valid.
    fn valid(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.updated_at) < TS_RECENT_IDLE
    }

    /// RFC 7323 §5.3 R1: a segment (other than a RST, which the caller exempts) whose TSval
    /// is older than a valid TS.Recent is not acceptable.
    pub(crate) fn rejects(&self, now: Instant, tsval: u32) -> bool {
        self.valid(now) && older(tsval, self.value)
    }

    /// `tsval` is older than TS.Recent by no more than `ticks` of the peer's clock: within
    /// the replay window Linux allows an overtaken duplicate ACK (`tcp_disordered_ack`).
    pub(crate) fn lags_by_at_most(&self, tsval: u32, ticks: u32) -> bool {
        self.value.wrapping_sub(tsval) <= ticks
    }

    /// RFC 7323 §5.3 R3 and §4.3 (2): an acceptable segment at or before Last.ACK.sent with a
    /// TSval not older than TS.Recent (or TS.Recent no longer valid) sets it.
    pub(crate) fn update(&mut self, now: Instant, tsval: u32, seq: SeqNum, last_ack_sent: SeqNum) {
        if seq <= last_ack_sent && (!older(tsval, self.value) || !self.valid(now)) {
            *self = TsRecent::new(tsval, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_timestamps_are_rejected_across_the_wrap() {
        let now = Instant::from_secs(1);
        let recent = TsRecent::new(u32::MAX - 5, now);
        assert!(recent.rejects(now, u32::MAX - 6));
        assert!(!recent.rejects(now, u32::MAX - 5), "equal is acceptable");
        assert!(!recent.rejects(now, 10), "past the wrap is newer");
    }

    #[test]
    fn ts_recent_moves_only_forward_and_only_at_or_before_last_ack_sent() {
        let now = Instant::from_secs(1);
        let last_ack = SeqNum::new(1000);
        let mut recent = TsRecent::new(100, now);
        recent.update(now, 200, SeqNum::new(1001), last_ack);
        assert_eq!(recent.value(), 100, "beyond Last.ACK.sent");
        recent.update(now, 90, SeqNum::new(1000), last_ack);
        assert_eq!(recent.value(), 100, "older");
        recent.update(now, 200, SeqNum::new(1000), last_ack);
        assert_eq!(recent.value(), 200);
    }

    #[test]
    fn the_replay_window_counts_back_from_ts_recent_across_the_wrap() {
        let recent = TsRecent::new(5, Instant::from_secs(1));
        assert!(
            recent.lags_by_at_most(u32::MAX - 10, 16),
            "16 ticks back, past the wrap"
        );
        assert!(!recent.lags_by_at_most(u32::MAX - 11, 16));
        assert!(recent.lags_by_at_most(5, 0));
    }

    #[test]
    fn after_24_idle_days_any_timestamp_is_taken() {
        let start = Instant::from_secs(1);
        let mut recent = TsRecent::new(1_000_000, start);
        let later = start + TS_RECENT_IDLE;
        assert!(recent.rejects(start + Duration::from_secs(3600), 5));
        assert!(!recent.rejects(later, 5), "RFC 7323 §5.5");
        recent.update(later, 5, SeqNum::new(0), SeqNum::new(0));
        assert_eq!(recent.value(), 5);
    }
}
