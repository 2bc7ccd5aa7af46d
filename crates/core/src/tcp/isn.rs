//! Initial sequence numbers (RFC 6528, RFC 9293 §3.4.1) and ephemeral ports (RFC 6056).
//!
//! Both are keyed hashes of the connection's addresses with secrets drawn from the
//! configured seed: unpredictable to an off-path attacker, reproducible for a given seed.

use std::net::SocketAddrV4;
use std::ops::RangeInclusive;

use rawtcp_wire::SeqNum;

use crate::Instant;
use crate::random::Rng;

/// SipHash-2-4 (Aumasson and Bernstein), the keyed hash RFC 6528 §3 suggests for ISNs and
/// RFC 6056 for port selection.
pub(crate) fn siphash24(key: [u64; 2], data: &[u8]) -> u64 {
    let mut v0 = key[0] ^ 0x736f_6d65_7073_6575;
    let mut v1 = key[1] ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = key[0] ^ 0x6c79_6765_6e65_7261;
    let mut v3 = key[1] ^ 0x7465_6462_7974_6573;
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    };
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        v3 ^= m;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= m;
    }
    let tail = chunks.remainder();
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v3 ^= m;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= m;
    v2 ^= 0xff;
    for _ in 0..4 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

/// Generates ISNs: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), with M a
/// timer ticking every 4 microseconds and F SipHash-2-4 (RFC 6528 §3).
#[derive(Debug, Clone)]
pub(crate) struct IsnGenerator {
    key: [u64; 2],
}

pub(crate) fn tuple_bytes(local: SocketAddrV4, remote: SocketAddrV4) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[0..4].copy_from_slice(&local.ip().octets());
    bytes[4..6].copy_from_slice(&local.port().to_be_bytes());
    bytes[6..10].copy_from_slice(&remote.ip().octets());
    bytes[10..12].copy_from_slice(&remote.port().to_be_bytes());
    bytes
}

impl IsnGenerator {
    pub(crate) fn new(rng: &mut Rng) -> IsnGenerator {
        IsnGenerator {
            key: [rng.next_u64(), rng.next_u64()],
        }
    }

    pub(crate) fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNum {
        let m = (now.as_micros() / 4) as u32;
        let f = siphash24(self.key, &tuple_bytes(local, remote)) as u32;
        SeqNum::new(m.wrapping_add(f))
    }

    /// The offset added to our timestamp clock for connections between `local` and `remote`
    /// (RFC 7323 §5.4, and Linux's `secure_tcp_ts_off`): unguessable, but one per address
    /// pair, not per connection. A new incarnation of a 4-tuple then always carries a TSval
    /// above the last one's, which is what lets a peer holding the old incarnation in
    /// TIME-WAIT accept its SYN (RFC 6191 §2); with a random offset per connection half of
    /// all reuses looked like old duplicates and waited a second for the SYN's retransmission.
    pub(crate) fn ts_offset(&self, local: std::net::Ipv4Addr, remote: std::net::Ipv4Addr) -> u32 {
        let mut bytes = [0u8; 11];
        bytes[..3].copy_from_slice(b"tsv");
        bytes[3..7].copy_from_slice(&local.octets());
        bytes[7..11].copy_from_slice(&remote.octets());
        siphash24(self.key, &bytes) as u32
    }
}

/// Ephemeral port selection, RFC 6056 §3.3.3 (algorithm 3, "simple hash-based"): each
/// destination gets its own hashed starting point, and a global counter moves on from it.
#[derive(Debug, Clone)]
pub(crate) struct PortAllocator {
    key: [u64; 2],
    range: RangeInclusive<u16>,
    next: u32,
}

impl PortAllocator {
    pub(crate) fn new(rng: &mut Rng, range: RangeInclusive<u16>) -> PortAllocator {
        PortAllocator {
            key: [rng.next_u64(), rng.next_u64()],
            range,
            next: 0,
        }
    }

    /// The first port in the range, tried from the destination's offset, that `in_use`
    /// rejects; `None` when every port is taken.
    pub(crate) fn allocate(
        &mut self,
        local: std::net::Ipv4Addr,
        remote: SocketAddrV4,
        in_use: impl Fn(u16) -> bool,
    ) -> Option<u16> {
        let (min, max) = (*self.range.start(), *self.range.end());
        if min > max {
            return None;
        }
        let count = u32::from(max - min) + 1;
        let offset = siphash24(self.key, &tuple_bytes(SocketAddrV4::new(local, 0), remote)) as u32;
        for _ in 0..count {
            let port = min + (offset.wrapping_add(self.next) % count) as u16;
            self.next = self.next.wrapping_add(1);
            if !in_use(port) {
                return Some(port);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The reference vectors of the SipHash paper (key 00..0f, messages 00, 00 01, ...).
    #[test]
    fn siphash_matches_the_reference_vectors() {
        let key = [
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        ];
        let message: Vec<u8> = (0..64).collect();
        assert_eq!(siphash24(key, &message[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(key, &message[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(key, &message[..8]), 0x93f5_f579_9a93_2462);
        assert_eq!(siphash24(key, &message[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(key, &message[..63]), 0x958a_324c_eb06_4572);
    }

    #[test]
    fn isn_moves_with_the_four_microsecond_clock_and_differs_per_tuple() {
        let isn = IsnGenerator::new(&mut Rng::new(1));
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 40000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 80);
        let c = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 81);
        let t0 = isn.isn(Instant::ZERO, a, b);
        assert_eq!(isn.isn(Instant::from_micros(400), a, b) - t0, 100);
        assert_ne!(isn.isn(Instant::ZERO, a, c), t0);
        assert_ne!(
            IsnGenerator::new(&mut Rng::new(2)).isn(Instant::ZERO, a, b),
            t0
        );
    }

    #[test]
    fn ports_skip_those_in_use_and_run_out() {
        let mut ports = PortAllocator::new(&mut Rng::new(1), 50000..=50003);
        let local = Ipv4Addr::new(10, 9, 0, 2);
        let remote = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 80);
        let mut taken = Vec::new();
        for _ in 0..4 {
            let port = ports
                .allocate(local, remote, |p| taken.contains(&p))
                .unwrap();
            assert!((50000..=50003).contains(&port));
            taken.push(port);
        }
        assert_eq!(ports.allocate(local, remote, |p| taken.contains(&p)), None);
    }

    #[test]
    fn timestamp_offsets_are_per_address_pair() {
        let isn = IsnGenerator::new(&mut Rng::new(7));
        let (a, b, c) = (
            Ipv4Addr::new(10, 9, 0, 1),
            Ipv4Addr::new(10, 9, 0, 2),
            Ipv4Addr::new(10, 9, 0, 3),
        );
        assert_eq!(isn.ts_offset(a, b), isn.ts_offset(a, b));
        assert_ne!(isn.ts_offset(a, b), isn.ts_offset(a, c));
        assert_ne!(isn.ts_offset(a, b), isn.ts_offset(b, a));
        let other = IsnGenerator::new(&mut Rng::new(8));
        assert_ne!(isn.ts_offset(a, b), other.ts_offset(a, b));
    }
}
