//! SYN cookies (RFC 4987 §3.6): when a listener's SYN queue is full, the SYN-ACK's sequence
//! number carries what the handshake must remember, authenticated, and nothing is stored
//! until the ACK that echoes it comes back.
//!
//! Our cookie, the initial send sequence number of the SYN-ACK:
//!
//! ```text
//!  31                                  4   3    2   0
//! +--------------------------------------+----+------+
//! |  MAC, 28 bits                        | ep | mss  |
//! +--------------------------------------+----+------+
//! ```
//!
//! `mss` indexes [`MSS_TABLE`] (the largest entry not above the peer's offer); `ep` is the
//! parity of the secret's epoch; the MAC is SipHash-2-4, keyed with the epoch's secret, over
//! the 4-tuple, the peer's ISN, the MSS index and the option bits below. The secret of each
//! epoch derives from a master key drawn from the seed; epochs are `rotation` long and a cookie
//! is accepted in its own epoch and the next, so it lives between one and two rotations.
//!
//! Window scale and SACK-permitted do not fit in the sequence number. When the peer offers
//! timestamps they ride in the low six bits of our TSval, which the peer echoes in every
//! TSecr (Linux's layout: four bits of the peer's shift, 15 for none, then SACK); the TSval is
//! our clock with those bits replaced, never ahead of it. Without timestamps the SYN-ACK
//! offers neither option, so nothing is lost by not remembering them. Unlike Linux, the option
//! bits are covered by the MAC: a forged TSecr cannot change what the connection uses.

use core::time::Duration;
use std::net::SocketAddrV4;

use rawtcp_wire::SeqNum;

use super::isn::siphash24;
use crate::Instant;
use crate::random::Rng;

/// The MSS values a cookie can say (three bits). 536 is RFC 9293's default, 1220..1460 the
/// common Ethernet and tunnel values, 8960 a 9000-byte jumbo frame.
pub(crate) const MSS_TABLE: [u16; 8] = [64, 536, 1220, 1300, 1380, 1440, 1460, 8960];

/// The option bits of a cookie's TSval.
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_NO_WSCALE: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
/// What the MAC covers in place of the TSval bits when there are no timestamps.
const NO_TIMESTAMPS: u8 = 0x80;

/// What a cookie remembers of the SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CookieOptions {
    /// The MSS, from [`MSS_TABLE`].
    pub(crate) mss: u16,
    /// The peer's window shift, if it offered one (and timestamps carried it).
    pub(crate) window_scale: Option<u8>,
    /// SACK-permitted (carried by timestamps).
    pub(crate) sack_permitted: bool,
    /// The peer uses timestamps.
    pub(crate) timestamps: bool,
}

/// The keyed, rotating secrets.
#[derive(Debug, Clone)]
pub(crate) struct CookieJar {
    master: [u64; 2],
    rotation: Duration,
}

impl CookieJar {
    pub(crate) fn new(rng: &mut Rng, rotation: Duration) -> CookieJar {
        CookieJar {
            master: [rng.next_u64(), rng.next_u64()],
            rotation: rotation.max(Duration::from_millis(1)),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.as_micros() / (self.rotation.as_micros().max(1) as u64)
    }

    fn secret(&self, epoch: u64) -> [u64; 2] {
        let mut bytes = [0u8; 15];
        bytes[..6].copy_from_slice(b"cookie");
        bytes[6..14].copy_from_slice(&epoch.to_le_bytes());
        let first = siphash24(self.master, &bytes);
        bytes[14] = 1;
        [first, siphash24(self.master, &bytes)]
    }

    fn mac(
        &self,
        epoch: u64,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        mss_index: u8,
        option_bits: u8,
    ) -> u32 {
        let mut bytes = [0u8; 18];
        bytes[0..4].copy_from_slice(&local.ip().octets());
        bytes[4..6].copy_from_slice(&local.port().to_be_bytes());
        bytes[6..10].copy_from_slice(&remote.ip().octets());
        bytes[10..12].copy_from_slice(&remote.port().to_be_bytes());
        bytes[12..16].copy_from_slice(&peer_isn.raw().to_be_bytes());
        bytes[16] = mss_index;
        bytes[17] = option_bits;
        (siphash24(self.secret(epoch), &bytes) as u32) >> 4
    }

    /// The cookie for a SYN from `remote` with sequence number `peer_isn`, and the TSval of
    /// the SYN-ACK when the peer uses timestamps (`ts_now` is our timestamp clock).
    pub(crate) fn encode(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        options: CookieOptions,
        ts_now: u32,
    ) -> (SeqNum, Option<u32>) {
        let mss_index = MSS_TABLE
            .iter()
            .rposition(|&entry| entry <= options.mss)
            .unwrap_or(0) as u8;
        let (option_bits, tsval) = if options.timestamps {
            let bits = u32::from(
                options
                    .window_scale
                    .map_or(TS_NO_WSCALE as u8, |s| s.min(14)),
            ) | if options.sack_permitted { TS_SACK } else { 0 };
            let mut tsval = (ts_now & !TS_MASK) | bits;
            if tsval.wrapping_sub(ts_now) as i32 > 0 {
                tsval = tsval.wrapping_sub(1 << TS_BITS);
            }
            (bits as u8, Some(tsval))
        } else {
            (NO_TIMESTAMPS, None)
        };
        let epoch = self.epoch(now);
        let mac = self.mac(epoch, local, remote, peer_isn, mss_index, option_bits);
        let cookie = (mac << 4) | (((epoch & 1) as u32) << 3) | u32::from(mss_index);
        (SeqNum::new(cookie), tsval)
    }

    /// Checks the cookie an ACK echoes: `cookie` is its ACK number − 1, `peer_isn` its
    /// sequence number − 1, `tsecr` its echoed timestamp if it carries timestamps. What the
    /// SYN offered, or `None` for a forged, altered or expired cookie.
    pub(crate) fn decode(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        cookie: SeqNum,
        tsecr: Option<u32>,
    ) -> Option<CookieOptions> {
        let cookie = cookie.raw();
        let mss_index = (cookie & 7) as u8;
        let parity = u64::from((cookie >> 3) & 1);
        let current = self.epoch(now);
        // The current epoch's secret, or the previous one's (the parity says which).
        let epoch = if current & 1 == parity {
            current
        } else {
            current.checked_sub(1)?
        };
        let option_bits = tsecr.map_or(NO_TIMESTAMPS, |tsecr| (tsecr & TS_MASK) as u8);
        if self.mac(epoch, local, remote, peer_isn, mss_index, option_bits) != cookie >> 4 {
            return None;
        }
        let (window_scale, sack_permitted) = match tsecr {
            Some(tsecr) => {
                let shift = tsecr & TS_NO_WSCALE;
                (
                    (shift != TS_NO_WSCALE).then_some(shift as u8),
                    tsecr & TS_SACK != 0,
                )
            }
            None => (None, false),
        };
        Some(CookieOptions {
            mss: MSS_TABLE[usize::from(mss_index)],
            window_scale,
            sack_permitted,
            timestamps: tsecr.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 80);
    const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 40000);
    const ROTATION: Duration = Duration::from_secs(60);

    fn jar() -> CookieJar {
        CookieJar::new(&mut Rng::new(3), ROTATION)
    }

    fn options(timestamps: bool) -> CookieOptions {
        CookieOptions {
            mss: 1460,
            window_scale: Some(7),
            sack_permitted: true,
            timestamps,
        }
    }

    #[test]
    fn round_trip_with_timestamps_keeps_mss_scale_and_sack() {
        let jar = jar();
        let now = Instant::from_micros(5_000_000);
        let peer = SeqNum::new(1000);
        let ts_now = 123_456;
        let (cookie, tsval) = jar.encode(now, LOCAL, REMOTE, peer, options(true), ts_now);
        let tsval = tsval.expect("timestamps offered");
        assert!(
            tsval <= ts_now && ts_now - tsval < 64,
            "never ahead of the clock"
        );
        let decoded = jar.decode(now, LOCAL, REMOTE, peer, cookie, Some(tsval));
        assert_eq!(decoded, Some(options(true)));
        // No window scale offered: the bits say so.
        let none = CookieOptions {
            window_scale: None,
            sack_permitted: false,
            ..options(true)
        };
        let (cookie, tsval) = jar.encode(now, LOCAL, REMOTE, peer, none, ts_now);
        assert_eq!(
            jar.decode(now, LOCAL, REMOTE, peer, cookie, tsval),
            Some(none)
        );
    }

    #[test]
    fn without_timestamps_only_the_mss_survives() {
        let jar = jar();
        let now = Instant::from_micros(1);
        let peer = SeqNum::new(u32::MAX);
        let offer = CookieOptions {
            mss: 1400,
            ..options(false)
        };
        let (cookie, tsval) = jar.encode(now, LOCAL, REMOTE, peer, offer, 0);
        assert_eq!(tsval, None);
        let decoded = jar.decode(now, LOCAL, REMOTE, peer, cookie, None).unwrap();
        // The largest table entry not above the offer.
        assert_eq!(decoded.mss, 1380);
        assert_eq!(decoded.window_scale, None);
        assert!(!decoded.sack_permitted && !decoded.timestamps);
    }

    #[test]
    fn mss_index_rounds_down_and_floors_at_the_smallest_entry() {
        let jar = jar();
        let now = Instant::ZERO;
        for (offer, expect) in [
            (20, 64),
            (600, 536),
            (1460, 1460),
            (9000, 8960),
            (65535, 8960),
        ] {
            let syn = CookieOptions {
                mss: offer,
                ..options(false)
            };
            let (cookie, _) = jar.encode(now, LOCAL, REMOTE, SeqNum::new(7), syn, 0);
            let decoded = jar.decode(now, LOCAL, REMOTE, SeqNum::new(7), cookie, None);
            assert_eq!(decoded.map(|d| d.mss), Some(expect), "offer {offer}");
        }
    }

    #[test]
    fn a_forged_or_altered_cookie_is_refused() {
        let jar = jar();
        let now = Instant::ZERO;
        let peer = SeqNum::new(42);
        let (cookie, tsval) = jar.encode(now, LOCAL, REMOTE, peer, options(true), 1000);
        let tsval = tsval.unwrap();
        // Another tuple, another peer ISN, a flipped bit, a changed TSecr, timestamps dropped.
        let other = SocketAddrV4::new(*REMOTE.ip(), 40001);
        assert_eq!(
            jar.decode(now, LOCAL, other, peer, cookie, Some(tsval)),
            None
        );
        assert_eq!(
            jar.decode(now, LOCAL, REMOTE, peer + 1, cookie, Some(tsval)),
            None
        );
        for bit in 0..32 {
            let flipped = SeqNum::new(cookie.raw() ^ (1 << bit));
            assert_eq!(
                jar.decode(now, LOCAL, REMOTE, peer, flipped, Some(tsval)),
                None,
                "bit {bit}"
            );
        }
        assert_eq!(
            jar.decode(now, LOCAL, REMOTE, peer, cookie, Some(tsval ^ 1)),
            None
        );
        assert_eq!(jar.decode(now, LOCAL, REMOTE, peer, cookie, None), None);
        // Another seed's secret.
        let stranger = CookieJar::new(&mut Rng::new(4), ROTATION);
        assert_eq!(
            stranger.decode(now, LOCAL, REMOTE, peer, cookie, Some(tsval)),
            None
        );
    }

    #[test]
    fn the_previous_secret_is_accepted_and_older_ones_are_not() {
        let jar = jar();
        let made = Instant::ZERO + Duration::from_secs(59);
        let peer = SeqNum::new(9);
        let (cookie, _) = jar.encode(made, LOCAL, REMOTE, peer, options(false), 0);
        let at = |secs| Instant::ZERO + Duration::from_secs(secs);
        // Epoch 0 → still good through epoch 1, gone in epoch 2 (same parity as 0).
        assert!(
            jar.decode(at(60), LOCAL, REMOTE, peer, cookie, None)
                .is_some()
        );
        assert!(
            jar.decode(at(119), LOCAL, REMOTE, peer, cookie, None)
                .is_some()
        );
        assert_eq!(jar.decode(at(120), LOCAL, REMOTE, peer, cookie, None), None);
        assert_eq!(jar.decode(at(180), LOCAL, REMOTE, peer, cookie, None), None);
        // The secret itself rotates.
        assert_ne!(jar.secret(0), jar.secret(1));
    }
}
