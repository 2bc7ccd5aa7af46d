//! A connection's counters as it keeps them: those every connection moves inline, the rest
//! (retransmissions, drops, resets: most connections never count one) in a box allocated at
//! the first, so that an idle connection carries 64 bytes of counters rather than 216.
//! [`Counters::snapshot`] gives the public [`ConnectionStats`].

use super::super::ConnectionStats;
use super::super::recovery::RecoveryCounters;
use crate::Instant;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) opened_at: Instant,
    pub(crate) segments_in: u64,
    pub(crate) segments_out: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) bytes_queued: u64,
    pub(crate) bytes_acked: u64,
    pub(crate) bytes_delivered: u64,
    rare: Option<Box<RareCounters>>,
}

/// The counters of events an ordinary connection never sees; each as in [`ConnectionStats`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RareCounters {
    pub(crate) retransmitted_segments: u64,
    pub(crate) bytes_retransmitted: u64,
    pub(crate) retransmit_timeouts: u64,
    pub(crate) duplicate_acks: u64,
    pub(crate) challenge_acks: u64,
    pub(crate) segments_dropped: u64,
    pub(crate) resets_out: u64,
    pub(crate) acks_rate_limited: u64,
    pub(crate) paws_rejected: u64,
}

impl Counters {
    pub(crate) fn new(opened_at: Instant) -> Counters {
        Counters {
            opened_at,
            ..Counters::default()
        }
    }

    /// The rare counters, allocated at the first count.
    pub(crate) fn rare(&mut self) -> &mut RareCounters {
        self.rare.get_or_insert_with(Box::default)
    }

    pub(crate) fn retransmitted_segments(&self) -> u64 {
        self.rare.as_ref().map_or(0, |r| r.retransmitted_segments)
    }

    /// The public statistics: these counters, the loss recovery's and the receive buffer's
    /// out-of-order drops.
    pub(crate) fn snapshot(
        &self,
        recovery: &RecoveryCounters,
        out_of_order_dropped: u64,
    ) -> ConnectionStats {
        let rare = self.rare.as_deref().copied().unwrap_or_default();
        ConnectionStats {
            opened_at: self.opened_at,
            segments_in: self.segments_in,
            segments_out: self.segments_out,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            bytes_queued: self.bytes_queued,
            bytes_acked: self.bytes_acked,
            bytes_delivered: self.bytes_delivered,
            retransmitted_segments: rare.retransmitted_segments,
            bytes_retransmitted: rare.bytes_retransmitted,
            retransmit_timeouts: rare.retransmit_timeouts,
            duplicate_acks: rare.duplicate_acks,
            challenge_acks: rare.challenge_acks,
            segments_dropped: rare.segments_dropped,
            resets_out: rare.resets_out,
            acks_rate_limited: rare.acks_rate_limited,
            paws_rejected: rare.paws_rejected,
            fast_recoveries: recovery.fast_recoveries,
            rescue_retransmits: recovery.rescue_retransmits,
            sack_blocks_rejected: recovery.sack_blocks_rejected,
            dsacks_received: recovery.dsacks_received,
            loss_probes: recovery.loss_probes,
            rack_lost_segments: recovery.rack_lost_segments,
            rack_reorder_timeouts: recovery.rack_reorder_timeouts,
            spurious_recoveries_undone: recovery.spurious_recoveries_undone,
            spurious_timeouts_undone: recovery.spurious_timeouts_undone,
            loss_probe_repairs: recovery.loss_probe_repairs,
            out_of_order_dropped,
        }
    }
}
