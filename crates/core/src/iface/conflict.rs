//! IPv4 Address Conflict Detection (RFC 5227): probe our address before using it, announce it
//! once it is ours, and notice anyone who claims it afterwards.
//!
//! The timeline (§2.1.1, §2.3), driven by `handle_timeout` like every other engine timer:
//!
//! ```text
//! start ─ rand[0, PROBE_WAIT] ─ probe ─ rand[PROBE_MIN, PROBE_MAX] ─ probe ─ … ─ probe
//!       ─ ANNOUNCE_WAIT ─ claimed: announcement ─ ANNOUNCE_INTERVAL ─ announcement
//! ```
//!
//! Until the address is claimed the stack does not use it: it answers no ARP for it, takes no
//! datagram to it and opens no connection from it. A conflict while probing loses the address
//! for good (the configuring agent, here the application, must choose another). After the
//! claim, a conflicting ARP is counted and reported, and the address is defended with one
//! announcement per DEFEND_INTERVAL (§2.4 (c): a host with a configured, well-known address
//! keeps it).
//!
//! Who sent a frame: a device (rawtcp-netio's `Device`) never hands the engine a frame the engine itself sent (the
//! kernel skips the sending packet socket; an in-memory link has no loopback). So an ARP
//! packet that claims our address, or probes for it, came from somebody else even when it
//! carries our MAC: two stacks on one interface share the interface's MAC. The MAC test of
//! §2.1.1 and §2.4 ("not the hardware address of any of the host's interfaces") is
//! therefore left out; it exists for links that echo a host's own broadcasts back to it.

use core::time::Duration;

use rawtcp_wire::arp::ArpRepr;
use rawtcp_wire::ethernet::EthernetAddress;

use crate::Instant;
use crate::config::ConflictDetection;
use crate::random::Rng;

/// Whether the stack may use its address.
///
/// # Examples
/// ```
/// use rawtcp_core::{AddressState, Config, Ipv4Cidr, Stack};
/// use std::net::Ipv4Addr;
///
/// let mut config = Config::new(Default::default(), Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, 2), 24));
/// assert_eq!(Stack::new(config.clone()).address_state(), AddressState::Claimed);
/// config.conflict_detection.enabled = true;
/// assert_eq!(Stack::new(config).address_state(), AddressState::Probing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressState {
    /// Being probed (RFC 5227 §2.1): not used yet.
    Probing,
    /// Ours: probing found nobody else (or detection is off).
    Claimed,
    /// Probing found another host using it: the stack will never use it.
    InUse {
        /// The MAC of the host that answered or claimed it.
        by: EthernetAddress,
    },
}

/// An ARP frame the detector wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Broadcast {
    /// An ARP Probe (§2.1.1).
    Probe,
    /// An ARP Announcement (§2.3), also the defence of §2.4.
    Announcement,
}

/// What an ARP packet about our address meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not a conflict: handle the packet as usual (a probe for our address is answered once
    /// it is ours).
    NoConflict,
    /// Found while probing: the address is lost.
    Lost { by: EthernetAddress },
    /// Found after the claim (§2.4): counted; `defended` when an announcement answers it.
    Conflict { by: EthernetAddress, defended: bool },
}

/// What a timer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Nothing the stack must report.
    Quiet,
    /// ANNOUNCE_WAIT passed in silence: the address is ours.
    Claimed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not started: the first `handle_timeout` picks the initial random delay.
    Start,
    /// `sent` probes went out; at `at` the next one is due (or, after the last, the claim).
    Probing { sent: u8, at: Instant },
    /// The address is ours; `announced` announcements were scheduled; the next is due at
    /// `at` while `announced < announce_num`.
    Claimed { announced: u8, at: Instant },
    /// Lost while probing.
    InUse { by: EthernetAddress },
}

/// The detector of one address.
#[derive(Debug)]
pub(crate) struct Detector {
    config: ConflictDetection,
    rng: Rng,
    phase: Phase,
    /// The frame to send on the next transmit (kept when the sink is full).
    pending: Option<Broadcast>,
    /// When we last defended the address (§2.4).
    defended_at: Option<Instant>,
}

impl Detector {
    pub(crate) fn new(config: ConflictDetection, seed: u64) -> Detector {
        let phase = if config.enabled {
            Phase::Start
        } else {
            Phase::Claimed {
                announced: config.announce_num,
                at: Instant::ZERO,
            }
        };
        Detector {
            rng: Rng::new(seed),
            phase,
            pending: None,
            defended_at: None,
            config,
        }
    }

    pub(crate) fn state(&self) -> AddressState {
        match self.phase {
            Phase::Start | Phase::Probing { .. } => AddressState::Probing,
            Phase::Claimed { .. } => AddressState::Claimed,
            Phase::InUse { by } => AddressState::InUse { by },
        }
    }

    /// Whether the address may be used.
    pub(crate) fn claimed(&self) -> bool {
        matches!(self.phase, Phase::Claimed { .. })
    }

    /// A uniformly random duration in `[low, high]`, from the seeded generator.
    fn random_between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_micros() as u64;
        let offset = if span == 0 {
            0
        } else {
            self.rng.next_u64() % (span + 1)
        };
        low + Duration::from_micros(offset)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            // Due at once: the caller's first `handle_timeout` gives the start its time.
            Phase::Start => Some(Instant::ZERO),
            Phase::Probing { at, .. } => Some(at),
            Phase::Claimed { announced, at } if announced < self.config.announce_num => Some(at),
            Phase::Claimed { .. } | Phase::InUse { .. } => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Progress {
        match self.phase {
            Phase::Start => {
                // §2.1.1: "wait for a random time interval selected uniformly in the range
                // zero to PROBE_WAIT seconds" before the first probe.
                let delay = self.random_between(Duration::ZERO, self.config.probe_wait);
                self.phase = Phase::Probing {
                    sent: 0,
                    at: now + delay,
                };
                Progress::Quiet
            }
            Phase::Probing { sent, at } if at <= now => {
                if sent < self.config.probe_num {
                    // §2.1.1: PROBE_NUM probes "spaced randomly and uniformly, PROBE_MIN to
                    // PROBE_MAX seconds apart"; after the last, ANNOUNCE_WAIT of listening.
                    self.pending = Some(Broadcast::Probe);
                    let sent = sent + 1;
                    let wait = if sent < self.config.probe_num {
                        self.random_between(self.config.probe_min, self.config.probe_max)
                    } else {
                        self.config.announce_wait
                    };
                    self.phase = Phase::Probing {
                        sent,
                        at: now + wait,
                    };
                    return Progress::Quiet;
                }
                // §2.1.1: nothing conflicting "by ANNOUNCE_WAIT seconds after the
                // transmission of the last ARP Probe": the address may be used. §2.3: announce
                // it, ANNOUNCE_NUM times; it is usable from the first announcement on.
                self.claim(now);
                Progress::Claimed
            }
            Phase::Claimed { announced, at }
                if announced < self.config.announce_num && at <= now =>
            {
                self.pending = Some(Broadcast::Announcement);
                self.phase = Phase::Claimed {
                    announced: announced + 1,
                    at: now + self.config.announce_interval,
                };
                Progress::Quiet
            }
            _ => Progress::Quiet,
        }
    }

    fn claim(&mut self, now: Instant) {
        let announce = self.config.announce_num > 0;
        self.pending = announce.then_some(Broadcast::Announcement);
        self.phase = Phase::Claimed {
            announced: u8::from(announce),
            at: now + self.config.announce_interval,
        };
    }

    /// Judges an ARP packet whose sender IP is our address, or that probes for it (sender IP
    /// 0.0.0.0, target our address). See the module docs on why the sender's MAC is not
    /// compared with ours.
    pub(crate) fn check(&mut self, now: Instant, arp: &ArpRepr) -> Verdict {
        let by = arp.source_hardware_addr;
        let claims = !arp.source_protocol_addr.is_unspecified();
        match self.phase {
            // §2.1.1: during probing, any ARP (request or reply) whose sender IP is the probed
            // address, or any ARP Probe for it (another host probing at the same moment),
            // means the address is in use. The RFC's window runs until ANNOUNCE_WAIT after
            // the last probe, which is exactly while we are in this phase.
            Phase::Start | Phase::Probing { .. } => {
                if claims || arp.is_probe() {
                    self.phase = Phase::InUse { by };
                    self.pending = None;
                    return Verdict::Lost { by };
                }
                Verdict::NoConflict
            }
            // §2.4: "a conflicting ARP packet" claims our address after the claim. A probe
            // for it is no conflict: it is answered as any request is, and the prober backs
            // off.
            Phase::Claimed { .. } if claims => {
                // §2.4 (c), with the rate limit of (b): defend with one announcement unless
                // we did within DEFEND_INTERVAL.
                let defended = self.defended_at.is_none_or(|at| {
                    now.saturating_duration_since(at) >= self.config.defend_interval
                });
                if defended {
                    self.defended_at = Some(now);
                    self.pending = Some(Broadcast::Announcement);
                }
                Verdict::Conflict { by, defended }
            }
            Phase::Claimed { .. } | Phase::InUse { .. } => Verdict::NoConflict,
        }
    }

    /// The frame to send now, if any; call [`sent`](Self::sent) once it is written.
    pub(crate) fn pending(&self) -> Option<Broadcast> {
        self.pending
    }

    pub(crate) fn sent(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use rawtcp_wire::arp::Operation;

    const OURS: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
    const OTHER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);

    fn enabled() -> ConflictDetection {
        ConflictDetection {
            enabled: true,
            ..ConflictDetection::default()
        }
    }

    /// Runs the detector's timers until it has nothing left, returning each frame with the
    /// time it became due.
    fn run(detector: &mut Detector) -> Vec<(Instant, Broadcast)> {
        let mut frames = Vec::new();
        let mut now = Instant::ZERO;
        while let Some(at) = detector.poll_timeout() {
            now = now.max(at);
            detector.handle_timeout(now);
            if let Some(frame) = detector.pending() {
                frames.push((now, frame));
                detector.sent();
            }
        }
        frames
    }

    #[test]
    fn probes_then_announces_within_the_rfc_windows() {
        for seed in 0..50 {
            let mut detector = Detector::new(enabled(), seed);
            let frames = run(&mut detector);
            let kinds: Vec<Broadcast> = frames.iter().map(|&(_, kind)| kind).collect();
            use Broadcast::*;
            assert_eq!(kinds, vec![Probe, Probe, Probe, Announcement, Announcement]);
            let at: Vec<Duration> = frames.iter().map(|&(t, _)| t - Instant::ZERO).collect();
            assert!(at[0] <= Duration::from_secs(1), "PROBE_WAIT: {at:?}");
            for gap in [at[1] - at[0], at[2] - at[1]] {
                assert!(
                    (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&gap),
                    "PROBE_MIN..PROBE_MAX: {at:?}"
                );
            }
            assert_eq!(at[3] - at[2], Duration::from_secs(2), "ANNOUNCE_WAIT");
            assert_eq!(at[4] - at[3], Duration::from_secs(2), "ANNOUNCE_INTERVAL");
            assert_eq!(detector.state(), AddressState::Claimed);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let schedule = |seed| run(&mut Detector::new(enabled(), seed));
        assert_eq!(schedule(7), schedule(7));
        assert_ne!(schedule(7), schedule(8));
    }

    #[test]
    fn a_probe_or_a_claim_while_probing_loses_the_address() {
        let reply = ArpRepr {
            operation: Operation::Reply,
            source_hardware_addr: OTHER,
            source_protocol_addr: OURS,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::UNSPECIFIED,
        };
        for arp in [reply, ArpRepr::probe(OTHER, OURS)] {
            let mut detector = Detector::new(enabled(), 1);
            detector.handle_timeout(Instant::ZERO);
            assert_eq!(
                detector.check(Instant::ZERO, &arp),
                Verdict::Lost { by: OTHER }
            );
            assert_eq!(detector.state(), AddressState::InUse { by: OTHER });
            assert_eq!(detector.poll_timeout(), None, "no probe follows");
        }
    }

    #[test]
    fn conflicts_after_the_claim_are_defended_once_per_defend_interval() {
        let mut detector = Detector::new(ConflictDetection::default(), 1);
        let claim = ArpRepr::announcement(OTHER, OURS);
        let t0 = Instant::from_secs(100);
        let verdicts: Vec<Verdict> = [0, 5, 10]
            .into_iter()
            .map(|s| {
                let verdict = detector.check(t0 + Duration::from_secs(s), &claim);
                assert_eq!(
                    detector.pending().is_some(),
                    verdict
                        == Verdict::Conflict {
                            by: OTHER,
                            defended: true
                        }
                );
                detector.sent();
                verdict
            })
            .collect();
        let conflict = |defended| Verdict::Conflict {
            by: OTHER,
            defended,
        };
        assert_eq!(
            verdicts,
            vec![conflict(true), conflict(false), conflict(true)]
        );
        assert_eq!(
            detector.check(t0, &ArpRepr::probe(OTHER, OURS)),
            Verdict::NoConflict,
            "a probe for a claimed address is answered, not a conflict"
        );
    }
}
