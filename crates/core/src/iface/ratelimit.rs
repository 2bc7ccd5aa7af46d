//! Host-wide limits on what hostile input can make us send: a token bucket for ICMP errors
//! (RFC 1812 §4.3.2.8) and for RSTs to segments that reach no connection (RFC 9293 §3.5.2),
//! and the per-second budget of RFC 5961 challenge ACKs (§7), randomised per second as
//! Linux does since CVE-2016-5696.
//!
//! All three take `now` and draw randomness from the engine's seed: nothing here reads a
//! clock.

use core::time::Duration;

use crate::Instant;
use crate::random::Rng;

/// `rate` tokens per second, at most `burst` saved up; starts full.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u32,
    burst: u32,
    tokens: u32,
    refilled_at: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            refilled_at: Instant::ZERO,
        }
    }

    /// Takes a token if one is left at `now`; a rate of 0 allows nothing.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0 {
            return false;
        }
        let per_token = (1_000_000 / u64::from(self.rate)).max(1);
        let elapsed = now.saturating_duration_since(self.refilled_at).as_micros() as u64;
        let earned = elapsed / per_token;
        if earned > 0 {
            self.tokens = (u64::from(self.tokens) + earned).min(u64::from(self.burst)) as u32;
            // Keep the remainder: a token earned over two calls is not lost.
            self.refilled_at += Duration::from_micros(earned * per_token);
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// The host-wide budget of challenge ACKs: in each one-second interval, a number drawn at
/// random from `limit/2 .. limit/2 + limit` (Linux's `tcp_send_challenge_ack`, 4.7 to 5.19).
/// A fixed budget is a side channel: an attacker that spends it, then counts the challenge
/// ACKs its own connection still receives, can tell whether its spoofed segments hit one
/// (CVE-2016-5696).
#[derive(Debug, Clone)]
pub(crate) struct ChallengeAckBudget {
    limit: u32,
    interval: Option<u64>,
    left: u32,
    rng: Rng,
    /// Challenge ACKs held back by this budget.
    pub(crate) suppressed: u64,
}

impl ChallengeAckBudget {
    /// `limit` per second on average; 0 means unlimited.
    pub(crate) fn new(limit: u32, seed: u64) -> ChallengeAckBudget {
        ChallengeAckBudget {
            limit,
            interval: None,
            left: 0,
            rng: Rng::new(seed),
            suppressed: 0,
        }
    }

    /// Takes one challenge ACK from the budget of the second `now` falls in.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        let second = now.as_micros() / 1_000_000;
        if self.interval != Some(second) {
            self.interval = Some(second);
            let half = self.limit.div_ceil(2);
            let random = (self.rng.next_u64() % u64::from(self.limit)) as u32;
            self.left = half.saturating_add(random);
        }
        if self.left == 0 {
            self.suppressed += 1;
            return false;
        }
        self.left -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = TokenBucket::new(10, 3);
        let t0 = Instant::from_secs(1);
        assert_eq!((0..5).filter(|_| bucket.take(t0)).count(), 3);
        // 10 per second: one token every 100 ms, none before.
        assert!(!bucket.take(t0 + Duration::from_millis(99)));
        assert!(bucket.take(t0 + Duration::from_millis(101)));
        assert!(!bucket.take(t0 + Duration::from_millis(150)));
        assert!(bucket.take(t0 + Duration::from_millis(201)));
        assert!(!TokenBucket::new(0, 5).take(t0));
    }

    #[test]
    fn the_challenge_budget_varies_per_second_within_its_range() {
        let mut budget = ChallengeAckBudget::new(1000, 7);
        let mut budgets = Vec::new();
        for second in 0..20 {
            let now = Instant::from_secs(second);
            let mut n = 0;
            while budget.take(now) {
                n += 1;
            }
            assert!((500..1500).contains(&n), "{n} in second {second}");
            budgets.push(n);
        }
        budgets.sort();
        budgets.dedup();
        assert!(budgets.len() > 10, "randomised: {budgets:?}");
        assert_eq!(budget.suppressed, 20);
        assert!(ChallengeAckBudget::new(0, 7).take(Instant::ZERO));
    }
}
