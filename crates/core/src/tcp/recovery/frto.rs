//! F-RTO (RFC 5682 §2): was a retransmission timeout spurious?
//!
//! After the timeout only the first unacknowledged segment goes again. If the ACK that
//! follows acknowledges new data (not all of it), two segments of *new* data go out instead
//! of more retransmissions (step 2b). If the ACK after that acknowledges new data too, the
//! segments the timeout gave up on were never lost — they, or their ACKs, were delayed —
//! and the timeout was spurious (step 3b): the window reduction is undone, as Linux's
//! tcp_try_undo_loss with F-RTO does (RFC 4015's response leaves the choice; Linux restores
//! cwnd and ssthresh). A duplicate ACK instead (step 3a) shows the new data arrived above a
//! hole: the timeout was genuine, and the retransmissions go on from SND.UNA with a window
//! of at most three segments.
//!
//! Linux's default (tcp_frto = 2) is the SACK-enhanced variant of RFC 5682 §3; this is the
//! basic algorithm of §2, which needs no SACK and decides the same way here: with SACK a
//! "duplicate ACK" in step 3 is one that SACKs the new data above the hole.

/// What the connection must do to SND.NXT after an ACK in F-RTO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrtoAction {
    /// Step 2b: send new data (SND.NXT to SND.MAX), two segments whatever cwnd says.
    SendNewData,
    /// Step 3a: the timeout was genuine; go back to SND.UNA.
    GoBack,
}

/// What an ACK decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrtoOutcome {
    /// Nothing decided yet.
    Wait,
    /// Step 2b.
    SendNewData,
    /// Step 3b: spurious; restore this window and ssthresh.
    Spurious {
        prior_cwnd: u32,
        prior_ssthresh: u32,
    },
    /// Step 3a: genuine; go back, cwnd at most three segments.
    GoBack,
    /// Step 2a, or no new data to send: conventional RTO recovery.
    Conventional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Step 2: waiting for the ACK of the retransmission.
    FirstAck,
    /// Step 3: two new segments sent (or going); waiting for the next ACK.
    SecondAck,
}

/// One F-RTO episode, from the first retransmission timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frto {
    step: Step,
    prior_cwnd: u32,
    prior_ssthresh: u32,
    /// Step 2b's new data still to send, bytes.
    allowance: u32,
}

impl Frto {
    /// Step 1: the timeout fired (its first, outside fast recovery); `prior_cwnd` and
    /// `prior_ssthresh` are the controller's before it.
    pub(crate) fn start(prior_cwnd: u32, prior_ssthresh: u32) -> Frto {
        Frto {
            step: Step::FirstAck,
            prior_cwnd,
            prior_ssthresh,
            allowance: 0,
        }
    }

    /// An ACK arrived: `new_data` it acknowledges new data, `duplicate` it is a duplicate,
    /// `covers_recover` it acknowledges everything outstanding at the timeout,
    /// `new_data_waits` unsent data is queued.
    pub(crate) fn on_ack(
        &mut self,
        new_data: bool,
        duplicate: bool,
        covers_recover: bool,
        new_data_waits: bool,
        mss: u32,
    ) -> FrtoOutcome {
        match self.step {
            Step::FirstAck if new_data => {
                // Step 2a, and §2's advice for a sender with nothing new to send.
                if covers_recover || !new_data_waits {
                    return FrtoOutcome::Conventional;
                }
                self.step = Step::SecondAck;
                self.allowance = 2 * mss;
                FrtoOutcome::SendNewData
            }
            Step::SecondAck if new_data => FrtoOutcome::Spurious {
                prior_cwnd: self.prior_cwnd,
                prior_ssthresh: self.prior_ssthresh,
            },
            Step::SecondAck if duplicate => FrtoOutcome::GoBack,
            // Duplicates before the retransmission is acknowledged: stay in step 2.
            _ => FrtoOutcome::Wait,
        }
    }

    /// Step 2b's new data may go: how many bytes.
    pub(crate) fn allowance(&self) -> u32 {
        self.allowance
    }

    pub(crate) fn on_transmit(&mut self, len: u32) {
        self.allowance = self.allowance.saturating_sub(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    #[test]
    fn two_new_acks_make_the_timeout_spurious() {
        let mut frto = Frto::start(20 * MSS, u32::MAX);
        assert_eq!(
            frto.on_ack(false, true, false, true, MSS),
            FrtoOutcome::Wait
        );
        assert_eq!(
            frto.on_ack(true, false, false, true, MSS),
            FrtoOutcome::SendNewData
        );
        assert_eq!(frto.allowance(), 2 * MSS);
        frto.on_transmit(MSS);
        assert_eq!(frto.allowance(), MSS);
        assert_eq!(
            frto.on_ack(true, false, false, true, MSS),
            FrtoOutcome::Spurious {
                prior_cwnd: 20 * MSS,
                prior_ssthresh: u32::MAX
            }
        );
    }

    #[test]
    fn a_duplicate_after_the_new_data_makes_it_genuine() {
        let mut frto = Frto::start(20 * MSS, u32::MAX);
        frto.on_ack(true, false, false, true, MSS);
        assert_eq!(
            frto.on_ack(false, true, false, true, MSS),
            FrtoOutcome::GoBack
        );
    }

    #[test]
    fn acknowledging_everything_or_nothing_to_send_is_conventional() {
        let mut frto = Frto::start(20 * MSS, u32::MAX);
        assert_eq!(
            frto.on_ack(true, false, true, true, MSS),
            FrtoOutcome::Conventional
        );
        let mut frto = Frto::start(20 * MSS, u32::MAX);
        assert_eq!(
            frto.on_ack(true, false, false, false, MSS),
            FrtoOutcome::Conventional
        );
    }
}
