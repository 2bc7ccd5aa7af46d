//! The internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The one's complement sum is independent of byte order (RFC 1071 §2(B)): we add the data as
//! native-endian 32-bit words into 64-bit accumulators, which cannot carry out before 2^32
//! additions, fold once at the end and convert to network order. Four independent
//! accumulators let the CPU overlap the additions and let the compiler vectorise the loop.
//! This is the hottest loop in the stack: benchmark it (`cargo bench -p rawtcp-wire`) before
//! changing it.
//!
//! Every function here returns values as the big-endian numbers written in headers.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Folds a 64-bit accumulator into a 16-bit one's complement sum (not complemented).
#[inline]
fn fold(mut acc: u64) -> u16 {
    // Each step halves the width; the additions carry at most one bit.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Sums `data` into a native-endian 64-bit accumulator.
#[inline]
fn accumulate(data: &[u8]) -> u64 {
    const BLOCK: usize = 64;
    let mut acc = [0u64; 4];
    let mut blocks = data.chunks_exact(BLOCK);
    for block in &mut blocks {
        // Sixteen 32-bit words per block, four per accumulator.
        for (i, word) in block.chunks_exact(4).enumerate() {
            let word = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]);
            acc[i % 4] += u64::from(word);
        }
    }
    let mut total = acc[0] + acc[1] + acc[2] + acc[3];
    let mut words = blocks.remainder().chunks_exact(4);
    for word in &mut words {
        total += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
    }
    let tail = words.remainder();
    let mut last = [0u8; 4];
    last[..tail.len()].copy_from_slice(tail);
    // A trailing odd byte is the high byte of a zero-padded 16-bit word (RFC 1071 §4.1),
    // which is exactly where it lands in a zero-padded native-endian word.
    total + u64::from(u32::from_ne_bytes(last))
}

/// Converts a folded native-endian sum to the value as read in network byte order.
#[inline]
fn to_network(sum: u16) -> u16 {
    // Summing native words on a little-endian machine sums byte-swapped 16-bit words; the
    // folded result is then byte-swapped too (RFC 1071 §2(B)).
    u16::from_be(sum)
}

/// The 16-bit one's complement sum of `data`, not complemented.
///
/// # Examples
/// ```
/// // The example of RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2.
/// let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
/// assert_eq!(rawtcp_wire::checksum::data(&data), 0xddf2);
/// ```
#[inline]
pub fn data(data: &[u8]) -> u16 {
    to_network(fold(accumulate(data)))
}

/// Adds 16-bit one's complement sums together.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    let total: u64 = sums.iter().map(|&s| u64::from(s)).sum();
    fold(total)
}

/// The checksum to write into a header: the complement of the sum, per RFC 1071 §1.
#[inline]
pub fn finish(sum: u16) -> u16 {
    !sum
}

/// The sum of the IPv4 pseudo-header (RFC 9293 §3.1): source, destination, zero, protocol
/// and the length of the TCP header plus data.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    let mut bytes = [0u8; 12];
    bytes[0..4].copy_from_slice(&src.octets());
    bytes[4..8].copy_from_slice(&dst.octets());
    bytes[9] = protocol;
    bytes[10..12].copy_from_slice(&length.to_be_bytes());
    data(&bytes)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, 32-bit
/// upper-layer length, three zero bytes and the next header.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let mut bytes = [0u8; 40];
    bytes[0..16].copy_from_slice(&src.octets());
    bytes[16..32].copy_from_slice(&dst.octets());
    bytes[32..36].copy_from_slice(&length.to_be_bytes());
    bytes[39] = next_header;
    data(&bytes)
}

/// Updates a header checksum for one 16-bit field that changed from `old` to `new`,
/// per RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`.
///
/// Unlike eqn. 2 of RFC 1141 this never produces 0xffff (-0) from a valid checksum.
///
/// # Examples
/// ```
/// use rawtcp_wire::checksum;
/// let mut header = [0x45u8, 0x00, 0x00, 0x54, 0, 0, 0x40, 0x00, 0x40, 0x01, 0, 0];
/// let before = checksum::finish(checksum::data(&header));
/// header[8] = 0x3f; // TTL 64 -> 63
/// let after = checksum::update(before, 0x4001, 0x3f01);
/// assert_eq!(after, checksum::finish(checksum::data(&header)));
/// ```
#[inline]
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !combine(&[!checksum, !old, new])
}

/// [`update`] for a 32-bit field (an address, a sequence number): both halves at once.
#[inline]
pub fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    let (old_hi, old_lo) = ((old >> 16) as u16, old as u16);
    let (new_hi, new_lo) = ((new >> 16) as u16, new as u16);
    !combine(&[!checksum, !old_hi, !old_lo, new_hi, new_lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// RFC 1071 §4.1, transcribed literally: big-endian 16-bit words into a 32-bit sum.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut chunks = data.chunks_exact(2);
        for pair in &mut chunks {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
            while sum >> 16 != 0 {
                sum = (sum & 0xffff) + (sum >> 16);
            }
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn rfc1071_example() {
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(reference(&bytes), 0xddf2);
    }

    #[test]
    fn empty_and_all_ones() {
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xff; 1]), 0xff00);
        assert_eq!(data(&[0xff; 64 * 1024]), 0xffff);
    }

    #[test]
    fn every_length_and_alignment_matches_reference() {
        // A deterministic xorshift stream: every length 0..2048 at every start offset 0..8.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = std::vec![0u8; 2048 + 8];
        for byte in buf.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        for start in 0..8 {
            for len in 0..2048 {
                let slice = &buf[start..start + len];
                assert_eq!(data(slice), reference(slice), "start {start} len {len}");
            }
        }
    }

    #[test]
    fn carries_across_accumulators() {
        // Words that push every accumulator to its largest values.
        let ones = std::vec![0xffu8; 4096 + 3];
        for len in [64, 65, 127, 4096, 4099] {
            assert_eq!(data(&ones[..len]), reference(&ones[..len]));
        }
    }

    #[test]
    fn pseudo_headers_match_reference() {
        let src = Ipv4Addr::new(10, 9, 0, 2);
        let dst = Ipv4Addr::new(10, 9, 0, 1);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&[0, 6, 0x05, 0xdc]);
        assert_eq!(pseudo_header_v4(src, dst, 6, 1500), reference(&bytes));

        let src6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst6: Ipv6Addr = "fe80::abcd:1".parse().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src6.octets());
        bytes.extend_from_slice(&dst6.octets());
        bytes.extend_from_slice(&70_000u32.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(pseudo_header_v6(src6, dst6, 6, 70_000), reference(&bytes));
    }

    proptest! {
        #[test]
        fn matches_reference(bytes in proptest::collection::vec(any::<u8>(), 0..4096), start in 0usize..8) {
            let start = start.min(bytes.len());
            prop_assert_eq!(data(&bytes[start..]), reference(&bytes[start..]));
        }

        #[test]
        fn incremental_update_matches_recompute(
            mut bytes in proptest::collection::vec(any::<u8>(), 2..256),
            at in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            if bytes.len() % 2 == 1 { bytes.pop(); }
            let i = at.index(bytes.len() / 2) * 2;
            let before = finish(data(&bytes));
            let old = u16::from_be_bytes([bytes[i], bytes[i + 1]]);
            bytes[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let after = finish(data(&bytes));
            // Either representation of zero is a correct checksum; RFC 1624 yields the
            // one a recomputation yields except where the recomputed sum is +0.
            let updated = update(before, old, new);
            prop_assert!(updated == after || (updated == 0xffff && after == 0) || (updated == 0 && after == 0xffff),
                "updated {:#x} recomputed {:#x}", updated, after);
        }

        #[test]
        fn incremental_update_u32(mut bytes in proptest::collection::vec(any::<u8>(), 8..64), new in any::<u32>()) {
            bytes.truncate(bytes.len() & !3);
            let before = finish(data(&bytes));
            let old = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            bytes[4..8].copy_from_slice(&new.to_be_bytes());
            let after = finish(data(&bytes));
            let updated = update_u32(before, old, new);
            prop_assert!(updated == after || (updated ^ after) == 0xffff && (updated == 0 || after == 0));
        }
    }
}
